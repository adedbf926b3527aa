use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::scope::{CancelReason, Cancelled};
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Dropped(Arc<AtomicU32>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_fast_first_attempt_starts_no_hedge() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(50))
        .max_attempts(3)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let out = rt.block_on(hedge.run(|attempt| {
        let n = attempt.number();
        calls.fetch_add(1, Ordering::SeqCst);
        let rt = rt.clone();
        async move {
            rt.sleep(ms(10)).await;
            Ok::<_, ()>(n)
        }
    }));
    assert_eq!(out.unwrap().unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn hedges_start_each_delay_and_the_first_success_wins_and_losers_are_dropped() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(20))
        .max_attempts(3)
        .build()
        .unwrap();
    let starts = Mutex::new(Vec::new());
    let dropped = Arc::new(AtomicU32::new(0));
    let out = rt.block_on(hedge.run(|attempt| {
        let n = attempt.number();
        starts.lock().unwrap().push(rt.now().since_origin());
        let (rt, guard) = (rt.clone(), Dropped(dropped.clone()));
        async move {
            let _guard = guard;
            rt.sleep(ms(if n == 3 { 5 } else { 1000 })).await;
            Ok::<_, ()>(n)
        }
    }));
    assert_eq!(out.unwrap().unwrap(), 3);
    assert_eq!(*starts.lock().unwrap(), [ms(0), ms(20), ms(40)]);
    assert_eq!(rt.now().since_origin(), ms(45));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        3,
        "every attempt is dropped by the end"
    );
}

#[test]
fn a_failed_attempt_starts_the_next_at_once_and_the_last_error_is_returned() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(100))
        .max_attempts(3)
        .build()
        .unwrap();
    let starts = Mutex::new(Vec::new());
    let out = rt.block_on(hedge.run(|attempt| {
        let n = attempt.number();
        starts.lock().unwrap().push(rt.now().since_origin());
        let rt = rt.clone();
        async move {
            rt.sleep(ms(10)).await;
            Err::<(), _>(n)
        }
    }));
    assert_eq!(out.unwrap().unwrap_err().into_inner(), Some(3));
    assert_eq!(*starts.lock().unwrap(), [ms(0), ms(10), ms(20)]);
}

#[test]
fn parallel_mode_starts_every_attempt_at_once() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(Duration::ZERO)
        .max_attempts(4)
        .build()
        .unwrap();
    let started = AtomicU32::new(0);
    let out = rt.block_on(hedge.run(|attempt| {
        let n = attempt.number();
        started.fetch_add(1, Ordering::SeqCst);
        let rt = rt.clone();
        async move {
            rt.sleep(ms(u64::from(50 - n * 10))).await;
            Ok::<_, ()>(n)
        }
    }));
    assert_eq!(out.unwrap().unwrap(), 4);
    assert_eq!(started.load(Ordering::SeqCst), 4);
    assert_eq!(rt.now().since_origin(), ms(10));
}

#[test]
fn a_cancelled_attempt_ends_the_hedge_with_the_cancellation() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(10))
        .max_attempts(3)
        .build()
        .unwrap();
    let out = rt.block_on(hedge.run(|_| {
        crate::Guarded::new(async {
            Err::<(), Error<()>>(Error::Cancelled(Cancelled {
                reason: CancelReason::Shutdown,
            }))
        })
    }));
    assert!(out.unwrap().unwrap_err().is_cancelled());
}

#[test]
fn zero_attempts_is_a_config_error() {
    assert_eq!(
        Hedge::builder(VirtualRuntime::new())
            .max_attempts(0)
            .build()
            .unwrap_err()
            .setting,
        "max_attempts"
    );
}

#[test]
fn a_zero_delay_hedge_is_bounded_at_build_time() {
    let rt = VirtualRuntime::new();
    let too_many = Hedge::builder(rt.clone())
        .delay(Duration::ZERO)
        .max_attempts(Hedge::MAX_ATTEMPTS + 1)
        .build()
        .unwrap_err();
    assert_eq!(too_many.setting, "max_attempts");
    assert!(too_many.to_string().contains("at most 10"), "{too_many}");
    assert!(
        Hedge::builder(rt.clone())
            .max_attempts(u32::MAX)
            .build()
            .is_err()
    );
    // At the bound with a zero delay: exactly MAX_ATTEMPTS start, all at once.
    let hedge = Hedge::builder(rt.clone())
        .delay(Duration::ZERO)
        .max_attempts(Hedge::MAX_ATTEMPTS)
        .build()
        .unwrap();
    let started = AtomicU32::new(0);
    let out = rt.block_on(hedge.run(|_| {
        started.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>("down") }
    }));
    assert!(out.unwrap().is_err());
    assert_eq!(started.load(Ordering::SeqCst), Hedge::MAX_ATTEMPTS);
    assert_eq!(rt.now().since_origin(), Duration::ZERO);
}

#[test]
fn each_hedge_attempt_after_the_first_is_an_event() {
    use crate::observe::Event;
    let rt = VirtualRuntime::new();
    let (observers, seen) = crate::observe::recording();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(20))
        .max_attempts(3)
        .name("search")
        .observers(observers)
        .build()
        .unwrap();
    let out = rt.block_on(hedge.run(|attempt| {
        let n = attempt.number();
        let rt = rt.clone();
        async move {
            rt.sleep(ms(if n == 3 { 5 } else { 1000 })).await;
            Ok::<_, ()>(n)
        }
    }));
    assert_eq!(out.unwrap().unwrap(), 3);
    let started = |attempt| Event::HedgeStarted {
        name: "search".into(),
        attempt,
    };
    assert_eq!(*seen.lock().unwrap(), [started(2), started(3)]);
}

#[test]
fn a_hedge_cancelled_by_its_scope_drops_every_attempt_at_the_deadline() {
    let rt = VirtualRuntime::new();
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(10))
        .max_attempts(3)
        .build()
        .unwrap();
    let dropped = Arc::new(AtomicU32::new(0));
    let scope = crate::scope::CancelScope::new().with_timeout(&rt, ms(25));
    let out = rt.block_on(scope.call(hedge.run(|_| {
        let (rt, guard) = (rt.clone(), Dropped(dropped.clone()));
        async move {
            let _guard = guard;
            rt.sleep(ms(1000)).await;
            Ok::<_, ()>(1)
        }
    })));
    assert!(out.unwrap().unwrap_err().is_cancelled());
    assert_eq!(dropped.load(Ordering::SeqCst), 3, "all three were running");
    assert_eq!(rt.now().since_origin(), ms(25), "ended at the deadline");
}
