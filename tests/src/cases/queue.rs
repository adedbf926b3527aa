//! Conformance cases for `queue`: timed and cancelled queue operations that
//! lose nothing, and the `WorkerPool`'s results, backpressure, dead letters,
//! panics and every way of stopping it, on every runtime.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use futures::future::{join, poll_fn};
use staunch::policy::Policy;
use staunch::queue::{
    Completion, RecvError, SendError, TryRecvError, Unprocessed, WorkerPool, bounded,
};
use staunch::retry::{Backoff, Retry};
use staunch::runtime::{SpawnExt, UnobservedKind};
use staunch::scope::{CancelReason, CancelScope};

use crate::harness::{CollectingSink, Gauge, TestRuntime, ms, yield_now};

type Done = Completion<u64, u64, String>;

/// A boxed handler future: `Send` natively, not on wasm32 (the browser's
/// timers are JavaScript values).
#[cfg(not(target_arch = "wasm32"))]
type ItemFuture = std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send>>;
#[cfg(target_arch = "wasm32")]
type ItemFuture = std::pin::Pin<Box<dyn Future<Output = Result<u64, String>>>>;

/// A handler that sleeps `delay(item)` and answers `item * 10`.
fn sleeper<R: TestRuntime>(
    rt: &R,
    delay: fn(u64) -> Duration,
) -> impl Fn(u64) -> ItemFuture + 'static {
    let rt = rt.clone();
    move |item| {
        let sleep = rt.sleep(delay(item));
        Box::pin(async move {
            sleep.await;
            Ok(item * 10)
        })
    }
}

/// Every submitted item comes out exactly once, with its index and value,
/// in completion order (on virtual time, exactly the order they finish).
pub async fn a_pool_yields_every_item_once_in_completion_order<R: TestRuntime>(rt: R) {
    let finished = Arc::new(Mutex::new(Vec::new()));
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(4)
        .capacity(8)
        .build({
            let rt = rt.clone();
            let finished = finished.clone();
            move |i: u64| {
                let sleep = rt.sleep(ms((40 - i) % 7 * 3 + 1));
                let finished = finished.clone();
                async move {
                    sleep.await;
                    finished.lock().unwrap().push(i);
                    Ok::<_, String>(i * 10)
                }
            }
        })
        .unwrap();
    let producer = async {
        for i in 0..40u64 {
            assert_eq!(
                pool.submit(i).await.unwrap(),
                i,
                "indexes count submissions"
            );
        }
        pool.close();
    };
    let (_, out): ((), Vec<Done>) = join(producer, completions.collect()).await;
    let indexes: BTreeSet<u64> = out.iter().map(|c| c.index).collect();
    assert_eq!(indexes, (0..40).collect(), "each item once on {}", R::NAME);
    assert!(
        out.iter()
            .all(|c| c.result.as_ref().ok() == Some(&(c.index * 10)))
    );
    assert!(out.iter().all(|c| c.attempts == 1));
    if R::VIRTUAL_TIME {
        // One thread: the stream's order is exactly the order items finished.
        let order: Vec<u64> = out.iter().map(|c| c.index).collect();
        assert_eq!(order, *finished.lock().unwrap());
        assert_ne!(order, (0..40).collect::<Vec<_>>(), "not submission order");
    }
}

/// Producers wait while the queue is full: the queue never holds more than
/// its bound and no more items run than there are workers.
pub async fn a_full_pool_makes_producers_wait_and_never_exceeds_its_bound<R: TestRuntime>(rt: R) {
    let running = Gauge::new();
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .capacity(3)
        .build({
            let rt = rt.clone();
            let running = running.clone();
            move |i: u64| {
                let guard = running.enter();
                let sleep = rt.sleep(ms(5));
                async move {
                    sleep.await;
                    drop(guard);
                    Ok::<_, String>(i)
                }
            }
        })
        .unwrap();
    let mut most_queued = 0;
    let start = rt.now();
    for i in 0..20u64 {
        pool.submit(i).await.unwrap();
        most_queued = most_queued.max(pool.stats().queued);
    }
    let submitting = rt.now() - start;
    pool.close();
    let out: Vec<_> = completions.collect().await;
    assert_eq!(out.len(), 20);
    assert!(
        most_queued <= 3,
        "queue held {most_queued} > 3 on {}",
        R::NAME
    );
    assert!(running.peak() <= 2, "{} ran at once", running.peak());
    if R::VIRTUAL_TIME {
        // 5 accepted at once (2 running + 3 queued), then 2 more every
        // 5 ms as the workers finish: the 20th goes in at 8 x 5 ms.
        assert_eq!(submitting, ms(40));
    }
}

