//! The generic cell rate algorithm (GCRA) and the seam its state sits behind.
//!
//! # The algorithm
//!
//! A limiter admitting `count` calls per `period` with a burst of `burst`
//! spaces calls one *emission interval* `T = period / count` apart (rounded
//! up to a whole nanosecond, so rounding can only make it stricter) and
//! tolerates up to `burst` calls at once. Its whole state is one number, the
//! *theoretical arrival time* (TAT): when the limiter would be idle again if
//! every admitted call had arrived exactly on schedule.
//!
//! A call of cost `n` at time `now` would move the TAT to
//! `max(TAT, now) + n·T`; it is admitted when that new TAT lies at most
//! `burst·T` after `now`, and otherwise refused with the wait
//! `new TAT - burst·T - now`, after which it would be admitted.
//!
//! # Invariants
//!
//! 1. Times are nanoseconds since the Unix epoch (an absolute base), so two
//!    processes, or two limiters built at different times, that share one
//!    TAT agree on what it means.
//! 2. A TAT at or before `now` means exactly the same as a fresh state: such
//!    a state can be forgotten (the keyed limiter's eviction relies on it).
//! 3. Every admission adds at least `T` to the TAT and leaves it at most
//!    `burst·T` after its own `now`. Whatever order the updates land in, in
//!    any window of length `W` at most `W / T + burst` calls are admitted
//!    (the first admitted in the window leaves TAT ≥ its `now + T`, the last
//!    leaves TAT ≤ its `now + burst·T`, and each adds `T`).
//! 4. State changes only through [`RateStore::compare_exchange`], so two
//!    racing callers never both spend the same capacity (no lost update).

use crate::runtime::{MaybeSend, MaybeSync};
use crate::sync::{AtomicU64, Ordering};

/// The limiter's arithmetic: emission interval and burst, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// `T`: nanoseconds between two calls at the steady rate.
    pub(crate) emission_ns: u64,
    /// How many calls may come at once.
    pub(crate) burst: u32,
    /// `(burst - 1) · T`: how far past `now` the TAT may lie for a call of
    /// cost 1 to be admitted (governor's `tau`). Kept so that the common
    /// `check()` finds its allowance in one load.
    tau_ns: u64,
}

impl Gcra {
    /// The arithmetic for `burst` calls at once, one per `emission_ns`, or
    /// `None` when `burst · T` does not fit in a `u64` of nanoseconds
    /// (about 584 years). Given that, no allowance below can overflow.
    pub(crate) fn new(emission_ns: u64, burst: u32) -> Option<Gcra> {
        let span_ns = emission_ns.checked_mul(u64::from(burst))?;
        Some(Gcra {
            emission_ns,
            burst,
            tau_ns: span_ns.checked_sub(emission_ns)?,
        })
    }

    /// `burst · T`.
    pub(crate) fn span_ns(&self) -> u64 {
        self.tau_ns + self.emission_ns
    }

    /// The latest TAT at which a call costing `cost` is still admitted at
    /// `now`: `now + burst·T - cost·T`. `cost` must be at most the burst
    /// (every caller checks it first) and `now` at most
    /// `u64::MAX - burst·T` (the limiter's clock stops there), so nothing
    /// here or in [`decide`](Self::decide) overflows.
    ///
    /// A call is admitted when its new TAT, `max(TAT, now) + cost·T`, lies
    /// at most `burst·T` after `now`; since `now` itself is never past this
    /// threshold, that is exactly `TAT <= threshold`. So deciding needs one
    /// comparison, and the refusal's wait, `new TAT - burst·T - now`, is
    /// `TAT - threshold` (there `TAT > now`, so the maximum is the TAT).
    ///
    /// Worked out once per check, by the caller: a compare-and-swap retry
    /// does not redo it.
    #[inline]
    pub(crate) fn threshold(&self, now: u64, cost: u32) -> u64 {
        // `tau + T - cost·T` = `burst·T - cost·T`, which fits (see `new`)
        // and is not negative for a cost up to the burst; a cost of 1, the
        // plain `check`, folds to `tau`.
        let allowance = self
            .tau_ns
            .wrapping_add(self.emission_ns)
            .wrapping_sub(u64::from(cost).wrapping_mul(self.emission_ns));
        now.wrapping_add(allowance)
    }

    /// The TAT after admitting `cost` at `now`, or the nanoseconds to wait
    /// (never zero), given `threshold` = [`threshold(now, cost)`](Self::threshold).
    /// The new TAT is at most `threshold + cost·T = now + burst·T`, which
    /// fits.
    #[inline]
    pub(crate) fn decide(&self, tat: u64, now: u64, threshold: u64, cost: u32) -> Result<u64, u64> {
        if tat <= threshold {
            Ok(tat
                .max(now)
                .wrapping_add(u64::from(cost).wrapping_mul(self.emission_ns)))
        } else {
            Err(tat - threshold)
        }
    }
}

