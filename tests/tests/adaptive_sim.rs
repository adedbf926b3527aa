//! A simulated upstream on the virtual clock whose latency grows with the
//! calls in flight and whose capacity drops mid-run (100 -> 30 -> 100).
//! Each adaptive algorithm is compared with static limits (bulkheads) on
//! goodput: calls answered within the callers' 25 ms timeout.
//!
//! Run with `--nocapture` to see the table.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use staunch::adaptive::{Aimd, Algorithm, ConcurrencyLimit, Gradient2};
use staunch::bulkhead::Bulkhead;
use staunch::runtime::{Instant, LocalSpawnExt, Timer};
use staunch::testing::VirtualRuntime;
use staunch::timeout::timeout;

const BASE_LATENCY: Duration = Duration::from_millis(10);
const CALLER_TIMEOUT: Duration = Duration::from_millis(25);
const PHASE: Duration = Duration::from_secs(5);
const CAPACITIES: [usize; 3] = [100, 30, 100];
const CLIENTS: usize = 250;
const BUCKET: Duration = Duration::from_millis(100);

/// The upstream: each call takes `BASE_LATENCY × max(1, in_flight / capacity)`
/// (a server that shares its capacity among the calls inside), where the
/// capacity depends on the phase.
#[derive(Clone)]
struct Upstream {
    rt: VirtualRuntime,
    start: Instant,
    in_flight: Rc<Cell<usize>>,
}

struct InFlight(Rc<Cell<usize>>);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Upstream {
    fn capacity(&self) -> usize {
        let phase = (self.rt.now() - self.start).as_nanos() / PHASE.as_nanos();
        CAPACITIES[(phase as usize).min(CAPACITIES.len() - 1)]
    }

    async fn call(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        let _inside = InFlight(self.in_flight.clone());
        let load = self.in_flight.get() as f64 / self.capacity() as f64;
        self.rt.sleep(BASE_LATENCY.mul_f64(load.max(1.0))).await;
    }
}

enum Limiter {
    Static(Bulkhead),
    Adaptive(ConcurrencyLimit),
}

struct Outcome {
    /// Successful calls per bucket.
    good: Vec<u32>,
    /// The limit at the end of each bucket.
    limits: Vec<usize>,
}

