//! `CancelScope`: a token plus a deadline and the clock that enforces it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::runtime::{AnyTimer, Instant, Timer};

use super::grace::{AllIdle, GraceReport, runs_inside};
use super::run::Run;
use super::token::WaitCancelled;
use super::tree::{NOW, Node, SOFT};
use super::{CancelReason, CancelToken, Cancelled};

/// A region of work that can be cancelled, with a reason, as a whole.
///
/// A scope is a [`CancelToken`] plus an optional deadline. Futures run with
/// [`run`](CancelScope::run) are dropped promptly when the scope is cancelled
/// or its deadline passes, and the caller gets [`Cancelled`] with the
/// [`CancelReason`]. Scopes nest:
///
/// - [`child`](CancelScope::child): cancelled with its parent (reason
///   [`CancelReason::Parent`]); cancelling it never touches the parent or
///   siblings. Its effective deadline is the earlier of its own and every
///   ancestor's.
/// - [`shielded`](CancelScope::shielded): ignores outer cancellation and
///   outer deadlines, for cleanup that must finish. Give it its own deadline
///   ([`with_timeout`](CancelScope::with_timeout)) so that it stays bounded.
///
/// Deadlines are live and shared by every handle on the scope:
/// [`set_deadline`](CancelScope::set_deadline) moves a running scope's
/// deadline earlier or later, and every child sees the change (trio's
/// `scope.deadline = ...`). A deadline is checked with the scope's clock at
/// every poll of [`run`](CancelScope::run) (only on scopes that have one),
/// by [`is_cancelled`](CancelScope::is_cancelled) and by
/// [`cancelled`](CancelScope::cancelled); the first to see it passed
/// cancels the scope that set it with [`CancelReason::Deadline`], which
/// reaches every descendant. So a deadline already past when `run` is
/// polled cancels before the inner future is polled again, even before the
/// runtime's timer has fired. Raising a deadline never undoes a
/// cancellation that already happened. Use one clock per tree of scopes:
/// instants of different timers cannot be compared.
///
/// When scopes are nested (a `run` inside another's future) and several are
/// cancelled, the outermost cancelled one up to the nearest shield returns
/// the `Err`; inner runs drop their futures and never hand control back to
/// the code of a cancelled outer scope (trio's rule). The exact rules, and
/// where Rust makes them differ from trio, are in the [module
/// docs](crate::scope#trio-and-staunch).
///
/// Cloning a scope gives another handle on the same scope.
///
/// # Example
///
/// ```
/// use staunch::scope::{CancelReason, CancelScope};
/// use staunch::runtime::Timer;
/// use staunch::testing::VirtualRuntime;
/// use std::time::Duration;
///
/// let rt = VirtualRuntime::new();
/// let out = rt.block_on({
///     let rt = rt.clone();
///     async move {
///         let scope = CancelScope::new().with_timeout(&rt, Duration::from_secs(1));
///         let child = scope.child().with_timeout(&rt, Duration::from_secs(5));
///         // The child's effective deadline is its parent's: 1 s.
///         child.run(rt.sleep(Duration::from_secs(3))).await
///     }
/// });
/// let err = out.unwrap().unwrap_err();
/// // The deadline that passed is the parent's, so the child hears it as
/// // `Parent(Deadline)`.
/// assert!(matches!(err.reason, CancelReason::Parent(_)));
/// assert!(matches!(err.reason.root(), CancelReason::Deadline { .. }));
/// assert_eq!(rt.now().since_origin(), Duration::from_secs(1));
/// ```
///
/// # Cancel safety
///
/// Cancelling a scope drops the futures run in it at their next poll; they
/// are as cancel-safe as those futures. Use
/// [`cancel_with_grace`](CancelScope::cancel_with_grace) to let them finish
/// on their own first.
#[derive(Clone, Default)]
pub struct CancelScope {
    pub(crate) token: CancelToken,
}

impl CancelScope {
    /// A new root scope: not cancelled, no deadline.
    #[must_use]
    pub fn new() -> CancelScope {
        CancelScope::default()
    }

