//! The full policy pipeline (fallback, retry, circuit breaker, timeout,
//! bulkhead) around a fallible operation, with staunch on the `Web` runtime.

use std::cell::Cell;
use std::time::Duration;

use staunch::breaker::CircuitBreaker;
use staunch::bulkhead::Bulkhead;
use staunch::fallback::Fallback;
use staunch::policy::Policy;
use staunch::retry::{Backoff, Jitter, Retry};
use staunch::runtime::Timer;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// The operation's own error.
#[derive(Debug)]
pub struct Flaky;

/// Calls an operation that works for `work_ms` and fails its first
/// `failures` calls through a pipeline of 4 attempts, a breaker opening
/// after 5 consecutive failures, a 100 ms timeout per attempt and a
/// bulkhead of 4; falls back to 0. Resolves to the call that succeeded.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> Result<u32, JsValue> {
    let rt = Web::current();
    let bad_config = |_| JsValue::from(-1);
    let policy = Policy::builder(rt.clone())
        .timeout(Duration::from_millis(100))
        .retry(
            Retry::builder(rt.clone())
                .max_attempts(4)
                .backoff(Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Full))
                .build()
                .map_err(bad_config)?,
        )
        .breaker(
            CircuitBreaker::builder(rt.clone())
                .consecutive_failures(5)
                .build()
                .map_err(bad_config)?,
        )
        .bulkhead(
            Bulkhead::builder(rt.clone(), 4)
                .build()
                .map_err(bad_config)?,
        )
        .build()
        .map_err(bad_config)?;
    let calls = Cell::new(0u32);
    let run = policy.run(|_| {
        let rt = rt.clone();
        calls.set(calls.get() + 1);
        let call = calls.get();
        async move {
            rt.sleep(Duration::from_millis(work_ms.into())).await;
            if call <= failures {
                Err(Flaky)
            } else {
                Ok(call)
            }
        }
    });
    Fallback::value(0)
        .call(run)
        .await
        .map_err(|_| JsValue::from(calls.get()))
}