/// `send_timeout` on a full queue gives the item back when the limit passes
/// (at exactly that instant on virtual time); `recv_timeout` on an empty one
/// times out the same way; a queued item beats the timer.
pub async fn queue_timeouts_fire_at_the_limit_and_give_the_item_back<R: TestRuntime>(rt: R) {
    let (tx, rx) = bounded::<&str>(1).unwrap();
    tx.send("first").await.unwrap();
    let start = rt.now();
    let err = tx.send_timeout(&rt, ms(30), "second").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.into_item(), "second");
    let waited = rt.now() - start;
    assert!(waited >= ms(30), "gave up after {waited:?}");
    if R::VIRTUAL_TIME {
        assert_eq!(waited, ms(30));
    }
    assert_eq!(rx.recv_timeout(&rt, ms(30)).await, Ok("first"));
    let start = rt.now();
    assert_eq!(
        rx.recv_timeout(&rt, ms(20)).await,
        Err(RecvError::Timeout { after: ms(20) })
    );
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(20));
    }
    // Room frees up before the limit: the send goes through.
    tx.send("third").await.unwrap();
    let freeing = async {
        rt.sleep(ms(5)).await;
        rx.recv().await.unwrap()
    };
    let (sent, freed) = join(tx.send_timeout(&rt, ms(500), "fourth"), freeing).await;
    assert_eq!((sent.is_ok(), freed), (true, "third"));
    assert_eq!(rx.try_recv(), Ok("fourth"));

    // A zero limit: what can happen now happens, the rest times out at once.
    let start = rt.now();
    assert_eq!(
        rx.recv_timeout(&rt, Duration::ZERO).await,
        Err(RecvError::Timeout {
            after: Duration::ZERO
        })
    );
    tx.send_timeout(&rt, Duration::ZERO, "fifth").await.unwrap();
    let err = tx
        .send_timeout(&rt, Duration::ZERO, "sixth")
        .await
        .unwrap_err();
    assert_eq!((err.is_timeout(), err.into_item()), (true, "sixth"));
    assert_eq!(rx.recv_timeout(&rt, Duration::ZERO).await, Ok("fifth"));
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now(), start, "no time passes");
    }
}

/// A send waiting on a full queue inside a cancelled scope gets its item
/// back with the reason; a receive in a cancelled scope says cancelled.
pub async fn a_cancelled_scope_gives_a_waiting_send_its_item_back<R: TestRuntime>(rt: R) {
    let (tx, rx) = bounded::<u32>(1).unwrap();
    tx.send(1).await.unwrap();
    let scope = CancelScope::new();
    let stopper = async {
        rt.sleep(ms(10)).await;
        scope.cancel_with(CancelReason::Shutdown);
    };
    let (sent, ()) = join(tx.send_in(&scope, 2), stopper).await;
    match sent {
        Err(SendError::Cancelled { item, cancelled }) => {
            assert_eq!(item, 2);
            assert_eq!(cancelled.reason, CancelReason::Shutdown);
        }
        other => panic!("expected a cancelled send, got {other:?}"),
    }
    assert_eq!(rx.try_recv(), Ok(1));
    // An already-cancelled scope refuses even with room, and a receive sees it.
    assert!(tx.send_in(&scope, 3).await.unwrap_err().is_cancelled());
    assert!(rx.recv_in(&scope).await.unwrap_err().is_cancelled());
    // A deadline scope on virtual time ends the send at the deadline.
    tx.send(4).await.unwrap();
    let deadline = CancelScope::new().with_timeout(&rt, ms(25));
    let start = rt.now();
    let err = tx.send_in(&deadline, 5).await.unwrap_err();
    assert_eq!(err.into_item(), 5);
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(25));
    }
}

