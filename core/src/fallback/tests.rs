use std::time::Duration;

use super::*;
use crate::scope::{CancelReason, Cancelled};
use crate::timeout::Elapsed;
use std::future::IntoFuture;

fn block_on<F: IntoFuture>(call: F) -> F::Output {
    futures::executor::block_on(call.into_future())
}

fn cancelled() -> Error<&'static str> {
    Error::Cancelled(Cancelled {
        reason: CancelReason::Shutdown,
    })
}

#[test]
fn a_success_passes_through_untouched() {
    let f = Fallback::value(0);
    assert_eq!(block_on(f.call(async { Ok::<_, &str>(5) })).unwrap(), 5);
}

#[test]
fn a_fallback_never_replaces_cancellation() {
    let f = Fallback::value(0).when(|_| true);
    let out = block_on(f.call(crate::Guarded::new(async { Err::<i32, _>(cancelled()) })));
    assert!(out.unwrap_err().is_cancelled());
    let g = Fallback::with_future(|_| Box::pin(async { Ok(1) }));
    let out = block_on(g.call(crate::Guarded::new(async { Err::<i32, _>(cancelled()) })));
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn the_predicate_chooses_which_failures_fall_back() {
    let f = Fallback::value(0).when(|e: &Error<&str>| e.is_timeout());
    let timed_out = block_on(f.call(crate::Guarded::new(async {
        Err::<i32, _>(Error::Timeout(Elapsed {
            after: Duration::from_millis(1),
        }))
    })));
    assert_eq!(timed_out.unwrap(), 0);
    let inner = block_on(f.call(async { Err::<i32, _>("400") }));
    assert_eq!(inner.unwrap_err().into_inner(), Some("400"));
    // `applies_to` answers the same question without running anything.
    let timeout = Error::Timeout(Elapsed {
        after: Duration::from_millis(1),
    });
    assert!(f.applies_to(&timeout));
    assert!(!f.applies_to(&Error::Inner("400")));
    assert!(!f.applies_to(&cancelled()));
    assert!(
        !Fallback::value(0).applies_to(&cancelled()),
        "never cancellation"
    );
}

#[test]
fn a_closure_fallback_sees_the_error_and_may_fail_too() {
    let f = Fallback::with(|e: Error<&str>| match e.into_inner() {
        Some("soft") => Ok(1),
        _ => Err(Error::Inner("hard")),
    });
    assert_eq!(
        block_on(f.call(async { Err::<i32, _>("soft") })).unwrap(),
        1
    );
    let out = block_on(f.call(async { Err::<i32, _>("x") }));
    assert_eq!(out.unwrap_err().into_inner(), Some("hard"));
}

#[test]
fn using_a_fallback_is_an_event() {
    let (observers, seen) = crate::observe::recording();
    let f = Fallback::value(0).name("price").observers(observers);
    let _ = block_on(f.call(async { Err::<i32, _>("down") }));
    assert_eq!(
        *seen.lock().unwrap(),
        [Event::FallbackUsed {
            name: "price".into(),
            error: "Inner(\"down\")".into()
        }]
    );
}

#[test]
fn a_panicking_primary_unwinds_through_the_fallback_untouched() {
    let used = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = used.clone();
    let f = Fallback::with(move |_: Error<&str>| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(0)
    });
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(f.call(async {
            if used.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                panic!("primary broke");
            }
            Ok::<i32, &str>(1)
        }))
    }));
    let payload = out.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"primary broke"));
    assert_eq!(used.load(std::sync::atomic::Ordering::SeqCst), 0);
    // A panic a task group or join handle captured is an error like any
    // other: answered, unless `when` leaves it out.
    let panicked = || {
        crate::Guarded::new(async {
            Err::<i32, _>(Error::Panicked(crate::runtime::Panicked {
                message: "child broke".into(),
            }))
        })
    };
    assert_eq!(block_on(Fallback::value(7).call(panicked())).unwrap(), 7);
    let not_panics = Fallback::value(7).when(|e: &Error<&str>| !matches!(e, Error::Panicked(_)));
    let out = block_on(not_panics.call(panicked()));
    assert!(matches!(out, Err(Error::Panicked(_))));
}
