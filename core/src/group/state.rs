//! A group's shared completion state and the wrapper every child runs in.
//!
//! Invariants (under `Shared::state`'s mutex):
//! - `running` counts slots that are `Running`; a slot leaves `Running`
//!   exactly once, through `complete` (the child finished, panicked, was
//!   cancelled, or its task was dropped: the `ChildGuard` sees to that) or
//!   becomes `Unstarted` if its task was dropped before its first poll;
//! - once `closed`, no slot is added, and every failure that arrives or is
//!   still unreturned goes to the error sink: a failure is returned by
//!   `join` or reported, never both, never neither;
//! - `failed` counts the `Done` slots that failed (not cancelled) and
//!   `trigger` names the first of them to arrive; in fail-fast mode that one
//!   cancels the group, and from the moment it is recorded (under the lock,
//!   before the scope is cancelled) `reserve` refuses new children, so a
//!   spawn that comes after a recorded failure is refused on every runtime.
//!
//! - `reject` only turns an `Unstarted` slot (a task dropped before its
//!   first poll) into `Rejected`, when the executor refused it; an
//!   `Unstarted` slot that the executor had accepted counts as lost.
//!
//! - the group holds one run in its scope's count while `running > 0`
//!   (taken on 0 -> 1 in `reserve`, given back on 1 -> 0 in `complete`), so
//!   a graceful cancel of the scope waits for every child; the children's
//!   own runs are not counted.
//!
//! - a child that returned `Ok(())` (when `T` is `()`) has nothing left to
//!   report: its slot is released as it finishes and reused by a later
//!   child, and `join` puts the `()` back at its place in spawn order. So a
//!   long-lived group holds memory for its live and failed children only,
//!   not for every child it ever ran. Each slot keeps its child's spawn
//!   order, which names the child and orders the outputs.
//!
//! Wakers are woken and the scope is cancelled after the lock is released.

use std::any::Any;
use std::fmt;
use std::mem;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use crate::observe::{Event, Observers};
use crate::runtime::{ErrorSink, UnobservedError, UnobservedKind};
use crate::runtime::{MaybeSend, MaybeSync};
use crate::scope::{CancelReason, CancelScope, Cancelled, WaitKey};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock};

use super::child_handle::{ChildControl, ChildEnd};

use super::error::{ChildError, GroupError, GroupSpawnError, TaskFailure, label};
use super::limit::Semaphore;

pub(crate) enum Slot<T, E> {
    /// Spawned, or being spawned.
    Running(Option<StdArc<str>>),
    /// The task was dropped before its first poll: refused by the executor
    /// (then `reject` turns it into `Rejected`) or dropped at its shutdown
    /// (then it counts as lost).
    Unstarted(Option<StdArc<str>>),
    Done(Option<StdArc<str>>, Result<T, ChildError<E>>),
    Rejected,
    /// A unit success with nothing left to report; the slot is free.
    Released,
    /// Taken by the join (or reported at the group's drop): how it ended,
    /// for the child's handle.
    Joined(ChildEnd),
}

/// One child's slot: where it is, its place in spawn order, and what its
/// [`ChildHandle`](super::ChildHandle) needs.
pub(crate) struct Entry<T, E> {
    order: usize,
    slot: Slot<T, E>,
    /// Abort requested through the handle.
    abort: bool,
    /// Where the child's run waits in the group's scope, to wake it alone.
    wait_key: Option<WaitKey>,
    /// The handle awaiting the child's end.
    waiter: Option<Waker>,
}

impl<T, E> Entry<T, E> {
    fn new(order: usize, slot: Slot<T, E>) -> Entry<T, E> {
        Entry {
            order,
            slot,
            abort: false,
            wait_key: None,
            waiter: None,
        }
    }
}

/// Makes the `()` a released child returned, for `join`; only ever set
/// when `T` is `()`.
pub(crate) type MakeUnit<T> = fn() -> Option<T>;

/// `Some` when `T` is `()`: then a child's `Ok(())` can be released as it
/// finishes and made again at `join`.
pub(crate) fn unit_maker<T: 'static>() -> Option<MakeUnit<T>> {
    fn make<T: 'static>() -> Option<T> {
        let mut unit = Some(());
        (&mut unit as &mut dyn Any)
            .downcast_mut::<Option<T>>()
            .and_then(Option::take)
    }
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<()>()).then_some(make::<T>)
}

