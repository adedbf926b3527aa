//! Conformance cases for `group`: task groups and graceful shutdown, on
//! every runtime.

use std::rc::Rc;
use std::sync::atomic::Ordering::SeqCst;

use staunch::group::{Background, ChildEnd, ChildError, GroupSpawnError, TaskGroup};
use staunch::runtime::{SpawnError, UnobservedKind};
use staunch::scope::{CancelReason, CancelScope};

use crate::harness::{
    CollectingSink, DropCounter, Gauge, TestRuntime, eventually, flag, ms, yield_now,
};

/// `join` returns every child's value in spawn order, whatever order they finish in.
pub async fn group_join_returns_values_in_spawn_order<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, u64, String>::new(rt.clone());
    for delay in [6u64, 1, 3] {
        let rt = rt.clone();
        group
            .spawn(async move {
                rt.sleep(ms(delay)).await;
                Ok(delay)
            })
            .expect("spawn");
    }
    assert_eq!(group.join().await, Ok(vec![6, 1, 3]), "on {}", R::NAME);
}

/// In a fail-fast group the first failure cancels the siblings (dropping
/// them), and `join` names the failing child and counts the cancelled ones.
pub async fn a_failing_child_cancels_its_siblings_and_join_names_it<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, (), String>::new(rt.clone());
    let drops = DropCounter::new();
    for _ in 0..3 {
        group.spawn(drops.sleeper(&rt)).expect("spawn");
    }
    let sleeper = rt.clone();
    group
        .spawn_named("db", async move {
            sleeper.sleep(ms(2)).await;
            Err("connection refused".to_owned())
        })
        .expect("spawn");
    let start = rt.now();
    let err = group.join().await.unwrap_err();
    let first = err.first.as_ref().expect("a first failure");
    assert_eq!(
        (first.index, first.name.as_deref()),
        (3, Some("db")),
        "on {}",
        R::NAME
    );
    assert_eq!(
        first.error,
        ChildError::Failed("connection refused".to_owned())
    );
    assert_eq!(err.cancelled, 3);
    assert_eq!(
        err.reason,
        Some(CancelReason::SiblingFailed { task: "db".into() })
    );
    assert_eq!(
        drops.dropped(),
        3,
        "join returned before the siblings were gone"
    );
    assert!(rt.now() - start < ms(60_000));
}

/// A supervisor group lets every child finish and returns each result in spawn order.
pub async fn a_supervisor_group_returns_every_childs_result<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, u32, &'static str>::supervisor(rt.clone());
    for i in 0..4u32 {
        let rt = rt.clone();
        group
            .spawn(async move {
                rt.sleep(ms(u64::from(4 - i))).await;
                if i == 1 { Err("odd one out") } else { Ok(i) }
            })
            .expect("spawn");
    }
    let results = group.join_all().await;
    assert_eq!(
        results,
        vec![Ok(0), Err(ChildError::Failed("odd one out")), Ok(2), Ok(3)],
        "on {}",
        R::NAME
    );
}

/// A panicking child is captured as `Panicked` (where panics unwind) and
/// fails the group.
pub async fn a_panicking_child_is_captured_as_panicked<R: TestRuntime>(rt: R) {
    if !R::UNWINDS {
        return;
    }
    let group = TaskGroup::<_, (), String>::new(rt.clone());
    group
        .spawn_named("bad", async {
            if std::hint::black_box(true) {
                panic!("index out of range");
            }
            Ok(())
        })
        .expect("spawn");
    let err = group.join().await.unwrap_err();
    match &err.first.as_ref().expect("a failure").error {
        ChildError::Panicked(p) => assert_eq!(p.message, "index out of range"),
        other => panic!("expected a panic, got {other:?} on {}", R::NAME),
    }
}

/// Dropping a group cancels every child: none outlives it.
pub async fn dropping_a_group_cancels_all_its_children<R: TestRuntime>(rt: R) {
    let drops = DropCounter::new();
    let group = TaskGroup::<_, (), String>::new(rt.clone());
    for _ in 0..4 {
        group.spawn(drops.sleeper(&rt)).expect("spawn");
    }
    rt.sleep(ms(1)).await;
    drop(group);
    eventually(&rt, "every child is dropped", || drops.dropped() == 4).await;
}

/// A child's failure in a group that is dropped unjoined reaches the error
/// sink instead of vanishing (the asyncio "unawaited task" trap).
pub async fn a_failure_in_a_group_nobody_joined_reaches_the_error_sink<R: TestRuntime>(rt: R) {
    let sink = CollectingSink::new();
    let rt = rt.with_sink(sink.sink());
    let group = TaskGroup::<_, (), String>::supervisor(rt.clone());
    group
        .spawn_named("orphan", async { Err("disk full".to_owned()) })
        .expect("spawn");
    rt.sleep(ms(2)).await;
    drop(group);
    eventually(&rt, "the failure reaches the sink", || {
        !sink.received().is_empty()
    })
    .await;
    let received = sink.received();
    assert_eq!(received.len(), 1, "on {}", R::NAME);
    assert_eq!(received[0].task.as_deref(), Some("orphan"));
    assert_eq!(
        received[0].kind,
        UnobservedKind::Failed("\"disk full\"".into())
    );
}

