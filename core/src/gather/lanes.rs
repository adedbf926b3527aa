//! The engine under the limited gather flavours: a fixed set of lanes, each
//! running one item at a time, with the lane's allocation and waker reused
//! by every item that passes through it.
//!
//! A completion-ordered pool such as `FuturesUnordered` allocates a task per
//! item; with at most `limit` items alive at once that is wasted work, since
//! the same `limit` places could be reused. Here an item costs no allocation
//! at all once the lanes exist, and the lanes themselves are created only as
//! they are first needed, so a short input never pays for a large limit.
//!
//! Invariants:
//! - A lane is either idle (no item, on the free list) or busy (one item,
//!   counted in `running`); an item is dropped the moment it completes and
//!   its lane goes back on the free list.
//! - A lane is polled only when it was just given an item or its waker fired
//!   since its last poll, so a poll of the engine costs O(woken lanes). A
//!   waker that fires again before its lane was polled is not queued twice.
//!   A stale waker (kept by an item that has since finished) can only cause
//!   a spurious poll of the lane's next item, which futures must tolerate.
//! - One call of [`Lanes::poll_next`] polls at most as many items as are
//!   running; if more are scheduled by then, it wakes the caller's task and
//!   returns `Pending` instead of polling them, so an item that keeps waking itself cannot starve the others or the executor
//!   (futures-rs 2387).

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

use crate::sync::lock_std as lock;

/// At most `limit` running items, each in a lane of its own.
pub(crate) struct Lanes<F> {
    lanes: Vec<Lane<F>>,
    /// Idle lanes, most recently freed last (reused first: its memory is
    /// the warmest).
    idle: Vec<usize>,
    /// Lanes to poll, in order, from `next` on: fresh items and woken lanes.
    scheduled: Vec<usize>,
    next: usize,
    shared: Arc<Shared>,
    running: usize,
    next_index: usize,
    /// Set while an item is being polled; still set afterwards only if that
    /// poll panicked.
    polling: bool,
}

struct Lane<F> {
    item: Pin<Box<Option<F>>>,
    /// The input position of the lane's current item.
    index: usize,
    signal: Arc<LaneSignal>,
    waker: Waker,
}

/// What the lanes' wakers share with the engine.
struct Shared {
    /// Lanes woken since the engine last looked.
    woken: Mutex<Vec<usize>>,
    /// The task polling the engine, woken when a lane is.
    task: AtomicWaker,
}

/// The waker of one lane.
struct LaneSignal {
    lane: usize,
    /// Set when the lane is in `Shared::woken` and not yet polled.
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for LaneSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            lock(&self.shared.woken).push(self.lane);
            self.shared.task.wake();
        }
    }
}

impl<F: Future> Lanes<F> {
    /// Lanes with room for `lanes` of them before any bookkeeping regrows.
    pub(crate) fn with_capacity(lanes: usize) -> Lanes<F> {
        Lanes {
            lanes: Vec::with_capacity(lanes),
            idle: Vec::with_capacity(lanes),
            scheduled: Vec::with_capacity(lanes),
            next: 0,
            shared: Arc::new(Shared {
                woken: Mutex::new(Vec::new()),
                task: AtomicWaker::new(),
            }),
            running: 0,
            next_index: 0,
            polling: false,
        }
    }

    /// Starts `future` in an idle lane (a new one if none is idle) as the
    /// next input position, and schedules its first poll.
    #[inline]
    pub(crate) fn push(&mut self, future: F) {
        let index = self.next_index;
        self.next_index += 1;
        let lane = match self.idle.pop() {
            Some(lane) => {
                let slot = &mut self.lanes[lane];
                slot.item.set(Some(future));
                slot.index = index;
                lane
            }
            None => self.open_lane(future, index),
        };
        self.running += 1;
        self.scheduled.push(lane);
    }

    #[cold]
    fn open_lane(&mut self, future: F, index: usize) -> usize {
        let lane = self.lanes.len();
        let signal = Arc::new(LaneSignal {
            lane,
            queued: AtomicBool::new(false),
            shared: Arc::clone(&self.shared),
        });
        self.lanes.push(Lane {
            item: Box::pin(Some(future)),
            index,
            waker: Waker::from(Arc::clone(&signal)),
            signal,
        });
        lane
    }

    /// How many items are running.
    #[inline]
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// How many items were ever started.
    #[inline]
    pub(crate) fn pushed(&self) -> usize {
        self.next_index
    }

    /// The next item to finish, `Ready(None)` when none is running.
    ///
    /// # Panics
    ///
    /// If an item panicked during an earlier call: the engine cannot tell
    /// what state that item is in, so it refuses to go on.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, F::Output)>> {
        assert!(
            !self.polling,
            "a gathered item panicked in an earlier poll; the gather cannot go on"
        );
        if self.running == 0 {
            return Poll::Ready(None);
        }
        let mut budget = self.running;
        loop {
            let Some(&lane) = self.scheduled.get(self.next) else {
                if !self.take_woken() {
                    // Register before the last look, so a wake between the
                    // look and the registration is not lost.
                    self.shared.task.register(cx.waker());
                    if !self.take_woken() {
                        return Poll::Pending;
                    }
                }
                continue;
            };
            if budget == 0 {
                // Every running item had its turn and there is more to do:
                // let the executor run other tasks before the next round.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.next += 1;
            let Lane {
                item,
                index,
                signal,
                waker,
            } = &mut self.lanes[lane];
            // Cleared before the poll, so a wake during the poll queues the
            // lane again. A read-modify-write, not a store: if a wake set
            // the flag just before, this acquires it, so the poll sees
            // whatever that waker's side changed before waking.
            signal.queued.swap(false, Ordering::AcqRel);
            let Some(future) = item.as_mut().as_pin_mut() else {
                // A stale wake of an idle lane.
                continue;
            };
            self.polling = true;
            let poll = future.poll(&mut Context::from_waker(waker));
            self.polling = false;
            match poll {
                Poll::Ready(output) => {
                    item.set(None);
                    let index = *index;
                    self.idle.push(lane);
                    self.running -= 1;
                    return Poll::Ready(Some((index, output)));
                }
                Poll::Pending => budget -= 1,
            }
        }
    }

    /// Moves the lanes woken since the last look into the schedule; false
    /// if there were none.
    fn take_woken(&mut self) -> bool {
        self.scheduled.clear();
        self.next = 0;
        mem::swap(&mut *lock(&self.shared.woken), &mut self.scheduled);
        !self.scheduled.is_empty()
    }

    /// Drops every running item now.
    pub(crate) fn clear(&mut self) {
        for (lane, slot) in self.lanes.iter_mut().enumerate() {
            if slot.item.is_some() {
                slot.item.set(None);
                self.idle.push(lane);
            }
        }
        self.running = 0;
        self.scheduled.clear();
        self.next = 0;
    }
}
