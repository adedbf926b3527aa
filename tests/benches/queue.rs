//! The queue and worker pool against what users would write by hand:
//!
//! - 100 000 trivial items (`--quick`: 10 000) through 8 workers:
//!   `staunch::queue::WorkerPool` vs a hand-written async-channel loop
//!   (bounded item channel, 8 spawned workers, unbounded result channel),
//!   on a two-worker multi-thread tokio runtime and on smol's global
//!   executor; and vs a tokio `mpsc` + `JoinSet` loop (8 in flight) on tokio.
//!   A second copy of the pool and of the hand-written loop run as
//!   controls: how far two copies of the same code differ is how fine the
//!   other ratios are. The last row per runtime sets both pool copies
//!   against both loop copies (geometric means), so that where one copy
//!   happens to sit counts for less.
//! - `send_timeout` / `recv_timeout` on a ready queue vs plain `send` /
//!   `recv` (same queue), and vs async-channel's own `send` / `recv`.
//! - Heap bytes per queued item: staunch's queue vs an async-channel
//!   bounded channel, both filled with N `u64`s.

use std::hint::black_box;
use std::time::Duration;

use futures::StreamExt;
use futures::executor::block_on;
use staunch::queue::{WorkerPool, bounded};
use staunch::testing::VirtualRuntime;
use staunch_smol::Smol;
use staunch_tests::bench::Bench;
use staunch_tests::heap::{CountingAlloc, peak_bytes_per_item};
use staunch_tokio::Tokio;
use tokio::task::JoinSet;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const WORKERS: usize = 8;
const CAPACITY: usize = 1024;

/// The pool: submit every item, close, read every completion.
///
/// `COPY` makes a second, separately compiled copy of the pool's per-item
/// code (the workers' loop is generic over the handler, whose multiplier
/// differs), for the same reason as [`by_hand`]'s.
async fn through_pool<R, const COPY: u64>(rt: R, n: u64)
where
    R: staunch::runtime::Timer + staunch::runtime::Spawn + Clone + 'static,
{
    let (pool, completions) = WorkerPool::builder(rt)
        .workers(WORKERS)
        .capacity(CAPACITY)
        .build(|i: u64| async move { Ok::<_, ()>(black_box(i) * (2 + COPY)) })
        .expect("valid pool");
    let producer = async {
        for i in 0..n {
            pool.submit(i).await.expect("open");
        }
        pool.close();
    };
    let (_, count) = futures::join!(producer, completions.count());
    assert_eq!(count as u64, n);
}

/// The hand-written loop: bounded items, `WORKERS` spawned workers, results
/// on an unbounded channel.
///
/// `COPY` makes a second, separately compiled copy of the same loop (its
/// workers multiply by 3 instead of 2, so that the compiler cannot merge
/// the two): the control. The same source placed elsewhere in the binary
/// runs at a different speed, and the control's ratio to the first copy
/// shows by how much; a ratio against staunch is only as fine as that.
async fn by_hand<const COPY: u64>(n: u64, spawn: impl Fn(futures::future::BoxFuture<'static, ()>)) {
    let (tx, rx) = async_channel::bounded::<u64>(CAPACITY);
    let (out_tx, out_rx) = async_channel::unbounded::<Result<u64, ()>>();
    for _ in 0..WORKERS {
        let rx = rx.clone();
        let out = out_tx.clone();
        spawn(Box::pin(async move {
            while let Ok(i) = rx.recv().await {
                let _ = out.send(Ok(black_box(i) * (2 + COPY))).await;
            }
        }));
    }
    drop(out_tx);
    let producer = async {
        for i in 0..n {
            tx.send(i).await.expect("open");
        }
        tx.close();
    };
    let (_, count) = futures::join!(producer, out_rx.count());
    assert_eq!(count as u64, n);
}

/// tokio's mpsc feeding a `JoinSet` that keeps `WORKERS` items in flight.
async fn mpsc_joinset(n: u64) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(CAPACITY);
    let producer = tokio::spawn(async move {
        for i in 0..n {
            tx.send(i).await.expect("open");
        }
    });
    let mut set: JoinSet<Result<u64, ()>> = JoinSet::new();
    let mut count = 0u64;
    while let Some(i) = rx.recv().await {
        while set.len() >= WORKERS {
            set.join_next()
                .await
                .expect("a task")
                .expect("no panic")
                .expect("ok");
            count += 1;
        }
        set.spawn(async move { Ok::<_, ()>(black_box(i) * 2) });
    }
    while let Some(done) = set.join_next().await {
        done.expect("no panic").expect("ok");
        count += 1;
    }
    producer.await.expect("producer");
    assert_eq!(count, n);
}

const POOL_COPY: &str = "staunch, a second copy (control)";
const BY_HAND: &str = "async-channel + 8 spawned workers";
const BY_HAND_COPY: &str = "the same loop, a second copy (control)";

