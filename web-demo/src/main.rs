//! The resilience lab, natively: starts the flaky service on 127.0.0.1,
//! runs the same crawl on smol and on tokio against it with a progress bar,
//! and prints a summary table beside the service's own counts.
//!
//! `--metrics-addr 127.0.0.1:9100` serves Prometheus `/metrics` (fed by
//! staunch's `MetricsObserver`) and keeps serving until Enter is pressed
//! (or at once when stdin is closed, as in CI).

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match native::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("resilience-lab: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::net::SocketAddr;
    use std::time::Duration;

    use indicatif::{ProgressBar, ProgressStyle};
    use staunch::observe::{Event, MetricsObserver, Observers};
    use staunch::scope::CancelScope;
    use staunch_demo::http::native::{ReqwestClient, SmolClient};
    use staunch_demo::http::{CrawlConfig, HttpReport, crawl, crawl_naive, metrics};
    use staunch_demo::service::{HOSTS, Service};

    fn parse_args() -> Result<Option<SocketAddr>, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.as_slice() {
            [] => Ok(None),
            [flag, addr] if flag == "--metrics-addr" => addr.parse().map(Some).map_err(|_| {
                format!("--metrics-addr takes an address such as 127.0.0.1:9100, got `{addr}`")
            }),
            _ => Err("usage: resilience-lab [--metrics-addr 127.0.0.1:PORT]".into()),
        }
    }

    fn progress(label: &str, observers: Observers) -> (ProgressBar, Observers) {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:<6} {pos:>4} attempts  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        let ticker = bar.clone();
        let observers = observers.with(move |e: &Event| {
            if matches!(e, Event::AttemptStarted { .. }) {
                ticker.inc(1);
            }
        });
        (bar, observers)
    }

    fn print_table(runtime: &str, report: &HttpReport) {
        println!(
            "\n{runtime}: {} pages ok, {} failed, {} refused by a breaker, {} cancelled; {} retries; {} ms",
            report.ok,
            report.failed,
            report.rejected,
            report.cancelled,
            report.retries,
            report.elapsed.as_millis()
        );
        println!(
            "  {:<8} {:<17} {:>5} {:>5} {:>8}  breaker",
            "host", "profile", "sent", "ok", "refused"
        );
        for (i, (name, profile)) in HOSTS.iter().enumerate() {
            let h = &report.hosts[i];
            let states: Vec<&str> = h.transitions.iter().map(|(_, s)| s.as_str()).collect();
            println!(
                "  {name:<8} {:<17} {:>5} {:>5} {:>8}  closed{}",
                profile.name(),
                h.sent,
                h.ok,
                h.rejected,
                states
                    .iter()
                    .map(|s| format!(" -> {s}"))
                    .collect::<String>()
            );
        }
    }

    pub(super) fn run() -> Result<(), String> {
        let metrics_addr = parse_args()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let service = rt.block_on(Service::start(0)).map_err(|e| e.to_string())?;
        let mut observers = Observers::new();
        let mut server = None;
        if let Some(addr) = metrics_addr {
            let handle = metrics::install()?;
            let (bound, task) = rt.block_on(metrics::serve(addr, handle))?;
            println!("Prometheus metrics at http://{bound}/metrics");
            observers = observers.with(MetricsObserver);
            server = Some(task);
        }
        let config = CrawlConfig::lab(
            service
                .hosts
                .iter()
                .map(|h| format!("http://{}", h.2))
                .collect(),
        );
        println!(
            "resilience lab, natively: seed {}, up to {} pages, concurrency {}, timeout {:?}, {} attempts",
            config.seed, config.pages, config.concurrency, config.timeout, config.attempts
        );

        let (bar, smol_observers) = progress("smol", observers.clone());
        let timer = staunch_smol::Smol::current();
        let on_smol = smol::block_on(crawl(
            &timer,
            &SmolClient,
            &config,
            &CancelScope::new(),
            smol_observers,
        ))?;
        bar.finish();

        let (bar, tokio_observers) = progress("tokio", observers);
        let on_tokio = rt.block_on(async {
            let timer = staunch_tokio::Tokio::current().map_err(|e| e.to_string())?;
            crawl(
                &timer,
                &ReqwestClient::default(),
                &config,
                &CancelScope::new(),
                tokio_observers,
            )
            .await
        })?;
        bar.finish();

        // The naive crawl of the same service: plain GETs, a level at once,
        // no timeout, retry or breaker; only its budget stops it.
        let budget = Duration::from_secs(3);
        let naive = rt.block_on(async {
            let timer = staunch_tokio::Tokio::current().map_err(|e| e.to_string())?;
            crawl_naive(
                &timer,
                &ReqwestClient::default(),
                &config,
                budget,
                &CancelScope::new(),
            )
            .await
        })?;

        print_table("smol (async-net client)", &on_smol);
        print_table("tokio (reqwest)", &on_tokio);
        println!(
            "\nnaive on tokio (plain GETs, no timeout, retry or breaker; stopped by its {} s budget): \
             {} pages ok, {} failed, {} cancelled at the budget; {} ms",
            budget.as_secs(),
            naive.ok,
            naive.failed,
            naive.cancelled,
            naive.elapsed.as_millis()
        );
        println!("\nthe service counted (all three crawls):");
        for ((name, _), s) in HOSTS.iter().zip(service.stats()) {
            println!(
                "  {name:<8} received {:>4}  200 {:>4}  503 {:>4}  429 {:>4}  aborted by the client {:>4}",
                s.received, s.ok, s.unavailable, s.rate_limited, s.aborted
            );
        }
        if server.is_some() {
            println!("\nserving /metrics; press Enter to stop");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        Ok(())
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
