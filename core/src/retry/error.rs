//! What a retried call returns when it gives up.

use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Duration;

use crate::Error;
use crate::fallible::{Fallible, drop_error};
use crate::timeout::Elapsed;

/// Why a retried call stopped trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The last attempt was cancelled; cancellation is never retried.
    Cancelled,
    /// The classifier said the error is not worth retrying.
    NotRetryable,
    /// Every allowed attempt was made.
    MaxAttempts,
    /// The backoff's maximum count of delays was reached.
    BackoffEnded,
    /// The total time budget was used up, or the next attempt would have
    /// started at or after its end.
    Budget,
    /// The next delay was [`Duration::MAX`](std::time::Duration::MAX)
    /// (from the backoff or a Retry-After hint), which means "never":
    /// the call ends instead of sleeping for ever.
    NeverRetry,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Cancelled => "it was cancelled, and cancellation is never retried",
            StopReason::NotRetryable => "the error is not retryable",
            StopReason::MaxAttempts => "the maximum number of attempts was reached",
            StopReason::BackoffEnded => "the backoff has no more delays",
            StopReason::Budget => {
                "the time budget was used up, or the next attempt would start after it ends"
            }
            StopReason::NeverRetry => "the next delay was Duration::MAX, which means never retry",
        })
    }
}

/// A retried call gave up: how many attempts were made, why it stopped, the
/// last error and (with [`keep_all_errors`](super::RetryBuilder::keep_all_errors))
/// every earlier one.
///
/// The `is_*` methods ask the last error, so `err.is_cancelled()` says
/// whether the call ended because it was cancelled.
///
/// ```
/// use staunch::retry::{Backoff, Retry, StopReason};
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let retry = Retry::builder(rt.clone())
///     .max_attempts(2)
///     .backoff(Backoff::constant(Duration::from_millis(10)))
///     .build()?;
/// let err = rt.block_on(retry.run(|_| async { Err::<(), _>("down") })).unwrap().unwrap_err();
/// assert_eq!(err.attempts(), 2);
/// assert_eq!(err.stop_reason(), StopReason::MaxAttempts);
/// assert_eq!(err.to_string(), "gave up after 2 attempts (the maximum number of attempts was reached)");
/// assert_eq!(err.into_inner(), Some("down"));
/// # Ok::<(), staunch::ConfigError>(())
/// ```
pub struct RetryError<E> {
    pub(crate) attempts: u32,
    pub(crate) stop: StopReason,
    pub(crate) last: ManuallyDrop<Error<E>>,
    pub(crate) earlier: Errors<E>,
}

/// Errors a retried call made, dropped through functions the call chose.
///
/// For an operation that is a plain future of `Result<T, E>`, the only
/// errors a retry makes are the operation's own and timeouts, so it drops
/// them with functions that drop `E` alone. Dropping them as any
/// `staunch::Error` would link the drop of every other kind (cancel reasons
/// and their shared strings, panic messages) into programs that never make
/// one: about half a kilobyte of wasm.
pub(crate) struct Errors<E> {
    list: ManuallyDrop<Vec<Error<E>>>,
    /// Drops one error.
    dispose: fn(Error<E>),
    /// Drops the errors of a list and frees it.
    clear: fn(&mut Vec<Error<E>>),
}

impl<E> Errors<E> {
    /// No errors yet, for a call of `G`'s.
    pub(crate) fn new<G: Fallible<Err = E>>() -> Errors<E> {
        Errors {
            list: ManuallyDrop::new(Vec::new()),
            dispose: drop_error::<G>,
            clear: clear::<G>,
        }
    }

    /// Drops `error` as this list drops its own.
    pub(crate) fn dispose(&self, error: Error<E>) {
        (self.dispose)(error);
    }

    /// The list; what is pushed onto it is dropped with `dispose` too.
    pub(crate) fn list_mut(&mut self) -> &mut Vec<Error<E>> {
        &mut self.list
    }

    /// The errors, moved out, leaving this list empty.
    pub(crate) fn take(&mut self) -> Errors<E> {
        Errors {
            list: ManuallyDrop::new(std::mem::take(&mut *self.list)),
            dispose: self.dispose,
            clear: self.clear,
        }
    }
}

