//! The concurrency limit of a group: a small first-come, first-served
//! semaphore whose waiting children are dropped cleanly when cancelled.
//!
//! Invariants (under the mutex):
//! - a ticket is in `waiting` exactly while its `Acquire` is alive and
//!   pending; `queue` may also hold tickets of abandoned waiters, skipped
//!   when they reach the front;
//! - a released permit goes to the first live waiter (its ticket moves to
//!   `granted`) or back to `available`; an `Acquire` dropped after being
//!   granted passes its permit on, so no permit is ever lost.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, Mutex, lock};

#[derive(Debug)]
struct Permits {
    available: usize,
    next_ticket: u64,
    queue: VecDeque<u64>,
    waiting: HashMap<u64, Waker>,
    granted: HashSet<u64>,
}

impl Permits {
    /// Hands one permit on; returns the waker of the waiter that got it.
    fn release(&mut self) -> Option<Waker> {
        while let Some(ticket) = self.queue.pop_front() {
            if let Some(waker) = self.waiting.remove(&ticket) {
                self.granted.insert(ticket);
                return Some(waker);
            }
        }
        self.available += 1;
        None
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
            waiting: HashMap::new(),
            granted: HashSet::new(),
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
                if permits.granted.remove(&ticket) {
                    drop(permits);
                    this.done = true;
                    return Poll::Ready(Permit(this.semaphore.clone()));
                }
                permits.waiting.insert(ticket, cx.waker().clone());
            }
            None => {
                if permits.available > 0 && permits.waiting.is_empty() {
                    permits.available -= 1;
                    drop(permits);
                    this.done = true;
                    return Poll::Ready(Permit(this.semaphore.clone()));
                }
                let ticket = permits.next_ticket;
                permits.next_ticket += 1;
                permits.queue.push_back(ticket);
                permits.waiting.insert(ticket, cx.waker().clone());
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
            permits.waiting.remove(&ticket);
            if permits.granted.remove(&ticket) {
                permits.release()
            } else {
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
