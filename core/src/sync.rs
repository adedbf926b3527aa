//! The synchronisation primitives staunch's concurrent internals use.
//!
//! Under `--cfg staunch_loom` these are loom's model-checked versions, so the
//! loom tests explore every interleaving of the real code; otherwise std's.
//! Internals that loom must check import from here, never from `std::sync`.

#[cfg(staunch_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(staunch_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};

#[cfg(not(staunch_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(staunch_loom))]
#[allow(unused_imports)]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning: staunch's state is kept consistent at
/// every point a panic could happen, so a poisoned lock is still valid.
#[cfg(not(staunch_loom))]
#[allow(dead_code)]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    lock_std(mutex)
}

/// [`lock`] for a mutex that stays std's even under loom: one shared with a
/// `std::task::Wake` implementation, which needs std's `Arc`.
pub(crate) fn lock_std<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Locks `mutex` (loom's mutex does not poison).
#[cfg(staunch_loom)]
#[allow(dead_code)]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
