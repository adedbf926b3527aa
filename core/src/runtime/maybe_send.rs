//! `Send` natively, nothing on wasm32: lets one generic code path run on both.

/// `Send` on native targets; no requirement on `wasm32`, where there is one
/// thread and JavaScript values are never `Send`.
///
/// staunch's generic code asks for `MaybeSend` where native code needs
/// `Send`, so the same user code compiles for a multi-thread tokio runtime
/// and for the browser. It is implemented for every type that qualifies; you
/// never implement it yourself.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}

/// `Send` on native targets; no requirement on `wasm32`, where there is one
/// thread and JavaScript values are never `Send`.
///
/// staunch's generic code asks for `MaybeSend` where native code needs
/// `Send`, so the same user code compiles for a multi-thread tokio runtime
/// and for the browser. It is implemented for every type that qualifies; you
/// never implement it yourself.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` on native targets; no requirement on `wasm32`. See [`MaybeSend`].
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}

/// `Sync` on native targets; no requirement on `wasm32`. See [`MaybeSend`].
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed unit future as [`Spawn`](super::Spawn) receives it: `Send` on
/// native targets, unconstrained on `wasm32`.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// A boxed unit future as [`Spawn`](super::Spawn) receives it: `Send` on
/// native targets, unconstrained on `wasm32`.
#[cfg(target_arch = "wasm32")]
pub type BoxTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;

/// A boxed unit future that need not be `Send`, as
/// [`LocalSpawn`](super::LocalSpawn) receives it.
pub type LocalBoxTask = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'static>>;

/// A boxed blocking closure as [`SpawnBlocking`](super::SpawnBlocking) receives it.
pub type BlockingTask = Box<dyn FnOnce() + Send + 'static>;
