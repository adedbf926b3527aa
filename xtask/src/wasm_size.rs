//! `cargo xtask wasm-size`: what staunch costs in bytes shipped to a browser,
//! next to the peers a user would pick for the same job.
//!
//! Each program in `tests/wasm-size/` is one exported async function, built
//! by wasm-pack (wasm-bindgen) for wasm32 with `opt-level = "s"`, LTO and one
//! codegen unit, into `target/wasm-size` so the workspace build is left
//! alone. Sizes are measured raw and gzipped (`gzip -9`), before and after
//! `wasm-opt -Oz` (measured only: see `demo.rs` for why the output is not
//! shipped). The table is printed, appended to `target/bench-results.md`,
//! and checked against `tests/wasm-size/baseline.txt`: a program whose
//! wasm-bindgen output grew more than 10 % fails the run.
//!
//! `--quick` (run by `cargo xtask test`) skips wasm-opt and the demo but
//! still checks the baseline; `--update-baseline` rewrites the baseline
//! from this run (say why in the commit message).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::demo::{WASM_OPT_FEATURES, sizes};
use crate::run::{self, Result, root};
use crate::setup;

/// One measured program: its directory under `tests/wasm-size`, the job it
/// does, and the program doing the same job with the peers, if any.
struct Program {
    name: &'static str,
    job: &'static str,
    peer: Option<&'static str>,
}

/// Every program, staunch's first, then the peers.
const PROGRAMS: &[Program] = &[
    Program {
        name: "retry-timeout",
        job: "retry (exp. backoff, jitter) around a 100 ms timeout",
        peer: Some("peer-backon"),
    },
    Program {
        name: "timeout",
        job: "one 100 ms timeout",
        peer: Some("peer-select-timeout"),
    },
    Program {
        name: "breaker",
        job: "retry-timeout plus a circuit breaker",
        peer: Some("peer-backon"),
    },
    Program {
        name: "gather10",
        job: "gather of 10 fallible futures",
        peer: Some("peer-join-all"),
    },
    Program {
        name: "group10",
        job: "task group of 10 fallible children",
        peer: Some("peer-join-all"),
    },
    Program {
        name: "policy",
        job: "fallback, retry, breaker, timeout, bulkhead",
        peer: None,
    },
    Program {
        name: "peer-backon",
        job: "peer: backon + gloo-timers + futures::select!",
        peer: None,
    },
    Program {
        name: "peer-select-timeout",
        job: "peer: hand-written select with a gloo-timers timeout",
        peer: None,
    },
    Program {
        name: "peer-join-all",
        job: "peer: futures::future::join_all",
        peer: None,
    },
];

/// How much a program may grow over its baseline before the run fails.
const ALLOWED_GROWTH: f64 = 0.10;

/// Sizes of one module, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Sizes {
    raw: u64,
    gzip: u64,
    /// After `wasm-opt -Oz`: (raw, gzip); `None` when not measured.
    opt: Option<(u64, u64)>,
}

/// Runs the size bench. See the module docs for the flags.
pub(crate) fn bench(args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    let update = args.iter().any(|a| a == "--update-baseline");
    if let Some(bad) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "--quick" | "--update-baseline"))
    {
        return Err(format!(
            "wasm-size: unknown option {bad}; the options are --quick and --update-baseline"
        ));
    }
    setup::wasm_toolchain()?;
    let with_opt = !quick && {
        setup::binaryen()?;
        run::on_path("wasm-opt")
    };

    let mut measured = BTreeMap::new();
    for program in PROGRAMS {
        let wasm = build(
            &root().join("tests/wasm-size").join(program.name),
            program.name,
        )?;
        measured.insert(program.name, measure(&wasm, with_opt)?);
    }
    let mut table = table(&measured, with_opt);
    if !quick {
        let wasm = build(&root().join("web-demo"), "demo")?;
        let demo = measure(&wasm, with_opt)?;
        let _ = writeln!(
            table,
            "\nThe resilience-lab demo (`web-demo`, the workspace's release profile): {}\n",
            describe(demo)
        );
    }
    publish(&table);

    let path = baseline_path();
    if update {
        std::fs::write(&path, render_baseline(&measured))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wasm-size: baseline rewritten at {}", path.display());
        return Ok(());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run `cargo xtask wasm-size --update-baseline` to create it",
            path.display()
        )
    })?;
    let baseline = parse_baseline(&text)?;
    let over = check(&baseline, &measured);
    if over.is_empty() {
        println!("wasm-size: every program is within 10 % of its baseline");
        Ok(())
    } else {
        Err(format!(
            "wasm-size: grew more than 10 % over tests/wasm-size/baseline.txt: {}. If the growth is justified, run `cargo xtask wasm-size --update-baseline` and say why in the commit message",
            over.join("; ")
        ))
    }
}

