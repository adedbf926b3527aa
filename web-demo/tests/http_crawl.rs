//! The crawl over real HTTP, on tokio (reqwest) and on smol (async-net),
//! against the lab's service, checked against the service's own counts.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use staunch::observe::Observers;
use staunch::scope::CancelScope;
use staunch_demo::http::native::{ReqwestClient, SmolClient};
use staunch_demo::http::{CrawlConfig, HttpReport, RequestOutcome, crawl, crawl_naive};
use staunch_demo::service::{HOSTS, HostStats, Profile, Service};

fn config(service: &Service) -> CrawlConfig {
    CrawlConfig::lab(
        service
            .hosts
            .iter()
            .map(|h| format!("http://{}", h.2))
            .collect(),
    )
}

/// Starts the service on a tokio runtime of its own, for crawls on any runtime.
fn start_service() -> (tokio::runtime::Runtime, Service) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let service = rt.block_on(Service::start(0)).unwrap();
    (rt, service)
}

/// The staunch crawl on `rt` with reqwest.
fn crawl_on_tokio(rt: &tokio::runtime::Runtime, config: &CrawlConfig) -> HttpReport {
    rt.block_on(async {
        let runtime = staunch_tokio::Tokio::current().unwrap();
        let client = ReqwestClient::default();
        crawl(
            &runtime,
            &client,
            config,
            &CancelScope::new(),
            Observers::new(),
        )
        .await
    })
    .unwrap()
}

/// The naive crawl on `rt` with reqwest.
fn naive_on_tokio(
    rt: &tokio::runtime::Runtime,
    config: &CrawlConfig,
    budget: Duration,
) -> Result<HttpReport, String> {
    rt.block_on(async {
        let timer = staunch_tokio::Tokio::current().unwrap();
        let client = ReqwestClient::default();
        crawl_naive(&timer, &client, config, budget, &CancelScope::new()).await
    })
}

