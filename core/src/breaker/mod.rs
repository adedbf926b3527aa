//! Circuit breaker: stop calling a service that keeps failing.

mod error;
mod state;

pub use error::CircuitOpen;
pub use state::CircuitState;
