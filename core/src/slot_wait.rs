//! Waiting in line for a slot: the state machine that a bulkhead and an
//! adaptive concurrency limit share. Each says how to enter, poll and leave
//! its own queue ([`Gate`]); the wait itself (enter at the first poll, wait
//! for a grant or the queue timeout, give a slot granted at the last moment
//! back or keep it) is written once here.

use std::task::{Context, Poll, Waker};

use crate::bulkhead::Rejected;
use crate::runtime::BoxTask;

/// What an attempt to enter a gate got.
pub(crate) enum Entered<K, G, F> {
    /// A slot is taken, with what the gate says about it.
    Inside(G),
    /// Queued under this key.
    Queued(K),
    /// Full and the queue is full, with what the refusal should say.
    Full(F),
}

/// A queue of callers waiting for slots.
pub(crate) trait Gate {
    /// A waiter's place in the queue.
    type Key: Copy;
    /// What a granted slot carries.
    type Grant;
    /// What a full gate reports.
    type Full;
    /// What the caller holds while inside.
    type Permit;

    /// Takes a slot, queues, or refuses.
    fn enter(&self) -> Entered<Self::Key, Self::Grant, Self::Full>;
    /// `Some` once the slot is granted to `key`; registers `waker` otherwise.
    fn poll_grant(&self, key: Self::Key, waker: &Waker) -> Option<Self::Grant>;
    /// Leaves the queue; `Some` if the slot had just been granted (the
    /// caller then holds it).
    fn leave(&self, key: Self::Key) -> Option<Self::Grant>;
    /// Gives back a slot granted to a waiter that went away.
    fn give_back(&self);
    /// The queue timeout's sleep, if the gate has one.
    fn queue_sleep(&self) -> Option<BoxTask>;
    /// The permit for a granted slot.
    fn permit(&self, grant: Self::Grant) -> Self::Permit;
    /// The refusal when full (reported to the gate's observers).
    fn full(&self, full: Self::Full) -> Rejected;
    /// The refusal after the queue timeout (reported to the observers).
    fn timed_out(&self) -> Rejected;
}

enum State<K> {
    Start,
    Waiting { key: K, timeout: Option<BoxTask> },
    Done,
}

/// Waits for a slot of `gate`; the gates' `Acquire` futures wrap it.
pub(crate) struct WaitForSlot<G: Gate> {
    gate: G,
    state: State<G::Key>,
}

impl<G: Gate> WaitForSlot<G> {
    pub(crate) fn new(gate: G) -> Self {
        WaitForSlot {
            gate,
            state: State::Start,
        }
    }

    /// Whether it waits in the queue now.
    pub(crate) fn is_waiting(&self) -> bool {
        matches!(self.state, State::Waiting { .. })
    }

    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Result<G::Permit, Rejected>> {
        if let State::Start = self.state {
            match self.gate.enter() {
                Entered::Inside(grant) => {
                    self.state = State::Done;
                    return Poll::Ready(Ok(self.gate.permit(grant)));
                }
                Entered::Full(full) => {
                    self.state = State::Done;
                    return Poll::Ready(Err(self.gate.full(full)));
                }
                Entered::Queued(key) => {
                    let timeout = self.gate.queue_sleep();
                    self.state = State::Waiting { key, timeout };
                }
            }
        }
        let State::Waiting { key, timeout } = &mut self.state else {
            panic!("an `Acquire` was polled after it completed; await it once");
        };
        let key = *key;
        if let Some(grant) = self.gate.poll_grant(key, cx.waker()) {
            self.state = State::Done;
            return Poll::Ready(Ok(self.gate.permit(grant)));
        }
        if let Some(sleep) = timeout
            && sleep.as_mut().poll(cx).is_ready()
        {
            self.state = State::Done;
            if let Some(grant) = self.gate.leave(key) {
                // Granted at the last moment: keep the slot after all.
                return Poll::Ready(Ok(self.gate.permit(grant)));
            }
            return Poll::Ready(Err(self.gate.timed_out()));
        }
        Poll::Pending
    }
}

impl<G: Gate> Drop for WaitForSlot<G> {
    fn drop(&mut self) {
        if let State::Waiting { key, .. } = self.state
            && self.gate.leave(key).is_some()
        {
            self.gate.give_back();
        }
    }
}
