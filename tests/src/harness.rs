//! What the cases need from a runtime, the runtimes that provide it, and
//! small test helpers (drop counters, gauges, a collecting error sink).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::runtime::{
    ErrorSink, JoinHandle, LocalSpawn, MaybeSend, MaybeSync, Outcome, Spawn, SpawnBlocking,
    SpawnError, Timer, UnobservedError,
};
use staunch::testing::VirtualRuntime;

/// A runtime the conformance suite can run on.
pub trait TestRuntime:
    Timer + Spawn + LocalSpawn + SpawnBlocking + Clone + MaybeSend + MaybeSync + 'static
{
    /// A short name for messages.
    const NAME: &'static str;
    /// Time is virtual: cases may assert exact instants.
    const VIRTUAL_TIME: bool;
    /// `spawn_local` works; otherwise it must fail with `SpawnError::Unsupported`.
    const LOCAL_SPAWN: bool;
    /// `spawn_blocking` works; otherwise it must fail with `SpawnError::Unsupported`.
    const BLOCKING: bool;
    /// Panics unwind, so they can be captured as `JoinError::Panicked`.
    const UNWINDS: bool = cfg!(panic = "unwind") && !cfg!(target_arch = "wasm32");

    /// Every task runs on one thread, so the order in which ready tasks run
    /// is observable (false where several worker threads run tasks).
    fn runs_tasks_on_one_thread(&self) -> bool;

    /// This runtime, reporting unobserved task failures to `sink`.
    #[must_use]
    fn with_sink(&self, sink: ErrorSink) -> Self;

    /// Another runtime of this kind that has already shut down, or `None`
    /// where a runtime of this kind never shuts down (the browser's event
    /// loop).
    fn shut_down_sibling(&self) -> Option<Self>;

    /// Makes another runtime of this kind, lets `spawn` start tasks on it,
    /// then drops the runtime (its owner: the executor, tokio's `Runtime`,
    /// the `VirtualRuntime` that `new()` returned). Returns `false`, calling
    /// nothing, where a runtime of this kind is never dropped (the browser).
    fn drop_sibling_after(&self, spawn: impl FnOnce(&Self) + MaybeSend) -> bool;

    /// Runs `work` where blocking is allowed, or says it cannot.
    ///
    /// # Errors
    ///
    /// `SpawnError::Unsupported` where the runtime has no blocking threads.
    fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Outcome + Send + 'static;
}

impl TestRuntime for VirtualRuntime {
    const NAME: &'static str = "virtual";
    const VIRTUAL_TIME: bool = true;
    const LOCAL_SPAWN: bool = true;
    const BLOCKING: bool = false;

    fn runs_tasks_on_one_thread(&self) -> bool {
        true
    }

    fn with_sink(&self, sink: ErrorSink) -> Self {
        self.clone().with_error_sink(sink)
    }

    fn shut_down_sibling(&self) -> Option<Self> {
        let dead = VirtualRuntime::new();
        dead.shutdown();
        Some(dead)
    }

    fn drop_sibling_after(&self, spawn: impl FnOnce(&Self) + MaybeSend) -> bool {
        let owner = VirtualRuntime::new();
        spawn(&owner);
        drop(owner);
        true
    }

    fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Outcome + Send + 'static,
    {
        // The runtime's own answer (a typed `Unsupported`), as users see it.
        staunch::runtime::SpawnBlockingExt::spawn_blocking(self, work)
    }
}

