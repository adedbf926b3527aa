//! The shared rate limiter against a real redis-server, on tokio: the
//! bound over every window across clients and OS processes, failure modes
//! through an outage, a slow server, and keys corrupted by hand.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::RedisServer;
use staunch::observe::Event;
use staunch::rate::Rate;
use staunch_redis::{FailureMode, RedisRateError, RedisRateLimiter};
use staunch_tokio::Tokio;

type Limiter = RedisRateLimiter<Tokio>;

fn limiter(server: &RedisServer, name: &str, rate: Rate, burst: u32) -> Limiter {
    RedisRateLimiter::builder(Tokio::current().unwrap(), server.client(), name, rate)
        .burst(burst)
        .call_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// The largest number of admissions inside any window of `window` (server
/// times, microseconds).
fn max_in_window(times: &mut [u64], window: Duration) -> usize {
    times.sort_unstable();
    let w = u64::try_from(window.as_micros()).unwrap();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= w {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Hammers `key` for `run`, returning the server times of admissions.
async fn hammer(limiter: Limiter, key: &str, run: Duration) -> Vec<u64> {
    let mut admitted = Vec::new();
    let stop = Instant::now() + run;
    while Instant::now() < stop {
        match limiter.try_acquire_timed(key, 1).await {
            Ok(Some(at)) => admitted.push(u64::try_from(at.as_micros()).unwrap()),
            Ok(None) => panic!("decided without Redis while Redis is up"),
            Err(RedisRateError::Limited(_)) => {}
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_holds_across_concurrent_clients() {
    let server = RedisServer::start();
    // T = 10 ms, burst 5: any window of W admits at most W/T + 5.
    let rate = Rate::per_second(100);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            // Each its own client and connection, as separate services would be.
            tokio::spawn(hammer(
                limiter(&server, "api", rate, 5),
                "user-1",
                Duration::from_millis(1500),
            ))
        })
        .collect();
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let total = times.len();
    let span_s = (times.iter().max().unwrap() - times.iter().min().unwrap()) as f64 / 1e6;
    for window_ms in [10u64, 100, 500, 1000] {
        let most = max_in_window(&mut times, Duration::from_millis(window_ms));
        let bound = (window_ms / 10) as usize + 5;
        assert!(
            most <= bound,
            "{most} admissions in a {window_ms} ms window, bound {bound}"
        );
    }
    // And the limiter is not simply refusing everything: close to the rate.
    let expected = span_s * 100.0 + 5.0;
    assert!(
        total as f64 >= expected * 0.9,
        "only {total} admitted over {span_s:.2} s (expected about {expected:.0})"
    );
    // Another key is independent.
    let other = limiter(&server, "api", rate, 5);
    assert!(other.try_acquire("user-2").await.is_ok());
}

/// A child process of `quota_holds_across_processes`: hammers the limiter
/// and prints each admission's server time. Does nothing when run normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn child_hammer() {
    let Ok(port) = std::env::var("STAUNCH_REDIS_CHILD_PORT") else {
        return;
    };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let limiter = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        client,
        "procs",
        Rate::per_second(200),
    )
    .burst(10)
    .call_timeout(Duration::from_secs(1))
    .build()
    .unwrap();
    let times = hammer(limiter, "shared", Duration::from_millis(1500)).await;
    let line: Vec<String> = times.iter().map(u64::to_string).collect();
    println!("ADMITTED {}", line.join(","));
}

#[test]
fn quota_holds_across_processes() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_hammer", "--nocapture", "--test-threads=1"])
                .env("STAUNCH_REDIS_CHILD_PORT", server.port().to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut times = Vec::new();
    let mut per_process = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed: {out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("ADMITTED ").map(|(_, times)| times))
            .unwrap_or_else(|| panic!("no ADMITTED line in {stdout}"));
        let mine: Vec<u64> = line
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        per_process.push(mine.len());
        times.extend(mine);
    }
    // Every process got some: they really ran at the same time.
    assert!(
        per_process.iter().all(|&n| n > 0),
        "admissions per process: {per_process:?}"
    );
    // T = 5 ms, burst 10: every window of W admits at most W/T + 10.
    for window_ms in [5u64, 50, 250, 1000] {
        let most = max_in_window(&mut times, Duration::from_millis(window_ms));
        let bound = (window_ms / 5) as usize + 10;
        assert!(
            most <= bound,
            "{most} admissions in a {window_ms} ms window across processes, bound {bound} ({per_process:?})"
        );
    }
    let span_s = (times.iter().max().unwrap() - times.iter().min().unwrap()) as f64 / 1e6;
    assert!(
        times.len() as f64 >= (span_s * 200.0 + 10.0) * 0.9,
        "only {} admitted over {span_s:.2} s",
        times.len()
    );
}

fn recording() -> (
    Arc<Mutex<Vec<Event>>>,
    impl Fn(&Event) + Send + Sync + 'static,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |e: &Event| {
        if matches!(e, Event::StoreModeChanged { .. }) {
            sink.lock().unwrap().push(e.clone());
        }
    })
}

