use std::time::Duration;

use thiserror::Error;

/// A [`timeout`](super::timeout) or [`deadline`](super::deadline) fired
/// before the future finished. The future was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("timed out after {after:?}; raise the limit or make the operation faster")]
pub struct Elapsed {
    /// How long the future was given.
    pub after: Duration,
}
