use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use super::*;
use crate::Error;
use crate::observe::{Event, Observers};
use crate::runtime::{Instant, Timer};
use crate::scope::{CancelReason, Cancelled};
use crate::testing::VirtualRuntime;
use crate::timeout::Elapsed;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(rt: &VirtualRuntime) -> u128 {
    rt.now().since_origin().as_millis()
}

/// A breaker that trips on 2 failures in a row, opens for 100 ms, 2 probes.
fn small(rt: &VirtualRuntime) -> CircuitBreaker {
    CircuitBreaker::builder(rt.clone())
        .consecutive_failures(2)
        .open_duration(ms(100))
        .half_open_probes(2)
        .probe_timeout(ms(50))
        .build()
        .unwrap()
}

/// [`small`], tripped and left open until it is half-open.
fn half_open(rt: &VirtualRuntime) -> CircuitBreaker {
    let b = small(rt);
    fail(&b);
    fail(&b);
    rt.advance(ms(100));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    b
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire().unwrap().failure();
}

fn succeed(b: &CircuitBreaker) {
    b.try_acquire().unwrap().success();
}

#[test]
fn consecutive_failures_trip_and_a_success_resets_the_count() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    fail(&b);
    succeed(&b);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Closed);
    fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn an_open_breaker_refuses_at_once_and_says_how_long_is_left() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    fail(&b);
    fail(&b);
    rt.advance(ms(30));
    assert_eq!(b.try_acquire().unwrap_err().retry_after, ms(70));
    let polled = Arc::new(StdMutex::new(false));
    let out = rt
        .block_on(b.call({
            let polled = polled.clone();
            async move {
                *polled.lock().unwrap() = true;
                Ok::<_, &str>(())
            }
        }))
        .unwrap();
    assert!(out.unwrap_err().is_circuit_open());
    assert!(!*polled.lock().unwrap(), "a refused call must never run");
}

#[test]
fn open_turns_half_open_exactly_when_the_open_duration_ends() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    fail(&b);
    fail(&b);
    rt.advance(ms(99));
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.metrics().retry_after, Some(ms(1)));
    rt.advance(ms(1));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(at(&rt), 100);
}

#[test]
fn half_open_closes_once_every_probe_succeeded() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(p1.is_probe() && p2.is_probe());
    p1.success();
    assert_eq!(b.state(), CircuitState::HalfOpen);
    p2.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn half_open_reopens_once_too_many_probes_failed() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let p1 = b.try_acquire().unwrap();
    p1.failure(); // 1 of 2 = 50 %: the default rate reopens
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after, ms(100));
}

#[test]
fn polly_2381_one_probe_does_not_decide_everything() {
    // With 4 probes and a 50 % rate, one failed probe does not reopen.
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(ms(10))
        .half_open_probes(4)
        .build()
        .unwrap();
    fail(&b);
    rt.advance(ms(10));
    fail(&b);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    for _ in 0..3 {
        succeed(&b);
    }
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn resilience4j_1432_half_open_admits_exactly_the_configured_probes() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let probes: Vec<_> = (0..5).filter_map(|_| b.try_acquire().ok()).collect();
    assert_eq!(probes.len(), 2);
    // The refusal says when the probes' deadline ends.
    assert_eq!(b.try_acquire().unwrap_err().retry_after, ms(50));
}

#[test]
fn resilience4j_903_a_dropped_probe_frees_its_slot() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    drop(p1);
    let p3 = b.try_acquire().unwrap();
    p2.success();
    p3.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn resilience4j_935_a_probe_that_never_reports_cannot_strand_half_open() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let hung1 = b.try_acquire().unwrap();
    let hung2 = b.try_acquire().unwrap();
    rt.advance(ms(49));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    rt.advance(ms(1));
    assert_eq!(b.state(), CircuitState::Open, "the probe timeout reopens");
    // Late reports from the stale half-open count for nothing.
    hung1.success();
    hung2.success();
    assert_eq!(b.state(), CircuitState::Open);
    rt.advance(ms(100));
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(b.try_acquire().is_ok());
}

#[test]
fn a_dropped_permit_counts_as_neither_success_nor_failure() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    fail(&b);
    drop(b.try_acquire().unwrap());
    assert_eq!(b.metrics().consecutive_failures, 1);
    assert_eq!(b.metrics().calls, 1);
}

