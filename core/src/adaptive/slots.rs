//! The adaptive limit's slots, FIFO queue and learning state, under one lock.
//!
//! # Invariants
//!
//! 1. `inside` counts every slot taken, including slots handed to waiters
//!    that have not yet woken to collect them (their ids are in `granted`).
//! 2. A call is admitted only while `inside < floor(limit)`; when the limit
//!    shrinks below `inside`, nobody new is admitted until enough calls
//!    leave. `min <= limit <= max` always.
//! 3. A freed slot goes to the queue's front waiter while the limit allows,
//!    so a newcomer never overtakes a waiter; a waiter that leaves after
//!    being granted passes its slot on.
//! 4. Only finished calls teach the learner: a permit dropped without a
//!    verdict (a cancelled call) frees its slot and teaches nothing.
//! 5. Wakers are woken, and events emitted, after the lock is released.
//! 6. Waiters are keyed by an id that only grows, so the queue is an
//!    ordered map and its first entry is the longest waiting: joining,
//!    polling, leaving and a hand-off each cost O(log n) however many wait,
//!    and nothing is ever scanned. (A `VecDeque` searched on every poll and
//!    leave made 40 000 waiters timing out take 9.8 s, quadratic in the
//!    queue, as the bulkhead's did before its queue was fixed.) Memory
//!    follows the waiters alive: entries are removed as they leave.

use std::collections::{BTreeMap, BTreeSet};
use std::task::Waker;

use super::algorithm::{Learner, Sample};
use crate::sync::{Mutex, lock};

/// A waiter's place in line: ids are handed out in increasing order, so
/// ordering by id is first come, first served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Id(u64);

impl Ord for Id {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        #[cfg(test)]
        ID_COMPARISONS.with(|n| n.set(n.get() + 1));
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Id {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
thread_local! {
    /// Waiter ids compared on this thread: the unit of work the scaling
    /// tests count.
    pub(crate) static ID_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct State {
    inside: usize,
    limit: f64,
    next_id: u64,
    /// Waiting, in arrival order, with the waker of each one's last poll.
    queue: BTreeMap<Id, Option<Waker>>,
    /// Handed a slot they have not collected yet.
    granted: BTreeSet<Id>,
    learner: Learner,
}

pub(crate) enum Entry {
    /// A slot is taken; `in_flight` calls are inside, this one included.
    Inside {
        in_flight: usize,
    },
    Queued(u64),
    Full {
        limit: usize,
    },
}

pub(crate) struct Slots {
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) max_queued: usize,
    state: Mutex<State>,
}

/// What a release did: who to wake, and the limit before and after.
pub(crate) struct Released {
    wake: Vec<Waker>,
    pub(crate) change: Option<(usize, usize)>,
}

impl Released {
    pub(crate) fn wake(self) -> Option<(usize, usize)> {
        for w in self.wake {
            w.wake();
        }
        self.change
    }
}

impl Slots {
    pub(crate) fn new(
        initial: f64,
        min: f64,
        max: f64,
        max_queued: usize,
        learner: Learner,
    ) -> Slots {
        Slots {
            min,
            max,
            max_queued,
            state: Mutex::new(State {
                inside: 0,
                limit: initial,
                next_id: 0,
                queue: BTreeMap::new(),
                granted: BTreeSet::new(),
                learner,
            }),
        }
    }

    pub(crate) fn enter(&self, may_wait: bool) -> Entry {
        let mut s = lock(&self.state);
        if s.inside < s.limit as usize && s.queue.is_empty() {
            s.inside += 1;
            Entry::Inside {
                in_flight: s.inside,
            }
        } else if may_wait && s.queue.len() < self.max_queued {
            let id = s.next_id;
            s.next_id += 1;
            s.queue.insert(Id(id), None);
            Entry::Queued(id)
        } else {
            Entry::Full {
                limit: s.limit as usize,
            }
        }
    }

    /// `Some(in_flight)` once waiter `id` holds a slot; else keeps its waker.
    pub(crate) fn poll(&self, id: u64, waker: &Waker) -> Option<usize> {
        let mut s = lock(&self.state);
        if s.granted.remove(&Id(id)) {
            return Some(s.inside);
        }
        if let Some(stored) = s.queue.get_mut(&Id(id)) {
            match stored {
                Some(old) if old.will_wake(waker) => {}
                _ => *stored = Some(waker.clone()),
            }
        }
        None
    }

    /// Waiter `id` gives up; `true` if it had been granted a slot it must release.
    pub(crate) fn leave(&self, id: u64) -> bool {
        let mut s = lock(&self.state);
        if s.queue.remove(&Id(id)).is_some() {
            return false;
        }
        s.granted.remove(&Id(id))
    }

    /// Frees one slot, first learning from `sample` if the call finished.
    pub(crate) fn release(&self, sample: Option<Sample>) -> Released {
        let mut s = lock(&self.state);
        let before = s.limit as usize;
        if let Some(sample) = sample {
            let limit = s.limit;
            let learned = s.learner.learn(sample, limit);
            s.limit = if learned.is_finite() {
                // `max` then `min`, not `f64::clamp`: the bounds were
                // checked when the limit was built, and `clamp`'s check of
                // them formats floats when it fails, which linked float
                // formatting (about 10 KB of wasm) into every program whose
                // `Policy` could hold an adaptive limit.
                learned.max(self.min).min(self.max)
            } else {
                limit
            };
        }
        s.inside -= 1;
        let mut wake = Vec::new();
        while s.inside < s.limit as usize {
            let Some((id, waker)) = s.queue.pop_first() else {
                break;
            };
            s.granted.insert(id);
            s.inside += 1;
            wake.extend(waker);
        }
        let after = s.limit as usize;
        Released {
            wake,
            change: (before != after).then_some((before, after)),
        }
    }

    pub(crate) fn load(&self) -> (usize, usize, usize) {
        let s = lock(&self.state);
        (s.inside, s.queue.len(), s.limit as usize)
    }
}
