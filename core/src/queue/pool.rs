//! `WorkerPool`: N workers on a bounded queue, each item through a policy.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::future::{Either, join_all, select};
use thiserror::Error;

use event_listener::EventListener;

use super::counts::Counts;
use super::lane::{Lane, LaneSender};
use super::report::{Completion, Done, Extra, PoolStats, ShutdownReport, Unprocessed};
use super::signal::SignalListener;
use super::worker::{Direct, Envelope, PoolClock, Process, Shared, WithPolicy, Worker};
use super::{Permit, Receiver, SendError, Sender, TrySendError, bounded};
use crate::ConfigError;
use crate::observe::{Event, Observers};
use crate::policy::Policy;
use crate::runtime::{
    ErrorSink, JoinHandle, LocalSpawn, LocalSpawnExt, MaybeSend, MaybeSync, Spawn, SpawnError,
    SpawnExt, Timer, UnobservedError, UnobservedKind,
};
use crate::scope::{CancelReason, CancelScope};

/// A pool of workers that take items from a bounded queue and run each one
/// through an async handler (and an optional [`Policy`]); see the
/// [module docs](super) for the whole story.
///
/// The pool is not generic over the handler's value or error: those come out
/// of the [`Completions`] stream that [`build`](WorkerPoolBuilder::build)
/// returns beside it.
///
/// Dropping the pool without [`shutdown`](WorkerPool::shutdown) cancels
/// every worker and reports every item it had not processed, one by one, to
/// the error sink: none is lost silently.
pub struct WorkerPool<I> {
    submitter: Submitter<I>,
    queue: Receiver<Envelope<I>>,
    workers: Vec<JoinHandle<()>>,
    scope: CancelScope,
    finished: bool,
}

/// Submits items to a [`WorkerPool`] from anywhere; cheap to clone.
///
/// Submitters do not keep the pool open: [`WorkerPool::close`] (or a
/// shutdown) refuses their later submissions with the item handed back.
pub struct Submitter<I> {
    tx: Sender<Envelope<I>>,
    shared: Arc<Shared<I>>,
    clock: Arc<dyn PoolClock>,
}

/// The stream of processed items, in completion order. It ends once the
/// pool is closed (or shut down) and every worker has stopped.
///
/// Implements [`Stream`]; [`next`](Completions::next) is the same without
/// `StreamExt`. Unbounded, so workers never wait on a slow reader; drop it
/// if you do not want completions (failures then go to the error sink).
///
/// Kept and never read, it holds every completion for as long as the pool
/// runs: a long-running pool grows without bound. Note that
/// `let (pool, _completions) = …` keeps it (a named binding lives to the
/// end of its block) while `let (pool, _) = …` drops it at once.
pub struct Completions<I, T, E> {
    lane: Arc<Lane<Done<I, T, E>>>,
    /// Set while `poll_next` waits for a completion.
    listener: Option<EventListener>,
}

/// Why a pool could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PoolBuildError {
    /// A setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A worker could not be started.
    #[error("a worker could not be started")]
    Spawn(#[from] SpawnError),
}

/// Configures a [`WorkerPool`]. Defaults: 4 workers, a queue of 64, no
/// per-key limit, no policy, no observers, the runtime's error sink.
#[must_use = "a builder does nothing until you call `build()`"]
pub struct WorkerPoolBuilder<R> {
    runtime: R,
    workers: usize,
    capacity: usize,
    per_key: Option<usize>,
    name: Arc<str>,
    observers: Observers,
    sink: Option<ErrorSink>,
}

impl WorkerPool<()> {
    /// A builder; `runtime` spawns the workers and times waits and grace periods.
    pub fn builder<R>(runtime: R) -> WorkerPoolBuilder<R> {
        WorkerPoolBuilder {
            runtime,
            workers: 4,
            capacity: 64,
            per_key: None,
            name: Arc::from("worker-pool"),
            observers: Observers::new(),
            sink: None,
        }
    }
}

