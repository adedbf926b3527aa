//! A deterministic single-thread executor with a virtual clock.
//!
//! Invariants:
//! - the clock only moves when no task is ready: it jumps to the earliest
//!   armed timer, and every timer at or before the new time is woken;
//! - a sleep that is dropped disarms its timer, so stale timers never make
//!   the clock jump nor hide a deadlock;
//! - tasks live in a thread-local store of the thread that runs `block_on`
//!   (so `!Send` tasks are possible in safe code); tasks spawned from other
//!   threads arrive through a shared inbox;
//! - one first-in-first-out ready queue holds every woken task, the main
//!   future included: a task is queued when it is spawned or woken, so a
//!   task that yields runs again only after every task queued before it
//!   has been polled once (a spawned task's id is queued at spawn time,
//!   even when its future still waits in the inbox);
//! - a sleep is always a yield point: a sleep that is already due when
//!   first polled wakes itself and returns `Pending` once;
//! - `block_on` is not re-entrant for the same runtime on one thread: a
//!   thread-local list of the runtimes this thread is driving catches it.
//!
//! Locking: the clock, the ready queue and the inbox each have their own
//! mutex; none is held while a future is polled or a waker is woken.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::task::{ArcWake, waker};
use thiserror::Error;

use crate::runtime::{
    BlockingTask, BoxTask, ErrorSink, Instant, LocalBoxTask, LocalSpawn, Spawn, SpawnBlocking,
    SpawnError, Timer,
};

/// The executor had nothing to run and no timer to wait for, yet the future
/// given to [`VirtualRuntime::block_on`] had not finished.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "deadlock: the main future and {tasks} spawned task(s) are all waiting, and no timer is armed; something awaits an event that can never happen in virtual time"
)]
pub struct Deadlock {
    /// How many spawned tasks were still waiting.
    pub tasks: usize,
}

/// A deterministic runtime for tests: a single-thread executor plus a virtual
/// clock that jumps straight to the next timer whenever every task is idle,
/// like trio's autojump clock or tokio's paused time, but on every target,
/// `wasm32` included.
///
/// A test that sleeps an hour finishes in microseconds, and every instant it
/// observes is exact. If every task waits and no timer is armed, `block_on`
/// returns a [`Deadlock`] error instead of hanging.
///
/// `VirtualRuntime` is a cheap handle (`Clone + Send + Sync`): clone it into
/// tasks. It implements [`Timer`], [`Spawn`] and [`LocalSpawn`]. Tasks run
/// only while some thread is inside [`block_on`](VirtualRuntime::block_on).
///
/// # Who owns the tasks
///
/// The value [`new`](VirtualRuntime::new) returns owns the runtime, as a
/// tokio `Runtime` does; its clones are handles, like tokio's `Handle`.
/// Dropping the owner shuts the runtime down ([`shutdown`](Self::shutdown)):
/// every unfinished task is dropped, so what tasks hold (permits, clones of
/// the runtime itself) is released instead of kept alive by a cycle, and
/// spawning through a remaining clone fails with
/// [`SpawnError::Shutdown`]. Dropping clones does nothing. So keep the
/// owner alive for as long as you use the runtime, and drop it on the thread
/// that ran `block_on` (tasks live on that thread; a task still stored on
/// another thread is dropped when that thread ends).
///
/// # Example
///
/// ```
/// use staunch::runtime::{Instant, Timer};
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let now = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         rt.sleep(Duration::from_secs(3600)).await; // instant, exact
///         rt.now()
///     }
/// });
/// assert_eq!(now.unwrap(), Instant::from_origin(Duration::from_secs(3600)));
/// ```
pub struct VirtualRuntime {
    shared: Arc<Shared>,
    sink: ErrorSink,
    /// The value `new` returned: its drop shuts the runtime down.
    owner: bool,
}

impl Clone for VirtualRuntime {
    /// A handle to the same runtime; it does not own the tasks.
    fn clone(&self) -> VirtualRuntime {
        VirtualRuntime {
            shared: self.shared.clone(),
            sink: self.sink.clone(),
            owner: false,
        }
    }
}

impl Drop for VirtualRuntime {
    fn drop(&mut self) {
        if self.owner {
            self.shutdown();
        }
    }
}

struct Shared {
    id: u64,
    clock: Mutex<Clock>,
    wakes: Arc<WakeQueue>,
    inbox: Mutex<Vec<(u64, BoxTask)>>,
    next_task: AtomicU64,
    shut_down: AtomicBool,
}

