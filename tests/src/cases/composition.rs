//! Conformance cases for how hedges, timeouts, scopes and fallbacks nest,
//! on every runtime.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use staunch::fallback::Fallback;
use staunch::hedge::Hedge;
use staunch::retry::{Backoff, Retry};
use staunch::scope::{CancelReason, CancelScope};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{DropCounter, TestRuntime, ms};

/// With a zero delay every attempt starts at once: all of them exist before
/// the first is polled, rather than one per turn of the runtime's timer (a
/// `setTimeout(0)` each in a browser).
pub async fn a_zero_delay_hedge_starts_every_attempt_before_polling_any<R: TestRuntime>(rt: R) {
    let hedge = Hedge::builder(rt.clone())
        .delay(Duration::ZERO)
        .max_attempts(4)
        .build()
        .expect("valid hedge");
    let made = AtomicU32::new(0);
    let seen_at_first_poll = Mutex::new(Vec::new());
    let out = hedge
        .run(|attempt| {
            made.fetch_add(1, Ordering::SeqCst);
            let (made, seen, rt) = (&made, &seen_at_first_poll, rt.clone());
            async move {
                seen.lock().unwrap().push(made.load(Ordering::SeqCst));
                rt.sleep(ms(u64::from(50 - attempt.number() * 10))).await;
                Ok::<_, ()>(attempt.number())
            }
        })
        .await;
    assert_eq!(out.unwrap(), 4, "the fastest wins on {}", R::NAME);
    assert_eq!(
        *seen_at_first_poll.lock().unwrap(),
        [4, 4, 4, 4],
        "on {}",
        R::NAME
    );
}

/// Cancelling the scope around a hedged call drops every attempt still
/// running, at once, and the call ends with the scope's reason.
pub async fn cancelling_a_hedged_call_drops_every_running_attempt<R: TestRuntime>(rt: R) {
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(5))
        .max_attempts(3)
        .build()
        .expect("valid hedge");
    let drops = DropCounter::new();
    let scope = CancelScope::new();
    let stopper = scope.clone();
    let hedged = scope.call(hedge.run(|_| {
        let (rt, guard) = (rt.clone(), drops.guard());
        async move {
            let _guard = guard;
            rt.sleep(Duration::from_secs(30)).await;
            Ok::<_, ()>(())
        }
    }));
    let stop = async {
        rt.sleep(ms(30)).await;
        stopper.cancel_with_message("user pressed stop");
    };
    let before = rt.now();
    let (out, ()) = futures::join!(std::future::IntoFuture::into_future(hedged), stop);
    let err = out.unwrap_err();
    assert!(err.is_cancelled(), "on {}", R::NAME);
    assert!(matches!(
        scope.reason(),
        Some(CancelReason::Explicit { message: Some(_) })
    ));
    assert_eq!(drops.dropped(), 3, "every attempt dropped on {}", R::NAME);
    assert!(rt.now() - before < Duration::from_secs(30));
}

/// Of two nested timeouts the shorter fires and reports its own limit, as
/// the inner (`Ok(Err(..))`) or the outer (`Err(..)`) one; the inner future
/// is dropped either way.
pub async fn of_nested_timeouts_the_shorter_fires_and_reports_itself<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let slow = || {
        let (rt, guard) = (rt.clone(), drops.guard());
        async move {
            let _guard = guard;
            rt.sleep(Duration::from_secs(30)).await;
        }
    };
    let inner_shorter = timeout(&rt, ms(40), timeout(&rt, ms(10), slow())).await;
    assert_eq!(
        inner_shorter,
        Ok(Err(Elapsed { after: ms(10) })),
        "on {}",
        R::NAME
    );
    let outer_shorter = timeout(&rt, ms(10), timeout(&rt, ms(40), slow())).await;
    assert_eq!(
        outer_shorter,
        Err(Elapsed { after: ms(10) }),
        "on {}",
        R::NAME
    );
    assert_eq!(drops.dropped(), 2);
}

