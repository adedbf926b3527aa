//! governor #16 reports quotas exceeded by about 50 % on multi-threaded
//! tokio. Here 8 worker threads hammer one `RateLimiter` for two seconds and
//! no window, of any length, admits more than `window / interval + burst`.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use staunch::rate::{Rate, RateLimiter};
use staunch::runtime::{Instant, Timer};
use staunch_tokio::Tokio;

/// One admission: the clock just before `check` and just after it. The
/// limiter's own decision instant lies between the two.
#[derive(Clone, Copy)]
struct Admission {
    before: Instant,
    after: Instant,
}

/// The most admissions decided inside any window of length `window`
/// (counting those whose whole call lay in it, so each is certainly inside).
fn busiest_window(admissions: &[Admission], window: Duration) -> usize {
    let mut most = 0;
    for (i, first) in admissions.iter().enumerate() {
        let end = first.before + window;
        let inside = admissions[i..]
            .iter()
            .take_while(|a| a.before <= end)
            .filter(|a| a.after <= end)
            .count();
        most = most.max(inside);
    }
    most
}

#[test]
fn eight_threads_never_get_more_than_rate_times_window_plus_burst_in_any_window() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let rate_per_second = 2_000;
    let burst = 20;
    let run_for = Duration::from_secs(2);
    let admissions = runtime.block_on(async move {
        let rt = Tokio::current().expect("inside tokio");
        let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(rate_per_second))
            .burst(burst)
            .build()
            .expect("valid limiter");
        let stop = rt.now() + run_for;
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                let rt = rt.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    let mut calls = 0u32;
                    loop {
                        let before = rt.now();
                        if before >= stop {
                            return mine;
                        }
                        if limiter.check().is_ok() {
                            mine.push(Admission {
                                before,
                                after: rt.now(),
                            });
                        }
                        calls += 1;
                        if calls.is_multiple_of(64) {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.expect("a worker finished"));
        }
        all.sort_by_key(|a| a.before);
        all
    });
    let interval = Duration::from_secs(1) / rate_per_second;
    let total = admissions.len();
    let steady = (run_for.as_secs_f64() * f64::from(rate_per_second)) as usize;
    // The limiter's own clock is read inside `check`, a moment after the
    // worker's stop check: bound by the span the admissions really cover.
    let span = admissions
        .iter()
        .map(|a| a.after)
        .max()
        .zip(admissions.first().map(|a| a.before))
        .map_or(Duration::ZERO, |(last, first)| last - first);
    let allowed = (span.as_secs_f64() * f64::from(rate_per_second)) as usize + burst as usize + 1;
    assert!(
        total <= allowed,
        "{total} admitted in {span:?} (at most {allowed})"
    );
    assert!(
        total >= steady / 2,
        "only {total} of {steady} admitted: the limiter starved its callers"
    );
    for window in [
        Duration::from_micros(500),
        Duration::from_millis(1),
        Duration::from_millis(10),
        Duration::from_millis(100),
        Duration::from_secs(1),
    ] {
        let bound = (window.as_nanos() / interval.as_nanos()) as usize + burst as usize;
        let busiest = busiest_window(&admissions, window);
        println!("window {window:?}: busiest {busiest}, bound {bound}");
        assert!(
            busiest <= bound,
            "{busiest} admitted in a {window:?} window; the bound is {bound}"
        );
    }
}
