//! Retry with backoff, jitter, caps and a budget, only for errors worth
//! retrying.
//!
//! - [`Backoff`]: a pure, seeded, clonable iterator of delays (constant,
//!   linear, exponential, fibonacci; [`Jitter`] none, full, equal,
//!   decorrelated; a maximum delay; a maximum count). It never reads a
//!   clock, so schedules are exact and testable.
//! - [`Retry`]: the policy. Stops on max attempts, a total time budget, or
//!   the classifier's [`Decision`]; an optional per-attempt timeout; an
//!   `on_retry` hook and [`observe`](crate::observe) events. Cancellation is
//!   never retried, whatever the classifier says.
//! - [`RetryError`]: how many attempts were made, why it stopped, the last
//!   error (and optionally every error).
//!
//! The policy sleeps on the [`Timer`](crate::runtime::Timer) you pass, so it
//! runs on every adapter and, in tests, on the
//! [`VirtualRuntime`](crate::testing::VirtualRuntime) with exact instants.
//!
//! ```
//! use staunch::retry::{Backoff, Retry};
//! use staunch::runtime::{Instant, Timer};
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let retry = Retry::builder(rt.clone())
//!     .max_attempts(5)
//!     .backoff(Backoff::fibonacci(Duration::from_millis(10)))
//!     .build()?;
//! let starts = std::sync::Mutex::new(Vec::new());
//! let out = rt.block_on(retry.run(|attempt| {
//!     starts.lock().unwrap().push(rt.now().since_origin().as_millis());
//!     async move { if attempt.number() < 5 { Err("busy") } else { Ok(()) } }
//! }));
//! assert!(out.unwrap().is_ok());
//! assert_eq!(*starts.lock().unwrap(), [0, 10, 20, 40, 70]);
//! # Ok::<(), staunch::ConfigError>(())
//! ```

mod backoff;
mod budget;
mod error;
mod extras;
mod notify;
mod policy;
mod run;
mod steps;

pub use backoff::{Backoff, BackoffBuilder, Jitter};
pub use error::{RetryError, StopReason};
pub use policy::{Attempt, Decision, Retry, RetryBuilder};
pub use run::{RetryCall, RetryFuture};

#[cfg(test)]
mod tests;
