//! The seam between a [`CircuitBreaker`](super::CircuitBreaker) and where
//! its state lives.
//!
//! A breaker judges each call's outcome by its own rules
//! ([`failure_if`](super::CircuitBreakerBuilder::failure_if), timeouts and
//! panics below count, cancellations never do) and asks its store two
//! things: may a call run ([`admit`](BreakerStore::admit)), and what did an
//! admitted call do ([`report`](BreakerStore::report)). The default store
//! is in memory, lock-free in the closed state, and is used without dynamic
//! dispatch. Another store (staunch-redis keeps one breaker's state in Redis
//! for every process of a service) plugs in through
//! [`CircuitBreaker::with_store`](super::CircuitBreaker::with_store), and
//! every breaker API (`call`, `try_acquire`, metrics, forcing, a `Policy`
//! stage) then works on it unchanged.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::machine::Shared;
use super::ticket::{Outcome, Ticket};
use super::{CircuitOpen, CircuitState, Metrics};
use crate::runtime::{MaybeSend, MaybeSync};

/// Where a breaker's state lives: the in-memory machine or a store of the
/// user's (such as one shared between processes).
///
/// # Contract
///
/// - Every permit [`admit`](Self::admit) hands out is reported exactly
///   once through [`report`](Self::report): with the call's outcome, or
///   with [`Outcome::Neither`] when the call was cancelled, rejected below,
///   or its permit was dropped unreported. A probe reported as `Neither`
///   must free its half-open slot.
/// - `admit` and `report` sit on every call's path: they must not block.
///   A decision that needs a round trip (a half-open probe slot held in a
///   remote store) is returned as [`Admission::Decide`], a future the call
///   awaits; a store whose answer is local returns at once.
/// - A store decides its own transitions and emits its own events; the
///   breaker neither reads a clock nor keeps a window for it.
pub trait BreakerStore: MaybeSend + MaybeSync + 'static {
    /// Whether a call may run now.
    fn admit(&self) -> Admission;

    /// What an admitted call did. Never called twice for one permit.
    fn report(&self, permit: Permit, outcome: Outcome);

    /// The state now, as this store knows it.
    fn state(&self) -> CircuitState;

    /// A snapshot for [`CircuitBreaker::metrics`](super::CircuitBreaker::metrics);
    /// start from [`Metrics::new`] and fill in what the store knows.
    fn metrics(&self) -> Metrics;

    /// Holds the state: `ForcedOpen`, `ForcedClosed`, or `Closed` to end a
    /// forced state (what [`force_open`](super::CircuitBreaker::force_open),
    /// [`force_closed`](super::CircuitBreaker::force_closed) and
    /// [`reset`](super::CircuitBreaker::reset) ask for). A store documents
    /// whether forcing reaches other processes.
    fn force(&self, to: CircuitState);

    /// The breaker's name, for `Debug` output and events.
    fn name(&self) -> &str;
}

/// A store's answer to "may this call run?".
pub enum Admission {
    /// Run the call; report its outcome with this permit.
    Admitted(Permit),
    /// Refused: the circuit is open (or every half-open probe slot is taken).
    Refused(CircuitOpen),
    /// The answer needs a round trip: the call awaits this future before it
    /// runs. Dropping the future (the call was cancelled while waiting)
    /// must leave no slot taken.
    Decide(PendingAdmission),
}

/// The future of an [`Admission::Decide`]: `Send` where the target has
/// threads.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub type PendingAdmission = Pin<Box<dyn Future<Output = Result<Permit, CircuitOpen>> + Send>>;
/// The future of an [`Admission::Decide`]: `Send` where the target has
/// threads.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub type PendingAdmission = Pin<Box<dyn Future<Output = Result<Permit, CircuitOpen>>>>;

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Admission::Admitted(permit) => f.debug_tuple("Admitted").field(permit).finish(),
            Admission::Refused(open) => f.debug_tuple("Refused").field(open).finish(),
            Admission::Decide(_) => f.write_str("Decide(..)"),
        }
    }
}

/// What an admitted call carries until it reports: the store's generation
/// (so a report made after a transition can be recognised as stale) and
/// whether the call is a half-open probe.
#[derive(Clone, Copy)]
pub struct Permit(pub(super) Ticket);

/// The largest generation a [`Permit`] carries; larger ones are cut to it.
pub const MAX_GENERATION: u64 = u64::MAX >> 1;

impl Permit {
    /// A permit for a call admitted under `generation` (at most
    /// [`MAX_GENERATION`]), a half-open probe when `probe`.
    #[must_use]
    pub fn new(generation: u64, probe: bool) -> Permit {
        Permit(Ticket::new(generation.min(MAX_GENERATION), probe, None))
    }

    /// The generation the call was admitted under.
    #[must_use]
    pub fn generation(self) -> u64 {
        self.0.generation()
    }

    /// Whether the call is a half-open probe.
    #[must_use]
    pub fn is_probe(self) -> bool {
        self.0.probe()
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("generation", &self.generation())
            .field("probe", &self.is_probe())
            .finish()
    }
}

/// A breaker's store as the breaker holds it: the in-memory machine
/// directly (its closed-state path inlines into every call), anything else
/// behind the trait.
#[derive(Clone)]
pub(super) enum Store {
    Memory(Arc<Shared>),
    Custom(Arc<dyn BreakerStore>),
}

/// What [`Store::acquire`] found.
pub(super) enum Acquired {
    Now(Ticket),
    Refused(CircuitOpen),
    Decide(PendingAdmission),
}

impl Store {
    #[inline]
    pub(super) fn acquire(&self) -> Acquired {
        match self {
            Store::Memory(shared) => match shared.acquire() {
                Ok(ticket) => Acquired::Now(ticket),
                Err(open) => Acquired::Refused(open),
            },
            Store::Custom(store) => match store.admit() {
                Admission::Admitted(permit) => Acquired::Now(permit.0),
                Admission::Refused(open) => Acquired::Refused(open),
                Admission::Decide(pending) => Acquired::Decide(pending),
            },
        }
    }

    #[inline]
    pub(super) fn record(&self, ticket: Ticket, outcome: Outcome) {
        match self {
            Store::Memory(shared) => shared.record(ticket, outcome),
            Store::Custom(store) => store.report(Permit(ticket), outcome),
        }
    }

    /// A permit that will never report.
    #[inline]
    pub(super) fn release(&self, ticket: Ticket) {
        match self {
            Store::Memory(shared) => shared.release(ticket),
            Store::Custom(store) => store.report(Permit(ticket), Outcome::Neither),
        }
    }

    pub(super) fn name(&self) -> &str {
        match self {
            Store::Memory(shared) => &shared.name,
            Store::Custom(store) => store.name(),
        }
    }

    pub(super) fn state(&self) -> CircuitState {
        match self {
            Store::Memory(shared) => shared.state(),
            Store::Custom(store) => store.state(),
        }
    }

    pub(super) fn metrics(&self) -> Metrics {
        match self {
            Store::Memory(shared) => shared.metrics(),
            Store::Custom(store) => store.metrics(),
        }
    }

    pub(super) fn force(&self, to: CircuitState) {
        match self {
            Store::Memory(shared) => shared.force(to),
            Store::Custom(store) => store.force(to),
        }
    }
}
