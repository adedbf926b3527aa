use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use super::*;
use crate::runtime::{ErrorSink, Instant, Timer, UnobservedError, UnobservedKind};
use crate::scope::CancelReason;
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);
impl Counter {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
struct Guard(Counter);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.bump();
    }
}

fn collecting(rt: VirtualRuntime) -> (VirtualRuntime, Arc<Mutex<Vec<UnobservedError>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = ErrorSink::new({
        let seen = seen.clone();
        move |e| seen.lock().unwrap().push(e)
    });
    (rt.with_error_sink(sink), seen)
}

#[test]
fn fail_fast_returns_the_first_error_every_other_and_the_cancelled_count() {
    let rt = VirtualRuntime::new();
    let err = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::new(rt.clone());
                for (i, delay) in [(0, 30), (1, 10), (2, 10), (3, 50)] {
                    let rt = rt.clone();
                    group
                        .spawn_named(format!("t{i}"), async move {
                            rt.sleep(ms(delay)).await;
                            if i == 3 { Ok(i) } else { Err(format!("e{i}")) }
                        })
                        .unwrap();
                }
                group.join().await.unwrap_err()
            }
        })
        .unwrap();
    let first = err.first.as_ref().unwrap();
    assert_eq!(first.index, 1);
    assert_eq!(first.name.as_deref(), Some("t1"));
    assert_eq!(first.error, ChildError::Failed("e1".to_owned()));
    // t2 failed in the same instant: it was woken before the cancel, so its
    // own error is kept; t0 and t3 were still sleeping and are cancelled.
    assert_eq!(err.others.len(), 1);
    assert_eq!(err.others[0].label(), "t2");
    assert_eq!(err.others[0].error, ChildError::Failed("e2".to_owned()));
    assert_eq!(err.cancelled, 2);
    assert_eq!(
        err.reason,
        Some(CancelReason::SiblingFailed { task: "t1".into() })
    );
    assert_eq!(rt.now(), Instant::ORIGIN + ms(10));
    assert!(
        err.to_string()
            .starts_with("task `t1`: the task failed: \"e1\"")
    );
}

#[test]
fn supervisor_runs_every_child_to_completion_and_returns_results_in_spawn_order() {
    let rt = VirtualRuntime::new();
    let results = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::supervisor(rt.clone());
                for (i, delay) in [(0u64, 30u64), (1, 10), (2, 20)] {
                    let rt = rt.clone();
                    group
                        .spawn(async move {
                            rt.sleep(ms(delay)).await;
                            if i == 1 { Err("bad") } else { Ok(i) }
                        })
                        .unwrap();
                }
                group.join_all().await
            }
        })
        .unwrap();
    assert_eq!(results, vec![Ok(0), Err(ChildError::Failed("bad")), Ok(2)]);
    assert_eq!(rt.now(), Instant::ORIGIN + ms(30));
}

#[test]
fn a_panicking_child_becomes_panicked_and_counts_as_the_failure() {
    let rt = VirtualRuntime::new();
    let err = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group: TaskGroup<_, (), String> = TaskGroup::new(rt.clone());
                group
                    .spawn_named("boom", async {
                        if std::hint::black_box(true) {
                            panic!("kaboom");
                        }
                        Ok(())
                    })
                    .unwrap();
                group.join().await.unwrap_err()
            }
        })
        .unwrap();
    assert_eq!(
        err.first.unwrap().error,
        ChildError::Panicked(crate::runtime::Panicked {
            message: "kaboom".into()
        })
    );
}

#[test]
fn dropping_the_group_cancels_every_child_so_none_outlives_it() {
    let rt = VirtualRuntime::new();
    let dropped = Counter::default();
    rt.block_on({
        let (rt, dropped) = (rt.clone(), dropped.clone());
        async move {
            let group: TaskGroup<_, (), String> = TaskGroup::new(rt.clone());
            for _ in 0..5 {
                let (rt, guard) = (rt.clone(), Guard(dropped.clone()));
                group
                    .spawn(async move {
                        let _guard = guard;
                        rt.sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    })
                    .unwrap();
            }
            rt.sleep(ms(1)).await;
            drop(group);
            rt.sleep(ms(1)).await;
        }
    })
    .unwrap();
    assert_eq!(dropped.get(), 5);
    assert_eq!(rt.task_count(), 0);
    assert_eq!(rt.now(), Instant::ORIGIN + ms(2));
}

