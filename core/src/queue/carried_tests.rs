//! What travels out of line with an item (its key, its submission time
//! while someone observes events, an attempt count other than 1) comes out
//! intact: in completions, in shutdown reports and in events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use super::{Unprocessed, WorkerPool};
use crate::observe::{Event, Observers};
use crate::policy::Policy;
use crate::retry::{Backoff, Retry};
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn an_observed_pool_reports_each_items_exact_wait_and_run_time() {
    let rt = VirtualRuntime::new();
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let observers = Observers::new().with({
        let events = events.clone();
        move |e: &Event| events.lock().unwrap().push(e.clone())
    });
    let read = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let (pool, completions) = WorkerPool::builder(rt.clone())
                    .workers(1)
                    .capacity(4)
                    .observers(observers)
                    .build(move |i: u64| {
                        let sleep = rt.sleep(ms(10));
                        async move {
                            sleep.await;
                            if i == 1 { Err("one") } else { Ok(i) }
                        }
                    })
                    .expect("valid");
                for i in 0..3 {
                    pool.submit(i).await.expect("open");
                }
                pool.close();
                completions.count().await
            }
        })
        .expect("no deadlock");
    assert_eq!(read, 3);
    let events = events.lock().unwrap();
    let submitted: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::QueueItemSubmitted { index, depth, .. } => Some((*index, *depth)),
            _ => None,
        })
        .collect();
    assert_eq!(submitted, [(0, 1), (1, 2), (2, 3)]);
    let done: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::QueueItemDone {
                index,
                waited,
                took,
                attempts,
                ok,
                ..
            } => Some((*index, *waited, *took, *attempts, *ok)),
            _ => None,
        })
        .collect();
    assert_eq!(
        done,
        [
            (0, ms(0), ms(10), 1, true),
            (1, ms(10), ms(10), 1, false),
            (2, ms(20), ms(10), 1, true),
        ]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::DeadLettered {
            index: 1,
            attempts: 1,
            ..
        }
    )));
}

#[test]
fn keys_and_attempts_come_back_in_completions_and_shutdown_reports() {
    let rt = VirtualRuntime::new();
    let calls: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (completed, report) = rt
        .block_on({
            let rt = rt.clone();
            let calls = calls.clone();
            async move {
                let policy = Policy::builder(rt.clone())
                    .retry(
                        Retry::builder(rt.clone())
                            .max_attempts(3)
                            .backoff(Backoff::constant(ms(1)))
                            .build()
                            .expect("valid"),
                    )
                    .build()
                    .expect("valid");
                let (pool, completions) = WorkerPool::builder(rt.clone())
                    .workers(1)
                    .capacity(8)
                    .build_with_policy(policy, {
                        let rt = rt.clone();
                        move |i: u64| {
                            let first = {
                                let mut calls = calls.lock().unwrap();
                                calls.push(i);
                                calls.iter().filter(|&&c| c == i).count() == 1
                            };
                            // Item 0 fails once, then succeeds; item 1 runs
                            // past the shutdown.
                            let sleep = rt.sleep(ms(if i == 1 { 100 } else { 0 }));
                            async move {
                                sleep.await;
                                if i == 0 && first { Err("once") } else { Ok(i) }
                            }
                        }
                    })
                    .expect("valid");
                pool.submit_keyed("a", 0).await.expect("open");
                pool.submit_keyed("k1", 1).await.expect("open");
                pool.submit_keyed("b", 2).await.expect("open");
                pool.submit(3).await.expect("open");
                rt.sleep(ms(5)).await;
                let report = pool.shutdown(Duration::ZERO).await;
                (completions.collect::<Vec<_>>().await, report)
            }
        })
        .expect("no deadlock");
    let completed: Vec<_> = completed
        .into_iter()
        .map(|c| (c.index, c.key, c.attempts, c.result.ok()))
        .collect();
    assert_eq!(completed, [(0, Some(Arc::from("a")), 2, Some(0))]);
    let returned: Vec<_> = report
        .returned
        .iter()
        .map(|r| (r.index, r.key.as_deref(), r.state, r.item))
        .collect();
    assert_eq!(
        returned,
        [
            (2, Some("b"), Unprocessed::Queued, 2),
            (3, None, Unprocessed::Queued, 3),
            (1, Some("k1"), Unprocessed::CancelledInFlight, 1),
        ]
    );
    assert_eq!(report.stats.retries, 1);
}
