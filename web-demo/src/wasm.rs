//! The browser entry points, called from `main.js`.

use std::time::Duration;

use staunch_web::Web;
use wasm_bindgen::prelude::{JsValue, wasm_bindgen};

use crate::crawler::{LabConfig, Strategy, crawl};
use crate::http::CrawlConfig;
use crate::report::quote;
use crate::site::HOSTS;

/// Runs one crawl in the browser with real `setTimeout` timers and returns
/// its report as JSON. `on_event` is called with each page's result (JSON)
/// as it happens.
///
/// # Errors
///
/// A JavaScript error naming the unknown strategy.
#[wasm_bindgen]
pub async fn run_lab(
    strategy: String,
    seed: u64,
    pages: u32,
    budget_ms: u32,
    on_event: js_sys::Function,
) -> Result<String, JsValue> {
    let strategy: Strategy = strategy
        .parse()
        .map_err(|e: String| JsValue::from_str(&e))?;
    let config = LabConfig {
        seed,
        pages,
        budget: Duration::from_millis(u64::from(budget_ms)),
    };
    let report = crawl(&Web::current(), strategy, &config, &|event| {
        let _ = on_event.call1(&JsValue::NULL, &JsValue::from_str(&event.to_json()));
    })
    .await;
    Ok(report.to_json())
}

