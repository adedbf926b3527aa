//! The cancellation tree behind [`CancelToken`](super::CancelToken) and
//! [`CancelScope`](super::CancelScope).
//!
//! # Shape
//!
//! Every token is a handle on a [`Node`]. A node knows its parent and its
//! children (strong references both ways) so that cancelling a node can reach
//! every descendant, and so that a child created under a cancelled parent is
//! born cancelled. A shielded scope is a root of its own (cancellation never
//! reaches it from above) marked `SHIELD`, so that a `Run` can tell where the
//! outer cancellation stops (see `frames`).
//!
//! # State
//!
//! `Node::state` packs four flags and a counter into one atomic word:
//! - `SOFT`: the node was cancelled; `is_cancelled()` and `cancelled()` see it.
//! - `HARD`: futures run in the scope must be dropped now. A plain `cancel`
//!   sets both; `cancel_with_grace` sets `SOFT` first and `HARD` when the
//!   grace period is over.
//! - `TIMED`: the node has an effective deadline (and a clock). Only then is
//!   the clock ever read: a check on a node without it is the one load.
//! - `SHIELD`: set at birth on a shielded scope, never changed.
//! - above the flags: how many `Run` futures are inside the scope right now,
//!   so that a graceful cancel can wait until they are all gone.
//!
//! `is_cancelled` is one atomic load when `TIMED` is clear. Cancel flags are
//! only ever added, never removed, and always while holding the node's lock,
//! together with taking the waiters out of the node; so a waiter that checks
//! the flags under the lock and then registers cannot miss a wake-up.
//!
//! # Deadlines
//!
//! A node with a deadline keeps a boxed [`Deadlines`] (absent on the common
//! untimed node): its `own` deadline (set by the scope's owner, may move
//! either way), a `floor` (own deadlines of ancestors whose handles are all
//! gone, folded in when they unlinked: they still bound this node), the
//! `inherited` effective deadline of its parent as last propagated, and
//! `effective = min(own, floor, inherited)`. A deadline is enforced by
//! whoever looks with the clock (`check_deadline`): it cancels the
//! *outermost* node up to the root (a shield is a root) whose own deadline
//! (or floor) has passed, so the cancellation belongs to the scope that set
//! the deadline, as in trio, and reaches the rest by propagation.
//!
//! # Invariants
//!
//! 1. `handles` counts the public handles (tokens, scopes, run futures) on a
//!    node. When it reaches zero nobody can cancel the node directly any more,
//!    so the node is unlinked: removed from its parent's children, and its own
//!    children are handed to its parent (they still descend from it). A root
//!    that is unlinked lets its children go; they become roots. This breaks
//!    every parent/child reference cycle, so short-lived children never make
//!    a long-lived parent grow. The unlinked node's own deadline and floor
//!    are folded into each orphan's floor, and a root letting its children go
//!    folds their inherited deadline into their floor, so no bound is lost.
//! 2. If `child.parent == Some(p)` and `p` is not being detached, then
//!    `p.children[child.slot]` is `child`.
//! 3. A node's flags are a superset of its parent's once a cancellation has
//!    finished propagating. Propagation runs without holding two locks: it
//!    takes a node's lock, sets the flags, clones the list of children, drops
//!    the lock and moves on (an explicit stack, so a deep chain cannot
//!    overflow the call stack and a tree of `n` nodes costs `O(n)`).
//! 4. When an unlinked node's children are handed to a parent that already
//!    has flags, those children are cancelled right after, so a propagation
//!    that raced with the hand-over cannot miss them.
//! 5. A hard cancel is final, so its propagation moves each node's children
//!    out (instead of cloning them) and clears their parent link as it
//!    reaches them; a child that unlinks in between finds itself no longer
//!    listed under a hard-cancelled parent and leaves its own children for
//!    the propagation to take.
//! 6. A child's `inherited` deadline equals its parent's `effective` once a
//!    deadline change has finished propagating. Propagation holds the
//!    parent's lock while it writes each child (parent then child, the
//!    allowed order) and reads the parent's value under that lock, so two
//!    racing changes end with the later value everywhere. A node whose
//!    effective deadline changed has its waiters woken, so every `Run` and
//!    `cancelled()` re-arms its timer.
//! 7. A reason given to a child is `Parent(root reason)`, never
//!    `Parent(Parent(..))`: chains of reasons stay two deep, so dropping,
//!    comparing or printing a reason never recurses per level.
//! 8. Nothing here recurses per level: every walk over the tree (cancel,
//!    deadline propagation, the upward walk for the deadline's owner) uses a
//!    loop and an explicit stack, and no node owns a chain of nodes that
//!    would be dropped recursively (links are cleared when a node unlinks).
//!
//! # Locking rules
//!
//! Locks are only ever taken from ancestor to descendant: parent, then child,
//! then (while unlinking) the child's children or one sibling that moves into
//! the freed slot. Only the thread holding the parent's lock can lock two of
//! its children, so siblings cannot deadlock. The upward walk for a
//! deadline's owner holds one lock at a time. Wakers are woken, and the clock
//! is read, after every lock is released.

