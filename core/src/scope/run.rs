//! The future of `CancelScope::run`.
//!
//! # Rules (trio's, adapted to futures that are dropped, not resumed)
//!
//! At every poll, before the inner future is polled:
//! 1. If the scope is timed, the clock is read: a deadline that has passed
//!    cancels the scope that set it (see `tree`), so a body is never polled
//!    again after its deadline, whether or not the timer has fired yet.
//! 2. A hard-cancelled scope drops the inner future and ends, unless
//!    shielded runs inside that future are still alive: then the future
//!    keeps being polled until the last of them is over (each bounded by
//!    its own deadline), and is dropped after; if it finishes meanwhile,
//!    its output is dropped too and the run still reports the cancellation.
//! 3. Ending cancelled, it first waits, still counted in its scope, until
//!    the task groups its future dropped unjoined have no child left (see
//!    `frames`); then it returns `Err(Cancelled)` to whoever polls it,
//!    unless a run enclosing it (up to the nearest shield) is cancelled too:
//!    then it stays pending with nothing left inside, and the outermost
//!    cancelled run, which is polling it, returns the `Err` (see `frames`).
//!    Ending with the future's output, it hands such groups to the run
//!    enclosing it (or, for a task group's child, to the child's task),
//!    which waits for them before it ends.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll};

use crate::runtime::{BoxTask, Instant};

use super::frames::{self, Frame};
use super::tree::{HARD, Node, WaitKey};
use super::{CancelReason, CancelScope, Cancelled};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    NotStarted,
    Running,
    /// Cancelled, inner future dropped, still counted in the scope until
    /// the task groups dropped with it have no child left (rule 3).
    Draining,
    /// Cancelled, inner future dropped, waiting for an enclosing cancelled
    /// run to drop us (rule 3).
    Deferred,
    Done,
}

pin_project_lite::pin_project! {
    /// A future run inside a [`CancelScope`]; created by
    /// [`CancelScope::run`] and [`CancelScope::run_owned`].
    ///
    /// Resolves to `Ok(output)` if the inner future finishes, or
    /// `Err(Cancelled)` once the scope is cancelled or its deadline passes.
    /// The inner future is dropped inside the poll that notices, not later,
    /// except while a shielded scope's run inside it is still going (see
    /// [`CancelScope::shielded`]).
    ///
    /// `H` is how the future holds its scope: by default a [`CancelScope`]
    /// handle of its own.
    #[must_use = "a Run does nothing unless awaited; the inner future will not run"]
    pub struct Run<F, H = CancelScope>
    where
        H: AsRef<CancelScope>,
    {
        #[pin]
        future: Option<F>,
        scope: H,
        sleep: Option<(Instant, BoxTask)>,
        key: Option<WaitKey>,
        frame: Option<Frame>,
        // For a shielded run: the enclosing runs' shield counters it is in.
        shielding: Vec<StdArc<AtomicUsize>>,
        stage: Stage,
        counted: bool,
        last_poll: bool,
        aborted: bool,
    }

    impl<F, H> PinnedDrop for Run<F, H>
    where
        H: AsRef<CancelScope>,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let node = &this.scope.as_ref().token.node;
            // Drop the inner future before leaving the scope, so a graceful
            // cancel that waits for the scope to be idle waits for its drop.
            let mut future = this.future;
            frames::dropping(this.frame, || future.set(None));
            node.unregister(this.key);
            frames::leave_shield(this.shielding);
            if is_inside(this.stage) && *this.counted {
                node.exit();
            }
            // Groups dropped in here that still have children: the run
            // polling us (if any) waits for them instead.
            if let Some(frame) = this.frame.as_mut() {
                let _ = frames::hand_abandoned(frame.take_abandoned());
            }
        }
    }
}

impl<F, H: AsRef<CancelScope>> Run<F, H> {
    pub(crate) fn new(scope: H, future: F) -> Run<F, H> {
        Run {
            future: Some(future),
            scope,
            sleep: None,
            key: None,
            frame: None,
            shielding: Vec::new(),
            stage: Stage::NotStarted,
            counted: true,
            last_poll: false,
            aborted: false,
        }
    }

