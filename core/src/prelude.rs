//! The traits whose methods staunch's examples call, in one import:
//! `use staunch::prelude::*;`.
//!
//! Methods of a trait work only with the trait in scope, and a missing
//! import reads as "no method named `sleep`": these are the ones people trip
//! on. Types stay at their paths (`staunch::retry::Retry`, ...).
//!
//! ```
//! use staunch::prelude::*;
//! use std::time::Duration;
//!
//! let rt = staunch::testing::VirtualRuntime::new();
//! let out = rt.block_on(async {
//!     rt.sleep(Duration::from_millis(5)).await; // Timer
//!     let task = rt.spawn(async { Ok::<u32, String>(2) }).expect("running"); // SpawnExt
//!     let two = task.await.expect("the task finished")?;
//!     async { two * 2 }
//!         .timeout(&rt, Duration::from_secs(1)) // TimeoutExt
//!         .await
//!         .map_err(|elapsed| elapsed.to_string())
//! });
//! assert_eq!(out.unwrap(), Ok(4));
//! ```

pub use crate::runtime::{
    LocalSpawn, LocalSpawnExt, Spawn, SpawnBlocking, SpawnBlockingExt, SpawnExt, Timer,
};
pub use crate::timeout::TimeoutExt;
