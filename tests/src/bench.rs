//! A small benchmark harness that measures staunch and its peers in the same
//! run, interleaved, and reports the ratio.
//!
//! Each bench binary (`tests/benches/*.rs`, `harness = false`) calls
//! [`Bench::from_args`] and then [`Bench::compare`] per scenario. Samples of
//! each contender alternate, so drift on a shared machine hits all alike;
//! the median of the samples is reported.
//!
//! Where a contender's stack and heap data happen to fall moves the time of
//! a 10-item gather by several percent either way, so a comparison varies
//! them instead of measuring one layout: each round of samples runs at a
//! different stack depth and with its allocations pushed to different heap
//! addresses, the same for every contender in the round, and which
//! contender goes first alternates. A full run also repeats the whole
//! bench in several fresh processes (`--runs K`, 5 by default), each with
//! its own randomised addresses, and reports per scenario the median of
//! their ratios with the lowest and highest.
//!
//! `--quick` (or `STAUNCH_BENCH_QUICK=1`) takes few, short samples in one
//! process: CI runs every bench that way so benches never rot. Results are
//! printed as a markdown table and appended to `target/bench-results.md`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the processes a full run starts; each of
/// them measures once and reports its rows on standard output.
const CHILD_ENV: &str = "STAUNCH_BENCH_CHILD";

/// Marks a machine-readable row in a child's output.
const ROW_MARK: &str = "@row\t";

/// Marks the title in a child's output.
const TITLE_MARK: &str = "@title\t";

/// Runs comparisons and prints their results.
#[derive(Debug)]
pub struct Bench {
    quick: bool,
    /// Whether this process is one of a full run's repeats.
    child: bool,
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
    /// Median time per iteration, in nanoseconds (fractional: a 10-item
    /// gather takes tens of nanoseconds, and whole ones would round its
    /// ratios by a percent or more).
    pub median_ns: f64,
    /// `median / staunch's median` for peers, 1.0 for staunch.
    pub ratio_to_staunch: f64,
}

/// A contender: a name and a closure that runs one iteration.
pub type Contender<'a> = (&'a str, &'a mut dyn FnMut());

