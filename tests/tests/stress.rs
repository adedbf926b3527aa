//! Multi-thread stress of the breaker and the bulkhead on tokio, on every
//! core: many tasks hammer one shared value with mixed outcomes and
//! cancellations for a bounded time, and every invariant is checked as
//! they go and at the end.
#![cfg(not(target_arch = "wasm32"))]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::breaker::{CircuitBreaker, CircuitState};
use staunch::bulkhead::{Bulkhead, Rejected};
use staunch::observe::{Event, Observers};
use staunch_tests::harness::Gauge;
use staunch_tokio::Tokio;

/// How long each stress runs: a few seconds at most in all.
const RUN_FOR: Duration = Duration::from_millis(1500);
/// Tasks per core.
const TASKS_PER_CORE: usize = 16;

fn all_cores_runtime() -> (tokio::runtime::Runtime, usize) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("a multi-thread tokio runtime builds");
    (rt, cores)
}

/// Runs `body` on its own thread and fails the test, naming a deadlock, if
/// it does not finish within `limit` (a hung stress test must fail, not hang CI).
fn within(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => worker.join().expect("the stress body panicked"),
        // The sender was dropped without sending: the body panicked.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().expect_err("the body panicked"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("deadlock: the stress did not finish within {limit:?}")
        }
    }
}

/// A small xorshift, so each task mixes outcomes differently but repeatably.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[derive(Default)]
struct Tally {
    attempts: AtomicU64,
    refused: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    probes_inside: AtomicUsize,
    probes_peak: AtomicUsize,
}

#[test]
fn a_breaker_hammered_from_every_core_keeps_its_invariants() {
    within(Duration::from_secs(60), breaker_stress);
}

