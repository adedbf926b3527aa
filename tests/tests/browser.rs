//! The conformance suite on wasm32 in headless Chromium (`wasm-pack test --headless --chrome tests`):
//! once on `staunch_web::Web` (real `setTimeout` timers) and once on the
//! `VirtualRuntime`.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod web {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_web);
}

mod virtual_time {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_virtual);
}
