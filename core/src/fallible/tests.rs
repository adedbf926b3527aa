use std::future::{IntoFuture, pending};
use std::time::Duration;

use crate::breaker::CircuitBreaker;
use crate::bulkhead::Bulkhead;
use crate::gather::gather;
use crate::group::TaskGroup;
use crate::retry::Retry;
use crate::runtime::SpawnExt;
use crate::scope::CancelScope;
use crate::testing::VirtualRuntime;
use crate::timeout::{self, TimeoutExt};
use crate::{Error, Guarded};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A breaker that opens at its first failure.
fn trips_at_once(rt: &VirtualRuntime) -> CircuitBreaker {
    CircuitBreaker::builder(rt.clone())
        .consecutive_failures(1)
        .build()
        .unwrap()
}

#[test]
fn an_inner_rejection_reaches_the_outer_breaker_as_a_rejection_and_is_not_counted() {
    let rt = VirtualRuntime::new();
    let breaker = trips_at_once(&rt);
    let bulkhead = Bulkhead::builder(rt.clone(), 1).build().unwrap();
    let _held = bulkhead.try_acquire().unwrap();
    let out = rt
        .block_on(breaker.call(bulkhead.call(async { Ok::<u32, &str>(1) })))
        .unwrap();
    let err: Error<&str> = out.unwrap_err();
    assert!(err.is_rejected(), "flat, not Inner(Rejected): {err:?}");
    assert_eq!(breaker.metrics().calls, 0, "a rejection is not a failure");
    assert!(breaker.try_acquire().is_ok(), "still closed");
}

#[test]
fn an_open_circuit_passes_an_outer_bulkhead_as_what_it_is() {
    let rt = VirtualRuntime::new();
    let breaker = trips_at_once(&rt);
    let bulkhead = Bulkhead::builder(rt.clone(), 1).build().unwrap();
    let first = rt.block_on(bulkhead.call(breaker.call(async { Err::<(), _>("down") })));
    assert_eq!(first.unwrap().unwrap_err().into_inner(), Some("down"));
    let second = rt.block_on(bulkhead.call(breaker.call(async { Ok::<(), &str>(()) })));
    assert!(second.unwrap().unwrap_err().is_circuit_open());
}

#[test]
fn a_timeout_below_a_breaker_counts_as_a_failure_and_trips_it() {
    let rt = VirtualRuntime::new();
    let breaker = trips_at_once(&rt);
    let slow = timeout::call(&rt, ms(10), pending::<Result<(), &str>>());
    let out = rt.block_on(breaker.call(slow)).unwrap();
    assert!(out.unwrap_err().is_timeout());
    assert_eq!(breaker.metrics().calls, 1);
    assert!(breaker.try_acquire().is_err(), "tripped by the timeout");
}

#[test]
fn a_cancelled_scope_below_retry_is_never_retried() {
    let rt = VirtualRuntime::new();
    let retry = Retry::new(rt.clone());
    let scope = CancelScope::new();
    scope.cancel();
    let err = rt
        .block_on(retry.run(|_| scope.call(async { Err::<(), &str>("never runs") })))
        .unwrap()
        .unwrap_err();
    assert_eq!(err.attempts(), 1);
    assert!(err.is_cancelled());
}

#[test]
fn a_guarded_call_is_accepted_wherever_staunch_takes_work() {
    let rt = VirtualRuntime::new();
    let bulkhead = Bulkhead::builder(rt.clone(), 2).build().unwrap();
    let one = || bulkhead.call(async { Ok::<u32, &str>(1) });
    let outputs = rt
        .block_on(async {
            let all = gather([one(), one(), one()]).await;
            let timed = one().timeout(&rt, ms(5)).await.unwrap();
            let scoped = CancelScope::new().run(one()).await.unwrap();
            let spawned = rt
                .spawn(Guarded::new(async { Ok::<u32, Error<&str>>(1) }))
                .unwrap()
                .await
                .unwrap();
            let group = TaskGroup::new(rt.clone());
            group
                .spawn(Guarded::new(async { Ok::<u32, Error<&str>>(1) }))
                .unwrap();
            let joined = group.join().await.unwrap();
            let proper = one().into_future().await;
            (all, timed, scoped, spawned, joined, proper)
        })
        .unwrap();
    let (all, timed, scoped, spawned, joined, proper) = outputs;
    let all: Vec<u32> = all.into_iter().map(Result::unwrap).collect();
    assert_eq!(all, [1, 1, 1]);
    let singles = [timed, scoped, spawned, proper].map(Result::unwrap);
    assert_eq!(singles, [1, 1, 1, 1]);
    assert_eq!(joined, [1]);
}

/// What `tokio::spawn` and multi-thread executors need: a guard's call
/// around `Send` work is itself `Send` once turned into its future.
/// (On wasm32 nothing is required to be `Send`.)
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn guarded_calls_around_send_work_are_send() {
    fn send<T: Send>(value: T) -> T {
        value
    }
    let rt = VirtualRuntime::new();
    let breaker = trips_at_once(&rt);
    let bulkhead = Bulkhead::builder(rt.clone(), 1).build().unwrap();
    let retry = Retry::new(rt.clone());
    let policy = crate::policy::Policy::builder(rt.clone())
        .timeout(ms(5))
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let fetch = || async { Ok::<u32, std::io::Error>(1) };
    let calls = (
        send(breaker.call(bulkhead.call(fetch())).into_future()),
        send(retry.run(|_| breaker.call(fetch()))),
        send(policy.run(|_| fetch()).into_future()),
        send(timeout::call(&rt, ms(5), fetch()).into_future()),
    );
    let (a, b, c, d) = rt
        .block_on(async { (calls.0.await, calls.1.await, calls.2.await, calls.3.await) })
        .unwrap();
    assert_eq!(
        [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()],
        [1, 1, 1, 1]
    );
}
