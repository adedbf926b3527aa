//! Conformance cases for `scope`: cancel tokens and scopes, deadlines,
//! shields and graceful cancellation, on every runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use staunch::runtime::{Instant, SpawnExt};
use staunch::scope::{
    CancelReason, CancelScope, CancelToken, Cancelled, current_effective_deadline,
};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{DropCounter, TestRuntime, eventually, flag, ms, ran};

/// A scope that is never cancelled returns its future's output.
pub async fn scope_run_returns_the_output_when_not_cancelled<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new();
    let out = scope
        .run(async {
            rt.sleep(ms(1)).await;
            7
        })
        .await;
    assert_eq!(out, Ok(7), "on {}", R::NAME);
}

/// Cancelling a scope from another task drops the future running in it,
/// and the runner gets the reason.
pub async fn cancelling_a_scope_drops_its_future_promptly_with_the_reason<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new();
    let drops = DropCounter::new();
    let guard = drops.guard();
    let sleeper = rt.clone();
    let task = rt
        .spawn(scope.clone().run_owned(async move {
            let _guard = guard;
            sleeper.sleep(ms(60_000)).await;
            Ok::<_, String>(())
        }))
        .expect("spawn");
    rt.sleep(ms(2)).await;
    scope.cancel_with_message("stop");
    eventually(&rt, "the cancelled future is dropped", || {
        drops.dropped() == 1
    })
    .await;
    let out = task.await.expect("the task ends normally");
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Explicit {
            message: Some("stop".into())
        },
        "on {}",
        R::NAME
    );
}

/// Cancelling a parent cancels its children with reason `Parent`; cancelling
/// a child leaves its parent and siblings alone.
pub async fn a_child_scope_is_cancelled_with_its_parent_and_never_the_reverse<R: TestRuntime>(
    rt: R,
) {
    let parent = CancelScope::new();
    let child = parent.child();
    let sibling = parent.child();
    child.cancel();
    assert!(!parent.is_cancelled() && !sibling.is_cancelled());
    let waiter = {
        let sibling = sibling.clone();
        rt.spawn(async move { Ok::<Cancelled, String>(sibling.token().cancelled().await) })
            .expect("spawn")
    };
    rt.sleep(ms(1)).await;
    parent.cancel_with(CancelReason::Shutdown);
    let seen = waiter.await.expect("joined").expect("ok");
    assert_eq!(
        seen.reason,
        CancelReason::Parent(Arc::new(CancelReason::Shutdown)),
        "on {}",
        R::NAME
    );
}

/// A scope's deadline cancels the work with reason `Deadline`, never before it.
pub async fn a_scope_deadline_cancels_with_reason_deadline_no_sooner<R: TestRuntime>(rt: R) {
    let start = rt.now();
    let scope = CancelScope::new().with_timeout(&rt, ms(10));
    let out = scope.run(rt.sleep(ms(60_000))).await;
    let waited = rt.now() - start;
    assert!(
        matches!(out.unwrap_err().reason, CancelReason::Deadline { at } if at >= start + ms(10))
    );
    assert!(
        waited >= ms(10),
        "cancelled after only {waited:?} on {}",
        R::NAME
    );
    if R::VIRTUAL_TIME {
        assert_eq!(waited, ms(10));
    }
}

/// A deadline that has already passed cancels before the future is polled.
pub async fn a_deadline_already_past_cancels_before_the_first_poll<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new().with_deadline(&rt, rt.now());
    let polled = AtomicBool::new(false);
    let out = scope
        .run(async { polled.store(true, Ordering::SeqCst) })
        .await;
    assert!(out.is_err(), "on {}", R::NAME);
    assert!(!polled.load(Ordering::SeqCst), "polled on {}", R::NAME);
    assert!(scope.is_cancelled());
}

/// A child's effective deadline is its parent's when that is earlier.
pub async fn a_child_deadline_is_bounded_by_its_parents<R: TestRuntime>(rt: R) {
    let start = rt.now();
    let parent = CancelScope::new().with_timeout(&rt, ms(5));
    let child = parent.child().with_timeout(&rt, ms(60_000));
    assert_eq!(child.deadline(), parent.deadline());
    let out = child.run(rt.sleep(ms(60_000))).await;
    assert!(out.is_err());
    let waited = rt.now() - start;
    assert!(waited >= ms(5) && waited < ms(60_000), "on {}", R::NAME);
}

