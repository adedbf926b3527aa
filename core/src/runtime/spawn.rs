//! The spawn half of the runtime seam: fire-and-forget traits adapters implement.

use thiserror::Error;

use super::{BlockingTask, BoxTask, ErrorSink, LocalBoxTask, MaybeSend, MaybeSync};

/// Starts a task on an executor, fire and forget.
///
/// This is all an adapter provides; staunch builds [`JoinHandle`]s, abort,
/// panic capture and result delivery on top of it (see [`SpawnExt`]), so every
/// runtime behaves the same. On native targets the task is `Send`; on `wasm32`
/// it need not be (see [`MaybeSend`]).
///
/// [`JoinHandle`]: super::JoinHandle
/// [`SpawnExt`]: super::SpawnExt
///
/// # Errors
///
/// [`SpawnError::Shutdown`] when the executor no longer accepts tasks.
pub trait Spawn: MaybeSend + MaybeSync {
    /// Starts `task`. The executor polls it to completion or drops it.
    fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError>;

    /// Where failures of tasks whose handles were dropped unobserved go.
    /// The default prints them (stderr natively, the console on wasm).
    fn error_sink(&self) -> ErrorSink {
        ErrorSink::default()
    }
}

/// Starts a task that need not be `Send` on the current thread, fire and forget.
///
/// This is how `!Send` futures (JavaScript promises, `Rc` state) run in a
/// task group. See [`Spawn`] for the contract.
///
/// # Errors
///
/// [`SpawnError::Shutdown`] when the executor no longer accepts tasks;
/// [`SpawnError::Unsupported`] when this executor cannot run local tasks
/// from the calling thread.
pub trait LocalSpawn {
    /// Starts `task` on the current thread's executor.
    fn spawn_local_task(&self, task: LocalBoxTask) -> Result<(), SpawnError>;

    /// Where failures of tasks whose handles were dropped unobserved go.
    fn local_error_sink(&self) -> ErrorSink {
        ErrorSink::default()
    }
}

/// Runs a blocking closure on a thread where blocking is allowed.
///
/// # Errors
///
/// [`SpawnError::Unsupported`] where there are no threads (the browser).
pub trait SpawnBlocking: MaybeSend + MaybeSync {
    /// Runs `work` on a blocking-friendly thread.
    fn spawn_blocking_task(&self, work: BlockingTask) -> Result<(), SpawnError>;
}

/// Why a task could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The executor has shut down and accepts no more tasks.
    #[error("the executor has shut down and accepts no more tasks; spawn before shutting it down")]
    Shutdown,
    /// This runtime cannot do what was asked.
    #[error("{what} is not supported here: {why}")]
    Unsupported {
        /// What was asked for, e.g. "spawn_blocking".
        what: &'static str,
        /// Why it cannot be done and what to do instead.
        why: &'static str,
    },
}