impl<E> Drop for Errors<E> {
    fn drop(&mut self) {
        (self.clear)(&mut self.list);
    }
}

/// Drops the errors of `list`, newest first, and frees it. Each is dropped
/// as [`drop_error`] drops it: for an error type with nothing to drop, the
/// loop does nothing and the compiler removes it.
fn clear<G: Fallible>(list: &mut Vec<Error<G::Err>>) {
    let mut list = std::mem::take(list);
    // Looping on the length, not on `pop` giving `None` (which the compiler
    // cannot tell from an item of the list), shows it that the list is
    // empty when dropped, so no item is dropped with `Error`'s own drop.
    while !list.is_empty() {
        if let Some(error) = list.pop() {
            drop_error::<G>(error);
        }
    }
    drop(list);
}

/// What a [`RetryError`] holds in place of an error moved out of it: a
/// timeout owns nothing, so leaving it undropped loses nothing.
fn moved<E>() -> Error<E> {
    Error::Timeout(Elapsed {
        after: Duration::ZERO,
    })
}

// The last error is dropped as the earlier ones are (see `Errors`).
impl<E> Drop for RetryError<E> {
    fn drop(&mut self) {
        self.earlier
            .dispose(std::mem::replace(&mut *self.last, moved()));
    }
}

// As `#[derive(Debug)]` printed it before the errors' drop was chosen per call.
impl<E: fmt::Debug> fmt::Debug for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryError")
            .field("attempts", &self.attempts)
            .field("stop", &self.stop)
            .field("last", &*self.last)
            .field("earlier", &*self.earlier.list)
            .finish()
    }
}

impl<E> RetryError<E> {
    /// How many attempts were made in all (at least 1).
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    /// Why retrying stopped.
    #[must_use]
    pub fn stop_reason(&self) -> StopReason {
        self.stop
    }
    /// The last attempt's error.
    #[must_use]
    pub fn last(&self) -> &Error<E> {
        &self.last
    }
    /// The last attempt's error, by value.
    #[must_use]
    pub fn into_last(mut self) -> Error<E> {
        std::mem::replace(&mut *self.last, moved())
    }
    /// The errors of the attempts before the last, oldest first; empty
    /// unless the policy keeps all errors.
    #[must_use]
    pub fn earlier_errors(&self) -> &[Error<E>] {
        &self.earlier.list
    }
    /// The operation's own error from the last attempt, if that is what it was.
    #[must_use]
    pub fn into_inner(mut self) -> Option<E> {
        match std::mem::replace(&mut *self.last, moved()) {
            Error::Inner(e) => Some(e),
            other => {
                self.earlier.dispose(other);
                None
            }
        }
    }
    /// Whether the last attempt was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.last.is_cancelled()
    }
    /// Whether the last attempt timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        self.last.is_timeout()
    }
    /// Whether an open circuit refused the last attempt.
    #[must_use]
    pub fn is_circuit_open(&self) -> bool {
        self.last.is_circuit_open()
    }
    /// Whether a full bulkhead refused the last attempt.
    #[must_use]
    pub fn is_rejected(&self) -> bool {
        self.last.is_rejected()
    }
    /// Whether the last attempt failed with the operation's own error.
    #[must_use]
    pub fn is_inner(&self) -> bool {
        self.last.is_inner()
    }
}

/// Prints how the retry ended; the last attempt's error is the
/// [`source`](std::error::Error::source), so a report that walks the chain
/// (`anyhow`'s `{:#}`) prints it once: `gave up after 3 attempts (...): 503`.
/// [`last`](RetryError::last) gives it directly.
impl<E> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "gave up after {} attempt{plural} ({})",
            self.attempts, self.stop
        )
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // `Error` is transparent, so the last error's own text is the next link.
        match &*self.last {
            Error::Inner(e) => Some(e),
            Error::Timeout(e) => Some(e),
            Error::Cancelled(e) => Some(e),
            Error::CircuitOpen(e) => Some(e),
            Error::Rejected(e) => Some(e),
            Error::Panicked(e) => Some(e),
            Error::RateLimited(e) => Some(e),
        }
    }
}

impl<E> From<RetryError<E>> for Error<E> {
    /// Keeps the last error, for pipelines that speak [`Error`].
    fn from(e: RetryError<E>) -> Error<E> {
        e.into_last()
    }
}