/// The most workers a pool takes: each is a task with its own counters,
/// started by `build`, so a larger number is almost surely a mistake (a
/// count meant for the queue, or `usize::MAX` for "unbounded").
pub const MAX_WORKERS: usize = 1 << 16;

impl<R> WorkerPoolBuilder<R> {
    /// How many workers take items at once (at least 1, at most
    /// [`MAX_WORKERS`]).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }
    /// How many items the queue holds before submitters wait (at least 1).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }
    /// At most `n` items with the same key in flight at once (at least 1).
    ///
    /// A worker whose item's key is at its limit waits for that key (the
    /// item stays with it), so give the pool more workers than `n` times the
    /// number of busy keys, or hot keys will hold workers idle.
    pub fn limit_per_key(mut self, n: usize) -> Self {
        self.per_key = Some(n);
        self
    }
    /// The name in events and error-sink reports.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }
    /// Where the pool's events go.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        self
    }
    /// Where items lost by dropping the pool, and failures nobody reads, are
    /// reported (default: the runtime's error sink).
    pub fn error_sink(mut self, sink: ErrorSink) -> Self {
        self.sink = Some(sink);
        self
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.workers == 0 {
            return Err(ConfigError::new(
                "workers",
                "must be at least 1, or no item is ever processed",
            ));
        }
        if self.workers > MAX_WORKERS {
            return Err(ConfigError::new(
                "workers",
                "must be at most 65 536 (`MAX_WORKERS`): each worker is a task started at once; to bound how many items run at once, use fewer workers or `limit_per_key`",
            ));
        }
        if self.capacity == 0 {
            return Err(ConfigError::new(
                "capacity",
                "must be at least 1; a queue of 0 could never accept an item",
            ));
        }
        if self.per_key == Some(0) {
            return Err(ConfigError::new(
                "limit_per_key",
                "must be at least 1, or items with a key never run; leave it unset for no limit",
            ));
        }
        Ok(())
    }
}

impl<R> WorkerPoolBuilder<R>
where
    R: Timer + Spawn + Clone + 'static,
{
    /// Starts the workers; each item is processed by `handler(item)`.
    ///
    /// # Errors
    ///
    /// [`PoolBuildError::Config`] for zero workers, capacity or per-key
    /// limit; [`PoolBuildError::Spawn`] if the runtime refuses a worker.
    #[allow(clippy::type_complexity)]
    pub fn build<I, T, E, F, Fut>(
        self,
        handler: F,
    ) -> Result<(WorkerPool<I>, Completions<I, T, E>), PoolBuildError>
    where
        I: Clone + MaybeSend + MaybeSync + 'static,
        T: MaybeSend + 'static,
        E: fmt::Debug + MaybeSend + MaybeSync + 'static,
        F: Fn(I) -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = Result<T, E>> + MaybeSend + 'static,
    {
        let (sink, runtime) = (
            self.sink_or(self.runtime.error_sink()),
            self.runtime.clone(),
        );
        self.start(sink, Direct(Arc::new(handler)), move |name, worker| {
            runtime.spawn_named(name, worker.run())
        })
    }

    /// Like [`build`](Self::build), with every item run through `policy`
    /// (retry, breaker, timeout, bulkhead, ...; the handler is called once
    /// per attempt with a clone of the item).
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build).
    #[allow(clippy::type_complexity)]
    pub fn build_with_policy<I, T, E, F, Fut>(
        self,
        policy: Policy,
        handler: F,
    ) -> Result<(WorkerPool<I>, Completions<I, T, E>), PoolBuildError>
    where
        I: Clone + MaybeSend + MaybeSync + 'static,
        T: MaybeSend + 'static,
        E: fmt::Debug + MaybeSend + MaybeSync + 'static,
        F: Fn(I) -> Fut + MaybeSend + MaybeSync + 'static,
        Fut: Future<Output = Result<T, E>> + MaybeSend + 'static,
    {
        let (sink, runtime) = (
            self.sink_or(self.runtime.error_sink()),
            self.runtime.clone(),
        );
        let handler = Arc::new(handler);
        self.start(sink, WithPolicy { handler, policy }, move |name, worker| {
            runtime.spawn_named(name, worker.run())
        })
    }
}

