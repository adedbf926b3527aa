use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;

use super::*;
use crate::runtime::{Instant, SpawnExt, Timer};
use crate::testing::VirtualRuntime;
use crate::timeout::{Elapsed, timeout};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct OnDrop(Arc<AtomicUsize>);
impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn cancelling_a_parent_cancels_descendants_but_never_ancestors_or_siblings() {
    let root = CancelToken::new();
    let a = root.child();
    let b = root.child();
    let a1 = a.child();
    a.cancel_with_message("a only");
    assert!(a.is_cancelled() && a1.is_cancelled());
    assert!(!root.is_cancelled() && !b.is_cancelled());
    root.cancel_with(CancelReason::Shutdown);
    assert_eq!(b.reason().unwrap().root(), &CancelReason::Shutdown);
    assert_eq!(
        a1.reason().unwrap().root(),
        &CancelReason::Explicit {
            message: Some("a only".into())
        }
    );
}

#[test]
fn a_child_of_a_cancelled_token_is_born_cancelled_with_the_parent_reason() {
    let root = CancelToken::new();
    root.cancel_with(CancelReason::Shutdown);
    let child = root.child();
    assert!(child.is_cancelled());
    assert_eq!(
        child.reason(),
        Some(CancelReason::Parent(Arc::new(CancelReason::Shutdown)))
    );
}

#[test]
fn dropped_children_are_unlinked_so_a_long_lived_parent_does_not_grow() {
    let root = CancelToken::new();
    for _ in 0..1000 {
        let child = root.child();
        let grandchild = child.child();
        drop(child);
        drop(grandchild);
    }
    assert_eq!(root.node.child_count(), 0);
    let kept = root.child();
    let grand = kept.child();
    drop(kept);
    // The grandchild was handed to the root and still hears it.
    assert_eq!(root.node.child_count(), 1);
    root.cancel();
    assert!(grand.is_cancelled());
}

#[test]
fn cancelling_a_deep_chain_of_ten_thousand_scopes_neither_overflows_nor_misses_one() {
    let root = CancelScope::new();
    let mut chain = vec![root.child()];
    for _ in 0..10_000 {
        let next = chain.last().unwrap().child();
        chain.push(next);
    }
    root.cancel();
    assert!(chain.iter().all(CancelScope::is_cancelled));
    drop(chain); // dropping a long cancelled chain must not overflow either
}

#[test]
fn cancelling_twice_keeps_the_first_reason_and_does_not_block() {
    let token = CancelToken::new();
    token.cancel_with_message("first");
    token.cancel_with(CancelReason::Shutdown);
    assert_eq!(token.reason().unwrap().to_string(), "cancelled: first");
}

#[test]
fn a_scope_cancelled_before_the_first_poll_never_polls_the_future() {
    let scope = CancelScope::new();
    scope.cancel();
    let polled = AtomicBool::new(false);
    let out = futures::executor::block_on(scope.run(async {
        polled.store(true, Ordering::SeqCst);
    }));
    assert!(out.is_err());
    assert!(!polled.load(Ordering::SeqCst));
}

#[test]
fn cancel_drops_the_inner_future_promptly_with_the_reason() {
    let rt = VirtualRuntime::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let out = rt.block_on({
        let (rt, drops) = (rt.clone(), drops.clone());
        async move {
            let scope = CancelScope::new();
            let guard = OnDrop(drops.clone());
            let sleeper = rt.clone();
            let run = scope.run(async move {
                let _guard = guard;
                sleeper.sleep(Duration::from_secs(3600)).await;
            });
            let stop = async {
                rt.sleep(ms(5)).await;
                scope.cancel_with(CancelReason::Shutdown);
                let at = rt.now();
                // Dropped inside the poll that noticed: by the time we look again.
                rt.sleep(ms(1)).await;
                (drops.load(Ordering::SeqCst), at)
            };
            let (res, (seen, at)) = futures::join!(run, stop);
            (res, seen, at)
        }
    });
    let (res, seen, now) = out.unwrap();
    assert_eq!(res.unwrap_err().reason, CancelReason::Shutdown);
    assert_eq!(seen, 1);
    assert_eq!(now, Instant::ORIGIN + ms(5));
}

