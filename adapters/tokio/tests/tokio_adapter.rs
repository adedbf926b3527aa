//! Behaviour specific to the tokio adapter (the shared behaviour is in the
//! conformance suite in `tests/`).

use std::rc::Rc;
use std::time::Duration;

use staunch::runtime::{Instant, LocalSpawnExt, SpawnError, SpawnExt, Timer};
use staunch_tokio::{NoRuntime, Tokio, TokioLocal};

#[test]
fn current_outside_a_runtime_is_a_typed_error() {
    assert_eq!(Tokio::current().unwrap_err(), NoRuntime);
}

#[tokio::test(start_paused = true)]
async fn tokio_paused_time_drives_staunch_sleeps_exactly() {
    let rt = Tokio::current().unwrap();
    let start = rt.now();
    rt.sleep(Duration::from_secs(3600)).await;
    assert_eq!(rt.now() - start, Duration::from_secs(3600));
    assert_eq!(start, Instant::ORIGIN);
}

#[tokio::test]
async fn tokio_local_runs_not_send_tasks_on_a_local_set() {
    let set = Rc::new(tokio::task::LocalSet::new());
    let rt = TokioLocal::on(&set);
    let shared = Rc::new(std::cell::Cell::new(0));
    let handle = rt
        .spawn_local({
            let shared = shared.clone();
            async move {
                shared.set(9);
                Ok::<_, String>(shared.get())
            }
        })
        .unwrap();
    assert_eq!(set.run_until(handle).await, Ok(Ok(9)));
}

#[tokio::test]
async fn the_plain_adapter_refuses_local_spawn_instead_of_panicking() {
    let err = Tokio::current().unwrap().spawn_local(async {}).unwrap_err();
    assert!(matches!(err, SpawnError::Unsupported { .. }));
    assert!(err.to_string().contains("TokioLocal"), "{err}");
}

#[test]
fn a_task_spawned_after_the_runtime_shut_down_is_reported_lost() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rt = runtime.block_on(async { Tokio::current().unwrap() });
    runtime.shutdown_background();
    let handle = rt.spawn(async { Ok::<_, String>(1) }).unwrap();
    assert_eq!(
        futures_lite_block_on(handle),
        Err(staunch::runtime::JoinError::Lost)
    );
}

fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