impl<R> WorkerPoolBuilder<R>
where
    R: Timer + LocalSpawn + Clone + 'static,
{
    /// Like [`build`](Self::build), for handlers whose futures are not
    /// `Send` (JavaScript promises in the browser, `Rc` state): the workers
    /// run on the current thread through [`LocalSpawn`].
    ///
    /// # Errors
    ///
    /// As for [`build`](Self::build); [`SpawnError::Unsupported`] inside
    /// [`PoolBuildError::Spawn`] where the runtime has no local tasks.
    #[allow(clippy::type_complexity)]
    pub fn build_local<I, T, E, F, Fut>(
        self,
        handler: F,
    ) -> Result<(WorkerPool<I>, Completions<I, T, E>), PoolBuildError>
    where
        I: Clone + MaybeSend + MaybeSync + 'static,
        T: 'static,
        E: fmt::Debug + 'static,
        F: Fn(I) -> Fut + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
    {
        let sink = self.sink_or(self.runtime.local_error_sink());
        let runtime = self.runtime.clone();
        self.start(sink, Direct(Arc::new(handler)), move |name, worker| {
            runtime.spawn_local_named(name, worker.run())
        })
    }

    /// [`build_local`](Self::build_local) with every item run through
    /// `policy`, as [`build_with_policy`](Self::build_with_policy) does.
    ///
    /// # Errors
    ///
    /// As for [`build_local`](Self::build_local).
    #[allow(clippy::type_complexity)]
    pub fn build_local_with_policy<I, T, E, F, Fut>(
        self,
        policy: Policy,
        handler: F,
    ) -> Result<(WorkerPool<I>, Completions<I, T, E>), PoolBuildError>
    where
        I: Clone + MaybeSend + MaybeSync + 'static,
        T: 'static,
        E: fmt::Debug + 'static,
        F: Fn(I) -> Fut + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
    {
        let sink = self.sink_or(self.runtime.local_error_sink());
        let (runtime, handler) = (self.runtime.clone(), Arc::new(handler));
        self.start(sink, WithPolicy { handler, policy }, move |name, worker| {
            runtime.spawn_local_named(name, worker.run())
        })
    }
}

impl<R: Timer + Clone + 'static> WorkerPoolBuilder<R> {
    /// The builder's error sink, or `default`.
    fn sink_or(&self, default: ErrorSink) -> ErrorSink {
        self.sink.clone().unwrap_or(default)
    }

    /// Starts the workers, each running items through `process`; `spawn`
    /// is called where `P` is a concrete type, so that the compiler can see
    /// whether a worker's future is `Send`.
    #[allow(clippy::type_complexity)]
    fn start<I, T, E, P>(
        self,
        sink: ErrorSink,
        process: P,
        spawn: impl Fn(Arc<str>, Worker<I, T, E, P, R>) -> Result<JoinHandle<()>, SpawnError>,
    ) -> Result<(WorkerPool<I>, Completions<I, T, E>), PoolBuildError>
    where
        E: fmt::Debug + 'static,
        P: Process<I, T, E>,
    {
        self.check()?;
        let (tx, rx) = bounded(self.capacity)?;
        let (out, completions) = LaneSender::unbounded();
        let shared = Arc::new(Shared::new(
            self.name.clone(),
            self.observers.clone(),
            sink,
            self.per_key,
            Counts::new(self.workers, tx.slots_taken()),
        ));
        let scope = CancelScope::new();
        let process = Arc::new(process);
        let clock: Arc<dyn PoolClock> = Arc::new(self.runtime.clone());
        let submitter = Submitter {
            tx,
            shared: shared.clone(),
            clock,
        };
        let mut pool = WorkerPool {
            submitter,
            queue: rx.clone(),
            workers: Vec::with_capacity(self.workers),
            scope: scope.clone(),
            finished: false,
        };
        for i in 0..self.workers {
            let worker = Worker {
                index: i,
                queue: rx.clone(),
                shared: shared.clone(),
                process: process.clone(),
                timer: self.runtime.clone(),
                scope: scope.clone(),
                out: out.clone(),
            };
            let name: Arc<str> = Arc::from(format!("{}#worker{i}", self.name));
            // On failure the pool drops: started workers are cancelled.
            pool.workers.push(spawn(name, worker)?);
        }
        Ok((
            pool,
            Completions {
                lane: completions,
                listener: None,
            },
        ))
    }
}

