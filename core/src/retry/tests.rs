use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::Error;
use crate::breaker::CircuitOpen;
use crate::bulkhead::Rejected;
use crate::observe::{Event, Observers};
use crate::runtime::{Instant, Timer};
use crate::scope::{CancelReason, Cancelled};
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// The instants (since origin) at which each attempt started, for an
/// operation that always fails, under `retry`.
fn starts(retry: &Retry<&'static str>) -> (Vec<Duration>, RetryError<&'static str>) {
    let rt = VirtualRuntime::new();
    let seen = Mutex::new(Vec::new());
    let out = rt
        .block_on(retry.run(&rt, |_| {
            seen.lock().unwrap().push(rt.now().since_origin());
            async { Err::<(), _>("down") }
        }))
        .expect("no deadlock");
    (seen.into_inner().unwrap(), out.unwrap_err())
}

fn policy(backoff: BackoffBuilder, attempts: u32) -> Retry<&'static str> {
    Retry::builder()
        .max_attempts(attempts)
        .backoff(backoff)
        .build()
        .unwrap()
}

fn gaps(starts: &[Duration]) -> Vec<Duration> {
    starts.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn constant_backoff_starts_attempts_at_exact_instants() {
    let (s, err) = starts(&policy(Backoff::constant(ms(250)), 4));
    assert_eq!(s, [ms(0), ms(250), ms(500), ms(750)]);
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.stop_reason(), StopReason::MaxAttempts);
}

#[test]
fn linear_backoff_starts_attempts_at_exact_instants() {
    let (s, _) = starts(&policy(Backoff::linear(ms(100), ms(50)), 5));
    assert_eq!(s, [ms(0), ms(100), ms(250), ms(450), ms(700)]);
}

#[test]
fn exponential_backoff_starts_attempts_at_exact_instants_and_caps() {
    let b = Backoff::exponential(ms(100))
        .factor(3.0)
        .max_delay(ms(1000));
    let (s, _) = starts(&policy(b, 6));
    assert_eq!(gaps(&s), [ms(100), ms(300), ms(900), ms(1000), ms(1000)]);
    assert_eq!(s[5], ms(3300));
}

#[test]
fn fractional_factors_round_to_the_nanosecond() {
    let b = Backoff::exponential(us(1000)).factor(1.5);
    let d: Vec<_> = b.build().unwrap().take(4).collect();
    assert_eq!(d, [us(1000), us(1500), us(2250), us(3375)]);
}

#[test]
fn fibonacci_backoff_starts_attempts_at_exact_instants() {
    let (s, _) = starts(&policy(Backoff::fibonacci(ms(10)), 7));
    assert_eq!(gaps(&s), [ms(10), ms(10), ms(20), ms(30), ms(50), ms(80)]);
}
