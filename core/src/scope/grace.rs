//! Waiting until every `Run` in a set of scopes is gone, and the report of
//! a graceful cancellation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::sync::Arc;

use super::tree::Node;

/// What a graceful cancellation found: what ended within the grace period,
/// what was dropped when it ran out, and how long it all took. Returned by
/// [`CancelScope::cancel_with_grace`](super::CancelScope::cancel_with_grace)
/// and, inside [`ShutdownReport`](crate::group::ShutdownReport), by
/// [`Background::shutdown`](crate::group::Background::shutdown).
///
/// A scope counts the futures run in it and its descendants
/// ([`run`](super::CancelScope::run)); a task group counts as one of them
/// while it has children. Scopes know no names, so their name lists are
/// empty; a [`Background`](crate::group::Background) names every task (its
/// name, or `#n` in spawn order), so there the lists and counts agree.
///
/// ```
/// use staunch::scope::CancelScope;
/// use staunch::runtime::{SpawnExt, Timer};
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let report = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let scope = CancelScope::new();
///         for cleanup in [5, 500] {
///             let (scope2, rt2) = (scope.clone(), rt.clone());
///             let _ = rt.spawn(scope.clone().run_owned(async move {
///                 scope2.cancelled().await;
///                 rt2.sleep(Duration::from_millis(cleanup)).await;
///             })).unwrap();
///         }
///         rt.sleep(Duration::from_millis(1)).await;
///         scope.cancel_with_grace(&rt, Duration::from_millis(50)).await
///     }
/// }).unwrap();
/// assert_eq!((report.finished, report.force_dropped), (1, 1));
/// assert_eq!(report.elapsed, Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GraceReport {
    /// How many ended within the grace period.
    pub finished: usize,
    /// How many were still running when it ran out, and were dropped.
    pub force_dropped: usize,
    /// The names of those that ended within the grace period, where known.
    pub finished_names: Vec<StdArc<str>>,
    /// The names of those that were dropped, where known.
    pub force_dropped_names: Vec<StdArc<str>>,
    /// From the signal until every one of them was gone, on the timer's clock.
    pub elapsed: Duration,
}

impl GraceReport {
    /// Whether everything ended within the grace period.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.force_dropped == 0
    }
}

/// How many counted runs are inside `nodes` right now.
pub(crate) fn runs_inside(nodes: &[Arc<Node>]) -> usize {
    nodes.iter().map(|n| n.runs()).sum()
}

/// Completes once no `Run` is inside any of `nodes`. The nodes are flagged
/// before this is created, so no new run can enter them.
pub(crate) struct AllIdle {
    nodes: Vec<Arc<Node>>,
    next: usize,
}

impl AllIdle {
    pub(crate) fn new(nodes: Vec<Arc<Node>>) -> AllIdle {
        AllIdle { nodes, next: 0 }
    }

    pub(crate) fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }
}

impl Future for AllIdle {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(node) = self.nodes.get(self.next) {
            match node.poll_idle(cx) {
                Poll::Ready(()) => self.next += 1,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl fmt::Debug for AllIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllIdle")
            .field("remaining", &(self.nodes.len() - self.next))
            .finish()
    }
}