/// A shielded scope finishes its cleanup while the scope around it is cancelled.
pub async fn a_shielded_scope_finishes_its_cleanup_while_the_outer_scope_is_cancelled<
    R: TestRuntime,
>(
    rt: R,
) {
    let outer = CancelScope::new().with_timeout(&rt, ms(2));
    let cleanup = outer.shielded().with_timeout(&rt, ms(5_000));
    outer.cancel();
    let out = cleanup
        .run(async {
            rt.sleep(ms(10)).await;
            "flushed"
        })
        .await;
    assert_eq!(out, Ok("flushed"), "on {}", R::NAME);
}

/// A scope deadline and a `timeout` both apply: the earlier wins, and the
/// error says which one fired.
pub async fn a_scope_deadline_and_a_timeout_the_earlier_wins_and_says_which<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new().with_timeout(&rt, ms(5));
    let by_scope = timeout(&rt, ms(200), scope.run(rt.sleep(ms(60_000)))).await;
    assert!(
        matches!(&by_scope, Ok(Err(c)) if matches!(c.reason, CancelReason::Deadline { .. })),
        "{by_scope:?} on {}",
        R::NAME
    );
    let scope = CancelScope::new().with_timeout(&rt, ms(200));
    let by_timeout = timeout(&rt, ms(5), scope.run(rt.sleep(ms(60_000)))).await;
    assert_eq!(by_timeout.unwrap_err(), Elapsed { after: ms(5) });
}

/// `cancel_with_grace` lets cooperative work finish, drops the rest when the
/// grace period ends, and returns only once everything is gone.
pub async fn cancel_with_grace_waits_for_cleanup_and_drops_the_rest<R: TestRuntime>(rt: R) {
    let scope = CancelScope::new();
    let drops = DropCounter::new();
    let polite = rt
        .spawn(scope.clone().run_owned({
            let (scope, rt) = (scope.clone(), rt.clone());
            async move {
                scope.cancelled().await;
                rt.sleep(ms(3)).await;
                Ok::<_, String>("cleaned")
            }
        }))
        .expect("spawn");
    let stubborn = rt
        .spawn(scope.clone().run_owned({
            let (guard, rt) = (drops.guard(), rt.clone());
            async move {
                let _guard = guard;
                rt.sleep(ms(60_000)).await;
                Ok::<_, String>("never")
            }
        }))
        .expect("spawn");
    rt.sleep(ms(2)).await;
    let start = rt.now();
    scope.cancel_with_grace(&rt, ms(20)).await;
    let took = rt.now() - start;
    assert_eq!(
        drops.dropped(),
        1,
        "returned before the rest was dropped on {}",
        R::NAME
    );
    assert!(took >= ms(20), "on {}", R::NAME);
    assert_eq!(polite.await.expect("joined"), Ok(Ok("cleaned")));
    assert!(stubborn.await.expect("joined").is_err());
}

/// A token is shared by many tasks; cancelling it wakes every waiter once.
pub async fn cancelling_a_token_wakes_every_task_waiting_on_it<R: TestRuntime>(rt: R) {
    let token = CancelToken::new();
    let mut waiters = Vec::new();
    for _ in 0..8 {
        let child = token.child();
        waiters.push(
            rt.spawn(async move { Ok::<_, String>(child.cancelled().await) })
                .expect("spawn"),
        );
    }
    rt.sleep(ms(1)).await;
    token.cancel();
    token.cancel_with(CancelReason::Shutdown); // a second cancel changes nothing
    for w in waiters {
        let seen = w.await.expect("joined").expect("ok");
        assert_eq!(
            seen.reason.root(),
            &CancelReason::Explicit { message: None },
            "on {}",
            R::NAME
        );
    }
}

