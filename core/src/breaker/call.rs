//! The [`Call`] future behind [`CircuitBreaker::call`].
//!
//! A named future rather than an `async fn`: its `poll` is small enough to
//! inline into the caller, so the admitted ticket stays in registers on the
//! common path (a call that is ready when first polled) instead of taking a
//! round trip through the future's memory.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::store::{Acquired, PendingAdmission, Store};
use super::ticket::Ticket;
use super::{CircuitBreaker, CircuitOpen, Guard};
use crate::Error;
use crate::fallible::Fallible;

/// Where a [`Call`] is: not yet admitted, waiting for a store's answer,
/// admitted and running, or finished.
enum Stage {
    Fresh,
    /// A [`BreakerStore`](super::BreakerStore) deciding by a round trip.
    Deciding(PendingAdmission),
    Admitted(Ticket),
    Done,
}

pin_project_lite::pin_project! {
    /// The future of a call through a [`CircuitBreaker`]: what
    /// [`CircuitBreaker::call`] gives as its
    /// [`into_future()`](std::future::IntoFuture::into_future), see there.
    ///
    /// The breaker is asked for admission at the first poll. A refused call
    /// never polls its future.
    ///
    /// ```
    /// use staunch::breaker::CircuitBreaker;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let breaker = CircuitBreaker::builder(rt.clone()).consecutive_failures(1).build()?;
    /// let call = breaker.call(async { Err::<(), _>("refused by the server") });
    /// let failed = rt.block_on(call).unwrap().unwrap_err();
    /// assert!(failed.is_inner());
    /// // Tripped: the next call is answered at once, its future never polled.
    /// let refused = rt.block_on(breaker.call(async { Ok::<_, &str>(()) })).unwrap();
    /// assert!(refused.unwrap_err().is_circuit_open());
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`] when refused; [`Error::Inner`] with the
    /// operation's own error otherwise.
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    ///
    /// # Cancel safety
    ///
    /// Dropping an admitted, unfinished `Call` counts as neither success nor
    /// failure and frees its half-open probe slot.
    #[must_use = "a breaker Call does nothing unless awaited; the operation will not run"]
    pub struct Call<'a, G: Fallible> {
        breaker: &'a CircuitBreaker,
        #[pin]
        future: G::Future,
        stage: Stage,
        shape: PhantomData<fn() -> G>,
    }

    impl<G: Fallible> PinnedDrop for Call<'_, G> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Stage::Admitted(ticket) = *this.stage {
                this.breaker.store.release(ticket);
            }
        }
    }
}

impl<'a, G: Fallible> Call<'a, G> {
    pub(super) fn new(breaker: &'a CircuitBreaker, work: G) -> Self {
        Call {
            breaker,
            future: work.into_fallible(),
            stage: Stage::Fresh,
            shape: PhantomData,
        }
    }
}

impl<G> Future for Call<'_, G>
where
    G: Fallible,
    G::Err: 'static,
{
    type Output = Result<G::Ok, Error<G::Err>>;

    // Always inlined: left to itself LLVM keeps this poll out of line, and
    // the call's state then goes through memory on every call (11.9 ns a
    // call in the bench against 4.1 ns inlined). The slow paths it reaches
    // (`acquire_locked`, `record_locked`) stay out of line.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let ticket = loop {
            match this.stage {
                // The guard below owns the ticket for this poll; the stage
                // must not also hold it, or a panic in the future would
                // release it twice (once by the guard, once by the drop).
                Stage::Admitted(ticket) => {
                    let ticket = *ticket;
                    *this.stage = Stage::Fresh;
                    break ticket;
                }
                // The in-memory store answers directly; the others through
                // the store's three answers.
                Stage::Fresh => match &this.breaker.store {
                    Store::Memory(shared) => match shared.acquire() {
                        Ok(ticket) => break ticket,
                        Err(open) => return refuse(this.stage, open),
                    },
                    Store::Custom(_) => match this.breaker.store.acquire() {
                        Acquired::Now(ticket) => break ticket,
                        Acquired::Refused(open) => return refuse(this.stage, open),
                        Acquired::Decide(pending) => *this.stage = Stage::Deciding(pending),
                    },
                },
                Stage::Deciding(pending) => match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(permit)) => {
                        *this.stage = Stage::Fresh;
                        break permit.0;
                    }
                    Poll::Ready(Err(open)) => return refuse(this.stage, open),
                },
                Stage::Done => {
                    panic!("a breaker `Call` polled after it completed; await it once")
                }
            }
        };
        // Held only in this frame until the future is pending: a call that
        // is ready at once never writes its ticket to memory, and a panic
        // in `poll` still releases it (the guard's drop).
        let guard = Guard {
            store: &this.breaker.store,
            ticket,
        };
        let Poll::Ready(out) = this.future.poll(cx) else {
            *this.stage = Stage::Admitted(guard.keep());
            return Poll::Pending;
        };
        // Judged in place: the output is reshaped only after the report,
        // so a small plain result stays in registers across it.
        guard.report(this.breaker.classify(G::failure(&out)));
        *this.stage = Stage::Done;
        Poll::Ready(G::lift(out))
    }
}

/// Ends a refused call.
fn refuse<T, E>(stage: &mut Stage, open: CircuitOpen) -> Poll<Result<T, Error<E>>> {
    *stage = Stage::Done;
    Poll::Ready(Err(Error::CircuitOpen(open)))
}

impl<G: Fallible> fmt::Debug for Call<'_, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Fresh => "fresh",
            Stage::Deciding(_) => "waiting for its store's answer",
            Stage::Admitted(ticket) if ticket.probe() => "admitted as a probe",
            Stage::Admitted(_) => "admitted",
            Stage::Done => "done",
        };
        f.debug_struct("Call")
            .field("breaker", &self.breaker.store.name())
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}