fn breaker_stress() {
    const PROBES: usize = 3;
    let (runtime, cores) = all_cores_runtime();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let rejected_events = Arc::new(AtomicU64::new(0));
    let breaker = runtime.block_on(async {
        CircuitBreaker::builder(Tokio::current().expect("inside tokio"))
            .count_window(20)
            .minimum_calls(10)
            .failure_rate(0.5)
            .open_duration(Duration::from_millis(100))
            .half_open_probes(PROBES as u32)
            // Long enough that no half-open period ends by its timeout
            // while a probe is still running.
            .probe_timeout(Duration::from_secs(30))
            .observers(Observers::new().with({
                let (transitions, rejected_events) = (transitions.clone(), rejected_events.clone());
                move |e: &Event| match e {
                    Event::CircuitStateChanged { from, to, .. } => {
                        transitions.lock().unwrap().push((*from, *to));
                    }
                    Event::CallRejected { .. } => {
                        rejected_events.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }))
            .build()
            .expect("valid breaker")
    });
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..cores * TASKS_PER_CORE)
        .map(|i| {
            let (breaker, tally, stop) = (breaker.clone(), tally.clone(), stop.clone());
            runtime.spawn(async move {
                let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1);
                // Phases of mostly failing and mostly working, so the
                // breaker trips, probes and closes again and again.
                while !stop.load(Ordering::Relaxed) {
                    let r = next(&mut seed);
                    tally.attempts.fetch_add(1, Ordering::Relaxed);
                    let Ok(permit) = breaker.try_acquire() else {
                        tally.refused.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                        continue;
                    };
                    if permit.is_probe() {
                        let n = tally.probes_inside.fetch_add(1, Ordering::SeqCst) + 1;
                        tally.probes_peak.fetch_max(n, Ordering::SeqCst);
                        assert!(n <= PROBES, "{n} probes inside at once");
                    }
                    if r.is_multiple_of(4) {
                        tokio::task::yield_now().await;
                    }
                    let failing_phase = (r >> 8).is_multiple_of(3);
                    let probe = permit.is_probe();
                    if probe {
                        tally.probes_inside.fetch_sub(1, Ordering::SeqCst);
                    }
                    match r % 10 {
                        // Cancelled: the permit is dropped unreported.
                        0 => {
                            drop(permit);
                            tally.cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                        1..=6 if failing_phase => {
                            permit.failure();
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            permit.success();
                            tally.succeeded.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    // `call` with cancellation too: futures dropped mid-flight by a timeout.
    let callers: Vec<_> = (0..cores)
        .map(|_| {
            let (breaker, stop) = (breaker.clone(), stop.clone());
            runtime.spawn(async move {
                let mut cancelled = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let hung = breaker.call(async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<(), &str>(())
                    });
                    if tokio::time::timeout(Duration::from_micros(200), hung)
                        .await
                        .is_err()
                    {
                        cancelled += 1;
                    } else {
                        // Refused at once: let the others run.
                        tokio::task::yield_now().await;
                    }
                }
                cancelled
            })
        })
        .collect();
    runtime.block_on(async {
        tokio::time::sleep(RUN_FOR).await;
        // On a loaded machine 1.5 s may end inside the first open or
        // half-open stretch: go on (up to 20 s more) until the breaker has
        // tripped and closed again, so the test checks what it names.
        let recovered = || {
            let t = transitions.lock().unwrap();
            t.iter().any(|t| t.1 == CircuitState::Open)
                && t.iter().any(|t| t.1 == CircuitState::Closed)
        };
        for _ in 0..1000 {
            if recovered() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("a stress task panicked");
        }
        let mut call_refusals_or_cancels = 0;
        for c in callers {
            call_refusals_or_cancels += c.await.expect("a caller panicked");
        }
        assert!(call_refusals_or_cancels > 0, "no call was ever cancelled");
    });

    let attempts = tally.attempts.load(Ordering::SeqCst);
    let refused = tally.refused.load(Ordering::SeqCst);
    let admitted = tally.succeeded.load(Ordering::SeqCst)
        + tally.failed.load(Ordering::SeqCst)
        + tally.cancelled.load(Ordering::SeqCst);
    assert_eq!(
        admitted + refused,
        attempts,
        "every attempt has one outcome"
    );
    let transitions = transitions.lock().unwrap();
    use CircuitState::{Closed, HalfOpen, Open};
    for t in transitions.iter() {
        assert!(
            matches!(
                t,
                (Closed, Open) | (Open, HalfOpen) | (HalfOpen, Closed) | (HalfOpen, Open)
            ),
            "invalid transition {t:?}"
        );
    }
    let opened = transitions.iter().filter(|t| t.1 == Open).count();
    let closed = transitions.iter().filter(|t| t.1 == Closed).count();
    assert!(
        opened > 0 && closed > 0,
        "the stress never tripped and recovered: {transitions:?}"
    );
    let m = breaker.metrics();
    // Refusals add up: every refused try_acquire and refused call is counted
    // by the breaker and reported by one event.
    assert!(
        m.refused_calls >= refused,
        "{} < {refused}",
        m.refused_calls
    );
    assert_eq!(m.refused_calls, rejected_events.load(Ordering::SeqCst));
    assert!(m.failures <= m.calls && m.calls <= 20, "{m:?}");
    assert!(tally.probes_peak.load(Ordering::SeqCst) <= PROBES);
    assert_eq!(tally.probes_inside.load(Ordering::SeqCst), 0);
    println!(
        "breaker stress: {attempts} attempts ({refused} refused) on {cores} cores, {} trips",
        opened
    );
}

#[test]
fn a_bulkhead_hammered_from_every_core_never_exceeds_its_limits_and_ends_empty() {
    within(Duration::from_secs(60), bulkhead_stress);
}

fn bulkhead_stress() {
    const LIMIT: usize = 4;
    const QUEUE: usize = 16;
    let (runtime, cores) = all_cores_runtime();
    let bulkhead = runtime.block_on(async {
        Bulkhead::builder(Tokio::current().expect("inside tokio"), LIMIT)
            .max_queued(QUEUE)
            .queue_timeout(Duration::from_millis(2))
            .build()
            .expect("valid bulkhead")
    });
    let inside = Gauge::new();
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new([
        AtomicU64::new(0), // ran
        AtomicU64::new(0), // full
        AtomicU64::new(0), // queue timeout
        AtomicU64::new(0), // cancelled while waiting or inside
    ]);
    let tasks: Vec<_> = (0..cores * TASKS_PER_CORE)
        .map(|i| {
            let (bulkhead, inside, stop, outcomes) = (
                bulkhead.clone(),
                inside.clone(),
                stop.clone(),
                outcomes.clone(),
            );
            runtime.spawn(async move {
                let mut seed = 0xD1B5_4A32_D192_ED03 ^ (i as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    let r = next(&mut seed);
                    assert!(bulkhead.queued() <= QUEUE, "more than the queue waits");
                    let work = bulkhead.call(async {
                        // Left when dropped, so a call cancelled inside leaves too.
                        let _inside = inside.enter();
                        let n = inside.current();
                        assert!(n <= LIMIT, "{n} calls inside a bulkhead of {LIMIT}");
                        if r.is_multiple_of(3) {
                            tokio::time::sleep(Duration::from_micros(300)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                        Ok::<(), ()>(())
                    });
                    let out = if r.is_multiple_of(7) {
                        // Cancel some callers, waiting or inside.
                        match tokio::time::timeout(Duration::from_micros(100), work).await {
                            Ok(out) => out,
                            Err(_) => {
                                outcomes[3].fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        }
                    } else {
                        work.await
                    };
                    let k = match out {
                        Ok(()) => 0,
                        Err(staunch::Error::Rejected(Rejected::Full { .. })) => 1,
                        Err(staunch::Error::Rejected(Rejected::QueueTimeout { .. })) => 2,
                        Err(other) => panic!("unexpected rejection {other:?}"),
                    };
                    outcomes[k].fetch_add(1, Ordering::Relaxed);
                    if k != 0 {
                        // Refused at once: let the others run.
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    runtime.block_on(async {
        tokio::time::sleep(RUN_FOR).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("a stress task panicked");
        }
    });
    assert!(inside.peak() <= LIMIT, "{} inside at once", inside.peak());
    assert_eq!(inside.current(), 0);
    assert_eq!(
        (bulkhead.inside(), bulkhead.queued()),
        (0, 0),
        "slots or waiters left behind"
    );
    let [ran, full, timed_out, cancelled] = outcomes.as_ref();
    let (ran, full, timed_out) = (
        ran.load(Ordering::SeqCst),
        full.load(Ordering::SeqCst),
        timed_out.load(Ordering::SeqCst),
    );
    assert!(ran > 0 && full > 0, "ran {ran}, full {full}");
    println!(
        "bulkhead stress on {cores} cores: {ran} ran, {full} full, {timed_out} timed out, {} cancelled",
        cancelled.load(Ordering::SeqCst)
    );
}

#[test]
fn queue_wake_ups_on_every_core_never_leave_a_waiter_asleep_beside_room_or_an_item() {
    within(Duration::from_secs(60), queue_wake_stress);
}

/// Producers and consumers of tiny queues, some sends timing out (a waiter
/// that leaves without using its wake-up), then pools of one to eight
/// workers behind a queue of one to three slots: every round must move
/// every item; a lost wake-up hangs a round and fails the test.
fn queue_wake_stress() {
    use futures::StreamExt;
    use staunch::queue::{WorkerPool, bounded};

    let (rt, _) = all_cores_runtime();
    let tokio = rt.block_on(async { Tokio::current().expect("inside tokio") });
    const N: u64 = 2_000;
    for round in 0..120 {
        let (producers, consumers, capacity) = [
            (1, 1, 1),
            (2, 1, 1),
            (1, 2, 1),
            (2, 2, 2),
            (3, 3, 1),
            (1, 1, 4),
        ][round % 6];
        let tokio = tokio.clone();
        rt.block_on(async move {
            let (tx, rx) = bounded::<u64>(capacity).expect("valid");
            let mut sending = Vec::new();
            for p in 0..producers {
                let (tx, tokio) = (tx.clone(), tokio.clone());
                sending.push(tokio::spawn(async move {
                    let mut i = 0;
                    while i < N {
                        if (i + p) % 7 == 0 {
                            let limit = Duration::from_micros(50);
                            if tx.send_timeout(&tokio, limit, i).await.is_ok() {
                                i += 1;
                            }
                        } else {
                            tx.send(i).await.expect("open");
                            i += 1;
                        }
                    }
                }));
            }
            drop(tx);
            let receiving: Vec<_> = (0..consumers)
                .map(|_| {
                    let rx = rx.clone();
                    tokio::spawn(async move {
                        let mut received = 0u64;
                        while rx.recv().await.is_ok() {
                            received += 1;
                        }
                        received
                    })
                })
                .collect();
            drop(rx);
            for task in sending {
                task.await.expect("a producer");
            }
            let mut received = 0;
            for task in receiving {
                received += task.await.expect("a consumer");
            }
            assert_eq!(received, N * producers, "round {round}");
        });
    }
    for round in 0..24 {
        let tokio = tokio.clone();
        rt.block_on(async move {
            let (pool, completions) = WorkerPool::builder(tokio)
                .workers(1 + round % 8)
                .capacity(1 + round % 3)
                .build(|i: u64| async move {
                    if i.is_multiple_of(5) {
                        tokio::task::yield_now().await;
                    }
                    Ok::<_, ()>(i)
                })
                .expect("valid");
            let producer = async {
                for i in 0..N {
                    pool.submit(i).await.expect("open");
                }
                pool.close();
            };
            let (_, completed) = futures::join!(producer, completions.count());
            assert_eq!(completed as u64, N, "pool round {round}");
        });
    }
}
