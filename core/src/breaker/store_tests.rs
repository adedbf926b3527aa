//! The store seam: a breaker over a store of the user's judges outcomes by
//! its own rules, waits for a store that decides by a round trip, and
//! reports every permit exactly once.

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::Error;
use crate::testing::VirtualRuntime;

/// A store that records what it is told and answers admission as scripted:
/// at once, refused, or after `delay` on the virtual clock.
struct Scripted {
    rt: VirtualRuntime,
    answer: Answer,
    reports: Mutex<Vec<(bool, Outcome)>>,
    forced: Mutex<Vec<CircuitState>>,
}

#[derive(Clone, Copy)]
enum Answer {
    Admit,
    Refuse,
    DecideAfter(Duration, bool),
}

impl BreakerStore for Scripted {
    fn admit(&self) -> Admission {
        match self.answer {
            Answer::Admit => Admission::Admitted(Permit::new(7, false)),
            Answer::Refuse => Admission::Refused(CircuitOpen {
                retry_after: Duration::from_secs(3),
            }),
            Answer::DecideAfter(delay, admit) => {
                let sleep = self.rt.sleep(delay);
                Admission::Decide(Box::pin(async move {
                    sleep.await;
                    if admit {
                        Ok(Permit::new(9, true))
                    } else {
                        Err(CircuitOpen {
                            retry_after: Duration::from_secs(1),
                        })
                    }
                }))
            }
        }
    }
    fn report(&self, permit: Permit, outcome: Outcome) {
        self.reports
            .lock()
            .unwrap()
            .push((permit.is_probe(), outcome));
    }
    fn state(&self) -> CircuitState {
        CircuitState::HalfOpen
    }
    fn metrics(&self) -> Metrics {
        let mut m = Metrics::new(CircuitState::HalfOpen);
        m.calls = 42;
        m
    }
    fn force(&self, to: CircuitState) {
        self.forced.lock().unwrap().push(to);
    }
    fn name(&self) -> &str {
        "scripted"
    }
}

fn scripted(answer: Answer) -> (VirtualRuntime, Arc<Scripted>, CircuitBreaker) {
    let rt = VirtualRuntime::new();
    let store = Arc::new(Scripted {
        rt: rt.clone(),
        answer,
        reports: Mutex::new(Vec::new()),
        forced: Mutex::new(Vec::new()),
    });
    let rules = CircuitBreaker::builder(rt.clone())
        .failure_if(|code: &u16| *code >= 500)
        .not_failure(NotFailure::Ignore)
        .build()
        .unwrap();
    let breaker = rules.with_store(store.clone());
    (rt, store, breaker)
}

fn reports(store: &Scripted) -> Vec<(bool, Outcome)> {
    store.reports.lock().unwrap().clone()
}

#[test]
fn outcomes_reach_the_store_judged_by_the_breakers_rules() {
    let (rt, store, breaker) = scripted(Answer::Admit);
    rt.block_on(async {
        assert_eq!(breaker.call(async { Ok::<_, u16>(1) }).await.unwrap(), 1);
        let _ = breaker.call(async { Err::<(), u16>(503) }).await;
        // Rejected by `failure_if`, and such errors are ignored here.
        let _ = breaker.call(async { Err::<(), u16>(404) }).await;
        // A timeout below is a failure; a cancellation below is neither.
        let timed_out = Error::<u16>::Timeout(crate::timeout::Elapsed {
            after: Duration::from_secs(1),
        });
        let _ = breaker
            .call(Guarded::new(async move { Err::<(), _>(timed_out) }))
            .await;
        let cancelled = Error::<u16>::Cancelled(crate::scope::Cancelled {
            reason: crate::scope::CancelReason::Shutdown,
        });
        let _ = breaker
            .call(Guarded::new(async move { Err::<(), _>(cancelled) }))
            .await;
    })
    .unwrap();
    assert_eq!(
        reports(&store),
        [
            (false, Outcome::Success),
            (false, Outcome::Failure),
            (false, Outcome::Neither),
            (false, Outcome::Failure),
            (false, Outcome::Neither),
        ]
    );
}

