//! The conformance suite on wasm32 in Node (`wasm-pack test --node tests`):
//! once on `staunch_web::Web` (real `setTimeout` timers) and once on the
//! `VirtualRuntime`.
#![cfg(target_arch = "wasm32")]

// No configure line: this file runs in Node (`wasm-pack test --node tests`).

mod web {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_web);
}

mod virtual_time {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_virtual);
}