#[test]
fn dropping_the_join_future_cancels_every_child() {
    let rt = VirtualRuntime::new();
    let dropped = Counter::default();
    let out = rt
        .block_on({
            let (rt, dropped) = (rt.clone(), dropped.clone());
            async move {
                let group: TaskGroup<_, (), String> = TaskGroup::new(rt.clone());
                let (sleeper, guard) = (rt.clone(), Guard(dropped.clone()));
                group
                    .spawn(async move {
                        let _guard = guard;
                        sleeper.sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    })
                    .unwrap();
                let out = crate::timeout::timeout(&rt, ms(5), group.join()).await;
                rt.sleep(ms(1)).await;
                out.is_err()
            }
        })
        .unwrap();
    assert!(out, "the join should have timed out");
    assert_eq!(dropped.get(), 1);
    assert_eq!(rt.task_count(), 0);
}

#[test]
fn a_child_error_nobody_joined_is_sent_to_the_sink_not_lost() {
    let (rt, seen) = collecting(VirtualRuntime::new());
    rt.block_on({
        let rt = rt.clone();
        async move {
            let group = TaskGroup::<_, (), &str>::supervisor(rt.clone());
            group
                .spawn_named("unawaited", async { Err("lost?") })
                .unwrap();
            let sleeper = rt.clone();
            group
                .spawn_named("late", async move {
                    sleeper.sleep(ms(3)).await;
                    Err("late")
                })
                .unwrap();
            rt.sleep(ms(1)).await;
            // Never joined: the group goes away.
            drop(group);
            rt.sleep(ms(5)).await;
        }
    })
    .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].task.as_deref(), Some("unawaited"));
    assert_eq!(seen[0].kind, UnobservedKind::Failed("\"lost?\"".into()));
}

#[test]
fn children_can_spawn_siblings_through_a_handle_and_the_join_waits_for_them() {
    let rt = VirtualRuntime::new();
    let values = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::<_, u32, String>::new(rt.clone());
                let handle = group.handle();
                let sleeper = rt.clone();
                group
                    .spawn(async move {
                        let rt = sleeper.clone();
                        handle
                            .spawn(async move {
                                rt.sleep(ms(10)).await;
                                Ok(2)
                            })
                            .unwrap();
                        sleeper.sleep(ms(1)).await;
                        Ok(1)
                    })
                    .unwrap();
                group.join().await.unwrap()
            }
        })
        .unwrap();
    assert_eq!(values, vec![1, 2]);
    assert_eq!(rt.now(), Instant::ORIGIN + ms(10));
}

#[test]
fn spawning_into_a_joined_or_failing_group_is_a_typed_error() {
    let rt = VirtualRuntime::new();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let group = TaskGroup::<_, (), &str>::new(rt.clone());
            let handle = group.handle();
            group.spawn(async { Err("first") }).unwrap();
            rt.sleep(ms(1)).await;
            assert!(matches!(
                group.spawn(async { Ok(()) }),
                Err(GroupSpawnError::Cancelled(_))
            ));
            let _ = group.join().await;
            assert_eq!(
                handle.spawn(async { Ok(()) }).err(),
                Some(GroupSpawnError::Closed)
            );
        }
    })
    .unwrap();
}

#[test]
fn a_limit_of_zero_is_a_config_error_and_a_limit_caps_concurrency() {
    let rt = VirtualRuntime::new();
    assert!(
        TaskGroup::builder(rt.clone())
            .limit(0)
            .build::<(), ()>()
            .is_err()
    );
    let peak = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::builder(rt.clone())
                    .limit(2)
                    .build::<(), ()>()
                    .unwrap();
                let inside = Arc::new(AtomicUsize::new(0));
                let peak = Arc::new(AtomicUsize::new(0));
                for _ in 0..6 {
                    let (rt, inside, peak) = (rt.clone(), inside.clone(), peak.clone());
                    group
                        .spawn(async move {
                            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            rt.sleep(ms(10)).await;
                            inside.fetch_sub(1, Ordering::SeqCst);
                            Ok(())
                        })
                        .unwrap();
                }
                group.join().await.unwrap();
                peak.load(Ordering::SeqCst)
            }
        })
        .unwrap();
    assert_eq!(peak, 2);
    assert_eq!(rt.now(), Instant::ORIGIN + ms(30));
}