#[test]
fn a_deadline_already_past_cancels_before_the_first_poll() {
    let rt = VirtualRuntime::new();
    rt.advance(ms(10));
    let scope = CancelScope::new().with_deadline(&rt, Instant::ORIGIN + ms(5));
    let polled = AtomicBool::new(false);
    let out = rt
        .block_on(scope.run(async { polled.store(true, Ordering::SeqCst) }))
        .unwrap();
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Deadline {
            at: Instant::ORIGIN + ms(5)
        }
    );
    assert!(!polled.load(Ordering::SeqCst));
    assert!(scope.is_cancelled());
}

#[test]
fn a_childs_effective_deadline_is_the_earliest_of_its_ancestors() {
    let rt = VirtualRuntime::new();
    let outer = CancelScope::new().with_timeout(&rt, ms(10));
    let inner = outer.child().with_timeout(&rt, ms(50));
    assert_eq!(inner.deadline(), Some(Instant::ORIGIN + ms(10)));
    let tighter = outer.child().with_timeout(&rt, ms(3));
    assert_eq!(tighter.deadline(), Some(Instant::ORIGIN + ms(3)));
    let out = rt.block_on(inner.run(rt.sleep(ms(100)))).unwrap();
    assert!(
        out.unwrap_err().reason.root()
            == &CancelReason::Deadline {
                at: Instant::ORIGIN + ms(10)
            }
    );
    assert_eq!(rt.now(), Instant::ORIGIN + ms(10));
}

#[test]
fn a_shielded_scope_ignores_outer_cancellation_and_outer_deadlines() {
    let rt = VirtualRuntime::new();
    let out = rt.block_on({
        let rt = rt.clone();
        async move {
            let outer = CancelScope::new().with_timeout(&rt, ms(5));
            let cleanup = outer.shielded().with_timeout(&rt, ms(30));
            outer.cancel();
            let done = cleanup
                .run(async {
                    rt.sleep(ms(20)).await;
                    "cleaned"
                })
                .await;
            (done, rt.now())
        }
    });
    let (done, now) = out.unwrap();
    assert_eq!(done, Ok("cleaned"));
    assert_eq!(now, Instant::ORIGIN + ms(20));
}

#[test]
fn a_scope_deadline_and_a_timeout_both_apply_and_the_earlier_one_says_so() {
    let rt = VirtualRuntime::new();
    let out = rt.block_on({
        let rt = rt.clone();
        async move {
            let scope = CancelScope::new().with_timeout(&rt, ms(10));
            let by_scope = timeout(&rt, ms(20), scope.run(rt.sleep(ms(100)))).await;
            let scope = CancelScope::new().with_timeout(&rt, ms(20));
            let by_timeout = timeout(&rt, ms(10), scope.run(rt.sleep(ms(100)))).await;
            (by_scope, by_timeout)
        }
    });
    let (by_scope, by_timeout) = out.unwrap();
    let cancelled = by_scope.unwrap().unwrap_err();
    assert!(matches!(cancelled.reason, CancelReason::Deadline { .. }));
    assert_eq!(by_timeout.unwrap_err(), Elapsed { after: ms(10) });
}

#[test]
fn scope_cancelled_completes_at_the_deadline_and_cancels_the_scope() {
    let rt = VirtualRuntime::new();
    let scope = CancelScope::new().with_timeout(&rt, ms(7));
    let c = rt.block_on(scope.cancelled()).unwrap();
    assert!(matches!(c.reason, CancelReason::Deadline { .. }));
    assert!(scope.is_cancelled());
    assert_eq!(rt.now(), Instant::ORIGIN + ms(7));
}

#[test]
fn a_catch_all_handler_cannot_turn_cancellation_into_success() {
    let rt = VirtualRuntime::new();
    let out = rt.block_on({
        let rt = rt.clone();
        async move {
            let scope = CancelScope::new();
            let stopper = scope.clone();
            let work = scope.run(async {
                // "except Exception: return default" has nothing to catch:
                // the future is dropped, not resumed with an error.
                let r: Result<(), String> = async {
                    rt.sleep(ms(50)).await;
                    Err("failed".to_owned())
                }
                .await;
                match r {
                    Ok(()) | Err(_) => Ok::<_, String>("recovered"),
                }
            });
            let stop = async {
                rt.sleep(ms(1)).await;
                stopper.cancel();
            };
            futures::join!(work, stop).0
        }
    });
    assert!(out.unwrap().is_err());
}

