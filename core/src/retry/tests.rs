use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::Error;
use crate::breaker::CircuitOpen;
use crate::bulkhead::Rejected;
use crate::observe::{Event, Observers};
use crate::runtime::{Instant, Timer};
use crate::scope::{CancelReason, Cancelled};
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

thread_local! {
    /// This test's runtime (each test runs on a thread of its own), for
    /// retries built in helpers that take no runtime.
    static TEST_RT: VirtualRuntime = VirtualRuntime::new();
}

fn test_rt() -> VirtualRuntime {
    TEST_RT.with(VirtualRuntime::clone)
}

/// The instants (since the call began) at which each attempt started, for
/// an operation that always fails, under `retry`.
fn starts(retry: &Retry) -> (Vec<Duration>, RetryError<&'static str>) {
    let rt = test_rt();
    let start = rt.now();
    let seen = Mutex::new(Vec::new());
    let out = rt
        .block_on(retry.run(|_| {
            seen.lock().unwrap().push(rt.now() - start);
            async { Err::<(), _>("down") }
        }))
        .expect("no deadlock");
    (seen.into_inner().unwrap(), out.unwrap_err())
}

fn policy(backoff: BackoffBuilder, attempts: u32) -> Retry {
    Retry::builder(test_rt())
        .max_attempts(attempts)
        .backoff(backoff)
        .build()
        .unwrap()
}

fn gaps(starts: &[Duration]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn constant_backoff_starts_attempts_at_exact_instants() {
    let (s, err) = starts(&policy(Backoff::constant(ms(250)), 4));
    assert_eq!(s, [ms(0), ms(250), ms(500), ms(750)]);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.stop_reason(), StopReason::MaxAttempts);
}

#[test]
fn linear_backoff_starts_attempts_at_exact_instants() {
    let (s, _) = starts(&policy(Backoff::linear(ms(100), ms(50)), 5));
    assert_eq!(s, [ms(0), ms(100), ms(250), ms(450), ms(700)]);
}

#[test]
fn exponential_backoff_starts_attempts_at_exact_instants_and_caps() {
    let b = Backoff::exponential(ms(100))
        .factor(3.0)
        .max_delay(ms(1000));
    let (s, _) = starts(&policy(b, 6));
    assert_eq!(gaps(&s), [ms(100), ms(300), ms(900), ms(1000), ms(1000)]);
    assert_eq!(s[5], ms(3300));
}

#[test]
fn fractional_factors_round_to_the_nanosecond() {
    let b = Backoff::exponential(us(1000)).factor(1.5);
    let d: Vec<_> = b.build().unwrap().take(4).collect();
    assert_eq!(d, [us(1000), us(1500), us(2250), us(3375)]);
}

#[test]
fn fibonacci_backoff_starts_attempts_at_exact_instants() {
    let (s, _) = starts(&policy(Backoff::fibonacci(ms(10)), 7));
    assert_eq!(gaps(&s), [ms(10), ms(10), ms(20), ms(30), ms(50), ms(80)]);
}

fn jittered(jitter: Jitter) -> BackoffBuilder {
    Backoff::exponential(ms(100))
        .max_delay(ms(1000))
        .jitter(jitter)
        .seed(42)
}

fn nanos(v: &[u64]) -> Vec<Duration> {
    v.iter().map(|&n| Duration::from_nanos(n)).collect()
}

#[test]
fn full_jitter_replays_its_seeded_schedule_exactly() {
    let (s, _) = starts(&policy(jittered(Jitter::Full), 6));
    let want = [
        0,
        74_156_488,
        106_138_566,
        217_579_018,
        492_931_591,
        530_961_759,
    ];
    assert_eq!(s, nanos(&want));
}

#[test]
fn equal_jitter_replays_its_seeded_schedule_exactly() {
    let (s, _) = starts(&policy(jittered(Jitter::Equal), 6));
    let want = [
        0,
        87_078_244,
        203_069_283,
        458_789_509,
        996_465_795,
        1_515_480_879,
    ];
    assert_eq!(s, nanos(&want));
}

#[test]
fn decorrelated_jitter_replays_its_seeded_schedule_exactly() {
    let (s, _) = starts(&policy(jittered(Jitter::Decorrelated), 6));
    let want = [
        0,
        248_312_976,
        451_445_413,
        693_364_079,
        1_008_743_484,
        1_140_922_262,
    ];
    assert_eq!(s, nanos(&want));
}

#[test]
fn the_schedule_of_a_first_run_is_the_seeded_backoff_itself() {
    let delays: Vec<_> = jittered(Jitter::Full).build().unwrap().take(5).collect();
    let (s, _) = starts(&policy(jittered(Jitter::Full), 6));
    assert_eq!(gaps(&s), delays);
}

#[test]
fn later_runs_of_a_shared_policy_get_their_own_jitter() {
    let retry = policy(jittered(Jitter::Full), 4);
    let (first, _) = starts(&retry);
    let (second, _) = starts(&retry.clone());
    assert_ne!(first, second);
}

