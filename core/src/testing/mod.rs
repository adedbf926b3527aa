//! Deterministic testing: a virtual-time runtime and fault injection.
//!
//! [`VirtualRuntime`] runs async code with a clock that jumps to the next
//! timer whenever every task is idle, so tests of retry schedules, breaker
//! windows and deadlines run in microseconds and assert exact instants.

mod virtual_runtime;

pub use virtual_runtime::{Deadlock, VirtualRuntime, VirtualSleep};
