//! Small future adapters that remember which input position an item came from.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::TryFuture;

pin_project_lite::pin_project! {
    /// Resolves to `(index, output)`, so a completion-ordered pool can put the
    /// output back in input order.
    pub(crate) struct Indexed<F> {
        index: usize,
        #[pin]
        future: F,
    }
}

impl<F> Indexed<F> {
    pub(crate) fn new(index: usize, future: F) -> Indexed<F> {
        Indexed { index, future }
    }
}

impl<F: Future> Future for Indexed<F> {
    type Output = (usize, F::Output);

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.future.poll(cx).map(|out| (index, out))
    }
}

pin_project_lite::pin_project! {
    /// Leaves successes alone and tags an error with its input position.
    pub(crate) struct TagError<F> {
        index: usize,
        #[pin]
        future: F,
    }
}

impl<F> TagError<F> {
    pub(crate) fn new(index: usize, future: F) -> TagError<F> {
        TagError { index, future }
    }
}

impl<F: TryFuture> Future for TagError<F> {
    type Output = Result<F::Ok, (usize, F::Error)>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.future
            .try_poll(cx)
            .map(|out| out.map_err(|e| (index, e)))
    }
}
