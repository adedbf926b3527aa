//! The shared breaker against a real redis-server: several OS processes,
//! generations, TTLs, rebuilt keys, Redis killed and slowed, on tokio and smol.

mod common;

use std::future::IntoFuture;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::RedisServer as Server;
use staunch::observe::{CircuitState, Event, Observers};
use staunch::runtime::Timer;
use staunch_redis::{FailureMode, RedisBreaker, RedisStore};

const TIMEOUT: Duration = Duration::from_millis(150);

/// Runs the same async test body on tokio and on smol.
macro_rules! on_both {
    ($tokio:ident, $smol:ident, $body:ident) => {
        #[test]
        fn $tokio() {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { $body(staunch_tokio::Tokio::current().unwrap()).await });
        }
        #[test]
        fn $smol() {
            smol::block_on($body(staunch_smol::Smol::current()));
        }
    };
}

fn events() -> (Observers, Arc<Mutex<Vec<Event>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let obs = Observers::new().with(move |e: &Event| s.lock().unwrap().push(e.clone()));
    (obs, seen)
}

fn breaker<T>(
    server: &Server,
    timer: T,
    name: &str,
    mode: FailureMode,
    obs: Observers,
) -> RedisBreaker
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let store = RedisStore::open(&server.url(), TIMEOUT, timer.clone()).unwrap();
    RedisBreaker::builder(store, timer, name)
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(10)
        .failure_rate(0.5)
        .open_duration(Duration::from_millis(300))
        .half_open_probes(2)
        .failure_mode(mode)
        .observers(obs)
        .build()
        .unwrap()
}

async fn outcomes(b: &RedisBreaker, ok: u32, failed: u32) {
    for _ in 0..ok {
        let _ = b.call(async { Ok::<_, &str>(()) }).await;
    }
    for _ in 0..failed {
        let _ = b.call(async { Err::<(), _>("boom") }).await;
    }
}

async fn new_process_never_resets_counts<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let a = breaker(
        &server,
        timer.clone(),
        "join",
        FailureMode::FailClosed,
        Observers::new(),
    );
    a.sync().await;
    outcomes(&a, 0, 6).await;
    a.sync().await;
    assert_eq!(
        a.shared_state().state,
        CircuitState::Closed,
        "6 calls are under the minimum of 10"
    );
    // A new process joins: building and syncing it must not touch the window.
    let c = breaker(
        &server,
        timer.clone(),
        "join",
        FailureMode::FailClosed,
        Observers::new(),
    );
    c.sync().await;
    assert_eq!(c.shared_state().generation, a.shared_state().generation);
    // 4 more failures from the newcomer: 10 calls, all failed, across both.
    outcomes(&c, 0, 4).await;
    c.sync().await;
    assert_eq!(
        c.shared_state().state,
        CircuitState::Open,
        "the counts of both processes add up"
    );
    a.sync().await;
    assert_eq!(a.shared_state().state, CircuitState::Open);
    assert!(matches!(
        a.call(async { Ok::<_, &str>(()) }).await,
        Err(staunch::Error::CircuitOpen(_))
    ));
}
on_both!(
    a_new_process_never_resets_shared_counts_tokio,
    a_new_process_never_resets_shared_counts_smol,
    new_process_never_resets_counts
);

async fn judged_like_the_local_breaker<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let store = RedisStore::open(&server.url(), TIMEOUT, timer.clone()).unwrap();
    let b = RedisBreaker::builder(store, timer.clone(), "judged")
        .minimum_calls(4)
        .failure_rate(0.5)
        .failure_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
        .build()
        .unwrap();
    b.sync().await;
    // A 404 is an answer (a success); a cancellation below is nothing.
    for _ in 0..10 {
        let not_found =
            b.call(async { Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound)) });
        assert!(not_found.await.unwrap_err().is_inner());
        let scope = staunch::scope::CancelScope::new();
        scope.cancel();
        let cancelled = b
            .call(scope.call(async { Ok::<(), std::io::Error>(()) }))
            .await;
        assert!(
            cancelled.unwrap_err().is_cancelled(),
            "flat, not Inner(Cancelled)"
        );
    }
    b.sync().await;
    assert_eq!(
        b.shared_state().state,
        CircuitState::Closed,
        "404s and cancellations never trip it"
    );
    // The 10 404s counted as successes, the cancellations as nothing: 10
    // timeouts below the breaker make half the window failures.
    for _ in 0..10 {
        let slow = staunch::timeout::call(
            &timer,
            Duration::from_millis(1),
            std::future::pending::<Result<(), std::io::Error>>(),
        );
        assert!(b.call(slow).await.unwrap_err().is_timeout());
    }
    b.sync().await;
    assert_eq!(
        b.shared_state().state,
        CircuitState::Open,
        "timeouts are failures"
    );
}
on_both!(
    a_shared_breaker_judges_outcomes_like_the_local_one_tokio,
    a_shared_breaker_judges_outcomes_like_the_local_one_smol,
    judged_like_the_local_breaker
);

