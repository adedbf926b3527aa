use crate::fallback::Fallback;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::*;
use crate::breaker::CircuitState;
use crate::retry::Backoff;
use crate::scope::{CancelReason, Cancelled};
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

thread_local! {
    /// This test's runtime (each test runs on a thread of its own).
    static TEST_RT: VirtualRuntime = VirtualRuntime::new();
}

fn test_rt() -> VirtualRuntime {
    TEST_RT.with(VirtualRuntime::clone)
}

fn retry(attempts: u32) -> Retry {
    Retry::builder(test_rt())
        .max_attempts(attempts)
        .backoff(Backoff::constant(ms(10)))
        .retry_circuit_open(true)
        .build()
        .unwrap()
}

#[test]
fn a_retry_around_a_breaker_waits_exactly_the_open_circuits_retry_after() {
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(2)
        .open_duration(Duration::from_secs(1))
        .half_open_probes(1)
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .retry(retry(4))
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let starts = Mutex::new(Vec::new());
    let out = rt.block_on(policy.run(|_| {
        let mut s = starts.lock().unwrap();
        s.push(rt.now().since_origin());
        let n = s.len();
        async move { if n < 3 { Err("down") } else { Ok(n) } }
    }));
    assert_eq!(out.unwrap().unwrap(), 3);
    // Attempt 3 at 20 ms met the open circuit and waited its 990 ms.
    assert_eq!(*starts.lock().unwrap(), [ms(0), ms(10), ms(1010)]);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn cancellation_passes_every_stage_untouched() {
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .timeout(ms(100))
        .retry(retry(5))
        .breaker(breaker.clone())
        .bulkhead(Bulkhead::builder(rt.clone(), 1).build().unwrap())
        .hedge(Hedge::builder(rt.clone()).delay(ms(5)).build().unwrap())
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let run = policy.run(|_| {
        crate::Guarded::new({
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<i32, Error<&str>>(Error::Cancelled(Cancelled {
                    reason: CancelReason::Shutdown,
                }))
            }
        })
    });
    let out = rt.block_on(Fallback::value(0).call(run));
    assert!(out.unwrap().unwrap_err().is_cancelled());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "never retried or hedged");
    assert_eq!(breaker.metrics().calls, 0, "never counted");
}

#[test]
fn a_timeout_below_the_breaker_counts_as_a_failure() {
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .timeout(ms(30))
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let out = rt.block_on(policy.run(|_| async {
        std::future::pending::<()>().await;
        Ok::<(), &str>(())
    }));
    assert!(out.unwrap().unwrap_err().is_timeout());
    assert_eq!(rt.now().since_origin(), ms(30));
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn a_full_bulkhead_is_a_rejection_the_fallback_may_answer() {
    let rt = test_rt();
    let bulkhead = Bulkhead::builder(rt.clone(), 1).build().unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    let plain = Policy::builder(rt.clone())
        .bulkhead(bulkhead.clone())
        .build()
        .unwrap();
    let out = rt.block_on(plain.run(|_| async { Ok::<_, &str>(1) }));
    assert!(out.unwrap().unwrap_err().is_rejected());
    let out = rt.block_on(Fallback::value(0).call(plain.run(|_| async { Ok::<_, &str>(1) })));
    assert_eq!(out.unwrap().unwrap(), 0);
}

#[test]
fn every_hedge_gets_its_own_timeout_and_counts_once_in_the_breaker() {
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone()).build().unwrap();
    let policy = Policy::builder(rt.clone())
        .timeout(ms(100))
        .hedge(
            Hedge::builder(rt.clone())
                .delay(ms(60))
                .max_attempts(2)
                .build()
                .unwrap(),
        )
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let out = rt.block_on(policy.run(|_| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let rt = rt.clone();
        async move {
            rt.sleep(ms(if n == 0 { 1000 } else { 70 })).await;
            Ok::<_, &str>(n)
        }
    }));
    // The first attempt would time out at 100; the hedge (60 + 70) wins.
    assert_eq!(out.unwrap().unwrap(), 1);
    assert_eq!(rt.now().since_origin(), ms(130));
    assert_eq!(breaker.metrics().calls, 1);
}

#[test]
fn a_zero_timeout_is_a_config_error() {
    let rt = test_rt();
    let err = Policy::builder(rt)
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.setting, "timeout");
}