impl<I> Submitter<I> {
    /// Puts `item` in the slot `permit` holds, under the slot's number (its
    /// submission index); a queue closed since the slot was taken refuses
    /// it and hands it back.
    #[inline]
    fn put(
        &self,
        permit: Permit<'_, Envelope<I>>,
        key: Option<Arc<str>>,
        item: I,
    ) -> Result<u64, I> {
        let index = permit.number();
        let enqueued = (!self.shared.observers.is_empty()).then(|| {
            // The index is taken: should the user's clock panic, refuse it,
            // or `join` would wait for it forever.
            let guard = RefuseOnDrop(&self.shared);
            let now = self.clock.now();
            std::mem::forget(guard);
            now
        });
        let envelope = Envelope {
            index,
            item,
            extra: (key.is_some() || enqueued.is_some()).then(|| {
                Box::new(Extra {
                    key,
                    enqueued,
                    attempts: None,
                })
            }),
        };
        match permit.send(envelope) {
            Ok(()) => {
                self.shared.observers.emit(|| Event::QueueItemSubmitted {
                    name: self.shared.name.clone(),
                    index,
                    depth: self.tx.len(),
                });
                Ok(index)
            }
            Err(refused) => {
                self.shared.refuse();
                Err(refused.into_item().item)
            }
        }
    }

    /// Submits `item`, waiting while the queue is full (backpressure);
    /// returns its submission number (the `index` of its completion).
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] with the item once the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// A dropped submit submitted nothing; the item is dropped with it. Use
    /// [`submit_timeout`](Self::submit_timeout) to get the item back instead.
    pub fn submit(&self, item: I) -> Submit<'_, I> {
        Submit::new(self, None, item)
    }

    /// Submits `item` under `key` (see
    /// [`limit_per_key`](WorkerPoolBuilder::limit_per_key)).
    ///
    /// # Errors
    ///
    /// As for [`submit`](Self::submit).
    ///
    /// # Cancel safety
    ///
    /// As for [`submit`](Self::submit).
    pub fn submit_keyed(&self, key: impl Into<Arc<str>>, item: I) -> Submit<'_, I> {
        Submit::new(self, Some(key.into()), item)
    }

    /// Submits `item` if the queue has room right now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
    pub fn try_submit(&self, item: I) -> Result<u64, TrySendError<I>> {
        let permit = match self.tx.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Full(())) => return Err(TrySendError::Full(item)),
            Err(TrySendError::Closed(())) => return Err(TrySendError::Closed(item)),
        };
        self.put(permit, None, item).map_err(TrySendError::Closed)
    }

    /// Submits `item`, waiting at most `limit` for room.
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`] or [`SendError::Closed`], with the item.
    ///
    /// # Cancel safety
    ///
    /// As for [`submit`](Self::submit); a timeout gives the item back.
    pub async fn submit_timeout(&self, limit: Duration, item: I) -> Result<u64, SendError<I>> {
        let clock = ClockRef(&*self.clock);
        self.submit_once_room(self.tx.reserve_timeout(&clock, limit), item)
            .await
    }

    /// Submits `item`, waiting for room until `scope` is cancelled or its
    /// deadline passes; the queue's [`send_in`](Sender::send_in) for the pool.
    ///
    /// ```
    /// use futures::future::join;
    /// use staunch::queue::{SendError, WorkerPool};
    /// use staunch::runtime::Timer;
    /// use staunch::scope::CancelScope;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let (pool, _) = WorkerPool::builder(rt.clone()) // completions not wanted
    ///     .workers(1)
    ///     .capacity(1)
    ///     .build(|_: u32| std::future::pending::<Result<u32, ()>>())?;
    /// let scope = CancelScope::new();
    /// let (refused, ()) = rt.block_on(join(
    ///     async {
    ///         pool.submit(1).await.unwrap(); // taken by the one worker
    ///         pool.submit(2).await.unwrap(); // fills the queue
    ///         pool.submit_in(&scope, 3).await
    ///     },
    ///     async {
    ///         rt.sleep(Duration::from_secs(1)).await;
    ///         scope.cancel();
    ///     },
    /// )).unwrap();
    /// assert!(matches!(refused, Err(SendError::Cancelled { item: 3, .. }))); // given back
    /// // Nothing is lost: the queued item and the one in flight come back too.
    /// let report = rt.block_on(pool.shutdown(Duration::ZERO)).unwrap();
    /// assert_eq!(report.into_items(), [2, 1]);
    /// # Ok::<(), staunch::queue::PoolBuildError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError::Cancelled`] (with the scope's reason) or
    /// [`SendError::Closed`], with the item. A scope already cancelled
    /// refuses the submit even if there is room.
    ///
    /// # Cancel safety
    ///
    /// As for [`submit`](Self::submit); a cancelled scope gives the item back.
    pub async fn submit_in(&self, scope: &CancelScope, item: I) -> Result<u64, SendError<I>> {
        self.submit_once_room(self.tx.reserve_in(scope), item).await
    }

    /// Puts `item` in the room `room` waits for, or hands it back with why
    /// there was none.
    async fn submit_once_room<'a>(
        &'a self,
        room: impl Future<Output = Result<Permit<'a, Envelope<I>>, SendError<()>>>,
        item: I,
    ) -> Result<u64, SendError<I>> {
        match room.await {
            Ok(permit) => self.put(permit, None, item).map_err(SendError::Closed),
            Err(stopped) => Err(stopped.map_item(|()| item)),
        }
    }
}

