//! Run many futures at once and keep every result: `gather`, `try_gather`,
//! `gather_limited`, `as_completed` and [`GatherReport`].
//!
//! | you want | use | output |
//! | --- | --- | --- |
//! | every result, in input order | [`gather`] | `Vec<Result<T, E>>` |
//! | all values or the first error (the rest dropped) | [`try_gather`], [`try_gather_named`] | `Result<Vec<T>, GatherError<E>>` |
//! | the same with at most `n` running | [`gather_limited`], [`try_gather_limited`] | as above |
//! | results as they arrive | [`as_completed`] | a `Stream` of `(index, Result<T, E>)` |
//! | successes and failures apart | [`GatherReport`] | indices, counts, `into_result()` |
//! | CPU-heavy items in parallel on a multi-thread runtime | [`gather_spawned`] | `Vec<Result<T, staunch::Error<E>>>` |
//!
//! One failure never hides another result: [`gather`] returns one `Result`
//! per item. Failing fast is a choice you make by calling [`try_gather`],
//! whose error says which item failed.
//!
//! # Pure combinators
//!
//! Everything but [`gather_spawned`] polls the items inside the task that
//! awaits it: no spawner, no runtime, no `Send` bound, so it works the same
//! on smol, tokio, in the browser and under `futures::executor::block_on`.
//! Items run concurrently, not in parallel; for CPU-bound items on a
//! multi-thread runtime use [`gather_spawned`], which makes each item a task.
//!
//! # Scale and fairness
//!
//! - Only items whose waker fired are polled again (each item has its own
//!   waker), so one item finishing costs O(1), not O(N), and a whole gather
//!   costs O(N + wake-ups). Inputs of at most 30 items are an exception:
//!   they are kept in one allocation and all polled on each wake-up, which is
//!   cheaper at that size.
//! - No item starves: one poll of a gather polls each woken item at most
//!   about once and then yields to the executor, even if an item wakes
//!   itself every time it is polled.
//! - Results go straight into a table indexed by input position; there is
//!   no sorting.
//! - [`gather_limited`] pulls items from its iterator only when a place is
//!   free, so a million-item iterator is never collected up front.
//! - When the items may outnumber the limit, [`gather_limited`] and
//!   [`try_gather_limited`] keep `limit` places (each with its own waker)
//!   and reuse them from item to item: past the first `limit` items, an item
//!   costs no allocation. A place is created only when first needed, so a
//!   generous limit costs nothing on a short input.
//!
//! # Composition
//!
//! Per-item time limits and retries are just wrappers around each item:
//!
//! ```
//! use std::time::Duration;
//! use staunch::gather::gather;
//! use staunch::runtime::Timer;
//! use staunch::testing::VirtualRuntime;
//! use staunch::timeout::timeout;
//!
//! let rt = VirtualRuntime::new();
//! async fn fetch(rt: VirtualRuntime, ms: u64) -> Result<u64, String> {
//!     rt.sleep(Duration::from_millis(ms)).await;
//!     Ok(ms)
//! }
//! let results = rt
//!     .block_on(gather(
//!         [10, 5_000, 30].map(|ms| timeout(&rt, Duration::from_secs(1), fetch(rt.clone(), ms))),
//!     ))
//!     .unwrap();
//! assert_eq!(results[0], Ok(Ok(10)));
//! assert!(results[1].is_err()); // this one item timed out
//! assert_eq!(results[2], Ok(Ok(30)));
//! assert_eq!(rt.now().since_origin(), Duration::from_secs(1));
//! ```
//!
//! A per-item retry is the same shape; each item retries on its own and
//! the gather still returns one outcome per item:
//!
//! ```
//! use std::time::Duration;
//! use staunch::gather::gather;
//! use staunch::retry::{Backoff, Retry};
//! use staunch::testing::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let retry: Retry = Retry::builder(rt.clone())
//!     .max_attempts(3)
//!     .backoff(Backoff::constant(Duration::from_millis(10)))
//!     .build()
//!     .unwrap();
//! let results = rt
//!     .block_on(gather((0..3u32).map(|item| {
//!         retry.run(move |attempt| async move {
//!             // Item 1 fails twice, then succeeds on its third attempt.
//!             if item == 1 && attempt.number() < 3 {
//!                 Err(format!("item {item} is flaky"))
//!             } else {
//!                 Ok(item * 10)
//!             }
//!         })
//!     })))
//!     .unwrap();
//! let values: Vec<u32> = results.into_iter().map(Result::unwrap).collect();
//! assert_eq!(values, vec![0, 10, 20]);
//! ```
//!
//! A [`CancelScope`](crate::scope::CancelScope) around a gather stops every
//! item at once, with the scope's reason:
//!
//! ```
//! use std::time::Duration;
//! use futures::future::pending;
//! use staunch::gather::gather;
//! use staunch::scope::{CancelReason, CancelScope};
//! use staunch::testing::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let scope = CancelScope::new().with_timeout(&rt, Duration::from_millis(50));
//! let items = (0..3).map(|_| pending::<Result<(), String>>());
//! let outcome = rt.block_on(scope.run(gather(items))).unwrap();
//! let cancelled = outcome.unwrap_err();
//! assert!(matches!(cancelled.reason, CancelReason::Deadline { .. }));
//! ```

