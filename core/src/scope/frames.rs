//! Which `Run`s are being polled on this thread right now, innermost last.
//!
//! A `Run` pushes a frame while it polls its inner future and pops it after
//! (also when the poll unwinds), so the stack mirrors how runs are nested
//! *dynamically*: the run that is polling us is the one below us. Trio's
//! rules are about that nesting, not about which scope was made from which:
//!
//! - a `Run` whose scope is cancelled hands `Err` back to its caller only if
//!   no enclosing run, up to the nearest shield, is cancelled too; otherwise
//!   it drops its future and stays pending, and the outermost cancelled run
//!   (which is polling it and sees its own flag as soon as the body returns)
//!   is the one that returns `Err` (trio: the outermost cancelled scope
//!   catches the `Cancelled`);
//! - a shielded `Run` counts itself in every enclosing frame while it is
//!   alive, so a cancelled enclosing run keeps polling its body until the
//!   shielded regions inside it are over;
//! - the effective deadline of the current task is the earliest among the
//!   frames up to the nearest shield;
//! - a task group dropped without being joined while a run polls (or
//!   drops) its future leaves its scope, cancelled, in the innermost frame:
//!   the run does not end until that scope's children are gone, and a run
//!   dropped before then hands the scope on to the frame enclosing it (so
//!   no child of a nested group outlives the run, or the group child, that
//!   dropped it: trio's rule that a nursery cannot be left while its
//!   children run).
//!
//! A frame is moved into the stack and back out (no reference count is
//! touched per poll). Walks are loops over the stack: nothing recurses.

use std::cell::RefCell;
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use crate::runtime::Instant;
use crate::sync::Arc;

use super::tree::{HARD, Node};

/// One running `Run` as the stack sees it.
pub(crate) struct Frame {
    node: Arc<Node>,
    /// How many shielded runs are alive inside this run's future; created
    /// by the first shield that needs it.
    shields: Option<StdArc<AtomicUsize>>,
    /// The cancelled scopes of task groups dropped unjoined inside this
    /// run's future that still had children (see the module docs).
    abandoned: Vec<Arc<Node>>,
}

impl Frame {
    pub(crate) fn new(node: Arc<Node>) -> Frame {
        Frame {
            node,
            shields: None,
            abandoned: Vec::new(),
        }
    }

    /// Takes the scopes of groups dropped inside this run whose children
    /// are not all gone yet.
    pub(crate) fn take_abandoned(&mut self) -> Vec<Arc<Node>> {
        let mut nodes = std::mem::take(&mut self.abandoned);
        nodes.retain(|n| n.runs() != 0);
        nodes
    }

    /// Keeps `nodes` to wait for (their children still running).
    pub(crate) fn keep_abandoned(&mut self, nodes: Vec<Arc<Node>>) {
        self.abandoned.extend(nodes);
    }

    /// Ready once every scope kept here has no run left (its group no
    /// child); the scopes are cancelled, so none gains a run again.
    pub(crate) fn poll_abandoned(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(node) = self.abandoned.last() {
            if node.poll_idle(cx).is_pending() {
                return Poll::Pending;
            }
            self.abandoned.pop();
        }
        Poll::Ready(())
    }

    /// Whether shielded runs inside this run are still alive.
    pub(crate) fn shields_alive(&self) -> bool {
        self.shields
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire) != 0)
    }
}

thread_local! {
    static RUNNING: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Puts the frame in `slot` back when the poll is over (or unwinds).
struct Pop<'a>(&'a mut Option<Frame>);

impl Drop for Pop<'_> {
    fn drop(&mut self) {
        *self.0 = RUNNING.with(|s| s.borrow_mut().pop());
    }
}

/// Runs `poll` with the frame in `slot` on top of the stack.
pub(crate) fn inside<R>(slot: &mut Option<Frame>, poll: impl FnOnce() -> R) -> R {
    let frame = slot.take().expect("a running `Run` has its frame");
    RUNNING.with(|s| s.borrow_mut().push(frame));
    let _pop = Pop(slot);
    poll()
}

/// Hands the cancelled scopes of dropped task groups to the innermost run
/// being polled on this thread, to wait for; gives them back if no run is.
/// Scopes whose children are already gone are forgotten first, so a run
/// that drops many groups keeps only those still busy.
pub(crate) fn hand_abandoned(nodes: Vec<Arc<Node>>) -> Option<Vec<Arc<Node>>> {
    if nodes.is_empty() {
        return None;
    }
    let mut nodes = Some(nodes);
    // `try_with`: a group may be dropped while the thread's locals are torn
    // down; there is no run to hand to then.
    let _ = RUNNING.try_with(|s| {
        if let Some(frame) = s.borrow_mut().last_mut() {
            frame.abandoned.retain(|n| n.runs() != 0);
            frame.abandoned.extend(nodes.take().into_iter().flatten());
        }
    });
    nodes
}

/// Runs `drop` (which drops a run's future) with the run's frame, if it has
/// one, on top of the stack, so that task groups dropped with the future
/// leave their scopes in that frame. Safe to call from a destructor: if
/// the thread's stack is being torn down, `drop` just runs.
pub(crate) fn dropping<R>(slot: &mut Option<Frame>, drop: impl FnOnce() -> R) -> R {
    let Some(frame) = slot.take() else {
        return drop();
    };
    let mut frame = Some(frame);
    let pushed = RUNNING
        .try_with(|s| {
            if let Some(f) = frame.take() {
                s.borrow_mut().push(f);
            }
        })
        .is_ok();
    if !pushed {
        *slot = frame;
        return drop();
    }
    let _pop = Pop(slot);
    drop()
}

/// Whether a run enclosing the current poll, up to the nearest shield, is
/// hard-cancelled (then a cancelled inner run defers to it).
pub(crate) fn enclosed_by_cancelled() -> bool {
    RUNNING.with(|s| {
        for frame in s.borrow().iter().rev() {
            if frame.node.flags() & HARD != 0 {
                return true;
            }
            if frame.node.is_shield() {
                return false;
            }
        }
        false
    })
}

/// Counts a shielded run in every enclosing frame; the counters are given
/// back to be decremented when the shielded run is over.
pub(crate) fn enter_shield() -> Vec<StdArc<AtomicUsize>> {
    RUNNING.with(|s| {
        s.borrow_mut()
            .iter_mut()
            .map(|frame| {
                let counter = frame.shields.get_or_insert_with(Default::default).clone();
                counter.fetch_add(1, Ordering::AcqRel);
                counter
            })
            .collect()
    })
}

/// Undoes [`enter_shield`] (nothing for a run that is no shield).
#[inline]
pub(crate) fn leave_shield(counters: &mut Vec<StdArc<AtomicUsize>>) {
    if !counters.is_empty() {
        leave_shield_counts(counters);
    }
}

fn leave_shield_counts(counters: &mut Vec<StdArc<AtomicUsize>>) {
    for counter in counters.drain(..) {
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The earliest effective deadline among the runs being polled on this
/// thread, up to the nearest shield.
pub(crate) fn current_effective_deadline() -> Option<Instant> {
    RUNNING.with(|s| {
        let mut earliest: Option<Instant> = None;
        for frame in s.borrow().iter().rev() {
            if let Some(at) = frame.node.effective_deadline() {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
            if frame.node.is_shield() {
                break;
            }
        }
        earliest
    })
}
