use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;

use super::*;
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;

struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_firing_timeout_drops_the_inner_future_at_once() {
    let rt = VirtualRuntime::new();
    let dropped = Arc::new(AtomicUsize::new(0));
    let guard = Guard(dropped.clone());
    let inner = {
        let rt = rt.clone();
        async move {
            let _guard = guard;
            rt.sleep(Duration::from_secs(60)).await;
        }
    };
    let mut fut = Box::pin(timeout(&rt, Duration::from_millis(5), inner));
    let seen = rt
        .block_on(futures::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(r) => Poll::Ready((r, dropped.load(Ordering::SeqCst))),
            Poll::Pending => Poll::Pending,
        }))
        .unwrap();
    // Dropped inside the poll that fired, while the Timeout itself still lives.
    assert_eq!(
        seen,
        (
            Err(Elapsed {
                after: Duration::from_millis(5)
            }),
            1
        )
    );
    // Polled again, it stays timed out and polls nothing.
    assert_eq!(
        fut.as_mut().now_or_never(),
        Some(Err(Elapsed {
            after: Duration::from_millis(5)
        }))
    );
    assert_eq!(rt.now().since_origin(), Duration::from_millis(5));
}

#[test]
fn a_ready_future_wins_even_with_a_zero_timeout_or_a_past_deadline() {
    let rt = VirtualRuntime::new();
    assert_eq!(
        rt.block_on(timeout(&rt, Duration::ZERO, async { 1 }))
            .unwrap(),
        Ok(1)
    );
    rt.advance(Duration::from_secs(1));
    let past = crate::runtime::Instant::ORIGIN;
    assert_eq!(
        rt.block_on(deadline(&rt, past, async { 2 })).unwrap(),
        Ok(2)
    );
}

#[test]
fn a_deadline_reports_the_time_that_was_left() {
    let rt = VirtualRuntime::new();
    rt.advance(Duration::from_millis(100));
    let at = crate::runtime::Instant::from_origin(Duration::from_millis(350));
    let out = rt
        .block_on(rt.sleep(Duration::from_secs(9)).deadline(&rt, at))
        .unwrap();
    assert_eq!(
        out,
        Err(Elapsed {
            after: Duration::from_millis(250)
        })
    );
    assert_eq!(rt.now(), at);
}

#[test]
fn an_endless_timeout_never_fires() {
    let rt = VirtualRuntime::new();
    let slow = rt.sleep(Duration::from_secs(86_400));
    let out = rt.block_on(slow.timeout(&rt, Duration::MAX)).unwrap();
    assert_eq!(out, Ok(()));
    let out = rt
        .block_on(async { 5 }.deadline(&rt, crate::runtime::Instant::NEVER))
        .unwrap();
    assert_eq!(out, Ok(5));
}

#[test]
fn the_elapsed_message_says_how_long_and_what_to_do() {
    let e = Elapsed {
        after: Duration::from_millis(20),
    };
    assert_eq!(
        e.to_string(),
        "timed out after 20ms; raise the limit or make the operation faster"
    );
}

