//! The browser's [`HttpClient`]: `fetch`, one `AbortController` per
//! request. Dropping the request's future (a per-request timeout, or the
//! crawl's scope being cancelled by Stop) aborts the fetch, so the service
//! sees the connection go away and counts it as aborted.

use std::time::Duration;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, RequestInit, Response};

use super::{HttpClient, HttpError, Reply};

/// `fetch` from the page's window.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchClient;

/// Aborts the fetch when dropped before it finished.
struct AbortOnDrop {
    controller: AbortController,
    finished: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.finished {
            self.controller.abort();
        }
    }
}

fn transport(error: JsValue) -> HttpError {
    HttpError::Transport(
        error
            .as_string()
            .or_else(|| {
                js_sys::JSON::stringify(&error)
                    .ok()
                    .and_then(|s| s.as_string())
            })
            .unwrap_or_else(|| "fetch failed".into()),
    )
}

impl HttpClient for FetchClient {
    async fn get(&self, url: &str) -> Result<Reply, HttpError> {
        let window = web_sys::window()
            .ok_or_else(|| HttpError::Transport("no window to fetch from".into()))?;
        let controller = AbortController::new().map_err(transport)?;
        let mut guard = AbortOnDrop {
            controller: controller.clone(),
            finished: false,
        };
        let init = RequestInit::new();
        init.set_signal(Some(&controller.signal()));
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
            .await
            .map_err(transport)?
            .dyn_into()
            .map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let body = JsFuture::from(response.text().map_err(transport)?)
            .await
            .map_err(transport)?
            .as_string()
            .unwrap_or_default();
        guard.finished = true;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}