#[test]
fn cancel_then_wait_really_waits_for_the_childrens_cleanup() {
    let rt = VirtualRuntime::new();
    let cleaned = Counter::default();
    let (results, took) = rt
        .block_on({
            let (rt, cleaned) = (rt.clone(), cleaned.clone());
            async move {
                let group = TaskGroup::<_, &str, String>::supervisor(rt.clone());
                for _ in 0..3 {
                    let (scope, rt, cleaned) = (group.scope().clone(), rt.clone(), cleaned.clone());
                    group
                        .spawn(async move {
                            scope.cancelled().await;
                            rt.sleep(ms(4)).await; // cleanup takes time
                            cleaned.bump();
                            Ok("cleaned up")
                        })
                        .unwrap();
                }
                rt.sleep(ms(1)).await;
                let start = rt.now();
                group.scope().cancel_with_grace(&rt, ms(100)).await;
                let took = rt.now() - start;
                (group.join_all().await, took)
            }
        })
        .unwrap();
    assert_eq!(cleaned.get(), 3);
    assert_eq!(took, ms(4));
    assert!(results.iter().all(|r| r == &Ok("cleaned up")));
}

#[test]
fn cancelling_a_group_that_is_already_being_cancelled_gracefully_drops_at_once() {
    let rt = VirtualRuntime::new();
    let took = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::<_, (), String>::new(rt.clone());
                let sleeper = rt.clone();
                group
                    .spawn(async move {
                        sleeper.sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    })
                    .unwrap();
                rt.sleep(ms(1)).await;
                let start = rt.now();
                let graceful = group
                    .scope()
                    .cancel_with_grace(&rt, Duration::from_secs(60));
                let hard = async {
                    rt.sleep(ms(2)).await;
                    group.cancel(); // a second cancel while the first is in progress
                };
                futures::join!(graceful, hard);
                let took = rt.now() - start;
                // Cancelled by its owner: no error, and no value from the
                // child that was cancelled.
                assert_eq!(group.join().await, Ok(Vec::new()));
                took
            }
        })
        .unwrap();
    assert_eq!(took, ms(2));
}

#[test]
fn a_child_cannot_catch_its_cancellation_and_report_success() {
    let rt = VirtualRuntime::new();
    let results = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::<_, &str, &str>::supervisor(rt.clone());
                let sleeper = rt.clone();
                group
                    .spawn(async move {
                        // A catch-all around the work: it never gets the chance.
                        let r: Result<&str, &str> = async {
                            sleeper.sleep(ms(50)).await;
                            Err("failed")
                        }
                        .await;
                        Ok(r.unwrap_or("swallowed"))
                    })
                    .unwrap();
                rt.sleep(ms(1)).await;
                group.cancel();
                group.join_all().await
            }
        })
        .unwrap();
    assert!(results[0].as_ref().unwrap_err().is_cancelled());
}

#[test]
fn background_shutdown_reports_what_was_still_running_and_every_unread_error() {
    let rt = VirtualRuntime::new();
    let report = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let root = Background::<_, String>::new(rt.clone());
                // A failure taken early is not in the report as well.
                root.spawn_named("read early", async { Err("early".to_owned()) })
                    .unwrap();
                rt.sleep(ms(0)).await;
                let early = root.take_errors();
                assert_eq!(early.len(), 1);
                assert_eq!(early[0].name.as_deref(), Some("read early"));
                assert!(root.take_errors().is_empty(), "taken once");
                root.spawn_named("fails", async { Err("boom".to_owned()) })
                    .unwrap();
                let (scope, sleeper) = (root.scope().clone(), rt.clone());
                root.spawn_named("polite", async move {
                    scope.cancelled().await;
                    sleeper.sleep(ms(3)).await;
                    Ok(())
                })
                .unwrap();
                let sleeper = rt.clone();
                root.spawn_named("stuck", async move {
                    sleeper.sleep(Duration::from_secs(3600)).await;
                    Ok(())
                })
                .unwrap();
                rt.sleep(ms(1)).await;
                let report = root.shutdown(&rt, ms(10)).await;
                assert_eq!(root.running(), 0);
                assert!(root.spawn(async { Ok(()) }).is_err());
                report
            }
        })
        .unwrap();
    assert_eq!(
        report.grace.force_dropped_names,
        vec![Arc::<str>::from("stuck")]
    );
    assert_eq!(
        report.grace.finished_names,
        vec![Arc::<str>::from("polite")]
    );
    assert_eq!((report.grace.finished, report.grace.force_dropped), (1, 1));
    assert_eq!(report.grace.elapsed, ms(10));
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].name.as_deref(), Some("fails"));
    assert_eq!(rt.now(), Instant::ORIGIN + ms(11));
}

