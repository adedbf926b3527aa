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
//!   frames up to the nearest shield.
//!
//! A frame is moved into the stack and back out (no reference count is
//! touched per poll). Walks are loops over the stack: nothing recurses.

use std::cell::RefCell;
use std::sync::Arc as StdArc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::runtime::Instant;
use crate::sync::Arc;

use super::tree::{HARD, Node};

/// One running `Run` as the stack sees it.
pub(crate) struct Frame {
    node: Arc<Node>,
    /// How many shielded runs are alive inside this run's future; created
    /// by the first shield that needs it.
    shields: Option<StdArc<AtomicUsize>>,
}

impl Frame {
    pub(crate) fn new(node: Arc<Node>) -> Frame {
        Frame {
            node,
            shields: None,
        }
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
