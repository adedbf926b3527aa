use std::sync::Arc;
use std::time::Duration;

use super::CircuitState;
use crate::runtime::UnobservedError;
use crate::scope::CancelReason;

/// One decision staunch made, given to every registered [`Observer`](super::Observer).
///
/// `name` fields carry the name the user gave the operation, task, breaker
/// or bulkhead (empty when none was given).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An attempt of a retried operation is starting (attempt 1 is the first call).
    AttemptStarted {
        /// The operation's name.
        name: Arc<str>,
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// An attempt failed and another one is scheduled after `delay`.
    RetryScheduled {
        /// The operation's name.
        name: Arc<str>,
        /// The attempt that failed, from 1.
        attempt: u32,
        /// How long staunch waits before the next attempt.
        delay: Duration,
        /// The failed attempt's error, in `Debug` form.
        error: String,
    },
    /// Retrying stopped for good: attempts, budget or classifier said so
    /// (never sent for a cancelled call: cancellation is counted nowhere).
    RetryExhausted {
        /// The operation's name.
        name: Arc<str>,
        /// How many attempts were made in all.
        attempts: u32,
    },
    /// A circuit breaker changed state.
    CircuitStateChanged {
        /// The breaker's name.
        name: Arc<str>,
        /// The state before.
        from: CircuitState,
        /// The state after.
        to: CircuitState,
        /// Why, in words ("failure rate 60% over 20 calls", "open duration over", ...).
        reason: String,
    },
    /// A component keeping its state in an external store (a shared
    /// breaker or rate limiter on Redis, say) stopped or resumed using it:
    /// `degraded` is `true` when the store failed and the component switched
    /// to its failure mode, `false` when the store answered again.
    StoreModeChanged {
        /// The breaker's or limiter's name.
        name: Arc<str>,
        /// Whether the store is now unusable (`true`) or back (`false`).
        degraded: bool,
        /// What the component does now ("fallback to local state",
        /// "fail open", "fail closed", "shared"), and why, in words.
        reason: String,
    },
    /// A call was refused without running (open circuit, full bulkhead).
    CallRejected {
        /// The breaker's or bulkhead's name.
        name: Arc<str>,
        /// Why, in words.
        reason: String,
    },
    /// A timeout fired.
    TimeoutFired {
        /// The operation's name.
        name: Arc<str>,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// A task or scope was cancelled.
    Cancelled {
        /// The task's or scope's name.
        name: Arc<str>,
        /// Why.
        reason: CancelReason,
    },
    /// A task failed and nobody was left to observe it.
    Unobserved(UnobservedError),
    /// A fallback replaced a failure.
    FallbackUsed {
        /// The operation's name.
        name: Arc<str>,
        /// The error that was replaced, in `Debug` form.
        error: String,
    },
    /// A hedged request started another attempt.
    HedgeStarted {
        /// The operation's name.
        name: Arc<str>,
        /// How many attempts are now running, including this one.
        attempt: u32,
    },
    /// A rate limiter admitted a call of this cost.
    RateAdmitted {
        /// The limiter's name.
        name: Arc<str>,
        /// The call's cost (1 unless weighted).
        cost: u32,
    },
    /// A rate limiter refused a call; it could be admitted after `retry_after`.
    RateLimited {
        /// The limiter's name.
        name: Arc<str>,
        /// The call's cost (1 unless weighted).
        cost: u32,
        /// How long until a call of this cost would be admitted.
        retry_after: Duration,
    },
    /// An adaptive concurrency limit moved.
    ConcurrencyLimitChanged {
        /// The limit's name.
        name: Arc<str>,
        /// The limit before.
        from: usize,
        /// The limit after.
        to: usize,
    },
    /// A work queue accepted an item (see [`queue::WorkerPool`](crate::queue::WorkerPool)).
    QueueItemSubmitted {
        /// The pool's name.
        name: Arc<str>,
        /// The item's submission number.
        index: u64,
        /// Items queued right after this one went in.
        depth: usize,
    },
    /// A worker pool finished an item (success or dead letter).
    QueueItemDone {
        /// The pool's name.
        name: Arc<str>,
        /// The item's submission number.
        index: u64,
        /// How long it waited in the queue before a worker took it.
        waited: Duration,
        /// How long the worker spent on it (per-key wait, every attempt and retry delay).
        took: Duration,
        /// How many times the handler was called for it.
        attempts: u32,
        /// Whether it succeeded.
        ok: bool,
        /// Items still queued when it finished.
        depth: usize,
    },
    /// A worker pool gave up on an item: it goes out as a dead letter.
    DeadLettered {
        /// The pool's name.
        name: Arc<str>,
        /// The item's submission number.
        index: u64,
        /// How many times the handler was called for it.
        attempts: u32,
        /// The last error, in `Debug` form.
        error: String,
    },
}
