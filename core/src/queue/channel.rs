//! The bounded queue: a [`Lane`] (the items and waiting receivers) plus
//! staunch's own capacity count, so that capacity can be reserved before
//! the item exists and a waiting send keeps its item in hand (and so can
//! give it back).
//!
//! Invariants:
//! - `taken - released` counts queued items plus live [`Permit`]s and never
//!   exceeds `capacity`: a slot is taken (compare-and-swap on `taken`)
//!   before an item is pushed, and released (`released` grows) only after
//!   an item was taken out or a permit was dropped unused. So the queue
//!   never holds more than `capacity` items. Both counts only grow, so a
//!   slot's number (`taken` before its increment) is unique: the pool uses
//!   it as the item's submission index.
//! - Senders write `taken` and receivers `released`, on separate cache
//!   lines. A sender reads `released` only when its last look at it
//!   (`seen`, a lower bound kept beside `taken`) no longer leaves room, so
//!   while the queue is not nearly full senders and receivers write no
//!   line the other side reads on every item.
//! - Only `taken - released` bounds the queue (the lane holds at least as
//!   many, and an item leaves it before its slot is released), so a push
//!   fails only when the queue is closed, and then the slot is released
//!   and the item handed back.
//! - Every release wakes one more sender waiting for room (`space`);
//!   closing wakes all of them, so no sender sleeps through a close.
//! - An item leaves the lane only inside a synchronous step of a poll
//!   that then returns it: no receive future holds an item across an await.

use crate::sync::{AtomicU64, AtomicUsize, Ordering};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;

use super::lane::{Lane, Waiting};
use super::signal::{Signal, SignalListener};
use super::{RecvError, SendError, TryRecvError, TrySendError};
use crate::padded::Padded;
use crate::runtime::Timer;
use crate::scope::{CancelScope, Cancelled};

/// The capacity count: not generic, so the pool's counts can read `taken`.
struct Slots {
    capacity: u64,
    senders: Padded<SenderCounts>,
    /// Slots given back: items taken out, permits dropped, failed pushes.
    released: Padded<AtomicU64>,
    receivers: AtomicUsize,
    space: Signal,
}

/// Written by senders.
#[derive(Default)]
struct SenderCounts {
    /// Slots taken so far.
    taken: AtomicU64,
    /// A value `released` had: never more than it has now.
    seen: AtomicU64,
}

impl Slots {
    /// Takes a slot if one is free; gives its number (slots are numbered
    /// from 0 in the order they are taken).
    ///
    /// Only reads `released` when `seen` says the queue is full, and then
    /// with a `SeqCst` load: a sender re-checks here after it started
    /// listening for room (see `signal`), and only that load can make it
    /// conclude there is none.
    fn try_take_slot(&self) -> Option<u64> {
        let counts = &*self.senders;
        let mut taken = counts.taken.load(Ordering::Relaxed);
        loop {
            // `taken` may be older than `seen` (another sender took and a
            // receiver released since): saturate, the exchange then fails.
            if taken.saturating_sub(counts.seen.load(Ordering::Relaxed)) >= self.capacity {
                let released = self.released.load(Ordering::SeqCst);
                counts.seen.fetch_max(released, Ordering::Relaxed);
                if taken.saturating_sub(released) >= self.capacity {
                    return None;
                }
            }
            match counts.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(taken),
                Err(now) => taken = now,
            }
        }
    }

    /// Frees a slot and wakes one more sender waiting for room, if any (a
    /// `SeqCst` write, as `signal` requires).
    #[inline]
    fn release_slot(&self) {
        self.released.fetch_add(1, Ordering::SeqCst);
        self.space.notify_one_more();
    }
}

/// How many slots a queue's senders have taken so far: the pool's count of
/// submission indexes taken.
pub(super) struct SlotsTaken(Arc<Slots>);

impl SlotsTaken {
    /// The count now (`Acquire`).
    pub(super) fn load(&self) -> u64 {
        self.0.senders.taken.load(Ordering::Acquire)
    }
}

