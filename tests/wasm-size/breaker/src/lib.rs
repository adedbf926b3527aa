//! `retry-timeout` plus a circuit breaker around each attempt, with staunch
//! on the `Web` runtime. The peer is `peer-backon` (which has no breaker).

use std::time::Duration;

use staunch::breaker::CircuitBreaker;
use staunch::retry::{Backoff, Jitter, Retry};
use staunch::runtime::Timer;
use staunch::timeout;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// The operation's own error.
#[derive(Debug)]
pub struct Flaky;

/// Like `retry-timeout`, each attempt asking a breaker that opens after 5
/// consecutive failures. Resolves to the attempt that succeeded, or rejects
/// with the number of attempts made.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> Result<u32, JsValue> {
    let rt = Web::current();
    let bad_config = |_| JsValue::from(0);
    let retry = Retry::builder(rt.clone())
        .max_attempts(4)
        .backoff(Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Full))
        .build()
        .map_err(bad_config)?;
    let breaker = CircuitBreaker::builder(rt.clone())
        .consecutive_failures(5)
        .build()
        .map_err(bad_config)?;
    retry
        .run(|attempt| {
            let sleeper = rt.clone();
            let work = async move {
                sleeper.sleep(Duration::from_millis(work_ms.into())).await;
                if attempt.number() <= failures {
                    Err(Flaky)
                } else {
                    Ok(attempt.number())
                }
            };
            breaker.call(timeout::call(&rt, Duration::from_millis(100), work))
        })
        .await
        .map_err(|e| JsValue::from(e.attempts()))
}
