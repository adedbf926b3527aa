//! Fallback: answer a failed call with a value, a closure's result or a
//! future's, instead of the error. Never for cancellation.
//!
//! A [`Fallback`] is built from what to answer ([`Fallback::value`],
//! [`Fallback::with`], [`Fallback::with_future`]) and, optionally, which
//! failures it applies to ([`Fallback::when`]; every failure by default).
//! Whatever the predicate says, a cancelled call stays cancelled: a fallback
//! must never make a stopped program look as if it had succeeded.
//!
//! ```
//! use staunch::fallback::Fallback;
//!
//! let cached = Fallback::value(vec!["cached"]);
//! let out = futures::executor::block_on(cached.call(async { Err::<Vec<&str>, _>("503") }).into_future());
//! assert_eq!(out.unwrap(), ["cached"]);
//! ```

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::Error;
use crate::fallible::{Fallible, Guarded};
use crate::observe::{Event, Observers};

/// The boxed future a [`Fallback::with_future`] action returns (`Send`
/// natively, not on wasm32).
#[cfg(not(target_arch = "wasm32"))]
pub type FallbackFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, Error<E>>> + Send>>;
/// The boxed future a [`Fallback::with_future`] action returns (`Send`
/// natively, not on wasm32).
#[cfg(target_arch = "wasm32")]
pub type FallbackFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, Error<E>>>>>;

type Predicate<E> = Arc<dyn Fn(&Error<E>) -> bool + Send + Sync>;
type SyncAction<T, E> = Arc<dyn Fn(Error<E>) -> Result<T, Error<E>> + Send + Sync>;
type AsyncAction<T, E> = Arc<dyn Fn(Error<E>) -> FallbackFuture<T, E> + Send + Sync>;

enum Action<T, E> {
    Sync(SyncAction<T, E>),
    Async(AsyncAction<T, E>),
}

impl<T, E> Clone for Action<T, E> {
    fn clone(&self) -> Self {
        match self {
            Action::Sync(a) => Action::Sync(a.clone()),
            Action::Async(a) => Action::Async(a.clone()),
        }
    }
}

/// What to answer when a call fails; see the [module docs](self).
///
/// A cheap `Clone + Send + Sync` value; share it between callers.
///
/// # Cancel safety
///
/// The fallback's own future (if any) runs only after the call failed;
/// dropping [`call`](Fallback::call)'s future drops whichever is running.
pub struct Fallback<T, E> {
    action: Action<T, E>,
    when: Option<Predicate<E>>,
    name: Arc<str>,
    observers: Observers,
    /// Tells the observers that the fallback replaced an error (a
    /// `FallbackUsed` event with the error's `Debug` text); set with the
    /// observers, so programs without observers link neither the event nor
    /// the formatting.
    tell: Option<TellUsed<E>>,
}

impl<T, E> Clone for Fallback<T, E> {
    fn clone(&self) -> Self {
        Fallback {
            action: self.action.clone(),
            when: self.when.clone(),
            name: self.name.clone(),
            observers: self.observers.clone(),
            tell: self.tell,
        }
    }
}

impl<T, E> fmt::Debug for Fallback<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("name", &self.name)
            .field("async", &matches!(self.action, Action::Async(_)))
            .field("filtered", &self.when.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static, E: 'static> Fallback<T, E> {
    fn new(action: Action<T, E>) -> Self {
        Fallback {
            action,
            when: None,
            name: Arc::from(""),
            observers: Observers::new(),
            tell: None,
        }
    }

    /// Answer failures with a clone of `value`.
    pub fn value(value: T) -> Self
    where
        T: Clone + Send + Sync,
    {
        Fallback::new(Action::Sync(Arc::new(move |_| Ok(value.clone()))))
    }

    /// Answer failures with what `f` makes of the error (it may still fail).
    ///
    /// ```
    /// use staunch::fallback::Fallback;
    ///
    /// let f = Fallback::with(|e: staunch::Error<&str>| Ok::<_, staunch::Error<&str>>(format!("degraded: {e:?}")));
    /// let out = futures::executor::block_on(f.call(async { Err::<String, _>("timeout") }).into_future());
    /// assert!(out.unwrap().starts_with("degraded"));
    /// ```
    pub fn with(f: impl Fn(Error<E>) -> Result<T, Error<E>> + Send + Sync + 'static) -> Self {
        Fallback::new(Action::Sync(Arc::new(f)))
    }

    /// Answer failures with the output of the future `f` makes (a second
    /// source, a cache read...).
    ///
    /// ```
    /// use staunch::fallback::Fallback;
    ///
    /// let f = Fallback::with_future(|_e: staunch::Error<&str>| Box::pin(async { Ok(2) }));
    /// let out = futures::executor::block_on(f.call(async { Err::<i32, _>("down") }).into_future());
    /// assert_eq!(out.unwrap(), 2);
    /// ```
    pub fn with_future(
        f: impl Fn(Error<E>) -> FallbackFuture<T, E> + Send + Sync + 'static,
    ) -> Self {
        Fallback::new(Action::Async(Arc::new(f)))
    }
}

