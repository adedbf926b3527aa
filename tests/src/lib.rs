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

pub use harness::TestRuntime;

/// Calls `$m!` once per conformance case, as `$m!(#[attrs] module::case)`.
///
/// Cases that cannot run on a target carry a `#[cfg]` attribute, passed on.
#[macro_export]
macro_rules! for_each_case {
    ($m:ident) => {
        $crate::runtime_cases!($m);
        $crate::scope_cases!($m);
        $crate::group_cases!($m);
        $crate::gather_cases!($m);
        $crate::timing_cases!($m);
        $crate::breaker_cases!($m);
    };
}