    /// A run that is not counted in the scope's active runs: its holder
    /// keeps the scope marked busy for it (a task group counts itself once
    /// while it has children), so a graceful cancel still waits for it.
    pub(crate) fn uncounted(scope: H, future: F) -> Run<F, H> {
        let mut run = Run::new(scope, future);
        run.counted = false;
        run
    }

    /// A run that, when it finds its scope cancelled after it started,
    /// polls the inner future one last time and returns its output if that
    /// poll finishes it (a task group's children: a child whose wake-up
    /// came before the cancel still reports its own result, as a trio task
    /// already rescheduled runs to its next checkpoint).
    pub(crate) fn with_last_poll(mut self) -> Run<F, H> {
        self.last_poll = true;
        self
    }

    /// Cancels this one run, not its scope (a task group aborting one
    /// child): from its next poll it behaves as if its scope were
    /// hard-cancelled (shielded runs inside still finish first) and ends
    /// with [`CancelReason::Aborted`](super::CancelReason::Aborted).
    pub(crate) fn abort(self: Pin<&mut Self>) {
        *self.project().aborted = true;
    }

    /// Where this run's waker is registered in its scope, if it is: a task
    /// group keeps it to wake one child it aborts.
    pub(crate) fn wait_key(&self) -> Option<WaitKey> {
        self.key
    }

    /// How this future holds its scope.
    pub(crate) fn holder(&self) -> &H {
        &self.scope
    }

    /// Drops the inner future now and leaves the scope (after a panic, or
    /// before reporting that the task is gone). Polling afterwards panics.
    pub(crate) fn release(self: Pin<&mut Self>) {
        let this = self.project();
        let node = &this.scope.as_ref().token.node;
        let mut future = this.future;
        frames::dropping(this.frame, || future.set(None));
        *this.sleep = None;
        node.unregister(this.key);
        frames::leave_shield(this.shielding);
        if is_inside(this.stage) && *this.counted {
            node.exit();
        }
        *this.stage = Stage::Done;
    }

    /// The cancelled scopes of task groups its future dropped unjoined that
    /// still have children: a group's child task waits for them before it
    /// reports its end.
    pub(crate) fn take_abandoned(self: Pin<&mut Self>) -> Vec<crate::sync::Arc<Node>> {
        self.project()
            .frame
            .as_mut()
            .map(Frame::take_abandoned)
            .unwrap_or_default()
    }
}