pub(crate) struct State<T, E> {
    pub(crate) closed: bool,
    slots: Vec<Entry<T, E>>,
    /// Released slots, for reuse.
    free: Vec<usize>,
    /// Children reserved so far: the next child's spawn order.
    spawned: usize,
    make_unit: Option<MakeUnit<T>>,
    pub(crate) running: usize,
    pub(crate) failed: usize,
    pub(crate) trigger: Option<StdArc<str>>,
    pub(crate) joiner: Option<Waker>,
}

/// What a group tells its observers.
pub(crate) enum Notice<'a> {
    /// The child labelled `name` was cancelled.
    Cancelled { name: String, reason: CancelReason },
    /// A failure is going to the error sink.
    Unobserved(&'a UnobservedError),
}

/// Tells a group's observers a [`Notice`].
pub(crate) type Tell = fn(&Observers, Notice<'_>);

/// The [`Tell`] stored with observers.
pub(crate) fn tell(observers: &Observers, notice: Notice<'_>) {
    observers.emit(|| match notice {
        Notice::Cancelled { name, reason } => Event::Cancelled {
            name: name.into(),
            reason,
        },
        Notice::Unobserved(r) => Event::Unobserved(r.clone()),
    });
}

pub(crate) struct Shared<S, T, E> {
    pub(crate) spawner: S,
    pub(crate) scope: CancelScope,
    /// The scope the group was built `in_scope` of, if any.
    pub(crate) enclosing: Option<CancelScope>,
    pub(crate) fail_fast: bool,
    pub(crate) limit: Option<Arc<Semaphore>>,
    pub(crate) sink: ErrorSink,
    pub(crate) observers: Observers,
    /// Tells the observers; set with them, so programs without observers
    /// do not link the events.
    pub(crate) tell: Option<Tell>,
    pub(crate) state: Mutex<State<T, E>>,
    /// How many aborts were asked through handles: a child looks for its
    /// own abort flag (under the lock) only when this moved since it last
    /// looked, so polls cost one atomic load while nobody aborts.
    pub(crate) aborts: AtomicUsize,
}

fn is_failure<T, E>(result: &Result<T, ChildError<E>>) -> bool {
    matches!(result, Err(e) if !e.is_cancelled())
}

fn unobserved<E: fmt::Debug>(
    name: Option<StdArc<str>>,
    error: &ChildError<E>,
) -> Option<UnobservedError> {
    let kind = match error {
        ChildError::Failed(e) => UnobservedKind::Failed(format!("{e:?}")),
        ChildError::Panicked(p) => UnobservedKind::Panicked(p.message.clone()),
        ChildError::Lost => UnobservedKind::Lost,
        ChildError::Cancelled(_) => return None,
    };
    Some(UnobservedError { task: name, kind })
}

impl<S, T, E: fmt::Debug> Shared<S, T, E> {
    pub(crate) fn new(
        spawner: S,
        scope: CancelScope,
        fail_fast: bool,
        limit: Option<usize>,
        sink: ErrorSink,
    ) -> Self {
        Shared {
            spawner,
            scope,
            enclosing: None,
            fail_fast,
            limit: limit.map(Semaphore::new),
            sink,
            observers: Observers::new(),
            tell: None,
            state: Mutex::new(State {
                closed: false,
                slots: Vec::new(),
                free: Vec::new(),
                spawned: 0,
                make_unit: None,
                running: 0,
                failed: 0,
                trigger: None,
                joiner: None,
            }),
            aborts: AtomicUsize::new(0),
        }
    }

    /// Reserves a slot for a new child: `(slot, spawn order)`.
    /// `make_unit` is [`unit_maker`]'s answer for the group's `T`.
    pub(crate) fn reserve(
        &self,
        name: Option<StdArc<str>>,
        make_unit: Option<MakeUnit<T>>,
    ) -> Result<(usize, usize), GroupSpawnError> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(GroupSpawnError::Closed);
        }
        // The group counts as one run in its scope while it has children,
        // so a graceful cancel of the scope waits for all of them.
        let refused =
            self.scope.is_cancelled() || (state.running == 0 && !self.scope.token.node.enter());
        if refused {
            let reason = self.scope.token.node.reason_or_explicit();
            return Err(GroupSpawnError::Cancelled(Cancelled { reason }));
        }
        // A recorded failure refuses new children even before its cancel
        // reaches the scope (that happens after the lock is released), so
        // the answer does not depend on which thread got there first.
        if self.fail_fast
            && let Some(task) = &state.trigger
        {
            let reason = CancelReason::SiblingFailed { task: task.clone() };
            return Err(GroupSpawnError::Cancelled(Cancelled { reason }));
        }
        state.make_unit = make_unit;
        let order = state.spawned;
        state.spawned += 1;
        let entry = Entry::new(order, Slot::Running(name));
        let index = match state.free.pop() {
            Some(index) => {
                state.slots[index] = entry;
                index
            }
            None => {
                state.slots.push(entry);
                state.slots.len() - 1
            }
        };
        state.running += 1;
        Ok((index, order))
    }

    /// The executor refused child `index` (its task was dropped unpolled):
    /// forget the child.
    pub(crate) fn reject(&self, index: usize) {
        let mut state = lock(&self.state);
        if let Some(Entry {
            slot: slot @ Slot::Unstarted(_),
            ..
        }) = state.slots.get_mut(index)
        {
            *slot = Slot::Rejected;
        }
    }

    /// Child `index` ended with `result`; `started` says whether its task
    /// was ever polled.
    pub(crate) fn complete(&self, index: usize, result: Result<T, ChildError<E>>, started: bool) {
        let mut cancel = None;
        let mut report = None;
        let mut cancelled_event = None;
        let mut idle = false;
        let (waker, handle) = {
            let mut state = lock(&self.state);
            let Some(entry) = state.slots.get_mut(index) else {
                return;
            };
            let order = entry.order;
            // Only a running child's handle waits; it wakes with the end.
            let handle = entry.waiter.take();
            let name = match mem::replace(&mut entry.slot, Slot::Rejected) {
                Slot::Running(name) if !started => {
                    entry.slot = Slot::Unstarted(name);
                    None
                }
                Slot::Running(name) => Some(name),
                other => {
                    entry.slot = other;
                    return;
                }
            };
            state.running -= 1;
            match name {
                None => {}
                Some(name) if state.closed => {
                    state.slots[index].slot = Slot::Joined(ChildEnd::of(&result));
                    if let Err(e) = &result {
                        report = unobserved(name, e);
                    }
                }
                Some(name) => {
                    if let Err(ChildError::Cancelled(c)) = &result
                        && !self.observers.is_empty()
                    {
                        cancelled_event = Some((label(name.as_deref(), order), c.reason.clone()));
                    }
                    if is_failure(&result) {
                        state.failed += 1;
                        if state.trigger.is_none() {
                            let task: StdArc<str> = label(name.as_deref(), order).into();
                            state.trigger = Some(task.clone());
                            if self.fail_fast {
                                cancel = Some(task);
                            }
                        }
                    }
                    if result.is_ok() && state.make_unit.is_some() {
                        // A unit success: nothing left to report.
                        state.slots[index].slot = Slot::Released;
                        state.free.push(index);
                    } else {
                        state.slots[index].slot = Slot::Done(name, result);
                    }
                }
            }
            let joiner = if state.running == 0 {
                idle = true;
                state.joiner.take()
            } else {
                None
            };
            (joiner, handle)
        };
        if idle {
            self.scope.token.node.exit();
        }
        if let Some(task) = cancel {
            self.scope.cancel_with(CancelReason::SiblingFailed { task });
        }
        if let (Some((name, reason)), Some(tell)) = (cancelled_event, self.tell) {
            tell(&self.observers, Notice::Cancelled { name, reason });
        }
        if let Some(r) = report {
            if let Some(tell) = self.tell {
                tell(&self.observers, Notice::Unobserved(&r));
            }
            self.sink.report(r);
        }
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(w) = handle {
            w.wake();
        }
    }

    /// Whether child `index` was asked to abort.
    pub(crate) fn abort_requested(&self, index: usize) -> bool {
        lock(&self.state).slots.get(index).is_some_and(|e| e.abort)
    }

    /// Child `index` now waits under `key`; returns whether it was asked to
    /// abort (an abort that found no key to wake it by).
    pub(crate) fn child_waits(&self, index: usize, key: Option<WaitKey>) -> bool {
        let mut state = lock(&self.state);
        state.slots.get_mut(index).is_some_and(|e| {
            e.wait_key = key;
            e.abort
        })
    }

    /// Ready once no child is running.
    #[cfg(all(test, staunch_loom))]
    pub(crate) fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.running == 0 {
            return Poll::Ready(());
        }
        match &state.joiner {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.joiner = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Once no child is running, closes the group and takes every child's
    /// slot, in spawn order, for the join outputs; in one critical section,
    /// so that a spawn through a [`GroupHandle`](super::GroupHandle) on
    /// another thread either comes before (and is waited for) or is refused
    /// as closed, never starts a child the join no longer sees.
    pub(crate) fn poll_close(&self, cx: &mut Context<'_>) -> Poll<InOrder<T, E>> {
        let mut state = lock(&self.state);
        if state.running == 0 {
            return Poll::Ready(take_slots(&mut state));
        }
        match &state.joiner {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.joiner = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Closes the group and takes every child's slot (see `poll_close`).
    #[cfg(all(test, staunch_loom))]
    pub(crate) fn take_slots(&self) -> InOrder<T, E> {
        take_slots(&mut lock(&self.state))
    }

    /// The group is dropped before its join completed: cancel every child
    /// and report every failure nobody will read (children that failed,
    /// panicked, or were lost, before or after their first poll).
    pub(crate) fn abandon(&self) {
        let reports: Vec<UnobservedError> = {
            let mut state = lock(&self.state);
            if state.closed {
                return;
            }
            state.closed = true;
            // Running slots stay (with their names) for late failures.
            state
                .slots
                .iter_mut()
                .filter_map(|Entry { slot, .. }| match slot {
                    Slot::Done(..) => match mem::replace(slot, Slot::Joined(end_of(slot))) {
                        Slot::Done(name, Err(e)) => unobserved(name, &e),
                        _ => None,
                    },
                    // Its executor dropped it before its first poll, while
                    // the group lived: lost, as `join` would have said.
                    Slot::Unstarted(_) => match mem::replace(slot, Slot::Joined(ChildEnd::Lost)) {
                        Slot::Unstarted(name) => unobserved::<E>(name, &ChildError::Lost),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        };
        self.scope
            .cancel_with_message("the task group was dropped before it was joined");
        // Dropped while a run polls (or drops) the future that held it: that
        // run waits for these children to be gone before it ends.
        let node = &self.scope.token.node;
        if node.runs() != 0 {
            let _ = crate::scope::hand_abandoned(vec![node.clone()]);
        }
        for r in reports {
            if let Some(tell) = self.tell {
                tell(&self.observers, Notice::Unobserved(&r));
            }
            self.sink.report(r);
        }
    }
}

/// Closes the group and takes every child's slot, in spawn order, for the
/// join outputs (released children come back as `Ok(())`).
fn take_slots<T, E>(state: &mut State<T, E>) -> InOrder<T, E> {
    state.closed = true;
    // Each slot keeps how its child ended, for its handle.
    let mut kept: Vec<Entry<T, E>> = state
        .slots
        .iter_mut()
        .filter(|e| !matches!(e.slot, Slot::Released))
        .map(|e| {
            let end = Slot::Joined(end_of(&e.slot));
            Entry::new(e.order, mem::replace(&mut e.slot, end))
        })
        .collect();
    state.free.clear();
    // Already in order unless slots were reused: then a sort of what
    // is kept (live or failed children), not of every child. Orders are
    // unique, so an unstable sort gives the same order, and its code is
    // about 1 KB smaller in the browser than the stable one.
    kept.sort_unstable_by_key(|e| e.order);
    InOrder {
        kept: kept.into_iter().peekable(),
        next: 0,
        spawned: state.spawned,
        make_unit: state.make_unit,
    }
}

/// How the child in `slot` ended, for its handle (`None`: still running).
fn end_state<T, E>(slot: &Slot<T, E>) -> Option<ChildEnd> {
    match slot {
        Slot::Running(_) => None,
        Slot::Done(_, result) => Some(ChildEnd::of(result)),
        Slot::Unstarted(_) | Slot::Rejected => Some(ChildEnd::Lost),
        Slot::Released => Some(ChildEnd::Finished),
        Slot::Joined(end) => Some(end.clone()),
    }
}

/// How the child in a slot that has ended ended.
fn end_of<T, E>(slot: &Slot<T, E>) -> ChildEnd {
    end_state(slot).unwrap_or(ChildEnd::Lost)
}

impl<S, T, E> ChildControl for Shared<S, T, E>
where
    S: MaybeSend + MaybeSync,
    T: MaybeSend,
    E: fmt::Debug + MaybeSend,
{
    fn abort_child(&self, slot: usize, order: usize) {
        let key = {
            let mut state = lock(&self.state);
            let Some(entry) = state.slots.get_mut(slot) else {
                return;
            };
            if entry.order != order || !matches!(entry.slot, Slot::Running(_)) || entry.abort {
                return;
            }
            entry.abort = true;
            entry.wait_key
        };
        self.aborts.fetch_add(1, Ordering::SeqCst);
        // Without a key the child has not waited yet: it looks for its flag
        // at its next poll, or when it first registers (`child_waits`).
        if let Some(key) = key {
            self.scope.token.node.wake_key(key);
        }
    }

    fn poll_end(&self, slot: usize, order: usize, cx: Option<&mut Context<'_>>) -> Poll<ChildEnd> {
        let mut state = lock(&self.state);
        let Some(entry) = state.slots.get_mut(slot) else {
            return Poll::Ready(ChildEnd::Lost);
        };
        if entry.order != order {
            // Only a unit success frees its slot for a later child.
            return Poll::Ready(ChildEnd::Finished);
        }
        if let Some(end) = end_state(&entry.slot) {
            return Poll::Ready(end);
        }
        if let Some(cx) = cx {
            match &entry.waiter {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => entry.waiter = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

/// Every child's slot in spawn order; from [`Shared::take_slots`].
pub(crate) struct InOrder<T, E> {
    kept: std::iter::Peekable<std::vec::IntoIter<Entry<T, E>>>,
    next: usize,
    spawned: usize,
    make_unit: Option<MakeUnit<T>>,
}

impl<T, E> Iterator for InOrder<T, E> {
    type Item = Slot<T, E>;

    fn next(&mut self) -> Option<Slot<T, E>> {
        if self.next >= self.spawned {
            return None;
        }
        let order = self.next;
        self.next += 1;
        if self.kept.peek().is_some_and(|e| e.order == order) {
            return self.kept.next().map(|e| e.slot);
        }
        // Not kept: a released unit success.
        Some(match self.make_unit.and_then(|make| make()) {
            Some(unit) => Slot::Done(None, Ok(unit)),
            None => Slot::Rejected,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.spawned - self.next;
        (left, Some(left))
    }
}

/// The reason `join` reports: the group scope's own, unless the group was
/// cancelled at its own level (by its owner or its own deadline) and an
/// enclosing scope is cancelled too: that cancellation goes on outward
/// (trio re-raises it at the nursery), so the enclosing reason is reported.
pub(crate) fn join_reason(
    own: Option<CancelReason>,
    enclosing: Option<&CancelScope>,
) -> Option<CancelReason> {
    match (own, enclosing) {
        (Some(CancelReason::Explicit { .. } | CancelReason::Deadline { .. }), Some(outer))
            if outer.is_cancelled() =>
        {
            let root = outer.reason()?.root().clone();
            Some(CancelReason::Parent(StdArc::new(root)))
        }
        (own, _) => own,
    }
}

/// Builds `join()`'s answer from the slots.
///
/// Failures (errors, panics, lost tasks) are listed in spawn order, the
/// lowest index first: arrival order is not deterministic on a
/// multi-threaded executor, spawn order is.
pub(crate) fn fail_fast_output<T, E>(
    slots: impl IntoIterator<Item = Slot<T, E>>,
    reason: Option<CancelReason>,
) -> Result<Vec<T>, GroupError<E>> {
    let slots = slots.into_iter();
    let mut values = Vec::with_capacity(slots.size_hint().0);
    let mut failed = Vec::new();
    let mut cancelled = 0;
    let mut aborted = 0;
    for (index, slot) in slots.into_iter().enumerate() {
        match slot {
            Slot::Done(_, Ok(v)) => values.push(v),
            Slot::Done(_, Err(ChildError::Cancelled(c))) => {
                cancelled += 1;
                if c.reason == CancelReason::Aborted {
                    aborted += 1;
                }
            }
            Slot::Done(name, Err(error)) => failed.push(TaskFailure { index, name, error }),
            Slot::Unstarted(name) => failed.push(TaskFailure {
                index,
                name,
                error: ChildError::Lost,
            }),
            Slot::Running(_) | Slot::Rejected | Slot::Released | Slot::Joined(_) => {}
        }
    }
    // Cancelled at its own level (its `cancel()`, its own deadline, or one
    // child aborted through its handle) with no child failing: the owner
    // stopped it on purpose, which is no error (trio's `cancelled_caught`).
    // Through an enclosing scope, at shutdown or by a failing sibling, it
    // is reported.
    let cancelled_by_owner = matches!(
        reason,
        Some(CancelReason::Explicit { .. } | CancelReason::Deadline { .. })
    );
    if failed.is_empty() && (cancelled == aborted || cancelled_by_owner) {
        return Ok(values);
    }
    let mut failed = failed.into_iter();
    let first = failed.next();
    Err(GroupError {
        first,
        others: failed.collect(),
        cancelled,
        reason,
    })
}

/// Builds `join_all()`'s answer from the slots.
pub(crate) fn all_output<T, E>(
    slots: impl IntoIterator<Item = Slot<T, E>>,
) -> Vec<Result<T, ChildError<E>>> {
    slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Done(_, result) => Some(result),
            Slot::Running(_) | Slot::Unstarted(_) => Some(Err(ChildError::Lost)),
            Slot::Rejected | Slot::Released | Slot::Joined(_) => None,
        })
        .collect()
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

    fn shared(fail_fast: bool) -> (Arc<Shared<(), u32, &'static str>>, StdArc<StdAtomicUsize>) {
        let reported = StdArc::new(StdAtomicUsize::new(0));
        let sink = ErrorSink::new({
            let reported = reported.clone();
            move |_| {
                reported.fetch_add(1, StdOrdering::SeqCst);
            }
        });
        let shared = Arc::new(Shared::new((), CancelScope::new(), fail_fast, None, sink));
        (shared, reported)
    }

    struct Flag(AtomicBool);
    impl futures::task::ArcWake for Flag {
        fn wake_by_ref(arc_self: &StdArc<Self>) {
            arc_self.0.store(true, StdOrdering::SeqCst);
        }
    }

    #[test]
    fn loom_a_failure_racing_the_group_drop_is_reported_exactly_once() {
        loom::model(|| {
            let (shared, reported) = shared(true);
            let index = shared.reserve(None, None).unwrap().0;
            let s2 = shared.clone();
            let t =
                loom::thread::spawn(move || s2.complete(index, Err(ChildError::Failed("x")), true));
            shared.abandon();
            t.join().unwrap();
            assert_eq!(reported.load(StdOrdering::SeqCst), 1);
            assert!(shared.scope.is_cancelled());
        });
    }

    #[test]
    fn loom_a_completion_racing_join_wakes_the_joiner_and_is_returned() {
        loom::model(|| {
            let (shared, reported) = shared(true);
            let index = shared.reserve(Some("a".into()), None).unwrap().0;
            let s2 = shared.clone();
            let t =
                loom::thread::spawn(move || s2.complete(index, Err(ChildError::Failed("x")), true));
            let flag = StdArc::new(Flag(AtomicBool::new(false)));
            let waker = futures::task::waker(flag.clone());
            let mut cx = Context::from_waker(&waker);
            let first = shared.poll_idle(&mut cx);
            t.join().unwrap();
            if first.is_pending() {
                assert!(
                    flag.0.load(StdOrdering::SeqCst),
                    "the joiner was never woken"
                );
            }
            assert!(shared.poll_idle(&mut cx).is_ready());
            let slots = shared.take_slots();
            let err = fail_fast_output(slots, None).unwrap_err();
            assert_eq!(err.first.unwrap().label(), "a");
            assert_eq!(reported.load(StdOrdering::SeqCst), 0);
        });
    }

    #[test]
    fn loom_children_failing_while_the_group_is_cancelled_are_all_kept_in_spawn_order() {
        loom::model(|| {
            let (shared, reported) = shared(true);
            let a = shared.reserve(Some("a".into()), None).unwrap().0;
            let b = shared.reserve(Some("b".into()), None).unwrap().0;
            let c = shared.reserve(Some("c".into()), None).unwrap().0;
            let (sa, sb) = (shared.clone(), shared.clone());
            let ta =
                loom::thread::spawn(move || sa.complete(a, Err(ChildError::Failed("ea")), true));
            let tb =
                loom::thread::spawn(move || sb.complete(b, Err(ChildError::Failed("eb")), true));
            shared.scope.cancel();
            let cancelled = crate::scope::Cancelled {
                reason: CancelReason::Explicit { message: None },
            };
            shared.complete(c, Err(ChildError::Cancelled(cancelled)), true);
            ta.join().unwrap();
            tb.join().unwrap();
            let err = fail_fast_output(shared.take_slots(), shared.scope.reason()).unwrap_err();
            let labels: Vec<String> = err.failures().map(TaskFailure::label).collect();
            assert_eq!(labels, ["a", "b"]);
            assert_eq!(err.cancelled, 1);
            assert_eq!(reported.load(StdOrdering::SeqCst), 0);
        });
    }

    #[test]
    fn loom_a_spawn_after_a_recorded_failure_is_always_refused() {
        loom::model(|| {
            let (shared, _) = shared(true);
            let first = shared.reserve(Some("x".into()), None).unwrap().0;
            let s2 = shared.clone();
            let t = loom::thread::spawn(move || {
                s2.complete(first, Err(ChildError::Failed("x")), true);
            });
            let early = shared.reserve(None, None);
            t.join().unwrap();
            // Whatever the interleaving, a spawn after the failure was
            // recorded is refused with the failing child's name.
            let late = shared.reserve(None, None);
            let sibling = CancelReason::SiblingFailed { task: "x".into() };
            assert_eq!(
                late,
                Err(GroupSpawnError::Cancelled(Cancelled { reason: sibling }))
            );
            if let Ok((index, _)) = early {
                shared.complete(index, Ok(1), true);
            }
        });
    }

    #[test]
    fn loom_an_abort_racing_the_childs_first_wait_always_reaches_it() {
        loom::model(|| {
            let (shared, _) = shared(false);
            let (index, order) = shared.reserve(None, None).unwrap();
            let s2 = shared.clone();
            let t = loom::thread::spawn(move || s2.abort_child(index, order));
            // The child registers in the group's scope, then tells the group
            // where (as `ChildTask` does after a pending poll).
            let flag = StdArc::new(Flag(AtomicBool::new(false)));
            let waker = futures::task::waker(flag.clone());
            let mut key = None;
            shared.scope.token.node.register(&mut key, &waker, 0);
            let told = shared.child_waits(index, key);
            t.join().unwrap();
            // Either the child learns of the abort as it registers, or the
            // abort found its key and woke it: never neither.
            assert!(
                told || flag.0.load(StdOrdering::SeqCst),
                "the abort was lost"
            );
            assert!(shared.abort_requested(index));
        });
    }

    #[test]
    fn loom_a_spawn_racing_the_join_is_waited_for_or_refused_as_closed() {
        loom::model(|| {
            let (shared, _) = shared(false);
            let s2 = shared.clone();
            let t = loom::thread::spawn(move || s2.reserve(None, None));
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            let closed = shared.poll_close(&mut cx);
            let spawned = t.join().unwrap();
            match (closed, spawned) {
                (Poll::Ready(_), Ok(_)) => panic!("a child started after the join closed"),
                (Poll::Ready(_), Err(e)) => assert_eq!(e, GroupSpawnError::Closed),
                (Poll::Pending, Ok((index, _))) => {
                    shared.complete(index, Ok(1), true);
                    let Poll::Ready(slots) = shared.poll_close(&mut cx) else {
                        panic!("the join waits for nothing once the child ended");
                    };
                    assert_eq!(all_output(slots), [Ok(1)]);
                }
                (Poll::Pending, Err(e)) => panic!("refused ({e}) while the join waits"),
            }
        });
    }

    #[test]
    fn loom_a_spawn_racing_a_sibling_failure_is_refused_or_cancelled() {
        loom::model(|| {
            let (shared, _) = shared(true);
            let first = shared.reserve(None, None).unwrap().0;
            let s2 = shared.clone();
            let t =
                loom::thread::spawn(move || s2.complete(first, Err(ChildError::Failed("x")), true));
            let second = shared.reserve(None, None);
            t.join().unwrap();
            match second {
                Err(e) => assert!(matches!(e, GroupSpawnError::Cancelled(_))),
                Ok(_) => assert!(shared.scope.is_cancelled()),
            }
        });
    }
}
