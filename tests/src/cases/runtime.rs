//! Conformance cases for the runtime seam: timers, spawning, join handles,
//! abort, panic capture, the error sink, and the basic timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::runtime::{Instant, JoinError, LocalSpawnExt, SpawnError, SpawnExt, UnobservedKind};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{CollectingSink, DropCounter, TestRuntime, eventually, ms, yield_now};

/// Three tasks sleeping 30, 10 and 20 ms wake in deadline order.
pub async fn sleeps_finish_in_order_of_their_deadlines<R: TestRuntime>(rt: R) {
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for delay in [30u64, 10, 20] {
        let (rt2, order) = (rt.clone(), order.clone());
        handles.push(
            rt.spawn(async move {
                rt2.sleep(ms(delay)).await;
                order.lock().unwrap().push(delay);
            })
            .unwrap(),
        );
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![10, 20, 30], "on {}", R::NAME);
}

/// `now` never goes back and moves by at least the time slept.
pub async fn now_is_monotonic_and_advances_by_at_least_the_slept_time<R: TestRuntime>(rt: R) {
    let mut last = rt.now();
    for _ in 0..100 {
        let t = rt.now();
        assert!(
            t >= last,
            "clock went backwards on {}: {t:?} < {last:?}",
            R::NAME
        );
        last = t;
    }
    let before = rt.now();
    rt.sleep(ms(15)).await;
    let slept = rt.now() - before;
    assert!(
        slept >= ms(15),
        "slept only {slept:?} of 15 ms on {}",
        R::NAME
    );
    if R::VIRTUAL_TIME {
        assert_eq!(slept, ms(15), "virtual time is exact");
    }
}

/// A zero sleep completes, and so does a sleep until a past instant.
pub async fn zero_and_past_deadline_sleeps_complete<R: TestRuntime>(rt: R) {
    let before = rt.now();
    rt.sleep(Duration::ZERO).await;
    rt.sleep_until(Instant::ORIGIN).await;
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), before, "zero sleeps take no virtual time");
    }
    // And inside a timeout, a zero sleep wins over a long limit.
    assert_eq!(
        timeout(&rt, Duration::from_secs(5), rt.sleep(Duration::ZERO)).await,
        Ok(())
    );
}

/// A `Duration::MAX` sleep never fires, never overflows, and can be aborted;
/// the abort drops the sleeping future.
pub async fn a_duration_max_sleep_never_fires_and_can_be_aborted<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let handle = rt
        .spawn({
            let (rt, guard) = (rt.clone(), drops.guard());
            async move {
                let _guard = guard;
                rt.sleep(Duration::MAX).await;
            }
        })
        .unwrap();
    rt.sleep(ms(10)).await;
    assert!(
        !handle.is_finished(),
        "a Duration::MAX sleep finished on {}",
        R::NAME
    );
    assert_eq!(drops.dropped(), 0);
    handle.abort();
    assert_eq!(handle.await, Err(JoinError::Aborted));
    assert_eq!(drops.dropped(), 1, "abort must drop the task's future");
    // The same sleep under a timeout: the timeout fires, nothing panics.
    let limited = timeout(&rt, ms(5), rt.sleep(Duration::MAX)).await;
    assert_eq!(limited, Err(Elapsed { after: ms(5) }));
    // An instant far in the future saturates instead of overflowing.
    assert!((rt.now() + Duration::MAX).is_never());
}

/// A spawned task's output comes back through its handle.
pub async fn a_joined_task_returns_its_output<R: TestRuntime>(rt: R) {
    let handle = rt.spawn(async { Ok::<_, String>(6 * 7) }).unwrap();
    assert_eq!(handle.await, Ok(Ok(42)));
    let named = rt
        .spawn_named("answer", async { Err::<u8, _>("no") })
        .unwrap();
    assert_eq!(named.name(), Some("answer"));
    assert_eq!(named.await, Ok(Err("no")));
}

/// Aborting a pending task drops its future promptly, and joining says so.
pub async fn abort_drops_the_task_future_promptly<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let started = Arc::new(AtomicUsize::new(0));
    let handle = rt
        .spawn({
            let (guard, started) = (drops.guard(), started.clone());
            async move {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                futures::future::pending::<()>().await;
            }
        })
        .unwrap();
    eventually(&rt, "the task started", || {
        started.load(Ordering::SeqCst) == 1
    })
    .await;
    let remote = handle.abort_handle();
    remote.abort();
    assert!(remote.is_aborted());
    eventually(&rt, "the aborted task's future was dropped", || {
        drops.dropped() == 1
    })
    .await;
    assert_eq!(handle.await, Err(JoinError::Aborted));
}

