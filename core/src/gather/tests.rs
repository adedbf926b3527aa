use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::executor::block_on;
use futures::future::{BoxFuture, LocalBoxFuture, pending, ready};
use futures::{FutureExt, StreamExt};

use super::*;
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;

mod lanes;

/// Returns `Pending` (waking itself) `times` times, then `output`;
/// counts its polls.
struct Yields<T> {
    left: usize,
    output: Option<T>,
    polls: Rc<Cell<usize>>,
}

fn yields<T>(times: usize, output: T) -> (Yields<T>, Rc<Cell<usize>>) {
    let polls = Rc::new(Cell::new(0));
    let fut = Yields {
        left: times,
        output: Some(output),
        polls: polls.clone(),
    };
    (fut, polls)
}

impl<T: Unpin> Future for Yields<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.polls.set(self.polls.get() + 1);
        if self.left == 0 {
            return Poll::Ready(self.output.take().expect("polled after completion"));
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn guarded<T: Send + 'static>(
    dropped: &Arc<AtomicUsize>,
    fut: impl Future<Output = T> + Send + 'static,
) -> BoxFuture<'static, T> {
    let guard = Guard(dropped.clone());
    async move {
        let _guard = guard;
        fut.await
    }
    .boxed()
}

fn sleeper(rt: &VirtualRuntime, ms: u64, ok: bool) -> impl Future<Output = Result<u64, u64>> {
    let rt = rt.clone();
    async move {
        rt.sleep(Duration::from_millis(ms)).await;
        if ok { Ok(ms) } else { Err(ms) }
    }
}

#[test]
fn gather_keeps_input_order_for_small_and_large_inputs() {
    for n in [0usize, 1, 5, 30, 31, 200] {
        let rt = VirtualRuntime::new();
        let items = (0..n as u64).map(|i| sleeper(&rt, (n as u64 - i) % 7, i % 3 != 0));
        let results = rt.block_on(gather(items)).unwrap();
        let expected: Vec<_> = (0..n as u64)
            .map(|i| {
                let ms = (n as u64 - i) % 7;
                if i % 3 != 0 { Ok(ms) } else { Err(ms) }
            })
            .collect();
        assert_eq!(results, expected, "n = {n}");
    }
}

#[test]
fn gather_of_an_iterator_without_an_upper_bound_uses_the_pool() {
    let items = (0..100u32)
        .filter(|_| true)
        .map(|i| ready(Ok::<u32, ()>(i)));
    let g = gather(items);
    assert!(format!("{g:?}").contains("items: 100"));
    assert_eq!(block_on(g), (0..100).map(Ok).collect::<Vec<_>>());
}

/// Item 0 wakes itself 50 times before it finishes; items 1..100 finish at
/// their first poll. Returns the items and each one's poll counter.
type Counted = (
    Vec<LocalBoxFuture<'static, Result<u32, ()>>>,
    Vec<Rc<Cell<usize>>>,
);

fn one_slow_item_among_instant_ones() -> Counted {
    let (slow, slow_polls) = yields(50, Ok::<u32, ()>(0));
    let mut counters = vec![slow_polls];
    let mut items: Vec<LocalBoxFuture<'static, Result<u32, ()>>> = vec![Box::pin(slow)];
    for i in 1..100 {
        let (fut, polls) = yields(0, Ok(i));
        counters.push(polls);
        items.push(Box::pin(fut));
    }
    (items, counters)
}

#[test]
fn only_woken_items_are_polled_again() {
    let (items, counters) = one_slow_item_among_instant_ones();
    let results = block_on(gather(items));
    assert_eq!(results.len(), 100);
    assert_eq!(counters[0].get(), 51);
    // Each instant item was polled exactly once although the slow one woke
    // the gather fifty times.
    assert!(counters[1..].iter().all(|c| c.get() == 1));
}