/// The producing half of a [`bounded`](super::bounded) queue. Clone it for
/// more producers; the queue closes when the last one is dropped.
pub struct Sender<T> {
    lane: Arc<Lane<T>>,
    slots: Arc<Slots>,
}

/// The consuming half of a [`bounded`](super::bounded) queue. Clone it for
/// more consumers (each item goes to one of them); when the last one is
/// dropped the queue closes and senders get their items back.
pub struct Receiver<T> {
    lane: Arc<Lane<T>>,
    slots: Arc<Slots>,
}

/// Up to this many bytes of slots (each an item and its ring stamp, a
/// word) the items live in one array allocated up front (the fastest):
/// 65 536 `u64`s. Above it they live in blocks that grow and shrink with
/// the queue, so a huge bound, or a large one of large items, costs
/// nothing until used.
const ARRAY_UP_TO_BYTES: usize = 1 << 20;

/// Whether a queue of `capacity` items of type `T` gets its array up front.
fn array_up_front<T>(capacity: usize) -> bool {
    let slot = std::mem::size_of::<T>() + std::mem::size_of::<usize>();
    capacity.saturating_mul(slot) <= ARRAY_UP_TO_BYTES
}

pub(super) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let lane = Arc::new(if array_up_front::<T>(capacity) {
        Lane::bounded(capacity)
    } else {
        Lane::unbounded()
    });
    let slots = Arc::new(Slots {
        capacity: capacity as u64,
        senders: Padded::default(),
        released: Padded::default(),
        receivers: AtomicUsize::new(1),
        space: Signal::new(),
    });
    (
        Sender {
            lane: lane.clone(),
            slots: slots.clone(),
        },
        Receiver { lane, slots },
    )
}

/// What stops a waiting send or receive.
enum Stop {
    Timeout(Duration),
    Cancelled(Cancelled),
}

