//! staunch's `gather` of 10 fallible futures on the `Web` runtime. The peer
//! is `peer-join-all`.

use std::time::Duration;

use staunch::gather::gather;
use staunch::runtime::Timer;
use staunch_web::Web;
use wasm_bindgen::prelude::*;

/// Runs 10 operations (the i-th works for `work_ms + i` and fails if
/// `i < failures`) and resolves to how many succeeded.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> u32 {
    let rt = Web::current();
    let results = gather((0..10u32).map(|i| {
        let rt = rt.clone();
        async move {
            rt.sleep(Duration::from_millis((work_ms + i).into())).await;
            if i < failures { Err(i) } else { Ok(i) }
        }
    }))
    .await;
    results.iter().filter(|r| r.is_ok()).count() as u32
}
