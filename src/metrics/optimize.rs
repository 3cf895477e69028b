//! Prompt optimization families: analyses by source, each strategy's time,
//! suggestions made, candidates verified.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::register;

/// Strategy latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// The `strategy` label values (`analysis` and `total` time the whole).
pub(super) const STRATEGIES: &[&str] = &[
    "analysis",
    "conciseness",
    "structure",
    "few_shot",
    "model_selection",
    "failure_focus",
    "caching",
    "llm_rewrite",
    "total",
];

/// Handles for prompt optimization.
#[derive(Clone)]
pub struct OptimizeMetrics {
    /// `promptgauge_optimization_requests_total{source}`: cache or computed.
    pub requests: IntCounterVec,
    /// `promptgauge_optimization_duration_seconds{strategy}`
    pub duration: HistogramVec,
    /// `promptgauge_optimization_suggestions_total{strategy}`
    pub suggestions: IntCounterVec,
    /// `promptgauge_optimization_verifications_total{status}`: started, refused.
    pub verifications: IntCounterVec,
}

impl OptimizeMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            requests: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_optimization_requests_total",
                        "Prompt analyses answered, by source (cache, computed).",
                    ),
                    &["source"],
                )?,
            )?,
            duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_optimization_duration_seconds",
                        "Time of the prompt analysis, of each strategy, and of the whole (total) on a cache miss.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["strategy"],
                )?,
            )?,
            suggestions: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_optimization_suggestions_total",
                        "Suggestions made, by strategy.",
                    ),
                    &["strategy"],
                )?,
            )?,
            verifications: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_optimization_verifications_total",
                        "Candidate verifications, by outcome (started, refused).",
                    ),
                    &["status"],
                )?,
            )?,
        };
        for s in STRATEGIES {
            let _ = m.duration.with_label_values(&[s]);
            if !matches!(*s, "analysis" | "total") {
                m.suggestions.with_label_values(&[s]).reset();
            }
        }
        for source in ["cache", "computed"] {
            m.requests.with_label_values(&[source]).reset();
        }
        for status in ["started", "refused"] {
            m.verifications.with_label_values(&[status]).reset();
        }
        Ok(m)
    }
}