impl Bench {
    /// Reads `--quick`, `--runs K` and an optional name filter from the
    /// command line (cargo passes `--bench`, which is ignored). A scenario
    /// runs if its name contains the filter; a filter ending in `$` must
    /// match the end of the name, so `n=10$` leaves out `n=1000`.
    ///
    /// With more than one run (a full run's default is 5, quick mode's 1)
    /// this process does not return: it runs the bench that many times, each
    /// in a fresh process, prints the combined table and exits.
    #[must_use]
    pub fn from_args() -> Bench {
        let mut quick = std::env::var("STAUNCH_BENCH_QUICK").is_ok_and(|v| v == "1");
        let child = std::env::var(CHILD_ENV).is_ok_and(|v| v == "1");
        let mut filter = None;
        let mut runs = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--runs" => match parse_runs(args.next().as_deref()) {
                    Ok(n) => runs = Some(n),
                    Err(message) => {
                        eprintln!("{message}");
                        std::process::exit(2)
                    }
                },
                "--bench" => {}
                other if !other.starts_with('-') => filter = Some(other.to_owned()),
                _ => {}
            }
        }
        let runs = runs.unwrap_or(if quick { 1 } else { DEFAULT_RUNS });
        if runs > 1 && !child {
            run_repeats(runs);
        }
        Bench {
            quick,
            child,
            filter,
            rows: Vec::new(),
        }
    }

    /// Whether the command line's filter selects `scenario`.
    fn selects(&self, scenario: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| matches_filter(scenario, f))
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
        if !self.selects(scenario) {
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
        let mut theirs: Vec<Vec<f64>> = vec![Vec::with_capacity(samples); peers.len()];
        for round in 0..samples {
            // Each round runs every contender at the same stack depth, and
            // the depth changes from round to round (see `at_depth`).
            // The same goes for where on the heap their allocations land
            // (see `HeapShift`).
            let depth = round * 17 % STACK_SHIFTS;
            let shifted = |run: &mut dyn FnMut()| {
                let shift = HeapShift::new(round);
                let took = at_depth(depth, &mut || sample(run, iters));
                drop(shift);
                took
            };
            let staunch_first = round % 2 == 0;
            if staunch_first {
                ours.push(shifted(staunch));
            }
            for (i, (_, run)) in peers.iter_mut().enumerate() {
                theirs[i].push(shifted(*run));
            }
            if !staunch_first {
                ours.push(shifted(staunch));
            }
        }
        let base = median(&mut ours);
        self.rows.push(Row {
            scenario: scenario.into(),
            contender: "staunch".into(),
            median_ns: base,
            ratio_to_staunch: 1.0,
        });
        for (i, (name, _)) in peers.iter().enumerate() {
            let m = median(&mut theirs[i]);
            self.rows.push(Row {
                scenario: scenario.into(),
                contender: (*name).into(),
                median_ns: m,
                ratio_to_staunch: m / base.max(1e-12),
            });
        }
        let last = &self.rows[self.rows.len() - peers.len() - 1..];
        for row in last {
            println!(
                "{:<40} {:<34} {:>12.1} ns/iter",
                row.scenario, row.contender, row.median_ns
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
    /// Like measurements, notes on scenarios the filter leaves out are dropped.
    pub fn note(&mut self, scenario: &str, what: &str, value: f64) {
        if !self.selects(scenario) {
            return;
        }
        println!("{scenario:<40} {what:<34} {:>12}", format_note(value));
        self.rows.push(Row {
            scenario: scenario.into(),
            contender: what.into(),
            median_ns: 0.0,
            ratio_to_staunch: value,
        });
    }

    /// The rows measured so far.
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Prints the markdown table and appends it to `target/bench-results.md`;
    /// in one of a full run's repeats, prints the rows for the parent instead.
    pub fn finish(self, title: &str) {
        if self.child {
            println!("{TITLE_MARK}{title}");
            for row in &self.rows {
                println!(
                    "{ROW_MARK}{}\t{}\t{}\t{}",
                    row.scenario, row.contender, row.median_ns, row.ratio_to_staunch
                );
            }
            return;
        }
        let mut table = format!(
            "\n### {title}{}\n\n| scenario | contender | time/iter | staunch ÷ contender |\n|---|---|---|---|\n",
            if self.quick {
                " (quick mode: indicative only)"
            } else {
                ""
            }
        );
        for row in &self.rows {
            if row.median_ns == 0.0 {
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | |",
                    row.scenario,
                    row.contender,
                    format_note(row.ratio_to_staunch)
                );
            } else {
                let _ = writeln!(
                    table,
                    "| {} | {} | {} | {:.3} |",
                    row.scenario,
                    row.contender,
                    format_nanos(row.median_ns),
                    1.0 / row.ratio_to_staunch
                );
            }
        }
        publish(&table);
    }
}

/// Prints a finished table and appends it to `target/bench-results.md`.
fn publish(table: &str) {
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

/// How many processes a full run measures in, unless `--runs` says.
const DEFAULT_RUNS: usize = 5;

/// The value of `--runs`, or what to tell the user about a missing or bad one.
fn parse_runs(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::parse::<usize>) {
        Some(Ok(runs)) if runs >= 1 => Ok(runs),
        _ => Err(format!(
            "bench: `--runs` takes a whole number of processes, at least 1 (e.g. `--runs 5`); got {value:?}"
        )),
    }
}

/// One cell of the combined table: every run's measurement of one
/// contender in one scenario.
struct Cell {
    scenario: String,
    contender: String,
    /// Each run's median nanoseconds per iteration; empty for a note.
    times: Vec<f64>,
    /// Each run's staunch ÷ contender, or a note's value.
    values: Vec<f64>,
}

/// Runs this bench `runs` times, each in a fresh process with the same
/// arguments, then prints and records the combined table and exits.
fn run_repeats(runs: usize) -> ! {
    let exe = std::env::current_exe().unwrap_or_else(|e| {
        eprintln!("bench: cannot find this bench's own executable to repeat it: {e}");
        std::process::exit(2)
    });
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut title = String::new();
    let mut cells: Vec<Cell> = Vec::new();
    for run in 1..=runs {
        let mut child = Command::new(&exe)
            .args(&args)
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                eprintln!("bench: cannot start run {run} of {runs}: {e}");
                std::process::exit(2)
            });
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(t) = line.strip_prefix(TITLE_MARK) {
                    t.clone_into(&mut title);
                } else if let Some(row) = line.strip_prefix(ROW_MARK) {
                    add_row(&mut cells, row);
                } else {
                    println!("run {run}/{runs}: {line}");
                }
            }
        }
        match child.wait() {
            Ok(status) if status.success() => {}
            outcome => {
                eprintln!("bench: run {run} of {runs} failed: {outcome:?}");
                std::process::exit(1)
            }
        }
    }
    publish(&combined_table(&title, runs, &mut cells));
    std::process::exit(0)
}