#[test]
fn the_group_error_keeps_every_failure_in_spawn_order_and_counts_the_cancelled() {
    use super::state::{Slot, fail_fast_output};
    let cancelled = crate::scope::Cancelled {
        reason: CancelReason::Shutdown,
    };
    let slots: Vec<Slot<u32, &str>> = vec![
        Slot::Done(None, Ok(1)),
        Slot::Done(Some("b".into()), Err(ChildError::Failed("second"))),
        Slot::Done(None, Err(ChildError::Cancelled(cancelled))),
        Slot::Done(Some("d".into()), Err(ChildError::Failed("first"))),
    ];
    let err = fail_fast_output(slots, None).unwrap_err();
    assert_eq!(err.first.as_ref().unwrap().label(), "b");
    assert_eq!(err.others.len(), 1);
    assert_eq!(err.others[0].index, 3);
    assert_eq!(err.cancelled, 1);
    assert_eq!(err.failures().count(), 2);
    assert_eq!(
        err.to_string(),
        "task `b`: the task failed: \"second\"; 1 more tasks failed; 1 tasks were cancelled"
    );
    assert!(!err.is_cancelled());
    assert_eq!(err.into_first_error(), Some("second"));

    // Cancelled from the outside with no child failing: no first error.
    let slots: Vec<Slot<u32, &str>> = vec![Slot::Done(
        None,
        Err(ChildError::Cancelled(crate::scope::Cancelled {
            reason: CancelReason::Shutdown,
        })),
    )];
    let err = fail_fast_output(slots, Some(CancelReason::Shutdown)).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.reason, Some(CancelReason::Shutdown));
    assert_eq!(err.into_first_error(), None);
}

/// Polls `inner` at most `polls` times, then drops it.
struct CancelAfter<F> {
    inner: Option<Pin<Box<F>>>,
    polls: usize,
}

impl<F: Future> Future for CancelAfter<F> {
    type Output = Option<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.polls == 0 {
            self.inner = None;
            return Poll::Ready(None);
        }
        self.polls -= 1;
        match self
            .inner
            .as_mut()
            .expect("polled after completion")
            .as_mut()
            .poll(cx)
        {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[test]
fn dropping_a_group_at_every_poll_point_leaks_no_child_and_loses_no_error() {
    for polls in 0.. {
        let (rt, seen) = collecting(VirtualRuntime::new());
        let created = Counter::default();
        let dropped = Counter::default();
        let failed = Counter::default();
        let workload = {
            let (rt, created, dropped, failed) =
                (rt.clone(), created.clone(), dropped.clone(), failed.clone());
            async move {
                let group = TaskGroup::<_, u32, String>::supervisor(rt.clone());
                for i in 0..4u32 {
                    let (child_rt, dropped, failed) = (rt.clone(), dropped.clone(), failed.clone());
                    created.bump();
                    group
                        .spawn_named(format!("c{i}"), async move {
                            let _guard = Guard(dropped);
                            for step in 0..=i {
                                child_rt.sleep(ms(u64::from(step) + 1)).await;
                            }
                            if i % 2 == 1 {
                                failed.bump();
                                Err(format!("c{i} failed"))
                            } else {
                                Ok(i)
                            }
                        })
                        .unwrap();
                    rt.sleep(ms(1)).await;
                }
                group.join_all().await
            }
        };
        let out = rt
            .block_on(CancelAfter {
                inner: Some(Box::pin(workload)),
                polls,
            })
            .unwrap();
        // Let every cancelled child be dropped.
        rt.block_on(rt.sleep(Duration::from_secs(1))).unwrap();
        assert_eq!(
            rt.task_count(),
            0,
            "a child outlived its group at poll {polls}"
        );
        assert_eq!(
            dropped.get(),
            created.get(),
            "unbalanced drops at poll {polls}"
        );
        let returned = out.as_ref().map_or(0, |r| {
            r.iter()
                .filter(|x| matches!(x, Err(ChildError::Failed(_))))
                .count()
        });
        let sunk = seen.lock().unwrap().len();
        assert_eq!(
            returned + sunk,
            failed.get(),
            "an error was lost at poll {polls}"
        );
        if out.is_some() {
            assert!(polls > 3, "the workload should need several polls");
            break;
        }
    }
}

#[test]
fn cancelled_children_are_reported_to_observers_by_name_with_the_reason() {
    let rt = VirtualRuntime::new();
    let (observers, events) = crate::observe::recording();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let group = TaskGroup::builder(rt.clone())
                .observers(observers)
                .build::<(), &str>()
                .unwrap();
            let sleeper = rt.clone();
            group
                .spawn_named("slow", async move {
                    sleeper.sleep(ms(100)).await;
                    Ok(())
                })
                .unwrap();
            group.spawn_named("bad", async { Err("no") }).unwrap();
            let _ = group.join().await;
        }
    })
    .unwrap();
    let events = events.lock().unwrap();
    assert_eq!(
        *events,
        vec![crate::observe::Event::Cancelled {
            name: "slow".into(),
            reason: CancelReason::SiblingFailed { task: "bad".into() },
        }]
    );
}

