//! Graceful shutdown: a root that tracks detached tasks.
//!
//! Invariants (under `BgShared::state`'s mutex):
//! - `running` holds exactly the tasks spawned and not yet ended; a task
//!   leaves it once, through its guard (finished, panicked, cancelled or
//!   dropped by the executor);
//! - a failure is kept in `errors` until read (`take_errors` or the
//!   shutdown report) while the root is `Open` or `ShuttingDown`; once
//!   `Done` (shut down, or dropped) it goes to the error sink instead;
//! - `errors` never holds more than `cap` failures: a failure that arrives
//!   when it is full goes to the error sink and is counted in `dropped`, so
//!   memory is bounded by the cap, not by uptime, and no failure is lost;
//! - `spawning` lists the tasks being handed to the executor right now: a
//!   task of theirs dropped before its first poll may have been refused
//!   (then `spawn` returns the error and nothing else reports it), so its
//!   end is parked there until the executor answered, and only a task the
//!   executor accepted counts as lost.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::mem;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::FutureExt;

use crate::runtime::{
    ErrorSink, MaybeSend, Panicked, Spawn, Timer, UnobservedError, UnobservedKind,
};
use crate::scope::{CancelReason, CancelScope, GraceReport};
use crate::sync::{Arc, Mutex, lock};

use super::error::{ChildError, GroupSpawnError, TaskFailure, label};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    ShuttingDown,
    Done,
}

struct BgState<E> {
    phase: Phase,
    next: usize,
    running: HashMap<usize, Option<StdArc<str>>>,
    errors: Vec<TaskFailure<E>>,
    cap: usize,
    dropped: usize,
    idle: Vec<Waker>,
    /// Tasks being spawned: `Some(name)` once one was dropped unpolled.
    spawning: Vec<(usize, Option<Option<StdArc<str>>>)>,
}

/// How many unread failures a [`Background`] keeps by default; see
/// [`Background::with_error_cap`].
pub const DEFAULT_ERROR_CAP: usize = 1024;

struct BgShared<S, E> {
    spawner: S,
    scope: CancelScope,
    sink: ErrorSink,
    state: Mutex<BgState<E>>,
}

/// What [`Background::shutdown`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport<E> {
    /// The grace period: the tasks that ended within it and those still
    /// running when it ran out, which were then dropped (by name, or `#n`
    /// in spawn order when unnamed), and how long the shutdown took. The
    /// same report as [`CancelScope::cancel_with_grace`]'s.
    pub grace: GraceReport,
    /// Every failure that nobody had read, in the order they happened (at
    /// most the root's error cap).
    pub errors: Vec<TaskFailure<E>>,
    /// How many failures arrived while the kept ones were at the cap; each
    /// of them went to the error sink instead (since the root was built).
    pub dropped_errors: usize,
}

impl<E> ShutdownReport<E> {
    /// Whether every task ended within the grace period and none failed.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.grace.is_clean() && self.errors.is_empty() && self.dropped_errors == 0
    }
}

/// A root for detached, long-running tasks (servers, pollers, flushers) that
/// can be shut down gracefully.
///
/// [`spawn`](Background::spawn) starts a task in the root's scope and
/// forgets about its success; a failure is kept until read.
/// [`shutdown`](Background::shutdown) cancels the tasks cooperatively
/// ([`CancelReason::Shutdown`]: code awaiting
/// [`scope().cancelled()`](CancelScope::cancelled) sees it), waits up to a
/// grace period, drops what is still running, and reports those tasks and
/// every failure nobody read. Dropping the root without shutting it down
/// cancels the tasks at once and sends unread failures to the error sink.
///
/// # Example
///
/// ```
/// use staunch::group::Background;
/// use staunch::runtime::Timer;
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let report = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let root = Background::<_, String>::new(rt.clone());
///         let (scope, sleeper) = (root.scope().clone(), rt.clone());
///         root.spawn_named("flusher", async move {
///             scope.cancelled().await; // asked to stop: flush, then return
///             sleeper.sleep(Duration::from_millis(5)).await;
///             Ok(())
///         }).unwrap();
///         let sleeper = rt.clone();
///         root.spawn_named("stuck", async move {
///             sleeper.sleep(Duration::from_secs(3600)).await;
///             Ok(())
///         }).unwrap();
///         rt.sleep(Duration::from_millis(1)).await;
///         root.shutdown(&rt, Duration::from_millis(50)).await
///     }
/// }).unwrap();
/// assert_eq!(report.grace.finished_names, vec!["flusher".into()]);
/// assert_eq!(report.grace.force_dropped_names, vec!["stuck".into()]);
/// assert_eq!(report.grace.elapsed, Duration::from_millis(50));
/// assert!(report.errors.is_empty());
/// ```
///
/// # Cancel safety
///
/// Dropping the `shutdown` future leaves the tasks signalled but running;
/// dropping the root then drops them.
#[must_use = "dropping a Background cancels its tasks at once"]
pub struct Background<S, E: fmt::Debug> {
    shared: Arc<BgShared<S, E>>,
}

