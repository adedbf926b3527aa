//! What each worker of a pool runs, and the state the workers share.
//!
//! Invariants (the "processed or returned, never both, never neither" rule):
//! - Every submit takes an index; the index is then either refused (the
//!   submit failed or was dropped) or finished, exactly once (the counting,
//!   and how `join` learns of it, is in `counts`). An item is finished
//!   exactly once: its completion is emitted (success or
//!   dead letter), or it is given back (shutdown) / reported lost (drop).
//! - A worker owns its item from `recv` to finish. The handler only ever
//!   gets clones, so a cancelled attempt never takes the item with it.
//! - `give_back` decides under the `returns` lock whether an item goes into
//!   the shutdown report or, once the pool was dropped, to the error sink;
//!   the pool's drop flushes the report under the same lock.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use event_listener::Event;

use super::counts::Counts;
use super::lane::LaneSender;
use super::report::{DeadLetter, Done, Extra, PoolStats, Returned, Unprocessed};
use super::{Receiver, TryRecvError};
use crate::Error;
use crate::Guarded;
use crate::observe::{Event as ObsEvent, Observers};
use crate::policy::Policy;
use crate::runtime::{
    BoxTask, ErrorSink, Instant, MaybeSend, MaybeSync, Panicked, Timer, UnobservedError,
    UnobservedKind,
};
use crate::scope::CancelScope;

/// An item on its way through the pool.
pub(super) struct Envelope<I> {
    pub(super) index: u64,
    pub(super) item: I,
    /// Its key and submission time, if it has either (see [`Extra`]).
    pub(super) extra: Option<Box<Extra>>,
}

impl<I> Envelope<I> {
    fn key(&self) -> Option<&Arc<str>> {
        self.extra.as_ref()?.key.as_ref()
    }
}

/// The pool's clock, type-erased so that the pool is not generic over its runtime.
pub(super) trait PoolClock: MaybeSend + MaybeSync {
    fn now(&self) -> Instant;
    fn sleep(&self, limit: Duration) -> BoxTask;
}

impl<T: Timer + 'static> PoolClock for T {
    fn now(&self) -> Instant {
        Timer::now(self)
    }
    fn sleep(&self, limit: Duration) -> BoxTask {
        Box::pin(Timer::sleep(self, limit))
    }
}

struct Returns<I> {
    items: Vec<Returned<I>>,
    dropped: bool,
}

/// State every worker, submitter and the pool share.
pub(super) struct Shared<I> {
    pub(super) name: Arc<str>,
    pub(super) observers: Observers,
    pub(super) sink: ErrorSink,
    pub(super) counts: Counts,
    returns: Mutex<Returns<I>>,
    pub(super) keys: Option<KeyLimit>,
}

impl<I> Shared<I> {
    pub(super) fn new(
        name: Arc<str>,
        observers: Observers,
        sink: ErrorSink,
        key_limit: Option<usize>,
        counts: Counts,
    ) -> Shared<I> {
        Shared {
            name,
            observers,
            sink,
            counts,
            returns: Mutex::new(Returns {
                items: Vec::new(),
                dropped: false,
            }),
            keys: key_limit.map(KeyLimit::new),
        }
    }

    /// A submit took an index and then did not enqueue the item.
    pub(super) fn refuse(&self) {
        self.counts.refuse();
    }

    pub(super) async fn wait_idle(&self) {
        self.counts.wait_idle().await;
    }

    /// Hands an unprocessed item back: into the shutdown report, or to the
    /// error sink once the pool was dropped.
    pub(super) fn give_back(&self, envelope: Envelope<I>, state: Unprocessed) {
        let returned = Returned {
            index: envelope.index,
            key: envelope.extra.and_then(|extra| extra.key),
            state,
            item: envelope.item,
        };
        let mut returns = lock(&self.returns);
        if returns.dropped {
            drop(returns);
            self.report_lost(&returned);
        } else {
            returns.items.push(returned);
            drop(returns);
        }
        self.counts.returned();
    }

    /// The pool was dropped: from now on unprocessed items go to the error
    /// sink, and so does everything already in the report.
    pub(super) fn mark_dropped(&self) {
        let mut returns = lock(&self.returns);
        returns.dropped = true;
        let lost = std::mem::take(&mut returns.items);
        drop(returns);
        for returned in &lost {
            self.report_lost(returned);
        }
    }

    pub(super) fn take_returned(&self) -> Vec<Returned<I>> {
        std::mem::take(&mut lock(&self.returns).items)
    }

