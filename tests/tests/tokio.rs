//! The conformance suite on tokio, current-thread and multi-thread.
#![cfg(not(target_arch = "wasm32"))]

mod current_thread {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, staunch_tests::harness::run_tokio_current);
}

mod multi_thread {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, staunch_tests::harness::run_tokio_multi);
}
