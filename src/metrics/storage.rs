//! SQLite families: the writer's batches and commits, reads by operation, size.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use super::{BATCH_SIZE_BUCKETS, SQLITE_BUCKETS, register};

/// Handles for the storage writer and read pool.
#[derive(Clone)]
pub struct StorageMetrics {
    /// `promptgauge_db_query_duration_seconds{operation}`
    pub query_duration: HistogramVec,
    /// `promptgauge_db_queries_total{operation}`
    pub queries: IntCounterVec,
    /// `promptgauge_db_query_errors_total{operation}`
    pub query_errors: IntCounterVec,
    /// `promptgauge_db_writer_batch_size`
    pub writer_batch_size: Histogram,
    /// `promptgauge_db_writer_commit_duration_seconds`
    pub writer_commit_duration: Histogram,
    /// `promptgauge_db_writer_queue_depth`
    pub writer_queue_depth: IntGauge,
    /// `promptgauge_db_size_bytes`
    pub size_bytes: IntGauge,
    /// `promptgauge_db_busy_total`
    pub busy: IntCounter,
    /// `promptgauge_db_wal_size_bytes`
    pub wal_size_bytes: IntGauge,
    /// `promptgauge_db_checkpoint_duration_seconds`
    pub checkpoint_duration: Histogram,
    /// `promptgauge_db_rollup_upkeep_seconds_total`
    pub rollup_upkeep: prometheus::Counter,
}

impl StorageMetrics {
    pub(super) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let by_operation = |name: &str, help: &str| {
            register(
                r,
                IntCounterVec::new(Opts::new(name, help), &["operation"])?,
            )
        };
        Ok(Self {
            query_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "promptgauge_db_query_duration_seconds",
                        "Time to run one storage operation (read on the pool, or write inside the writer's transaction).",
                    )
                    .buckets(SQLITE_BUCKETS.to_vec()),
                    &["operation"],
                )?,
            )?,
            queries: by_operation(
                "promptgauge_db_queries_total",
                "Storage operations run, by operation.",
            )?,
            query_errors: by_operation(
                "promptgauge_db_query_errors_total",
                "Storage operations that failed, by operation.",
            )?,
            writer_batch_size: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_db_writer_batch_size",
                        "Write commands committed together in one writer transaction.",
                    )
                    .buckets(BATCH_SIZE_BUCKETS.to_vec()),
                )?,
            )?,
            rollup_upkeep: register(
                r,
                prometheus::Counter::new(
                    "promptgauge_db_rollup_upkeep_seconds_total",
                    "Time the writer spent folding new results into the rollups and storing them.",
                )?,
            )?,
            writer_commit_duration: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_db_writer_commit_duration_seconds",
                        "Time of one writer transaction, from BEGIN to a durable COMMIT.",
                    )
                    .buckets(SQLITE_BUCKETS.to_vec()),
                )?,
            )?,
            writer_queue_depth: register(
                r,
                IntGauge::new(
                    "promptgauge_db_writer_queue_depth",
                    "Write commands waiting for the writer thread.",
                )?,
            )?,
            size_bytes: register(
                r,
                IntGauge::new(
                    "promptgauge_db_size_bytes",
                    "Size on disk of the database file plus its write-ahead log.",
                )?,
            )?,
            busy: register(
                r,
                IntCounter::new(
                    "promptgauge_db_busy_total",
                    "Storage operations that found the database locked (SQLITE_BUSY) after the busy timeout.",
                )?,
            )?,
            wal_size_bytes: register(
                r,
                IntGauge::new(
                    "promptgauge_db_wal_size_bytes",
                    "Committed data in the write-ahead log after the last commit; grows when checkpoints fall behind the writer.",
                )?,
            )?,
            checkpoint_duration: register(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "promptgauge_db_checkpoint_duration_seconds",
                        "Time to copy write-ahead log pages into the database file, including its fsyncs.",
                    )
                    .buckets(SQLITE_BUCKETS.to_vec()),
                )?,
            )?,
        })
    }

    /// Creates an operation's series at zero so rates exist before it runs.
    pub fn preinit(&self, operation: &str) {
        self.query_duration.with_label_values(&[operation]);
        self.queries.with_label_values(&[operation]);
        self.query_errors.with_label_values(&[operation]);
    }
}
