//! Retry and timeout overhead against the crates users would pick instead.
//!
//! - success on the first try: `staunch::retry::Retry` vs backon's `Retryable`,
//!   both awaited inside one tokio current-thread runtime;
//! - `timeout` through `staunch_tokio::Tokio` vs `tokio::time::timeout`
//!   (inside one tokio runtime);
//! - `timeout` through `staunch_smol::Smol` vs `smol::future::or` with an
//!   `async_io::Timer` (inside `smol::block_on`).
//!
//! Each iteration makes `CALLS` calls inside one `block_on`, so the
//! executor's own cost is spread thin and the per-call overhead shows.

use std::hint::black_box;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use staunch::retry::Retry;
use staunch::timeout::timeout;
use staunch_smol::Smol;
use staunch_tests::bench::Bench;
use staunch_tokio::Tokio;

const CALLS: u32 = 100;
const LIMIT: Duration = Duration::from_secs(1);

async fn succeed(n: u32) -> Result<u32, std::io::Error> {
    Ok(black_box(n))
}

fn main() {
    let mut b = Bench::from_args();
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime builds");
    let tokio_timer = tokio_rt.block_on(async { Tokio::current().expect("inside tokio") });

    let retry = Retry::new(tokio_timer.clone());
    b.compare(
        &format!("retry/first-try-success/x{CALLS}"),
        &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    black_box(retry.run(|_| succeed(n)).await.ok());
                }
            });
        },
        &mut [("backon::Retryable", &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    let out = (|| succeed(n))
                        .retry(ExponentialBuilder::default())
                        .sleep(tokio::time::sleep)
                        .await;
                    black_box(out.ok());
                }
            });
        })],
    );

    b.compare(
        &format!("timeout/tokio/ready/x{CALLS}"),
        &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    black_box(timeout(&tokio_timer, LIMIT, succeed(n)).await.ok());
                }
            });
        },
        &mut [("tokio::time::timeout", &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    black_box(tokio::time::timeout(LIMIT, succeed(n)).await.ok());
                }
            });
        })],
    );

    // The same inside a spawned task, where most tokio code runs: there the
    // adapter skips entering the runtime handle (a `block_on` future is not a
    // task, so the scenario above pays for the enter).
    b.compare(
        &format!("timeout/tokio/ready-in-task/x{CALLS}"),
        &mut || {
            let timer = tokio_timer.clone();
            let task = tokio_rt.spawn(async move {
                for n in 0..CALLS {
                    black_box(timeout(&timer, LIMIT, succeed(n)).await.ok());
                }
            });
            black_box(tokio_rt.block_on(task).ok());
        },
        &mut [("tokio::time::timeout", &mut || {
            let task = tokio_rt.spawn(async move {
                for n in 0..CALLS {
                    black_box(tokio::time::timeout(LIMIT, succeed(n)).await.ok());
                }
            });
            black_box(tokio_rt.block_on(task).ok());
        })],
    );

    b.compare(
        &format!("timeout/tokio/one-yield/x{CALLS}"),
        &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    let fut = async move {
                        tokio::task::yield_now().await;
                        n
                    };
                    black_box(timeout(&tokio_timer, LIMIT, fut).await.ok());
                }
            });
        },
        &mut [("tokio::time::timeout", &mut || {
            tokio_rt.block_on(async {
                for n in 0..CALLS {
                    let fut = async move {
                        tokio::task::yield_now().await;
                        n
                    };
                    black_box(tokio::time::timeout(LIMIT, fut).await.ok());
                }
            });
        })],
    );

    let smol_timer = Smol::current();
    b.compare(
        &format!("timeout/smol/ready/x{CALLS}"),
        &mut || {
            smol::block_on(async {
                for n in 0..CALLS {
                    black_box(timeout(&smol_timer, LIMIT, succeed(n)).await.ok());
                }
            });
        },
        &mut [("smol::future::or + Timer", &mut || {
            smol::block_on(async {
                for n in 0..CALLS {
                    let out = smol::future::or(async { Some(succeed(n).await) }, async {
                        async_io::Timer::after(LIMIT).await;
                        None
                    })
                    .await;
                    black_box(out);
                }
            });
        })],
    );

    b.compare(
        &format!("timeout/smol/one-yield/x{CALLS}"),
        &mut || {
            smol::block_on(async {
                for n in 0..CALLS {
                    let fut = async move {
                        smol::future::yield_now().await;
                        n
                    };
                    black_box(timeout(&smol_timer, LIMIT, fut).await.ok());
                }
            });
        },
        &mut [("smol::future::or + Timer", &mut || {
            smol::block_on(async {
                for n in 0..CALLS {
                    let fut = async move {
                        smol::future::yield_now().await;
                        Some(n)
                    };
                    let out = smol::future::or(fut, async {
                        async_io::Timer::after(LIMIT).await;
                        None
                    })
                    .await;
                    black_box(out);
                }
            });
        })],
    );

    b.finish("Retry and timeout overhead");
}