/// A pool's timed or cancellable submit on a full pool gives the item back
/// when its limit passes, its scope is cancelled or the scope's deadline
/// passes (at exactly that instant on virtual time); a scope already
/// cancelled refuses even with room. A refused submit takes no index and
/// is not waited for by `join`.
pub async fn a_pools_timed_or_cancelled_submit_gives_the_item_back<R: TestRuntime>(rt: R) {
    let release = CancelScope::new();
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(1)
        .capacity(1)
        .build({
            let release = release.clone();
            move |item: u64| -> ItemFuture {
                let release = release.clone();
                Box::pin(async move {
                    release.cancelled().await;
                    Ok(item * 10)
                })
            }
        })
        .unwrap();
    // Item 0 in the one worker's hands, item 1 queued: the pool is full.
    assert_eq!(pool.submit(0).await.unwrap(), 0);
    while pool.stats().queued != 0 {
        yield_now().await;
    }
    assert_eq!(pool.submit(1).await.unwrap(), 1);

    let start = rt.now();
    match pool.submit_timeout(ms(20), 2).await {
        Err(SendError::Timeout { item, after }) => assert_eq!((item, after), (2, ms(20))),
        other => panic!("expected a timed-out submit, got {other:?}"),
    }
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(20));
    }
    assert_eq!(pool.try_submit(3).unwrap_err().into_item(), 3);

    let scope = CancelScope::new();
    let stopper = async {
        rt.sleep(ms(10)).await;
        scope.cancel_with(CancelReason::Shutdown);
    };
    let start = rt.now();
    let (refused, ()) = join(pool.submit_in(&scope, 4), stopper).await;
    match refused {
        Err(SendError::Cancelled { item, cancelled }) => {
            assert_eq!((item, cancelled.reason), (4, CancelReason::Shutdown));
        }
        other => panic!("expected a cancelled submit, got {other:?}"),
    }
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(10));
    }
    let deadline = CancelScope::new().with_timeout(&rt, ms(25));
    let start = rt.now();
    assert_eq!(
        pool.submit_in(&deadline, 5).await.unwrap_err().into_item(),
        5
    );
    if R::VIRTUAL_TIME {
        assert_eq!(rt.now() - start, ms(25));
    }
    assert_eq!(pool.stats().submitted, 2, "refused submits are not counted");

    // Let the handlers finish: `join` waits for items 0 and 1 only.
    release.cancel();
    pool.join().await;
    assert!(pool.submit_in(&scope, 6).await.unwrap_err().is_cancelled());
    assert_eq!(pool.submit_in(&CancelScope::new(), 7).await.unwrap(), 2);
    pool.close();
    let mut out: Vec<(u64, u64)> = completions
        .map(|c| (c.index, c.result.expect("succeeds")))
        .collect()
        .await;
    out.sort_unstable();
    assert_eq!(out, [(0, 0), (1, 10), (2, 70)]);
}

/// Submitters handed to other tasks feed one pool: every item is processed
/// once under a unique index, `join` waits for all of them, `try_next`
/// then yields each completion without waiting, and once the pool is
/// closed every submitter's submit is refused with its item.
pub async fn submitters_in_other_tasks_feed_one_pool_until_it_closes<R: TestRuntime>(rt: R) {
    let (pool, mut completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .capacity(2)
        .build(sleeper(&rt, |item| ms(item % 3)))
        .unwrap();
    assert!(
        completions.try_next().is_none(),
        "nothing was submitted yet"
    );
    let producers: Vec<_> = (0..3u64)
        .map(|producer| {
            let submitter = pool.submitter();
            rt.spawn(async move {
                let mut indexes = Vec::new();
                for i in 0..5 {
                    let item = producer * 100 + i;
                    indexes.push(submitter.submit(item).await.map_err(|e| e.into_item())?);
                }
                Ok::<_, u64>(indexes)
            })
            .unwrap()
        })
        .collect();
    let mut indexes = Vec::new();
    for producer in producers {
        indexes.extend(producer.await.unwrap().unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..15).collect::<Vec<_>>(), "one index per item");
    pool.join().await;
    let mut items = Vec::new();
    while let Some(done) = completions.try_next() {
        items.push(done.result.expect("succeeds") / 10);
    }
    items.sort_unstable();
    let expected: Vec<u64> = (0..3)
        .flat_map(|p| (0..5).map(move |i| p * 100 + i))
        .collect();
    assert_eq!(items, expected, "each item processed once");

    let late = pool.submitter();
    pool.close();
    assert!(matches!(late.submit(7).await, Err(SendError::Closed(7))));
    assert_eq!(late.try_submit(8).unwrap_err().into_item(), 8);
    assert!(completions.next().await.is_none(), "the stream ends");
}

/// The largest valid settings work: a queue of `usize::MAX` (nothing is
/// allocated up front), a queue just above the size that is allocated up
/// front still refuses the item past its bound, and a pool with a huge
/// queue and per-key limit processes its items.
pub async fn queues_and_pools_work_at_their_extreme_valid_settings<R: TestRuntime>(rt: R) {
    let (tx, rx) = bounded::<u32>(usize::MAX).unwrap();
    assert_eq!(tx.capacity(), usize::MAX);
    for i in 0..1000 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.len(), 1000);
    assert_eq!(rx.recv().await, Ok(0));

    // 65 536 `u64`s fill the array allocated up front; one more does not.
    let bound = (1 << 16) + 1;
    let (tx, rx) = bounded::<u64>(bound).unwrap();
    for i in 0..bound as u64 {
        tx.try_send(i).unwrap();
    }
    assert!(tx.try_send(0).unwrap_err().is_full(), "full at {bound}");
    assert_eq!(rx.try_recv(), Ok(0));
    tx.try_send(7).unwrap();
    assert!(tx.try_send(8).unwrap_err().is_full());

    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(64)
        .capacity(usize::MAX)
        .limit_per_key(usize::MAX)
        .build(sleeper(&rt, |_| ms(1)))
        .unwrap();
    for i in 0..200u64 {
        pool.submit_keyed("one key", i).await.unwrap();
    }
    pool.close();
    let out: Vec<Done> = completions.collect().await;
    assert_eq!(out.len(), 200);
}

