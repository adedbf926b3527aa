//! Work queues whose timed or cancelled operations lose nothing, and a
//! supervised [`WorkerPool`] on top of them.
//!
//! # Queues
//!
//! [`bounded`] makes a multi-producer, multi-consumer queue (async-channel's
//! engine underneath, `concurrent-queue` and `event-listener`, so it runs on
//! every executor and in the browser):
//!
//! - [`Sender::send_timeout`] and [`Sender::send_in`] (bounded by a
//!   [`CancelScope`](crate::scope::CancelScope)) give the item back inside
//!   the error, which says [`Timeout`](SendError::Timeout),
//!   [`Closed`](SendError::Closed) or [`Cancelled`](SendError::Cancelled).
//! - [`Receiver::recv_timeout`], [`Receiver::recv_in`] and
//!   [`Receiver::recv_many`] (a batch of up to n) never take an item and
//!   lose it: see the table below.
//! - [`Sender::reserve`] takes capacity first; the [`Permit`] sends later.
//! - The queue closes when the last [`Sender`] is dropped (trio's rule) or
//!   on `close()`; receivers drain what is queued, then get
//!   [`RecvError::Closed`]. [`Receiver::shutdown_immediate`] closes and hands
//!   back every item still queued.
//!
//! ```
//! use staunch::queue::{bounded, RecvError};
//!
//! let (tx, rx) = bounded(2)?;
//! futures::executor::block_on(async {
//!     tx.send("a").await.unwrap();
//!     tx.send("b").await.unwrap();
//!     assert!(tx.try_send("c").unwrap_err().is_full()); // bounded: 2
//!     drop(tx); // last producer gone: closed, but "a" and "b" stay
//!     assert_eq!(rx.recv().await, Ok("a"));
//!     assert_eq!(rx.recv().await, Ok("b"));
//!     assert_eq!(rx.recv().await, Err(RecvError::Closed)); // closed and empty
//! });
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! # Cancel safety
//!
//! | operation | if its future is dropped before it completes |
//! | --- | --- |
//! | `recv`, `recv_timeout`, `recv_in` | nothing is taken: the item stays queued |
//! | `recv_many` | nothing is taken: items move into the buffer only in the poll that completes |
//! | `send`, `send_timeout`, `send_in` | nothing is sent; the item is dropped with the future (a timeout or cancellation that *completes* the future returns it) |
//! | `reserve` | nothing is reserved |
//! | a [`Permit`] dropped unused | its slot is released |
//! | `WorkerPool::submit*` | nothing is submitted (the item is dropped with the future) |
//! | `WorkerPool::join`, `Completions::next` | nothing changes |
//!
//! A `recv_timeout` whose deadline passes while an item is queued returns
//! the item: the queue is looked at before the timer in every poll.
//!
//! # Worker pool
//!
//! [`WorkerPool`]: N workers take items from a bounded queue and run each
//! through an async handler, optionally through a
//! [`Policy`](crate::policy::Policy) (retry, breaker, timeout, bulkhead),
//! with an optional limit per key (per host, per tenant). Each item's
//! outcome comes out of the [`Completions`] stream in completion order, with
//! its submission index and key; an item that fails for good is a
//! [`DeadLetter`] carrying the item, its last error and its attempt count.
//! A panicking handler (where the target unwinds) fails only its item.
//!
//! ```
//! use futures::StreamExt;
//! use staunch::queue::WorkerPool;
//! use staunch::testing::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let mut out = rt.block_on({
//!     let rt = rt.clone();
//!     async move {
//!         let (pool, completions) = WorkerPool::builder(rt)
//!             .workers(2)
//!             .capacity(4)
//!             .build(|n: u32| async move {
//!                 if n == 3 { Err("three is bad") } else { Ok(n * 10) }
//!             })
//!             .unwrap();
//!         for n in 0..5 {
//!             pool.submit(n).await.unwrap(); // waits while the queue is full
//!         }
//!         pool.close(); // drain: every queued item is processed, then the stream ends
//!         completions.collect::<Vec<_>>().await
//!     }
//! }).unwrap();
//! out.sort_by_key(|c| c.index);
//! assert_eq!(out[1].result.as_ref().ok(), Some(&10));
//! let dead = out[3].result.as_ref().unwrap_err();
//! assert_eq!((dead.item, dead.attempts), (3, 1));
//! ```
//!
//! ## Work that finds more work
//!
//! A crawler's handler finds links to fetch next. Submit them from the
//! reader of [`Completions`] (return them in the handler's result), not
//! from inside the handler with [`submit`](WorkerPool::submit): once every
//! worker waits there for room in a full queue, nobody takes items out, and
//! the pool stops for good. From a handler, use
//! [`try_submit`](Submitter::try_submit),
//! [`submit_timeout`](Submitter::submit_timeout) or
//! [`submit_in`](Submitter::submit_in) (bounded by a
//! [`CancelScope`](crate::scope::CancelScope)), which give the item back
//! instead of waiting forever.
//!
//! ## Stopping
//!
//! | how | what happens to queued items | in-flight items | comparable to |
//! | --- | --- | --- | --- |
//! | [`close`](WorkerPool::close) then read [`Completions`] to its end / [`join`](WorkerPool::join) | processed | finish | asyncio `Queue.shutdown(immediate=False)`; trio closing the send channel |
//! | [`shutdown(grace)`](WorkerPool::shutdown) | returned in the [`ShutdownReport`] | finish within `grace`, else cancelled (reason `Shutdown`) and returned | asyncio `shutdown(immediate=True)`, which discards queued items instead of returning them |
//! | drop the pool | each reported to the error sink | cancelled, each reported to the error sink | trio: dropping the receive side makes senders fail |
//!
//! Whatever the mode, every submitted item is either processed (its
//! completion emitted) or returned/reported, never both and never neither.
//! That holds even when the executor itself shuts down under the pool and
//! drops its workers: the items they held are handed back as cancelled in
//! flight, and dropping the pool then reports them with the queued ones.
//!
//! ## On the browser
//!
//! [`WorkerPoolBuilder::build_local`] runs workers through
//! [`LocalSpawn`](crate::runtime::LocalSpawn), so handlers may await
//! JavaScript promises (`!Send`). A panic aborts the wasm module there, as
//! everywhere on `wasm32-unknown-unknown`.