/// A timer that counts how often it is asked for the time or a sleep.
#[derive(Clone, Default)]
struct CountingTimer {
    inner: VirtualRuntime,
    uses: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Timer for CountingTimer {
    type Sleep = <VirtualRuntime as Timer>::Sleep;
    fn now(&self) -> Instant {
        self.uses.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now()
    }
    fn sleep(&self, duration: Duration) -> Self::Sleep {
        self.uses.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sleep(duration)
    }
}

#[test]
fn a_future_ready_at_once_reads_no_clock_and_arms_no_timer() {
    let timer = CountingTimer::default();
    let out = futures::executor::block_on(timeout(&timer, Duration::from_secs(1), async { 5 }));
    assert_eq!(out, Ok(5));
    let out = futures::executor::block_on(deadline(&timer, Instant::NEVER, async { 6 }));
    assert_eq!(out, Ok(6));
    assert_eq!(timer.uses.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_timeouts_time_starts_at_its_first_poll() {
    let rt = VirtualRuntime::new();
    let limited = timeout(
        &rt,
        Duration::from_secs(1),
        rt.sleep(Duration::from_millis(1500)),
    );
    // Time passes before the first poll; the inner sleep's clock started at
    // its creation, the timeout's at its first poll.
    rt.advance(Duration::from_millis(800));
    let out = rt.block_on(limited).unwrap();
    assert_eq!(out, Ok(()));
    assert_eq!(rt.now(), Instant::from_origin(Duration::from_millis(1500)));
}

#[test]
fn the_packed_limit_keeps_every_duration_and_instant_exactly() {
    let durations = [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::new(1, 999_999_999),
        Duration::MAX,
    ];
    for duration in durations {
        assert!(matches!(Limit::after(duration).kind(), LimitKind::After(d) if d == duration));
        assert_eq!(Limit::after(duration).elapsed_after(), duration);
        let at = Instant::from_origin(duration);
        assert!(matches!(Limit::until(at).kind(), LimitKind::Until(i) if i == at));
    }
    assert!(matches!(Limit::until(Instant::NEVER).kind(), LimitKind::Until(i) if i.is_never()));
    // A deadline reports the time left only once armed; before that, zero.
    assert_eq!(Limit::until(Instant::NEVER).elapsed_after(), Duration::ZERO);
}

#[test]
fn the_inner_future_can_be_reached_until_the_time_runs_out() {
    let rt = VirtualRuntime::new();
    let mut limited = timeout(&rt, Duration::from_millis(5), std::future::pending::<u8>());
    assert!(limited.get_ref().is_some());
    assert!(limited.get_mut().is_some());
    let out = rt.block_on(&mut limited).unwrap();
    assert_eq!(
        out,
        Err(Elapsed {
            after: Duration::from_millis(5)
        })
    );
    // The inner future was dropped when the time ran out.
    assert!(limited.get_ref().is_none());
    assert!(limited.get_mut().is_none());
    assert!(limited.into_inner().is_none());
}

#[test]
fn when_nested_timeouts_fire_at_the_same_instant_the_inner_one_reports() {
    let rt = VirtualRuntime::new();
    let out = rt
        .block_on(timeout(
            &rt,
            Duration::from_millis(10),
            timeout(&rt, Duration::from_millis(10), std::future::pending::<()>()),
        ))
        .unwrap();
    assert_eq!(
        out,
        Ok(Err(Elapsed {
            after: Duration::from_millis(10)
        }))
    );
    assert_eq!(rt.now(), Instant::from_origin(Duration::from_millis(10)));
}

#[test]
fn when_a_scope_deadline_and_a_timeout_fire_at_the_same_instant_the_scope_reports() {
    use crate::scope::{CancelReason, CancelScope};
    let rt = VirtualRuntime::new();
    let ten = Duration::from_millis(10);
    let scope = CancelScope::new().with_timeout(&rt, ten);
    let outside = rt
        .block_on(scope.run(timeout(&rt, ten, std::future::pending::<()>())))
        .unwrap();
    let reason = outside.unwrap_err().reason;
    assert!(
        matches!(reason, CancelReason::Deadline { .. }),
        "{reason:?}"
    );
    let scope = CancelScope::new().with_timeout(&rt, ten);
    let inside = rt
        .block_on(timeout(&rt, ten, scope.run(std::future::pending::<()>())))
        .unwrap();
    let reason = inside.unwrap().unwrap_err().reason;
    assert!(
        matches!(reason, CancelReason::Deadline { .. }),
        "{reason:?}"
    );
}

#[test]
fn a_future_that_finishes_at_the_timeouts_instant_wins() {
    let rt = VirtualRuntime::new();
    let ten = Duration::from_millis(10);
    assert_eq!(
        rt.block_on(timeout(&rt, ten, rt.sleep(ten))).unwrap(),
        Ok(())
    );
    let at = rt.now() + ten;
    assert_eq!(
        rt.block_on(deadline(&rt, at, rt.sleep_until(at))).unwrap(),
        Ok(())
    );
    assert_eq!(rt.now(), at);
}
