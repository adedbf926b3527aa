//! The crawl over real HTTP: one crawler, generic over the runtime and over
//! a tiny [`HttpClient`] trait, so the same code runs on tokio (reqwest), on
//! smol (a small HTTP/1.1 client over async-net) and in the browser (fetch,
//! aborted through an `AbortController` when dropped).
//!
//! Resilience, outermost first: a [`CancelScope`] around the whole crawl, a
//! [`WorkerPool`] whose workers bound the concurrency (each page found is
//! submitted to it), retry honouring `Retry-After`, a breaker per host, a
//! per-request timeout. Every count that staunch
//! decides (retries, rejections, breaker transitions) comes from its
//! observers, not from guesses in the crawler.

#[cfg(not(target_arch = "wasm32"))]
pub mod native;

#[cfg(not(target_arch = "wasm32"))]
pub mod metrics;

#[cfg(target_arch = "wasm32")]
pub mod browser;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::breaker::CircuitBreaker;
use staunch::gather::gather;
use staunch::observe::{Event, Observers};
use staunch::queue::{Completions, WorkerPool};
use staunch::retry::{Backoff, Decision, Retry};
use staunch::runtime::{Instant, MaybeSend, MaybeSync, Spawn, Timer};
use staunch::scope::CancelScope;
use staunch::timeout::timeout;
use staunch::{Error, Guarded};
use thiserror::Error;

/// An HTTP answer, as much of it as the crawler reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header in whole seconds, if any.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: String,
}

/// Why a request produced no usable page.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    /// The connection or the exchange failed.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered an error status.
    #[error("answered {0}")]
    Status(u16),
    /// The server asked us to come back later.
    #[error("answered 429; retry after {0:?}")]
    TooManyRequests(Duration),
    /// The request was aborted by cancellation (never a failure).
    #[error("aborted")]
    Aborted,
}

/// Sends one GET. The crawler sees only this.
pub trait HttpClient {
    /// Fetches `url`. Dropping the future must abandon the request
    /// (close the connection or abort the fetch).
    fn get(&self, url: &str) -> impl Future<Output = Result<Reply, HttpError>> + MaybeSend;
}

/// A crawl's settings; [`CrawlConfig::check`] says what is wrong with bad ones.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlConfig {
    /// Each host's base URL, e.g. `http://127.0.0.1:8091`; page `n` lives on host `n % len`.
    pub hosts: Vec<String>,
    /// Seeds the service's links and faults.
    pub seed: u64,
    /// At most this many pages.
    pub pages: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The flaky host's failure share, 0 to 1.
    pub fail: f64,
    /// The service's base latency.
    pub latency: Duration,
    /// One request's time limit.
    pub timeout: Duration,
    /// Attempts per page, from 1.
    pub attempts: u32,
    /// Consecutive failures that open a host's breaker.
    pub breaker_threshold: u32,
}

