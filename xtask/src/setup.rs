//! Installing what the tests need on a fresh machine. Every step checks
//! first, so a second run costs seconds.

use std::process::Command;

use crate::run::{Result, on_path, root, run};

/// Installs everything `cargo xtask test` and `cargo xtask demo` need.
pub(crate) fn everything() -> Result {
    wasm_toolchain()?;
    browser()?;
    redis_server()?;
    demo_packages()
}

/// The wasm32 target and wasm-pack.
pub(crate) fn wasm_toolchain() -> Result {
    if on_path("rustup") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    if !on_path("wasm-pack") {
        run(Command::new("cargo").args(["install", "wasm-pack", "--locked"]))?;
    }
    Ok(())
}

/// Debian's binaryen, for `wasm-opt -Oz` on the demo's wasm (prebuilt
/// downloads fail here). Missing apt-get is not an error: the demo then
/// reports the unoptimised size only.
pub(crate) fn binaryen() -> Result {
    if on_path("wasm-opt") || !on_path("apt-get") {
        return Ok(());
    }
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    };
    cmd.args(["install", "-y", "--no-install-recommends", "binaryen"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run(&mut cmd)
}

/// Chromium and chromedriver (Debian packages), for the browser suites.
pub(crate) fn browser() -> Result {
    if on_path("chromium") && on_path("chromedriver") {
        return Ok(());
    }
    if !on_path("apt-get") {
        return Err("chromium and chromedriver are missing and apt-get is not available; install Chromium and a matching chromedriver and put them on PATH".into());
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update"])?;
    apt(&[
        "install",
        "-y",
        "--no-install-recommends",
        "chromium",
        "chromium-driver",
    ])
}

/// Debian's redis-server, for staunch-redis's tests (each test starts its
/// own server on 127.0.0.1 and a free port, without persistence).
pub(crate) fn redis_server() -> Result {
    if on_path("redis-server") {
        return Ok(());
    }
    if !on_path("apt-get") {
        return Err("redis-server is missing and apt-get is not available; install Redis (6.2 or newer) and put redis-server on PATH, or set STAUNCH_REDIS_SERVER to its path".into());
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "redis-server"][..],
    ] {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)?;
    }
    Ok(())
}

/// The demo's npm packages (playwright-core drives Debian's Chromium).
pub(crate) fn demo_packages() -> Result {
    let dir = root().join("web-demo/browser-test");
    if !dir.join("package.json").exists() || dir.join("node_modules/playwright-core").exists() {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
