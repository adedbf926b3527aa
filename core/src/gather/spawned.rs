//! [`GatherSpawned`]: each item as its own task, joined in input order.
//!
//! Invariants:
//! - `results.len()` is the number of handles already joined; only the
//!   handle at that position is polled (it alone holds the task's waker),
//!   so joining N tasks costs O(N) polls in all.
//! - Every handle not yet joined is aborted when the `GatherSpawned` is
//!   dropped, so no task outlives the gather that started it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Error;
use crate::runtime::{JoinError, JoinHandle};
use crate::scope::{CancelReason, Cancelled};

/// Joins tasks started by [`gather_spawned`](super::gather_spawned) and
/// returns their outcomes in input order.
///
/// # Panics
///
/// If polled again after it completed. A panic inside a task does not
/// propagate: it is that item's `Err(Error::Panicked(..))`.
///
/// # Cancel safety
///
/// Dropping it aborts every task that has not been joined yet.
#[must_use = "a `GatherSpawned` aborts its tasks when dropped; await it to get their results"]
pub struct GatherSpawned<T, E> {
    handles: Vec<JoinHandle<Result<T, E>>>,
    results: Vec<Result<T, Error<E>>>,
    done: bool,
}

impl<T, E> GatherSpawned<T, E> {
    pub(crate) fn new(handles: Vec<JoinHandle<Result<T, E>>>) -> GatherSpawned<T, E> {
        GatherSpawned {
            results: Vec::with_capacity(handles.len()),
            handles,
            done: false,
        }
    }
}

/// One task's outcome in staunch's error vocabulary.
fn outcome<T, E>(joined: Result<Result<T, E>, JoinError>) -> Result<T, Error<E>> {
    match joined {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Error::Inner(error)),
        Err(JoinError::Panicked(panicked)) => Err(Error::Panicked(panicked)),
        // The gather holds every handle and aborts none before it is
        // dropped, so the only other way to lose a task is the executor
        // shutting down.
        Err(_) => Err(Error::Cancelled(Cancelled {
            reason: CancelReason::Shutdown,
        })),
    }
}

// Nothing is pinned in place: handles are plain values.
impl<T, E> Unpin for GatherSpawned<T, E> {}

impl<T, E> Future for GatherSpawned<T, E> {
    type Output = Vec<Result<T, Error<E>>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        assert!(
            !self.done,
            "`GatherSpawned` polled after it completed; await it once"
        );
        let this = &mut *self;
        while let Some(handle) = this.handles.get_mut(this.results.len()) {
            match Pin::new(handle).poll(cx) {
                Poll::Ready(joined) => this.results.push(outcome(joined)),
                Poll::Pending => return Poll::Pending,
            }
        }
        this.done = true;
        Poll::Ready(std::mem::take(&mut this.results))
    }
}

impl<T, E> Drop for GatherSpawned<T, E> {
    fn drop(&mut self) {
        for handle in &self.handles[self.results.len()..] {
            handle.abort();
        }
    }
}

impl<T, E> fmt::Debug for GatherSpawned<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatherSpawned")
            .field("tasks", &self.handles.len())
            .field("joined", &self.results.len())
            .field("done", &self.done)
            .finish()
    }
}
