//! The bulkhead's slots and its FIFO queue of waiters.
//!
//! The queue is a doubly linked list threaded through a slab of entries
//! (a `Vec` plus a free list), so every operation is O(1) however many
//! wait: joining links at the tail, a hand-off unlinks the head, and a
//! waiter that leaves or times out unlinks itself by its key. Nothing is
//! ever searched. (It scanned a `VecDeque` on every poll and leave before:
//! 40 000 waiters timing out took 2.07 s, quadratic in the queue.)
//!
//! # Invariants
//!
//! 1. `inside <= max_concurrent` always; `inside` counts every slot that is
//!    taken, including a slot handed to a waiter that has not yet woken up
//!    to collect it (its entry is then `Granted`, out of the list).
//! 2. `queued` is the length of the list, and `queued <= max_queued` always.
//! 3. A slot freed while someone waits is handed to the list's head waiter
//!    directly (FIFO), never returned to the pool: a newcomer can never
//!    overtake a waiter. The pool only grows when the list is empty.
//! 4. A waiter that goes away (its future dropped or its queue timeout
//!    fired) frees its entry; if it had already been granted a slot, the
//!    slot is passed on as if it had been released (invariant 3).
//! 5. An entry's key is owned by exactly one waiter from `enter` until it
//!    collects a grant or leaves, and the entry is freed only then: a key
//!    never names another waiter's entry.
//! 6. Memory follows what is live: the slab holds at most as many entries
//!    as there were waiters at once (free entries are reused), never one
//!    per waiter ever seen.
//! 7. Wakers are woken after the mutex is released.

use std::task::Waker;

use crate::sync::{Mutex, lock};

/// "No entry" in the list links and the free list.
const NIL: usize = usize::MAX;

#[derive(Debug)]
enum Slot {
    /// In the list, waiting; the waker from its last poll.
    Waiting(Option<Waker>),
    /// Out of the list: handed a slot it has not collected yet.
    Granted,
    /// Unused; the next free entry.
    Free(usize),
}

#[derive(Debug)]
struct Entry {
    prev: usize,
    next: usize,
    slot: Slot,
}

#[derive(Debug)]
struct State {
    inside: usize,
    queued: usize,
    head: usize,
    tail: usize,
    entries: Vec<Entry>,
    free: usize,
}

#[cfg(test)]
thread_local! {
    /// Queue entries touched on this thread: the unit of work the scaling
    /// tests count.
    pub(crate) static ENTRY_TOUCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl State {
    fn touch(&mut self, key: usize) -> &mut Entry {
        #[cfg(test)]
        ENTRY_TOUCHES.with(|n| n.set(n.get() + 1));
        &mut self.entries[key]
    }

    /// Links a new waiting entry at the tail; its key.
    fn push_back(&mut self) -> usize {
        let entry = Entry {
            prev: self.tail,
            next: NIL,
            slot: Slot::Waiting(None),
        };
        let key = if self.free == NIL {
            self.entries.push(entry);
            self.entries.len() - 1
        } else {
            let key = self.free;
            let Slot::Free(next_free) = self.touch(key).slot else {
                unreachable!("the free list holds only free entries")
            };
            self.free = next_free;
            self.entries[key] = entry;
            key
        };
        match self.tail {
            NIL => self.head = key,
            tail => self.touch(tail).next = key,
        }
        self.tail = key;
        self.queued += 1;
        key
    }

    /// Takes a waiting entry out of the list (it stays allocated).
    fn unlink(&mut self, key: usize) {
        let Entry { prev, next, .. } = *self.touch(key);
        match prev {
            NIL => self.head = next,
            p => self.touch(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.touch(n).prev = prev,
        }
        self.queued -= 1;
    }

    fn free(&mut self, key: usize) {
        let free = self.free;
        let entry = self.touch(key);
        entry.slot = Slot::Free(free);
        entry.prev = NIL;
        entry.next = NIL;
        self.free = key;
    }
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
                queued: 0,
                head: NIL,
                tail: NIL,
                entries: Vec::new(),
                free: NIL,
            }),
        }
    }

    /// Takes a slot, queues (if `may_wait`), or reports full.
    pub(crate) fn enter(&self, may_wait: bool) -> Entered {
        let mut s = lock(&self.state);
        if s.inside < self.max_concurrent && s.queued == 0 {
            s.inside += 1;
            Entered::Inside
        } else if may_wait && s.queued < self.max_queued {
            Entered::Queued(s.push_back())
        } else {
            Entered::Full
        }
    }

    /// Whether waiter `key` has been handed a slot (then its entry is
    /// freed and the slot is the caller's); if not, remembers its waker.
    pub(crate) fn poll(&self, key: usize, waker: &Waker) -> Poll {
        let mut s = lock(&self.state);
        match &mut s.touch(key).slot {
            Slot::Granted => {
                s.free(key);
                Poll::Granted
            }
            Slot::Waiting(stored) => {
                match stored {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *stored = Some(waker.clone()),
                }
                Poll::Waiting
            }
            Slot::Free(_) => unreachable!("a waiter polled after it left (invariant 5)"),
        }
    }

    /// Waiter `key` gives up. Returns `true` if it had been granted a slot
    /// meanwhile: the caller then owns that slot and must release it.
    pub(crate) fn leave(&self, key: usize) -> bool {
        let mut s = lock(&self.state);
        let granted = match s.touch(key).slot {
            Slot::Granted => true,
            Slot::Waiting(_) => {
                s.unlink(key);
                false
            }
            Slot::Free(_) => unreachable!("a waiter left twice (invariant 5)"),
        };
        s.free(key);
        granted
    }

    /// Frees one slot: to the head waiter, or back to the pool.
    pub(crate) fn release(&self) {
        let wake = {
            let mut s = lock(&self.state);
            match s.head {
                NIL => {
                    s.inside -= 1;
                    None
                }
                head => {
                    s.unlink(head);
                    match std::mem::replace(&mut s.touch(head).slot, Slot::Granted) {
                        Slot::Waiting(waker) => waker,
                        _ => unreachable!("the list holds only waiting entries"),
                    }
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
        (s.inside, s.queued)
    }

    /// How many entries the slab holds (live and free), for memory tests.
    #[cfg(test)]
    pub(crate) fn capacity_in_entries(&self) -> usize {
        lock(&self.state).entries.len()
    }
}