/// What wakers touch; kept apart from the task inbox so wakers stay
/// `Send + Sync` even on wasm32, where tasks are not `Send`.
#[derive(Default)]
struct WakeQueue {
    ready: Mutex<VecDeque<u64>>,
}

#[derive(Default)]
struct Clock {
    now: Instant,
    timers: BTreeMap<(Instant, u64), Waker>,
    next_timer: u64,
}

struct TaskEntry {
    future: Option<LocalBoxTask>,
    state: Arc<TaskWaker>,
    waker: Waker,
}

thread_local! {
    /// Tasks of each runtime (by id) that run on this thread.
    static TASKS: RefCell<HashMap<u64, HashMap<u64, TaskEntry>>> = RefCell::new(HashMap::new());
    /// The runtimes whose `block_on` is running on this thread.
    static DRIVING: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Marks a runtime as driven by this thread for as long as it lives.
struct Driving(u64);

impl Driving {
    fn enter(id: u64) -> Driving {
        let nested = DRIVING.with(|d| {
            let mut d = d.borrow_mut();
            let nested = d.contains(&id);
            if !nested {
                d.push(id);
            }
            nested
        });
        assert!(
            !nested,
            "VirtualRuntime::block_on was called from inside the runtime it drives (from its main \
             future or one of its tasks); it cannot block this thread while the thread runs that \
             runtime's tasks: `.await` the future instead"
        );
        Driving(id)
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.borrow_mut().retain(|&id| id != self.0));
    }
}

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);
const MAIN_TASK: u64 = u64::MAX;

struct TaskWaker {
    id: u64,
    queued: AtomicBool,
    wakes: std::sync::Weak<WakeQueue>,
}

