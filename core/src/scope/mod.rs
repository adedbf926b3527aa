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
//! # Trio and staunch
//!
//! staunch's scopes follow trio's cancel scopes. In trio a scope is a `with`
//! block and "inside" means the block's code; in staunch it means the future
//! given to [`CancelScope::run`], polled by that run (scopes made with
//! [`child`](CancelScope::child) are cancelled with their parent wherever
//! they run, but the rules below are about runs polled inside runs).
//!
//! | trio | staunch |
//! | --- | --- |
//! | the `Cancelled` exception is raised at the next checkpoint | the cancelled run drops its future at its next poll and returns `Err(Cancelled)` |
//! | with scopes 1 ⊃ 2 ⊃ 3 and both 2 and 3 cancelled, scope 2 catches `Cancelled`; no code in 2 after 3's block runs | the run of 3 drops its future and stays pending; the run of 2, which polls it, returns `Err` with 2's reason (the outermost cancelled run up to the nearest shield wins) |
//! | `scope.deadline` is checked at every checkpoint | the clock is read at every poll of a run whose scope has a deadline (never on one without); a passed deadline cancels the scope that set it before the future is polled again |
//! | `scope.cancel_called` is true once the deadline passed | [`is_cancelled`](CancelScope::is_cancelled) is true once the clock passed the deadline, with nothing polling |
//! | `scope.deadline = t` moves a running deadline either way | [`set_deadline`](CancelScope::set_deadline); children and every handle see it; a cancellation that happened stays |
//! | `current_effective_deadline()`; `-inf` once cancelled | [`current_effective_deadline`]: the earliest deadline of the runs polling the caller, up to the nearest shield; it does not turn into a past instant once cancelled (ask [`is_cancelled`](CancelScope::is_cancelled)) |
//! | `CancelScope(shield=True)` inside a cancelled scope runs its body to the end (or to its own deadline) | a [`shielded`](CancelScope::shielded) run inside a cancelled run keeps that run polling its future until every shielded run in it is over (each bounded by its own deadline), then the future is dropped and the run returns `Err` with the outer reason |
//! | other code in the cancelled scope (another task of a nursery) is cancelled at its own checkpoints while the shield runs | runs of scopes that are cancelled stay dropped meanwhile; plain futures beside the shield (a `join!` branch outside any run) keep being polled until the shield ends |
//! | code after the shielded block runs until the next checkpoint, which raises | code after the shielded run runs until its next `.await` that is pending (a future polled once) then the future is dropped |
//! | a scope whose body finished without a checkpoint after the cancel exits normally | the same if the future finishes in the poll that cancels; but a future that finishes while polled only for its shields is reported as `Err(Cancelled)`: the run was cancelled and its output is dropped |
//! | a nursery inside a cancelled scope cannot be exited while its children run | a [`TaskGroup`](crate::group::TaskGroup) dropped unjoined inside a run (or inside a group's child) keeps that run (or child) from ending until the group's children are gone; a run dropped meanwhile hands the wait to the run enclosing it |
//! | deep nesting is bounded by Python's recursion limit (trio fixed a recursion in 0.11) | no walk over scopes recurses per level; chains of 100 000 scopes are tested on every target. Polling nested futures recurses in Rust itself, so nested *runs* are as deep as the stack allows |
//!
//! Where Rust forces a difference: a cancelled future is *dropped*, not
//! resumed with an exception, so code inside cannot catch the cancellation
//! (the cleanup that trio writes in `except Cancelled`/`finally` with awaits
//! goes in a shielded run or in code awaiting
//! [`cancelled`](CancelScope::cancelled) before the hard cancel); and `Drop`
//! cannot wait, so waiting for cleanup is done by the *enclosing* run, which
//! keeps polling while shields are alive, and by
//! [`cancel_with_grace`](CancelScope::cancel_with_grace), which returns only
//! after every run in the scope is gone. Dropping the outer run itself (its
//! caller gave up) drops the shielded cleanup too: nothing can keep a
//! dropped future alive.
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
mod frames;
mod grace;
mod run;
mod token;
mod tree;

#[cfg(test)]
mod tests;

pub(crate) use cancel_scope::run_uncounted;
pub use cancel_scope::{CancelScope, ScopeCancelled};
pub use error::{CancelReason, Cancelled};
pub(crate) use frames::hand_abandoned;
pub(crate) use grace::AllIdle;
pub use grace::GraceReport;
pub use run::Run;
pub(crate) use tree::WaitKey;

/// The effective deadline of the code calling it: the earliest deadline
/// among the scopes whose [`run`](CancelScope::run) is polling it right now
/// (on this thread), up to the nearest shielded one; `None` outside any run
/// or when none of them has a deadline. trio's `current_effective_deadline`:
/// hand it to a call that takes its own deadline (a request header, a
/// database statement timeout).
///
/// ```
/// use staunch::scope::{CancelScope, current_effective_deadline};
/// use staunch::runtime::{Instant, Timer};
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let outer = CancelScope::new().with_timeout(&rt, Duration::from_secs(5));
/// let inner = CancelScope::new().with_timeout(&rt, Duration::from_secs(9));
/// let seen = rt.block_on(outer.run(inner.run(async { current_effective_deadline() })));
/// let at = seen.unwrap().unwrap().unwrap();
/// assert_eq!(at, Some(Instant::ORIGIN + Duration::from_secs(5)));
/// assert_eq!(current_effective_deadline(), None);
/// ```
#[must_use]
pub fn current_effective_deadline() -> Option<crate::runtime::Instant> {
    frames::current_effective_deadline()
}
pub use token::{CancelToken, WaitCancelled};