mod channel;
mod counts;
mod error;
mod lane;
mod pool;
mod report;
mod signal;
mod worker;

#[cfg(all(test, not(staunch_loom)))]
mod carried_tests;
#[cfg(all(test, not(staunch_loom)))]
mod tests;
#[cfg(all(test, not(staunch_loom)))]
mod wake_tests;

pub use channel::{Permit, Receiver, Sender};
pub use error::{RecvError, SendError, TryRecvError, TrySendError};
pub use pool::{
    Completions, MAX_WORKERS, PoolBuildError, Submit, Submitter, WorkerPool, WorkerPoolBuilder,
};
pub use report::{Completion, DeadLetter, PoolStats, Returned, ShutdownReport, Unprocessed};

use crate::ConfigError;

/// A bounded queue holding at most `capacity` items (queued plus reserved).
///
/// ```
/// let (tx, rx) = staunch::queue::bounded::<u64>(16)?;
/// tx.try_send(1).unwrap();
/// assert_eq!(rx.try_recv(), Ok(1));
/// assert!(staunch::queue::bounded::<u64>(0).is_err());
/// # Ok::<(), staunch::ConfigError>(())
/// ```
///
/// # Errors
///
/// [`ConfigError`] for a capacity of 0 (nothing could ever be sent).
pub fn bounded<T>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), ConfigError> {
    if capacity == 0 {
        return Err(ConfigError::new(
            "capacity",
            "must be at least 1; a queue of 0 could never accept an item",
        ));
    }
    Ok(channel::bounded(capacity))
}
