//! Conformance cases for the gather family: `gather`, `try_gather`,
//! `gather_limited`, `as_completed` and `GatherReport`, on every runtime.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt, poll_fn, ready};
use staunch::gather::{
    GatherReport, as_completed, gather, gather_limited, gather_spawned, try_gather,
    try_gather_limited, try_gather_named,
};
use staunch::scope::{CancelReason, CancelScope};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{DropCounter, Gauge, TestRuntime, eventually, ms, yield_now};

/// An item that sleeps `delay` and then answers `Ok(value)` or `Err(value)`.
fn item<R: TestRuntime>(
    rt: &R,
    delay: Duration,
    value: u64,
    ok: bool,
) -> impl Future<Output = Result<u64, u64>> + use<R> {
    let sleep = rt.sleep(delay);
    async move {
        sleep.await;
        if ok { Ok(value) } else { Err(value) }
    }
}

/// Results come back in input order, whatever order the items finish in,
/// with each failure in its own place (small and large inputs).
pub async fn gather_returns_every_result_in_input_order<R: TestRuntime>(rt: R) {
    for n in [5u64, 60] {
        let items = (0..n).map(|i| item(&rt, ms((n - i) % 6 * 3), i, i % 4 != 1));
        let results = gather(items).await;
        let expected: Vec<_> = (0..n)
            .map(|i| if i % 4 != 1 { Ok(i) } else { Err(i) })
            .collect();
        assert_eq!(results, expected, "n = {n} on {}", R::NAME);
    }
}

/// No items: every flavour finishes at once with nothing.
pub async fn gathering_nothing_finishes_at_once_with_nothing<R: TestRuntime>(rt: R) {
    let none = || std::iter::empty::<BoxFuture<'static, Result<u8, u8>>>();
    let start = rt.now();
    assert!(gather(none()).await.is_empty());
    assert_eq!(try_gather(none()).await, Ok(Vec::new()));
    assert!(gather_limited(3, none()).await.is_empty());
    assert_eq!(try_gather_limited(3, none()).await, Ok(Vec::new()));
    assert_eq!(as_completed(none()).count().await, 0);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), start);
    }
}

/// When every item fails, every error is kept, each at its index.
pub async fn gather_keeps_every_error_when_all_items_fail<R: TestRuntime>(rt: R) {
    let results = gather((0..40).map(|i| item(&rt, ms(i % 3), i, false))).await;
    assert_eq!(results, (0..40).map(Err).collect::<Vec<_>>());
    let report = GatherReport::from(results);
    assert_eq!((report.success_count(), report.failure_count()), (0, 40));
    let failures = report.into_result().unwrap_err();
    assert_eq!(failures.first(), Some(&(0, 0)));
}

/// A report splits a mixed gather into successes and failures by index.
pub async fn a_gather_report_splits_a_mixed_gather<R: TestRuntime>(rt: R) {
    let report: GatherReport<u64, u64> = gather([
        item(&rt, ms(3), 0, true),
        item(&rt, ms(1), 1, false),
        item(&rt, ms(2), 2, true),
    ])
    .await
    .into();
    assert_eq!(report.successes(), &[(0, 0), (2, 2)]);
    assert_eq!(report.failures(), &[(1, 1)]);
    assert!(report.into_result().is_err());
}

/// The first failure ends `try_gather` at once, names the failing index and
/// drops every other item before returning.
pub async fn try_gather_fails_fast_and_drops_the_other_items<R: TestRuntime>(rt: R) {
    for n in [4usize, 50] {
        let dropped = DropCounter::new();
        let start = rt.now();
        let items = (0..n).map(|i| {
            let guard = dropped.guard();
            let work = item(
                &rt,
                if i == 2 { ms(5) } else { ms(5_000) },
                i as u64,
                i != 2,
            );
            async move {
                let _guard = guard;
                work.await
            }
        });
        let err = try_gather(items).await.unwrap_err();
        assert_eq!((err.index, err.error), (2, 2), "on {}", R::NAME);
        assert_eq!(dropped.dropped(), n, "every item dropped on {}", R::NAME);
        let took = rt.now() - start;
        assert!(took >= ms(5) && took < ms(5_000), "took {took:?}");
        if R::VIRTUAL_TIME {
            assert_eq!(took, ms(5));
        }
    }
}

