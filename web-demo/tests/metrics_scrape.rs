//! A crawl with staunch's MetricsObserver, scraped over HTTP from /metrics.
//! (Its own test binary: the recorder is process-global.)
#![cfg(not(target_arch = "wasm32"))]

use staunch::observe::{MetricsObserver, Observers};
use staunch::scope::CancelScope;
use staunch_demo::http::native::{ReqwestClient, SmolClient};
use staunch_demo::http::{CrawlConfig, HttpClient, crawl, metrics};
use staunch_demo::service::Service;

/// The value of the series named `series` exactly (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.rsplit_once(' ').filter(|(k, _)| *k == series))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn metrics_expose_the_staunch_series_of_a_crawl() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = metrics::install().unwrap();
    let service = rt.block_on(Service::start(0)).unwrap();
    let (addr, server) = rt
        .block_on(metrics::serve("127.0.0.1:0".parse().unwrap(), handle))
        .unwrap();
    let mut config = CrawlConfig::lab(
        service
            .hosts
            .iter()
            .map(|h| format!("http://{}", h.2))
            .collect(),
    );
    config.pages = 30;
    let report = rt
        .block_on(async {
            let timer = staunch_tokio::Tokio::current().unwrap();
            let observers = Observers::new().with(MetricsObserver);
            crawl(
                &timer,
                &ReqwestClient::default(),
                &config,
                &CancelScope::new(),
                observers,
            )
            .await
        })
        .unwrap();
    let scrape = smol::block_on(SmolClient.get(&format!("http://{addr}/metrics"))).unwrap();
    assert_eq!(scrape.status, 200);
    let text = scrape.body;
    let attempts = value(&text, r#"staunch_attempts_total{name="page"}"#)
        .unwrap_or_else(|| panic!("no attempts series in:\n{text}"));
    let sent: u64 = report.hosts.iter().map(|h| h.sent).sum();
    let rejected: u64 = report.hosts.iter().map(|h| h.rejected).sum();
    assert_eq!(
        attempts as u64,
        sent + rejected,
        "every attempt either sent or refused"
    );
    assert_eq!(
        value(&text, r#"staunch_retries_total{name="page"}"#).unwrap() as u64,
        report.retries
    );
    let refused: f64 = (0..7)
        .filter_map(|h| {
            value(
                &text,
                &format!(r#"staunch_rejected_total{{name="host-{h}"}}"#),
            )
        })
        .sum();
    assert_eq!(refused as u64, rejected);
    assert!(
        value(
            &text,
            r#"staunch_circuit_transitions_total{name="host-3",to="open"}"#
        )
        .unwrap()
            >= 1.0
    );
    server.abort();
}
