use std::time::Duration;

use thiserror::Error;

/// The circuit breaker is open: the call was refused without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "circuit open: calls are refused for another {retry_after:?}; retry after that or use a fallback"
)]
pub struct CircuitOpen {
    /// How long until the breaker will admit a probe call.
    pub retry_after: Duration,
}
