//! The lab's crawlers as several OS processes, with per-process breakers
//! and then with breakers shared through Redis, against one flaky service.
//!
//! `lab-shared [--processes N] [--redis redis://127.0.0.1:PORT/]`
//!
//! Without `--redis` it starts its own `redis-server` (Debian's, or
//! `$STAUNCH_REDIS_SERVER`) on 127.0.0.1 and a free port, without
//! persistence, and stops it at the end. Each round starts a fresh service
//! and `N` crawler processes (this binary with `--child`) at once; the
//! table shows what each host received from all of them. With shared
//! breakers, a host that is down trips one breaker for every process: the
//! others are refused without sending, where per-process breakers must each
//! learn it from their own failures.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    match lab::run(std::env::args().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-shared: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod lab {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use staunch::breaker::CircuitBreaker;
    use staunch::observe::Observers;
    use staunch::scope::CancelScope;
    use staunch_demo::http::native::ReqwestClient;
    use staunch_demo::http::{
        BREAKER_OPEN, CrawlConfig, crawl_with, is_host_failure, local_breaker,
    };
    use staunch_demo::service::{HOSTS, Service};
    use staunch_redis::{FailureMode, LocalRedis, RedisBreaker, RedisStore};
    use staunch_tokio::Tokio;

    const USAGE: &str = "usage: lab-shared [--processes N] [--redis redis://127.0.0.1:PORT/]";

    /// Where the breakers of one round keep their state.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Breakers {
        PerProcess,
        Shared,
    }

    impl Breakers {
        fn arg(self) -> &'static str {
            match self {
                Breakers::PerProcess => "local",
                Breakers::Shared => "shared",
            }
        }
    }

    pub(super) fn run(args: Vec<String>) -> Result<(), String> {
        if args.first().is_some_and(|a| a == "--child") {
            return child(&args[1..]);
        }
        let (processes, url) = parse(&args)?;
        let own_server = match url {
            Some(_) => None,
            None => Some(LocalRedis::start().map_err(|e| e.to_string())?),
        };
        let url = url.unwrap_or_else(|| {
            own_server
                .as_ref()
                .map_or_else(String::new, LocalRedis::url)
        });
        println!(
            "resilience lab, {processes} crawler processes, breakers shared through Redis at {url}"
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let run_id = std::process::id();
        for breakers in [Breakers::PerProcess, Breakers::Shared] {
            let service = rt.block_on(Service::start(0)).map_err(|e| e.to_string())?;
            let hosts: Vec<String> = service
                .hosts
                .iter()
                .map(|h| format!("http://{}", h.2))
                .collect();
            let children = (0..processes)
                .map(|i| {
                    Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                        .args([
                            "--child",
                            breakers.arg(),
                            &url,
                            &format!("r{run_id}{}", breakers.arg()),
                        ])
                        .arg(hosts.join(","))
                        .arg(i.to_string())
                        .stdout(Stdio::piped())
                        .spawn()
                        .map_err(|e| format!("cannot start crawler {i}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut lines = Vec::new();
            for (i, c) in children.into_iter().enumerate() {
                let out = c.wait_with_output().map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(format!("crawler {i} failed: {}", out.status));
                }
                lines.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
            }
            println!(
                "\n{} breakers:",
                match breakers {
                    Breakers::PerProcess => "per-process",
                    Breakers::Shared => "shared (Redis)",
                }
            );
            for line in &lines {
                println!("  {line}");
            }
            println!(
                "  {:<8} {:<17} {:>8} {:>5} {:>5}",
                "host", "profile", "received", "200", "503"
            );
            for ((name, profile), s) in HOSTS.iter().zip(service.stats()) {
                println!(
                    "  {name:<8} {:<17} {:>8} {:>5} {:>5}",
                    profile.name(),
                    s.received,
                    s.ok,
                    s.unavailable
                );
            }
            let down = HOSTS
                .iter()
                .zip(service.stats())
                .filter(|((_, p), _)| p.name() == "down")
                .map(|(_, s)| s.received)
                .sum::<u64>();
            println!("  requests to the host that is down: {down}");
        }
        Ok(())
    }

    fn parse(args: &[String]) -> Result<(u32, Option<String>), String> {
        let (mut processes, mut url) = (3, None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(USAGE)?;
            match flag.as_str() {
                "--processes" => {
                    processes = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=16).contains(n))
                        .ok_or("--processes takes a number from 1 to 16")?;
                }
                "--redis" => url = Some(value.clone()),
                _ => return Err(USAGE.into()),
            }
        }
        Ok((processes, url))
    }

    /// One crawler: `--child <local|shared> <redis-url> <run> <hosts> <index>`.
    fn child(args: &[String]) -> Result<(), String> {
        let [mode, url, run, hosts, index] = args else {
            return Err(
                "a crawler takes: local|shared, the redis URL, the run, the hosts, its index"
                    .into(),
            );
        };
        let shared = mode == "shared";
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        rt.block_on(async {
            let timer = Tokio::current().map_err(|e| e.to_string())?;
            let mut config = CrawlConfig::lab(hosts.split(',').map(str::to_owned).collect());
            config.seed += index.parse::<u64>().unwrap_or(0);
            let store = RedisStore::open(url, Duration::from_millis(200), timer.clone())
                .map_err(|e| e.to_string())?;
            let breaker_for =
                |name: &str, observers: Observers| -> Result<CircuitBreaker, String> {
                    if !shared {
                        return local_breaker(&timer, &config, name, observers);
                    }
                    let shared = RedisBreaker::builder(store.clone(), timer.clone(), name)
                        .time_window(Duration::from_secs(10), 10)
                        .minimum_calls(config.breaker_threshold)
                        .failure_rate(1.0)
                        .open_duration(BREAKER_OPEN)
                        .half_open_probes(1)
                        .sync_interval(Duration::from_millis(5))
                        .failure_mode(FailureMode::FallbackToLocal)
                        .failure_if(is_host_failure)
                        .observers(observers)
                        .build()
                        .map_err(|e| e.to_string())?;
                    tokio::spawn(shared.sync_task());
                    Ok(shared.breaker().clone())
                };
            let report = crawl_with(
                &timer,
                &ReqwestClient::default(),
                &config,
                &CancelScope::new(),
                Observers::new(),
                &format!("{run}-"),
                &breaker_for,
            )
            .await?;
            println!(
                "crawler {index}: {} pages ok, {} failed, {} refused by a breaker, {} retries",
                report.ok, report.failed, report.rejected, report.retries
            );
            Ok(())
        })
    }
}