/// `spawn_local` runs `!Send` children where the runtime has local tasks,
/// and says so with a typed error where it has not.
pub async fn spawn_local_runs_non_send_children_where_supported<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, usize, String>::new(rt.clone());
    let shared = Rc::new(5usize);
    let spawned = group.spawn_local(async move {
        yield_now().await;
        Ok(*shared)
    });
    if R::LOCAL_SPAWN {
        assert_eq!(spawned.map(|child| child.index()), Ok(0));
        assert_eq!(group.join().await, Ok(vec![5]), "on {}", R::NAME);
    } else {
        assert!(
            matches!(
                spawned,
                Err(GroupSpawnError::Spawn(SpawnError::Unsupported { .. }))
            ),
            "{spawned:?} on {}",
            R::NAME
        );
        assert_eq!(group.join().await, Ok(vec![]));
    }
}

/// With a limit, no more than that many children run at once.
pub async fn a_group_limit_caps_how_many_children_run_at_once<R: TestRuntime>(rt: R) {
    let group = TaskGroup::builder(rt.clone())
        .limit(2)
        .build::<(), String>()
        .expect("valid");
    let gauge = Gauge::new();
    for _ in 0..6 {
        let (rt, gauge) = (rt.clone(), gauge.clone());
        group
            .spawn(async move {
                let _inside = gauge.enter();
                rt.sleep(ms(3)).await;
                Ok(())
            })
            .expect("spawn");
    }
    group.join().await.expect("all succeed");
    assert_eq!(gauge.peak(), 2, "on {}", R::NAME);
}

/// Children start siblings through a group handle; the join waits for them,
/// and once joined the group refuses new children.
pub async fn children_spawn_siblings_through_a_group_handle<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, u32, String>::new(rt.clone());
    let handle = group.handle();
    let sleeper = rt.clone();
    group
        .spawn(async move {
            let rt = sleeper.clone();
            handle
                .spawn(async move {
                    rt.sleep(ms(5)).await;
                    Ok(2)
                })
                .expect("a child can spawn a sibling");
            Ok(1)
        })
        .expect("spawn");
    let late = group.handle();
    assert_eq!(group.join().await, Ok(vec![1, 2]), "on {}", R::NAME);
    assert_eq!(
        late.spawn(async { Ok(3) }).err(),
        Some(GroupSpawnError::Closed)
    );
}

/// A group inside a scope with a deadline cancels its children at the deadline.
pub async fn a_group_in_a_scope_is_cancelled_at_the_scopes_deadline<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new().with_timeout(&rt, ms(5));
    let group = TaskGroup::builder(rt.clone())
        .in_scope(&scope)
        .build::<(), String>()
        .expect("valid");
    for _ in 0..2 {
        let rt = rt.clone();
        group
            .spawn(async move {
                rt.sleep(ms(60_000)).await;
                Ok(())
            })
            .expect("spawn");
    }
    let start = rt.now();
    let err = group.join().await.unwrap_err();
    assert!(err.is_cancelled(), "on {}", R::NAME);
    assert_eq!(err.cancelled, 2);
    assert!(matches!(
        err.reason.as_ref().map(CancelReason::root),
        Some(CancelReason::Deadline { .. })
    ));
    assert!(rt.now() - start < ms(60_000));
}