impl<T, E> Fallback<T, E> {
    /// Apply only to failures `applies` accepts (cancellation never, whatever
    /// it says).
    ///
    /// ```
    /// use staunch::fallback::Fallback;
    ///
    /// let f = Fallback::value(0).when(|e: &staunch::Error<&str>| e.is_timeout());
    /// let out = futures::executor::block_on(f.call(async { Err::<i32, _>("bad request") }).into_future());
    /// assert_eq!(out.unwrap_err().into_inner(), Some("bad request"));
    /// ```
    #[must_use]
    pub fn when(mut self, applies: impl Fn(&Error<E>) -> bool + Send + Sync + 'static) -> Self {
        self.when = Some(Arc::new(applies));
        self
    }

    /// The name used in events.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Who hears when the fallback is used.
    #[must_use]
    pub fn observers(mut self, observers: Observers) -> Self
    where
        E: fmt::Debug,
    {
        self.observers = observers;
        self.tell = Some(tell_used::<E>);
        self
    }

    /// Whether this fallback would answer `error`.
    #[must_use]
    pub fn applies_to(&self, error: &Error<E>) -> bool {
        !error.is_cancelled() && self.when.as_ref().is_none_or(|w| w(error))
    }

    /// Runs `op`; if it fails with an error the fallback applies to,
    /// answers with the fallback instead. `op` is a future of
    /// `Result<T, E>` or another staunch call (see [`Fallible`]), so a
    /// fallback can stand outside a whole pipeline:
    /// `fallback.call(policy.run(..))`.
    ///
    /// # Errors
    ///
    /// The call's error when the fallback does not apply (always for
    /// cancellation); otherwise the fallback's own error, if it fails.
    ///
    /// # Panics
    ///
    /// Never by itself. A panic in `op` or in the fallback's action unwinds
    /// through this call untouched (a fallback answers errors, not bugs);
    /// a panic already captured as [`Error::Panicked`] (a task's, by its
    /// group or join handle) is an error like the others and is answered
    /// unless [`when`](Fallback::when) leaves it out.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call drops the operation or the fallback.
    pub fn call<G>(&self, op: G) -> Guarded<impl Future<Output = Result<T, Error<E>>>>
    where
        G: Fallible<Ok = T, Err = E>,
        E: fmt::Debug,
    {
        Guarded::new(self.answer(crate::fallible::lifted(op)))
    }

    async fn answer<F>(&self, future: F) -> Result<T, Error<E>>
    where
        F: Future<Output = Result<T, Error<E>>>,
        E: fmt::Debug,
    {
        match future.await {
            Ok(v) => Ok(v),
            Err(e) if self.applies_to(&e) => {
                if let Some(tell) = self.tell {
                    tell(&self.observers, &self.name, &e);
                }
                match &self.action {
                    Action::Sync(f) => f(e),
                    Action::Async(f) => f(e).await,
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Tells the observers of the fallback named by the `Arc<str>` that it
/// replaced an error.
type TellUsed<E> = fn(&Observers, &Arc<str>, &Error<E>);

/// Tells observers that `error` was replaced: a `FallbackUsed` event with
/// the error's `Debug` form.
fn tell_used<E: fmt::Debug>(observers: &Observers, name: &Arc<str>, error: &Error<E>) {
    observers.emit(|| Event::FallbackUsed {
        name: name.clone(),
        error: format!("{error:?}"),
    });
}
