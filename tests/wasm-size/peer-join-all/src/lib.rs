//! The peer of `gather10` and `group10`: `futures::future::join_all` of 10
//! fallible futures sleeping on gloo-timers.

use futures::future::join_all;
use gloo_timers::future::TimeoutFuture;
use wasm_bindgen::prelude::*;

/// Runs 10 operations (the i-th works for `work_ms + i` and fails if
/// `i < failures`) and resolves to how many succeeded.
#[wasm_bindgen]
pub async fn run(failures: u32, work_ms: u32) -> u32 {
    let results = join_all((0..10u32).map(|i| async move {
        TimeoutFuture::new(work_ms + i).await;
        if i < failures { Err(i) } else { Ok(i) }
    }))
    .await;
    results.iter().filter(|r| r.is_ok()).count() as u32
}