#[test]
fn a_refusal_never_polls_the_operation() {
    let (rt, store, breaker) = scripted(Answer::Refuse);
    let out = rt
        .block_on(breaker.call(async { panic!("polled although refused") as Result<(), u16> }))
        .unwrap();
    let Err(Error::CircuitOpen(open)) = out else {
        panic!("not refused: {out:?}")
    };
    assert_eq!(open.retry_after, Duration::from_secs(3));
    assert!(reports(&store).is_empty());
    assert!(breaker.try_acquire().is_err());
}

#[test]
fn a_call_waits_for_a_store_that_decides_by_a_round_trip() {
    let (rt, store, breaker) = scripted(Answer::DecideAfter(Duration::from_millis(30), true));
    let started = rt.now();
    let out = rt
        .block_on(breaker.call(async { Ok::<_, u16>("ran") }))
        .unwrap();
    assert_eq!(out.unwrap(), "ran");
    assert_eq!(rt.now() - started, Duration::from_millis(30));
    assert_eq!(reports(&store), [(true, Outcome::Success)]);
    // try_acquire cannot wait: it refuses rather than block.
    assert!(breaker.try_acquire().is_err());
}

#[test]
fn a_store_refusing_after_a_round_trip_refuses_the_call() {
    let (rt, store, breaker) = scripted(Answer::DecideAfter(Duration::from_millis(30), false));
    let out = rt
        .block_on(breaker.call(async { panic!("polled although refused") as Result<(), u16> }))
        .unwrap();
    assert!(out.unwrap_err().is_circuit_open());
    assert!(reports(&store).is_empty());
}

#[test]
fn a_call_dropped_while_the_store_decides_reports_nothing() {
    let (rt, store, breaker) = scripted(Answer::DecideAfter(Duration::from_millis(30), true));
    let out = rt
        .block_on(crate::timeout::timeout(
            &rt,
            Duration::from_millis(10),
            breaker.call(async { Ok::<_, u16>(()) }),
        ))
        .unwrap();
    assert!(out.is_err(), "the timeout ends the wait");
    rt.advance(Duration::from_millis(100));
    assert!(reports(&store).is_empty());
}

#[test]
fn an_admitted_call_dropped_unfinished_reports_neither_once() {
    let (rt, store, breaker) = scripted(Answer::Admit);
    let out = rt
        .block_on(crate::timeout::timeout(
            &rt,
            Duration::from_millis(10),
            breaker.call(async {
                std::future::pending::<()>().await;
                Ok::<_, u16>(())
            }),
        ))
        .unwrap();
    assert!(out.is_err());
    assert_eq!(reports(&store), [(false, Outcome::Neither)]);
    // A permit from try_acquire dropped unreported: neither, once.
    drop(breaker.try_acquire().unwrap());
    breaker.try_acquire().unwrap().failure();
    assert_eq!(
        reports(&store)[1..],
        [(false, Outcome::Neither), (false, Outcome::Failure)]
    );
}

#[test]
fn state_metrics_and_forcing_are_the_stores() {
    let (_rt, store, breaker) = scripted(Answer::Admit);
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(breaker.metrics().calls, 42);
    breaker.force_open();
    breaker.force_closed();
    breaker.reset();
    assert_eq!(
        *store.forced.lock().unwrap(),
        [
            CircuitState::ForcedOpen,
            CircuitState::ForcedClosed,
            CircuitState::Closed
        ]
    );
    assert!(format!("{breaker:?}").contains("scripted"));
}

#[test]
fn an_in_memory_breaker_serves_as_a_store() {
    let rt = VirtualRuntime::new();
    let inner = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(2)
        .build()
        .unwrap();
    let outer = CircuitBreaker::builder(rt.clone())
        .build()
        .unwrap()
        .with_store(Arc::new(inner.clone()));
    rt.block_on(async {
        for _ in 0..2 {
            let _ = outer.call(async { Err::<(), _>("down") }).await;
        }
        assert_eq!(inner.state(), CircuitState::Open);
        assert_eq!(outer.state(), CircuitState::Open);
        let refused = outer.call(async { Ok::<_, &str>(()) }).await;
        assert!(refused.unwrap_err().is_circuit_open());
    })
    .unwrap();
    assert_eq!(inner.metrics().refused_calls, 1);
}
