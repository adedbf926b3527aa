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
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod rng;
mod slot_wait;
mod sync;
mod typed;

pub mod adaptive;
pub mod breaker;
pub mod bulkhead;
pub mod fallback;
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