#[test]
fn a_busy_item_cannot_starve_the_others() {
    let busy_polls = Rc::new(Cell::new(0usize));
    let mut seen_at_finish = Vec::new();
    let mut items: Vec<LocalBoxFuture<'static, Result<usize, ()>>> = Vec::new();
    let (busy, counter) = yields(100_000, Ok(0));
    let busy_counter = counter.clone();
    items.push(Box::pin(busy));
    for _ in 0..40 {
        let (fut, _) = yields(1, ());
        let c = busy_counter.clone();
        items.push(Box::pin(async move {
            fut.await;
            Ok(c.get())
        }));
    }
    let results = block_on(gather(items));
    busy_polls.set(counter.get());
    for r in &results[1..] {
        seen_at_finish.push(*r.as_ref().unwrap());
    }
    // Every quick item finished while the busy one had been polled only a
    // handful of times.
    assert!(seen_at_finish.iter().all(|&n| n <= 4), "{seen_at_finish:?}");
    assert_eq!(busy_polls.get(), 100_001);
}

#[test]
fn as_completed_yields_the_others_while_one_item_spins_forever() {
    let spin = futures::future::poll_fn(|cx: &mut Context<'_>| {
        cx.waker().wake_by_ref();
        Poll::<Result<u32, ()>>::Pending
    })
    .boxed_local();
    let mut items = vec![spin];
    for i in 1..5u32 {
        items.push(yields(2, Ok(i)).0.boxed_local());
    }
    let mut got: Vec<usize> = block_on(
        as_completed(items)
            .take(4)
            .map(|(index, _)| index)
            .collect::<Vec<_>>(),
    );
    got.sort_unstable();
    assert_eq!(got, vec![1, 2, 3, 4]);
}

#[test]
fn try_gather_returns_the_values_in_input_order() {
    for n in [3u64, 100] {
        let rt = VirtualRuntime::new();
        let out = rt
            .block_on(try_gather((0..n).map(|i| sleeper(&rt, n - i, true))))
            .unwrap();
        assert_eq!(out, Ok((0..n).map(|i| n - i).collect::<Vec<_>>()));
    }
}

#[test]
fn try_gather_drops_every_other_item_on_the_first_error() {
    for n in [3usize, 100] {
        let rt = VirtualRuntime::new();
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut items = vec![guarded(&dropped, {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_millis(5)).await;
                Err::<u32, &str>("broken")
            }
        })];
        for _ in 1..n {
            items.push(guarded(&dropped, pending()));
        }
        let err = rt.block_on(try_gather(items)).unwrap().unwrap_err();
        assert_eq!((err.index, err.error, err.name), (0, "broken", None));
        assert_eq!(dropped.load(Ordering::SeqCst), n, "n = {n}");
        assert_eq!(rt.now().since_origin(), Duration::from_millis(5));
    }
}

#[test]
fn try_gather_named_reports_the_failing_items_name() {
    for n in [2usize, 50] {
        let items = (0..n).map(|i| {
            let name = format!("item-{i}");
            (name, ready(if i == n - 1 { Err("no") } else { Ok(i) }))
        });
        let err = block_on(try_gather_named(items)).unwrap_err();
        assert_eq!(err.index, n - 1);
        assert_eq!(
            err.name.as_deref(),
            Some(format!("item-{}", n - 1).as_str())
        );
    }
}

#[test]
fn a_zero_limit_means_no_limit_and_never_hangs() {
    let items = || (0..100u32).map(|i| ready(Ok::<u32, ()>(i)));
    let all = block_on(gather_limited(0, items()));
    assert_eq!(all.len(), 100);
    assert_eq!(block_on(try_gather_limited(0, items())).unwrap().len(), 100);
}

#[test]
fn gather_limited_never_runs_more_than_the_limit_and_pulls_lazily() {
    let rt = VirtualRuntime::new();
    let running = Rc::new(Cell::new(0usize));
    let peak = Rc::new(Cell::new(0usize));
    let pulled = Rc::new(Cell::new(0usize));
    let items = {
        let (rt, running, peak, pulled) =
            (rt.clone(), running.clone(), peak.clone(), pulled.clone());
        (0..1_000u64).map(move |i| {
            pulled.set(pulled.get() + 1);
            let (rt, running, peak) = (rt.clone(), running.clone(), peak.clone());
            async move {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                rt.sleep(Duration::from_millis(1 + i % 5)).await;
                running.set(running.get() - 1);
                Ok::<u64, ()>(i)
            }
        })
    };
    let fut = gather_limited(8, items);
    assert_eq!(pulled.get(), 0, "nothing is pulled before the first poll");
    let mut fut = Box::pin(fut);
    assert!(fut.as_mut().now_or_never().is_none());
    assert_eq!(pulled.get(), 8);
    let results = rt.block_on(fut).unwrap();
    assert_eq!(results, (0..1_000).map(Ok).collect::<Vec<_>>());
    assert_eq!(peak.get(), 8);
    assert_eq!(pulled.get(), 1_000);
}

