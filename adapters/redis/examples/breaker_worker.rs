//! One process of the multi-process breaker test (and a demo): calls a
//! pretend service through a [`RedisBreaker`] shared with other processes
//! and prints what it saw.
//!
//! `breaker_worker <redis-url> <name> <tokio|smol> <ok|fail> <millis> <probes> [skew-secs]`
//!
//! * `ok`: every call succeeds. `fail`: calls fail until this process sees
//!   the breaker open, then succeed.
//! * `skew-secs`: an offset added to this process's timer (decisions are on
//!   the server's clock, so it must change nothing).
//!
//! Prints `open <unix-µs>` when it first sees the shared breaker open,
//! `closed-again <unix-µs>` when it sees it close after that, and at the end
//! `probes <n>`, `calls <n>`, `refused <n>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use staunch::observe::CircuitState;
use staunch::runtime::{Instant, Timer};
use staunch_redis::{RedisBreaker, RedisStore};

/// A timer whose clock reads `skew` ahead (sleeps are unchanged).
#[derive(Clone)]
struct Skewed<T> {
    inner: T,
    skew: Duration,
}

impl<T: Timer> Timer for Skewed<T> {
    type Sleep = T::Sleep;
    fn now(&self) -> Instant {
        self.inner.now() + self.skew
    }
    fn sleep(&self, d: Duration) -> Self::Sleep {
        self.inner.sleep(d)
    }
}

fn unix_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

struct Args {
    url: String,
    name: String,
    fail: bool,
    millis: u64,
    probes: u32,
    skew: Duration,
}

async fn run<T>(
    timer: T,
    args: Args,
    spawn: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>),
) where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let timer = Skewed {
        inner: timer,
        skew: args.skew,
    };
    let store = RedisStore::open(&args.url, Duration::from_millis(200), timer.clone())
        .expect("bad redis url");
    let breaker = RedisBreaker::builder(store, timer.clone(), args.name.as_str())
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(20)
        .failure_rate(0.2)
        .open_duration(Duration::from_millis(400))
        .half_open_probes(args.probes)
        .sync_interval(Duration::from_millis(2))
        .build()
        .expect("bad breaker settings");
    spawn(Box::pin(breaker.sync_task()));
    let calls = Arc::new(AtomicU64::new(0));
    let mut refused = 0u64;
    let mut saw_open = false;
    let mut closed_again = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(args.millis) {
        let state = breaker.shared_state().state;
        if state == CircuitState::Open && !saw_open {
            saw_open = true;
            println!("open {}", unix_us());
        }
        if saw_open && !closed_again && state == CircuitState::Closed {
            closed_again = true;
            println!("closed-again {}", unix_us());
        }
        let fail = args.fail && !saw_open;
        let c = calls.clone();
        let out = breaker
            .call(async move {
                c.fetch_add(1, Ordering::Relaxed);
                if fail { Err("down") } else { Ok(()) }
            })
            .await;
        if let Err(staunch::Error::CircuitOpen(_)) = out {
            refused += 1;
        }
        timer.sleep(Duration::from_micros(500)).await;
    }
    println!("probes {}", breaker.probes_admitted());
    println!("calls {}", calls.load(Ordering::Relaxed));
    println!("refused {refused}");
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 7 {
        eprintln!(
            "usage: breaker_worker <redis-url> <name> <tokio|smol> <ok|fail> <millis> <probes> [skew-secs]"
        );
        std::process::exit(2);
    }
    let args = Args {
        url: a[1].clone(),
        name: a[2].clone(),
        fail: a[4] == "fail",
        millis: a[5].parse().expect("millis: a whole number"),
        probes: a[6].parse().expect("probes: a whole number"),
        skew: Duration::from_secs(
            a.get(7)
                .map_or(0, |s| s.parse().expect("skew: whole seconds")),
        ),
    };
    match a[3].as_str() {
        "tokio" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async {
                run(
                    staunch_tokio::Tokio::current().expect("inside block_on"),
                    args,
                    |f| {
                        tokio::spawn(f);
                    },
                )
                .await;
            });
        }
        _ => {
            smol::block_on(async {
                let ex = Arc::new(smol::Executor::new());
                let ex2 = ex.clone();
                ex.run(run(staunch_smol::Smol::current(), args, move |f| {
                    ex2.spawn(f).detach();
                }))
                .await;
            });
        }
    }
}
