//! Analytics families: every query timed by kind and source (cache or
//! database), counted, and the slow ones counted apart.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::register;

/// Query latency buckets: a cache hit takes microseconds, a miss
/// milliseconds.
pub const ANALYTICS_BUCKETS: &[f64] = &[
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0,
];

/// The `query` label values.
pub const ANALYTICS_QUERIES: &[&str] = &[
    "realtime",
    "historical",
    "trends",
    "models",
    "execution",
    "cost",
];

/// Handles for analytics.
#[derive(Clone)]
pub struct AnalyticsMetrics {
    /// `promptgauge_analytics_query_duration_seconds{query,source}`
    pub duration: HistogramVec,
    /// `promptgauge_analytics_queries_total{query,source}`
    pub queries: IntCounterVec,
    /// `promptgauge_analytics_slow_queries_total{query}`
    pub slow: IntCounterVec,
}

impl AnalyticsMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_analytics_query_duration_seconds",
                        "Time to answer an analytics query, by kind and source (cache or db).",
                    )
                    .buckets(ANALYTICS_BUCKETS.to_vec()),
                    &["query", "source"],
                )?,
            )?,
            queries: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_analytics_queries_total",
                        "Analytics queries answered, by kind and source (cache or db).",
                    ),
                    &["query", "source"],
                )?,
            )?,
            slow: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_analytics_slow_queries_total",
                        "Analytics queries slower than ANALYTICS_SLOW_QUERY_MS, by kind.",
                    ),
                    &["query"],
                )?,
            )?,
        };
        for q in ANALYTICS_QUERIES {
            for source in ["cache", "db"] {
                m.queries.with_label_values(&[q, source]).reset();
                let _ = m.duration.with_label_values(&[q, source]);
            }
            m.slow.with_label_values(&[q]).reset();
        }
        Ok(m)
    }
}