/// A named fail-fast gather says which named item failed.
pub async fn try_gather_named_names_the_failing_item<R: TestRuntime>(rt: R) {
    let err = try_gather_named([
        ("primary", item(&rt, ms(2), 0, true)),
        ("replica", item(&rt, ms(1), 1, false)),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.index, 1);
    assert_eq!(err.name.as_deref(), Some("replica"));
    assert!(err.to_string().contains("`replica`"));
}

/// A panicking item takes the gather down with it, and the task that ran
/// the gather reports the panic; the other items are dropped, not leaked.
#[cfg(not(target_arch = "wasm32"))]
pub async fn a_panic_in_one_gathered_item_is_captured_by_its_task<R: TestRuntime>(rt: R) {
    use staunch::runtime::SpawnExt;
    if !R::UNWINDS {
        return;
    }
    let dropped = DropCounter::new();
    let items: Vec<BoxFuture<'static, Result<u64, u64>>> = (0..4u64)
        .map(|i| {
            let guard = dropped.guard();
            let sleep = rt.sleep(ms(if i == 1 { 2 } else { 5_000 }));
            async move {
                let _guard = guard;
                sleep.await;
                if i == 1 {
                    panic!("item 1 broke");
                }
                Ok(i)
            }
            .boxed()
        })
        .collect();
    let handle = rt
        .spawn(async move { Ok::<_, String>(gather(items).await) })
        .expect("spawn");
    let err = handle.await.unwrap_err();
    assert!(err.is_panic(), "got {err:?} on {}", R::NAME);
    assert!(err.to_string().contains("item 1 broke"));
    assert_eq!(dropped.dropped(), 4, "on {}", R::NAME);
}

/// Dropping a gather part-way through drops every item it holds.
pub async fn dropping_a_gather_midway_drops_every_item<R: TestRuntime>(rt: R) {
    for n in [3usize, 40] {
        let dropped = DropCounter::new();
        let items: Vec<_> = (0..n)
            .map(|i| {
                let guard = dropped.guard();
                let work = item(&rt, ms(if i == 0 { 1 } else { 5_000 }), 0, true);
                async move {
                    let _guard = guard;
                    work.await
                }
            })
            .collect();
        let out = timeout(&rt, ms(20), gather(items)).await;
        assert!(out.is_err());
        assert_eq!(dropped.dropped(), n, "on {}", R::NAME);
    }
}

/// `gather_limited` never has more than `limit` items running, and does use
/// all of them.
pub async fn gather_limited_never_runs_more_than_its_limit<R: TestRuntime>(rt: R) {
    let gauge = Gauge::new();
    let items = (0..30u64).map(|i| {
        let gauge = gauge.clone();
        let work = item(&rt, ms(1 + i % 4), i, true);
        async move {
            let _inside = gauge.enter();
            work.await
        }
    });
    let results = gather_limited(4, items).await;
    assert_eq!(results, (0..30).map(Ok).collect::<Vec<_>>());
    assert_eq!(gauge.peak(), 4, "on {}", R::NAME);
    assert_eq!(gauge.current(), 0);
}

/// `gather_limited` takes items from its iterator only when a place frees
/// up, so a huge iterator is never collected.
pub async fn gather_limited_pulls_items_lazily<R: TestRuntime>(rt: R) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let items = {
        let pulled = pulled.clone();
        let rt = rt.clone();
        (0..20u64).map(move |i| {
            pulled.fetch_add(1, Ordering::SeqCst);
            item(&rt, ms(2), i, true)
        })
    };
    let mut fut = gather_limited(5, items);
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        0,
        "nothing before the first poll"
    );
    let first = poll_fn(|cx| Poll::Ready(fut.poll_unpin(cx).is_ready())).await;
    assert!(!first);
    assert_eq!(pulled.load(Ordering::SeqCst), 5);
    assert_eq!(fut.await.len(), 20);
    assert_eq!(pulled.load(Ordering::SeqCst), 20);

    // A very long iterator of instant items runs in bounded memory.
    let many = (0..200_000u64).map(|i| ready(Ok::<u64, ()>(i)));
    let results = gather_limited(16, many).await;
    assert_eq!(results.len(), 200_000);
    assert_eq!(results[199_999], Ok(199_999));
}

