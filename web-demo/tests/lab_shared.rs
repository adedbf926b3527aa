//! The lab's crawlers as three OS processes against one service: with
//! breakers shared through a real redis-server (started by the binary), a
//! host that is down is learned once for all processes.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

/// The count after "requests to the host that is down: " in each round.
fn down_host_requests(out: &str) -> Vec<u64> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("requests to the host that is down: "))
        .map(|n| n.parse().expect("a count"))
        .collect()
}

#[test]
fn shared_breakers_learn_a_dead_host_once_for_every_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_lab-shared"))
        .args(["--processes", "3"])
        .output()
        .expect("lab-shared runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lab-shared failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let crawlers = stdout
        .lines()
        .filter(|l| l.trim().starts_with("crawler "))
        .count();
    assert_eq!(crawlers, 6, "3 crawler processes in each round:\n{stdout}");
    let [per_process, shared] = down_host_requests(&stdout)[..] else {
        panic!("two rounds expected:\n{stdout}")
    };
    // The shared breaker needs its minimum of 3 failures, from all
    // processes together, before it trips.
    assert!(shared >= 3, "the dead host was never tried:\n{stdout}");
    assert!(
        shared <= per_process,
        "sharing the breaker sent more to the dead host ({shared}) than per-process breakers ({per_process}):\n{stdout}"
    );
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_lab-shared"))
        .args(["--processes", "0"])
        .output()
        .expect("lab-shared runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--processes takes a number from 1 to 16")
    );
}