/// The service's counts once nothing is in flight (at most 2 s of polling).
fn settled(service: &Service) -> Vec<HostStats> {
    for _ in 0..100 {
        let stats = service.stats();
        if stats.iter().all(|s| s.in_flight() == 0) {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    service.stats()
}

fn count(report: &HttpReport, host: usize, outcome: impl Fn(RequestOutcome) -> bool) -> u64 {
    report
        .requests
        .iter()
        .filter(|r| r.host == host && outcome(r.outcome))
        .count() as u64
}

fn host_of(profile: Profile) -> usize {
    HOSTS.iter().position(|h| h.1 == profile).unwrap()
}

/// Every request the crawler sent is one the service received, and each
/// ended the same way on both sides.
fn assert_counts_match(report: &HttpReport, stats: &[HostStats]) {
    for (host, s) in stats.iter().enumerate() {
        let name = HOSTS[host].0;
        assert_eq!(
            report.hosts[host].sent, s.received,
            "{name}: sent vs received"
        );
        assert_eq!(
            count(report, host, |o| o == RequestOutcome::Status(200)),
            s.ok,
            "{name}: 200s"
        );
        assert_eq!(
            count(report, host, |o| o == RequestOutcome::Status(503)),
            s.unavailable,
            "{name}: 503s"
        );
        assert_eq!(
            count(report, host, |o| o == RequestOutcome::Status(429)),
            s.rate_limited,
            "{name}: 429s"
        );
        assert_eq!(
            count(report, host, |o| matches!(
                o,
                RequestOutcome::Timeout | RequestOutcome::Cancelled
            )),
            s.aborted,
            "{name}: requests dropped by the client vs aborted at the service"
        );
        assert_eq!(s.bad_request, 0, "{name}");
    }
}

fn assert_full_crawl_invariants(report: &HttpReport, stats: &[HostStats]) {
    assert_counts_match(report, stats);
    let down = host_of(Profile::Down);
    assert!(
        report.hosts[down].rejected > 0,
        "the down host's breaker never refused: {report:?}"
    );
    assert!(report.rejected > 0);
    assert!(
        stats[host_of(Profile::Tarpit)].aborted > 0,
        "timeouts never closed a tarpit connection"
    );
    let wait = report
        .shortest_wait_after_429
        .expect("some 429 was retried");
    assert!(
        wait >= Duration::from_secs(1),
        "a 429 was retried after {wait:?}, before Retry-After"
    );
    assert!(report.ok > 0 && report.cancelled == 0, "{report:?}");
    assert!(report.retries > 0);
}

#[test]
fn the_crawl_on_tokio_with_reqwest_matches_the_services_counts() {
    let (rt, service) = start_service();
    let config = config(&service);
    let report = crawl_on_tokio(&rt, &config);
    assert_full_crawl_invariants(&report, &settled(&service));
}

#[test]
fn the_crawl_on_smol_matches_the_services_counts() {
    let (_rt, service) = start_service();
    let config = config(&service);
    let timer = staunch_smol::Smol::current();
    let report = smol::block_on(crawl(
        &timer,
        &SmolClient,
        &config,
        &CancelScope::new(),
        Observers::new(),
    ))
    .unwrap();
    assert_full_crawl_invariants(&report, &settled(&service));
}

/// The naive crawl of the same service: one plain GET per page, no retry
/// and no breaker, so the service saw exactly one request per page it was
/// sent; it hangs on the tarpit until its budget, which drops those
/// requests (aborted at the service, cancelled in the report); and the
/// staunch crawl fetches more pages of the same seeded web.
#[test]
fn the_naive_crawl_hangs_on_the_tarpit_until_its_budget_and_fetches_less() {
    let (rt, service) = start_service();
    let config = config(&service);
    let budget = Duration::from_millis(1500);
    let naive = naive_on_tokio(&rt, &config, budget).unwrap();
    let stats = settled(&service);
    assert_counts_match(&naive, &stats);
    assert!(naive.requests.iter().all(|r| r.attempt == 1), "no retries");
    assert_eq!(naive.retries + naive.rejected, 0);
    let tarpit = host_of(Profile::Tarpit);
    assert!(
        count(&naive, tarpit, |o| o == RequestOutcome::Cancelled) > 0,
        "nothing hung on the tarpit: {naive:?}"
    );
    assert!(naive.cancelled > 0 && naive.elapsed >= budget, "{naive:?}");
    let staunch = crawl_on_tokio(&rt, &config);
    assert!(
        staunch.ok > naive.ok,
        "staunch fetched {} pages, naive {}",
        staunch.ok,
        naive.ok
    );
    let zero = naive_on_tokio(&rt, &config, Duration::ZERO);
    assert!(zero.unwrap_err().contains("budget"));
}

#[test]
fn stopping_a_crawl_aborts_its_requests_at_the_service_and_shows_them_cancelled() {
    let (_rt, service) = start_service();
    let mut config = config(&service);
    config.timeout = Duration::from_secs(30);
    let timer = staunch_smol::Smol::current();
    let scope = CancelScope::new();
    let report = smol::block_on(async {
        let stop = async {
            smol::Timer::after(Duration::from_millis(800)).await;
            scope.cancel_with_message("stop pressed");
        };
        let (report, ()) = futures::join!(
            crawl(&timer, &SmolClient, &config, &scope, Observers::new()),
            stop
        );
        report
    })
    .unwrap();
    let stats = settled(&service);
    assert_counts_match(&report, &stats);
    let tarpit = host_of(Profile::Tarpit);
    let cancelled = count(&report, tarpit, |o| o == RequestOutcome::Cancelled);
    assert!(
        cancelled > 0,
        "no tarpit request was in flight at stop: {report:?}"
    );
    assert_eq!(stats[tarpit].aborted, cancelled);
    assert!(report.cancelled > 0);
    assert_eq!(
        count(&report, tarpit, |o| o == RequestOutcome::Transport),
        0
    );
}

#[test]
fn nonsense_settings_are_refused_with_a_message() {
    let (_rt, service) = start_service();
    let mut bad = config(&service);
    bad.concurrency = 0;
    let err = smol::block_on(crawl(
        &staunch_smol::Smol::current(),
        &SmolClient,
        &bad,
        &CancelScope::new(),
        Observers::new(),
    ))
    .unwrap_err();
    assert!(err.contains("concurrency"), "{err}");
    bad.concurrency = 4;
    bad.fail = 1.5;
    assert!(bad.check().unwrap_err().contains("100 %"));
}
