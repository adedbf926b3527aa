//! The one error type the policy pipeline speaks.

use std::fmt;

use crate::breaker::CircuitOpen;
use crate::bulkhead::Rejected;
use crate::rate::RateLimited;
use crate::runtime::Panicked;
use crate::scope::Cancelled;
use crate::timeout::Elapsed;

/// What went wrong in a call through staunch: the operation's own error `E`,
/// kept intact, or one of staunch's own failure kinds.
///
/// Cancellation is its own kind, never an ordinary error: retry never retries
/// it, a breaker never counts it, a fallback never replaces it.
///
/// ```
/// use staunch::Error;
/// use staunch::timeout::Elapsed;
/// use std::time::Duration;
///
/// let e: Error<std::io::Error> = Error::Timeout(Elapsed { after: Duration::from_secs(1) });
/// assert!(e.is_timeout());
/// assert!(e.into_inner().is_none());
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<E> {
    /// The operation itself failed with this error.
    Inner(E),
    /// A timeout fired.
    Timeout(Elapsed),
    /// The call was cancelled; see the reason inside.
    Cancelled(Cancelled),
    /// A circuit breaker is open and refused the call.
    CircuitOpen(CircuitOpen),
    /// A bulkhead was full and refused the call.
    Rejected(Rejected),
    /// The operation panicked (only where the target unwinds).
    Panicked(Panicked),
    /// A rate limiter refused the call; its `retry_after` says when to come
    /// back (a Retry-After hint a retry classifier can use).
    RateLimited(RateLimited),
}

/// The kind of an [`Error`], without its payload: what an
/// [`Attempt`](crate::retry::Attempt) knows about the attempt before it, and
/// what code that only branches on the kind can match without naming `E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operation's own error.
    Inner,
    /// A timeout fired.
    Timeout,
    /// The call was cancelled.
    Cancelled,
    /// An open circuit refused the call.
    CircuitOpen,
    /// A full bulkhead refused the call.
    Rejected,
    /// The operation panicked.
    Panicked,
    /// A rate limiter refused the call.
    RateLimited,
}

impl<E> Error<E> {
    /// What kind of failure this is.
    ///
    /// ```
    /// use staunch::{Error, ErrorKind};
    /// assert_eq!(Error::Inner("503").kind(), ErrorKind::Inner);
    /// ```
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Inner(_) => ErrorKind::Inner,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::CircuitOpen(_) => ErrorKind::CircuitOpen,
            Error::Rejected(_) => ErrorKind::Rejected,
            Error::Panicked(_) => ErrorKind::Panicked,
            Error::RateLimited(_) => ErrorKind::RateLimited,
        }
    }

    /// Whether this is a cancellation.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }
    /// Whether a timeout fired.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }
    /// Whether an open circuit refused the call.
    #[must_use]
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Error::CircuitOpen(_))
    }
    /// Whether a full bulkhead refused the call.
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }
    /// Whether a rate limiter refused the call.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited(_))
    }
    /// Whether the operation itself failed (as opposed to staunch stopping it).
    #[must_use]
    pub fn is_inner(&self) -> bool {
        matches!(self, Error::Inner(_))
    }
    /// The operation's own error, if that is what this is.
    #[must_use]
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            _ => None,
        }
    }
    /// A reference to the operation's own error, if that is what this is.
    #[must_use]
    pub fn inner(&self) -> Option<&E> {
        match self {
            Error::Inner(e) => Some(e),
            _ => None,
        }
    }
    /// Maps the operation's error, keeping every other kind as it is.
    pub fn map_inner<F, E2>(self, f: F) -> Error<E2>
    where
        F: FnOnce(E) -> E2,
    {
        match self {
            Error::Inner(e) => Error::Inner(f(e)),
            Error::Timeout(x) => Error::Timeout(x),
            Error::Cancelled(x) => Error::Cancelled(x),
            Error::CircuitOpen(x) => Error::CircuitOpen(x),
            Error::Rejected(x) => Error::Rejected(x),
            Error::Panicked(x) => Error::Panicked(x),
            Error::RateLimited(x) => Error::RateLimited(x),
        }
    }
}

impl<E> Error<Error<E>> {
    /// Collapses a nested error (from composing staunch calls by hand).
    #[must_use]
    pub fn flatten(self) -> Error<E> {
        match self {
            Error::Inner(inner) => inner,
            Error::Timeout(x) => Error::Timeout(x),
            Error::Cancelled(x) => Error::Cancelled(x),
            Error::CircuitOpen(x) => Error::CircuitOpen(x),
            Error::Rejected(x) => Error::Rejected(x),
            Error::Panicked(x) => Error::Panicked(x),
            Error::RateLimited(x) => Error::RateLimited(x),
        }
    }
}

/// `Error` is transparent: it prints as the error inside it and hands on
/// that error's own source, so each link of a `source()` chain appears once
/// (an `anyhow` report with `{:#}` prints the text once, not twice).
impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Inner(e) => e.fmt(f),
            Error::Timeout(e) => e.fmt(f),
            Error::Cancelled(e) => e.fmt(f),
            Error::CircuitOpen(e) => e.fmt(f),
            Error::Rejected(e) => e.fmt(f),
            Error::Panicked(e) => e.fmt(f),
            Error::RateLimited(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Inner(e) => e.source(),
            Error::Timeout(e) => e.source(),
            Error::Cancelled(e) => e.source(),
            Error::CircuitOpen(e) => e.source(),
            Error::Rejected(e) => e.source(),
            Error::Panicked(e) => e.source(),
            Error::RateLimited(e) => e.source(),
        }
    }
}

impl<E> From<Elapsed> for Error<E> {
    fn from(e: Elapsed) -> Self {
        Error::Timeout(e)
    }
}
impl<E> From<Cancelled> for Error<E> {
    fn from(e: Cancelled) -> Self {
        Error::Cancelled(e)
    }
}
impl<E> From<CircuitOpen> for Error<E> {
    fn from(e: CircuitOpen) -> Self {
        Error::CircuitOpen(e)
    }
}
impl<E> From<Rejected> for Error<E> {
    fn from(e: Rejected) -> Self {
        Error::Rejected(e)
    }
}
impl<E> From<Panicked> for Error<E> {
    fn from(e: Panicked) -> Self {
        Error::Panicked(e)
    }
}
impl<E> From<RateLimited> for Error<E> {
    fn from(e: RateLimited) -> Self {
        Error::RateLimited(e)
    }
}
