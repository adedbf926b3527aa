//! Join handles built on top of fire-and-forget spawning.
//!
//! Invariants (kept under the slot's mutex):
//! - exactly one of {task, executor drop} delivers a result into the slot;
//! - a result is either taken by the handle or, if the handle is gone,
//!   reported to the error sink when it is a failure. Never both, never neither.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::FutureExt;
use futures::future::{AbortHandle as RawAbortHandle, Abortable};
use thiserror::Error;

use super::{ErrorSink, UnobservedError, UnobservedKind};

/// What a task's output says about failure, so that a failed task whose handle
/// was dropped can be reported instead of lost.
///
/// Implemented for `()` (never a failure) and for `Result<T, E>` with
/// `E: Debug` (a failure when `Err`, unless the error is a cancellation:
/// [`Cancelled`](crate::scope::Cancelled), as a detached
/// [`run_owned`](crate::scope::CancelScope::run_owned) whose scope was
/// cancelled returns, or an aborted [`JoinError`]; cancellation is never a
/// failure in staunch, so it is not reported). To spawn a task with
/// another output, return it inside `Ok`. Only the outer `Result` is looked
/// at: spawn a scope's [`call`](crate::scope::CancelScope::call) rather
/// than `run_owned(fallible)` so that the operation's own error is the
/// task's.
///
/// ```
/// use staunch::runtime::Outcome;
/// use staunch::scope::{CancelReason, Cancelled};
///
/// assert_eq!(Err::<(), _>("disk full").failure().as_deref(), Some("\"disk full\""));
/// let cancelled = Cancelled { reason: CancelReason::Shutdown };
/// assert_eq!(Err::<(), _>(cancelled).failure(), None);
/// assert_eq!(Ok::<_, String>(1).failure(), None);
/// ```
pub trait Outcome {
    /// A description of the failure, or `None` if this output is a success
    /// (or a cancellation).
    fn failure(&self) -> Option<String>;
}

impl Outcome for () {
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T, E: fmt::Debug + 'static> Outcome for Result<T, E> {
    fn failure(&self) -> Option<String> {
        let error = self.as_ref().err()?;
        let any: &dyn Any = error;
        let cancelled = any.is::<crate::scope::Cancelled>()
            || any
                .downcast_ref::<JoinError>()
                .is_some_and(JoinError::is_aborted);
        (!cancelled).then(|| format!("{error:?}"))
    }
}

/// A task panicked; carries the panic message.
///
/// Only produced on targets that unwind. On `wasm32-unknown-unknown` a panic
/// aborts the whole module, so it is never seen as a value there.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the task panicked: {message}")]
pub struct Panicked {
    /// The panic message, or a placeholder when the payload was not a string.
    pub message: String,
}

impl Panicked {
    /// Builds a `Panicked` from a panic payload as `catch_unwind` returns it.
    #[must_use]
    pub fn from_payload(payload: &(dyn Any + Send)) -> Panicked {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<a panic payload that is not a string>".to_owned()
        };
        Panicked { message }
    }
}

/// Why awaiting a [`JoinHandle`] gave no output.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted through its handle before it finished.
    #[error("the task was aborted before it finished")]
    Aborted,
    /// The task panicked.
    #[error(transparent)]
    Panicked(#[from] Panicked),
    /// The executor dropped the task before it finished, usually because it
    /// was shut down.
    #[error(
        "the executor dropped the task before it finished; keep the executor running until its tasks are joined"
    )]
    Lost,
    /// The handle was polled again after it had already returned the output.
    #[error("the task's output was already taken; a join handle yields its output once")]
    AlreadyJoined,
}

impl JoinError {
    /// Whether the task was aborted (cancelled on purpose).
    #[must_use]
    pub fn is_aborted(&self) -> bool {
        matches!(self, JoinError::Aborted)
    }

    /// Whether the task panicked.
    #[must_use]
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }
}

enum State<T> {
    Running {
        waker: Option<Waker>,
        handle_alive: bool,
    },
    Done(Result<T, JoinError>),
    Taken,
}

