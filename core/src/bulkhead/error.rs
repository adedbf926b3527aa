use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::observe::{Event, Observers};

/// A bulkhead refused the call: it was full, or the call waited too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Rejected {
    /// Every slot was busy and the waiting queue was full.
    #[error(
        "rejected: every slot is busy (limit {max_concurrent}) and no queue place is free (limit {max_queued}); shed load or raise the limits"
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

/// Tells the observers of the limit named `name` that it rejected a call.
///
/// The bulkhead and the adaptive limit store this with their observers
/// (`observers(...)`), so a program that registers none links neither the
/// event's construction and drop glue nor the rejection's wording.
pub(crate) type TellRejected = fn(&Observers, &Arc<str>, &Rejected);

/// The [`TellRejected`] stored with observers.
pub(crate) fn tell_rejected(observers: &Observers, name: &Arc<str>, rejected: &Rejected) {
    observers.emit(|| Event::CallRejected {
        name: name.clone(),
        reason: rejected.to_string(),
    });
}
