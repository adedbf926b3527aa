//! The concurrency limit of a group: a small first-come, first-served
//! semaphore whose waiting children are dropped cleanly when cancelled.
//!
//! Invariants (under the mutex):
//! - tickets are handed out in order and queued in order, so the queue
//!   holds tickets `next_ticket - queue.len() .. next_ticket` and a
//!   ticket's slot is found by subtraction (no map: a group pays for a
//!   `VecDeque` and a short `Vec`, not for two hash tables);
//! - a slot holds a waker exactly while its `Acquire` is alive and pending
//!   (`live` counts them); an abandoned waiter leaves an empty slot, skipped
//!   when it reaches the front;
//! - a released permit goes to the first live waiter (its ticket moves to
//!   `granted`) or back to `available`; an `Acquire` dropped after being
//!   granted passes its permit on, so no permit is ever lost.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, Mutex, lock};

#[derive(Debug)]
struct Permits {
    available: usize,
    next_ticket: u64,
    /// The slots of tickets `next_ticket - queue.len()` onwards.
    queue: VecDeque<Option<Waker>>,
    /// Slots in `queue` holding a waker.
    live: usize,
    /// Tickets given a permit whose `Acquire` has not taken it yet (at
    /// most one per permit, so a short list).
    granted: Vec<u64>,
}

impl Permits {
    /// Hands one permit on; returns the waker of the waiter that got it.
    fn release(&mut self) -> Option<Waker> {
        while let Some(slot) = self.queue.pop_front() {
            if let Some(waker) = slot {
                // The popped ticket is the one before the new front.
                let ticket = self.next_ticket - self.queue.len() as u64 - 1;
                self.live -= 1;
                self.granted.push(ticket);
                return Some(waker);
            }
        }
        self.available += 1;
        None
    }

    /// The queue slot of a ticket still queued.
    fn slot(&mut self, ticket: u64) -> Option<&mut Option<Waker>> {
        let front = self.next_ticket - self.queue.len() as u64;
        let index = usize::try_from(ticket.checked_sub(front)?).ok()?;
        self.queue.get_mut(index)
    }

    /// Takes `ticket`'s grant, if it has one.
    fn take_grant(&mut self, ticket: u64) -> bool {
        match self.granted.iter().position(|&t| t == ticket) {
            Some(i) => {
                self.granted.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Semaphore(Mutex<Permits>);

impl Semaphore {
    pub(crate) fn new(permits: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore(Mutex::new(Permits {
            available: permits,
            next_ticket: 0,
            queue: VecDeque::new(),
            live: 0,
            granted: Vec::new(),
        })))
    }

    pub(crate) fn acquire(this: &Arc<Semaphore>) -> Acquire {
        Acquire {
            semaphore: this.clone(),
            ticket: None,
            done: false,
        }
    }

    fn release(&self) {
        let waker = lock(&self.0).release();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Waits for a permit.
pub(crate) struct Acquire {
    semaphore: Arc<Semaphore>,
    ticket: Option<u64>,
    done: bool,
}

/// Holds one permit until dropped.
pub(crate) struct Permit(Arc<Semaphore>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Future for Acquire {
    type Output = Permit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit> {
        let this = &mut *self;
        let mut permits = lock(&this.semaphore.0);
        match this.ticket {
            Some(ticket) => {
                if permits.take_grant(ticket) {
                    drop(permits);
                    this.done = true;
                    return Poll::Ready(Permit(this.semaphore.clone()));
                }
                // Not granted, so still queued with a waker (invariants).
                if let Some(Some(waker)) = permits.slot(ticket) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                if permits.available > 0 && permits.live == 0 {
                    permits.available -= 1;
                    drop(permits);
                    this.done = true;
                    return Poll::Ready(Permit(this.semaphore.clone()));
                }
                let ticket = permits.next_ticket;
                permits.next_ticket += 1;
                permits.queue.push_back(Some(cx.waker().clone()));
                permits.live += 1;
                this.ticket = Some(ticket);
            }
        }
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let (Some(ticket), false) = (self.ticket, self.done) else {
            return;
        };
        let waker = {
            let mut permits = lock(&self.semaphore.0);
            if permits.take_grant(ticket) {
                permits.release()
            } else {
                if let Some(slot) = permits.slot(ticket)
                    && slot.take().is_some()
                {
                    permits.live -= 1;
                }
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("ticket", &self.ticket)
            .finish()
    }
}

#[cfg(all(test, not(staunch_loom)))]
mod tests {
    use std::task::{Context, Poll};

    use futures::task::noop_waker;

    use super::*;

    fn poll(acquire: &mut Acquire) -> Option<Permit> {
        let waker = noop_waker();
        match Pin::new(acquire).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(permit) => Some(permit),
            Poll::Pending => None,
        }
    }

    /// Waiters are served first come, first served; one that leaves the
    /// queue is skipped; one that leaves after being granted passes the
    /// permit on; no permit is lost.
    #[test]
    fn permits_go_in_order_skip_leavers_and_are_never_lost() {
        let sem = Semaphore::new(1);
        let held = poll(&mut Semaphore::acquire(&sem)).expect("a free permit");
        let (mut a, mut b, mut c, mut d) = (
            Semaphore::acquire(&sem),
            Semaphore::acquire(&sem),
            Semaphore::acquire(&sem),
            Semaphore::acquire(&sem),
        );
        for waiter in [&mut a, &mut b, &mut c, &mut d] {
            assert!(poll(waiter).is_none(), "queued behind the held permit");
        }
        drop(a); // leaves while queued: skipped
        drop(held); // granted to b
        assert!(poll(&mut c).is_none(), "c is behind b");
        drop(b); // leaves after being granted: passes it to c
        let c_permit = poll(&mut c).expect("c got b's permit");
        // A newcomer does not jump the queue while d waits.
        let mut e = Semaphore::acquire(&sem);
        assert!(poll(&mut e).is_none());
        drop(c_permit); // to d
        let d_permit = poll(&mut d).expect("d is next");
        assert!(poll(&mut e).is_none());
        drop(d_permit); // to e
        let e_permit = poll(&mut e).expect("e is last");
        drop(e_permit);
        let permits = lock(&sem.0);
        assert_eq!(
            (permits.available, permits.live, permits.granted.len()),
            (1, 0, 0)
        );
        assert!(permits.queue.is_empty());
    }
}
