//! Configuration errors shared by every builder.

use std::borrow::Cow;

use thiserror::Error;

/// A builder was given a setting that cannot work (zero attempts, a failure
/// ratio above 1, a minimum delay above the maximum, ...).
///
/// Builders return it from `build()`, so bad configuration is caught where it
/// is written and never panics or hangs at call time.
///
/// ```
/// let err = staunch::ConfigError::new("max_attempts", "must be at least 1; use 1 to disable retries");
/// assert_eq!(err.to_string(), "invalid `max_attempts`: must be at least 1; use 1 to disable retries");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid `{setting}`: {problem}")]
pub struct ConfigError {
    /// The name of the setting that is wrong.
    pub setting: &'static str,
    /// What is wrong with it and what to do instead.
    pub problem: Cow<'static, str>,
}

impl ConfigError {
    /// A configuration error for `setting`, saying what is wrong.
    #[must_use]
    pub fn new(setting: &'static str, problem: impl Into<Cow<'static, str>>) -> ConfigError {
        ConfigError {
            setting,
            problem: problem.into(),
        }
    }
}
