//! Conformance cases for timing: `timeout`, `deadline`, `Retry` and fault
//! injection, on every runtime.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use staunch::Error;
use staunch::retry::{Backoff, Decision, Retry, StopReason};
use staunch::runtime::{Instant, SpawnExt};
use staunch::scope::{CancelReason, Cancelled};
use staunch::testing::{Fault, Faults};
use staunch::timeout::{Elapsed, TimeoutExt, deadline, timeout};

use crate::harness::{DropCounter, TestRuntime, eventually, ms};

fn constant<R: TestRuntime>(rt: &R, delay: Duration, attempts: u32) -> Retry {
    Retry::builder(rt.clone())
        .max_attempts(attempts)
        .backoff(Backoff::constant(delay))
        .build()
        .expect("valid policy")
}

/// A failing operation is retried after each backoff delay, no sooner.
pub async fn retry_waits_its_backoff_between_attempts<R: TestRuntime>(rt: R) {
    let retry = constant(&rt, ms(10), 3);
    let starts = Mutex::new(Vec::<Instant>::new());
    let err = retry
        .run(|_| {
            starts.lock().unwrap().push(rt.now());
            async { Err::<(), _>("down") }
        })
        .await
        .unwrap_err();
    assert_eq!(err.attempts(), 3, "on {}", R::NAME);
    assert_eq!(err.stop_reason(), StopReason::MaxAttempts);
    let starts = starts.into_inner().unwrap();
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= ms(10), "retried after only {gap:?} on {}", R::NAME);
        if R::VIRTUAL_TIME {
            assert_eq!(gap, ms(10));
        }
    }
}

/// The first success ends the retries and its value is returned.
pub async fn retry_returns_the_first_success<R: TestRuntime>(rt: R) {
    let retry = constant(&rt, ms(1), 5);
    let calls = AtomicU32::new(0);
    let out = retry
        .run(|attempt| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt.number() < 3 {
                    Err("flaky")
                } else {
                    Ok(attempt.number() * 10)
                }
            }
        })
        .await;
    assert_eq!(out.unwrap(), 30, "on {}", R::NAME);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A cancellation ends the call at once, whatever the classifier says.
pub async fn retry_never_retries_a_cancellation<R: TestRuntime>(rt: R) {
    let retry: Retry = Retry::builder(rt.clone())
        .max_attempts(5)
        .backoff(Backoff::constant(ms(1)))
        .classify(|_: &Error<()>| Decision::Retry)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let err = retry
        .run(|_| {
            staunch::Guarded::new({
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err::<(), Error<()>>(Error::Cancelled(Cancelled {
                        reason: CancelReason::Shutdown,
                    }))
                }
            })
        })
        .await
        .unwrap_err();
    assert!(err.is_cancelled(), "on {}", R::NAME);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Each attempt is bounded by the per-attempt timeout, and timeouts are retried.
pub async fn a_per_attempt_timeout_bounds_each_attempt<R: TestRuntime>(rt: R) {
    let retry: Retry = Retry::builder(rt.clone())
        .max_attempts(2)
        .backoff(Backoff::constant(ms(1)))
        .attempt_timeout(ms(10))
        .build()
        .unwrap();
    let started = rt.now();
    let err = retry
        .run(|_| {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_secs(30)).await;
                Ok::<(), &str>(())
            }
        })
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "on {}", R::NAME);
    assert_eq!(err.attempts(), 2);
    let took = rt.now() - started;
    assert!(took >= ms(21), "took only {took:?} on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(21));
    }
}

/// The budget is a hard limit: no attempt starts at or after its end; the
/// call ends with `Budget` and the last error instead of sleeping up to the
/// end only to start an attempt with no time left.
pub async fn a_retry_budget_stops_the_attempts<R: TestRuntime>(rt: R) {
    let retry: Retry = Retry::builder(rt.clone())
        .max_attempts(1000)
        .budget(ms(100))
        .backoff(Backoff::constant(ms(40)))
        .build()
        .unwrap();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let first = rt.now();
    let err = retry
        .run(|_| {
            starts.lock().unwrap().push(rt.now() - first);
            async { Err::<(), _>("down") }
        })
        .await
        .unwrap_err();
    assert_eq!(err.stop_reason(), StopReason::Budget, "on {}", R::NAME);
    assert_eq!(err.into_inner(), Some("down"));
    let starts = starts.lock().unwrap().clone();
    assert!(
        starts.iter().all(|&at| at < ms(100)),
        "an attempt started at or after the budget's end on {}: {starts:?}",
        R::NAME
    );
    // A real clock may run late, so a loaded machine can fit one fewer.
    assert!((2..=3).contains(&starts.len()), "{starts:?} on {}", R::NAME);
    if R::VIRTUAL_TIME {
        // 0, 40, 80; a fourth would start at 120 ms, past the 100 ms budget.
        assert_eq!(starts, [ms(0), ms(40), ms(80)]);
        assert_eq!(rt.now() - first, ms(80));
    }
}

