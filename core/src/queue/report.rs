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
/// its envelope and its completion crosses with it: for most items the
/// envelope is the index, the item and a null pointer, and the completion
/// the index and the value (see [`Done`]).
#[derive(Debug, Default)]
pub(super) struct Extra {
    pub(super) key: Option<Arc<str>>,
    pub(super) enqueued: Option<Instant>,
    /// `None` for 1.
    pub(super) attempts: Option<u32>,
}

/// A [`Completion`] as it travels from a worker to the reader. Every byte
/// of it crosses between threads once per item, so the common case (a
/// success at the first attempt, with no key) carries the index and the
/// value alone; anything rarer is boxed. (With 24 bytes for a `u64` value,
/// the completion lane's slots are 32 bytes, two to a cache line: the queue
/// bench's pool ran about 7 % faster than with the 32-byte completion
/// before, whose 40-byte slots straddle lines.)
pub(super) struct Done<I, T, E> {
    pub(super) index: u64,
    outcome: Outcome<I, T, E>,
}

enum Outcome<I, T, E> {
    /// Succeeded at the first attempt; no key, no timing.
    Plain(T),
    /// A dead letter, a retried success, or an item with a key or timing.
    Rich(Box<RichOutcome<I, T, E>>),
}

struct RichOutcome<I, T, E> {
    result: Result<T, DeadLetter<I, E>>,
    extra: Option<Box<Extra>>,
}

impl<I, T, E> Done<I, T, E> {
    /// Item `index`'s outcome after `attempts` handler calls; `extra` is
    /// what its envelope carried besides the item.
    #[inline]
    pub(super) fn new(
        index: u64,
        result: Result<T, DeadLetter<I, E>>,
        mut extra: Option<Box<Extra>>,
        attempts: u32,
    ) -> Done<I, T, E> {
        let outcome = match result {
            Ok(value) if attempts == 1 && extra.is_none() => Outcome::Plain(value),
            result => {
                if attempts != 1 {
                    extra.get_or_insert_default().attempts = Some(attempts);
                }
                Outcome::Rich(Box::new(RichOutcome { result, extra }))
            }
        };
        Done { index, outcome }
    }

    /// The dead letter, if the item failed for good.
    pub(super) fn dead_letter(&self) -> Option<&DeadLetter<I, E>> {
        match &self.outcome {
            Outcome::Rich(rich) => rich.result.as_ref().err(),
            Outcome::Plain(_) => None,
        }
    }

    #[inline]
    pub(super) fn into_completion(self) -> Completion<I, T, E> {
        let index = self.index;
        match self.outcome {
            Outcome::Plain(value) => Completion {
                index,
                key: None,
                attempts: 1,
                result: Ok(value),
            },
            Outcome::Rich(rich) => {
                let RichOutcome { result, extra } = *rich;
                let (key, attempts) =
                    extra.map_or((None, None), |extra| (extra.key, extra.attempts));
                Completion {
                    index,
                    key,
                    attempts: attempts.unwrap_or(1),
                    result,
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_keeps_its_index_result_key_and_attempts_whichever_way_it_travels() {
        for index in [0, 7, u64::MAX] {
            let ok: Done<&str, u32, ()> = Done::new(index, Ok(5), None, 1);
            assert!(matches!(ok.outcome, Outcome::Plain(5)));
            assert!(ok.dead_letter().is_none());
            let c = ok.into_completion();
            assert_eq!(
                (c.index, c.key, c.attempts, c.result.ok()),
                (index, None, 1, Some(5))
            );

            let retried: Done<&str, u32, ()> = Done::new(index, Ok(5), None, 3);
            assert!(matches!(retried.outcome, Outcome::Rich(_)));
            let c = retried.into_completion();
            assert_eq!((c.index, c.attempts, c.result.ok()), (index, 3, Some(5)));

            let dead = DeadLetter {
                item: "it",
                error: crate::Error::Inner(()),
                attempts: 2,
            };
            let extra = Box::new(Extra {
                key: Some(Arc::from("k")),
                ..Extra::default()
            });
            let failed: Done<&str, u32, ()> = Done::new(index, Err(dead), Some(extra), 2);
            assert_eq!(
                failed.dead_letter().map(|d| (d.item, d.attempts)),
                Some(("it", 2))
            );
            let c = failed.into_completion();
            assert_eq!(
                (c.index, c.key.as_deref(), c.attempts),
                (index, Some("k"), 2)
            );
            assert!(c.result.is_err());
        }
    }
}