#[test]
fn cancellation_is_never_counted_as_a_failure() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap();
    let cancelled = || {
        Error::<()>::Cancelled(Cancelled {
            reason: CancelReason::Shutdown,
        })
    };
    for _ in 0..10 {
        let out = rt
            .block_on(b.call(crate::Guarded::new(async { Err::<(), _>(cancelled()) })))
            .unwrap();
        assert!(out.unwrap_err().is_cancelled());
    }
    // A call dropped mid-flight is not counted either.
    let pending = b.call(std::future::pending::<Result<(), ()>>());
    let _ = rt.block_on(crate::timeout::timeout(&rt, ms(5), pending));
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.metrics().calls, 0);
}

#[test]
fn timeouts_count_as_failures_and_the_predicate_decides_the_rest() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(2)
        .failure_if(|e: &&str| *e != "not found")
        .build()
        .unwrap();
    let run = |e: Error<&'static str>| {
        let _ = rt.block_on(b.call(crate::Guarded::new(async move { Err::<(), _>(e) })));
    };
    run(Error::Timeout(Elapsed { after: ms(1) }));
    run(Error::Inner("not found")); // counts as a success: resets the streak
    run(Error::Inner("boom"));
    assert_eq!(b.state(), CircuitState::Closed);
    run(Error::Inner("boom"));
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn errors_the_predicate_rejects_can_be_ignored_instead_of_counted() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .failure_if(|e: &&str| *e != "not found")
        .not_failure(NotFailure::Ignore)
        .build()
        .unwrap();
    let _ = rt.block_on(b.call(async { Err::<(), _>("not found") }));
    assert_eq!(b.metrics().calls, 0);
}

#[test]
fn a_count_window_trips_on_the_failure_rate_only_after_the_minimum_calls() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .count_window(10)
        .minimum_calls(4)
        .failure_rate(0.5)
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    fail(&b);
    assert_eq!(
        b.state(),
        CircuitState::Closed,
        "3 calls are under the minimum"
    );
    succeed(&b);
    // 3 of 4 failed.
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn a_time_window_forgets_old_failures() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::from_secs(1), 10)
        .minimum_calls(4)
        .build()
        .unwrap();
    fail(&b);
    fail(&b);
    fail(&b);
    rt.advance(Duration::from_secs(1));
    succeed(&b);
    assert_eq!(b.metrics().calls, 1);
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn slow_calls_trip_the_breaker_by_their_rate() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .count_window(4)
        .minimum_calls(4)
        .slow_calls(ms(100), 0.75)
        .build()
        .unwrap();
    for _ in 0..3 {
        let out = rt.block_on(b.call(async {
            rt.sleep(ms(100)).await;
            Ok::<_, ()>(())
        }));
        assert!(out.unwrap().is_ok());
    }
    succeed(&b);
    let m = b.metrics();
    assert_eq!(m.state, CircuitState::Open);
    // Open: the window that tripped it stays readable (resilience4j shows
    // the same); the next closed period starts with an empty window.
    assert_eq!((m.calls, m.slow_calls, m.slow_call_rate), (4, 3, 0.75));
}

#[test]
fn the_open_duration_grows_on_repeated_trips_and_restarts_after_closing() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .half_open_probes(1)
        .open_backoff(crate::retry::Backoff::exponential(ms(100)).max_delay(ms(300)))
        .build()
        .unwrap();
    let mut opens = Vec::new();
    fail(&b);
    for _ in 0..3 {
        opens.push(b.metrics().retry_after.unwrap());
        rt.advance(opens[opens.len() - 1]);
        fail(&b); // the probe fails
    }
    assert_eq!(opens, [ms(100), ms(200), ms(300)]);
    rt.advance(ms(300));
    succeed(&b);
    fail(&b);
    assert_eq!(b.metrics().retry_after, Some(ms(100)));
}

#[test]
fn manual_controls_force_and_reset_the_state() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    b.force_open();
    assert_eq!(b.try_acquire().unwrap_err().retry_after, Duration::MAX);
    rt.advance(Duration::from_secs(3600));
    assert_eq!(b.state(), CircuitState::ForcedOpen);
    b.force_closed();
    for _ in 0..10 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::ForcedClosed);
    assert_eq!(b.metrics().failures, 10);
    b.reset();
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.metrics().calls, 0);
}