impl<S: Spawn + 'static, E: fmt::Debug + MaybeSend + 'static> Background<S, E> {
    /// A root that spawns on `spawner` and reports to its error sink.
    pub fn new(spawner: S) -> Self {
        let sink = spawner.error_sink();
        Background {
            shared: Arc::new(BgShared {
                spawner,
                scope: CancelScope::new(),
                sink,
                state: Mutex::new(BgState {
                    phase: Phase::Open,
                    next: 0,
                    running: HashMap::new(),
                    errors: Vec::new(),
                    cap: DEFAULT_ERROR_CAP,
                    dropped: 0,
                    idle: Vec::new(),
                    spawning: Vec::new(),
                }),
            }),
        }
    }

    /// Keeps at most `cap` unread failures (default
    /// [`DEFAULT_ERROR_CAP`], 1024). A failure that arrives while `cap` are
    /// kept is sent to the error sink instead (an
    /// [`UnobservedError`](crate::runtime::UnobservedError)) and counted in
    /// [`dropped_errors`](Background::dropped_errors) and the shutdown
    /// report, so a root that runs for months holds bounded memory and
    /// still loses no failure. A cap of 0 sends every failure to the sink.
    ///
    /// ```
    /// use staunch::group::Background;
    /// use staunch::runtime::ErrorSink;
    /// use staunch::testing::VirtualRuntime;
    /// use std::sync::{Arc, Mutex};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = ErrorSink::new({
    ///     let seen = seen.clone();
    ///     move |e| seen.lock().unwrap().push(e)
    /// });
    /// let rt = VirtualRuntime::new().with_error_sink(sink);
    /// let report = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move {
    ///         let root = Background::<_, u32>::new(rt.clone()).with_error_cap(2);
    ///         for i in 0..5 {
    ///             root.spawn(async move { Err(i) }).unwrap();
    ///         }
    ///         staunch::runtime::yield_now().await; // let the five run and fail
    ///         root.shutdown(&rt, std::time::Duration::from_secs(1)).await
    ///     }
    /// }).unwrap();
    /// assert_eq!(report.errors.len(), 2); // the first two are kept
    /// assert_eq!(report.dropped_errors, 3); // the other three went to the sink
    /// assert_eq!(seen.lock().unwrap().len(), 3);
    /// ```
    pub fn with_error_cap(self, cap: usize) -> Self {
        let dropped = {
            let mut state = lock(&self.shared.state);
            state.cap = cap;
            let excess = state.errors.len().saturating_sub(cap);
            state.dropped += excess;
            let keep = state.errors.len() - excess;
            state.errors.split_off(keep)
        };
        for f in dropped {
            if let Some(r) = unobserved(&f) {
                self.shared.sink.report(r);
            }
        }
        self
    }

