//! The breaker's state machine: everything done under its mutex. The
//! lock-free closed-state path (admitting a call, counting a plain success)
//! is in [`fast_path`](super::fast_path); the token an admitted call carries
//! is in [`ticket`](super::ticket). The invariants below hold across all
//! three.
//!
//! # States and transitions
//!
//! ```text
//!   Closed --(trip rule)--> Open --(open duration over)--> HalfOpen
//!   HalfOpen --(enough probes succeeded)--> Closed
//!   HalfOpen --(too many probes failed / a probe stuck past the probe timeout)--> Open
//!   any --force_open--> ForcedOpen, any --force_closed--> ForcedClosed, any --reset--> Closed
//! ```
//!
//! A forced move to the state the breaker is in is not a transition: no
//! event (invariant 9).
//!
//! Nothing runs in the background: every transition that time causes
//! (Open -> HalfOpen, HalfOpen -> Open on the probe timeout of a stuck
//! probe, invariant 11) is made lazily
//! by the next caller that acquires, reports or inspects, against the
//! breaker's clock. So the breaker works with any runtime, or none.
//!
//! # Invariants
//!
//! 1. Every change to `Machine` happens under its mutex, and the mutex is
//!    never held across an `.await` or while observers run (events are
//!    collected and emitted after unlocking).
//! 2. `word` mirrors `(generation, phase tag)` of the machine; it is written
//!    only under the mutex, after the machine changed. A reader that sees a
//!    closed tag may admit a call without locking: that call carries the
//!    generation it saw.
//! 3. Every transition bumps `generation`. A report whose generation is not
//!    the current one is stale and ignored: a call admitted before a trip
//!    never counts after it, and a probe of an earlier half-open never counts
//!    in a later one.
//! 4. In half-open, `in_flight + reported <= probes` at all times. A probe
//!    is admitted only under the mutex when that stays true; a probe that
//!    reports moves from `in_flight` to `reported`; a probe that is dropped
//!    or ignored leaves `in_flight` without reporting, freeing its slot for
//!    another probe. So never more than `probes` probes are admitted per
//!    half-open period, even under races.
//! 5. A plain success (not slow, not a probe) in the closed state with a
//!    window that already holds the minimum calls (the "warm" bit) cannot
//!    raise a rate nor complete the minimum. Such successes are counted
//!    lock-free in `pending`, tagged with the generation, and moved into the
//!    window by whoever next takes the mutex, before anything else. A
//!    success counted for an older generation is dropped (invariant 3);
//!    `enter` resets `pending` to the new generation with the warm bit
//!    clear. For a count window the window then holds the same outcomes, in
//!    the same order for calls that did not overlap, as if every success had
//!    taken the lock. A time window may slide below its minimum while warm:
//!    the next locked report (at most the pending limit later, invariant
//!    10) judges it again.
//! 6. Cancellation never reaches `record`: a cancelled call drops its permit,
//!    which is the "neither" outcome.
//! 7. `tripped_by` holds what the breaker judged by (window totals and
//!    failures in a row, or the half-open probe counts) at the moment it
//!    last entered an open state; it is written only by `enter`, so it stays
//!    what tripped the breaker for as long as it is open. Refused calls are
//!    counted in `refused`, outside the mutex, never reset.
//! 8. No work under the mutex grows with load: folding `pending` into the
//!    window costs at most the window's size (a count window keeps only its
//!    last `size` successes; a time window adds them to one bucket), whatever
//!    the backlog; windows are bounded at build time.
//! 9. A forced transition to the state the breaker is already in emits no
//!    event (a reset of a closed breaker still empties the window).
//! 10. A time window reads the clock only when it takes the mutex, not per
//!     success: the clock is coarse. Its pending successes go into the
//!     bucket current when they are folded in, and at most `limit` of them
//!     pile up before a success takes the mutex (and reads the clock)
//!     itself. `limit` is set under the mutex to about the number of calls
//!     that arrived per sixteenth of a bucket at the rate last measured
//!     (0 at first and whenever calls are slower than that, so a quiet
//!     breaker is exact; at most 254). So a success lands at most a
//!     sixteenth of a bucket late at a steady rate; only a pause right after
//!     a burst can carry at most 254 successes into a later bucket.
//! 11. Half-open reopens by time only when a probe is stuck: some probe
//!     is in flight and the probe timeout has passed since the last probe
//!     was admitted (so every probe in flight has been for at least that
//!     long). With no probe in flight nothing is stuck, since a free slot
//!     admits the next call as a probe: a quiet service whose probes
//!     succeeded stays half-open until enough calls come, however long
//!     that takes, instead of being reopened for being quiet. Every
//!     refusal in half-open has a probe in flight, so its `retry_after`
//!     (the last probe's admission plus the probe timeout) is when the
//!     breaker reopens at the latest.