/// The future of a submit ([`Submitter::submit`], [`WorkerPool::submit`]
/// and their keyed forms): it takes room in the queue, waiting while the
/// queue is full, then enqueues the item and gives its submission index.
///
/// Written out rather than as an `async fn`, so that a submit that finds
/// room at once (the common case) is one poll of a small value: no state
/// machine wrapping a second one, no drop glue for a waiting future it
/// never built.
///
/// ```
/// use futures::StreamExt;
/// use staunch::queue::{SendError, WorkerPool};
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let (pool, completions) = WorkerPool::builder(rt.clone())
///     .build(|n: u32| async move { Ok::<_, ()>(n * 2) })?;
/// let done = rt.block_on(async {
///     let index = pool.submit(21).await.unwrap(); // the item's index
///     assert_eq!(index, 0);
///     pool.close();
///     // A closed pool hands the item back inside the error.
///     assert!(matches!(pool.submit(7).await, Err(SendError::Closed(7))));
///     completions.map(|c| c.result.ok()).collect::<Vec<_>>().await
/// }).unwrap();
/// assert_eq!(done, [Some(42)]);
/// # Ok::<(), staunch::queue::PoolBuildError>(())
/// ```
///
/// # Errors
///
/// Its output is [`SendError::Closed`] with the item once the pool is closed.
///
/// # Cancel safety
///
/// Dropped before it completes, it submitted nothing and holds no room; the
/// item is dropped with it.
#[must_use = "a submit does nothing unless it is awaited"]
pub struct Submit<'a, I> {
    submitter: &'a Submitter<I>,
    key: Option<Arc<str>>,
    /// `None` once the submit has completed.
    item: Option<I>,
    /// Set while waiting for room.
    listener: Option<SignalListener<'a>>,
}

