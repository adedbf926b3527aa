//! What staunch's guards accept, so that they compose without a second verb.
//!
//! Every guard's `call` (and every `run` closure's return value) takes an
//! [`impl Fallible`](Fallible): either a plain future of `Result<T, E>`,
//! whose error becomes [`Error::Inner`], or another staunch call, which
//! already returns `Result<T, Error<E>>` and is passed through as it is. So
//! `breaker.call(bulkhead.call(fetch()))` is one flat
//! `Result<T, staunch::Error<E>>`, and the outer guard sees the inner one's
//! rejection, timeout or cancellation as what it is, not as the operation's
//! own error.
//!
//! Rust cannot tell those two kinds of future apart by their output alone
//! (a future of `Result<T, E>` with `E = staunch::Error<X>` is both), so
//! staunch's calls are [`Guarded`]: a value that is
//! [`IntoFuture`], not itself a [`Future`]. `.await` works on it as on any
//! future, and so does every staunch function that takes work
//! (`spawn`, `block_on`, `gather`, `TaskGroup::spawn`, `timeout`), as well
//! as tokio's `join!`, `try_join!` and `select!`. Where a [`Future`] proper
//! is needed (`tokio::spawn`, `futures::join_all`, a `FuturesUnordered`),
//! call [`into_future()`](IntoFuture::into_future) on it.
//!
//! ```
//! use staunch::breaker::CircuitBreaker;
//! use staunch::bulkhead::Bulkhead;
//! use staunch::testing::VirtualRuntime;
//!
//! async fn fetch() -> Result<u32, std::io::Error> { Ok(7) }
//!
//! let rt = VirtualRuntime::new();
//! let breaker = CircuitBreaker::builder(rt.clone()).build()?;
//! let bulkhead = Bulkhead::builder(rt.clone(), 4).build()?;
//! let out = rt.block_on(async {
//!     let a = breaker.call(bulkhead.call(fetch())).await?; // either order,
//!     let b = bulkhead.call(breaker.call(fetch())).await?; // one flat Result
//!     Ok::<_, staunch::Error<std::io::Error>>(a + b)
//! });
//! assert_eq!(out.unwrap()?, 14);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::{Error, ErrorKind};

/// Work a staunch guard can run: a future of `Result<T, E>` (its error is
/// the operation's own, [`Error::Inner`]), a [`Guarded`] staunch call
/// (already `Result<T, Error<E>>`, passed through unchanged), or a
/// [`RetryCall`](crate::retry::RetryCall) (its last attempt's error, passed
/// through as it is).
///
/// Implemented for all three; there is nothing to implement or call by hand.
/// It exists so that one `call` serves plain operations and other guards
/// alike (see the [module docs](self)).
pub trait Fallible {
    /// What the operation gives on success.
    type Ok;
    /// The operation's own error type (`E` in `Error<E>`).
    type Err;
    /// The future the guard polls.
    type Future: Future;

    /// The future to poll.
    fn into_fallible(self) -> Self::Future;

    /// The future's output as one flat staunch result.
    fn lift(out: <Self::Future as Future>::Output) -> Result<Self::Ok, Error<Self::Err>>;

    /// How the output failed, read in place: `None` for a success. Lets a
    /// guard judge an outcome before (and without) reshaping it.
    fn failure(out: &<Self::Future as Future>::Output) -> Option<Failure<'_, Self::Err>>;

    /// Whether [`lift`](Fallible::lift) fails only with [`Error::Inner`]:
    /// true for a plain future of `Result<T, E>`. A guard then knows that
    /// the errors it holds are the operation's own or ones it made itself,
    /// and drops them without linking the drop of staunch's other kinds
    /// (see [`drop_error`]).
    #[doc(hidden)]
    const ONLY_INNER: bool = false;
}

/// Drops an error that a guard around `G` holds: the operation's own error
/// or a timeout the guard made. For a plain future nothing else can occur,
/// so only `E` is dropped and the drop of staunch's other kinds (cancel
/// reasons and their shared strings, panic messages: about half a kilobyte
/// of wasm) is not linked into programs that never make one.
pub(crate) fn drop_error<G: Fallible>(error: Error<G::Err>) {
    if G::ONLY_INNER {
        match error {
            Error::Inner(error) => drop(error),
            // A timeout owns nothing; no other kind reaches here.
            other => {
                debug_assert!(
                    matches!(other, Error::Timeout(_)),
                    "a plain future's guard held a {:?} error",
                    other.kind()
                );
                std::mem::forget(other);
            }
        }
    } else {
        drop(error);
    }
}

/// How an operation failed, as [`Fallible::failure`] reads it.
///
/// ```
/// use staunch::{ErrorKind, Failure, Fallible, Guarded};
/// use std::future::Ready;
///
/// let plain: Result<(), &str> = Err("503");
/// assert_eq!(<Ready<Result<(), &str>> as Fallible>::failure(&plain), Some(Failure::Inner(&"503")));
/// let timed_out: Result<(), staunch::Error<&str>> =
///     Err(staunch::timeout::Elapsed { after: std::time::Duration::ZERO }.into());
/// assert_eq!(
///     <Guarded<Ready<Result<(), staunch::Error<&str>>>> as Fallible>::failure(&timed_out),
///     Some(Failure::Staunch(ErrorKind::Timeout)),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a, E> {
    /// The operation's own error.
    Inner(&'a E),
    /// One of staunch's own kinds (never [`ErrorKind::Inner`]).
    Staunch(ErrorKind),
}

