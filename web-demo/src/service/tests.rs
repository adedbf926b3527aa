use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn addr(service: &Service, profile: Profile) -> SocketAddr {
    service.hosts.iter().find(|h| h.1 == profile).unwrap().2
}

/// Sends one GET and returns (status, headers and body as text).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

/// Polls the host's counts until `done` holds (at most 2 s).
async fn settle(service: &Service, host: usize, done: impl Fn(&HostStats) -> bool) -> HostStats {
    for _ in 0..100 {
        let s = service.stats()[host];
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.stats()[host]
}

#[test]
fn a_healthy_host_answers_a_seeded_page_with_cors_headers() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let a = get(addr(&service, Profile::Healthy), "/page/3?seed=9").await;
        let b = get(addr(&service, Profile::Healthy), "/page/3?seed=9").await;
        assert_eq!(a.0, 200);
        assert!(a.1.contains("access-control-allow-origin: *"), "{}", a.1);
        assert_eq!(a.1.split("links:").nth(1), b.1.split("links:").nth(1));
        assert_eq!(service.stats()[0].ok, 2);
    });
}

#[test]
fn a_flaky_host_fails_the_seeded_share_and_reproduces_it() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let flaky = addr(&service, Profile::Flaky);
        let mut first = Vec::new();
        for id in 0..20 {
            first.push(
                get(flaky, &format!("/page/{id}?fail=0.5&latency=1"))
                    .await
                    .0,
            );
        }
        for (id, status) in first.iter().enumerate() {
            assert_eq!(
                get(flaky, &format!("/page/{id}?fail=0.5&latency=1"))
                    .await
                    .0,
                *status
            );
        }
        let failed = first.iter().filter(|s| **s == 503).count();
        assert!((3..=17).contains(&failed), "{first:?}");
        assert!(first.iter().all(|s| *s == 200 || *s == 503));
        let s = service.stats()[1];
        assert_eq!((s.received, s.unavailable as usize), (40, 2 * failed));
    });
}

#[test]
fn a_slow_host_answers_after_fifteen_times_the_latency() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let started = std::time::Instant::now();
        assert_eq!(
            get(addr(&service, Profile::Slow), "/page/1?latency=10")
                .await
                .0,
            200
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
    });
}

#[test]
fn a_down_host_answers_503_every_time() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        for id in 0..5 {
            assert_eq!(
                get(addr(&service, Profile::Down), &format!("/page/{id}"))
                    .await
                    .0,
                503
            );
        }
        assert_eq!(service.stats()[3].unavailable, 5);
    });
}

#[test]
fn a_tarpit_never_answers_and_counts_the_client_closing_as_aborted() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let mut stream = TcpStream::connect(addr(&service, Profile::Tarpit))
            .await
            .unwrap();
        stream
            .write_all(b"GET /page/4 HTTP/1.1\r\nHost: lab\r\n\r\n")
            .await
            .unwrap();
        let in_flight = settle(&service, 4, |s| s.received == 1).await;
        assert_eq!((in_flight.received, in_flight.in_flight()), (1, 1));
        let mut byte = [0u8; 1];
        let waited = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await;
        assert!(waited.is_err(), "the tarpit answered");
        drop(stream);
        let after = settle(&service, 4, |s| s.aborted == 1).await;
        assert_eq!((after.aborted, after.in_flight()), (1, 0));
    });
}

#[test]
fn a_rate_limited_host_answers_429_with_retry_after() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let api = addr(&service, Profile::RateLimited);
        let mut limited = 0;
        for id in 0..20 {
            let (status, text) = get(api, &format!("/page/{id}?latency=1")).await;
            if status == 429 {
                limited += 1;
                assert!(text.contains("retry-after: 1"), "{text}");
                assert!(text.contains("access-control-expose-headers: retry-after"));
            } else {
                assert_eq!(status, 200);
            }
        }
        assert!((3..=17).contains(&limited), "{limited} of 20 limited");
        assert_eq!(service.stats()[5].rate_limited, limited);
    });
}

#[test]
fn a_slow_but_correct_host_always_answers_200_after_five_times_the_latency() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        for id in 0..3 {
            let started = std::time::Instant::now();
            let (status, _) = get(
                addr(&service, Profile::SlowButCorrect),
                &format!("/page/{id}?latency=20"),
            )
            .await;
            assert_eq!(status, 200);
            assert!(started.elapsed() >= Duration::from_millis(80));
        }
    });
}

#[test]
fn unknown_or_bad_parameters_get_400_with_a_message() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        let docs = addr(&service, Profile::Healthy);
        let (status, text) = get(docs, "/page/1?colour=red").await;
        assert_eq!(status, 400);
        assert!(text.contains("unknown parameter `colour`"), "{text}");
        let (status, text) = get(docs, "/page/1?fail=1.5").await;
        assert_eq!(status, 400);
        assert!(text.contains("from 0 to 1"), "{text}");
        assert_eq!(service.stats()[0].bad_request, 2);
    });
}

#[test]
fn stats_report_every_host_and_the_counts_add_up() {
    runtime().block_on(async {
        let service = Service::start(0).await.unwrap();
        get(addr(&service, Profile::Healthy), "/page/1").await;
        get(addr(&service, Profile::Down), "/page/1").await;
        let (status, text) = get(addr(&service, Profile::Flaky), "/stats").await;
        assert_eq!(status, 200);
        for (name, _) in HOSTS {
            assert!(text.contains(&format!(r#""host":"{name}""#)), "{text}");
        }
        assert!(
            text.contains(
                r#""host":"legacy","profile":"down","received":1,"ok":0,"unavailable":1"#
            ),
            "{text}"
        );
        for s in service.stats() {
            assert_eq!(s.in_flight(), 0);
        }
    });
}
