use std::time::Duration;

use thiserror::Error;

/// A bulkhead refused the call: it was full, or the call waited too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Every slot was busy and the waiting queue was full.
    #[error(
        "rejected: all {max_concurrent} slots are busy and the queue of {max_queued} is full; shed load or raise the limits"
    )]
    Full {
        /// The bulkhead's concurrency limit.
        max_concurrent: usize,
        /// The bulkhead's queue limit.
        max_queued: usize,
    },
    /// The call waited in the queue longer than the queue timeout.
    #[error("rejected: waited {waited:?} in the queue without getting a slot")]
    QueueTimeout {
        /// How long the call waited.
        waited: Duration,
    },
}