#[test]
fn try_gather_limited_starts_nothing_after_the_first_error() {
    let pulled = Rc::new(Cell::new(0usize));
    let items = {
        let pulled = pulled.clone();
        (0..1_000u32).map(move |i| {
            pulled.set(pulled.get() + 1);
            ready(if i == 10 { Err(i) } else { Ok(i) })
        })
    };
    let err = block_on(try_gather_limited(4, items)).unwrap_err();
    assert_eq!((err.index, err.error), (10, 10));
    // Items after the failing one are pulled only while it was still in
    // flight, never more than `limit - 1` of them.
    assert!(pulled.get() <= 11 + 3, "pulled {}", pulled.get());
}

#[test]
fn dropping_a_gather_midway_drops_every_item() {
    let rt = VirtualRuntime::new();
    for n in [4usize, 64] {
        let dropped = Arc::new(AtomicUsize::new(0));
        let items: Vec<_> = (0..n)
            .map(|i| {
                let rt = rt.clone();
                guarded(&dropped, async move {
                    rt.sleep(Duration::from_millis(if i == 0 { 1 } else { 1_000 }))
                        .await;
                    Ok::<(), ()>(())
                })
            })
            .collect();
        let out = rt
            .block_on(crate::timeout::timeout(
                &rt,
                Duration::from_millis(10),
                gather(items),
            ))
            .unwrap();
        assert!(out.is_err());
        assert_eq!(dropped.load(Ordering::SeqCst), n);
    }
}

#[test]
fn a_finished_gather_reports_itself_terminated() {
    use futures::future::FusedFuture;
    let mut g = gather([ready(Ok::<u8, ()>(1))]);
    assert!(!g.is_terminated());
    assert_eq!((&mut g).now_or_never(), Some(vec![Ok(1)]));
    assert!(g.is_terminated());
}

#[test]
fn the_report_splits_and_counts() {
    let report: GatherReport<u32, &str> = vec![Ok(1), Err("a"), Ok(3), Err("b")].into();
    assert_eq!(report.len(), 4);
    assert_eq!((report.success_count(), report.failure_count()), (2, 2));
    assert!(!report.all_succeeded());
    let failures = report.clone().into_result().unwrap_err();
    assert_eq!(failures.first(), Some(&(1, "a")));
    assert_eq!(
        failures.to_string(),
        "2 of 4 gathered items failed, the first at index 1"
    );
    let (ok, _) = report.into_parts();
    assert_eq!(ok, vec![(0, 1), (2, 3)]);
    let all_ok: GatherReport<u32, ()> = vec![Ok(1), Ok(2)].into();
    assert_eq!(all_ok.into_result(), Ok(vec![1, 2]));
    assert!(GatherReport::<u8, u8>::new(Vec::new()).is_empty());
}

