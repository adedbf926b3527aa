//! The engine under every gather flavour: a completion-ordered pool of
//! indexed items plus a result table in input order.
//!
//! Invariants:
//! - Every item pushed gets the next index, starting at 0, and a `None` slot
//!   at that index in [`Slots`] before it is first polled.
//! - The pool polls only items whose waker fired (one waker per item inside
//!   `FuturesUnordered`), so a poll of the pool costs O(woken items), and a
//!   whole gather costs O(N + total wake-ups).
//! - `FuturesUnordered` returns `Pending` (after waking the task) once it has
//!   polled as many items as it holds or an item woke itself twice in one
//!   pass; that bound is what keeps one busy item from starving the others
//!   and the caller's task from starving its executor (futures-rs 2387).
//! - Each item is dropped the moment it completes; clearing the pool drops
//!   every item still running.

use std::future::Future;
use std::task::{Context, Poll};

use futures::stream::{FuturesUnordered, StreamExt};

use super::indexed::Indexed;

/// The running items, in completion order.
pub(crate) struct Pool<F> {
    running: FuturesUnordered<Indexed<F>>,
    next_index: usize,
}

impl<F: Future> Pool<F> {
    pub(crate) fn new() -> Pool<F> {
        Pool {
            running: FuturesUnordered::new(),
            next_index: 0,
        }
    }

    /// Adds `future` as the next input position; returns that position.
    #[inline]
    pub(crate) fn push(&mut self, future: F) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        self.running.push(Indexed::new(index, future));
        index
    }

    /// How many items are still running.
    #[inline]
    pub(crate) fn running(&self) -> usize {
        self.running.len()
    }

    /// How many items were ever pushed.
    #[inline]
    pub(crate) fn pushed(&self) -> usize {
        self.next_index
    }

    /// The next item to finish, `Ready(None)` when none is running.
    #[inline]
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, F::Output)>> {
        if self.running.is_empty() {
            // `FuturesUnordered` remembers that it ended; an empty pool simply
            // has nothing to report, and may get more items later.
            return Poll::Ready(None);
        }
        self.running.poll_next_unpin(cx)
    }

    /// Drops every running item now.
    pub(crate) fn clear(&mut self) {
        self.running.clear();
    }
}

/// A pool with its result table: what a gather over a large input runs
/// on. The combinators that also have a small-input path keep it boxed, so
/// a small gather stays a few words to move.
pub(crate) struct Batch<F: Future, O> {
    pub(crate) pool: Pool<F>,
    pub(crate) slots: Slots<O>,
}

impl<F: Future, O> Batch<F, O> {
    /// Every item of `items` pushed in order, with a slot each.
    pub(crate) fn boxed(items: impl Iterator<Item = F>) -> Box<Batch<F, O>> {
        let mut pool = Pool::new();
        for item in items {
            pool.push(item);
        }
        // The table grows as outputs arrive instead of being reserved up
        // front. A large reservation made while the previous gather's freed
        // items sat in glibc's small-chunk caches made it consolidate them
        // all (20 % of a 1 000-item gather's instructions), and left the
        // 100 000-item gather at the mercy of the heap's state (0.93x to
        // 1.07x join_all). Growing also lowers the peak, since outputs
        // arrive as their items are freed.
        let slots = Slots::opened(pool.pushed());
        Box::new(Batch { pool, slots })
    }
}

/// Results stored by input position until every item is done.
///
/// While outputs arrive in input order (the common case: items that finish
/// at once, or in the order they were started) they are simply pushed; the
/// first output to arrive out of order moves the table to `Option` slots
/// indexed by position. Either way each output is written once and the
/// final `Vec` reuses the table's allocation.
pub(crate) struct Slots<O> {
    in_order: Vec<O>,
    scattered: Option<Vec<Option<O>>>,
    opened: usize,
}

impl<O> Slots<O> {
    pub(crate) fn with_capacity(n: usize) -> Slots<O> {
        Slots {
            in_order: Vec::with_capacity(n),
            scattered: None,
            opened: 0,
        }
    }

    /// A table for `n` positions, all reserved, none allocated yet.
    pub(crate) fn opened(n: usize) -> Slots<O> {
        Slots {
            opened: n,
            ..Slots::with_capacity(0)
        }
    }

    /// Reserves the slot for the next input position.
    #[inline]
    pub(crate) fn open(&mut self) {
        self.opened += 1;
        if let Some(slots) = &mut self.scattered {
            slots.push(None);
        }
    }

    #[inline]
    pub(crate) fn fill(&mut self, index: usize, output: O) {
        match &mut self.scattered {
            None if index == self.in_order.len() => self.in_order.push(output),
            Some(slots) => slots[index] = Some(output),
            None => {
                let mut slots = Vec::with_capacity(self.opened.max(self.in_order.capacity()));
                slots.extend(self.in_order.drain(..).map(Some));
                slots.resize_with(self.opened, || None);
                slots[index] = Some(output);
                self.in_order = Vec::new();
                self.scattered = Some(slots);
            }
        }
    }

    /// The outputs in input order. Every slot is filled when this is called
    /// (the pool ran dry), so nothing is lost by skipping `None`s.
    pub(crate) fn take(&mut self) -> Vec<O> {
        match self.scattered.take() {
            None => std::mem::take(&mut self.in_order),
            // `filter_map` (unlike `flatten`) lets std collect in place,
            // reusing the table's allocation.
            #[allow(clippy::filter_map_identity)]
            Some(slots) => slots.into_iter().filter_map(|slot| slot).collect(),
        }
    }
}