struct Slot<T> {
    state: Mutex<State<T>>,
    name: Option<Arc<str>>,
    sink: ErrorSink,
    describe: fn(&T) -> Option<String>,
}

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A poisoned lock only means a panic elsewhere while holding it; the
        // state itself is always consistent, so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn report(&self, result: &Result<T, JoinError>) {
        let kind = match result {
            Ok(value) => match (self.describe)(value) {
                Some(text) => UnobservedKind::Failed(text),
                None => return,
            },
            Err(JoinError::Panicked(p)) => UnobservedKind::Panicked(p.message.clone()),
            Err(JoinError::Lost) => UnobservedKind::Lost,
            Err(JoinError::Aborted | JoinError::AlreadyJoined) => return,
        };
        self.sink.report(UnobservedError {
            task: self.name.clone(),
            kind,
        });
    }

    fn deliver(&self, result: Result<T, JoinError>) {
        let mut state = self.lock();
        match &mut *state {
            State::Running {
                handle_alive: true,
                waker,
            } => {
                let waker = waker.take();
                *state = State::Done(result);
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
            }
            State::Running {
                handle_alive: false,
                ..
            } => {
                *state = State::Taken;
                drop(state);
                self.report(&result);
            }
            State::Done(_) | State::Taken => {}
        }
    }
}

/// Delivers `Lost` if the task is dropped before it delivered a result.
struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completer<T> {
    fn complete(mut self, result: Result<T, JoinError>) {
        if let Some(slot) = self.slot.take() {
            slot.deliver(result);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.deliver(Err(JoinError::Lost));
        }
    }
}

/// Aborts a task from anywhere; cheap to clone, does not keep the output.
///
/// Aborting a task that already finished does nothing.
#[derive(Clone, Debug)]
pub struct AbortHandle(RawAbortHandle);

impl AbortHandle {
    /// Asks the task to stop: its future is dropped the next time the
    /// executor looks at it (promptly: the abort wakes the task).
    pub fn abort(&self) {
        self.0.abort();
    }

    /// Whether [`abort`](AbortHandle::abort) was called.
    #[must_use]
    pub fn is_aborted(&self) -> bool {
        self.0.is_aborted()
    }
}

/// An owned permission to await a spawned task's output, or abort it.
///
/// Awaiting gives `Ok(output)`, or a [`JoinError`] if the task was aborted,
/// panicked or was dropped by its executor. Dropping the handle detaches the
/// task: it keeps running, and if it then fails (its output's
/// [`Outcome::failure`] is `Some`, it panics, or it is lost) the failure goes
/// to the runtime's [`ErrorSink`], never nowhere.
///
/// # Example
///
/// ```
/// use staunch::runtime::SpawnExt;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let out = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let handle = rt.spawn(async { Ok::<_, String>(6 * 7) }).unwrap();
///         handle.await
///     }
/// });
/// assert_eq!(out.unwrap(), Ok(Ok(42)));
/// ```
///
/// # Cancel safety
///
/// Dropping the `JoinHandle` future before it completes loses nothing: the
/// task goes on, and its failure, if any, reaches the error sink.
#[must_use = "a dropped JoinHandle detaches its task; await it to see the task's result or error"]
pub struct JoinHandle<T> {
    slot: Arc<Slot<T>>,
    abort: AbortHandle,
}

impl<T> JoinHandle<T> {
    /// Aborts the task. Does nothing if it already finished. Awaiting the
    /// handle afterwards gives [`JoinError::Aborted`], or the output if the
    /// task finished before the abort took effect.
    ///
    /// The task's future is dropped at the task's next poll (promptly: the
    /// abort wakes it), shielded runs inside it included, as tokio's
    /// `abort` does. To give cleanup in a
    /// [`shielded`](crate::scope::CancelScope::shielded) scope time to
    /// finish, cancel a scope the task runs in instead, or spawn it in a
    /// [`TaskGroup`](crate::group::TaskGroup), whose
    /// [`ChildHandle::abort`](crate::group::ChildHandle::abort) lets
    /// shields finish first.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// A cloneable handle that can abort the task without owning its output.
    #[must_use]
    pub fn abort_handle(&self) -> AbortHandle {
        self.abort.clone()
    }

    /// Whether the task has finished (with any result).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        !matches!(*self.slot.lock(), State::Running { .. })
    }

    /// The name the task was spawned with, if any.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.slot.name.as_deref()
    }

    /// The executor refused the task: it never existed, and the caller
    /// gets the refusal as `spawn`'s error, so nothing about it (such as
    /// the `Lost` its dropped task delivered) reaches the error sink.
    pub(crate) fn refused(self) {
        *self.slot.lock() = State::Taken;
    }
}