/// Counts its polls; pending forever.
struct CountPolls(Counter);

impl Future for CountPolls {
    type Output = Result<(), &'static str>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.bump();
        Poll::Pending
    }
}

#[test]
fn a_pending_child_gets_one_last_poll_when_its_group_is_cancelled_and_is_then_dropped() {
    let rt = VirtualRuntime::new();
    let (polls, drops) = (Counter::default(), Counter::default());
    let err = rt
        .block_on({
            let (rt, polls, drops) = (rt.clone(), polls.clone(), drops.clone());
            async move {
                let group = TaskGroup::<_, (), &str>::new(rt.clone());
                group
                    .spawn(async move {
                        let _guard = Guard(drops);
                        CountPolls(polls).await
                    })
                    .unwrap();
                let sleeper = rt.clone();
                group
                    .spawn(async move {
                        sleeper.sleep(ms(5)).await;
                        Err("boom")
                    })
                    .unwrap();
                group.join().await.unwrap_err()
            }
        })
        .unwrap();
    // The first poll, then the last one when the cancel woke it.
    assert_eq!(polls.get(), 2);
    assert_eq!(drops.get(), 1);
    assert_eq!(err.cancelled, 1);
    assert_eq!(err.failures().count(), 1);
}

#[test]
fn a_child_not_yet_polled_when_its_group_fails_is_never_polled() {
    let rt = VirtualRuntime::new();
    let polls = Counter::default();
    let err = rt
        .block_on({
            let (rt, polls) = (rt.clone(), polls.clone());
            async move {
                let group = TaskGroup::<_, (), &str>::new(rt.clone());
                let handle = group.handle();
                group
                    .spawn(async move {
                        // Spawned now, polled only after this child failed.
                        handle.spawn(CountPolls(polls)).unwrap();
                        Err("boom")
                    })
                    .unwrap();
                group.join().await.unwrap_err()
            }
        })
        .unwrap();
    assert_eq!(polls.get(), 0);
    assert_eq!(err.cancelled, 1);
    assert_eq!(err.first.unwrap().index, 0);
}

#[test]
fn a_child_that_finishes_in_its_last_poll_reports_its_own_result_not_cancelled() {
    let rt = VirtualRuntime::new();
    let results = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::<_, u32, &str>::supervisor(rt.clone());
                for value in [1, 2] {
                    let rt = rt.clone();
                    group
                        .spawn(async move {
                            rt.sleep(ms(5)).await;
                            Ok(value)
                        })
                        .unwrap();
                }
                let (canceller, scope) = (rt.clone(), group.scope().clone());
                group
                    .spawn(async move {
                        canceller.sleep(ms(5)).await;
                        scope.cancel();
                        Ok(0)
                    })
                    .unwrap();
                group.join_all().await
            }
        })
        .unwrap();
    // All three woke at 5 ms, before the cancel, in whatever order they
    // run: the two that had not run yet get their last poll and finish.
    assert_eq!(results, vec![Ok(1), Ok(2), Ok(0)]);
}

