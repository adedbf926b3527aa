//! The conformance suite on tokio, current-thread and multi-thread.
#![cfg(not(target_arch = "wasm32"))]

mod current_thread {
    macro_rules! case {
        ($(#[$attr:meta])* $module:ident :: $name:ident) => {
            $(#[$attr])*
            #[test]
            fn $name() {
                staunch_tests::harness::run_tokio_current(staunch_tests::cases::$module::$name);
            }
        };
    }
    staunch_tests::for_each_case!(case);
}

mod multi_thread {
    macro_rules! case {
        ($(#[$attr:meta])* $module:ident :: $name:ident) => {
            $(#[$attr])*
            #[test]
            fn $name() {
                staunch_tests::harness::run_tokio_multi(staunch_tests::cases::$module::$name);
            }
        };
    }
    staunch_tests::for_each_case!(case);
}
