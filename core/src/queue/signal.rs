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

use crate::sync::{AtomicBool, AtomicUsize, Ordering, fence};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use event_listener::{Event, EventListener, IntoNotification};

/// An event plus a count of its live listeners.
pub(super) struct Signal {
    event: Event,
    listening: AtomicUsize,
    /// Set by [`notify_one_more`](Self::notify_one_more) when it woke a
    /// lone listener; cleared by every listener before it looks at the
    /// state again (see [`Signal::looking`]).
    woken: AtomicBool,
}

impl Signal {
    pub(super) fn new() -> Signal {
        Signal {
            event: Event::new(),
            listening: AtomicUsize::new(0),
            woken: AtomicBool::new(false),
        }
    }

    /// Wakes one more listener (one not woken yet), if there are any (see
    /// the module's ordering contract). "One more", not "at least one":
    /// two changes in a row (two items pushed, two slots freed) must wake
    /// two waiters even when the first has not run yet, or the second
    /// could sleep beside an item or a slot meant for it.
    ///
    /// With one listener, a wake-up sent since that listener last looked
    /// at the state is enough, and taking the event's lock again is
    /// skipped. That is the common case of a busy queue (the one producer
    /// waiting for room while workers free slot after slot, the one reader
    /// waiting for completions while workers push them), and the lock was
    /// a cache line every worker fought over.
    ///
    /// Why no wake-up is lost (all operations below are `SeqCst`): a
    /// notifier that skips found `woken` set by an earlier notifier `N0`
    /// after the listener's last [`looking`](Self::looking). `N0` then
    /// notified the event, and the listener was in it by then (it
    /// registers before it clears `woken`), so the listener holds a
    /// wake-up, or, if it leaves without using it, event-listener passes it
    /// to the next listener. Taking a wake-up is followed by `looking` and
    /// a fresh look at the state, ordered after the skipping notifier's
    /// read of `woken`, hence after its change. A listener that starts
    /// listening after the notifier read the count clears `woken` and looks
    /// after that read too. With two or more listeners nothing is skipped.
    #[inline]
    pub(super) fn notify_one_more(&self) {
        match self.listening.load(Ordering::SeqCst) {
            0 => {}
            1 => {
                if !self.woken.swap(true, Ordering::SeqCst) {
                    self.event.notify(1.additional());
                }
            }
            _ => {
                self.event.notify(1.additional());
            }
        }
    }

    /// A listener is about to look at the state: right after it started
    /// listening, and right after it took a wake-up. Every listener of a
    /// signal notified with [`notify_one_more`](Self::notify_one_more)
    /// must call this then (the methods here do it for the listeners they
    /// make and poll; a caller polling an [`EventListener`] itself calls it
    /// on `Ready`).
    #[inline]
    pub(super) fn looking(&self) {
        self.woken.store(false, Ordering::SeqCst);
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
            signal: self,
        }
    }

    /// Starts listening, for a caller that keeps the listener itself (it
    /// owns the signal through an `Arc`, so it cannot hold a borrow) and
    /// calls [`stop_listening`](Self::stop_listening) when it drops it.
    /// The caller then re-checks its condition before awaiting.
    pub(super) fn start_listening(&self) -> EventListener {
        self.listening.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let listener = self.event.listen();
        // Registered first, then `woken` cleared (see `notify_one_more`).
        self.looking();
        listener
    }

    /// Counts one listener from [`start_listening`](Self::start_listening) gone.
    pub(super) fn stop_listening(&self) {
        self.listening.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A registered listener; counted until dropped. Its owner looks at the
/// state again whenever it completes.
pub(super) struct SignalListener<'a> {
    listener: EventListener,
    signal: &'a Signal,
}

impl Future for SignalListener<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let woken = Pin::new(&mut self.listener).poll(cx);
        if woken.is_ready() {
            self.signal.looking();
        }
        woken
    }
}

impl Drop for SignalListener<'_> {
    fn drop(&mut self) {
        self.signal.listening.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(staunch_loom)))]
mod tests {
    use super::*;
    use crate::queue::wake_tests::{flag as waker, poll, woken};
    use std::pin::pin;
    use std::task::Waker;

    fn pending<F: Future>(fut: Pin<&mut F>, waker: &Waker) -> bool {
        poll(fut, waker).is_pending()
    }

    /// The interleaving the lone-listener shortcut must survive: a
    /// notifier counts one listener, a second starts listening, the
    /// notifier's wake-up goes to the first, which takes it and leaves.
    /// The next change must wake the second, though `woken` was set after
    /// the second started listening.
    #[test]
    fn a_listener_that_joins_while_a_notify_is_under_way_is_woken_by_the_next_change() {
        let signal = Signal::new();
        let (_, first_waker) = waker();
        let mut first = Box::pin(signal.listen());
        assert!(pending(first.as_mut(), &first_waker));
        // A notifier reads the count: one listener.
        assert_eq!(signal.listening.load(Ordering::SeqCst), 1);
        // Before it goes on, a second listener joins.
        let (second_woken, second_waker) = waker();
        let mut second = pin!(signal.listen());
        assert!(pending(second.as_mut(), &second_waker));
        // The notifier goes on as for a lone listener; the first gets it.
        assert!(!signal.woken.swap(true, Ordering::SeqCst));
        signal.event.notify(1.additional());
        assert!(!pending(first.as_mut(), &first_waker));
        // The first found what it waited for and leaves.
        drop(first);
        assert!(!woken(&second_woken));
        signal.notify_one_more();
        assert!(woken(&second_woken));
        assert!(!pending(second.as_mut(), &second_waker));
    }
}
