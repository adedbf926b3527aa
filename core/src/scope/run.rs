//! The future of `CancelScope::run`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::runtime::BoxTask;

use super::cancel_scope::{deadline_passed, deadline_sleep};
use super::tree::{HARD, WaitKey};
use super::{CancelReason, CancelScope, Cancelled};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    NotStarted,
    Running,
    Done,
}

pin_project_lite::pin_project! {
    /// A future run inside a [`CancelScope`]; created by
    /// [`CancelScope::run`] and [`CancelScope::run_owned`].
    ///
    /// Resolves to `Ok(output)` if the inner future finishes, or
    /// `Err(Cancelled)` once the scope is cancelled or its deadline passes.
    /// The inner future is dropped inside the poll that notices, not later.
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
        sleep: Option<BoxTask>,
        key: Option<WaitKey>,
        stage: Stage,
        counted: bool,
        last_poll: bool,
    }

    impl<F, H> PinnedDrop for Run<F, H>
    where
        H: AsRef<CancelScope>,
    {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            let node = &this.scope.as_ref().token.node;
            // Drop the inner future before leaving the scope, so a graceful
            // cancel that waits for the scope to be idle waits for its drop.
            this.future.set(None);
            node.unregister(this.key);
            if *this.stage == Stage::Running && *this.counted {
                node.exit();
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
            stage: Stage::NotStarted,
            counted: true,
            last_poll: false,
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

    /// How this future holds its scope.
    pub(crate) fn holder(&self) -> &H {
        &self.scope
    }

    /// Drops the inner future now and leaves the scope (after a panic, or
    /// before reporting that the task is gone). Polling afterwards panics.
    pub(crate) fn release(self: Pin<&mut Self>) {
        let mut this = self.project();
        let node = &this.scope.as_ref().token.node;
        this.future.set(None);
        *this.sleep = None;
        node.unregister(this.key);
        if *this.stage == Stage::Running && *this.counted {
            node.exit();
        }
        *this.stage = Stage::Done;
    }
}

impl<F: Future, H: AsRef<CancelScope>> Future for Run<F, H> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let scope = this.scope.as_ref();
        let node = &scope.token.node;
        let resumed = *this.stage == Stage::Running;
        match *this.stage {
            Stage::Done => panic!("`Run` polled after it completed"),
            Stage::NotStarted => {
                deadline_passed(scope);
                let entered = if *this.counted {
                    node.enter()
                } else {
                    node.flags() == 0
                };
                if !entered {
                    this.future.set(None);
                    *this.stage = Stage::Done;
                    return Poll::Ready(Err(Cancelled {
                        reason: node.reason_or_explicit(),
                    }));
                }
                *this.stage = Stage::Running;
                *this.sleep = deadline_sleep(scope);
            }
            Stage::Running => {}
        }
        if resumed && *this.last_poll && node.flags() & HARD != 0 {
            let future = this.future.as_mut().as_pin_mut().expect("running");
            if let Poll::Ready(output) = future.poll(cx) {
                finish(
                    &mut this.future,
                    node,
                    this.key,
                    this.stage,
                    this.sleep,
                    *this.counted,
                );
                return Poll::Ready(Ok(output));
            }
        }
        loop {
            if node.flags() & HARD != 0 {
                break;
            }
            let future = this.future.as_mut().as_pin_mut().expect("running");
            if let Poll::Ready(output) = future.poll(cx) {
                finish(
                    &mut this.future,
                    node,
                    this.key,
                    this.stage,
                    this.sleep,
                    *this.counted,
                );
                return Poll::Ready(Ok(output));
            }
            if let Some(sleep) = this.sleep.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                *this.sleep = None;
                if let Some(at) = scope.deadline {
                    scope.token.cancel_with(CancelReason::Deadline { at });
                }
                continue;
            }
            if node.register(this.key, cx.waker(), HARD) {
                continue;
            }
            return Poll::Pending;
        }
        finish(
            &mut this.future,
            node,
            this.key,
            this.stage,
            this.sleep,
            *this.counted,
        );
        Poll::Ready(Err(Cancelled {
            reason: node.reason_or_explicit(),
        }))
    }
}

fn finish<F>(
    future: &mut Pin<&mut Option<F>>,
    node: &crate::sync::Arc<super::tree::Node>,
    key: &mut Option<WaitKey>,
    stage: &mut Stage,
    sleep: &mut Option<BoxTask>,
    counted: bool,
) {
    future.set(None);
    *sleep = None;
    node.unregister(key);
    *stage = Stage::Done;
    if counted {
        node.exit();
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
