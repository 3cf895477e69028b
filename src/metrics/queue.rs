//! Test queue families: backlog, waits, in-flight work, adaptive limits,
//! outcomes, retries and circuit breakers.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::{BoundedLabels, PROVIDER_BUCKETS, register};

/// Queue wait buckets: from instant to half an hour.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Handles for the test queue.
#[derive(Clone)]
pub struct QueueMetrics {
    /// `promptgauge_test_queue_length`
    pub queue_length: IntGauge,
    /// `promptgauge_test_queue_wait_seconds`
    pub queue_wait: Histogram,
    /// `promptgauge_tests_in_flight`
    pub in_flight: IntGauge,
    /// `promptgauge_test_concurrency_limit{provider}`
    pub concurrency_limit: IntGaugeVec,
    /// `promptgauge_test_runs_total{status}`
    pub runs: IntCounterVec,
    /// `promptgauge_test_run_duration_seconds`
    pub run_duration: Histogram,
    /// `promptgauge_test_retries_total{provider,reason}`
    pub retries: IntCounterVec,
    /// `promptgauge_provider_circuit_open{provider}`
    pub circuit_open: IntGaugeVec,
    /// `promptgauge_executions_running`
    pub executions_running: IntGauge,
    /// Bounds the `provider` label.
    pub providers: BoundedLabels,
}

impl QueueMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            queue_length: register(
                r,
                IntGauge::new(
                    "promptgauge_test_queue_length",
                    "Jobs waiting to start, across executions.",
                )?,
            )?,
            queue_wait: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_test_queue_wait_seconds",
                        "Time a job waited between being queued and starting.",
                    )
                    .buckets(WAIT_BUCKETS.to_vec()),
                )?,
            )?,
            in_flight: register(
                r,
                IntGauge::new(
                    "promptgauge_tests_in_flight",
                    "Jobs running now (calling a provider or backing off).",
                )?,
            )?,
            concurrency_limit: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "promptgauge_test_concurrency_limit",
                        "Current adaptive concurrency limit per provider.",
                    ),
                    &["provider"],
                )?,
            )?,
            runs: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_test_runs_total",
                        "Finished jobs by provider, model and outcome: passed, failed, error, cancelled.",
                    ),
                    &["provider", "model", "status"],
                )?,
            )?,
            run_duration: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_test_run_duration_seconds",
                        "Time from a job's start to its graded result, retries included.",
                    )
                    .buckets(PROVIDER_BUCKETS.to_vec()),
                )?,
            )?,
            retries: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "promptgauge_test_retries_total",
                        "Provider calls retried, by provider and reason.",
                    ),
                    &["provider", "reason"],
                )?,
            )?,
            circuit_open: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "promptgauge_provider_circuit_open",
                        "1 while a provider's circuit breaker is open.",
                    ),
                    &["provider"],
                )?,
            )?,
            executions_running: register(
                r,
                IntGauge::new(
                    "promptgauge_executions_running",
                    "Executions with jobs left to run.",
                )?,
            )?,
            providers: BoundedLabels::new(64),
        };
        Ok(m)
    }
}
