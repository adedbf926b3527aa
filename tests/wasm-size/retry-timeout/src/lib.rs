//! Retry (exponential backoff with full jitter) around a 100 ms timeout on
//! a fallible future, with staunch on the `Web` runtime. The peer is
//! `peer-backon`.

use std::time::Duration;

use staunch::retry::{Backoff, Jitter, Retry};
use staunch::runtime::Timer;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// The operation's own error.
#[derive(Debug)]
pub struct Flaky;

/// Calls an operation that works for `work_ms` and fails its first
/// `failures` attempts; up to 4 attempts, each under 100 ms. Resolves to
/// the attempt that succeeded, or rejects with the number of attempts made.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> Result<u32, JsValue> {
    let rt = Web::current();
    let retry = Retry::builder(rt.clone())
        .max_attempts(4)
        .backoff(Backoff::exponential(Duration::from_millis(10)).jitter(Jitter::Full))
        .attempt_timeout(Duration::from_millis(100))
        .build()
        .map_err(|_| JsValue::from(0))?;
    retry
        .run(|attempt| {
            let rt = rt.clone();
            async move {
                rt.sleep(Duration::from_millis(work_ms.into())).await;
                if attempt.number() <= failures {
                    Err(Flaky)
                } else {
                    Ok(attempt.number())
                }
            }
        })
        .await
        .map_err(|e| JsValue::from(e.attempts()))
}
