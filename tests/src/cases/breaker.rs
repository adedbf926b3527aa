//! Conformance cases for `breaker`, `bulkhead`, `fallback`, `hedge` and
//! `policy`, on every runtime.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::Error;
use staunch::adaptive::{Aimd, ConcurrencyLimit};
use staunch::breaker::{CircuitBreaker, CircuitState};
use staunch::bulkhead::{Bulkhead, Rejected};
use staunch::fallback::Fallback;
use staunch::gather::gather as join_all;
use staunch::hedge::Hedge;
use staunch::policy::Policy;
use staunch::retry::{Backoff, Retry};
use staunch::runtime::SpawnExt;
use staunch::scope::{CancelReason, Cancelled};
use staunch::timeout::timeout;

use crate::harness::{Gauge, TestRuntime, ms};

fn cancelled<E>() -> Error<E> {
    Error::Cancelled(Cancelled {
        reason: CancelReason::Shutdown,
    })
}

fn tripping<R: TestRuntime>(rt: &R, open: Duration, probes: u32) -> CircuitBreaker {
    CircuitBreaker::builder(rt.clone())
        .consecutive_failures(2)
        .open_duration(open)
        .half_open_probes(probes)
        .build()
        .expect("valid breaker")
}

/// Consecutive failures open the breaker; an open breaker refuses at once
/// without running the call.
pub async fn breaker_opens_on_failures_and_refuses_without_running<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, Duration::from_secs(60), 1);
    for _ in 0..2 {
        let out = breaker.call(async { Err::<(), _>("down") }).await;
        assert_eq!(out.unwrap_err().into_inner(), Some("down"));
    }
    assert_eq!(breaker.state(), CircuitState::Open, "on {}", R::NAME);
    let ran = AtomicU32::new(0);
    let before = rt.now();
    let out = breaker
        .call(async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, &str>(())
        })
        .await;
    let Err(Error::CircuitOpen(open)) = out else {
        panic!("an open breaker admitted a call on {}", R::NAME)
    };
    assert!(open.retry_after > Duration::from_secs(50));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), before, "refusing must not wait");
    }
}

/// After the open duration the breaker admits a probe, and a successful
/// probe closes it again.
pub async fn breaker_probes_after_the_open_duration_and_closes_on_success<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, ms(20), 1);
    for _ in 0..2 {
        let _ = breaker.call(async { Err::<(), _>("down") }).await;
    }
    let opened = rt.now();
    assert!(breaker.try_acquire().is_err());
    rt.sleep(ms(20)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen, "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), opened + ms(20));
    }
    let out = breaker.call(async { Ok::<_, &str>(5) }).await;
    assert_eq!(out.unwrap(), 5);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// Half-open admits exactly its probes, however many callers race for them.
pub async fn breaker_half_open_admits_exactly_its_probes_to_racing_callers<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, ms(10), 2);
    for _ in 0..2 {
        let _ = breaker.call(async { Err::<(), _>("down") }).await;
    }
    rt.sleep(ms(10)).await;
    let ran = AtomicU32::new(0);
    let calls = (0..8).map(|_| {
        breaker.call(async {
            ran.fetch_add(1, Ordering::SeqCst);
            rt.sleep(ms(5)).await;
            Ok::<_, &str>(())
        })
    });
    let outs = join_all(calls).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2, "on {}", R::NAME);
    assert_eq!(outs.iter().filter(|o| o.is_ok()).count(), 2);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// A cancelled call, or one dropped before it finished, is never counted.
pub async fn breaker_never_counts_a_cancelled_or_dropped_call<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, Duration::from_secs(60), 1);
    for _ in 0..5 {
        let out = breaker
            .call(staunch::Guarded::new(async {
                Err::<(), _>(cancelled::<&str>())
            }))
            .await;
        assert!(out.unwrap_err().is_cancelled());
        let hung = breaker.call(rt.sleep(Duration::from_secs(60)).then_ok());
        assert!(timeout(&rt, ms(2), hung).await.is_err());
    }
    assert_eq!(breaker.state(), CircuitState::Closed, "on {}", R::NAME);
    assert_eq!(breaker.metrics().calls, 0);
}