/// Mirrors trio's `cancelled_caught`: a group cancelled by its owner joins
/// without an error (the finished children's values; `join_all` shows who
/// was cancelled), while a cancel from an enclosing scope is an error with
/// that reason.
pub async fn a_group_cancelled_by_its_owner_joins_without_an_error<R: TestRuntime>(rt: R) {
    // The first child finishes at once, the second would take a minute;
    // each test below waits for the first before cancelling.
    let spawn_both = |group: &TaskGroup<R, u32, String>| {
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = finished.clone();
        group
            .spawn(async move {
                flag.store(true, SeqCst);
                Ok(1)
            })
            .expect("spawn");
        let rt = rt.clone();
        group
            .spawn(async move {
                rt.sleep(ms(60_000)).await;
                Ok(2)
            })
            .expect("spawn");
        finished
    };
    // Its own cancel: not an error.
    let group = TaskGroup::<_, u32, String>::new(rt.clone());
    let finished = spawn_both(&group);
    eventually(&rt, "the first child finished", || finished.load(SeqCst)).await;
    group.cancel();
    assert_eq!(group.join().await, Ok(vec![1]), "on {}", R::NAME);
    // The same, read child by child: the second was cancelled, explicitly.
    let group = TaskGroup::<_, u32, String>::new(rt.clone());
    let finished = spawn_both(&group);
    eventually(&rt, "the first child finished", || finished.load(SeqCst)).await;
    group.cancel();
    let all = group.join_all().await;
    assert_eq!(all[0], Ok(1));
    assert!(matches!(
        &all[1],
        Err(ChildError::Cancelled(c)) if matches!(c.reason, CancelReason::Explicit { .. })
    ));
    // Through an enclosing scope: reported, with that scope's reason.
    let outer = CancelScope::new();
    let group = TaskGroup::builder(rt.clone())
        .in_scope(&outer)
        .build::<u32, String>()
        .expect("valid");
    let finished = spawn_both(&group);
    eventually(&rt, "the first child finished", || finished.load(SeqCst)).await;
    outer.cancel_with_message("shutting down the request");
    let err = group.join().await.unwrap_err();
    assert!(err.is_cancelled() && err.first.is_none(), "on {}", R::NAME);
    assert_eq!(err.cancelled, 1);
    assert!(matches!(
        err.reason.as_ref().map(CancelReason::root),
        Some(CancelReason::Explicit { message: Some(m) }) if &**m == "shutting down the request"
    ));
}

/// Graceful shutdown lets cooperative tasks finish, drops stuck ones after the
/// grace period, and reports them and every unread failure.
pub async fn background_shutdown_reports_stuck_tasks_and_unread_failures<R: TestRuntime>(rt: R) {
    let root = Background::<_, String>::new(rt.clone());
    let finished = DropCounter::new();
    let (scope, sleeper, guard) = (root.scope().clone(), rt.clone(), finished.guard());
    root.spawn_named("flusher", async move {
        scope.cancelled().await;
        sleeper.sleep(ms(2)).await;
        drop(guard);
        Ok(())
    })
    .expect("spawn");
    let sleeper = rt.clone();
    root.spawn_named("stuck", async move {
        sleeper.sleep(ms(60_000)).await;
        Ok(())
    })
    .expect("spawn");
    root.spawn_named("broken", async { Err("bad config".to_owned()) })
        .expect("spawn");
    rt.sleep(ms(2)).await;
    let report = root.shutdown(&rt, ms(30)).await;
    assert_eq!(
        finished.dropped(),
        1,
        "the flusher was not given its grace on {}",
        R::NAME
    );
    assert_eq!(
        report.grace.force_dropped_names,
        vec!["stuck".into()] as Vec<std::sync::Arc<str>>
    );
    assert_eq!(
        report.grace.finished_names,
        vec!["flusher".into()] as Vec<std::sync::Arc<str>>,
        "on {}",
        R::NAME
    );
    assert!(report.grace.elapsed >= ms(25), "the grace was cut short");
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].label(), "broken");
    assert_eq!(root.running(), 0);
}

/// Children that fail together (all woken by one event before the first
/// failure cancels the group) are all in the `GroupError`, in spawn order;
/// only the child that had no result of its own counts as cancelled. Same
/// answer on every runtime, multi-threaded ones included.
pub async fn children_failing_together_are_all_in_the_group_error_in_spawn_order<R: TestRuntime>(
    rt: R,
) {
    let group = TaskGroup::<_, (), String>::new(rt.clone());
    let gate = CancelScope::new();
    let waiting = Gauge::new();
    let drops = DropCounter::new();
    let guards = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for i in 0..3 {
        let (gate, waiting, guards) = (gate.clone(), waiting.clone(), guards.clone());
        group
            .spawn_named(format!("c{i}"), async move {
                guards.lock().unwrap().push(waiting.enter());
                gate.cancelled().await;
                Err(format!("e{i}"))
            })
            .expect("spawn");
    }
    let (sleeper, guard) = (rt.clone(), drops.guard());
    group
        .spawn_named("sleeper", async move {
            let _guard = guard;
            sleeper.sleep(ms(60_000)).await;
            Ok(())
        })
        .expect("spawn");
    eventually(&rt, "every failing child waits at the gate", || {
        waiting.current() == 3
    })
    .await;
    let start = rt.now();
    gate.cancel(); // all three wake at once and fail
    let err = group.join().await.unwrap_err();
    let labels: Vec<String> = err.failures().map(|f| f.label()).collect();
    assert_eq!(labels, ["c0", "c1", "c2"], "on {}", R::NAME);
    let errors: Vec<_> = err.failures().map(|f| f.error.clone()).collect();
    assert_eq!(
        errors,
        ["e0", "e1", "e2"].map(|e| ChildError::Failed(e.to_owned()))
    );
    assert_eq!(
        err.cancelled,
        1,
        "only the sleeper was cancelled on {}",
        R::NAME
    );
    assert_eq!(
        drops.dropped(),
        1,
        "join returned before the sleeper was gone"
    );
    match &err.reason {
        Some(CancelReason::SiblingFailed { task }) => {
            assert!(labels.iter().any(|l| **l == **task), "{task} did not fail");
        }
        other => panic!("expected SiblingFailed, got {other:?} on {}", R::NAME),
    }
    assert!(rt.now() - start < ms(60_000));
}

