//! The crawler: breadth-first over the simulated web, in two strategies.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::join_all;
use staunch::Error;
use staunch::breaker::CircuitBreaker;
use staunch::gather::gather_limited;
use staunch::observe::{Event, Observers};
use staunch::retry::{Backoff, Decision, Retry};
use staunch::runtime::{Instant, Timer};
use staunch::scope::CancelScope;
use staunch::timeout::{self, timeout};

use crate::report::{CrawlReport, HostReport, Outcome, PageEvent};
use crate::site::{FetchError, HOSTS, Site};

/// How to crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Everything at once, no timeout, no retry, no breaker.
    Naive,
    /// Bounded concurrency, retry, timeouts, breakers, a cancel scope.
    Staunch,
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Strategy, String> {
        match s {
            "naive" => Ok(Strategy::Naive),
            "staunch" => Ok(Strategy::Staunch),
            other => Err(format!(
                "unknown strategy `{other}`; use `naive` or `staunch`"
            )),
        }
    }
}

impl Strategy {
    fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Staunch => "staunch",
        }
    }
}

/// What to crawl and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabConfig {
    /// Seeds the web's links and faults.
    pub seed: u64,
    /// How many pages the web has (the crawl visits at most this many).
    pub pages: u32,
    /// The whole crawl's time budget.
    pub budget: Duration,
}

/// Pages in flight and finished, reported as they happen.
struct Tally<'a, T> {
    timer: &'a T,
    site: &'a Site,
    start: Instant,
    report: RefCell<CrawlReport>,
    hosts: RefCell<BTreeMap<&'static str, HostReport>>,
    in_flight: RefCell<BTreeSet<u32>>,
    on_event: &'a dyn Fn(&PageEvent),
}

impl<T: Timer> Tally<'_, T> {
    fn begin(&self, id: u32) {
        self.in_flight.borrow_mut().insert(id);
    }

    fn attempt(&self) {
        self.report.borrow_mut().attempts += 1;
    }

    fn finish(&self, id: u32, outcome: Outcome, detail: String) {
        if !self.in_flight.borrow_mut().remove(&id) {
            return;
        }
        self.report.borrow_mut().count(outcome);
        let host = self.site.host_of(id).name;
        let mut hosts = self.hosts.borrow_mut();
        let entry = hosts.entry(host).or_insert_with(|| HostReport {
            host: host.into(),
            ..HostReport::default()
        });
        if outcome == Outcome::Ok {
            entry.ok += 1;
        } else {
            entry.failed += 1;
        }
        drop(hosts);
        (self.on_event)(&PageEvent {
            at: self.timer.now() - self.start,
            url: self.site.url(id),
            outcome,
            detail,
        });
    }

    /// Whatever is still in flight was cut off by the budget.
    fn cancel_in_flight(&self) {
        let left: Vec<u32> = self.in_flight.borrow().iter().copied().collect();
        for id in left {
            self.finish(id, Outcome::Cancelled, "the crawl's budget ran out".into());
        }
    }
}

/// Crawls the simulated web from page 0 with `strategy`, calling `on_event`
/// with each page's result as it happens, and returns the report.
///
/// The crawl never runs past `config.budget` by more than a timer tick:
/// the naive strategy is stopped by a timeout around it, the staunch one by
/// the same budget around a crawl that also bounds every request.
pub async fn crawl<T: Timer + Clone + 'static>(
    timer: &T,
    strategy: Strategy,
    config: &LabConfig,
    on_event: &dyn Fn(&PageEvent),
) -> CrawlReport {
    let site = Site::new(config.seed, config.pages);
    let tally = Tally {
        timer,
        site: &site,
        start: timer.now(),
        report: RefCell::new(CrawlReport {
            strategy: strategy.name().into(),
            ..CrawlReport::default()
        }),
        hosts: RefCell::new(BTreeMap::new()),
        in_flight: RefCell::new(BTreeSet::new()),
        on_event,
    };
    let breakers = match strategy {
        Strategy::Naive => {
            let _ = timeout(timer, config.budget, naive(&tally, config.pages)).await;
            None
        }
        Strategy::Staunch => {
            // Fetch attempts come from staunch's own events: every attempt
            // the retry started, less those an open breaker refused.
            let counts = AttemptCounts::default();
            let observers = counts.observers();
            let breakers = host_breakers(timer, &observers);
            // The budget is a cancel scope: everything inside it is dropped,
            // with reason "deadline", when it runs out.
            let budget = CancelScope::new().with_timeout(timer, config.budget);
            let _ = budget
                .run(resilient(
                    &tally,
                    &breakers,
                    &observers,
                    config.seed,
                    config.pages,
                ))
                .await;
            tally.report.borrow_mut().attempts += counts.sent();
            Some(breakers)
        }
    };
    tally.cancel_in_flight();
    let mut report = tally.report.into_inner();
    report.elapsed = timer.now() - tally.start;
    let mut hosts = tally.hosts.into_inner();
    report.hosts = HOSTS
        .iter()
        .map(|h| {
            let mut r = hosts.remove(h.name).unwrap_or_else(|| HostReport {
                host: h.name.into(),
                ..HostReport::default()
            });
            r.breaker = match &breakers {
                Some(b) => b
                    .get(h.name)
                    .map_or_else(|| "-".into(), |b| b.state().to_string()),
                None => "-".into(),
            };
            r
        })
        .collect();
    report
}