/// Dropping a receive (single or batch) after any number of polls, with
/// items arriving in between, never loses an item: everything sent is
/// received exactly once.
pub async fn dropping_a_receive_at_every_poll_point_loses_no_item<R: TestRuntime>(_rt: R) {
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let mut next = 0u32;
    let mut received = Vec::new();
    for polls in 0..6usize {
        for batch in [false, true] {
            let mut buffer = Vec::new();
            {
                let mut fut: std::pin::Pin<
                    Box<dyn Future<Output = Result<usize, RecvError>> + '_>,
                > = if batch {
                    Box::pin(rx.recv_many(&mut buffer, 2))
                } else {
                    Box::pin(async {
                        let item = rx.recv().await?;
                        received.push(item);
                        Ok(1)
                    })
                };
                for p in 0..polls {
                    let done = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
                    if done {
                        break;
                    }
                    // An item arrives between polls, on some of them.
                    if p % 2 == 1 {
                        tx.try_send(next).unwrap();
                        next += 1;
                    }
                }
                // The future is dropped here, finished or not.
            }
            received.extend(buffer);
        }
    }
    while let Ok(item) = rx.try_recv() {
        received.push(item);
    }
    received.sort_unstable();
    assert_eq!(received, (0..next).collect::<Vec<_>>(), "sent {next}");
    drop(tx);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// A batch receive takes what is queued up to its limit; once the last
/// producer is gone, receivers drain the rest and then see "closed".
pub async fn receivers_drain_a_closed_queue_then_see_the_end<R: TestRuntime>(rt: R) {
    let (tx, rx) = bounded::<u32>(8).unwrap();
    let producer = rt
        .spawn({
            let tx = tx.clone();
            async move {
                for i in 0..5 {
                    tx.send(i).await.map_err(|e| e.into_item())?;
                }
                Ok::<_, u32>(())
            }
        })
        .unwrap();
    producer.await.unwrap().unwrap();
    drop(tx);
    let mut batch = Vec::new();
    assert_eq!(rx.recv_many(&mut batch, 3).await, Ok(3));
    assert_eq!(rx.recv_many(&mut batch, 3).await, Ok(2));
    assert_eq!(batch, vec![0, 1, 2, 3, 4]);
    assert_eq!(rx.recv_many(&mut batch, 3).await, Err(RecvError::Closed));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));
}

/// `shutdown_immediate` hands back what is queued, in order, and ends every
/// wait at once: a sender waiting for room gets its own item back, a
/// receiver waiting on an empty queue sees "closed".
pub async fn shutdown_immediate_returns_the_queue_and_ends_every_wait<R: TestRuntime>(_rt: R) {
    let (tx, rx) = bounded::<u32>(2).unwrap();
    tx.send(1).await.unwrap();
    tx.send(2).await.unwrap();
    let stopper = async {
        yield_now().await; // the send below is waiting for room by now
        rx.shutdown_immediate()
    };
    let (waiting_send, returned) = join(tx.send(3), stopper).await;
    assert_eq!(returned, [1, 2]);
    assert!(matches!(waiting_send, Err(SendError::Closed(3))));
    assert!(matches!(tx.send(4).await, Err(SendError::Closed(4))));
    assert_eq!(rx.recv().await, Err(RecvError::Closed));

    let (_tx, rx) = bounded::<u32>(2).unwrap();
    let stopper = async {
        yield_now().await; // the receive below is waiting by now
        rx.shutdown_immediate()
    };
    let (waiting_recv, returned) = join(rx.recv(), stopper).await;
    assert_eq!((waiting_recv, returned), (Err(RecvError::Closed), vec![]));
}

