//! Cancel scopes: cancellation with a reason, deadlines, nesting and shields.
//!
//! - [`CancelToken`]: a cheap, cloneable signal with a reason; tokens form a
//!   tree where cancelling a parent cancels every descendant.
//! - [`CancelScope`]: a token plus a deadline; [`CancelScope::run`] runs a
//!   future until it finishes or the scope is cancelled, then drops it and
//!   returns [`Cancelled`] with the [`CancelReason`].
//!
//! Cancellation in staunch is never an ordinary error: it is never retried,
//! never counted by a circuit breaker, never replaced by a fallback. Because a
//! cancelled future is *dropped*, code inside it cannot catch the
//! cancellation and turn it into a success (the asyncio `except Exception`
//! trap); code that wants to clean up awaits [`CancelScope::cancelled`] and
//! is given time by [`CancelScope::cancel_with_grace`].
//!
//! Task groups built on scopes, and the comparison with tokio's `JoinSet` and
//! trio's nurseries, are in [`group`](crate::group).
//!
//! # Example
//!
//! ```
//! use staunch::scope::{CancelReason, CancelScope};
//! use staunch::runtime::Timer;
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let result = rt.block_on({
//!     let rt = rt.clone();
//!     async move {
//!         let scope = CancelScope::new();
//!         let stopper = scope.clone();
//!         let work = scope.run(async {
//!             rt.sleep(Duration::from_secs(60)).await;
//!             "done"
//!         });
//!         let stop = async {
//!             rt.sleep(Duration::from_secs(1)).await;
//!             stopper.cancel_with_message("user pressed stop");
//!         };
//!         futures::join!(work, stop).0
//!     }
//! });
//! let err = result.unwrap().unwrap_err();
//! assert_eq!(err.to_string(), "operation cancelled: cancelled: user pressed stop");
//! ```

mod cancel_scope;
mod error;
mod grace;
mod run;
mod token;
mod tree;

#[cfg(test)]
mod tests;

pub(crate) use cancel_scope::run_uncounted;
pub use cancel_scope::{CancelScope, ScopeCancelled};
pub use error::{CancelReason, Cancelled};
pub use grace::GraceReport;
pub use run::Run;
pub use token::{CancelToken, WaitCancelled};