impl CrawlConfig {
    /// The native lab's settings over `hosts`: seed 7, up to 40 pages, 8 in
    /// flight, a 30 % flaky host, 40 ms base latency, 500 ms per request,
    /// 3 attempts, breakers tripping on 3 failures.
    #[must_use]
    pub fn lab(hosts: Vec<String>) -> CrawlConfig {
        CrawlConfig {
            hosts,
            seed: 7,
            pages: 40,
            concurrency: 8,
            fail: 0.3,
            latency: Duration::from_millis(40),
            timeout: Duration::from_millis(500),
            attempts: 3,
            breaker_threshold: 3,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A message naming the first bad setting and what it must be.
    pub fn check(&self) -> Result<(), String> {
        if self.hosts.is_empty() {
            return Err("no hosts: give the service's host URLs".into());
        }
        if self.pages == 0 {
            return Err("pages must be at least 1".into());
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.fail) {
            return Err(format!(
                "failure rate must be 0 to 100 %, got {} %",
                self.fail * 100.0
            ));
        }
        if self.timeout.is_zero() {
            return Err("the per-request timeout must be above 0 ms".into());
        }
        if self.attempts == 0 {
            return Err("retry attempts must be at least 1".into());
        }
        if self.breaker_threshold == 0 {
            return Err("the breaker threshold must be at least 1".into());
        }
        Ok(())
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An HTTP status arrived.
    Status(u16),
    /// The per-request timeout fired (the request was dropped).
    Timeout,
    /// The crawl was cancelled while it was in flight.
    Cancelled,
    /// The transport failed.
    Transport,
}

/// One request sent to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The host's index.
    pub host: usize,
    /// The page.
    pub page: u32,
    /// The attempt, from 1.
    pub attempt: u32,
    /// When it was sent, since the crawl started.
    pub sent: Duration,
    /// How long it took.
    pub took: Duration,
    /// How it ended.
    pub outcome: RequestOutcome,
}

/// Per-host counts as the crawler saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCounts {
    /// Requests sent.
    pub sent: u64,
    /// Pages fetched.
    pub ok: u64,
    /// Calls refused by the open breaker (never sent).
    pub rejected: u64,
    /// Breaker transitions, in order: (since start, new state).
    pub transitions: Vec<(Duration, String)>,
}

/// A whole crawl's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpReport {
    /// Every request sent, in the order they ended.
    pub requests: Vec<RequestRecord>,
    /// Per host, in `hosts` order.
    pub hosts: Vec<HostCounts>,
    /// Pages fetched, failed, refused by a breaker, cancelled.
    pub ok: u64,
    /// Pages whose last attempt failed.
    pub failed: u64,
    /// Pages refused by an open breaker.
    pub rejected: u64,
    /// Pages cut off by cancellation.
    pub cancelled: u64,
    /// Retries scheduled (from staunch's events).
    pub retries: u64,
    /// The shortest wait between a 429 and the same page's next attempt.
    pub shortest_wait_after_429: Option<Duration>,
    /// How long the crawl took.
    pub elapsed: Duration,
}

struct InFlight {
    host: usize,
    page: u32,
    attempt: u32,
    sent: Instant,
}

/// What the crawl saw, shared by the pool's workers (hence the mutexes:
/// on tokio they run on several threads).
struct Tally<T> {
    timer: T,
    start: Instant,
    report: Mutex<HttpReport>,
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_request: Mutex<u64>,
    last_429: Mutex<BTreeMap<u32, Instant>>,
    events: Arc<Mutex<Vec<Event>>>,
    host_names: Vec<String>,
}

