//! The conformance suite on the deterministic `VirtualRuntime` (native and wasm32).
#![cfg(not(target_arch = "wasm32"))]

macro_rules! case {
    ($(#[$attr:meta])* $module:ident :: $name:ident) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            staunch_tests::harness::run_virtual(staunch_tests::cases::$module::$name);
        }
    };
}

staunch_tests::for_each_case!(case);
