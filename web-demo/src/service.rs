//! The lab's flaky upstream: a real HTTP/1.1 service on 127.0.0.1, one port
//! per host, each host with its own fault profile (hyper on tokio).
//!
//! `GET /page/{id}?seed=S&fail=F&latency=MS&attempt=N` answers a page whose
//! links and faults follow the seed, so a run reproduces; any other query
//! parameter, or a bad value, gets 400 with a message. `GET /stats` (on any
//! port) answers every host's counts as JSON. Every answer carries CORS
//! headers (and exposes `Retry-After`) so the page may fetch it.
//!
//! Counting rule: a request is `received` when its head is read; it then
//! ends exactly once, as `ok`, `unavailable` (503), `rate_limited` (429),
//! `bad_request` (400) or `aborted` (the client closed the connection before
//! the answer, seen when hyper drops the handler's future). While it runs it
//! is `in_flight`; so `received = ok + unavailable + rate_limited +
//! bad_request + aborted + in_flight` at every instant.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How a host of the service misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Answers after about `latency`.
    Healthy,
    /// Answers after about `latency`; a seeded share `fail` of requests get 503.
    Flaky,
    /// Answers after 15-25 times `latency` (past a 500 ms timeout at the default).
    Slow,
    /// Answers 503 at once, every time.
    Down,
    /// Reads the request and never answers.
    Tarpit,
    /// Answers 429 with `Retry-After: 1` on a seeded half of the attempts.
    RateLimited,
    /// Always answers 200, after 5 times `latency`: trips a slow-call rule.
    SlowButCorrect,
}

impl Profile {
    /// The profile's name, as `/stats` shows it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Profile::Healthy => "healthy",
            Profile::Flaky => "flaky",
            Profile::Slow => "slow",
            Profile::Down => "down",
            Profile::Tarpit => "tarpit",
            Profile::RateLimited => "rate-limited",
            Profile::SlowButCorrect => "slow-but-correct",
        }
    }
}

/// The service's hosts: name and profile; host `i` listens on its own port.
pub const HOSTS: [(&str, Profile); 7] = [
    ("docs", Profile::Healthy),
    ("blog", Profile::Flaky),
    ("cdn", Profile::Slow),
    ("legacy", Profile::Down),
    ("tarpit", Profile::Tarpit),
    ("api", Profile::RateLimited),
    ("search", Profile::SlowButCorrect),
];

/// One host's counts (see the module docs for the rule they obey).
#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    ok: AtomicU64,
    unavailable: AtomicU64,
    rate_limited: AtomicU64,
    bad_request: AtomicU64,
    aborted: AtomicU64,
}

/// A host's counts at one instant, as `/stats` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Requests whose head was read.
    pub received: u64,
    /// Answered 200.
    pub ok: u64,
    /// Answered 503.
    pub unavailable: u64,
    /// Answered 429.
    pub rate_limited: u64,
    /// Answered 400.
    pub bad_request: u64,
    /// Closed by the client before the answer.
    pub aborted: u64,
}

impl HostStats {
    /// Requests still being answered.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        self.received
            - self.ok
            - self.unavailable
            - self.rate_limited
            - self.bad_request
            - self.aborted
    }
}

impl Counts {
    fn snapshot(&self) -> HostStats {
        // `received` last, so a concurrent finish never makes in_flight negative.
        let s = HostStats {
            ok: self.ok.load(Ordering::SeqCst),
            unavailable: self.unavailable.load(Ordering::SeqCst),
            rate_limited: self.rate_limited.load(Ordering::SeqCst),
            bad_request: self.bad_request.load(Ordering::SeqCst),
            aborted: self.aborted.load(Ordering::SeqCst),
            received: 0,
        };
        HostStats {
            received: self.received.load(Ordering::SeqCst),
            ..s
        }
    }
}