/// Once a fail-fast group recorded a failure, spawning into it is refused
/// with `GroupSpawnError::Cancelled` (reason `SiblingFailed`) on every
/// runtime, through the group and through its handle alike.
pub async fn spawning_into_a_failing_group_is_refused_with_the_failing_childs_name<
    R: TestRuntime,
>(
    rt: R,
) {
    let group = TaskGroup::<_, (), &'static str>::new(rt.clone());
    let handle = group.handle();
    group
        .spawn_named("broken", async { Err("boom") })
        .expect("spawn");
    let scope = group.scope().clone();
    eventually(&rt, "the failure cancels the group", || {
        scope.is_cancelled()
    })
    .await;
    let ran = DropCounter::new();
    for _ in 0..2 {
        let guard = ran.guard();
        let refused = group.spawn(async move {
            drop(guard);
            Ok(())
        });
        let expected = Err(GroupSpawnError::Cancelled(staunch::scope::Cancelled {
            reason: CancelReason::SiblingFailed {
                task: "broken".into(),
            },
        }));
        assert_eq!(refused.map(|_| ()), expected, "on {}", R::NAME);
    }
    assert_eq!(
        handle.spawn(async { Ok(()) }).map(|_| ()),
        Err(GroupSpawnError::Cancelled(staunch::scope::Cancelled {
            reason: CancelReason::SiblingFailed {
                task: "broken".into(),
            },
        }))
    );
    assert_eq!(
        ran.dropped(),
        2,
        "a refused child's future is dropped at once"
    );
    let err = group.join().await.unwrap_err();
    assert_eq!(err.failures().count(), 1);
    assert_eq!(err.cancelled, 0);
}

/// A `Background` keeps at most its error cap of unread failures; each one
/// beyond goes to the error sink and is counted, so none is lost and memory
/// stays bounded.
pub async fn background_keeps_failures_up_to_its_cap_and_sends_the_rest_to_the_sink<
    R: TestRuntime,
>(
    rt: R,
) {
    assert_eq!(staunch::group::DEFAULT_ERROR_CAP, 1024);
    let sink = CollectingSink::new();
    let rt = rt.with_sink(sink.sink());
    let root = Background::<_, String>::new(rt.clone()).with_error_cap(2);
    for i in 0..5 {
        root.spawn_named(format!("t{i}"), async move { Err(format!("e{i}")) })
            .expect("spawn");
    }
    eventually(&rt, "every task ends", || root.running() == 0).await;
    assert_eq!(root.dropped_errors(), 3, "on {}", R::NAME);
    let received = sink.received();
    assert_eq!(received.len(), 3, "on {}", R::NAME);
    let report = root.shutdown(&rt, ms(100)).await;
    assert_eq!(report.errors.len(), 2);
    assert_eq!(report.dropped_errors, 3);
    assert!(!report.is_clean());
    // Kept and sent together name every task exactly once.
    let mut names: Vec<String> = report.errors.iter().map(|f| f.label()).collect();
    names.extend(
        received
            .iter()
            .map(|r| r.task.as_deref().unwrap().to_owned()),
    );
    names.sort();
    assert_eq!(names, ["t0", "t1", "t2", "t3", "t4"]);
}

/// `cancel_with_grace` reports what ended within the grace, what was
/// dropped after it (a task group counts as one run while it has children)
/// and how long it took.
pub async fn cancel_with_grace_reports_what_finished_and_what_was_dropped<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new();
    let drops = DropCounter::new();
    let polite = staunch::runtime::SpawnExt::spawn(
        &rt,
        scope.clone().run_owned({
            let (scope, rt) = (scope.clone(), rt.clone());
            async move {
                scope.cancelled().await;
                rt.sleep(ms(2)).await;
            }
        }),
    )
    .expect("spawn");
    let group = TaskGroup::builder(rt.clone())
        .in_scope(&scope)
        .build::<(), String>()
        .expect("valid");
    for _ in 0..3 {
        group.spawn(drops.sleeper(&rt)).expect("spawn");
    }
    rt.sleep(ms(2)).await;
    let report = scope.cancel_with_grace(&rt, ms(20)).await;
    assert_eq!(
        (report.finished, report.force_dropped),
        (1, 1),
        "on {}",
        R::NAME
    );
    assert!(report.force_dropped_names.is_empty());
    assert!(
        report.elapsed >= ms(20),
        "the grace was cut short on {}",
        R::NAME
    );
    assert!(report.elapsed < ms(60_000));
    assert_eq!(
        drops.dropped(),
        3,
        "the report came before the children were gone"
    );
    polite
        .await
        .expect("joined")
        .expect("it finished within the grace");
    let err = group.join().await.unwrap_err();
    assert_eq!(err.cancelled, 3);
}