#[test]
fn a_factor_of_ten_over_a_thousand_steps_saturates_at_the_cap() {
    let b = Backoff::exponential(ms(1))
        .factor(10.0)
        .max_delay(Duration::MAX);
    let last = b.build().unwrap().take(1000).last().unwrap();
    assert_eq!(last, Duration::MAX, "grows past the u64 nanosecond cap");
    let capped = Backoff::exponential(ms(1)).factor(10.0).max_delay(ms(500));
    assert!(
        capped
            .build()
            .unwrap()
            .take(1000)
            .skip(3)
            .all(|d| d == ms(500))
    );
    let fib = Backoff::fibonacci(Duration::from_secs(1 << 40)).max_delay(Duration::MAX);
    assert!(fib.build().unwrap().take(1000).count() == 1000);
    let lin = Backoff::linear(Duration::MAX / 2, Duration::MAX).max_delay(Duration::MAX);
    assert_eq!(lin.build().unwrap().nth(500), Some(Duration::MAX));
}

#[test]
fn max_count_ends_the_backoff_and_the_retries() {
    let b = Backoff::constant(ms(5)).max_count(2);
    assert_eq!(b.build().unwrap().count(), 2);
    let (s, err) = starts(&policy(b, 10));
    assert_eq!(s, [ms(0), ms(5), ms(10)]);
    assert_eq!(err.stop_reason(), StopReason::BackoffEnded);
}

#[test]
fn the_default_cap_is_ten_seconds_or_the_initial_delay() {
    assert_eq!(
        Backoff::exponential(ms(1)).build().unwrap().max_delay(),
        Duration::from_secs(10)
    );
    assert_eq!(
        Backoff::constant(Duration::from_secs(30))
            .build()
            .unwrap()
            .max_delay(),
        Duration::from_secs(30)
    );
}

#[test]
fn bad_backoff_settings_are_config_errors() {
    let bad = [
        Backoff::exponential(ms(1)).factor(0.5),
        Backoff::exponential(ms(1)).factor(f64::NAN),
        Backoff::exponential(ms(1)).factor(f64::INFINITY),
        Backoff::constant(ms(1)).factor(2.0),
        Backoff::exponential(ms(10)).max_delay(ms(5)),
        Backoff::exponential(Duration::ZERO),
        Backoff::fibonacci(Duration::ZERO),
        Backoff::constant(Duration::ZERO).jitter(Jitter::Decorrelated),
        Backoff::constant(ms(1)).max_count(0),
    ];
    for b in bad {
        assert!(b.build().is_err(), "{b:?} should be rejected");
    }
    assert!(Backoff::constant(Duration::ZERO).build().is_ok());
    let e = Backoff::exponential(ms(10))
        .max_delay(ms(5))
        .build()
        .unwrap_err();
    assert_eq!(e.setting, "max_delay");
}

#[test]
fn bad_retry_settings_are_config_errors() {
    assert_eq!(
        Retry::builder(test_rt())
            .max_attempts(0)
            .build()
            .unwrap_err()
            .setting,
        "max_attempts"
    );
    assert_eq!(
        Retry::builder(test_rt())
            .budget(Duration::ZERO)
            .build()
            .unwrap_err()
            .setting,
        "budget"
    );
    assert_eq!(
        Retry::builder(test_rt())
            .attempt_timeout(Duration::ZERO)
            .build()
            .unwrap_err()
            .setting,
        "attempt_timeout"
    );
    assert_eq!(
        Retry::builder(test_rt())
            .backoff(Backoff::exponential(ms(1)).factor(0.1))
            .build()
            .unwrap_err()
            .setting,
        "factor"
    );
}

#[test]
fn the_defaults_make_three_attempts_with_full_jitter_under_the_exponential_curve() {
    let retry: Retry = Retry::builder(test_rt()).seed(9).build().unwrap();
    assert_eq!(retry.max_attempts(), 3);
    let (s, err) = starts(&retry);
    assert_eq!(err.attempts(), 3);
    let g = gaps(&s);
    assert!(g[0] <= ms(100) && g[1] <= ms(200), "{g:?}");
    assert!(Retry::new(test_rt()).max_attempts() == 3);
}

#[test]
fn a_success_after_failures_returns_the_value() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(1)), 5);
    let out = rt.block_on(retry.run(|a| async move {
        if a.number() < 4 {
            Err("no")
        } else {
            Ok(a.number())
        }
    }));
    assert_eq!(out.unwrap().unwrap(), 4);
}

fn cancelled() -> Error<&'static str> {
    Error::Cancelled(Cancelled {
        reason: CancelReason::Shutdown,
    })
}

