//! Fault injection: make an operation fail, slow down or hang, on purpose,
//! reproducibly.
//!
//! Invariant: each call to [`Faults::next_fault`] (or [`Faults::inject`])
//! consumes exactly one step of the seeded stream or the script, under one
//! lock, so concurrent callers never see the same step twice.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::ConfigError;
use crate::rng::SplitMix64;
use crate::runtime::Timer;

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The call runs normally.
    Pass,
    /// The call fails with [`InjectedFault`] without running.
    Fail,
    /// The call never finishes (until dropped): pair it with a timeout.
    Hang,
    /// The call runs after this extra delay.
    Delay(Duration),
}

/// The error of a call that [`Faults`] made fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "injected fault on call {call}; this failure was made on purpose by `staunch::testing::Faults`"
)]
pub struct InjectedFault {
    /// Which call failed, from 1.
    pub call: u64,
}

/// Configures seeded, probabilistic [`Faults`]; see [`Faults::seeded`].
#[derive(Debug, Clone)]
#[must_use = "a FaultsBuilder does nothing until `build()` is called"]
pub struct FaultsBuilder {
    seed: u64,
    fail_rate: f64,
    hang_rate: f64,
    delay_rate: f64,
    delay: Duration,
}

impl FaultsBuilder {
    /// The share of calls that fail, in `[0, 1]` (default 0).
    pub fn fail_rate(mut self, rate: f64) -> FaultsBuilder {
        self.fail_rate = rate;
        self
    }

    /// The share of calls that hang, in `[0, 1]` (default 0).
    pub fn hang_rate(mut self, rate: f64) -> FaultsBuilder {
        self.hang_rate = rate;
        self
    }

    /// The share of calls delayed by `delay` before they run, in `[0, 1]`
    /// (default 0).
    pub fn delay(mut self, rate: f64, delay: Duration) -> FaultsBuilder {
        self.delay_rate = rate;
        self.delay = delay;
        self
    }

    /// Checks the rates and builds the injector.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if a rate is outside `[0, 1]` or NaN, or the rates
    /// add up to more than 1 (each call gets at most one fault).
    pub fn build(&self) -> Result<Faults, ConfigError> {
        for (setting, rate) in [
            ("fail_rate", self.fail_rate),
            ("hang_rate", self.hang_rate),
            ("delay rate", self.delay_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(
                    setting,
                    format!("must be a probability between 0 and 1, not {rate}"),
                ));
            }
        }
        let total = self.fail_rate + self.hang_rate + self.delay_rate;
        if total > 1.0 + 1e-9 {
            return Err(ConfigError::new(
                "fail_rate",
                format!(
                    "fail, hang and delay rates add up to {total}, above 1; each call gets at most one fault, so lower them"
                ),
            ));
        }
        Ok(Faults::from_source(Source::Seeded {
            rng: SplitMix64::new(self.seed),
            fail: self.fail_rate,
            hang: self.hang_rate,
            delay_rate: self.delay_rate,
            delay: self.delay,
        }))
    }
}

#[derive(Debug)]
enum Source {
    Seeded {
        rng: SplitMix64,
        fail: f64,
        hang: f64,
        delay_rate: f64,
        delay: Duration,
    },
    Script {
        steps: Vec<Fault>,
        next: usize,
    },
}

#[derive(Debug)]
struct State {
    source: Source,
    calls: u64,
    injected: u64,
}

/// A fault injector shared by every attempt of an operation: each call
/// draws the next [`Fault`] from a seeded random stream or a script.
///
/// It is a cheap `Clone + Send + Sync` handle; clones share the stream.
///
/// ```
/// use staunch::retry::Retry;
/// use staunch::testing::{Fault, Faults, VirtualRuntime};
///
/// let rt = VirtualRuntime::new();
/// // The first two calls fail, then calls pass.
/// let faults = Faults::script([Fault::Fail, Fault::Fail]);
/// let retry = Retry::new(rt.clone());
/// let out = rt.block_on(retry.run(|_| faults.inject(&rt, async { Ok::<_, std::convert::Infallible>("ok") })));
/// assert_eq!(out.unwrap().unwrap().unwrap(), "ok");
/// assert_eq!((faults.calls(), faults.injected()), (3, 2));
/// ```
#[derive(Clone)]
pub struct Faults(Arc<Mutex<State>>);

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Faults")
            .field("calls", &state.calls)
            .field("injected", &state.injected)
            .finish_non_exhaustive()
    }
}

impl Faults {
    /// A builder for faults drawn at random with the given rates from a
    /// stream seeded with `seed`: the same seed gives the same faults.
    pub fn seeded(seed: u64) -> FaultsBuilder {
        FaultsBuilder {
            seed,
            fail_rate: 0.0,
            hang_rate: 0.0,
            delay_rate: 0.0,
            delay: Duration::ZERO,
        }
    }

    /// Faults that follow `steps` in order, one per call; once the script is
    /// used up every call passes.
    pub fn script(steps: impl IntoIterator<Item = Fault>) -> Faults {
        Faults::from_source(Source::Script {
            steps: steps.into_iter().collect(),
            next: 0,
        })
    }