fn baseline_path() -> PathBuf {
    root().join("tests/wasm-size/baseline.txt")
}

/// Builds one crate with wasm-pack into `target/wasm-size/pkg/<name>` and
/// returns the path of its wasm-bindgen output.
fn build(dir: &Path, name: &str) -> Result<PathBuf> {
    let target = root().join("target/wasm-size");
    let out = target.join("pkg").join(name);
    run::run(
        Command::new("wasm-pack")
            .arg("build")
            .arg(dir)
            .args([
                "--release",
                "--target",
                "web",
                "--no-typescript",
                "--no-pack",
            ])
            .arg("--out-dir")
            .arg(&out)
            .env("CARGO_TARGET_DIR", &target),
    )?;
    std::fs::read_dir(&out)
        .map_err(|e| format!("{}: {e}", out.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("_bg.wasm"))
        .ok_or_else(|| format!("wasm-pack left no *_bg.wasm in {}", out.display()))
}

/// Measures one module raw and gzipped, and after `wasm-opt -Oz` if asked.
fn measure(wasm: &Path, with_opt: bool) -> Result<Sizes> {
    let (raw, gzip) = sizes(wasm)?;
    let opt = if with_opt {
        let optimised = wasm.with_extension("opt.wasm");
        run::run(
            Command::new("wasm-opt")
                .arg("-Oz")
                .args(WASM_OPT_FEATURES)
                .arg(wasm)
                .arg("-o")
                .arg(&optimised),
        )?;
        Some(sizes(&optimised)?)
    } else {
        None
    };
    Ok(Sizes { raw, gzip, opt })
}

fn kb(bytes: u64) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

fn describe(s: Sizes) -> String {
    let mut text = format!("{} raw, {} gzipped", kb(s.raw), kb(s.gzip));
    if let Some((raw, gzip)) = s.opt {
        let _ = write!(
            text,
            "; after wasm-opt -Oz {} raw, {} gzipped",
            kb(raw),
            kb(gzip)
        );
    }
    text
}

/// The markdown table: sizes, and each staunch program's ratio to its peer
/// (after wasm-opt when measured, else raw).
fn table(measured: &BTreeMap<&str, Sizes>, with_opt: bool) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\n### wasm size (wasm-bindgen output; opt-level \"s\", LTO, 1 codegen unit)\n"
    );
    let _ = writeln!(
        t,
        "| program | job | raw | gzip | -Oz raw | -Oz gzip | vs peer{} |",
        if with_opt { " (-Oz raw)" } else { " (raw)" }
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for program in PROGRAMS {
        let Some(s) = measured.get(program.name) else {
            continue;
        };
        let (opt_raw, opt_gzip) = s
            .opt
            .map_or(("-".into(), "-".into()), |(r, g)| (kb(r), kb(g)));
        let ratio = program
            .peer
            .and_then(|peer| measured.get(peer))
            .map_or("-".into(), |p| {
                let (mine, theirs) = match (s.opt, p.opt) {
                    (Some((mine, _)), Some((theirs, _))) => (mine, theirs),
                    _ => (s.raw, p.raw),
                };
                format!(
                    "{:.2}x {}",
                    mine as f64 / theirs as f64,
                    program.peer.unwrap_or_default()
                )
            });
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} |",
            program.name,
            program.job,
            kb(s.raw),
            kb(s.gzip),
            opt_raw,
            opt_gzip,
            ratio
        );
    }
    t
}

/// Prints the table and appends it to `target/bench-results.md`, like the
/// time benches do.
fn publish(table: &str) {
    println!("{table}");
    let path = root().join("target/bench-results.md");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, table.as_bytes()));
    if let Err(e) = appended {
        eprintln!("wasm-size: could not append to {}: {e}", path.display());
    }
}