    /// A scope nested in this one: cancelled with it, bounded by its
    /// effective deadline now and whenever it moves.
    #[must_use]
    pub fn child(&self) -> CancelScope {
        CancelScope {
            token: self.token.child(),
        }
    }

    /// A scope that ignores this one's cancellation and deadline (it keeps
    /// the clock). For cleanup that must finish even while everything around
    /// it is being cancelled; bound it with its own deadline.
    ///
    /// Run inside the future of a cancelled [`run`](CancelScope::run), a
    /// shielded scope's run keeps that outer run alive: the outer run keeps
    /// polling its future until every shielded run inside has finished (or
    /// hit its own deadline), then drops it and returns [`Cancelled`] with
    /// the outer reason. Meanwhile runs of non-shielded scopes in the same
    /// future stay dropped; plain futures beside the shield (a `join!`
    /// branch outside any run) keep being polled.
    ///
    /// ```
    /// use staunch::scope::CancelScope;
    ///
    /// let outer = CancelScope::new();
    /// let cleanup = outer.shielded();
    /// outer.cancel();
    /// assert!(!cleanup.is_cancelled());
    /// ```
    #[must_use]
    pub fn shielded(&self) -> CancelScope {
        CancelScope {
            token: CancelToken {
                node: Node::shield(self.token.node.clock()),
            },
        }
    }