async fn stale_generation<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let a = breaker(
        &server,
        timer.clone(),
        "stale",
        FailureMode::FailClosed,
        Observers::new(),
    );
    let b = breaker(
        &server,
        timer.clone(),
        "stale",
        FailureMode::FailClosed,
        Observers::new(),
    );
    a.sync().await;
    b.sync().await;
    let g0 = a.shared_state().generation;
    // b counts failures but has not pushed them yet when a trips the breaker.
    outcomes(&b, 0, 50).await;
    outcomes(&a, 0, 10).await;
    a.sync().await;
    assert_eq!(a.shared_state().state, CircuitState::Open);
    assert_eq!(a.shared_state().generation, g0 + 1);
    // b's push carries the old generation: dropped, never counted into the
    // new generation's window, and b learns the newer state.
    b.sync().await;
    assert_eq!(b.shared_state().state, CircuitState::Open);
    assert_eq!(b.shared_state().generation, g0 + 1);
    let window = server.raw(&["EXISTS", b.keys()[1]]);
    assert_eq!(window.trim(), ":0", "stale counts reached the window");
    // Half-open (on the server's clock) admits exactly 2 probes; their
    // successes close it, with a new generation.
    std::thread::sleep(Duration::from_millis(350));
    a.sync().await;
    assert_eq!(a.shared_state().state, CircuitState::HalfOpen);
    // Hold both probe slots, then a third call must be refused.
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let held = a.call(async move {
        let _ = rx.await;
        Ok::<_, &str>(())
    });
    let second = b.call(async {
        let third = a.call(async { Ok::<_, &str>(()) }).await;
        assert!(
            matches!(third, Err(staunch::Error::CircuitOpen(_))),
            "a third probe was admitted"
        );
        let _ = tx.send(());
        Ok::<_, &str>(())
    });
    b.sync().await;
    let (r1, r2) = futures::join!(held.into_future(), second.into_future());
    assert!(r1.is_ok() && r2.is_ok());
    assert_eq!(
        a.probes_admitted() + b.probes_admitted(),
        3 - 1,
        "2 probes, no more"
    );
    // Each probe's outcome is pushed by its own process's sync (the sync
    // task is woken at once when a probe reports; here the test syncs).
    b.sync().await;
    a.sync().await;
    assert_eq!(a.shared_state().state, CircuitState::Closed);
    assert_eq!(a.shared_state().generation, g0 + 3);
}
on_both!(
    a_stale_process_cannot_undo_a_newer_transition_and_half_open_admits_n_tokio,
    a_stale_process_cannot_undo_a_newer_transition_and_half_open_admits_n_smol,
    stale_generation
);

/// The shared breaker is a core `CircuitBreaker`: it goes into a `Policy`,
/// reports its state and metrics, forces this process only, and its sync
/// task pushes a half-open probe's outcome at once (no manual sync).
async fn a_core_breaker<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let shared = RedisBreaker::builder(
        RedisStore::open(&server.url(), TIMEOUT, timer.clone()).unwrap(),
        timer.clone(),
        "as-core",
    )
    .minimum_calls(4)
    .open_duration(Duration::from_millis(300))
    .sync_interval(Duration::from_secs(3600))
    .build()
    .unwrap();
    let other = breaker(
        &server,
        timer.clone(),
        "as-core",
        FailureMode::FailClosed,
        Observers::new(),
    );
    let policy = staunch::policy::Policy::builder(timer.clone())
        .breaker(shared.breaker().clone())
        .build()
        .unwrap();
    shared.sync().await;
    for _ in 0..4 {
        let out = policy.run(|_| async { Err::<(), _>("down") }).await;
        assert!(out.unwrap_err().is_inner());
    }
    shared.sync().await;
    assert_eq!(shared.breaker().state(), CircuitState::Open);
    assert!(shared.breaker().metrics().retry_after.is_some());
    let refused = policy.run(|_| async { Ok::<_, &str>(()) }).await;
    assert!(
        refused.unwrap_err().is_circuit_open(),
        "the policy sees the shared state"
    );
    // Forcing holds this process's view only; reset ends it.
    shared.breaker().force_closed();
    assert!(shared.call(async { Ok::<_, &str>(()) }).await.is_ok());
    other.sync().await;
    assert_eq!(other.shared_state().state, CircuitState::Open, "not shared");
    shared.breaker().reset();
    assert_eq!(shared.breaker().state(), CircuitState::Open);
    // Half-open: the probe's success reaches Redis through the sync task,
    // woken by the report, although its interval is an hour.
    std::thread::sleep(Duration::from_millis(350));
    shared.sync().await;
    assert_eq!(shared.breaker().state(), CircuitState::HalfOpen);
    let sync = shared.sync_task();
    let probe_then_watch = async {
        assert!(shared.call(async { Ok::<_, &str>(()) }).await.is_ok());
        let started = Instant::now();
        loop {
            other.sync().await;
            if other.shared_state().state == CircuitState::Closed {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the probe's success never reached Redis"
            );
            timer.sleep(Duration::from_millis(5)).await;
        }
    };
    futures::pin_mut!(sync, probe_then_watch);
    futures::future::select(sync, probe_then_watch).await;
    assert_eq!(shared.probes_admitted(), 1);
}
on_both!(
    the_shared_breaker_is_a_core_breaker_tokio,
    the_shared_breaker_is_a_core_breaker_smol,
    a_core_breaker
);