/// `spawn` returns a handle that aborts its child alone: the child's future
/// is dropped at once, it reads as cancelled with reason `Aborted` (never a
/// failure, never a panic at join), awaiting the handle says so, and the
/// siblings run on, in a supervisor and in a fail-fast group.
pub async fn aborting_one_child_cancels_it_alone<R: TestRuntime>(rt: R) {
    for fail_fast in [false, true] {
        let group = if fail_fast {
            TaskGroup::<_, u32, String>::new(rt.clone())
        } else {
            TaskGroup::<_, u32, String>::supervisor(rt.clone())
        };
        let drops = DropCounter::new();
        let started = flag();
        let (sleeper, guard, flag_) = (rt.clone(), drops.guard(), started.clone());
        let slow = group
            .spawn(async move {
                let _guard = guard;
                flag_.store(true, SeqCst);
                sleeper.sleep(ms(60_000)).await;
                Ok(1)
            })
            .expect("spawn");
        let sleeper = rt.clone();
        let sibling = group
            .spawn(async move {
                sleeper.sleep(ms(5)).await;
                Ok(2)
            })
            .expect("spawn");
        assert_eq!((slow.index(), sibling.index()), (0, 1));
        eventually(&rt, "the slow child started", || started.load(SeqCst)).await;
        assert!(!slow.is_finished());
        let start = rt.now();
        slow.abort();
        let end = slow.await;
        assert_eq!(
            end,
            ChildEnd::Cancelled(CancelReason::Aborted),
            "on {}",
            R::NAME
        );
        assert!(end.is_cancelled());
        assert_eq!(drops.dropped(), 1, "the aborted future was dropped");
        if R::VIRTUAL_TIME {
            assert_eq!(rt.now(), start, "aborted at once");
        } else {
            assert!(
                rt.now() - start < ms(30_000),
                "aborted promptly on {}",
                R::NAME
            );
        }
        assert_eq!(sibling.await, ChildEnd::Finished, "the sibling ran on");
        if fail_fast {
            // The owner's abort is no failure: the group joins without an error.
            assert_eq!(group.join().await, Ok(vec![2]), "on {}", R::NAME);
        } else {
            let all = group.join_all().await;
            assert!(
                matches!(&all[0], Err(ChildError::Cancelled(c)) if c.reason == CancelReason::Aborted),
                "on {}: {:?}",
                R::NAME,
                all[0]
            );
            assert_eq!(all[1], Ok(2));
        }
    }
}

/// A child aborted before it ever ran (just spawned, or waiting for a
/// place under the group's limit) never runs its body, and ends aborted.
pub async fn a_child_aborted_before_it_started_never_runs<R: TestRuntime>(rt: R) {
    let group = TaskGroup::builder(rt.clone())
        .supervisor()
        .limit(1)
        .build::<u32, String>()
        .expect("valid");
    // The first holds the group's one place until the test lets it go, so
    // however slow the machine, the second is still waiting when aborted.
    let (release, released) = futures::channel::oneshot::channel::<()>();
    let first = group
        .spawn(async move {
            released.await.map_err(|_| "released".to_string())?;
            Ok(1)
        })
        .expect("spawn");
    let ran_waiting = flag();
    let waiting = {
        let ran = ran_waiting.clone();
        group
            .spawn(async move {
                ran.store(true, SeqCst);
                Ok(2)
            })
            .expect("spawn")
    };
    // The second waits for the first's place: let it start waiting.
    rt.sleep(ms(1)).await;
    waiting.abort();
    assert_eq!(
        waiting.await,
        ChildEnd::Cancelled(CancelReason::Aborted),
        "on {}",
        R::NAME
    );
    // Aborted the moment it was spawned: never polled.
    let ran_fresh = flag();
    let fresh = {
        let ran = ran_fresh.clone();
        group
            .spawn(async move {
                ran.store(true, SeqCst);
                Ok(3)
            })
            .expect("spawn")
    };
    fresh.abort();
    assert_eq!(fresh.await, ChildEnd::Cancelled(CancelReason::Aborted));
    release.send(()).expect("the first still waits");
    assert_eq!(first.await, ChildEnd::Finished);
    assert!(
        !ran_waiting.load(SeqCst) && !ran_fresh.load(SeqCst),
        "on {}",
        R::NAME
    );
    let all = group.join_all().await;
    assert_eq!(all[0], Ok(1));
    assert!(
        all[1..].iter().all(
            |r| matches!(r, Err(ChildError::Cancelled(c)) if c.reason == CancelReason::Aborted)
        )
    );
}

