//! A small benchmark harness that measures staunch and its peers in the same
//! run, interleaved, and reports the ratio.
//!
//! Each bench binary (`tests/benches/*.rs`, `harness = false`) calls
//! [`Bench::from_args`] and then [`Bench::compare`] per scenario. Samples of
//! each contender alternate, so drift on a shared machine hits all alike;
//! the median of the samples is reported.
//!
//! `--quick` (or `STAUNCH_BENCH_QUICK=1`) takes few, short samples: CI runs
//! every bench that way so benches never rot. Results are printed as a
//! markdown table and appended to `target/bench-results.md`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// Runs comparisons and prints their results.
#[derive(Debug)]
pub struct Bench {
    quick: bool,
    filter: Option<String>,
    rows: Vec<Row>,
}

/// One measured contender in one scenario.
#[derive(Debug, Clone)]
pub struct Row {
    /// The scenario, e.g. `gather/n=1000`.
    pub scenario: String,
    /// The contender, e.g. `staunch` or `futures::join_all`.
    pub contender: String,
    /// Median time per iteration.
    pub median: Duration,
    /// `median / staunch's median` for peers, 1.0 for staunch.
    pub ratio_to_staunch: f64,
}

/// A contender: a name and a closure that runs one iteration.
pub type Contender<'a> = (&'a str, &'a mut dyn FnMut());

impl Bench {
    /// Reads `--quick` and an optional name filter from the command line
    /// (cargo passes `--bench`, which is ignored). A scenario runs if its
    /// name contains the filter; a filter ending in `$` must match the end
    /// of the name, so `n=10$` leaves out `n=1000`.
    #[must_use]
    pub fn from_args() -> Bench {
        let mut quick = std::env::var("STAUNCH_BENCH_QUICK").is_ok_and(|v| v == "1");
        let mut filter = None;
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--quick" => quick = true,
                "--bench" => {}
                other if !other.starts_with('-') => filter = Some(other.to_owned()),
                _ => {}
            }
        }
        Bench {
            quick,
            filter,
            rows: Vec::new(),
        }
    }

    /// Whether this is a quick (smoke) run.
    #[must_use]
    pub fn is_quick(&self) -> bool {
        self.quick
    }

    /// Measures `staunch` and each peer on `scenario`, interleaved, and
    /// records the median time per iteration of each.
    pub fn compare(
        &mut self,
        scenario: &str,
        staunch: &mut dyn FnMut(),
        peers: &mut [Contender<'_>],
    ) {
        if self
            .filter
            .as_deref()
            .is_some_and(|f| !matches_filter(scenario, f))
        {
            return;
        }
        let (samples, target) = if self.quick {
            (3, Duration::from_millis(20))
        } else {
            (25, Duration::from_millis(100))
        };
        // Calibrate: iterations per sample so that staunch's sample takes ~target.
        let iters = calibrate(staunch, target);
        let mut ours = Vec::with_capacity(samples);
        let mut theirs: Vec<Vec<Duration>> = vec![Vec::with_capacity(samples); peers.len()];
        for round in 0..samples {
            // Each round runs every contender at the same stack depth, and
            // the depth changes from round to round (see `at_depth`).
            let depth = round * 17 % STACK_SHIFTS;
            ours.push(at_depth(depth, &mut || sample(staunch, iters)));
            for (i, (_, run)) in peers.iter_mut().enumerate() {
                theirs[i].push(at_depth(depth, &mut || sample(*run, iters)));
            }
        }
        let base = median(&mut ours);
        self.rows.push(Row {
            scenario: scenario.into(),
            contender: "staunch".into(),
            median: base,
            ratio_to_staunch: 1.0,
        });
        for (i, (name, _)) in peers.iter().enumerate() {
            let m = median(&mut theirs[i]);
            self.rows.push(Row {
                scenario: scenario.into(),
                contender: (*name).into(),
                median: m,
                ratio_to_staunch: m.as_secs_f64() / base.as_secs_f64().max(1e-12),
            });
        }
        let last = &self.rows[self.rows.len() - peers.len() - 1..];
        for row in last {
            println!(
                "{:<40} {:<34} {:>12.1} ns/iter",
                row.scenario,
                row.contender,
                row.median.as_secs_f64() * 1e9
            );
        }
        for row in &last[1..] {
            println!(
                "{:<40} staunch / {:<24} = {:.3}x",
                row.scenario,
                row.contender,
                1.0 / row.ratio_to_staunch
            );
        }
    }

    /// Records an extra measured figure (e.g. bytes per item) in the report.
    pub fn note(&mut self, scenario: &str, what: &str, value: f64) {
        println!("{scenario:<40} {what:<34} {value:>12.1}");
        self.rows.push(Row {
            scenario: scenario.into(),
            contender: what.into(),
            median: Duration::ZERO,
            ratio_to_staunch: value,
        });
    }

    /// The rows measured so far.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Prints the markdown table and appends it to `target/bench-results.md`.
    pub fn finish(self, title: &str) {
        let mut table = format!(
            "\n### {title}{}\n\n| scenario | contender | time/iter | staunch ÷ contender |\n|---|---|---|---|\n",
            if self.quick {
                " (quick mode: indicative only)"
            } else {
                ""
            }
        );
        for row in &self.rows {
            if row.median.is_zero() {
                let _ = writeln!(
                    table,
                    "| {} | {} | {:.1} | |",
                    row.scenario, row.contender, row.ratio_to_staunch
                );
            } else {
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | {:.3} |",
                    row.scenario,
                    row.contender,
                    format_duration(row.median),
                    1.0 / row.ratio_to_staunch
                );
            }
        }
        println!("{table}");
        let dir = std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{dir}/bench-results.md"))
        {
            let _ = f.write_all(table.as_bytes());
        }
    }
}

fn format_duration(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn calibrate(run: &mut dyn FnMut(), target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let took = sample(run, iters) * u32::try_from(iters).unwrap_or(u32::MAX);
        if took >= target / 4 || iters >= 1 << 30 {
            let per = took.as_secs_f64() / iters as f64;
            return ((target.as_secs_f64() / per.max(1e-12)) as u64).clamp(1, 1 << 30);
        }
        iters *= 4;
    }
}

/// How many different stack depths the rounds of a comparison cycle through.
const STACK_SHIFTS: usize = 64;

/// Runs `f` `depth` frames of at least 64 bytes further down the stack.
///
/// Where a benchmark's stack sits relative to its heap data changes its
/// speed: on this project's machine one binary measured the same 10-item
/// gather from 0.75x to 1.12x its peer depending on the run's (randomised)
/// addresses, e.g. through loads that falsely alias stores 4 KiB apart.
/// Shifting the stack by a different amount each round (over more than
/// 4 KiB) makes each median cover many layouts instead of one lucky or
/// unlucky one, for staunch and its peers alike.
#[inline(never)]
fn at_depth(depth: usize, f: &mut dyn FnMut() -> Duration) -> Duration {
    let pad = black_box([0u8; 64]);
    let took = if depth == 0 {
        f()
    } else {
        at_depth(depth - 1, f)
    };
    black_box(pad);
    took
}

/// Time per iteration over `iters` iterations.
fn sample(run: &mut dyn FnMut(), iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        run();
        black_box(());
    }
    start.elapsed() / u32::try_from(iters).unwrap_or(u32::MAX)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Whether `scenario` is selected by `filter`: a substring, or with a
/// trailing `$` a suffix.
fn matches_filter(scenario: &str, filter: &str) -> bool {
    match filter.strip_suffix('$') {
        Some(suffix) => scenario.ends_with(suffix),
        None => scenario.contains(filter),
    }
}