/// Adds one child row (`scenario`, `contender`, nanoseconds, value) to its cell.
fn add_row(cells: &mut Vec<Cell>, row: &str) {
    let fields: Vec<&str> = row.split('\t').collect();
    let [scenario, contender, nanos, value] = fields[..] else {
        eprintln!("bench: ignoring a malformed row from a run: {row:?}");
        return;
    };
    let (Ok(nanos), Ok(value)) = (nanos.parse::<f64>(), value.parse::<f64>()) else {
        eprintln!("bench: ignoring a malformed row from a run: {row:?}");
        return;
    };
    let at = match cells
        .iter()
        .position(|c| c.scenario == scenario && c.contender == contender)
    {
        Some(at) => at,
        None => {
            cells.push(Cell {
                scenario: scenario.to_owned(),
                contender: contender.to_owned(),
                times: Vec::new(),
                values: Vec::new(),
            });
            cells.len() - 1
        }
    };
    if nanos > 0.0 {
        cells[at].times.push(nanos);
        // The child records the peer's time ÷ staunch's; the table shows
        // staunch ÷ peer.
        cells[at].values.push(1.0 / value);
    } else {
        cells[at].values.push(value);
    }
}

/// The markdown table of a full run: per cell the median over runs, and
/// for ratios the lowest and highest run.
fn combined_table(title: &str, runs: usize, cells: &mut [Cell]) -> String {
    let mut table = format!(
        "\n### {title} (median of {runs} processes)\n\n| scenario | contender | time/iter | staunch ÷ contender | lowest–highest |\n|---|---|---|---|---|\n"
    );
    for cell in cells.iter_mut() {
        cell.values.sort_by(f64::total_cmp);
        let mid = cell.values[cell.values.len() / 2];
        if cell.times.is_empty() {
            let _ = writeln!(
                table,
                "| {} | {} | {} | | {}–{} |",
                cell.scenario,
                cell.contender,
                format_note(mid),
                format_note(cell.values[0]),
                format_note(cell.values[cell.values.len() - 1])
            );
        } else if cell.contender == "staunch" {
            let time = median(&mut cell.times);
            let _ = writeln!(
                table,
                "| {} | staunch | {} | 1.000 | |",
                cell.scenario,
                format_nanos(time)
            );
        } else {
            let time = median(&mut cell.times);
            let (low, high) = (cell.values[0], cell.values[cell.values.len() - 1]);
            let _ = writeln!(
                table,
                "| {} | {} | {} | {mid:.3} | {low:.3}–{high:.3} |",
                cell.scenario,
                cell.contender,
                format_nanos(time)
            );
        }
    }
    table
}

/// A noted figure: a ratio (below 10) to three decimals, bytes to one.
fn format_note(value: f64) -> String {
    if value.abs() < 10.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.1}")
    }
}