#[test]
fn cancellation_is_never_retried_even_if_a_custom_classifier_says_retry() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(5)
        .classify(|_: &Error<&str>| Decision::Retry)
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let err = rt
        .block_on(retry.run(|_| {
            crate::Guarded::new({
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(cancelled()) }
            })
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(err.is_cancelled());
    assert_eq!(err.stop_reason(), StopReason::Cancelled);
}

fn layered_attempts(retry: &Retry, error: fn() -> Error<&'static str>) -> (u32, Duration) {
    let rt = test_rt();
    let start = rt.now();
    let err = rt
        .block_on(retry.run(|_| crate::Guarded::new(async move { Err::<(), _>(error()) })))
        .unwrap()
        .unwrap_err();
    (err.attempts(), rt.now() - start)
}

#[test]
fn the_default_classifier_stops_on_open_circuits_rejections_and_panics() {
    let retry = policy(Backoff::constant(ms(1)), 5);
    let open = || {
        Error::CircuitOpen(CircuitOpen {
            retry_after: ms(300),
        })
    };
    let full = || {
        Error::Rejected(Rejected::Full {
            max_concurrent: 1,
            max_queued: 0,
        })
    };
    let panic = || {
        Error::Panicked(crate::runtime::Panicked {
            message: "boom".into(),
        })
    };
    assert_eq!(layered_attempts(&retry, open).0, 1);
    assert_eq!(layered_attempts(&retry, full).0, 1);
    assert_eq!(layered_attempts(&retry, panic).0, 1);
    let timeout = || Error::Timeout(crate::timeout::Elapsed { after: ms(1) });
    assert_eq!(layered_attempts(&retry, timeout).0, 5);
}

#[test]
fn an_open_circuit_is_retried_after_its_hint_when_asked_capped_by_the_max_delay() {
    let retry = Retry::builder(test_rt())
        .max_attempts(3)
        .retry_circuit_open(true)
        .backoff(Backoff::constant(ms(1)).max_delay(ms(500)))
        .build()
        .unwrap();
    let open = || {
        Error::CircuitOpen(CircuitOpen {
            retry_after: ms(300),
        })
    };
    assert_eq!(layered_attempts(&retry, open), (3, ms(600)));
    let long = || {
        Error::CircuitOpen(CircuitOpen {
            retry_after: Duration::from_secs(60),
        })
    };
    assert_eq!(layered_attempts(&retry, long), (3, ms(1000)));
}

#[test]
fn retry_if_stops_on_errors_it_rejects() {
    let retry = Retry::builder(test_rt())
        .max_attempts(5)
        .backoff(Backoff::constant(ms(1)))
        .retry_if(|e: &&str| *e != "fatal")
        .build()
        .unwrap();
    let rt = test_rt();
    let err = rt
        .block_on(
            retry.run(
                |a| async move { Err::<(), _>(if a.number() == 2 { "fatal" } else { "flaky" }) },
            ),
        )
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.stop_reason()),
        (2, StopReason::NotRetryable)
    );
    assert_eq!(err.into_inner(), Some("fatal"));
}

#[test]
fn a_retry_after_hint_that_reaches_past_the_budget_ends_the_call() {
    let retry = Retry::builder(test_rt())
        .max_attempts(10)
        .budget(ms(250))
        .classify(|_: &Error<&str>| Decision::RetryAfter(ms(200)))
        .build()
        .unwrap();
    let (s, err) = starts(&retry);
    // 0, 200; a third attempt would start at 400 ms, past the 250 ms budget.
    assert_eq!(s, [ms(0), ms(200)]);
    assert_eq!(err.stop_reason(), StopReason::Budget);
}

#[test]
fn no_attempt_starts_at_or_after_the_end_of_the_budget() {
    // Issue 13's case: a 1 s budget and 400 ms delays. The old rule cut the
    // last sleep short and started a fourth attempt at exactly 1000 ms,
    // with no time left to succeed.
    let retry = Retry::builder(test_rt())
        .max_attempts(100)
        .budget(ms(1000))
        .backoff(Backoff::constant(ms(400)))
        .build()
        .unwrap();
    let (s, err) = starts(&retry);
    assert_eq!(s, [ms(0), ms(400), ms(800)]);
    assert_eq!((err.attempts(), err.stop_reason()), (3, StopReason::Budget));
}

#[test]
fn an_attempt_may_start_just_before_the_budget_ends() {
    let retry = Retry::builder(test_rt())
        .max_attempts(100)
        .budget(ms(1001))
        .backoff(Backoff::constant(ms(500)))
        .build()
        .unwrap();
    let (s, err) = starts(&retry);
    assert_eq!(s, [ms(0), ms(500), ms(1000)]);
    assert_eq!(err.stop_reason(), StopReason::Budget);
}

#[test]
fn the_budget_overshoots_by_at_most_the_last_attempts_own_time() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(100)
        .budget(ms(1000))
        .backoff(Backoff::constant(ms(300)))
        .build()
        .unwrap();
    let seen = Mutex::new(Vec::new());
    let err = rt
        .block_on(retry.run(|_| {
            seen.lock().unwrap().push(rt.now().since_origin());
            let rt = rt.clone();
            async move {
                rt.sleep(ms(70)).await;
                Err::<(), _>("slow failure")
            }
        }))
        .unwrap()
        .unwrap_err();
    // 0, +70+300, +70+300; a fourth would start at 1110 ms, past the budget.
    assert_eq!(*seen.lock().unwrap(), [ms(0), ms(370), ms(740)]);
    assert_eq!(rt.now().since_origin(), ms(810));
    assert_eq!((err.attempts(), err.stop_reason()), (3, StopReason::Budget));
}

#[test]
fn a_per_attempt_timeout_is_clipped_to_the_time_left_in_the_budget() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(100)
        .budget(ms(1000))
        .attempt_timeout(ms(600))
        .backoff(Backoff::constant(ms(100)))
        .build()
        .unwrap();
    let seen = Mutex::new(Vec::new());
    let err = rt
        .block_on(retry.run(|_| {
            seen.lock().unwrap().push(rt.now().since_origin());
            let rt = rt.clone();
            async move {
                rt.sleep(ms(10_000)).await; // hangs until its timeout
                Ok::<(), &str>(())
            }
        }))
        .unwrap()
        .unwrap_err();
    // 0..600 (timed out), sleep 100, 700..1000: the second attempt gets the
    // 300 ms left in the budget, not its own 600 ms.
    assert_eq!(*seen.lock().unwrap(), [ms(0), ms(700)]);
    assert_eq!(rt.now().since_origin(), ms(1000));
    assert!(err.last().is_timeout());
    assert_eq!((err.attempts(), err.stop_reason()), (2, StopReason::Budget));
}

