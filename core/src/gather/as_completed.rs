//! The [`AsCompleted`] stream: `(index, output)` pairs as items finish.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::FusedStream;

use super::pool::Pool;

/// A stream of `(index, output)` for every item, in the order the items
/// finish; `index` is the item's position in the input.
///
/// Created by [`as_completed`](super::as_completed); see there for examples.
///
/// # Panics
///
/// Never by itself; a panic inside an item propagates out of `poll_next`.
///
/// # Cancel safety
///
/// Dropping the stream drops every item that has not finished. Items keep
/// running only while the stream is polled.
#[must_use = "an `AsCompleted` stream does nothing unless polled; iterate it with `next().await`"]
pub struct AsCompleted<F> {
    pool: Pool<F>,
    done: bool,
}

impl<F: Future> AsCompleted<F> {
    pub(crate) fn new<I: IntoIterator<Item = F>>(items: I) -> AsCompleted<F> {
        let mut pool = Pool::new();
        for item in items {
            pool.push(item);
        }
        AsCompleted { pool, done: false }
    }

    /// How many items have not finished yet.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.pool.running()
    }
}

impl<F: Future> Stream for AsCompleted<F> {
    type Item = (usize, F::Output);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = self.pool.poll_next(cx);
        if let Poll::Ready(None) = next {
            self.done = true;
        }
        next
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.pool.running();
        (n, Some(n))
    }
}

impl<F: Future> FusedStream for AsCompleted<F> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<F: Future> fmt::Debug for AsCompleted<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("items", &self.pool.pushed())
            .field("remaining", &self.pool.running())
            .finish()
    }
}