    fn report_lost(&self, returned: &Returned<I>) {
        let at = match returned.state {
            Unprocessed::Queued => "still queued",
            Unprocessed::CancelledInFlight => "in flight and was cancelled",
        };
        self.sink.report(UnobservedError {
            task: Some(self.name.clone()),
            kind: UnobservedKind::Other(format!(
                "worker pool dropped without shutdown: item #{} was {at} and is lost; call `shutdown(grace)` to get unprocessed items back",
                returned.index
            )),
        });
    }

    pub(super) fn stats(&self, queued: usize) -> PoolStats {
        self.counts.stats(queued)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// At most `limit` items per key in flight at once.
pub(super) struct KeyLimit {
    limit: usize,
    running: Mutex<HashMap<Arc<str>, usize>>,
    freed: Event,
}

impl KeyLimit {
    fn new(limit: usize) -> KeyLimit {
        KeyLimit {
            limit,
            running: Mutex::new(HashMap::new()),
            freed: Event::new(),
        }
    }

    /// Waits for a slot of `key`. Cancel-safe: a dropped wait holds nothing.
    async fn acquire(&self, key: &Arc<str>) -> KeySlot<'_> {
        loop {
            let listener = {
                let mut running = lock(&self.running);
                let n = running.entry(key.clone()).or_insert(0);
                if *n < self.limit {
                    *n += 1;
                    return KeySlot {
                        limit: self,
                        key: key.clone(),
                    };
                }
                // Listen under the lock: a release (which takes the lock)
                // cannot slip in between the check and the listen.
                self.freed.listen()
            };
            listener.await;
        }
    }
}

struct KeySlot<'a> {
    limit: &'a KeyLimit,
    key: Arc<str>,
}

impl Drop for KeySlot<'_> {
    fn drop(&mut self) {
        let mut running = lock(&self.limit.running);
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
        drop(running);
        self.limit.freed.notify(usize::MAX);
    }
}

pin_project_lite::pin_project! {
    /// One call of the handler, a panic in it (where the target unwinds)
    /// turned into [`Error::Panicked`]. Written out rather than as an async
    /// block around `catch_unwind`: the worker builds one per item, and
    /// each layer of async state costs moves of the whole state.
    #[project = AttemptProj]
    enum Attempt<Fut> {
        Running { #[pin] fut: Fut },
        Panicked { panic: Option<Panicked> },
    }
}

impl<Fut> Attempt<Fut> {
    /// Calls `handler(item)`; a panic in the call itself is kept for the
    /// first poll.
    fn call<I>(handler: &impl Fn(I) -> Fut, item: I) -> Attempt<Fut> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| handler(item))) {
            Ok(fut) => Attempt::Running { fut },
            Err(p) => Attempt::Panicked {
                panic: Some(Panicked::from_payload(&*p)),
            },
        }
    }
}

impl<T, E, Fut: Future<Output = Result<T, E>>> Future for Attempt<Fut> {
    type Output = Result<T, Error<E>>;
    // Always, as for `Single::poll`, which calls it.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AttemptProj::Running { fut } => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(result)) => Poll::Ready(result.map_err(Error::Inner)),
                    Err(p) => Poll::Ready(Err(Error::Panicked(Panicked::from_payload(&*p)))),
                }
            }
            AttemptProj::Panicked { panic } => Poll::Ready(Err(Error::Panicked(
                panic.take().expect("polled after completion"),
            ))),
        }
    }
}

/// How a worker runs one item: the handler alone ([`Direct`]) or through a
/// policy ([`WithPolicy`]). Chosen by the builder method, so a pool built
/// without a policy never compiles the policy's code for its handler (in
/// the browser that is most of a pool's bytes).
pub(super) trait Process<I, T, E> {
    /// Runs `item`; gives its result and how many times the handler ran.
    fn process(&self, item: &I) -> impl Future<Output = (Result<T, Error<E>>, u32)>;
}

/// The handler, called once per item.
pub(super) struct Direct<F>(pub(super) Arc<F>);

impl<I, T, E, F, Fut> Process<I, T, E> for Direct<F>
where
    I: Clone,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    fn process(&self, item: &I) -> impl Future<Output = (Result<T, Error<E>>, u32)> {
        Single {
            attempt: Attempt::call(&*self.0, item.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// [`Direct`]'s one attempt, counted. Its own future rather than
    /// `FutureExt::map`, whose out-of-line poll read the attempt's result
    /// back through memory on every item.
    struct Single<Fut> {
        #[pin]
        attempt: Attempt<Fut>,
    }
}

impl<T, E, Fut: Future<Output = Result<T, E>>> Future for Single<Fut> {
    type Output = (Result<T, Error<E>>, u32);
    // Always: out of line (as LLVM chose with `#[inline]`), the result went
    // back to the worker's loop through the stack, written in 8-byte parts
    // and read in 16-byte ones, a store-forwarding stall on every item.
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().attempt.poll(cx).map(|result| (result, 1))
    }
}

/// The handler through a policy, called once per attempt with a clone of
/// the item.
pub(super) struct WithPolicy<F> {
    pub(super) handler: Arc<F>,
    pub(super) policy: Policy,
}

impl<I, T, E, F, Fut> Process<I, T, E> for WithPolicy<F>
where
    I: Clone,
    E: fmt::Debug + 'static,
    F: Fn(I) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    async fn process(&self, item: &I) -> (Result<T, Error<E>>, u32) {
        let attempts = AtomicU32::new(0);
        let result = self
            .policy
            .run(|_| {
                attempts.fetch_add(1, Ordering::Relaxed);
                Guarded::new(Attempt::call(&*self.handler, item.clone()))
            })
            .await;
        (result, attempts.into_inner())
    }
}

