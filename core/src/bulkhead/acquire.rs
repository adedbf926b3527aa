//! The [`Acquire`] future: waiting in a bulkhead's queue for a slot.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::queue::{self, Entered};
use super::{Bulkhead, Rejected, Slot};
use crate::runtime::{BoxTask, Timer};

enum AcquireState {
    Start,
    Waiting {
        key: usize,
        timeout: Option<BoxTask>,
    },
    Done,
}

/// The future returned by [`Bulkhead::acquire`].
#[must_use = "futures do nothing unless awaited; this one waits for a bulkhead slot"]
pub struct Acquire {
    bulkhead: Bulkhead,
    state: AcquireState,
}

impl Acquire {
    pub(super) fn new(bulkhead: Bulkhead) -> Acquire {
        Acquire {
            bulkhead,
            state: AcquireState::Start,
        }
    }
}

impl fmt::Debug for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field(
                "waiting",
                &matches!(self.state, AcquireState::Waiting { .. }),
            )
            .finish_non_exhaustive()
    }
}

impl Future for Acquire {
    type Output = Result<Slot, Rejected>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = &this.bulkhead.shared;
        if let AcquireState::Start = this.state {
            match shared.slots.enter(true) {
                Entered::Inside => {
                    this.state = AcquireState::Done;
                    return Poll::Ready(Ok(this.bulkhead.permit()));
                }
                Entered::Full => {
                    this.state = AcquireState::Done;
                    return Poll::Ready(Err(this.bulkhead.full()));
                }
                Entered::Queued(key) => {
                    let timeout = shared.queue_timeout.map(|d| shared.timer.sleep(d));
                    this.state = AcquireState::Waiting { key, timeout };
                }
            }
        }
        let AcquireState::Waiting { key, timeout } = &mut this.state else {
            panic!("`Acquire` polled after it completed");
        };
        let key = *key;
        if shared.slots.poll(key, cx.waker()) == queue::Poll::Granted {
            this.state = AcquireState::Done;
            return Poll::Ready(Ok(this.bulkhead.permit()));
        }
        if let Some(sleep) = timeout
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.state = AcquireState::Done;
            if shared.slots.leave(key) {
                // Granted at the last moment: keep the slot after all.
                return Poll::Ready(Ok(this.bulkhead.permit()));
            }
            let waited = shared.queue_timeout.unwrap_or(Duration::ZERO);
            return Poll::Ready(Err(this.bulkhead.reject(Rejected::QueueTimeout { waited })));
        }
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        if let AcquireState::Waiting { key, .. } = self.state
            && self.bulkhead.shared.slots.leave(key)
        {
            self.bulkhead.shared.slots.release();
        }
    }
}
