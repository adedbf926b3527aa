use std::fmt;
use std::sync::Arc;

use thiserror::Error;

use crate::runtime::{Panicked, SpawnError};
use crate::scope::{CancelReason, Cancelled};

/// How one child of a group ended, when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChildError<E> {
    /// The child returned an error.
    #[error("the task failed: {0:?}")]
    Failed(E),
    /// The child panicked (only where panics unwind; on wasm32 a panic aborts).
    #[error("{0}")]
    Panicked(Panicked),
    /// The child was cancelled before it finished; the reason says why.
    #[error("{0}")]
    Cancelled(Cancelled),
    /// The executor dropped the child before it finished.
    #[error(
        "the executor dropped the task before it finished; keep the executor running until the group is joined"
    )]
    Lost,
}

impl<E> ChildError<E> {
    /// Whether the child was cancelled (as opposed to failing).
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ChildError::Cancelled(_))
    }

    /// The child's own error, if it returned one.
    #[must_use]
    pub fn into_failed(self) -> Option<E> {
        match self {
            ChildError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// A child's end in staunch's one error type, with the mapping a
/// [`JoinHandle`](crate::runtime::JoinHandle)'s end uses: its own error is
/// [`Error::Inner`](crate::Error::Inner), a panic
/// [`Error::Panicked`](crate::Error::Panicked), a cancellation (its reason
/// kept) [`Error::Cancelled`](crate::Error::Cancelled), and a child its
/// executor dropped a cancellation with reason
/// [`Shutdown`](crate::scope::CancelReason::Shutdown).
impl<E> From<ChildError<E>> for crate::Error<E> {
    fn from(ended: ChildError<E>) -> Self {
        match ended {
            ChildError::Failed(e) => crate::Error::Inner(e),
            ChildError::Panicked(p) => crate::Error::Panicked(p),
            ChildError::Cancelled(c) => crate::Error::Cancelled(c),
            ChildError::Lost => crate::Error::Cancelled(Cancelled {
                reason: CancelReason::Shutdown,
            }),
        }
    }
}

/// One child's failure, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFailure<E> {
    /// The child's index in spawn order (from 0).
    pub index: usize,
    /// The child's name, if it was spawned with one.
    pub name: Option<Arc<str>>,
    /// What went wrong.
    pub error: ChildError<E>,
}

impl<E> TaskFailure<E> {
    /// The name, or `#index` when the child had none.
    #[must_use]
    pub fn label(&self) -> String {
        label(self.name.as_deref(), self.index)
    }
}

pub(crate) fn label(name: Option<&str>, index: usize) -> String {
    name.map_or_else(|| format!("#{index}"), str::to_owned)
}

impl<E: fmt::Debug> fmt::Display for TaskFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task `{}`: {}", self.label(), self.error)
    }
}

/// Why [`TaskGroup::join`](super::TaskGroup::join) did not return every
/// child's value.
///
/// Holds every failure, in spawn order (`first` is the failure with the
/// lowest spawn index, `others` the rest), and how many children were
/// cancelled. Nothing is dropped on the floor: unlike asyncio's `gather`,
/// sibling errors are kept.
///
/// # Which children are failures
///
/// A child that ended with its own error (or panicked, or was lost) is a
/// failure, even if its group was being cancelled at that moment: a child
/// that was cancelled after it had been woken is polled one last time, and
/// if that poll finishes it, its own result counts (as a trio task that was
/// already rescheduled runs on to its next checkpoint and raises its own
/// error into the `ExceptionGroup`). Only a child that ends with no result
/// of its own counts in `cancelled`.
///
/// The order is spawn order, not arrival order, because arrival order
/// varies between runs on a multi-threaded executor. Which failure
/// *triggered* the fail-fast cancel is in `reason`
/// ([`CancelReason::SiblingFailed`] names it). asyncio's `TaskGroup`
/// raises an `ExceptionGroup` of every child's exception, in the order the
/// tasks finished; tokio's `JoinSet` has no group error at all (each task's
/// result is read one by one, in completion order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupError<E> {
    /// The failure with the lowest spawn index; `None` if the group was
    /// cancelled from the outside (its scope or a parent scope) without any
    /// child failing.
    pub first: Option<TaskFailure<E>>,
    /// Every other failure, in spawn order.
    pub others: Vec<TaskFailure<E>>,
    /// How many children were cancelled (in fail-fast mode, by the first
    /// failure) with no result of their own.
    pub cancelled: usize,
    /// The group scope's cancel reason, if it was cancelled.
    pub reason: Option<CancelReason>,
}

impl<E> GroupError<E> {
    /// Every failure, in spawn order.
    pub fn failures(&self) -> impl Iterator<Item = &TaskFailure<E>> {
        self.first.iter().chain(self.others.iter())
    }

    /// Whether the group ended because it was cancelled, with no child failing.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.first.is_none()
    }

    /// The first child's own error, if the first failure was one.
    #[must_use]
    pub fn into_first_error(self) -> Option<E> {
        self.first.and_then(|f| f.error.into_failed())
    }
}

impl<E: fmt::Debug> fmt::Display for GroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.first, &self.reason) {
            (Some(first), _) => write!(f, "{first}")?,
            (None, Some(reason)) => write!(f, "the task group was cancelled: {reason}")?,
            (None, None) => f.write_str("the task group was cancelled")?,
        }
        if !self.others.is_empty() {
            write!(f, "; {} more tasks failed", self.others.len())?;
        }
        if self.cancelled > 0 {
            write!(f, "; {} tasks were cancelled", self.cancelled)?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> std::error::Error for GroupError<E> {}

/// Why a child could not be added to a group.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GroupSpawnError {
    /// The group was joined or dropped; it takes no more children.
    #[error(
        "the task group is closed (joined or dropped); spawn children before the join completes"
    )]
    Closed,
    /// The group is being cancelled (a child failed, or its scope was
    /// cancelled); a new child would be cancelled at once.
    ///
    /// In a fail-fast group this is the answer from the moment a child's
    /// failure is recorded, on every runtime (the reason is
    /// [`CancelReason::SiblingFailed`](crate::scope::CancelReason)); trio
    /// instead starts the task and cancels it at its first checkpoint, which
    /// in Rust would mean a future that is dropped without ever being
    /// polled: refusing says so at once, and hands the caller a typed error
    /// instead of a child that silently never ran.
    #[error("the task group is being cancelled, so it takes no more children: {0}")]
    Cancelled(Cancelled),
    /// The executor refused the task.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}
