//! The retry loop's events for observers.
//!
//! The loop does not build [`Event`]s itself, nor call the `on_retry` hook:
//! it calls a function that
//! [`RetryBuilder::observers`](super::RetryBuilder::observers) stores with
//! the observers and [`RetryBuilder::on_retry`](super::RetryBuilder::on_retry)
//! with the hook. A program that sets neither never links the events'
//! construction, their drop glue or the hook's call. The text of a failure is the
//! operation's own error in its `Debug` form (`Inner("503")`), or the name
//! of staunch's kind (`Timeout`): formatting durations and cancel reasons
//! would link that machinery into every program.

use std::fmt;
use std::time::Duration;

use super::policy::Config;
use crate::ErrorKind;
use crate::observe::Event;

/// What the loop has to tell observers.
pub(crate) enum Note<'a> {
    /// An attempt is starting.
    Started { attempt: u32 },
    /// `attempt` failed with `error`; the next one starts after `delay`.
    Scheduled {
        attempt: u32,
        delay: Duration,
        kind: ErrorKind,
        /// The operation's own error, when that is what failed.
        inner: Option<&'a dyn fmt::Debug>,
    },
    /// Retrying stopped after `attempts` attempts.
    Exhausted { attempts: u32 },
}

/// Turns a [`Note`] into an [`Event`] for the config's observers.
pub(crate) type Notify = fn(&Config, Note<'_>);

/// The [`Notify`] stored with observers or an `on_retry` hook: the hook
/// is called before each sleep, then the observers get the events retry has
/// always sent, the error in its `Debug` form.
pub(crate) fn notify_observers(config: &Config, note: Note<'_>) {
    // Only the methods that set a hook or observers store this function,
    // and both make the extras.
    let Some(extras) = config.extras() else {
        return;
    };
    if let (
        Some(hook),
        Note::Scheduled {
            attempt,
            delay,
            kind,
            ..
        },
    ) = (&extras.on_retry, &note)
    {
        hook(*attempt, *kind, *delay);
    }
    extras.observers.emit(|| {
        let name = extras.name.clone();
        match note {
            Note::Started { attempt } => Event::AttemptStarted { name, attempt },
            Note::Scheduled {
                attempt,
                delay,
                kind,
                inner,
            } => Event::RetryScheduled {
                name,
                attempt,
                delay,
                error: match inner {
                    Some(inner) => format!("Inner({inner:?})"),
                    None => format!("{kind:?}"),
                },
            },
            Note::Exhausted { attempts } => Event::RetryExhausted { name, attempts },
        }
    });
}

impl Config {
    /// Tells the observers, if any were registered. Out of line: one
    /// check serves the loop's three notes.
    #[inline(never)]
    pub(crate) fn note(&self, note: Note<'_>) {
        if let Some(notify) = self.notify {
            notify(self, note);
        }
    }
}