/// trio `test_cancel_scope_nesting`: with scopes 1 ⊃ 2 ⊃ 3 run inside each
/// other, code in scope 3 cancels 3 and then 2. Scope 2's run is the one that
/// returns `Err` (with its own reason); nothing in scope 2's body after scope
/// 3's run runs, scope 3's future is dropped, scope 1 is untouched.
pub async fn cancel_scope_nesting_the_outer_of_two_cancelled_scopes_wins<R: TestRuntime>(rt: R) {
    let scope1 = CancelScope::new();
    let scope2 = scope1.child();
    let scope3 = scope2.child();
    let drops = DropCounter::new();
    let (after3, after2) = (flag(), flag());
    let out1 = scope1
        .run(async {
            let out2 = scope2
                .run(async {
                    let guard = drops.guard();
                    let _ = scope3
                        .run(async {
                            let _guard = guard;
                            scope3.cancel_with_message("three");
                            scope2.cancel_with_message("two");
                            rt.sleep(ms(60_000)).await;
                        })
                        .await;
                    after3.store(true, Ordering::SeqCst);
                })
                .await;
            after2.store(true, Ordering::SeqCst);
            out2
        })
        .await;
    let out2 = out1.expect("scope 1 is not cancelled");
    assert_eq!(
        out2.unwrap_err().reason,
        CancelReason::Explicit {
            message: Some("two".into())
        },
        "scope 2 must catch it on {}",
        R::NAME
    );
    assert!(
        !ran(&after3),
        "scope 2's body ran on after scope 3 on {}",
        R::NAME
    );
    assert!(ran(&after2), "scope 1's body goes on on {}", R::NAME);
    assert_eq!(drops.dropped(), 1);
    assert!(!scope1.is_cancelled());

    // The same when scope 2's deadline passes while scope 3 (its child) runs.
    let start = rt.now();
    let scope2 = scope1.child().with_deadline(&rt, start + ms(5));
    let scope3 = scope2.child();
    let after3 = flag();
    let out2 = scope2
        .run(async {
            let _ = scope3.run(rt.sleep(ms(60_000))).await;
            after3.store(true, Ordering::SeqCst);
        })
        .await;
    let reason = out2.unwrap_err().reason;
    assert!(
        matches!(reason, CancelReason::Deadline { at } if at == start + ms(5)),
        "{reason:?} on {}",
        R::NAME
    );
    assert!(
        !ran(&after3),
        "scope 2's body ran on after its deadline on {}",
        R::NAME
    );
}

/// trio `test_basic_timeout`: `is_cancelled()` is true as soon as the clock
/// passes the scope's deadline, with nothing polling the scope; the same for
/// a deadline already past at creation, for a child, and for the token.
pub async fn basic_timeout_is_cancelled_sees_a_passed_deadline_with_nothing_polling<
    R: TestRuntime,
>(
    rt: R,
) {
    let now = CancelScope::new().with_deadline(&rt, rt.now());
    assert!(now.is_cancelled(), "a deadline of now on {}", R::NAME);
    assert!(matches!(now.reason(), Some(CancelReason::Deadline { .. })));

    let start = rt.now();
    let scope = CancelScope::new().with_deadline(&rt, start + ms(10));
    let child = scope.child();
    let token = scope.token().clone();
    assert!(!scope.is_cancelled() && !child.is_cancelled() && !token.is_cancelled());
    rt.sleep(ms(10)).await;
    assert!(token.is_cancelled(), "the token on {}", R::NAME);
    assert!(
        scope.is_cancelled() && child.is_cancelled(),
        "on {}",
        R::NAME
    );
    assert_eq!(
        scope.reason(),
        Some(CancelReason::Deadline { at: start + ms(10) })
    );
    assert_eq!(
        child.reason().unwrap().root(),
        &CancelReason::Deadline { at: start + ms(10) }
    );
}

/// trio's deadline is checked at every checkpoint: a `Run` whose deadline has
/// passed never polls its future again, even when the future's own timer
/// fires at the deadline's instant, before the scope's timer is seen.
pub async fn a_passed_deadline_is_enforced_at_the_next_poll_not_when_its_timer_fires<
    R: TestRuntime,
>(
    rt: R,
) {
    for _ in 0..3 {
        let deadline = rt.now() + ms(5);
        let scope = CancelScope::new().with_deadline(&rt, deadline);
        let (woke, polls) = (flag(), Arc::new(AtomicUsize::new(0)));
        let out = scope
            .run(async {
                rt.sleep_until(deadline).await;
                // The clock has reached the deadline: this must never run.
                woke.store(true, Ordering::SeqCst);
                loop {
                    polls.fetch_add(1, Ordering::SeqCst);
                    crate::harness::yield_now().await;
                }
            })
            .await;
        assert!(out.is_err());
        assert!(!ran(&woke), "the body ran past its deadline on {}", R::NAME);
        assert_eq!(polls.load(Ordering::SeqCst), 0);
        if R::VIRTUAL_TIME {
            assert_eq!(rt.now(), deadline);
        }
    }
}