#[test]
fn a_background_at_its_error_cap_sends_each_further_failure_to_the_sink_in_order() {
    let (rt, seen) = collecting(VirtualRuntime::new());
    let (report, dropped_before_shutdown) = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let root = Background::<_, u32>::new(rt.clone()).with_error_cap(3);
                for i in 0..10u32 {
                    let rt = rt.clone();
                    root.spawn(async move {
                        rt.sleep(ms(u64::from(i))).await;
                        Err(i)
                    })
                    .unwrap();
                }
                rt.sleep(ms(20)).await;
                let dropped = root.dropped_errors();
                // Lowering the cap sends the newest kept ones to the sink.
                let root = root.with_error_cap(2);
                (root.shutdown(&rt, ms(1)).await, dropped)
            }
        })
        .unwrap();
    assert_eq!(dropped_before_shutdown, 7);
    let kept: Vec<u32> = report
        .errors
        .into_iter()
        .filter_map(|f| f.error.into_failed())
        .collect();
    assert_eq!(kept, [0, 1]);
    assert_eq!(report.dropped_errors, 8);
    let sent: Vec<UnobservedKind> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.kind.clone())
        .collect();
    let expected: Vec<UnobservedKind> = (3..10)
        .chain([2])
        .map(|i| UnobservedKind::Failed(i.to_string()))
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn cancel_with_grace_reports_what_ended_within_the_grace_what_was_dropped_and_when() {
    let rt = VirtualRuntime::new();
    let (drops, report) = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let drops = Counter::default();
                let scope = crate::scope::CancelScope::new();
                let inner = scope.child();
                let mut tasks = Vec::new();
                for (cleanup, in_scope) in [(2, &scope), (4, &inner), (80, &inner)] {
                    let (watch, rt2, guard) = (scope.clone(), rt.clone(), Guard(drops.clone()));
                    tasks.push(
                        crate::runtime::SpawnExt::spawn(
                            &rt,
                            in_scope.clone().run_owned(async move {
                                let _guard = guard;
                                watch.cancelled().await;
                                rt2.sleep(ms(cleanup)).await;
                            }),
                        )
                        .unwrap(),
                    );
                }
                rt.sleep(ms(1)).await;
                let report = scope.cancel_with_grace(&rt, ms(10)).await;
                (drops, report)
            }
        })
        .unwrap();
    assert_eq!((report.finished, report.force_dropped), (2, 1));
    assert!(!report.is_clean());
    assert!(
        report.force_dropped_names.is_empty(),
        "scopes know no names"
    );
    assert_eq!(report.elapsed, ms(10));
    assert_eq!(drops.get(), 3, "every run is gone when the report comes");
    assert_eq!(rt.now(), Instant::ORIGIN + ms(11));
}

#[test]
fn a_child_handle_can_be_sent_to_another_task_and_aborts_from_there() {
    fn send_sync<V: Send + Sync + 'static>(_: &V) {}
    let rt = VirtualRuntime::new();
    let out = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let group = TaskGroup::<_, u32, String>::supervisor(rt.clone());
                let sleeper = rt.clone();
                let slow = group
                    .spawn(async move {
                        sleeper.sleep(ms(60_000)).await;
                        Ok(1)
                    })
                    .unwrap();
                send_sync(&slow);
                // A sibling aborts it, through the handle moved into it.
                group
                    .spawn(async move {
                        slow.abort();
                        Ok(2)
                    })
                    .unwrap();
                group.join_all().await
            }
        })
        .unwrap();
    assert!(matches!(
        &out[0],
        Err(ChildError::Cancelled(c)) if c.reason == CancelReason::Aborted
    ));
    assert_eq!(out[1], Ok(2));
    assert_eq!(rt.now(), crate::runtime::Instant::ORIGIN);
}