/// Runs a case on a fresh [`VirtualRuntime`]; a deadlock fails the test.
pub fn run_virtual<F, Fut>(case: F)
where
    F: FnOnce(VirtualRuntime) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = VirtualRuntime::new();
    rt.block_on(case(rt.clone()))
        .expect("the case deadlocked on the virtual runtime");
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;
    use staunch::runtime::SpawnBlockingExt;
    use staunch_smol::Smol;
    use staunch_tokio::Tokio;

    /// The adapters with threads: local spawn needs their local variants,
    /// blocking work goes to their blocking pools.
    macro_rules! threaded_runtime {
        ($ty:ty, $name:literal, $one_thread:expr, $dead:expr, $dropped:expr) => {
            impl TestRuntime for $ty {
                const NAME: &'static str = $name;
                const VIRTUAL_TIME: bool = false;
                const LOCAL_SPAWN: bool = false;
                const BLOCKING: bool = true;

                fn runs_tasks_on_one_thread(&self) -> bool {
                    let one_thread: fn(&$ty) -> bool = $one_thread;
                    one_thread(self)
                }

                fn with_sink(&self, sink: ErrorSink) -> Self {
                    self.clone().with_error_sink(sink)
                }

                fn shut_down_sibling(&self) -> Option<Self> {
                    let dead: fn() -> $ty = $dead;
                    Some(dead())
                }

                fn drop_sibling_after(&self, spawn: impl FnOnce(&Self) + MaybeSend) -> bool {
                    let dropped: fn(Box<dyn FnOnce(&$ty) + Send + '_>) = $dropped;
                    dropped(Box::new(spawn));
                    true
                }

                fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
                where
                    F: FnOnce() -> T + Send + 'static,
                    T: Outcome + Send + 'static,
                {
                    SpawnBlockingExt::spawn_blocking(self, work)
                }
            }
        };
    }

    // smol's global executor may run tasks on several threads
    // (`SMOL_THREADS`); tokio's current-thread runtime runs them on one.
    threaded_runtime!(
        Smol,
        "smol",
        |_| false,
        || {
            // An adapter on an executor that has been dropped.
            let executor = std::sync::Arc::new(smol::Executor::new());
            let dead = Smol::on(&executor);
            drop(executor);
            dead
        },
        |spawn| {
            let executor = std::sync::Arc::new(smol::Executor::new());
            spawn(&Smol::on(&executor));
            drop(executor);
        }
    );
    threaded_runtime!(
        Tokio,
        "tokio",
        |rt| rt.handle().runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread,
        || {
            // A runtime cannot be dropped inside another's context: make
            // and drop it on a thread of its own, keep the adapter.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .expect("a tokio runtime");
                let dead = Tokio::on(runtime.handle().clone());
                drop(runtime);
                dead
            })
            .join()
            .expect("the runtime thread")
        },
        |spawn| {
            // As above: on a thread of its own.
            std::thread::scope(|threads| {
                threads.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .expect("a tokio runtime");
                    spawn(&Tokio::on(runtime.handle().clone()));
                    drop(runtime);
                });
            });
        }
    );

    /// Runs a case on smol's global executor.
    pub fn run_smol<F, Fut>(case: F)
    where
        F: FnOnce(Smol) -> Fut,
        Fut: Future<Output = ()>,
    {
        smol::block_on(case(Smol::current()));
    }

    /// Runs a case on a current-thread tokio runtime.
    pub fn run_tokio_current<F, Fut>(case: F)
    where
        F: FnOnce(Tokio) -> Fut,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime builds");
        runtime.block_on(async { case(Tokio::current().expect("inside tokio")).await });
    }

    /// Runs a case on a two-worker multi-thread tokio runtime.
    pub fn run_tokio_multi<F, Fut>(case: F)
    where
        F: FnOnce(Tokio) -> Fut,
        Fut: Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a multi-thread tokio runtime builds");
        runtime.block_on(async { case(Tokio::current().expect("inside tokio")).await });
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{run_smol, run_tokio_current, run_tokio_multi};

#[cfg(target_arch = "wasm32")]
mod web {
    use super::*;
    use staunch_web::Web;

    impl TestRuntime for Web {
        const NAME: &'static str = "web";
        const VIRTUAL_TIME: bool = false;
        const LOCAL_SPAWN: bool = true;
        const BLOCKING: bool = false;

        fn runs_tasks_on_one_thread(&self) -> bool {
            true
        }

        fn with_sink(&self, sink: ErrorSink) -> Self {
            self.clone().with_error_sink(sink)
        }

