//! Keeps tasks from starving the JavaScript event loop.
//!
//! `wasm_bindgen_futures` runs woken tasks as microtasks, and the event loop
//! runs every queued microtask before the next macrotask (a `setTimeout`
//! callback, input, rendering). A task that keeps waking itself therefore
//! keeps the loop in its microtask phase for ever: timers never fire and the
//! page freezes.
//!
//! Invariants:
//! - every task started through [`Web`](crate::Web) polls its future through
//!   [`Budgeted`], which spends one unit of a thread-wide budget per poll;
//! - the first unit spent after a refill arms one `setTimeout(0)`, the
//!   *refill*: when it runs, the event loop has reached the macrotask phase
//!   (timers that were due have had their turn), so it refills the budget
//!   and wakes every task that was held back;
//! - a task that finds the budget spent registers its waker and returns
//!   `Pending` without polling its future, so it resumes only after the
//!   refill, behind whatever macrotasks were already due.
//!
//! So at most [`POLL_BUDGET`] polls run between two macrotasks, however the
//! tasks wake each other, and a loop that is not busy pays one
//! `setTimeout(0)` per burst of activity.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasm_bindgen::prelude::Closure;

/// How many task polls may run before the event loop gets a macrotask turn.
/// Large enough that the refill's `setTimeout(0)` is rare on ordinary work,
/// small enough that a busy task delays timers and input by well under a
/// frame.
pub(crate) const POLL_BUDGET: u32 = 256;

struct Budget {
    left: Cell<u32>,
    refill_armed: Cell<bool>,
    held_back: RefCell<Vec<Waker>>,
    refill: RefCell<Option<Closure<dyn FnMut()>>>,
}

thread_local! {
    static BUDGET: Budget = Budget {
        left: Cell::new(POLL_BUDGET),
        refill_armed: Cell::new(false),
        held_back: RefCell::new(Vec::new()),
        refill: RefCell::new(None),
    };
}

fn refill() {
    let woken = BUDGET.with(|b| {
        b.left.set(POLL_BUDGET);
        b.refill_armed.set(false);
        std::mem::take(&mut *b.held_back.borrow_mut())
    });
    woken.into_iter().for_each(Waker::wake);
}

fn arm_refill(b: &Budget) {
    if b.refill_armed.replace(true) {
        return;
    }
    let mut slot = b.refill.borrow_mut();
    let closure = slot.get_or_insert_with(|| Closure::<dyn FnMut()>::new(refill));
    crate::web::set_timeout(closure, 0.0);
}

/// Spends one poll of the budget, or registers `waker` to be woken at the
/// next refill and says no.
fn try_spend(waker: &Waker) -> bool {
    BUDGET.with(|b| {
        let left = b.left.get();
        arm_refill(b);
        if left == 0 {
            b.held_back.borrow_mut().push(waker.clone());
            false
        } else {
            b.left.set(left - 1);
            true
        }
    })
}

pin_project_lite::pin_project! {
    /// A task that polls its future only while the budget lasts.
    pub(crate) struct Budgeted<F> {
        #[pin]
        task: F,
    }
}

impl<F> Budgeted<F> {
    pub(crate) fn new(task: F) -> Budgeted<F> {
        Budgeted { task }
    }
}

impl<F: Future<Output = ()>> Future for Budgeted<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !try_spend(cx.waker()) {
            return Poll::Pending;
        }
        self.project().task.poll(cx)
    }
}