    /// This scope with a deadline at `at` on `timer`'s clock. The deadline
    /// only ever gets earlier here (the earlier of `at` and the scope's own
    /// deadline so far); use [`set_deadline`](CancelScope::set_deadline) to
    /// move it later. `timer` becomes the scope's clock. Every handle on the
    /// scope, and every child, sees the deadline.
    #[must_use]
    pub fn with_deadline<T: Timer + Clone + 'static>(self, timer: &T, at: Instant) -> CancelScope {
        Node::set_deadline(&self.token.node, at, AnyTimer::new(timer.clone()), true);
        self
    }

    /// This scope with a deadline `duration` from now on `timer`'s clock; see
    /// [`with_deadline`](CancelScope::with_deadline).
    #[must_use]
    pub fn with_timeout<T: Timer + Clone + 'static>(
        self,
        timer: &T,
        duration: Duration,
    ) -> CancelScope {
        let at = timer.now().saturating_add(duration);
        self.with_deadline(timer, at)
    }

    /// Moves the scope's own deadline to `at` on `timer`'s clock, earlier or
    /// later, while it runs (trio's `scope.deadline = at`; `Instant::NEVER`
    /// removes it). Runs and waiters in the scope and its descendants re-arm
    /// at once. The effective deadline stays bounded by the enclosing
    /// scopes'. Raising a deadline cannot undo a cancellation that already
    /// happened: a scope cancelled by its old deadline stays cancelled.
    ///
    /// ```
    /// use staunch::scope::CancelScope;
    /// use staunch::runtime::Timer;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let idle = Duration::from_millis(100);
    /// let out = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move {
    ///         let scope = CancelScope::new().with_timeout(&rt, idle);
    ///         scope.run(async {
    ///             for _ in 0..3 {
    ///                 rt.sleep(Duration::from_millis(60)).await; // progress
    ///                 scope.set_deadline(&rt, rt.now() + idle); // idle timeout extends
    ///             }
    ///         }).await
    ///     }
    /// });
    /// assert!(out.unwrap().is_ok());
    /// assert_eq!(rt.now().since_origin(), Duration::from_millis(180));
    /// ```
    pub fn set_deadline<T: Timer + Clone + 'static>(&self, timer: &T, at: Instant) {
        Node::set_deadline(&self.token.node, at, AnyTimer::new(timer.clone()), false);
    }

    /// The effective deadline, if any: the earliest of this scope's own and
    /// its enclosing scopes' (up to the nearest shield), as they are now.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.token.node.effective_deadline()
    }

    /// The scope's token, to hand to code that only needs to observe or
    /// trigger cancellation.
    #[must_use]
    pub fn token(&self) -> &CancelToken {
        &self.token
    }

    /// Cancels the scope and its descendants now, with
    /// [`CancelReason::Explicit`]. Does nothing if already cancelled.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Cancels with a message that reaches the [`Cancelled`] error.
    pub fn cancel_with_message(&self, message: impl Into<StdArc<str>>) {
        self.token.cancel_with_message(message);
    }

    /// Cancels with the given reason.
    pub fn cancel_with(&self, reason: CancelReason) {
        self.token.cancel_with(reason);
    }

    /// Whether the scope was cancelled, or its deadline has passed by its
    /// clock (then this cancels it). One atomic load on a scope without a
    /// deadline; a clock read on one with.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the scope was cancelled, if it was.
    #[must_use]
    pub fn reason(&self) -> Option<CancelReason> {
        self.token.reason()
    }

    /// Runs `future` until it finishes or the scope is cancelled.
    ///
    /// # Errors
    ///
    /// [`Cancelled`] with the scope's reason if the scope was cancelled or
    /// its deadline passed before `future` finished; `future` has been
    /// dropped by then, and so have the children of any
    /// [`TaskGroup`](crate::group::TaskGroup) it dropped unjoined (the run
    /// stays pending, and counted in the scope, until they are gone). A
    /// scope already cancelled (or a deadline already past) at the first
    /// poll never polls `future`. During a
    /// [`cancel_with_grace`](CancelScope::cancel_with_grace) grace period
    /// `future` keeps running, and if it finishes its output is returned.
    ///
    /// # Panics
    ///
    /// If polled again after it completed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the `Run` drops `future`.
    pub fn run<F: IntoFuture>(&self, future: F) -> Run<F::IntoFuture> {
        Run::new(self.clone(), future.into_future())
    }

    /// [`run`](Self::run) for a fallible operation, with one flat result
    /// in the shape every guard returns. `op` is a future of `Result<T, E>`
    /// or another staunch call (see [`Fallible`](crate::Fallible)).
    ///
    /// # Errors
    ///
    /// [`Error::Cancelled`](crate::Error::Cancelled) with the scope's reason
    /// (as for [`run`](Self::run)); otherwise the operation's error
    /// ([`Error::Inner`](crate::Error::Inner) for a plain future's own
    /// error).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned call drops the operation.
    ///
    /// ```
    /// use staunch::scope::CancelScope;
    /// use std::future::IntoFuture;
    ///
    /// let scope = CancelScope::new();
    /// let ok = futures::executor::block_on(scope.call(async { Ok::<_, std::io::Error>(7) }).into_future());
    /// assert_eq!(ok.unwrap(), 7);
    /// scope.cancel();
    /// let refused = futures::executor::block_on(scope.call(async { Ok::<_, std::io::Error>(7) }).into_future());
    /// assert!(refused.unwrap_err().is_cancelled());
    /// ```
    pub fn call<G: crate::Fallible>(
        &self,
        op: G,
    ) -> crate::Guarded<impl Future<Output = Result<G::Ok, crate::Error<G::Err>>>> {
        let run = self.run(crate::fallible::lifted(op));
        crate::Guarded::new(async move {
            match run.await {
                Ok(out) => out,
                Err(cancelled) => Err(crate::Error::Cancelled(cancelled)),
            }
        })
    }

    /// A future that completes once the scope is cancelled or its deadline
    /// passes, for cooperative code that wants to clean up.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping it only stops waiting.
    pub fn cancelled(&self) -> ScopeCancelled<'_> {
        ScopeCancelled {
            wait: self.token.cancelled(),
        }
    }

    /// Cancels the scope gracefully: signals it now (so `is_cancelled` and
    /// `cancelled()` see it, with [`CancelReason::Explicit`]), lets the
    /// futures run in it and its descendants finish on their own for up to
    /// `grace`, then drops those that remain. Completes only once every one
    /// of them is gone.
    ///
    /// Call it from outside the scope: a `run` of this scope that awaits its
    /// own graceful cancellation would wait for itself.
    ///
    /// # Example
    ///
    /// ```
    /// use staunch::scope::CancelScope;
    /// use staunch::runtime::{SpawnExt, Timer};
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let flushed = rt.block_on({
    ///     let rt = rt.clone();
    ///     async move {
    ///         let scope = CancelScope::new();
    ///         let worker = rt.spawn(scope.clone().run_owned({
    ///             let (scope, rt) = (scope.clone(), rt.clone());
    ///             async move {
    ///                 scope.cancelled().await;
    ///                 rt.sleep(Duration::from_millis(10)).await; // flush buffers
    ///                 Ok::<_, String>("flushed")
    ///             }
    ///         })).unwrap();
    ///         rt.sleep(Duration::from_millis(1)).await;
    ///         scope.cancel_with_grace(&rt, Duration::from_millis(50)).await;
    ///         worker.await.unwrap()
    ///     }
    /// });
    /// assert_eq!(flushed.unwrap(), Ok(Ok("flushed")));
    /// ```
    ///
    /// Returns a [`GraceReport`]: how many futures ended within the grace,
    /// how many were dropped after it, and how long it took.
    pub async fn cancel_with_grace<T: Timer>(&self, timer: &T, grace: Duration) -> GraceReport {
        self.cancel_gracefully(timer, grace, CancelReason::Explicit { message: None })
            .await
    }

    pub(crate) async fn cancel_gracefully<T: Timer>(
        &self,
        timer: &T,
        grace: Duration,
        reason: CancelReason,
    ) -> GraceReport {
        let start = timer.now();
        let nodes = Node::cancel(&self.token.node, reason.clone(), SOFT, true);
        // No run can enter a flagged node, so these counts only go down.
        let signalled = runs_inside(&nodes);
        let remaining = {
            let mut idle = AllIdle::new(nodes);
            {
                let sleep = std::pin::pin!(timer.sleep(grace));
                futures::future::select(&mut idle, sleep).await;
            }
            runs_inside(idle.nodes())
        };
        let nodes = Node::cancel(&self.token.node, reason, NOW, true);
        AllIdle::new(nodes).await;
        GraceReport {
            finished: signalled - remaining.min(signalled),
            force_dropped: remaining.min(signalled),
            finished_names: Vec::new(),
            force_dropped_names: Vec::new(),
            elapsed: timer.now().saturating_duration_since(start),
        }
    }

    /// Signals cancellation without dropping anything yet: `is_cancelled` and
    /// `cancelled()` see it, futures run in the scope keep running until a
    /// later `cancel_with`. The first step of a graceful shutdown.
    pub(crate) fn signal(&self, reason: CancelReason) {
        Node::cancel(&self.token.node, reason, SOFT, false);
    }

    /// Like [`run`](CancelScope::run), but takes the scope by value so the
    /// future is `'static` (to spawn it).
    pub fn run_owned<F: Future>(self, future: F) -> Run<F> {
        Run::new(self, future)
    }
}

impl AsRef<CancelScope> for CancelScope {
    fn as_ref(&self) -> &CancelScope {
        self
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelScope")
            .field("cancelled", &self.is_cancelled())
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// A run whose holder counts it as busy in the scope (see `Run::uncounted`).
pub(crate) fn run_uncounted<F: Future, H: AsRef<CancelScope>>(scope: H, future: F) -> Run<F, H> {
    Run::uncounted(scope, future)
}

/// The future of [`CancelScope::cancelled`]: resolves to [`Cancelled`] once
/// the scope is cancelled or its deadline passes.
#[must_use = "a ScopeCancelled does nothing unless awaited"]
pub struct ScopeCancelled<'a> {
    wait: WaitCancelled<'a>,
}

impl Future for ScopeCancelled<'_> {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        self.wait.poll_wait(cx)
    }
}

impl fmt::Debug for ScopeCancelled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeCancelled")
            .field("wait", &self.wait)
            .finish()
    }
}
