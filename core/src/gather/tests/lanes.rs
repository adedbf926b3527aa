//! The limited flavours when items outnumber the limit: they run on lanes
//! that are reused by item after item, so these tests check what reuse
//! could break (drops, wake-ups that outlive their item, fairness, panics).

use std::cell::RefCell;
use std::sync::mpsc;
use std::task::Waker;

use futures::channel::oneshot;
use futures::task::noop_waker;

use super::*;

/// Counts live instances; an item holds one from creation to drop.
#[derive(Clone, Default)]
struct Live {
    now: Rc<Cell<usize>>,
    peak: Rc<Cell<usize>>,
}

struct Alive(Live);

impl Live {
    fn enter(&self) -> Alive {
        self.now.set(self.now.get() + 1);
        self.peak.set(self.peak.get().max(self.now.get()));
        Alive(self.clone())
    }
}

/// An item that holds its `Alive` until it is dropped, not just until it
/// completes (an `async` block would let go of it on completion).
struct Holding<F> {
    _alive: Alive,
    future: F,
}

impl<F: Future + Unpin> Future for Holding<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        Pin::new(&mut self.future).poll(cx)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.now.set(self.0.now.get() - 1);
    }
}

#[test]
fn each_item_is_dropped_when_it_finishes_so_at_most_limit_are_alive() {
    let live = Live::default();
    let items = (0..100u32).map(|i| Holding {
        _alive: live.enter(),
        future: yields(i as usize % 3, Ok::<u32, ()>(i)).0,
    });
    let out = block_on(gather_limited(3, items));
    assert_eq!(out, (0..100).map(Ok).collect::<Vec<_>>());
    // Items are created as they are pulled, so the peak also shows that an
    // item was gone before the one taking its place was pulled.
    assert_eq!(live.peak.get(), 3);
    assert_eq!(live.now.get(), 0);
}

#[test]
fn the_first_error_drops_every_running_item_before_it_is_returned() {
    let rt = VirtualRuntime::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let items = (0..50u64).map(|i| {
        let rt = rt.clone();
        guarded(&dropped, async move {
            rt.sleep(Duration::from_millis(if i == 5 { 1 } else { 100 }))
                .await;
            if i == 5 { Err(i) } else { Ok(i) }
        })
    });
    let err = rt
        .block_on(try_gather_limited(8, items))
        .unwrap()
        .unwrap_err();
    assert_eq!((err.index, err.error), (5, 5));
    // Items 0..8 were started; the failing one finished, the other seven
    // were dropped, and nothing after them was ever pulled.
    assert_eq!(dropped.load(Ordering::SeqCst), 8);
    assert_eq!(rt.now().since_origin(), Duration::from_millis(1));
}

#[test]
fn only_woken_items_are_polled_again() {
    let (items, counters) = one_slow_item_among_instant_ones();
    let out = block_on(gather_limited(10, items));
    assert_eq!(out, (0..100).map(Ok).collect::<Vec<_>>());
    assert_eq!(counters[0].get(), 51);
    assert!(counters[1..].iter().all(|c| c.get() == 1));
}

#[test]
fn an_item_that_wakes_itself_forever_gets_one_turn_per_round() {
    let spins = Rc::new(Cell::new(0usize));
    let spin = {
        let spins = spins.clone();
        futures::future::poll_fn(move |cx: &mut Context<'_>| {
            spins.set(spins.get() + 1);
            cx.waker().wake_by_ref();
            Poll::<Result<u32, ()>>::Pending
        })
        .boxed_local()
    };
    let mut items = vec![spin];
    let mut quick_polls = Vec::new();
    for i in 1..40u32 {
        let (fut, polls) = yields(1, Ok(i));
        quick_polls.push(polls);
        items.push(fut.boxed_local());
    }
    let mut gather = gather_limited(4, items);
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut outer_polls = 0;
    while quick_polls.iter().any(|p| p.get() < 2) {
        let before = spins.get();
        assert!(Pin::new(&mut gather).poll(&mut cx).is_pending());
        outer_polls += 1;
        // Each poll of the gather returns, having given the spinning item
        // at most one turn per running item (here: the limit).
        assert!(spins.get() - before <= 4, "{} turns", spins.get() - before);
        assert!(outer_polls < 1_000, "the quick items never finished");
    }
    // Every quick item ran its two polls while the spinner was kept to
    // about one turn per round, not thousands.
    assert!(spins.get() <= 4 * outer_polls, "{} spins", spins.get());
}