use std::sync::Arc;
use std::time::Duration;

use super::config::Config;
use super::fast_path::{
    COUNT_MASK, GEN_MASK, LIMIT_MASK, LIMIT_SHIFT, MAX_TIMED_LIMIT, UNLIMITED, WARM, counted,
    fresh, start,
};
use super::reason::{Notice, Reason, Tell};
use super::ticket::{Outcome, Ticket};
use super::window::{Mark, Totals, Window, WindowKind};
use super::{CircuitOpen, CircuitState, Metrics};
use crate::nanos::saturating_nanos;
use crate::observe::Observers;
use crate::retry::Backoff;
use crate::runtime::{AnyTimer, Instant, Timer};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering, lock};

pub(super) const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const FORCED_OPEN: u64 = 3;
pub(super) const FORCED_CLOSED: u64 = 4;
pub(super) const TAG_BITS: u32 = 3;

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        /// When the last probe was admitted (when half-open began, before
        /// any): the probe timeout counts from here (invariant 11).
        last_probe: Instant,
        in_flight: u32,
        successes: u32,
        failures: u32,
        slow: u32,
    },
    ForcedOpen,
    ForcedClosed,
}

impl Phase {
    fn tag(self) -> u64 {
        match self {
            Phase::Closed => CLOSED,
            Phase::Open { .. } => OPEN,
            Phase::HalfOpen { .. } => HALF_OPEN,
            Phase::ForcedOpen => FORCED_OPEN,
            Phase::ForcedClosed => FORCED_CLOSED,
        }
    }

    fn state(self) -> CircuitState {
        match self {
            Phase::Closed => CircuitState::Closed,
            Phase::Open { .. } => CircuitState::Open,
            Phase::HalfOpen { .. } => CircuitState::HalfOpen,
            Phase::ForcedOpen => CircuitState::ForcedOpen,
            Phase::ForcedClosed => CircuitState::ForcedClosed,
        }
    }
}

/// What the breaker was judging by at some moment: its window's totals and
/// the failures in a row (in half-open: the probes reported so far).
#[derive(Debug, Clone, Copy, Default)]
struct Judged {
    totals: Totals,
    consecutive: u64,
}

#[derive(Debug)]
struct Machine {
    generation: u64,
    phase: Phase,
    window: Window,
    /// Failures in a row; `u64`, so no valid use can overflow it.
    consecutive: u64,
    /// What the breaker judged by when it last opened (invariant 7): what
    /// `metrics` shows while it is open.
    tripped_by: Judged,
    /// Open durations for the current streak of trips; restarts on close.
    open_delays: Backoff,
    last_open: Duration,
    /// Where the time window's call-rate measurement started, and the
    /// calls counted since (invariant 10).
    rate_since: Instant,
    rate_calls: u64,
}

type Change = Option<(CircuitState, CircuitState, Reason)>;