/// The item a worker has in hand. Dropped, it hands back the item it still
/// holds (as cancelled in flight: the worker's future was dropped by an
/// executor shutting down, or something outside the handler panicked) and
/// tells `join`'s waiters that the worker stopped (see `counts`), however
/// the worker ended.
struct InHand<'a, I> {
    shared: &'a Shared<I>,
    envelope: Option<Envelope<I>>,
}

impl<I> Drop for InHand<'_, I> {
    fn drop(&mut self) {
        if let Some(envelope) = self.envelope.take() {
            self.shared
                .give_back(envelope, Unprocessed::CancelledInFlight);
        }
        self.shared.counts.settle();
    }
}

/// Everything one worker needs.
pub(super) struct Worker<I, T, E, P, R> {
    /// Which of the pool's workers this is (its counters).
    pub(super) index: usize,
    pub(super) queue: Receiver<Envelope<I>>,
    pub(super) shared: Arc<Shared<I>>,
    pub(super) process: Arc<P>,
    pub(super) timer: R,
    pub(super) scope: CancelScope,
    pub(super) out: LaneSender<Done<I, T, E>>,
}

impl<I, T, E, P, R> fmt::Debug for Worker<I, T, E, P, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Worker(..)")
    }
}

impl<I, T, E, P, R> Worker<I, T, E, P, R>
where
    E: fmt::Debug + 'static,
    P: Process<I, T, E>,
    R: Timer,
{
    /// Takes items until the queue is closed and empty, or until the pool's
    /// scope is cancelled; then hands back the item it had in flight.
    ///
    /// The whole loop runs in one scope run (entering a scope per item
    /// costs shared atomics); the item in flight lives outside it, in
    /// `current`, so a cancellation that drops the loop never drops the item.
    /// `current` hands its item back when dropped, so neither does an
    /// executor that drops this whole future (it shut down) or a panic
    /// outside the handler.
    pub(super) async fn run(self) {
        let mut current = InHand {
            shared: &self.shared,
            envelope: None,
        };
        // Done (`Ok`) or cancelled by the pool (`Err`, which is how
        // `shutdown` and the pool's drop stop workers): either way `current`
        // hands back the item in flight, if any, as it drops below.
        let _ended = self
            .scope
            .run(async {
                loop {
                    // A queued item is taken without building `recv`'s
                    // future; only an empty queue is waited on.
                    let envelope = match self.queue.try_recv() {
                        Ok(envelope) => envelope,
                        Err(TryRecvError::Closed) => break,
                        Err(TryRecvError::Empty) => {
                            // About to wait: what this worker finished is
                            // told to `join` now (see `counts`).
                            self.shared.counts.settle();
                            match self.queue.recv().await {
                                Ok(envelope) => envelope,
                                Err(_) => break,
                            }
                        }
                    };
                    let envelope = current.envelope.insert(envelope);
                    let started = (envelope.extra.as_ref())
                        .and_then(|extra| extra.enqueued)
                        .map(|_| self.timer.now());
                    // The key limit's wait only for keyed items of a limited
                    // pool, so a plain item's state holds no slot future.
                    let (result, attempts) = match (&self.shared.keys, envelope.key()) {
                        (Some(keys), Some(key)) => {
                            let _slot = keys.acquire(key).await;
                            self.process.process(&envelope.item).await
                        }
                        _ => self.process.process(&envelope.item).await,
                    };
                    let envelope = current.envelope.take().expect("set above");
                    self.complete(envelope, (result, attempts, started));
                }
            })
            .await;
        drop(current);
    }

    /// Emits the outcome of a processed item.
    fn complete(
        &self,
        envelope: Envelope<I>,
        (result, attempts, started): (Result<T, Error<E>>, u32, Option<Instant>),
    ) {
        if let Err(Error::Cancelled(_)) = result {
            // Only the pool's own cancellation reaches here (the handler
            // cannot return it): the item was not processed.
            self.shared
                .give_back(envelope, Unprocessed::CancelledInFlight);
            return;
        }
        let shared = &self.shared;
        let Envelope { index, item, extra } = envelope;
        let enqueued = extra.as_ref().and_then(|extra| extra.enqueued);
        let ok = result.is_ok();
        shared.observers.emit(|| ObsEvent::QueueItemDone {
            name: shared.name.clone(),
            index,
            waited: started.zip(enqueued).map_or(Duration::ZERO, |(s, e)| s - e),
            took: started.map_or(Duration::ZERO, |s| self.timer.now() - s),
            attempts,
            ok,
            depth: self.queue.len(),
        });
        let result = result.map_err(|error| {
            shared.observers.emit(|| ObsEvent::DeadLettered {
                name: shared.name.clone(),
                index,
                attempts,
                error: format!("{error:?}"),
            });
            DeadLetter {
                item,
                error,
                attempts,
            }
        });
        if let Err(unread) = self.out.send(Done::new(index, result, extra, attempts)) {
            // Nobody reads completions any more: a failure must still be seen.
            // `Other`, not `Failed`: that one's text says a task failed
            // and nobody awaited its handle, which is not what happened.
            if let Some(dead) = unread.dead_letter() {
                shared.sink.report(UnobservedError {
                    task: Some(shared.name.clone()),
                    kind: UnobservedKind::Other(format!(
                        "item #{index} failed after {} attempt(s) and nobody reads the pool's completions: {:?}",
                        dead.attempts, dead.error
                    )),
                });
            }
        }
        shared.counts.completed(self.index, ok, attempts);
    }
}

