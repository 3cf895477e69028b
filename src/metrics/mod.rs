//! The one metrics registry: every family promptgauge exports, as typed handles.
//!
//! Metric names and label sets are defined here and nowhere else. Subsystems
//! receive their handle struct (cheap clones of `prometheus` handles) at
//! construction; the monitor reads the same handles, so `/metrics`, the JSON
//! API and the alert rules agree. This module must not know about HTTP
//! frameworks or SQL.

mod analytics;
mod cache;
mod http;
mod monitor;
mod optimize;
mod providers;
mod queue;
mod reports;
mod storage;
mod websocket;

pub use analytics::{ANALYTICS_BUCKETS, ANALYTICS_QUERIES, AnalyticsMetrics};
pub use cache::CacheMetrics;
pub use http::HttpMetrics;
pub use monitor::MonitorMetrics;
pub use optimize::OptimizeMetrics;
pub use providers::ProviderMetrics;
pub use queue::QueueMetrics;
pub use reports::{REPORT_KINDS, ReportMetrics};
pub use storage::StorageMetrics;
pub use websocket::{CLOSE_REASONS, DELIVERY_BUCKETS, WebsocketMetrics};

use prometheus::core::Collector;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

/// HTTP request latency buckets; 1 s and 5 s are the response-time thresholds.
pub const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// SQLite statement and transaction latency buckets.
pub const SQLITE_BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5];
/// Provider call latency buckets, up to two minutes.
pub const PROVIDER_BUCKETS: &[f64] =
    &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0];
/// Commands per writer transaction.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// `Content-Type` of the exposition: Prometheus 3 refuses scrapes without one.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric family, registered on one private registry.
pub struct Metrics {
    registry: Registry,
    /// HTTP server families.
    pub http: HttpMetrics,
    /// SQLite writer and reader families.
    pub storage: StorageMetrics,
    /// `TtlCache` families, labelled by cache name.
    pub cache: CacheMetrics,
    /// Provider calls.
    pub providers: ProviderMetrics,
    /// The test queue.
    pub queue: QueueMetrics,
    /// The performance monitor.
    pub monitor: MonitorMetrics,
    /// The WebSocket progress stream.
    pub websocket: WebsocketMetrics,
    /// Analytics queries.
    pub analytics: AnalyticsMetrics,
    /// Reports.
    pub reports: ReportMetrics,
    /// Prompt optimization.
    pub optimize: OptimizeMetrics,
}

impl Metrics {
    /// Creates and registers every family, `promptgauge_build_info` and the
    /// `process_*` collector.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "promptgauge_build_info",
                "Always 1; labels carry the version and git revision of the running binary.",
            ),
            &["version", "revision"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), env!("PROMPTGAUGE_REVISION")])
            .set(1);
        register(&registry, build_info)?;
        // Only the default registry gets process metrics for free.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            http: HttpMetrics::new(&registry)?,
            storage: StorageMetrics::new(&registry)?,
            cache: CacheMetrics::new(&registry)?,
            providers: ProviderMetrics::new(&registry)?,
            queue: QueueMetrics::new(&registry)?,
            monitor: MonitorMetrics::new(&registry)?,
            websocket: WebsocketMetrics::new(&registry)?,
            analytics: AnalyticsMetrics::new(&registry)?,
            reports: ReportMetrics::new(&registry)?,
            optimize: OptimizeMetrics::new(&registry)?,
            registry,
        })
    }

    /// Gathers and encodes every family in the text exposition format.
    pub fn encode(&self) -> Result<Vec<u8>, prometheus::Error> {
        let families = self.registry.gather();
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&families, &mut out)?;
        Ok(out)
    }

    /// The registry, for readers that need raw families (the monitor, tests).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Label values taken from user configs (models, provider ids): the first
/// `max` distinct values are kept, later ones become `other`, so a config
/// cannot explode the series count.
#[derive(Clone)]
pub struct BoundedLabels {
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    max: usize,
}

impl BoundedLabels {
    /// Keeps up to `max` distinct values.
    pub fn new(max: usize) -> Self {
        Self {
            seen: Default::default(),
            max,
        }
    }

    /// `value` itself, or `other` once `max` distinct values were seen.
    pub fn get(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < self.max {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        "other".to_owned()
    }
}

/// Registers `collector` and hands back the handle.
fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_build_info_and_process_metrics() {
        let m = Metrics::new().unwrap();
        let text = String::from_utf8(m.encode().unwrap()).unwrap();
        assert!(text.contains("promptgauge_build_info{revision="), "{text}");
        assert!(text.contains("process_resident_memory_bytes"));
        assert!(text.contains("# HELP promptgauge_http_requests_in_flight"));
    }

    #[test]
    fn two_instances_do_not_share_state() {
        let a = Metrics::new().unwrap();
        let b = Metrics::new().unwrap();
        a.http.in_flight.inc();
        assert_eq!(a.http.in_flight.get(), 1);
        assert_eq!(b.http.in_flight.get(), 0);
    }
}