#[test]
fn state_changes_are_events_with_a_reason() {
    let rt = VirtualRuntime::new();
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(ms(10))
        .half_open_probes(1)
        .name("db")
        .observers(Observers::new().with({
            let seen = seen.clone();
            move |e: &Event| {
                if let Event::CircuitStateChanged {
                    name,
                    from,
                    to,
                    reason,
                } = e
                {
                    seen.lock()
                        .unwrap()
                        .push((name.to_string(), *from, *to, reason.clone()));
                }
            }
        }))
        .build()
        .unwrap();
    fail(&b);
    rt.advance(ms(10));
    succeed(&b);
    let seen = seen.lock().unwrap();
    let states: Vec<_> = seen.iter().map(|(_, f, t, _)| (*f, *t)).collect();
    assert_eq!(
        states,
        [
            (CircuitState::Closed, CircuitState::Open),
            (CircuitState::Open, CircuitState::HalfOpen),
            (CircuitState::HalfOpen, CircuitState::Closed),
        ]
    );
    assert_eq!(seen[0].0, "db");
    assert_eq!(seen[0].3, "1 failures in a row");
}

#[test]
fn bad_settings_are_config_errors() {
    let rt = VirtualRuntime::new();
    let b = || CircuitBreaker::builder(rt.clone());
    let setting = |r: Result<CircuitBreaker, crate::ConfigError>| r.unwrap_err().setting;
    assert_eq!(setting(b().failure_rate(0.0).build()), "failure_rate");
    assert_eq!(setting(b().failure_rate(f64::NAN).build()), "failure_rate");
    assert_eq!(setting(b().count_window(0).build()), "count_window");
    assert_eq!(setting(b().count_window(5).build()), "minimum_calls");
    assert_eq!(setting(b().time_window(ms(1), 0).build()), "time_window");
    assert_eq!(setting(b().half_open_probes(0).build()), "half_open_probes");
    assert_eq!(
        setting(b().open_duration(Duration::ZERO).build()),
        "open_duration"
    );
    assert_eq!(
        setting(b().consecutive_failures(0).build()),
        "consecutive_failures"
    );
    assert_eq!(setting(b().slow_calls(ms(1), 2.0).build()), "slow_calls");
    assert_eq!(
        setting(b().probe_timeout(Duration::ZERO).build()),
        "probe_timeout"
    );
}

#[test]
fn pybreaker_3_a_slow_call_does_not_hold_up_other_calls() {
    // No lock is held across a call: a call that never finishes leaves the
    // breaker free for every other caller.
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    let hung = b
        .call(std::future::pending::<Result<(), &str>>())
        .into_future();
    let mut hung = Box::pin(hung);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(hung.as_mut().poll(&mut cx).is_pending());
    for _ in 0..100 {
        let out = rt.block_on(b.call(async { Ok::<_, &str>(1) })).unwrap();
        assert_eq!(out.unwrap(), 1);
    }
}

#[test]
fn the_breaker_is_clone_send_and_sync() {
    fn check<T: Clone + Send + Sync + 'static>() {}
    check::<CircuitBreaker>();
    fn check_send<T: Send>() {}
    check_send::<AdmittedCall>();
}

/// A plain model of the breaker with consecutive and count-window rules.
#[derive(Debug)]
struct Model {
    consecutive_limit: u32,
    size: usize,
    minimum: usize,
    rate: f64,
    open: Duration,
    probes: u32,
    state: ModelState,
    window: Vec<bool>,
    streak: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelState {
    Closed,
    Open(Instant),
    HalfOpen { ok: u32, bad: u32 },
}

impl Model {
    fn trip(&mut self, now: Instant) {
        self.state = ModelState::Open(now + self.open);
        self.window.clear();
        self.streak = 0;
    }

    fn tick(&mut self, now: Instant) {
        match self.state {
            ModelState::Open(until) if now >= until => {
                self.state = ModelState::HalfOpen { ok: 0, bad: 0 };
            }
            // Calls report at once here, so no probe is ever in flight when
            // time passes: the probe timeout never reopens (invariant 11).
            _ => {}
        }
    }