    /// Starts a detached task.
    ///
    /// # Errors
    ///
    /// [`GroupSpawnError::Closed`] once shutdown started;
    /// [`GroupSpawnError::Spawn`] if the executor refuses the task.
    pub fn spawn<F>(&self, future: F) -> Result<(), GroupSpawnError>
    where
        F: IntoFuture<Output = Result<(), E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.spawn_with(None, future)
    }

    /// Starts a named detached task; the name appears in the report.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Background::spawn).
    pub fn spawn_named<F>(
        &self,
        name: impl Into<StdArc<str>>,
        future: F,
    ) -> Result<(), GroupSpawnError>
    where
        F: IntoFuture<Output = Result<(), E>>,
        F::IntoFuture: MaybeSend + 'static,
    {
        let future = future.into_future();
        self.spawn_with(Some(name.into()), future)
    }

    fn spawn_with<F>(&self, name: Option<StdArc<str>>, future: F) -> Result<(), GroupSpawnError>
    where
        F: Future<Output = Result<(), E>> + MaybeSend + 'static,
    {
        let index = {
            let mut state = lock(&self.shared.state);
            if state.phase != Phase::Open {
                return Err(GroupSpawnError::Closed);
            }
            let index = state.next;
            state.next += 1;
            state.running.insert(index, name);
            state.spawning.push((index, None));
            index
        };
        let guard = Guard {
            shared: self.shared.clone(),
            index,
            result: Err(ChildError::Lost),
            started: false,
        };
        let run = self.shared.scope.clone().run_owned(future);
        let task = async move {
            let mut guard = guard;
            guard.started = true;
            guard.finish(match AssertUnwindSafe(run).catch_unwind().await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(ChildError::Failed(e)),
                Ok(Err(c)) => Err(ChildError::Cancelled(c)),
                Err(payload) => Err(ChildError::Panicked(Panicked::from_payload(&*payload))),
            });
        };
        let spawned = self.shared.spawner.spawn_task(Box::pin(task));
        let report = {
            let mut state = lock(&self.shared.state);
            let at = state
                .spawning
                .iter()
                .position(|(i, _)| *i == index)
                .expect("a task being spawned is listed");
            match (state.spawning.swap_remove(at).1, &spawned) {
                // Accepted, then dropped unpolled (its executor is shutting
                // down): lost, as any task the executor drops.
                (Some(name), Ok(())) => record(&mut state, index, name, ChildError::Lost),
                // Refused: the task never existed; `spawn` says so.
                _ => None,
            }
        };
        if let Some(r) = report {
            self.shared.sink.report(r);
        }
        spawned.map_err(GroupSpawnError::from)
    }
}

impl<S, E: fmt::Debug> Background<S, E> {
    /// The scope the tasks run in; cooperative tasks await its
    /// [`cancelled`](CancelScope::cancelled) to learn that shutdown began.
    #[must_use]
    pub fn scope(&self) -> &CancelScope {
        &self.shared.scope
    }

    /// How many tasks are running.
    #[must_use]
    pub fn running(&self) -> usize {
        lock(&self.shared.state).running.len()
    }

    /// How many failures went to the error sink because the kept ones were
    /// at the cap (see [`with_error_cap`](Background::with_error_cap)).
    #[must_use]
    pub fn dropped_errors(&self) -> usize {
        lock(&self.shared.state).dropped
    }

    /// Takes the failures so far (they are then not in the shutdown report).
    pub fn take_errors(&self) -> Vec<TaskFailure<E>> {
        mem::take(&mut lock(&self.shared.state).errors)
    }

    /// Shuts down: refuses new tasks, cancels the running ones with
    /// [`CancelReason::Shutdown`] (cooperatively: their futures keep running
    /// for now), waits up to `grace` on `timer` for them to end, then drops
    /// what remains. Completes once every task is gone.
    ///
    /// Call it once; a second call reports nothing new.
    pub async fn shutdown<T: Timer>(&self, timer: &T, grace: Duration) -> ShutdownReport<E> {
        let start = timer.now();
        let signalled = {
            let mut state = lock(&self.shared.state);
            state.phase = Phase::ShuttingDown;
            running_labels(&state)
        };
        self.shared.scope.signal(CancelReason::Shutdown);
        {
            let idle = pin!(Idle(&self.shared));
            let sleep = pin!(timer.sleep(grace));
            futures::future::select(idle, sleep).await;
        }
        // No task starts once shutting down, so the ones still running are
        // a subset of those signalled.
        let still_running = running_labels(&lock(&self.shared.state));
        self.shared.scope.cancel_with(CancelReason::Shutdown);
        Idle(&self.shared).await;
        let finished_names: Vec<StdArc<str>> = signalled
            .into_iter()
            .filter(|(i, _)| still_running.binary_search_by_key(i, |(j, _)| *j).is_err())
            .map(|(_, n)| n)
            .collect();
        let force_dropped_names: Vec<StdArc<str>> =
            still_running.into_iter().map(|(_, n)| n).collect();
        let grace = GraceReport {
            finished: finished_names.len(),
            force_dropped: force_dropped_names.len(),
            finished_names,
            force_dropped_names,
            elapsed: timer.now().saturating_duration_since(start),
        };
        let mut state = lock(&self.shared.state);
        state.phase = Phase::Done;
        ShutdownReport {
            grace,
            errors: mem::take(&mut state.errors),
            dropped_errors: state.dropped,
        }
    }
}

