//! The browser entry points, called from `main.js`.

use std::time::Duration;

use staunch_web::Web;
use wasm_bindgen::prelude::{JsValue, wasm_bindgen};

use crate::crawler::{LabConfig, Strategy, crawl};
use crate::report::quote;
use crate::site::HOSTS;

/// Runs one crawl in the browser with real `setTimeout` timers and returns
/// its report as JSON. `on_event` is called with each page's result (JSON)
/// as it happens.
///
/// # Errors
///
/// A JavaScript error naming the unknown strategy.
#[wasm_bindgen]
pub async fn run_lab(
    strategy: String,
    seed: u64,
    pages: u32,
    budget_ms: u32,
    on_event: js_sys::Function,
) -> Result<String, JsValue> {
    let strategy: Strategy = strategy
        .parse()
        .map_err(|e: String| JsValue::from_str(&e))?;
    let config = LabConfig {
        seed,
        pages,
        budget: Duration::from_millis(u64::from(budget_ms)),
    };
    let report = crawl(&Web::current(), strategy, &config, &|event| {
        let _ = on_event.call1(&JsValue::NULL, &JsValue::from_str(&event.to_json()));
    })
    .await;
    Ok(report.to_json())
}

/// The simulated hosts and their behaviour, as JSON.
#[wasm_bindgen]
#[must_use]
pub fn hosts() -> String {
    let rows: Vec<String> = HOSTS
        .iter()
        .map(|h| {
            format!(
                r#"{{"name":{},"behaviour":{}}}"#,
                quote(h.name),
                quote(h.behaviour.label())
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}