#[test]
fn graceful_cancel_lets_cooperative_work_finish_and_drops_the_rest_at_the_grace_limit() {
    let rt = VirtualRuntime::new();
    let drops = Arc::new(AtomicUsize::new(0));
    let out = rt.block_on({
        let (rt, drops) = (rt.clone(), drops.clone());
        async move {
            let scope = CancelScope::new();
            let polite = rt
                .spawn(scope.child().run_owned({
                    let (scope, rt) = (scope.clone(), rt.clone());
                    async move {
                        scope.cancelled().await;
                        rt.sleep(ms(5)).await;
                        Ok::<_, String>("flushed")
                    }
                }))
                .unwrap();
            let stubborn = rt
                .spawn(scope.clone().run_owned({
                    let (guard, rt) = (OnDrop(drops.clone()), rt.clone());
                    async move {
                        let _guard = guard;
                        rt.sleep(Duration::from_secs(3600)).await;
                        Ok::<_, String>("never")
                    }
                }))
                .unwrap();
            rt.sleep(ms(1)).await;
            let started = rt.now();
            scope.cancel_with_grace(&rt, ms(20)).await;
            let took = rt.now() - started;
            // Everything is gone when cancel_with_grace returns.
            let gone = drops.load(Ordering::SeqCst);
            (polite.await, stubborn.await, took, gone)
        }
    });
    let (polite, stubborn, took, gone) = out.unwrap();
    assert_eq!(polite.unwrap(), Ok(Ok("flushed")));
    assert!(
        stubborn.unwrap().unwrap_err().reason.root() == &CancelReason::Explicit { message: None }
    );
    assert_eq!(took, ms(20));
    assert_eq!(gone, 1);
}

#[test]
fn graceful_cancel_returns_as_soon_as_everything_finished_within_the_grace() {
    let rt = VirtualRuntime::new();
    let took = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let scope = CancelScope::new();
                let worker = rt
                    .spawn(scope.clone().run_owned({
                        let (scope, rt) = (scope.clone(), rt.clone());
                        async move {
                            scope.cancelled().await;
                            rt.sleep(ms(3)).await;
                            Ok::<_, String>(())
                        }
                    }))
                    .unwrap();
                rt.sleep(ms(1)).await;
                let start = rt.now();
                scope.cancel_with_grace(&rt, ms(100)).await;
                assert!(worker.is_finished() || rt.now() >= start);
                rt.now() - start
            }
        })
        .unwrap();
    assert_eq!(took, ms(3));
}

#[test]
fn a_panic_inside_run_propagates_and_leaves_the_scope_idle() {
    let scope = CancelScope::new();
    let caught = futures::executor::block_on(
        std::panic::AssertUnwindSafe(scope.run(async {
            if std::hint::black_box(true) {
                panic!("inside");
            }
        }))
        .catch_unwind(),
    );
    assert!(caught.is_err());
    scope.cancel();
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(scope.token.node.poll_idle(&mut cx).is_ready());
}

#[test]
fn a_cancelled_tree_lets_go_of_its_children_so_nothing_is_kept_alive() {
    let root = CancelToken::new();
    let kids: Vec<CancelToken> = (0..10).map(|_| root.child()).collect();
    let grandkids: Vec<CancelToken> = kids.iter().map(CancelToken::child).collect();
    root.cancel();
    assert_eq!(root.node.child_count(), 0);
    assert!(grandkids.iter().all(CancelToken::is_cancelled));
    let weak_count = crate::sync::Arc::strong_count(&root.node);
    drop(kids);
    drop(grandkids);
    assert_eq!(
        weak_count, 1,
        "children keep no reference to a cancelled parent"
    );
}

/// Polls `inner`; after `polls` polls, cancels `scope` and keeps polling.
struct CancelScopeAfter<F> {
    inner: std::pin::Pin<Box<F>>,
    scope: CancelScope,
    polls: usize,
}

impl<F: std::future::Future> std::future::Future for CancelScopeAfter<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        if self.polls == 0 {
            self.scope.cancel();
        } else {
            self.polls -= 1;
        }
        self.inner.as_mut().poll(cx)
    }
}