/// Breadth-first: each level's pages, then the next level's new links.
async fn levels<T, F, Fut>(tally: &Tally<'_, T>, max_pages: u32, mut fetch_level: F)
where
    T: Timer,
    F: FnMut(Vec<u32>) -> Fut,
    Fut: std::future::Future<Output = Vec<Option<Vec<u32>>>>,
{
    let _ = tally;
    let mut seen = BTreeSet::from([0u32]);
    let mut frontier = vec![0u32];
    while !frontier.is_empty() {
        let results = fetch_level(frontier).await;
        let mut next = Vec::new();
        for links in results.into_iter().flatten() {
            for link in links {
                if (seen.len() as u32) < max_pages && seen.insert(link) {
                    next.push(link);
                }
            }
        }
        frontier = next;
    }
}

async fn naive<T: Timer>(tally: &Tally<'_, T>, max_pages: u32) {
    levels(tally, max_pages, |frontier| {
        join_all(frontier.into_iter().map(|id| async move {
            tally.begin(id);
            tally.attempt();
            match tally.site.fetch(tally.timer, id, 1).await {
                Ok(page) => {
                    tally.finish(id, Outcome::Ok, String::new());
                    Some(page.links)
                }
                Err(e) => {
                    tally.finish(id, Outcome::Failed, e.to_string());
                    None
                }
            }
        }))
    })
    .await;
}

/// Attempts started and calls refused, counted from staunch's events.
#[derive(Default, Clone)]
struct AttemptCounts {
    started: Arc<AtomicU32>,
    refused: Arc<AtomicU32>,
}

impl AttemptCounts {
    /// Observers that count into these counters.
    fn observers(&self) -> Observers {
        let counts = self.clone();
        Observers::new().with(move |event: &Event| match event {
            Event::AttemptStarted { .. } => {
                counts.started.fetch_add(1, Ordering::Relaxed);
            }
            Event::CallRejected { .. } => {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        })
    }

    /// Attempts that reached the site.
    fn sent(&self) -> u32 {
        let started = self.started.load(Ordering::Relaxed);
        started.saturating_sub(self.refused.load(Ordering::Relaxed))
    }
}

/// The lab's retry policy: three attempts, exponential backoff from 50 ms
/// with full jitter, capped at 400 ms; a 429's Retry-After is honoured.
fn retry_policy<T: Timer + Clone + 'static>(timer: &T, seed: u64, observers: &Observers) -> Retry {
    Retry::builder(timer.clone())
        .observers(observers.clone())
        .max_attempts(3)
        .backoff(
            Backoff::exponential(Duration::from_millis(50)).max_delay(Duration::from_millis(400)),
        )
        .seed(seed)
        .classify(|error: &Error<FetchError>| match error {
            Error::Inner(FetchError::TooManyRequests { retry_after, .. }) => {
                Decision::RetryAfter(*retry_after)
            }
            other => Decision::by_default(other),
        })
        .build()
        .expect("the lab's retry settings are valid (checked by a unit test)")
}

/// How many pages the staunch crawl fetches at once.
const CONCURRENCY: usize = 8;

/// Runs `pages` with at most [`CONCURRENCY`] at once (pulled lazily, in
/// order), results in input order.
async fn bounded<I, F>(pages: I) -> Vec<Option<Vec<u32>>>
where
    I: IntoIterator<Item = F>,
    F: std::future::Future<Output = Option<Vec<u32>>>,
{
    let items = pages
        .into_iter()
        .map(|page| async move { Ok::<_, Infallible>(page.await) });
    let all = gather_limited(CONCURRENCY, items);
    all.await
        .into_iter()
        .map(|r| r.unwrap_or_else(|never| match never {}))
        .collect()
}

/// How long one request may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// One circuit breaker per host: three failures in a row (timeouts
/// included) open it for a second; one probe then decides.
fn host_breakers<T: Timer + Clone + 'static>(
    timer: &T,
    observers: &Observers,
) -> BTreeMap<&'static str, CircuitBreaker> {
    HOSTS
        .iter()
        .map(|h| {
            let breaker = CircuitBreaker::builder(timer.clone())
                .name(h.name)
                .consecutive_failures(3)
                .open_duration(Duration::from_secs(1))
                .half_open_probes(1)
                .observers(observers.clone())
                // A 429 means "slow down", not "broken": do not trip on it.
                .failure_if(|e| !matches!(e, FetchError::TooManyRequests { .. }))
                .build()
                .expect("the lab's breaker settings are valid (checked by a unit test)");
            (h.name, breaker)
        })
        .collect()
}