/// Aborting a child that already ended changes nothing; awaiting a handle
/// tells how the child ended without taking its value or error from the
/// join (no error is lost), also after the group was joined.
pub async fn a_child_handle_reports_the_end_and_leaves_the_result_to_join<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, u32, String>::supervisor(rt.clone());
    let ok = group.spawn(async { Ok(7) }).expect("spawn");
    let failed = group
        .spawn_named("bad", async { Err("refused".to_owned()) })
        .expect("spawn");
    assert_eq!(ok.await, ChildEnd::Finished);
    assert_eq!(failed.await, ChildEnd::Failed, "on {}", R::NAME);
    let ok = group.handle().spawn(async { Ok(8) }).expect("spawn");
    eventually(&rt, "the third child ended", || ok.is_finished()).await;
    ok.abort(); // too late: nothing happens
    let all = group.join_all().await;
    assert_eq!(
        all,
        vec![Ok(7), Err(ChildError::Failed("refused".to_owned())), Ok(8)]
    );
    assert_eq!(
        ok.await,
        ChildEnd::Finished,
        "after the join, on {}",
        R::NAME
    );

    // Fail-fast: awaiting the failed child's handle does not take its error.
    let group = TaskGroup::<_, u32, String>::new(rt.clone());
    let failed = group
        .spawn(async { Err("down".to_owned()) })
        .expect("spawn");
    assert_eq!(failed.await, ChildEnd::Failed);
    let err = group.join().await.unwrap_err();
    assert_eq!(
        err.first.map(|f| f.error),
        Some(ChildError::Failed("down".to_owned()))
    );
}

/// An aborted child that is inside a shielded region finishes that region
/// first (as for any cancel), then ends aborted.
pub async fn an_aborted_child_finishes_its_shielded_cleanup<R: TestRuntime>(rt: R) {
    let group = TaskGroup::<_, (), String>::supervisor(rt.clone());
    let (entered, cleaned, after) = (flag(), flag(), flag());
    let child = group
        .spawn({
            let (scope, rt) = (group.scope().clone(), rt.clone());
            let (entered, cleaned, after) = (entered.clone(), cleaned.clone(), after.clone());
            async move {
                let _ = scope
                    .shielded()
                    .run(async {
                        entered.store(true, SeqCst);
                        rt.sleep(ms(10)).await;
                        cleaned.store(true, SeqCst);
                    })
                    .await;
                rt.sleep(ms(1)).await;
                after.store(true, SeqCst);
                Ok(())
            }
        })
        .expect("spawn");
    eventually(&rt, "the child entered its shield", || entered.load(SeqCst)).await;
    let start = rt.now();
    child.abort();
    assert_eq!(child.await, ChildEnd::Cancelled(CancelReason::Aborted));
    assert!(
        cleaned.load(SeqCst),
        "the shielded cleanup finished on {}",
        R::NAME
    );
    assert!(
        !after.load(SeqCst),
        "nothing after the shield ran on {}",
        R::NAME
    );
    if R::VIRTUAL_TIME {
        assert!(rt.now() - start <= ms(10));
    }
    let all = group.join_all().await;
    assert!(matches!(&all[0], Err(ChildError::Cancelled(c)) if c.reason == CancelReason::Aborted));
}

/// Nested groups: when a child of the outer group fails, the sibling that
/// runs an inner group is cancelled, and the outer `join` returns only
/// once the inner group's children are gone too (no grandchild outlives
/// the outer group).
pub async fn an_outer_join_returns_only_once_an_inner_groups_children_are_gone<R: TestRuntime>(
    rt: R,
) {
    let drops = DropCounter::new();
    let outer = TaskGroup::<_, (), String>::new(rt.clone());
    let entered = flag();
    {
        let (rt, drops, entered) = (rt.clone(), drops.clone(), entered.clone());
        outer
            .spawn_named("nests", async move {
                let inner = TaskGroup::<_, (), String>::new(rt.clone());
                for _ in 0..3 {
                    inner.spawn(drops.sleeper(&rt)).map_err(|e| e.to_string())?;
                }
                entered.store(true, SeqCst);
                inner.join().await.map_err(|e| e.to_string())?;
                Ok(())
            })
            .expect("spawn");
    }
    {
        let (rt, entered) = (rt.clone(), entered.clone());
        outer
            .spawn_named("fails", async move {
                while !entered.load(SeqCst) {
                    rt.sleep(ms(1)).await;
                }
                Err("boom".to_string())
            })
            .expect("spawn");
    }
    let err = outer.join().await.unwrap_err();
    assert_eq!(err.first.expect("a failure").label(), "fails");
    assert_eq!(
        drops.dropped(),
        3,
        "an inner group's child outlived the outer join on {}",
        R::NAME
    );
}

