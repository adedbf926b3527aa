//! The `Web` runtime's error sink, in Node (`wasm-pack test --node adapters/web`).
#![cfg(target_arch = "wasm32")]

use std::sync::{Arc, Mutex};

use staunch::runtime::{ErrorSink, Spawn, UnobservedError, UnobservedKind};
use staunch_web::Web;
use wasm_bindgen_test::wasm_bindgen_test;

fn failure() -> UnobservedError {
    UnobservedError {
        task: Some(Arc::from("fetch")),
        kind: UnobservedKind::Failed("Flaky".into()),
    }
}

/// The default sink is made when asked for (console.error) and works; a
/// custom one replaces it; `Debug` reads the same either way.
#[wasm_bindgen_test]
fn the_default_sink_is_made_on_demand_and_a_custom_one_replaces_it() {
    let rt = Web::current();
    let shown = format!("{rt:?}");
    assert!(shown.starts_with("Web { origin_ms: "), "{shown}");
    assert!(shown.ends_with(", sink: ErrorSink(..) }"), "{shown}");
    // Prints "staunch: task `fetch` failed ..." to the console; must not panic.
    rt.error_sink().report(failure());

    let seen = Arc::new(Mutex::new(Vec::new()));
    let custom = rt.with_error_sink(ErrorSink::new({
        let seen = seen.clone();
        move |e: UnobservedError| seen.lock().unwrap().push(e.to_string())
    }));
    assert!(format!("{custom:?}").ends_with(", sink: ErrorSink(..) }"));
    custom.error_sink().report(failure());
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["task `fetch` failed and nobody awaited its handle: Flaky".to_owned()]
    );
}
