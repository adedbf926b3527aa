//! The task the executor runs for one child of a group.
//!
//! It owns one reference to the group's shared state, through which its
//! `Run` reaches the group's scope and through which it reports how the
//! child ended: exactly once, whether the child finished, failed, panicked,
//! was cancelled, or was dropped by the executor (before or after its first
//! poll). The inner future is always dropped before the end is reported, so
//! a join that sees every child ended never races a child still running.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::Panicked;
use crate::scope::{CancelScope, Run, run_uncounted};
use crate::sync::Arc;

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
                shared.complete(*this.index, Err(ChildError::Lost), *this.started);
            }
        }
    }
}

impl<S, T, E: fmt::Debug, G: Future<Output = Result<T, E>>> Future for ChildTask<S, T, E, G> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        *this.started = true;
        let polled = catch_unwind(AssertUnwindSafe(|| this.run.as_mut().poll(cx)));
        let result = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(Ok(Ok(value)))) => Ok(value),
            Ok(Poll::Ready(Ok(Err(error)))) => Err(ChildError::Failed(error)),
            Ok(Poll::Ready(Err(cancelled))) => Err(ChildError::Cancelled(cancelled)),
            Err(payload) => Err(ChildError::Panicked(Panicked::from_payload(&*payload))),
        };
        this.run.as_mut().release();
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
    }
}