/// Locks `m`, taking over a lock whose holder panicked (the counts stay
/// valid: every update is one assignment).
fn lock<V>(m: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T: Timer> Tally<T> {
    fn new(
        timer: T,
        config: &CrawlConfig,
        events: Arc<Mutex<Vec<Event>>>,
        host_names: Vec<String>,
    ) -> Tally<T> {
        let start = timer.now();
        Tally {
            timer,
            start,
            report: Mutex::new(HttpReport {
                hosts: vec![HostCounts::default(); config.hosts.len()],
                ..HttpReport::default()
            }),
            in_flight: Mutex::new(BTreeMap::new()),
            next_request: Mutex::new(0),
            last_429: Mutex::new(BTreeMap::new()),
            events,
            host_names,
        }
    }

    /// The report, once the crawl ended: requests still in flight count as
    /// cancelled, and so do `unfinished` pages.
    fn finish(&self, unfinished: u64) -> HttpReport {
        let left: Vec<u64> = lock(&self.in_flight).keys().copied().collect();
        for id in left {
            self.end(id, RequestOutcome::Cancelled);
        }
        self.drain_events();
        let mut report = std::mem::take(&mut *lock(&self.report));
        report.cancelled += unfinished;
        report.elapsed = self.timer.now() - self.start;
        report
    }

    fn send(&self, host: usize, page: u32, attempt: u32) -> u64 {
        let now = self.timer.now();
        if let Some(at) = lock(&self.last_429).remove(&page) {
            let waited = now - at;
            let mut r = lock(&self.report);
            r.shortest_wait_after_429 =
                Some(r.shortest_wait_after_429.map_or(waited, |w| w.min(waited)));
        }
        let mut next = lock(&self.next_request);
        *next += 1;
        lock(&self.report).hosts[host].sent += 1;
        lock(&self.in_flight).insert(
            *next,
            InFlight {
                host,
                page,
                attempt,
                sent: now,
            },
        );
        *next
    }

    fn end(&self, id: u64, outcome: RequestOutcome) {
        let Some(f) = lock(&self.in_flight).remove(&id) else {
            return;
        };
        let now = self.timer.now();
        if outcome == RequestOutcome::Status(429) {
            lock(&self.last_429).insert(f.page, now);
        }
        lock(&self.report).requests.push(RequestRecord {
            host: f.host,
            page: f.page,
            attempt: f.attempt,
            sent: f.sent - self.start,
            took: now - f.sent,
            outcome,
        });
        self.drain_events();
    }

    /// Turns staunch's events into counts.
    fn drain_events(&self) {
        let events = std::mem::take(&mut *lock(&self.events));
        let at = self.timer.now() - self.start;
        let mut r = lock(&self.report);
        for event in events {
            match event {
                Event::RetryScheduled { .. } => r.retries += 1,
                Event::CallRejected { name, .. } => {
                    if let Some(h) = self.host_names.iter().position(|n| **n == *name) {
                        r.hosts[h].rejected += 1;
                    }
                }
                Event::CircuitStateChanged { name, to, .. } => {
                    if let Some(h) = self.host_names.iter().position(|n| **n == *name) {
                        r.hosts[h].transitions.push((at, to.to_string()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Crawls from page 0 under `scope` and returns what happened. The pages
/// go through a [`WorkerPool`] of `config.concurrency` workers on `rt`: each
/// link found is submitted as a new item, and the crawl ends when no page
/// is left in the pool. Cancelling `scope` stops it: the pool is shut down
/// at once, its requests in flight are dropped (their connections closed)
/// and reported as [`RequestOutcome::Cancelled`], and every page it had not
/// finished counts as cancelled.
///
/// # Errors
///
/// The message of [`CrawlConfig::check`] for bad settings, or why the
/// pool could not start.
pub async fn crawl<R, C>(
    rt: &R,
    client: &C,
    config: &CrawlConfig,
    scope: &CancelScope,
    observers: Observers,
) -> Result<HttpReport, String>
where
    R: Timer + Spawn + Clone + 'static,
    C: HttpClient + Clone + MaybeSend + MaybeSync + 'static,
{
    let local = |name: &str, observers: Observers| local_breaker(rt, config, name, observers);
    crawl_with(rt, client, config, scope, observers, "", &local).await
}

/// One host's in-process breaker, as [`crawl`] makes it: open after
/// `config.breaker_threshold` failures in a row, for [`BREAKER_OPEN`], one
/// probe, 429s and cancellations not counted.
///
/// # Errors
///
/// The breaker's [`ConfigError`](staunch::ConfigError), as text.
pub fn local_breaker<R: Timer + Clone + 'static>(
    rt: &R,
    config: &CrawlConfig,
    name: &str,
    observers: Observers,
) -> Result<CircuitBreaker, String> {
    CircuitBreaker::builder(rt.clone())
        .name(name)
        .consecutive_failures(config.breaker_threshold)
        .open_duration(BREAKER_OPEN)
        .half_open_probes(1)
        .failure_if(is_host_failure)
        .observers(observers)
        .build()
        .map_err(|e| e.to_string())
}

/// How long a host's breaker stays open after it trips.
pub const BREAKER_OPEN: Duration = Duration::from_secs(1);

/// Whether an error counts against its host's breaker: a 429 (the host
/// answered, asking us to slow down) and a cancelled request do not.
#[must_use]
pub fn is_host_failure(error: &HttpError) -> bool {
    !matches!(error, HttpError::TooManyRequests(_) | HttpError::Aborted)
}

/// [`crawl`] with each host's breaker made by `breaker_for(name, observers)`,
/// host `h` named `{prefix}host-{h}`: the native lab's several processes
/// pass breakers whose state is shared through Redis, under a prefix of
/// their run.
///
/// # Errors
///
/// As for [`crawl`], and whatever `breaker_for` reports.
pub async fn crawl_with<R, C>(
    rt: &R,
    client: &C,
    config: &CrawlConfig,
    scope: &CancelScope,
    observers: Observers,
    prefix: &str,
    breaker_for: &dyn Fn(&str, Observers) -> Result<CircuitBreaker, String>,
) -> Result<HttpReport, String>
where
    R: Timer + Spawn + Clone + 'static,
    C: HttpClient + Clone + MaybeSend + MaybeSync + 'static,
{
    config.check()?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let observers = observers.with({
        let events = events.clone();
        move |e: &Event| lock(&events).push(e.clone())
    });
    let host_names: Vec<String> = (0..config.hosts.len())
        .map(|h| format!("{prefix}host-{h}"))
        .collect();
    let breakers = host_names
        .iter()
        .map(|name| breaker_for(name, observers.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let retry = Retry::builder(rt.clone())
        .max_attempts(config.attempts)
        .backoff(Backoff::exponential(Duration::from_millis(50)).max_delay(Duration::from_secs(5)))
        .seed(config.seed)
        .name("page")
        .observers(observers.clone())
        .classify(|error: &Error<HttpError>| match error {
            Error::Inner(HttpError::TooManyRequests(after)) => Decision::RetryAfter(*after),
            Error::Inner(HttpError::Aborted) => Decision::Stop,
            other => Decision::by_default(other),
        })
        .build()
        .map_err(|e| e.to_string())?;
    let crawl = Arc::new(Crawl {
        tally: Tally::new(rt.clone(), config, events, host_names),
        client: client.clone(),
        config: config.clone(),
        retry,
        breakers,
    });
    let handler = {
        let crawl = crawl.clone();
        move |page: u32| {
            let crawl = crawl.clone();
            // Boxed: a page's future (retry, breaker, timeout, the client's
            // request) is large, and a worker moves what it runs.
            Box::pin(async move { Ok::<_, Infallible>(fetch_page(&crawl, page).await) })
        }
    };
    let (pool, mut done) = WorkerPool::builder(rt.clone())
        .workers(config.concurrency)
        .capacity(config.concurrency.saturating_mul(2))
        .name("crawl")
        .build(handler)
        .map_err(|e| e.to_string())?;
    let _ = scope
        .run(follow_links(&pool, &mut done, config.pages))
        .await;
    // Done, or stopped: either way nothing may outlive the crawl.
    let unfinished = pool.shutdown(Duration::ZERO).await.returned.len() as u64;
    Ok(crawl.tally.finish(unfinished))
}

/// What the pool's workers share.
struct Crawl<T, C> {
    tally: Tally<T>,
    client: C,
    config: CrawlConfig,
    retry: Retry,
    breakers: Vec<CircuitBreaker>,
}

/// Feeds the pool from page 0: each completed page's new links are
/// submitted, up to `pages` pages, until no page is left in the pool.
async fn follow_links<E>(
    pool: &WorkerPool<u32>,
    done: &mut Completions<u32, Option<Vec<u32>>, E>,
    pages: u32,
) {
    let mut seen = BTreeSet::from([0u32]);
    if pool.submit(0).await.is_err() {
        return;
    }
    let mut left = 1usize;
    while left > 0 {
        let Some(finished) = done.next().await else {
            return;
        };
        left -= 1;
        let Ok(Some(links)) = finished.result else {
            continue;
        };
        for link in links {
            if (seen.len() as u32) < pages && seen.insert(link) {
                // The completions channel is unbounded, so the workers never
                // wait for us and a full queue always drains.
                if pool.submit(link).await.is_err() {
                    return;
                }
                left += 1;
            }
        }
    }
}

/// The naive crawl of the same service, for comparison: every page of a
/// level requested at once, one plain GET each, no timeout, no retry, no
/// breaker. Only `budget` (or `scope`) stops it: on the tarpit host it
/// waits until then, and what is still in flight is dropped (its
/// connection closed) and counted as cancelled.
///
/// # Errors
///
/// The message of [`CrawlConfig::check`] for bad settings, or a zero budget.
pub async fn crawl_naive<T, C>(
    timer: &T,
    client: &C,
    config: &CrawlConfig,
    budget: Duration,
    scope: &CancelScope,
) -> Result<HttpReport, String>
where
    T: Timer + Clone + 'static,
    C: HttpClient,
{
    config.check()?;
    if budget.is_zero() {
        return Err("the naive crawl's budget must be above 0 ms".into());
    }
    let tally = Tally::new(timer.clone(), config, Arc::default(), Vec::new());
    let pages_left = RefCell::new(BTreeSet::new());
    let within_budget = scope.child().with_timeout(timer, budget);
    // No limit: the naive crawl asks for a whole level at once.
    let _ = within_budget
        .run(levels(config, &pages_left, |page| {
            fetch_naive(&tally, client, config, page)
        }))
        .await;
    Ok(tally.finish(pages_left.borrow().len() as u64))
}

/// Crawls level by level from page 0, every page of a level at once,
/// following links up to `config.pages` pages (the naive crawl's loop).
async fn levels<F, Fut>(config: &CrawlConfig, pages_left: &RefCell<BTreeSet<u32>>, fetch: F)
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Option<Vec<u32>>>,
{
    let mut seen = BTreeSet::from([0u32]);
    let mut level = vec![0u32];
    while !level.is_empty() {
        pages_left.borrow_mut().extend(level.iter().copied());
        let fetches = level.into_iter().map(|page| {
            let fetched = fetch(page);
            async move {
                let links = fetched.await;
                pages_left.borrow_mut().remove(&page);
                Ok::<_, Infallible>(links)
            }
        });
        let all = gather(fetches);
        let mut next = Vec::new();
        for links in all.await.into_iter().flatten().flatten() {
            for link in links {
                if (seen.len() as u32) < config.pages && seen.insert(link) {
                    next.push(link);
                }
            }
        }
        level = next;
    }
}

async fn fetch_page<T: Timer, C: HttpClient>(crawl: &Crawl<T, C>, page: u32) -> Option<Vec<u32>> {
    let Crawl {
        tally,
        client,
        config,
        retry,
        breakers,
    } = crawl;
    let host = page as usize % config.hosts.len();
    let breaker = &breakers[host];
    let result = retry
        .run(|attempt| {
            let n = attempt.number();
            breaker.call(Guarded::new(async move {
                let url = page_url(config, host, page, n);
                let id = tally.send(host, page, n);
                match timeout(&tally.timer, config.timeout, client.get(&url)).await {
                    Err(elapsed) => {
                        tally.end(id, RequestOutcome::Timeout);
                        Err(Error::Timeout(elapsed))
                    }
                    Ok(Err(HttpError::Aborted)) => {
                        tally.end(id, RequestOutcome::Cancelled);
                        Err(Error::Inner(HttpError::Aborted))
                    }
                    Ok(Err(e)) => {
                        tally.end(id, RequestOutcome::Transport);
                        Err(Error::Inner(e))
                    }
                    Ok(Ok(reply)) => {
                        tally.end(id, RequestOutcome::Status(reply.status));
                        match reply.status {
                            200 => Ok(reply.body),
                            429 => Err(Error::Inner(HttpError::TooManyRequests(
                                reply.retry_after.unwrap_or(Duration::from_secs(1)),
                            ))),
                            s => Err(Error::Inner(HttpError::Status(s))),
                        }
                    }
                }
            }))
        })
        .await;
    tally.drain_events();
    let mut r = lock(&tally.report);
    match result {
        Ok(body) => {
            r.ok += 1;
            r.hosts[host].ok += 1;
            Some(parse_links(&body, config.pages))
        }
        Err(e) if e.is_circuit_open() => {
            r.rejected += 1;
            None
        }
        Err(e) if e.is_cancelled() => {
            r.cancelled += 1;
            None
        }
        Err(_) => {
            r.failed += 1;
            None
        }
    }
}

/// Page `page`'s URL on `host`, for attempt `attempt`.
fn page_url(config: &CrawlConfig, host: usize, page: u32, attempt: u32) -> String {
    format!(
        "{}/page/{page}?seed={}&fail={}&latency={}&attempt={attempt}",
        config.hosts[host],
        config.seed,
        config.fail,
        config.latency.as_millis()
    )
}

async fn fetch_naive<T: Timer, C: HttpClient>(
    tally: &Tally<T>,
    client: &C,
    config: &CrawlConfig,
    page: u32,
) -> Option<Vec<u32>> {
    let host = page as usize % config.hosts.len();
    let id = tally.send(host, page, 1);
    let result = client.get(&page_url(config, host, page, 1)).await;
    tally.end(
        id,
        match &result {
            Ok(reply) => RequestOutcome::Status(reply.status),
            Err(HttpError::Aborted) => RequestOutcome::Cancelled,
            Err(_) => RequestOutcome::Transport,
        },
    );
    let mut r = lock(&tally.report);
    match result {
        Ok(reply) if reply.status == 200 => {
            r.ok += 1;
            r.hosts[host].ok += 1;
            Some(parse_links(&reply.body, config.pages))
        }
        Err(HttpError::Aborted) => {
            r.cancelled += 1;
            None
        }
        _ => {
            r.failed += 1;
            None
        }
    }
}

/// The links of a page body (`links: 3 17 22`), folded into `0..pages`.
#[must_use]
pub fn parse_links(body: &str, pages: u32) -> Vec<u32> {
    body.strip_prefix("links:")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|l| l.parse::<u32>().ok())
        .map(|l| l % pages.max(1))
        .collect()
}
