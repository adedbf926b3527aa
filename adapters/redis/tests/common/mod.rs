//! A real `redis-server` for the tests: [`staunch_redis::LocalRedis`]
//! (Debian's binary, on 127.0.0.1 and a free port, no persistence, killed
//! on drop), with raw commands for hand-made faults.
//!
//! The binary is `$STAUNCH_REDIS_SERVER` if set, else `redis-server` on the
//! `PATH` (`cargo xtask test` installs Debian's `redis-server` when it is
//! missing). A missing binary fails the test with what to install.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use staunch_redis::LocalRedis;

/// A running (or killed, to be restarted) `redis-server`.
#[derive(Debug)]
pub struct RedisServer(LocalRedis);

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer(LocalRedis::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// The URL for `redis::Client::open`.
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// A client for this server.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("a valid redis URL")
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it.
    pub fn kill(&mut self) {
        self.0.kill();
    }

    /// Starts the server again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.0.restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Runs one command over a plain socket and returns the raw reply
    /// (for DEBUG SLEEP and hand-made corruption without a client).
    pub fn raw(&self, args: &[&str]) -> String {
        RedisServer::raw_on(self.port(), args)
    }
    /// [`raw`](Self::raw) on a port, for use from another thread.
    pub fn raw_on(port: u16, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(cmd.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}