/// A running service. Dropping it stops every listener.
#[derive(Debug)]
pub struct Service {
    /// Each host's name, profile and address, in [`HOSTS`] order.
    pub hosts: Vec<(&'static str, Profile, SocketAddr)>,
    counts: Arc<Vec<Counts>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Service {
    /// Starts every host on 127.0.0.1: host `i` on `base_port + i`, or on
    /// free ports when `base_port` is 0. Must be called inside tokio.
    ///
    /// # Errors
    ///
    /// The bind error, naming the port.
    pub async fn start(base_port: u16) -> io::Result<Service> {
        let counts: Arc<Vec<Counts>> = Arc::new(HOSTS.iter().map(|_| Counts::default()).collect());
        let mut hosts = Vec::new();
        let mut tasks = Vec::new();
        for (index, (name, profile)) in HOSTS.iter().enumerate() {
            let port = if base_port == 0 {
                0
            } else {
                base_port + index as u16
            };
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .await
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot bind 127.0.0.1:{port}: {e}"))
                })?;
            hosts.push((*name, *profile, listener.local_addr()?));
            tasks.push(tokio::spawn(accept(listener, index, counts.clone())));
        }
        Ok(Service {
            hosts,
            counts,
            tasks,
        })
    }

    /// Every host's counts now, in [`HOSTS`] order.
    #[must_use]
    pub fn stats(&self) -> Vec<HostStats> {
        self.counts.iter().map(Counts::snapshot).collect()
    }

