//! [`GatherLimited`] and [`TryGatherLimited`]: at most `limit` items running,
//! the rest pulled from the iterator only when a place frees up.
//!
//! Invariants:
//! - `pool.running() <= limit` at every instant: an item is pulled from the
//!   iterator only while fewer than `limit` run, and an item leaves the pool
//!   (and is dropped) as soon as it completes.
//! - Items are pulled in iterator order; nothing is pulled before the first
//!   poll, and the iterator is never asked for more than `limit` items ahead
//!   of the completed ones.
//! - Once the iterator returns `None` it is dropped and never asked again.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::TryFuture;
use futures::future::{FusedFuture, IntoFuture as AsTry, TryFutureExt};

use super::error::GatherError;
use super::lanes::Lanes;
use super::pool::{Pool, Slots};

/// The future an item of `I` turns into.
type Work<I> = <<I as Iterator>::Item as IntoFuture>::IntoFuture;

/// The most lane entries reserved up front from an iterator's size hint.
/// The hint is only a promise about an iterator that may never be drained
/// (a fail-fast gather stops at its first error, and a lower bound may be
/// `usize::MAX`), so it must not become one huge allocation.
const RESERVE_AT_MOST: usize = 4096;

/// The most memory the result table reserves up front from a size hint;
/// past it, the table grows as results arrive.
///
/// Big enough that the table of a typical large gather (100 000 outputs of
/// up to 40 bytes) is allocated once, at its final size. Growing it instead
/// copies it at every doubling, and, measured with glibc: a table that grew
/// in place at the top of the heap was handed back to the kernel when freed
/// and faulted in afresh by the next gather, which made a 100 000-item
/// `gather_limited` 2.7x slower (3.7 ms instead of 1.4 ms). Small enough
/// that a hint which is never fulfilled (a fail-fast gather that stops
/// early, or an iterator claiming `usize::MAX` items) costs at most this
/// much untouched memory.
const RESERVE_TABLE_BYTES_AT_MOST: usize = 4 << 20;

/// How many outputs of type `O` to reserve for an iterator promising at
/// least `at_least` items.
fn table_reservation<O>(at_least: usize) -> usize {
    at_least.min(RESERVE_TABLE_BYTES_AT_MOST / std::mem::size_of::<O>().max(1))
}

/// The part both limited flavours share: the iterator, the pool and the
/// result table.
struct Feeder<I: Iterator, F: Future, O> {
    items: Option<I>,
    pool: Running<F>,
    slots: Slots<O>,
    limit: NonZeroUsize,
}

impl<I: Iterator, F: Future, O> Feeder<I, F, O> {
    fn new(items: I, limit: NonZeroUsize) -> Feeder<I, F, O> {
        let (at_least, at_most) = items.size_hint();
        let pool = match at_most {
            Some(n) if n <= limit.get() => Running::Pool(Pool::new()),
            _ => Running::Lanes(Lanes::with_capacity(
                at_least.min(limit.get()).min(RESERVE_AT_MOST),
            )),
        };
        Feeder {
            // The output needs a slot per item anyway; reserving what the
            // iterator promises (up to a bound) avoids regrowing the table.
            slots: Slots::with_capacity(table_reservation::<O>(at_least)),
            items: Some(items),
            pool,
            limit,
        }
    }

    /// Starts items until `limit` run or the iterator is exhausted.
    #[inline]
    fn top_up(&mut self, start: impl Fn(I::Item) -> F) {
        while self.pool.running() < self.limit.get() {
            let Some(items) = &mut self.items else { return };
            match items.next() {
                Some(item) => {
                    self.slots.open();
                    self.pool.push(start(item));
                }
                None => self.items = None,
            }
        }
    }

    /// The next finished item, `Ready(None)` once every item finished.
    #[inline]
    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        start: impl Fn(I::Item) -> F + Copy,
    ) -> Poll<Option<(usize, F::Output)>> {
        self.top_up(start);
        match self.pool.poll_next(cx) {
            // The pool only runs dry once the iterator is exhausted, since
            // `top_up` just refilled it and `limit >= 1`.
            Poll::Ready(None) => Poll::Ready(None),
            other => other,
        }
    }

    fn stop(&mut self) {
        self.pool.clear();
        self.items = None;
    }
}

/// Where the running items live.
enum Running<F: Future> {
    /// The input is no longer than the limit, so every item gets a place of
    /// its own anyway: a pool that allocates once per item is cheapest.
    Pool(Pool<F>),
    /// The items may outnumber the limit: lanes, each reused by item after
    /// item, so an item costs no allocation once the lanes exist.
    Lanes(Lanes<F>),
}

impl<F: Future> Running<F> {
    #[inline]
    fn push(&mut self, future: F) {
        match self {
            Running::Pool(pool) => {
                pool.push(future);
            }
            Running::Lanes(lanes) => lanes.push(future),
        }
    }

    #[inline]
    fn running(&self) -> usize {
        match self {
            Running::Pool(pool) => pool.running(),
            Running::Lanes(lanes) => lanes.running(),
        }
    }

    fn pushed(&self) -> usize {
        match self {
            Running::Pool(pool) => pool.pushed(),
            Running::Lanes(lanes) => lanes.pushed(),
        }
    }