fn render_baseline(measured: &BTreeMap<&str, Sizes>) -> String {
    let mut text = String::from(
        "# cargo xtask wasm-size: each program's wasm-bindgen output in bytes\n\
         # (before wasm-opt). A run fails when a program grows more than 10 %\n\
         # above this; update it with --update-baseline and say why.\n",
    );
    for program in PROGRAMS {
        if let Some(s) = measured.get(program.name) {
            let _ = writeln!(text, "{} {}", program.name, s.raw);
        }
    }
    text
}

/// Reads `name bytes` lines; `#` starts a comment.
fn parse_baseline(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut baseline = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(bytes), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!(
                "tests/wasm-size/baseline.txt line {}: expected `<program> <bytes>`, got `{line}`",
                number + 1
            ));
        };
        let bytes = bytes.parse().map_err(|_| {
            format!(
                "tests/wasm-size/baseline.txt line {}: `{bytes}` is not a whole number of bytes",
                number + 1
            )
        })?;
        baseline.insert(name.to_owned(), bytes);
    }
    Ok(baseline)
}

/// The programs that grew more than [`ALLOWED_GROWTH`] over their baseline,
/// or have none, each with what was measured.
fn check(baseline: &BTreeMap<String, u64>, measured: &BTreeMap<&str, Sizes>) -> Vec<String> {
    let mut over = Vec::new();
    for (name, s) in measured {
        match baseline.get(*name) {
            None => over.push(format!("{name} has no baseline ({} bytes now)", s.raw)),
            Some(&base) if s.raw as f64 > base as f64 * (1.0 + ALLOWED_GROWTH) => {
                over.push(format!(
                    "{name} is {} bytes, baseline {base} (+{:.1} %)",
                    s.raw,
                    (s.raw as f64 / base as f64 - 1.0) * 100.0
                ))
            }
            Some(_) => {}
        }
    }
    over
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(raw: u64) -> Sizes {
        Sizes {
            raw,
            ..Sizes::default()
        }
    }

    #[test]
    fn growth_over_ten_percent_fails_and_within_passes() {
        let baseline = parse_baseline("# comment\nretry-timeout 1000\ntimeout 1000 # trailing\n")
            .expect("valid baseline");
        let mut measured = BTreeMap::new();
        measured.insert("retry-timeout", sizes(1100));
        measured.insert("timeout", sizes(1101));
        let over = check(&baseline, &measured);
        assert_eq!(over.len(), 1, "{over:?}");
        assert!(over[0].starts_with("timeout is 1101 bytes"), "{over:?}");
    }

    #[test]
    fn a_program_without_baseline_fails() {
        let mut measured = BTreeMap::new();
        measured.insert("new-program", sizes(5));
        let over = check(&BTreeMap::new(), &measured);
        assert_eq!(over, vec!["new-program has no baseline (5 bytes now)"]);
    }

    #[test]
    fn a_bad_baseline_line_says_which_and_why() {
        let err = parse_baseline("retry-timeout ten\n").unwrap_err();
        assert!(err.contains("line 1") && err.contains("`ten`"), "{err}");
        let err = parse_baseline("retry-timeout\n").unwrap_err();
        assert!(err.contains("expected `<program> <bytes>`"), "{err}");
    }

    #[test]
    fn baseline_round_trips() {
        let mut measured = BTreeMap::new();
        measured.insert("retry-timeout", sizes(79313));
        measured.insert("peer-backon", sizes(40000));
        let parsed = parse_baseline(&render_baseline(&measured)).expect("own output parses");
        assert_eq!(parsed.get("retry-timeout"), Some(&79313));
        assert_eq!(parsed.get("peer-backon"), Some(&40000));
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn the_table_shows_the_ratio_to_the_peer() {
        let mut measured = BTreeMap::new();
        measured.insert(
            "retry-timeout",
            Sizes {
                raw: 2000,
                gzip: 900,
                opt: Some((1500, 700)),
            },
        );
        measured.insert(
            "peer-backon",
            Sizes {
                raw: 1000,
                gzip: 500,
                opt: Some((1000, 400)),
            },
        );
        let t = table(&measured, true);
        assert!(
            t.contains("| retry-timeout | retry (exp. backoff, jitter) around a 100 ms timeout | 2.0 KB | 0.9 KB | 1.5 KB | 0.7 KB | 1.50x peer-backon |"),
            "{t}"
        );
    }
}
