use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::task::{Context, Poll};

use super::*;
use crate::gather::gather;
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_number_inside_never_exceeds_the_limit() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 3)
        .max_queued(100)
        .build()
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let calls = (0..20u64).map(|i| {
        let (b, now, peak, rt) = (b.clone(), now.clone(), peak.clone(), rt.clone());
        async move {
            b.call(async {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                rt.sleep(ms(1 + i % 4)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            })
            .await
        }
    });
    let out = rt.block_on(gather(calls)).unwrap();
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!((b.inside(), b.queued()), (0, 0));
}

#[test]
fn a_full_bulkhead_with_a_full_queue_rejects_at_once() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(1)
        .build()
        .unwrap();
    let _inside = b.try_acquire().unwrap();
    let mut waiting = Box::pin(b.acquire());
    let waker = futures::task::noop_waker();
    assert!(
        waiting
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let start = rt.now();
    let err = rt.block_on(b.acquire()).unwrap().unwrap_err();
    assert_eq!(
        err,
        Rejected::Full {
            max_concurrent: 1,
            max_queued: 1
        }
    );
    assert_eq!(rt.now(), start);
}

#[test]
fn a_full_rejection_names_both_limits_and_reads_right_at_one_slot_and_no_queue() {
    let full = Rejected::Full {
        max_concurrent: 1,
        max_queued: 0,
    };
    assert_eq!(
        full.to_string(),
        "rejected: every slot is busy (limit 1) and no queue place is free (limit 0); shed load or raise the limits"
    );
}

#[test]
fn waiters_are_admitted_first_in_first_out() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(10)
        .build()
        .unwrap();
    let order = Arc::new(StdMutex::new(Vec::new()));
    let calls = (0..5).map(|i| {
        let (b, order, rt) = (b.clone(), order.clone(), rt.clone());
        async move {
            b.call(async {
                order.lock().unwrap().push(i);
                rt.sleep(ms(10)).await;
                Ok::<(), ()>(())
            })
            .await
        }
    });
    rt.block_on(gather(calls)).unwrap();
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(rt.now().since_origin(), ms(50));
}

