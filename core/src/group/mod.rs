//! Task groups (nurseries) and graceful shutdown: structured concurrency in
//! staunch.
//!
//! # Structured concurrency in staunch
//!
//! A [`TaskGroup`] owns the tasks it spawns. Its children run concurrently on
//! the executor you pass in (any [`Spawn`]: tokio, smol, the browser, the
//! [`VirtualRuntime`](crate::testing::VirtualRuntime)), and
//! [`join`](TaskGroup::join) waits for all of them. Three promises hold on
//! every runtime:
//!
//! 1. **No child outlives its group.** Dropping the group, or the future
//!    awaiting its join, cancels every child; their futures are dropped at
//!    their next poll. A group dropped inside a child of another group, or
//!    inside a [`CancelScope::run`], keeps that child (or run) from ending
//!    until its own children are gone: the outer `join` never returns, and
//!    a cancelled run never hands back its `Err`, while a grandchild still
//!    runs (trio: a nursery cannot be left while its children run).
//! 2. **No error is lost.** `join` returns the first failure *and* every
//!    other one ([`GroupError`]); a failure that arrives after the group was
//!    dropped goes to the runtime's [`ErrorSink`].
//! 3. **Cancellation is not failure.** Children run in the group's
//!    [`CancelScope`]; a cancelled child ends as
//!    [`ChildError::Cancelled`] with the [`CancelReason`], which never counts
//!    as the group's failure and cannot be caught by the child and turned into
//!    a success (its future is dropped, not resumed with an error).
//!
//! A child that panics ends as [`ChildError::Panicked`] with its message and
//! counts as a failure, where the target unwinds. On
//! `wasm32-unknown-unknown` a panic aborts the whole module instead, so it
//! can never be seen as a value there.
//!
//! Two modes decide what a failure does:
//!
//! - **fail-fast** ([`TaskGroup::new`], the default): the first failure
//!   cancels the siblings with [`CancelReason::SiblingFailed`], waits for
//!   them to be gone, and `join` returns [`GroupError`] with that first
//!   failure, every other one, the failing task's name and index, and how
//!   many siblings were cancelled. Like Kotlin's `coroutineScope`.
//! - **supervisor** ([`TaskGroup::supervisor`]): children are independent and
//!   all run to completion; [`join_all`](TaskGroup::join_all) returns every
//!   child's result in spawn order. Like Kotlin's `supervisorScope`.
//!
//! ## Compared with tokio's `JoinSet`
//!
//! `JoinSet` is also owned and aborts its tasks when dropped, but it is
//! tokio-only, keeps no names or order, and its `join_all` panics as soon as
//! one task panicked or was aborted. It has no fail-fast mode, no
//! cancellation reason, no concurrency limit and no notion of a deadline. A
//! `TaskGroup` runs on any executor (including the browser through
//! [`spawn_local`](TaskGroup::spawn_local)), returns results in spawn order,
//! turns panics into [`ChildError::Panicked`] values, and nests inside
//! [`CancelScope`]s with deadlines. Like `JoinSet::spawn`'s `AbortHandle`,
//! `spawn` returns a [`ChildHandle`] that aborts that one child; an aborted
//! child is reported as cancelled (reason
//! [`Aborted`](crate::scope::CancelReason::Aborted)), never as a failure or
//! a panic, and the handle can be awaited for how the child ended.
//!
//! ## Compared with trio's nurseries
//!
//! A nursery is a lexical block: the parent cannot leave it until every child
//! is done, the first exception cancels the rest, and all exceptions arrive
//! together (an `ExceptionGroup`). `TaskGroup` keeps those semantics, but Rust
//! has no async drop, so "cannot leave" becomes "leaving cancels": dropping
//! the group cancels the children instead of waiting for them. To *wait* for
//! cleanup, call [`CancelScope::cancel_with_grace`] on
//! [`TaskGroup::scope`] (or use [`Background::shutdown`]) before dropping.
//! Like trio, children can start siblings, here through a [`GroupHandle`].
//!
//! # Example
//!
//! ```
//! use staunch::group::{ChildError, TaskGroup};
//! use staunch::runtime::Timer;
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let err = rt.block_on({
//!     let rt = rt.clone();
//!     async move {
//!         let group = TaskGroup::new(rt.clone());
//!         group.spawn_named("fast", async { Ok(1) }).unwrap();
//!         group.spawn_named("broken", async { Err("disk full") }).unwrap();
//!         let slow = rt.clone();
//!         group.spawn_named("slow", async move {
//!             slow.sleep(Duration::from_secs(60)).await;
//!             Ok(3)
//!         }).unwrap();
//!         group.join().await.unwrap_err()
//!     }
//! });
//! let err = err.unwrap();
//! let first = err.first.as_ref().unwrap();
//! assert_eq!((first.index, first.name.as_deref()), (1, Some("broken")));
//! assert_eq!(first.error, ChildError::Failed("disk full"));
//! assert_eq!(err.cancelled, 1); // "slow" was cancelled, promptly
//! assert_eq!(rt.now().since_origin(), Duration::ZERO);
//! ```
//!
//! [`Spawn`]: crate::runtime::Spawn
//! [`CancelScope`]: crate::scope::CancelScope
//! [`CancelScope::cancel_with_grace`]: crate::scope::CancelScope::cancel_with_grace
//! [`CancelScope::run`]: crate::scope::CancelScope::run
//! [`CancelReason`]: crate::scope::CancelReason
//! [`CancelReason::SiblingFailed`]: crate::scope::CancelReason::SiblingFailed

mod background;
mod child;
mod child_handle;
mod error;
mod join;
mod limit;
mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc as StdArc;

pub use background::{Background, DEFAULT_ERROR_CAP, ShutdownReport};
pub use child_handle::{ChildEnd, ChildHandle};
pub use error::{ChildError, GroupError, GroupSpawnError, TaskFailure};
pub use join::{Join, JoinAll};

use crate::ConfigError;
use crate::observe::Observers;
use crate::runtime::{ErrorSink, LocalSpawn, MaybeSend, Spawn};
use crate::scope::CancelScope;
use crate::sync::Arc;

use child::child_task;
use state::{Shared, Tell, unit_maker};

/// A nursery: spawns children, then joins them; no child outlives it.
///
/// `T` and `E` are the children's success and error types (every child
/// returns `Result<T, E>`). See the [module docs](self) for the guide.
///
/// # Cancel safety
///
/// Dropping the group, or its [`Join`] future, cancels every child (their
/// futures are dropped at their next poll) and sends failures nobody will
/// read to the error sink.
#[must_use = "dropping a TaskGroup cancels its children; join it to wait for them"]
pub struct TaskGroup<S, T, E: fmt::Debug> {
    handle: GroupHandle<S, T, E>,
}

/// A cloneable handle that spawns children into a group, for example from a
/// child that starts a sibling. It does not keep the children alive: when
/// the group is joined or dropped, spawning through a handle fails with
/// [`GroupSpawnError::Closed`].
///
/// # Example
///
/// ```
/// use staunch::group::TaskGroup;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let found = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let group = TaskGroup::<_, &str, String>::new(rt);
///         let handle = group.handle();
///         group.spawn(async move {
///             // A crawler that found a link starts a sibling for it.
///             handle.spawn(async { Ok("page 2") }).map_err(|e| e.to_string())?;
///             Ok("page 1")
///         }).unwrap();
///         group.join().await.unwrap()
///     }
/// }).unwrap();
/// assert_eq!(found, ["page 1", "page 2"]);
/// ```
#[must_use = "a GroupHandle does nothing unless used to spawn"]
pub struct GroupHandle<S, T, E: fmt::Debug> {
    shared: Arc<Shared<S, T, E>>,
}

impl<S, T, E: fmt::Debug> Clone for GroupHandle<S, T, E> {
    fn clone(&self) -> Self {
        GroupHandle {
            shared: self.shared.clone(),
        }
    }
}

/// Configures a [`TaskGroup`]; from [`TaskGroup::builder`].
#[must_use = "a builder does nothing until build() is called"]
pub struct TaskGroupBuilder<S> {
    spawner: S,
    fail_fast: bool,
    limit: Option<usize>,
    scope: Option<CancelScope>,
    /// The scope given to `in_scope`, whose cancellation `join` reports.
    enclosing: Option<CancelScope>,
    sink: Option<ErrorSink>,
    observers: Observers,
    /// Set with the observers (see `state::tell`).
    tell: Option<Tell>,
}

impl<S: fmt::Debug> fmt::Debug for TaskGroupBuilder<S> {
    // The settings, as `#[derive(Debug)]` printed them before `tell` (a
    // function's address says nothing `observers` does not).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupBuilder")
            .field("spawner", &self.spawner)
            .field("fail_fast", &self.fail_fast)
            .field("limit", &self.limit)
            .field("scope", &self.scope)
            .field("sink", &self.sink)
            .field("observers", &self.observers)
            .finish()
    }
}

impl<S: Spawn> TaskGroupBuilder<S> {
    /// Supervisor mode: a failure does not cancel the siblings.
    pub fn supervisor(mut self) -> Self {
        self.fail_fast = false;
        self
    }

    /// At most `n` children run at once; the others wait (in spawn order,
    /// without blocking the spawner) for a place. Like Go's errgroup `SetLimit`.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// Runs the group inside a child of `scope`: cancelling `scope`, or its
    /// deadline passing, cancels the children.
    pub fn in_scope(mut self, scope: &CancelScope) -> Self {
        self.scope = Some(scope.child());
        self.enclosing = Some(scope.clone());
        self
    }

    /// Where failures nobody will read go (default: the spawner's sink).
    pub fn error_sink(mut self, sink: ErrorSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Observers that receive an [`Event::Cancelled`](crate::observe::Event)
    /// for each cancelled child (named by its name or `#index`) and an
    /// [`Event::Unobserved`](crate::observe::Event) for each failure sent to
    /// the error sink.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        // Taken here, not in `build`, so programs that register no
        // observers do not link the events.
        self.tell = Some(state::tell);
        self
    }

    /// Builds the group.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the limit is zero (no child could ever run).
    pub fn build<T, E: fmt::Debug>(self) -> Result<TaskGroup<S, T, E>, ConfigError> {
        if self.limit == Some(0) {
            return Err(ConfigError::new(
                "limit",
                "a limit of 0 would never run a child; use at least 1 or no limit",
            ));
        }
        let sink = self.sink.unwrap_or_else(|| self.spawner.error_sink());
        let scope = self.scope.unwrap_or_default();
        let mut shared = Shared::new(self.spawner, scope, self.fail_fast, self.limit, sink);
        shared.observers = self.observers;
        shared.tell = self.tell;
        shared.enclosing = self.enclosing;
        Ok(TaskGroup {
            handle: GroupHandle {
                shared: Arc::new(shared),
            },
        })
    }
}

impl<S: Spawn, T, E: fmt::Debug> TaskGroup<S, T, E> {
    /// A fail-fast group on `spawner`, with no limit.
    ///
    /// ```
    /// use staunch::group::TaskGroup;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let sum: u32 = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move {
    ///         let group = TaskGroup::new(rt);
    ///         for i in 1..=3 {
    ///             group.spawn(async move { Ok::<u32, String>(i) }).unwrap();
    ///         }
    ///         group.join().await.unwrap().into_iter().sum()
    ///     }
    /// }).unwrap();
    /// assert_eq!(sum, 6);
    /// ```
    pub fn new(spawner: S) -> Self {
        TaskGroup::builder(spawner)
            .build::<T, E>()
            .expect("the default configuration is valid")
    }

    /// A supervisor group on `spawner`: failures do not cancel siblings;
    /// read every child's result with [`join_all`](TaskGroup::join_all).
    pub fn supervisor(spawner: S) -> Self {
        TaskGroup::builder(spawner)
            .supervisor()
            .build::<T, E>()
            .expect("the default configuration is valid")
    }
}

impl<S: Spawn> TaskGroup<S, (), ()> {
    /// A builder for a group with a limit, a parent scope or a custom sink.
    ///
    /// The children's types are chosen by [`build`](TaskGroupBuilder::build).
    ///
    /// ```
    /// use staunch::group::{ChildError, TaskGroup};
    /// use staunch::runtime::Timer;
    /// use staunch::scope::CancelScope;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let results = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move {
    ///         let request = CancelScope::new().with_timeout(&rt, Duration::from_millis(25));
    ///         let group = TaskGroup::builder(rt.clone())
    ///             .supervisor()
    ///             .limit(2) // at most two downloads at once
    ///             .in_scope(&request)
    ///             .build::<u64, String>()
    ///             .unwrap();
    ///         for n in 1..=3u64 {
    ///             let rt = rt.clone();
    ///             group.spawn(async move {
    ///                 rt.sleep(Duration::from_millis(10 * n)).await;
    ///                 Ok(n)
    ///             }).unwrap();
    ///         }
    ///         group.join_all().await
    ///     }
    /// }).unwrap();
    /// assert_eq!(results[0], Ok(1));
    /// assert_eq!(results[1], Ok(2));
    /// // The third waited for a place, then hit the request's deadline.
    /// assert!(matches!(&results[2], Err(ChildError::Cancelled(_))));
    /// ```
    pub fn builder(spawner: S) -> TaskGroupBuilder<S> {
        TaskGroupBuilder {
            spawner,
            fail_fast: true,
            limit: None,
            scope: None,
            enclosing: None,
            sink: None,
            observers: Observers::new(),
            tell: None,
        }
    }
}

impl<S, T, E: fmt::Debug> TaskGroup<S, T, E> {
    /// A handle children can use to spawn siblings.
    pub fn handle(&self) -> GroupHandle<S, T, E> {
        self.handle.clone()
    }

    /// The scope the children run in: await its
    /// [`cancelled`](CancelScope::cancelled) in a child to clean up, or call
    /// [`cancel_with_grace`](CancelScope::cancel_with_grace) on it to stop
    /// the children gently.
    #[must_use]
    pub fn scope(&self) -> &CancelScope {
        &self.handle.shared.scope
    }

    /// Cancels every child now (reason [`Explicit`](crate::scope::CancelReason::Explicit)).
    pub fn cancel(&self) {
        self.handle.shared.scope.cancel();
    }

    /// Waits for every child, then returns their values in spawn order, or
    /// a [`GroupError`].
    ///
    /// A group cancelled at its own level (its [`cancel`](Self::cancel), or
    /// a deadline on its own scope) with no child failing joins without an
    /// error: the values are those of the children that finished, and
    /// [`join_all`](Self::join_all) tells which were cancelled. This is
    /// trio's `cancelled_caught`: a scope's own cancel is caught at the
    /// scope, while a cancel from an enclosing scope goes on outward, even
    /// when the group was cancelled at its own level first: if the scope
    /// given to [`in_scope`](TaskGroupBuilder::in_scope) is cancelled by the
    /// time `join` returns, `join` returns a [`GroupError`] with that
    /// scope's reason (as a trio nursery re-raises an outer cancel). A
    /// child aborted through its [`ChildHandle`] is the owner's doing too:
    /// alone it makes no error (it is counted in
    /// [`GroupError::cancelled`] when something else does).
    ///
    /// # Errors
    ///
    /// [`GroupError`] if any child failed, panicked or was lost (the first
    /// one, then every other), or if children were cancelled through an
    /// enclosing scope, at shutdown, or by a failing sibling (the
    /// [`reason`](GroupError::reason) says which).
    ///
    /// # Cancel safety
    ///
    /// Dropping the `Join` cancels every child.
    pub fn join(self) -> Join<S, T, E> {
        Join::new(self)
    }

    /// Waits for every child, then returns each child's result in spawn
    /// order. The natural way to read a supervisor group.
    ///
    /// # Cancel safety
    ///
    /// Dropping the `JoinAll` cancels every child.
    pub fn join_all(self) -> JoinAll<S, T, E> {
        JoinAll::new(self)
    }
}

impl<S, T, E> TaskGroup<S, T, E>
where
    S: Spawn + 'static,
    T: MaybeSend + 'static,
    E: fmt::Debug + MaybeSend + 'static,
{
    /// Spawns a child; returns its [`ChildHandle`], which aborts that one
    /// child or awaits its end (dropping it lets the child run on).
    ///
    /// # Errors
    ///
    /// [`GroupSpawnError::Cancelled`] once the group is being cancelled (a
    /// fail-fast failure, or its scope), [`GroupSpawnError::Spawn`] if the
    /// executor refuses the task.
    pub fn spawn<F>(&self, future: F) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.handle.spawn(future)
    }

    /// Spawns a child with a name that appears in errors and cancel reasons.
    ///
    /// # Errors
    ///
    /// As [`spawn`](TaskGroup::spawn).
    pub fn spawn_named<F>(
        &self,
        name: impl Into<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.handle.spawn_named(name, future)
    }
}