/// trio `test_basic_timeout` (changing deadline) and
/// `test_current_effective_deadline`: a running scope's deadline moves
/// later and earlier, children see each move, the task can ask for its
/// effective deadline, and raising it after it fired changes nothing.
pub async fn basic_timeout_a_running_scopes_deadline_moves_later_and_earlier<R: TestRuntime>(
    rt: R,
) {
    let start = rt.now();
    let scope = CancelScope::new().with_deadline(&rt, start + ms(40));
    let child = scope.child();
    let seen = std::sync::Mutex::new(Vec::new());
    let body = scope.run(child.run(async {
        seen.lock().unwrap().push(current_effective_deadline());
        rt.sleep(ms(60_000)).await;
    }));
    let driver = async {
        rt.sleep(ms(1)).await;
        scope.set_deadline(&rt, start + ms(150));
        assert_eq!(child.deadline(), Some(start + ms(150)), "on {}", R::NAME);
        rt.sleep(ms(80)).await;
        assert!(
            !scope.is_cancelled(),
            "the old deadline fired on {}",
            R::NAME
        );
        let earlier = rt.now() + ms(10);
        scope.set_deadline(&rt, earlier);
        assert_eq!(child.deadline(), Some(earlier));
        earlier
    };
    let (out, earlier) = futures::join!(body, driver);
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Deadline { at: earlier },
        "on {}",
        R::NAME
    );
    assert!(rt.now() >= earlier);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), earlier);
    }
    assert_eq!(seen.lock().unwrap()[0], Some(start + ms(40)));
    // Raising the deadline cannot undo the cancellation.
    scope.set_deadline(&rt, Instant::NEVER);
    assert!(scope.is_cancelled() && child.is_cancelled());

    // test_current_effective_deadline: nested runs, a shield stops the walk.
    let t = rt.now();
    let scope1 = CancelScope::new().with_deadline(&rt, t + ms(5));
    let scope2 = CancelScope::new().with_deadline(&rt, t + ms(10));
    let shield = scope1.shielded().with_deadline(&rt, t + ms(10));
    let out = scope1
        .run(scope2.run(async {
            let mut seen = vec![current_effective_deadline()];
            scope2.set_deadline(&rt, t + ms(3));
            seen.push(current_effective_deadline());
            scope2.set_deadline(&rt, t + ms(10));
            seen.push(current_effective_deadline());
            seen.push(
                shield
                    .run(async { current_effective_deadline() })
                    .await
                    .unwrap(),
            );
            seen
        }))
        .await;
    let seen = out.unwrap().unwrap();
    assert_eq!(
        seen,
        vec![
            Some(t + ms(5)),
            Some(t + ms(3)),
            Some(t + ms(5)),
            Some(t + ms(10))
        ]
    );
    assert_eq!(current_effective_deadline(), None);
}

/// trio `test_very_deep_cancel_scope_nesting`, at 100 000 levels: building,
/// moving the deadline of, checking, cancelling and dropping a chain of
/// scopes never recurses per level (Node's stack on wasm32 is small).
pub async fn very_deep_cancel_scope_nesting_of_100_000_levels_never_overflows<R: TestRuntime>(
    rt: R,
) {
    const DEPTH: usize = 100_000;
    for leaf_first in [false, true] {
        let root = CancelScope::new();
        let mut chain = Vec::with_capacity(DEPTH);
        chain.push(root.child());
        for _ in 1..DEPTH {
            let next = chain.last().unwrap().child();
            chain.push(next);
        }
        let at = rt.now() + ms(60_000);
        root.set_deadline(&rt, at);
        assert_eq!(chain[DEPTH - 1].deadline(), Some(at), "on {}", R::NAME);
        assert!(!chain[DEPTH - 1].is_cancelled());
        root.cancel_with(CancelReason::Shutdown);
        assert!(
            chain.iter().all(CancelScope::is_cancelled),
            "on {}",
            R::NAME
        );
        assert_eq!(
            chain[DEPTH - 1].reason(),
            Some(CancelReason::Parent(Arc::new(CancelReason::Shutdown)))
        );
        if leaf_first {
            chain.reverse();
        }
        drop(chain);
    }
    // A passed deadline found from the leaf walks up 100 000 levels.
    let root = CancelScope::new().with_deadline(&rt, rt.now() + ms(1));
    let mut chain = vec![root.child()];
    for _ in 1..DEPTH {
        let next = chain.last().unwrap().child();
        chain.push(next);
    }
    rt.sleep(ms(2)).await;
    assert!(chain[DEPTH - 1].is_cancelled(), "on {}", R::NAME);
    assert!(root.is_cancelled(), "the deadline's owner is the root");
    drop(root);
    drop(chain);
}

