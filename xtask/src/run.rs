//! Running commands, echoing their output, and counting test results.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
}

/// A failed step, with what to do about it.
pub(crate) type Result<T = ()> = std::result::Result<T, String>;

/// Runs `cmd` in the workspace root, echoing its output, and returns every
/// line it printed (stdout and stderr). Fails if it exits non-zero.
pub(crate) fn capture(cmd: &mut Command) -> Result<Vec<String>> {
    let shown = format!("{cmd:?}");
    println!("\n==> {shown}");
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        readers.push(thread::spawn(move || pump(BufReader::new(out), &tx, false)));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        readers.push(thread::spawn(move || pump(BufReader::new(err), &tx, true)));
    }
    drop(tx);
    let lines: Vec<String> = rx.iter().collect();
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {shown}: {e}"))?;
    if status.success() {
        Ok(lines)
    } else {
        Err(format!("{shown} failed with {status}"))
    }
}

fn pump(reader: impl BufRead, tx: &mpsc::Sender<String>, is_err: bool) {
    for line in reader.lines().map_while(std::result::Result::ok) {
        if is_err {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        let _ = tx.send(line);
    }
}

/// Runs `cmd` like [`capture`] and drops the output.
pub(crate) fn run(cmd: &mut Command) -> Result {
    capture(cmd).map(drop)
}

/// Sums `N passed` and `N failed` over libtest-style result lines
/// (`test result: ok. 12 passed; 0 failed; ...`), as printed by
/// `cargo test` and by wasm-bindgen-test.
pub(crate) fn count_results(lines: &[String]) -> (u64, u64) {
    let mut passed = 0;
    let mut failed = 0;
    for line in lines {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        passed += number_before(rest, " passed");
        failed += number_before(rest, " failed");
    }
    (passed, failed)
}

fn number_before(text: &str, word: &str) -> u64 {
    text.find(word)
        .and_then(|end| text[..end].rsplit(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

/// Whether `program` can be found on PATH.
pub(crate) fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_results_adds_up_every_result_line() {
        let lines = vec![
            "test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
                .to_owned(),
            "noise".to_owned(),
            "test result: FAILED. 3 passed; 2 failed; 0 ignored".to_owned(),
        ];
        assert_eq!(count_results(&lines), (15, 2));
    }
}