    /// A call made and reported at once: `Some(failed)`, or `None` dropped.
    fn call(&mut self, now: Instant, outcome: Option<bool>) {
        self.tick(now);
        match &mut self.state {
            ModelState::Open(_) => {}
            ModelState::Closed => {
                let Some(failed) = outcome else { return };
                self.window.push(failed);
                if self.window.len() > self.size {
                    self.window.remove(0);
                }
                self.streak = if failed { self.streak + 1 } else { 0 };
                let bad = self.window.iter().filter(|f| **f).count();
                if self.streak >= self.consecutive_limit
                    || (self.window.len() >= self.minimum
                        && bad as f64 / self.window.len() as f64 >= self.rate)
                {
                    self.trip(now);
                }
            }
            ModelState::HalfOpen { ok, bad, .. } => {
                match outcome {
                    None => return,
                    Some(true) => *bad += 1,
                    Some(false) => *ok += 1,
                }
                let (ok, bad) = (*ok, *bad);
                if f64::from(bad) / f64::from(self.probes) >= self.rate {
                    self.trip(now);
                } else if ok + bad == self.probes {
                    self.state = ModelState::Closed;
                    self.window.clear();
                    self.streak = 0;
                }
            }
        }
    }

    fn state(&mut self, now: Instant) -> CircuitState {
        self.tick(now);
        match self.state {
            ModelState::Closed => CircuitState::Closed,
            ModelState::Open(_) => CircuitState::Open,
            ModelState::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }
}

mod model_check {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Call(Option<bool>),
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => prop_oneof![Just(None), any::<bool>().prop_map(Some)].prop_map(Step::Call),
            1 => (0u64..80).prop_map(Step::Wait),
        ]
    }

    proptest! {
        #[test]
        fn the_breaker_matches_a_plain_reference_model_at_every_step(
            steps in proptest::collection::vec(step(), 1..200),
            consecutive in 2u32..6,
            size in 4u32..12,
            probes in 1u32..4,
            rate in prop_oneof![Just(0.3), Just(0.5), Just(0.8)],
        ) {
            let rt = VirtualRuntime::new();
            let b = CircuitBreaker::builder(rt.clone())
                .consecutive_failures(consecutive)
                .count_window(size)
                .minimum_calls(3)
                .failure_rate(rate)
                .open_duration(ms(50))
                .half_open_probes(probes)
                .probe_timeout(ms(70))
                .build()
                .unwrap();
            let mut model = Model {
                consecutive_limit: consecutive,
                size: size as usize,
                minimum: 3,
                rate,
                open: ms(50),
                probes,
                state: ModelState::Closed,
                window: Vec::new(),
                streak: 0,
            };
            for (i, s) in steps.into_iter().enumerate() {
                match s {
                    Step::Wait(n) => rt.advance(ms(n)),
                    Step::Call(outcome) => {
                        model.call(rt.now(), outcome);
                        if let Ok(permit) = b.try_acquire() {
                            match outcome {
                                Some(true) => permit.failure(),
                                Some(false) => permit.success(),
                                None => drop(permit),
                            }
                        }
                    }
                }
                prop_assert_eq!(b.state(), model.state(rt.now()), "step {}", i);
            }
        }
    }
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock the test moves by hand (plain std atomics: not part of the model).
    #[derive(Clone, Default)]
    struct HandClock(Arc<AtomicU64>);

    impl Timer for HandClock {
        type Sleep = std::future::Ready<()>;
        fn now(&self) -> Instant {
            Instant::from_origin(Duration::from_millis(self.0.load(Ordering::SeqCst)))
        }
        fn sleep(&self, _: Duration) -> Self::Sleep {
            std::future::ready(())
        }
    }