impl ArcWake for TaskWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        let Some(wakes) = arc_self.wakes.upgrade() else {
            return;
        };
        if !arc_self.queued.swap(true, Ordering::AcqRel) {
            lock(&wakes.ready).push_back(arc_self.id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl VirtualRuntime {
    /// A new runtime whose clock reads [`Instant::ORIGIN`].
    #[must_use]
    // On wasm32 tasks are not `Send`, so neither is `Shared`; one handle type
    // serves both targets and wasm32 has a single thread.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn new() -> VirtualRuntime {
        VirtualRuntime {
            shared: Arc::new(Shared {
                id: NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed),
                clock: Mutex::new(Clock::default()),
                wakes: Arc::new(WakeQueue::default()),
                inbox: Mutex::new(Vec::new()),
                next_task: AtomicU64::new(0),
                shut_down: AtomicBool::new(false),
            }),
            sink: ErrorSink::default(),
            owner: true,
        }
    }

    /// This handle, reporting failures of tasks it spawns that nobody
    /// observed to `sink` instead of the default (stderr / console). Other
    /// handles to the same runtime keep their own sink.
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> VirtualRuntime {
        self.sink = sink;
        self
    }

    /// Runs `future` to completion on this thread, running spawned tasks
    /// and advancing virtual time as needed.
    ///
    /// Ready tasks run first in, first out, the main future among them: a
    /// task that yields (or sleeps for zero) goes behind every task already
    /// queued. Tasks still unfinished when `future` completes stay in the
    /// runtime and run again at the next `block_on` on this thread.
    ///
    /// # Errors
    ///
    /// [`Deadlock`] if every task waits and no timer is armed.
    ///
    /// # Panics
    ///
    /// If called from inside this same runtime (from the main future of a
    /// running `block_on` or from one of its tasks): that thread is busy
    /// running the runtime, so blocking it could never finish. The message
    /// says so; `.await` the future instead. (In a spawned task the panic
    /// is captured and its handle reports it as
    /// [`JoinError::Panicked`](crate::runtime::JoinError) where the target
    /// unwinds.) Driving a *different* `VirtualRuntime` from inside is fine.
    pub fn block_on<F: IntoFuture>(&self, future: F) -> Result<F::Output, Deadlock> {
        let shared = &self.shared;
        let _driving = Driving::enter(shared.id);
        let mut future = std::pin::pin!(future.into_future());
        let main = Arc::new(TaskWaker {
            id: MAIN_TASK,
            queued: AtomicBool::new(false),
            wakes: Arc::downgrade(&shared.wakes),
        });
        let main_waker = waker(main.clone());
        ArcWake::wake_by_ref(&main);
        loop {
            let next = lock(&shared.wakes.ready).pop_front();
            match next {
                Some(MAIN_TASK) => {
                    // Clear before polling, so a wake during the poll queues
                    // the main future again (behind everything queued).
                    main.queued.store(false, Ordering::Release);
                    let mut cx = Context::from_waker(&main_waker);
                    if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                        return Ok(out);
                    }
                }
                Some(id) => self.poll_task(id),
                None => {
                    if !lock(&shared.inbox).is_empty() {
                        self.admit_inbox();
                        continue;
                    }
                    if !self.fire_next_timers() {
                        return Err(Deadlock {
                            tasks: self.task_count(),
                        });
                    }
                }
            }
        }
    }

    /// The number of spawned tasks that have not finished yet.
    #[must_use]
    pub fn task_count(&self) -> usize {
        let local = TASKS.with(|t| t.borrow().get(&self.shared.id).map_or(0, HashMap::len));
        local + lock(&self.shared.inbox).len()
    }

    /// Moves the clock forward by `by` at once, waking every timer that falls
    /// due. Useful outside `block_on`; inside, the clock advances by itself.
    pub fn advance(&self, by: Duration) {
        let due = {
            let mut clock = lock(&self.shared.clock);
            clock.now = clock.now.saturating_add(by);
            take_due(&mut clock)
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// Stops accepting tasks and drops every task not yet finished (their
    /// handles then report [`JoinError::Lost`](crate::runtime::JoinError)).
    /// Later spawns fail with [`SpawnError::Shutdown`]. Call it on the thread
    /// that ran `block_on` to drop that thread's tasks.
    pub fn shutdown(&self) {
        self.shared.shut_down.store(true, Ordering::Release);
        let inbox = std::mem::take(&mut *lock(&self.shared.inbox));
        drop(inbox);
        // At thread exit the store may be gone already (with its tasks).
        let tasks = TASKS.try_with(|t| t.borrow_mut().remove(&self.shared.id));
        drop(tasks);
    }

    /// Moves tasks spawned through [`Spawn`] into this thread's store. Their
    /// ids were queued when they were spawned, so they keep their place.
    fn admit_inbox(&self) {
        let arrived = std::mem::take(&mut *lock(&self.shared.inbox));
        for (id, task) in arrived {
            self.store_local(id, task, true);
        }
    }

    fn insert_local(&self, future: LocalBoxTask) {
        let id = self.shared.next_task.fetch_add(1, Ordering::Relaxed);
        self.store_local(id, future, false);
    }

    /// Stores a task on this thread; `queued` says its id is already in the
    /// ready queue (a task spawned through [`Spawn`]), else it is queued now.
    fn store_local(&self, id: u64, future: LocalBoxTask, queued: bool) {
        let task_waker = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(queued),
            wakes: Arc::downgrade(&self.shared.wakes),
        });
        let entry = TaskEntry {
            future: Some(future),
            state: task_waker.clone(),
            waker: waker(task_waker.clone()),
        };
        TASKS.with(|t| {
            t.borrow_mut()
                .entry(self.shared.id)
                .or_default()
                .insert(id, entry);
        });
        if !queued {
            ArcWake::wake_by_ref(&task_waker);
        }
    }

    fn poll_task(&self, id: u64) {
        let rt = self.shared.id;
        let stored = TASKS.with(|t| t.borrow().get(&rt).is_some_and(|m| m.contains_key(&id)));
        if !stored {
            // Spawned through `Spawn` and still in the inbox.
            self.admit_inbox();
        }
        let taken = TASKS.with(|t| {
            let mut all = t.borrow_mut();
            let entry = all.get_mut(&rt)?.get_mut(&id)?;
            Some((
                entry.future.take()?,
                entry.state.clone(),
                entry.waker.clone(),
            ))
        });
        let Some((mut future, state, task_waker)) = taken else {
            return;
        };
        // Clear the queued flag before polling, so a wake during the poll
        // queues the task again.
        state.queued.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&task_waker);
        let done = future.as_mut().poll(&mut cx).is_ready();
        let leftover = TASKS.with(|t| {
            let mut all = t.borrow_mut();
            let tasks = all.get_mut(&rt)?;
            if done {
                tasks.remove(&id);
                Some(future)
            } else {
                match tasks.get_mut(&id) {
                    Some(entry) => {
                        entry.future = Some(future);
                        None
                    }
                    // Removed while polling (shutdown): drop it below.
                    None => Some(future),
                }
            }
        });
        // Drop finished futures outside the borrow: their drop may spawn.
        drop(leftover);
    }

    /// Advances the clock to the earliest armed timer and wakes everything
    /// due. Returns `false` if no timer is armed.
    fn fire_next_timers(&self) -> bool {
        let due = {
            let mut clock = lock(&self.shared.clock);
            let Some((&(first, _), _)) = clock.timers.iter().next() else {
                return false;
            };
            if first > clock.now {
                clock.now = first;
            }
            take_due(&mut clock)
        };
        due.into_iter().for_each(Waker::wake);
        true
    }
}