    /// The hosts as JSON: `[{"host":..,"profile":..,"url":..}]`.
    #[must_use]
    pub fn hosts_json(&self) -> String {
        let rows: Vec<String> = self
            .hosts
            .iter()
            .map(|(name, profile, addr)| {
                format!(
                    r#"{{"host":"{name}","profile":"{}","url":"http://{addr}"}}"#,
                    profile.name()
                )
            })
            .collect();
        format!("[{}]", rows.join(","))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, host: usize, counts: Arc<Vec<Counts>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let counts = counts.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let counts = counts.clone();
                async move { Ok::<_, Infallible>(answer(request, host, &counts).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts a request as aborted unless it was answered before being dropped.
struct Pending<'a> {
    counts: &'a Counts,
    answered: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.counts.aborted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The parameters of a page request.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PageQuery {
    seed: u64,
    fail: f64,
    latency: Duration,
    attempt: u32,
}

fn parse_query(query: Option<&str>) -> Result<PageQuery, String> {
    let mut q = PageQuery {
        seed: 7,
        fail: 0.3,
        latency: Duration::from_millis(30),
        attempt: 1,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |what: &str| format!("parameter `{key}` must be {what}, got `{value}`");
        match key {
            "seed" => q.seed = value.parse().map_err(|_| bad("an unsigned integer"))?,
            "fail" => {
                q.fail = value
                    .parse()
                    .ok()
                    .filter(|f: &f64| (0.0..=1.0).contains(f))
                    .ok_or_else(|| bad("a number from 0 to 1"))?;
            }
            "latency" => {
                let ms: u64 = value
                    .parse()
                    .ok()
                    .filter(|ms| *ms <= 10_000)
                    .ok_or_else(|| bad("milliseconds from 0 to 10000"))?;
                q.latency = Duration::from_millis(ms);
            }
            "attempt" => {
                q.attempt = value
                    .parse()
                    .ok()
                    .filter(|a| *a >= 1)
                    .ok_or_else(|| bad("an attempt number from 1"))?;
            }
            _ => {
                return Err(format!(
                    "unknown parameter `{key}`; use seed, fail, latency or attempt"
                ));
            }
        }
    }
    Ok(q)
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", "*".parse().expect("valid"));
    headers.insert(
        "access-control-expose-headers",
        "retry-after".parse().expect("valid"),
    );
    headers.insert("cache-control", "no-store".parse().expect("valid"));
    response
}

async fn answer(
    request: Request<Incoming>,
    host: usize,
    counts: &[Counts],
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    if path == "/stats" {
        let rows: Vec<String> = HOSTS
            .iter()
            .zip(counts)
            .map(|((name, profile), c)| {
                let s = c.snapshot();
                format!(
                    r#"{{"host":"{name}","profile":"{}","received":{},"ok":{},"unavailable":{},"rate_limited":{},"bad_request":{},"aborted":{},"in_flight":{}}}"#,
                    profile.name(),
                    s.received,
                    s.ok,
                    s.unavailable,
                    s.rate_limited,
                    s.bad_request,
                    s.aborted,
                    s.in_flight()
                )
            })
            .collect();
        return reply(StatusCode::OK, format!("[{}]", rows.join(",")));
    }
    let Some(id) = path
        .strip_prefix("/page/")
        .and_then(|id| id.parse::<u32>().ok())
    else {
        return reply(
            StatusCode::NOT_FOUND,
            "not found; try /page/{id} or /stats".into(),
        );
    };
    let counts = &counts[host];
    counts.received.fetch_add(1, Ordering::SeqCst);
    let mut pending = Pending {
        counts,
        answered: false,
    };
    let query = match parse_query(request.uri().query()) {
        Ok(q) => q,
        Err(message) => {
            pending.answered = true;
            counts.bad_request.fetch_add(1, Ordering::SeqCst);
            return reply(StatusCode::BAD_REQUEST, message);
        }
    };
    let mut rng =
        Rng(query.seed ^ (u64::from(id) << 32) ^ (host as u64) << 16 ^ u64::from(query.attempt));
    let base = query.latency.as_millis() as u64;
    let jittered = |factor: u64, rng: &mut Rng| {
        let centre = base * factor;
        Duration::from_millis(centre - centre / 5 + rng.below(centre * 2 / 5 + 1))
    };
    let (delay, status) = match HOSTS[host].1 {
        Profile::Healthy => (jittered(1, &mut rng), StatusCode::OK),
        Profile::Flaky => {
            let fails = rng.unit() < query.fail;
            let delay = jittered(1, &mut rng);
            (
                delay,
                if fails {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                },
            )
        }
        Profile::Slow => (
            Duration::from_millis(base * (15 + rng.below(11))),
            StatusCode::OK,
        ),
        Profile::Down => (Duration::ZERO, StatusCode::SERVICE_UNAVAILABLE),
        Profile::Tarpit => (Duration::MAX, StatusCode::OK),
        Profile::RateLimited => {
            let limited = rng.unit() < 0.5;
            let delay = jittered(1, &mut rng);
            (
                delay,
                if limited {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::OK
                },
            )
        }
        Profile::SlowButCorrect => (jittered(5, &mut rng), StatusCode::OK),
    };
    if delay == Duration::MAX {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(delay).await;
    pending.answered = true;
    match status {
        StatusCode::OK => {
            counts.ok.fetch_add(1, Ordering::SeqCst);
            reply(status, page_body(query.seed, id))
        }
        StatusCode::TOO_MANY_REQUESTS => {
            counts.rate_limited.fetch_add(1, Ordering::SeqCst);
            let mut r = reply(status, "too many requests; retry after 1 s".into());
            r.headers_mut()
                .insert("retry-after", "1".parse().expect("valid"));
            r
        }
        _ => {
            counts.unavailable.fetch_add(1, Ordering::SeqCst);
            reply(status, "service unavailable".into())
        }
    }
}

/// A page's body: `links: a b c`, three to five seeded links below 1000.
fn page_body(seed: u64, id: u32) -> String {
    let mut rng = Rng(seed ^ (u64::from(id) << 20));
    let count = 3 + rng.below(3);
    let links: Vec<String> = (0..count).map(|_| rng.below(1000).to_string()).collect();
    format!("links: {}", links.join(" "))
}

/// SplitMix64: small and seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