#[test]
fn a_policy_call_is_send_and_the_policy_is_shareable() {
    fn send<T: Send>(_: &T) {}
    fn share<T: Clone + Send + Sync>() {}
    share::<Policy>();
    let rt = test_rt();
    let policy = Policy::builder(rt.clone())
        .retry(Retry::new(rt))
        .build()
        .unwrap();
    let fut = policy.run(|_| async { Ok::<_, &str>(1) });
    send(&fut);
}

#[test]
fn a_retry_can_wait_out_a_rate_limit_with_its_retry_after_hint() {
    use crate::rate::{Rate, RateLimiter};
    use crate::retry::Decision;
    let rt = test_rt();
    let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(10))
        .burst(1)
        .max_wait(Duration::ZERO)
        .build()
        .unwrap();
    let retry = Retry::builder(rt.clone())
        .max_attempts(3)
        .classify(|e: &Error<&str>| match e {
            Error::RateLimited(limited) => Decision::RetryAfter(limited.retry_after),
            other => Decision::by_default(other),
        })
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .retry(retry)
        .rate_limit(limiter.clone())
        .build()
        .unwrap();
    let starts = Mutex::new(Vec::new());
    let run = || {
        starts.lock().unwrap().push(rt.now());
        async { Ok::<_, &str>(()) }
    };
    rt.block_on(async {
        policy.run(|_| run()).await.unwrap();
        // The second call is refused once, then retried exactly when the
        // limiter said it would admit it.
        policy.run(|_| run()).await.unwrap();
    })
    .unwrap();
    let starts = starts.lock().unwrap();
    assert_eq!(starts.len(), 2, "a refused attempt never ran the operation");
    assert_eq!(starts[1] - starts[0], ms(100));
}

#[test]
fn a_rate_limit_refusal_is_an_error_of_its_own_and_never_reaches_the_breaker() {
    use crate::rate::{Rate, RateLimiter};
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .rate_limit(
            RateLimiter::builder(rt.clone(), Rate::per_second(1))
                .burst(1)
                .max_wait(Duration::ZERO)
                .build()
                .unwrap(),
        )
        .breaker(breaker.clone())
        .build()
        .unwrap();
    rt.block_on(async {
        policy.run(|_| async { Ok::<_, &str>(()) }).await.unwrap();
        for _ in 0..3 {
            let out = policy.run(|_| async { Ok::<_, &str>(()) }).await;
            let Err(Error::RateLimited(limited)) = out else {
                panic!("expected a rate-limit refusal, got {out:?}")
            };
            assert!(limited.retry_after > Duration::ZERO);
        }
    })
    .unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn a_concurrency_limit_in_a_policy_learns_from_timeouts_but_not_from_cancellation() {
    use crate::adaptive::{Aimd, ConcurrencyLimit};
    let rt = test_rt();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(0.5))
        .initial_limit(8)
        .build()
        .unwrap();
    let policy = Policy::builder(rt.clone())
        .timeout(ms(10))
        .concurrency_limit(limit.clone())
        .build()
        .unwrap();
    let slow = || {
        let rt = rt.clone();
        async move {
            rt.sleep(ms(50)).await;
            Ok::<_, &str>(())
        }
    };
    rt.block_on(async {
        // Cancelled by the caller before the timeout: teaches nothing.
        let _ = crate::timeout::timeout(&rt, ms(5), policy.run(|_| slow())).await;
        assert_eq!(limit.limit(), 8);
        assert_eq!(limit.inside(), 0);
        // Timed out inside the policy: drops. The limit moves once per
        // round trip, so after two timeouts one round trip apart it halves.
        for _ in 0..2 {
            let out = policy.run(|_| slow()).await;
            assert!(out.unwrap_err().is_timeout());
        }
        assert_eq!(limit.limit(), 4);
    })
    .unwrap();
}

