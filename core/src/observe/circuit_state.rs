use std::fmt;

/// The state a circuit breaker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls flow; outcomes are recorded.
    Closed,
    /// Calls are refused with `CircuitOpen` until the open duration ends.
    Open,
    /// A limited number of probe calls are admitted to test recovery.
    HalfOpen,
    /// Held open by hand (`force_open`): every call is refused until reset.
    ForcedOpen,
    /// Held closed by hand (`force_closed`): every call is admitted, nothing trips.
    ForcedClosed,
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
            CircuitState::ForcedOpen => "forced open",
            CircuitState::ForcedClosed => "forced closed",
        })
    }
}