impl<T, E> JoinHandle<Result<T, E>> {
    /// Awaits the task with one flat result: the task's own error and how
    /// the task ended share one [`staunch::Error`](crate::Error), the shape
    /// every guard returns.
    ///
    /// | the task | gives |
    /// | --- | --- |
    /// | returned `Ok(v)` | `Ok(v)` |
    /// | returned `Err(e)` | [`Error::Inner(e)`](crate::Error::Inner) |
    /// | panicked | [`Error::Panicked`](crate::Error::Panicked) |
    /// | was aborted through its handle | [`Error::Cancelled`](crate::Error::Cancelled), reason [`Aborted`](crate::scope::CancelReason::Aborted) |
    /// | was dropped by its executor | [`Error::Cancelled`](crate::Error::Cancelled), reason [`Shutdown`](crate::scope::CancelReason::Shutdown) |
    ///
    /// # Errors
    ///
    /// As in the table.
    ///
    /// # Cancel safety
    ///
    /// As for awaiting the handle: dropping the returned future detaches
    /// the task, and a failure it then has goes to the error sink.
    ///
    /// ```
    /// use staunch::runtime::SpawnExt;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let out = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move { rt.spawn(async { Err::<u32, _>("refused") }).unwrap().flatten().await }
    /// });
    /// assert_eq!(out.unwrap().unwrap_err().into_inner(), Some("refused"));
    /// ```
    pub fn flatten(self) -> crate::Guarded<impl Future<Output = Result<T, crate::Error<E>>>> {
        crate::Guarded::new(async move {
            match self.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(crate::Error::Inner(error)),
                Err(ended) => Err(ended.into()),
            }
        })
    }
}

/// How a task ended without its output, in staunch's one error type: a task
/// that did not finish was cancelled (aborted through its handle, or
/// dropped by its executor: [`CancelReason::Shutdown`](crate::scope::CancelReason::Shutdown))
/// or it panicked. The same mapping turns a group child's
/// [`ChildError`](crate::group::ChildError) into an [`Error`](crate::Error).
///
/// | `JoinError` | `Error` |
/// | --- | --- |
/// | `Aborted` | `Cancelled`, reason `Aborted` |
/// | `Panicked(p)` | `Panicked(p)` |
/// | `Lost` | `Cancelled`, reason `Shutdown` |
/// | `AlreadyJoined` | `Cancelled`, reason `Explicit` with a message saying so |
impl<E> From<JoinError> for crate::Error<E> {
    fn from(ended: JoinError) -> Self {
        use crate::scope::{CancelReason, Cancelled};
        let reason = match ended {
            JoinError::Panicked(panicked) => return crate::Error::Panicked(panicked),
            JoinError::Aborted => CancelReason::Aborted,
            JoinError::Lost => CancelReason::Shutdown,
            JoinError::AlreadyJoined => CancelReason::Explicit {
                message: Some("the task's output was already taken by an earlier await".into()),
            },
        };
        crate::Error::Cancelled(Cancelled { reason })
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.lock();
        match &mut *state {
            State::Running { waker, .. } => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Done(_) => match std::mem::replace(&mut *state, State::Taken) {
                State::Done(result) => Poll::Ready(result),
                _ => Poll::Ready(Err(JoinError::AlreadyJoined)),
            },
            State::Taken => Poll::Ready(Err(JoinError::AlreadyJoined)),
        }
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        let mut state = self.slot.lock();
        match &mut *state {
            State::Running {
                handle_alive,
                waker,
            } => {
                *handle_alive = false;
                *waker = None;
            }
            State::Done(_) => {
                if let State::Done(result) = std::mem::replace(&mut *state, State::Taken) {
                    drop(state);
                    self.slot.report(&result);
                }
            }
            State::Taken => {}
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("name", &self.slot.name)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Wraps `future` so that it delivers its output, panic or abort into a new
/// handle. The returned task is what the executor runs.
pub(crate) fn wrap_task<F>(
    future: F,
    name: Option<Arc<str>>,
    sink: ErrorSink,
) -> (impl Future<Output = ()> + 'static, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: Outcome + 'static,
{
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Running {
            waker: None,
            handle_alive: true,
        }),
        name,
        sink,
        describe: <F::Output as Outcome>::failure,
    });
    let (raw_abort, registration) = RawAbortHandle::new_pair();
    let completer = Completer {
        slot: Some(slot.clone()),
    };
    let task = async move {
        let guarded = Abortable::new(AssertUnwindSafe(future).catch_unwind(), registration);
        let result = match guarded.await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(payload)) => Err(JoinError::Panicked(Panicked::from_payload(&*payload))),
            Err(_aborted) => Err(JoinError::Aborted),
        };
        completer.complete(result);
    };
    (
        task,
        JoinHandle {
            slot,
            abort: AbortHandle(raw_abort),
        },
    )
}

