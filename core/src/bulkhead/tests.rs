use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;
use futures::future::join_all as gather;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn the_number_inside_never_exceeds_the_limit() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(3).max_queued(100).build().unwrap();
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
    let b = Bulkhead::builder(1).max_queued(1).build().unwrap();
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
fn waiters_are_admitted_first_in_first_out() {
    let rt = VirtualRuntime::new();
    let b = Bulkhead::builder(1).max_queued(10).build().unwrap();
    let order = Arc::new(StdMutex::new(Vec::new()));
    let calls = (0..5).map(|i| {
        let (b, order, rt) = (b.clone(), order.clone(), rt.clone());
        async move {
            b.call(async {
                order.lock().unwrap().push(i);
                rt.sleep(ms(10)).await;
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
    let b = Bulkhead::builder(1).max_queued(1).build().unwrap();
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
    let b = Bulkhead::builder(1).max_queued(1).build().unwrap();
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
    let b = Bulkhead::builder(1).max_queued(2).build().unwrap();
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
    let b = Bulkhead::builder(1)
        .max_queued(1)
        .queue_timeout(rt.clone(), ms(40))
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
        Bulkhead::builder(0).build().unwrap_err().setting,
        "max_concurrent"
    );
}

#[test]
fn the_bulkhead_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<Bulkhead>();
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::super::queue::{Entry, Slots};
    use crate::sync::{Arc, AtomicUsize, Ordering};

    #[test]
    fn loom_bulkhead_slots_never_exceed_the_limit() {
        loom::model(|| {
            let slots = Arc::new(Slots::new(1, 0));
            let inside = Arc::new(AtomicUsize::new(0));
            let work = |slots: Arc<Slots>, inside: Arc<AtomicUsize>| {
                move || {
                    if slots.enter(false) == Entry::Inside {
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
}