fn take_due(clock: &mut Clock) -> Vec<Waker> {
    let later = clock.timers.split_off(&(clock.now, u64::MAX));
    std::mem::replace(&mut clock.timers, later)
        .into_values()
        .collect()
}

impl Default for VirtualRuntime {
    fn default() -> VirtualRuntime {
        VirtualRuntime::new()
    }
}

impl fmt::Debug for VirtualRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualRuntime")
            .field("now", &lock(&self.shared.clock).now)
            .field("tasks", &self.task_count())
            .finish()
    }
}

impl Timer for VirtualRuntime {
    type Sleep = VirtualSleep;

    fn now(&self) -> Instant {
        lock(&self.shared.clock).now
    }

    fn sleep(&self, duration: Duration) -> VirtualSleep {
        let deadline = self.now().saturating_add(duration);
        self.sleep_until(deadline)
    }

    fn sleep_until(&self, deadline: Instant) -> VirtualSleep {
        VirtualSleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
            polled: false,
        }
    }
}

impl Spawn for VirtualRuntime {
    fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError> {
        if self.shared.shut_down.load(Ordering::Acquire) {
            return Err(SpawnError::Shutdown);
        }
        // Queue the id now, so the task keeps its place in line even though
        // its future reaches this thread's store later.
        let id = self.shared.next_task.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.inbox).push((id, task));
        lock(&self.shared.wakes.ready).push_back(id);
        Ok(())
    }

    fn error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

impl SpawnBlocking for VirtualRuntime {
    /// Always [`SpawnError::Unsupported`]: the virtual runtime is a single
    /// thread whose clock would not wait for a blocking thread, so timings
    /// would stop being exact. Run blocking work on a real runtime.
    fn spawn_blocking_task(&self, _work: BlockingTask) -> Result<(), SpawnError> {
        Err(SpawnError::Unsupported {
            what: "spawn_blocking",
            why: "VirtualRuntime runs everything on one thread in virtual time, so it has no blocking pool; test blocking work on a real runtime (staunch-smol or staunch-tokio)",
        })
    }
}

impl LocalSpawn for VirtualRuntime {
    /// The task runs on this thread, at the next `block_on` on this thread.
    fn spawn_local_task(&self, task: LocalBoxTask) -> Result<(), SpawnError> {
        if self.shared.shut_down.load(Ordering::Acquire) {
            return Err(SpawnError::Shutdown);
        }
        self.insert_local(task);
        Ok(())
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone()
    }
}

/// The sleep future of [`VirtualRuntime`]. Dropping it disarms its timer.
///
/// A sleep is always a yield point: one that is already due when first
/// polled (`sleep(Duration::ZERO)`) wakes itself and returns `Pending` once,
/// so the task goes behind every task already queued.
#[must_use = "a sleep does nothing unless awaited"]
pub struct VirtualSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    key: Option<(Instant, u64)>,
    polled: bool,
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let first_poll = !std::mem::replace(&mut this.polled, true);
        let mut clock = lock(&this.shared.clock);
        if clock.now >= this.deadline {
            if first_poll {
                drop(clock);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            if let Some(key) = this.key.take() {
                clock.timers.remove(&key);
            }
            return Poll::Ready(());
        }
        if this.deadline.is_never() {
            return Poll::Pending; // never armed: "never" must not move the clock
        }
        match this.key {
            Some(key) => {
                if let Some(w) = clock.timers.get_mut(&key) {
                    if !w.will_wake(cx.waker()) {
                        *w = cx.waker().clone();
                    }
                } else {
                    // Fired (removed) but the clock reading above says not
                    // yet due: cannot happen, re-arm defensively.
                    clock.timers.insert(key, cx.waker().clone());
                }
            }
            None => {
                let key = (this.deadline, clock.next_timer);
                clock.next_timer += 1;
                clock.timers.insert(key, cx.waker().clone());
                this.key = Some(key);
            }
        }
        Poll::Pending
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            lock(&self.shared.clock).timers.remove(&key);
        }
    }
}