    fn from_source(source: Source) -> Faults {
        Faults(Arc::new(Mutex::new(State {
            source,
            calls: 0,
            injected: 0,
        })))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Draws the fault for the next call and counts the call.
    pub fn next_fault(&self) -> Fault {
        self.draw().0
    }

    fn draw(&self) -> (Fault, u64) {
        let mut state = self.state();
        state.calls += 1;
        let fault = match &mut state.source {
            Source::Script { steps, next } => {
                let fault = steps.get(*next).copied().unwrap_or(Fault::Pass);
                *next += 1;
                fault
            }
            Source::Seeded {
                rng,
                fail,
                hang,
                delay_rate,
                delay,
            } => {
                // 53 random bits as a fraction in [0, 1).
                let roll = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                if roll < *fail {
                    Fault::Fail
                } else if roll < *fail + *hang {
                    Fault::Hang
                } else if roll < *fail + *hang + *delay_rate {
                    Fault::Delay(*delay)
                } else {
                    Fault::Pass
                }
            }
        };
        if fault != Fault::Pass {
            state.injected += 1;
        }
        (fault, state.calls)
    }

    /// Runs `call` under the next fault: passes it through, fails at once
    /// (dropping `call` unpolled), hangs until dropped, or delays it on
    /// `timer` first.
    ///
    /// The fault is drawn when `inject` is called, not when the future is
    /// first polled, so the order of calls decides who gets which fault.
    ///
    /// # Errors
    ///
    /// [`InjectedFault`] when the fault is [`Fault::Fail`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops `call` (or the delay before it).
    pub fn inject<T: Timer, F: Future>(
        &self,
        timer: &T,
        call: F,
    ) -> impl Future<Output = Result<F::Output, InjectedFault>> + use<T, F> {
        let (fault, number) = self.draw();
        let sleep = match fault {
            Fault::Delay(d) => Some(timer.sleep(d)),
            _ => None,
        };
        async move {
            match fault {
                Fault::Pass => Ok(call.await),
                Fault::Fail => Err(InjectedFault { call: number }),
                Fault::Hang => std::future::pending().await,
                Fault::Delay(_) => {
                    if let Some(sleep) = sleep {
                        sleep.await;
                    }
                    Ok(call.await)
                }
            }
        }
    }

    /// How many calls drew a fault so far (passing ones included).
    #[must_use]
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// How many calls got a fault other than [`Fault::Pass`].
    #[must_use]
    pub fn injected(&self) -> u64 {
        self.state().injected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VirtualRuntime;
    use crate::timeout::timeout;

    #[test]
    fn a_script_is_followed_in_order_then_every_call_passes() {
        let faults = Faults::script([
            Fault::Fail,
            Fault::Delay(Duration::from_millis(5)),
            Fault::Hang,
        ]);
        let drawn: Vec<_> = (0..5).map(|_| faults.next_fault()).collect();
        assert_eq!(
            drawn,
            [
                Fault::Fail,
                Fault::Delay(Duration::from_millis(5)),
                Fault::Hang,
                Fault::Pass,
                Fault::Pass
            ]
        );
        assert_eq!((faults.calls(), faults.injected()), (5, 3));
    }

    #[test]
    fn seeded_faults_follow_their_rates_and_replay_with_the_same_seed() {
        let build = || {
            Faults::seeded(3)
                .fail_rate(0.3)
                .hang_rate(0.1)
                .delay(0.2, Duration::from_millis(1))
                .build()
                .unwrap()
        };
        let (a, b) = (build(), build());
        let draws: Vec<_> = (0..10_000).map(|_| a.next_fault()).collect();
        assert!(
            draws
                .iter()
                .zip((0..).map(|_| b.next_fault()))
                .all(|(x, y)| *x == y)
        );
        let share = |f: Fault| draws.iter().filter(|d| **d == f).count() as f64 / 10_000.0;
        assert!((share(Fault::Fail) - 0.3).abs() < 0.02);
        assert!((share(Fault::Hang) - 0.1).abs() < 0.02);
        assert!((share(Fault::Delay(Duration::from_millis(1))) - 0.2).abs() < 0.02);
    }

    #[test]
    fn rates_outside_zero_to_one_or_adding_above_one_are_config_errors() {
        assert!(Faults::seeded(1).fail_rate(1.5).build().is_err());
        assert!(Faults::seeded(1).hang_rate(-0.1).build().is_err());
        assert!(Faults::seeded(1).fail_rate(f64::NAN).build().is_err());
        assert!(
            Faults::seeded(1)
                .fail_rate(0.6)
                .hang_rate(0.6)
                .build()
                .is_err()
        );
        assert!(Faults::seeded(1).fail_rate(1.0).build().is_ok());
    }

    #[test]
    fn injected_faults_fail_delay_and_hang_the_wrapped_call() {
        let rt = VirtualRuntime::new();
        let faults = Faults::script([
            Fault::Fail,
            Fault::Delay(Duration::from_millis(40)),
            Fault::Hang,
        ]);
        let out = rt.block_on(faults.inject(&rt, async { 1 })).unwrap();
        assert_eq!(out, Err(InjectedFault { call: 1 }));
        let out = rt.block_on(faults.inject(&rt, async { 2 })).unwrap();
        assert_eq!(out, Ok(2));
        assert_eq!(rt.now().since_origin(), Duration::from_millis(40));
        let hung = rt
            .block_on(timeout(
                &rt,
                Duration::from_secs(1),
                faults.inject(&rt, async { 3 }),
            ))
            .unwrap();
        assert!(hung.is_err(), "a hang only ends by a timeout");
        assert_eq!(rt.block_on(faults.inject(&rt, async { 4 })).unwrap(), Ok(4));
    }
}
