//! Observability: every decision staunch makes is an [`Event`] given to the
//! [`Observer`]s you register.
//!
//! - [`Stats`]: per-operation count, successes, failures, min, max, mean,
//!   median, p99 and standard deviation, in constant memory.
//! - Feature `tracing`: `TracingObserver` turns events into `tracing`
//!   events with fields.
//! - Feature `metrics`: `MetricsObserver` feeds counters and histograms
//!   through the `metrics` facade (any exporter, Prometheus included).
//!
//! ```
//! use staunch::observe::{Event, Observers};
//! use std::sync::{Arc, Mutex};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let observers = Observers::new().with({
//!     let seen = seen.clone();
//!     move |e: &Event| seen.lock().unwrap().push(e.clone())
//! });
//! observers.emit(|| Event::AttemptStarted { name: "fetch".into(), attempt: 1 });
//! assert_eq!(seen.lock().unwrap().len(), 1);
//! ```

mod event;
#[cfg(feature = "metrics")]
mod metrics_observer;
mod stats;
#[cfg(feature = "tracing")]
mod tracing_observer;

use std::fmt;
use std::sync::Arc;

mod circuit_state;
pub use circuit_state::CircuitState;
pub use event::Event;

use crate::runtime::{MaybeSend, MaybeSync};
#[cfg(feature = "metrics")]
pub use metrics_observer::MetricsObserver;
pub use stats::{Stats, Summary};
#[cfg(feature = "tracing")]
pub use tracing_observer::TracingObserver;

/// Receives staunch's [`Event`]s. Implemented for every `Fn(&Event)`.
///
/// Observers are called inline, where the decision is made: keep them fast
/// and never block in them.
pub trait Observer: MaybeSend + MaybeSync + 'static {
    /// Called once per event.
    fn on_event(&self, event: &Event);
}

impl<F: Fn(&Event) + MaybeSend + MaybeSync + 'static> Observer for F {
    fn on_event(&self, event: &Event) {
        self(event)
    }
}

/// A cheap-to-clone list of observers. Emitting to an empty list costs a
/// branch and never builds the event.
#[derive(Clone, Default)]
pub struct Observers(Option<Arc<[Arc<dyn Observer>]>>);

impl Observers {
    /// No observers.
    #[must_use]
    pub fn new() -> Observers {
        Observers(None)
    }

    /// These observers plus `observer`.
    #[must_use]
    pub fn with(self, observer: impl Observer) -> Observers {
        let mut all: Vec<Arc<dyn Observer>> = self.0.map(|a| a.to_vec()).unwrap_or_default();
        all.push(Arc::new(observer));
        Observers(Some(all.into()))
    }

    /// Whether any observer is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Builds the event with `make` and gives it to every observer; does
    /// nothing (and never calls `make`) when there are none.
    pub fn emit(&self, make: impl FnOnce() -> Event) {
        if let Some(all) = &self.0 {
            let event = make();
            for observer in all.iter() {
                observer.on_event(&event);
            }
        }
    }
}

/// Observers that keep every event, and the list they keep them in: the
/// unit tests' way to see what a primitive told its observers.
#[cfg(test)]
pub(crate) fn recording() -> (Observers, Arc<std::sync::Mutex<Vec<Event>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let observers = Observers::new().with({
        let seen = seen.clone();
        move |e: &Event| seen.lock().unwrap().push(e.clone())
    });
    (observers, seen)
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Observers({})", self.0.as_ref().map_or(0, |a| a.len()))
    }
}
