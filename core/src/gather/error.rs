//! The error of the fail-fast gather flavours.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The first item of a fail-fast gather ([`try_gather`](super::try_gather),
/// [`try_gather_limited`](super::try_gather_limited)) that failed: where it
/// was in the input, its name if it had one, and its error. Every other item
/// was dropped when this error was returned.
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::try_gather_named;
///
/// let outcome = futures::executor::block_on(try_gather_named([
///     ("config", ready(Ok::<u32, &str>(1))),
///     ("users", ready(Err("table missing"))),
/// ]));
/// let err = outcome.unwrap_err();
/// assert_eq!(err.index, 1);
/// assert_eq!(err.name.as_deref(), Some("users"));
/// assert_eq!(err.error, "table missing");
/// assert_eq!(err.to_string(), "gathered item 1 (`users`) failed; the other items were dropped");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherError<E> {
    /// The failing item's position in the input, counting from 0.
    pub index: usize,
    /// The failing item's name, when it was given one
    /// ([`try_gather_named`](super::try_gather_named)).
    pub name: Option<Arc<str>>,
    /// The item's own error, unchanged.
    pub error: E,
}

impl<E> GatherError<E> {
    /// The item's own error, dropping where it came from.
    pub fn into_inner(self) -> E {
        self.error
    }

    /// Applies `f` to the item's error, keeping its index and name.
    pub fn map<E2>(self, f: impl FnOnce(E) -> E2) -> GatherError<E2> {
        GatherError {
            index: self.index,
            name: self.name,
            error: f(self.error),
        }
    }
}

impl<E> fmt::Display for GatherError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(
                f,
                "gathered item {} (`{name}`) failed; the other items were dropped",
                self.index
            ),
            None => write!(
                f,
                "gathered item {} failed; the other items were dropped",
                self.index
            ),
        }
    }
}

impl<E: StdError + 'static> StdError for GatherError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.error)
    }
}