fn simulate(make: impl FnOnce(&VirtualRuntime) -> Limiter) -> Outcome {
    let rt = VirtualRuntime::new();
    let limiter = Rc::new(make(&rt));
    let total = PHASE * CAPACITIES.len() as u32;
    let buckets = (total.as_nanos() / BUCKET.as_nanos()) as usize;
    let good = Rc::new(RefCell::new(vec![0u32; buckets]));
    let limits = Rc::new(RefCell::new(Vec::new()));
    rt.block_on({
        let rt = rt.clone();
        let (good, limits) = (good.clone(), limits.clone());
        let limiter = limiter;
        async move {
            let start = rt.now();
            let end = start + total;
            let upstream = Upstream {
                rt: rt.clone(),
                start,
                in_flight: Rc::new(Cell::new(0)),
            };
            let mut tasks = Vec::new();
            for _ in 0..CLIENTS {
                let (rt, upstream, limiter, good) =
                    (rt.clone(), upstream.clone(), limiter.clone(), good.clone());
                tasks.push(
                    rt.clone()
                        .spawn_local(async move {
                            while rt.now() < end {
                                let timed = async {
                                    timeout(&rt, CALLER_TIMEOUT, upstream.call())
                                        .await
                                        .map_err(staunch::Error::<()>::Timeout)
                                };
                                let out = match &*limiter {
                                    Limiter::Static(b) => {
                                        b.call(staunch::Guarded::new(timed)).await
                                    }
                                    Limiter::Adaptive(l) => {
                                        l.call(staunch::Guarded::new(timed)).await
                                    }
                                };
                                match out {
                                    Ok(()) => {
                                        let at = (rt.now() - start).as_nanos() / BUCKET.as_nanos();
                                        if let Some(b) = good.borrow_mut().get_mut(at as usize) {
                                            *b += 1;
                                        }
                                    }
                                    Err(e) if e.is_rejected() => rt.sleep(BASE_LATENCY).await,
                                    Err(_) => {}
                                }
                            }
                            Ok::<(), ()>(())
                        })
                        .expect("spawned"),
                );
            }
            for _ in 0..buckets {
                rt.sleep(BUCKET).await;
                let limit = match &*limiter {
                    Limiter::Static(b) => b.inside(),
                    Limiter::Adaptive(l) => l.limit(),
                };
                limits.borrow_mut().push(limit);
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    })
    .expect("the simulation ran to its end");
    Outcome {
        good: Rc::try_unwrap(good).expect("tasks done").into_inner(),
        limits: Rc::try_unwrap(limits).expect("tasks done").into_inner(),
    }
}

fn static_limit(n: usize) -> impl FnOnce(&VirtualRuntime) -> Limiter {
    move |rt| {
        Limiter::Static(
            Bulkhead::builder(rt.clone(), n)
                .max_queued(CLIENTS)
                .build()
                .expect("valid"),
        )
    }
}

fn adaptive(algorithm: Algorithm) -> impl FnOnce(&VirtualRuntime) -> Limiter {
    move |rt| {
        Limiter::Adaptive(
            ConcurrencyLimit::builder(rt.clone(), algorithm)
                .max_queued(CLIENTS)
                .build()
                .expect("valid"),
        )
    }
}

/// Calls per second the upstream can answer in time in each phase.
fn ideal(phase: usize) -> f64 {
    CAPACITIES[phase] as f64 / BASE_LATENCY.as_secs_f64()
}

struct Row {
    name: String,
    per_phase: Vec<f64>,
    total: u64,
    converge: Vec<Option<Duration>>,
    mean_limit: Vec<f64>,
}

fn summarise(name: &str, out: &Outcome) -> Row {
    let per_bucket = PHASE.as_nanos() / BUCKET.as_nanos();
    let per_bucket = per_bucket as usize;
    let mut per_phase = Vec::new();
    let mut converge = Vec::new();
    let mut mean_limit = Vec::new();
    for (p, chunk) in out.good.chunks(per_bucket).enumerate() {
        let sum: u32 = chunk.iter().sum();
        per_phase.push(f64::from(sum) / PHASE.as_secs_f64());
        // Converged: the first bucket from which goodput stays at or above
        // 80 % of what the upstream can give in this phase.
        let target = ideal(p) * BUCKET.as_secs_f64() * 0.8;
        let from = (0..chunk.len()).find(|&i| chunk[i..].iter().all(|&g| f64::from(g) >= target));
        converge.push(from.map(|i| BUCKET * i as u32));
        let limits = &out.limits[p * per_bucket..((p + 1) * per_bucket).min(out.limits.len())];
        mean_limit.push(limits.iter().sum::<usize>() as f64 / limits.len().max(1) as f64);
    }
    Row {
        name: name.into(),
        per_phase,
        total: out.good.iter().map(|&g| u64::from(g)).sum(),
        converge,
        mean_limit,
    }
}

#[test]
fn adaptive_limits_beat_a_static_limit_that_was_right_only_before_the_capacity_dropped() {
    let aimd = Aimd::default().latency_threshold(BASE_LATENCY.mul_f64(1.5));
    let runs: Vec<(String, Outcome)> = vec![
        (
            "AIMD (threshold 15 ms)".into(),
            simulate(adaptive(aimd.into())),
        ),
        (
            "Gradient2 (defaults)".into(),
            simulate(adaptive(Gradient2::default().into())),
        ),
        ("static 100".into(), simulate(static_limit(100))),
        ("static 75".into(), simulate(static_limit(75))),
        ("static 30".into(), simulate(static_limit(30))),
        ("static 200".into(), simulate(static_limit(200))),
    ];
    let rows: Vec<Row> = runs.iter().map(|(n, o)| summarise(n, o)).collect();
    println!(
        "\n| limiter | goodput/s cap 100 | cap 30 | cap 100 again | total good | converged after (per phase) | mean limit (per phase) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let conv: Vec<String> = r
            .converge
            .iter()
            .map(|c| c.map_or("never".into(), |d| format!("{:.1} s", d.as_secs_f64())))
            .collect();
        let lim: Vec<String> = r.mean_limit.iter().map(|l| format!("{l:.0}")).collect();
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
            r.name,
            r.per_phase[0],
            r.per_phase[1],
            r.per_phase[2],
            r.total,
            conv.join(" / "),
            lim.join(" / ")
        );
    }
    let by = |name: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(name))
            .expect("a run")
    };
    let stale = by("static 100");
    for name in ["AIMD", "Gradient2"] {
        let r = by(name);
        assert!(
            r.total > stale.total,
            "{name} ({}) must beat the static limit that was right only before the change ({})",
            r.total,
            stale.total
        );
        assert!(
            r.per_phase[1] > 2.0 * stale.per_phase[1],
            "{name} must keep serving after the capacity drops: {:.0}/s vs {:.0}/s",
            r.per_phase[1],
            stale.per_phase[1]
        );
    }
}
