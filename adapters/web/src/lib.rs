//! # staunch-web: run staunch in the browser, in web workers and in Node
//!
//! [`Web`] is a runtime value for staunch on `wasm32-unknown-unknown`:
//!
//! - time: the global `performance.now()`, from when the value was made;
//! - sleep: the global `setTimeout` (present in windows, workers and Node);
//!   dropping a sleep calls `clearTimeout`; sleeps longer than the 2^31-1 ms
//!   that `setTimeout` accepts are chained, never truncated, and a
//!   [`Duration::MAX`](std::time::Duration::MAX) sleep never fires;
//! - spawn (both `Spawn` and `LocalSpawn`): `wasm_bindgen_futures::spawn_local`;
//! - blocking work: a typed [`SpawnError::Unsupported`](staunch::runtime::SpawnError)
//!   error, because there are no threads to block.
//!
//! A panic aborts the wasm module (wasm32 does not unwind), so a panicking
//! task is never seen as `JoinError::Panicked` here.
//!
//! On other targets this crate is empty, so a workspace build stays green.
#![forbid(unsafe_code)]

mod step;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use web::{Web, WebSleep};
pub mod abort;