        fn shut_down_sibling(&self) -> Option<Self> {
            None // the page's (or Node's) event loop never shuts down
        }

        fn drop_sibling_after(&self, _spawn: impl FnOnce(&Self) + MaybeSend) -> bool {
            false // the page's (or Node's) event loop is never dropped
        }

        fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Outcome + Send + 'static,
        {
            staunch::runtime::SpawnBlockingExt::spawn_blocking(self, work)
        }
    }
}

/// `n` milliseconds.
#[must_use]
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts how many of its guards were dropped: proves a future was dropped.
#[derive(Clone, Debug, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

/// Increments its [`DropCounter`] when dropped.
#[derive(Debug)]
pub struct DropGuard(Arc<AtomicUsize>);

impl DropCounter {
    /// A counter at zero.
    #[must_use]
    pub fn new() -> DropCounter {
        DropCounter::default()
    }
    /// A guard to move into a future.
    #[must_use]
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }
    /// How many guards have been dropped.
    #[must_use]
    pub fn dropped(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    /// A task that sleeps a minute on `rt` (longer than any case waits),
    /// holding a guard of this counter: the child a case expects to be
    /// cancelled, its drop counted here.
    pub fn sleeper<R: TestRuntime, E>(
        &self,
        rt: &R,
    ) -> impl Future<Output = Result<(), E>> + use<R, E> {
        let (rt, guard) = (rt.clone(), self.guard());
        async move {
            let _guard = guard;
            rt.sleep(ms(60_000)).await;
            Ok(())
        }
    }
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Tracks how many things are inside at once, and the most ever seen.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<(AtomicUsize, AtomicUsize)>);

/// Holds one unit of a [`Gauge`] until dropped.
#[derive(Debug)]
pub struct GaugeGuard(Gauge);

impl Gauge {
    /// A gauge at zero.
    #[must_use]
    pub fn new() -> Gauge {
        Gauge::default()
    }
    /// Enters: the gauge goes up until the guard is dropped.
    #[must_use]
    pub fn enter(&self) -> GaugeGuard {
        let now = (self.0).0.fetch_add(1, Ordering::SeqCst) + 1;
        (self.0).1.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self.clone())
    }
    /// How many are inside now.
    #[must_use]
    pub fn current(&self) -> usize {
        (self.0).0.load(Ordering::SeqCst)
    }
    /// The most that were ever inside at once.
    #[must_use]
    pub fn peak(&self) -> usize {
        (self.0).1.load(Ordering::SeqCst)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        ((self.0).0).0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An [`ErrorSink`] that keeps what it receives, for assertions.
#[derive(Clone, Debug, Default)]
pub struct CollectingSink(Arc<Mutex<Vec<UnobservedError>>>);

impl CollectingSink {
    /// An empty collector.
    #[must_use]
    pub fn new() -> CollectingSink {
        CollectingSink::default()
    }
    /// The sink to give a runtime.
    #[must_use]
    pub fn sink(&self) -> ErrorSink {
        let seen = self.0.clone();
        ErrorSink::new(move |e| seen.lock().unwrap_or_else(|p| p.into_inner()).push(e))
    }
    /// Everything received so far.
    #[must_use]
    pub fn received(&self) -> Vec<UnobservedError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A flag that code sets to show that it ran.
pub fn flag() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// Whether `flag` was set.
pub fn ran(flag: &std::sync::atomic::AtomicBool) -> bool {
    flag.load(Ordering::SeqCst)
}

/// Yields to the executor once (core's own, so cases use what users use).
pub use staunch::runtime::yield_now;

/// Waits (sleeping 1 ms between looks) until `done()` holds, for things that
/// happen on other tasks or threads. Panics with `what` after 10 000 looks
/// (at least 10 s) so a broken case fails instead of hanging.
pub async fn eventually<R: Timer>(rt: &R, what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        rt.sleep(ms(1)).await;
    }
    panic!("never happened: {what}");
}