    #[test]
    fn loom_half_open_never_admits_more_probes_than_configured() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let clock = HandClock::default();
            let b = CircuitBreaker::builder(clock.clone())
                .consecutive_failures(1)
                .open_duration(ms(10))
                .half_open_probes(1)
                .build()
                .unwrap();
            b.try_acquire().unwrap().failure();
            clock.0.store(10, Ordering::SeqCst);
            let inside = Arc::new(crate::sync::AtomicUsize::new(0));
            let worker = |b: CircuitBreaker, inside: Arc<crate::sync::AtomicUsize>, fail: bool| {
                move || {
                    if let Ok(permit) = b.try_acquire() {
                        let n = inside.fetch_add(1, crate::sync::Ordering::SeqCst) + 1;
                        assert!(n <= 1, "{n} probes admitted at once");
                        inside.fetch_sub(1, crate::sync::Ordering::SeqCst);
                        if fail {
                            permit.failure();
                        } else {
                            drop(permit);
                        }
                    }
                }
            };
            let t1 = loom::thread::spawn(worker(b.clone(), inside.clone(), false));
            let t2 = loom::thread::spawn(worker(b.clone(), inside.clone(), true));
            worker(b.clone(), inside.clone(), false)();
            t1.join().unwrap();
            t2.join().unwrap();
            let state = b.state();
            assert!(matches!(state, CircuitState::Open | CircuitState::HalfOpen));
        });
    }

    #[test]
    fn loom_half_open_with_two_probes_never_admits_more_than_two_at_once() {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| {
            let clock = HandClock::default();
            let b = CircuitBreaker::builder(clock.clone())
                .consecutive_failures(1)
                .open_duration(ms(10))
                .half_open_probes(2)
                .build()
                .unwrap();
            b.try_acquire().unwrap().failure();
            clock.0.store(10, Ordering::SeqCst);
            let inside = Arc::new(crate::sync::AtomicUsize::new(0));
            // 0: succeeds, 1: fails, 2: gives up (drops its permit).
            let worker = |b: CircuitBreaker, inside: Arc<crate::sync::AtomicUsize>, how: u8| {
                move || {
                    if let Ok(permit) = b.try_acquire() {
                        assert!(permit.is_probe());
                        let n = inside.fetch_add(1, crate::sync::Ordering::SeqCst) + 1;
                        assert!(n <= 2, "{n} probes admitted at once");
                        inside.fetch_sub(1, crate::sync::Ordering::SeqCst);
                        match how {
                            0 => permit.success(),
                            1 => permit.failure(),
                            _ => drop(permit),
                        }
                    }
                }
            };
            let t1 = loom::thread::spawn(worker(b.clone(), inside.clone(), 0));
            let t2 = loom::thread::spawn(worker(b.clone(), inside.clone(), 1));
            worker(b.clone(), inside.clone(), 2)();
            t1.join().unwrap();
            t2.join().unwrap();
            let m = b.metrics();
            match m.state {
                // The failed probe reopened it: 1 of 2 is the default 50 %.
                CircuitState::Open => assert_eq!(m.failures, 1),
                // Never closed without two successes: only one succeeded.
                CircuitState::HalfOpen => assert!(m.calls <= 2 && m.failures == 0),
                other => panic!("unexpected state {other:?}"),
            }
        });
    }

    #[test]
    fn loom_a_lock_free_success_racing_a_trip_is_counted_once_or_dropped() {
        loom::model(|| {
            let clock = HandClock::default();
            let b = CircuitBreaker::builder(clock)
                .count_window(4)
                .minimum_calls(1)
                .failure_rate(0.5)
                .build()
                .unwrap();
            b.try_acquire().unwrap().success(); // warm: later successes go lock-free
            let permit = b.try_acquire().unwrap();
            let t = loom::thread::spawn(move || permit.success());
            b.try_acquire().unwrap().failure();
            t.join().unwrap();
            let m = b.metrics();
            match m.state {
                // The failure came first: [S, F] tripped (and stays readable
                // while open); the late success is dropped.
                CircuitState::Open => assert_eq!((m.calls, m.failures), (2, 1)),
                // The success came first: [S, S, F] stays under 50 %.
                CircuitState::Closed => assert_eq!((m.calls, m.failures), (3, 1)),
                other => panic!("unexpected state {other:?}"),
            }
        });
    }
}

#[test]
fn a_pending_probe_call_that_is_dropped_frees_its_slot() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let mut hung = Box::pin(
        b.call(futures::future::pending::<Result<(), &str>>())
            .into_future(),
    );
    assert!(futures::FutureExt::now_or_never(hung.as_mut()).is_none());
    let other = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "both probe slots are taken");
    drop(hung);
    let freed = b.try_acquire().unwrap();
    other.success();
    freed.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_probe_whose_future_panics_at_its_first_poll_frees_its_slot() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(
            b.call(async { panic!("boom") as Result<(), &str> })
                .into_future(),
        )
    }));
    assert!(panicked.is_err());
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(
        p1.is_probe() && p2.is_probe(),
        "the panicked probe's slot came back"
    );
    p1.success();
    p2.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