#[test]
fn a_delay_of_duration_max_means_never_retry_again() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(10)
        .backoff(Backoff::constant(Duration::MAX))
        .build()
        .unwrap();
    let err = rt
        .block_on(retry.run(|_| async { Err::<(), _>("down") }))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.stop_reason()),
        (1, StopReason::NeverRetry)
    );
    assert_eq!(rt.now(), Instant::ORIGIN); // ended at once, did not sleep
    assert!(err.to_string().contains("never retry"));
}

#[test]
fn a_retry_after_hint_of_duration_max_means_never_retry_again() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(10)
        .backoff(Backoff::constant(ms(1)).max_delay(Duration::MAX))
        .classify(|_: &Error<&str>| Decision::RetryAfter(Duration::MAX))
        .build()
        .unwrap();
    let err = rt
        .block_on(retry.run(|_| async { Err::<(), _>("busy") }))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (err.attempts(), err.stop_reason()),
        (1, StopReason::NeverRetry)
    );
    assert_eq!(rt.now(), Instant::ORIGIN);
}

#[test]
fn a_per_attempt_timeout_turns_slow_attempts_into_retried_timeouts() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(3)
        .attempt_timeout(ms(50))
        .backoff(Backoff::constant(ms(10)))
        .keep_all_errors(true)
        .build()
        .unwrap();
    let err = rt
        .block_on(retry.run(|_| {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_secs(3600)).await;
                Ok::<(), &str>(())
            }
        }))
        .unwrap()
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.earlier_errors().len(), 2);
    assert!(err.earlier_errors().iter().all(Error::is_timeout));
    assert_eq!(rt.now().since_origin(), ms(170));
}

#[test]
fn attempts_see_their_number_elapsed_time_and_previous_error_kind() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(20)), 3);
    let seen = Mutex::new(Vec::new());
    let _ = rt.block_on(retry.run(|a| {
        crate::Guarded::new({
            seen.lock().unwrap().push(a);
            async move {
                Err::<(), _>(if a.is_first() {
                    Error::Inner("x")
                } else {
                    Error::Timeout(crate::timeout::Elapsed { after: ms(1) })
                })
            }
        })
    }));
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen.iter().map(Attempt::number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        seen.iter().map(Attempt::elapsed).collect::<Vec<_>>(),
        [ms(0), ms(20), ms(40)]
    );
    assert_eq!(
        seen.iter().map(Attempt::previous_error).collect::<Vec<_>>(),
        [
            None,
            Some(crate::ErrorKind::Inner),
            Some(crate::ErrorKind::Timeout)
        ]
    );
}

#[test]
fn the_hook_alone_is_called_before_each_sleep() {
    // No observers: the hook is reached through the notes' function that
    // `on_retry` stores by itself.
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let retry = Retry::builder(test_rt())
        .max_attempts(3)
        .backoff(Backoff::constant(ms(10)))
        .on_retry({
            let hooked = hooked.clone();
            move |n, kind, d| hooked.lock().unwrap().push((n, kind, d))
        })
        .build()
        .unwrap();
    assert!(retry.config.notify.is_some());
    let (_, err) = starts(&retry);
    assert_eq!(err.attempts(), 3);
    assert_eq!(
        *hooked.lock().unwrap(),
        [
            (1, crate::ErrorKind::Inner, ms(10)),
            (2, crate::ErrorKind::Inner, ms(10))
        ]
    );
    assert!(Retry::new(test_rt()).config.notify.is_none());
}

#[test]
fn the_hook_and_the_observers_see_every_decision() {
    let hooked = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let retry = Retry::builder(test_rt())
        .name("fetch")
        .max_attempts(3)
        .backoff(Backoff::linear(ms(10), ms(10)))
        .on_retry({
            let hooked = hooked.clone();
            move |n, kind, d| hooked.lock().unwrap().push((n, kind, d))
        })
        .observers(Observers::new().with({
            let events = events.clone();
            move |e: &Event| events.lock().unwrap().push(e.clone())
        }))
        .build()
        .unwrap();
    let (_, err) = starts(&retry);
    assert_eq!(err.attempts(), 3);
    assert_eq!(
        *hooked.lock().unwrap(),
        [
            (1, crate::ErrorKind::Inner, ms(10)),
            (2, crate::ErrorKind::Inner, ms(20))
        ]
    );
    let events = events.lock().unwrap();
    let name: Arc<str> = "fetch".into();
    assert_eq!(events.len(), 6);
    assert_eq!(
        events[0],
        Event::AttemptStarted {
            name: name.clone(),
            attempt: 1
        }
    );
    assert_eq!(
        events[1],
        Event::RetryScheduled {
            name: name.clone(),
            attempt: 1,
            delay: ms(10),
            error: "Inner(\"down\")".into()
        }
    );
    assert_eq!(events[5], Event::RetryExhausted { name, attempts: 3 });
}

#[test]
fn the_error_says_how_many_attempts_were_made_and_why_it_stopped() {
    let (_, err) = starts(&policy(Backoff::constant(ms(1)), 2));
    assert_eq!(
        err.to_string(),
        "gave up after 2 attempts (the maximum number of attempts was reached)"
    );
    assert_eq!(err.last().inner(), Some(&"down"));
    assert!(err.earlier_errors().is_empty());
    let last: Error<&str> = err.into();
    assert_eq!(last.into_inner(), Some("down"));
}

