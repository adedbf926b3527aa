//! The conformance suite on wasm32 in Node (`wasm-pack test --node tests`):
//! once on `staunch_web::Web` (real `setTimeout` timers) and once on the
//! `VirtualRuntime`.
#![cfg(target_arch = "wasm32")]

// No configure line: this file runs in Node (`wasm-pack test --node tests`).

mod web {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_web);
}

mod virtual_time {
    use staunch_tests::conformance_test;
    staunch_tests::for_each_case!(conformance_test, wasm_virtual);
}

/// On wasm32 there is one thread, so observers and classifiers may hold
/// `Rc`s and `RefCell`s (or JS values): the bounds are `MaybeSend + MaybeSync`.
mod single_threaded_values {
    use std::cell::RefCell;
    use std::rc::Rc;

    use staunch::breaker::CircuitBreaker;
    use staunch::observe::{Event, Observers};
    use staunch::retry::Retry;
    use staunch::testing::VirtualRuntime;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn an_rc_observer_and_an_rc_classifier_work_on_wasm32() {
        let rt = VirtualRuntime::new();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let ignored = Rc::new("not found");
        let breaker = CircuitBreaker::builder(rt.clone())
            .consecutive_failures(1)
            .failure_if({
                let ignored = ignored.clone();
                move |e: &&str| *e != *ignored
            })
            .observers(Observers::new().with({
                let seen = seen.clone();
                move |e: &Event| seen.borrow_mut().push(e.clone())
            }))
            .build()
            .unwrap();
        let retry = Retry::builder(rt.clone()).max_attempts(1).build().unwrap();
        let out = rt
            .block_on(retry.run(|_| breaker.call(async { Err::<(), _>("not found") })))
            .unwrap();
        assert!(out.is_err());
        assert_eq!(breaker.metrics().failures, 0, "the Rc classifier ran");
        rt.block_on(breaker.call(async { Err::<(), _>("down") }))
            .unwrap()
            .unwrap_err();
        assert!(!seen.borrow().is_empty(), "the Rc observer heard the trip");
    }
}
