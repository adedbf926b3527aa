//! Build, serve and test orchestration for the staunch workspace.
//!
//! - `cargo xtask test`: installs what is missing (wasm32 target, wasm-pack,
//!   Chromium and chromedriver, the demo's npm packages), then runs every
//!   check: formatting, clippy (native and wasm32), native tests and doc
//!   tests on every adapter, loom models, the wasm suites in Node and headless
//!   Chromium, the demo's browser test, and each bench once in quick mode.
//!   Prints one summary line per target and fails if any target ran no test.
//! - `cargo xtask demo`: builds the resilience-lab demo for the browser,
//!   serves it on 127.0.0.1, and runs the same crawler natively.
//! - `cargo xtask wasm-size`: builds small wasm programs (staunch and the
//!   peers for the same jobs), prints their sizes before and after
//!   `wasm-opt -Oz`, and fails if one grew > 10 % over its baseline.

mod demo;
mod run;
mod setup;
mod test;
mod wasm_size;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::all(&args[1..]),
        Some("demo") => demo::serve_demo(&args[1..]),
        Some("setup") => setup::everything(),
        Some("wasm-size") => wasm_size::bench(&args[1..]),
        Some("demo-test") => demo::browser_test().and_then(|(passed, failed)| {
            println!("demo in headless Chromium: {passed} passed, {failed} failed");
            if failed == 0 && passed > 0 {
                Ok(())
            } else {
                Err("the demo's browser test failed".into())
            }
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [--skip-setup] | demo [--port N] [--no-serve] | setup | wasm-size [--quick] [--update-baseline]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