#[test]
fn a_waker_kept_by_a_finished_item_only_causes_a_spurious_poll() {
    let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
    let (tx, rx) = oneshot::channel::<u32>();
    let second_polls = Rc::new(Cell::new(0usize));
    let items: Vec<LocalBoxFuture<'static, Result<u32, ()>>> = vec![
        {
            let kept = kept.clone();
            futures::future::poll_fn(move |cx: &mut Context<'_>| {
                *kept.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(Ok(0))
            })
            .boxed_local()
        },
        {
            let polls = second_polls.clone();
            let mut rx = rx;
            futures::future::poll_fn(move |cx: &mut Context<'_>| {
                polls.set(polls.get() + 1);
                rx.poll_unpin(cx).map(|v| Ok(v.unwrap()))
            })
            .boxed_local()
        },
        ready(Ok(2)).boxed_local(),
    ];
    // One lane: the second item runs in the first one's place.
    let mut gather = gather_limited(1, items);
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut gather).poll(&mut cx).is_pending());
    assert_eq!(second_polls.get(), 1);
    kept.borrow_mut().take().unwrap().wake();
    assert!(Pin::new(&mut gather).poll(&mut cx).is_pending());
    assert_eq!(
        second_polls.get(),
        2,
        "the stale wake-up polls the lane's item"
    );
    tx.send(1).unwrap();
    assert_eq!(
        Pin::new(&mut gather).poll(&mut cx),
        Poll::Ready(vec![Ok(0), Ok(1), Ok(2)])
    );
}

#[test]
fn wake_ups_from_other_threads_reach_the_gather() {
    let (to_waker_thread, jobs) = mpsc::channel::<oneshot::Sender<u32>>();
    let thread = std::thread::spawn(move || {
        // Completes the items from this thread, each batch of four in
        // reverse, so lanes finish out of input order. The channel closes
        // when the gather drops its exhausted iterator.
        let mut batch = Vec::new();
        for (i, tx) in jobs.iter().enumerate() {
            batch.push((i as u32, tx));
            if batch.len() == 4 {
                for (i, tx) in batch.drain(..).rev() {
                    tx.send(i).unwrap();
                }
            }
        }
    });
    // 200 is a multiple of the batch size and the limit holds two batches,
    // so every item is completed.
    let items = (0..200u32).map(move |_| {
        let (tx, rx) = oneshot::channel();
        to_waker_thread.send(tx).unwrap();
        rx
    });
    let out = block_on(gather_limited(8, items));
    thread.join().unwrap();
    assert_eq!(out, (0..200).map(Ok).collect::<Vec<_>>());
}

#[cfg(panic = "unwind")]
#[test]
fn after_an_item_panics_the_gather_refuses_to_go_on() {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    let items = (0..10u32).map(|i| async move {
        assert!(i != 3, "item 3 broke");
        Ok::<u32, ()>(i)
    });
    let mut gather = gather_limited(2, items);
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let first = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut gather).poll(&mut cx)));
    assert!(first.is_err());
    let again = catch_unwind(AssertUnwindSafe(|| Pin::new(&mut gather).poll(&mut cx)))
        .expect_err("a gather whose item panicked must not carry on");
    let message = again.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        message.contains("panicked in an earlier poll"),
        "{message:?}"
    );
}

/// Claims to have `usize::MAX` items but has ten.
struct Boastful(u32);

impl Iterator for Boastful {
    type Item = futures::future::Ready<Result<u32, ()>>;
    fn next(&mut self) -> Option<Self::Item> {
        (self.0 < 10).then(|| {
            self.0 += 1;
            ready(Ok(self.0 - 1))
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[test]
fn a_huge_size_hint_is_not_reserved_up_front() {
    // Reserving what these iterators promise would abort the process
    // (capacity overflow) before the first item ran.
    let out = block_on(gather_limited(1 << 40, Boastful(0)));
    assert_eq!(out, (0..10).map(Ok).collect::<Vec<_>>());
    let items = (0..u64::MAX).map(|i| ready(if i == 100 { Err(i) } else { Ok(i) }));
    let err = block_on(try_gather_limited(8, items)).unwrap_err();
    assert_eq!((err.index, err.error), (100, 100));
}
