//! The AbortSignal bridge, in Node (`wasm-pack test --node adapters/web`).
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use staunch::runtime::Timer;
use staunch::scope::{CancelScope, CancelToken};
use staunch_web::Web;
use staunch_web::abort::{AbortOnCancel, CancelOnAbort};
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::AbortController;

/// Lets spawned watcher tasks run.
async fn yield_to_the_event_loop() {
    Web::current().sleep(Duration::from_millis(1)).await;
}

#[wasm_bindgen_test]
async fn cancelling_a_scope_aborts_its_signal_with_the_reason() {
    let scope = CancelScope::new();
    let link = AbortOnCancel::for_scope(&scope).unwrap();
    let signal = link.signal();
    assert!(!signal.aborted());
    scope.cancel_with_message("user pressed stop");
    yield_to_the_event_loop().await;
    assert!(signal.aborted());
    let reason = signal.reason().as_string().unwrap();
    assert!(reason.contains("user pressed stop"), "{reason}");
}

#[wasm_bindgen_test]
fn a_signal_for_an_already_cancelled_token_is_born_aborted() {
    let token = CancelToken::new();
    token.cancel();
    let link = AbortOnCancel::new(&token).unwrap();
    assert!(link.signal().aborted());
}

#[wasm_bindgen_test]
async fn dropping_the_guard_stops_watching_without_aborting() {
    let token = CancelToken::new();
    let link = AbortOnCancel::new(&token).unwrap();
    let signal = link.signal();
    drop(link);
    token.cancel();
    yield_to_the_event_loop().await;
    assert!(!signal.aborted());
}

#[wasm_bindgen_test]
fn an_abort_on_drop_guard_aborts_its_signal_when_dropped() {
    let token = CancelToken::new();
    let link = AbortOnCancel::new(&token).unwrap().abort_on_drop();
    let signal = link.signal();
    drop(link);
    assert!(signal.aborted());
    assert!(
        !token.is_cancelled(),
        "dropping the guard never cancels the token"
    );
}

#[wasm_bindgen_test]
fn aborting_a_signal_cancels_the_linked_token() {
    let stop = AbortController::new().unwrap();
    let scope = CancelScope::new();
    let _link = CancelOnAbort::new(&stop.signal(), scope.token().clone());
    assert!(!scope.is_cancelled());
    stop.abort();
    assert!(scope.is_cancelled());
    let reason = scope.reason().unwrap().to_string();
    assert!(reason.contains("AbortSignal"), "{reason}");
}

#[wasm_bindgen_test]
fn an_already_aborted_signal_cancels_the_token_at_once() {
    let stop = AbortController::new().unwrap();
    stop.abort();
    let token = CancelToken::new();
    let _link = CancelOnAbort::new(&stop.signal(), token.clone());
    assert!(token.is_cancelled());
}

#[wasm_bindgen_test]
fn a_dropped_cancel_on_abort_guard_no_longer_cancels() {
    let stop = AbortController::new().unwrap();
    let token = CancelToken::new();
    drop(CancelOnAbort::new(&stop.signal(), token.clone()));
    stop.abort();
    assert!(!token.is_cancelled());
}