#[test]
fn cancelling_a_scope_at_every_poll_point_leaves_no_task_running_and_balanced_drops() {
    for polls in 0.. {
        let rt = VirtualRuntime::new();
        let created = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let scope = CancelScope::new();
        let workload = {
            let (rt, scope, created, dropped) =
                (rt.clone(), scope.clone(), created.clone(), dropped.clone());
            async move {
                let mut handles = Vec::new();
                for i in 0..3u64 {
                    created.fetch_add(1, Ordering::SeqCst);
                    let (guard, sleeper) = (OnDrop(dropped.clone()), rt.clone());
                    let child = scope.child().with_timeout(&rt, ms(20 + i));
                    handles.push(
                        rt.spawn(child.run_owned(async move {
                            let _guard = guard;
                            for _ in 0..=i {
                                sleeper.sleep(ms(i + 1)).await;
                            }
                            Ok::<_, String>(i)
                        }))
                        .unwrap(),
                    );
                    scope.run(rt.sleep(ms(1))).await?;
                }
                let mut sum = 0;
                for h in handles {
                    sum += scope.run(h).await?.unwrap()?.unwrap();
                }
                Ok::<u64, Cancelled>(sum)
            }
        };
        let out = rt
            .block_on(CancelScopeAfter {
                inner: Box::pin(workload),
                scope: scope.clone(),
                polls,
            })
            .unwrap();
        rt.block_on(rt.sleep(Duration::from_secs(1))).unwrap();
        assert_eq!(
            rt.task_count(),
            0,
            "a task outlived its scope at poll {polls}"
        );
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            created.load(Ordering::SeqCst),
            "unbalanced drops at poll {polls}"
        );
        match out {
            Ok(sum) => {
                assert_eq!(sum, 3);
                assert!(polls > 3);
                break;
            }
            Err(c) => assert_eq!(c.reason, CancelReason::Explicit { message: None }),
        }
    }
}

/// A timer that counts how often its clock is read.
#[derive(Clone)]
struct CountingClock {
    rt: VirtualRuntime,
    reads: Arc<AtomicUsize>,
}

impl Timer for CountingClock {
    type Sleep = <VirtualRuntime as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.rt.now()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.rt.sleep(duration)
    }
}

