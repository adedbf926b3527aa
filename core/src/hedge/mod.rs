//! Hedged requests: when an attempt is slow, start another one and take
//! whichever succeeds first.
//!
//! A [`Hedge`] starts the first attempt at once and another one each time
//! the delay passes without a success, up to `max_attempts` running in all.
//! A failed attempt starts the next one at once (no point waiting for a
//! delay when we already know). The first success wins and every other
//! attempt is dropped. If every attempt fails, the error of the attempt that
//! finished last is returned. With a zero delay every attempt starts at once
//! (parallel mode).
//!
//! Cancellation is never swallowed: an attempt that ends in
//! [`Error::Cancelled`] ends the whole hedge with it.
//!
//! ```
//! use staunch::hedge::Hedge;
//! use staunch::runtime::Timer;
//! use staunch::testing::VirtualRuntime;
//! use std::time::Duration;
//!
//! let rt = VirtualRuntime::new();
//! let hedge = Hedge::builder(rt.clone()).delay(Duration::from_millis(50)).max_attempts(2).build()?;
//! let out = rt.block_on(hedge.run(|attempt| {
//!     let rt = rt.clone();
//!     async move {
//!         // The first replica is stuck; the hedge after 50 ms answers in 10.
//!         let took = if attempt.number() == 1 { 1000 } else { 10 };
//!         rt.sleep(Duration::from_millis(took)).await;
//!         Ok::<_, ()>(attempt.number())
//!     }
//! }));
//! assert_eq!(out.unwrap().unwrap(), 2);
//! assert_eq!(rt.now().since_origin(), Duration::from_millis(60));
//! # Ok::<(), staunch::ConfigError>(())
//! ```

#[cfg(test)]
mod tests;

use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::fallible::{Fallible, Guarded};
use crate::observe::{Event, Observers};
use crate::retry::Attempt;
use crate::runtime::{AnyTimer, BoxTask, Timer};
use crate::{ConfigError, Error, ErrorKind};

/// When and how many extra attempts to start; see the [module docs](self).
///
/// A cheap `Clone + Send + Sync` value.
///
/// # Cancel safety
///
/// Dropping a run drops every attempt still running.
#[derive(Clone)]
pub struct Hedge {
    timer: AnyTimer,
    delay: Duration,
    max_attempts: u32,
    name: Arc<str>,
    observers: Observers,
    /// Tells the observers that an attempt started; set with them, so
    /// programs without observers do not link the event.
    tell: Option<fn(&Observers, &Arc<str>, u32)>,
}

/// Tells observers that hedge attempt `attempt` started.
fn tell_started(observers: &Observers, name: &Arc<str>, attempt: u32) {
    observers.emit(|| Event::HedgeStarted {
        name: name.clone(),
        attempt,
    });
}

