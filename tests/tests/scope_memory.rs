//! A long-lived scope holds no memory for the short-lived scopes, runs,
//! waits and task groups that came and went inside it: the heap after a
//! hundred thousand of them is what it is after a thousand.
#![cfg(not(target_arch = "wasm32"))]

use staunch::group::TaskGroup;
use staunch::runtime::Timer;
use staunch::scope::CancelScope;
use staunch::testing::VirtualRuntime;
use staunch_tests::heap::{CountingAlloc, live_bytes};
use std::time::Duration;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Heap bytes held, with the long-lived scopes and their long-lived run
/// still alive, after `n` rounds of short-lived work under them.
fn held_after(n: u32) -> usize {
    let rt = VirtualRuntime::new();
    let before = live_bytes();
    let held = rt
        .block_on({
            let rt = rt.clone();
            async move {
                // A long-lived parent with a deadline (so every child is
                // timed), and a long-lived run inside it.
                let parent = CancelScope::new().with_timeout(&rt, Duration::from_secs(1 << 40));
                let outer = parent.child();
                let token = parent.token().clone();
                let rt2 = rt.clone();
                outer
                    .run(async {
                        for i in 0..n {
                            // A child scope with its own deadline, run to its end.
                            let child = parent.child().with_timeout(&rt2, Duration::from_secs(5));
                            let out = child.run(rt2.sleep(Duration::ZERO)).await;
                            assert!(out.is_ok());
                            // A child token, cancelled and waited on.
                            let t = token.child();
                            t.cancel();
                            let _ = t.cancelled().await;
                            // A wait on the long-lived parent, given up.
                            let wait = std::pin::pin!(parent.cancelled());
                            let gave_up = std::pin::pin!(rt2.sleep(Duration::ZERO));
                            let _ = futures::future::select(wait, gave_up).await;
                            // Every 16th round: a task group dropped unjoined
                            // with a child still running (the run waits for
                            // it only while it runs).
                            if i % 16 == 0 {
                                let group = TaskGroup::<_, (), String>::new(rt2.clone());
                                let sleeper = rt2.clone();
                                group
                                    .spawn(async move {
                                        sleeper.sleep(Duration::from_secs(3600)).await;
                                        Ok(())
                                    })
                                    .expect("spawned");
                                drop(group);
                            }
                        }
                        rt2.sleep(Duration::from_millis(1)).await;
                        live_bytes() - before
                    })
                    .await
                    .expect("the parent's deadline is far away")
            }
        })
        .expect("no deadlock");
    assert_eq!(rt.task_count(), 0, "every group child is gone");
    held
}

#[test]
fn a_long_lived_scope_does_not_grow_with_the_short_lived_work_inside_it() {
    let small = held_after(1_000);
    let large = held_after(100_000);
    println!("held {small} B after 1 000 rounds, {large} B after 100 000");
    assert!(
        large <= small + 64 * 1024,
        "held {large} B after 100 000 rounds against {small} B after 1 000"
    );
}
