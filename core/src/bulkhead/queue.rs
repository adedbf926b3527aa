//! The bulkhead's slots and its FIFO queue of waiters.
//!
//! # Invariants
//!
//! 1. `inside <= max_concurrent` always; `inside` counts every slot that is
//!    taken, including a slot handed to a waiter that has not yet woken up
//!    to collect it (its id is then in `granted`).
//! 2. `queue.len() <= max_queued` always.
//! 3. A slot freed while someone waits is handed to the queue's front
//!    waiter directly (FIFO), never returned to the pool: a newcomer can
//!    never overtake a waiter. The pool only grows when the queue is empty.
//! 4. A waiter that goes away (its future dropped or its queue timeout
//!    fired) leaves the queue; if it had already been granted a slot, the
//!    slot is passed on as if it had been released (invariant 3).
//! 5. Wakers are woken after the mutex is released.

use std::collections::VecDeque;
use std::task::Waker;

use crate::sync::{Mutex, lock};

#[derive(Debug)]
struct Waiter {
    id: u64,
    waker: Option<Waker>,
}

#[derive(Debug, Default)]
struct State {
    inside: usize,
    next_id: u64,
    queue: VecDeque<Waiter>,
    granted: Vec<u64>,
}

/// What an attempt to enter got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A slot is taken.
    Inside,
    /// Queued under this id.
    Queued(u64),
    /// Full and the queue is full.
    Full,
}

/// What polling a queued waiter found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    Granted,
    Waiting,
}

#[derive(Debug)]
pub(crate) struct Slots {
    pub(crate) max_concurrent: usize,
    pub(crate) max_queued: usize,
    state: Mutex<State>,
}

impl Slots {
    pub(crate) fn new(max_concurrent: usize, max_queued: usize) -> Slots {
        Slots {
            max_concurrent,
            max_queued,
            state: Mutex::new(State::default()),
        }
    }

    /// Takes a slot, queues (if `may_wait`), or reports full.
    pub(crate) fn enter(&self, may_wait: bool) -> Entry {
        let mut s = lock(&self.state);
        if s.inside < self.max_concurrent && s.queue.is_empty() {
            s.inside += 1;
            Entry::Inside
        } else if may_wait && s.queue.len() < self.max_queued {
            let id = s.next_id;
            s.next_id += 1;
            s.queue.push_back(Waiter { id, waker: None });
            Entry::Queued(id)
        } else {
            Entry::Full
        }
    }

    /// Whether waiter `id` has been handed a slot; if not, remembers its waker.
    pub(crate) fn poll(&self, id: u64, waker: &Waker) -> Poll {
        let mut s = lock(&self.state);
        if let Some(i) = s.granted.iter().position(|g| *g == id) {
            s.granted.swap_remove(i);
            return Poll::Granted;
        }
        if let Some(w) = s.queue.iter_mut().find(|w| w.id == id) {
            match &w.waker {
                Some(old) if old.will_wake(waker) => {}
                _ => w.waker = Some(waker.clone()),
            }
        }
        Poll::Waiting
    }

    /// Waiter `id` gives up. Returns `true` if it had been granted a slot
    /// meanwhile: the caller then owns that slot and must release it.
    pub(crate) fn leave(&self, id: u64) -> bool {
        let mut s = lock(&self.state);
        if let Some(i) = s.queue.iter().position(|w| w.id == id) {
            s.queue.remove(i);
            return false;
        }
        match s.granted.iter().position(|g| *g == id) {
            Some(i) => {
                s.granted.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Frees one slot: to the first waiter, or back to the pool.
    pub(crate) fn release(&self) {
        let wake = {
            let mut s = lock(&self.state);
            match s.queue.pop_front() {
                Some(w) => {
                    s.granted.push(w.id);
                    w.waker
                }
                None => {
                    s.inside -= 1;
                    None
                }
            }
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// How many slots are taken and how many callers wait.
    pub(crate) fn load(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.inside, s.queue.len())
    }
}
