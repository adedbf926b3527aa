//! Waiting until every `Run` in a set of scopes is gone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::sync::Arc;

use super::tree::Node;

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