impl fmt::Debug for VirtualSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualSleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{JoinError, LocalSpawnExt, SpawnExt};

    #[test]
    fn an_hour_of_sleep_takes_no_real_time_and_is_exact() {
        let rt = VirtualRuntime::new();
        let wall = std::time::Instant::now();
        let at = rt
            .block_on({
                let rt = rt.clone();
                async move {
                    rt.sleep(Duration::from_secs(3600)).await;
                    rt.now()
                }
            })
            .unwrap();
        assert_eq!(at, Instant::from_origin(Duration::from_secs(3600)));
        assert!(wall.elapsed() < Duration::from_secs(5));
    }

    /// Counts its drops.
    struct Dropped(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_the_owner_drops_unfinished_tasks_and_releases_what_they_hold() {
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bulkhead = crate::bulkhead::Bulkhead::builder(VirtualRuntime::new(), 2)
            .build()
            .unwrap();
        let rt = VirtualRuntime::new();
        let handle = rt.clone();
        let weak = Arc::downgrade(&rt.shared);
        rt.block_on({
            let rt = rt.clone();
            let bulkhead = bulkhead.clone();
            let dropped = dropped.clone();
            async move {
                for local in [false, true] {
                    // Each task holds a clone of the runtime (the cycle that
                    // used to keep them alive) and a bulkhead slot.
                    let (rt2, bulkhead, guard) =
                        (rt.clone(), bulkhead.clone(), Dropped(dropped.clone()));
                    let task = async move {
                        let _guard = guard;
                        let _ = bulkhead
                            .call(async move {
                                rt2.sleep(Duration::from_secs(3600)).await;
                                Ok::<_, ()>(())
                            })
                            .await;
                    };
                    if local {
                        drop(rt.spawn_local(task).unwrap());
                    } else {
                        drop(rt.spawn(task).unwrap());
                    }
                }
                rt.sleep(Duration::from_millis(1)).await;
            }
        })
        .unwrap();
        assert_eq!((bulkhead.inside(), rt.task_count()), (2, 2));
        drop(handle); // a clone: nothing happens
        assert_eq!(dropped.load(Ordering::SeqCst), 0);
        assert_eq!(rt.task_count(), 2);
        drop(rt);
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "the tasks were dropped");
        assert_eq!(bulkhead.inside(), 0, "their slots were released");
        assert!(weak.upgrade().is_none(), "nothing keeps the runtime alive");
    }

    #[test]
    fn a_clone_refuses_to_spawn_once_the_owner_is_gone() {
        let rt = VirtualRuntime::new();
        let handle = rt.clone();
        drop(rt);
        assert_eq!(
            handle.spawn(async {}).err(),
            Some(SpawnError::Shutdown),
            "spawning after the owner was dropped"
        );
    }

    #[test]
    fn waiting_on_nothing_is_reported_as_a_deadlock() {
        let rt = VirtualRuntime::new();
        let stuck = rt.spawn(futures::future::pending::<()>()).unwrap();
        let err = rt.block_on(futures::future::pending::<()>()).unwrap_err();
        assert_eq!(err, Deadlock { tasks: 1 });
        assert!(err.to_string().contains("deadlock"));
        drop(stuck);
    }

    #[test]
    fn a_never_sleep_does_not_move_the_clock_and_is_a_deadlock_alone() {
        let rt = VirtualRuntime::new();
        let err = rt.block_on(rt.sleep(Duration::MAX)).unwrap_err();
        assert_eq!(err.tasks, 0);
        assert_eq!(rt.now(), Instant::ORIGIN);
    }

    #[test]
    fn a_dropped_sleep_disarms_its_timer() {
        let rt = VirtualRuntime::new();
        let _ = futures::FutureExt::now_or_never(rt.sleep(Duration::from_secs(5)));
        // With the timer disarmed, a pending future is a deadlock, not a jump to 5 s.
        assert!(rt.block_on(futures::future::pending::<()>()).is_err());
        assert_eq!(rt.now(), Instant::ORIGIN);
    }

    #[test]
    fn spawning_after_shutdown_is_a_typed_error_and_pending_tasks_are_lost() {
        let rt = VirtualRuntime::new();
        let pending = rt.spawn(futures::future::pending::<()>()).unwrap();
        rt.block_on(async {}).unwrap(); // admit the task
        rt.shutdown();
        assert_eq!(rt.spawn(async {}).unwrap_err(), SpawnError::Shutdown);
        assert_eq!(rt.spawn_local(async {}).unwrap_err(), SpawnError::Shutdown);
        assert_eq!(futures::executor::block_on(pending), Err(JoinError::Lost));
    }

    #[test]
    fn advance_wakes_due_timers_outside_block_on() {
        let rt = VirtualRuntime::new();
        let mut sleep = Box::pin(rt.sleep(Duration::from_millis(10)));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        rt.advance(Duration::from_millis(10));
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn tasks_left_unfinished_run_at_the_next_block_on() {
        let rt = VirtualRuntime::new();
        let handle = rt
            .spawn({
                let rt = rt.clone();
                async move {
                    rt.sleep(Duration::from_secs(1)).await;
                    Ok::<_, String>(5)
                }
            })
            .unwrap();
        rt.block_on(async {}).unwrap();
        assert_eq!(rt.task_count(), 1);
        assert_eq!(rt.block_on(handle).unwrap(), Ok(Ok(5)));
        assert_eq!(rt.task_count(), 0);
    }

    #[test]
    fn ready_tasks_run_first_in_first_out_and_a_yielder_goes_to_the_back() {
        let rt = VirtualRuntime::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        rt.block_on({
            let (rt, log) = (rt.clone(), log.clone());
            async move {
                let first = {
                    let (rt, log) = (rt.clone(), log.clone());
                    rt.clone().spawn(async move {
                        log.lock().unwrap().push("a1");
                        // Spawns c, then yields: c was queued first, so it runs first.
                        let log2 = log.clone();
                        let c = rt
                            .spawn(async move {
                                log2.lock().unwrap().push("c");
                                Ok::<_, ()>(())
                            })
                            .unwrap();
                        crate::runtime::yield_now().await;
                        log.lock().unwrap().push("a2");
                        c.await.ok();
                        Ok::<_, ()>(())
                    })
                }
                .unwrap();
                let second = rt
                    .spawn({
                        let log = log.clone();
                        async move {
                            log.lock().unwrap().push("b");
                            Ok::<_, ()>(())
                        }
                    })
                    .unwrap();
                first.await.ok();
                second.await.ok();
            }
        })
        .unwrap();
        assert_eq!(*log.lock().unwrap(), ["a1", "b", "c", "a2"]);
    }

    #[test]
    fn a_zero_sleep_yields_once_and_takes_no_time() {
        let rt = VirtualRuntime::new();
        let mut sleep = Box::pin(rt.sleep(Duration::ZERO));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
        assert_eq!(rt.now(), Instant::ORIGIN);
    }

    #[test]
    fn block_on_from_inside_the_same_runtime_panics_with_a_message_that_says_so() {
        let rt = VirtualRuntime::new();
        let inner = rt.clone();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async move { inner.block_on(async {}) })
        }))
        .unwrap_err();
        let message = caught
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| caught.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap();
        assert!(
            message.contains("block_on was called from inside the runtime it drives"),
            "{message}"
        );
        // The runtime is usable afterwards, and another runtime may be
        // driven from inside this one.
        let other = VirtualRuntime::new();
        assert_eq!(
            rt.block_on(async { other.block_on(async { 7 }) }).unwrap(),
            Ok(7)
        );
    }

    #[test]
    fn block_on_from_inside_a_task_of_the_same_runtime_fails_that_task_as_panicked() {
        let rt = VirtualRuntime::new();
        let task = rt
            .spawn({
                let rt = rt.clone();
                async move {
                    let _ = rt.block_on(async {});
                    Ok::<_, ()>(())
                }
            })
            .unwrap();
        match rt.block_on(task).unwrap() {
            Err(JoinError::Panicked(p)) => {
                assert!(
                    p.message.contains("from inside the runtime it drives"),
                    "{p:?}"
                );
            }
            other => panic!("expected a captured panic, got {other:?}"),
        }
    }

    #[test]
    fn spawn_blocking_is_a_typed_unsupported_error() {
        use crate::runtime::SpawnBlockingExt;
        let rt = VirtualRuntime::new();
        let err = rt.spawn_blocking(|| Ok::<_, ()>(1)).unwrap_err();
        assert!(matches!(
            err,
            SpawnError::Unsupported {
                what: "spawn_blocking",
                ..
            }
        ));
        assert!(err.to_string().contains("no blocking pool"));
    }
}
