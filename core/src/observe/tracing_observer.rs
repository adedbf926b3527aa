//! Events as `tracing` events (feature `tracing`).

use super::{Event, Observer};

/// Emits every staunch [`Event`] as a `tracing` event with target
/// `staunch` and structured fields; failures and refusals at `WARN`,
/// everything else at `DEBUG`.
///
/// ```
/// use staunch::observe::{Observers, TracingObserver};
/// let observers = Observers::new().with(TracingObserver);
/// # drop(observers);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_event(&self, event: &Event) {
        match event {
            Event::AttemptStarted { name, attempt } => {
                tracing::debug!(target: "staunch", name = %name, attempt, "attempt started");
            }
            Event::RetryScheduled {
                name,
                attempt,
                delay,
                error,
            } => {
                tracing::warn!(target: "staunch", name = %name, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retry scheduled");
            }
            Event::RetryExhausted { name, attempts } => {
                tracing::warn!(target: "staunch", name = %name, attempts, "retries exhausted");
            }
            Event::CircuitStateChanged {
                name,
                from,
                to,
                reason,
            } => {
                tracing::warn!(target: "staunch", name = %name, from = %from, to = %to, reason = %reason, "circuit state changed");
            }
            Event::StoreModeChanged {
                name,
                degraded,
                reason,
            } => {
                if *degraded {
                    tracing::warn!(target: "staunch", name = %name, reason = %reason, "shared store degraded");
                } else {
                    tracing::info!(target: "staunch", name = %name, reason = %reason, "shared store recovered");
                }
            }
            Event::CallRejected { name, reason } => {
                tracing::warn!(target: "staunch", name = %name, reason = %reason, "call rejected");
            }
            Event::TimeoutFired { name, after } => {
                tracing::warn!(target: "staunch", name = %name, after_ms = after.as_millis() as u64, "timeout fired");
            }
            Event::Cancelled { name, reason } => {
                tracing::debug!(target: "staunch", name = %name, reason = %reason, "cancelled");
            }
            Event::Unobserved(error) => {
                tracing::warn!(target: "staunch", error = %error, "unobserved error");
            }
            Event::FallbackUsed { name, error } => {
                tracing::warn!(target: "staunch", name = %name, error = %error, "fallback used");
            }
            Event::HedgeStarted { name, attempt } => {
                tracing::debug!(target: "staunch", name = %name, attempt, "hedge started");
            }
            Event::RateLimited {
                name,
                cost,
                retry_after,
            } => {
                tracing::debug!(target: "staunch", name = %name, cost, retry_after_ms = retry_after.as_millis() as u64, "rate limited");
            }
            Event::ConcurrencyLimitChanged { name, from, to } => {
                tracing::info!(target: "staunch", name = %name, from, to, "concurrency limit changed");
            }
            #[allow(unreachable_patterns)]
            other => tracing::debug!(target: "staunch", event = ?other, "event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Metadata, Subscriber};

    /// Writes each event as `LEVEL target field=value ...`.
    struct Lines(Arc<Mutex<Vec<String>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }

    impl Subscriber for Lines {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let meta = event.metadata();
            let mut fields = Fields(format!("{} {}", meta.level(), meta.target()));
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn a_breaker_state_change_is_a_warn_event_with_fields() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Lines(lines.clone()), || {
            TracingObserver.on_event(&Event::CircuitStateChanged {
                name: "db".into(),
                from: crate::observe::CircuitState::Closed,
                to: crate::observe::CircuitState::Open,
                reason: "5 failures in a row".into(),
            });
        });
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert!(line.starts_with("WARN staunch"), "{line}");
        for part in [
            "name=db",
            "from=closed",
            "to=open",
            "reason=5 failures in a row",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
    }
}