impl<S, T, E> TaskGroup<S, T, E>
where
    S: Spawn + LocalSpawn + 'static,
    T: MaybeSend + 'static,
    E: fmt::Debug + MaybeSend + 'static,
{
    /// Spawns a `!Send` child on the current thread (JavaScript promises,
    /// `Rc` state); returns its [`ChildHandle`].
    ///
    /// # Errors
    ///
    /// As [`spawn`](TaskGroup::spawn); [`SpawnError::Unsupported`](crate::runtime::SpawnError)
    /// (inside [`GroupSpawnError::Spawn`]) where the executor has no local tasks.
    pub fn spawn_local<F>(&self, future: F) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: 'static,
    {
        let future = future.into_future();
        self.handle.spawn_local(future)
    }

    /// Like [`spawn_local`](TaskGroup::spawn_local), with a name.
    ///
    /// # Errors
    ///
    /// As [`spawn_local`](TaskGroup::spawn_local).
    pub fn spawn_local_named<F>(
        &self,
        name: impl Into<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: 'static,
    {
        let future = future.into_future();
        self.handle.spawn_local_named(name, future)
    }
}

impl<S, T, E> GroupHandle<S, T, E>
where
    S: Spawn + 'static,
    T: MaybeSend + 'static,
    E: fmt::Debug + MaybeSend + 'static,
{
    fn child_handle(&self, slot: usize, order: usize) -> ChildHandle {
        #[cfg(not(staunch_loom))]
        let control: child_handle::Control = self.shared.clone();
        #[cfg(staunch_loom)]
        let control: child_handle::Control = Box::new(self.shared.clone());
        ChildHandle::new(control, slot, order)
    }

    /// Spawns a child into the group; see [`TaskGroup::spawn`].
    ///
    /// # Errors
    ///
    /// [`GroupSpawnError::Closed`] once the group was joined or dropped;
    /// otherwise as [`TaskGroup::spawn`].
    pub fn spawn<F>(&self, future: F) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.spawn_with(None, future)
    }

    /// Spawns a named child into the group; see [`TaskGroup::spawn_named`].
    ///
    /// # Errors
    ///
    /// As [`GroupHandle::spawn`].
    pub fn spawn_named<F>(
        &self,
        name: impl Into<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.spawn_with(Some(name.into()), future)
    }

    fn spawn_with<F>(
        &self,
        name: Option<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: Future<Output = Result<T, E>> + MaybeSend + 'static,
    {
        let (slot, order) = self.shared.reserve(name, unit_maker::<T>())?;
        let task = child_task(self.shared.clone(), slot, future);
        let spawned = self.shared.spawner.spawn_task(Box::pin(task));
        if let Err(e) = spawned {
            self.shared.reject(slot);
            return Err(e.into());
        }
        Ok(self.child_handle(slot, order))
    }
}

impl<S, T, E> GroupHandle<S, T, E>
where
    S: Spawn + LocalSpawn + 'static,
    T: MaybeSend + 'static,
    E: fmt::Debug + MaybeSend + 'static,
{
    /// Spawns a `!Send` child; see [`TaskGroup::spawn_local`].
    ///
    /// # Errors
    ///
    /// As [`TaskGroup::spawn_local`].
    pub fn spawn_local<F>(&self, future: F) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: 'static,
    {
        let future = future.into_future();
        self.spawn_local_with(None, future)
    }

    /// Spawns a named `!Send` child; see [`TaskGroup::spawn_local_named`].
    ///
    /// # Errors
    ///
    /// As [`TaskGroup::spawn_local`].
    pub fn spawn_local_named<F>(
        &self,
        name: impl Into<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: IntoFuture<Output = Result<T, E>>,
        F::IntoFuture: 'static,
    {
        let future = future.into_future();
        self.spawn_local_with(Some(name.into()), future)
    }

    fn spawn_local_with<F>(
        &self,
        name: Option<StdArc<str>>,
        future: F,
    ) -> Result<ChildHandle, GroupSpawnError>
    where
        F: Future<Output = Result<T, E>> + 'static,
    {
        let (slot, order) = self.shared.reserve(name, unit_maker::<T>())?;
        let task = child_task(self.shared.clone(), slot, future);
        let spawned = self.shared.spawner.spawn_local_task(Box::pin(task));
        if let Err(e) = spawned {
            self.shared.reject(slot);
            return Err(e.into());
        }
        Ok(self.child_handle(slot, order))
    }
}

impl<S, T, E: fmt::Debug> Drop for TaskGroup<S, T, E> {
    fn drop(&mut self) {
        self.handle.shared.abandon();
    }
}

impl<S, T, E: fmt::Debug> fmt::Debug for TaskGroup<S, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("fail_fast", &self.handle.shared.fail_fast)
            .field("scope", &self.handle.shared.scope)
            .finish_non_exhaustive()
    }
}

impl<S, T, E: fmt::Debug> fmt::Debug for GroupHandle<S, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupHandle").finish_non_exhaustive()
    }
}