impl<T> Sender<T> {
    /// Sends `item` if there is room right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
    #[inline]
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        if self.lane.is_closed() {
            return Err(TrySendError::Closed(item));
        }
        if self.slots.try_take_slot().is_none() {
            return Err(TrySendError::Full(item));
        }
        self.push(item).map_err(TrySendError::Closed)
    }

    /// Takes a slot if there is room right now (the pool's submit: the
    /// slot's number becomes the item's index before the item is built).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`].
    #[inline]
    pub(super) fn try_reserve(&self) -> Result<Permit<'_, T>, TrySendError<()>> {
        if self.lane.is_closed() {
            return Err(TrySendError::Closed(()));
        }
        match self.slots.try_take_slot() {
            Some(number) => Ok(Permit {
                sender: self,
                number,
            }),
            None => Err(TrySendError::Full(())),
        }
    }

    /// The count of slots taken, for the pool's idle check.
    pub(super) fn slots_taken(&self) -> SlotsTaken {
        SlotsTaken(self.slots.clone())
    }

    /// Pushes an item whose slot is already taken; on a closed queue the
    /// slot is released and the item handed back.
    #[inline]
    fn push(&self, item: T) -> Result<(), T> {
        self.lane
            .push(item)
            .inspect_err(|_| self.slots.release_slot())
    }

    /// Sends `item`, waiting while the queue is full (backpressure).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] with the item if the queue is or becomes closed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes leaves the queue untouched:
    /// the item was not sent, and it is dropped with the future. To get the
    /// item back instead, bound the wait with [`send_timeout`](Self::send_timeout)
    /// or [`send_in`](Self::send_in).
    pub async fn send(&self, item: T) -> Result<(), SendError<T>> {
        // An item that fits at once is sent without building the waiting
        // machinery (the pool's submit path); the first poll of
        // `send_until` would make exactly this attempt.
        let item = match self.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(item)) => return Err(SendError::Closed(item)),
            Err(TrySendError::Full(item)) => item,
        };
        self.send_until(item, std::future::pending()).await
    }

    /// Sends `item`, waiting at most `limit` (on `timer`'s clock) for room.
    ///
    /// An item that fits at once is sent without starting a timer.
    ///
    /// ```
    /// use staunch::queue::bounded;
    /// use staunch::testing::VirtualRuntime;
    /// use staunch::runtime::Timer;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let (tx, _rx) = bounded(1)?;
    /// let err = rt.block_on(async {
    ///     tx.send("first").await.unwrap();
    ///     tx.send_timeout(&rt, Duration::from_secs(2), "second").await.unwrap_err()
    /// }).unwrap();
    /// assert!(err.is_timeout());
    /// assert_eq!(err.into_item(), "second");           // given back
    /// assert_eq!(rt.now().since_origin(), Duration::from_secs(2)); // exactly
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`] or [`SendError::Closed`], with the item.
    ///
    /// # Cancel safety
    ///
    /// As for [`send`](Self::send); a timeout gives the item back.
    pub async fn send_timeout<R: Timer>(
        &self,
        timer: &R,
        limit: Duration,
        item: T,
    ) -> Result<(), SendError<T>> {
        let item = match self.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(item)) => return Err(SendError::Closed(item)),
            Err(TrySendError::Full(item)) => item,
        };
        let stop = timer.sleep(limit).map(move |()| Stop::Timeout(limit));
        self.send_until(item, stop).await
    }

    /// Sends `item`, waiting for room until `scope` is cancelled or its
    /// deadline passes.
    ///
    /// # Errors
    ///
    /// [`SendError::Cancelled`] (with the scope's reason) or
    /// [`SendError::Closed`], with the item. A scope already cancelled
    /// refuses the send even if there is room.
    ///
    /// # Cancel safety
    ///
    /// As for [`send`](Self::send); a cancelled scope gives the item back.
    pub async fn send_in(&self, scope: &CancelScope, item: T) -> Result<(), SendError<T>> {
        match self.reserve_in(scope).await {
            Ok(permit) => permit.send(item),
            Err(stopped) => Err(stopped.map_item(|()| item)),
        }
    }

    async fn send_until<S: Future<Output = Stop>>(
        &self,
        item: T,
        stop: S,
    ) -> Result<(), SendError<T>> {
        let mut stop = pin!(stop);
        let mut item = Some(item);
        let mut listener: Option<SignalListener<'_>> = None;
        poll_fn(|cx| {
            loop {
                let this = item.take().expect("polled after completion");
                match self.try_send(this) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err(TrySendError::Closed(this)) => {
                        return Poll::Ready(Err(SendError::Closed(this)));
                    }
                    Err(TrySendError::Full(this)) => item = Some(this),
                }
                match listener.as_mut() {
                    // Listen, then look again: a slot freed in between is not missed.
                    None => listener = Some(self.slots.space.listen()),
                    Some(l) => match Pin::new(l).poll(cx) {
                        Poll::Ready(()) => listener = None,
                        Poll::Pending => break,
                    },
                }
            }
            match stop.as_mut().poll(cx) {
                Poll::Ready(why) => Poll::Ready(Err(stopped(item.take().expect("held"), why))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Waits for room and holds it: capacity first, the item later.
    ///
    /// The [`Permit`] counts as one queued item until it is used or dropped.
    ///
    /// ```
    /// use staunch::queue::bounded;
    ///
    /// let (tx, rx) = bounded(1)?;
    /// futures::executor::block_on(async {
    ///     let permit = tx.reserve().await.unwrap();
    ///     assert!(tx.try_send("other").unwrap_err().is_full()); // the slot is held
    ///     permit.send("built after the slot was ours").unwrap();
    ///     assert_eq!(rx.recv().await.unwrap(), "built after the slot was ours");
    /// });
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] (carrying `()`) once the queue is closed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before it completes reserves nothing.
    pub async fn reserve(&self) -> Result<Permit<'_, T>, SendError<()>> {
        self.reserve_until(std::future::pending()).await
    }

    /// Waits at most `limit` (on `timer`'s clock) for room and holds it,
    /// as [`reserve`](Self::reserve) does; room there now is taken without
    /// starting a timer. For the pool's timed submit.
    pub(super) async fn reserve_timeout<R: Timer>(
        &self,
        timer: &R,
        limit: Duration,
    ) -> Result<Permit<'_, T>, SendError<()>> {
        match self.try_reserve() {
            Ok(permit) => return Ok(permit),
            Err(TrySendError::Closed(())) => return Err(SendError::Closed(())),
            Err(TrySendError::Full(())) => {}
        }
        let stop = timer.sleep(limit).map(move |()| Stop::Timeout(limit));
        self.reserve_until(stop).await
    }

    /// Waits for room until `scope` is cancelled (or its deadline passes)
    /// and holds it, as [`reserve`](Self::reserve) does. A scope already
    /// cancelled refuses even if there is room. For [`send_in`](Self::send_in)
    /// and the pool's cancellable submit.
    pub(super) async fn reserve_in(
        &self,
        scope: &CancelScope,
    ) -> Result<Permit<'_, T>, SendError<()>> {
        let stop = scope.cancelled().map(Stop::Cancelled);
        let mut stop = pin!(stop);
        // An already-cancelled scope wins over room in the queue.
        if let Poll::Ready(stop) = futures::poll!(stop.as_mut()) {
            return Err(stopped((), stop));
        }
        self.reserve_until(stop).await
    }

    async fn reserve_until<S: Future<Output = Stop>>(
        &self,
        stop: S,
    ) -> Result<Permit<'_, T>, SendError<()>> {
        let mut stop = pin!(stop);
        let mut listener: Option<SignalListener<'_>> = None;
        poll_fn(|cx| match self.poll_reserve(&mut listener, cx) {
            Poll::Ready(reserved) => Poll::Ready(reserved),
            Poll::Pending => stop.as_mut().poll(cx).map(|why| Err(stopped((), why))),
        })
        .await
    }

    /// Takes a slot, or registers `cx` to be woken when one may be free.
    /// `listener` is the caller's listening state, kept across polls (the
    /// pool's submit future keeps it in its own fields).
    pub(super) fn poll_reserve<'a>(
        &'a self,
        listener: &mut Option<SignalListener<'a>>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Permit<'a, T>, SendError<()>>> {
        loop {
            match self.try_reserve() {
                Ok(permit) => return Poll::Ready(Ok(permit)),
                Err(TrySendError::Closed(())) => return Poll::Ready(Err(SendError::Closed(()))),
                Err(TrySendError::Full(())) => {}
            }
            match listener.as_mut() {
                // Listen, then look again: a slot freed in between is not missed.
                None => *listener = Some(self.slots.space.listen()),
                Some(l) => match Pin::new(l).poll(cx) {
                    Poll::Ready(()) => *listener = None,
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }

    /// Closes the queue: sends fail from now on; receivers still get what is
    /// queued, then [`RecvError::Closed`]. Returns whether this call closed it.
    pub fn close(&self) -> bool {
        close(&self.lane, &self.slots)
    }

    /// Whether the queue is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.lane.is_closed()
    }
    /// How many items are queued right now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lane.len()
    }
    /// Whether nothing is queued right now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lane.is_empty()
    }
    /// The most items the queue holds (queued items plus live permits).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.capacity as usize
    }
}