/// The hedge's own example routes each copy by its number; in a policy that
/// hedges without retrying every copy was told it was attempt 1.
#[test]
fn in_a_policy_each_hedge_is_told_which_copy_it_is() {
    let rt = test_rt();
    let hedge = || {
        Hedge::builder(rt.clone())
            .delay(ms(10))
            .max_attempts(3)
            .build()
            .unwrap()
    };
    let seen = Mutex::new(Vec::new());
    let slow = |a: Attempt| {
        seen.lock()
            .unwrap()
            .push((a.number(), a.hedge(), a.elapsed()));
        let rt = rt.clone();
        async move {
            rt.sleep(ms(25)).await;
            Err::<(), _>("slow")
        }
    };
    let hedged_only = Policy::builder(rt.clone()).hedge(hedge()).build().unwrap();
    let _ = rt.block_on(hedged_only.run(slow));
    assert_eq!(
        std::mem::take(&mut *seen.lock().unwrap()),
        [(1, 1, ms(0)), (2, 2, ms(10)), (3, 3, ms(20))],
        "as Hedge::run numbers them"
    );
    // With a retry around the hedge: the retry's number, the copy, and the
    // time since the call's first attempt.
    let both = Policy::builder(rt.clone())
        .retry(retry(2))
        .hedge(hedge())
        .build()
        .unwrap();
    let _ = rt.block_on(both.run(slow));
    let seen = seen.into_inner().unwrap();
    let numbers: Vec<_> = seen.iter().map(|s| (s.0, s.1)).collect();
    assert_eq!(numbers, [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]);
    // Attempt 1's copies fail at 25, 35, 45; the retry waits 10 ms.
    assert_eq!(seen[3].2, ms(55), "{seen:?}");
    assert_eq!(seen[5].2, ms(75));
}

/// The promise on [`Policy`]: a call dropped mid-attempt drops the attempt
/// and its hedges, frees their bulkhead slots, counts nothing in the
/// breaker, and starts no retry later.
#[test]
fn a_dropped_call_drops_its_hedges_frees_the_bulkhead_and_counts_nothing() {
    let rt = test_rt();
    let breaker = CircuitBreaker::builder(rt.clone()).build().unwrap();
    let bulkhead = Bulkhead::builder(rt.clone(), 4).build().unwrap();
    let policy = Policy::builder(rt.clone())
        .retry(retry(3))
        .breaker(breaker.clone())
        .hedge(
            Hedge::builder(rt.clone())
                .delay(ms(5))
                .max_attempts(3)
                .build()
                .unwrap(),
        )
        .bulkhead(bulkhead.clone())
        .build()
        .unwrap();
    let (started, dropped) = (AtomicU32::new(0), std::sync::Arc::new(AtomicU32::new(0)));
    struct Guard(std::sync::Arc<AtomicU32>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let call = policy.run(|_| {
        started.fetch_add(1, Ordering::SeqCst);
        let (rt, guard) = (rt.clone(), Guard(dropped.clone()));
        async move {
            let _guard = guard;
            rt.sleep(Duration::from_secs(60)).await;
            Ok::<_, &str>(())
        }
    });
    let out = rt
        .block_on(crate::timeout::timeout(&rt, ms(12), call))
        .unwrap();
    assert!(out.is_err(), "the outer timeout fired first");
    assert_eq!(
        started.load(Ordering::SeqCst),
        3,
        "the first and two hedges"
    );
    assert_eq!(dropped.load(Ordering::SeqCst), 3);
    assert_eq!(bulkhead.inside(), 0);
    assert_eq!(breaker.metrics().calls, 0);
    rt.block_on(rt.sleep(Duration::from_secs(1))).unwrap();
    assert_eq!(started.load(Ordering::SeqCst), 3, "no retry after the drop");
}

/// The policy's timeout is per attempt; an overall limit goes around the
/// call with `timeout::call`, which ends it mid-backoff, flat.
#[test]
fn an_overall_timeout_around_a_policy_cuts_its_retries_short() {
    let rt = test_rt();
    let policy = Policy::builder(rt.clone())
        .timeout(ms(30))
        .retry(
            Retry::builder(rt.clone())
                .max_attempts(10)
                .backoff(Backoff::constant(ms(20)))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let call = policy.run(|_| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<Result<(), &str>>()
    });
    let err = rt
        .block_on(crate::timeout::call(&rt, ms(120), call))
        .unwrap()
        .unwrap_err();
    // Attempts at 0, 50 and 100 each time out after 30 ms; at 120 ms the
    // overall limit ends the third attempt.
    assert!(
        matches!(err, Error::Timeout(crate::timeout::Elapsed { after }) if after == ms(120)),
        "{err:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(rt.now().since_origin(), ms(120));
}