/// A cancellation passes through a breaker, a bulkhead and an adaptive
/// limit stacked on each other untouched (same kind, same reason), and
/// none of them counts it: no failure, no slot kept, no lesson learned;
/// a half-open probe cancelled mid-call gives its slot back.
pub async fn guards_pass_cancellation_through_untouched_and_count_nothing<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, ms(20), 1);
    let bulkhead = Bulkhead::builder(rt.clone(), 1).build().expect("valid");
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(0.5))
        .initial_limit(4)
        .build()
        .expect("valid");
    let reason = CancelReason::Explicit {
        message: Some("user left".into()),
    };
    for _ in 0..3 {
        let cancelled = staunch::Guarded::new(async {
            Err::<(), _>(Error::<&str>::Cancelled(Cancelled {
                reason: reason.clone(),
            }))
        });
        let out = breaker.call(bulkhead.call(limit.call(cancelled))).await;
        let Err(Error::Cancelled(got)) = out else {
            panic!("cancellation was changed on its way out on {}", R::NAME)
        };
        assert_eq!(got.reason, reason);
    }
    assert_eq!(breaker.metrics().calls, 0, "on {}", R::NAME);
    assert_eq!((bulkhead.inside(), limit.inside()), (0, 0));
    assert_eq!(limit.limit(), 4, "a cancellation is no sign of overload");

    // Half-open, one probe: cancelled mid-call, it frees the slot.
    for _ in 0..2 {
        let _ = breaker.call(async { Err::<(), _>("down") }).await;
    }
    rt.sleep(ms(20)).await;
    assert_eq!(breaker.state(), CircuitState::HalfOpen, "on {}", R::NAME);
    let probe = breaker.call(rt.sleep(Duration::from_secs(60)).then_ok());
    assert!(timeout(&rt, ms(2), probe).await.is_err());
    assert_eq!(breaker.state(), CircuitState::HalfOpen, "not counted");
    let out = breaker.call(async { Ok::<_, &str>(1) }).await;
    assert_eq!(out.expect("the probe slot came back"), 1);
    assert_eq!(breaker.state(), CircuitState::Closed);
}

/// A half-open breaker of a service called less often than its probe
/// timeout still closes once its probes succeed (resilience4j 2028): the
/// timeout reopens it only for a probe stuck in flight.
pub async fn breaker_half_open_waits_for_a_quiet_services_probes_instead_of_reopening<
    R: TestRuntime,
>(
    rt: R,
) {
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(ms(10))
        .half_open_probes(2)
        .probe_timeout(ms(5))
        .build()
        .expect("valid breaker");
    let _ = breaker.call(async { Err::<(), _>("down") }).await;
    rt.sleep(ms(10)).await;
    for _ in 0..2 {
        assert_eq!(breaker.state(), CircuitState::HalfOpen, "on {}", R::NAME);
        let out = breaker.call(async { Ok::<_, &str>(()) }).await;
        assert!(out.is_ok(), "a quiet half-open breaker refused a probe");
        rt.sleep(ms(15)).await; // three probe timeouts without a call
    }
    assert_eq!(breaker.state(), CircuitState::Closed, "on {}", R::NAME);
    // A probe stuck in flight still reopens it.
    let _ = breaker.call(async { Err::<(), _>("down") }).await;
    rt.sleep(ms(10)).await;
    let stuck = breaker.call(rt.sleep(Duration::from_secs(60)).then_ok());
    let (_, state) = futures::join!(timeout(&rt, ms(20), stuck), async {
        rt.sleep(ms(10)).await;
        breaker.state()
    });
    assert_eq!(state, CircuitState::Open, "on {}", R::NAME);
}

/// One breaker shared by tasks spawned on the runtime (threads, where it
/// has them) sees every failure and opens.
pub async fn a_breaker_shared_by_spawned_tasks_opens_once_for_all<R: TestRuntime>(rt: R) {
    let breaker = CircuitBreaker::builder(rt.clone())
        .count_window(10)
        .minimum_calls(10)
        .build()
        .expect("valid breaker");
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let breaker = breaker.clone();
            rt.spawn(async move {
                let out = breaker.call(async { Err::<(), _>("down") }).await;
                out.map_err(|e| format!("{e:?}"))
            })
            .expect("spawn")
        })
        .collect();
    for h in handles {
        let _ = h.await;
    }
    assert_eq!(breaker.state(), CircuitState::Open, "on {}", R::NAME);
}

/// A bulkhead never has more calls inside than its limit; queued callers
/// get in first come, first served.
pub async fn bulkhead_never_lets_more_than_its_limit_inside<R: TestRuntime>(rt: R) {
    let bulkhead = Bulkhead::builder(rt.clone(), 3)
        .max_queued(20)
        .build()
        .expect("valid");
    let gauge = Gauge::new();
    let calls = (0..12).map(|_| {
        bulkhead.call(async {
            let _inside = gauge.enter();
            rt.sleep(ms(2)).await;
            Ok::<(), ()>(())
        })
    });
    let outs = join_all(calls).await;
    assert!(outs.iter().all(Result::is_ok), "on {}", R::NAME);
    assert_eq!(gauge.peak(), 3);
    assert_eq!((bulkhead.inside(), bulkhead.queued()), (0, 0));
}

