use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::runtime::Instant;

/// Why a scope (and everything in it) was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Someone called `cancel`, optionally saying why.
    Explicit {
        /// The message given to `cancel_with`, if any.
        message: Option<Arc<str>>,
    },
    /// The scope's deadline passed (its own or one inherited from an ancestor).
    Deadline {
        /// The deadline that passed, on the scope's timer clock.
        at: Instant,
    },
    /// An enclosing scope was cancelled; the reason at the root of the
    /// cancellation is inside (however many scopes it passed through).
    Parent(Arc<CancelReason>),
    /// A sibling task in a fail-fast group failed.
    SiblingFailed {
        /// The failing task's name, or `#index` if it had none.
        task: Arc<str>,
    },
    /// Graceful shutdown was requested.
    Shutdown,
    /// This one task was aborted through its handle
    /// ([`ChildHandle::abort`](crate::group::ChildHandle::abort),
    /// [`JoinHandle::abort`](crate::runtime::JoinHandle::abort)); its
    /// siblings and scope go on.
    Aborted,
}

impl CancelReason {
    /// The reason at the root of a chain of `Parent` reasons. The reasons
    /// staunch hands to children are one `Parent` deep at most (never one
    /// level per scope), so dropping, comparing or printing a reason costs
    /// the same however deep the scopes are nested.
    #[must_use]
    pub fn root(&self) -> &CancelReason {
        let mut reason = self;
        while let CancelReason::Parent(inner) = reason {
            reason = inner;
        }
        reason
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Explicit { message: Some(m) } => write!(f, "cancelled: {m}"),
            CancelReason::Explicit { message: None } => f.write_str("cancelled explicitly"),
            CancelReason::Deadline { at } => write!(f, "the deadline at {at:?} passed"),
            CancelReason::Parent(inner) => write!(f, "an enclosing scope was cancelled ({inner})"),
            CancelReason::SiblingFailed { task } => write!(f, "sibling task `{task}` failed"),
            CancelReason::Shutdown => f.write_str("shutting down"),
            CancelReason::Aborted => f.write_str("the task was aborted through its handle"),
        }
    }
}

/// The operation was cancelled before it finished; the reason says why.
///
/// Cancellation is not an ordinary failure: staunch never retries it, never
/// counts it against a circuit breaker, and never replaces it with a fallback.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("operation cancelled: {reason}")]
pub struct Cancelled {
    /// Why the operation was cancelled.
    pub reason: CancelReason,
}
