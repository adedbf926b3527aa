//! `cargo xtask test`: every check the project has, with a per-target summary.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use crate::run::{Result, capture, count_results, run};
use crate::{demo, setup, wasm_size};

/// The benches in `tests/benches`, each run once in quick mode.
const BENCHES: &[&str] = &["group", "gather", "retry", "breaker", "rate", "queue"];

#[derive(Default)]
struct Summary {
    /// target name -> (passed, failed)
    targets: BTreeMap<&'static str, (u64, u64)>,
}

impl Summary {
    fn add(&mut self, target: &'static str, counts: (u64, u64)) {
        let entry = self.targets.entry(target).or_default();
        entry.0 += counts.0;
        entry.1 += counts.1;
    }

    /// Attributes each `test result:` line of a `cargo test` run to the test
    /// binary announced before it (`Running tests/smol.rs`, `Doc-tests x`).
    fn add_cargo_test(&mut self, lines: &[String]) {
        let mut current: &'static str = "native: other";
        for line in lines {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("Running ") {
                current = classify_binary(rest);
            } else if t.starts_with("Doc-tests ") {
                current = "native: doc tests";
            } else if t.starts_with("test result: ") {
                self.add(current, count_results(std::slice::from_ref(line)));
            }
        }
    }

    fn print_and_check(&self) -> Result {
        println!("\n================ staunch test summary ================");
        let mut total = (0, 0);
        let mut empty = Vec::new();
        for (target, (passed, failed)) in &self.targets {
            println!("  {target:<44} {passed:>5} passed  {failed:>3} failed");
            total.0 += passed;
            total.1 += failed;
            if *passed == 0 {
                empty.push(*target);
            }
        }
        println!("=======================================================");
        println!("total: {} passed, {} failed", total.0, total.1);
        if total.1 > 0 {
            return Err(format!("{} test(s) failed", total.1));
        }
        if !empty.is_empty() {
            return Err(format!("these targets ran no test: {}", empty.join(", ")));
        }
        Ok(())
    }
}

fn classify_binary(running: &str) -> &'static str {
    let path = running.split_whitespace().next().unwrap_or("");
    match path {
        "tests/smol.rs" => "native smol (conformance)",
        "tests/tokio.rs" => "native tokio current+multi (conformance)",
        "tests/virtual.rs" => "native VirtualRuntime (conformance)",
        "tests/smol_adapter.rs" => "native smol adapter",
        "tests/tokio_adapter.rs" => "native tokio adapter",
        p if p.starts_with("unittests") && running.contains("deps/staunch-") => {
            "native core unit tests"
        }
        _ => "native: other (unit, property, demo, xtask)",
    }
}

/// Runs every check. `--skip-setup` skips installing tools.
pub(crate) fn all(args: &[String]) -> Result {
    let started = Instant::now();
    if !args.iter().any(|a| a == "--skip-setup") {
        setup::everything()?;
    }
    let mut summary = Summary::default();

    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // wasm32: the libraries, and the conformance suite's wasm test files
    // (core's own tests use proptest, which does not build for wasm32).
    let wasm_clippy = |packages: &[&str], targets: &[&str]| {
        let mut cmd = Command::new("cargo");
        cmd.args(["clippy", "--target", "wasm32-unknown-unknown"]);
        for p in packages {
            cmd.args(["-p", p]);
        }
        cmd.args(targets).args(["--", "-D", "warnings"]);
        run(&mut cmd)
    };
    wasm_clippy(&["staunch", "staunch-web", "staunch-demo"], &["--lib"])?;
    wasm_clippy(&["staunch-tests", "staunch-web"], &["--lib", "--tests"])?;

    // staunch-redis runs on its own below: its tests need redis-server.
    let lines = capture(Command::new("cargo").args([
        "test",
        "--workspace",
        "--all-features",
        "--exclude",
        "staunch-redis",
    ]))?;
    summary.add_cargo_test(&lines);

    // Shared breaker and rate limits against real redis-server processes
    // (started by the tests on 127.0.0.1 and free ports), on tokio and smol.
    let redis = capture(Command::new("cargo").args(["test", "-p", "staunch-redis"]))?;
    summary.add("native redis (tokio/smol)", count_results(&redis));

    // loom model checks of the concurrent internals, in their own target dir
    // so the cfg does not invalidate the main build.
    let loom = capture(
        Command::new("cargo")
            .args(["test", "-p", "staunch", "--release", "--lib", "loom"])
            .env("RUSTFLAGS", "--cfg staunch_loom")
            .env("CARGO_TARGET_DIR", crate::run::root().join("target/loom"))
            .env("LOOM_MAX_PREEMPTIONS", "3"),
    )?;
    summary.add("native loom models", count_results(&loom));

    let node = capture(Command::new("wasm-pack").args(["test", "--node", "tests"]))?;
    summary.add("wasm32 Node (Web + VirtualRuntime)", count_results(&node));
    let abort = capture(Command::new("wasm-pack").args(["test", "--node", "adapters/web"]))?;
    summary.add(
        "wasm32 Node (staunch-web AbortSignal bridge)",
        count_results(&abort),
    );
    let chrome =
        capture(Command::new("wasm-pack").args(["test", "--headless", "--chrome", "tests"]))?;
    summary.add(
        "wasm32 headless Chromium (Web + VirtualRuntime)",
        count_results(&chrome),
    );

    summary.add("demo in headless Chromium", demo::browser_test()?);

    for bench in BENCHES {
        run(Command::new("cargo").args([
            "bench",
            "-p",
            "staunch-tests",
            "--bench",
            bench,
            "--",
            "--quick",
        ]))?;
    }

    // Bytes shipped to browsers: fails if a program grew > 10 % over its
    // checked-in baseline (quick: no wasm-opt, no demo).
    wasm_size::bench(&["--quick".to_owned()])?;

    println!(
        "\nall checks took {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    summary.print_and_check()
}