#[should_panic(expected = "polled after it completed")]
fn a_call_polled_after_it_completed_panics_with_a_clear_message() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    let mut call = Box::pin(b.call(async { Ok::<_, &str>(1) }).into_future());
    assert!(futures::FutureExt::now_or_never(call.as_mut()).is_some());
    let _ = futures::FutureExt::now_or_never(call.as_mut());
}

#[test]
fn a_probe_that_panics_on_a_later_poll_frees_its_slot_exactly_once() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt);
    let mut polls = 0;
    let flaky = futures::future::poll_fn(
        move |cx: &mut std::task::Context<'_>| -> std::task::Poll<()> {
            polls += 1;
            if polls == 1 {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            panic!("boom on poll {polls}");
        },
    );
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(
            b.call(async {
                flaky.await;
                Ok::<(), &str>(())
            })
            .into_future(),
        )
    }));
    assert!(panicked.is_err());
    // Released once: exactly the two configured probe slots are free again.
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(
        b.try_acquire().is_err(),
        "a double release would admit a third probe"
    );
    p1.success();
    p2.success();
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_backlog_of_lock_free_successes_is_folded_in_window_size_steps_whatever_its_length() {
    // Scaling: 10 000 and 40 000 successes piled up lock-free, then one
    // `metrics()`: the work under the lock is the window's 100 slots both
    // times (it replayed every success before: 1.26 s for 100 M).
    let work = |n: u32| {
        let rt = VirtualRuntime::new();
        let b = CircuitBreaker::builder(rt)
            .count_window(100)
            .minimum_calls(10)
            .build()
            .unwrap();
        for _ in 0..10 {
            succeed(&b); // past the minimum: later successes go lock-free
        }
        let _ = b.metrics();
        for _ in 0..n {
            succeed(&b);
        }
        let before = window::RING_WRITES.with(std::cell::Cell::get);
        let m = b.metrics();
        assert_eq!((m.calls, m.failures), (100, 0));
        window::RING_WRITES.with(std::cell::Cell::get) - before
    };
    let (small, large) = (work(10_000), work(40_000));
    assert!(small <= 100 && large <= 100, "{small} and {large} writes");
    assert!(
        large <= 4 * small,
        "{small} writes for 10 k, {large} for 40 k"
    );
}

#[test]
fn the_failures_in_a_row_counter_saturates_instead_of_overflowing() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt).build().unwrap();
    b.force_closed();
    b.memory().set_consecutive_failures(u64::MAX - 1);
    fail(&b);
    fail(&b);
    assert_eq!(b.metrics().consecutive_failures, u64::MAX);
    // Beyond u32: the old counter's limit.
    b.memory().set_consecutive_failures(u64::from(u32::MAX));
    fail(&b);
    assert_eq!(b.metrics().consecutive_failures, u64::from(u32::MAX) + 1);
}

#[test]
fn a_count_window_over_its_limit_is_a_config_error_that_states_the_limit() {
    let rt = VirtualRuntime::new();
    let b = || CircuitBreaker::builder(rt.clone());
    assert!(b().count_window(1 << 20).build().is_ok());
    for size in [(1 << 20) + 1, 1 << 30, 1 << 31, u32::MAX] {
        let err = b().count_window(size).build().unwrap_err();
        assert_eq!(err.setting, "count_window");
        assert!(err.to_string().contains("1048576"), "{err}");
    }
    let err = b()
        .time_window(Duration::from_secs(1), 1001)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");
}

#[test]
fn an_open_breaker_still_shows_the_window_that_tripped_it() {
    // resilience4j keeps the closed state's metrics while open; staunch
    // showed an empty window, leaving the numbers only in an event's text.
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(5)
        .open_duration(Duration::from_secs(60))
        .half_open_probes(2)
        .build()
        .unwrap();
    for i in 0..5 {
        if i % 2 == 0 { fail(&b) } else { succeed(&b) }
    }
    let m = b.metrics();
    assert_eq!(m.state, CircuitState::Open);
    assert_eq!((m.calls, m.failures, m.failure_rate), (5, 3, 0.6));
    // Frozen: still there after the window's length has passed.
    rt.advance(Duration::from_secs(30));
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.failures), (CircuitState::Open, 5, 3));
    // Half-open shows its probes; a failed probe reopens, and open then
    // shows the probes that reopened it.
    rt.advance(Duration::from_secs(30));
    succeed(&b);
    let m = b.metrics();
    assert_eq!(
        (m.state, m.calls, m.failures),
        (CircuitState::HalfOpen, 1, 0)
    );
    fail(&b);
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.failures), (CircuitState::Open, 2, 1));
    // Closed again: a fresh window.
    rt.advance(Duration::from_secs(60));
    succeed(&b);
    succeed(&b);
    let m = b.metrics();
    assert_eq!((m.state, m.calls, m.failures), (CircuitState::Closed, 0, 0));
}