#[test]
fn a_newcomer_never_overtakes_a_waiter() {
    let b = Bulkhead::builder(VirtualRuntime::new(), 1)
        .max_queued(1)
        .build()
        .unwrap();
    let held = b.try_acquire().unwrap();
    let mut waiting = Box::pin(b.acquire());
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(waiting.as_mut().poll(&mut cx).is_pending());
    drop(held); // handed to the waiter
    assert!(b.try_acquire().is_err());
    assert!(matches!(waiting.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
}

#[test]
fn a_cancelled_waiter_leaves_the_queue() {
    let b = Bulkhead::builder(VirtualRuntime::new(), 1)
        .max_queued(1)
        .build()
        .unwrap();
    let held = b.try_acquire().unwrap();
    let mut waiting = Box::pin(b.acquire());
    let waker = futures::task::noop_waker();
    assert!(
        waiting
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert_eq!(b.queued(), 1);
    drop(waiting);
    assert_eq!(b.queued(), 0);
    drop(held);
    assert_eq!(b.inside(), 0);
}

#[test]
fn a_waiter_cancelled_after_being_granted_passes_the_slot_on() {
    let b = Bulkhead::builder(VirtualRuntime::new(), 1)
        .max_queued(2)
        .build()
        .unwrap();
    let held = b.try_acquire().unwrap();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut first = Box::pin(b.acquire());
    let mut second = Box::pin(b.acquire());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    drop(held); // granted to `first`, which never collects it
    drop(first);
    let Poll::Ready(Ok(permit)) = second.as_mut().poll(&mut cx) else {
        panic!("the slot was lost with the cancelled waiter");
    };
    assert_eq!(b.inside(), 1);
    drop(permit);
    assert_eq!(b.inside(), 0);
}

#[test]
fn the_queue_timeout_rejects_a_waiter_exactly_on_time() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(1)
        .queue_timeout(ms(40))
        .build()
        .unwrap();
    let out = rt
        .block_on(async {
            let _held = b.acquire().await.unwrap();
            b.acquire().await
        })
        .unwrap();
    assert_eq!(out.unwrap_err(), Rejected::QueueTimeout { waited: ms(40) });
    assert_eq!(rt.now().since_origin(), ms(40));
    assert_eq!((b.inside(), b.queued()), (0, 0));
}

#[test]
fn a_zero_limit_is_a_config_error() {
    assert_eq!(
        Bulkhead::builder(VirtualRuntime::new(), 0)
            .build()
            .unwrap_err()
            .setting,
        "max_concurrent"
    );
}

#[test]
fn the_bulkhead_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Bulkhead>();
}

/// `n` waiters queue behind a held slot and all time out.
fn waiters_that_all_time_out(n: usize) -> u64 {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(n)
        .queue_timeout(ms(10))
        .build()
        .unwrap();
    let _held = b.try_acquire().unwrap();
    let work = crate::wait_line::touches(|| {
        let out = rt.block_on(gather((0..n).map(|_| b.acquire()))).unwrap();
        assert!(
            out.iter()
                .all(|o| matches!(o, Err(Rejected::QueueTimeout { .. })))
        );
    });
    assert_eq!((b.inside(), b.queued()), (1, 0));
    work
}

/// `n` waiters queue behind a held slot and are handed it one by one.
fn waiters_handed_the_slot_in_turn(n: usize) -> u64 {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(n)
        .build()
        .unwrap();
    let held = b.try_acquire().unwrap();
    let work = crate::wait_line::touches(|| {
        let calls = (0..n).map(|_| b.call(async { Ok::<(), ()>(()) }));
        let out = rt
            .block_on(futures::future::join(gather(calls), async move {
                drop(held);
            }))
            .unwrap();
        assert!(out.0.iter().all(Result::is_ok));
    });
    assert_eq!((b.inside(), b.queued()), (0, 0));
    work
}

#[test]
fn the_work_for_waiters_that_time_out_grows_linearly_with_their_number() {
    // Before: every poll and every leave scanned the queue (2.07 s for
    // 40 000 waiters timing out, 0.19 s for 10 000).
    let (small, large) = (
        waiters_that_all_time_out(10_000),
        waiters_that_all_time_out(40_000),
    );
    assert!(
        large <= 4 * small + 100,
        "{small} entries touched for 10 k, {large} for 40 k"
    );
    assert!(
        small <= 10 * 10_000,
        "{small} entries touched for 10 k waiters"
    );
}

#[test]
fn the_work_to_hand_a_slot_down_a_queue_grows_linearly_with_its_length() {
    let (small, large) = (
        waiters_handed_the_slot_in_turn(10_000),
        waiters_handed_the_slot_in_turn(40_000),
    );
    assert!(
        large <= 4 * small + 100,
        "{small} entries touched for 10 k, {large} for 40 k"
    );
    assert!(
        small <= 10 * 10_000,
        "{small} entries touched for 10 k waiters"
    );
}

#[test]
fn a_waiter_leaving_from_the_middle_keeps_the_others_in_order() {
    let b = Bulkhead::builder(VirtualRuntime::new(), 1)
        .max_queued(3)
        .build()
        .unwrap();
    let held = b.try_acquire().unwrap();
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut w: Vec<_> = (0..3).map(|_| Box::pin(b.acquire())).collect();
    for a in &mut w {
        assert!(a.as_mut().poll(&mut cx).is_pending());
    }
    let mut third = w.pop().unwrap();
    let middle = w.pop().unwrap();
    let mut first = w.pop().unwrap();
    drop(middle);
    assert_eq!(b.queued(), 2);
    drop(held);
    let Poll::Ready(Ok(p1)) = first.as_mut().poll(&mut cx) else {
        panic!("the head waiter was not handed the slot");
    };
    assert!(third.as_mut().poll(&mut cx).is_pending());
    drop(p1);
    assert!(matches!(third.as_mut().poll(&mut cx), Poll::Ready(Ok(_))));
    assert_eq!((b.inside(), b.queued()), (0, 0));
}

#[test]
fn queue_memory_follows_the_waiters_alive_not_the_waiters_ever_seen() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(8)
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..1000 {
            let calls = (0..8).map(|_| b.call(async { Ok::<(), ()>(()) }));
            let held = b.try_acquire().unwrap();
            let (out, ()) = futures::future::join(gather(calls), async move { drop(held) }).await;
            assert!(out.iter().all(Result::is_ok));
        }
    })
    .unwrap();
    assert!(
        b.shared.slots.capacity_in_entries() <= 8,
        "{} entries kept for at most 8 waiters at once",
        b.shared.slots.capacity_in_entries()
    );
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::super::queue::{Entered, Poll, Slots};
    use crate::sync::{Arc, AtomicUsize, Ordering};

    #[test]
    fn loom_bulkhead_slots_never_exceed_the_limit() {
        loom::model(|| {
            let slots = Arc::new(Slots::new(1, 0));
            let inside = Arc::new(AtomicUsize::new(0));
            let work = |slots: Arc<Slots>, inside: Arc<AtomicUsize>| {
                move || {
                    if slots.enter(false) == Entered::Inside {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        inside.fetch_sub(1, Ordering::SeqCst);
                        slots.release();
                    }
                }
            };
            let t = loom::thread::spawn(work(slots.clone(), inside.clone()));
            work(slots.clone(), inside.clone())();
            t.join().unwrap();
            assert_eq!(slots.load(), (0, 0));
        });
    }

    #[test]
    fn loom_a_queued_hand_off_racing_a_leave_and_a_timeout_loses_no_slot() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(3);
        builder.check(|| {
            let slots = Arc::new(Slots::new(1, 2));
            assert_eq!(slots.enter(false), Entered::Inside);
            let (Entered::Queued(a), Entered::Queued(b)) = (slots.enter(true), slots.enter(true))
            else {
                panic!("two waiters fit the queue");
            };
            let inside = Arc::new(AtomicUsize::new(1));
            // The holder leaves: its slot is handed to the head waiter.
            let holder = loom::thread::spawn({
                let (slots, inside) = (slots.clone(), inside.clone());
                move || {
                    inside.fetch_sub(1, Ordering::SeqCst);
                    slots.release();
                }
            });
            // Waiter `a` polls once, then goes away (its future dropped).
            let dropped = loom::thread::spawn({
                let (slots, inside) = (slots.clone(), inside.clone());
                move || {
                    let waker = futures::task::noop_waker();
                    let mine = slots.poll(a, &waker) == Poll::Granted || slots.leave(a);
                    if mine {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two inside");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        slots.release();
                    }
                }
            });
            // Waiter `b`'s queue timeout fires: it leaves, keeping a slot
            // granted at the last moment.
            if slots.leave(b) {
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two inside");
                inside.fetch_sub(1, Ordering::SeqCst);
                slots.release();
            }
            holder.join().unwrap();
            dropped.join().unwrap();
            assert_eq!(slots.load(), (0, 0), "a slot or a waiter was lost");
            assert_eq!(
                slots.enter(false),
                Entered::Inside,
                "the slot is free again"
            );
        });
    }
}

#[test]
fn a_rejection_is_an_event_with_the_rejections_words() {
    use crate::observe::Event;
    let rt = VirtualRuntime::new();
    let (observers, seen) = crate::observe::recording();
    let b = Bulkhead::builder(rt, 1)
        .max_queued(0)
        .name("db")
        .observers(observers)
        .build()
        .unwrap();
    let _inside = b.try_acquire().unwrap();
    let err = b.try_acquire().unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        [Event::CallRejected {
            name: "db".into(),
            reason: err.to_string(),
        }]
    );
}

#[test]
fn a_call_that_panics_inside_frees_its_slot_for_the_next_waiter() {
    use std::future::IntoFuture;
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(rt.clone(), 1)
        .max_queued(1)
        .build()
        .unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(
            b.call(async { panic!("boom") as Result<(), &str> })
                .into_future(),
        )
    }));
    assert!(panicked.is_err());
    assert_eq!((b.inside(), b.queued()), (0, 0), "the slot was given back");
    let out = rt.block_on(b.call(async { Ok::<_, &str>(5) })).unwrap();
    assert_eq!(out.unwrap(), 5);
}