mod all;
mod as_completed;
mod error;
mod indexed;
mod lanes;
mod limited;
mod pool;
mod report;
mod spawned;
mod try_gather;

use std::future::IntoFuture;
use std::num::NonZeroUsize;
use std::sync::Arc;

pub use all::Gather;
pub use as_completed::AsCompleted;
pub use error::GatherError;
pub use limited::{GatherLimited, TryGatherLimited};
pub use report::{GatherFailures, GatherReport};
pub use spawned::GatherSpawned;
pub use try_gather::TryGather;

use crate::runtime::{MaybeSend, Spawn, SpawnError, SpawnExt};

/// Runs every item to completion and returns each item's `Result` in input
/// order.
///
/// Use it when you want every outcome: a failing item does not stop the
/// others, and its error sits at its own index. All items start at the
/// first poll; for a bound on how many run at once see [`gather_limited`].
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::gather;
///
/// let results = futures::executor::block_on(gather([
///     ready(Ok::<u32, String>(1)),
///     ready(Err("two failed".to_string())),
///     ready(Ok(3)),
/// ]));
/// assert_eq!(results, vec![Ok(1), Err("two failed".to_string()), Ok(3)]);
/// ```
///
/// # Errors
///
/// None of its own: each item's error is in its slot of the output.
///
/// # Panics
///
/// A panic in an item propagates to the caller; the other items are dropped
/// as the `Gather` unwinds. Inside a spawned task or a `TaskGroup` it is
/// captured as a panicked task where the target can unwind (wasm aborts).
///
/// # Cancel safety
///
/// Dropping the future drops every unfinished item.
#[inline]
pub fn gather<I>(items: I) -> Gather<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    Gather::new(items.into_iter().map(IntoFuture::into_future))
}

/// Runs items until all succeed or one fails: the values in input order, or
/// the first error with the index of the item that failed.
///
/// On the first error every other item is dropped before the error is
/// returned, so nothing keeps running in the background.
///
/// ```
/// use futures::future::{pending, ready};
/// use staunch::gather::try_gather;
///
/// let ok = futures::executor::block_on(try_gather([ready(Ok::<u32, &str>(1)), ready(Ok(2))]));
/// assert_eq!(ok, Ok(vec![1, 2]));
///
/// // The failure ends the gather even though another item would never finish.
/// let items: Vec<futures::future::BoxFuture<'static, Result<u32, &str>>> =
///     vec![Box::pin(pending()), Box::pin(ready(Err("boom")))];
/// let err = futures::executor::block_on(try_gather(items)).unwrap_err();
/// assert_eq!((err.index, err.error), (1, "boom"));
/// ```
///
/// # Errors
///
/// [`GatherError`] with the failing item's index and error. When several
/// items fail in the same poll, the one reported is the first to be seen,
/// which is not necessarily the lowest index.
///
/// # Panics
///
/// A panic in an item propagates to the caller, dropping the other items.
///
/// # Cancel safety
///
/// Dropping the future drops every unfinished item and the values so far.
#[inline]
pub fn try_gather<I, T, E>(items: I) -> TryGather<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture<Output = Result<T, E>>,
{
    TryGather::new(items.into_iter().map(IntoFuture::into_future))
}