/// Where a [`RateLimiter`](super::RateLimiter) keeps its one state value,
/// the theoretical arrival time (TAT): nanoseconds since the Unix epoch, 0
/// for a fresh limiter.
///
/// In memory it is an [`AtomicU64`](std::sync::atomic::AtomicU64), the
/// default, used without dynamic dispatch. Another store (a word in memory
/// shared by the processes of one host, say) plugs in through
/// [`RateLimiterBuilder::build_with_store`](super::RateLimiterBuilder::build_with_store):
/// the limiter reads the TAT, decides on its own clock, and writes the new
/// TAT only if nobody changed it meanwhile, retrying with the value that
/// won. So the store needs two operations, and every admission is counted
/// exactly once however callers race.
///
/// A store that must decide on its own clock in one step, such as Redis
/// (where a compare-and-swap would cost two round trips and trust each
/// client's clock), does not fit this seam: staunch-redis's
/// `RedisRateLimiter` runs the same algorithm as one Lua script on the
/// server's `TIME`.
pub trait RateStore: MaybeSend + MaybeSync {
    /// The current TAT (0 for a fresh limiter). Must see every write that
    /// happened before it (acquire ordering, for an atomic).
    fn load(&self) -> u64;
    /// Replaces `current` with `new` if the TAT is still `current`, or
    /// returns the value found instead. May fail spuriously (the limiter
    /// retries with the value returned).
    ///
    /// # Errors
    ///
    /// The TAT found, when it was not `current`.
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64>;
}

impl RateStore for AtomicU64 {
    #[inline]
    fn load(&self) -> u64 {
        AtomicU64::load(self, Ordering::Acquire)
    }
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64> {
        AtomicU64::compare_exchange_weak(self, current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }
}

/// An [`Arc`](std::sync::Arc) of a store is the same store: limiters
/// holding clones of one `Arc` share one state (see
/// [`build_with_store`](super::RateLimiterBuilder::build_with_store)).
impl<S: RateStore + ?Sized> RateStore for std::sync::Arc<S>
where
    std::sync::Arc<S>: MaybeSend + MaybeSync,
{
    #[inline]
    fn load(&self) -> u64 {
        (**self).load()
    }
    #[inline]
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64> {
        (**self).compare_exchange(current, new)
    }
}

/// Admits `cost` at `now` against `store`, retrying on a lost race with the
/// value that won, so every admission is counted exactly once.
#[inline]
pub(crate) fn admit<S: RateStore + ?Sized>(
    store: &S,
    gcra: &Gcra,
    now: u64,
    cost: u32,
) -> Result<(), u64> {
    admit_below(store, gcra, now, gcra.threshold(now, cost), cost)
}

/// [`admit`], given `threshold` = [`gcra.threshold(now, cost)`](Gcra::threshold).
///
/// The first attempt is compiled into the caller as straight-line code; a
/// compare-and-swap that lost a race retries out of line. So an uncontended
/// check has no loop for the compiler to hoist loads out of (a refusal
/// never reads `T`), and every call site carries one attempt, not a loop.
#[inline]
pub(crate) fn admit_below<S: RateStore + ?Sized>(
    store: &S,
    gcra: &Gcra,
    now: u64,
    threshold: u64,
    cost: u32,
) -> Result<(), u64> {
    let tat = store.load();
    let new_tat = gcra.decide(tat, now, threshold, cost)?;
    match store.compare_exchange(tat, new_tat) {
        Ok(()) => Ok(()),
        Err(actual) => retry(store, gcra, now, threshold, cost, actual),
    }
}

/// [`admit_below`] after a lost race, from the TAT that won it.
#[inline(never)]
fn retry<S: RateStore + ?Sized>(
    store: &S,
    gcra: &Gcra,
    now: u64,
    threshold: u64,
    cost: u32,
    mut tat: u64,
) -> Result<(), u64> {
    loop {
        let new_tat = gcra.decide(tat, now, threshold, cost)?;
        match store.compare_exchange(tat, new_tat) {
            Ok(()) => return Ok(()),
            Err(actual) => tat = actual,
        }
    }
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::Arc;

    /// Three callers race for a burst of two at one instant: whatever the
    /// interleaving, exactly two are admitted and the TAT counts both, so
    /// a caller that lost a compare-and-swap retried from the TAT that won
    /// (invariant 4).
    #[test]
    fn loom_racing_callers_are_each_counted_exactly_once() {
        loom::model(|| {
            let gcra = Gcra::new(100, 2).expect("fits");
            let tat = Arc::new(AtomicU64::new(0));
            let now = 1_000;
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let tat = tat.clone();
                    loom::thread::spawn(move || admit(&*tat, &gcra, now, 1).is_ok())
                })
                .collect();
            let mine = admit(&*tat, &gcra, now, 1).is_ok();
            let admitted = others
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .chain([mine])
                .filter(|&admitted| admitted)
                .count();
            assert_eq!(admitted, 2);
            assert_eq!(RateStore::load(&*tat), now + 200);
        });
    }
}