/// A queue stays open while any receiver lives; when the last one is
/// dropped it closes, and a sender waiting for room, a later send, a
/// `try_send` and a permit taken before all get their items back.
pub async fn dropping_the_last_receiver_gives_every_sender_its_item_back<R: TestRuntime>(_rt: R) {
    let (tx, rx) = bounded::<u32>(2).unwrap();
    let spare = rx.clone();
    drop(rx);
    tx.send(1).await.unwrap(); // one receiver left: still open
    let permit = tx.reserve().await.unwrap(); // the last slot, held
    assert!(!tx.is_closed());
    let dropper = async {
        yield_now().await; // the send below is waiting for room by now
        drop(spare);
    };
    let (waiting_send, ()) = join(tx.send(2), dropper).await;
    assert!(matches!(waiting_send, Err(SendError::Closed(2))));
    assert!(tx.is_closed());
    assert!(matches!(permit.send(5), Err(SendError::Closed(5))));
    assert!(matches!(tx.send(3).await, Err(SendError::Closed(3))));
    assert_eq!(tx.try_send(4).unwrap_err().into_item(), 4);
    assert!(tx.reserve().await.unwrap_err().is_closed());
}

/// Capacity first, item later: a permit holds its slot, and a closed queue
/// hands the item back.
pub async fn a_reserved_slot_is_held_until_used_and_a_closed_queue_returns_the_item<
    R: TestRuntime,
>(
    _rt: R,
) {
    let (tx, rx) = bounded::<u32>(1).unwrap();
    let permit = tx.reserve().await.unwrap();
    assert!(tx.try_send(9).unwrap_err().is_full());
    permit.send(1).unwrap();
    assert_eq!(rx.recv().await, Ok(1));
    drop(tx.reserve().await.unwrap()); // dropped unused: the slot comes back
    let permit = tx.reserve().await.unwrap();
    assert!(rx.close());
    assert_eq!(permit.send(2).unwrap_err().into_item(), 2);
    assert!(tx.reserve().await.unwrap_err().is_closed());
    assert_eq!(rx.shutdown_immediate(), Vec::<u32>::new());
}