#[test]
fn refused_calls_are_counted_in_every_refusing_state() {
    let rt = VirtualRuntime::new();
    let b = small(&rt);
    fail(&b);
    fail(&b);
    assert!(b.try_acquire().is_err());
    let _ = rt.block_on(b.call(async { Ok::<_, &str>(()) }));
    assert_eq!(b.metrics().refused_calls, 2, "open");
    rt.advance(ms(100));
    let _probes = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    assert!(b.try_acquire().is_err());
    assert_eq!(
        b.metrics().refused_calls,
        3,
        "half-open, every probe slot taken"
    );
    b.force_open();
    assert!(b.try_acquire().is_err());
    assert_eq!(b.metrics().refused_calls, 4, "forced open");
    b.reset();
    succeed(&b);
    assert_eq!(
        b.metrics().refused_calls,
        4,
        "never reset, never counts admitted calls"
    );
}

#[test]
fn forcing_the_state_the_breaker_is_in_emits_no_event() {
    let rt = VirtualRuntime::new();
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let b = CircuitBreaker::builder(rt.clone())
        .observers(Observers::new().with({
            let seen = seen.clone();
            move |e: &Event| {
                if let Event::CircuitStateChanged { from, to, .. } = e {
                    seen.lock().unwrap().push((*from, *to));
                }
            }
        }))
        .build()
        .unwrap();
    b.reset(); // closed already
    b.force_open();
    b.force_open();
    b.force_closed();
    fail(&b);
    b.force_closed(); // keeps the window: nothing changed
    assert_eq!(b.metrics().failures, 1);
    b.reset();
    b.reset();
    use CircuitState::{Closed, ForcedClosed, ForcedOpen};
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Closed, ForcedOpen),
            (ForcedOpen, ForcedClosed),
            (ForcedClosed, Closed)
        ]
    );
}

/// A clock that counts how often it is read.
#[derive(Clone)]
struct CountingClock {
    rt: VirtualRuntime,
    reads: Arc<std::sync::atomic::AtomicU64>,
}

impl Timer for CountingClock {
    type Sleep = <VirtualRuntime as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.rt.now()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.rt.sleep(duration)
    }
}

#[test]
fn a_busy_time_window_reads_the_clock_far_less_than_once_per_call() {
    let rt = VirtualRuntime::new();
    let clock = CountingClock {
        rt: rt.clone(),
        reads: Arc::default(),
    };
    let b = CircuitBreaker::builder(clock.clone())
        .time_window(Duration::from_secs(1), 10)
        .minimum_calls(10)
        .build()
        .unwrap();
    // 100 000 calls a second for 2 s.
    for _ in 0..200_000 {
        rt.advance(Duration::from_micros(10));
        succeed(&b);
    }
    let reads = clock.reads.load(std::sync::atomic::Ordering::Relaxed);
    assert!(reads < 2_000, "{reads} clock reads for 200 000 calls");
    // The window holds the buckets of 1.1 s ..= 2.0 s: exactly 90 001 calls
    // with a clock read per call. The coarse clock may put up to 254
    // successes one bucket late (invariant 10 of the machine), never more.
    let calls = b.metrics().calls;
    assert!(
        (90_001..=90_001 + 254).contains(&calls),
        "{calls} calls in the window"
    );
}

#[test]
fn a_quiet_time_window_counts_each_call_in_its_own_bucket() {
    // One call a second through a 10 s window: slower than a sixteenth of a
    // bucket per call, so every report reads the clock and the window is exact.
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(5)
        .failure_rate(0.5)
        .build()
        .unwrap();
    for _ in 0..15 {
        succeed(&b);
        rt.advance(Duration::from_secs(1));
    }
    // At 15 s the window holds the buckets of 6 s ..= 15 s: the calls at
    // 6 s ..= 14 s.
    assert_eq!(b.metrics().calls, 9);
    for _ in 0..4 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::Closed, "4 of 13 failed");
    rt.advance(Duration::from_secs(5)); // five old successes slide out
    fail(&b);
    let m = b.metrics();
    assert_eq!(
        (m.state, m.calls, m.failures),
        (CircuitState::Open, 9, 5),
        "5 of 9 failed"
    );
}

