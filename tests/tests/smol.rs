//! The conformance suite on smol's global executor.
#![cfg(not(target_arch = "wasm32"))]

use staunch_tests::conformance_test;

staunch_tests::for_each_case!(conformance_test, staunch_tests::harness::run_smol);
