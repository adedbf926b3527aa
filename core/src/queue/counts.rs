//! A pool's counters, and the idle check [`join`](super::WorkerPool::join)
//! waits on.
//!
//! Who writes what (so that the per-item path shares no written cache line
//! between threads, and takes no locked instruction for counting):
//! - Submitters take indexes: an item's index is the number of the queue
//!   slot it took (`taken`, see `channel`). They count refusals
//!   (`refused`: a slot taken and then not filled, because the queue closed
//!   in between); rare.
//! - Each worker counts its own items (`done`, `dead_lettered`, `retries`)
//!   on a line of its own, and is the only writer of it: an increment is a
//!   plain load and a `Release` store, no read-modify-write.
//! - Items handed back (shutdown, cancellation, drop) are counted in
//!   `returned`, by whichever thread hands them back; rare.
//!
//! The pool is idle when `done + returned + refused == taken`: every
//! index taken was finished or refused. [`Counts::is_idle`] reads the
//! finished counts first and the index last. An item is finished only after
//! its index was taken, and a worker's `Release` store of `done` (read with
//! `Acquire`) carries that taking with it, so the index read last is at
//! least every count read before it, and equal only if every index taken
//! by then was finished. (Reading the index first would be wrong: items
//! submitted and finished between the two reads would make up for an
//! earlier item still in flight.)
//!
//! Wake-ups: a worker does not notify per item. It notifies join's waiters
//! ([`Counts::settle`]) when it is about to wait for an empty queue and
//! when it stops; the other finishes (`returned`, `refused`) notify at
//! once. That loses no wake-up: after finishing an item, a worker either
//! takes another item at once (unfinished, so the pool is not idle until
//! that one is finished too) or finds the queue empty or closed and
//! settles. So the finish that makes the pool idle is always followed by a
//! settle, before the worker next waits.
//!
//! Ordering contract of the sleep (Dekker's pattern on `SeqCst` fences,
//! which loom models): the finisher writes its count, then `settle` (or
//! [`Signal::notify_fenced`]) runs a `SeqCst` fence and loads the listener
//! count; the waiter registers ([`Signal::listen`]: an increment and a
//! `SeqCst` fence) and then reads the counts. Of the two fences, the one
//! later in their single total order sees the other side's write: either the
//! finisher sees the listener and notifies, or the waiter's re-check sees
//! the finish. `refused` and `returned` are `SeqCst` read-modify-writes
//! followed by the fenced notify, the same argument.

use super::channel::SlotsTaken;
use super::report::PoolStats;
use super::signal::Signal;
use crate::padded::Padded;
use crate::sync::{AtomicU64, Ordering};

/// Written by one worker only.
#[derive(Default)]
struct WorkerCounts {
    /// Items this worker processed: succeeded or dead-lettered.
    done: AtomicU64,
    dead_lettered: AtomicU64,
    retries: AtomicU64,
}

/// Adds `n` to a counter that only the calling worker writes: no locked
/// instruction. `Release`, so that a reader that sees the count sees what
/// came before it (the item's index taken, its completion sent).
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
}

/// Every counter of a pool, and the signal `join` waits on.
pub(super) struct Counts {
    /// Indexes taken: the queue's slots taken.
    taken: SlotsTaken,
    refused: AtomicU64,
    workers: Box<[Padded<WorkerCounts>]>,
    returned: AtomicU64,
    idle: Signal,
}

impl Counts {
    /// Counters for a pool of `workers` workers whose queue's slot
    /// numbers are the submission indexes.
    pub(super) fn new(workers: usize, taken: SlotsTaken) -> Counts {
        Counts {
            taken,
            refused: AtomicU64::new(0),
            workers: (0..workers).map(|_| Padded::default()).collect(),
            returned: AtomicU64::new(0),
            idle: Signal::new(),
        }
    }