#[test]
fn half_open_never_reopens_a_quiet_service_whose_probes_succeeded() {
    // resilience4j 2028 / 2289: a service called once in a while never got
    // its three probes within the probe timeout, so each half-open period
    // ended by reopening: a healthy service refused, forever.
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(30))
        .half_open_probes(3)
        .probe_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    fail(&b);
    rt.advance(Duration::from_secs(30));
    for _ in 0..3 {
        // One call every two minutes, each a success.
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let probe = b
            .try_acquire()
            .expect("a quiet half-open breaker admits a probe");
        assert!(probe.is_probe());
        probe.success();
        rt.advance(Duration::from_secs(120));
    }
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn the_probe_timeout_counts_from_the_last_probe_admitted() {
    let rt = VirtualRuntime::new();
    let b = half_open(&rt); // 2 probes, a 50 ms probe timeout
    rt.advance(ms(45));
    let late = b.try_acquire().unwrap(); // admitted 45 ms into half-open
    rt.advance(ms(10));
    assert_eq!(
        b.state(),
        CircuitState::HalfOpen,
        "a probe 10 ms in flight is not stuck"
    );
    late.success();
    let hung = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "both slots used");
    rt.advance(ms(49));
    assert_eq!(b.try_acquire().unwrap_err().retry_after, ms(1));
    rt.advance(ms(1));
    assert_eq!(
        b.state(),
        CircuitState::Open,
        "a probe stuck for the probe timeout reopens"
    );
    drop(hung);
}

#[test]
fn a_half_open_probe_whose_error_is_ignored_frees_its_slot_and_decides_nothing() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(ms(10))
        .half_open_probes(1)
        .failure_if(|e: &&str| *e != "not found")
        .not_failure(NotFailure::Ignore)
        .build()
        .unwrap();
    fail(&b);
    rt.advance(ms(10));
    for _ in 0..3 {
        let out = rt.block_on(b.call(async { Err::<(), _>("not found") }));
        assert!(out.unwrap().unwrap_err().is_inner());
        assert_eq!(b.state(), CircuitState::HalfOpen);
    }
    let out = rt.block_on(b.call(async { Ok::<_, &str>(()) })).unwrap();
    assert!(out.is_ok(), "the ignored probes left the one slot free");
    assert_eq!(b.state(), CircuitState::Closed);
}

#[test]
fn a_time_window_forgets_everything_across_a_gap_of_many_empty_buckets() {
    let rt = VirtualRuntime::new();
    let b = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(4)
        .build()
        .unwrap();
    for _ in 0..3 {
        fail(&b);
    }
    // Far more buckets than the ring holds go by, then a gap of centuries.
    for gap in [
        Duration::from_secs(10 * 1000 + 3),
        Duration::from_secs(1 << 40),
    ] {
        rt.advance(gap);
        assert_eq!(b.metrics().calls, 0, "after {gap:?}");
        // One failure after the gap is not the fourth of the window.
        fail(&b);
        assert_eq!(b.state(), CircuitState::Closed);
        assert_eq!((b.metrics().calls, b.metrics().failures), (1, 1));
    }
    for _ in 0..3 {
        fail(&b);
    }
    assert_eq!(b.state(), CircuitState::Open, "the window still trips");
}

#[test]
fn a_reopening_for_a_stuck_probe_is_an_event_that_says_so() {
    let rt = VirtualRuntime::new();
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let b = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .open_duration(ms(10))
        .probe_timeout(ms(50))
        .observers(Observers::new().with({
            let seen = seen.clone();
            move |e: &Event| {
                if let Event::CircuitStateChanged { to, reason, .. } = e {
                    seen.lock().unwrap().push((*to, reason.clone()));
                }
            }
        }))
        .build()
        .unwrap();
    fail(&b);
    rt.advance(ms(10));
    let _stuck = b.try_acquire().unwrap();
    rt.advance(ms(50));
    assert_eq!(b.state(), CircuitState::Open);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.last().unwrap(),
        &(
            CircuitState::Open,
            "a probe was still in flight 50ms after the last was admitted".to_string()
        )
    );
}