use std::mem;
use std::task::{Context, Poll, Waker};

use crate::runtime::{AnyTimer, BoxTask, Instant, Timer};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock};

use super::CancelReason;

/// The scope was cancelled: `is_cancelled()` is true, waiters wake.
pub(crate) const SOFT: usize = 1;
/// Futures run in the scope must be dropped.
pub(crate) const HARD: usize = 2;
/// Both flags: a plain, immediate cancel.
pub(crate) const NOW: usize = SOFT | HARD;
const FLAGS: usize = SOFT | HARD;
/// The node has an effective deadline: checks read the clock.
const TIMED: usize = 4;
/// The node is a shielded scope.
const SHIELD: usize = 8;
const ONE_RUN: usize = 16;

/// The clock a scope's deadline is measured on: any [`Timer`], type-erased
/// so that scopes stay one plain type.
pub(crate) type SharedClock = AnyTimer;

/// A registration in a node's waiter list, valid for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaitKey {
    generation: u32,
    index: usize,
}

pub(crate) struct Node {
    state: AtomicUsize,
    handles: AtomicUsize,
    inner: Mutex<Inner>,
}

/// A node's deadlines (see the module docs); `Instant::NEVER` means none.
struct Deadlines {
    own: Instant,
    floor: Instant,
    inherited: Instant,
    effective: Instant,
    clock: Option<SharedClock>,
}

impl Deadlines {
    fn new(clock: Option<SharedClock>) -> Deadlines {
        Deadlines {
            own: Instant::NEVER,
            floor: Instant::NEVER,
            inherited: Instant::NEVER,
            effective: Instant::NEVER,
            clock,
        }
    }

    /// Recomputes `effective`; returns whether it changed.
    fn recompute(&mut self) -> bool {
        let effective = self.own.min(self.floor).min(self.inherited);
        mem::replace(&mut self.effective, effective) != effective
    }

    /// Whether checks must read the clock.
    fn timed(&self) -> bool {
        !self.effective.is_never() && self.clock.is_some()
    }
}

struct Inner {
    parent: Option<Arc<Node>>,
    // `slot` and `generation` are 32 bits so that a node with deadline
    // support stays in the same allocation size class as before.
    slot: u32,
    children: Vec<Arc<Node>>,
    reason: Option<CancelReason>,
    deadlines: Option<Box<Deadlines>>,
    waiters: Vec<Option<Waker>>,
    free: Vec<usize>,
    generation: u32,
    idle: Vec<Waker>,
}

impl Inner {
    #[inline]
    fn new(
        parent: Option<Arc<Node>>,
        slot: u32,
        reason: Option<CancelReason>,
        deadlines: Option<Box<Deadlines>>,
    ) -> Inner {
        Inner {
            parent,
            slot,
            children: Vec::new(),
            reason,
            deadlines,
            waiters: Vec::new(),
            free: Vec::new(),
            generation: 0,
            idle: Vec::new(),
        }
    }

    /// Takes every registered waker; old keys become stale.
    fn take_waiters(&mut self) -> Vec<Waker> {
        self.free.clear();
        self.generation = self.generation.wrapping_add(1);
        mem::take(&mut self.waiters).into_iter().flatten().collect()
    }

    /// The effective deadline and its clock, as a child inherits them.
    fn handed_down(&self) -> (Instant, Option<SharedClock>) {
        self.deadlines
            .as_ref()
            .map_or((Instant::NEVER, None), |d| (d.effective, d.clock.clone()))
    }
}

/// The reason a child gets when `reason` cancels its parent: always one
/// level deep (invariant 7).
fn parent_reason(reason: &CancelReason) -> CancelReason {
    match reason {
        CancelReason::Parent(root) => CancelReason::Parent(root.clone()),
        other => CancelReason::Parent(std::sync::Arc::new(other.clone())),
    }
}