/// Aborting a task that already finished changes nothing: its output stays.
pub async fn aborting_a_finished_task_is_a_no_op<R: TestRuntime>(rt: R) {
    let handle = rt.spawn(async { Ok::<_, String>("done") }).unwrap();
    eventually(&rt, "the task finished", || handle.is_finished()).await;
    handle.abort();
    assert_eq!(handle.await, Ok(Ok("done")));
}

/// Polling a handle again after it gave its output is a typed error, not a
/// panic or a hang.
pub async fn joining_twice_gives_already_joined<R: TestRuntime>(rt: R) {
    let mut handle = rt.spawn(async { Ok::<_, String>(1) }).unwrap();
    assert_eq!((&mut handle).await, Ok(Ok(1)));
    assert_eq!((&mut handle).await, Err(JoinError::AlreadyJoined));
}

/// A panic in a task is captured as `JoinError::Panicked` with its message.
pub async fn a_panicking_task_is_captured_as_panicked<R: TestRuntime>(rt: R) {
    let handle = rt
        .spawn(async {
            if std::hint::black_box(true) {
                panic!("boom in a task");
            }
            Ok::<(), String>(())
        })
        .unwrap();
    match handle.await {
        Err(JoinError::Panicked(p)) => assert!(p.message.contains("boom in a task"), "{p:?}"),
        other => panic!("expected a captured panic on {}, got {other:?}", R::NAME),
    }
}

/// A failed task whose handle was dropped (before or after it failed)
/// reaches the error sink with its name; a successful one does not.
pub async fn an_unobserved_failed_task_reaches_the_error_sink<R: TestRuntime>(rt: R) {
    let collected = CollectingSink::new();
    let rt = rt.with_sink(collected.sink());
    // Dropped while still running: reported when it fails.
    let late = rt
        .spawn_named("fails-later", {
            let rt = rt.clone();
            async move {
                rt.sleep(ms(5)).await;
                Err::<(), _>("late failure")
            }
        })
        .unwrap();
    drop(late);
    // Dropped after it failed: reported at the drop.
    let early = rt
        .spawn_named("failed-already", async { Err::<(), _>("early failure") })
        .unwrap();
    eventually(&rt, "the task finished", || early.is_finished()).await;
    drop(early);
    // Succeeds unobserved: nothing to report.
    drop(
        rt.spawn_named("fine", async { Ok::<_, String>(()) })
            .unwrap(),
    );
    eventually(&rt, "both failures reported", || {
        collected.received().len() >= 2
    })
    .await;
    rt.sleep(ms(5)).await;
    let mut seen: Vec<(String, UnobservedKind)> = collected
        .received()
        .into_iter()
        .map(|e| (e.task.as_deref().unwrap_or_default().to_owned(), e.kind))
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![
            (
                "failed-already".to_owned(),
                UnobservedKind::Failed("\"early failure\"".into())
            ),
            (
                "fails-later".to_owned(),
                UnobservedKind::Failed("\"late failure\"".into())
            ),
        ],
        "on {}",
        R::NAME
    );
}

/// 10 000 tasks sleeping at once all complete.
pub async fn ten_thousand_concurrent_sleeping_tasks_all_complete<R: TestRuntime>(rt: R) {
    let done = Arc::new(AtomicUsize::new(0));
    let start = rt.now();
    let handles: Vec<_> = (0..10_000u64)
        .map(|i| {
            let (rt2, done) = (rt.clone(), done.clone());
            rt.spawn(async move {
                rt2.sleep(ms(10 + i % 7)).await;
                done.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), 10_000);
    assert!(rt.now() - start >= ms(16));
    if R::VIRTUAL_TIME {
        assert_eq!(
            rt.now() - start,
            ms(16),
            "the latest sleep ends at exactly 16 ms"
        );
    }
}

/// A task can spawn another task and await it.
pub async fn a_task_can_spawn_a_task<R: TestRuntime>(rt: R) {
    let outer = rt
        .spawn({
            let rt = rt.clone();
            async move {
                let inner = rt
                    .spawn({
                        let rt = rt.clone();
                        async move {
                            rt.sleep(ms(2)).await;
                            Ok::<u32, String>(41)
                        }
                    })
                    .map_err(|e| e.to_string())?;
                let value = inner.await.map_err(|e| e.to_string())??;
                Ok::<u32, String>(value + 1)
            }
        })
        .unwrap();
    assert_eq!(outer.await, Ok(Ok(42)));
}

/// A timeout fires for a slow future (with the limit in the error) and
/// drops it; it does not fire for a fast one.
pub async fn timeout_fires_for_slow_futures_and_not_for_fast_ones<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let slow = {
        let (rt, guard) = (rt.clone(), drops.guard());
        async move {
            let _guard = guard;
            rt.sleep(ms(200)).await;
            "slow"
        }
    };
    let start = rt.now();
    assert_eq!(
        timeout(&rt, ms(10), slow).await,
        Err(Elapsed { after: ms(10) })
    );
    assert_eq!(drops.dropped(), 1, "the timed-out future was dropped");
    assert!(rt.now() - start >= ms(10));
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(10));
    }
    let fast = {
        let rt = rt.clone();
        async move {
            rt.sleep(ms(1)).await;
            "fast"
        }
    };
    assert_eq!(
        timeout(&rt, Duration::from_secs(10), fast).await,
        Ok("fast")
    );
    // A zero timeout still lets a ready future through, and stops a pending one.
    assert_eq!(timeout(&rt, Duration::ZERO, async { 3 }).await, Ok(3));
    assert!(
        timeout(&rt, Duration::ZERO, futures::future::pending::<()>())
            .await
            .is_err()
    );
}