fn stopped<T>(item: T, why: Stop) -> SendError<T> {
    match why {
        Stop::Timeout(after) => SendError::Timeout { item, after },
        Stop::Cancelled(cancelled) => SendError::Cancelled { item, cancelled },
    }
}

/// Closes the lane, then wakes every sender waiting for room: they see
/// the close and take their items back.
fn close<T>(lane: &Lane<T>, slots: &Slots) -> bool {
    let closed = lane.close();
    slots.space.notify_all_always();
    closed
}

impl<T> Receiver<T> {
    /// Takes an item if one is queued right now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] while open; [`TryRecvError::Closed`] once the
    /// queue is closed and empty.
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let item = self.lane.pop()?;
        self.slots.release_slot();
        Ok(item)
    }

    /// Waits for an item. Queued items are still received after the queue
    /// closes; then [`RecvError::Closed`] says the queue is done.
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the queue is closed and empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an item leaves the queue only in the poll that returns
    /// it, so dropping the future at any point loses no item.
    pub async fn recv(&self) -> Result<T, RecvError> {
        // A queued item is taken without building the waiting machinery
        // (the wait's listener and its drop guard): the worker
        // pool's hot path. The same item the first poll would have taken.
        match self.try_recv() {
            Ok(item) => return Ok(item),
            Err(TryRecvError::Closed) => return Err(RecvError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        self.recv_until(std::future::pending()).await
    }

    /// Waits at most `limit` for an item.
    ///
    /// An item that is queued when the future is polled is always returned,
    /// even if the deadline has passed by then: the queue is looked at
    /// before the timer, so an available item is never stranded by a timer
    /// that fired in the same instant (crossbeam's `recv_deadline` does the
    /// same; a timer-first choice would report a timeout with an item
    /// waiting). A ready queue returns without starting a timer.
    ///
    /// ```
    /// use staunch::queue::{bounded, RecvError};
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let (_tx, rx) = bounded::<u8>(1)?;
    /// let out = rt.block_on(rx.recv_timeout(&rt, Duration::from_millis(300))).unwrap();
    /// assert_eq!(out, Err(RecvError::Timeout { after: Duration::from_millis(300) }));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError::Timeout`] or [`RecvError::Closed`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`recv`](Self::recv).
    pub async fn recv_timeout<R: Timer>(&self, timer: &R, limit: Duration) -> Result<T, RecvError> {
        match self.try_recv() {
            Ok(item) => return Ok(item),
            Err(TryRecvError::Closed) => return Err(RecvError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        let stop = timer.sleep(limit).map(move |()| Stop::Timeout(limit));
        self.recv_until(stop).await
    }

    /// Waits for an item until `scope` is cancelled or its deadline passes.
    /// As with [`recv_timeout`](Self::recv_timeout), a queued item wins over
    /// a cancellation seen in the same poll.
    ///
    /// # Errors
    ///
    /// [`RecvError::Cancelled`] with the scope's reason, or [`RecvError::Closed`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`recv`](Self::recv).
    pub async fn recv_in(&self, scope: &CancelScope) -> Result<T, RecvError> {
        self.recv_until(scope.cancelled().map(Stop::Cancelled))
            .await
    }

    async fn recv_until<S: Future<Output = Stop>>(&self, stop: S) -> Result<T, RecvError> {
        let mut stop = pin!(stop);
        let mut waiting = Waiting::on(&self.lane);
        poll_fn(|cx| {
            if let Poll::Ready(got) = waiting.poll_pop(cx) {
                return Poll::Ready(match got {
                    Some(item) => {
                        self.slots.release_slot();
                        Ok(item)
                    }
                    None => Err(RecvError::Closed),
                });
            }
            stop.as_mut().poll(cx).map(|why| {
                Err(match why {
                    Stop::Timeout(after) => RecvError::Timeout { after },
                    Stop::Cancelled(c) => RecvError::Cancelled(c),
                })
            })
        })
        .await
    }

    /// Waits for at least one item, then moves up to `limit` queued items
    /// into `buffer` (appending) and returns how many it moved. A `limit` of
    /// zero returns 0 at once (tokio's `recv_many` does the same).
    ///
    /// ```
    /// use staunch::queue::bounded;
    ///
    /// let (tx, rx) = bounded(8)?;
    /// for i in 0..5 { tx.try_send(i).unwrap(); }
    /// let mut batch = Vec::new();
    /// let n = futures::executor::block_on(rx.recv_many(&mut batch, 3)).unwrap();
    /// assert_eq!((n, batch), (3, vec![0, 1, 2]));
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] once the queue is closed and empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: items are moved into `buffer` only in the poll that
    /// completes, so a dropped future leaves every item queued.
    pub async fn recv_many(&self, buffer: &mut Vec<T>, limit: usize) -> Result<usize, RecvError> {
        if limit == 0 {
            return Ok(0);
        }
        let first = self.recv().await?;
        buffer.push(first);
        let mut moved = 1;
        while moved < limit {
            match self.try_recv() {
                Ok(item) => {
                    buffer.push(item);
                    moved += 1;
                }
                Err(_) => break,
            }
        }
        Ok(moved)
    }

    /// Closes the queue; see [`Sender::close`].
    pub fn close(&self) -> bool {
        close(&self.lane, &self.slots)
    }

    /// Closes the queue and takes every item still queued, in queue order
    /// (asyncio's `Queue.shutdown(immediate=True)`, except that the items are
    /// handed back instead of discarded). Items a receiver took before this
    /// call are theirs; no item is both taken and returned.
    ///
    /// ```
    /// let (tx, rx) = staunch::queue::bounded(4)?;
    /// tx.try_send(1).unwrap();
    /// tx.try_send(2).unwrap();
    /// assert_eq!(rx.shutdown_immediate(), vec![1, 2]);
    /// assert!(tx.try_send(3).is_err()); // closed
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    #[must_use = "the returned items were never processed; handle them or they are lost"]
    pub fn shutdown_immediate(&self) -> Vec<T> {
        self.close();
        let mut items = Vec::with_capacity(self.lane.len());
        while let Ok(item) = self.try_recv() {
            items.push(item);
        }
        items
    }

    /// Whether the queue is closed (it may still hold items to drain).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.lane.is_closed()
    }
    /// How many items are queued right now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lane.len()
    }
    /// Whether nothing is queued right now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lane.is_empty()
    }
    /// The most items the queue holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.slots.capacity as usize
    }
}