#[test]
fn retry_is_clone_send_and_sync() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Retry>();
    assert_shareable::<Backoff>();
}

/// Counts drops of what an attempt holds.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicU32>);
struct Guard(Arc<AtomicU32>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl Drops {
    fn guard(&self) -> Guard {
        Guard(self.0.clone())
    }
    fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn cancelling_a_retry_mid_sleep_starts_no_further_attempt() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(100)), 5);
    let calls = Arc::new(AtomicU32::new(0));
    let drops = Drops::default();
    let out = rt.block_on(crate::timeout::timeout(
        &rt,
        ms(150),
        retry.run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let guard = drops.guard();
            async move {
                drop(guard);
                Err::<(), _>("down")
            }
        }),
    ));
    assert!(out.unwrap().is_err(), "the outer timeout fired");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(drops.count(), 2);
    // Time moves on; nothing else starts.
    rt.block_on(rt.sleep(Duration::from_secs(10))).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn cancelling_a_retry_mid_attempt_drops_the_attempt_and_starts_no_other() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(10)), 5);
    let calls = Arc::new(AtomicU32::new(0));
    let drops = Drops::default();
    let out = rt.block_on(crate::timeout::timeout(
        &rt,
        ms(35),
        retry.run(|_| {
            calls.fetch_add(1, Ordering::SeqCst);
            let guard = drops.guard();
            let rt = rt.clone();
            async move {
                rt.sleep(ms(20)).await;
                drop(guard);
                Err::<(), _>("down")
            }
        }),
    ));
    assert!(out.unwrap().is_err());
    // Attempt 1: 0..20, sleep 20..30, attempt 2 from 30, cancelled at 35.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(drops.count(), 2, "the running attempt was dropped");
    rt.block_on(rt.sleep(Duration::from_secs(10))).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        rt.now(),
        Instant::from_origin(ms(35) + Duration::from_secs(10))
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![
            Just(Jitter::None),
            Just(Jitter::Full),
            Just(Jitter::Equal),
            Just(Jitter::Decorrelated)
        ]
    }

    proptest! {
        #[test]
        fn jittered_delays_stay_within_their_bounds(
            seed in any::<u64>(), initial in 1u64..10_000, cap_extra in 0u64..100_000,
            factor in 1.0f64..8.0, j in jitter(),
        ) {
            let (initial, cap) = (us(initial), us(initial + cap_extra));
            let b = Backoff::exponential(initial).factor(factor).max_delay(cap).jitter(j).seed(seed);
            let plain: Vec<_> = b.clone().jitter(Jitter::None).build().unwrap().take(40).collect();
            let mut prev = initial;
            for (d, p) in b.build().unwrap().take(40).zip(plain) {
                prop_assert!(d <= cap);
                match j {
                    Jitter::None => prop_assert_eq!(d, p),
                    Jitter::Full => prop_assert!(d <= p),
                    Jitter::Equal => prop_assert!(p / 2 <= d && d <= p),
                    Jitter::Decorrelated => {
                        prop_assert!(initial <= d && d <= (prev * 3).min(cap));
                        prev = d;
                    }
                }
            }
        }

        #[test]
        fn exponential_without_jitter_never_decreases_and_is_capped(
            initial in 1u64..1_000_000, cap_extra in 0u64..10_000_000_000, factor in 1.0f64..100.0,
        ) {
            let cap = Duration::from_nanos(initial + cap_extra);
            let b = Backoff::exponential(Duration::from_nanos(initial)).factor(factor).max_delay(cap);
            let delays: Vec<_> = b.build().unwrap().take(200).collect();
            prop_assert!(delays.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(delays.iter().all(|&d| d <= cap));
        }

        #[test]
        fn the_same_seed_gives_the_same_schedule(seed in any::<u64>(), j in jitter()) {
            let b = Backoff::fibonacci(ms(3)).jitter(j).seed(seed).max_count(30);
            let a: Vec<_> = b.build().unwrap().collect();
            prop_assert_eq!(&a, &b.build().unwrap().collect::<Vec<_>>());
            let built = b.build().unwrap();
            prop_assert_eq!(a, built.clone().collect::<Vec<_>>());
        }

        #[test]
        fn budgets_are_never_exceeded_by_more_than_the_last_attempt(
            seed in any::<u64>(), budget in 1u64..5_000, work in 0u64..200, j in jitter(),
        ) {
            let rt = VirtualRuntime::new();
            let retry = Retry::builder(rt.clone())
                .max_attempts(1000)
                .budget(ms(budget))
                .backoff(Backoff::exponential(ms(7)).max_delay(ms(900)).jitter(j).seed(seed))
                .build()
                .unwrap();
            let last_start = Mutex::new(Duration::ZERO);
            let err = rt.block_on(retry.run(|_| {
                *last_start.lock().unwrap() = rt.now().since_origin();
                let rt = rt.clone();
                async move { rt.sleep(ms(work)).await; Err::<(), _>("x") }
            })).unwrap().unwrap_err();
            let last_start = *last_start.lock().unwrap();
            // No attempt starts at or after the budget's end.
            prop_assert!(last_start < ms(budget));
            prop_assert!(rt.now().since_origin() <= ms(budget) + ms(work));
            prop_assert_eq!(err.stop_reason(), StopReason::Budget);
        }
    }
}

