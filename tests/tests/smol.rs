//! The conformance suite on smol's global executor.
#![cfg(not(target_arch = "wasm32"))]

macro_rules! case {
    ($(#[$attr:meta])* $module:ident :: $name:ident) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            staunch_tests::harness::run_smol(staunch_tests::cases::$module::$name);
        }
    };
}

staunch_tests::for_each_case!(case);