#[cfg(not(target_arch = "wasm32"))]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Finish times of in-order list scheduling on `limit` slots.
    fn model_finish(delays: &[u64], limit: usize) -> Vec<u64> {
        let mut slots = vec![0u64; limit.min(delays.len()).max(1)];
        delays
            .iter()
            .map(|&d| {
                let (k, start) = slots
                    .iter()
                    .copied()
                    .enumerate()
                    .min_by_key(|&(_, t)| t)
                    .unwrap();
                slots[k] = start + d;
                start + d
            })
            .collect()
    }

    fn items(
        rt: &VirtualRuntime,
        spec: &[(u64, bool)],
    ) -> Vec<impl Future<Output = Result<u64, u64>>> {
        spec.iter().map(|&(ms, ok)| sleeper(rt, ms, ok)).collect()
    }

    fn expected(spec: &[(u64, bool)]) -> Vec<Result<u64, u64>> {
        spec.iter()
            .map(|&(ms, ok)| if ok { Ok(ms) } else { Err(ms) })
            .collect()
    }

    proptest! {
        #[test]
        fn every_flavour_matches_the_reference_model(
            spec in proptest::collection::vec((0u64..50, proptest::bool::weighted(0.8)), 0..80),
            limit in 1usize..10,
        ) {
            let all = model_finish(&spec.iter().map(|s| s.0).collect::<Vec<_>>(), usize::MAX);
            let limited = model_finish(&spec.iter().map(|s| s.0).collect::<Vec<_>>(), limit);
            let end = |f: &[u64]| f.iter().copied().max().unwrap_or(0);

            let rt = VirtualRuntime::new();
            prop_assert_eq!(rt.block_on(gather(items(&rt, &spec))).unwrap(), expected(&spec));
            prop_assert_eq!(rt.now().since_origin().as_millis() as u64, end(&all));

            let rt = VirtualRuntime::new();
            let out = rt.block_on(gather_limited(limit, items(&rt, &spec))).unwrap();
            prop_assert_eq!(out, expected(&spec));
            prop_assert_eq!(rt.now().since_origin().as_millis() as u64, end(&limited));

            // Fail fast: the error is one of those finishing first among the
            // failures, reported at its finish time.
            for (finish, flavour) in [(&all, 0), (&limited, 1)] {
                let rt = VirtualRuntime::new();
                let out = if flavour == 0 {
                    rt.block_on(try_gather(items(&rt, &spec))).unwrap()
                } else {
                    rt.block_on(try_gather_limited(limit, items(&rt, &spec))).unwrap()
                };
                let first_fail = spec.iter().enumerate().filter(|(_, s)| !s.1).map(|(i, _)| finish[i]).min();
                match (out, first_fail) {
                    (Ok(values), None) => {
                        prop_assert_eq!(values, spec.iter().map(|s| s.0).collect::<Vec<_>>());
                        prop_assert_eq!(rt.now().since_origin().as_millis() as u64, end(finish));
                    }
                    (Err(e), Some(t)) => {
                        prop_assert!(!spec[e.index].1);
                        prop_assert_eq!(finish[e.index], t);
                        prop_assert_eq!(rt.now().since_origin().as_millis() as u64, t);
                    }
                    (out, model) => prop_assert!(false, "got {:?}, model {:?}", out.map(|_| ()), model),
                }
            }

            // Completion order: finish times never decrease.
            let rt = VirtualRuntime::new();
            let order: Vec<usize> = rt
                .block_on(as_completed(items(&rt, &spec)).map(|(i, _)| i).collect::<Vec<_>>())
                .unwrap();
            prop_assert_eq!(order.len(), spec.len());
            prop_assert!(order.windows(2).all(|w| all[w[0]] <= all[w[1]]));
        }
    }
}

#[test]
fn gather_spawned_returns_outcomes_in_input_order_and_captures_panics() {
    let rt = VirtualRuntime::new();
    let items = (0..5u64).map(|i| {
        let rt = rt.clone();
        async move {
            rt.sleep(Duration::from_millis(10 - i)).await;
            match i {
                1 => Err(format!("item {i} failed")),
                3 if cfg!(panic = "unwind") => panic!("item 3 panicked"),
                _ => Ok(i),
            }
        }
    });
    let out = rt.block_on(gather_spawned(&rt, items).unwrap()).unwrap();
    assert_eq!(out.len(), 5);
    assert_eq!(out[0].as_ref().ok(), Some(&0));
    assert_eq!(
        out[1].as_ref().unwrap_err().inner().map(String::as_str),
        Some("item 1 failed")
    );
    assert!(matches!(out[3], Err(crate::Error::Panicked(_))));
    assert_eq!(out[4].as_ref().ok(), Some(&4));
}

#[test]
fn dropping_gather_spawned_aborts_every_unjoined_task() {
    let rt = VirtualRuntime::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let items: Vec<_> = (0..6)
        .map(|_| {
            let rt = rt.clone();
            guarded(&dropped, async move {
                rt.sleep(Duration::from_secs(60)).await;
                Ok::<(), String>(())
            })
        })
        .collect();
    let out = rt
        .block_on(crate::timeout::timeout(
            &rt,
            Duration::from_millis(5),
            gather_spawned(&rt, items).unwrap(),
        ))
        .unwrap();
    assert!(out.is_err());
    rt.block_on(rt.sleep(Duration::from_millis(1))).unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 6);
    assert_eq!(rt.task_count(), 0);
}
