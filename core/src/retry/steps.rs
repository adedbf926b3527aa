//! The retry loop's steps with the settings a plain policy does without: a
//! classifier, a total budget, the `on_retry` hook and observers.
//!
//! The loop takes these steps only through a [`Steps`] that the builder
//! methods setting one of those store, and otherwise follows the plain rules
//! in `run.rs`. So a program whose policies set none of them links neither
//! the steps nor their calls to the classifier, the budget's checks and the
//! notes (about 0.6 KB of wasm); what it still pays for is building a
//! [`Failed`] for them.

use std::any::Any;
use std::fmt;
use std::mem::ManuallyDrop;
use std::time::Duration;

use super::backoff::Backoff;
use super::error::StopReason;
use super::notify::Note;
use super::policy::{Decision, Retry};
use crate::runtime::Instant;
use crate::{Error, ErrorKind};

/// A failed attempt, as the steps see it.
pub(crate) struct Failed<'a> {
    /// The attempt's number, from 1.
    pub(crate) number: u32,
    /// When the call's first attempt was timed from.
    pub(crate) start: Instant,
    pub(crate) kind: ErrorKind,
    /// What the default classification says about the error.
    pub(crate) by_default: Decision,
    /// The `staunch::Error<E>` itself, for a classifier and the notes.
    pub(crate) error: &'a dyn Seen,
}

/// A failed attempt's `staunch::Error<E>` behind one reference: for a
/// classifier as `&dyn Any` (of a `ManuallyDrop`, see `Errors` in
/// `error.rs`), for the notes as the operation's own error. One vtable
/// serves both, so the loop builds one reference and no `Option`.
pub(crate) trait Seen: Any {
    /// The operation's own error, when that is what failed.
    fn inner(&self) -> Option<&dyn fmt::Debug>;
}

impl<E: fmt::Debug + 'static> Seen for ManuallyDrop<Error<E>> {
    fn inner(&self) -> Option<&dyn fmt::Debug> {
        Error::inner(self).map(|e| e as &dyn fmt::Debug)
    }
}

/// An attempt's time since the call's start, and its time limit.
type Timing = (Duration, Option<Duration>);

/// The loop's steps with every setting.
#[derive(Clone, Copy)]
pub(crate) struct Steps {
    /// Before attempt `number`: the time since `start` and the attempt's
    /// time limit.
    pub(crate) started: fn(&Retry, u32, Option<Instant>) -> Timing,
    /// After a failure: the delay before the next attempt, or why there is
    /// none.
    pub(crate) failed: fn(&Retry, &Failed<'_>, &mut Backoff) -> Result<Duration, StopReason>,
}

/// What the builder methods that set a classifier, a budget, a hook or
/// observers store.
pub(crate) const ALL: Steps = Steps { started, failed };

fn started(retry: &Retry, number: u32, start: Option<Instant>) -> Timing {
    let config = &*retry.config;
    config.note(Note::Started { attempt: number });
    // One clock read serves the attempt's context and its limit.
    let elapsed = retry.elapsed(start);
    // The per-attempt timeout, clipped to the time left in the budget.
    let limit = config.attempt_timeout.map(|limit| match &config.budget {
        Some(budget) => (budget.clip)(budget, elapsed, limit),
        None => limit,
    });
    (elapsed, limit)
}

fn failed(
    retry: &Retry,
    failed: &Failed<'_>,
    backoff: &mut Backoff,
) -> Result<Duration, StopReason> {
    let config = &*retry.config;
    let verdict = next_delay(retry, failed, backoff);
    match verdict {
        // The `on_retry` hook, if any, is called from here too.
        Ok(delay) => config.note(Note::Scheduled {
            attempt: failed.number,
            delay,
            kind: failed.kind,
            inner: failed.error.inner(),
        }),
        // Cancellation is no retry outcome: reported as exhausted, it would
        // count in `staunch_retries_exhausted_total` what a call dropped
        // mid-sleep by the same cancellation never counts.
        Err(StopReason::Cancelled) => {}
        Err(_) => config.note(Note::Exhausted {
            attempts: failed.number,
        }),
    }
    verdict
}

/// The plain rules, with the classifier's decision in place of the
/// default's and the budget on top.
fn next_delay(
    retry: &Retry,
    failed: &Failed<'_>,
    backoff: &mut Backoff,
) -> Result<Duration, StopReason> {
    let config = &*retry.config;
    // Cancellation is never retried, whatever a classifier would say, so
    // none is asked.
    let decision = if failed.kind == ErrorKind::Cancelled {
        failed.by_default
    } else {
        let answer = config
            .classify
            .and_then(|classify| classify(config, failed.error as &dyn Any));
        answer.unwrap_or(failed.by_default)
    };
    let delay = retry.delay_after(failed.number, failed.kind, decision, backoff)?;
    match &config.budget {
        Some(budget) if (budget.spent)(budget, &config.timer, failed.start, delay) => {
            Err(StopReason::Budget)
        }
        _ => Ok(delay),
    }
}

#[cfg(test)]
mod tests {
    use crate::observe::Observers;
    use crate::retry::{Decision, Retry};
    use crate::testing::VirtualRuntime;
    use std::time::Duration;

    #[test]
    fn the_steps_are_stored_only_with_a_setting_that_needs_them() {
        let rt = VirtualRuntime::new();
        let plain = Retry::builder(rt.clone())
            .max_attempts(5)
            .attempt_timeout(Duration::from_secs(1))
            .keep_all_errors(true)
            .retry_circuit_open(true)
            .name("fetch")
            .build()
            .unwrap();
        assert!(plain.config.steps.is_none());
        let each = [
            Retry::builder(rt.clone()).classify(|_: &crate::Error<u8>| Decision::Stop),
            Retry::builder(rt.clone()).retry_if(|_: &u8| false),
            Retry::builder(rt.clone()).budget(Duration::from_secs(1)),
            Retry::builder(rt.clone()).on_retry(|_, _, _| {}),
            Retry::builder(rt.clone()).observers(Observers::new()),
        ];
        for builder in each {
            assert!(builder.build().unwrap().config.steps.is_some());
        }
    }
}
