//! The conformance suite on wasm32 in headless Chromium (`wasm-pack test --headless --chrome tests`):
//! once on `staunch_web::Web` (real `setTimeout` timers) and once on the
//! `VirtualRuntime`.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod web {
    use wasm_bindgen_test::wasm_bindgen_test;

    macro_rules! case {
        ($(#[$attr:meta])* $module:ident :: $name:ident) => {
            $(#[$attr])*
            #[wasm_bindgen_test]
            async fn $name() {
                staunch_tests::cases::$module::$name(staunch_web::Web::new()).await;
            }
        };
    }
    staunch_tests::for_each_case!(case);
}

mod virtual_time {
    use wasm_bindgen_test::wasm_bindgen_test;

    macro_rules! case {
        ($(#[$attr:meta])* $module:ident :: $name:ident) => {
            $(#[$attr])*
            #[wasm_bindgen_test]
            fn $name() {
                staunch_tests::harness::run_virtual(staunch_tests::cases::$module::$name);
            }
        };
    }
    staunch_tests::for_each_case!(case);
}
