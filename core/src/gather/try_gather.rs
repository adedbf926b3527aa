//! The [`TryGather`] future: all items or the first error.
//!
//! Like [`Gather`](super::Gather), small inputs delegate to
//! `futures::future::try_join_all` (one allocation, every item polled per
//! wake-up) and larger ones use the [`Pool`] (only woken items polled). On
//! the first error the pool is cleared, so every other item is dropped
//! before the error is returned.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::TryFuture;
use futures::future::{FusedFuture, IntoFuture, TryFutureExt, TryJoinAll, try_join_all};

use super::all::SMALL;
use super::error::GatherError;
use super::indexed::TagError;
use super::pool::Batch;

pin_project_lite::pin_project! {
    /// Runs items until all succeed or one fails; on success the values are in
    /// input order, on failure the error says which item failed.
    ///
    /// Created by [`try_gather`](super::try_gather) and
    /// [`try_gather_named`](super::try_gather_named); see there for examples.
    ///
    /// # Panics
    ///
    /// If polled again after it completed. A panic inside an item propagates out
    /// of `poll`, after which dropping the `TryGather` drops every other item.
    ///
    /// # Cancel safety
    ///
    /// Dropping a `TryGather` drops every item that has not finished and the
    /// values collected so far.
    #[must_use = "a `TryGather` does nothing unless awaited; await it to run the items"]
    pub struct TryGather<F: TryFuture> {
        #[pin]
        state: State<F>,
        // A thin `Arc` rather than a boxed slice: dropping `None` is then a
        // null check inlined into the caller (not a call into the slice's
        // drop loop), and the future is one word smaller to move.
        names: Option<Arc<Box<[Arc<str>]>>>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    #[repr(u8)]
    enum State<F: TryFuture> {
        Small { #[pin] all: TryJoinAll<TagError<F>> },
        Large { batch: Box<Batch<IntoFuture<F>, F::Ok>> },
        Done,
    }
}

impl<F: TryFuture> TryGather<F> {
    pub(crate) fn new<I: IntoIterator<Item = F>>(items: I) -> TryGather<F> {
        let items = items.into_iter();
        let state = match items.size_hint() {
            (_, Some(upper)) if upper <= SMALL => State::Small {
                all: try_join_all(items.enumerate().map(|(i, item)| TagError::new(i, item))),
            },
            _ => State::Large {
                batch: Batch::boxed(items.map(TryFutureExt::into_future)),
            },
        };
        TryGather { state, names: None }
    }

    pub(crate) fn named<I, N>(items: I) -> TryGather<F>
    where
        I: IntoIterator<Item = (N, F)>,
        N: Into<Arc<str>>,
    {
        let items = items.into_iter();
        let mut names = Vec::with_capacity(items.size_hint().0);
        let futures: Vec<F> = items
            .map(|(name, item)| {
                names.push(name.into());
                item
            })
            .collect();
        TryGather {
            names: Some(Arc::new(names.into_boxed_slice())),
            ..TryGather::new(futures)
        }
    }
}

impl<F: TryFuture> Future for TryGather<F> {
    type Output = Result<Vec<F::Ok>, GatherError<F::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut state = this.state;
        // Only the small path is inlined into the caller: it is the one
        // whose cost is comparable to the wrapper's own.
        let outcome = match state.as_mut().project() {
            StateProj::Small { all } => ready!(all.poll(cx)),
            StateProj::Large { batch } => ready!(poll_large(batch, cx)),
            StateProj::Done => panic!("`TryGather` polled after it completed; await it once"),
        };
        // Drops every item still running before the caller sees an error.
        // Cheap for small inputs: `try_join_all` has already dropped every
        // item and its table, on success and on failure.
        state.set(State::Done);
        Poll::Ready(match outcome {
            Ok(values) => Ok(values),
            Err((index, error)) => Err(name_failure(
                this.names.as_deref().map(|n| &n[..]),
                index,
                error,
            )),
        })
    }
}

/// All values in input order, or the first failure's index and error.
type Outcome<F> = Result<Vec<<F as TryFuture>::Ok>, (usize, <F as TryFuture>::Error)>;

/// Polls the pool of a large input until every item succeeded or one failed.
#[inline(never)]
fn poll_large<F: TryFuture>(
    batch: &mut Batch<IntoFuture<F>, F::Ok>,
    cx: &mut Context<'_>,
) -> Poll<Outcome<F>> {
    let Batch { pool, slots } = batch;
    loop {
        match pool.poll_next(cx) {
            Poll::Ready(Some((index, Ok(value)))) => slots.fill(index, value),
            Poll::Ready(Some((index, Err(error)))) => return Poll::Ready(Err((index, error))),
            Poll::Ready(None) => return Poll::Ready(Ok(slots.take())),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The error for item `index`, with its name when the gather was named.
#[cold]
fn name_failure<E>(names: Option<&[Arc<str>]>, index: usize, error: E) -> GatherError<E> {
    GatherError {
        index,
        name: names.and_then(|n| n.get(index)).cloned(),
        error,
    }
}

impl<F: TryFuture> FusedFuture for TryGather<F> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl<F: TryFuture> fmt::Debug for TryGather<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TryGather");
        match &self.state {
            State::Small { .. } => d.field("mode", &"small"),
            State::Large { batch } => d
                .field("items", &batch.pool.pushed())
                .field("running", &batch.pool.running()),
            State::Done => d.field("done", &true),
        };
        d.finish_non_exhaustive()
    }
}
