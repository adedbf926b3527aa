//! The task the executor runs for one child of a group.
//!
//! It owns one reference to the group's shared state, through which its
//! `Run` reaches the group's scope and through which it reports how the
//! child ended: exactly once, whether the child finished, failed, panicked,
//! was cancelled, or was dropped by the executor (before or after its first
//! poll). The inner future is always dropped before the end is reported, so
//! a join that sees every child ended never races a child still running;
//! and task groups that future dropped without joining them have no child
//! left either (the child waits for them first), so no grandchild outlives
//! the join.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::Panicked;
use crate::scope::{AllIdle, CancelScope, Run, WaitKey, run_uncounted};
use crate::sync::{Arc, Ordering};

use super::error::ChildError;
use super::limit::Semaphore;
use super::state::Shared;

/// The group's scope, reached through the shared state.
pub(crate) struct GroupScope<S, T, E>(Arc<Shared<S, T, E>>);

impl<S, T, E> AsRef<CancelScope> for GroupScope<S, T, E> {
    fn as_ref(&self) -> &CancelScope {
        &self.0.scope
    }
}

pin_project_lite::pin_project! {
    /// One child, as the executor runs it.
    pub(crate) struct ChildTask<S, T, E, G>
    where
        E: fmt::Debug,
    {
        #[pin]
        run: Run<G, GroupScope<S, T, E>>,
        index: usize,
        started: bool,
        done: bool,
        // The group's abort count when this child last looked for its flag.
        aborts_seen: usize,
        // The wait key the group last heard from this child.
        key_seen: Option<WaitKey>,
        // How the child ended, kept while the groups its future dropped
        // unjoined still have children.
        draining: Option<Box<(AllIdle, Result<T, ChildError<E>>)>>,
    }

    impl<S, T, E, G> PinnedDrop for ChildTask<S, T, E, G>
    where
        E: fmt::Debug,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if !*this.done {
                this.run.as_mut().release();
                let shared = this.run.holder().0.clone();
                // Dropped while waiting for groups it dropped: its own end
                // is known, and it is what it reports.
                let (result, started) = match this.draining.take() {
                    Some(draining) => (draining.1, true),
                    None => (Err(ChildError::Lost), *this.started),
                };
                shared.complete(*this.index, result, started);
            }
        }
    }
}

impl<S, T, E: fmt::Debug, G: Future<Output = Result<T, E>>> Future for ChildTask<S, T, E, G> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if let Some(draining) = this.draining.as_mut() {
            if Pin::new(&mut draining.0).poll(cx).is_pending() {
                return Poll::Pending;
            }
            let (_, result) = *this.draining.take().expect("draining");
            *this.done = true;
            this.run.holder().0.complete(*this.index, result, true);
            return Poll::Ready(());
        }
        *this.started = true;
        let shared = &this.run.holder().0;
        let aborts = shared.aborts.load(Ordering::SeqCst);
        if aborts != *this.aborts_seen {
            *this.aborts_seen = aborts;
            if shared.abort_requested(*this.index) {
                this.run.as_mut().abort();
            }
        }
        let polled = catch_unwind(AssertUnwindSafe(|| this.run.as_mut().poll(cx)));
        let result = match polled {
            Ok(Poll::Pending) => {
                // Tell the group where this child waits, so that an abort
                // wakes it alone; the key changes only when the group's
                // scope wakes every waiter, so this is rare.
                let key = this.run.wait_key();
                if key != *this.key_seen {
                    *this.key_seen = key;
                    if this.run.holder().0.child_waits(*this.index, key) {
                        this.run.as_mut().abort();
                        cx.waker().wake_by_ref();
                    }
                }
                return Poll::Pending;
            }
            Ok(Poll::Ready(Ok(Ok(value)))) => Ok(value),
            Ok(Poll::Ready(Ok(Err(error)))) => Err(ChildError::Failed(error)),
            Ok(Poll::Ready(Err(cancelled))) => Err(ChildError::Cancelled(cancelled)),
            Err(payload) => Err(ChildError::Panicked(Panicked::from_payload(&*payload))),
        };
        this.run.as_mut().release();
        let abandoned = this.run.as_mut().take_abandoned();
        if !abandoned.is_empty() {
            let mut idle = AllIdle::new(abandoned);
            if Pin::new(&mut idle).poll(cx).is_pending() {
                *this.draining = Some(Box::new((idle, result)));
                return Poll::Pending;
            }
        }
        *this.done = true;
        this.run.holder().0.complete(*this.index, result, true);
        Poll::Ready(())
    }
}

/// The task for child `index` running `future`.
pub(crate) fn child_task<S, T, E, F>(
    shared: Arc<Shared<S, T, E>>,
    index: usize,
    future: F,
) -> ChildTask<S, T, E, impl Future<Output = Result<T, E>>>
where
    F: Future<Output = Result<T, E>>,
    E: fmt::Debug,
{
    let limit = shared.limit.clone();
    let run = run_uncounted(GroupScope(shared), async move {
        let _permit = match &limit {
            Some(semaphore) => Some(Semaphore::acquire(semaphore).await),
            None => None,
        };
        future.await
    })
    .with_last_poll();
    ChildTask {
        run,
        index,
        started: false,
        done: false,
        aborts_seen: 0,
        key_seen: None,
        draining: None,
    }
}