/// [`try_gather`] over `(name, item)` pairs: the error also carries the
/// failing item's name.
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::try_gather_named;
///
/// let err = futures::executor::block_on(try_gather_named([
///     ("db", ready(Ok::<(), &str>(()))),
///     ("cache", ready(Err("refused"))),
/// ]))
/// .unwrap_err();
/// assert_eq!(err.name.as_deref(), Some("cache"));
/// ```
///
/// # Errors
///
/// As [`try_gather`], with [`GatherError::name`] set.
///
/// # Panics
///
/// As [`try_gather`].
///
/// # Cancel safety
///
/// As [`try_gather`].
pub fn try_gather_named<I, N, F, T, E>(items: I) -> TryGather<F::IntoFuture>
where
    I: IntoIterator<Item = (N, F)>,
    N: Into<Arc<str>>,
    F: IntoFuture<Output = Result<T, E>>,
{
    TryGather::named(
        items
            .into_iter()
            .map(|(name, item)| (name, item.into_future())),
    )
}

/// The bound for a `*_limited` gather: `0` means no bound (as in futures'
/// `for_each_concurrent`), so no limit ever hangs.
fn bound(limit: usize) -> NonZeroUsize {
    NonZeroUsize::new(limit).unwrap_or(NonZeroUsize::MAX)
}

/// [`gather`] with at most `limit` items running at once; items are taken
/// from the iterator lazily, in order, only when a place is free.
///
/// Use it when every item holds a scarce resource (a socket, a connection
/// from a pool, a rate-limited API) or when the input is huge: a
/// million-item iterator is never collected up front, and at most `limit`
/// items exist at any moment.
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::gather_limited;
///
/// let items = (0..1_000_000u64).map(|i| ready(Ok::<u64, String>(i * 2)));
/// let results = futures::executor::block_on(gather_limited(64, items));
/// assert_eq!(results.len(), 1_000_000);
/// assert_eq!(results[999_999], Ok(1_999_998));
///
/// // Zero means no limit: it never hangs.
/// let all = futures::executor::block_on(gather_limited(0, [ready(1), ready(2)]));
/// assert_eq!(all, [1, 2]);
/// ```
///
/// The limit is a plain `usize`, so a literal needs no `unwrap`. A limit of
/// `0` means no limit, as in futures' `for_each_concurrent`: the one value
/// that cannot bound anything is read as "unbounded" rather than hanging
/// (futures' `buffer_unordered(0)` hangs forever) or failing at run time.
///
/// # Errors
///
/// None of its own: items' outputs (and errors) are in the output, one per
/// item.
///
/// # Panics
///
/// A panic in an item or in the iterator propagates to the caller.
///
/// # Cancel safety
///
/// Dropping the future drops the running items and the rest of the iterator.
pub fn gather_limited<I>(limit: usize, items: I) -> GatherLimited<I::IntoIter>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    GatherLimited::new(items.into_iter(), bound(limit))
}

