//! Bulkhead: bounded concurrency with a bounded queue and explicit rejection.
//!
//! A [`Bulkhead`] lets at most `max_concurrent` calls run at once. Further
//! callers wait in a first-in, first-out queue of at most `max_queued`
//! (none by default), each for at most the queue timeout if one is set.
//! Anyone beyond that is refused at once with [`Rejected::Full`], so an
//! overloaded service sheds load instead of piling up work.
//!
//! ```
//! use staunch::bulkhead::Bulkhead;
//! use staunch::testing::VirtualRuntime;
//!
//! let rt = VirtualRuntime::new();
//! let bulkhead = Bulkhead::builder(rt.clone(), 1).build()?;
//! rt.block_on(async {
//!     let first = bulkhead.try_acquire().unwrap();
//!     // One slot, no queue: the next caller is refused at once.
//!     let refused = bulkhead.call(async { Ok::<_, std::io::Error>(1) }).await;
//!     assert!(refused.unwrap_err().is_rejected());
//!     drop(first);
//!     assert_eq!(bulkhead.call(async { Ok::<_, std::io::Error>(1) }).await.unwrap(), 1);
//! })
//! .unwrap();
//! # Ok::<(), staunch::ConfigError>(())
//! ```
//!
//! Guards compose in either order with one `?`: a guard's `call` takes
//! another guard's call as it takes a plain future, and passes its
//! [`staunch::Error`](crate::Error) through (see [`Fallible`]).
//!
//! ```
//! use staunch::{breaker::CircuitBreaker, bulkhead::Bulkhead, Error};
//! use std::io;
//!
//! async fn fetch() -> Result<u32, io::Error> { Ok(7) }
//!
//! # let rt = staunch::testing::VirtualRuntime::new();
//! let breaker = CircuitBreaker::builder(rt.clone()).build()?;
//! let bulkhead = Bulkhead::builder(rt.clone(), 8).build()?;
//! let both = async {
//!     let a = breaker.call(bulkhead.call(fetch())).await?;
//!     let b = bulkhead.call(breaker.call(fetch())).await?;
//!     Ok::<_, Error<io::Error>>(a + b)
//! };
//! assert_eq!(rt.block_on(both).unwrap().unwrap(), 14);
//! # Ok::<(), staunch::ConfigError>(())
//! ```

mod acquire;
mod error;
mod queue;

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use acquire::Acquire;
pub use error::Rejected;
pub(crate) use error::{TellRejected, tell_rejected};

use crate::ConfigError;
use crate::Error;
use crate::fallible::{Fallible, Guarded};
use crate::observe::Observers;
use crate::runtime::{AnyTimer, Timer};
use queue::{Entered, Slots};

struct Shared {
    slots: Slots,
    timer: AnyTimer,
    queue_timeout: Option<Duration>,
    name: Arc<str>,
    observers: Observers,
    /// Tells the observers of rejections; set with them, so programs
    /// without observers do not link the event or its wording.
    tell: Option<TellRejected>,
}

/// Bounded concurrency shared by every caller of one resource; see the
/// [module docs](self).
///
/// `Clone + Send + Sync` natively; clones share the same slots.
///
/// # Cancel safety
///
/// A caller that stops waiting (drops the future) leaves the queue at once;
/// if a slot had just been handed to it, the slot passes to the next waiter.
#[derive(Clone)]
pub struct Bulkhead {
    shared: Arc<Shared>,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (inside, queued) = self.shared.slots.load();
        f.debug_struct("Bulkhead")
            .field("name", &self.shared.name)
            .field("inside", &inside)
            .field("queued", &queued)
            .finish_non_exhaustive()
    }
}

