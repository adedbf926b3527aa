//! One 100 ms timeout around a fallible future (staunch's `timeout` on the
//! `Web` runtime). The peer is `peer-select-timeout`.

use std::time::Duration;

use staunch::runtime::Timer;
use staunch::timeout::timeout;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// Works for `work_ms`, failing if `fail`; gives up after 100 ms.
/// Resolves to `work_ms`, or rejects with 1 (failed) or 2 (timed out).
#[wasm_bindgen]
pub async fn run(work_ms: u32, fail: bool) -> Result<u32, JsValue> {
    let rt = Web::current();
    let work = async {
        rt.sleep(Duration::from_millis(work_ms.into())).await;
        if fail { Err(()) } else { Ok(work_ms) }
    };
    match timeout(&rt, Duration::from_millis(100), work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(())) => Err(JsValue::from(1)),
        Err(_elapsed) => Err(JsValue::from(2)),
    }
}