/// Every link of an error chain prints once: `Error` is transparent and
/// `RetryError` leaves the last error to `source()`.
#[test]
fn each_link_of_an_error_chain_prints_once() {
    #[derive(Debug)]
    struct Refused(std::io::Error);
    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the inventory service refused")
        }
    }
    impl std::error::Error for Refused {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(2)
        .backoff(Backoff::constant(ms(1)))
        .build()
        .unwrap();
    let err = rt
        .block_on(
            retry.run(|_| async {
                Err::<(), _>(Refused(std::io::Error::other("connection reset")))
            }),
        )
        .unwrap()
        .unwrap_err();
    let mut chain = Vec::new();
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = link {
        chain.push(e.to_string());
        link = e.source();
    }
    assert_eq!(
        chain,
        [
            "gave up after 2 attempts (the maximum number of attempts was reached)",
            "the inventory service refused",
            "connection reset",
        ]
    );
    let report = format!("{:#}", anyhow::Error::new(err));
    assert_eq!(
        report,
        "gave up after 2 attempts (the maximum number of attempts was reached): \
         the inventory service refused: connection reset"
    );
    // A plain `Error` is transparent too.
    let plain: Error<Refused> = Error::Inner(Refused(std::io::Error::other("reset")));
    let report = format!("{:#}", anyhow::Error::new(plain));
    assert_eq!(report, "the inventory service refused: reset");
}

/// Past the 584 years a `u64` of nanoseconds holds, a growing curve keeps
/// growing (up to `Duration::MAX`) instead of falling back to that cap.
#[test]
fn an_exponential_curve_never_goes_down_at_the_nanosecond_cap() {
    for start in [
        Duration::from_nanos(u64::MAX / 3),
        Duration::from_nanos(u64::MAX),
        Duration::MAX / 4,
        Duration::MAX,
    ] {
        let delays: Vec<_> = Backoff::exponential(start)
            .max_delay(Duration::MAX)
            .build()
            .unwrap()
            .take(6)
            .collect();
        assert!(
            delays.windows(2).all(|w| w[0] <= w[1]),
            "went down from {start:?}: {delays:?}"
        );
        assert!(delays[5] > delays[0] || delays[0] == Duration::MAX);
        if start >= Duration::MAX / 4 {
            assert_eq!(delays[5], Duration::MAX, "from {start:?}");
        }
    }
}

/// Full jitter over a range wider than 584 years can reach the whole range.
#[test]
fn full_jitter_is_not_cut_at_the_nanosecond_cap() {
    let cap = Duration::from_nanos(u64::MAX);
    let base = cap * 4;
    let delays: Vec<_> = Backoff::constant(base)
        .max_delay(Duration::MAX)
        .jitter(Jitter::Full)
        .seed(7)
        .build()
        .unwrap()
        .take(64)
        .collect();
    assert!(delays.iter().all(|d| *d <= base));
    assert!(
        delays.iter().filter(|d| **d > cap).count() > 16,
        "three quarters of the range lies past the cap: {delays:?}"
    );
}

/// A jittered "forever" is still forever: the retry stops instead of
/// sleeping for centuries.
#[test]
fn a_jittered_backoff_of_duration_max_stops_with_never_retry() {
    for jitter in [Jitter::Full, Jitter::Equal, Jitter::None] {
        let retry = Retry::builder(test_rt())
            .max_attempts(5)
            .backoff(
                Backoff::exponential(Duration::MAX)
                    .max_delay(Duration::MAX)
                    .jitter(jitter),
            )
            .build()
            .unwrap();
        let (_, err) = starts(&retry);
        assert_eq!(
            (err.attempts(), err.stop_reason()),
            (1, StopReason::NeverRetry),
            "with {jitter:?}"
        );
    }
}

/// The bad-factor and bad-maximum messages name the values given (worded
/// by the setter, returned by `build()`), and the builder's `Debug` form lists
/// the settings only.
#[test]
fn a_bad_factor_or_maximum_is_named_in_the_error_and_debug_shows_the_settings() {
    let err = Backoff::exponential(ms(1)).factor(0.5).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `factor`: must be a finite number of at least 1, not 0.5; use 2 to double each delay"
    );
    // A bad factor replaced by a good one builds.
    assert!(
        Backoff::exponential(ms(1))
            .factor(0.5)
            .factor(3.0)
            .build()
            .is_ok()
    );
    let b = Backoff::exponential(ms(1)).factor(3.0);
    assert_eq!(
        format!("{b:?}"),
        "BackoffBuilder { curve: Exponential, initial: 1ms, factor: Some(3.0), max_delay: None, max_count: None, jitter: None, seed: None }"
    );
}

#[test]
fn a_timed_out_attempt_is_dropped_when_its_time_is_up_not_after_the_backoff() {
    struct DroppedAt(VirtualRuntime, Arc<Mutex<Vec<Duration>>>);
    impl Drop for DroppedAt {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0.now().since_origin());
        }
    }
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(2)
        .attempt_timeout(ms(50))
        .backoff(Backoff::constant(ms(10)))
        .build()
        .unwrap();
    let drops = Arc::new(Mutex::new(Vec::new()));
    let err = rt
        .block_on(retry.run(|_| {
            let guard = DroppedAt(rt.clone(), drops.clone());
            let rt = rt.clone();
            async move {
                let _guard = guard;
                rt.sleep(Duration::from_secs(3600)).await;
                Ok::<(), &str>(())
            }
        }))
        .unwrap()
        .unwrap_err();
    assert!(err.is_timeout());
    // Each attempt dropped the moment its 50 ms ran out: at 50, and at
    // 50 + 10 (backoff) + 50.
    assert_eq!(*drops.lock().unwrap(), [ms(50), ms(110)]);
}

