//! Conformance cases for `scope`: cancel tokens and scopes, deadlines,
//! shields and graceful cancellation, on every runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use staunch::runtime::SpawnExt;
use staunch::scope::{CancelReason, CancelScope, CancelToken, Cancelled};
use staunch::timeout::{Elapsed, timeout};

use crate::harness::{DropCounter, TestRuntime, eventually, ms};

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
    };
}