/// Aborting a retrying task mid-sleep starts no further attempt.
pub async fn aborting_a_retry_mid_sleep_starts_no_further_attempt<R: TestRuntime>(rt: R) {
    let calls = Arc::new(AtomicU32::new(0));
    let retry = constant(&rt, ms(30), 10);
    let handle = rt
        .spawn({
            let calls = calls.clone();
            async move {
                retry
                    .run(|_| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        async { Err::<(), _>("down") }
                    })
                    .await
                    .map_err(|e| e.attempts())
            }
        })
        .unwrap();
    eventually(&rt, "the first attempt", || {
        calls.load(Ordering::SeqCst) >= 1
    })
    .await;
    handle.abort();
    let seen = calls.load(Ordering::SeqCst);
    rt.sleep(ms(80)).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        seen,
        "an attempt started after abort on {}",
        R::NAME
    );
    assert!(seen <= 2);
}

/// One policy, shared by many concurrent callers, serves them all.
pub async fn one_retry_policy_serves_many_concurrent_callers<R: TestRuntime>(rt: R) {
    let retry = constant(&rt, ms(2), 3);
    let mut handles = Vec::new();
    for i in 0..50u32 {
        let retry = retry.clone();
        handles.push(
            rt.spawn(async move {
                retry
                    .run(|a| async move { if a.number() < 2 { Err("once") } else { Ok(i) } })
                    .await
                    .map_err(|e| e.attempts())
            })
            .unwrap(),
        );
    }
    let mut sum = 0;
    for h in handles {
        sum += h.await.unwrap().unwrap();
    }
    assert_eq!(sum, (0..50).sum::<u32>(), "on {}", R::NAME);
}

/// Injected faults fail and delay calls; retry carries the call through.
pub async fn injected_faults_are_retried_until_the_call_passes<R: TestRuntime>(rt: R) {
    let faults = Faults::script([Fault::Fail, Fault::Delay(ms(5)), Fault::Fail]);
    let retry: Retry = Retry::builder(rt.clone())
        .max_attempts(4)
        .backoff(Backoff::constant(ms(1)))
        .attempt_timeout(ms(1000))
        .build()
        .unwrap();
    let out = retry
        .run(|a| {
            let call = faults.inject(&rt, async move { a.number() });
            async move { call.await.map_err(|e| e.call) }
        })
        .await;
    // Attempt 1 fails, 2 is delayed but passes.
    assert_eq!(out.unwrap(), 2, "on {}", R::NAME);
    assert_eq!((faults.calls(), faults.injected()), (2, 2));
}

/// A timeout fires for a slow future and drops it inside the poll that fires.
pub async fn a_firing_timeout_drops_the_inner_future_promptly<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let guard = drops.guard();
    let slow = {
        let rt = rt.clone();
        async move {
            let _guard = guard;
            rt.sleep(Duration::from_secs(60)).await;
        }
    };
    let mut limited = Box::pin(timeout(&rt, ms(10), slow));
    let (out, dropped_when_fired) =
        futures::future::poll_fn(|cx| match limited.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready((out, drops.dropped())),
            Poll::Pending => Poll::Pending,
        })
        .await;
    assert_eq!(out, Err(Elapsed { after: ms(10) }), "on {}", R::NAME);
    assert_eq!(
        dropped_when_fired,
        1,
        "the inner future outlived the timeout on {}",
        R::NAME
    );
}

/// A deadline fires at its instant; a fast future beats it.
pub async fn a_deadline_fires_at_its_instant_and_not_before<R: TestRuntime>(rt: R) {
    let at = rt.now() + ms(15);
    let out = deadline(&rt, at, rt.sleep(Duration::from_secs(60))).await;
    assert!(out.is_err(), "on {}", R::NAME);
    assert!(rt.now() >= at);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), at);
    }
    let fast = async { 9 }.deadline(&rt, rt.now() + ms(15)).await;
    assert_eq!(fast, Ok(9));
    let fast = rt.sleep(ms(1)).timeout(&rt, ms(500)).await;
    assert_eq!(fast, Ok(()));
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! timing_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? timing::retry_waits_its_backoff_between_attempts);
        $m!($($($extra)*;)? timing::retry_returns_the_first_success);
        $m!($($($extra)*;)? timing::retry_never_retries_a_cancellation);
        $m!($($($extra)*;)? timing::a_per_attempt_timeout_bounds_each_attempt);
        $m!($($($extra)*;)? timing::a_retry_budget_stops_the_attempts);
        $m!($($($extra)*;)? timing::aborting_a_retry_mid_sleep_starts_no_further_attempt);
        $m!($($($extra)*;)? timing::one_retry_policy_serves_many_concurrent_callers);
        $m!($($($extra)*;)? timing::injected_faults_are_retried_until_the_call_passes);
        $m!($($($extra)*;)? timing::a_firing_timeout_drops_the_inner_future_promptly);
        $m!($($($extra)*;)? timing::a_deadline_fires_at_its_instant_and_not_before);
    };
}
