use std::time::Duration;

use super::*;
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn bad_limits_get_errors_that_say_what_to_fix() {
    let rt = VirtualRuntime::new();
    let zero = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .min_limit(0)
        .build();
    assert_eq!(zero.unwrap_err().setting, "min_limit");
    let inverted = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .min_limit(10)
        .max_limit(5)
        .build();
    assert!(
        inverted
            .unwrap_err()
            .to_string()
            .contains("above max_limit 5")
    );
    let backoff = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(1.5)).build();
    assert_eq!(backoff.unwrap_err().setting, "backoff");
    let tolerance = ConcurrencyLimit::builder(rt, Gradient2::default().tolerance(0.5)).build();
    assert_eq!(tolerance.unwrap_err().setting, "tolerance");
}

#[test]
fn a_cancelled_call_teaches_the_limit_nothing() {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .initial_limit(1)
        .build()
        .unwrap();
    for _ in 0..10 {
        let permit = limit.try_acquire().unwrap();
        drop(permit); // cancelled: no verdict
    }
    assert_eq!(limit.limit(), 1);
    assert_eq!(limit.inside(), 0);
    rt.block_on({
        let limit = limit.clone();
        let rt = rt.clone();
        async move {
            let slow = limit.call(async {
                rt.sleep(Duration::from_secs(1)).await;
                Ok::<(), ()>(())
            });
            // Dropped mid-call by a timeout around it.
            let _ = crate::timeout::timeout(&rt, ms(10), slow).await;
        }
    })
    .unwrap();
    assert_eq!(limit.limit(), 1, "a cancelled call is no sample");
    assert_eq!(limit.inside(), 0, "and it holds no slot");
}

#[test]
fn aimd_grows_on_success_and_backs_off_on_drops_within_bounds() {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(0.5))
        .initial_limit(4)
        .min_limit(2)
        .max_limit(6)
        .build()
        .unwrap();
    for _ in 0..10 {
        let permits: Vec<_> = (0..limit.limit())
            .map(|_| limit.try_acquire().unwrap())
            .collect();
        for p in permits {
            p.success();
        }
    }
    assert_eq!(limit.limit(), 6, "grows up to the maximum, never past it");
    for _ in 0..10 {
        rt.block_on({
            let rt = rt.clone();
            async move { rt.sleep(ms(1)).await }
        })
        .unwrap();
        limit.try_acquire().unwrap().dropped();
    }
    assert_eq!(
        limit.limit(),
        2,
        "shrinks down to the minimum, never past it"
    );
}

#[test]
fn gradient_shrinks_when_latency_rises_above_its_baseline() {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Gradient2::default())
        .initial_limit(50)
        .build()
        .unwrap();
    let run = |latency: Duration, rounds: usize| {
        for _ in 0..rounds {
            let permits: Vec<_> = (0..limit.limit())
                .map(|_| limit.try_acquire().unwrap())
                .collect();
            rt.block_on({
                let rt = rt.clone();
                async move { rt.sleep(latency).await }
            })
            .unwrap();
            for p in permits {
                p.success();
            }
        }
    };
    run(ms(10), 20);
    let steady = limit.limit();
    run(ms(40), 10);
    assert!(
        limit.limit() < steady * 2 / 3,
        "from {steady} to {}",
        limit.limit()
    );
}

#[test]
fn limit_changes_are_events() {
    let rt = VirtualRuntime::new();
    let (observers, seen) = crate::observe::recording();
    let limit = ConcurrencyLimit::builder(rt, Aimd::default())
        .initial_limit(1)
        .name("upstream")
        .observers(observers)
        .build()
        .unwrap();
    limit.try_acquire().unwrap().success();
    let events = seen.lock().unwrap();
    assert_eq!(
        *events,
        vec![Event::ConcurrencyLimitChanged {
            name: "upstream".into(),
            from: 1,
            to: 2
        }]
    );
}

#[test]
fn a_rejection_is_an_event_with_the_rejections_words() {
    let rt = VirtualRuntime::new();
    let (observers, seen) = crate::observe::recording();
    let limit = ConcurrencyLimit::builder(rt, Aimd::default())
        .initial_limit(1)
        .min_limit(1)
        .max_limit(1)
        .name("upstream")
        .observers(observers)
        .build()
        .unwrap();
    let _inside = limit.try_acquire().unwrap();
    let err = limit.try_acquire().unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Event::CallRejected {
            name: "upstream".into(),
            reason: err.to_string(),
        }]
    );
}

/// `n` waiters queue behind a held slot and all time out.
fn waiters_that_all_time_out(n: usize) -> u64 {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .initial_limit(1)
        .max_queued(n)
        .queue_timeout(ms(10))
        .build()
        .unwrap();
    let _held = limit.try_acquire().unwrap();
    let work = crate::wait_line::touches(|| {
        let out = rt
            .block_on(crate::gather::gather((0..n).map(|_| limit.acquire())))
            .unwrap();
        assert!(
            out.iter()
                .all(|o| matches!(o, Err(Rejected::QueueTimeout { .. })))
        );
    });
    assert_eq!((limit.inside(), limit.queued()), (1, 0));
    work
}

