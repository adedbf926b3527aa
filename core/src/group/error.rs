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
/// Holds the first failure (in the order they happened), every other
/// failure, and how many children were cancelled. Nothing is dropped on the
/// floor: unlike asyncio's `gather`, sibling errors are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupError<E> {
    /// The first child to fail; `None` if the group was cancelled from the
    /// outside (its scope or a parent scope) without any child failing.
    pub first: Option<TaskFailure<E>>,
    /// Every other failure, in the order they happened.
    pub others: Vec<TaskFailure<E>>,
    /// How many children were cancelled (in fail-fast mode, by the first
    /// failure) instead of finishing.
    pub cancelled: usize,
    /// The group scope's cancel reason, if it was cancelled.
    pub reason: Option<CancelReason>,
}

impl<E> GroupError<E> {
    /// Every failure, the first one first.
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
    #[error("the task group is being cancelled, so it takes no more children: {0}")]
    Cancelled(Cancelled),
    /// The executor refused the task.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}