/// A scope cancelled while its retry sleeps ends the call at once with the
/// scope's reason; no further attempt starts, however long the backoff.
pub async fn cancelling_a_scope_ends_its_retry_mid_sleep_at_once<R: TestRuntime>(rt: R) {
    let retry = Retry::builder(rt.clone())
        .max_attempts(5)
        .backoff(Backoff::constant(Duration::from_secs(30)))
        .build()
        .expect("valid retry");
    let calls = AtomicU32::new(0);
    let scope = CancelScope::new();
    let stopper = scope.clone();
    let retried = scope.run(retry.run(|_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Err::<(), _>("down") }
    }));
    let stop = async {
        rt.sleep(ms(20)).await;
        stopper.cancel_with_message("shutting down");
    };
    let before = rt.now();
    let (out, ()) = futures::join!(retried, stop);
    let cancelled = out.expect_err("the scope's cancellation, not the retry's error");
    assert!(
        matches!(cancelled.reason, CancelReason::Explicit { .. }),
        "on {}",
        R::NAME
    );
    let took = rt.now() - before;
    assert!(
        took < Duration::from_secs(30),
        "slept on for {took:?} on {}",
        R::NAME
    );
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(20));
    }
    rt.sleep(ms(20)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "on {}", R::NAME);
}

/// A fallback around a retry answers for the retry's failure, never for
/// its cancellation: a scope cancelled during the second attempt ends the
/// retry, and the caller sees the cancellation, not the cached answer.
pub async fn a_fallback_never_answers_for_a_retry_ended_by_cancellation<R: TestRuntime>(rt: R) {
    let retry = Retry::builder(rt.clone())
        .max_attempts(5)
        .backoff(Backoff::constant(ms(10)))
        .build()
        .expect("valid retry");
    let fallback = Fallback::value("cached");
    let calls = AtomicU32::new(0);
    let scope = CancelScope::new();
    let stopper = scope.clone();
    let guarded = fallback.call(retry.run(|_| {
        calls.fetch_add(1, Ordering::SeqCst);
        let rt = rt.clone();
        scope.call(async move {
            rt.sleep(ms(50)).await;
            Err::<&str, _>("down")
        })
    }));
    let stop = async {
        rt.sleep(ms(75)).await;
        stopper.cancel_with_message("shutting down");
    };
    let (out, ()) = futures::join!(guarded.into_future(), stop);
    let error = out.expect_err("the cancellation, not the fallback's answer");
    assert!(error.is_cancelled(), "{error:?} on {}", R::NAME);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "on {}", R::NAME);

    let exhausted = Retry::builder(rt.clone())
        .max_attempts(2)
        .backoff(Backoff::constant(ms(1)))
        .build()
        .expect("valid retry");
    let out = fallback
        .call(exhausted.run(|_| async { Err::<&str, _>("down") }))
        .await;
    assert_eq!(out.expect("the fallback answers a failure"), "cached");
}

/// A zero timeout still polls its future once: a ready future wins, a
/// pending one times out at once, reporting zero.
pub async fn a_zero_timeout_lets_a_ready_future_win_and_fails_a_pending_one<R: TestRuntime>(rt: R) {
    assert_eq!(timeout(&rt, Duration::ZERO, async { 7 }).await, Ok(7));
    let before = rt.now();
    let pending = timeout(&rt, Duration::ZERO, rt.sleep(Duration::from_secs(30))).await;
    assert_eq!(
        pending,
        Err(Elapsed {
            after: Duration::ZERO
        }),
        "on {}",
        R::NAME
    );
    assert!(rt.now() - before < Duration::from_secs(30));
    let failing = staunch::timeout::call(&rt, Duration::ZERO, async { Err::<(), _>("503") }).await;
    assert_eq!(
        failing.unwrap_err().into_inner(),
        Some("503"),
        "on {}",
        R::NAME
    );
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! composition_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? composition::a_zero_delay_hedge_starts_every_attempt_before_polling_any);
        $m!($($($extra)*;)? composition::cancelling_a_hedged_call_drops_every_running_attempt);
        $m!($($($extra)*;)? composition::of_nested_timeouts_the_shorter_fires_and_reports_itself);
        $m!($($($extra)*;)? composition::cancelling_a_scope_ends_its_retry_mid_sleep_at_once);
        $m!($($($extra)*;)? composition::a_fallback_never_answers_for_a_retry_ended_by_cancellation);
        $m!($($($extra)*;)? composition::a_zero_timeout_lets_a_ready_future_win_and_fails_a_pending_one);
    };
}
