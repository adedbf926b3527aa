//! Task groups and cancel tokens against the crates users would pick instead.
//!
//! - spawn + join of 10 000 trivial tasks: `staunch::group::TaskGroup` on
//!   `staunch_tokio::Tokio` vs `tokio::task::JoinSet`, on a current-thread
//!   and on a two-worker multi-thread tokio runtime;
//! - token create / child / check / cancel: `staunch::scope::CancelToken` vs
//!   `tokio_util::sync::CancellationToken`;
//! - building and cancelling a tree of 1 000 and 10 000 scopes (fan-out 4),
//!   against the same tree of tokio-util tokens, with the time per scope
//!   noted to show that cancelling is linear.

use std::hint::black_box;
use std::time::Instant;

use staunch::group::TaskGroup;
use staunch::scope::CancelToken;
use staunch_tests::bench::Bench;
use staunch_tokio::Tokio;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const TASKS: u32 = 10_000;
const TOKENS: usize = 1_000;

fn spawn_join(b: &mut Bench, flavour: &str, rt: &tokio::runtime::Runtime) {
    let tokio = rt.block_on(async { Tokio::current().expect("inside tokio") });
    b.compare(
        &format!("group/spawn+join/{flavour}/n={TASKS}"),
        &mut || {
            rt.block_on(async {
                let group = TaskGroup::<_, u32, ()>::new(tokio.clone());
                for i in 0..TASKS {
                    group.spawn(async move { Ok(black_box(i)) }).expect("spawn");
                }
                let values = group.join().await.expect("all succeed");
                assert_eq!(values.len(), TASKS as usize);
            });
        },
        &mut [("tokio::task::JoinSet", &mut || {
            rt.block_on(async {
                let mut set = JoinSet::new();
                for i in 0..TASKS {
                    set.spawn(async move { black_box(i) });
                }
                let values = set.join_all().await;
                assert_eq!(values.len(), TASKS as usize);
            });
        })],
    );
}

fn staunch_tree(n: usize) -> Vec<CancelToken> {
    let mut nodes = vec![CancelToken::new()];
    let mut i = 0;
    while nodes.len() < n {
        let child = nodes[i / 4].child();
        nodes.push(child);
        i += 1;
    }
    nodes
}

fn tokio_tree(n: usize) -> Vec<CancellationToken> {
    let mut nodes = vec![CancellationToken::new()];
    let mut i = 0;
    while nodes.len() < n {
        let child = nodes[i / 4].child_token();
        nodes.push(child);
        i += 1;
    }
    nodes
}

fn main() {
    let mut b = Bench::from_args();

    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    spawn_join(&mut b, "current-thread", &current);
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    spawn_join(&mut b, "multi-thread", &multi);

    b.compare(
        &format!("token/create+child+check+cancel/x{TOKENS}"),
        &mut || {
            for _ in 0..TOKENS {
                let parent = CancelToken::new();
                let child = parent.child();
                black_box(child.is_cancelled());
                parent.cancel();
                black_box(child.is_cancelled());
            }
        },
        &mut [("tokio_util::CancellationToken", &mut || {
            for _ in 0..TOKENS {
                let parent = CancellationToken::new();
                let child = parent.child_token();
                black_box(child.is_cancelled());
                parent.cancel();
                black_box(child.is_cancelled());
            }
        })],
    );

    let token = CancelToken::new();
    let peer = CancellationToken::new();
    b.compare(
        &format!("token/check/x{TOKENS}"),
        &mut || {
            for _ in 0..TOKENS {
                black_box(black_box(&token).is_cancelled());
            }
        },
        &mut [("tokio_util::CancellationToken", &mut || {
            for _ in 0..TOKENS {
                black_box(black_box(&peer).is_cancelled());
            }
        })],
    );

    for n in [1_000, 10_000] {
        b.compare(
            &format!("tree/build+cancel/n={n}"),
            &mut || {
                let tree = staunch_tree(n);
                tree[0].cancel();
                assert!(tree[n - 1].is_cancelled());
            },
            &mut [("tokio_util::CancellationToken", &mut || {
                let tree = tokio_tree(n);
                tree[0].cancel();
                assert!(tree[n - 1].is_cancelled());
            })],
        );
        // The cancel alone, per scope: flat when cancelling is linear.
        let rounds = if b.is_quick() { 3 } else { 30 };
        let mut best = f64::MAX;
        for _ in 0..rounds {
            let tree = staunch_tree(n);
            let start = Instant::now();
            tree[0].cancel();
            best = best.min(start.elapsed().as_secs_f64());
            black_box(&tree);
        }
        b.note(
            &format!("tree/cancel-only/n={n}"),
            "staunch ns per scope (best)",
            best * 1e9 / n as f64,
        );
    }

    b.finish("Task groups and cancel tokens");
}