    #[inline]
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, F::Output)>> {
        match self {
            Running::Pool(pool) => pool.poll_next(cx),
            Running::Lanes(lanes) => lanes.poll_next(cx),
        }
    }

    fn clear(&mut self) {
        match self {
            Running::Pool(pool) => pool.clear(),
            Running::Lanes(lanes) => lanes.clear(),
        }
    }
}

impl<I: Iterator, F: Future, O> fmt::Debug for Feeder<I, F, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherLimited")
            .field("limit", &self.limit)
            .field("started", &self.pool.pushed())
            .field("running", &self.pool.running())
            .field("exhausted", &self.items.is_none())
            .finish_non_exhaustive()
    }
}

/// Runs every item of an iterator with at most `limit` running at once and
/// returns their outputs in input order.
///
/// Created by [`gather_limited`](super::gather_limited); see there for
/// examples.
///
/// # Panics
///
/// If polled again after it completed. Panics of the iterator or of an item
/// propagate out of `poll`.
///
/// # Cancel safety
///
/// Dropping it drops the running items, the outputs so far and the rest of
/// the iterator.
#[must_use = "a `GatherLimited` does nothing unless awaited; await it to run the items"]
pub struct GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
    feeder: Option<Feeder<I, Work<I>, <I::Item as IntoFuture>::Output>>,
}

impl<I> GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
    pub(crate) fn new(items: I, limit: NonZeroUsize) -> Self {
        GatherLimited {
            feeder: Some(Feeder::new(items, limit)),
        }
    }
}

// The iterator and the items are never pinned in place (items live boxed,
// in the lanes or in the pool's tasks), so moving the combinator is fine.
impl<I> Unpin for GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
}

impl<I> Future for GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
    type Output = Vec<<I::Item as IntoFuture>::Output>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let feeder = self
            .feeder
            .as_mut()
            .expect("`GatherLimited` polled after it completed; await it once");
        loop {
            match feeder.poll_next(cx, IntoFuture::into_future) {
                Poll::Ready(Some((index, output))) => feeder.slots.fill(index, output),
                Poll::Ready(None) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        let outputs = feeder.slots.take();
        self.feeder = None;
        Poll::Ready(outputs)
    }
}

impl<I> FusedFuture for GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
    fn is_terminated(&self) -> bool {
        self.feeder.is_none()
    }
}

impl<I> fmt::Debug for GatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feeder {
            Some(feeder) => feeder.fmt(f),
            None => f.write_str("GatherLimited { done }"),
        }
    }
}

/// Runs the items of an iterator with at most `limit` running at once until
/// all succeed (values in input order) or one fails (every other item
/// dropped, the rest of the iterator never started).
///
/// Created by [`try_gather_limited`](super::try_gather_limited); see there
/// for examples.
///
/// # Panics
///
/// If polled again after it completed. Panics of the iterator or of an item
/// propagate out of `poll`.
///
/// # Cancel safety
///
/// Dropping it drops the running items, the values so far and the rest of
/// the iterator.
#[must_use = "a `TryGatherLimited` does nothing unless awaited; await it to run the items"]
pub struct TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
    #[allow(clippy::type_complexity)]
    feeder: Option<Feeder<I, AsTry<Work<I>>, <Work<I> as TryFuture>::Ok>>,
}

impl<I> TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
    pub(crate) fn new(items: I, limit: NonZeroUsize) -> Self {
        TryGatherLimited {
            feeder: Some(Feeder::new(items, limit)),
        }
    }
}

impl<I> Unpin for TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
}

impl<I> Future for TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
    type Output =
        Result<Vec<<Work<I> as TryFuture>::Ok>, GatherError<<Work<I> as TryFuture>::Error>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let feeder = self
            .feeder
            .as_mut()
            .expect("`TryGatherLimited` polled after it completed; await it once");
        let outcome = loop {
            match feeder.poll_next(cx, |item| TryFutureExt::into_future(item.into_future())) {
                Poll::Ready(Some((index, Ok(value)))) => feeder.slots.fill(index, value),
                Poll::Ready(Some((index, Err(error)))) => {
                    feeder.stop();
                    break Err(GatherError {
                        index,
                        name: None,
                        error,
                    });
                }
                Poll::Ready(None) => break Ok(feeder.slots.take()),
                Poll::Pending => return Poll::Pending,
            }
        };
        self.feeder = None;
        Poll::Ready(outcome)
    }
}

impl<I> FusedFuture for TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
    fn is_terminated(&self) -> bool {
        self.feeder.is_none()
    }
}

impl<I> fmt::Debug for TryGatherLimited<I>
where
    I: Iterator,
    I::Item: IntoFuture,
    Work<I>: TryFuture,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feeder {
            Some(feeder) => feeder.fmt(f),
            None => f.write_str("TryGatherLimited { done }"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_reserves_what_the_hint_promises_up_to_a_byte_bound() {
        assert_eq!(table_reservation::<u64>(100_000), 100_000);
        assert_eq!(table_reservation::<[u8; 40]>(100_000), 100_000);
        assert_eq!(table_reservation::<u64>(usize::MAX), (4 << 20) / 8);
        assert_eq!(table_reservation::<[u8; 1 << 20]>(usize::MAX), 4);
        // Zero-sized outputs never allocate, whatever the capacity.
        assert_eq!(table_reservation::<()>(usize::MAX), 4 << 20);
    }
}
