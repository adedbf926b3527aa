//! The adaptive limit's slots, FIFO queue and learning state, under one lock.
//!
//! # Invariants
//!
//! 1. `inside` counts every slot taken, including slots handed to waiters
//!    that have not yet woken to collect them.
//! 2. A call is admitted only while `inside < floor(limit)`; when the limit
//!    shrinks below `inside`, nobody new is admitted until enough calls
//!    leave. `min <= limit <= max` always.
//! 3. A freed slot goes to the queue's front waiter while the limit allows,
//!    so a newcomer never overtakes a waiter; a waiter that leaves after
//!    being granted passes its slot on.
//! 4. Only finished calls teach the learner: a permit dropped without a
//!    verdict (a cancelled call) frees its slot and teaches nothing.
//! 5. Wakers are woken, and events emitted, after the lock is released.
//! 6. Waiters stand in a [`WaitLine`] (shared with the bulkhead): joining,
//!    polling, leaving and a grant each cost O(1) however many wait, and
//!    nothing is ever scanned. Memory follows the waiters alive.

use std::task::Waker;

use super::algorithm::{Learner, Sample};
use crate::sync::{Mutex, lock};
use crate::wait_line::WaitLine;

struct State {
    inside: usize,
    limit: f64,
    /// Waiting, first come first served, and those granted a slot they
    /// have not collected yet.
    line: WaitLine,
    learner: Learner,
}

pub(crate) enum Entry {
    /// A slot is taken; `in_flight` calls are inside, this one included.
    Inside {
        in_flight: usize,
    },
    Queued(usize),
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
                line: WaitLine::new(),
                learner,
            }),
        }
    }

    pub(crate) fn enter(&self, may_wait: bool) -> Entry {
        let mut s = lock(&self.state);
        if s.inside < s.limit as usize && s.line.is_empty() {
            s.inside += 1;
            Entry::Inside {
                in_flight: s.inside,
            }
        } else if may_wait && s.line.len() < self.max_queued {
            Entry::Queued(s.line.push_back())
        } else {
            Entry::Full {
                limit: s.limit as usize,
            }
        }
    }

    /// `Some(in_flight)` once waiter `key` holds a slot; else keeps its waker.
    pub(crate) fn poll(&self, key: usize, waker: &Waker) -> Option<usize> {
        let mut s = lock(&self.state);
        s.line.poll(key, waker).then_some(s.inside)
    }

    /// Waiter `key` gives up; `true` if it had been granted a slot it must release.
    pub(crate) fn leave(&self, key: usize) -> bool {
        lock(&self.state).line.leave(key)
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
            let Some(waker) = s.line.grant_first() else {
                break;
            };
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
        (s.inside, s.line.len(), s.limit as usize)
    }
}
