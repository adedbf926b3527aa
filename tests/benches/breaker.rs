//! Circuit breaker overhead against the crates users would pick instead.
//!
//! - closed-state `call` of a ready future, one thread: `staunch` vs
//!   `failsafe` (1.x, `Config::new().build()`, futures API) and `recloser`
//!   (1.x, `AsyncRecloser::from(Recloser::default())`);
//! - the same with two threads hammering one shared breaker;
//! - staunch with a time-based window (10 buckets over 1 s), same peers;
//! - memory: a time-based window fed 10 000 calls per (virtual) second for
//!   5 s, with a counting global allocator: allocations per call (must be 0).
//!
//! Each iteration makes many calls inside one `block_on`, so the executor's
//! own cost is spread thin and the per-call overhead shows.

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::IntoFuture;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use failsafe::futures::CircuitBreaker as _;
use futures::executor::block_on;
use recloser::{AsyncRecloser, Recloser};
use staunch::breaker::CircuitBreaker;
use staunch::testing::VirtualRuntime;
use staunch_smol::Smol;
use staunch_tests::bench::Bench;

/// Counts every allocation the process makes.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the measuring thread counts: runtimes left over from earlier
    /// scenarios (tokio workers, smol's executor and reactor threads) may
    /// allocate at any time, and that is not the breaker's doing.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

// SAFETY: every method forwards to `System` unchanged; the counter is a
// plain atomic. (The bench crate is not `forbid(unsafe_code)`; a global
// allocator cannot be written without `unsafe impl`.)
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(std::cell::Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CALLS: u32 = 1000;
const THREAD_CALLS: u32 = 20_000;

async fn ready(n: u32) -> Result<u32, std::io::Error> {
    Ok(black_box(n))
}

fn two_threads(work: impl Fn() + Sync) {
    std::thread::scope(|s| {
        s.spawn(&work);
        s.spawn(&work);
    });
}

fn main() {
    let mut b = Bench::from_args();
    let staunch = CircuitBreaker::builder(Smol::current())
        .build()
        .expect("default breaker");
    let timed = CircuitBreaker::builder(Smol::current())
        .time_window(Duration::from_secs(1), 10)
        .build()
        .expect("time-window breaker");
    let failsafe = failsafe::Config::new().build();
    let recloser = AsyncRecloser::from(Recloser::default());

    let one_thread = |scenario: &str, breaker: &CircuitBreaker, b: &mut Bench| {
        b.compare(
            scenario,
            &mut || {
                block_on(async {
                    for n in 0..CALLS {
                        black_box(breaker.call(ready(n)).await.ok());
                    }
                });
            },
            &mut [
                ("failsafe", &mut || {
                    block_on(async {
                        for n in 0..CALLS {
                            black_box(failsafe.call(ready(n)).await.ok());
                        }
                    });
                }),
                ("recloser", &mut || {
                    block_on(async {
                        for n in 0..CALLS {
                            black_box(recloser.call(ready(n)).await.ok());
                        }
                    });
                }),
            ],
        );
    };
    one_thread(
        &format!("breaker/closed/1-thread/x{CALLS}"),
        &staunch,
        &mut b,
    );
    one_thread(
        &format!("breaker/closed/time-window/1-thread/x{CALLS}"),
        &timed,
        &mut b,
    );

    let calls = if b.is_quick() { 2000 } else { THREAD_CALLS };
    b.compare(
        &format!("breaker/closed/2-threads/x2x{calls}"),
        &mut || {
            two_threads(|| {
                block_on(async {
                    for n in 0..calls {
                        black_box(staunch.call(ready(n)).await.ok());
                    }
                });
            });
        },
        &mut [
            ("failsafe", &mut || {
                two_threads(|| {
                    block_on(async {
                        for n in 0..calls {
                            black_box(failsafe.call(ready(n)).await.ok());
                        }
                    });
                });
            }),
            ("recloser", &mut || {
                two_threads(|| {
                    block_on(async {
                        for n in 0..calls {
                            black_box(recloser.call(ready(n)).await.ok());
                        }
                    });
                });
            }),
        ],
    );

    // Constant memory: 10 000 calls per virtual second for 5 s through a
    // time-based window, one in ten failing, counted by the allocator.
    let rt = VirtualRuntime::new();
    let windowed = CircuitBreaker::builder(rt.clone())
        .time_window(Duration::from_secs(1), 10)
        .minimum_calls(100)
        .build()
        .expect("time-window breaker");
    let total = 50_000u32;
    let call = |n: u32| {
        rt.advance(Duration::from_micros(100));
        let out = block_on(
            windowed
                .call(async move { if n.is_multiple_of(10) { Err(()) } else { Ok(n) } })
                .into_future(),
        );
        black_box(out.ok());
    };
    // Warm up for 2 virtual seconds (one-time lazy allocations happen here), then count.
    (0..20_000).for_each(call);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    (0..total).for_each(call);
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let per_call = allocations as f64 / f64::from(total);
    b.note(
        "breaker/time-window/10k-calls-per-s/5s",
        "allocations per call",
        per_call,
    );
    assert_eq!(
        allocations, 0,
        "the time-based window allocated {allocations} times in {total} calls"
    );
    // Ten buckets of 100 ms: the window holds the current bucket and the
    // nine before it, so between 0.9 s and 1 s of calls.
    let held = windowed.metrics().calls;
    assert!(
        (9_000..=10_000).contains(&held),
        "the window holds {held} calls"
    );

    b.finish("Circuit breaker: closed-state call overhead");
}
