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

/// A runtime that shuts down drops a pool's workers mid-item: the item a
/// worker had in hand is handed back like the queued ones, and dropping
/// the pool then reports each of them to its error sink, none lost silently.
#[test]
fn a_pool_whose_runtime_shuts_down_mid_item_reports_every_item() {
    use staunch::queue::WorkerPool;
    use staunch::runtime::ErrorSink;
    use std::sync::{Arc, Mutex};

    let lost = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = ErrorSink::new({
        let lost = lost.clone();
        move |e| lost.lock().unwrap().push(e.to_string())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (pool, completions) = runtime.block_on(async {
        let rt = Tokio::current().unwrap();
        let (pool, completions) = WorkerPool::builder(rt.clone())
            .workers(1)
            .capacity(4)
            .error_sink(sink)
            .build(move |i: u32| {
                let rt = rt.clone();
                async move {
                    rt.sleep(Duration::from_secs(3600)).await;
                    Ok::<_, ()>(i)
                }
            })
            .unwrap();
        for i in 0..3 {
            pool.submit(i).await.unwrap();
        }
        while pool.stats().queued != 2 {
            tokio::task::yield_now().await; // until the worker holds item 0
        }
        (pool, completions)
    });
    drop(runtime);
    drop(pool);
    drop(completions);
    let lost = lost.lock().unwrap();
    assert_eq!(lost.len(), 3, "{lost:?}");
    for (i, at) in [(0, "in flight"), (1, "still queued"), (2, "still queued")] {
        assert!(
            lost.iter()
                .any(|m| m.contains(&format!("item #{i} was {at}"))),
            "item {i}: {lost:?}"
        );
    }
}
