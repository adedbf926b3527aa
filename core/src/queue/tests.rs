//! Property tests: every way of stopping a worker pool returns exactly the
//! items a plain reference model says were not processed, on random
//! workloads, on the virtual clock. Then the bookkeeping of submits that
//! did not go in, and the settings a pool refuses.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;

use super::{SendError, Unprocessed, WorkerPool};
use crate::runtime::{ErrorSink, Timer};
use crate::testing::VirtualRuntime;

/// How the test stops the pool.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// `close()` at once, then read everything.
    Close,
    /// `shutdown(grace)` at `at`.
    Shutdown { at: u64, grace: u64 },
    /// Drop the pool at `at`.
    Drop { at: u64 },
}

/// What happened (or, for the model, should happen) to each item.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fates {
    processed: BTreeSet<u64>,
    queued: BTreeSet<u64>,
    cancelled: BTreeSet<u64>,
}

/// The reference model: `workers` identical workers take items in FIFO
/// order, each as soon as it is free; item `i` takes `durations[i]` ms.
/// Stopping at `at` (never a multiple of 10, while every duration is, so no
/// ties): items started before `at` run on; those not done by `at + grace`
/// are cancelled; items not started are still queued.
fn model(durations: &[u64], workers: usize, stop: Stop) -> Fates {
    let mut free = vec![0u64; workers];
    let mut fates = Fates::default();
    let (at, grace) = match stop {
        Stop::Close => (u64::MAX, 0),
        Stop::Shutdown { at, grace } => (at, grace),
        Stop::Drop { at } => (at, 0),
    };
    for (i, &d) in durations.iter().enumerate() {
        let i = i as u64;
        let worker = (0..workers).min_by_key(|&w| free[w]).expect("a worker");
        let start = free[worker];
        if start > at {
            fates.queued.insert(i);
            continue;
        }
        let end = start + d;
        free[worker] = end;
        if end < at.saturating_add(grace) {
            fates.processed.insert(i);
        } else {
            fates.cancelled.insert(i);
        }
    }
    fates
}

/// Runs the same workload on a real pool on the virtual clock; returns the
/// fates it saw and how many items were reported lost to the error sink.
fn run(durations: &[u64], fails: &[bool], workers: usize, stop: Stop) -> (Fates, usize) {
    let rt = VirtualRuntime::new();
    let lost = Arc::new(Mutex::new(Vec::new()));
    let sink = ErrorSink::new({
        let lost = lost.clone();
        move |e| lost.lock().unwrap().push(e)
    });
    let durations: Arc<[u64]> = durations.into();
    let fails: Arc<[bool]> = fails.into();
    let fates = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let (pool, completions) = WorkerPool::builder(rt.clone())
                    .workers(workers)
                    .capacity(durations.len().max(1))
                    .error_sink(sink)
                    .build({
                        let rt = rt.clone();
                        let fails = fails.clone();
                        move |i: u64| {
                            let sleep = rt.sleep(Duration::from_millis(durations[i as usize]));
                            let fail = fails[i as usize];
                            async move {
                                sleep.await;
                                if fail { Err("planned") } else { Ok(i) }
                            }
                        }
                    })
                    .expect("valid pool");
                for i in 0..fails.len() as u64 {
                    assert_eq!(pool.try_submit(i).expect("room for all"), i);
                }
                let mut fates = Fates::default();
                match stop {
                    Stop::Close => {
                        pool.close();
                        pool.join().await;
                    }
                    Stop::Shutdown { at, grace } => {
                        rt.sleep(Duration::from_millis(at)).await;
                        let report = pool.shutdown(Duration::from_millis(grace)).await;
                        for r in report.returned {
                            assert_eq!(r.item, r.index);
                            match r.state {
                                Unprocessed::Queued => fates.queued.insert(r.index),
                                Unprocessed::CancelledInFlight => fates.cancelled.insert(r.index),
                            };
                        }
                    }
                    Stop::Drop { at } => {
                        rt.sleep(Duration::from_millis(at)).await;
                        drop(pool);
                    }
                }
                let done: Vec<_> = completions.collect().await;
                for c in done {
                    assert_eq!(c.result.is_err(), fails[c.index as usize]);
                    assert!(fates.processed.insert(c.index), "item {} twice", c.index);
                }
                fates
            }
        })
        .expect("no deadlock");
    let lost = lost.lock().unwrap().len();
    (fates, lost)
}

