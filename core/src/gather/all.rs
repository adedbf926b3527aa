//! The [`Gather`] future: every item to completion, outputs in input order.
//!
//! Up to [`SMALL`] items (known from the iterator's size hint) it delegates
//! to `futures::future::join_all`, which keeps them in one allocation and
//! polls them all on every wake-up: for a handful of items that is cheaper
//! than any per-item bookkeeping. Above that it uses the [`Pool`], which
//! polls only the items that woke.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::future::{FusedFuture, JoinAll, join_all};

use super::pool::Batch;

/// Inputs of at most this many items use the all-in-one-allocation path.
pub(crate) const SMALL: usize = 30;

pin_project_lite::pin_project! {
    /// Runs every item to completion and returns their outputs in input order.
    ///
    /// Created by [`gather`](super::gather); see there for examples.
    ///
    /// # Panics
    ///
    /// If polled again after it completed. A panic inside an item propagates out
    /// of `poll`, after which dropping the `Gather` drops every other item.
    ///
    /// # Cancel safety
    ///
    /// Dropping a `Gather` drops every item that has not finished and the
    /// outputs collected so far.
    #[must_use = "a `Gather` does nothing unless awaited; await it to run the items"]
    pub struct Gather<F: Future> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    #[repr(u8)]
    enum State<F: Future> {
        Small { #[pin] all: JoinAll<F> },
        Large { batch: Box<Batch<F, F::Output>> },
        Done,
    }
}

impl<F: Future> Gather<F> {
    pub(crate) fn new<I: IntoIterator<Item = F>>(items: I) -> Gather<F> {
        let items = items.into_iter();
        let state = match items.size_hint() {
            (_, Some(upper)) if upper <= SMALL => State::Small {
                all: join_all(items),
            },
            _ => State::Large {
                batch: Batch::boxed(items),
            },
        };
        Gather { state }
    }
}

impl<F: Future> Future for Gather<F> {
    type Output = Vec<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        // Only the small path is inlined into the caller: it is the one
        // whose cost is comparable to the wrapper's own.
        let outputs = match state.as_mut().project() {
            StateProj::Small { all } => ready!(all.poll(cx)),
            StateProj::Large { batch } => ready!(poll_large(batch, cx)),
            StateProj::Done => panic!("`Gather` polled after it completed; await it once"),
        };
        // Cheap for small inputs: `join_all` has already dropped every item
        // and its table.
        state.set(State::Done);
        Poll::Ready(outputs)
    }
}

/// Polls the pool of a large input until every item is done.
#[inline(never)]
fn poll_large<F: Future>(
    batch: &mut Batch<F, F::Output>,
    cx: &mut Context<'_>,
) -> Poll<Vec<F::Output>> {
    let Batch { pool, slots } = batch;
    loop {
        match pool.poll_next(cx) {
            Poll::Ready(Some((index, output))) => slots.fill(index, output),
            Poll::Ready(None) => return Poll::Ready(slots.take()),
            Poll::Pending => return Poll::Pending,
        }
    }
}

impl<F: Future> FusedFuture for Gather<F> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl<F: Future> fmt::Debug for Gather<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Gather");
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
