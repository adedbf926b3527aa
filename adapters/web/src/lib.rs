//! # staunch-web: run staunch in the browser, in web workers and in Node
//!
//! [`Web`] is a runtime value for staunch on `wasm32-unknown-unknown`:
//!
//! - time: the global `performance.now()`, from when the value was made;
//! - sleep: the global `setTimeout` (present in windows, workers and Node);
//!   dropping a sleep calls `clearTimeout`; sleeps longer than the 2^31-1 ms
//!   that `setTimeout` accepts are chained, never truncated, and a
//!   [`Duration::MAX`](std::time::Duration::MAX) sleep never fires;
//! - spawn (both `Spawn` and `LocalSpawn`): `wasm_bindgen_futures::spawn_local`,
//!   with a poll budget shared by every task started here: after 256 polls
//!   without the event loop reaching a macrotask, tasks wait for a
//!   `setTimeout(0)`, so a task that keeps waking itself (a busy loop of
//!   [`yield_now`](staunch::runtime::yield_now)) never starves timers, input
//!   or rendering;
//! - a sleep is always a yield point: `sleep(Duration::ZERO)` waits for a
//!   `setTimeout(0)`, a real macrotask turn;
//! - blocking work: a typed [`SpawnError::Unsupported`](staunch::runtime::SpawnError)
//!   error, because there are no threads to block.
//!
//! A panic aborts the wasm module (wasm32 does not unwind), so a panicking
//! task is never seen as `JoinError::Panicked` here.
//!
//! On other targets this crate is empty, so a workspace build stays green.
#![forbid(unsafe_code)]
// Off wasm32 the items these docs link to are not compiled.
#![cfg_attr(not(target_arch = "wasm32"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(target_arch = "wasm32")]
mod budget;
mod step;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(target_arch = "wasm32")]
pub use web::{Web, WebSleep};
pub mod abort;