/// `close()` then drain: every queued item is processed, `join` returns
/// once they are, and the completion stream ends.
pub async fn closing_a_pool_processes_every_queued_item_then_ends<R: TestRuntime>(rt: R) {
    let (pool, mut completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .capacity(16)
        .build(sleeper(&rt, |_| ms(2)))
        .unwrap();
    for i in 0..12 {
        pool.try_submit(i).unwrap();
    }
    pool.close();
    assert!(pool.try_submit(99).unwrap_err().into_item() == 99);
    pool.join().await;
    assert_eq!(pool.stats().succeeded, 12);
    let mut seen = 0;
    while let Some(c) = completions.next().await {
        assert!(c.result.is_ok());
        seen += 1;
    }
    assert_eq!(seen, 12);
}

/// `shutdown(grace)`: queued items come back at once; in-flight items
/// finish within the grace or are cancelled and come back too. Every item
/// is processed or returned, never both, never neither.
pub async fn shutdown_returns_exactly_the_unprocessed_items<R: TestRuntime>(rt: R) {
    // Items 0..3 are quick, 3.. hang for a minute.
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(3)
        .capacity(20)
        .build(sleeper(&rt, |i| if i < 3 { ms(5) } else { ms(60_000) }))
        .unwrap();
    for i in 0..12 {
        pool.try_submit(i).unwrap();
    }
    // Let the quick ones finish and three slow ones start.
    crate::harness::eventually(&rt, "three items done", || pool.stats().succeeded == 3).await;
    for _ in 0..5 {
        yield_now().await;
    }
    let start = rt.now();
    let report = pool.shutdown(ms(20)).await;
    let took = rt.now() - start;
    let processed: Vec<Done> = completions.collect().await;
    let processed: BTreeSet<u64> = processed.iter().map(|c| c.index).collect();
    let returned: BTreeSet<u64> = report.returned.iter().map(|r| r.index).collect();
    assert_eq!(processed, (0..3).collect());
    assert_eq!(returned, (3..12).collect(), "on {}", R::NAME);
    assert_eq!(report.cancelled_in_flight() + report.queued(), 9);
    if R::VIRTUAL_TIME {
        assert_eq!((report.queued(), report.cancelled_in_flight()), (6, 3));
    }
    assert!(
        report.returned.iter().all(|r| r.item == r.index),
        "the items themselves"
    );
    assert_eq!(report.returned[0].state, Unprocessed::Queued);
    assert!(took < ms(60_000), "took {took:?}");
    if R::VIRTUAL_TIME {
        assert_eq!(took, ms(20));
    }
}

/// A pool of two workers whose items take a minute, reporting to `sink`,
/// with items `0..n` submitted: two running, the rest queued.
async fn two_running_and_the_rest_queued<R: TestRuntime>(
    rt: &R,
    sink: &CollectingSink,
    n: u64,
) -> (
    WorkerPool<u64>,
    staunch::queue::Completions<u64, u64, String>,
) {
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .capacity(8)
        .error_sink(sink.sink())
        .build(sleeper(rt, |_| ms(60_000)))
        .unwrap();
    for i in 0..n {
        pool.try_submit(i).unwrap();
    }
    let queued = n as usize - 2;
    crate::harness::eventually(rt, "two items running", || {
        pool.stats().queued == queued as u64
    })
    .await;
    (pool, completions)
}

/// Dropping the pool cancels its workers and reports each unprocessed item
/// to the error sink.
pub async fn dropping_a_pool_reports_every_lost_item_to_the_error_sink<R: TestRuntime>(rt: R) {
    let sink = CollectingSink::new();
    let (pool, completions) = two_running_and_the_rest_queued(&rt, &sink, 6).await;
    drop(pool);
    let out: Vec<Done> = completions.collect().await; // ends once the workers stop
    assert!(out.is_empty());
    crate::harness::eventually(&rt, "six items reported", || sink.received().len() == 6).await;
    for lost in sink.received() {
        assert!(
            matches!(&lost.kind, UnobservedKind::Other(m) if m.contains("is lost")),
            "{lost}"
        );
    }
}

/// A shutdown whose future is dropped during its grace period drops the
/// pool: the items it had taken back and the ones still in flight are each
/// reported lost to the error sink, once, and the stream of completions ends.
pub async fn dropping_a_shutdown_mid_grace_reports_every_unprocessed_item_once<R: TestRuntime>(
    rt: R,
) {
    let sink = CollectingSink::new();
    let (pool, completions) = two_running_and_the_rest_queued(&rt, &sink, 5).await;
    let cut_short = staunch::timeout::timeout(&rt, ms(10), pool.shutdown(ms(1_000))).await;
    assert!(cut_short.is_err(), "the grace outlasts the timeout");
    let out: Vec<Done> = completions.collect().await; // ends once the workers stop
    assert!(out.is_empty());
    crate::harness::eventually(&rt, "five items reported", || sink.received().len() >= 5).await;
    let mut lost: Vec<String> = sink.received().iter().map(ToString::to_string).collect();
    lost.sort();
    assert_eq!(lost.len(), 5, "{lost:?}");
    for i in 0..5 {
        let about_i = lost
            .iter()
            .filter(|m| m.contains(&format!("item #{i} ")))
            .count();
        assert_eq!(about_i, 1, "item {i} reported once: {lost:?}");
    }
    let in_flight = lost.iter().filter(|m| m.contains("in flight")).count();
    assert_eq!(in_flight, 2, "{lost:?}");
}

/// A panicking item fails alone, as a dead letter; the pool goes on.
pub async fn a_panicking_item_is_reported_and_the_pool_goes_on<R: TestRuntime>(rt: R) {
    if !R::UNWINDS {
        return;
    }
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(1)
        .build(|i: u64| async move {
            if std::hint::black_box(i == 2) {
                panic!("item two is cursed");
            }
            Ok::<_, String>(i)
        })
        .unwrap();
    for i in 0..5 {
        pool.submit(i).await.unwrap();
    }
    pool.close();
    let mut out: Vec<Done> = completions.collect().await;
    out.sort_by_key(|c| c.index);
    assert_eq!(out.len(), 5);
    let dead = out[2].result.as_ref().unwrap_err();
    assert_eq!(dead.item, 2);
    assert!(matches!(&dead.error, staunch::Error::Panicked(p) if p.message.contains("cursed")));
    assert!(
        out.iter()
            .filter(|c| c.index != 2)
            .all(|c| c.result.is_ok())
    );
}

/// A policy of `attempts` attempts, `delay` apart.
fn retrying<R: TestRuntime>(rt: &R, attempts: u32, delay: Duration) -> Policy {
    let retry = Retry::builder(rt.clone())
        .max_attempts(attempts)
        .backoff(Backoff::constant(delay))
        .build()
        .unwrap();
    Policy::builder(rt.clone()).retry(retry).build().unwrap()
}

/// Items that exhaust their retries become dead letters carrying the item,
/// the last error and the attempt count.
pub async fn dead_letters_carry_their_last_error_and_attempts<R: TestRuntime>(rt: R) {
    let calls = Arc::new(AtomicU32::new(0));
    let policy = retrying(&rt, 3, ms(2));
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .build_with_policy(policy, {
            let calls = calls.clone();
            move |i: u64| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if i.is_multiple_of(2) {
                        Err(format!("item {i} failed, call {n}"))
                    } else {
                        Ok(i)
                    }
                }
            }
        })
        .unwrap();
    for i in 0..4 {
        pool.submit(i).await.unwrap();
    }
    pool.close();
    let mut out: Vec<Done> = completions.collect().await;
    out.sort_by_key(|c| c.index);
    for c in &out {
        if c.index.is_multiple_of(2) {
            let dead = c.result.as_ref().unwrap_err();
            assert_eq!((dead.item, dead.attempts, c.attempts), (c.index, 3, 3));
            let last = dead.error.inner().unwrap();
            assert!(
                last.starts_with(&format!("item {} failed", c.index)),
                "{last}"
            );
        } else {
            assert_eq!(c.attempts, 1);
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2 * 3 + 2);
    let stats = pool.stats();
    assert_eq!(
        (stats.dead_lettered, stats.retries, stats.succeeded),
        (2, 4, 2)
    );
}

