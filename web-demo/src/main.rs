//! The resilience lab, natively: the same crawler as in the browser, run on
//! smol and on tokio, printing each strategy's report.

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use staunch_demo::{CrawlReport, LabConfig, Strategy, crawl};
    use std::time::Duration;

    let config = LabConfig {
        seed: 7,
        pages: 48,
        budget: Duration::from_millis(3000),
    };
    let print = |runtime: &str, report: &CrawlReport| {
        println!(
            "{runtime:<6} {:<8} ok {:>3}  failed {:>3}  rejected {:>3}  cancelled {:>3}  attempts {:>3}  {:>5} ms",
            report.strategy,
            report.ok,
            report.failed,
            report.rejected,
            report.cancelled,
            report.attempts,
            report.elapsed.as_millis()
        );
    };
    println!(
        "resilience lab, natively: seed {}, {} pages, budget {:?}",
        config.seed, config.pages, config.budget
    );

    let rt = staunch_smol::Smol::global();
    let (naive, resilient) = smol::block_on(async {
        futures::join!(
            crawl(&rt, Strategy::Naive, &config, &|_| {}),
            crawl(&rt, Strategy::Staunch, &config, &|_| {})
        )
    });
    print("smol", &naive);
    print("smol", &resilient);

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio builds");
    let (naive, resilient) = tokio_rt.block_on(async {
        let rt = staunch_tokio::Tokio::current().expect("inside tokio");
        futures::join!(
            crawl(&rt, Strategy::Naive, &config, &|_| {}),
            crawl(&rt, Strategy::Staunch, &config, &|_| {})
        )
    });
    print("tokio", &naive);
    print("tokio", &resilient);
    for host in &resilient.hosts {
        println!(
            "  {:<16} ok {:>3}  not fetched {:>3}  breaker {}",
            host.host, host.ok, host.failed, host.breaker
        );
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}