/// Deeply nested runs (each in a child scope of the one around it) cancel
/// from the outside in one poll: the outermost run returns `Err`, every
/// inner future is dropped, and no frame in between runs on.
pub async fn deeply_nested_runs_are_cancelled_by_the_outermost_run<R: TestRuntime>(rt: R) {
    // Polling nested futures recurses in Rust itself, so the depth here is
    // what a debug build fits in Node's stack; staunch's own walks are loops.
    const DEPTH: usize = 200;
    fn nest<R: TestRuntime>(
        rt: R,
        scope: CancelScope,
        depth: usize,
        drops: DropCounter,
        after: Arc<AtomicUsize>,
    ) -> futures::future::LocalBoxFuture<'static, ()> {
        Box::pin(async move {
            let _guard = drops.guard();
            if depth == 0 {
                rt.sleep(ms(60_000)).await;
                return;
            }
            let child = scope.child();
            let _ = child
                .run(nest(rt, child.clone(), depth - 1, drops, after.clone()))
                .await;
            after.fetch_add(1, Ordering::SeqCst);
        })
    }
    let root = CancelScope::new();
    let drops = DropCounter::new();
    let after = Arc::new(AtomicUsize::new(0));
    let run = root.run(nest(
        rt.clone(),
        root.clone(),
        DEPTH,
        drops.clone(),
        after.clone(),
    ));
    let stop = async {
        rt.sleep(ms(1)).await;
        root.cancel_with(CancelReason::Shutdown);
    };
    let (out, ()) = futures::join!(run, stop);
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Shutdown,
        "on {}",
        R::NAME
    );
    assert_eq!(drops.dropped(), DEPTH + 1);
    assert_eq!(after.load(Ordering::SeqCst), 0, "a cancelled body ran on");
}

/// trio `test_cancel_shielding` / asyncio `shield`: a shielded run inside a
/// cancelled run finishes its cleanup; the outer run then drops its future
/// (nothing after the cleanup's next await runs) and returns the outer
/// reason. The shield stays bounded by its own deadline.
pub async fn cancel_shielding_a_shield_inside_a_cancelled_run_finishes_its_cleanup<
    R: TestRuntime,
>(
    rt: R,
) {
    let start = rt.now();
    let parent = CancelScope::new().with_deadline(&rt, start + ms(40));
    let (cleaned, after) = (flag(), flag());
    let out = parent
        .run(async {
            rt.sleep(ms(5)).await;
            let cleanup = parent.shielded().with_timeout(&rt, ms(60_000));
            let done = cleanup
                .run(async {
                    rt.sleep(ms(60)).await;
                    cleaned.store(true, Ordering::SeqCst);
                })
                .await;
            assert!(done.is_ok());
            rt.sleep(ms(1)).await;
            after.store(true, Ordering::SeqCst);
        })
        .await;
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Deadline { at: start + ms(40) },
        "on {}",
        R::NAME
    );
    assert!(ran(&cleaned), "the cleanup was cut short on {}", R::NAME);
    assert!(
        !ran(&after),
        "the body went on after its cleanup on {}",
        R::NAME
    );
    let took = rt.now() - start;
    assert!(took >= ms(65), "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(65));
    }

    // Bounded by its own deadline: cleanup allowed until 30 ms, 60 s wanted,
    // the parent's deadline passing at 5 ms, inside it.
    let start = rt.now();
    let parent = CancelScope::new().with_deadline(&rt, start + ms(5));
    let drops = DropCounter::new();
    let out = parent
        .run(async {
            let guard = drops.guard();
            let cleanup = parent.shielded().with_deadline(&rt, start + ms(30));
            let done = cleanup
                .run(async {
                    let _guard = guard;
                    rt.sleep(ms(60_000)).await;
                })
                .await;
            assert!(matches!(
                done.unwrap_err().reason,
                CancelReason::Deadline { .. }
            ));
            rt.sleep(ms(1)).await;
        })
        .await;
    let reason = out.unwrap_err().reason;
    assert_eq!(
        reason,
        CancelReason::Deadline { at: start + ms(5) },
        "on {}",
        R::NAME
    );
    assert_eq!(drops.dropped(), 1);
    let took = rt.now() - start;
    assert!(took >= ms(30) && took < ms(60_000), "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(30));
    }
}