/// Everything clones of one breaker share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) clock: AnyTimer,
    pub(crate) name: Arc<str>,
    pub(crate) observers: Observers,
    /// Tells the observers; set with them (see `reason.rs`).
    tell: Option<Tell>,
    pub(super) word: AtomicU64,
    /// Calls refused since the breaker was built.
    pub(super) refused: AtomicU64,
    /// Plain successes not yet in the window (invariant 5):
    /// `generation (31 bits) | warm (1 bit) | limit (8 bits) | count (24 bits)`.
    /// `count` starts at `COUNT_MASK - limit` (0 when the limit is
    /// [`UNLIMITED`], as for count windows; time windows adapt the limit to
    /// the call rate, invariant 10), and a success may be counted here while
    /// `count` is below `COUNT_MASK`: one comparison with a constant.
    pub(super) pending: AtomicU64,
    machine: Mutex<Machine>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        clock: AnyTimer,
        name: Arc<str>,
        observers: Observers,
        tell: Option<Tell>,
    ) -> Shared {
        let machine = Machine {
            generation: 0,
            phase: Phase::Closed,
            window: Window::new(config.window),
            consecutive: 0,
            tripped_by: Judged::default(),
            open_delays: config.open.clone(),
            last_open: Duration::ZERO,
            rate_since: Instant::ORIGIN,
            rate_calls: 0,
        };
        let pending = fresh(0, Self::first_limit(config.window));
        Shared {
            config,
            clock,
            name,
            observers,
            tell,
            word: AtomicU64::new(CLOSED),
            refused: AtomicU64::new(0),
            pending: AtomicU64::new(pending),
            machine: Mutex::new(machine),
        }
    }

    /// The pending limit a generation starts with: unlimited for a count
    /// window; none for a time window until its call rate is known.
    fn first_limit(window: WindowKind) -> u64 {
        if window.is_timed() { 0 } else { UNLIMITED }
    }

    /// Locks the machine and brings the pending successes into its window,
    /// in at most O(window size) steps however many piled up (invariant 8).
    fn machine(&self) -> MutexGuard<'_, Machine> {
        self.machine_at(None)
    }

    /// [`machine`](Self::machine), given the time if the caller read it (a
    /// time window needs it to fold successes in and to adapt its limit).
    fn machine_at(&self, now: Option<Instant>) -> MutexGuard<'_, Machine> {
        let mut m = lock(&self.machine);
        let p = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |p| {
                Some((p & !COUNT_MASK) | start((p & LIMIT_MASK) >> LIMIT_SHIFT))
            })
            .unwrap_or_else(|p| p);
        let n = counted(p);
        let current = p >> 33 == m.generation & GEN_MASK;
        if n > 0 && current {
            let now = match (now, self.config.window.is_timed()) {
                (Some(now), _) => now,
                (None, true) => self.clock.now(),
                (None, false) => Instant::ORIGIN,
            };
            m.window.record_successes(n, now);
            m.consecutive = 0;
            if let Window::Time(w) = &m.window {
                let slice = w.bucket_length() / 16;
                m.rate_calls += n;
                self.adapt_limit(&mut m, now, slice);
            }
        }
        m
    }

    /// Sets how many successes a time window lets pile up lock-free: about
    /// as many as arrive in a sixteenth of a bucket at the rate measured
    /// (invariant 10). Under the mutex.
    fn adapt_limit(&self, m: &mut Machine, now: Instant, slice: Duration) {
        let elapsed = now.saturating_duration_since(m.rate_since);
        let p = self.pending.load(Ordering::Relaxed);
        let limit = (p & LIMIT_MASK) >> LIMIT_SHIFT;
        let limit = if elapsed >= slice && !elapsed.is_zero() {
            let per_slice = per_slice(m.rate_calls, slice, elapsed);
            m.rate_since = now;
            m.rate_calls = 0;
            per_slice
        } else {
            // Faster than one slice so far: at least what came.
            limit.max(m.rate_calls)
        }
        .min(MAX_TIMED_LIMIT);
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |p| {
                // Keep what is counted (never below it: nothing is lost),
                // moved to the new start.
                let kept = counted(p);
                let limit = limit.max(kept);
                Some(
                    (p & !(LIMIT_MASK | COUNT_MASK))
                        | (limit << LIMIT_SHIFT)
                        | (start(limit) + kept),
                )
            });
    }

    /// [`acquire`](Self::acquire) in every state but closed: under the mutex.
    #[inline(never)]
    pub(super) fn acquire_locked(&self) -> Result<Ticket, CircuitOpen> {
        let now = self.clock.now();
        let (answer, change) = {
            let mut m = self.machine();
            let change = self.advance(&mut m, now);
            let answer = match &mut m.phase {
                Phase::Closed | Phase::ForcedClosed => Ok(false),
                Phase::Open { until } => Err(CircuitOpen {
                    retry_after: until.saturating_duration_since(now),
                }),
                Phase::ForcedOpen => Err(CircuitOpen {
                    retry_after: Duration::MAX,
                }),
                Phase::HalfOpen {
                    last_probe,
                    in_flight,
                    successes,
                    failures,
                    ..
                } => {
                    if *in_flight + *successes + *failures < self.config.probes {
                        *in_flight += 1;
                        *last_probe = now;
                        Ok(true)
                    } else {
                        // Every slot is taken, so a probe is in flight: the
                        // probe timeout reopens the breaker at this deadline
                        // unless the probes decide first (invariant 11).
                        let deadline = last_probe.saturating_add(self.config.probe_timeout);
                        Err(CircuitOpen {
                            retry_after: deadline.saturating_duration_since(now),
                        })
                    }
                }
            };
            (answer.map(|probe| (probe, m.generation)), change)
        };
        self.emit(change);
        match answer {
            Ok((probe, generation)) => Ok(Ticket::new(
                generation,
                probe,
                self.config.slow_call.map(|_| now),
            )),
            Err(open) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                if let Some(tell) = self.tell {
                    tell(&self.observers, &self.name, Notice::Refused(open));
                }
                Err(open)
            }
        }
    }

    /// [`record`](Self::record) for every report the fast path cannot take.
    #[inline(never)]
    pub(super) fn record_locked(&self, ticket: Ticket, verdict: Outcome) {
        let started = ticket.started();
        let needs_now = started.is_some()
            || (verdict != Outcome::Neither
                && matches!(self.config.window, WindowKind::Time { .. }));
        let now = (needs_now || ticket.probe()).then(|| self.clock.now());
        let slow = match (started, now, self.config.slow_call) {
            (Some(started), Some(now), Some((threshold, _))) => {
                now.saturating_duration_since(started) >= threshold
            }
            _ => false,
        };
        if verdict == Outcome::Success
            && !slow
            && !ticket.probe()
            && self.count_success(ticket.generation())
        {
            return;
        }
        let change = {
            let mut m = self.machine_at(now);
            if m.generation != ticket.generation() {
                return;
            }
            self.report(&mut m, verdict, slow, now)
        };
        self.emit(change);
    }

    /// `now` is `None` when the report needed no clock; a transition reads it then.
    fn report(
        &self,
        m: &mut Machine,
        verdict: Outcome,
        slow: bool,
        now: Option<Instant>,
    ) -> Change {
        let config = &self.config;
        let at = now.unwrap_or(Instant::ORIGIN);
        match &mut m.phase {
            Phase::Closed | Phase::ForcedClosed => {
                if verdict == Outcome::Neither {
                    return None;
                }
                let failed = verdict == Outcome::Failure;
                m.window.record(Mark { failed, slow }, at);
                m.consecutive = if failed {
                    m.consecutive.saturating_add(1)
                } else {
                    0
                };
                if matches!(m.phase, Phase::ForcedClosed) {
                    return None;
                }
                if let (Window::Time(w), Some(now)) = (&m.window, now) {
                    let slice = w.bucket_length() / 16;
                    m.rate_calls += 1;
                    self.adapt_limit(m, now, slice);
                }
                if m.window.totals(at).calls >= u64::from(config.minimum_calls) {
                    self.pending.fetch_or(WARM, Ordering::AcqRel);
                }
                // Past the minimum, a plain success cannot raise a count
                // window's rates (the last judgement found them below the
                // thresholds), so skip judging again. Time windows may shed
                // old successes as they slide: always judged.
                if !(failed || slow)
                    && matches!(m.window, Window::Count(_))
                    && m.window.totals(at).calls > u64::from(config.minimum_calls)
                {
                    return None;
                }
                let reason = self.trip_reason(m, at)?;
                let now = now.unwrap_or_else(|| self.clock.now());
                self.open(m, now, CircuitState::Closed, reason)
            }
            Phase::HalfOpen {
                in_flight,
                successes,
                failures,
                slow: slow_probes,
                ..
            } => {
                *in_flight -= 1;
                match verdict {
                    Outcome::Neither => return None,
                    Outcome::Success => *successes += 1,
                    Outcome::Failure => *failures += 1,
                }
                *slow_probes += u32::from(slow);
                let (ok, bad, slowed) = (*successes, *failures, *slow_probes);
                let probes = config.probes;
                let share = |n: u32| f64::from(n) / f64::from(probes);
                let slow_trips = config
                    .slow_call
                    .is_some_and(|(_, rate)| share(slowed) >= rate);
                let now = now.unwrap_or_else(|| self.clock.now());
                if share(bad) >= config.failure_rate {
                    let reason = Reason::ProbesFailed { bad, probes };
                    self.open(m, now, CircuitState::HalfOpen, reason)
                } else if slow_trips {
                    let reason = Reason::ProbesSlow { slowed, probes };
                    self.open(m, now, CircuitState::HalfOpen, reason)
                } else if ok + bad == probes {
                    let reason = Reason::ProbesSucceeded { ok, probes };
                    self.close(m, CircuitState::HalfOpen, reason)
                } else {
                    None
                }
            }
            Phase::Open { .. } | Phase::ForcedOpen => None,
        }
    }

    fn trip_reason(&self, m: &Machine, now: Instant) -> Option<Reason> {
        let config = &self.config;
        if let Some(n) = config
            .consecutive_failures
            .filter(|&n| m.consecutive >= u64::from(n))
        {
            return Some(Reason::InARow(n));
        }
        let Totals {
            calls,
            failures,
            slow,
        } = m.window.totals(now);
        if calls < u64::from(config.minimum_calls) {
            return None;
        }
        let (failure_rate, slow_rate) = (share(failures, calls), share(slow, calls));
        if failure_rate >= config.failure_rate {
            return Some(Reason::FailureRate {
                rate: failure_rate,
                calls,
            });
        }
        if config.slow_call.is_some_and(|(_, rate)| slow_rate >= rate) {
            return Some(Reason::SlowRate {
                rate: slow_rate,
                calls,
            });
        }
        None
    }

    /// Makes the time-driven transitions due at `now`.
    fn advance(&self, m: &mut Machine, now: Instant) -> Change {
        match m.phase {
            Phase::Open { until } if now >= until => {
                self.enter(
                    m,
                    Phase::HalfOpen {
                        last_probe: now,
                        in_flight: 0,
                        successes: 0,
                        failures: 0,
                        slow: 0,
                    },
                    now,
                );
                Some((
                    CircuitState::Open,
                    CircuitState::HalfOpen,
                    Reason::OpenFor(m.last_open),
                ))
            }
            Phase::HalfOpen {
                last_probe,
                in_flight,
                ..
            } if in_flight > 0
                && now.saturating_duration_since(last_probe) >= self.config.probe_timeout =>
            {
                let reason = Reason::ProbesUndecided(self.config.probe_timeout);
                self.open(m, now, CircuitState::HalfOpen, reason)
            }
            _ => None,
        }
    }

    fn open(&self, m: &mut Machine, now: Instant, from: CircuitState, reason: Reason) -> Change {
        let delay = m.open_delays.next().unwrap_or(m.last_open);
        m.last_open = delay;
        self.enter(
            m,
            Phase::Open {
                until: now.saturating_add(delay),
            },
            now,
        );
        Some((from, CircuitState::Open, reason))
    }

    fn close(&self, m: &mut Machine, from: CircuitState, reason: Reason) -> Change {
        m.open_delays = self.config.open.clone();
        // The window is empty after the move: the time is not read.
        self.enter(m, Phase::Closed, Instant::ORIGIN);
        Some((from, CircuitState::Closed, reason))
    }

    /// What the breaker judges by now: the window in closed states, the
    /// probes in half-open, the numbers that opened it while open.
    fn judged(m: &Machine, now: Instant) -> Judged {
        match m.phase {
            Phase::Closed | Phase::ForcedClosed => Judged {
                totals: m.window.totals(now),
                consecutive: m.consecutive,
            },
            Phase::HalfOpen {
                successes,
                failures,
                slow,
                ..
            } => Judged {
                totals: Totals {
                    calls: u64::from(successes) + u64::from(failures),
                    failures: u64::from(failures),
                    slow: u64::from(slow),
                },
                consecutive: 0,
            },
            Phase::Open { .. } | Phase::ForcedOpen => m.tripped_by,
        }
    }

    /// Moves to `phase` with a fresh window and a new generation (invariants
    /// 2, 3); entering an open state keeps what was judged (invariant 7).
    fn enter(&self, m: &mut Machine, phase: Phase, now: Instant) {
        if matches!(phase, Phase::Open { .. } | Phase::ForcedOpen) {
            m.tripped_by = Self::judged(m, now);
        }
        m.generation += 1;
        m.phase = phase;
        m.window.clear();
        m.consecutive = 0;
        self.word
            .store((m.generation << TAG_BITS) | phase.tag(), Ordering::Release);
        // Successes counted for the old generation are stale: dropped.
        self.pending.store(
            fresh(m.generation, Self::first_limit(self.config.window)),
            Ordering::Release,
        );
    }

    fn emit(&self, change: Change) {
        if let (Some((from, to, reason)), Some(tell)) = (change, self.tell) {
            tell(
                &self.observers,
                &self.name,
                Notice::Changed { from, to, reason },
            );
        }
    }

    /// Sets a state by hand; a state change is an event only when the state
    /// changed (forcing open a breaker held open is no news).
    ///
    /// Forcing the state it already holds changes nothing; a reset of a
    /// closed breaker still empties its window and restarts its open
    /// durations, but is not reported as a change.
    pub(crate) fn force(&self, to: CircuitState) {
        let now = self.clock.now();
        let change = {
            let mut m = self.machine();
            let from = m.phase.state();
            let (phase, reason) = match to {
                CircuitState::ForcedOpen => (Phase::ForcedOpen, "forced open"),
                CircuitState::ForcedClosed => (Phase::ForcedClosed, "forced closed"),
                _ => {
                    m.open_delays = self.config.open.clone();
                    (Phase::Closed, "reset")
                }
            };
            if from == to && to != CircuitState::Closed {
                return;
            }
            self.enter(&mut m, phase, now);
            (from != to).then_some((from, to, Reason::Forced(reason)))
        };
        self.emit(change);
    }

    /// Sets the failures-in-a-row counter, to test its edge.
    #[cfg(test)]
    pub(crate) fn set_consecutive_failures(&self, n: u64) {
        self.machine().consecutive = n;
    }

    /// The current state, after any transition time has made due.
    pub(crate) fn state(&self) -> CircuitState {
        self.metrics().state
    }

    /// A snapshot of the state and the window.
    pub(crate) fn metrics(&self) -> Metrics {
        let now = self.clock.now();
        let (metrics, change) = {
            let mut m = self.machine();
            let change = self.advance(&mut m, now);
            let Judged {
                totals,
                consecutive,
            } = Self::judged(&m, now);
            let metrics = Metrics {
                state: m.phase.state(),
                calls: totals.calls,
                failures: totals.failures,
                slow_calls: totals.slow,
                failure_rate: share(totals.failures, totals.calls),
                slow_call_rate: share(totals.slow, totals.calls),
                consecutive_failures: consecutive,
                refused_calls: self.refused.load(Ordering::Relaxed),
                retry_after: match m.phase {
                    Phase::Open { until } => Some(until.saturating_duration_since(now)),
                    Phase::ForcedOpen => Some(Duration::MAX),
                    _ => None,
                },
            };
            (metrics, change)
        };
        self.emit(change);
        metrics
    }
}