#[test]
fn a_childs_end_and_a_tasks_end_map_onto_one_error_the_same_way() {
    use crate::Error;
    use crate::runtime::{JoinError, Panicked};
    use crate::scope::Cancelled;
    let panicked = Panicked {
        message: "boom".into(),
    };
    let shutdown = Cancelled {
        reason: CancelReason::Shutdown,
    };
    let aborted = Cancelled {
        reason: CancelReason::Aborted,
    };
    // A child's end...
    let child = |e: ChildError<&'static str>| -> Error<&'static str> { Error::from(e) };
    assert_eq!(child(ChildError::Failed("x")).into_inner(), Some("x"));
    assert!(
        matches!(child(ChildError::Panicked(panicked.clone())), Error::Panicked(p) if p == panicked)
    );
    assert!(matches!(child(ChildError::Lost), Error::Cancelled(c) if c == shutdown));
    assert!(
        matches!(child(ChildError::Cancelled(aborted.clone())), Error::Cancelled(c) if c == aborted)
    );
    // ...and a spawned task's end, alike.
    let task = |e: JoinError| Error::<&str>::from(e);
    assert!(
        matches!(task(JoinError::Panicked(panicked.clone())), Error::Panicked(p) if p == panicked)
    );
    assert!(matches!(task(JoinError::Lost), Error::Cancelled(c) if c == shutdown));
    assert!(matches!(task(JoinError::Aborted), Error::Cancelled(c) if c == aborted));
    assert!(task(JoinError::AlreadyJoined).is_cancelled());
}

#[test]
fn a_failure_sent_to_the_sink_is_also_told_to_observers() {
    let (rt, sunk) = collecting(VirtualRuntime::new());
    let (observers, events) = crate::observe::recording();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let group = TaskGroup::builder(rt.clone())
                .supervisor()
                .observers(observers)
                .build::<(), &str>()
                .unwrap();
            group
                .spawn_named("unawaited", async { Err("lost?") })
                .unwrap();
            rt.sleep(ms(1)).await;
            drop(group);
        }
    })
    .unwrap();
    let sunk = sunk.lock().unwrap();
    assert_eq!(sunk.len(), 1, "{sunk:?}");
    let events = events.lock().unwrap();
    assert_eq!(
        *events,
        vec![crate::observe::Event::Unobserved(sunk[0].clone())]
    );
}

#[test]
fn an_enclosing_cancel_goes_on_outward_even_after_the_owner_cancelled_the_group() {
    let rt = VirtualRuntime::new();
    let (owner_only, both) = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let mut outcomes = Vec::new();
                for enclosing_too in [false, true] {
                    let request = crate::scope::CancelScope::new();
                    let group = TaskGroup::builder(rt.clone())
                        .in_scope(&request)
                        .build::<u32, String>()
                        .unwrap();
                    let sleeper = rt.clone();
                    group
                        .spawn(async move {
                            sleeper.sleep(ms(60_000)).await;
                            Ok(1)
                        })
                        .unwrap();
                    group.spawn(async { Ok(2) }).unwrap();
                    rt.sleep(ms(1)).await;
                    // The owner stops the group first ...
                    group.cancel();
                    // ... and then the request it runs in is cancelled too.
                    if enclosing_too {
                        request.cancel_with(CancelReason::Shutdown);
                    }
                    outcomes.push(group.join().await);
                }
                (outcomes.remove(0), outcomes.remove(0))
            }
        })
        .unwrap();
    // The owner's own cancel is caught at the group: no error.
    assert_eq!(owner_only, Ok(vec![2]));
    // The enclosing one is not: it is reported with its reason.
    let err = both.unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.cancelled, 1);
    assert_eq!(
        err.reason,
        Some(CancelReason::Parent(Arc::new(CancelReason::Shutdown)))
    );
}

#[test]
fn a_child_its_executor_dropped_before_it_ran_is_reported_when_the_group_is_dropped_unjoined() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = ErrorSink::new({
        let seen = seen.clone();
        move |e| seen.lock().unwrap().push(e)
    });
    let owner = VirtualRuntime::new();
    let group = TaskGroup::builder(owner.clone())
        .error_sink(sink)
        .build::<(), String>()
        .unwrap();
    group.spawn_named("never-ran", async { Ok(()) }).unwrap();
    // The executor goes away before the child's first poll: it is lost.
    drop(owner);
    assert!(seen.lock().unwrap().is_empty(), "nothing reported yet");
    // Nobody joins the group: the loss goes to the sink, as join would
    // have returned it (`ChildError::Lost`).
    drop(group);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].task.as_deref(), Some("never-ran"));
    assert_eq!(seen[0].kind, UnobservedKind::Lost);
}
