//! Conformance cases for the runtime seam: timers, spawning, join handles,
//! abort, panic capture, the error sink, and the basic timeout.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use staunch::runtime::{Instant, JoinError, LocalSpawnExt, SpawnError, SpawnExt, UnobservedKind};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{CollectingSink, DropCounter, TestRuntime, eventually, ms, yield_now};

/// How a case gives other tasks a turn: `yield_now` or a zero sleep.
#[derive(Clone, Copy, Debug)]
enum Turn {
    Yield,
    ZeroSleep,
}

async fn take_turn<R: TestRuntime>(rt: &R, how: Turn) {
    match how {
        Turn::Yield => yield_now().await,
        Turn::ZeroSleep => rt.sleep(Duration::ZERO).await,
    }
}

/// A task that spins on `how` until a flag is set lets the sibling that
/// sets it run, so it really gives the thread up (with no other await in
/// the loop, a turn that did not yield would spin for ever on one thread).
async fn spinning_lets_a_sibling_run<R: TestRuntime>(rt: R, how: Turn) {
    let flag = Arc::new(AtomicUsize::new(0));
    let spinner = rt
        .spawn({
            let (rt, flag) = (rt.clone(), flag.clone());
            async move {
                let mut turns = 0u32;
                while flag.load(Ordering::SeqCst) == 0 {
                    take_turn(&rt, how).await;
                    turns += 1;
                    assert!(turns < 1_000_000, "the sibling never ran ({how:?})");
                }
                Ok::<_, String>(turns)
            }
        })
        .unwrap();
    let setter = rt
        .spawn({
            let flag = flag.clone();
            async move {
                flag.store(1, Ordering::SeqCst);
                Ok::<_, String>(())
            }
        })
        .unwrap();
    assert_eq!(setter.await, Ok(Ok(())), "on {}", R::NAME);
    assert!(matches!(spinner.await, Ok(Ok(_))), "on {}", R::NAME);
}

/// `yield_now` gives the thread up: a sibling the yielder waits for runs.
pub async fn yield_now_lets_a_waiting_sibling_run<R: TestRuntime>(rt: R) {
    spinning_lets_a_sibling_run(rt, Turn::Yield).await;
}

/// `sleep(Duration::ZERO)` is a yield point on every runtime.
pub async fn a_zero_sleep_lets_a_waiting_sibling_run<R: TestRuntime>(rt: R) {
    spinning_lets_a_sibling_run(rt, Turn::ZeroSleep).await;
}

/// On a runtime whose tasks share one thread, a task that takes a turn
/// resumes only after every task that was ready when it yielded has been
/// polled once (first in, first out). Elsewhere the same code must still
/// finish with every task having run.
async fn a_turn_goes_behind_the_ready_tasks<R: TestRuntime>(rt: R, how: Turn) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let driver = rt
        .spawn({
            let (rt, log) = (rt.clone(), log.clone());
            async move {
                let mut children = Vec::new();
                for name in ["first", "second", "third"] {
                    let log = log.clone();
                    children.push(
                        rt.spawn(async move {
                            log.lock().unwrap().push(name);
                            Ok::<_, String>(())
                        })
                        .unwrap(),
                    );
                }
                take_turn(&rt, how).await;
                log.lock().unwrap().push("yielder");
                for child in children {
                    child.await.unwrap().unwrap();
                }
                Ok::<_, String>(())
            }
        })
        .unwrap();
    driver.await.unwrap().unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "on {}: {log:?}", R::NAME);
    if rt.runs_tasks_on_one_thread() {
        assert_eq!(
            log,
            ["first", "second", "third", "yielder"],
            "on {} ({how:?})",
            R::NAME
        );
    }
}

/// `yield_now` puts the task behind every task already ready.
pub async fn a_yielding_task_resumes_after_every_task_ready_before_it<R: TestRuntime>(rt: R) {
    a_turn_goes_behind_the_ready_tasks(rt, Turn::Yield).await;
}

/// A zero sleep puts the task behind every task already ready.
pub async fn a_zero_sleep_resumes_after_every_task_ready_before_it<R: TestRuntime>(rt: R) {
    a_turn_goes_behind_the_ready_tasks(rt, Turn::ZeroSleep).await;
}

