//! # staunch: async code that fails well
//!
//! staunch keeps going when parts of a program fail, never loses an error,
//! and can always be stopped. One executor-neutral core; thin adapters for
//! smol (`staunch-smol`), tokio (`staunch-tokio`) and the browser
//! (`staunch-web`); the same code runs natively and in WebAssembly.
//!
//! The runtime is a value you pass in ([`runtime::Timer`],
//! [`runtime::Spawn`]), never a global, so tests can use the deterministic
//! [`testing::VirtualRuntime`] and see exact times.
//!
//! ```
//! use staunch::runtime::{SpawnExt, Timer};
//! use staunch::testing::VirtualRuntime;
//! use staunch::timeout::timeout;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let result = rt.block_on({
//!     let rt = rt.clone();
//!     async move {
//!         let slow = rt.spawn({
//!             let rt = rt.clone();
//!             async move {
//!                 rt.sleep(Duration::from_secs(10)).await;
//!                 Ok::<_, String>("done")
//!             }
//!         })?;
//!         // Give the task at most one (virtual) second.
//!         Ok::<_, staunch::runtime::SpawnError>(timeout(&rt, Duration::from_secs(1), slow).await)
//!     }
//! });
//! assert!(result.unwrap().unwrap().is_err()); // timed out after exactly 1 s
//! ```
//!
//! # One vocabulary
//!
//! Every primitive speaks the same few verbs:
//!
//! | you want to | write | you get |
//! |---|---|---|
//! | guard one operation | `breaker.call(op)`, `bulkhead.call(op)`, `limit.call(op)`, `fallback.call(op)`, `scope.call(op)`, [`timeout::call`]`(&rt, d, op)` | `Result<T, Error<E>>` |
//! | run a closure once per attempt | `retry.run(\|attempt\| op)`, `hedge.run(..)`, `policy.run(..)`; every closure gets the same [`retry::Attempt`] and may ignore it | `Result<T, RetryError<E>>` (retry), `Result<T, Error<E>>` (hedge, policy) |
//! | compose guards | pass one guard's call to another, in either order: `breaker.call(bulkhead.call(op))`, `fallback.call(retry.run(..))` | one flat `Result<T, Error<E>>` (a retry handed on gives its last error) |
//! | await a spawned task as one result | `handle.flatten()` | `Result<T, Error<E>>` |
//!
//! `op` is a [`Fallible`]: any future of `Result<T, E>` (its error becomes
//! [`Error::Inner`]) or another staunch call, a [`Guarded`], whose
//! [`Error`] passes through as it is, so the outer guard sees an inner
//! timeout, rejection or cancellation for what it is. A `Guarded` is
//! awaited like any future (see [`fallible`] for where a `Future` proper is
//! needed).
//!
//! ```
//! use staunch::breaker::CircuitBreaker;
//! use staunch::retry::Retry;
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! async fn fetch() -> Result<&'static str, std::io::Error> { Ok("<html>") }
//!
//! let rt = VirtualRuntime::new();
//! let retry = Retry::builder(rt.clone()).attempt_timeout(Duration::from_secs(2)).build()?;
//! let breaker = CircuitBreaker::builder(rt.clone()).build()?;
//! let page = rt.block_on(retry.run(|_| breaker.call(fetch())))?;
//! assert_eq!(page?, "<html>");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod nanos;
mod padded;
mod rng;
mod slot_wait;
mod sync;
mod typed;
mod wait_line;

pub mod adaptive;
pub mod breaker;
pub mod bulkhead;
pub mod fallback;
pub mod fallible;
pub mod gather;
pub mod group;
pub mod hedge;
pub mod observe;
pub mod policy;
pub mod prelude;
pub mod queue;
pub mod rate;
pub mod retry;
pub mod runtime;
pub mod scope;
pub mod testing;
pub mod timeout;

pub use config::ConfigError;
pub use error::{Error, ErrorKind};
pub use fallible::{Failure, Fallible, Guarded};
