//! The `Web` runtime: timers and spawning through JavaScript globals.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::budget::Budgeted;
use staunch::runtime::{
    BlockingTask, BoxTask, ErrorSink, Instant, LocalBoxTask, LocalSpawn, Spawn, SpawnBlocking,
    SpawnError, Timer,
};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::{Closure, wasm_bindgen};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(handler: &Closure<dyn FnMut()>, millis: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// staunch's runtime for the browser, web workers and Node (wasm32).
/// Cheap to clone. See the [crate docs](crate) for what it uses.
///
/// ```no_run
/// use staunch::runtime::{SpawnExt, Timer};
/// use staunch_web::Web;
/// use std::time::Duration;
///
/// async fn demo() {
///     let rt = Web::current();
///     let handle = rt.spawn({
///         let rt = rt.clone();
///         async move {
///             rt.sleep(Duration::from_millis(10)).await;
///             Ok::<_, String>("slept")
///         }
///     }).unwrap();
///     assert_eq!(handle.await, Ok(Ok("slept")));
/// }
/// ```
#[derive(Clone)]
pub struct Web {
    origin_ms: f64,
    /// `None` means the default (`console.error`), made only when a task
    /// asks for it: a program that never spawns does not link the console
    /// path.
    sink: Option<ErrorSink>,
}

impl fmt::Debug for Web {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As `#[derive(Debug)]` printed it when the default sink was made
        // eagerly.
        let mut d = f.debug_struct("Web");
        d.field("origin_ms", &self.origin_ms);
        match &self.sink {
            Some(sink) => d.field("sink", sink),
            None => d.field("sink", &format_args!("ErrorSink(..)")),
        };
        d.finish()
    }
}

impl Web {
    /// The ambient runtime: the event loop of this page, worker or Node
    /// process, with a clock that starts now. Every adapter has `current()`.
    #[must_use]
    pub fn current() -> Web {
        Web {
            origin_ms: performance_now(),
            sink: None,
        }
    }

    /// Sends failures of detached tasks nobody observed to `sink`
    /// (default: `console.error`).
    #[must_use]
    pub fn with_error_sink(mut self, sink: ErrorSink) -> Web {
        self.sink = Some(sink);
        self
    }
}

impl Default for Web {
    fn default() -> Web {
        Web::current()
    }
}

/// Milliseconds as a duration, to the nanosecond. A float-to-integer `as`
/// cast saturates: NaN and anything not positive give zero, anything past
/// the 584 years a `u64` of nanoseconds holds gives that much, so this needs
/// no checks of its own, nor `Duration::try_from_secs_f64`'s exact
/// conversion, which cost every browser build over half a kilobyte (a clock
/// reads far below 584 years).
fn millis_to_duration(ms: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Duration::from_nanos((ms * 1_000_000.0) as u64)
}

impl Timer for Web {
    type Sleep = WebSleep;

    fn now(&self) -> Instant {
        Instant::from_origin(millis_to_duration(performance_now() - self.origin_ms))
    }

    fn sleep(&self, duration: Duration) -> WebSleep {
        let never = duration == Duration::MAX;
        let deadline_ms = performance_now() + duration.as_secs_f64() * 1000.0;
        WebSleep {
            deadline_ms,
            never,
            polled: false,
            fired: Rc::new(Fired::default()),
            armed: None,
        }
    }
}

/// Shared by a sleep and its timer's callback. A `Cell`, not a `RefCell`,
/// holds the waker: it is only ever swapped whole, so there is no borrow to
/// check and no borrow panic to link.
#[derive(Default)]
struct Fired {
    flag: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

/// The sleep future of [`Web`]. Dropping it clears its `setTimeout`.
///
/// A sleep is always a yield point: one already due when first polled
/// (`sleep(Duration::ZERO)`) still waits for a `setTimeout(0)`, so the event
/// loop gets a macrotask turn.
#[must_use = "a sleep does nothing unless awaited"]
pub struct WebSleep {
    deadline_ms: f64,
    never: bool,
    polled: bool,
    fired: Rc<Fired>,
    armed: Option<(JsValue, Closure<dyn FnMut()>)>,
}

impl std::fmt::Debug for WebSleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSleep")
            .field("deadline_ms", &self.deadline_ms)
            .finish()
    }
}

impl WebSleep {
    fn disarm(&mut self) {
        if let Some((id, _closure)) = self.armed.take() {
            clear_timeout(&id);
        }
    }
}

impl Future for WebSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.never {
            return Poll::Pending;
        }
        if self.fired.flag.replace(false) {
            // The armed timer fired: drop it (it will not fire again).
            self.armed = None;
        }
        let first_poll = !std::mem::replace(&mut self.polled, true);
        let remaining = self.deadline_ms - performance_now();
        if remaining <= 0.0 && !first_poll {
            self.disarm();
            return Poll::Ready(());
        }
        self.fired.waker.set(Some(cx.waker().clone()));
        if self.armed.is_none() {
            // Long sleeps are chained in steps setTimeout accepts.
            let step = crate::step::next_timeout_ms(remaining);
            let fired = self.fired.clone();
            let closure = Closure::<dyn FnMut()>::new(move || {
                fired.flag.set(true);
                if let Some(w) = fired.waker.take() {
                    w.wake();
                }
            });
            let id = set_timeout(&closure, step);
            self.armed = Some((id, closure));
        }
        Poll::Pending
    }
}

impl Drop for WebSleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl Spawn for Web {
    fn spawn_task(&self, task: BoxTask) -> Result<(), SpawnError> {
        wasm_bindgen_futures::spawn_local(Budgeted::new(task));
        Ok(())
    }

    fn error_sink(&self) -> ErrorSink {
        self.sink.clone().unwrap_or_default()
    }
}

impl LocalSpawn for Web {
    fn spawn_local_task(&self, task: LocalBoxTask) -> Result<(), SpawnError> {
        wasm_bindgen_futures::spawn_local(Budgeted::new(task));
        Ok(())
    }

    fn local_error_sink(&self) -> ErrorSink {
        self.sink.clone().unwrap_or_default()
    }
}

impl SpawnBlocking for Web {
    fn spawn_blocking_task(&self, _work: BlockingTask) -> Result<(), SpawnError> {
        Err(SpawnError::Unsupported {
            what: "spawn_blocking",
            why: "wasm32 in the browser and Node has no threads to block; split the work into async steps or use a web worker",
        })
    }
}