impl<S, E: fmt::Debug> Drop for Background<S, E> {
    fn drop(&mut self) {
        let errors = {
            let mut state = lock(&self.shared.state);
            state.phase = Phase::Done;
            mem::take(&mut state.errors)
        };
        self.shared
            .scope
            .cancel_with_message("the background root was dropped without a shutdown");
        for f in errors {
            if let Some(r) = unobserved(&f) {
                self.shared.sink.report(r);
            }
        }
    }
}

impl<S, E: fmt::Debug> fmt::Debug for Background<S, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Background")
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

/// The running tasks' labels, in spawn order.
fn running_labels<E>(state: &BgState<E>) -> Vec<(usize, StdArc<str>)> {
    let mut names: Vec<(usize, StdArc<str>)> = state
        .running
        .iter()
        .map(|(i, n)| (*i, StdArc::from(label(n.as_deref(), *i))))
        .collect();
    names.sort_by_key(|(i, _)| *i);
    names
}

fn unobserved<E: fmt::Debug>(f: &TaskFailure<E>) -> Option<UnobservedError> {
    let kind = match &f.error {
        ChildError::Failed(e) => UnobservedKind::Failed(format!("{e:?}")),
        ChildError::Panicked(p) => UnobservedKind::Panicked(p.message.clone()),
        ChildError::Lost => UnobservedKind::Lost,
        ChildError::Cancelled(_) => return None,
    };
    Some(UnobservedError {
        task: f.name.clone(),
        kind,
    })
}

/// Records how a task ended, even if the executor drops it.
struct Guard<S, E: fmt::Debug> {
    shared: Arc<BgShared<S, E>>,
    index: usize,
    result: Result<(), ChildError<E>>,
    /// The task was polled: an executor that refuses a task never polls it.
    started: bool,
}

/// Keeps a task's failure for the report, or returns what to send to the
/// error sink (after shutdown, or with the kept failures at the cap).
fn record<E: fmt::Debug>(
    state: &mut BgState<E>,
    index: usize,
    name: Option<StdArc<str>>,
    error: ChildError<E>,
) -> Option<UnobservedError> {
    if error.is_cancelled() {
        return None;
    }
    let failure = TaskFailure { index, name, error };
    if state.phase == Phase::Done {
        unobserved(&failure)
    } else if state.errors.len() >= state.cap {
        state.dropped += 1;
        unobserved(&failure)
    } else {
        state.errors.push(failure);
        None
    }
}

impl<S, E: fmt::Debug> Guard<S, E> {
    fn finish(mut self, result: Result<(), ChildError<E>>) {
        self.result = result;
    }
}

impl<S, E: fmt::Debug> Drop for Guard<S, E> {
    fn drop(&mut self) {
        let result = mem::replace(&mut self.result, Ok(()));
        let (wakers, report) = {
            let mut state = lock(&self.shared.state);
            let name = state.running.remove(&self.index).flatten();
            let spawning = state.spawning.iter_mut().find(|(i, _)| *i == self.index);
            let report = match (result, spawning) {
                // Dropped unpolled while its executor is still deciding:
                // `spawn_with` tells a refusal from a loss.
                (Err(_), Some((_, parked))) if !self.started => {
                    *parked = Some(name);
                    None
                }
                (Err(error), _) => record(&mut state, self.index, name, error),
                (Ok(()), _) => None,
            };
            let wakers = if state.running.is_empty() {
                mem::take(&mut state.idle)
            } else {
                Vec::new()
            };
            (wakers, report)
        };
        if let Some(r) = report {
            self.shared.sink.report(r);
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Ready once no task is running.
struct Idle<'a, S, E>(&'a BgShared<S, E>);

impl<S, E> Future for Idle<'_, S, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.0.state);
        if state.running.is_empty() {
            return Poll::Ready(());
        }
        if !state.idle.iter().any(|w| w.will_wake(cx.waker())) {
            state.idle.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