/// Notes the pool against the hand-written loop with where each copy of
/// the code happens to sit averaged out: the geometric mean of both pool
/// copies' times over that of both loop copies. One copy against one copy
/// measures one placement of each; across builds that differed only in
/// code the pool never calls, that alone moved the pool's ratio from 0.90
/// to 1.20.
fn note_across_copies(b: &mut Bench, scenario: &str) {
    let time = |contender: &str| {
        b.rows()
            .iter()
            .find(|row| row.scenario == scenario && row.contender == contender)
            .map(|row| row.median_ns)
    };
    if let (Some(pool), Some(pool_copy), Some(hand), Some(hand_copy)) = (
        time("staunch"),
        time(POOL_COPY),
        time(BY_HAND),
        time(BY_HAND_COPY),
    ) {
        let ratio = (pool * pool_copy).sqrt() / (hand * hand_copy).sqrt();
        b.note(scenario, "both pool copies ÷ both loop copies", ratio);
    }
}

fn pools(b: &mut Bench, n: u64) {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio builds");
    let tokio = multi.block_on(async { Tokio::current().expect("inside tokio") });
    let handle = multi.handle().clone();
    b.compare(
        &format!("pool/tokio-multi2/workers=8/n={n}"),
        &mut || multi.block_on(through_pool::<_, 0>(tokio.clone(), n)),
        &mut [
            (POOL_COPY, &mut || {
                multi.block_on(through_pool::<_, 1>(tokio.clone(), n))
            }),
            (BY_HAND, &mut || {
                multi.block_on(by_hand::<0>(n, |task| {
                    handle.spawn(task);
                }))
            }),
            (BY_HAND_COPY, &mut || {
                multi.block_on(by_hand::<1>(n, |task| {
                    handle.spawn(task);
                }))
            }),
            ("tokio mpsc + JoinSet(8)", &mut || {
                multi.block_on(mpsc_joinset(n))
            }),
        ],
    );
    note_across_copies(b, &format!("pool/tokio-multi2/workers=8/n={n}"));
    b.compare(
        &format!("pool/smol-global/workers=8/n={n}"),
        &mut || smol::block_on(through_pool::<_, 0>(Smol::current(), n)),
        &mut [
            (POOL_COPY, &mut || {
                smol::block_on(through_pool::<_, 1>(Smol::current(), n))
            }),
            (BY_HAND, &mut || {
                smol::block_on(by_hand::<0>(n, |task| smol::spawn(task).detach()))
            }),
            (BY_HAND_COPY, &mut || {
                smol::block_on(by_hand::<1>(n, |task| smol::spawn(task).detach()))
            }),
        ],
    );
    note_across_copies(b, &format!("pool/smol-global/workers=8/n={n}"));
}

fn timed_ops(b: &mut Bench, n: u64) {
    let timer = VirtualRuntime::new();
    let limit = Duration::from_secs(1);
    let (tx, rx) = bounded::<u64>(1).expect("valid");
    let (ctx, crx) = async_channel::bounded::<u64>(1);
    b.compare(
        &format!("queue/send+recv ready/n={n}"),
        &mut || {
            block_on(async {
                for i in 0..n {
                    tx.send_timeout(&timer, limit, i).await.expect("room");
                    black_box(rx.recv_timeout(&timer, limit).await.expect("item"));
                }
            })
        },
        &mut [
            ("staunch plain send/recv", &mut || {
                block_on(async {
                    for i in 0..n {
                        tx.send(i).await.expect("room");
                        black_box(rx.recv().await.expect("item"));
                    }
                })
            }),
            ("async-channel send/recv", &mut || {
                block_on(async {
                    for i in 0..n {
                        ctx.send(i).await.expect("room");
                        black_box(crx.recv().await.expect("item"));
                    }
                })
            }),
        ],
    );
}

fn memory(b: &mut Bench, n: usize) {
    let scenario = format!("queue/memory/n={n}");
    b.note(
        &scenario,
        "bytes/queued u64 staunch",
        peak_bytes_per_item(n, &mut || {
            let (tx, rx) = bounded::<u64>(n).expect("valid");
            for i in 0..n as u64 {
                tx.try_send(i).expect("room");
            }
            black_box(&rx);
        }),
    );
    b.note(
        &scenario,
        "bytes/queued u64 async-channel",
        peak_bytes_per_item(n, &mut || {
            let (tx, rx) = async_channel::bounded::<u64>(n);
            for i in 0..n as u64 {
                tx.try_send(i).expect("room");
            }
            black_box(&rx);
        }),
    );
}

fn main() {
    let mut b = Bench::from_args();
    let n: u64 = if b.is_quick() {
        println!("quick mode: 10 000 items (full runs use 100 000)");
        10_000
    } else {
        100_000
    };
    pools(&mut b, n);
    timed_ops(&mut b, 1_000);
    memory(&mut b, n as usize);
    b.finish("queue and worker pool");
}
