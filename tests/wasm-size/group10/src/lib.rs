//! A fail-fast `TaskGroup` of 10 children spawned on the `Web` runtime. The
//! peer is `peer-join-all` (futures has no task group for the browser).

use std::time::Duration;

use staunch::group::TaskGroup;
use staunch::runtime::Timer;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// Spawns 10 children (the i-th works for `work_ms + i` and fails if
/// `i < failures`); resolves to the sum of their values, or rejects with
/// the first failure's own error.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> Result<u32, JsValue> {
    let rt = Web::current();
    let group = TaskGroup::new(rt.clone());
    for i in 0..10u32 {
        let rt = rt.clone();
        group
            .spawn(async move {
                rt.sleep(Duration::from_millis((work_ms + i).into())).await;
                if i < failures { Err(i) } else { Ok(i) }
            })
            .map_err(|_| JsValue::from(-1))?;
    }
    match group.join().await {
        Ok(values) => Ok(values.iter().sum()),
        Err(error) => Err(JsValue::from(error.into_first_error().unwrap_or(u32::MAX))),
    }
}
