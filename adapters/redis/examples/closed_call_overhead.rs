//! Measures a closed-state call through a [`RedisBreaker`] against the same
//! call through an in-memory `CircuitBreaker` (the figure staunch-redis's
//! README reports): interleaved rounds, medians, one ratio.
//!
//! `closed_call_overhead <redis-url> [calls-per-round]`
//!
//! The Redis breaker syncs in the background as it would in production; a
//! closed call itself never waits on Redis.

use std::hint::black_box;
use std::time::{Duration, Instant};

use staunch::breaker::CircuitBreaker;
use staunch_redis::{RedisBreaker, RedisStore};
use staunch_tokio::Tokio;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: closed_call_overhead <redis-url> [calls]");
    let calls: u32 = args
        .next()
        .map_or(200_000, |n| n.parse().expect("calls: a number"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async {
        let timer = Tokio::current().expect("inside tokio");
        let store = RedisStore::open(&url, Duration::from_millis(200), timer.clone())
            .expect("bad redis url");
        let shared = RedisBreaker::builder(store, timer.clone(), "overhead")
            .time_window(Duration::from_secs(10), 10)
            .build()
            .expect("valid settings");
        tokio::spawn(shared.sync_task());
        let local = CircuitBreaker::builder(timer)
            .time_window(Duration::from_secs(10), 10)
            .build()
            .expect("valid settings");
        // Let the first sync land.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let state = shared.shared_state();
        assert!(
            !state.degraded,
            "the breaker could not reach Redis at {url}: {state:?}"
        );
        let (mut ours, mut mem) = (Vec::new(), Vec::new());
        for _ in 0..11 {
            let start = Instant::now();
            for n in 0..calls {
                black_box(shared.call(async { Ok::<_, ()>(n) }).await.ok());
            }
            ours.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
            let start = Instant::now();
            for n in 0..calls {
                black_box(local.call(async { Ok::<_, ()>(n) }).await.ok());
            }
            mem.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(calls));
        }
        let (ours, mem) = (median(ours), median(mem));
        println!(
            "closed call: redis store {ours:.1} ns, in-memory {mem:.1} ns, ratio {:.2}x",
            ours / mem
        );
    });
}