fn format_nanos(ns: f64) -> String {
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
        let per = sample(run, iters);
        let took = per * iters as f64;
        let target = target.as_secs_f64() * 1e9;
        if took >= target / 4.0 || iters >= 1 << 30 {
            return ((target / per.max(1e-3)) as u64).clamp(1, 1 << 30);
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
fn at_depth(depth: usize, f: &mut dyn FnMut() -> f64) -> f64 {
    let pad = black_box([0u8; 64]);
    let took = if depth == 0 {
        f()
    } else {
        at_depth(depth - 1, f)
    };
    black_box(pad);
    took
}

/// Heap blocks held while one contender runs one round, so that the
/// allocations it makes land somewhere else each round.
///
/// The allocator hands a freed block of a size back to the next request of
/// that size, so a benchmark's tables and vectors sit at the same heap
/// offsets, relative to each other and to the stack, for the whole run.
/// Taking a round-dependent number of cached blocks of every small size
/// (and a round-dependent slice of fresh heap) out of the way moves them.
struct HeapShift {
    _held: Vec<Box<[u8]>>,
}

impl HeapShift {
    /// Small sizes, in steps of the allocator's 16-byte granule.
    const SIZES: std::ops::RangeInclusive<usize> = 1..=64;

    fn new(round: usize) -> HeapShift {
        let per_size = round * 5 % 8;
        let mut held = Vec::with_capacity(Self::SIZES.count() * per_size + 1);
        held.push(vec![0u8; 16 + round % 32 * 48].into_boxed_slice());
        for _ in 0..per_size {
            for granules in Self::SIZES {
                held.push(black_box(vec![0u8; granules * 16 - 8].into_boxed_slice()));
            }
        }
        HeapShift { _held: held }
    }
}

/// Nanoseconds per iteration over `iters` iterations.
fn sample(run: &mut dyn FnMut(), iters: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        run();
        black_box(());
    }
    start.elapsed().as_secs_f64() * 1e9 / iters as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_matches_a_substring_or_with_a_dollar_a_suffix() {
        assert!(matches_filter("gather/ready/n=1000", "n=10"));
        assert!(!matches_filter("gather/ready/n=1000", "n=10$"));
        assert!(matches_filter("gather/ready/n=10", "n=10$"));
        assert!(!matches_filter("gather/ready/n=10", "try_gather"));
    }

    #[test]
    fn runs_must_be_a_positive_whole_number() {
        assert_eq!(parse_runs(Some("3")), Ok(3));
        for bad in [None, Some("0"), Some("-1"), Some("five")] {
            let message = parse_runs(bad).unwrap_err();
            assert!(message.contains("at least 1"), "{message}");
        }
    }

    /// The rows a child prints for one scenario, with staunch at 100 ns
    /// and the peer at `peer_ns`.
    fn child_rows(cells: &mut Vec<Cell>, peer_ns: f64) {
        add_row(cells, "s\tstaunch\t100\t1");
        add_row(cells, &format!("s\tpeer\t{peer_ns}\t{}", peer_ns / 100.0));
        add_row(cells, "s\tbytes/item staunch\t0\t88");
        add_row(cells, &format!("s\tnoted ratio\t0\t{}", peer_ns / 100.0));
    }

    #[test]
    fn the_combined_table_shows_each_cells_median_and_range_over_runs() {
        let mut cells = Vec::new();
        for peer_ns in [125.0, 80.0, 100.0] {
            child_rows(&mut cells, peer_ns);
        }
        assert_eq!(cells.len(), 4, "one cell per scenario and contender");
        let table = combined_table("t", 3, &mut cells);
        assert!(table.contains("(median of 3 processes)"), "{table}");
        assert!(
            table.contains("| s | staunch | 100.0 ns | 1.000 | |"),
            "{table}"
        );
        // staunch ÷ peer per run: 0.8, 1.25, 1.0.
        assert!(
            table.contains("| s | peer | 100.0 ns | 1.000 | 0.800–1.250 |"),
            "{table}"
        );
        // A noted figure: its median and range as they are, a ratio (below
        // 10) to three decimals, bytes to one.
        assert!(
            table.contains("| s | bytes/item staunch | 88.0 | | 88.0–88.0 |"),
            "{table}"
        );
        assert!(
            table.contains("| s | noted ratio | 1.000 | | 0.800–1.250 |"),
            "{table}"
        );
    }

    #[test]
    fn a_malformed_child_row_is_skipped_not_counted() {
        let mut cells = Vec::new();
        add_row(&mut cells, "s\tpeer\tnot-a-number\t1");
        add_row(&mut cells, "too\tfew");
        assert!(cells.is_empty());
    }

    #[test]
    fn a_heap_shift_holds_a_different_amount_each_round() {
        let sizes: Vec<usize> = (0..8)
            .map(|round| HeapShift::new(round)._held.len())
            .collect();
        let distinct: std::collections::BTreeSet<_> = sizes.iter().collect();
        assert_eq!(distinct.len(), 8, "{sizes:?}");
    }
}
