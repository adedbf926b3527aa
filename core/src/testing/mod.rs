//! Deterministic testing: a virtual-time runtime and fault injection.
//!
//! [`VirtualRuntime`] runs async code with a clock that jumps to the next
//! timer whenever every task is idle, so tests of retry schedules, breaker
//! windows and deadlines run in microseconds and assert exact instants.
//! [`Faults`] makes operations fail, slow down or hang on purpose, from a
//! seed or a script, so failure handling can be tested reproducibly.

mod fault;
mod virtual_runtime;

pub use fault::{Fault, Faults, FaultsBuilder, InjectedFault};
pub use virtual_runtime::{Deadlock, VirtualRuntime, VirtualSleep};
