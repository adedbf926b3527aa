//! The peer of `timeout`: a hand-written timeout, `futures::future::select`
//! between the work and a gloo-timers timeout.

use futures::future::{Either, select};
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::prelude::*;

/// Works for `work_ms`, failing if `fail`; gives up after 100 ms.
/// Resolves to `work_ms`, or rejects with 1 (failed) or 2 (timed out).
#[wasm_bindgen]
pub async fn run(work_ms: u32, fail: bool) -> Result<u32, JsValue> {
    let work = async {
        TimeoutFuture::new(work_ms).await;
        if fail { Err(()) } else { Ok(work_ms) }
    };
    match select(std::pin::pin!(work), TimeoutFuture::new(100)).await {
        Either::Left((Ok(value), _)) => Ok(value),
        Either::Left((Err(()), _)) => Err(JsValue::from(1)),
        Either::Right(_) => Err(JsValue::from(2)),
    }
}