/// A child's index in its parent's list, as stored.
fn slot_of(index: usize) -> u32 {
    u32::try_from(index).expect("a scope has fewer than 2^32 children")
}

/// Sets or clears `TIMED` on `node` to match `deadlines`.
fn mark_timed(node: &Node, deadlines: &Deadlines) {
    if deadlines.timed() {
        node.state.fetch_or(TIMED, Ordering::AcqRel);
    } else {
        node.state.fetch_and(!TIMED, Ordering::AcqRel);
    }
}

impl Node {
    // On wasm32 a clock may hold JS values (`MaybeSend` is nothing there),
    // so a node is not `Send`; that target has one thread.
    #[cfg_attr(
        target_arch = "wasm32",
        allow(clippy::arc_with_non_send_sync, reason = "wasm32 has one thread")
    )]
    #[inline]
    fn with_state(state: usize, inner: Inner) -> Arc<Node> {
        Arc::new(Node {
            state: AtomicUsize::new(state),
            handles: AtomicUsize::new(1),
            inner: Mutex::new(inner),
        })
    }

    /// A new root with one handle.
    pub(crate) fn root() -> Arc<Node> {
        Node::with_state(0, Inner::new(None, 0, None, None))
    }

    /// A new shielded root with one handle, measuring deadlines on `clock`.
    pub(crate) fn shield(clock: Option<SharedClock>) -> Arc<Node> {
        let deadlines = clock.map(|c| Box::new(Deadlines::new(Some(c))));
        Node::with_state(SHIELD, Inner::new(None, 0, None, deadlines))
    }

    /// A new child with one handle. Under a cancelled parent it is born
    /// cancelled, with reason `Parent(parent's reason)`; it inherits the
    /// parent's effective deadline and clock.
    pub(crate) fn child(this: &Arc<Node>) -> Arc<Node> {
        let mut inner = lock(&this.inner);
        let state = this.state.load(Ordering::Acquire);
        let flags = state & FLAGS;
        let reason = inner.reason.as_ref().map(parent_reason);
        // A hard-cancelled parent will never propagate again: no link needed.
        let parent = (flags & HARD == 0).then(|| this.clone());
        let linked = parent.is_some();
        let deadlines = inner.deadlines.as_ref().map(|d| {
            let mut mine = Deadlines::new(d.clock.clone());
            mine.inherited = d.effective;
            mine.recompute();
            Box::new(mine)
        });
        let child = Node::with_state(
            flags | (state & TIMED),
            Inner::new(parent, slot_of(inner.children.len()), reason, deadlines),
        );
        if linked {
            inner.children.push(child.clone());
        }
        child
    }

    /// The flags: `SOFT`, `HARD`, both or none.
    pub(crate) fn flags(&self) -> usize {
        self.state.load(Ordering::Acquire) & FLAGS
    }

    /// Whether this is a shielded scope.
    pub(crate) fn is_shield(&self) -> bool {
        self.state.load(Ordering::Relaxed) & SHIELD != 0
    }

    /// Whether the node has an effective deadline.
    pub(crate) fn is_timed(&self) -> bool {
        self.state.load(Ordering::Acquire) & TIMED != 0
    }

    pub(crate) fn reason(&self) -> Option<CancelReason> {
        if self.flags() == 0 {
            return None;
        }
        lock(&self.inner).reason.clone()
    }

    /// The reason, for a node known to be cancelled.
    pub(crate) fn reason_or_explicit(&self) -> CancelReason {
        self.reason()
            .unwrap_or(CancelReason::Explicit { message: None })
    }

    pub(crate) fn add_handle(&self) {
        self.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops one handle; the last one unlinks the node (invariant 1).
    pub(crate) fn release(this: &Arc<Node>) {
        if this.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            Node::unlink(this);
        }
    }

    /// The effective deadline, if any.
    pub(crate) fn effective_deadline(&self) -> Option<Instant> {
        let inner = lock(&self.inner);
        let d = inner.deadlines.as_ref()?;
        (!d.effective.is_never()).then_some(d.effective)
    }

    /// The clock deadlines are measured on, if one was given.
    pub(crate) fn clock(&self) -> Option<SharedClock> {
        lock(&self.inner).deadlines.as_ref()?.clock.clone()
    }

    /// The effective deadline and a sleep until it, if the node is timed.
    pub(crate) fn deadline_sleep(&self) -> Option<(Instant, BoxTask)> {
        if !self.is_timed() {
            return None;
        }
        let (at, clock) = {
            let inner = lock(&self.inner);
            let d = inner.deadlines.as_ref()?;
            (d.effective, d.clock.clone()?)
        };
        (!at.is_never()).then(|| (at, clock.sleep_until(at)))
    }

    /// Sets this node's own deadline to `at` measured on `clock` (only ever
    /// earlier with `earlier_only`), and hands the new effective deadline
    /// down to every descendant (invariant 6).
    pub(crate) fn set_deadline(
        this: &Arc<Node>,
        at: Instant,
        clock: SharedClock,
        earlier_only: bool,
    ) {
        let wakers = {
            let mut inner = lock(&this.inner);
            let d = inner
                .deadlines
                .get_or_insert_with(|| Box::new(Deadlines::new(None)));
            d.clock = Some(clock);
            d.own = if earlier_only { d.own.min(at) } else { at };
            let changed = d.recompute();
            mark_timed(this, d);
            if changed {
                inner.take_waiters()
            } else {
                Vec::new()
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        Node::hand_deadline_down(this);
    }

    /// Propagates `this`'s effective deadline to its descendants, parent's
    /// lock held while each child is written.
    fn hand_deadline_down(this: &Arc<Node>) {
        let mut stack = vec![this.clone()];
        while let Some(node) = stack.pop() {
            let mut wakers = Vec::new();
            {
                let inner = lock(&node.inner);
                let (effective, clock) = inner.handed_down();
                for child in &inner.children {
                    let mut c = lock(&child.inner);
                    if c.deadlines.is_none() && effective.is_never() {
                        continue;
                    }
                    let d = c
                        .deadlines
                        .get_or_insert_with(|| Box::new(Deadlines::new(None)));
                    if d.clock.is_none() {
                        d.clock.clone_from(&clock);
                    }
                    d.inherited = effective;
                    let changed = d.recompute();
                    mark_timed(child, d);
                    if changed {
                        wakers.extend(c.take_waiters());
                        stack.push(child.clone());
                    }
                }
            }
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Whether the node is cancelled, counting a passed deadline: if the
    /// node is timed and its clock says the effective deadline has passed,
    /// cancels the deadline's owner first. Untimed: one atomic load.
    #[inline]
    pub(crate) fn check(this: &Arc<Node>) -> bool {
        let state = this.state.load(Ordering::Acquire);
        if state & FLAGS != 0 {
            return true;
        }
        if state & TIMED == 0 {
            return false;
        }
        Node::check_deadline(this)
    }

    /// The slow half of [`check`](Node::check): reads the clock.
    #[cold]
    #[inline(never)]
    fn check_deadline(this: &Arc<Node>) -> bool {
        let Some(clock) = this.clock() else {
            return false;
        };
        Node::expire(this, clock.now())
    }

    /// Cancels for the deadline if `now` is at or past the effective one
    /// (called with the sleep's instant when the deadline's timer fires);
    /// returns whether the node is cancelled.
    pub(crate) fn expire(this: &Arc<Node>, now: Instant) -> bool {
        let effective = match lock(&this.inner).deadlines.as_ref() {
            Some(d) => d.effective,
            None => return this.flags() != 0,
        };
        if effective.is_never() || now < effective {
            return this.flags() != 0;
        }
        // The outermost node, up to the root, whose own deadline passed.
        let mut owner = (this.clone(), effective);
        let mut current = Some(this.clone());
        while let Some(node) = current {
            let inner = lock(&node.inner);
            if let Some(d) = &inner.deadlines {
                let own = d.own.min(d.floor);
                if own <= now {
                    owner = (node.clone(), own);
                }
            }
            current = inner.parent.clone();
        }
        let (node, at) = owner;
        Node::cancel(&node, CancelReason::Deadline { at }, NOW, false);
        if this.flags() == 0 {
            // The owner's propagation has not reached us (a racing unlink):
            // the deadline applies here all the same.
            Node::cancel(this, CancelReason::Deadline { at: effective }, NOW, false);
        }
        true
    }

    /// Adds `flags` to this node and every descendant. The first reason a
    /// node receives is kept. With `collect`, every node of the subtree is
    /// returned (for graceful cancellation to wait on).
    pub(crate) fn cancel(
        this: &Arc<Node>,
        reason: CancelReason,
        flags: usize,
        collect: bool,
    ) -> Vec<Arc<Node>> {
        let mut visited = Vec::new();
        // Nodes still to visit. The reason they are handed changes only
        // below a node that already had a reason of its own, so it is kept
        // beside the stack: `first_reason` for the whole stack, and an entry
        // `(from, reason)` in `reasons` for the nodes at index `from` and up.
        // A cancel that reaches one level of children allocates nothing
        // beyond moving (hard) or cloning (soft) the child list.
        let mut stack: Vec<Arc<Node>> = Vec::new();
        let mut first_reason: Option<CancelReason> = None;
        let mut reasons: Vec<(usize, CancelReason)> = Vec::new();
        // The first node is handled without the stack.
        let mut first = Some((this.clone(), reason));
        loop {
            let (node, reason, moved) = match first.take() {
                Some((node, reason)) => (node, reason, false),
                None => {
                    let Some(node) = stack.pop() else { break };
                    while reasons.last().is_some_and(|(from, _)| *from > stack.len()) {
                        reasons.pop();
                    }
                    let reason = reasons
                        .last()
                        .map(|(_, r)| r)
                        .or(first_reason.as_ref())
                        .expect("a queued node has a reason")
                        .clone();
                    (node, reason, true)
                }
            };
            let wakers = {
                let mut inner = lock(&node.inner);
                if moved && flags & HARD != 0 {
                    // Our parent moved us out of its children (below): drop
                    // the edge back up too.
                    inner.parent = None;
                }
                let old = node.state.load(Ordering::Acquire) & FLAGS;
                let new = old | flags != old;
                if !new && !collect {
                    continue;
                }
                let wakers = if new {
                    if inner.reason.is_none() {
                        inner.reason = Some(reason);
                    }
                    node.state.fetch_or(flags, Ordering::AcqRel);
                    inner.take_waiters()
                } else {
                    Vec::new()
                };
                if !inner.children.is_empty() {
                    let child_reason = parent_reason(
                        inner
                            .reason
                            .as_ref()
                            .expect("a cancelled node has a reason"),
                    );
                    let current = reasons.last().map(|(_, r)| r).or(first_reason.as_ref());
                    match current {
                        None => first_reason = Some(child_reason),
                        Some(r) if *r == child_reason => {}
                        Some(_) => reasons.push((stack.len(), child_reason)),
                    }
                    if flags & HARD != 0 {
                        // A hard cancel is final: no later pass needs the
                        // edges, so move the children out instead of cloning.
                        let children = mem::take(&mut inner.children);
                        if stack.is_empty() {
                            stack = children;
                        } else {
                            stack.extend(children);
                        }
                    } else {
                        stack.extend(inner.children.iter().cloned());
                    }
                }
                wakers
            };
            wakers.into_iter().for_each(Waker::wake);
            if collect {
                visited.push(node);
            }
        }
        visited
    }

    /// Registers `waker` unless one of `mask`'s flags is already set; returns
    /// whether it was set (then nothing is registered).
    pub(crate) fn register(&self, key: &mut Option<WaitKey>, waker: &Waker, mask: usize) -> bool {
        let mut inner = lock(&self.inner);
        if self.state.load(Ordering::Acquire) & mask != 0 {
            return true;
        }
        match key {
            Some(k) if k.generation == inner.generation => {
                let slot = &mut inner.waiters[k.index];
                match slot {
                    Some(w) if w.will_wake(waker) => {}
                    _ => *slot = Some(waker.clone()),
                }
            }
            _ => {
                let index = match inner.free.pop() {
                    Some(i) => {
                        inner.waiters[i] = Some(waker.clone());
                        i
                    }
                    None => {
                        inner.waiters.push(Some(waker.clone()));
                        inner.waiters.len() - 1
                    }
                };
                *key = Some(WaitKey {
                    generation: inner.generation,
                    index,
                });
            }
        }
        false
    }

    /// Wakes the one waiter registered under `key`, leaving it registered
    /// (a no-op if the waiters were woken since): a task group aborting one
    /// child wakes just that child.
    pub(crate) fn wake_key(&self, key: WaitKey) {
        let waker = {
            let inner = lock(&self.inner);
            if key.generation != inner.generation {
                return;
            }
            inner.waiters.get(key.index).and_then(Clone::clone)
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Forgets a registration (a no-op if the waiters were woken since).
    #[inline]
    pub(crate) fn unregister(&self, key: &mut Option<WaitKey>) {
        if let Some(k) = key.take() {
            self.forget(k);
        }
    }

    fn forget(&self, k: WaitKey) {
        let mut inner = lock(&self.inner);
        if k.generation == inner.generation {
            inner.waiters[k.index] = None;
            inner.free.push(k.index);
        }
    }

    /// A `Run` enters the scope; refused (false) once any flag is set.
    pub(crate) fn enter(&self) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current & FLAGS != 0 {
                return false;
            }
            match self.state.compare_exchange_weak(
                current,
                current + ONE_RUN,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// A `Run` leaves the scope; the last one out of a cancelled scope wakes
    /// whoever waits for it to be idle.
    pub(crate) fn exit(&self) {
        let previous = self.state.fetch_sub(ONE_RUN, Ordering::AcqRel);
        if previous & FLAGS != 0 && previous / ONE_RUN == 1 {
            let idle = mem::take(&mut lock(&self.inner).idle);
            idle.into_iter().for_each(Waker::wake);
        }
    }

    /// How many counted `Run`s are inside right now.
    pub(crate) fn runs(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE_RUN
    }

    /// Ready once no `Run` is inside. Only meaningful after a flag is set
    /// (no new run can enter then).
    pub(crate) fn poll_idle(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.load(Ordering::Acquire) / ONE_RUN == 0 {
            return Poll::Ready(());
        }
        let mut inner = lock(&self.inner);
        if self.state.load(Ordering::Acquire) / ONE_RUN == 0 {
            return Poll::Ready(());
        }
        if !inner.idle.iter().any(|w| w.will_wake(cx.waker())) {
            inner.idle.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Removes this node from the tree (invariant 1).
    fn unlink(this: &Arc<Node>) {
        loop {
            let parent = lock(&this.inner).parent.clone();
            let Some(parent) = parent else {
                Node::detach_children(this);
                return;
            };
            let mut p = lock(&parent.inner);
            let mut me = lock(&this.inner);
            let still_mine = me.parent.as_ref().is_some_and(|q| Arc::ptr_eq(q, &parent));
            if !still_mine {
                // Re-parented by a concurrent unlink of our parent: try again.
                continue;
            }
            let slot = me.slot as usize;
            let listed = p.children.get(slot).is_some_and(|c| Arc::ptr_eq(c, this));
            me.parent = None;
            if !listed {
                let hard = parent.state.load(Ordering::Acquire) & HARD != 0;
                drop(me);
                drop(p);
                if !hard {
                    // The parent is a root letting its children go: we are a root now.
                    Node::detach_children(this);
                }
                // Otherwise a hard cancel moved us out of the parent and is on
                // its way to us: it will take our children (invariant 5).
                return;
            }
            p.children.swap_remove(slot);
            if let Some(moved) = p.children.get(slot) {
                lock(&moved.inner).slot = slot_of(slot);
            }
            let orphans = mem::take(&mut me.children);
            // Our own deadline still bounds our descendants (invariant 1).
            let bound = me.deadlines.as_ref().map(|d| d.own.min(d.floor));
            let (inherited, _) = p.handed_down();
            for orphan in &orphans {
                let mut o = lock(&orphan.inner);
                o.parent = Some(parent.clone());
                o.slot = slot_of(p.children.len());
                if let (Some(bound), Some(d)) = (bound, o.deadlines.as_mut()) {
                    d.floor = d.floor.min(bound);
                    d.inherited = inherited;
                    d.recompute();
                }
                p.children.push(orphan.clone());
            }
            let flags = parent.state.load(Ordering::Acquire) & FLAGS;
            let reason = p.reason.clone();
            drop(me);
            drop(p);
            if let (true, Some(reason)) = (flags != 0, reason) {
                let reason = parent_reason(&reason);
                for orphan in &orphans {
                    Node::cancel(orphan, reason.clone(), flags, false);
                }
            }
            return;
        }
    }

    /// A root with no handles lets its children go: they become roots.
    fn detach_children(this: &Arc<Node>) {
        let children = mem::take(&mut lock(&this.inner).children);
        for child in children {
            let mut c = lock(&child.inner);
            if c.parent.as_ref().is_some_and(|q| Arc::ptr_eq(q, this)) {
                c.parent = None;
                // What it inherited from us now bounds it for good.
                if let Some(d) = c.deadlines.as_mut() {
                    d.floor = d.floor.min(d.inherited);
                    d.inherited = Instant::NEVER;
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn child_count(&self) -> usize {
        lock(&self.inner).children.len()
    }
}

#[cfg(all(test, staunch_loom))]
mod loom_tests {
    use super::*;

    fn explicit() -> CancelReason {
        CancelReason::Explicit { message: None }
    }

    #[test]
    fn loom_cancel_racing_child_creation_never_misses_the_child() {
        loom::model(|| {
            let root = Node::root();
            let r2 = root.clone();
            let t = loom::thread::spawn(move || {
                let child = Node::child(&r2);
                let flags = child.flags();
                (child, flags)
            });
            Node::cancel(&root, explicit(), NOW, false);
            let (child, _) = t.join().unwrap();
            assert_eq!(child.flags(), NOW);
            Node::release(&child);
            Node::release(&root);
        });
    }

    #[test]
    fn loom_cancel_racing_an_unlinking_middle_node_reaches_the_grandchild() {
        loom::model(|| {
            let root = Node::root();
            let middle = Node::child(&root);
            let leaf = Node::child(&middle);
            let m2 = middle.clone();
            let t = loom::thread::spawn(move || Node::release(&m2));
            Node::cancel(&root, explicit(), NOW, false);
            t.join().unwrap();
            assert_eq!(leaf.flags(), NOW);
            assert!(leaf.reason().is_some());
            Node::release(&leaf);
            Node::release(&root);
            drop(middle);
        });
    }

    #[test]
    fn loom_a_run_entering_while_cancelled_is_waited_for_or_refused() {
        loom::model(|| {
            let node = Node::root();
            let n2 = node.clone();
            let t = loom::thread::spawn(move || {
                if n2.enter() {
                    n2.exit();
                }
            });
            Node::cancel(&node, explicit(), SOFT, false);
            // After the signal, an idle check either sees the run or it is over.
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            let _ = node.poll_idle(&mut cx);
            t.join().unwrap();
            assert_eq!(node.poll_idle(&mut cx), Poll::Ready(()));
            Node::release(&node);
        });
    }

    struct FixedClock;

    impl Timer for FixedClock {
        type Sleep = std::future::Ready<()>;
        fn now(&self) -> Instant {
            Instant::ORIGIN
        }
        fn sleep(&self, _: std::time::Duration) -> Self::Sleep {
            std::future::ready(())
        }
    }

    #[test]
    fn loom_a_deadline_moving_while_a_child_is_born_reaches_the_child() {
        loom::model(|| {
            let root = Node::root();
            let r2 = root.clone();
            let at = Instant::ORIGIN + std::time::Duration::from_secs(1);
            let t = loom::thread::spawn(move || Node::child(&r2));
            Node::set_deadline(&root, at, AnyTimer::new(FixedClock), false);
            let child = t.join().unwrap();
            assert_eq!(child.effective_deadline(), Some(at));
            assert!(child.is_timed());
            Node::release(&child);
            Node::release(&root);
        });
    }

    #[test]
    fn loom_two_deadline_moves_racing_leave_the_roots_final_value_in_the_child() {
        loom::model(|| {
            let root = Node::root();
            let child = Node::child(&root);
            let r2 = root.clone();
            let early = Instant::ORIGIN + std::time::Duration::from_secs(1);
            let late = Instant::ORIGIN + std::time::Duration::from_secs(2);
            let t = loom::thread::spawn(move || {
                Node::set_deadline(&r2, early, AnyTimer::new(FixedClock), false);
            });
            Node::set_deadline(&root, late, AnyTimer::new(FixedClock), false);
            t.join().unwrap();
            // Whichever move wrote the root last, the child ends with it.
            assert_eq!(child.effective_deadline(), root.effective_deadline());
            Node::release(&child);
            Node::release(&root);
        });
    }

    #[test]
    fn loom_siblings_unlinking_together_leave_the_parent_empty() {
        loom::model(|| {
            let root = Node::root();
            let a = Node::child(&root);
            let b = Node::child(&root);
            let t = loom::thread::spawn(move || Node::release(&a));
            Node::release(&b);
            t.join().unwrap();
            assert_eq!(lock(&root.inner).children.len(), 0);
            Node::release(&root);
        });
    }
}