/// A child that gives up on an inner group (a `select` whose other branch
/// won drops the inner join) and returns is reported finished only once
/// the inner group's children are gone, so the outer `join` never returns
/// while a grandchild runs.
pub async fn a_child_that_drops_an_inner_group_ends_once_the_inner_children_are_gone<
    R: TestRuntime,
>(
    rt: R,
) {
    let drops = DropCounter::new();
    let outer = TaskGroup::<_, &str, String>::new(rt.clone());
    {
        let (rt, drops) = (rt.clone(), drops.clone());
        outer
            .spawn(async move {
                let inner = TaskGroup::<_, (), String>::new(rt.clone());
                for _ in 0..3 {
                    inner.spawn(drops.sleeper(&rt)).map_err(|e| e.to_string())?;
                }
                let join = std::pin::pin!(inner.join());
                let gave_up = std::pin::pin!(rt.sleep(ms(2)));
                match futures::future::select(join, gave_up).await {
                    futures::future::Either::Left(_) => Ok("joined"),
                    futures::future::Either::Right(_) => Ok("gave up"),
                }
            })
            .expect("spawn");
    }
    let values = outer.join().await.expect("no child failed");
    assert_eq!(values, ["gave up"], "on {}", R::NAME);
    assert_eq!(
        drops.dropped(),
        3,
        "an inner group's child outlived the outer join on {}",
        R::NAME
    );
}

/// A task the executor refuses never existed: `spawn` says so with a typed
/// error, and nothing else does (no "lost task" in the error sink, no
/// dropped failure counted), even when the root keeps no failures at all
/// (error cap 0). tokio cannot refuse (it accepts and drops the task): that
/// task is lost, and reported exactly once.
pub async fn a_background_spawn_the_executor_refuses_is_reported_once_as_a_typed_error<
    R: TestRuntime,
>(
    rt: R,
) {
    let Some(dead) = rt.shut_down_sibling() else {
        return;
    };
    let collected = CollectingSink::new();
    let dead = dead.with_sink(collected.sink());
    let mut lost_reports = 0;
    for cap in [0, 1024] {
        let root = Background::<_, String>::new(dead.clone()).with_error_cap(cap);
        let refused = root.spawn_named("late", async { Ok(()) });
        let report = match refused {
            Err(GroupSpawnError::Spawn(SpawnError::Shutdown)) => {
                assert_eq!(root.running(), 0);
                assert_eq!(root.dropped_errors(), 0, "cap {cap} on {}", R::NAME);
                let report = root.shutdown(&rt, ms(1)).await;
                assert!(report.is_clean(), "cap {cap}: {report:?} on {}", R::NAME);
                continue;
            }
            Ok(()) => {
                assert_eq!(
                    R::NAME,
                    "tokio",
                    "only tokio accepts a task it will not run"
                );
                root.shutdown(&rt, ms(1)).await
            }
            Err(other) => panic!("unexpected spawn error on {}: {other}", R::NAME),
        };
        // Accepted and dropped: lost, kept for the report or (cap 0) sent
        // to the sink, never both.
        let kept: Vec<_> = report.errors.iter().map(|f| f.error.clone()).collect();
        if cap == 0 {
            assert!(kept.is_empty());
            assert_eq!(report.dropped_errors, 1);
            lost_reports += 1;
        } else {
            assert_eq!(kept, [ChildError::Lost]);
        }
    }
    let seen: Vec<UnobservedKind> = collected.received().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        seen,
        vec![UnobservedKind::Lost; lost_reports],
        "a refused spawn also reached the error sink on {}",
        R::NAME
    );
}