impl<'a, I> Submit<'a, I> {
    fn new(submitter: &'a Submitter<I>, key: Option<Arc<str>>, item: I) -> Submit<'a, I> {
        Submit {
            submitter,
            key,
            item: Some(item),
            listener: None,
        }
    }
}

// No field is pinned: the item is only ever moved out whole.
impl<I> Unpin for Submit<'_, I> {}

impl<I> Future for Submit<'_, I> {
    type Output = Result<u64, SendError<I>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.item.is_none() {
            // Completed already: there is nothing left to submit.
            return Poll::Pending;
        }
        let submitter = this.submitter;
        let reserved = match submitter.tx.poll_reserve(&mut this.listener, cx) {
            Poll::Ready(reserved) => reserved,
            Poll::Pending => return Poll::Pending,
        };
        let Some(item) = this.item.take() else {
            return Poll::Pending;
        };
        Poll::Ready(match reserved {
            Ok(permit) => submitter
                .put(permit, this.key.take(), item)
                .map_err(SendError::Closed),
            Err(closed) => Err(closed.map_item(|()| item)),
        })
    }
}

impl<I> fmt::Debug for Submit<'_, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submit")
            .field("key", &self.key)
            .field("done", &self.item.is_none())
            .finish_non_exhaustive()
    }
}

/// Refuses an index taken by a submit that unwinds before it enqueued.
struct RefuseOnDrop<'a, I>(&'a Shared<I>);

impl<I> Drop for RefuseOnDrop<'_, I> {
    fn drop(&mut self) {
        self.0.refuse();
    }
}

/// Lets the erased clock time a `reserve_timeout`.
struct ClockRef<'a>(&'a dyn PoolClock);

impl Timer for ClockRef<'_> {
    type Sleep = crate::runtime::BoxTask;
    fn now(&self) -> crate::runtime::Instant {
        self.0.now()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.0.sleep(duration)
    }
}

impl<I> WorkerPool<I> {
    /// A handle for submitting from other tasks.
    #[must_use]
    pub fn submitter(&self) -> Submitter<I> {
        self.submitter.clone()
    }

    /// See [`Submitter::submit`].
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] with the item once the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// See [`Submitter::submit`].
    pub fn submit(&self, item: I) -> Submit<'_, I> {
        self.submitter.submit(item)
    }

    /// See [`Submitter::submit_keyed`].
    ///
    /// # Errors
    ///
    /// [`SendError::Closed`] with the item once the pool is closed.
    ///
    /// # Cancel safety
    ///
    /// See [`Submitter::submit`].
    pub fn submit_keyed(&self, key: impl Into<Arc<str>>, item: I) -> Submit<'_, I> {
        self.submitter.submit_keyed(key, item)
    }

    /// See [`Submitter::try_submit`].
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the item.
    pub fn try_submit(&self, item: I) -> Result<u64, TrySendError<I>> {
        self.submitter.try_submit(item)
    }

    /// See [`Submitter::submit_timeout`].
    ///
    /// # Errors
    ///
    /// [`SendError::Timeout`] or [`SendError::Closed`], with the item.
    ///
    /// # Cancel safety
    ///
    /// See [`Submitter::submit_timeout`].
    pub async fn submit_timeout(&self, limit: Duration, item: I) -> Result<u64, SendError<I>> {
        self.submitter.submit_timeout(limit, item).await
    }

    /// See [`Submitter::submit_in`].
    ///
    /// # Errors
    ///
    /// [`SendError::Cancelled`] or [`SendError::Closed`], with the item.
    ///
    /// # Cancel safety
    ///
    /// See [`Submitter::submit_in`].
    pub async fn submit_in(&self, scope: &CancelScope, item: I) -> Result<u64, SendError<I>> {
        self.submitter.submit_in(scope, item).await
    }

    /// Waits until every item submitted so far is finished: processed, or
    /// handed back by a shutdown (asyncio's `Queue.join`). Items submitted
    /// while it waits may be waited for too.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: it only watches.
    pub async fn join(&self) {
        self.submitter.shared.wait_idle().await;
    }

    /// Stops accepting items; the workers process everything queued, then
    /// stop, and the [`Completions`] stream ends (asyncio's
    /// `Queue.shutdown(immediate=False)`, trio's closing of the send side).
    /// Returns whether this call closed it.
    pub fn close(&self) -> bool {
        self.submitter.tx.close()
    }

    /// The pool's counters now.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        self.submitter.shared.stats(self.submitter.tx.len())
    }

    /// Stops the pool and hands back every item it did not process.
    ///
    /// Stops accepting items and takes every queued item out at once; lets
    /// the items in flight finish for up to `grace`; then cancels the rest
    /// with [`CancelReason::Shutdown`] and waits for the workers to stop.
    /// The report holds the queued items and the cancelled ones; every other
    /// submitted item was processed and its completion emitted.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the pool: what it had not processed is
    /// reported to the error sink, as for a dropped pool.
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport<I> {
        let shared = self.submitter.shared.clone();
        for envelope in self.queue.shutdown_immediate() {
            shared.give_back(envelope, Unprocessed::Queued);
        }
        let workers = join_all(std::mem::take(&mut self.workers));
        let mut workers = pin!(workers);
        let sleep = self.submitter.clock.sleep(grace);
        let done = match select(workers.as_mut(), sleep).await {
            Either::Left((done, _)) => done,
            Either::Right(((), _)) => {
                self.scope.cancel_with(CancelReason::Shutdown);
                workers.await
            }
        };
        report_worker_failures(&shared, done);
        self.finished = true;
        let mut returned = shared.take_returned();
        returned.sort_by_key(|r| r.state == Unprocessed::CancelledInFlight);
        ShutdownReport {
            returned,
            stats: shared.stats(0),
        }
    }
}