/// A future that wakes itself `n` times before finishing.
fn busy(n: usize) -> impl std::future::Future<Output = ()> {
    let mut left = n;
    std::future::poll_fn(move |cx| {
        if left == 0 {
            return std::task::Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
}

#[test]
fn the_clock_is_read_at_every_poll_of_a_timed_scope_and_never_of_an_untimed_one() {
    let rt = VirtualRuntime::new();
    let reads = Arc::new(AtomicUsize::new(0));
    let clock = CountingClock {
        rt: rt.clone(),
        reads: reads.clone(),
    };
    // A scope that has the clock (a shield of a timed scope) but no deadline.
    let timed = CancelScope::new().with_timeout(&clock, Duration::from_secs(60));
    let untimed = timed.shielded();
    let before = reads.load(Ordering::SeqCst);
    rt.block_on(untimed.run(busy(100))).unwrap().unwrap();
    assert!(!untimed.is_cancelled());
    assert_eq!(
        reads.load(Ordering::SeqCst),
        before,
        "an untimed scope read the clock"
    );
    rt.block_on(timed.run(busy(100))).unwrap().unwrap();
    assert!(
        reads.load(Ordering::SeqCst) - before >= 100,
        "one read per poll at least"
    );
}

#[test]
fn raising_a_deadline_after_it_fired_does_not_undo_the_cancellation() {
    let rt = VirtualRuntime::new();
    let scope = CancelScope::new().with_timeout(&rt, ms(5));
    let out = rt.block_on(scope.run(rt.sleep(ms(50)))).unwrap();
    assert!(out.is_err());
    scope.set_deadline(&rt, Instant::NEVER);
    assert!(scope.is_cancelled());
    assert_eq!(scope.deadline(), None);
    let again = rt.block_on(scope.run(async { 1 })).unwrap();
    assert!(again.is_err(), "a cancelled scope stays cancelled");
}

#[test]
fn a_dropped_middle_scopes_deadline_still_bounds_its_descendants_after_the_root_moves() {
    let rt = VirtualRuntime::new();
    let root = CancelScope::new().with_timeout(&rt, ms(100));
    let middle = root.child().with_timeout(&rt, ms(10));
    let leaf = middle.child();
    drop(middle);
    root.set_deadline(&rt, Instant::ORIGIN + ms(500));
    assert_eq!(leaf.deadline(), Some(Instant::ORIGIN + ms(10)));
    root.set_deadline(&rt, Instant::ORIGIN + ms(3));
    assert_eq!(leaf.deadline(), Some(Instant::ORIGIN + ms(3)));
    drop(root);
    assert_eq!(leaf.deadline(), Some(Instant::ORIGIN + ms(3)));
}

#[test]
fn reasons_stay_one_parent_deep_however_deep_the_scopes_nest() {
    let root = CancelToken::new();
    let mut chain = vec![root.child()];
    for _ in 0..100 {
        let next = chain.last().unwrap().child();
        chain.push(next);
    }
    root.cancel_with(CancelReason::Shutdown);
    let born_late = chain.last().unwrap().child();
    for token in chain.iter().chain([&born_late]) {
        assert_eq!(
            token.reason(),
            Some(CancelReason::Parent(Arc::new(CancelReason::Shutdown)))
        );
    }
}

#[test]
fn beside_a_shield_in_a_cancelled_run_runs_of_cancelled_scopes_stay_dropped_and_plain_futures_go_on()
 {
    let rt = VirtualRuntime::new();
    let out = rt.block_on({
        let rt = rt.clone();
        async move {
            let parent = CancelScope::new().with_timeout(&rt, ms(10));
            let child = parent.child();
            let drops = Arc::new(AtomicUsize::new(0));
            let plain_ticks = Arc::new(AtomicUsize::new(0));
            let started = rt.now();
            let out = parent
                .run(async {
                    let guard = OnDrop(drops.clone());
                    let in_child = child.run(async {
                        let _guard = guard;
                        rt.sleep(Duration::from_secs(60)).await;
                    });
                    let shielded = parent.shielded().run(rt.sleep(ms(30)));
                    let plain = async {
                        loop {
                            rt.sleep(ms(1)).await;
                            plain_ticks.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    let stopped_at = async {
                        child.cancelled().await;
                        rt.now()
                    };
                    futures::join!(in_child, shielded, plain, stopped_at).3
                })
                .await;
            let ticks = plain_ticks.load(Ordering::SeqCst);
            (out, drops.load(Ordering::SeqCst), ticks, rt.now() - started)
        }
    });
    let (out, drops, ticks, took) = out.unwrap();
    assert!(out.is_err());
    assert_eq!(drops, 1, "the child scope's future was dropped");
    assert_eq!(took, ms(30), "the run waited for its shield");
    assert!(ticks >= 25, "plain futures kept running: {ticks} ticks");
}

#[test]
fn a_cancelled_run_that_is_not_inside_a_cancelled_run_returns_its_error() {
    // Scope parentage is not nesting: a child scope's run in its own task
    // reports its cancellation; only a dynamically enclosing run defers it.
    let rt = VirtualRuntime::new();
    let out = rt.block_on({
        let rt = rt.clone();
        async move {
            let parent = CancelScope::new();
            let task = rt
                .spawn(parent.child().run_owned({
                    let rt = rt.clone();
                    async move {
                        rt.sleep(Duration::from_secs(60)).await;
                        Ok::<_, String>(())
                    }
                }))
                .unwrap();
            rt.sleep(ms(1)).await;
            parent.cancel();
            task.await
        }
    });
    assert!(out.unwrap().unwrap().is_err());
}

#[test]
fn a_shield_stuck_inside_a_cancelled_run_is_cut_at_its_own_deadline_and_the_run_then_reports_the_outer_reason()
 {
    let rt = VirtualRuntime::new();
    let (out, shield_out, at) = rt
        .block_on({
            let rt = rt.clone();
            async move {
                let outer = CancelScope::new();
                let stopper = outer.clone();
                let shield_out = std::sync::Arc::new(std::sync::Mutex::new(None));
                let seen = shield_out.clone();
                let work = outer.run(async {
                    let cleanup = outer.shielded().with_timeout(&rt, ms(10));
                    // A cleanup that would hang: its own deadline cuts it.
                    let done = cleanup.run(rt.sleep(ms(60_000))).await;
                    *seen.lock().unwrap() = Some(done);
                    rt.sleep(ms(60_000)).await;
                });
                let stop = async {
                    rt.sleep(ms(1)).await;
                    stopper.cancel_with_message("stop");
                };
                let (out, ()) = futures::join!(work, stop);
                let shield_out = shield_out.lock().unwrap().take();
                (out, shield_out, rt.now())
            }
        })
        .unwrap();
    let shield_err = shield_out.expect("the shield ended").unwrap_err();
    assert!(matches!(shield_err.reason, CancelReason::Deadline { .. }));
    assert_eq!(
        out.unwrap_err().reason,
        CancelReason::Explicit {
            message: Some("stop".into())
        }
    );
    assert_eq!(at, Instant::ORIGIN + ms(10));
}
