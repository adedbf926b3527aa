//! Who is woken when: every change that lets a waiter go on wakes a waiter
//! that has not been woken yet, so no waiter sleeps beside an item or a
//! slot meant for it, and a woken waiter that leaves passes its turn on.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::{WorkerPool, bounded};
use crate::runtime::{Timer, UnobservedKind};
use crate::testing::VirtualRuntime;

/// A waker that remembers whether it was woken.
pub(super) struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

pub(super) fn flag() -> (Arc<Flag>, Waker) {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    (flag.clone(), Waker::from(flag))
}

pub(super) fn woken(flag: &Flag) -> bool {
    flag.0.load(Ordering::SeqCst)
}

pub(super) fn poll<F: Future>(fut: Pin<&mut F>, waker: &Waker) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(waker))
}

#[test]
fn two_slots_freed_before_either_waiting_sender_runs_wake_both_senders() {
    let (tx, rx) = bounded::<u32>(2).expect("valid");
    tx.try_send(1).expect("room");
    tx.try_send(2).expect("room");
    let (a_flag, a_waker) = flag();
    let (b_flag, b_waker) = flag();
    let mut a = pin!(tx.send(3));
    let mut b = pin!(tx.send(4));
    assert!(poll(a.as_mut(), &a_waker).is_pending());
    assert!(poll(b.as_mut(), &b_waker).is_pending());

    // Both slots free up before sender `a` gets to run.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));

    assert!(woken(&a_flag), "the first slot wakes a sender");
    assert!(
        woken(&b_flag),
        "the second slot must wake the other sender, not only the one already woken"
    );
    assert!(matches!(poll(a.as_mut(), &a_waker), Poll::Ready(Ok(()))));
    assert!(matches!(poll(b.as_mut(), &b_waker), Poll::Ready(Ok(()))));
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(3), Ok(4)));
}

#[test]
fn two_items_sent_before_either_waiting_receiver_runs_wake_both_receivers() {
    let (tx, rx) = bounded::<u32>(4).expect("valid");
    let other = rx.clone();
    let (a_flag, a_waker) = flag();
    let (b_flag, b_waker) = flag();
    let mut a = pin!(rx.recv());
    let mut b = pin!(other.recv());
    assert!(poll(a.as_mut(), &a_waker).is_pending());
    assert!(poll(b.as_mut(), &b_waker).is_pending());

    tx.try_send(1).expect("room");
    tx.try_send(2).expect("room");

    assert!(woken(&a_flag) && woken(&b_flag), "one receiver per item");
    assert_eq!(poll(a.as_mut(), &a_waker), Poll::Ready(Ok(1)));
    assert_eq!(poll(b.as_mut(), &b_waker), Poll::Ready(Ok(2)));
}

#[test]
fn a_woken_receiver_dropped_before_it_took_the_item_passes_the_wake_on() {
    let (tx, rx) = bounded::<u32>(4).expect("valid");
    let other = rx.clone();
    let (a_flag, a_waker) = flag();
    let (b_flag, b_waker) = flag();
    let mut a = Box::pin(rx.recv());
    let mut b = pin!(other.recv());
    assert!(poll(a.as_mut(), &a_waker).is_pending());
    assert!(poll(b.as_mut(), &b_waker).is_pending());

    tx.try_send(7).expect("room");
    assert!(woken(&a_flag));
    assert!(!woken(&b_flag), "one item wakes one receiver");

    drop(a); // cancelled after its wake, before it took the item
    assert!(
        woken(&b_flag),
        "the wake goes to the receiver still waiting"
    );
    assert_eq!(poll(b.as_mut(), &b_waker), Poll::Ready(Ok(7)));
}

#[test]
fn a_receiver_waiting_when_the_last_sender_drops_sees_the_end() {
    let (tx, rx) = bounded::<u32>(1).expect("valid");
    let (flag_, waker) = flag();
    let mut waiting = pin!(rx.recv());
    assert!(poll(waiting.as_mut(), &waker).is_pending());
    drop(tx);
    assert!(woken(&flag_));
    assert_eq!(
        poll(waiting.as_mut(), &waker),
        Poll::Ready(Err(super::RecvError::Closed))
    );
}

#[test]
fn dropped_completions_send_a_later_failure_to_the_error_sink() {
    let rt = VirtualRuntime::new();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = crate::runtime::ErrorSink::new({
        let reports = reports.clone();
        move |error| reports.lock().expect("not poisoned").push(error)
    });
    let out = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let (pool, completions) = WorkerPool::builder(rt)
                    .workers(1)
                    .error_sink(sink)
                    .build(|i: u32| async move { if i == 1 { Err("boom") } else { Ok(i) } })
                    .expect("valid");
                let mut completions = completions;
                pool.submit(0).await.expect("open");
                let first = completions.next().await.map(|c| c.index);
                drop(completions);
                pool.submit(1).await.expect("open");
                pool.close();
                pool.join().await;
                first
            }
        })
        .expect("no deadlock");
    assert_eq!(out, Some(0));
    let reports = reports.lock().expect("not poisoned");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        matches!(&reports[0].kind, UnobservedKind::Other(text)
            if text.contains("item #1 failed after 1 attempt(s) and nobody reads the pool's completions")),
        "{reports:?}"
    );
}