/// Over its queue a bulkhead rejects at once; a queued caller that waits
/// too long is rejected with a queue timeout.
pub async fn bulkhead_rejects_when_full_and_times_out_waiters<R: TestRuntime>(rt: R) {
    let bulkhead = Bulkhead::builder(rt.clone(), 1)
        .max_queued(1)
        .queue_timeout(ms(15))
        .build()
        .expect("valid");
    let _held = bulkhead.acquire().await.expect("a free slot");
    let before = rt.now();
    let (waiter, newcomer) = futures::join!(bulkhead.acquire(), async {
        crate::harness::yield_now().await;
        bulkhead.call(async { Ok::<(), ()>(()) }).await
    });
    assert!(
        matches!(newcomer, Err(Error::Rejected(Rejected::Full { .. }))),
        "on {}",
        R::NAME
    );
    assert!(matches!(waiter, Err(Rejected::QueueTimeout { .. })));
    assert!(rt.now() - before >= ms(15));
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - before, ms(15));
    }
    assert_eq!(bulkhead.queued(), 0);
}

/// A fallback answers a failure but never a cancellation.
pub async fn fallback_answers_failures_but_never_cancellation<R: TestRuntime>(rt: R) {
    let fallback = Fallback::value("cached");
    let out = fallback
        .call(async {
            rt.sleep(ms(1)).await;
            Err::<&str, _>("503")
        })
        .await;
    assert_eq!(out.unwrap(), "cached", "on {}", R::NAME);
    let out = fallback
        .call(staunch::Guarded::new(async {
            Err::<&str, Error<&str>>(cancelled())
        }))
        .await;
    assert!(out.unwrap_err().is_cancelled());
}

/// A slow first attempt gets a hedge after the delay; the first success wins.
pub async fn hedge_starts_another_attempt_when_the_first_is_slow<R: TestRuntime>(rt: R) {
    let hedge = Hedge::builder(rt.clone())
        .delay(ms(10))
        .max_attempts(2)
        .build()
        .expect("valid");
    let before = rt.now();
    let out = hedge
        .run(|attempt| {
            let n = attempt.number();
            let rt = rt.clone();
            async move {
                rt.sleep(if n == 1 {
                    Duration::from_secs(30)
                } else {
                    ms(5)
                })
                .await;
                Ok::<_, ()>(n)
            }
        })
        .await;
    assert_eq!(out.unwrap(), 2, "on {}", R::NAME);
    let took = rt.now() - before;
    assert!(took >= ms(15) && took < Duration::from_secs(30));
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(15));
    }
}

/// A retry around a breaker waits out the open circuit's `retry_after`
/// instead of hammering it, then succeeds through a probe.
pub async fn policy_retry_waits_out_an_open_breaker<R: TestRuntime>(rt: R) {
    let breaker = tripping(&rt, ms(30), 1);
    let policy = Policy::builder(rt.clone())
        .retry(
            Retry::builder(rt.clone())
                .max_attempts(4)
                .backoff(Backoff::constant(ms(1)))
                .retry_circuit_open(true)
                .build()
                .expect("valid"),
        )
        .breaker(breaker.clone())
        .build()
        .expect("valid");
    let calls = Arc::new(Mutex::new(Vec::new()));
    let out = policy
        .run(|_| {
            let mut c = calls.lock().unwrap();
            c.push(rt.now());
            let n = c.len();
            async move { if n < 3 { Err("down") } else { Ok(n) } }
        })
        .await;
    assert_eq!(out.unwrap(), 3, "on {}", R::NAME);
    let calls = calls.lock().unwrap();
    assert!(
        calls[2] - calls[1] >= ms(30),
        "the retry hammered an open circuit"
    );
    assert_eq!(breaker.state(), CircuitState::Closed);
}

trait ThenOk: std::future::Future<Output = ()> + Sized {
    async fn then_ok(self) -> Result<(), &'static str> {
        self.await;
        Ok(())
    }
}
impl<F: std::future::Future<Output = ()>> ThenOk for F {}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! breaker_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? breaker::breaker_opens_on_failures_and_refuses_without_running);
        $m!($($($extra)*;)? breaker::breaker_probes_after_the_open_duration_and_closes_on_success);
        $m!($($($extra)*;)? breaker::breaker_half_open_admits_exactly_its_probes_to_racing_callers);
        $m!($($($extra)*;)? breaker::breaker_never_counts_a_cancelled_or_dropped_call);
        $m!($($($extra)*;)? breaker::guards_pass_cancellation_through_untouched_and_count_nothing);
        $m!($($($extra)*;)? breaker::breaker_half_open_waits_for_a_quiet_services_probes_instead_of_reopening);
        $m!($($($extra)*;)? breaker::a_breaker_shared_by_spawned_tasks_opens_once_for_all);
        $m!($($($extra)*;)? breaker::bulkhead_never_lets_more_than_its_limit_inside);
        $m!($($($extra)*;)? breaker::bulkhead_rejects_when_full_and_times_out_waiters);
        $m!($($($extra)*;)? breaker::fallback_answers_failures_but_never_cancellation);
        $m!($($($extra)*;)? breaker::hedge_starts_another_attempt_when_the_first_is_slow);
        $m!($($($extra)*;)? breaker::policy_retry_waits_out_an_open_breaker);
    };
}