/// The same for a task group's child and for `cancel_with_grace`: a child in
/// a shielded region finishes it after the group (or the scope around it)
/// is cancelled, and the cancel returns only after that.
pub async fn cancel_shield_abort_a_group_child_finishes_its_shielded_cleanup<R: TestRuntime>(
    rt: R,
) {
    let scope = CancelScope::new();
    let cleaned = flag();
    let entered = flag();
    let child = rt
        .spawn(scope.clone().run_owned({
            let (scope, rt, cleaned) = (scope.clone(), rt.clone(), cleaned.clone());
            let entered = entered.clone();
            async move {
                let _ = scope
                    .shielded()
                    .run(async {
                        entered.store(true, Ordering::SeqCst);
                        rt.sleep(ms(10)).await;
                        cleaned.store(true, Ordering::SeqCst);
                    })
                    .await;
                rt.sleep(ms(60_000)).await;
                Ok::<_, String>(())
            }
        }))
        .expect("spawn");
    rt.sleep(ms(1)).await;
    // On a loaded machine the task may not have started yet: cancel only
    // once it is inside its shield (at once under virtual time).
    eventually(&rt, "the task entered its shield", || ran(&entered)).await;
    let start = rt.now();
    scope.cancel_with_grace(&rt, ms(0)).await;
    assert!(
        ran(&cleaned),
        "cancel_with_grace returned before the shield ended on {}",
        R::NAME
    );
    if R::VIRTUAL_TIME {
        // The shield began at 0 and sleeps 10 ms; the cancel began at 1 ms.
        assert_eq!(rt.now() - start, ms(9));
    }
    assert!(child.await.expect("joined").is_err());

    let group = staunch::group::TaskGroup::<_, (), String>::new(rt.clone());
    let cleaned = flag();
    let entered = flag();
    group
        .spawn({
            let (scope, rt, cleaned) = (group.scope().clone(), rt.clone(), cleaned.clone());
            let entered = entered.clone();
            async move {
                let _ = scope
                    .shielded()
                    .run(async {
                        entered.store(true, Ordering::SeqCst);
                        rt.sleep(ms(10)).await;
                        cleaned.store(true, Ordering::SeqCst);
                    })
                    .await;
                rt.sleep(ms(60_000)).await;
                Ok(())
            }
        })
        .expect("spawn");
    eventually(&rt, "the child entered its shield", || ran(&entered)).await;
    group.cancel();
    let _ = group.join().await;
    assert!(
        ran(&cleaned),
        "the group child's cleanup was cut short on {}",
        R::NAME
    );
}

/// A scope's deadline passing around a task group drops the group unjoined;
/// the scope's `run` returns its `Err` only once every child of that group
/// is gone (trio: a nursery cannot be left while its children run), and a
/// graceful cancel counts the run until then.
pub async fn a_cancelled_scope_around_a_task_group_returns_once_the_groups_children_are_gone<
    R: TestRuntime,
>(
    rt: R,
) {
    let drops = DropCounter::new();
    let scope = CancelScope::new().with_timeout(&rt, ms(5));
    let out = scope
        .run(async {
            let group = staunch::group::TaskGroup::<_, (), String>::new(rt.clone());
            for _ in 0..4 {
                group.spawn(drops.sleeper(&rt)).expect("spawn");
            }
            group.join().await
        })
        .await;
    assert!(
        matches!(
            out,
            Err(Cancelled {
                reason: CancelReason::Deadline { .. }
            })
        ),
        "on {}",
        R::NAME
    );
    assert_eq!(
        drops.dropped(),
        4,
        "a child of the dropped group outlived the scope's run on {}",
        R::NAME
    );

    // The same through a graceful cancel: it returns once the children
    // are gone, and the run holding the group counts as force-dropped.
    let drops = DropCounter::new();
    let scope = CancelScope::new();
    let entered = flag();
    let holder = rt
        .spawn(scope.clone().run_owned({
            let (rt, drops, entered) = (rt.clone(), drops.clone(), entered.clone());
            async move {
                let group = staunch::group::TaskGroup::<_, (), String>::new(rt.clone());
                for _ in 0..4 {
                    group.spawn(drops.sleeper(&rt)).expect("spawn");
                }
                entered.store(true, Ordering::SeqCst);
                group.join().await.map_err(|e| e.to_string())
            }
        }))
        .expect("spawn");
    eventually(&rt, "the group started", || ran(&entered)).await;
    let report = scope.cancel_with_grace(&rt, ms(2)).await;
    assert_eq!(
        (report.finished, report.force_dropped),
        (0, 1),
        "on {}",
        R::NAME
    );
    assert_eq!(
        drops.dropped(),
        4,
        "the graceful cancel returned before the group's children were gone on {}",
        R::NAME
    );
    assert!(holder.await.expect("joined").is_err());
}