/// At most the per-key limit of one key's items run at once, while other
/// keys go on.
pub async fn a_per_key_limit_caps_each_key_in_flight<R: TestRuntime>(rt: R) {
    let gauges: Arc<Mutex<std::collections::HashMap<u64, Gauge>>> = Arc::default();
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(6)
        .capacity(32)
        .limit_per_key(2)
        .build({
            let rt = rt.clone();
            let gauges = gauges.clone();
            move |i: u64| {
                let gauge = gauges.lock().unwrap().entry(i % 2).or_default().clone();
                let guard = gauge.enter();
                let sleep = rt.sleep(ms(3));
                async move {
                    sleep.await;
                    drop(guard);
                    Ok::<_, String>(i)
                }
            }
        })
        .unwrap();
    for i in 0..20u64 {
        pool.submit_keyed(if i.is_multiple_of(2) { "even" } else { "odd" }, i)
            .await
            .unwrap();
    }
    pool.close();
    let out: Vec<Done> = completions.collect().await;
    assert_eq!(out.len(), 20);
    assert!(out.iter().all(|c| c.key.as_deref()
        == Some(if c.index.is_multiple_of(2) {
            "even"
        } else {
            "odd"
        })));
    for (key, gauge) in gauges.lock().unwrap().iter() {
        assert!(gauge.peak() <= 2, "key {key} ran {} at once", gauge.peak());
    }
}

/// An item whose worker waits for its key's slot is in flight: a shutdown
/// cancels that wait and returns the item with its key, as it does the
/// running one; queued items come back as queued.
pub async fn shutdown_returns_an_item_waiting_for_its_key_as_in_flight<R: TestRuntime>(rt: R) {
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .capacity(4)
        .limit_per_key(1)
        .build(sleeper(&rt, |_| ms(60_000)))
        .unwrap();
    for i in 0..3u64 {
        pool.submit_keyed("host-a", i).await.unwrap();
    }
    // Item 0 runs, item 1 waits in the other worker for host-a, item 2 is queued.
    crate::harness::eventually(&rt, "both workers busy", || pool.stats().queued == 1).await;
    let report = pool.shutdown(ms(5)).await;
    let returned: Vec<(u64, Option<&str>, Unprocessed)> = report
        .returned
        .iter()
        .map(|r| (r.index, r.key.as_deref(), r.state))
        .collect();
    assert_eq!(returned[0], (2, Some("host-a"), Unprocessed::Queued));
    let mut in_flight = returned[1..].to_vec();
    in_flight.sort_by_key(|r| r.0);
    assert_eq!(
        in_flight,
        [
            (0, Some("host-a"), Unprocessed::CancelledInFlight),
            (1, Some("host-a"), Unprocessed::CancelledInFlight),
        ]
    );
    assert_eq!(report.stats.returned, 3);
    let out: Vec<Done> = completions.collect().await;
    assert!(out.is_empty(), "nothing was processed");
}

/// A shutdown that cancels an item between its retries returns the item:
/// cancellation is never a failure, so it is not a dead letter.
pub async fn an_item_cancelled_between_retries_is_returned_not_dead_lettered<R: TestRuntime>(
    rt: R,
) {
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(1)
        .build_with_policy(retrying(&rt, 5, ms(100)), |i: u64| async move {
            Err::<u64, _>(format!("item {i} fails"))
        })
        .unwrap();
    pool.submit(7).await.unwrap();
    rt.sleep(ms(10)).await; // the first attempt failed; the retry waits 100 ms
    let report = pool.shutdown(Duration::ZERO).await;
    let returned: Vec<(u64, Unprocessed)> =
        report.returned.iter().map(|r| (r.item, r.state)).collect();
    assert_eq!(returned, [(7, Unprocessed::CancelledInFlight)]);
    assert_eq!(report.stats.dead_lettered, 0);
    let out: Vec<Done> = completions.collect().await;
    assert!(out.is_empty(), "no dead letter: {}", out.len());
}