    /// A submit took an index and then did not enqueue its item.
    pub(super) fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::SeqCst);
        self.idle.notify_fenced(usize::MAX);
    }

    /// An item was handed back unprocessed (or reported lost).
    pub(super) fn returned(&self) {
        self.returned.fetch_add(1, Ordering::SeqCst);
        self.idle.notify_fenced(usize::MAX);
    }

    /// Worker `worker` finished an item, `ok` or dead-lettered, after
    /// `attempts` handler calls. Only that worker may call this; join's
    /// waiters hear of it at the worker's next [`settle`](Self::settle).
    #[inline]
    pub(super) fn completed(&self, worker: usize, ok: bool, attempts: u32) {
        let counts = &self.workers[worker];
        if attempts > 1 {
            bump(&counts.retries, u64::from(attempts - 1));
        }
        if !ok {
            bump(&counts.dead_lettered, 1);
        }
        bump(&counts.done, 1);
    }

    /// A worker is about to wait for an item, or stops: wakes join's
    /// waiters, if any, for what it finished since it last settled.
    #[inline]
    pub(super) fn settle(&self) {
        self.idle.notify_fenced(usize::MAX);
    }

    fn finished(&self) -> u64 {
        let done: u64 = self
            .workers
            .iter()
            .map(|w| w.done.load(Ordering::Acquire))
            .sum();
        done + self.returned.load(Ordering::Acquire)
    }

    /// Whether every index taken so far was refused or finished: counts
    /// first, index last (see the module docs).
    pub(super) fn is_idle(&self) -> bool {
        let finished = self.finished() + self.refused.load(Ordering::Acquire);
        finished == self.taken.load()
    }

    /// Waits until [`is_idle`](Self::is_idle).
    pub(super) async fn wait_idle(&self) {
        loop {
            if self.is_idle() {
                return;
            }
            let listener = self.idle.listen();
            if self.is_idle() {
                return;
            }
            listener.await;
        }
    }

    /// The counters now, with `queued` items in the queue.
    pub(super) fn stats(&self, queued: usize) -> PoolStats {
        let sum = |field: fn(&WorkerCounts) -> &AtomicU64| -> u64 {
            self.workers
                .iter()
                .map(|w| field(w).load(Ordering::Relaxed))
                .sum()
        };
        let dead_lettered = sum(|w| &w.dead_lettered);
        // Refusals read before indexes: a racing refusal cannot make the
        // difference wrap.
        let refused = self.refused.load(Ordering::Relaxed);
        PoolStats {
            submitted: self.taken.load() - refused,
            succeeded: sum(|w| &w.done) - dead_lettered,
            dead_lettered,
            retries: sum(|w| &w.retries),
            returned: self.returned.load(Ordering::Relaxed),
            queued: queued as u64,
        }
    }
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use std::sync::Arc as StdArc;
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    use std::task::{Context, Poll};

    use futures::FutureExt;

    use super::*;
    use crate::queue::channel::{Receiver, Sender, bounded};
    use crate::sync::Arc;

    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(arc_self: &StdArc<Self>) {
            arc_self.0.store(true, StdOrdering::SeqCst);
        }
    }

    /// A pool's counts over a queue of 8, and its two halves.
    fn counts(workers: usize) -> (Arc<Counts>, Sender<u8>, Receiver<u8>) {
        let (tx, rx) = bounded(8);
        (Arc::new(Counts::new(workers, tx.slots_taken())), tx, rx)
    }

    /// Submits an item: takes its index (a slot) and fills the slot.
    fn submit(tx: &Sender<u8>) {
        tx.try_send(0).expect("room");
    }

    /// Polls `join`'s wait once; then, after `racing` ran on another
    /// thread, checks that a pending wait was woken and is now done.
    fn join_racing(counts: Arc<Counts>, racing: impl FnOnce(&Counts) + Send + 'static) {
        let other = counts.clone();
        let t = loom::thread::spawn(move || racing(&other));
        let flag = StdArc::new(Flag(AtomicBool::new(false)));
        let waker = futures::task::waker(flag.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wait = Box::pin(counts.wait_idle());
        let first = wait.poll_unpin(&mut cx);
        t.join().unwrap();
        if first.is_pending() {
            assert!(flag.0.load(StdOrdering::SeqCst), "the finish woke nobody");
            assert_eq!(wait.poll_unpin(&mut cx), Poll::Ready(()));
        }
    }

    #[test]
    fn loom_a_worker_settling_after_its_last_item_wakes_a_waiting_join() {
        loom::model(|| {
            let (counts, tx, _rx) = counts(1);
            submit(&tx);
            join_racing(counts, |c| {
                c.completed(0, true, 1);
                c.settle();
            });
        });
    }

    #[test]
    fn loom_a_refusal_or_a_return_racing_join_wakes_it() {
        loom::model(|| {
            let (counts, tx, _rx) = counts(1);
            submit(&tx);
            submit(&tx);
            join_racing(counts, |c| {
                c.refuse();
                c.returned();
            });
        });
    }

    /// Item 1 is in flight for good; item 2 is submitted and finished
    /// while join looks: join must never see the pool idle.
    #[test]
    fn loom_an_item_submitted_and_finished_during_the_check_never_hides_one_in_flight() {
        loom::model(|| {
            let (counts, tx, _rx) = counts(2);
            submit(&tx);
            submit(&tx);
            counts.completed(0, true, 1);
            let other = counts.clone();
            let t = loom::thread::spawn(move || {
                submit(&tx);
                other.completed(1, true, 1);
            });
            assert!(!counts.is_idle());
            t.join().unwrap();
            assert!(!counts.is_idle());
        });
    }
}