fn report_worker_failures<I>(shared: &Shared<I>, done: Vec<Result<(), crate::runtime::JoinError>>) {
    for failure in done.into_iter().filter_map(Result::err) {
        shared.sink.report(UnobservedError {
            task: Some(shared.name.clone()),
            kind: UnobservedKind::Other(format!("a worker stopped abnormally: {failure}")),
        });
    }
}

impl<I> Drop for WorkerPool<I> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let shared = &self.submitter.shared;
        shared.mark_dropped();
        for envelope in self.queue.shutdown_immediate() {
            shared.give_back(envelope, Unprocessed::Queued);
        }
        self.scope.cancel_with(CancelReason::Shutdown);
    }
}

impl<I, T, E> Completions<I, T, E> {
    /// The next completion, or `None` once the pool has stopped and every
    /// completion was read.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: a dropped call takes no completion.
    pub async fn next(&mut self) -> Option<Completion<I, T, E>> {
        std::future::poll_fn(|cx| self.poll_done(cx)).await
    }

    /// A completion if one is ready now.
    #[must_use]
    pub fn try_next(&mut self) -> Option<Completion<I, T, E>> {
        self.lane.pop().ok().map(Done::into_completion)
    }

    #[inline]
    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<Option<Completion<I, T, E>>> {
        self.lane
            .poll_pop(&mut self.listener, cx)
            .map(|done| done.map(Done::into_completion))
    }
}

impl<I, T, E> Drop for Completions<I, T, E> {
    fn drop(&mut self) {
        self.lane.stop_listening(&mut self.listener);
        // Nobody reads from now on: workers see the lane closed and send
        // failures to the error sink instead.
        self.lane.close();
    }
}

impl<I, T, E> Stream for Completions<I, T, E> {
    type Item = Completion<I, T, E>;
    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_done(cx)
    }
}

impl<I> Clone for Submitter<I> {
    fn clone(&self) -> Self {
        Submitter {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<I> fmt::Debug for WorkerPool<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.submitter.shared.name)
            .field("workers", &self.workers.len())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<I> fmt::Debug for Submitter<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter")
            .field("pool", &self.shared.name)
            .finish()
    }
}

impl<I, T, E> fmt::Debug for Completions<I, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completions")
            .field("ready", &self.lane.len())
            .finish()
    }
}

impl<R> fmt::Debug for WorkerPoolBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("workers", &self.workers)
            .field("capacity", &self.capacity)
            .field("per_key", &self.per_key)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