/// Wraps a blocking closure the same way as [`wrap_task`]. An abort before the
/// closure starts skips it; a closure already running cannot be stopped.
pub(crate) fn wrap_blocking<F, T>(
    work: F,
    name: Option<Arc<str>>,
    sink: ErrorSink,
) -> (impl FnOnce() + Send + 'static, JoinHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Outcome + Send + 'static,
{
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Running {
            waker: None,
            handle_alive: true,
        }),
        name,
        sink,
        describe: <T as Outcome>::failure,
    });
    let (raw_abort, _registration) = RawAbortHandle::new_pair();
    let abort = AbortHandle(raw_abort);
    let completer = Completer {
        slot: Some(slot.clone()),
    };
    let seen_abort = abort.clone();
    let job = move || {
        let result = if seen_abort.is_aborted() {
            Err(JoinError::Aborted)
        } else {
            std::panic::catch_unwind(AssertUnwindSafe(work))
                .map_err(|payload| JoinError::Panicked(Panicked::from_payload(&*payload)))
        };
        completer.complete(result);
    };
    (job, JoinHandle { slot, abort })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ErrorSink, UnobservedKind};
    use std::sync::Mutex as StdMutex;

    fn collecting() -> (ErrorSink, Arc<StdMutex<Vec<UnobservedError>>>) {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let sink = ErrorSink::new({
            let seen = seen.clone();
            move |e| seen.lock().unwrap().push(e)
        });
        (sink, seen)
    }

    #[test]
    fn a_task_dropped_by_its_executor_reports_lost_to_the_sink() {
        let (sink, seen) = collecting();
        let (task, handle) = wrap_task(
            futures::future::pending::<()>(),
            Some("orphan".into()),
            sink,
        );
        drop(handle);
        drop(task); // the executor drops the task without finishing it
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, UnobservedKind::Lost);
        assert_eq!(seen[0].task.as_deref(), Some("orphan"));
    }

    #[test]
    fn an_aborted_unobserved_task_is_not_reported() {
        let (sink, seen) = collecting();
        let (task, handle) = wrap_task(futures::future::pending::<()>(), None, sink);
        handle.abort();
        drop(handle);
        futures::executor::block_on(task);
        assert!(seen.lock().unwrap().is_empty());
    }

    #[test]
    fn a_panic_in_an_unobserved_task_reaches_the_sink() {
        let (sink, seen) = collecting();
        let (task, handle) = wrap_task(
            async {
                if std::hint::black_box(true) {
                    panic!("kaboom");
                }
            },
            None,
            sink,
        );
        drop(handle);
        futures::executor::block_on(task);
        assert_eq!(
            seen.lock().unwrap()[0].kind,
            UnobservedKind::Panicked("kaboom".into())
        );
    }

    #[test]
    fn aborting_a_task_drops_it_at_once_even_inside_a_shielded_run() {
        use crate::runtime::{SpawnExt, Timer};
        use crate::scope::CancelScope;
        use crate::testing::VirtualRuntime;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Duration;

        let rt = VirtualRuntime::new();
        let cleaned = Arc::new(AtomicBool::new(false));
        let (out, at) = rt
            .block_on({
                let (rt, cleaned) = (rt.clone(), cleaned.clone());
                async move {
                    let task = rt
                        .spawn({
                            let rt = rt.clone();
                            async move {
                                let cleanup = CancelScope::new().shielded();
                                let _ = cleanup
                                    .run(async {
                                        rt.sleep(Duration::from_millis(10)).await;
                                        cleaned.store(true, Ordering::SeqCst);
                                    })
                                    .await;
                                Ok::<_, String>(())
                            }
                        })
                        .unwrap();
                    rt.sleep(Duration::from_millis(1)).await;
                    task.abort();
                    (task.await, rt.now())
                }
            })
            .unwrap();
        assert_eq!(out, Err(JoinError::Aborted));
        assert!(
            !cleaned.load(Ordering::SeqCst),
            "abort waited for the shield"
        );
        assert_eq!(at.since_origin(), Duration::from_millis(1));
    }

    #[test]
    fn a_blocking_job_aborted_before_it_starts_never_runs() {
        let (sink, _seen) = collecting();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (job, handle) = wrap_blocking(
            {
                let ran = ran.clone();
                move || {
                    ran.store(true, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, String>(())
                }
            },
            None,
            sink,
        );
        handle.abort();
        job();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(futures::executor::block_on(handle), Err(JoinError::Aborted));
    }
}
