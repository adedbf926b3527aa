//! The [`Acquire`] future: waiting in a bulkhead's queue for a slot (the
//! wait itself is [`WaitForSlot`], shared with the adaptive limit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::queue::{self, Entered as QueueEntered};
use super::{Bulkhead, Rejected, Slot};
use crate::runtime::{BoxTask, Timer};
use crate::slot_wait::{Entered, Gate, WaitForSlot};

impl Gate for Bulkhead {
    type Key = usize;
    type Grant = ();
    type Full = ();
    type Permit = Slot;

    fn enter(&self) -> Entered<usize, (), ()> {
        match self.shared.slots.enter(true) {
            QueueEntered::Inside => Entered::Inside(()),
            QueueEntered::Queued(key) => Entered::Queued(key),
            QueueEntered::Full => Entered::Full(()),
        }
    }

    fn poll_grant(&self, key: usize, waker: &Waker) -> Option<()> {
        (self.shared.slots.poll(key, waker) == queue::Poll::Granted).then_some(())
    }

    fn leave(&self, key: usize) -> Option<()> {
        self.shared.slots.leave(key).then_some(())
    }

    fn give_back(&self) {
        self.shared.slots.release();
    }

    fn queue_sleep(&self) -> Option<BoxTask> {
        let shared = &self.shared;
        shared.queue_timeout.map(|d| shared.timer.sleep(d))
    }

    fn permit(&self, (): ()) -> Slot {
        Bulkhead::permit(self)
    }

    fn full(&self, (): ()) -> Rejected {
        Bulkhead::full(self)
    }

    fn timed_out(&self) -> Rejected {
        let waited = self.shared.queue_timeout.unwrap_or_default();
        self.reject(Rejected::QueueTimeout { waited })
    }
}

/// The future returned by [`Bulkhead::acquire`].
#[must_use = "futures do nothing unless awaited; this one waits for a bulkhead slot"]
pub struct Acquire(WaitForSlot<Bulkhead>);

impl Acquire {
    pub(super) fn new(bulkhead: Bulkhead) -> Acquire {
        Acquire(WaitForSlot::new(bulkhead))
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("waiting", &self.0.is_waiting())
            .finish_non_exhaustive()
    }
}

impl Future for Acquire {
    type Output = Result<Slot, Rejected>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().0.poll_wait(cx)
    }
}
