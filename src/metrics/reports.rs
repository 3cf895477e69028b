//! Report families: reports made by kind, format and outcome, their time,
//! and each section's.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::register;

/// Report and section latency buckets.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The `kind` label values.
pub const REPORT_KINDS: &[&str] = &[
    "execution",
    "model-comparison",
    "cost",
    "trend",
    "performance",
];

/// Handles for reports.
#[derive(Clone)]
pub struct ReportMetrics {
    /// `promptgauge_reports_generated_total{kind,format,status}`
    pub generated: IntCounterVec,
    /// `promptgauge_report_generation_duration_seconds{kind}`
    pub duration: HistogramVec,
    /// `promptgauge_report_section_duration_seconds{section}`
    pub sections: HistogramVec,
}

impl ReportMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            generated: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_reports_generated_total",
                        "Reports made, by kind, format and outcome (ok, error).",
                    ),
                    &["kind", "format", "status"],
                )?,
            )?,
            duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_report_generation_duration_seconds",
                        "Time to make a report (data, sections, rendering, storing), by kind.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["kind"],
                )?,
            )?,
            sections: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_report_section_duration_seconds",
                        "Time to build one report section, by section.",
                    )
                    .buckets(BUCKETS.to_vec()),
                    &["section"],
                )?,
            )?,
        };
        for kind in REPORT_KINDS {
            for format in ["json", "md", "html", "csv"] {
                m.generated.with_label_values(&[kind, format, "ok"]).reset();
            }
            let _ = m.duration.with_label_values(&[kind]);
        }
        Ok(m)
    }
}
