//! Conformance cases at the edges of every primitive's valid settings, on
//! every runtime, wasm32 in Node and Chromium included: nothing that builds
//! may abort there (wasm32 does not unwind, so a capacity overflow or an
//! arithmetic panic kills the whole module) or allocate without bound.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use staunch::breaker::{CircuitBreaker, CircuitState};
use staunch::bulkhead::Bulkhead;
use staunch::gather::{gather, gather_limited};
use staunch::group::TaskGroup;
use staunch::hedge::Hedge;
use staunch::policy::Policy;
use staunch::retry::{Backoff, Retry};
use staunch::timeout::timeout;

use crate::harness::TestRuntime;

/// The breaker and the bulkhead, built at their limits, work as usual.
pub async fn breaker_and_bulkhead_work_at_their_extreme_valid_settings<R: TestRuntime>(rt: R) {
    // The largest count window: 1 MiB, allocated once (1 << 30 took 1 GiB
    // on wasm32 before the bound; 1 << 31 aborted the module).
    let widest = CircuitBreaker::builder(rt.clone())
        .count_window(1 << 20)
        .minimum_calls(1 << 20)
        .consecutive_failures(u32::MAX)
        .half_open_probes(u32::MAX)
        .probe_timeout(Duration::MAX)
        .open_duration(Duration::MAX)
        .build()
        .expect("the largest count window builds");
    for i in 0..1000u32 {
        let out = widest
            .call(async move { if i % 2 == 0 { Ok(i) } else { Err("down") } })
            .await;
        assert!(out.is_ok() || out.unwrap_err().is_inner(), "on {}", R::NAME);
    }
    let m = widest.metrics();
    assert_eq!(
        (m.state, m.calls, m.failures),
        (CircuitState::Closed, 1000, 500)
    );
    let over = CircuitBreaker::builder(rt.clone())
        .count_window(u32::MAX)
        .build()
        .expect_err("a count window over the bound is refused");
    assert!(over.to_string().contains("1048576"), "{over}");

    // The longest time window, the most buckets, an open backoff to forever.
    let longest = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::MAX, 1000)
        .minimum_calls(u32::MAX)
        .slow_calls(Duration::MAX, 1.0)
        .open_backoff(Backoff::exponential(Duration::from_nanos(1)).max_delay(Duration::MAX))
        .build()
        .expect("the longest time window builds");
    for _ in 0..1000 {
        let _ = longest.call(async { Err::<(), _>("down") }).await;
    }
    assert_eq!(longest.metrics().calls, 1000, "on {}", R::NAME);
    assert_eq!(longest.state(), CircuitState::Closed);
    longest.force_open();
    assert_eq!(
        longest.try_acquire().unwrap_err().retry_after,
        Duration::MAX
    );

    // A bulkhead with no practical limits, and one waiting forever in line.
    let open = Bulkhead::builder(rt.clone(), usize::MAX)
        .max_queued(usize::MAX)
        .queue_timeout(Duration::MAX)
        .build()
        .expect("the widest bulkhead builds");
    let held: Vec<_> = (0..1000)
        .map(|_| open.try_acquire().expect("room"))
        .collect();
    assert_eq!(open.inside(), 1000);
    drop(held);
    let one = Bulkhead::builder(rt.clone(), 1)
        .max_queued(usize::MAX)
        .queue_timeout(Duration::MAX)
        .build()
        .expect("valid");
    let first = one.acquire().await.expect("a free slot");
    let (waited, ()) = futures::join!(one.acquire(), async {
        crate::harness::yield_now().await;
        assert_eq!(one.queued(), 1);
        drop(first);
    });
    drop(waited.expect("handed the slot"));
    assert_eq!((one.inside(), one.queued()), (0, 0), "on {}", R::NAME);
}

/// Retry, hedge, timeout, gather, group and policy, built at extreme but
/// valid settings, work as usual.
pub async fn the_other_primitives_work_at_their_extreme_valid_settings<R: TestRuntime>(rt: R) {
    // Retry: as many attempts as there are, no budget, delays from 1 ns up
    // to forever; it succeeds at the third attempt after 1 + 2 ns of backoff.
    let retry = Retry::builder(rt.clone())
        .max_attempts(u32::MAX)
        .budget(Duration::MAX)
        .backoff(Backoff::exponential(Duration::from_nanos(1)).max_delay(Duration::MAX))
        .build()
        .expect("valid retry");
    let tries = AtomicU32::new(0);
    let out = retry
        .run(|_| {
            let n = tries.fetch_add(1, Ordering::SeqCst) + 1;
            async move { if n < 3 { Err("flaky") } else { Ok(n) } }
        })
        .await;
    assert_eq!(
        out.expect("the third attempt succeeds"),
        3,
        "on {}",
        R::NAME
    );

    // Hedge that never fires: the first attempt answers.
    let hedge = Hedge::builder(rt.clone())
        .delay(Duration::MAX)
        .max_attempts(2)
        .build()
        .expect("valid hedge");
    let out = hedge.run(|a| async move { Ok::<_, ()>(a.number()) }).await;
    assert_eq!(out.expect("the first attempt"), 1);

    // Timeouts of nothing and of forever.
    assert_eq!(timeout(&rt, Duration::MAX, async { 7 }).await.ok(), Some(7));
    assert!(
        timeout(&rt, Duration::ZERO, std::future::pending::<()>())
            .await
            .is_err()
    );

    // Gathers with no practical limit, over many items.
    let items = (0..10_000u32).map(|i| async move { Ok::<_, ()>(i) });
    let all = gather(items).await;
    assert_eq!(all.len(), 10_000);
    let items = (0..10_000u32).map(|i| async move { Ok::<_, ()>(i) });
    let limited = gather_limited(usize::MAX, items).await;
    assert!(limited.iter().all(Result::is_ok) && limited.len() == 10_000);

    // A group with no practical limit.
    let group = TaskGroup::builder(rt.clone())
        .limit(usize::MAX)
        .build::<u32, String>()
        .expect("valid group");
    for i in 0..100 {
        group.spawn(async move { Ok(i) }).expect("spawn");
    }
    assert_eq!(group.join().await.expect("all succeed").len(), 100);

    // A policy of every stage at its extremes.
    let policy = Policy::builder(rt.clone())
        .timeout(Duration::MAX)
        .retry(
            Retry::builder(rt.clone())
                .max_attempts(u32::MAX)
                .backoff(Backoff::constant(Duration::from_nanos(1)))
                .build()
                .expect("valid retry"),
        )
        .breaker(
            CircuitBreaker::builder(rt.clone())
                .count_window(1 << 20)
                .build()
                .expect("valid breaker"),
        )
        .hedge(
            Hedge::builder(rt.clone())
                .delay(Duration::MAX)
                .max_attempts(2)
                .build()
                .expect("valid hedge"),
        )
        .bulkhead(
            Bulkhead::builder(rt.clone(), usize::MAX)
                .max_queued(usize::MAX)
                .build()
                .expect("valid bulkhead"),
        )
        .build()
        .expect("valid policy");
    let calls = AtomicU32::new(0);
    let out = policy
        .run(|_| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move { if n < 2 { Err("flaky") } else { Ok(n) } }
        })
        .await;
    assert_eq!(
        out.expect("the second attempt succeeds"),
        2,
        "on {}",
        R::NAME
    );
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! extremes_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? extremes::breaker_and_bulkhead_work_at_their_extreme_valid_settings);
        $m!($($($extra)*;)? extremes::the_other_primitives_work_at_their_extreme_valid_settings);
    };
}