#[test]
fn every_error_a_call_made_is_dropped_once_kept_handed_back_or_abandoned() {
    /// An operation's error that counts its drops.
    #[derive(Debug)]
    struct Counted(Arc<AtomicU32>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let rt = test_rt();
    let build = |keep: bool| {
        Retry::builder(rt.clone())
            .max_attempts(3)
            .backoff(Backoff::constant(ms(10)))
            .keep_all_errors(keep)
            .build()
            .unwrap()
    };
    let drops = Arc::new(AtomicU32::new(0));
    let failing = |_| {
        let drops = drops.clone();
        async move { Err::<(), _>(Counted(drops)) }
    };
    // Kept: none is dropped until the error is.
    let err = rt.block_on(build(true).run(failing)).unwrap().unwrap_err();
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    assert_eq!(err.earlier_errors().len(), 2);
    drop(err);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    // Not kept: dropped as the call goes, the last with the error.
    drops.store(0, Ordering::Relaxed);
    let err = rt.block_on(build(false).run(failing)).unwrap().unwrap_err();
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    drop(err);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    // Handed back: the last is the caller's; the earlier ones go.
    drops.store(0, Ordering::Relaxed);
    let err = rt.block_on(build(true).run(failing)).unwrap().unwrap_err();
    let last = err.into_inner().unwrap();
    assert_eq!(drops.load(Ordering::Relaxed), 2);
    drop(last);
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    drops.store(0, Ordering::Relaxed);
    let err = rt.block_on(build(false).run(failing)).unwrap().unwrap_err();
    assert!(Error::from(err).is_inner());
    assert_eq!(drops.load(Ordering::Relaxed), 3);
    // Abandoned in its backoff: the kept error goes with the call.
    drops.store(0, Ordering::Relaxed);
    let retry = build(true);
    let mut run = Box::pin(retry.run(failing).into_future());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(run.as_mut().poll(&mut cx).is_pending());
    assert_eq!(drops.load(Ordering::Relaxed), 0);
    drop(run);
    assert_eq!(drops.load(Ordering::Relaxed), 1);
}

#[test]
fn a_staunch_calls_own_errors_are_dropped_in_full() {
    // A cancellation's message is shared; dropping every error that holds
    // it gives it back.
    let message: Arc<str> = Arc::from("stop");
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .keep_all_errors(true)
        .build()
        .unwrap();
    let err = rt
        .block_on(retry.run(|_| {
            let reason = CancelReason::Explicit {
                message: Some(message.clone()),
            };
            crate::Guarded::new(async move { Err::<(), Error<()>>(Cancelled { reason }.into()) })
        }))
        .unwrap()
        .unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(Arc::strong_count(&message), 2);
    assert_eq!(
        format!("{err:?}"),
        "RetryError { attempts: 1, stop: Cancelled, last: Cancelled(Cancelled { reason: Explicit { message: Some(\"stop\") } }), earlier: [] }"
    );
    drop(err);
    assert_eq!(Arc::strong_count(&message), 1);
}

/// A factor so large that one step passes the 584 years a `u64` of
/// nanoseconds holds: a delay under a second used to be scaled by its whole
/// seconds (zero) there, so the curve stayed at its initial delay for ever.
#[test]
fn a_huge_factor_jumps_to_the_cap_instead_of_staying_at_a_sub_second_delay() {
    let cap = Duration::from_secs(10);
    for factor in [1e14, 1e20, 1e300, f64::MAX] {
        let delays: Vec<_> = Backoff::exponential(ms(1))
            .factor(factor)
            .max_delay(cap)
            .build()
            .unwrap()
            .take(3)
            .collect();
        assert_eq!(delays, [ms(1), cap, cap], "factor {factor}");
    }
    // Uncapped, 1 ms × 10^14 is 10^11 s, and the step after is "forever".
    let uncapped: Vec<_> = Backoff::exponential(ms(1))
        .factor(1e14)
        .max_delay(Duration::MAX)
        .build()
        .unwrap()
        .take(3)
        .collect();
    assert_eq!(
        uncapped,
        [ms(1), Duration::from_secs(100_000_000_000), Duration::MAX]
    );
    // In a retry: the second retry waits the cap, not 1 ms.
    let (s, _) = starts(&policy(
        Backoff::exponential(ms(1)).factor(1e15).max_delay(cap),
        3,
    ));
    assert_eq!(s, [ms(0), ms(1), ms(1) + cap]);
}

/// Under a fallback, a retry ended by a cancellation stays cancelled (a
/// fallback never replaces one), and an exhausted one is answered.
#[test]
fn a_fallback_around_a_retry_keeps_its_cancellation_and_answers_its_failure() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(1)), 3);
    let fallback = crate::fallback::Fallback::value(0);
    let retried = |error: fn() -> Error<&'static str>| {
        retry.run(move |_| crate::Guarded::new(async move { Err::<i32, _>(error()) }))
    };
    let out = rt.block_on(fallback.call(retried(cancelled))).unwrap();
    assert!(out.unwrap_err().is_cancelled());
    let out = rt.block_on(fallback.call(retried(|| Error::Inner("503"))));
    assert_eq!(out.unwrap().unwrap(), 0);
}