#[cfg(all(test, not(staunch_loom), panic = "unwind"))]
mod tests {
    use std::future::ready;

    use futures::StreamExt;
    use futures::executor::block_on;

    use super::*;
    use crate::queue::WorkerPool;
    use crate::testing::VirtualRuntime;

    fn panicked<T, E>(result: Result<T, Error<E>>) -> String {
        match result {
            Err(Error::Panicked(p)) => p.message,
            _ => panic!("not a panic"),
        }
    }

    /// Every byte of these crosses between threads once per item, in
    /// queue slots one word larger: 32-byte slots sit two to a cache line.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_plain_items_envelope_and_completion_stay_small() {
        assert_eq!(std::mem::size_of::<Envelope<u64>>(), 24);
        assert_eq!(std::mem::size_of::<Done<u64, u64, ()>>(), 24);
    }

    #[test]
    fn an_attempt_turns_a_panic_in_the_call_or_in_a_poll_into_panicked() {
        let values = |n: u32| ready(if n == 0 { Err("zero") } else { Ok(n) });
        assert_eq!(block_on(Attempt::call(&values, 3)).ok(), Some(3));
        assert!(matches!(
            block_on(Attempt::call(&values, 0)),
            Err(Error::Inner("zero"))
        ));

        let in_call = |_: u32| -> std::future::Ready<Result<u32, ()>> { panic!("in the call") };
        assert!(panicked(block_on(Attempt::call(&in_call, 1))).contains("in the call"));

        let in_poll = |_: u32| async {
            if std::hint::black_box(true) {
                panic!("in a poll");
            }
            Ok::<u32, ()>(1)
        };
        assert!(panicked(block_on(Attempt::call(&in_poll, 1))).contains("in a poll"));
    }

    /// The pool's other unwinding case (a panic inside the handler's
    /// future) is in the conformance suite.
    #[test]
    fn a_handler_that_panics_before_returning_its_future_fails_only_its_item() {
        let rt = VirtualRuntime::new();
        let mut out = rt
            .block_on({
                let rt = rt.clone();
                async move {
                    let (pool, completions) = WorkerPool::builder(rt)
                        .workers(2)
                        .build(|i: u32| {
                            assert!(i != 2, "item two panics in the call");
                            ready(Ok::<_, ()>(i))
                        })
                        .expect("valid");
                    for i in 0..4 {
                        pool.submit(i).await.expect("open");
                    }
                    pool.close();
                    completions.collect::<Vec<_>>().await
                }
            })
            .expect("no deadlock");
        out.sort_by_key(|c| c.index);
        assert_eq!(out.len(), 4);
        let dead = out[2].result.as_ref().expect_err("item two fails");
        assert_eq!((dead.item, dead.attempts), (2, 1));
        assert!(
            matches!(&dead.error, Error::Panicked(p) if p.message.contains("panics in the call"))
        );
        assert!(
            out.iter()
                .filter(|c| c.index != 2)
                .all(|c| c.result.is_ok())
        );
    }
}
