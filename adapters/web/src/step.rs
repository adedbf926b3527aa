//! How long each `setTimeout` of a sleep is: long sleeps are chained.

/// The longest delay `setTimeout` honours (2^31-1 ms, about 24.8 days);
/// browsers and Node fire a longer one at once instead of waiting.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// The delay to arm for a sleep with `remaining_ms` left: rounded up (so a
/// timer never fires before the deadline and spins), and capped at
/// [`MAX_TIMEOUT_MS`] so that a longer sleep is chained over several timers
/// rather than truncated. The sleep re-checks the clock each time a timer
/// fires and arms the next step until the deadline has passed.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn next_timeout_ms(remaining_ms: f64) -> f64 {
    if remaining_ms.is_nan() || remaining_ms <= 0.0 {
        0.0
    } else {
        remaining_ms.ceil().min(MAX_TIMEOUT_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sleeps_round_up_to_whole_milliseconds() {
        assert_eq!(next_timeout_ms(10.2), 11.0);
        assert_eq!(next_timeout_ms(0.01), 1.0);
        assert_eq!(next_timeout_ms(0.0), 0.0);
        assert_eq!(next_timeout_ms(f64::NAN), 0.0);
    }

    #[test]
    fn sleeps_beyond_the_set_timeout_limit_are_chained_not_truncated() {
        let thirty_days_ms = 30.0 * 24.0 * 3600.0 * 1000.0;
        let first = next_timeout_ms(thirty_days_ms);
        assert_eq!(first, MAX_TIMEOUT_MS);
        let second = next_timeout_ms(thirty_days_ms - first);
        assert!(second > 0.0 && second < MAX_TIMEOUT_MS);
        assert_eq!(first + second, thirty_days_ms);
    }
}
