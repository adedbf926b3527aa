//! [`Lane`]: the queue's items and the wake-ups of receivers waiting for
//! them; the engine under both the bounded queue and a pool's completions.
//!
//! It is async-channel's own design (a `concurrent-queue` plus
//! `event-listener`, from the same authors) with one difference that
//! matters on the hot path: async-channel notifies its listener lists on
//! every send and every receive (a `SeqCst` fence and, once anyone has ever
//! waited, a lock), whether anyone waits or not. A lane's push tells
//! waiting receivers through a [`Signal`], which costs one load while
//! nobody waits. The worker pool pushes and pops twice per item, so this
//! was most of what it paid over a hand-written async-channel loop.
//!
//! Invariants:
//! - An item leaves the lane only in [`Lane::pop`], a synchronous step;
//!   waiting never holds an item.
//! - A push is a `SeqCst` read-modify-write of the queue's tail (every
//!   flavour of `concurrent-queue`), then [`Signal::notify_one_more`];
//!   a receiver starts listening, then pops again before it sleeps (the
//!   ordering contract in `signal`). So no receiver sleeps while an item
//!   it could take is queued.
//! - Each push wakes one more receiver, and a woken receiver dropped
//!   before it took anything passes its wake-up on (event-listener does
//!   that), so a wake-up is never stranded on a receiver that left.
//! - Closing wakes every receiver; they drain what is queued, then see
//!   [`TryRecvError::Closed`]. The lane closes when its last
//!   [`LaneSender`] is dropped, or on [`Lane::close`].

use std::task::{Context, Poll};

use concurrent_queue::{ConcurrentQueue, PopError, PushError};
use event_listener::EventListener;

use super::TryRecvError;
use super::signal::Signal;
use std::sync::Arc;

use crate::sync::{AtomicUsize, Ordering};

/// Items, and receivers waiting for them.
pub(super) struct Lane<T> {
    queue: ConcurrentQueue<T>,
    ready: Signal,
    /// Live [`LaneSender`]s (the bounded queue counts its own senders the
    /// same way, through [`Lane::add_sender`] and [`Lane::remove_sender`]).
    senders: AtomicUsize,
}

impl<T> Lane<T> {
    /// A lane holding at most `capacity` items (at least 1).
    pub(super) fn bounded(capacity: usize) -> Lane<T> {
        Lane::with(ConcurrentQueue::bounded(capacity))
    }

    /// A lane with no bound: it grows and shrinks in blocks.
    pub(super) fn unbounded() -> Lane<T> {
        Lane::with(ConcurrentQueue::unbounded())
    }

    fn with(queue: ConcurrentQueue<T>) -> Lane<T> {
        Lane {
            queue,
            ready: Signal::new(),
            senders: AtomicUsize::new(1),
        }
    }

    /// Queues `item` and wakes one more waiting receiver, if any.
    ///
    /// # Errors
    ///
    /// The item, when the lane is closed or full. The bounded queue never
    /// pushes without a slot, so for it "full" cannot happen; it handles
    /// both the same way (the slot is released, the item handed back).
    #[inline]
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        match self.queue.push(item) {
            Ok(()) => {
                self.ready.notify_one_more();
                Ok(())
            }
            Err(PushError::Closed(item)) => Err(item),
            Err(PushError::Full(item)) => {
                debug_assert!(false, "a lane was pushed past its capacity");
                Err(item)
            }
        }
    }

    /// Takes the oldest item, if one is queued.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] while open, [`TryRecvError::Closed`] once
    /// closed and empty.
    #[inline]
    pub(super) fn pop(&self) -> Result<T, TryRecvError> {
        self.queue.pop().map_err(|e| match e {
            PopError::Empty => TryRecvError::Empty,
            PopError::Closed => TryRecvError::Closed,
        })
    }

    /// Takes an item, or registers `cx` to be woken when one may have come.
    /// `listener` is the caller's listening state, kept across polls; it is
    /// `Some` only while the caller listens (then the caller must hand it
    /// to [`stop_listening`](Self::stop_listening) if it gives up).
    ///
    /// `Ready(None)` once the lane is closed and empty.
    pub(super) fn poll_pop(
        &self,
        listener: &mut Option<EventListener>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<T>> {
        loop {
            match self.pop() {
                Ok(item) => {
                    self.stop_listening(listener);
                    return Poll::Ready(Some(item));
                }
                Err(TryRecvError::Closed) => {
                    self.stop_listening(listener);
                    return Poll::Ready(None);
                }
                Err(TryRecvError::Empty) => {}
            }
            match listener {
                // Listen, then look again: an item pushed in between is
                // not missed.
                None => *listener = Some(self.ready.start_listening()),
                Some(waiting) => match std::pin::Pin::new(waiting).poll(cx) {
                    Poll::Ready(()) => {
                        *listener = None;
                        self.ready.stop_listening();
                        self.ready.looking();
                    }
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Ends the caller's listening, if it listens. A wake-up it received
    /// and did not act on goes to another receiver.
    pub(super) fn stop_listening(&self, listener: &mut Option<EventListener>) {
        if listener.take().is_some() {
            self.ready.stop_listening();
        }
    }

    /// Closes the lane and wakes every receiver. Whether this call closed it.
    pub(super) fn close(&self) -> bool {
        let closed = self.queue.close();
        self.ready.notify_all_always();
        closed
    }

    pub(super) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// One more sender keeps the lane open.
    pub(super) fn add_sender(&self) {
        self.senders.fetch_add(1, Ordering::Relaxed);
    }

    /// A sender is gone; the last one closes the lane. Whether it was the last.
    pub(super) fn remove_sender(&self) -> bool {
        let last = self.senders.fetch_sub(1, Ordering::AcqRel) == 1;
        if last {
            self.close();
        }
        last
    }
}

/// A receiver's wait on a borrowed lane: it stops listening when dropped,
/// so a receive future dropped mid-wait leaves nothing behind.
pub(super) struct Waiting<'a, T> {
    lane: &'a Lane<T>,
    listener: Option<EventListener>,
}

impl<'a, T> Waiting<'a, T> {
    pub(super) fn on(lane: &'a Lane<T>) -> Waiting<'a, T> {
        Waiting {
            lane,
            listener: None,
        }
    }

    /// See [`Lane::poll_pop`].
    pub(super) fn poll_pop(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.lane.poll_pop(&mut self.listener, cx)
    }
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        self.lane.stop_listening(&mut self.listener);
    }
}

/// The sending half of a pool's completions lane: workers hold clones, and
/// the lane closes when the last one is dropped.
pub(super) struct LaneSender<T>(Arc<Lane<T>>);

impl<T> LaneSender<T> {
    /// An unbounded lane's one sender and the lane itself, for its reader.
    pub(super) fn unbounded() -> (LaneSender<T>, Arc<Lane<T>>) {
        let lane = Arc::new(Lane::unbounded());
        (LaneSender(lane.clone()), lane)
    }

    /// Queues `item`.
    ///
    /// # Errors
    ///
    /// The item, once the lane is closed (its reader is gone).
    #[inline]
    pub(super) fn send(&self, item: T) -> Result<(), T> {
        self.0.push(item)
    }
}

impl<T> Clone for LaneSender<T> {
    fn clone(&self) -> Self {
        self.0.add_sender();
        LaneSender(self.0.clone())
    }
}

impl<T> Drop for LaneSender<T> {
    fn drop(&mut self) {
        self.0.remove_sender();
    }
}
