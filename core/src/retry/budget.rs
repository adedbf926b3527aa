//! A retry's total time budget.
//!
//! The retry loop reaches the budget's arithmetic only through the
//! functions stored here by [`Budget::new`], which only
//! [`RetryBuilder::budget`](super::RetryBuilder::budget) calls: a program
//! that never sets a budget does not link the clock read and the duration
//! arithmetic below (about half a kilobyte of wasm).

use std::time::Duration;

use crate::runtime::{Instant, OwnedTimer, Timer};

/// The total time a call may spend, with its checks.
pub(crate) struct Budget {
    pub(crate) total: Duration,
    /// Whether an attempt that starts after `delay`, in a call that started
    /// at `start`, would start at or after the budget's end.
    pub(crate) spent: fn(&Budget, &OwnedTimer, Instant, Duration) -> bool,
    /// The per-attempt limit, clipped to the time left `elapsed` into the call.
    pub(crate) clip: fn(&Budget, Duration, Duration) -> Duration,
}

impl Budget {
    pub(crate) fn new(total: Duration) -> Budget {
        Budget {
            total,
            spent: spent_by,
            clip: clipped,
        }
    }
}

/// The budget is a hard limit: the next attempt must start strictly before
/// it ends, or there is no time left for it to succeed in.
fn spent_by(budget: &Budget, timer: &OwnedTimer, start: Instant, delay: Duration) -> bool {
    let elapsed = timer.now().saturating_duration_since(start);
    elapsed.saturating_add(delay) >= budget.total
}

fn clipped(budget: &Budget, elapsed: Duration, limit: Duration) -> Duration {
    limit.min(budget.total.saturating_sub(elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::VirtualRuntime;

    #[test]
    fn an_attempt_must_start_strictly_before_the_budget_ends() {
        let rt = VirtualRuntime::new();
        let timer = OwnedTimer::new(rt.clone());
        let budget = Budget::new(Duration::from_millis(100));
        rt.advance(Duration::from_millis(60));
        let start = Instant::ORIGIN;
        assert!(!(budget.spent)(
            &budget,
            &timer,
            start,
            Duration::from_millis(39)
        ));
        assert!((budget.spent)(
            &budget,
            &timer,
            start,
            Duration::from_millis(40)
        ));
        assert!((budget.spent)(&budget, &timer, start, Duration::MAX));
    }

    #[test]
    fn the_attempt_limit_is_clipped_to_the_time_left() {
        let budget = Budget::new(Duration::from_millis(100));
        let ms = Duration::from_millis;
        assert_eq!((budget.clip)(&budget, ms(30), ms(50)), ms(50));
        assert_eq!((budget.clip)(&budget, ms(70), ms(50)), ms(30));
        assert_eq!((budget.clip)(&budget, ms(150), ms(50)), Duration::ZERO);
    }
}