async fn resilient<T: Timer + Clone + 'static>(
    tally: &Tally<'_, T>,
    breakers: &BTreeMap<&'static str, CircuitBreaker>,
    observers: &Observers,
    seed: u64,
    max_pages: u32,
) {
    let retry = retry_policy(tally.timer, seed, observers);
    let retry = &retry;
    levels(tally, max_pages, |frontier| {
        bounded(frontier.into_iter().map(|id| async move {
            tally.begin(id);
            let attempts = Cell::new(0u32);
            let breaker = &breakers[tally.site.host_of(id).name];
            // retry -> breaker -> timeout -> fetch: the breaker sees timeouts
            // as failures, and an open breaker stops the retries at once.
            let result = retry
                .run(|attempt| {
                    attempts.set(attempt.number());
                    let fetch = tally.site.fetch(tally.timer, id, attempt.number());
                    breaker.call(timeout::call(tally.timer, ATTEMPT_TIMEOUT, fetch))
                })
                .await;
            match result {
                Ok(page) => {
                    tally.finish(id, Outcome::Ok, format!("attempt {}", attempts.get()));
                    Some(page.links)
                }
                Err(e) if e.is_circuit_open() => {
                    tally.finish(id, Outcome::Rejected, e.to_string());
                    None
                }
                Err(e) if e.is_cancelled() => {
                    tally.finish(id, Outcome::Cancelled, e.to_string());
                    None
                }
                Err(e) => {
                    tally.finish(id, Outcome::Failed, e.to_string());
                    None
                }
            }
        }))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use staunch::testing::VirtualRuntime;

    #[test]
    fn the_lab_retry_and_breaker_settings_are_valid() {
        let _ = retry_policy(&VirtualRuntime::new(), 1, &Observers::new());
        let breakers = host_breakers(&VirtualRuntime::new(), &Observers::new());
        assert_eq!(breakers.len(), HOSTS.len());
    }

    /// The lab's usual settings: seed 7, 48 pages, a 3 s budget.
    fn lab_config() -> LabConfig {
        LabConfig {
            seed: 7,
            pages: 48,
            budget: Duration::from_millis(3000),
        }
    }

    #[test]
    fn open_breakers_refuse_calls_to_dead_hosts() {
        let rt = VirtualRuntime::new();
        let config = lab_config();
        let report = rt
            .block_on(crawl(&rt, Strategy::Staunch, &config, &|_| {}))
            .unwrap();
        assert!(report.rejected > 0, "{report:?}");
        let legacy = report
            .hosts
            .iter()
            .find(|h| h.host == "legacy.example")
            .unwrap();
        assert_eq!(legacy.ok, 0);
        assert_ne!(legacy.breaker, "closed");
    }

    /// The staunch crawl's attempt count comes from staunch's events: every
    /// page that got an answer was attempted at least once, refused calls
    /// are not attempts, and no page is attempted more than three times.
    #[test]
    fn the_staunch_attempt_count_comes_from_events_and_adds_up() {
        let rt = VirtualRuntime::new();
        let config = lab_config();
        let report = rt
            .block_on(crawl(&rt, Strategy::Staunch, &config, &|_| {}))
            .unwrap();
        let answered = report.ok + report.failed;
        let visited = answered + report.rejected + report.cancelled;
        assert!(
            report.attempts >= answered && report.attempts <= 3 * visited,
            "{report:?}"
        );
    }

    #[test]
    fn both_strategies_end_within_the_budget_in_virtual_time() {
        let rt = VirtualRuntime::new();
        let config = lab_config();
        for strategy in [Strategy::Naive, Strategy::Staunch] {
            let report = rt.block_on(crawl(&rt, strategy, &config, &|_| {})).unwrap();
            assert!(
                report.elapsed <= config.budget,
                "{strategy:?} took {:?}",
                report.elapsed
            );
            assert!(report.ok > 0, "{strategy:?} fetched nothing");
        }
    }

    #[test]
    fn staunch_fetches_more_pages_than_the_naive_crawl() {
        let rt = VirtualRuntime::new();
        let config = lab_config();
        let naive = rt
            .block_on(crawl(&rt, Strategy::Naive, &config, &|_| {}))
            .unwrap();
        let resilient = rt
            .block_on(crawl(&rt, Strategy::Staunch, &config, &|_| {}))
            .unwrap();
        assert!(
            resilient.ok > naive.ok,
            "staunch {} vs naive {}",
            resilient.ok,
            naive.ok
        );
        assert!(
            naive.cancelled > 0,
            "the naive crawl should hang on the tarpit until the budget"
        );
    }

    #[test]
    fn strategies_parse_from_their_names_and_reject_others() {
        assert_eq!("naive".parse::<Strategy>(), Ok(Strategy::Naive));
        assert!(
            "fast"
                .parse::<Strategy>()
                .unwrap_err()
                .contains("unknown strategy")
        );
    }
}
