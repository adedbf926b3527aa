use std::time::Duration;

use thiserror::Error;

/// A rate limiter refused the call: it would be admitted after `retry_after`.
///
/// In a [`Policy`](crate::policy::Policy) it arrives as
/// [`Error::RateLimited`](crate::Error::RateLimited); a retry classifier can
/// answer it with `Decision::RetryAfter(retry_after)`.
///
/// ```
/// use staunch::rate::RateLimited;
/// use staunch::retry::Decision;
/// use std::time::Duration;
///
/// let refused: staunch::Error<()> = RateLimited { retry_after: Duration::from_millis(30) }.into();
/// let decision = match &refused {
///     staunch::Error::RateLimited(r) => Decision::RetryAfter(r.retry_after),
///     other => Decision::by_default(other),
/// };
/// assert_eq!(decision, Decision::RetryAfter(Duration::from_millis(30)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("rate limited: try again in {retry_after:?}")]
pub struct RateLimited {
    /// How long until the same call would be admitted (if nobody else takes
    /// the capacity first).
    pub retry_after: Duration,
}

/// Why a weighted or keyed rate check refused.
///
/// ```
/// use staunch::rate::RateError;
///
/// let never = RateError::CostOverBurst { cost: 12, burst: 10 };
/// assert_eq!(never.retry_after(), None); // no wait would help
/// assert!(never.to_string().contains("split the work"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RateError {
    /// Not now; try again after the wait inside.
    #[error(transparent)]
    Limited(#[from] RateLimited),
    /// The cost is above the burst, so no wait would ever be enough.
    #[error(
        "a cost of {cost} can never be admitted: the burst is {burst}; split the work into parts of at most {burst} or raise the burst"
    )]
    CostOverBurst {
        /// The cost asked for.
        cost: u32,
        /// The limiter's burst.
        burst: u32,
    },
    /// A keyed limiter holds its maximum number of keys, none idle, and this
    /// key is new; a key becomes idle (and its slot free) after `retry_after`.
    #[error(
        "rate limiter full: it tracks its maximum of {max_keys} keys and none is idle; try again in {retry_after:?} or raise `max_keys`"
    )]
    KeysFull {
        /// The limiter's cap on keys.
        max_keys: usize,
        /// How long until the soonest key goes idle.
        retry_after: Duration,
    },
}

impl RateError {
    /// How long to wait before the same call could succeed, or `None` when no
    /// wait is enough ([`RateError::CostOverBurst`]).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RateError::Limited(l) => Some(l.retry_after),
            RateError::KeysFull { retry_after, .. } => Some(*retry_after),
            RateError::CostOverBurst { .. } => None,
        }
    }
}
