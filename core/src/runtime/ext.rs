//! Spawning with join handles, on top of the fire-and-forget traits.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use super::join::{wrap_blocking, wrap_task};
use super::{JoinHandle, LocalSpawn, MaybeSend, Outcome, Spawn, SpawnBlocking, SpawnError};

/// Spawning that returns a [`JoinHandle`]; implemented for every [`Spawn`].
///
/// # Example
///
/// ```
/// use staunch::runtime::SpawnExt;
/// use staunch::testing::VirtualRuntime;
///
/// let rt = VirtualRuntime::new();
/// let sum = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let a = rt.spawn(async { Ok::<u32, String>(1) }).unwrap();
///         let b = rt.spawn_named("second", async { Ok::<u32, String>(2) }).unwrap();
///         a.await.unwrap().unwrap() + b.await.unwrap().unwrap()
///     }
/// });
/// assert_eq!(sum.unwrap(), 3);
/// ```
pub trait SpawnExt: Spawn {
    /// Starts `future` as a task and returns a handle to its output.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Shutdown`] if the executor no longer accepts tasks.
    /// A refused future is dropped unpolled, and this error is the only
    /// report of it: nothing reaches the error sink (the same for every
    /// spawn method here).
    fn spawn<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: IntoFuture,
        F::IntoFuture: MaybeSend + 'static,
        F::Output: Outcome + MaybeSend + 'static,
    {
        spawn_with(self, None, future.into_future())
    }

    /// Like [`spawn`](SpawnExt::spawn), with a name that appears in reports
    /// of unobserved failures.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Shutdown`] if the executor no longer accepts tasks.
    fn spawn_named<F>(
        &self,
        name: impl Into<Arc<str>>,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: IntoFuture,
        F::IntoFuture: MaybeSend + 'static,
        F::Output: Outcome + MaybeSend + 'static,
    {
        spawn_with(self, Some(name.into()), future.into_future())
    }
}

impl<S: Spawn + ?Sized> SpawnExt for S {}

fn spawn_with<S, F>(
    spawner: &S,
    name: Option<Arc<str>>,
    future: F,
) -> Result<JoinHandle<F::Output>, SpawnError>
where
    S: Spawn + ?Sized,
    F: Future + MaybeSend + 'static,
    F::Output: Outcome + MaybeSend + 'static,
{
    let (task, handle) = wrap_task(future, name, spawner.error_sink());
    match spawner.spawn_task(Box::pin(task)) {
        Ok(()) => Ok(handle),
        Err(refused) => {
            handle.refused();
            Err(refused)
        }
    }
}

/// Spawning `!Send` futures with a [`JoinHandle`]; implemented for every
/// [`LocalSpawn`].
pub trait LocalSpawnExt: LocalSpawn {
    /// Starts a `!Send` future on the current thread and returns a handle.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Shutdown`] if the executor no longer accepts tasks.
    fn spawn_local<F>(&self, future: F) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: IntoFuture,
        F::IntoFuture: 'static,
        F::Output: Outcome + 'static,
    {
        let (task, handle) = wrap_task(future.into_future(), None, self.local_error_sink());
        match self.spawn_local_task(Box::pin(task)) {
            Ok(()) => Ok(handle),
            Err(refused) => {
                handle.refused();
                Err(refused)
            }
        }
    }

    /// Like [`spawn_local`](LocalSpawnExt::spawn_local), with a name.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Shutdown`] if the executor no longer accepts tasks.
    fn spawn_local_named<F>(
        &self,
        name: impl Into<Arc<str>>,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError>
    where
        F: IntoFuture,
        F::IntoFuture: 'static,
        F::Output: Outcome + 'static,
    {
        let (task, handle) = wrap_task(
            future.into_future(),
            Some(name.into()),
            self.local_error_sink(),
        );
        match self.spawn_local_task(Box::pin(task)) {
            Ok(()) => Ok(handle),
            Err(refused) => {
                handle.refused();
                Err(refused)
            }
        }
    }
}

impl<S: LocalSpawn + ?Sized> LocalSpawnExt for S {}

/// Running blocking closures with a [`JoinHandle`]; implemented for every
/// [`SpawnBlocking`] that is also a [`Spawn`] (whose error sink it uses).
pub trait SpawnBlockingExt: SpawnBlocking + Spawn {
    /// Runs `work` where blocking is allowed and returns a handle to its
    /// result. A panic in `work` becomes [`JoinError::Panicked`](super::JoinError).
    ///
    /// # Errors
    ///
    /// [`SpawnError::Unsupported`] where there are no threads (the browser);
    /// [`SpawnError::Shutdown`] if the runtime is gone.
    fn spawn_blocking<F, T>(&self, work: F) -> Result<JoinHandle<T>, SpawnError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Outcome + Send + 'static,
    {
        let (job, handle) = wrap_blocking(work, None, self.error_sink());
        match self.spawn_blocking_task(Box::new(job)) {
            Ok(()) => Ok(handle),
            Err(refused) => {
                handle.refused();
                Err(refused)
            }
        }
    }
}

impl<S: SpawnBlocking + Spawn + ?Sized> SpawnBlockingExt for S {}
