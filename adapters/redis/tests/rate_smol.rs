//! The shared rate limiter on smol (the redis client picks smol when no
//! tokio runtime is current): the window bound across clients, an outage
//! with recovery, and a corrupt key.

mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use staunch::rate::Rate;
use staunch_redis::{FailureMode, RedisRateError, RedisRateLimiter};
use staunch_smol::Smol;

fn build(server: &RedisServer, name: &str, rate: Rate, burst: u32) -> RedisRateLimiter<Smol> {
    RedisRateLimiter::builder(Smol::current(), server.client(), name, rate)
        .burst(burst)
        .call_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[test]
fn quota_holds_across_concurrent_clients_on_smol() {
    let server = RedisServer::start();
    smol::block_on(async {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let limiter = build(&server, "smol-api", Rate::per_second(100), 5);
                smol::spawn(async move {
                    let mut times = Vec::new();
                    let stop = Instant::now() + Duration::from_millis(1000);
                    while Instant::now() < stop {
                        match limiter.try_acquire_timed("u", 1).await {
                            Ok(Some(at)) => times.push(at.as_micros() as u64),
                            Ok(None) => panic!("decided without Redis"),
                            Err(RedisRateError::Limited(_)) => {}
                            Err(other) => panic!("{other}"),
                        }
                    }
                    times
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.extend(t.await);
        }
        times.sort_unstable();
        // T = 10 ms, burst 5: at most W/10ms + 5 in any window W.
        for window_us in [10_000u64, 100_000, 500_000] {
            let mut start = 0;
            for end in 0..times.len() {
                while times[end] - times[start] >= window_us {
                    start += 1;
                }
                let bound = (window_us / 10_000) as usize + 5;
                assert!(end - start < bound, "{} in {window_us} µs", end - start + 1);
            }
        }
        let span_s = (times[times.len() - 1] - times[0]) as f64 / 1e6;
        assert!(
            times.len() as f64 >= (span_s * 100.0 + 5.0) * 0.9,
            "{}",
            times.len()
        );
    });
}

#[test]
fn outage_and_recovery_on_smol() {
    let mut server = RedisServer::start();
    smol::block_on(async {
        let limiter = RedisRateLimiter::builder(
            Smol::current(),
            server.client(),
            "smol-outage",
            Rate::per_second(10),
        )
        .burst(2)
        .call_timeout(Duration::from_millis(100))
        .retry_interval(Duration::from_millis(100))
        .on_failure(FailureMode::FallbackToLocal)
        .build()
        .unwrap();
        limiter.try_acquire("k").await.unwrap();
        server.kill();
        let started = Instant::now();
        let mut admitted = 0;
        for _ in 0..10 {
            if limiter.try_acquire("k").await.is_ok() {
                admitted += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(admitted, 2, "the local fallback's own burst");
        assert!(limiter.stats().degraded);
        server.restart();
        let deadline = Instant::now() + Duration::from_secs(5);
        while limiter.stats().degraded {
            assert!(Instant::now() < deadline, "never recovered");
            let _ = limiter.try_acquire("k").await;
            smol::Timer::after(Duration::from_millis(20)).await;
        }
        // Redis restarted empty: a fresh shared burst.
        let fresh = build(&server, "smol-outage", Rate::per_second(10), 2);
        let key = fresh.redis_key("other");
        server.raw(&["SET", &key, "not a number"]);
        assert!(fresh.try_acquire("other").await.is_err());
        assert_eq!(fresh.stats().rebuilt_keys, 1);
        assert_eq!(fresh.stats().shared_decisions, 1);
    });
}