impl Bulkhead {
    /// A builder for a bulkhead admitting `max_concurrent` calls at once,
    /// with no queue and no queue timeout; a queue timeout is timed on
    /// `timer`.
    pub fn builder<T: Timer + 'static>(timer: T, max_concurrent: usize) -> BulkheadBuilder {
        BulkheadBuilder {
            timer: AnyTimer::new(timer),
            max_concurrent,
            max_queued: 0,
            queue_timeout: None,
            name: Arc::from(""),
            observers: Observers::new(),
            tell: None,
        }
    }

    /// Takes a slot now, or refuses without waiting.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`] when every slot is taken (or someone is queued:
    /// a newcomer never overtakes a waiter).
    pub fn try_acquire(&self) -> Result<Slot, Rejected> {
        match self.shared.slots.enter(false) {
            Entered::Inside => Ok(self.permit()),
            _ => Err(self.full()),
        }
    }

    /// Takes a slot, waiting in the queue if there is room in it.
    ///
    /// # Errors
    ///
    /// [`Rejected::Full`] at once when the slots and the queue are full;
    /// [`Rejected::QueueTimeout`] when the wait exceeded the queue timeout.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the queue; no slot is lost.
    ///
    /// ```
    /// use staunch::bulkhead::Bulkhead;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let bulkhead = Bulkhead::builder(rt.clone(), 1)
    ///     .max_queued(1)
    ///     .queue_timeout(Duration::from_millis(50))
    ///     .build()?;
    /// rt.block_on(async {
    ///     let _held = bulkhead.acquire().await.unwrap();
    ///     let waited = bulkhead.acquire().await.unwrap_err();
    ///     assert!(matches!(waited, staunch::bulkhead::Rejected::QueueTimeout { .. }));
    /// })
    /// .unwrap();
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn acquire(&self) -> Acquire {
        Acquire::new(self.clone())
    }

    /// Runs `op` inside the bulkhead, holding a slot while it runs. `op` is
    /// a future of `Result<T, E>` or another staunch call (see
    /// [`Fallible`]). For work that returns no `Result`, hold a [`Slot`]
    /// from [`acquire`](Self::acquire) instead.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] as for [`acquire`](Self::acquire) (the future is
    /// then dropped without being polled); otherwise the operation's error
    /// ([`Error::Inner`] for a plain future's own error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call frees the slot or leaves the queue.
    ///
    /// ```
    /// use staunch::bulkhead::Bulkhead;
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let bulkhead = Bulkhead::builder(rt.clone(), 1).build()?;
    /// let out = rt.block_on(bulkhead.call(async { Ok::<_, std::io::Error>(7) })).unwrap();
    /// assert_eq!(out.unwrap(), 7);
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn call<G: Fallible>(
        &self,
        op: G,
    ) -> Guarded<impl Future<Output = Result<G::Ok, Error<G::Err>>>> {
        Guarded::new(async move {
            let _slot = self.acquire().await?;
            crate::fallible::lifted(op).await
        })
    }

    /// How many calls are inside now.
    #[must_use]
    pub fn inside(&self) -> usize {
        self.shared.slots.load().0
    }

    /// How many callers wait now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.slots.load().1
    }

    fn permit(&self) -> Slot {
        Slot {
            shared: self.shared.clone(),
        }
    }

    fn full(&self) -> Rejected {
        let slots = &self.shared.slots;
        self.reject(Rejected::Full {
            max_concurrent: slots.max_concurrent,
            max_queued: slots.max_queued,
        })
    }

    fn reject(&self, rejected: Rejected) -> Rejected {
        if let Some(tell) = self.shared.tell {
            tell(&self.shared.observers, &self.shared.name, &rejected);
        }
        rejected
    }
}

/// Configures a [`Bulkhead`]; checked by [`build`](BulkheadBuilder::build).
#[must_use = "a builder does nothing until you call `build()`"]
pub struct BulkheadBuilder {
    timer: AnyTimer,
    max_concurrent: usize,
    max_queued: usize,
    queue_timeout: Option<Duration>,
    name: Arc<str>,
    observers: Observers,
    tell: Option<TellRejected>,
}

impl fmt::Debug for BulkheadBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadBuilder")
            .field("max_concurrent", &self.max_concurrent)
            .field("max_queued", &self.max_queued)
            .field("queue_timeout", &self.queue_timeout)
            .finish_non_exhaustive()
    }
}

impl BulkheadBuilder {
    /// Let up to `n` callers wait for a slot, first come first served (0 by default).
    pub fn max_queued(mut self, n: usize) -> Self {
        self.max_queued = n;
        self
    }

    /// Refuse a queued caller that waited `limit` without a slot.
    pub fn queue_timeout(mut self, limit: Duration) -> Self {
        self.queue_timeout = Some(limit);
        self
    }

    /// The name used in events.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Who hears about rejected calls.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        self.tell = Some(tell_rejected);
        self
    }

    /// Checks the settings and builds the bulkhead.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `max_concurrent` is zero (nothing could ever run).
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::new(
                "max_concurrent",
                "must be at least 1, or no call could ever run",
            ));
        }
        Ok(Bulkhead {
            shared: Arc::new(Shared {
                slots: Slots::new(self.max_concurrent, self.max_queued),
                timer: self.timer,
                queue_timeout: self.queue_timeout,
                name: self.name,
                observers: self.observers,
                tell: self.tell,
            }),
        })
    }
}

/// A slot in a [`Bulkhead`]; dropping it frees the slot for the next caller.
#[must_use = "the slot is freed as soon as it is dropped; hold it while the work runs"]
pub struct Slot {
    shared: Arc<Shared>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.slots.release();
    }
}
