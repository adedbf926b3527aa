//! The breaker's lock-free closed-state path: admitting a call is one
//! atomic load of `word`, and a plain success is one compare-and-swap on the
//! `pending` word (invariants 2 and 5 in [`machine`](super::machine)).
//! Everything else takes the machine's mutex.
//!
//! The pending word: `generation (31 bits) | warm (1 bit) | limit (8 bits) |
//! count (24 bits)`.

use super::CircuitOpen;
use super::machine::{CLOSED, FORCED_CLOSED, Shared, TAG_BITS};
use super::ticket::{Outcome, Ticket};
use crate::runtime::{Instant, Timer};
use crate::sync::Ordering;

pub(super) const COUNT_MASK: u64 = 0xFF_FFFF;
pub(super) const LIMIT_SHIFT: u32 = 24;
pub(super) const LIMIT_MASK: u64 = 0xFF << LIMIT_SHIFT;
/// The limit field's value that means "up to `COUNT_MASK`".
pub(super) const UNLIMITED: u64 = 0xFF;
/// The most successes a time window lets pile up before reading the clock.
pub(super) const MAX_TIMED_LIMIT: u64 = UNLIMITED - 1;
pub(super) const WARM: u64 = 1 << 32;
pub(super) const GEN_MASK: u64 = 0x7FFF_FFFF;

pub(super) fn gen_bits(generation: u64) -> u64 {
    (generation & GEN_MASK) << 33
}

/// Where the count field starts for a limit: it counts up from there and
/// a success may be counted lock-free until it reaches `COUNT_MASK`, so the
/// hot path compares with a constant whatever the limit.
#[inline]
pub(super) fn start(limit: u64) -> u64 {
    if limit == UNLIMITED {
        0
    } else {
        COUNT_MASK - limit
    }
}

/// The pending word for `generation` with `limit` and nothing counted.
pub(super) fn fresh(generation: u64, limit: u64) -> u64 {
    gen_bits(generation) | (limit << LIMIT_SHIFT) | start(limit)
}

/// The successes counted in pending word `p`.
pub(super) fn counted(p: u64) -> u64 {
    (p & COUNT_MASK) - start((p & LIMIT_MASK) >> LIMIT_SHIFT)
}

impl Shared {
    #[inline]
    pub(super) fn start_time(&self) -> Option<Instant> {
        self.config.slow_call.map(|_| self.clock.now())
    }

    /// Counts a plain closed-state success without locking, when that
    /// cannot change the state (invariant 5). `false`: take the lock.
    #[inline]
    pub(super) fn count_success(&self, generation: u64) -> bool {
        let mut p = self.pending.load(Ordering::Relaxed);
        loop {
            if p & !(COUNT_MASK | LIMIT_MASK | WARM) != gen_bits(generation)
                || p & WARM == 0
                || p & COUNT_MASK == COUNT_MASK
            {
                return false;
            }
            match self
                .pending
                .compare_exchange_weak(p, p + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => p = now,
            }
        }
    }

    /// Admits a call or refuses it.
    ///
    /// Inlined into callers (it sits on every call's path across the crate
    /// boundary): the closed-state answer is one atomic load; everything
    /// else is in [`acquire_locked`](Self::acquire_locked).
    #[inline]
    pub(crate) fn acquire(&self) -> Result<Ticket, CircuitOpen> {
        let word = self.word.load(Ordering::Acquire);
        let tag = word & ((1 << TAG_BITS) - 1);
        if tag == CLOSED || tag == FORCED_CLOSED {
            return Ok(Ticket::new(word >> TAG_BITS, false, self.start_time()));
        }
        self.acquire_locked()
    }

    /// Records what an admitted call did.
    ///
    /// Inlined into callers: a plain closed-state success (no clock needed,
    /// not a probe) is counted lock-free; everything else goes to
    /// [`record_locked`](Self::record_locked).
    #[inline]
    pub(crate) fn record(&self, ticket: Ticket, verdict: Outcome) {
        if verdict == Outcome::Success
            && !ticket.is_timed()
            && !ticket.probe()
            && self.count_success(ticket.generation())
        {
            return;
        }
        self.record_locked(ticket, verdict);
    }

    /// Frees the slot of a probe that will never report.
    #[inline]
    pub(crate) fn release(&self, ticket: Ticket) {
        if ticket.probe() {
            self.record(ticket, Outcome::Neither);
        }
    }
}