/// Grace periods at their extremes: a zero grace drops at once whatever has
/// not ended (cooperative or not), and a `Duration::MAX` grace neither
/// overflows nor waits past the moment everything ended on its own.
pub async fn shutdown_and_cancel_with_grace_work_with_a_zero_and_a_max_grace<R: TestRuntime>(
    rt: R,
) {
    fn cooperative<R: TestRuntime>(
        scope: &CancelScope,
        rt: &R,
        drops: &DropCounter,
    ) -> impl std::future::Future<Output = Result<(), String>> + staunch::runtime::MaybeSend + 'static
    {
        let (scope, rt, guard) = (scope.clone(), rt.clone(), drops.guard());
        async move {
            let _guard = guard;
            scope.cancelled().await;
            rt.sleep(ms(20)).await; // cleanup
            Ok(())
        }
    }
    // Zero: both the cooperative and the stuck task are dropped at once.
    let drops = DropCounter::new();
    let root = Background::<_, String>::new(rt.clone());
    root.spawn_named("polite", cooperative(root.scope(), &rt, &drops))
        .expect("spawn");
    let (sleeper, guard) = (rt.clone(), drops.guard());
    root.spawn_named("stuck", async move {
        let _guard = guard;
        sleeper.sleep(ms(60_000)).await;
        Ok(())
    })
    .expect("spawn");
    rt.sleep(ms(1)).await;
    let report = root.shutdown(&rt, std::time::Duration::ZERO).await;
    assert_eq!(
        report.grace.force_dropped_names,
        vec!["polite".into(), "stuck".into()],
        "on {}",
        R::NAME
    );
    assert_eq!(
        drops.dropped(),
        2,
        "the report came before the tasks were gone"
    );
    if R::VIRTUAL_TIME {
        assert_eq!(report.grace.elapsed, std::time::Duration::ZERO);
    }

    // MAX: the cooperative task finishes and the shutdown returns then.
    let drops = DropCounter::new();
    let root = Background::<_, String>::new(rt.clone());
    root.spawn_named("polite", cooperative(root.scope(), &rt, &drops))
        .expect("spawn");
    rt.sleep(ms(1)).await;
    let report = root.shutdown(&rt, std::time::Duration::MAX).await;
    assert_eq!(
        report.grace.finished_names,
        vec!["polite".into()],
        "on {}",
        R::NAME
    );
    assert!(report.is_clean());
    assert!(report.grace.elapsed < ms(60_000));
    if R::VIRTUAL_TIME {
        assert_eq!(report.grace.elapsed, ms(20));
    }

    // The same two on a scope.
    for (grace, finished) in [
        (std::time::Duration::ZERO, 0),
        (std::time::Duration::MAX, 1),
    ] {
        let drops = DropCounter::new();
        let scope = CancelScope::new();
        let task = staunch::runtime::SpawnExt::spawn(
            &rt,
            scope.clone().run_owned(cooperative(&scope, &rt, &drops)),
        )
        .expect("spawn");
        rt.sleep(ms(1)).await;
        let report = scope.cancel_with_grace(&rt, grace).await;
        assert_eq!(
            (report.finished, report.force_dropped),
            (finished, 1 - finished),
            "grace {grace:?} on {}",
            R::NAME
        );
        assert_eq!(drops.dropped(), 1);
        let out = task.await.expect("joined");
        assert_eq!(out.is_ok(), finished == 1, "grace {grace:?} on {}", R::NAME);
    }
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! group_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? group::group_join_returns_values_in_spawn_order);
        $m!($($($extra)*;)? group::an_outer_join_returns_only_once_an_inner_groups_children_are_gone);
        $m!($($($extra)*;)? group::shutdown_and_cancel_with_grace_work_with_a_zero_and_a_max_grace);
        $m!($($($extra)*;)? group::a_background_spawn_the_executor_refuses_is_reported_once_as_a_typed_error);
        $m!($($($extra)*;)? group::a_child_that_drops_an_inner_group_ends_once_the_inner_children_are_gone);
        $m!($($($extra)*;)? group::a_failing_child_cancels_its_siblings_and_join_names_it);
        $m!($($($extra)*;)? group::a_supervisor_group_returns_every_childs_result);
        $m!($($($extra)*;)? group::a_panicking_child_is_captured_as_panicked);
        $m!($($($extra)*;)? group::dropping_a_group_cancels_all_its_children);
        $m!($($($extra)*;)? group::a_failure_in_a_group_nobody_joined_reaches_the_error_sink);
        $m!($($($extra)*;)? group::spawn_local_runs_non_send_children_where_supported);
        $m!($($($extra)*;)? group::a_group_limit_caps_how_many_children_run_at_once);
        $m!($($($extra)*;)? group::children_spawn_siblings_through_a_group_handle);
        $m!($($($extra)*;)? group::a_group_in_a_scope_is_cancelled_at_the_scopes_deadline);
        $m!($($($extra)*;)? group::a_group_cancelled_by_its_owner_joins_without_an_error);
        $m!($($($extra)*;)? group::background_shutdown_reports_stuck_tasks_and_unread_failures);
        $m!($($($extra)*;)? group::children_failing_together_are_all_in_the_group_error_in_spawn_order);
        $m!($($($extra)*;)? group::spawning_into_a_failing_group_is_refused_with_the_failing_childs_name);
        $m!($($($extra)*;)? group::background_keeps_failures_up_to_its_cap_and_sends_the_rest_to_the_sink);
        $m!($($($extra)*;)? group::cancel_with_grace_reports_what_finished_and_what_was_dropped);
        $m!($($($extra)*;)? group::aborting_one_child_cancels_it_alone);
        $m!($($($extra)*;)? group::a_child_aborted_before_it_started_never_runs);
        $m!($($($extra)*;)? group::a_child_handle_reports_the_end_and_leaves_the_result_to_join);
        $m!($($($extra)*;)? group::an_aborted_child_finishes_its_shielded_cleanup);
    };
}
