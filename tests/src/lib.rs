//! # staunch's conformance suite
//!
//! Every case in [`cases`] is an `async fn` generic over [`TestRuntime`], so
//! one source runs on smol, tokio (current-thread and multi-thread), the
//! [`VirtualRuntime`](staunch::testing::VirtualRuntime) natively and on
//! wasm32, and [`staunch_web::Web`] in Node and headless Chromium.
//!
//! The runner files in `tests/` each define a small `case!` macro that turns
//! one case into one test for their runtime, then call
//! [`for_each_case!`] with it.
//!
//! [`staunch_web::Web`]: https://docs.rs/staunch-web

pub mod cases;
pub mod harness;

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod heap;

pub use harness::TestRuntime;

/// The README's Rust examples, compiled and run as this crate's doc tests
/// so the front page cannot drift from the API.
#[cfg(all(doctest, not(target_arch = "wasm32")))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// Calls `$m!` once per conformance case, as `$m!(#[attrs] module::case)`,
/// or `$m!(extra tokens; #[attrs] module::case)` when extra tokens are given
/// after the macro name.
///
/// Cases that cannot run on a target carry a `#[cfg]` attribute, passed on.
#[macro_export]
macro_rules! for_each_case {
    ($m:ident $(, $($extra:tt)*)?) => {
        $crate::runtime_cases!($m $(, $($extra)*)?);
        $crate::scope_cases!($m $(, $($extra)*)?);
        $crate::group_cases!($m $(, $($extra)*)?);
        $crate::gather_cases!($m $(, $($extra)*)?);
        $crate::timing_cases!($m $(, $($extra)*)?);
        $crate::breaker_cases!($m $(, $($extra)*)?);
        $crate::composition_cases!($m $(, $($extra)*)?);
        $crate::extremes_cases!($m $(, $($extra)*)?);
        $crate::rate_cases!($m $(, $($extra)*)?);
        $crate::queue_cases!($m $(, $($extra)*)?);
    };
}

/// Turns one conformance case into one test for a runtime; the runner files
/// in `tests/` pass it to [`for_each_case!`]:
///
/// - `conformance_test!(path::to::run_fn; module::case)`: a `#[test]` that
///   runs the case through a native runner such as
///   [`harness::run_smol`];
/// - `conformance_test!(wasm_web; module::case)`: a `#[wasm_bindgen_test]`
///   on `staunch_web::Web`;
/// - `conformance_test!(wasm_virtual; module::case)`: a
///   `#[wasm_bindgen_test]` on the `VirtualRuntime`.
#[macro_export]
macro_rules! conformance_test {
    (wasm_web; $(#[$attr:meta])* $module:ident :: $name:ident) => {
        $(#[$attr])*
        #[::wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $crate::cases::$module::$name(::staunch_web::Web::current()).await;
        }
    };
    (wasm_virtual; $(#[$attr:meta])* $module:ident :: $name:ident) => {
        $(#[$attr])*
        #[::wasm_bindgen_test::wasm_bindgen_test]
        fn $name() {
            $crate::harness::run_virtual($crate::cases::$module::$name);
        }
    };
    ($runner:path; $(#[$attr:meta])* $module:ident :: $name:ident) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            $runner($crate::cases::$module::$name);
        }
    };
}