/// [`try_gather`] with at most `limit` items running at once, taken lazily
/// from the iterator; after the first error nothing more is started.
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::try_gather_limited;
///
/// let items = (0..100u32).map(|i| ready(if i == 7 { Err("seven") } else { Ok(i) }));
/// let err = futures::executor::block_on(try_gather_limited(4, items)).unwrap_err();
/// assert_eq!((err.index, err.error), (7, "seven"));
/// ```
///
/// A `limit` of `0` means no limit, as for [`gather_limited`].
///
/// # Errors
///
/// The future's output is a [`GatherError`] for the first item that failed.
///
/// # Panics
///
/// A panic in an item or in the iterator propagates to the caller.
///
/// # Cancel safety
///
/// Dropping the future drops the running items and the rest of the iterator.
pub fn try_gather_limited<I, F, T, E>(limit: usize, items: I) -> TryGatherLimited<I::IntoIter>
where
    I: IntoIterator<Item = F>,
    F: IntoFuture<Output = Result<T, E>>,
{
    TryGatherLimited::new(items.into_iter(), bound(limit))
}

/// A stream of `(index, result)` in the order items finish, for handling
/// each result as soon as it arrives.
///
/// ```
/// use std::time::Duration;
/// use futures::StreamExt;
/// use staunch::gather::as_completed;
/// use staunch::runtime::Timer;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let order = rt
///     .block_on(
///         as_completed([30u64, 10, 20].map(|ms| {
///             let rt = rt.clone();
///             async move {
///                 rt.sleep(Duration::from_millis(ms)).await;
///                 Ok::<u64, String>(ms)
///             }
///         }))
///         .map(|(index, result)| (index, result.unwrap()))
///         .collect::<Vec<_>>(),
///     )
///     .unwrap();
/// assert_eq!(order, vec![(1, 10), (2, 20), (0, 30)]);
/// ```
///
/// # Errors
///
/// None of its own: each item's error comes with its index.
///
/// # Panics
///
/// A panic in an item propagates out of `poll_next`.
///
/// # Cancel safety
///
/// Dropping the stream drops every unfinished item.
pub fn as_completed<I>(items: I) -> AsCompleted<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    AsCompleted::new(items.into_iter().map(IntoFuture::into_future))
}

/// Starts each item as its own task on `spawner` and gathers their
/// outcomes in input order: [`gather`] for CPU-bound items that should run
/// in parallel on a multi-thread runtime.
///
/// Each item's outcome is `Ok(value)`, `Err(Error::Inner(e))` for its own
/// error, `Err(Error::Panicked(..))` if it panicked (where the target
/// unwinds), or `Err(Error::Cancelled(..))` with
/// [`CancelReason::Shutdown`](crate::scope::CancelReason::Shutdown) if the
/// executor dropped it. A `TaskGroup` offers the same with fail-fast or
/// supervision; `gather_spawned` is the one-line form when every result is
/// wanted.
///
/// ```
/// use staunch::gather::gather_spawned;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let squares = rt
///     .block_on(gather_spawned(&rt, (1..=4u64).map(|n| async move { Ok::<u64, String>(n * n) })).unwrap())
///     .unwrap();
/// let squares: Vec<u64> = squares.into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, vec![1, 4, 9, 16]);
/// ```
///
/// # Errors
///
/// [`SpawnError`] if the spawner refuses a task; the tasks already started
/// are aborted.
///
/// # Panics
///
/// Never because of an item: a panicking item is its own
/// `Err(Error::Panicked(..))`.
///
/// # Cancel safety
///
/// Dropping the returned future aborts every task not yet joined.
pub fn gather_spawned<S, I, F, T, E>(
    spawner: &S,
    items: I,
) -> Result<GatherSpawned<T, E>, SpawnError>
where
    S: Spawn + ?Sized,
    I: IntoIterator<Item = F>,
    F: IntoFuture<Output = Result<T, E>>,
    F::IntoFuture: MaybeSend + 'static,
    T: MaybeSend + 'static,
    E: std::fmt::Debug + MaybeSend + 'static,
{
    let items = items.into_iter();
    let mut handles = Vec::with_capacity(items.size_hint().0);
    for item in items {
        match spawner.spawn(item) {
            Ok(handle) => handles.push(handle),
            Err(refused) => {
                for handle in &handles {
                    handle.abort();
                }
                return Err(refused);
            }
        }
    }
    Ok(GatherSpawned::new(handles))
}

#[cfg(test)]
mod tests;