/// A gather of one item that keeps waking itself and four 10 ms sleeps:
/// on real runtimes the sleeps finish while the busy item is still
/// spinning (in the browser and Node the event loop gets its macrotask
/// turns, so `setTimeout` fires). Virtual time stands still while a task is
/// ready, so there the busy item gives up after a bounded spin and the
/// sleeps finish after it, at exactly 10 ms.
pub async fn a_busy_item_in_a_gather_does_not_starve_timers<R: TestRuntime>(rt: R) {
    let slept = Arc::new(AtomicUsize::new(0));
    let handle = rt
        .spawn({
            let (rt, slept) = (rt.clone(), slept.clone());
            async move {
                let started = rt.now();
                let items =
                    (0..5).map(|i| starving_item(rt.clone(), slept.clone(), i == 0, started));
                let done = staunch::gather::gather(items).await;
                Ok::<_, String>((done, rt.now() - started))
            }
        })
        .unwrap();
    let (done, took) = handle.await.unwrap().unwrap();
    let busy_outlived_the_sleeps = done[0] == Ok(true);
    assert_eq!(slept.load(Ordering::SeqCst), 4, "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert!(
            !busy_outlived_the_sleeps,
            "virtual time cannot move while a task is ready"
        );
        assert_eq!(took, ms(10));
    } else {
        assert!(
            busy_outlived_the_sleeps,
            "the busy item starved the timers on {}",
            R::NAME
        );
        assert!(took >= ms(10), "on {}: {took:?}", R::NAME);
    }
}

/// One item of the starvation case: the busy one spins on `yield_now`
/// until the four sleepers are done (`Ok(true)`) or it gives up
/// (`Ok(false)`); a sleeper sleeps 10 ms.
async fn starving_item<R: TestRuntime>(
    rt: R,
    slept: Arc<AtomicUsize>,
    busy: bool,
    started: Instant,
) -> Result<bool, String> {
    if !busy {
        rt.sleep(ms(10)).await;
        slept.fetch_add(1, Ordering::SeqCst);
        return Ok(true);
    }
    let mut spins = 0u64;
    while slept.load(Ordering::SeqCst) < 4 {
        yield_now().await;
        spins += 1;
        let gave_up = if R::VIRTUAL_TIME {
            spins >= 1_000
        } else {
            rt.now() - started > Duration::from_secs(10)
        };
        if gave_up {
            return Ok(false);
        }
    }
    Ok(true)
}

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

/// How a runtime that has shut down answers a spawn: smol and the
/// `VirtualRuntime` refuse with `SpawnError::Shutdown`; only tokio accepts
/// the task, and its handle then says `JoinError::Lost`.
async fn refused_or_lost<R: TestRuntime>(
    outcome: Result<staunch::runtime::JoinHandle<Result<(), String>>, SpawnError>,
) {
    match outcome {
        Err(SpawnError::Shutdown) => assert_ne!(R::NAME, "tokio"),
        Ok(handle) => {
            assert_eq!(
                R::NAME,
                "tokio",
                "only tokio accepts a task it will not run"
            );
            assert_eq!(handle.await, Err(JoinError::Lost));
        }
        Err(other) => panic!("unexpected spawn error on {}: {other}", R::NAME),
    }
}

/// Spawning on a runtime that has shut down never runs the task and never
/// loses it silently: smol and the `VirtualRuntime` refuse with
/// `SpawnError::Shutdown`; tokio cannot tell, so it drops the task and the
/// handle says `JoinError::Lost`. The browser's event loop never shuts down.
pub async fn spawning_after_shutdown_is_refused_or_reported_lost<R: TestRuntime>(rt: R) {
    let Some(dead) = rt.shut_down_sibling() else {
        return; // `Web`: nothing to shut down
    };
    let drops = DropCounter::new();
    let guard = drops.guard();
    refused_or_lost::<R>(dead.spawn(async move {
        let _guard = guard;
        Ok::<(), String>(())
    }))
    .await;
    eventually(&rt, "the refused task was dropped", || drops.dropped() == 1).await;
}

/// Dropping a runtime drops its unfinished tasks, even tasks that hold a
/// handle to that runtime (tokio's `Runtime`, smol's `Executor`, the
/// `VirtualRuntime` that `new()` returned); the browser's event loop is
/// never dropped.
pub async fn dropping_a_runtime_drops_its_unfinished_tasks<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let guards = [drops.guard(), drops.guard()];
    let supported = rt.drop_sibling_after(move |sibling: &R| {
        for guard in guards {
            let timer = sibling.clone();
            let spawned = sibling.spawn(async move {
                let _guard = guard;
                timer.sleep(ms(3_600_000)).await;
                Ok::<(), String>(())
            });
            drop(spawned.expect("a live runtime accepts the task"));
        }
    });
    if supported {
        eventually(&rt, "the dropped runtime's tasks were dropped", || {
            drops.dropped() == 2
        })
        .await;
    } else {
        assert_eq!(R::NAME, "web", "only the browser's loop is never dropped");
    }
}

