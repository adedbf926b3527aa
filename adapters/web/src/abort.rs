//! Cancellation that reaches the network: a bridge between staunch's
//! [`CancelToken`] / [`CancelScope`] and the DOM `AbortSignal`.
//!
//! Dropping a `fetch` future in Rust does not stop the request: the browser
//! keeps the connection open until the answer arrives. An `AbortSignal`
//! handed to `fetch` does stop it. Two guards connect the two worlds:
//!
//! - [`AbortOnCancel`]: a signal that aborts when a token (or a scope's
//!   token) is cancelled, and, if asked, when the guard is dropped, so a
//!   fetch cut off by a timeout or a cancelled scope is really aborted;
//! - [`CancelOnAbort`]: a token cancelled when a signal aborts, so a
//!   JavaScript "Stop" button (an `AbortController`) cancels Rust work.
//!
//! An abort is cancellation, never a failure: callers should map a fetch's
//! `AbortError` to staunch's cancellation, which is never retried and never
//! counted by a breaker.
//!
//! Invariants: each guard owns what it installed (a watcher task, an event
//! listener) and removes it on drop, so neither a token that is never
//! cancelled nor a signal that never aborts keeps anything alive.
//!
//! Only on wasm32; elsewhere this module is empty.
#![cfg(target_arch = "wasm32")]

use futures::future::{AbortHandle, Abortable};
use staunch::scope::{CancelScope, CancelToken};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen::closure::Closure;
use web_sys::{AbortController, AbortSignal};

/// An `AbortSignal` that aborts when a staunch [`CancelToken`] is cancelled.
///
/// The abort reason is the cancellation reason, as a string. If the token is
/// already cancelled, the signal is born aborted. Dropping the guard stops
/// watching the token; with [`abort_on_drop`](AbortOnCancel::abort_on_drop)
/// it also aborts the signal, which is what a request future wants: when a
/// timeout or a cancelled scope drops the future, the fetch is aborted.
///
/// ```no_run
/// use staunch::scope::CancelScope;
/// use staunch_web::abort::AbortOnCancel;
///
/// let scope = CancelScope::new();
/// let link = AbortOnCancel::for_scope(&scope).unwrap().abort_on_drop();
/// let signal = link.signal(); // hand it to `fetch` through `RequestInit`
/// scope.cancel();
/// # drop(signal);
/// ```
///
/// # Panics
///
/// Never.
#[derive(Debug)]
pub struct AbortOnCancel {
    controller: AbortController,
    watcher: AbortHandle,
    abort_on_drop: bool,
}

impl AbortOnCancel {
    /// A signal that aborts once `token` is cancelled.
    ///
    /// # Errors
    ///
    /// The JavaScript error thrown by `new AbortController()` where the host
    /// has none (every current browser, worker and Node has one).
    pub fn new(token: &CancelToken) -> Result<AbortOnCancel, JsValue> {
        let controller = AbortController::new()?;
        let (watcher, registration) = AbortHandle::new_pair();
        if let Some(reason) = token.reason() {
            controller.abort_with_reason(&JsValue::from_str(&reason.to_string()));
        } else {
            let token = token.clone();
            let target = controller.clone();
            let watch = async move {
                let reason = token.cancelled().await;
                target.abort_with_reason(&JsValue::from_str(&reason.to_string()));
            };
            wasm_bindgen_futures::spawn_local(async move {
                // Aborted when the guard drops: then there is nothing to do.
                let _ = Abortable::new(watch, registration).await;
            });
        }
        Ok(AbortOnCancel {
            controller,
            watcher,
            abort_on_drop: false,
        })
    }

    /// A signal that aborts once `scope` is cancelled (explicitly, by its
    /// deadline or by a parent).
    ///
    /// # Errors
    ///
    /// As [`new`](AbortOnCancel::new).
    pub fn for_scope(scope: &CancelScope) -> Result<AbortOnCancel, JsValue> {
        AbortOnCancel::new(scope.token())
    }

    /// Also abort the signal when this guard is dropped (unless it already
    /// aborted). Keep the guard inside the request future, so dropping the
    /// future aborts the request.
    #[must_use = "abort_on_drop returns the guard; keep it alive as long as the request"]
    pub fn abort_on_drop(mut self) -> AbortOnCancel {
        self.abort_on_drop = true;
        self
    }

    /// The signal to pass to `fetch` (or anything else that takes one).
    #[must_use]
    pub fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }
}

impl Drop for AbortOnCancel {
    fn drop(&mut self) {
        self.watcher.abort();
        if self.abort_on_drop && !self.controller.signal().aborted() {
            self.controller
                .abort_with_reason(&JsValue::from_str("the request future was dropped"));
        }
    }
}

/// Cancels a staunch [`CancelToken`] when a DOM `AbortSignal` aborts.
///
/// The token is cancelled with an explicit message naming the abort. If the
/// signal has already aborted, the token is cancelled at once. Dropping the
/// guard removes the event listener; the token keeps whatever state it has.
///
/// ```no_run
/// use staunch::scope::CancelScope;
/// use staunch_web::abort::CancelOnAbort;
/// use web_sys::AbortController;
///
/// let stop = AbortController::new().unwrap(); // e.g. owned by a Stop button
/// let scope = CancelScope::new();
/// let _link = CancelOnAbort::new(&stop.signal(), scope.token().clone());
/// stop.abort();
/// assert!(scope.is_cancelled());
/// ```
///
/// # Panics
///
/// Never.
pub struct CancelOnAbort {
    signal: AbortSignal,
    listener: Option<Closure<dyn FnMut()>>,
}

impl CancelOnAbort {
    /// Cancels `token` when `signal` aborts (now, if it already has).
    #[must_use = "dropping the guard stops listening for the abort"]
    pub fn new(signal: &AbortSignal, token: CancelToken) -> CancelOnAbort {
        if signal.aborted() {
            token.cancel_with_message("the AbortSignal was aborted");
            return CancelOnAbort {
                signal: signal.clone(),
                listener: None,
            };
        }
        let listener = Closure::<dyn FnMut()>::new(move || {
            token.cancel_with_message("the AbortSignal was aborted");
        });
        let added =
            signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        // addEventListener throws only for a non-callable listener, which a
        // Closure never is; keep the listener either way.
        debug_assert!(added.is_ok(), "addEventListener refused a Closure");
        CancelOnAbort {
            signal: signal.clone(),
            listener: Some(listener),
        }
    }
}

impl Drop for CancelOnAbort {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            let _ = self
                .signal
                .remove_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        }
    }
}

impl std::fmt::Debug for CancelOnAbort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelOnAbort")
            .field("aborted", &self.signal.aborted())
            .field("listening", &self.listener.is_some())
            .finish()
    }
}
