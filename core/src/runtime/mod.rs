//! The runtime seam: the two small traits every executor adapter implements,
//! and what staunch builds on top of them.
//!
//! - [`Timer`]: `now` and `sleep`, with staunch's own [`Instant`].
//! - [`Spawn`] / [`LocalSpawn`] / [`SpawnBlocking`]: fire-and-forget task
//!   starts. [`SpawnExt`], [`LocalSpawnExt`] and [`SpawnBlockingExt`] add
//!   [`JoinHandle`]s with abort, panic capture and result delivery, built
//!   here in core so every adapter behaves the same.
//! - [`ErrorSink`]: where a failure goes when nobody is left to observe it.
//! - [`yield_now`]: let every other ready task run once (so does
//!   `sleep(Duration::ZERO)` on every runtime).
//!
//! The runtime is always a value you pass in, never a global. Adapters:
//! `staunch-smol` (`Smol`), `staunch-tokio` (`Tokio`), `staunch-web` (`Web`),
//! and [`VirtualRuntime`](crate::testing::VirtualRuntime) for tests.
//!
//! # Writing an adapter
//!
//! ```
//! use staunch::runtime::{BoxTask, Instant, Spawn, SpawnError, Timer};
//! use std::time::Duration;
//!
//! /// Runs every task to completion on the spot (a toy, for illustration).
//! struct Inline;
//!
//! impl Spawn for Inline {
//!     fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError> {
//!         futures::executor::block_on(task);
//!         Ok(())
//!     }
//! }
//!
//! use staunch::runtime::SpawnExt;
//! let handle = Inline.spawn(async { Ok::<_, String>(5) }).unwrap();
//! assert_eq!(futures::executor::block_on(handle), Ok(Ok(5)));
//! ```

mod any_timer;
mod ext;
#[cfg(feature = "futures-timer")]
mod futures_timer;

// `FuturesTimer` reads `std::time::Instant`, which panics at first use on
// wasm32-unknown-unknown: refuse to build it there rather than abort later.
#[cfg(all(feature = "futures-timer", target_arch = "wasm32"))]
compile_error!(
    "staunch's `futures-timer` feature is for native targets: its clock is std::time::Instant, \
     which panics on wasm32. In the browser, a worker or Node use `staunch_web::Web` as the timer."
);
mod instant;
mod join;
mod maybe_send;
mod sink;
mod spawn;
mod timer;
mod yield_now;

pub(crate) use any_timer::{AnyTimer, BoxTimer, OwnedTimer};
pub use ext::{LocalSpawnExt, SpawnBlockingExt, SpawnExt};
#[cfg(feature = "futures-timer")]
pub use futures_timer::{FuturesTimer, FuturesTimerSleep};
pub use instant::Instant;
pub use join::{AbortHandle, JoinError, JoinHandle, Outcome, Panicked};
pub use maybe_send::{BlockingTask, BoxTask, LocalBoxTask, MaybeSend, MaybeSync};
pub use sink::{ErrorSink, UnobservedError, UnobservedKind};
pub use spawn::{LocalSpawn, Spawn, SpawnBlocking, SpawnError};
pub use timer::Timer;
pub use yield_now::{YieldNow, YieldingSleep, yield_now};