async fn corrupted_key<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let (obs, seen) = events();
    let a = breaker(
        &server,
        timer.clone(),
        "corrupt",
        FailureMode::FailClosed,
        obs,
    );
    outcomes(&a, 3, 0).await;
    a.sync().await;
    let [state, window] = a.keys();
    for key in [state, window] {
        let ttl: i64 = server
            .raw(&["PTTL", key])
            .trim()
            .trim_start_matches(':')
            .parse()
            .unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
    }
    let g = a.shared_state().generation;
    // Wrong type by hand: the next sync rebuilds it, with a newer generation.
    server.raw(&["DEL", state]);
    server.raw(&["SET", state, "garbage"]);
    a.sync().await;
    assert_eq!(a.shared_state().state, CircuitState::Closed);
    assert!(a.shared_state().generation > g);
    assert_eq!(server.raw(&["TYPE", state]).trim(), "+hash");
    // A hash with nonsense fields: rebuilt too.
    server.raw(&["HSET", state, "state", "7", "gen", "x"]);
    a.sync().await;
    assert_eq!(
        server.raw(&["HGET", state, "state"]).lines().nth(1),
        Some("0")
    );
    // Deleted by hand: rebuilt.
    server.raw(&["DEL", state, window]);
    a.sync().await;
    assert_eq!(server.raw(&["EXISTS", state]).trim(), ":1");
    let rebuilt = seen
        .lock()
        .unwrap()
        .iter()
        .filter(
            |e| matches!(e, Event::StoreModeChanged { reason, .. } if reason.contains("rebuilt")),
        )
        .count();
    assert_eq!(rebuilt, 3, "each repair is reported");
}
on_both!(
    a_key_deleted_or_corrupted_by_hand_is_rebuilt_and_every_key_expires_tokio,
    a_key_deleted_or_corrupted_by_hand_is_rebuilt_and_every_key_expires_smol,
    corrupted_key
);

async fn killed_and_restarted<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let mut server = Server::start();
    let mut all = Vec::new();
    for (i, mode) in [
        FailureMode::FallbackToLocal,
        FailureMode::FailOpen,
        FailureMode::FailClosed,
    ]
    .into_iter()
    .enumerate()
    {
        let (obs, seen) = events();
        let b = breaker(&server, timer.clone(), &format!("kill{i}"), mode, obs);
        b.sync().await;
        assert!(!b.shared_state().degraded);
        all.push((mode, b, seen));
    }
    server.kill();
    for (mode, b, seen) in &all {
        let t0 = Instant::now();
        b.sync().await;
        assert!(
            t0.elapsed() < TIMEOUT * 4,
            "{mode:?}: a sync hung for {:?}",
            t0.elapsed()
        );
        assert!(b.shared_state().degraded, "{mode:?}: outage not noticed");
        assert!(
            seen.lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Event::StoreModeChanged { degraded: true, .. })),
            "{mode:?}: no degraded event"
        );
        let t0 = Instant::now();
        let out = b.call(async { Ok::<_, &str>(1) }).await;
        assert!(
            t0.elapsed() < TIMEOUT * 2,
            "{mode:?}: a call waited on the dead redis"
        );
        match mode {
            FailureMode::FailClosed => assert!(
                out.unwrap_err().is_circuit_open(),
                "fail closed refuses as if open"
            ),
            FailureMode::FailOpen => {
                assert_eq!(out.ok(), Some(1));
                outcomes(b, 0, 30).await;
                assert_eq!(
                    b.call(async { Ok::<_, &str>(2) }).await.ok(),
                    Some(2),
                    "fail open admits everything"
                );
            }
            FailureMode::FallbackToLocal => {
                assert_eq!(out.ok(), Some(1));
                // The local breaker protects alone: 10 local failures trip it.
                outcomes(b, 0, 12).await;
                assert!(matches!(
                    b.call(async { Ok::<_, &str>(3) }).await,
                    Err(staunch::Error::CircuitOpen(_))
                ));
                assert_eq!(b.local().state(), CircuitState::Open);
            }
        }
    }
    server.restart();
    for (mode, b, seen) in &all {
        b.sync().await;
        assert!(!b.shared_state().degraded, "{mode:?}: no recovery");
        assert!(
            seen.lock().unwrap().iter().any(|e| matches!(
                e,
                Event::StoreModeChanged {
                    degraded: false,
                    ..
                }
            )),
            "{mode:?}: no recovery event"
        );
        // Back on the shared state: the fresh server's breaker is closed,
        // except where the counts kept through the outage trip it.
        let s = b.shared_state().state;
        assert!(
            matches!(s, CircuitState::Closed | CircuitState::Open),
            "{mode:?}: {s:?}"
        );
    }
}
on_both!(
    redis_killed_and_restarted_each_mode_behaves_and_recovers_tokio,
    redis_killed_and_restarted_each_mode_behaves_and_recovers_smol,
    killed_and_restarted
);

