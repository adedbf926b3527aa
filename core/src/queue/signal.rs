//! An [`Event`] whose notify costs one atomic load while nobody listens.
//!
//! event-listener 5 takes its list lock (after a full fence) on every
//! `notify`, listeners or not. The queue notifies once per item pushed
//! (for receivers) and once per item taken (room for a sender), so that
//! lock dominated the pool's per-item cost.
//! [`Signal`] counts its listeners and skips the event while the count is
//! zero.
//!
//! Ordering contract (Dekker's pattern): the notifier changes the state
//! waiters look at, then either
//! - [`Signal::notify_one_more`]: the change was a `SeqCst` read-modify-write and
//!   the count is loaded with `SeqCst`; or
//! - [`Signal::notify_fenced`]: the change was any write (a single
//!   writer's plain store), then a `SeqCst` fence, then the count's load;
//!
//! a waiter calls [`Signal::listen`] or [`Signal::start_listening`] (an
//! increment, then a `SeqCst` fence)
//! and then re-reads that state before it sleeps. In the single total order
//! of the `SeqCst` operations and fences either the notifier sees the
//! listener, or the waiter's re-read sees the change: no wake-up is lost.
//! (loom treats `SeqCst` accesses as `AcqRel` but models `SeqCst` fences,
//! so the models check the fenced form.)

use crate::sync::{AtomicUsize, Ordering, fence};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::{Event, EventListener, IntoNotification};

/// An event plus a count of its live listeners.
pub(super) struct Signal {
    event: Event,
    listening: AtomicUsize,
}

impl Signal {
    pub(super) fn new() -> Signal {
        Signal {
            event: Event::new(),
            listening: AtomicUsize::new(0),
        }
    }

    /// Wakes one more listener (one not woken yet), if there are any (see
    /// the module's ordering contract). "One more", not "at least one":
    /// two changes in a row (two items pushed, two slots freed) must wake
    /// two waiters even when the first has not run yet, or the second
    /// could sleep beside an item or a slot meant for it.
    #[inline]
    pub(super) fn notify_one_more(&self) {
        if self.listening.load(Ordering::SeqCst) != 0 {
            self.event.notify(1.additional());
        }
    }

    /// Wakes up to `n` listeners, if there are any, after a change that was
    /// any write (see the module's ordering contract): a `SeqCst` fence,
    /// then one load.
    #[inline]
    pub(super) fn notify_fenced(&self, n: usize) {
        fence(Ordering::SeqCst);
        if self.listening.load(Ordering::Relaxed) != 0 {
            self.event.notify(n);
        }
    }

    /// Wakes every listener, unconditionally: for rare state changes (a
    /// close) that are not `SeqCst` writes of our own.
    pub(super) fn notify_all_always(&self) {
        self.event.notify(usize::MAX);
    }

    /// Starts listening; the caller then re-checks its condition before
    /// awaiting.
    pub(super) fn listen(&self) -> SignalListener<'_> {
        SignalListener {
            listener: self.start_listening(),
            listening: &self.listening,
        }
    }

    /// Starts listening, for a caller that keeps the listener itself (it
    /// owns the signal through an `Arc`, so it cannot hold a borrow) and
    /// calls [`stop_listening`](Self::stop_listening) when it drops it.
    /// The caller then re-checks its condition before awaiting.
    pub(super) fn start_listening(&self) -> EventListener {
        self.listening.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.event.listen()
    }

    /// Counts one listener from [`start_listening`](Self::start_listening) gone.
    pub(super) fn stop_listening(&self) {
        self.listening.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registered listener; counted until dropped.
pub(super) struct SignalListener<'a> {
    listener: EventListener,
    listening: &'a AtomicUsize,
}

impl Future for SignalListener<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.listener).poll(cx)
    }
}

impl Drop for SignalListener<'_> {
    fn drop(&mut self) {
        self.listening.fetch_sub(1, Ordering::SeqCst);
    }
}
