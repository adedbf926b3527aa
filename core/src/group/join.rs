//! The futures that wait for a group's children.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::state::{all_output, fail_fast_output, join_reason};
use super::{ChildError, GroupError, TaskGroup};

/// Waits for every child of a [`TaskGroup`]; from [`TaskGroup::join`].
///
/// Resolves to the children's values in spawn order, or a [`GroupError`].
/// Dropping it before it completes cancels every child.
#[must_use = "a Join does nothing unless awaited; dropping it cancels the group's children"]
pub struct Join<S, T, E: fmt::Debug> {
    group: Option<TaskGroup<S, T, E>>,
}

impl<S, T, E: fmt::Debug> Join<S, T, E> {
    pub(crate) fn new(group: TaskGroup<S, T, E>) -> Self {
        Join { group: Some(group) }
    }
}

impl<S, T, E: fmt::Debug> Unpin for Join<S, T, E> {}

impl<S, T, E: fmt::Debug> Future for Join<S, T, E> {
    type Output = Result<Vec<T>, GroupError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let group = self
            .group
            .as_ref()
            .expect("`Join` polled after it completed");
        let shared = &group.handle.shared;
        let slots = ready!(shared.poll_close(cx));
        let reason = join_reason(shared.scope.reason(), shared.enclosing.as_ref());
        self.group = None;
        Poll::Ready(fail_fast_output(slots, reason))
    }
}

/// Waits for every child of a [`TaskGroup`] and returns each one's result;
/// from [`TaskGroup::join_all`].
///
/// Dropping it before it completes cancels every child.
#[must_use = "a JoinAll does nothing unless awaited; dropping it cancels the group's children"]
pub struct JoinAll<S, T, E: fmt::Debug> {
    group: Option<TaskGroup<S, T, E>>,
}

impl<S, T, E: fmt::Debug> JoinAll<S, T, E> {
    pub(crate) fn new(group: TaskGroup<S, T, E>) -> Self {
        JoinAll { group: Some(group) }
    }
}

impl<S, T, E: fmt::Debug> Unpin for JoinAll<S, T, E> {}

impl<S, T, E: fmt::Debug> Future for JoinAll<S, T, E> {
    type Output = Vec<Result<T, ChildError<E>>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let group = self
            .group
            .as_ref()
            .expect("`JoinAll` polled after it completed");
        let shared = &group.handle.shared;
        let slots = ready!(shared.poll_close(cx));
        self.group = None;
        Poll::Ready(all_output(slots))
    }
}

impl<S, T, E: fmt::Debug> fmt::Debug for Join<S, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Join").field("group", &self.group).finish()
    }
}

impl<S, T, E: fmt::Debug> fmt::Debug for JoinAll<S, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("group", &self.group)
            .finish()
    }
}
