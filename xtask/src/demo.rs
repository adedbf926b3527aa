//! `cargo xtask demo`: build the resilience lab for the browser, run it
//! natively, and serve it on 127.0.0.1. Also the demo's browser test.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;

use crate::run;
use crate::run::{self as cmd, Result, capture, count_results, root};
use crate::setup;

/// Builds the wasm package into `web-demo/pkg`.
fn build_wasm() -> Result {
    setup::wasm_toolchain()?;
    cmd::run(Command::new("wasm-pack").args([
        "build",
        "web-demo",
        "--release",
        "--target",
        "web",
        "--out-dir",
        "pkg",
        "--no-typescript",
        "--no-pack",
    ]))?;
    let wasm = root().join("web-demo/pkg/staunch_demo_bg.wasm");
    let (raw, gzipped) = sizes(&wasm)?;
    println!("demo wasm: {raw} bytes raw, {gzipped} gzipped (before wasm-opt)");
    setup::binaryen()?;
    if run::on_path("wasm-opt") {
        let optimised = wasm.with_extension("opt.wasm");
        cmd::run(
            Command::new("wasm-opt")
                .arg("-Oz")
                .args(WASM_OPT_FEATURES)
                .arg(&wasm)
                .arg("-o")
                .arg(&optimised),
        )?;
        // Measured, not served: Debian's binaryen 108 rewrites the
        // externref table that wasm-bindgen emits, and Chromium then rejects
        // the module (`WebAssembly.Table.set(): ... must be null`).
        let (raw, gzipped) = sizes(&optimised)?;
        println!(
            "demo wasm: {raw} bytes raw, {gzipped} gzipped (after wasm-opt -Oz, measured only: binaryen 108 breaks wasm-bindgen's externref table, so the page serves the unoptimised module)"
        );
    } else {
        println!("demo wasm: wasm-opt not found (install binaryen); left unoptimised");
    }
    Ok(())
}

/// Features today's rustc emits that binaryen 108 needs named.
pub(crate) const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
];

/// The file's size raw and gzipped (`gzip -9`).
pub(crate) fn sizes(file: &Path) -> Result<(u64, u64)> {
    let raw = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .len();
    let gz = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(file)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    Ok((raw, gz.stdout.len() as u64))
}

/// Runs the demo: builds it, runs the crawler natively on smol and tokio,
/// then serves the browser version until interrupted.
pub(crate) fn serve_demo(args: &[String]) -> Result {
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(8080), |p| {
            p.parse::<u16>()
                .map_err(|_| format!("--port takes a number, got {p}"))
        })?;
    build_wasm()?;
    run_native()?;
    run_shared()?;
    // In CI nobody opens the page: build and run natively, then stop.
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if in_ci || args.iter().any(|a| a == "--no-serve") {
        return Ok(());
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        format!("cannot listen on 127.0.0.1:{port}: {e}; pass --port N to use another port")
    })?;
    let service = LabService::start()?;
    println!(
        "\nresilience lab: open http://127.0.0.1:{port}/?hosts={} in a browser (Ctrl-C to stop)\n\
         (the page's \"real HTTP\" panel crawls the flaky service started for it; without \
         ?hosts= the page shows the simulated web only)",
        service.hosts.join(",")
    );
    serve(listener, root().join("web-demo"));
    drop(service);
    Ok(())
}

/// The lab's flaky service in a process of its own, on free 127.0.0.1
/// ports; killed when dropped.
struct LabService {
    child: Child,
    hosts: Vec<String>,
}

impl LabService {
    fn start() -> Result<LabService> {
        cmd::run(Command::new("cargo").args([
            "build",
            "--release",
            "-p",
            "staunch-demo",
            "--bin",
            "lab-service",
        ]))?;
        let mut child = Command::new(root().join("target/release/lab-service"))
            .args(["--port-base", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the lab service: {e}"))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out)
                .read_line(&mut line)
                .map_err(|e| format!("reading the lab service's hosts: {e}"))?;
        }
        let hosts: Vec<String> = line
            .split("\"url\":\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect();
        if hosts.is_empty() {
            let _ = child.kill();
            return Err(format!("the lab service printed no hosts: {line:?}"));
        }
        Ok(LabService { child, hosts })
    }
}

impl Drop for LabService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one of the demo's binaries, built in release mode, with `args`.
fn run_demo_bin(bin: &str, args: &[&str]) -> Result {
    cmd::run(
        Command::new("cargo")
            .args(["run", "--release", "-p", "staunch-demo", "--bin", bin, "--"])
            .args(args),
    )
}

fn run_native() -> Result {
    run_demo_bin("resilience-lab", &[])
}

/// The lab's crawlers as three OS processes, first with per-process
/// breakers, then sharing them through a redis-server the binary starts
/// (installed here when missing).
fn run_shared() -> Result {
    setup::redis_server()?;
    run_demo_bin("lab-shared", &["--processes", "3"])
}

/// Builds the demo, serves it on a free loopback port, and drives it in
/// headless Chromium with playwright-core. Returns (passed, failed).
pub(crate) fn browser_test() -> Result<(u64, u64)> {
    build_wasm()?;
    setup::demo_packages()?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let dir = root().join("web-demo");
    thread::spawn(move || serve(listener, dir));
    let service = LabService::start()?;
    let lines = capture(
        Command::new("node")
            .arg("test.mjs")
            .current_dir(root().join("web-demo/browser-test"))
            .env("DEMO_URL", format!("http://127.0.0.1:{port}/"))
            .env("LAB_HOSTS", service.hosts.join(","))
            .env("SCREENSHOT", root().join("target/demo-screenshot.png")),
    )?;
    drop(service);
    Ok(count_results(&lines))
}

/// Serves files under `dir` over HTTP/1.0, one thread per connection.
fn serve(listener: TcpListener, dir: PathBuf) {
    for stream in listener.incoming().map_while(std::result::Result::ok) {
        let dir = dir.clone();
        thread::spawn(move || {
            let _ = respond(stream, &dir);
        });
    }
}

fn respond(mut stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut request_line = String::new();
    BufReader::new(&stream).read_line(&mut request_line)?;
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let relative = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    if relative
        .split('/')
        .any(|part| part == ".." || part.is_empty())
    {
        return stream.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
    }
    match std::fs::read(dir.join(relative)) {
        Ok(body) => {
            let kind = match relative.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js" | "mjs") => "text/javascript",
                Some("wasm") => "application/wasm",
                Some("css") => "text/css",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body)
        }
        Err(_) => stream.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
    }
}
