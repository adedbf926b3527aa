//! A first-come, first-served line of callers waiting for a slot: the queue
//! a bulkhead and an adaptive concurrency limit share. Each keeps it under
//! its own lock, beside its own count of slots taken.
//!
//! The line is a doubly linked list threaded through a slab of entries (a
//! `Vec` plus a free list), so every operation is O(1) however many wait:
//! joining links at the tail, a grant unlinks the head, and a waiter that
//! leaves or times out unlinks itself by its key. Nothing is ever searched
//! (a `VecDeque` scanned on every poll and leave made 40 000 waiters timing
//! out take seconds, quadratic in the line), and no ordered map is needed,
//! whose code would cost every program that links a limit about 15 KB of
//! wasm.
//!
//! # Invariants
//!
//! 1. `len` is the number of entries in the list (waiting ones).
//! 2. A granted entry is out of the list until its waiter collects the
//!    grant or leaves; only then is it freed.
//! 3. An entry's key is owned by exactly one waiter from `push_back` until
//!    it collects a grant or leaves, and the entry is freed only then: a
//!    key never names another waiter's entry.
//! 4. Memory follows what is live: the slab holds at most as many entries
//!    as there were waiters at once (free entries are reused), never one
//!    per waiter ever seen.

use std::task::Waker;

/// "No entry" in the list links and the free list.
const NIL: usize = usize::MAX;

#[derive(Debug)]
enum Slot {
    /// In the list, waiting; the waker from its last poll.
    Waiting(Option<Waker>),
    /// Out of the list: granted a slot it has not collected yet.
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

#[cfg(test)]
thread_local! {
    /// Entries touched on this thread: the unit of work the scaling tests
    /// count.
    static ENTRY_TOUCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Entries `f` touched on this thread: the work of the queue operations it
/// made, which the limits' scaling tests compare across queue lengths.
#[cfg(test)]
pub(crate) fn touches(f: impl FnOnce()) -> u64 {
    let before = ENTRY_TOUCHES.with(std::cell::Cell::get);
    f();
    ENTRY_TOUCHES.with(std::cell::Cell::get) - before
}

/// Callers waiting for a slot, first come, first served.
#[derive(Debug)]
pub(crate) struct WaitLine {
    len: usize,
    head: usize,
    tail: usize,
    entries: Vec<Entry>,
    free: usize,
}

impl WaitLine {
    pub(crate) const fn new() -> WaitLine {
        WaitLine {
            len: 0,
            head: NIL,
            tail: NIL,
            entries: Vec::new(),
            free: NIL,
        }
    }

    /// How many wait (granted ones not counted).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn touch(&mut self, key: usize) -> &mut Entry {
        #[cfg(test)]
        ENTRY_TOUCHES.with(|n| n.set(n.get() + 1));
        &mut self.entries[key]
    }

    /// Joins the end of the line; the new waiter's key.
    pub(crate) fn push_back(&mut self) -> usize {
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
        self.len += 1;
        key
    }

    /// Whether waiter `key` was granted a slot (its entry is then freed and
    /// the slot is the caller's); if not, remembers its waker.
    pub(crate) fn poll(&mut self, key: usize, waker: &Waker) -> bool {
        match &mut self.touch(key).slot {
            Slot::Granted => {
                self.free(key);
                true
            }
            Slot::Waiting(stored) => {
                match stored {
                    Some(old) if old.will_wake(waker) => {}
                    _ => *stored = Some(waker.clone()),
                }
                false
            }
            Slot::Free(_) => unreachable!("a waiter polled after it left (invariant 3)"),
        }
    }

    /// Waiter `key` gives up. `true` if it had been granted a slot
    /// meanwhile: the caller then owns that slot and must pass it on.
    pub(crate) fn leave(&mut self, key: usize) -> bool {
        let granted = match self.touch(key).slot {
            Slot::Granted => true,
            Slot::Waiting(_) => {
                self.unlink(key);
                false
            }
            Slot::Free(_) => unreachable!("a waiter left twice (invariant 3)"),
        };
        self.free(key);
        granted
    }

    /// Grants a slot to the first in line, if anyone waits: `Some` with
    /// the waker to wake (after the caller's lock is released), if it had
    /// been polled.
    pub(crate) fn grant_first(&mut self) -> Option<Option<Waker>> {
        let head = self.head;
        if head == NIL {
            return None;
        }
        self.unlink(head);
        match std::mem::replace(&mut self.touch(head).slot, Slot::Granted) {
            Slot::Waiting(waker) => Some(waker),
            _ => unreachable!("the list holds only waiting entries"),
        }
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
        self.len -= 1;
    }

    fn free(&mut self, key: usize) {
        let free = self.free;
        let entry = self.touch(key);
        entry.slot = Slot::Free(free);
        entry.prev = NIL;
        entry.next = NIL;
        self.free = key;
    }

    /// How many entries the slab holds (live and free), for memory tests.
    #[cfg(test)]
    pub(crate) fn capacity_in_entries(&self) -> usize {
        self.entries.len()
    }
}
