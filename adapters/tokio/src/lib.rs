//! # staunch-tokio: run staunch on tokio
//!
//! [`Tokio`] is a runtime value for staunch: it sleeps with
//! `tokio::time::sleep` and reads tokio's clock (so tokio's paused time,
//! `tokio::time::pause`, works), spawns on a [`Handle`] of a current-thread or
//! multi-thread runtime, and runs blocking work with `spawn_blocking`.
//! [`TokioLocal`] spawns `!Send` tasks on a [`LocalSet`].
//!
//! ```
//! use staunch::runtime::{SpawnExt, Timer};
//! use staunch_tokio::Tokio;
//! use std::time::Duration;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! let out = runtime.block_on(async {
//!     let rt = Tokio::current().expect("inside a tokio runtime");
//!     let task = rt.spawn({
//!         let rt = rt.clone();
//!         async move {
//!             rt.sleep(Duration::from_millis(1)).await;
//!             Ok::<_, String>(42)
//!         }
//!     })?;
//!     Ok::<_, staunch::runtime::SpawnError>(task.await)
//! });
//! assert_eq!(out.unwrap(), Ok(Ok(42)));
//! ```
#![forbid(unsafe_code)]

use std::rc::Rc;
use std::time::Duration;

use staunch::runtime::{
    BlockingTask, BoxTask, ErrorSink, Instant, LocalBoxTask, LocalSpawn, Spawn, SpawnBlocking,
    SpawnError, Timer, YieldingSleep,
};
use tokio::runtime::Handle;
use tokio::task::LocalSet;

/// There is no tokio runtime on this thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRuntime;

impl std::fmt::Display for NoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no tokio runtime is running on this thread; call this inside `Runtime::block_on` or pass a `Handle` to `Tokio::on`")
    }
}

impl std::error::Error for NoRuntime {}

/// staunch's runtime for tokio. Cheap to clone; `Send + Sync`.
///
/// - time: `tokio::time::Instant`, from when this value was made; follows
///   tokio's paused and auto-advanced test time;
/// - sleep: `tokio::time::sleep` (a [`Duration::MAX`] sleep never fires in
///   practice: tokio caps it at about 30 years). Needs the runtime's time
///   driver (`enable_time`);
/// - spawn: on the [`Handle`]. tokio cannot say whether a runtime has shut
///   down, so a task spawned after shutdown is dropped by tokio and its
///   handle reports [`JoinError::Lost`](staunch::runtime::JoinError::Lost)
///   rather than `spawn` failing;
/// - local spawn: not supported here (tokio would panic outside a
///   `LocalSet`); use [`TokioLocal`];
/// - blocking work: `Handle::spawn_blocking`.
#[derive(Clone, Debug)]
pub struct Tokio {
    handle: Handle,
    origin: tokio::time::Instant,
    sink: ErrorSink,
}

impl Tokio {
    /// The runtime of the current thread.
    ///
    /// # Errors
    ///
    /// [`NoRuntime`] outside a tokio runtime.
    pub fn current() -> Result<Tokio, NoRuntime> {
        Handle::try_current().map(Tokio::on).map_err(|_| NoRuntime)
    }

    /// Spawns on the runtime behind `handle`.
    ///
    /// Time is read from tokio's clock, which needs a runtime context: make
    /// this value inside the runtime (or with `handle.enter()`).
    #[must_use]
    pub fn on(handle: Handle) -> Tokio {
        let _guard = handle.enter();
        Tokio {
            handle,
            origin: tokio::time::Instant::now(),
            sink: ErrorSink::default(),
        }
    }

    /// Sends failures of detached tasks nobody observed to `sink`.
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> Tokio {
        self.sink = sink;
        self
    }

    /// The tokio handle tasks are spawned on.
    #[must_use]
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Timer for Tokio {
    /// tokio's sleep, made a yield point when already due on its first
    /// poll (tokio completes `sleep(Duration::ZERO)` at once otherwise).
    type Sleep = YieldingSleep<tokio::time::Sleep>;
    fn now(&self) -> Instant {
        Instant::from_origin(tokio::time::Instant::now().saturating_duration_since(self.origin))
    }
    fn sleep(&self, duration: Duration) -> YieldingSleep<tokio::time::Sleep> {
        // Inside a tokio task (the common case, and a cheap thread-local
        // read) the runtime's context is entered and tokio finds its timer by
        // itself. Anywhere else (a `block_on` future, another executor, a
        // plain thread) enter our handle first, so creating a sleep never
        // panics.
        YieldingSleep::new(if tokio::task::try_id().is_some() {
            tokio::time::sleep(duration)
        } else {
            let _guard = self.handle.enter();
            tokio::time::sleep(duration)
        })
    }
}

impl Spawn for Tokio {
    fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError> {
        drop(self.handle.spawn(task));
        Ok(())
    }

    fn error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

impl LocalSpawn for Tokio {
    fn spawn_local_task(&self, _task: LocalBoxTask) -> Result<(), SpawnError> {
        Err(SpawnError::Unsupported {
            what: "spawn_local on `Tokio`",
            why: "tokio runs !Send tasks only on a LocalSet; use `TokioLocal::on(&local_set)`",
        })
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

impl SpawnBlocking for Tokio {
    fn spawn_blocking_task(&self, work: BlockingTask) -> Result<(), SpawnError> {
        drop(self.handle.spawn_blocking(work));
        Ok(())
    }
}

/// staunch's runtime for a tokio [`LocalSet`]: spawns `!Send` tasks, which
/// run while the `LocalSet` is driven. Not `Send` itself.
#[derive(Clone, Debug)]
pub struct TokioLocal {
    set: std::rc::Weak<LocalSet>,
    sink: ErrorSink,
}

impl TokioLocal {
    /// Spawns local tasks on `set`; holds it weakly.
    #[must_use]
    pub fn on(set: &Rc<LocalSet>) -> TokioLocal {
        TokioLocal {
            set: Rc::downgrade(set),
            sink: ErrorSink::default(),
        }
    }

    /// Sends failures of detached tasks nobody observed to `sink`.
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> TokioLocal {
        self.sink = sink;
        self
    }
}

impl LocalSpawn for TokioLocal {
    fn spawn_local_task(&self, task: LocalBoxTask) -> Result<(), SpawnError> {
        let set = self.set.upgrade().ok_or(SpawnError::Shutdown)?;
        drop(set.spawn_local(task));
        Ok(())
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}
