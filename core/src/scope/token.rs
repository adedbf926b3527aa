//! `CancelToken`: a cheap, cloneable cancellation signal with a reason.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};

use crate::runtime::{BoxTask, Instant};
use crate::sync::Arc;

use super::tree::{NOW, Node, WaitKey};
use super::{CancelReason, Cancelled};

/// A cancellation signal that carries a reason, shared by cloning.
///
/// Tokens form a tree: [`child`](CancelToken::child) makes a token that is
/// cancelled whenever this one is (with reason
/// [`CancelReason::Parent`]), while cancelling a child never touches its
/// parent or its siblings. The first reason a token receives is kept;
/// cancelling again does nothing.
///
/// [`is_cancelled`](CancelToken::is_cancelled) is a single atomic load with
/// no allocation, cheap enough for a hot loop. The token is `Clone + Send +
/// Sync`; dropping the last clone of a child unlinks it from its parent, so
/// creating many short-lived children under a long-lived parent does not
/// grow it.
///
/// Most code wants a [`CancelScope`](super::CancelScope), which adds
/// deadlines, shields and `run(fut)` on top of a token.
///
/// # Example
///
/// ```
/// use staunch::scope::{CancelReason, CancelToken};
///
/// let parent = CancelToken::new();
/// let child = parent.child();
/// let sibling = parent.child();
///
/// child.cancel_with_message("user pressed stop");
/// assert!(child.is_cancelled());
/// assert!(!parent.is_cancelled() && !sibling.is_cancelled());
///
/// parent.cancel();
/// assert!(matches!(sibling.reason(), Some(CancelReason::Parent(_))));
/// // The child keeps its first reason.
/// assert_eq!(child.reason().unwrap().to_string(), "cancelled: user pressed stop");
/// ```
pub struct CancelToken {
    pub(crate) node: Arc<Node>,
}

impl CancelToken {
    /// A new token, not cancelled, with no parent.
    #[must_use]
    pub fn new() -> CancelToken {
        CancelToken { node: Node::root() }
    }

    /// A token cancelled whenever this one is. If this token is already
    /// cancelled, the child is born cancelled.
    #[must_use]
    pub fn child(&self) -> CancelToken {
        CancelToken {
            node: Node::child(&self.node),
        }
    }

    /// Cancels this token and its descendants with
    /// [`CancelReason::Explicit`] and no message. Does nothing if the token
    /// is already cancelled (the first reason wins).
    pub fn cancel(&self) {
        self.cancel_with(CancelReason::Explicit { message: None });
    }

    /// Cancels with an explicit message that reaches the [`Cancelled`] error.
    pub fn cancel_with_message(&self, message: impl Into<StdArc<str>>) {
        self.cancel_with(CancelReason::Explicit {
            message: Some(message.into()),
        });
    }

    /// Cancels with the given reason. Descendants get `Parent(reason)`.
    /// Takes time linear in the number of descendants.
    pub fn cancel_with(&self, reason: CancelReason) {
        Node::cancel(&self.node, reason, NOW, false);
    }

    /// Whether the token has been cancelled. One atomic load, unless the
    /// token belongs to a [`CancelScope`](super::CancelScope) with a
    /// deadline: then the scope's clock is read too, and a deadline that has
    /// passed cancels the scope that set it (so this is true from that
    /// instant on, whether or not anything is polling the scope).
    #[must_use]
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        Node::check(&self.node)
    }

    /// Why the token was cancelled, or `None` if it was not.
    #[must_use]
    pub fn reason(&self) -> Option<CancelReason> {
        self.node.reason()
    }

    /// A future that completes, with the reason, once the token is
    /// cancelled (or, for a scope's token, once the scope's deadline passes).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it only stops waiting.
    pub fn cancelled(&self) -> WaitCancelled<'_> {
        WaitCancelled {
            node: &self.node,
            key: None,
            sleep: None,
        }
    }
}

impl Default for CancelToken {
    fn default() -> CancelToken {
        CancelToken::new()
    }
}

impl Clone for CancelToken {
    fn clone(&self) -> CancelToken {
        self.node.add_handle();
        CancelToken {
            node: self.node.clone(),
        }
    }
}

impl Drop for CancelToken {
    fn drop(&mut self) {
        Node::release(&self.node);
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The future of [`CancelToken::cancelled`]: resolves to the [`Cancelled`]
/// error (with its reason) once the token is cancelled.
#[must_use = "a WaitCancelled does nothing unless awaited"]
pub struct WaitCancelled<'a> {
    node: &'a Arc<Node>,
    key: Option<WaitKey>,
    sleep: Option<(Instant, BoxTask)>,
}

impl WaitCancelled<'_> {
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Cancelled> {
        loop {
            if Node::check(self.node) {
                self.node.unregister(&mut self.key);
                self.sleep = None;
                return Poll::Ready(Cancelled {
                    reason: self.node.reason_or_explicit(),
                });
            }
            if self.node.is_timed() {
                match &self.sleep {
                    Some((at, _)) if self.node.effective_deadline() == Some(*at) => {}
                    _ => self.sleep = self.node.deadline_sleep(),
                }
                if let Some((at, sleep)) = self.sleep.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    // The timer is trusted even if the clock lags it.
                    Node::expire(self.node, *at);
                    self.sleep = None;
                    continue;
                }
            } else {
                self.sleep = None;
            }
            // Woken on cancellation and when the deadline moves.
            if !self.node.register(&mut self.key, cx.waker(), NOW) {
                return Poll::Pending;
            }
        }
    }
}

impl Future for WaitCancelled<'_> {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        self.poll_wait(cx)
    }
}

impl Drop for WaitCancelled<'_> {
    fn drop(&mut self) {
        self.node.unregister(&mut self.key);
    }
}

impl fmt::Debug for WaitCancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitCancelled")
            .field("cancelled", &(self.node.flags() != 0))
            .finish()
    }
}
