//! Events as counters and histograms through the `metrics` facade
//! (feature `metrics`), so any exporter, Prometheus included, works.

use super::{Event, Observer};

/// Feeds staunch's [`Event`]s to the `metrics` facade. Every metric has a
/// `name` label with the operation's, breaker's or bulkhead's name:
///
/// | metric | kind | extra labels |
/// | --- | --- | --- |
/// | `staunch_attempts_total` | counter | |
/// | `staunch_retries_total` | counter | |
/// | `staunch_retry_delay_seconds` | histogram | |
/// | `staunch_retries_exhausted_total` | counter | |
/// | `staunch_circuit_transitions_total` | counter | `to` |
/// | `staunch_rejected_total` | counter | |
/// | `staunch_timeouts_total` | counter | |
/// | `staunch_cancelled_total` | counter | |
/// | `staunch_unobserved_errors_total` | counter | |
/// | `staunch_fallbacks_total` | counter | |
/// | `staunch_hedges_total` | counter | |
///
/// ```
/// use staunch::observe::{MetricsObserver, Observers};
/// let observers = Observers::new().with(MetricsObserver);
/// # drop(observers);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MetricsObserver;

impl Observer for MetricsObserver {
    fn on_event(&self, event: &Event) {
        match event {
            Event::AttemptStarted { name, .. } => {
                metrics::counter!("staunch_attempts_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::RetryScheduled { name, delay, .. } => {
                metrics::counter!("staunch_retries_total", "name" => name.to_string()).increment(1);
                metrics::histogram!("staunch_retry_delay_seconds", "name" => name.to_string())
                    .record(delay.as_secs_f64());
            }
            Event::RetryExhausted { name, .. } => {
                metrics::counter!("staunch_retries_exhausted_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::CircuitStateChanged { name, to, .. } => {
                metrics::counter!("staunch_circuit_transitions_total", "name" => name.to_string(), "to" => to.to_string())
                    .increment(1);
            }
            Event::StoreModeChanged { name, degraded, .. } => {
                let to = if *degraded { "degraded" } else { "shared" };
                metrics::counter!("staunch_store_mode_changes_total", "name" => name.to_string(), "to" => to)
                    .increment(1);
            }
            Event::CallRejected { name, .. } => {
                metrics::counter!("staunch_rejected_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::TimeoutFired { name, .. } => {
                metrics::counter!("staunch_timeouts_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::Cancelled { name, .. } => {
                metrics::counter!("staunch_cancelled_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::Unobserved(error) => {
                let name = error.task.as_deref().unwrap_or("").to_owned();
                metrics::counter!("staunch_unobserved_errors_total", "name" => name).increment(1);
            }
            Event::FallbackUsed { name, .. } => {
                metrics::counter!("staunch_fallbacks_total", "name" => name.to_string())
                    .increment(1);
            }
            Event::HedgeStarted { name, .. } => {
                metrics::counter!("staunch_hedges_total", "name" => name.to_string()).increment(1);
            }
            Event::RateAdmitted { name, cost } => {
                metrics::counter!("staunch_rate_admitted_total", "name" => name.to_string())
                    .increment(u64::from(*cost));
            }
            Event::RateLimited {
                name, retry_after, ..
            } => {
                metrics::counter!("staunch_rate_limited_total", "name" => name.to_string())
                    .increment(1);
                metrics::histogram!("staunch_rate_limited_wait_seconds", "name" => name.to_string())
                    .record(retry_after.as_secs_f64());
            }
            Event::ConcurrencyLimitChanged { name, to, .. } => {
                metrics::gauge!("staunch_concurrency_limit", "name" => name.to_string())
                    .set(*to as f64);
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics::{
        Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };
    use std::sync::{Arc, Mutex};

    /// Remembers every counter increment and histogram record by key.
    #[derive(Default)]
    struct Remember(Arc<Mutex<Vec<(String, f64)>>>);

    struct Handle(String, Arc<Mutex<Vec<(String, f64)>>>);

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.1.lock().unwrap().push((self.0.clone(), value as f64));
        }
        fn absolute(&self, value: u64) {
            self.increment(value);
        }
    }

    impl HistogramFn for Handle {
        fn record(&self, value: f64) {
            self.1.lock().unwrap().push((self.0.clone(), value));
        }
    }

    fn describe(key: &Key) -> String {
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        format!("{}{{{}}}", key.name(), labels.join(","))
    }

    impl Recorder for Remember {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Handle(describe(key), self.0.clone())))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Handle(describe(key), self.0.clone())))
        }
    }

    #[test]
    fn retry_and_breaker_events_become_labelled_counters_and_histograms() {
        let recorder = Remember::default();
        let seen = recorder.0.clone();
        metrics::with_local_recorder(&recorder, || {
            MetricsObserver.on_event(&Event::RetryScheduled {
                name: "fetch".into(),
                attempt: 1,
                delay: std::time::Duration::from_millis(250),
                error: "503".into(),
            });
            MetricsObserver.on_event(&Event::CircuitStateChanged {
                name: "db".into(),
                from: crate::observe::CircuitState::Closed,
                to: crate::observe::CircuitState::Open,
                reason: "5 failures in a row".into(),
            });
        });
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                ("staunch_retries_total{name=fetch}".to_owned(), 1.0),
                ("staunch_retry_delay_seconds{name=fetch}".to_owned(), 0.25),
                (
                    "staunch_circuit_transitions_total{name=db,to=open}".to_owned(),
                    1.0
                ),
            ]
        );
    }
}