/// Room for one item in the queue, held until [`send`](Permit::send) or drop.
#[must_use = "a permit holds a slot in the queue until it is used or dropped"]
pub struct Permit<'a, T> {
    sender: &'a Sender<T>,
    /// The slot's number: how many slots were taken before it.
    number: u64,
}

impl<T> Permit<'_, T> {
    /// The slot's number: how many slots were taken before it.
    pub(super) fn number(&self) -> u64 {
        self.number
    }

    /// Puts `item` in the reserved slot; never waits.
    ///
    /// # Errors
    ///
    /// The item, if the queue was closed after the slot was reserved.
    pub fn send(self, item: T) -> Result<(), SendError<T>> {
        let sender = self.sender;
        std::mem::forget(self);
        sender.push(item).map_err(SendError::Closed)
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        self.sender.slots.release_slot();
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit(..)")
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.lane.add_sender();
        Sender {
            lane: self.lane.clone(),
            slots: self.slots.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        // The last producer closes the queue (trio's rule): receivers
        // drain what is queued, then see the end.
        if self.lane.remove_sender() {
            self.slots.space.notify_all_always();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.slots.receivers.fetch_add(1, Ordering::AcqRel);
        Receiver {
            lane: self.lane.clone(),
            slots: self.slots.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.slots.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last consumer: close, so waiting senders get their items back.
            self.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::*;

    /// A queue of 2 holding one item; a receiver frees a slot while two
    /// senders race for room: the bound holds whatever they saw of the
    /// receivers' count, and the slot numbers stay unique.
    #[test]
    fn loom_senders_racing_a_receive_never_overfill_and_number_slots_once() {
        loom::model(|| {
            let (tx, rx) = bounded::<u64>(2);
            tx.try_send(0).expect("room");
            let senders: Vec<_> = (0..2)
                .map(|_| {
                    let tx = tx.clone();
                    loom::thread::spawn(move || {
                        let permit = tx.try_reserve().ok()?;
                        let number = permit.number();
                        // The channel underneath holds `capacity`: an
                        // overfilled queue fails this push.
                        permit.send(number).expect("room in the channel");
                        Some(number)
                    })
                })
                .collect();
            // A scheduling point, so that the senders may run before the
            // receive too (loom switches threads only at its own operations).
            loom::thread::yield_now();
            let received = u64::from(rx.try_recv().is_ok());
            let mut numbers: Vec<u64> = senders
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect();
            assert!(!numbers.is_empty(), "a slot was free all along");
            assert!(1 - received + numbers.len() as u64 <= 2, "overfilled");
            assert_eq!(rx.len() as u64, 1 - received + numbers.len() as u64);
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(
                numbers.len() as u64 + 1,
                tx.slots.senders.taken.load(Ordering::Relaxed)
            );
        });
    }
}