fn mode_changes(seen: &Mutex<Vec<Event>>) -> Vec<bool> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::StoreModeChanged { degraded, .. } => Some(*degraded),
            _ => None,
        })
        .collect()
}

/// Kills Redis mid-run and restarts it: during the outage every call
/// answers within the call timeout as `mode` says; afterwards Redis decides
/// again and both switches were reported.
async fn outage(mode: FailureMode) {
    let mut server = RedisServer::start();
    let (seen, observer) = recording();
    let call_timeout = Duration::from_millis(100);
    let limiter = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        server.client(),
        "outage",
        Rate::per_second(10),
    )
    .burst(3)
    .call_timeout(call_timeout)
    .retry_interval(Duration::from_millis(200))
    .on_failure(mode)
    .observer(observer)
    .build()
    .unwrap();

    for _ in 0..3 {
        limiter.try_acquire("k").await.unwrap();
    }
    assert!(matches!(
        limiter.try_acquire("k").await,
        Err(RedisRateError::Limited(_))
    ));
    assert_eq!(limiter.stats().shared_decisions, 4);

    server.kill();
    let mut admitted = 0;
    let mut limited = 0;
    let mut unavailable = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(2), limiter.try_acquire("k"))
            .await
            .expect("a call hung during the outage");
        assert!(
            started.elapsed() < call_timeout + Duration::from_millis(400),
            "a call took {:?} during the outage",
            started.elapsed()
        );
        match answer {
            Ok(()) => admitted += 1,
            Err(RedisRateError::Limited(_)) => limited += 1,
            Err(RedisRateError::Unavailable { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_millis(200));
                unavailable += 1;
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    let stats = limiter.stats();
    assert!(stats.degraded);
    assert!(stats.store_failures >= 1);
    assert_eq!(stats.degraded_decisions, 20);
    match mode {
        FailureMode::FailOpen => assert_eq!((admitted, limited, unavailable), (20, 0, 0)),
        FailureMode::FailClosed => assert_eq!((admitted, limited, unavailable), (0, 0, 20)),
        // The local limiter starts fresh: its own burst, then refusals.
        FailureMode::FallbackToLocal => assert_eq!((admitted, limited, unavailable), (3, 17, 0)),
    }
    assert_eq!(
        mode_changes(&seen),
        [true],
        "one switch into the failure mode"
    );

    server.restart();
    let recovered_by = Instant::now() + Duration::from_secs(5);
    loop {
        let _ = limiter.try_acquire("k").await;
        if !limiter.stats().degraded {
            break;
        }
        assert!(Instant::now() < recovered_by, "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        mode_changes(&seen),
        [true, false],
        "the recovery is reported"
    );
    let before = limiter.stats().shared_decisions;
    let _ = limiter.try_acquire("k").await;
    assert_eq!(
        limiter.stats().shared_decisions,
        before + 1,
        "Redis decides again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fallback_to_local() {
    outage(FailureMode::FallbackToLocal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fail_open() {
    outage(FailureMode::FailOpen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fail_closed() {
    outage(FailureMode::FailClosed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_redis_costs_at_most_the_call_timeout() {
    let server = RedisServer::start();
    let limiter = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        server.client(),
        "slow",
        Rate::per_second(10),
    )
    .call_timeout(Duration::from_millis(80))
    .on_failure(FailureMode::FailClosed)
    .build()
    .unwrap();
    limiter.try_acquire("k").await.unwrap();
    let port = server.port();
    let sleeper = std::thread::spawn(move || {
        let s = RedisServer::raw_on(port, &["DEBUG", "SLEEP", "1"]);
        assert!(s.starts_with("+OK"), "DEBUG SLEEP answered {s:?}");
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let answer = limiter.try_acquire("k").await;
    let took = started.elapsed();
    assert!(
        matches!(answer, Err(RedisRateError::Unavailable { .. })),
        "{answer:?}"
    );
    assert!(took < Duration::from_millis(400), "took {took:?}");
    sleeper.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_corrupted_by_hand_are_rebuilt_and_every_key_has_a_ttl() {
    let server = RedisServer::start();
    let limiter = limiter(&server, "corrupt", Rate::per_second(10), 2);
    let key = limiter.redis_key("k");

    limiter.try_acquire("k").await.unwrap();
    let ttl: i64 = server.raw(&["PTTL", &key])[1..].trim().parse().unwrap();
    assert!(
        (1..=201).contains(&ttl),
        "TTL {ttl} ms, expected at most burst x T"
    );

    for corruption in [
        vec!["SET", key.as_str(), "garbage"],
        vec!["SET", key.as_str(), "99999999999999999"],
        vec!["SET", key.as_str(), "-5"],
    ] {
        server.raw(&["DEL", &key]);
        server.raw(&corruption);
        let before = limiter.stats().rebuilt_keys;
        // Rebuilt as "burst just spent": refused now, never admitted extra.
        let answer = limiter.try_acquire("k").await;
        assert!(
            matches!(answer, Err(RedisRateError::Limited(_))),
            "after {corruption:?}: {answer:?}"
        );
        assert_eq!(limiter.stats().rebuilt_keys, before + 1, "{corruption:?}");
        let value = server.raw(&["GET", &key]);
        assert!(
            !value.contains("garbage") && !value.contains("9999999999"),
            "{value}"
        );
        let ttl: i64 = server.raw(&["PTTL", &key])[1..].trim().parse().unwrap();
        assert!((1..=201).contains(&ttl), "TTL {ttl} ms after rebuilding");
    }

    // The wrong Redis type.
    server.raw(&["DEL", &key]);
    server.raw(&["LPUSH", &key, "x"]);
    assert!(limiter.try_acquire("k").await.is_err());
    assert!(server.raw(&["TYPE", &key]).starts_with("+string"));
    assert_eq!(limiter.stats().rebuilt_keys, 4);

    // Deleted by hand: the same as idle past the TTL, so a fresh burst.
    server.raw(&["DEL", &key]);
    limiter.try_acquire("k").await.unwrap();
    limiter.try_acquire("k").await.unwrap();
    assert!(limiter.try_acquire("k").await.is_err());
    assert_eq!(limiter.stats().rebuilt_keys, 4);
    assert!(!limiter.stats().degraded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_waits_for_its_turn_on_the_server_clock() {
    let server = RedisServer::start();
    let limiter = limiter(&server, "wait", Rate::per_second(20), 1);
    let started = Instant::now();
    for _ in 0..5 {
        limiter.acquire("k").await.unwrap();
    }
    // One at once, then one every 50 ms.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(195) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let bounded = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        server.client(),
        "wait",
        Rate::per_second(20),
    )
    .burst(1)
    .max_wait(Duration::from_millis(10))
    .build()
    .unwrap();
    assert!(matches!(
        bounded.acquire("k").await,
        Err(RedisRateError::Limited(_))
    ));
    assert!(matches!(
        limiter.try_acquire_n("k", 2).await,
        Err(RedisRateError::CostOverBurst { cost: 2, burst: 1 })
    ));
}

#[test]
fn bad_settings_are_refused_with_what_to_fix() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    let build = |name: &str, rate: Rate, burst: u32, timeout: Duration| {
        RedisRateLimiter::builder(Tokio::current().unwrap(), client.clone(), name, rate)
            .burst(burst)
            .call_timeout(timeout)
            .build()
            .unwrap_err()
    };
    let ms = Duration::from_millis(50);
    assert_eq!(build("", Rate::per_second(1), 1, ms).setting, "name");
    assert_eq!(build("x", Rate::per_second(0), 1, ms).setting, "rate");
    assert_eq!(
        build("x", Rate::per_second(2_000_000), 1, ms).setting,
        "rate"
    );
    assert_eq!(build("x", Rate::per_second(1), 0, ms).setting, "burst");
    assert_eq!(
        build("x", Rate::per_second(1), 1, Duration::ZERO).setting,
        "call_timeout"
    );
}

/// Prints the figures in the README: latency of one check (one round trip
/// and one script run) and checks per second through one limiter shared by
/// 32 tasks (the multiplexed connection pipelines them). Asserts only a
/// floor far below what a local Redis does, so a loaded machine passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_check_latency_and_throughput() {
    let server = RedisServer::start();
    // A rate that never refuses, so every check runs the whole script.
    let limiter = limiter(&server, "bench", Rate::per_second(1_000_000), 1_000_000);
    limiter.try_acquire("warm").await.unwrap();

    let mut latencies = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        limiter.try_acquire(&format!("k{}", i % 64)).await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];

    let started = Instant::now();
    let run = Duration::from_millis(1000);
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < run {
                    limiter.try_acquire(&format!("k{t}")).await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let per_second = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "FIGURES one check: p50 {p50:?}, p99 {p99:?}; 32 tasks on one limiter: {per_second:.0} checks/s"
    );
    assert!(per_second > 200.0, "{per_second:.0} checks/s");
    assert!(limiter.stats().shared_decisions >= 2000 + total);
}

/// A timer whose clock runs `offset` ahead of the real one (a process
/// whose clock is skewed). Sleeps are real.
#[derive(Clone, Debug)]
struct Skewed {
    inner: Tokio,
    offset: Duration,
}

impl staunch::runtime::Timer for Skewed {
    type Sleep = <Tokio as staunch::runtime::Timer>::Sleep;
    fn now(&self) -> staunch::runtime::Instant {
        self.inner.now() + self.offset
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.inner.sleep(duration)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_between_clients_changes_nothing() {
    let server = RedisServer::start();
    let rate = Rate::per_second(100);
    let straight = limiter(&server, "skew", rate, 5);
    // An hour ahead: a client-clock design would see every key as idle.
    let skewed = RedisRateLimiter::builder(
        Skewed {
            inner: Tokio::current().unwrap(),
            offset: Duration::from_secs(3600),
        },
        server.client(),
        "skew",
        rate,
    )
    .burst(5)
    .call_timeout(Duration::from_millis(500))
    .build()
    .unwrap();
    // The burst is shared: 5 in all, whichever client asks.
    let mut admitted = 0;
    for i in 0..10 {
        let answer = if i % 2 == 0 {
            straight.try_acquire("k").await
        } else {
            skewed.try_acquire("k").await
        };
        admitted += usize::from(answer.is_ok());
    }
    assert_eq!(admitted, 5);
    // And over a second of hammering from both, every window holds.
    let a = tokio::spawn(hammer(straight, "k2", Duration::from_millis(800)));
    let mut times = Vec::new();
    let stop = Instant::now() + Duration::from_millis(800);
    while Instant::now() < stop {
        if let Ok(Some(at)) = skewed.try_acquire_timed("k2", 1).await {
            times.push(u64::try_from(at.as_micros()).unwrap());
        }
    }
    let from_skewed = times.len();
    times.extend(a.await.unwrap());
    assert!(from_skewed > 0 && from_skewed < times.len());
    for window_ms in [10u64, 100, 500] {
        let most = max_in_window(&mut times, Duration::from_millis(window_ms));
        assert!(
            most <= (window_ms / 10) as usize + 5,
            "{most} in {window_ms} ms"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_one_call_per_retry_interval_asks_redis() {
    let mut server = RedisServer::start();
    let limiter = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        server.client(),
        "probe",
        Rate::per_second(1000),
    )
    .call_timeout(Duration::from_millis(100))
    .retry_interval(Duration::from_millis(150))
    .on_failure(FailureMode::FailOpen)
    .build()
    .unwrap();
    limiter.try_acquire("k").await.unwrap();
    server.kill();
    limiter.try_acquire("k").await.unwrap();
    assert!(limiter.stats().degraded);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let failures = limiter.stats().store_failures;
        let started = Instant::now();
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.try_acquire("k").await })
            })
            .collect();
        for c in calls {
            c.await.unwrap().unwrap();
        }
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            limiter.stats().store_failures,
            failures + 1,
            "20 concurrent calls after the retry interval: one probe"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admissions_and_refusals_are_observed_by_name() {
    let server = RedisServer::start();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let limiter = RedisRateLimiter::builder(
        Tokio::current().unwrap(),
        server.client(),
        "seen",
        Rate::per_second(10),
    )
    .burst(1)
    .observer(move |e: &Event| sink.lock().unwrap().push(e.clone()))
    .build()
    .unwrap();
    limiter.try_acquire("k").await.unwrap();
    let refused = limiter.try_acquire("k").await.unwrap_err();
    let events = seen.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        Event::RateAdmitted {
            name: "seen".into(),
            cost: 1
        }
    );
    assert!(matches!(
        &events[1],
        Event::RateLimited { name, cost: 1, retry_after }
            if &**name == "seen" && Some(*retry_after) == refused.retry_after()
    ));
}
