//! Reading the registry: cumulative counters and histograms at one moment,
//! from the same handles `/metrics` encodes. Signals over an interval are
//! the differences between two readings, as `rate()` and `increase()` take
//! them in Prometheus.

use std::collections::BTreeMap;

use super::bottlenecks::{Readings, total_of};
use super::families::{label, metrics_of};
use super::histogram::HistogramReading;
use crate::metrics::Metrics;

/// Hits and lookups of one cache, or errors and calls of one provider.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ratio {
    /// The part (hits, errors, 429s).
    pub part: u64,
    /// The whole (lookups, calls).
    pub whole: u64,
}

impl Ratio {
    /// part / whole over what happened since `earlier`; `None` when
    /// nothing happened.
    pub fn since(&self, earlier: &Ratio) -> Option<(f64, u64)> {
        let whole = self.whole.checked_sub(earlier.whole)?;
        let part = self.part.checked_sub(earlier.part)?;
        (whole > 0).then(|| (part as f64 / whole as f64, whole))
    }
}

/// Cumulative readings of the registry at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// HTTP responses, all and 5xx.
    pub http: Ratio,
    /// HTTP latency summed over routes (from the bottleneck readings,
    /// which already hold every route's histogram).
    pub http_latency: HistogramReading,
    /// Per cache: hits of lookups.
    pub caches: BTreeMap<String, Ratio>,
    /// Per provider: failed calls of all calls.
    pub provider_errors: BTreeMap<String, Ratio>,
    /// Per provider: rate-limited calls of all calls.
    pub provider_429s: BTreeMap<String, Ratio>,
    /// Jobs waiting to start.
    pub queue_length: i64,
    /// Tests running.
    pub in_flight: i64,
    /// Sum of the adaptive concurrency limits of all providers.
    pub concurrency_limit: i64,
    /// Tests finished, any outcome.
    pub tests_finished: u64,
    /// WebSocket progress connections open.
    pub websocket_connections: i64,
    /// WebSocket delivery latency (event created -> frame written).
    pub websocket_delivery: HistogramReading,
    /// Events delivered to WebSocket clients.
    pub websocket_delivered: u64,
    /// Events dropped for WebSocket clients that fell behind.
    pub websocket_dropped: u64,
}

impl Reading {
    /// Reads the handles; `http_latency` is `http`'s total in `components`.
    pub fn take(m: &Metrics, components: &Readings) -> Self {
        let mut r = Self {
            http_latency: total_of(components, "http"),
            queue_length: m.queue.queue_length.get(),
            in_flight: m.queue.in_flight.get(),
            websocket_connections: m.websocket.connections.get(),
            websocket_dropped: m.websocket.dropped.get(),
            websocket_delivered: m.websocket.messages.with_label_values(&["out"]).get(),
            ..Self::default()
        };
        if let Some(h) = metrics_of(&m.websocket.delivery).first() {
            r.websocket_delivery = HistogramReading::from_proto(h.get_histogram());
        }
        for metric in metrics_of(&m.http.requests) {
            let n = metric.get_counter().get_value() as u64;
            r.http.whole += n;
            if label(&metric, "status").starts_with('5') {
                r.http.part += n;
            }
        }
        for metric in metrics_of(&m.cache.lookups) {
            let n = metric.get_counter().get_value() as u64;
            let c = r
                .caches
                .entry(label(&metric, "cache").to_owned())
                .or_default();
            c.whole += n;
            if label(&metric, "result") == "hit" {
                c.part += n;
            }
        }
        // The providers' response cache is a cache too.
        for metric in metrics_of(&m.providers.cache_lookups) {
            let n = metric.get_counter().get_value() as u64;
            let c = r.caches.entry("provider_responses".to_owned()).or_default();
            c.whole += n;
            if label(&metric, "result") == "hit" {
                c.part += n;
            }
        }
        for metric in metrics_of(&m.providers.requests) {
            let n = metric.get_counter().get_value() as u64;
            let provider = label(&metric, "provider").to_owned();
            let status = label(&metric, "status");
            let e = r.provider_errors.entry(provider.clone()).or_default();
            e.whole += n;
            if status != "success" {
                e.part += n;
            }
            let l = r.provider_429s.entry(provider).or_default();
            l.whole += n;
            if status == "rate_limited" {
                l.part += n;
            }
        }
        r.tests_finished = metrics_of(&m.queue.runs)
            .iter()
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum();
        r.concurrency_limit = metrics_of(&m.queue.concurrency_limit)
            .iter()
            .map(|metric| metric.get_gauge().get_value() as i64)
            .sum();
        r
    }
}