/// A limit of zero means no limit: every item starts at once, nothing hangs.
pub async fn a_zero_gather_limit_means_no_limit<R: TestRuntime>(rt: R) {
    let inside = std::cell::Cell::new(0u32);
    let most = std::cell::Cell::new(0u32);
    let items = (0..10u64).map(|i| {
        let sleep = rt.sleep(ms(10));
        let (inside, most) = (&inside, &most);
        async move {
            inside.set(inside.get() + 1);
            most.set(most.get().max(inside.get()));
            sleep.await;
            inside.set(inside.get() - 1);
            Ok::<u64, u64>(i)
        }
    });
    let all = gather_limited(0, items).await;
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(Result::is_ok));
    assert_eq!(
        most.get(),
        10,
        "a zero limit bounded the items on {}",
        R::NAME
    );
    let items = (0..10).map(|i| item(&rt, ms(10), i, true));
    assert_eq!(try_gather_limited(0, items).await.map(|v| v.len()), Ok(10));
}

/// After the first failure `try_gather_limited` starts nothing more.
pub async fn try_gather_limited_starts_nothing_after_a_failure<R: TestRuntime>(rt: R) {
    let started = Arc::new(AtomicUsize::new(0));
    let items = (0..100u64).map(|i| {
        let started = started.clone();
        let work = item(&rt, ms(2), i, i != 3);
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            work.await
        }
    });
    let err = try_gather_limited(2, items).await.unwrap_err();
    assert_eq!((err.index, err.error), (3, 3));
    assert!(started.load(Ordering::SeqCst) <= 5, "on {}", R::NAME);
}

/// `as_completed` hands out results in the order items finish.
pub async fn as_completed_yields_results_in_completion_order<R: TestRuntime>(rt: R) {
    let order: Vec<(usize, Result<u64, u64>)> = as_completed([
        item(&rt, ms(40), 0, true),
        item(&rt, ms(2), 1, false),
        item(&rt, ms(20), 2, true),
    ])
    .collect()
    .await;
    assert_eq!(
        order,
        vec![(1, Err(1)), (2, Ok(2)), (0, Ok(0))],
        "on {}",
        R::NAME
    );
}