impl fmt::Debug for Hedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.name)
            .field("delay", &self.delay)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Hedge`]. Defaults: a 100 ms delay, 2 attempts in all.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until you call `build()`"]
pub struct HedgeBuilder {
    hedge: Hedge,
}

impl HedgeBuilder {
    /// How long to wait for a success before starting another attempt
    /// (zero: start them all at once, before the first is polled, without
    /// waiting on the timer even once).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.hedge.delay = delay;
        self
    }

    /// The most attempts running in all, the first included (at most
    /// [`Hedge::MAX_ATTEMPTS`]).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.hedge.max_attempts = n;
        self
    }

    /// The name used in events.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.hedge.name = name.into();
        self
    }

    /// Who hears when a hedge attempt starts.
    pub fn observers(mut self, observers: Observers) -> Self {
        self.hedge.observers = observers;
        self.hedge.tell = Some(tell_started);
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] when `max_attempts` is zero or above
    /// [`Hedge::MAX_ATTEMPTS`] (with a zero delay every attempt starts at
    /// once, so the bound is what keeps one call from becoming a flood).
    pub fn build(self) -> Result<Hedge, ConfigError> {
        if self.hedge.max_attempts == 0 {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at least 1; 1 means no hedging",
            ));
        }
        if self.hedge.max_attempts > Hedge::MAX_ATTEMPTS {
            return Err(ConfigError::new(
                "max_attempts",
                "must be at most 10 (Hedge::MAX_ATTEMPTS): each attempt is a full request to the upstream, and with a short delay they all run at once",
            ));
        }
        Ok(self.hedge)
    }
}

impl Hedge {
    /// The most attempts one hedged call may run, the first included
    /// (Polly's bound too): more copies of one request add load, not
    /// latency wins.
    pub const MAX_ATTEMPTS: u32 = 10;

    /// A builder timing hedges on `timer`, starting from the defaults
    /// (100 ms, 2 attempts).
    pub fn builder<T: Timer + 'static>(timer: T) -> HedgeBuilder {
        HedgeBuilder {
            hedge: Hedge {
                timer: AnyTimer::new(timer),
                delay: Duration::from_millis(100),
                max_attempts: 2,
                name: Arc::from(""),
                observers: Observers::new(),
                tell: None,
            },
        }
    }

    /// Runs attempts made by `op` until one succeeds. `op` is told which
    /// [`Attempt`] it is making (its number from 1, the time since the first
    /// started, and how the last finished attempt failed), the same context
    /// retry and policy give, and returns a future of `Result<T, E>` or
    /// another staunch call (see [`Fallible`]). An attempt ending in
    /// [`Error::Cancelled`] ends the hedge at once with it.
    ///
    /// # Errors
    ///
    /// The error of the attempt that finished last ([`Error::Inner`] for a
    /// plain future's own error), or the cancellation.
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call drops every running attempt.
    ///
    /// ```
    /// // Each attempt may be another guard's call; its error passes through.
    /// use staunch::{breaker::CircuitBreaker, hedge::Hedge, testing::VirtualRuntime};
    ///
    /// let rt = VirtualRuntime::new();
    /// let hedge = Hedge::builder(rt.clone()).build()?;
    /// let breaker = CircuitBreaker::builder(rt.clone()).build()?;
    /// let out = rt.block_on(hedge.run(|_| breaker.call(async { Ok::<_, std::io::Error>(7) })));
    /// assert_eq!(out.unwrap()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run<G, F>(&self, op: F) -> Guarded<impl Future<Output = Result<G::Ok, Error<G::Err>>>>
    where
        F: FnMut(Attempt) -> G,
        G: Fallible,
    {
        Guarded::new(self.race(op))
    }

    async fn race<G, F>(&self, mut op: F) -> Result<G::Ok, Error<G::Err>>
    where
        F: FnMut(Attempt) -> G,
        G: Fallible,
    {
        let timer = &self.timer;
        let start = timer.now();
        // Starts attempt `number` (told to the observers) after `previous`.
        let mut launch = |number: u32, previous: Option<ErrorKind>| {
            if number > 1
                && let Some(tell) = self.tell
            {
                tell(&self.observers, &self.name, number);
            }
            crate::fallible::lifted(op(Attempt {
                number,
                hedge: number,
                elapsed: timer.now().saturating_duration_since(start),
                previous,
            }))
        };
        let mut previous = None;
        let mut running = FuturesUnordered::new();
        running.push(launch(1, None));
        let mut started = 1u32;
        if self.delay.is_zero() {
            // Parallel mode: every attempt starts now, before the first is
            // polled. Waiting out a zero delay would still yield to the
            // runtime once per attempt (a sleep is a yield point: in a
            // browser each is a `setTimeout(0)` turn, clamped to 4 ms).
            while started < self.max_attempts {
                started += 1;
                running.push(launch(started, None));
            }
        }
        let mut next_hedge: Option<BoxTask> = self.schedule(started);
        loop {
            let event = poll_fn(|cx| {
                if let Poll::Ready(Some(out)) = running.poll_next_unpin(cx) {
                    return Poll::Ready(Some(out));
                }
                if let Some(sleep) = next_hedge.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            match event {
                Some(Ok(value)) => return Ok(value),
                Some(Err(e)) if e.is_cancelled() => return Err(e),
                Some(Err(e)) if started == self.max_attempts && running.is_empty() => {
                    return Err(e);
                }
                Some(Err(e)) if started == self.max_attempts => previous = Some(e.kind()),
                // A failure, or the delay passed: start the next attempt now.
                Some(Err(_)) | None => {
                    if let Some(Err(e)) = &event {
                        previous = Some(e.kind());
                    }
                    started += 1;
                    running.push(launch(started, previous));
                    next_hedge = self.schedule(started);
                }
            }
        }
    }

    fn schedule(&self, started: u32) -> Option<BoxTask> {
        (started < self.max_attempts).then(|| self.timer.sleep(self.delay))
    }
}
