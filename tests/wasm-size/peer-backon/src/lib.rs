//! The peer of `retry-timeout`: backon's exponential backoff with jitter,
//! sleeping on gloo-timers, around a `futures::select!` timeout.

use std::cell::Cell;
use std::time::Duration;

use backon::{ExponentialBuilder, GlooTimersSleep, Retryable};
use futures::FutureExt;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::prelude::*;

/// Why an attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// The operation's own error.
    Flaky,
    /// The attempt ran over 100 ms.
    TimedOut,
}

/// Calls an operation that works for `work_ms` and fails its first
/// `failures` attempts; up to 4 attempts, each under 100 ms. Resolves to
/// the attempt that succeeded, or rejects with the number of attempts made.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> Result<u32, JsValue> {
    let attempts = Cell::new(0u32);
    let attempt = || async {
        attempts.set(attempts.get() + 1);
        let number = attempts.get();
        let work = async {
            TimeoutFuture::new(work_ms).await;
            if number <= failures {
                Err(Failure::Flaky)
            } else {
                Ok(number)
            }
        }
        .fuse();
        let limit = TimeoutFuture::new(100).fuse();
        futures::pin_mut!(work, limit);
        futures::select! {
            out = work => out,
            () = limit => Err(Failure::TimedOut),
        }
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(10))
                .with_jitter()
                .with_max_times(3),
        )
        .sleep(GlooTimersSleep)
        .await
        .map_err(|_| JsValue::from(attempts.get()))
}