/// An item that wakes itself on every poll cannot starve the others: they
/// all finish while it is still spinning.
pub async fn a_busy_item_cannot_starve_the_other_gathered_items<R: TestRuntime>(_rt: R) {
    const OTHERS: usize = 40;
    let finished = Arc::new(AtomicUsize::new(0));
    let busy = {
        let finished = finished.clone();
        let mut polls = 0u64;
        poll_fn(move |cx| {
            polls += 1;
            if finished.load(Ordering::SeqCst) == OTHERS {
                Poll::Ready(Ok(polls))
            } else if polls > 100_000 {
                Poll::Ready(Err(polls))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .boxed()
    };
    let mut items: Vec<BoxFuture<'static, Result<u64, u64>>> = vec![busy];
    for _ in 0..OTHERS {
        let finished = finished.clone();
        items.push(
            async move {
                yield_now().await;
                yield_now().await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(0)
            }
            .boxed(),
        );
    }
    let results = gather(items).await;
    let busy_polls = results[0].expect("the others finished while the busy item spun");
    assert!(
        busy_polls <= 10,
        "the busy item was polled {busy_polls} times"
    );
}

/// Per-item timeouts compose: a slow item times out in its own slot, the
/// others keep their values.
pub async fn gather_composes_with_per_item_timeouts<R: TestRuntime>(rt: R) {
    let start = rt.now();
    let results = gather(
        [2u64, 5_000, 4].map(|delay| timeout(&rt, ms(30), item(&rt, ms(delay), delay, true))),
    )
    .await;
    assert_eq!(results[0], Ok(Ok(2)));
    assert_eq!(results[1], Err(Elapsed { after: ms(30) }));
    assert_eq!(results[2], Ok(Ok(4)));
    let took = rt.now() - start;
    assert!(took >= ms(30) && took < ms(5_000));
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(30));
    }
}

/// A cancel scope around a gather cancels every item with the scope's
/// reason.
pub async fn a_cancel_scope_around_a_gather_cancels_every_item<R: TestRuntime>(rt: R) {
    let dropped = DropCounter::new();
    let scope = CancelScope::new();
    let items: Vec<_> = (0..35u64)
        .map(|i| {
            let guard = dropped.guard();
            let work = item(&rt, ms(5_000), i, true);
            async move {
                let _guard = guard;
                work.await
            }
        })
        .collect();
    let canceller = {
        let scope = scope.clone();
        let sleep = rt.sleep(ms(10));
        async move {
            sleep.await;
            scope.cancel_with_message("user pressed stop");
        }
    };
    let (outcome, ()) = futures::join!(scope.run(gather(items)), canceller);
    let cancelled = outcome.unwrap_err();
    assert_eq!(
        cancelled.reason,
        CancelReason::Explicit {
            message: Some("user pressed stop".into())
        }
    );
    assert_eq!(dropped.dropped(), 35, "on {}", R::NAME);
}

/// `gather_spawned` runs each item as its own task and returns the
/// outcomes in input order, an item's error as `Error::Inner`.
pub async fn gather_spawned_returns_task_outcomes_in_input_order<R: TestRuntime>(rt: R) {
    let items = (0..8u64).map(|i| {
        let work = item(&rt, ms(8 - i), i, i != 5);
        async move {
            // A little CPU work, as the items of a spawned gather would do.
            let spin: u64 = (0..10_000u64).fold(i, |acc, x| acc.wrapping_add(x * x));
            std::hint::black_box(spin);
            work.await
        }
    });
    let out = gather_spawned(&rt, items).expect("spawn").await;
    for (i, outcome) in out.iter().enumerate() {
        match outcome {
            Ok(v) => assert_eq!(*v, i as u64),
            Err(e) => {
                assert_eq!(i, 5, "on {}", R::NAME);
                assert_eq!(e.inner(), Some(&5));
            }
        }
    }
    assert_eq!(out.len(), 8);
}

/// Dropping a spawned gather aborts every task it started.
pub async fn dropping_a_spawned_gather_aborts_its_tasks<R: TestRuntime>(rt: R) {
    let dropped = DropCounter::new();
    let items: Vec<_> = (0..5u64)
        .map(|i| {
            let guard = dropped.guard();
            let work = item(&rt, ms(5_000), i, true);
            async move {
                let _guard = guard;
                work.await
            }
        })
        .collect();
    let gathering = gather_spawned(&rt, items).expect("spawn");
    assert!(timeout(&rt, ms(10), gathering).await.is_err());
    eventually(&rt, "every spawned item dropped", || dropped.dropped() == 5).await;
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! gather_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? gather::gather_returns_every_result_in_input_order);
        $m!($($($extra)*;)? gather::gathering_nothing_finishes_at_once_with_nothing);
        $m!($($($extra)*;)? gather::gather_keeps_every_error_when_all_items_fail);
        $m!($($($extra)*;)? gather::a_gather_report_splits_a_mixed_gather);
        $m!($($($extra)*;)? gather::try_gather_fails_fast_and_drops_the_other_items);
        $m!($($($extra)*;)? gather::try_gather_named_names_the_failing_item);
        $m!($($($extra)*;)?
            #[cfg(not(target_arch = "wasm32"))]
            gather::a_panic_in_one_gathered_item_is_captured_by_its_task
        );
        $m!($($($extra)*;)? gather::dropping_a_gather_midway_drops_every_item);
        $m!($($($extra)*;)? gather::gather_limited_never_runs_more_than_its_limit);
        $m!($($($extra)*;)? gather::gather_limited_pulls_items_lazily);
        $m!($($($extra)*;)? gather::a_zero_gather_limit_means_no_limit);
        $m!($($($extra)*;)? gather::try_gather_limited_starts_nothing_after_a_failure);
        $m!($($($extra)*;)? gather::as_completed_yields_results_in_completion_order);
        $m!($($($extra)*;)? gather::a_busy_item_cannot_starve_the_other_gathered_items);
        $m!($($($extra)*;)? gather::gather_composes_with_per_item_timeouts);
        $m!($($($extra)*;)? gather::a_cancel_scope_around_a_gather_cancels_every_item);
        $m!($($($extra)*;)? gather::gather_spawned_returns_task_outcomes_in_input_order);
        $m!($($($extra)*;)? gather::dropping_a_spawned_gather_aborts_its_tasks);
    };
}