/// Runs nested in runs: when the outer scope is cancelled, the inner run
/// holding a task group is dropped with the outer run's future; the outer
/// run still returns only once that group's children are gone.
pub async fn a_run_dropped_inside_a_cancelled_run_hands_its_groups_children_to_the_outer_run<
    R: TestRuntime,
>(
    rt: R,
) {
    let drops = DropCounter::new();
    let outer = CancelScope::new().with_timeout(&rt, ms(5));
    let inner = outer.child();
    let out = outer
        .run(inner.run(async {
            let group = staunch::group::TaskGroup::<_, (), String>::new(rt.clone());
            for _ in 0..3 {
                group.spawn(drops.sleeper(&rt)).expect("spawn");
            }
            group.join().await
        }))
        .await;
    let err = out.expect_err("the outer deadline passed");
    assert!(
        matches!(err.reason, CancelReason::Deadline { .. }),
        "on {}",
        R::NAME
    );
    assert_eq!(
        drops.dropped(),
        3,
        "a child of the group outlived the outer run on {}",
        R::NAME
    );
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! scope_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? scope::scope_run_returns_the_output_when_not_cancelled);
        $m!($($($extra)*;)? scope::cancelling_a_scope_drops_its_future_promptly_with_the_reason);
        $m!($($($extra)*;)? scope::a_child_scope_is_cancelled_with_its_parent_and_never_the_reverse);
        $m!($($($extra)*;)? scope::a_scope_deadline_cancels_with_reason_deadline_no_sooner);
        $m!($($($extra)*;)? scope::a_deadline_already_past_cancels_before_the_first_poll);
        $m!($($($extra)*;)? scope::a_child_deadline_is_bounded_by_its_parents);
        $m!($($($extra)*;)? scope::a_shielded_scope_finishes_its_cleanup_while_the_outer_scope_is_cancelled);
        $m!($($($extra)*;)? scope::a_scope_deadline_and_a_timeout_the_earlier_wins_and_says_which);
        $m!($($($extra)*;)? scope::cancel_with_grace_waits_for_cleanup_and_drops_the_rest);
        $m!($($($extra)*;)? scope::cancelling_a_token_wakes_every_task_waiting_on_it);
        $m!($($($extra)*;)? scope::cancel_scope_nesting_the_outer_of_two_cancelled_scopes_wins);
        $m!($($($extra)*;)? scope::basic_timeout_is_cancelled_sees_a_passed_deadline_with_nothing_polling);
        $m!($($($extra)*;)? scope::a_passed_deadline_is_enforced_at_the_next_poll_not_when_its_timer_fires);
        $m!($($($extra)*;)? scope::basic_timeout_a_running_scopes_deadline_moves_later_and_earlier);
        $m!($($($extra)*;)? scope::very_deep_cancel_scope_nesting_of_100_000_levels_never_overflows);
        $m!($($($extra)*;)? scope::deeply_nested_runs_are_cancelled_by_the_outermost_run);
        $m!($($($extra)*;)? scope::cancel_shielding_a_shield_inside_a_cancelled_run_finishes_its_cleanup);
        $m!($($($extra)*;)? scope::cancel_shield_abort_a_group_child_finishes_its_shielded_cleanup);
        $m!($($($extra)*;)? scope::a_cancelled_scope_around_a_task_group_returns_once_the_groups_children_are_gone);
        $m!($($($extra)*;)? scope::a_run_dropped_inside_a_cancelled_run_hands_its_groups_children_to_the_outer_run);
    };
}