/// A breaker around a retry counts the retry's last error as what it is:
/// an exhausted retry of the operation's own errors is one failure, a
/// retry ended by a cancellation is nothing.
#[test]
fn a_breaker_around_a_retry_counts_its_failure_but_not_its_cancellation() {
    let rt = test_rt();
    let retry = policy(Backoff::constant(ms(1)), 2);
    let breaker = crate::breaker::CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap();
    let cancelled_call = retry.run(|_| crate::Guarded::new(async { Err::<(), _>(cancelled()) }));
    let out = rt.block_on(breaker.call(cancelled_call)).unwrap();
    assert!(out.unwrap_err().is_cancelled());
    assert_eq!(breaker.state(), crate::breaker::CircuitState::Closed);

    let failing_call = retry.run(|_| async { Err::<(), _>("503") });
    let out = rt.block_on(breaker.call(failing_call)).unwrap();
    assert_eq!(out.unwrap_err().into_inner(), Some("503"));
    assert_eq!(breaker.state(), crate::breaker::CircuitState::Open);
}

/// A retry around a retry sees the inner one's last error: the inner
/// cancellation ends the outer retry too, while an inner exhaustion of
/// ordinary errors is retried by the outer one.
#[test]
fn an_outer_retry_never_retries_an_inner_retrys_cancellation() {
    let rt = test_rt();
    let inner = policy(Backoff::constant(ms(1)), 2);
    let outer = policy(Backoff::constant(ms(10)), 3);
    let calls = AtomicU32::new(0);
    let err = rt
        .block_on(outer.run(|_| {
            inner.run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                crate::Guarded::new(async { Err::<(), _>(cancelled()) })
            })
        }))
        .unwrap()
        .unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!((err.attempts(), calls.load(Ordering::SeqCst)), (1, 1));

    calls.store(0, Ordering::SeqCst);
    let err = rt
        .block_on(outer.run(|_| {
            inner.run(|_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>("503") }
            })
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.attempts(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(err.into_last().into_inner(), Some("503"));
}

/// An attempt that answers at the very instant its time limit ends keeps
/// its answer: the attempt is polled before its timer, as `timeout` does.
#[test]
fn an_attempt_finishing_at_its_time_limit_succeeds() {
    let rt = test_rt();
    let retry = Retry::builder(rt.clone())
        .max_attempts(3)
        .attempt_timeout(ms(50))
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let out = rt.block_on(retry.run(|_| {
        calls.fetch_add(1, Ordering::SeqCst);
        let rt = rt.clone();
        async move {
            rt.sleep(ms(50)).await;
            Ok::<_, &str>("just in time")
        }
    }));
    assert_eq!(out.unwrap().unwrap(), "just in time");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(rt.now(), Instant::from_origin(ms(50)));
}

/// A call ended by a cancellation is not "exhausted": the event (and the
/// metrics counter fed by it) would count the cancellation, which a call
/// dropped mid-sleep by the same cancellation never did.
#[test]
fn a_cancelled_call_is_never_reported_as_an_exhausted_retry() {
    let (observers, seen) = crate::observe::recording();
    let retry = Retry::builder(test_rt())
        .name("fetch")
        .max_attempts(3)
        .backoff(Backoff::constant(ms(10)))
        .observers(observers)
        .build()
        .unwrap();
    let rt = test_rt();
    let err = rt
        .block_on(retry.run(|attempt| {
            crate::Guarded::new(async move {
                Err::<(), _>(if attempt.is_first() {
                    Error::Inner("down")
                } else {
                    cancelled()
                })
            })
        }))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.stop_reason(), StopReason::Cancelled);
    let seen = seen.lock().unwrap();
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::RetryExhausted { .. })),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 3, "two starts and one retry: {seen:?}");
}

/// Handing the retry a built backoff (iterated or not) gives the schedule
/// of its builder, from the first delay, seed included.
#[test]
fn a_built_backoff_serves_as_the_retrys_schedule_from_its_start() {
    let builder = Backoff::exponential(ms(10))
        .max_delay(ms(35))
        .jitter(Jitter::Equal)
        .max_count(4)
        .seed(11);
    let (expected, _) = starts(&policy(builder.clone(), 10));
    let mut built = builder.build().unwrap();
    let first = built.next();
    assert!(first.is_some());
    let retry = Retry::builder(test_rt())
        .max_attempts(10)
        .backoff(built)
        .build()
        .unwrap();
    let (got, err) = starts(&retry);
    assert_eq!(gaps(&got), gaps(&expected));
    assert_eq!(got.len(), 5, "four delays, five attempts");
    assert_eq!(err.stop_reason(), StopReason::BackoffEnded);
    // Every curve converts, its settings kept.
    for b in [
        Backoff::constant(ms(3)),
        Backoff::linear(ms(1), ms(2)).max_delay(ms(6)),
        Backoff::fibonacci(ms(1)).jitter(Jitter::Full).seed(3),
        Backoff::exponential(ms(1))
            .factor(3.0)
            .jitter(Jitter::Decorrelated)
            .seed(5),
    ] {
        let want: Vec<_> = b.build().unwrap().take(8).collect();
        let again = BackoffBuilder::from(b.build().unwrap()).build().unwrap();
        assert_eq!(again.take(8).collect::<Vec<_>>(), want, "{b:?}");
    }
}
