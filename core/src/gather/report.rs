//! [`GatherReport`]: the outputs of a gather split into successes and
//! failures, each with its input position.

use std::error::Error as StdError;
use std::fmt;

/// Values with their input positions.
type Tagged<T> = Vec<(usize, T)>;

/// The outputs of [`gather`](super::gather) split into successes and
/// failures, each tagged with its position in the input, so a partial
/// failure can be logged, retried or reported without losing anything.
///
/// ```
/// use futures::future::ready;
/// use staunch::gather::{GatherReport, gather};
///
/// let results = futures::executor::block_on(gather([
///     ready(Ok::<u32, &str>(10)),
///     ready(Err("disk full")),
///     ready(Ok(30)),
/// ]));
/// let report = GatherReport::from(results);
/// assert_eq!(report.success_count(), 2);
/// assert_eq!(report.failures(), &[(1, "disk full")]);
/// assert_eq!(report.successes(), &[(0, 10), (2, 30)]);
///
/// let err = report.into_result().unwrap_err();
/// assert_eq!(err.to_string(), "1 of 3 gathered items failed, the first at index 1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a `GatherReport` holds the failures; inspect them or call `into_result`"]
pub struct GatherReport<T, E> {
    successes: Vec<(usize, T)>,
    failures: Vec<(usize, E)>,
}

impl<T, E> GatherReport<T, E> {
    /// Splits `results` (in input order) into successes and failures.
    pub fn new(results: impl IntoIterator<Item = Result<T, E>>) -> GatherReport<T, E> {
        let results = results.into_iter();
        let mut successes = Vec::with_capacity(results.size_hint().0);
        let mut failures = Vec::new();
        for (index, result) in results.enumerate() {
            match result {
                Ok(value) => successes.push((index, value)),
                Err(error) => failures.push((index, error)),
            }
        }
        GatherReport {
            successes,
            failures,
        }
    }

    /// The successful values with their input positions, in input order.
    #[must_use]
    pub fn successes(&self) -> &[(usize, T)] {
        &self.successes
    }

    /// The errors with their input positions, in input order.
    #[must_use]
    pub fn failures(&self) -> &[(usize, E)] {
        &self.failures
    }

    /// How many items succeeded.
    #[must_use]
    pub fn success_count(&self) -> usize {
        self.successes.len()
    }

    /// How many items failed.
    #[must_use]
    pub fn failure_count(&self) -> usize {
        self.failures.len()
    }

    /// How many items there were in all.
    #[must_use]
    pub fn len(&self) -> usize {
        self.successes.len() + self.failures.len()
    }

    /// Whether there were no items at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every item succeeded (also true for no items).
    #[must_use]
    pub fn all_succeeded(&self) -> bool {
        self.failures.is_empty()
    }

    /// The successes and the failures, each with input positions.
    #[must_use]
    pub fn into_parts(self) -> (Tagged<T>, Tagged<E>) {
        (self.successes, self.failures)
    }

    /// Every value in input order if every item succeeded.
    ///
    /// # Errors
    ///
    /// [`GatherFailures`] with every failure (and its position) if any item
    /// failed; the successful values are dropped, so use
    /// [`into_parts`](GatherReport::into_parts) to keep both.
    pub fn into_result(self) -> Result<Vec<T>, GatherFailures<E>> {
        if self.failures.is_empty() {
            Ok(self.successes.into_iter().map(|(_, value)| value).collect())
        } else {
            Err(GatherFailures {
                total: self.len(),
                failures: self.failures,
            })
        }
    }
}

impl<T, E> From<Vec<Result<T, E>>> for GatherReport<T, E> {
    fn from(results: Vec<Result<T, E>>) -> Self {
        GatherReport::new(results)
    }
}

impl<T, E> FromIterator<Result<T, E>> for GatherReport<T, E> {
    fn from_iter<I: IntoIterator<Item = Result<T, E>>>(results: I) -> Self {
        GatherReport::new(results)
    }
}

/// Some items of a gather failed: every failure with its input position.
/// Returned by [`GatherReport::into_result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherFailures<E> {
    /// How many items there were in all.
    pub total: usize,
    /// Every failure with its input position, in input order; never empty.
    pub failures: Vec<(usize, E)>,
}

impl<E> GatherFailures<E> {
    /// The failure with the lowest input position.
    #[must_use]
    pub fn first(&self) -> Option<&(usize, E)> {
        self.failures.first()
    }
}

impl<E> fmt::Display for GatherFailures<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} gathered items failed",
            self.failures.len(),
            self.total
        )?;
        if let Some((index, _)) = self.failures.first() {
            write!(f, ", the first at index {index}")?;
        }
        Ok(())
    }
}

impl<E: StdError + 'static> StdError for GatherFailures<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.failures
            .first()
            .map(|(_, e)| e as &(dyn StdError + 'static))
    }
}
