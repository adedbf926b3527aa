//! # staunch-smol: run staunch on smol
//!
//! [`Smol`] is a runtime value for staunch: it sleeps with `async-io` timers,
//! reads time from [`std::time::Instant`], spawns on smol's global executor or
//! on an [`async_executor::Executor`] you give it, and runs blocking work on
//! the `blocking` thread pool. [`SmolLocal`] spawns `!Send` tasks on a
//! [`async_executor::LocalExecutor`].
//!
//! ```
//! use staunch::runtime::{SpawnExt, Timer};
//! use staunch_smol::Smol;
//! use std::time::Duration;
//!
//! let rt = Smol::current();
//! let out = smol::block_on(async {
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

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use async_executor::{Executor, LocalExecutor};
use staunch::runtime::{
    BlockingTask, BoxTask, ErrorSink, Instant, LocalBoxTask, LocalSpawn, Spawn, SpawnBlocking,
    SpawnError, Timer, YieldingSleep,
};

#[derive(Clone, Debug)]
enum Target {
    Global,
    Executor(Weak<Executor<'static>>),
}

/// staunch's runtime for smol. Cheap to clone; `Send + Sync`.
///
/// - time: [`std::time::Instant`], measured from when this value was made;
/// - sleep: `async_io::Timer` (a [`Duration::MAX`] sleep never fires);
/// - spawn: smol's global executor, or a given [`Executor`] (once that
///   executor is dropped, spawning fails with [`SpawnError::Shutdown`]);
/// - local spawn: not supported here (there is no ambient local executor);
///   use [`SmolLocal`];
/// - blocking work: the `blocking` crate's thread pool.
#[derive(Clone, Debug)]
pub struct Smol {
    target: Target,
    origin: std::time::Instant,
    sink: ErrorSink,
}

impl Smol {
    /// The ambient runtime: spawns on smol's global executor
    /// (`smol::spawn`). Every adapter has `current()`.
    #[must_use]
    pub fn current() -> Smol {
        Smol {
            target: Target::Global,
            origin: std::time::Instant::now(),
            sink: ErrorSink::default(),
        }
    }

    /// Spawns on `executor`. The adapter holds it weakly: it does not keep
    /// the executor alive.
    #[must_use]
    pub fn on(executor: &Arc<Executor<'static>>) -> Smol {
        Smol {
            target: Target::Executor(Arc::downgrade(executor)),
            origin: std::time::Instant::now(),
            sink: ErrorSink::default(),
        }
    }

    /// Sends failures of detached tasks nobody observed to `sink`.
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> Smol {
        self.sink = sink;
        self
    }
}

impl Default for Smol {
    fn default() -> Smol {
        Smol::current()
    }
}

/// The sleep future of [`Smol`] and [`SmolLocal`]. A sleep that is already
/// due when first polled (`sleep(Duration::ZERO)`) still yields once, so
/// every sleep is a yield point.
#[derive(Debug)]
#[must_use = "a sleep does nothing unless awaited"]
pub struct SmolSleep(YieldingSleep<TimerDone>);

/// `async_io::Timer` as a future of `()`.
#[derive(Debug)]
struct TimerDone(async_io::Timer);

impl Future for TimerDone {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(drop)
    }
}

impl Future for SmolSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

fn smol_sleep(duration: Duration) -> SmolSleep {
    // `Timer::after` turns an overflowing deadline into a timer that never fires.
    SmolSleep(YieldingSleep::new(TimerDone(async_io::Timer::after(
        duration,
    ))))
}

impl Timer for Smol {
    type Sleep = SmolSleep;
    fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed())
    }
    fn sleep(&self, duration: Duration) -> SmolSleep {
        smol_sleep(duration)
    }
}

impl Spawn for Smol {
    fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError> {
        match &self.target {
            Target::Global => smol::spawn(task).detach(),
            Target::Executor(weak) => match weak.upgrade() {
                Some(ex) => ex.spawn(task).detach(),
                None => return Err(SpawnError::Shutdown),
            },
        }
        Ok(())
    }

    fn error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

impl LocalSpawn for Smol {
    fn spawn_local_task(&self, _task: LocalBoxTask) -> Result<(), SpawnError> {
        Err(SpawnError::Unsupported {
            what: "spawn_local on `Smol`",
            why: "smol has no ambient local executor; use `SmolLocal::on(&local_executor)`",
        })
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

impl SpawnBlocking for Smol {
    fn spawn_blocking_task(&self, work: BlockingTask) -> Result<(), SpawnError> {
        blocking::unblock(work).detach();
        Ok(())
    }
}

/// staunch's runtime for a smol [`LocalExecutor`]: spawns `!Send` tasks.
/// Not `Send` itself. Holds the executor weakly.
#[derive(Clone, Debug)]
pub struct SmolLocal {
    executor: std::rc::Weak<LocalExecutor<'static>>,
    origin: std::time::Instant,
    sink: ErrorSink,
}

impl SmolLocal {
    /// Spawns local tasks on `executor`.
    #[must_use]
    pub fn on(executor: &Rc<LocalExecutor<'static>>) -> SmolLocal {
        SmolLocal {
            executor: Rc::downgrade(executor),
            origin: std::time::Instant::now(),
            sink: ErrorSink::default(),
        }
    }

    /// Sends failures of detached tasks nobody observed to `sink`.
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> SmolLocal {
        self.sink = sink;
        self
    }

    /// The current instant, as [`Smol`] measures it.
    #[must_use]
    pub fn now(&self) -> Instant {
        Instant::from_origin(self.origin.elapsed())
    }

    /// Sleeps with an `async_io::Timer`.
    pub fn sleep(&self, duration: Duration) -> SmolSleep {
        smol_sleep(duration)
    }
}

impl LocalSpawn for SmolLocal {
    fn spawn_local_task(&self, task: LocalBoxTask) -> Result<(), SpawnError> {
        let ex = self.executor.upgrade().ok_or(SpawnError::Shutdown)?;
        ex.spawn(task).detach();
        Ok(())
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}