/// `!Send` handlers run through local spawning where the runtime has it.
pub async fn a_local_pool_runs_handlers_that_are_not_send<R: TestRuntime>(rt: R) {
    if !R::LOCAL_SPAWN {
        return;
    }
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .build_local({
            let seen = seen.clone();
            move |i: u64| {
                let seen = seen.clone();
                async move {
                    seen.borrow_mut().push(i);
                    Ok::<_, String>(i)
                }
            }
        })
        .unwrap();
    for i in 0..6 {
        pool.submit(i).await.unwrap();
    }
    pool.join().await;
    pool.close();
    let out: Vec<Done> = completions.collect().await;
    assert_eq!(out.len(), 6);
    let mut seen = seen.borrow().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..6).collect::<Vec<_>>());
}

/// A local pool runs its `!Send` handler through a policy too: each item's
/// first call fails, the retry succeeds, and the attempts are counted.
pub async fn a_local_pool_retries_handlers_that_are_not_send<R: TestRuntime>(rt: R) {
    if !R::LOCAL_SPAWN {
        return;
    }
    let policy = retrying(&rt, 2, ms(1));
    // Calls per item, behind an `Rc`: the handler's futures are not `Send`.
    let calls = std::rc::Rc::new(std::cell::RefCell::new(std::collections::HashMap::new()));
    let (pool, completions) = WorkerPool::builder(rt.clone())
        .workers(2)
        .build_local_with_policy(policy, {
            let calls = calls.clone();
            move |i: u64| {
                let calls = calls.clone();
                async move {
                    let call = {
                        let mut calls = calls.borrow_mut();
                        let n = calls.entry(i).or_insert(0u32);
                        *n += 1;
                        *n
                    };
                    if call == 1 {
                        Err(format!("item {i}: first call fails"))
                    } else {
                        Ok(i * 10)
                    }
                }
            }
        })
        .unwrap();
    for i in 0..4 {
        pool.submit(i).await.unwrap();
    }
    pool.close();
    let mut out: Vec<(u64, u64, u32)> = completions
        .map(|c| (c.index, c.result.expect("the retry succeeds"), c.attempts))
        .collect()
        .await;
    out.sort_unstable();
    assert_eq!(out, [(0, 0, 2), (1, 10, 2), (2, 20, 2), (3, 30, 2)]);
    assert!(calls.borrow().values().all(|&n| n == 2));
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! queue_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? queue::a_pool_yields_every_item_once_in_completion_order);
        $m!($($($extra)*;)? queue::a_full_pool_makes_producers_wait_and_never_exceeds_its_bound);
        $m!($($($extra)*;)? queue::queue_timeouts_fire_at_the_limit_and_give_the_item_back);
        $m!($($($extra)*;)? queue::a_cancelled_scope_gives_a_waiting_send_its_item_back);
        $m!($($($extra)*;)? queue::a_pools_timed_or_cancelled_submit_gives_the_item_back);
        $m!($($($extra)*;)? queue::submitters_in_other_tasks_feed_one_pool_until_it_closes);
        $m!($($($extra)*;)? queue::queues_and_pools_work_at_their_extreme_valid_settings);
        $m!($($($extra)*;)? queue::dropping_a_receive_at_every_poll_point_loses_no_item);
        $m!($($($extra)*;)? queue::receivers_drain_a_closed_queue_then_see_the_end);
        $m!($($($extra)*;)? queue::shutdown_immediate_returns_the_queue_and_ends_every_wait);
        $m!($($($extra)*;)? queue::dropping_the_last_receiver_gives_every_sender_its_item_back);
        $m!($($($extra)*;)? queue::a_reserved_slot_is_held_until_used_and_a_closed_queue_returns_the_item);
        $m!($($($extra)*;)? queue::closing_a_pool_processes_every_queued_item_then_ends);
        $m!($($($extra)*;)? queue::shutdown_returns_exactly_the_unprocessed_items);
        $m!($($($extra)*;)? queue::dropping_a_pool_reports_every_lost_item_to_the_error_sink);
        $m!($($($extra)*;)? queue::dropping_a_shutdown_mid_grace_reports_every_unprocessed_item_once);
        $m!($($($extra)*;)?
            #[cfg(not(target_arch = "wasm32"))]
            queue::a_panicking_item_is_reported_and_the_pool_goes_on
        );
        $m!($($($extra)*;)? queue::dead_letters_carry_their_last_error_and_attempts);
        $m!($($($extra)*;)? queue::an_item_cancelled_between_retries_is_returned_not_dead_lettered);
        $m!($($($extra)*;)? queue::a_per_key_limit_caps_each_key_in_flight);
        $m!($($($extra)*;)? queue::shutdown_returns_an_item_waiting_for_its_key_as_in_flight);
        $m!($($($extra)*;)? queue::a_local_pool_runs_handlers_that_are_not_send);
        $m!($($($extra)*;)? queue::a_local_pool_retries_handlers_that_are_not_send);
    };
}