#[test]
fn a_submit_waiting_for_room_is_woken_by_the_worker_that_frees_it_and_completes_once() {
    let rt = VirtualRuntime::new();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let (pool, _completions) = WorkerPool::builder(rt.clone())
                .workers(1)
                .capacity(1)
                .build({
                    let rt = rt.clone();
                    move |i: u64| {
                        let sleep = rt.sleep(std::time::Duration::from_millis(10));
                        async move {
                            sleep.await;
                            Ok::<_, ()>(i)
                        }
                    }
                })
                .expect("valid");
            assert_eq!(pool.submit(0).await.ok(), Some(0));
            rt.sleep(std::time::Duration::from_millis(1)).await; // the worker takes item 0
            assert_eq!(pool.submit(1).await.ok(), Some(1)); // the queue is full now
            let (woke, waker) = flag();
            let mut waiting = pool.submit(2);
            assert!(poll(Pin::new(&mut waiting), &waker).is_pending());
            // At 10 ms the worker finishes item 0 and takes item 1: room.
            rt.sleep(std::time::Duration::from_millis(10)).await;
            assert!(woken(&woke));
            assert!(matches!(
                poll(Pin::new(&mut waiting), &waker),
                Poll::Ready(Ok(2))
            ));
            // Polled again after it completed, it submits nothing more.
            assert!(poll(Pin::new(&mut waiting), &waker).is_pending());
            pool.close();
            pool.join().await;
            assert_eq!(pool.stats().submitted, 3);
        }
    })
    .expect("no deadlock");
}

/// The lone-listener shortcut of `Signal::notify_one_more` (a wake-up sent
/// since the listener last looked is enough) never leaves a listener
/// asleep beside a change.
mod lone_listener {
    use super::*;
    use crate::queue::signal::{Signal, SignalListener};

    /// A listener that started listening and went to sleep, with the flag
    /// its waker sets.
    struct Asleep<'a> {
        seen: Arc<Flag>,
        waker: Waker,
        listener: Pin<Box<SignalListener<'a>>>,
    }

    impl Asleep<'_> {
        fn poll(&mut self) -> Poll<()> {
            poll(self.listener.as_mut(), &self.waker)
        }
        fn is_woken(&self) -> bool {
            woken(&self.seen)
        }
    }

    fn asleep(signal: &Signal) -> Asleep<'_> {
        let (seen, waker) = flag();
        let mut asleep = Asleep {
            seen,
            waker,
            listener: Box::pin(signal.listen()),
        };
        assert!(asleep.poll().is_pending());
        asleep
    }

    /// A listener that starts now sleeps, and the next change wakes it.
    fn a_new_listener_is_woken_by_the_next_change(signal: &Signal) {
        let mut listener = asleep(signal);
        signal.notify_one_more();
        assert!(listener.is_woken());
        assert!(listener.poll().is_ready());
    }

    #[test]
    fn a_second_change_before_the_listener_runs_needs_no_second_wake_up_but_a_third_after_it_looked_does()
     {
        let signal = Signal::new();
        let mut listener = asleep(&signal);
        signal.notify_one_more();
        signal.notify_one_more();
        assert!(listener.is_woken());
        assert!(listener.poll().is_ready());
        // It looked at the state again; a new wait must be woken anew.
        a_new_listener_is_woken_by_the_next_change(&signal);
    }

    #[test]
    fn a_listener_left_alone_after_its_neighbour_took_a_wake_up_and_went_is_still_woken() {
        let signal = Signal::new();
        let mut first = asleep(&signal);
        let mut second = asleep(&signal);
        // Two listeners: the first is woken, takes it and goes its way.
        signal.notify_one_more();
        assert!(first.poll().is_ready());
        drop(first);
        assert!(!second.is_woken());
        // Now alone, the second must be woken by the next change.
        signal.notify_one_more();
        assert!(second.is_woken());
        assert!(second.poll().is_ready());
    }

    #[test]
    fn a_wake_up_lost_with_a_listener_that_left_does_not_silence_the_next_listener() {
        let signal = Signal::new();
        let gone = asleep(&signal);
        signal.notify_one_more();
        // It leaves without taking its wake-up; nobody else listens.
        drop(gone);
        a_new_listener_is_woken_by_the_next_change(&signal);
    }

    #[test]
    fn a_woken_listener_that_leaves_without_looking_passes_the_wake_up_on() {
        let signal = Signal::new();
        let gone = asleep(&signal);
        signal.notify_one_more();
        let mut stays = asleep(&signal);
        // Two listen now; a second change wakes the second.
        signal.notify_one_more();
        assert!(stays.is_woken());
        drop(gone);
        assert!(stays.poll().is_ready());
    }
}