/// `n` waiters queue behind a held slot and are handed it one by one.
fn waiters_handed_the_slot_in_turn(n: usize) -> u64 {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .initial_limit(1)
        .max_limit(1)
        .max_queued(n)
        .build()
        .unwrap();
    let held = limit.try_acquire().unwrap();
    let work = crate::wait_line::touches(|| {
        let calls = (0..n).map(|_| limit.call(async { Ok::<(), ()>(()) }));
        let out = rt
            .block_on(futures::future::join(
                crate::gather::gather(calls),
                async move { held.ignore() },
            ))
            .unwrap();
        assert!(out.0.iter().all(Result::is_ok));
    });
    assert_eq!((limit.inside(), limit.queued()), (0, 0));
    work
}

#[test]
fn the_work_for_waiters_that_time_out_grows_about_linearly_with_their_number() {
    // Before: every poll and every leave scanned the queue (9.8 s for
    // 40 000 waiters timing out, 0.63 s for 10 000: 16 times the work for
    // 4 times the waiters). Now O(1) each: 4 times the waiters cost about
    // 4 times the work; the bound leaves room, and is far below quadratic.
    let (small, large) = (
        waiters_that_all_time_out(10_000),
        waiters_that_all_time_out(40_000),
    );
    assert!(
        large <= 6 * small,
        "{small} entries touched for 10 k waiters, {large} for 40 k"
    );
}

#[test]
fn the_work_to_hand_a_slot_down_a_queue_grows_about_linearly_with_its_length() {
    let (small, large) = (
        waiters_handed_the_slot_in_turn(10_000),
        waiters_handed_the_slot_in_turn(40_000),
    );
    assert!(
        large <= 6 * small,
        "{small} entries touched for 10 k waiters, {large} for 40 k"
    );
}

#[test]
fn adaptive_waiters_are_admitted_first_in_first_out_and_a_leaver_keeps_the_order() {
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default())
        .initial_limit(1)
        .max_limit(1)
        .max_queued(4)
        .build()
        .unwrap();
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = limit.try_acquire().unwrap();
    rt.block_on({
        let (limit, order) = (limit.clone(), order.clone());
        async move {
            let waiter = |i: u32| {
                let (limit, order) = (limit.clone(), order.clone());
                async move {
                    if let Ok(permit) = limit.acquire().await {
                        order.lock().unwrap().push(i);
                        permit.ignore();
                    }
                }
            };
            let mut first = Box::pin(waiter(0));
            let mut leaver = Box::pin(waiter(1));
            let mut last = Box::pin(waiter(2));
            for w in [&mut first, &mut leaver, &mut last] {
                assert!(futures::FutureExt::now_or_never(w.as_mut()).is_none());
            }
            assert_eq!(limit.queued(), 3);
            drop(leaver); // waiter 1 gives up from the middle of the line
            assert_eq!(limit.queued(), 2);
            held.ignore();
            futures::future::join(first, last).await;
        }
    })
    .unwrap();
    assert_eq!(*order.lock().unwrap(), vec![0, 2]);
    assert_eq!((limit.inside(), limit.queued()), (0, 0));
}

#[test]
fn a_call_that_panics_frees_its_slot_and_teaches_nothing() {
    use std::future::IntoFuture;
    let rt = VirtualRuntime::new();
    let limit = ConcurrencyLimit::builder(rt.clone(), Aimd::default().backoff(0.5))
        .initial_limit(2)
        .build()
        .unwrap();
    for _ in 0..3 {
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            futures::executor::block_on(
                limit
                    .call(async { panic!("boom") as Result<(), &str> })
                    .into_future(),
            )
        }));
        assert!(panicked.is_err());
    }
    assert_eq!((limit.limit(), limit.inside()), (2, 0));
}

#[test]
fn the_limit_stays_within_its_bounds_under_endless_drops_and_recovers_after() {
    for algorithm in [
        Algorithm::from(Aimd::default().backoff(0.5)),
        Algorithm::from(Gradient2::default()),
    ] {
        let rt = VirtualRuntime::new();
        let limit = ConcurrencyLimit::builder(rt.clone(), algorithm)
            .initial_limit(8)
            .min_limit(3)
            .max_limit(10)
            .build()
            .unwrap();
        for _ in 0..200 {
            limit.try_acquire().unwrap().dropped();
            assert!(
                limit.limit() >= 3,
                "{algorithm:?} fell to {}",
                limit.limit()
            );
        }
        assert_eq!(limit.limit(), 3, "{algorithm:?}");
        // The upstream recovers: calls fill the limit and succeed.
        for _ in 0..200 {
            let held: Vec<_> = (0..limit.limit())
                .map(|_| limit.try_acquire().unwrap())
                .collect();
            rt.advance(ms(1));
            held.into_iter().for_each(LimitPermit::success);
            assert!(
                limit.limit() <= 10,
                "{algorithm:?} rose to {}",
                limit.limit()
            );
        }
        assert_eq!(limit.limit(), 10, "{algorithm:?} recovered");
    }
}
