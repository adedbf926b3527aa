//! What a worker pool hands back: completions, dead letters, the shutdown
//! report and counters.

use std::fmt;
use std::sync::Arc;

use crate::Error;
use crate::runtime::Instant;

/// One processed item, as the pool's completion stream yields it (in
/// completion order).
#[derive(Debug)]
pub struct Completion<I, T, E> {
    /// The item's submission number, from 0, in submission order.
    pub index: u64,
    /// The key the item was submitted with, if any.
    pub key: Option<Arc<str>>,
    /// How many times the handler was called for this item (retries included).
    pub attempts: u32,
    /// The handler's value, or the dead letter: the item with its last error.
    pub result: Result<T, DeadLetter<I, E>>,
}

/// What only some items carry, out of line: a key, the submission time
/// (taken only while someone observes events) and an attempt count other
/// than 1. Each item crosses two queues between threads, and every byte of
/// its envelope and its completion crosses with it: for most items both
/// are the index, the item (or value) and a null pointer.
#[derive(Debug, Default)]
pub(super) struct Extra {
    pub(super) key: Option<Arc<str>>,
    pub(super) enqueued: Option<Instant>,
    /// `None` for 1.
    pub(super) attempts: Option<u32>,
}

/// A [`Completion`] as it travels from a worker to the reader: the dead
/// letter and the rare fields boxed, so the channel's slots (allocated
/// zeroed, 31 at a time) stay small on the common path, where items succeed at the first attempt.
pub(super) struct Done<I, T, E> {
    pub(super) index: u64,
    pub(super) result: Result<T, Box<DeadLetter<I, E>>>,
    pub(super) extra: Option<Box<Extra>>,
}

impl<I, T, E> Done<I, T, E> {
    #[inline]
    pub(super) fn into_completion(self) -> Completion<I, T, E> {
        let (key, attempts) = self
            .extra
            .map_or((None, None), |extra| (extra.key, extra.attempts));
        Completion {
            index: self.index,
            key,
            attempts: attempts.unwrap_or(1),
            result: self.result.map_err(|dead| *dead),
        }
    }
}

/// An item that failed for good (its retries exhausted, an open circuit, a
/// panic, ...): the item itself, its last error and how many attempts it had.
/// The pool never drops it: it is on the completion stream, or, if nobody
/// holds that stream any more, reported to the error sink.
pub struct DeadLetter<I, E> {
    /// The item, as it was submitted.
    pub item: I,
    /// The last attempt's error (after the policy: retry, breaker, timeout).
    pub error: Error<E>,
    /// How many times the handler was called for it.
    pub attempts: u32,
}

impl<I, E: fmt::Debug> fmt::Debug for DeadLetter<I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("error", &self.error)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// Why an item came back unprocessed from [`WorkerPool::shutdown`](super::WorkerPool::shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unprocessed {
    /// It was still in the queue; no worker had taken it.
    Queued,
    /// A worker had it (running, or waiting for its key's slot) and the
    /// grace period ended: it was cancelled with reason "shutdown".
    CancelledInFlight,
}

/// An item that was never processed, handed back by a shutdown.
#[derive(Debug)]
pub struct Returned<I> {
    /// The item's submission number.
    pub index: u64,
    /// Its key, if any.
    pub key: Option<Arc<str>>,
    /// Where it was when the pool stopped.
    pub state: Unprocessed,
    /// The item.
    pub item: I,
}

/// Every item a [`shutdown`](super::WorkerPool::shutdown) did not process,
/// in one place: queued ones first (in queue order), then the ones cancelled
/// in flight. An item is here or it was processed (its completion was
/// emitted), never both, never neither.
#[derive(Debug)]
#[must_use = "these items were never processed; handle them or they are lost"]
pub struct ShutdownReport<I> {
    /// The unprocessed items.
    pub returned: Vec<Returned<I>>,
    /// The pool's counters when it stopped.
    pub stats: PoolStats,
}

impl<I> ShutdownReport<I> {
    /// How many items were still queued.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.count(Unprocessed::Queued)
    }
    /// How many items were cancelled in flight.
    #[must_use]
    pub fn cancelled_in_flight(&self) -> usize {
        self.count(Unprocessed::CancelledInFlight)
    }
    fn count(&self, state: Unprocessed) -> usize {
        self.returned.iter().filter(|r| r.state == state).count()
    }
    /// The items alone, queued ones first.
    #[must_use]
    pub fn into_items(self) -> Vec<I> {
        self.returned.into_iter().map(|r| r.item).collect()
    }
}

/// A worker pool's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Items accepted by a submit.
    pub submitted: u64,
    /// Items whose handler succeeded.
    pub succeeded: u64,
    /// Items that failed for good (dead letters).
    pub dead_lettered: u64,
    /// Handler calls beyond each item's first (retries and hedges).
    pub retries: u64,
    /// Items handed back unprocessed (or, when the pool was dropped,
    /// reported lost to the error sink).
    pub returned: u64,
    /// Items queued right now.
    pub queued: u64,
}
