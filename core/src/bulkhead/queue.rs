//! The bulkhead's slots and its FIFO line of waiters (a [`WaitLine`],
//! shared with the adaptive limit: every operation O(1)).
//!
//! # Invariants
//!
//! 1. `inside <= max_concurrent` always; `inside` counts every slot that is
//!    taken, including a slot granted to a waiter that has not yet woken up
//!    to collect it.
//! 2. The line's length is `<= max_queued` always.
//! 3. A slot freed while someone waits is granted to the first in line
//!    directly (FIFO), never returned to the pool: a newcomer can never
//!    overtake a waiter. The pool only grows when the line is empty.
//! 4. A waiter that goes away (its future dropped or its queue timeout
//!    fired) leaves the line; if it had already been granted a slot, the
//!    slot is passed on as if it had been released (invariant 3).
//! 5. Wakers are woken after the mutex is released.

use std::task::Waker;

use crate::sync::{Mutex, lock};
use crate::wait_line::WaitLine;

#[derive(Debug)]
struct State {
    inside: usize,
    line: WaitLine,
}

/// What an attempt to enter got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entered {
    /// A slot is taken.
    Inside,
    /// Queued under this key.
    Queued(usize),
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
            state: Mutex::new(State {
                inside: 0,
                line: WaitLine::new(),
            }),
        }
    }

    /// Takes a slot, queues (if `may_wait`), or reports full.
    pub(crate) fn enter(&self, may_wait: bool) -> Entered {
        let mut s = lock(&self.state);
        if s.inside < self.max_concurrent && s.line.is_empty() {
            s.inside += 1;
            Entered::Inside
        } else if may_wait && s.line.len() < self.max_queued {
            Entered::Queued(s.line.push_back())
        } else {
            Entered::Full
        }
    }

    /// Whether waiter `key` has been handed a slot (then its entry is
    /// freed and the slot is the caller's); if not, remembers its waker.
    pub(crate) fn poll(&self, key: usize, waker: &Waker) -> Poll {
        if lock(&self.state).line.poll(key, waker) {
            Poll::Granted
        } else {
            Poll::Waiting
        }
    }

    /// Waiter `key` gives up. Returns `true` if it had been granted a slot
    /// meanwhile: the caller then owns that slot and must release it.
    pub(crate) fn leave(&self, key: usize) -> bool {
        lock(&self.state).line.leave(key)
    }

    /// Frees one slot: to the head waiter, or back to the pool.
    pub(crate) fn release(&self) {
        let wake = {
            let mut s = lock(&self.state);
            let granted = s.line.grant_first();
            if granted.is_none() {
                s.inside -= 1;
            }
            granted.flatten()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// How many slots are taken and how many callers wait.
    pub(crate) fn load(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.inside, s.line.len())
    }

    /// How many entries the slab holds (live and free), for memory tests.
    #[cfg(test)]
    pub(crate) fn capacity_in_entries(&self) -> usize {
        lock(&self.state).line.capacity_in_entries()
    }
}
