//! Behaviour specific to the smol adapter (the shared behaviour is in the
//! conformance suite in `tests/`).

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use async_executor::{Executor, LocalExecutor};
use staunch::runtime::{LocalSpawnExt, SpawnError, SpawnExt, Timer};
use staunch_smol::{Smol, SmolLocal};

#[test]
fn spawning_on_a_dropped_executor_is_a_shutdown_error() {
    let executor = Arc::new(Executor::new());
    let rt = Smol::on(&executor);
    let handle = rt.spawn(async { Ok::<_, String>(1) }).unwrap();
    assert_eq!(smol::block_on(executor.run(handle)), Ok(Ok(1)));
    drop(executor);
    assert_eq!(rt.spawn(async {}).unwrap_err(), SpawnError::Shutdown);
}

#[test]
fn smol_local_runs_not_send_tasks_on_its_local_executor() {
    let local = Rc::new(LocalExecutor::new());
    let rt = SmolLocal::on(&local);
    let shared = Rc::new(std::cell::Cell::new(0));
    let handle = rt
        .spawn_local({
            let shared = shared.clone();
            async move {
                shared.set(7);
                Ok::<_, String>(shared.get())
            }
        })
        .unwrap();
    assert_eq!(smol::block_on(local.run(handle)), Ok(Ok(7)));
    drop(local);
    assert_eq!(rt.spawn_local(async {}).unwrap_err(), SpawnError::Shutdown);
}

#[test]
fn the_global_adapter_refuses_local_spawn_with_a_pointer_to_smol_local() {
    let err = Smol::current().spawn_local(async {}).unwrap_err();
    assert!(err.to_string().contains("SmolLocal"), "{err}");
}

#[test]
fn a_duration_max_sleep_does_not_overflow() {
    let rt = Smol::current();
    let raced = smol::block_on(smol::future::or(
        async {
            rt.sleep(Duration::MAX).await;
            "never"
        },
        async {
            rt.sleep(Duration::from_millis(5)).await;
            "short"
        },
    ));
    assert_eq!(raced, "short");
}
