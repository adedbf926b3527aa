//! The token an admitted call carries until it reports, and what it reports.

use std::time::Duration;

use crate::runtime::Instant;

/// What an admitted call did, as a [`BreakerStore`](super::BreakerStore) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded (or failed in a way the breaker's rules count as
    /// a success).
    Success,
    /// The call failed.
    Failure,
    /// Counts as neither: the call was cancelled or rejected below, its
    /// permit was dropped unreported, or its error is ignored. A half-open
    /// probe reported this way frees its slot.
    Neither,
}

/// What an admitted call carries until it reports: two plain words, so it
/// travels through a caller's future in registers-sized pieces (an
/// `Option<Instant>` beside a `bool` was copied through the stack in
/// mismatched chunks, which stalled every call on store forwarding).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    /// `generation << 1 | probe`.
    tag: u64,
    /// Nanoseconds since the clock's origin when the call started, or
    /// [`NOT_TIMED`] when slow calls are not measured.
    started: u64,
}

/// `Ticket::started` when the start time was not read.
const NOT_TIMED: u64 = u64::MAX;

impl Ticket {
    #[inline]
    pub(super) fn new(generation: u64, probe: bool, started: Option<Instant>) -> Ticket {
        Ticket {
            tag: (generation << 1) | u64::from(probe),
            // Saturates 584 years after the clock's origin, one below the
            // "not timed" mark: a later start can only look slower.
            started: started.map_or(NOT_TIMED, |at| {
                crate::nanos::saturating_nanos(at.since_origin()).min(NOT_TIMED - 1)
            }),
        }
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.tag >> 1
    }

    #[inline]
    pub(crate) fn probe(self) -> bool {
        self.tag & 1 == 1
    }

    #[inline]
    pub(super) fn is_timed(self) -> bool {
        self.started != NOT_TIMED
    }

    pub(super) fn started(self) -> Option<Instant> {
        self.is_timed()
            .then(|| Instant::from_origin(Duration::from_nanos(self.started)))
    }
}