fn workload() -> impl Strategy<Value = (Vec<u64>, Vec<bool>, usize)> {
    (1usize..24, 1usize..5).prop_flat_map(|(n, workers)| {
        (
            proptest::collection::vec((1u64..8).prop_map(|d| d * 10), n),
            proptest::collection::vec(any::<bool>(), n),
            Just(workers),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shutdown_returns_exactly_what_the_model_says_was_not_processed(
        (durations, fails, workers) in workload(),
        at in 0u64..30,
        grace in 0u64..20,
    ) {
        let stop = Stop::Shutdown { at: at * 10 + 5, grace: grace * 10 };
        let (fates, lost) = run(&durations, &fails, workers, stop);
        prop_assert_eq!(&fates, &model(&durations, workers, stop));
        prop_assert_eq!(lost, 0);
    }

    #[test]
    fn close_processes_every_item_and_returns_none(
        (durations, fails, workers) in workload(),
    ) {
        let (fates, lost) = run(&durations, &fails, workers, Stop::Close);
        prop_assert_eq!(fates.processed.len(), durations.len());
        prop_assert_eq!(&fates, &model(&durations, workers, Stop::Close));
        prop_assert_eq!(lost, 0);
    }

    #[test]
    fn dropping_reports_every_unprocessed_item_lost_and_no_other(
        (durations, fails, workers) in workload(),
        at in 0u64..30,
    ) {
        let stop = Stop::Drop { at: at * 10 + 5 };
        let (fates, lost) = run(&durations, &fails, workers, stop);
        let expected = model(&durations, workers, stop);
        prop_assert_eq!(&fates.processed, &expected.processed);
        prop_assert_eq!(lost, expected.queued.len() + expected.cancelled.len());
    }
}

/// A submit dropped while it waits for room, and a submit after the close,
/// leave nothing behind: `join` returns once the items that went in are
/// done, and the stats count only those.
#[test]
fn submits_that_did_not_go_in_are_not_waited_for_nor_counted() {
    let rt = VirtualRuntime::new();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let (pool, completions) = WorkerPool::builder(rt.clone())
                .workers(1)
                .capacity(1)
                .build({
                    let rt = rt.clone();
                    move |i: u64| {
                        let sleep = rt.sleep(Duration::from_millis(10));
                        async move {
                            sleep.await;
                            Ok::<_, ()>(i)
                        }
                    }
                })
                .expect("valid");
            assert_eq!(pool.submit(0).await.ok(), Some(0));
            rt.sleep(Duration::from_millis(1)).await; // the worker takes item 0
            assert_eq!(pool.submit(1).await.ok(), Some(1)); // queued: the queue is full
            {
                let waiting = pool.submit(2);
                let mut waiting = std::pin::pin!(waiting);
                assert!(futures::poll!(waiting.as_mut()).is_pending());
            } // dropped while waiting for room
            pool.join().await;
            assert_eq!(rt.now().since_origin(), Duration::from_millis(20));
            assert!(pool.close());
            assert!(matches!(pool.submit(3).await, Err(SendError::Closed(3))));
            pool.join().await;
            let stats = pool.stats();
            assert_eq!((stats.submitted, stats.succeeded), (2, 2));
            drop(pool);
            let indexes: Vec<_> = completions.map(|c| c.index).collect().await;
            assert_eq!(indexes, [0, 1]);
        }
    })
    .expect("no deadlock");
}

/// Every setting a pool cannot work with is a typed error naming it, at
/// `build`; nothing panics, `usize::MAX` workers included.
#[test]
fn a_pool_refuses_settings_it_cannot_work_with_by_name() {
    let rt = VirtualRuntime::new();
    let setting = |builder: crate::queue::WorkerPoolBuilder<VirtualRuntime>| match builder
        .build(|i: u64| async move { Ok::<_, ()>(i) })
    {
        Err(crate::queue::PoolBuildError::Config(e)) => (e.setting, e.to_string()),
        Err(other) => panic!("a config error expected, got {other:?}"),
        Ok(_) => panic!("a config error expected, got a pool"),
    };
    let pool = || WorkerPool::builder(rt.clone());
    let (name, message) = setting(pool().workers(0));
    assert_eq!(name, "workers");
    assert!(message.contains("at least 1"), "{message}");
    for too_many in [crate::queue::MAX_WORKERS + 1, usize::MAX] {
        let (name, message) = setting(pool().workers(too_many));
        assert_eq!(name, "workers");
        assert!(message.contains("at most 65 536"), "{message}");
    }
    assert_eq!(setting(pool().capacity(0)).0, "capacity");
    assert_eq!(setting(pool().limit_per_key(0)).0, "limit_per_key");
    // The largest valid count builds.
    let built = pool()
        .workers(crate::queue::MAX_WORKERS)
        .build(|i: u64| async move { Ok::<_, ()>(i) });
    assert!(built.is_ok());
}