impl<F: Future, H: AsRef<CancelScope>> Future for Run<F, H> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let node = &this.scope.as_ref().token.node;
        let resumed = *this.stage == Stage::Running;
        match *this.stage {
            Stage::Done => panic!("`Run` polled after it completed"),
            Stage::Deferred => return deferred(node, this.stage, *this.aborted),
            Stage::Draining => {
                let frame = this.frame.as_mut().expect("a draining `Run` has its frame");
                if frame.poll_abandoned(cx).is_pending() {
                    return Poll::Pending;
                }
                if *this.counted {
                    node.exit();
                }
                *this.stage = Stage::Deferred;
                return deferred(node, this.stage, *this.aborted);
            }
            Stage::NotStarted => {
                Node::check(node);
                let entered = if *this.aborted {
                    false
                } else if *this.counted {
                    node.enter()
                } else {
                    node.flags() == 0
                };
                if !entered {
                    this.future.set(None);
                    *this.stage = Stage::Deferred;
                    return deferred(node, this.stage, *this.aborted);
                }
                *this.stage = Stage::Running;
                *this.frame = Some(Frame::new(node.clone()));
                if node.is_shield() {
                    *this.shielding = frames::enter_shield();
                }
            }
            Stage::Running => {}
        }
        // A task group's child: one last poll after its group was cancelled,
        // so a child whose wake-up came first still reports its own result.
        // (With shields alive inside, the loop below keeps polling anyway.)
        let shields_alive = this.frame.as_ref().is_some_and(Frame::shields_alive);
        if resumed
            && *this.last_poll
            && !*this.aborted
            && !shields_alive
            && node.flags() & HARD != 0
        {
            let mut future = this.future.as_mut();
            let polled = frames::inside(this.frame, || {
                future.as_mut().as_pin_mut().expect("running").poll(cx)
            });
            if let Poll::Ready(output) = polled {
                leave(
                    &mut this.future,
                    this.frame,
                    node,
                    this.key,
                    this.shielding,
                    this.stage,
                    *this.counted,
                );
                *this.sleep = None;
                return Poll::Ready(Ok(output));
            }
        }
        loop {
            // Rule 1: the clock, on timed scopes only.
            let cancelled = (Node::check(node) && node.flags() & HARD != 0) || *this.aborted;
            let shielding_inside = this.frame.as_ref().is_some_and(Frame::shields_alive);
            if cancelled && !shielding_inside {
                break;
            }
            let mut future = this.future.as_mut();
            let polled = frames::inside(this.frame, || {
                future.as_mut().as_pin_mut().expect("running").poll(cx)
            });
            if let Poll::Ready(output) = polled {
                if cancelled {
                    // Finished while polled only for its shields: the
                    // scope was cancelled, so that is what it reports.
                    drop(output);
                    break;
                }
                leave(
                    &mut this.future,
                    this.frame,
                    node,
                    this.key,
                    this.shielding,
                    this.stage,
                    *this.counted,
                );
                *this.sleep = None;
                return Poll::Ready(Ok(output));
            }
            if cancelled {
                // Rule 2: polled only for the shields inside; the body's
                // own wakers bring us back until they are over.
                if this.frame.as_ref().is_some_and(Frame::shields_alive) {
                    return Poll::Pending;
                }
                break;
            }
            if node.is_timed() {
                match this.sleep {
                    Some((at, _)) if node.effective_deadline() == Some(*at) => {}
                    _ => *this.sleep = node.deadline_sleep(),
                }
                if let Some((at, sleep)) = this.sleep.as_mut()
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    // The timer is trusted even if the clock lags it.
                    Node::expire(node, *at);
                    *this.sleep = None;
                    continue;
                }
            } else {
                *this.sleep = None;
            }
            // Also woken when the deadline moves, to re-arm the sleep.
            if node.register(this.key, cx.waker(), HARD) {
                continue;
            }
            return Poll::Pending;
        }
        *this.sleep = None;
        let mut future = this.future;
        frames::dropping(this.frame, || future.set(None));
        node.unregister(this.key);
        frames::leave_shield(this.shielding);
        // Rule 3: groups dropped with the future keep the run in its scope
        // until their children are gone.
        let frame = this.frame.as_mut().expect("a running `Run` has its frame");
        if frame.poll_abandoned(cx).is_pending() {
            *this.stage = Stage::Draining;
            return Poll::Pending;
        }
        if *this.counted {
            node.exit();
        }
        *this.stage = Stage::Deferred;
        deferred(node, this.stage, *this.aborted)
    }
}

/// Whether a run in this stage is counted in its scope (if it counts).
fn is_inside(stage: &Stage) -> bool {
    matches!(stage, Stage::Running | Stage::Draining)
}

/// Rule 3 for a run that ended cancelled (or aborted).
fn deferred<T>(
    node: &crate::sync::Arc<Node>,
    stage: &mut Stage,
    aborted: bool,
) -> Poll<Result<T, Cancelled>> {
    if !node.is_shield() && frames::enclosed_by_cancelled() {
        return Poll::Pending;
    }
    *stage = Stage::Done;
    let reason = if aborted {
        CancelReason::Aborted
    } else {
        node.reason_or_explicit()
    };
    Poll::Ready(Err(Cancelled { reason }))
}

/// Drops the inner future (which finished) and leaves the scope. Task
/// groups dropped in it that still have children go to the run enclosing
/// this one, or stay in the frame for [`Run::take_abandoned`].
fn leave<F>(
    future: &mut Pin<&mut Option<F>>,
    frame: &mut Option<Frame>,
    node: &crate::sync::Arc<Node>,
    key: &mut Option<WaitKey>,
    shielding: &mut Vec<StdArc<AtomicUsize>>,
    stage: &mut Stage,
    counted: bool,
) {
    frames::dropping(frame, || future.set(None));
    node.unregister(key);
    frames::leave_shield(shielding);
    if is_inside(stage) && counted {
        node.exit();
    }
    *stage = Stage::Done;
    if let Some(frame) = frame.as_mut()
        && let Some(kept) = frames::hand_abandoned(frame.take_abandoned())
    {
        frame.keep_abandoned(kept);
    }
}

impl<F, H: AsRef<CancelScope>> fmt::Debug for Run<F, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("scope", self.scope.as_ref())
            .field("stage", &self.stage)
            .finish()
    }
}
