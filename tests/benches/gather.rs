//! The gather family against the futures-rs combinators users would pick
//! instead, all driven by `futures::executor::block_on`:
//!
//! - `gather` vs `futures::future::join_all` and vs collecting a
//!   `FuturesUnordered` (which loses input order, so it is the floor);
//! - `try_gather` vs `futures::future::try_join_all`;
//! - `gather_limited(64)` vs `StreamExt::buffer_unordered(64)` collected.
//!
//! Two kinds of item: `ready` (completes at the first poll) and `yield1`
//! (wakes itself once, so every wake-up path is measured). N = 10, 1 000,
//! 100 000 (`--quick` caps N at 10 000). A counting global allocator reports
//! the peak heap bytes per item of each contender with `yield1` items, which
//! are all alive at once.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::future::{join_all, ready, try_join_all};
use futures::stream::{self, FuturesUnordered, StreamExt};
use staunch::gather::{gather, gather_limited, try_gather};
use staunch_tests::bench::Bench;
use staunch_tests::heap::{CountingAlloc, peak_bytes_per_item};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Wakes itself once, then succeeds.
struct Yield1 {
    value: u64,
    yielded: bool,
}

impl Future for Yield1 {
    type Output = Result<u64, u64>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.yielded {
            Poll::Ready(Ok(self.value))
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield1(i: u64) -> Yield1 {
    Yield1 {
        value: black_box(i),
        yielded: false,
    }
}

fn ready_ok(i: u64) -> futures::future::Ready<Result<u64, u64>> {
    ready(Ok(black_box(i)))
}

/// One kind of item: its name and how to make item `i`.
fn scenarios<F>(b: &mut Bench, kind: &str, ns: &[usize], item: fn(u64) -> F, memory: bool)
where
    F: Future<Output = Result<u64, u64>> + Unpin,
{
    for &n in ns {
        let items = move || (0..n as u64).map(item);
        let check = |v: Vec<Result<u64, u64>>| assert_eq!(v.len(), n);
        let mut ours = || check(block_on(gather(items())));
        let mut join = || check(block_on(join_all(items())));
        let mut unordered = || check(block_on(items().collect::<FuturesUnordered<_>>().collect()));
        let scenario = format!("gather/{kind}/n={n}");
        b.compare(
            &scenario,
            &mut ours,
            &mut [
                ("futures::join_all", &mut join),
                ("FuturesUnordered collect", &mut unordered),
            ],
        );
        if memory {
            b.note(
                &scenario,
                "bytes/item staunch",
                peak_bytes_per_item(n, &mut ours),
            );
            b.note(
                &scenario,
                "bytes/item join_all",
                peak_bytes_per_item(n, &mut join),
            );
            b.note(
                &scenario,
                "bytes/item FuturesUnordered",
                peak_bytes_per_item(n, &mut unordered),
            );
        }

        let mut ours = || assert_eq!(block_on(try_gather(items())).unwrap().len(), n);
        let mut theirs = || assert_eq!(block_on(try_join_all(items())).unwrap().len(), n);
        let scenario = format!("try_gather/{kind}/n={n}");
        b.compare(
            &scenario,
            &mut ours,
            &mut [("futures::try_join_all", &mut theirs)],
        );
        if memory {
            b.note(
                &scenario,
                "bytes/item staunch",
                peak_bytes_per_item(n, &mut ours),
            );
            b.note(
                &scenario,
                "bytes/item try_join_all",
                peak_bytes_per_item(n, &mut theirs),
            );
        }

        let mut ours = || check(block_on(gather_limited(64, items())));
        let mut theirs = || {
            check(block_on(
                stream::iter(items()).buffer_unordered(64).collect(),
            ))
        };
        let scenario = format!("gather_limited64/{kind}/n={n}");
        b.compare(
            &scenario,
            &mut ours,
            &mut [("buffer_unordered(64)", &mut theirs)],
        );
        if memory {
            b.note(
                &scenario,
                "bytes/item staunch",
                peak_bytes_per_item(n, &mut ours),
            );
            b.note(
                &scenario,
                "bytes/item buffer_unordered",
                peak_bytes_per_item(n, &mut theirs),
            );
        }
    }
}

fn main() {
    let mut b = Bench::from_args();
    let ns: &[usize] = if b.is_quick() {
        println!("quick mode: N capped at 10 000 (full runs use 100 000)");
        &[10, 1_000, 10_000]
    } else {
        &[10, 1_000, 100_000]
    };
    scenarios(&mut b, "ready", ns, ready_ok, false);
    scenarios(&mut b, "yield1", ns, yield1, true);
    b.finish("gather family vs futures-rs (block_on)");
}
