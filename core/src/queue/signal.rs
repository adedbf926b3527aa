//! An [`Event`] whose notify costs one atomic load while nobody listens.
//!
//! event-listener 5 takes its list lock (after a full fence) on every
//! `notify`, listeners or not. The queue notifies once per received item
//! (room for a sender) and the pool once per finished item (for `join`), so
//! that lock dominated the pool's per-item cost. [`Signal`] counts its
//! listeners and skips the event while the count is zero.
//!
//! Ordering contract (Dekker's pattern, every access `SeqCst`): the
//! notifier changes the state waiters look at with a `SeqCst` read-modify-
//! write, then [`Signal::notify`] loads the count (`SeqCst`); a waiter
//! calls [`Signal::listen`] (a `SeqCst` increment) and then re-reads that
//! state with `SeqCst` loads before it sleeps. In the single total order of
//! these accesses either the notifier sees the listener, or the waiter's
//! re-read sees the change: no wake-up is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use event_listener::{Event, EventListener};

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

    /// Wakes up to `n` listeners, if there are any (see the module's
    /// ordering contract).
    pub(super) fn notify(&self, n: usize) {
        if self.listening.load(Ordering::SeqCst) != 0 {
            self.event.notify(n);
        }
    }

    /// Wakes every listener, unconditionally: for rare state changes (a
    /// close) that are not `SeqCst` writes of our own.
    pub(super) fn notify_all_always(&self) {
        self.event.notify(usize::MAX);
    }

    /// Starts listening; the caller then re-checks its condition (with
    /// `SeqCst` loads) before awaiting.
    pub(super) fn listen(&self) -> SignalListener<'_> {
        self.listening.fetch_add(1, Ordering::SeqCst);
        SignalListener {
            listener: self.event.listen(),
            listening: &self.listening,
        }
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