/// The simulated hosts and their behaviour, as JSON.
#[wasm_bindgen]
#[must_use]
pub fn hosts() -> String {
    let rows: Vec<String> = HOSTS
        .iter()
        .map(|h| {
            format!(
                r#"{{"name":{},"behaviour":{}}}"#,
                quote(h.name),
                quote(h.behaviour.label())
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

thread_local! {
    /// The scope of the crawl over real HTTP that is running, for Stop.
    static HTTP_CRAWL: std::cell::RefCell<Option<staunch::scope::CancelScope>> =
        const { std::cell::RefCell::new(None) };
}

/// Crawls the lab's flaky service over real `fetch` with the same crawler
/// the native lab runs (retry with Retry-After, a breaker per host, a
/// per-request timeout, bounded concurrency), and returns a JSON summary.
/// `hosts` is a comma-separated list of the service's host URLs;
/// `on_event` hears every staunch event (breaker transitions, retries) as
/// text, through an observer that holds a JS function (possible on wasm32:
/// observers need only be `MaybeSend + MaybeSync`). [`stop_http`] cancels
/// the crawl's scope, which aborts the fetches in flight.
///
/// # Errors
///
/// A JavaScript error with the message of a bad setting.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub async fn crawl_http(
    hosts: String,
    seed: u64,
    pages: f64,
    concurrency: f64,
    fail_percent: f64,
    latency_ms: f64,
    timeout_ms: f64,
    attempts: f64,
    breaker_threshold: f64,
    on_event: js_sys::Function,
) -> Result<String, JsValue> {
    use crate::http::browser::FetchClient;
    use crate::http::crawl;
    use staunch::observe::{Event, Observers};
    use staunch::scope::CancelScope;

    let pages = whole("pages", pages)?;
    let concurrency = whole("concurrency", concurrency)?;
    let latency_ms = whole("latency", latency_ms)?;
    let timeout_ms = whole("the per-request timeout", timeout_ms)?;
    let attempts = whole("retry attempts", attempts)?;
    let breaker_threshold = whole("the breaker threshold", breaker_threshold)?;
    let fail = fail_share(fail_percent)?;
    let config = CrawlConfig {
        hosts: host_list(&hosts),
        seed,
        pages,
        concurrency: concurrency as usize,
        fail,
        latency: Duration::from_millis(u64::from(latency_ms)),
        timeout: Duration::from_millis(u64::from(timeout_ms)),
        attempts,
        breaker_threshold,
    };
    config.check().map_err(|e| JsValue::from_str(&e))?;
    let scope = CancelScope::new();
    HTTP_CRAWL.with(|c| *c.borrow_mut() = Some(scope.clone()));
    let observers = Observers::new().with(move |event: &Event| {
        let _ = on_event.call1(&JsValue::NULL, &JsValue::from_str(&format!("{event:?}")));
    });
    let rt = Web::current();
    let report = crawl(&rt, &FetchClient, &config, &scope, observers)
        .await
        .map_err(|e| JsValue::from_str(&e))?;
    HTTP_CRAWL.with(|c| *c.borrow_mut() = None);
    Ok(summary_json(&report, &config))
}

/// The naive crawl of the same service over real `fetch`, for the summary
/// beside staunch's: one plain GET per page, a whole level at once, no
/// timeout, retry or breaker; only `budget_ms` (or [`stop_http`]) stops
/// it. Returns the same JSON summary as [`crawl_http`].
///
/// # Errors
///
/// A JavaScript error with the message of a bad setting.
#[wasm_bindgen]
pub async fn crawl_http_naive(
    hosts: String,
    seed: u64,
    pages: f64,
    fail_percent: f64,
    latency_ms: f64,
    budget_ms: f64,
) -> Result<String, JsValue> {
    use crate::http::browser::FetchClient;
    use crate::http::crawl_naive;
    use staunch::scope::CancelScope;

    let pages = whole("pages", pages)?;
    let latency_ms = whole("latency", latency_ms)?;
    let budget_ms = whole("the naive crawl's budget", budget_ms)?;
    let fail = fail_share(fail_percent)?;
    let config = CrawlConfig {
        hosts: host_list(&hosts),
        seed,
        pages,
        concurrency: 1,
        fail,
        latency: Duration::from_millis(u64::from(latency_ms)),
        timeout: Duration::from_secs(1),
        attempts: 1,
        breaker_threshold: 1,
    };
    let scope = CancelScope::new();
    HTTP_CRAWL.with(|c| *c.borrow_mut() = Some(scope.clone()));
    let budget = Duration::from_millis(u64::from(budget_ms));
    let report = crawl_naive(&Web::current(), &FetchClient, &config, budget, &scope).await;
    HTTP_CRAWL.with(|c| *c.borrow_mut() = None);
    let report = report.map_err(|e| JsValue::from_str(&e))?;
    Ok(summary_json(&report, &config))
}

/// A JS number that must be a whole `u32`: a negative, fractional or
/// missing one gets a message instead of wrapping around.
fn whole(name: &str, v: f64) -> Result<u32, JsValue> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) {
        Ok(v as u32)
    } else {
        Err(JsValue::from_str(&format!(
            "{name} must be a whole number of at least 0, got {v}"
        )))
    }
}

/// A failure percentage as a share (checked again by `CrawlConfig::check`).
fn fail_share(percent: f64) -> Result<f64, JsValue> {
    if percent.is_finite() && percent >= 0.0 {
        Ok(percent / 100.0)
    } else {
        Err(JsValue::from_str(&format!(
            "failure rate must be 0 to 100 %, got {percent} %"
        )))
    }
}

fn host_list(hosts: &str) -> Vec<String> {
    hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A crawl's report as the page reads it.
fn summary_json(report: &crate::http::HttpReport, config: &CrawlConfig) -> String {
    let hosts: Vec<String> = report
        .hosts
        .iter()
        .zip(&config.hosts)
        .map(|(h, url)| {
            let breaker = h.transitions.last().map_or("closed", |(_, s)| s.as_str());
            let transitions: Vec<String> = h
                .transitions
                .iter()
                .map(|(at, state)| format!(r#"[{},{}]"#, at.as_millis(), quote(state)))
                .collect();
            format!(
                r#"{{"url":{},"sent":{},"ok":{},"rejected":{},"breaker":{},"transitions":[{}]}}"#,
                quote(url),
                h.sent,
                h.ok,
                h.rejected,
                quote(breaker),
                transitions.join(",")
            )
        })
        .collect();
    // Latency histogram of the requests that got an answer: 50 ms buckets,
    // the last one holding everything from 1 s on.
    let mut latency = [0u32; 21];
    for r in &report.requests {
        if matches!(r.outcome, crate::http::RequestOutcome::Status(_)) {
            let bucket = usize::try_from(r.took.as_millis() / 50)
                .unwrap_or(usize::MAX)
                .min(20);
            latency[bucket] += 1;
        }
    }
    let latency: Vec<String> = latency.iter().map(u32::to_string).collect();
    format!(
        r#"{{"ok":{},"failed":{},"rejected":{},"cancelled":{},"retries":{},"requests":{},"elapsed_ms":{},"shortest_wait_after_429_ms":{},"latency_50ms":[{}],"hosts":[{}]}}"#,
        report.ok,
        report.failed,
        report.rejected,
        report.cancelled,
        report.retries,
        report.requests.len(),
        report.elapsed.as_millis(),
        report
            .shortest_wait_after_429
            .map_or_else(|| "null".to_owned(), |w| w.as_millis().to_string()),
        latency.join(","),
        hosts.join(",")
    )
}

/// Stops the running [`crawl_http`]: cancels its scope, which aborts every
/// fetch in flight (reported as cancelled, not failed). Returns whether a
/// crawl was running.
#[wasm_bindgen]
#[must_use]
pub fn stop_http() -> bool {
    HTTP_CRAWL.with(|c| {
        c.borrow()
            .as_ref()
            .map(|scope| scope.cancel_with_message("stopped from the page"))
            .is_some()
    })
}