/// `part / whole`, or 0 for an empty whole.
#[allow(clippy::cast_precision_loss)] // exact below 2^53 calls; a rate either way
fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// How many of `calls`, counted over `elapsed`, fall in one `slice`
/// (`calls × slice / elapsed`, rounded down; `elapsed` is not zero).
///
/// In `u64` nanoseconds: 128-bit arithmetic would link a 1 KB division
/// routine into every browser build with a breaker. The product overflows
/// only past about 18 billion calls in a one-second slice; then the ratio
/// is taken first, in floating point, which is exact enough for a limit.
fn per_slice(calls: u64, slice: Duration, elapsed: Duration) -> u64 {
    let (slice, elapsed) = (saturating_nanos(slice), saturating_nanos(elapsed).max(1));
    match calls.checked_mul(slice) {
        Some(product) => product / elapsed,
        None => (calls as f64 * (slice as f64 / elapsed as f64)) as u64,
    }
}

#[cfg(test)]
mod per_slice_tests {
    use super::per_slice;
    use std::time::Duration;

    #[test]
    fn scales_a_count_to_one_slice_rounding_down() {
        let ms = Duration::from_millis;
        assert_eq!(per_slice(10, ms(100), ms(300)), 3);
        assert_eq!(per_slice(30, ms(100), ms(100)), 30);
        assert_eq!(per_slice(7, ms(100), ms(200)), 3);
        assert_eq!(per_slice(0, ms(100), ms(250)), 0);
    }

    #[test]
    fn a_product_past_u64_takes_the_ratio_first() {
        let secs = Duration::from_secs;
        // u64::MAX / 2 calls × 10 s overflows a u64 of nanoseconds.
        let calls = u64::MAX / 2;
        let got = per_slice(calls, secs(10), secs(20));
        let want = calls / 2;
        assert!(got.abs_diff(want) <= want / 1_000_000, "{got} vs {want}");
        // Durations past 584 years saturate alike, and the ratio is 1.
        assert_eq!(per_slice(5, Duration::MAX, Duration::MAX), 5);
    }
}
