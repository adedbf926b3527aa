//! Circuit breaker: stop calling a service that keeps failing.

mod error;

pub use error::CircuitOpen;
