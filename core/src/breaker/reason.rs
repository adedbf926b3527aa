//! Why a breaker changed state or refused a call, kept as numbers until an
//! observer needs the words.
//!
//! The events are made and told by [`tell`], which only
//! [`CircuitBreakerBuilder::observers`](super::CircuitBreakerBuilder::observers)
//! stores: a program that registers no observers never links the
//! formatting (floats, durations; about 12 KB of wasm after `wasm-opt -Oz`)
//! nor the events' construction and drop glue (about 1 KB), and one that
//! does sees exactly the events it always saw.

use std::sync::Arc;
use std::time::Duration;

use super::CircuitState;
use super::error::CircuitOpen;
use crate::observe::{Event, Observers};

/// A state change's or a refusal's cause.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reason {
    /// `bad` of `probes` half-open probes failed.
    ProbesFailed { bad: u32, probes: u32 },
    /// `slowed` of `probes` half-open probes were slow.
    ProbesSlow { slowed: u32, probes: u32 },
    /// `ok` of `probes` half-open probes succeeded.
    ProbesSucceeded { ok: u32, probes: u32 },
    /// `n` failures in a row.
    InARow(u32),
    /// The window's failure rate (0 to 1) over `calls` calls.
    FailureRate { rate: f64, calls: u64 },
    /// The window's slow-call rate (0 to 1) over `calls` calls.
    SlowRate { rate: f64, calls: u64 },
    /// The open duration that ran out.
    OpenFor(Duration),
    /// The probe timeout that ran out with a probe still in flight.
    ProbesUndecided(Duration),
    /// A state set by hand ("forced open", "forced closed", "reset").
    Forced(&'static str),
    /// A call was refused.
    Refused(CircuitOpen),
}

/// What a breaker has to tell its observers.
pub(crate) enum Notice {
    /// The state went from `from` to `to` because of `reason`.
    Changed {
        from: CircuitState,
        to: CircuitState,
        reason: Reason,
    },
    /// A call was refused.
    Refused(CircuitOpen),
}

/// Tells the observers of the breaker named `name` a [`Notice`].
pub(crate) type Tell = fn(&Observers, &Arc<str>, Notice);

/// The [`Tell`] stored with observers.
pub(crate) fn tell(observers: &Observers, name: &Arc<str>, notice: Notice) {
    observers.emit(|| match notice {
        Notice::Changed { from, to, reason } => Event::CircuitStateChanged {
            name: name.clone(),
            from,
            to,
            reason: words(reason),
        },
        Notice::Refused(open) => Event::CallRejected {
            name: name.clone(),
            reason: words(Reason::Refused(open)),
        },
    });
}

/// The words events carry for `reason`.
fn words(reason: Reason) -> String {
    match reason {
        Reason::ProbesFailed { bad, probes } => format!("{bad} of {probes} probes failed"),
        Reason::ProbesSlow { slowed, probes } => format!("{slowed} of {probes} probes were slow"),
        Reason::ProbesSucceeded { ok, probes } => format!("{ok} of {probes} probes succeeded"),
        Reason::InARow(n) => format!("{n} failures in a row"),
        Reason::FailureRate { rate, calls } => {
            format!("failure rate {:.0}% over {calls} calls", 100.0 * rate)
        }
        Reason::SlowRate { rate, calls } => {
            format!("slow-call rate {:.0}% over {calls} calls", 100.0 * rate)
        }
        Reason::OpenFor(open) => format!("open for {open:?}"),
        Reason::ProbesUndecided(timeout) => {
            format!("a probe was still in flight {timeout:?} after the last was admitted")
        }
        Reason::Forced(what) => what.to_owned(),
        Reason::Refused(open) => open.to_string(),
    }
}