async fn slowed<T>(timer: T)
where
    T: Timer + Clone + Send + Sync + 'static,
    T::Sleep: Send,
{
    let server = Server::start();
    let b = breaker(
        &server,
        timer.clone(),
        "slow",
        FailureMode::FallbackToLocal,
        Observers::new(),
    );
    b.sync().await;
    let port = server.port();
    let sleeper = std::thread::spawn(move || {
        Server::raw_on(port, &["DEBUG", "SLEEP", "1"]);
    });
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    b.sync().await;
    let took = t0.elapsed();
    assert!(
        took < TIMEOUT + Duration::from_millis(200),
        "sync took {took:?} on a slowed redis"
    );
    assert!(b.shared_state().degraded);
    // Closed-state calls never waited anyway.
    assert_eq!(b.call(async { Ok::<_, &str>(5) }).await.ok(), Some(5));
    sleeper.join().unwrap();
    // Redis answers again: a later sync (within a couple of seconds) finds
    // it and leaves the failure mode.
    let back = Instant::now();
    while b.shared_state().degraded && back.elapsed() < Duration::from_secs(3) {
        b.sync().await;
        if b.shared_state().degraded {
            timer.sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        !b.shared_state().degraded,
        "still degraded {:?} after redis answered again",
        back.elapsed()
    );
}
on_both!(
    a_slowed_redis_stays_within_the_call_timeout_tokio,
    a_slowed_redis_stays_within_the_call_timeout_smol,
    slowed
);

/// Runs worker processes sharing one breaker and returns their outputs.
fn workers(server: &Server, name: &str, runtime: &str) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let worker = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("breaker_worker"))
        .unwrap();
    assert!(
        worker.exists(),
        "build the example first: {}",
        worker.display()
    );
    let roles = [("fail", "0"), ("ok", "0"), ("ok", "3600")];
    let children: Vec<_> = roles
        .iter()
        .map(|(role, skew)| {
            Command::new(&worker)
                .args([&server.url(), name, runtime, role, "2500", "3", skew])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|o| {
            let o = o.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "worker failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8(o.stdout).unwrap()
        })
        .collect()
}

fn field(out: &str, key: &str) -> Option<u128> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

fn several_processes(runtime: &str) {
    let server = Server::start();
    // Run the three workers at the same time.
    let outs: Vec<String> = std::thread::scope(|s| {
        let h: Vec<_> = (0..1)
            .map(|_| s.spawn(|| workers(&server, &format!("procs-{runtime}"), runtime)))
            .collect();
        h.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let opens: Vec<u128> = outs
        .iter()
        .map(|o| field(o, "open ").unwrap_or_else(|| panic!("a process never saw the trip:\n{o}")))
        .collect();
    let spread_us = opens.iter().max().unwrap() - opens.iter().min().unwrap();
    println!(
        "trip propagation across 3 processes ({runtime}): {} µs",
        spread_us
    );
    assert!(
        spread_us < 250_000,
        "trip took {spread_us} µs to reach every process"
    );
    let probes: u128 = outs.iter().map(|o| field(o, "probes ").unwrap()).sum();
    assert_eq!(
        probes, 3,
        "half-open admitted {probes} probes across processes, not 3"
    );
    for o in &outs {
        assert!(
            field(o, "closed-again ").is_some(),
            "a process never saw it close:\n{o}"
        );
    }
}

#[test]
fn several_processes_share_one_breaker_tokio() {
    several_processes("tokio");
}

#[test]
fn several_processes_share_one_breaker_smol() {
    several_processes("smol");
}
