//! Per-child control: the handle `spawn` returns, to abort one child or
//! wait for it, without touching its siblings.
//!
//! The handle holds the group's shared state (type-erased), the child's
//! slot and its spawn order; it allocates nothing of its own, so a spawn
//! whose handle is dropped at once costs what it cost before handles.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::{MaybeSend, MaybeSync};
use crate::scope::CancelReason;

use super::error::ChildError;

/// How one child of a group ended; what awaiting its [`ChildHandle`] gives.
///
/// The child's value or error is not in it: that stays with the group, so
/// [`join`](super::TaskGroup::join) still returns every value in spawn order
/// and every failure (awaiting a handle never takes one away).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildEnd {
    /// The child returned `Ok`.
    Finished,
    /// The child returned `Err`.
    Failed,
    /// The child panicked.
    Panicked,
    /// The child was cancelled: by its [`ChildHandle::abort`] (reason
    /// [`Aborted`](CancelReason::Aborted)), or with its group.
    Cancelled(CancelReason),
    /// The executor dropped the child before it finished.
    Lost,
}

impl ChildEnd {
    /// How a child that ended with `result` ended.
    pub(crate) fn of<T, E>(result: &Result<T, ChildError<E>>) -> ChildEnd {
        match result {
            Ok(_) => ChildEnd::Finished,
            Err(ChildError::Failed(_)) => ChildEnd::Failed,
            Err(ChildError::Panicked(_)) => ChildEnd::Panicked,
            Err(ChildError::Cancelled(c)) => ChildEnd::Cancelled(c.reason.clone()),
            Err(ChildError::Lost) => ChildEnd::Lost,
        }
    }

    /// Whether the child was cancelled (aborted, or with its group).
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ChildEnd::Cancelled(_))
    }

    /// Why the child was cancelled, if it was.
    #[must_use]
    pub fn cancel_reason(&self) -> Option<&CancelReason> {
        match self {
            ChildEnd::Cancelled(reason) => Some(reason),
            _ => None,
        }
    }
}

/// What a [`ChildHandle`] asks of its group.
pub(crate) trait ChildControl: MaybeSend + MaybeSync {
    /// Asks child (`slot`, `order`) to stop; nothing if it already ended.
    fn abort_child(&self, slot: usize, order: usize);
    /// How child (`slot`, `order`) ended, or pending (then `cx`, if given,
    /// is woken when it ends).
    fn poll_end(&self, slot: usize, order: usize, cx: Option<&mut Context<'_>>) -> Poll<ChildEnd>;
}

#[cfg(not(staunch_loom))]
pub(crate) type Control = std::sync::Arc<dyn ChildControl>;

// loom's `Arc` does not coerce to a trait object: box it (loom models only).
#[cfg(staunch_loom)]
pub(crate) type Control = Box<dyn ChildControl>;

#[cfg(staunch_loom)]
impl<C: ChildControl> ChildControl for crate::sync::Arc<C> {
    fn abort_child(&self, slot: usize, order: usize) {
        (**self).abort_child(slot, order);
    }
    fn poll_end(&self, slot: usize, order: usize, cx: Option<&mut Context<'_>>) -> Poll<ChildEnd> {
        (**self).poll_end(slot, order, cx)
    }
}

/// One child of a [`TaskGroup`](super::TaskGroup), from `spawn`: abort it,
/// or await how it ended.
///
/// Dropping the handle does nothing to the child (it keeps running as part
/// of its group). Awaiting it gives a [`ChildEnd`]; the child's value or
/// error stays with the group's join.
///
/// Aborting one child is not a failure: it ends as
/// [`ChildError::Cancelled`] with reason [`CancelReason::Aborted`], counts
/// as cancelled (never failed) in a [`GroupError`](super::GroupError), and
/// does not cancel its siblings, even in a fail-fast group. Unlike tokio's
/// `JoinSet::join_all`, which panics on an aborted task, the group's join
/// reports it as a value. Like any cancel in staunch, the child's future is
/// dropped at its next poll; shielded scopes inside it finish first.
///
/// # Example
///
/// ```
/// use staunch::group::{ChildEnd, ChildError, TaskGroup};
/// use staunch::runtime::Timer;
/// use staunch::scope::CancelReason;
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let results = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let group = TaskGroup::supervisor(rt.clone());
///         let sleeper = rt.clone();
///         let slow = group.spawn(async move {
///             sleeper.sleep(Duration::from_secs(60)).await;
///             Ok::<_, String>("slow")
///         }).unwrap();
///         group.spawn(async { Ok("fast") }).unwrap();
///         slow.abort();
///         let end = slow.await;
///         assert_eq!(end, ChildEnd::Cancelled(CancelReason::Aborted));
///         assert_eq!(end.cancel_reason(), Some(&CancelReason::Aborted));
///         group.join_all().await
///     }
/// }).unwrap();
/// assert_eq!(results[1], Ok("fast"));
/// assert!(matches!(&results[0], Err(ChildError::Cancelled(c)) if c.reason == CancelReason::Aborted));
/// assert_eq!(rt.now().since_origin(), Duration::ZERO); // aborted at once
/// ```
///
/// # Cancel safety
///
/// Dropping the future of an awaited handle loses nothing: the child goes on.
pub struct ChildHandle {
    control: Control,
    slot: usize,
    order: usize,
}

impl ChildHandle {
    pub(crate) fn new(control: Control, slot: usize, order: usize) -> ChildHandle {
        ChildHandle {
            control,
            slot,
            order,
        }
    }

    /// The child's index in spawn order: its place in
    /// [`join`](super::TaskGroup::join)'s values and
    /// [`join_all`](super::TaskGroup::join_all)'s results.
    #[must_use]
    pub fn index(&self) -> usize {
        self.order
    }

    /// Cancels this child only, with reason [`CancelReason::Aborted`]. Does
    /// nothing if it already ended.
    pub fn abort(&self) {
        self.control.abort_child(self.slot, self.order);
    }

    /// Whether the child has ended (in any way).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.control
            .poll_end(self.slot, self.order, None)
            .is_ready()
    }
}

impl Future for ChildHandle {
    type Output = ChildEnd;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ChildEnd> {
        self.control.poll_end(self.slot, self.order, Some(cx))
    }
}

impl fmt::Debug for ChildHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle")
            .field("index", &self.order)
            .finish_non_exhaustive()
    }
}