impl<F, T, E> Fallible for F
where
    F: Future<Output = Result<T, E>>,
{
    type Ok = T;
    type Err = E;
    type Future = F;

    const ONLY_INNER: bool = true;

    #[inline(always)]
    fn into_fallible(self) -> F {
        self
    }

    #[inline(always)]
    fn lift(out: Result<T, E>) -> Result<T, Error<E>> {
        out.map_err(Error::Inner)
    }

    #[inline(always)]
    fn failure(out: &Result<T, E>) -> Option<Failure<'_, E>> {
        out.as_ref().err().map(Failure::Inner)
    }
}

impl<F, T, E> Fallible for Guarded<F>
where
    F: Future<Output = Result<T, Error<E>>>,
{
    type Ok = T;
    type Err = E;
    type Future = F;

    #[inline(always)]
    fn into_fallible(self) -> F {
        self.future
    }

    #[inline(always)]
    fn lift(out: Result<T, Error<E>>) -> Result<T, Error<E>> {
        out
    }

    #[inline(always)]
    fn failure(out: &Result<T, Error<E>>) -> Option<Failure<'_, E>> {
        match out {
            Ok(_) => None,
            Err(Error::Inner(e)) => Some(Failure::Inner(e)),
            Err(other) => Some(Failure::Staunch(other.kind())),
        }
    }
}

/// `work` as a future of one flat staunch result.
pub(crate) fn lifted<G: Fallible>(work: G) -> Lifted<G> {
    Lifted {
        future: work.into_fallible(),
        shape: PhantomData,
    }
}
/// A staunch call: `.await` it, or hand it to another guard, which then
/// passes its `Error<E>` through instead of wrapping it again.
///
/// Returned by every guard's `call` and by [`Hedge::run`] and
/// [`Policy::run`]. It is [`IntoFuture`] rather than a [`Future`] (see the
/// [module docs](self) for why); call
/// [`into_future()`](IntoFuture::into_future) where a `Future` proper is
/// required, such as `tokio::spawn` or `futures::future::join_all`.
///
/// [`Hedge::run`]: crate::hedge::Hedge::run
/// [`Policy::run`]: crate::policy::Policy::run
///
/// ```
/// use staunch::bulkhead::Bulkhead;
/// use staunch::testing::VirtualRuntime;
/// use std::future::IntoFuture;
///
/// let rt = VirtualRuntime::new();
/// let bulkhead = Bulkhead::builder(rt.clone(), 2).build()?;
/// let calls = (0..3).map(|i| bulkhead.call(async move { Ok::<_, std::io::Error>(i) }).into_future());
/// let all = rt.block_on(futures::future::join_all(calls)).unwrap();
/// assert_eq!(all.into_iter().map(Result::unwrap).sum::<i32>(), 3);
/// # Ok::<(), staunch::ConfigError>(())
/// ```
///
/// # Cancel safety
///
/// A `Guarded` is lazy: nothing runs until it is awaited. Dropping it, or
/// the future it becomes, drops the operation; what the guard then
/// releases is said on each guard's `call`.
#[must_use = "a staunch call does nothing unless awaited; the operation will not run"]
pub struct Guarded<F> {
    future: F,
}

impl<F> Guarded<F> {
    /// Marks `future`, whose error is already a staunch [`Error`], as a
    /// staunch call, so that guards around it pass its error through.
    /// For a stage of your own that returns `Result<T, staunch::Error<E>>`.
    ///
    /// ```
    /// use staunch::Guarded;
    /// use staunch::breaker::CircuitBreaker;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let breaker = CircuitBreaker::builder(rt.clone()).build()?;
    /// let mine = Guarded::new(async { Err::<(), staunch::Error<&str>>(staunch::Error::Inner("no")) });
    /// let err = rt.block_on(breaker.call(mine)).unwrap().unwrap_err();
    /// assert_eq!(err.into_inner(), Some("no")); // not Inner(Inner("no"))
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn new<T, E>(future: F) -> Self
    where
        F: Future<Output = Result<T, Error<E>>>,
    {
        Guarded { future }
    }
}

impl<F: Future> IntoFuture for Guarded<F> {
    type Output = F::Output;
    type IntoFuture = F;

    #[inline]
    fn into_future(self) -> F {
        self.future
    }
}

impl<F: fmt::Debug> fmt::Debug for Guarded<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Guarded").field(&self.future).finish()
    }
}

pin_project_lite::pin_project! {
    /// A [`Fallible`]'s future, its output lifted to one flat staunch result.
    pub(crate) struct Lifted<G: Fallible> {
        #[pin]
        future: G::Future,
        shape: PhantomData<fn() -> G>,
    }
}

impl<G: Fallible> Future for Lifted<G> {
    type Output = Result<G::Ok, Error<G::Err>>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().future.poll(cx).map(G::lift)
    }
}
