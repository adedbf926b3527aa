//! Rate limiting with GCRA: [`RateLimiter`] for one shared limit,
//! [`KeyedRateLimiter`] for a limit per key in bounded memory.
//!
//! A limiter admits `count` calls per `period` ([`Rate`]) with a burst of
//! up to `burst` calls at once. `check` answers at once (admitted, or
//! [`RateLimited`] with the wait, usable as a Retry-After hint);
//! `until_ready` waits, holding nothing while it does, up to an optional
//! maximum wait; the `_n` forms take a weighted cost.
//!
//! The state is one number, the theoretical arrival time, kept as an
//! absolute time (nanoseconds since the Unix epoch) and updated with a
//! compare-and-swap, so:
//!
//! - on a multi-threaded runtime no window of length `W` ever admits more
//!   than `W / interval + burst` calls, where `interval = period / count`
//!   rounded up to a nanosecond (the rounding only ever makes the limit
//!   stricter);
//! - limiters built at different times, or in different processes, that
//!   share the state agree on what it means. The state sits behind a
//!   [`RateStore`] (an atomic in memory by default; see
//!   [`RateLimiterBuilder::build_with_store`]).
//!
//! Time comes from the [`Timer`](crate::runtime::Timer) given to the
//! builder, so on [`VirtualRuntime`](crate::testing::VirtualRuntime) every
//! admission instant is exact.
//!
//! ```
//! use staunch::rate::{Rate, RateLimiter};
//! use staunch::runtime::Timer;
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(5)).burst(2).build()?;
//! rt.block_on(async {
//!     let start = rt.now();
//!     for _ in 0..4 {
//!         limiter.until_ready().await.unwrap();
//!     }
//!     // two at once (the burst), then one every 200 ms
//!     assert_eq!(rt.now() - start, Duration::from_millis(400));
//! })
//! .unwrap();
//! # Ok::<(), staunch::ConfigError>(())
//! ```

mod clock;
mod error;
mod gcra;
mod keyed;
mod limiter;

#[cfg(test)]
mod tests;

pub use error::{RateError, RateLimited};
pub use gcra::RateStore;
pub use keyed::{DEFAULT_MAX_KEYS, KeyedRateLimiter, KeyedRateLimiterBuilder};
pub use limiter::{Rate, RateLimiter, RateLimiterBuilder};
