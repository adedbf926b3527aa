//! Why a queue operation did not happen. Every failed send gives its item back.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

use crate::scope::Cancelled;

/// A send that did not happen; the item is inside, never lost.
///
/// The variant says why: the queue was closed, the time limit passed, or the
/// [`CancelScope`](crate::scope::CancelScope) bounding the send was cancelled.
///
/// ```
/// use staunch::queue::{bounded, SendError};
///
/// let (tx, rx) = bounded::<&str>(1)?;
/// drop(rx); // the queue closes when its last receiver goes
/// let err = futures::executor::block_on(tx.send("job")).unwrap_err();
/// assert!(err.is_closed());
/// assert_eq!(err.into_item(), "job");
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Error)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The queue is closed (closed explicitly, or every receiver is gone).
    #[error("the queue is closed, so the item was not sent; it is returned inside this error")]
    Closed(T),
    /// The queue stayed full until the time limit passed.
    #[error(
        "the queue stayed full for {after:?}, so the item was not sent; it is returned inside this error"
    )]
    Timeout {
        /// The item that was not sent.
        item: T,
        /// The time limit that passed.
        after: Duration,
    },
    /// The scope bounding the send was cancelled while the queue was full.
    #[error("the send was cancelled ({reason}); the item is returned inside this error", reason = cancelled.reason)]
    Cancelled {
        /// The item that was not sent.
        item: T,
        /// Why the scope was cancelled.
        cancelled: Cancelled,
    },
}

impl<T> SendError<T> {
    /// The item that was not sent.
    #[must_use]
    pub fn into_item(self) -> T {
        match self {
            SendError::Closed(item)
            | SendError::Timeout { item, .. }
            | SendError::Cancelled { item, .. } => item,
        }
    }
    /// A reference to the item that was not sent.
    #[must_use]
    pub fn item(&self) -> &T {
        match self {
            SendError::Closed(item)
            | SendError::Timeout { item, .. }
            | SendError::Cancelled { item, .. } => item,
        }
    }
    /// Whether the queue was closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }
    /// Whether the time limit passed.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendError::Timeout { .. })
    }
    /// Whether the bounding scope was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SendError::Cancelled { .. })
    }
    /// The same failure carrying `f(item)` instead of the item.
    pub fn map_item<U>(self, f: impl FnOnce(T) -> U) -> SendError<U> {
        match self {
            SendError::Closed(item) => SendError::Closed(f(item)),
            SendError::Timeout { item, after } => SendError::Timeout {
                item: f(item),
                after,
            },
            SendError::Cancelled { item, cancelled } => SendError::Cancelled {
                item: f(item),
                cancelled,
            },
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Timeout { after, .. } => f
                .debug_struct("Timeout")
                .field("after", after)
                .finish_non_exhaustive(),
            SendError::Cancelled { cancelled, .. } => f
                .debug_struct("Cancelled")
                .field("cancelled", cancelled)
                .finish_non_exhaustive(),
        }
    }
}

/// A [`try_send`](super::Sender::try_send) that did not happen; the item is inside.
#[derive(Error, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue is at its capacity right now.
    #[error(
        "the queue is full; the item is returned inside this error (wait with `send` or `send_timeout`)"
    )]
    Full(T),
    /// The queue is closed.
    #[error("the queue is closed, so the item was not sent; it is returned inside this error")]
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The item that was not sent.
    #[must_use]
    pub fn into_item(self) -> T {
        match self {
            TrySendError::Full(item) | TrySendError::Closed(item) => item,
        }
    }
    /// Whether the queue was full (rather than closed).
    #[must_use]
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

/// A receive that got no item.
///
/// ```
/// use staunch::queue::{bounded, RecvError};
///
/// let (tx, rx) = bounded::<u32>(4)?;
/// futures::executor::block_on(tx.send(7)).unwrap();
/// drop(tx); // the last producer is gone: the queue closes, its items stay
/// assert_eq!(futures::executor::block_on(rx.recv()), Ok(7));
/// assert_eq!(futures::executor::block_on(rx.recv()), Err(RecvError::Closed));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The queue is closed and every queued item has been received: the end.
    #[error("the queue is closed and empty; no item will ever come")]
    Closed,
    /// No item came within the time limit.
    #[error("no item came within {after:?}")]
    Timeout {
        /// The time limit that passed.
        after: Duration,
    },
    /// The scope bounding the receive was cancelled before an item came.
    #[error("the receive was cancelled before an item came: {0}")]
    Cancelled(Cancelled),
}

impl RecvError {
    /// Whether this is the end of the queue (closed and empty).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self, RecvError::Closed)
    }
    /// Whether the time limit passed.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvError::Timeout { .. })
    }
    /// Whether the bounding scope was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, RecvError::Cancelled(_))
    }
}

/// A [`try_recv`](super::Receiver::try_recv) that got no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TryRecvError {
    /// Nothing is queued right now; the queue is still open.
    #[error("the queue is empty right now")]
    Empty,
    /// The queue is closed and empty: the end.
    #[error("the queue is closed and empty; no item will ever come")]
    Closed,
}
