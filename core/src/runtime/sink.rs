//! Where failures that nobody observed go, so that none is ever silently lost.

use std::fmt;
use std::sync::Arc;

/// A task failure that no one observed: the task's [`JoinHandle`] was dropped
/// without being awaited, and the task then failed, panicked or was lost.
///
/// [`JoinHandle`]: super::JoinHandle
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnobservedError {
    /// The task's name, if it was spawned with one.
    pub task: Option<Arc<str>>,
    /// What went wrong.
    pub kind: UnobservedKind,
}

/// What kind of failure went unobserved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnobservedKind {
    /// The task returned an error; the text is the error's `Debug` form.
    Failed(String),
    /// The task panicked; the text is the panic message.
    Panicked(String),
    /// The executor dropped the task before it finished (it was shut down).
    Lost,
    /// Anything else nobody would otherwise see: an error a scope or group
    /// was shut down without returning, an item a dropped worker pool lost,
    /// a pool item that failed while nobody read the pool's completions.
    Other(String),
}

impl UnobservedError {
    /// The message in pieces; their concatenation is the `Display` text.
    /// Pieces let the default sink build the console line with plain string
    /// pushes instead of the formatting machinery (bytes on wasm32).
    fn message_parts(&self) -> [&str; 4] {
        let name = self.task.as_deref().unwrap_or("<unnamed>");
        match &self.kind {
            UnobservedKind::Failed(e) => [
                "task `",
                name,
                "` failed and nobody awaited its handle: ",
                e,
            ],
            UnobservedKind::Panicked(m) => [
                "task `",
                name,
                "` panicked and nobody awaited its handle: ",
                m,
            ],
            UnobservedKind::Lost => [
                "task `",
                name,
                "` was dropped by its executor before it finished and nobody awaited its handle",
                "",
            ],
            UnobservedKind::Other(m) => ["task `", name, "`: unobserved error: ", m],
        }
    }

    /// The line the default sink prints: `staunch: ` and the `Display` text.
    fn console_line(&self) -> String {
        let parts = self.message_parts();
        let mut line = String::with_capacity(9 + parts.iter().map(|p| p.len()).sum::<usize>());
        line.push_str("staunch: ");
        for part in parts {
            line.push_str(part);
        }
        line
    }
}

impl fmt::Display for UnobservedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message_parts()
            .iter()
            .try_for_each(|part| f.write_str(part))
    }
}

impl std::error::Error for UnobservedError {}

type SinkFn = dyn Fn(UnobservedError) + Send + Sync + 'static;

/// Receives every [`UnobservedError`]. Cheap to clone.
///
/// The default prints to stderr natively and to the browser console on
/// `wasm32`. Adapters take a custom sink (for logging, metrics, or a test
/// that collects them) with their `with_error_sink` builder.
///
/// # Example
///
/// ```
/// use staunch::runtime::{ErrorSink, UnobservedError, UnobservedKind};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = ErrorSink::new({
///     let seen = seen.clone();
///     move |e: UnobservedError| seen.lock().unwrap().push(e)
/// });
/// sink.report(UnobservedError { task: None, kind: UnobservedKind::Failed("boom".into()) });
/// assert_eq!(seen.lock().unwrap().len(), 1);
/// ```
#[derive(Clone)]
pub struct ErrorSink(Arc<Box<SinkFn>>);
// The function is boxed inside the `Arc`: the last drop of an `Arc` of a
// sized value is a fixed deallocation, where one of a `dyn` value works out
// from the vtable where the value sits and how large the block is. Every
// program that clones and drops a runtime holding a sink links that drop
// (about 70 bytes less of wasm this way), while a sink is made once and
// called rarely, so its second allocation and indirection cost nothing
// that matters.

impl ErrorSink {
    /// A sink that calls `report` with each unobserved error.
    pub fn new(report: impl Fn(UnobservedError) + Send + Sync + 'static) -> ErrorSink {
        ErrorSink(Arc::new(Box::new(report)))
    }

    /// Hands `error` to the sink.
    pub fn report(&self, error: UnobservedError) {
        (self.0)(error)
    }
}

impl Default for ErrorSink {
    /// Prints each error: stderr natively, `console.error` on wasm32.
    fn default() -> ErrorSink {
        ErrorSink::new(print_unobserved)
    }
}

impl fmt::Debug for ErrorSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorSink(..)")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn print_unobserved(error: UnobservedError) {
    eprintln!("{}", error.console_line());
}

#[cfg(target_arch = "wasm32")]
fn print_unobserved(error: UnobservedError) {
    web_sys::console::error_1(&wasm_bindgen::JsValue::from_str(&error.console_line()));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console line is `staunch: ` and the `Display` text, for every
    /// kind, named or not.
    #[test]
    fn the_console_line_is_the_display_text_after_the_prefix() {
        let kinds = [
            UnobservedKind::Failed("Flaky".into()),
            UnobservedKind::Panicked("index out of bounds".into()),
            UnobservedKind::Lost,
            UnobservedKind::Other("gave up".into()),
        ];
        for task in [None, Some(Arc::<str>::from("fetch"))] {
            for kind in kinds.clone() {
                let error = UnobservedError {
                    task: task.clone(),
                    kind,
                };
                assert_eq!(error.console_line(), format!("staunch: {error}"));
            }
        }
        let lost = UnobservedError {
            task: Some("fetch".into()),
            kind: UnobservedKind::Lost,
        };
        assert_eq!(
            lost.to_string(),
            "task `fetch` was dropped by its executor before it finished and nobody awaited its handle"
        );
        let failed = UnobservedError {
            task: None,
            kind: UnobservedKind::Failed("Flaky".into()),
        };
        assert_eq!(
            failed.to_string(),
            "task `<unnamed>` failed and nobody awaited its handle: Flaky"
        );
    }
}