/// A detached scope run is a task like any other, but its cancellation is
/// no failure: when its scope is cancelled (or a detached task is aborted)
/// nothing reaches the error sink, while a detached task that fails still
/// does.
pub async fn a_detached_task_ended_by_cancellation_reaches_no_error_sink<R: TestRuntime>(rt: R) {
    let collected = CollectingSink::new();
    let rt = rt.with_sink(collected.sink());
    let scope = staunch::scope::CancelScope::new();
    for name in ["worker-1", "worker-2"] {
        let sleeper = rt.clone();
        drop(
            rt.spawn_named(
                name,
                scope.clone().run_owned(async move {
                    sleeper.sleep(ms(60_000)).await;
                }),
            )
            .expect("spawn"),
        );
    }
    let aborted = rt
        .spawn_named("aborted", {
            let rt = rt.clone();
            async move {
                rt.sleep(ms(60_000)).await;
                Err::<(), _>("never")
            }
        })
        .expect("spawn");
    aborted.abort();
    drop(aborted);
    drop(
        rt.spawn_named("fails", async { Err::<(), _>("disk full") })
            .expect("spawn"),
    );
    rt.sleep(ms(1)).await;
    scope.cancel_with(staunch::scope::CancelReason::Shutdown);
    eventually(&rt, "the failure is reported", || {
        !collected.received().is_empty()
    })
    .await;
    rt.sleep(ms(5)).await;
    let seen: Vec<(String, UnobservedKind)> = collected
        .received()
        .into_iter()
        .map(|e| (e.task.as_deref().unwrap_or_default().to_owned(), e.kind))
        .collect();
    assert_eq!(
        seen,
        vec![(
            "fails".to_owned(),
            UnobservedKind::Failed("\"disk full\"".into())
        )],
        "a cancellation was reported as a failure on {}",
        R::NAME
    );
}

/// A spawn the executor refuses is reported once, as `spawn`'s typed
/// error: the error sink does not also hear of a "lost" task that never
/// existed (for `spawn`, `spawn_named` and `spawn_local`). tokio cannot
/// refuse: its handle says the task was lost, and nothing else does.
pub async fn a_refused_spawn_is_reported_once_as_a_typed_error<R: TestRuntime>(rt: R) {
    let Some(dead) = rt.shut_down_sibling() else {
        return;
    };
    let collected = CollectingSink::new();
    let dead = dead.with_sink(collected.sink());
    let mut outcomes = vec![
        dead.spawn(async { Ok::<(), String>(()) }),
        dead.spawn_named("named", async { Ok::<(), String>(()) }),
    ];
    if R::LOCAL_SPAWN {
        outcomes.push(dead.spawn_local(async { Ok::<(), String>(()) }));
    }
    for outcome in outcomes {
        refused_or_lost::<R>(outcome).await;
    }
    // A runtime without blocking threads refuses `spawn_blocking` the same
    // way: one typed error, nothing in the sink.
    if !R::BLOCKING {
        let live = rt.with_sink(collected.sink());
        let refused = live.spawn_blocking(|| Ok::<(), String>(()));
        assert!(
            matches!(refused, Err(SpawnError::Unsupported { .. })),
            "on {}",
            R::NAME
        );
    }
    rt.sleep(ms(1)).await;
    assert_eq!(
        collected.received(),
        vec![],
        "a refused spawn also reached the error sink on {}",
        R::NAME
    );
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! runtime_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? runtime::sleeps_finish_in_order_of_their_deadlines);
        $m!($($($extra)*;)? runtime::a_refused_spawn_is_reported_once_as_a_typed_error);
        $m!($($($extra)*;)? runtime::a_detached_task_ended_by_cancellation_reaches_no_error_sink);
        $m!($($($extra)*;)? runtime::spawning_after_shutdown_is_refused_or_reported_lost);
        $m!($($($extra)*;)? runtime::dropping_a_runtime_drops_its_unfinished_tasks);
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
        $m!($($($extra)*;)? runtime::yield_now_lets_a_waiting_sibling_run);
        $m!($($($extra)*;)? runtime::a_zero_sleep_lets_a_waiting_sibling_run);
        $m!($($($extra)*;)? runtime::a_yielding_task_resumes_after_every_task_ready_before_it);
        $m!($($($extra)*;)? runtime::a_zero_sleep_resumes_after_every_task_ready_before_it);
        $m!($($($extra)*;)? runtime::a_busy_item_in_a_gather_does_not_starve_timers);
    };
}