/// `spawn_blocking` runs the closure where the runtime has threads, and is a
/// typed `Unsupported` error where it has none; it never panics.
pub async fn spawn_blocking_runs_or_says_unsupported<R: TestRuntime>(rt: R) {
    match rt.spawn_blocking(|| Ok::<_, String>(std::hint::black_box(21) * 2)) {
        Ok(handle) => {
            assert!(
                R::BLOCKING,
                "{} claims no blocking pool but ran the closure",
                R::NAME
            );
            assert_eq!(handle.await, Ok(Ok(42)));
        }
        Err(SpawnError::Unsupported { what, .. }) => {
            assert!(!R::BLOCKING, "{} has a blocking pool but refused", R::NAME);
            assert_eq!(what, "spawn_blocking");
        }
        Err(other) => panic!("unexpected spawn error on {}: {other}", R::NAME),
    }
}

/// `spawn_local` runs a `!Send` future where the runtime supports it, and is
/// a typed `Unsupported` error elsewhere.
pub async fn spawn_local_runs_not_send_futures_or_says_unsupported<R: TestRuntime>(rt: R) {
    let shared = std::rc::Rc::new(std::cell::Cell::new(1));
    let result = rt.spawn_local({
        let shared = shared.clone();
        async move {
            yield_now().await;
            shared.set(shared.get() + 1);
            Ok::<_, String>(shared.get())
        }
    });
    match result {
        Ok(handle) => {
            assert!(R::LOCAL_SPAWN, "{} should not support spawn_local", R::NAME);
            assert_eq!(handle.await, Ok(Ok(2)));
            assert_eq!(shared.get(), 2);
        }
        Err(SpawnError::Unsupported { .. }) => {
            assert!(!R::LOCAL_SPAWN, "{} refused spawn_local", R::NAME)
        }
        Err(other) => panic!("unexpected spawn error on {}: {other}", R::NAME),
    }
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! runtime_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? runtime::sleeps_finish_in_order_of_their_deadlines);
        $m!($($($extra)*;)? runtime::now_is_monotonic_and_advances_by_at_least_the_slept_time);
        $m!($($($extra)*;)? runtime::zero_and_past_deadline_sleeps_complete);
        $m!($($($extra)*;)? runtime::a_duration_max_sleep_never_fires_and_can_be_aborted);
        $m!($($($extra)*;)? runtime::a_joined_task_returns_its_output);
        $m!($($($extra)*;)? runtime::abort_drops_the_task_future_promptly);
        $m!($($($extra)*;)? runtime::aborting_a_finished_task_is_a_no_op);
        $m!($($($extra)*;)? runtime::joining_twice_gives_already_joined);
        $m!($($($extra)*;)?
            #[cfg(not(target_arch = "wasm32"))]
            runtime::a_panicking_task_is_captured_as_panicked
        );
        $m!($($($extra)*;)? runtime::an_unobserved_failed_task_reaches_the_error_sink);
        $m!($($($extra)*;)? runtime::ten_thousand_concurrent_sleeping_tasks_all_complete);
        $m!($($($extra)*;)? runtime::a_task_can_spawn_a_task);
        $m!($($($extra)*;)? runtime::timeout_fires_for_slow_futures_and_not_for_fast_ones);
        $m!($($($extra)*;)? runtime::spawn_blocking_runs_or_says_unsupported);
        $m!($($($extra)*;)? runtime::spawn_local_runs_not_send_futures_or_says_unsupported);
    };
}
