//! The cancellation tree behind [`CancelToken`](super::CancelToken) and
//! [`CancelScope`](super::CancelScope).
//!
//! # Shape
//!
//! Every token is a handle on a [`Node`]. A node knows its parent and its
//! children (strong references both ways) so that cancelling a node can reach
//! every descendant, and so that a child created under a cancelled parent is
//! born cancelled.
//!
//! # State
//!
//! `Node::state` packs two flags and a counter into one atomic word:
//! - `SOFT`: the node was cancelled; `is_cancelled()` and `cancelled()` see it.
//! - `HARD`: futures run in the scope must be dropped now. A plain `cancel`
//!   sets both; `cancel_with_grace` sets `SOFT` first and `HARD` when the
//!   grace period is over.
//! - above the flags: how many `Run` futures are inside the scope right now,
//!   so that a graceful cancel can wait until they are all gone.
//!
//! `is_cancelled` is one atomic load. Flags are only ever added, never
//! removed, and always while holding the node's lock, together with taking
//! the waiters out of the node; so a waiter that checks the flags under the
//! lock and then registers cannot miss a wake-up.
//!
//! # Invariants
//!
//! 1. `handles` counts the public handles (tokens, scopes, run futures) on a
//!    node. When it reaches zero nobody can cancel the node directly any more,
//!    so the node is unlinked: removed from its parent's children, and its own
//!    children are handed to its parent (they still descend from it). A root
//!    that is unlinked lets its children go; they become roots. This breaks
//!    every parent/child reference cycle, so short-lived children never make
//!    a long-lived parent grow.
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
//!
//! 5. A hard cancel is final, so its propagation moves each node's children
//!    out (instead of cloning them) and clears their parent link as it
//!    reaches them; a child that unlinks in between finds itself no longer
//!    listed under a hard-cancelled parent and leaves its own children for
//!    the propagation to take.
//!
//! # Locking rules
//!
//! Locks are only ever taken from ancestor to descendant: parent, then child,
//! then (while unlinking) the child's children or one sibling that moves into
//! the freed slot. Only the thread holding the parent's lock can lock two of
//! its children, so siblings cannot deadlock. Wakers are woken after every
//! lock is released.

use std::mem;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock};

use super::CancelReason;

/// The scope was cancelled: `is_cancelled()` is true, waiters wake.
pub(crate) const SOFT: usize = 1;
/// Futures run in the scope must be dropped.
pub(crate) const HARD: usize = 2;
/// Both flags: a plain, immediate cancel.
pub(crate) const NOW: usize = SOFT | HARD;
const FLAGS: usize = SOFT | HARD;
const ONE_RUN: usize = 4;

/// A registration in a node's waiter list, valid for one generation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitKey {
    generation: u64,
    index: usize,
}

pub(crate) struct Node {
    state: AtomicUsize,
    handles: AtomicUsize,
    inner: Mutex<Inner>,
}

struct Inner {
    parent: Option<Arc<Node>>,
    slot: usize,
    children: Vec<Arc<Node>>,
    reason: Option<CancelReason>,
    waiters: Vec<Option<Waker>>,
    free: Vec<usize>,
    generation: u64,
    idle: Vec<Waker>,
}

impl Inner {
    fn new(parent: Option<Arc<Node>>, slot: usize, reason: Option<CancelReason>) -> Inner {
        Inner {
            parent,
            slot,
            children: Vec::new(),
            reason,
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
}

fn parent_reason(reason: &CancelReason) -> CancelReason {
    CancelReason::Parent(std::sync::Arc::new(reason.clone()))
}

impl Node {
    /// A new root with one handle.
    pub(crate) fn root() -> Arc<Node> {
        Arc::new(Node {
            state: AtomicUsize::new(0),
            handles: AtomicUsize::new(1),
            inner: Mutex::new(Inner::new(None, 0, None)),
        })
    }

    /// A new child with one handle. Under a cancelled parent it is born
    /// cancelled, with reason `Parent(parent's reason)`.
    pub(crate) fn child(this: &Arc<Node>) -> Arc<Node> {
        let mut inner = lock(&this.inner);
        let flags = this.state.load(Ordering::Acquire) & FLAGS;
        let reason = inner.reason.as_ref().map(parent_reason);
        // A hard-cancelled parent will never propagate again: no link needed.
        let parent = (flags & HARD == 0).then(|| this.clone());
        let linked = parent.is_some();
        let child = Arc::new(Node {
            state: AtomicUsize::new(flags),
            handles: AtomicUsize::new(1),
            inner: Mutex::new(Inner::new(parent, inner.children.len(), reason)),
        });
        if linked {
            inner.children.push(child.clone());
        }
        child
    }

    /// The flags: `SOFT`, `HARD`, both or none.
    pub(crate) fn flags(&self) -> usize {
        self.state.load(Ordering::Acquire) & FLAGS
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
        // The first node is handled without the stack: a leaf costs no allocation.
        let mut first = Some((this.clone(), reason));
        let mut stack = Vec::new();
        while let Some((node, reason, moved)) = first
            .take()
            .map(|(n, r)| (n, r, false))
            .or_else(|| stack.pop().map(|(n, r)| (n, r, true)))
        {
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
                    if flags & HARD != 0 {
                        // A hard cancel is final: no later pass needs the
                        // edges, so move the children out instead of cloning.
                        let children = mem::take(&mut inner.children);
                        stack.extend(children.into_iter().map(|c| (c, child_reason.clone())));
                    } else {
                        stack.extend(
                            inner
                                .children
                                .iter()
                                .map(|c| (c.clone(), child_reason.clone())),
                        );
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

    /// Forgets a registration (a no-op if the waiters were woken since).
    pub(crate) fn unregister(&self, key: &mut Option<WaitKey>) {
        if let Some(k) = key.take() {
            let mut inner = lock(&self.inner);
            if k.generation == inner.generation {
                inner.waiters[k.index] = None;
                inner.free.push(k.index);
            }
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
            let slot = me.slot;
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
                lock(&moved.inner).slot = slot;
            }
            let orphans = mem::take(&mut me.children);
            for orphan in &orphans {
                let mut o = lock(&orphan.inner);
                o.parent = Some(parent.clone());
                o.slot = p.children.len();
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
