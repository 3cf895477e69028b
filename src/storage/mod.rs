//! SQLite storage: one writer thread with group commit, a pool of read-only
//! connections, embedded migrations.
//!
//! This is the only module that writes SQL or imports `rusqlite`; nothing of
//! `rusqlite` crosses its boundary. Every write goes through the writer thread
//! ([`writer`]), which runs whatever is waiting in one transaction and
//! answers each caller only after COMMIT. Reads run on read-only connections
//! ([`readers`]) beside it, which WAL allows.
//!
//! `Storage` is a cheap clone; [`Storage::close`] flushes and joins the writer.

mod analytics;
mod benchmarks;
mod checkpointer;
mod connection;
mod error;
mod migrations;
mod monitor;
mod optimize;
mod queries;
mod readers;
pub mod rollup;
mod runs;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

pub use error::StorageError;
/// Bytes SQLite has had allocated at most in this process (page caches,
/// statements, sorting), for memory figures.
pub fn sqlite_memory_peak() -> i64 {
    // SAFETY: a read of SQLite's global counter, thread-safe in its default
    // (serialized) threading mode; 0 means "do not reset".
    unsafe { rusqlite::ffi::sqlite3_memory_highwater(0) }
}

pub use benchmarks::StoredBenchmarkRun;
pub use migrations::{MigrationReport, SCHEMA_VERSION, schema_fingerprint};
pub use optimize::PromptHistory;
pub use queries::analytics::{ExecutionResults, RollupFilter, RollupRow, TestRow};
pub use queries::executions::{
    ExecutionRecord, ExecutionStatus, JobSpec, NewExecution, PendingJob, Priority,
};
pub use queries::monitor::{AlertRow, MonitorSampleRow};
pub use queries::optimize::{NewSuggestion, SuggestionRecord};
pub use queries::provider_cache::{CachedResponse, NewCacheEntry};
pub use queries::reports::{NewReport, ReportRecord};
pub use queries::results::{GroupTotals, NewTestResult, ResultCounts, ResultFilter, ResultRecord};
pub use queries::suites::{NewSuite, NewTestCase, SuiteRecord, TestRows};

use crate::metrics::StorageMetrics;
use checkpointer::WalLimits;
use readers::Readers;
use writer::Writer;

/// Operation names: the `operation` label of the storage metrics.
mod op {
    pub(super) const INSERT_RESULTS: &str = "insert_results";
    pub(super) const CREATE_EXECUTION: &str = "create_execution";
    pub(super) const ADD_JOBS: &str = "add_jobs";
    pub(super) const RESULT_COUNTS: &str = "result_counts";
    pub(super) const HEALTH_WRITE: &str = "health_write";
    pub(super) const HEALTH_READ: &str = "health_read";
    pub(super) const OPTIMIZE: &str = "optimize";
    pub(super) const CACHE_GET: &str = "provider_cache_get";
    pub(super) const CACHE_PUT: &str = "provider_cache_put";
    pub(super) const CREATE_SUITE: &str = "create_suite";
    pub(super) const GET_SUITE: &str = "get_suite";
    pub(super) const LIST_SUITES: &str = "list_suites";
    pub(super) const GET_EXECUTION: &str = "get_execution";
    pub(super) const LIST_EXECUTIONS: &str = "list_executions";
    pub(super) const SET_STATUS: &str = "set_execution_status";
    pub(super) const PENDING_JOBS: &str = "pending_jobs";
    pub(super) const LIST_RESULTS: &str = "list_results";
    pub(super) const EXPORT_RESULTS: &str = "export_results";
    pub(super) const RELEASE_MEMORY: &str = "release_memory";
    pub(super) const ALERT_WRITE: &str = "alert_write";
    pub(super) const ALERT_READ: &str = "alert_read";
    pub(super) const MONITOR_SAMPLES_WRITE: &str = "monitor_samples_write";
    pub(super) const MONITOR_SAMPLES_READ: &str = "monitor_samples_read";
    pub(super) const ROLLUP_READ: &str = "rollup_read";
    pub(super) const ROLLUP_WRITE: &str = "rollup_write";
    pub(super) const RAW_READ: &str = "analytics_raw_read";
    pub(super) const REPORT_WRITE: &str = "report_write";
    pub(super) const REPORT_READ: &str = "report_read";
    pub(super) const SUGGESTION_WRITE: &str = "suggestion_write";
    pub(super) const SUGGESTION_READ: &str = "suggestion_read";
    pub(super) const OPTIMIZE_DATA: &str = "optimize_data_read";
    pub(super) const BENCHMARK_WRITE: &str = "benchmark_write";
    pub(super) const BENCHMARK_READ: &str = "benchmark_read";
    /// Every operation, so their series exist (at zero) from the start.
    pub(super) const ALL: &[&str] = &[
        INSERT_RESULTS,
        CREATE_EXECUTION,
        ADD_JOBS,
        RESULT_COUNTS,
        HEALTH_WRITE,
        HEALTH_READ,
        OPTIMIZE,
        CACHE_GET,
        CACHE_PUT,
        CREATE_SUITE,
        GET_SUITE,
        LIST_SUITES,
        GET_EXECUTION,
        LIST_EXECUTIONS,
        SET_STATUS,
        PENDING_JOBS,
        LIST_RESULTS,
        EXPORT_RESULTS,
        RELEASE_MEMORY,
        ALERT_WRITE,
        ALERT_READ,
        MONITOR_SAMPLES_WRITE,
        MONITOR_SAMPLES_READ,
        ROLLUP_READ,
        ROLLUP_WRITE,
        RAW_READ,
        REPORT_WRITE,
        REPORT_READ,
        SUGGESTION_WRITE,
        SUGGESTION_READ,
        OPTIMIZE_DATA,
        BENCHMARK_WRITE,
        BENCHMARK_READ,
    ];
}

/// Handle to the database. Clones share the writer and the read pool.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Readers,
    /// How long minute rollups are kept, ms.
    minute_retention_ms: AtomicI64,
    /// Whether inserts maintain rollups (off only in the writer benchmark's baseline).
    rollups: AtomicBool,
    metrics: StorageMetrics,
}

/// How long minute rollups are kept by default (`ROLLUP_MINUTE_RETENTION`).
pub const ROLLUP_MINUTE_RETENTION: Duration = Duration::from_secs(48 * 3600);

impl Storage {
    /// Opens (creating if needed) and migrates the database at `path`, runs
    /// `PRAGMA optimize`, starts the writer thread and opens the read pool.
    ///
    /// Refuses, leaving the file untouched, a file that is not a SQLite
    /// database, a database of another application, and a schema newer than
    /// this binary.
    pub fn open(path: &Path, metrics: StorageMetrics) -> Result<Self, StorageError> {
        Self::open_with(
            path,
            WalLimits::default(),
            connection::BUSY_TIMEOUT,
            metrics,
        )
    }

    /// [`Storage::open`] with writes that wait up to `busy_timeout` for a
    /// lock another process holds before they fail with
    /// [`StorageError::Busy`].
    pub fn open_with_busy_timeout(
        path: &Path,
        busy_timeout: Duration,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        Self::open_with(path, WalLimits::default(), busy_timeout, metrics)
    }

    fn open_with(
        path: &Path,
        limits: WalLimits,
        busy_timeout: Duration,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        for operation in op::ALL {
            metrics.preinit(operation);
        }
        let mut conn = connection::open_writer(path, busy_timeout)?;
        migrations::migrate(&mut conn, path)?;
        queries::maintenance::optimize(&conn).map_err(|e| connection::open_error(path, e))?;
        let readers = Readers::open(path, connection::reader_count(), metrics.clone())?;
        let metrics_handle = metrics.clone();
        let writer = Writer::start(conn, path, limits, metrics)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                readers,
                minute_retention_ms: AtomicI64::new(ROLLUP_MINUTE_RETENTION.as_millis() as i64),
                rollups: AtomicBool::new(true),
                metrics: metrics_handle,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores graded results; a row whose id is already stored is skipped, so
    /// a re-run job cannot store twice. Returns the number of rows inserted.
    ///
    /// Send rows in batches: throughput is set by rows per transaction
    /// (BENCHMARKS.md: 5,000-row calls from four producers, 75k rows/s into
    /// an empty table).
    pub async fn insert_results(&self, rows: Vec<NewTestResult>) -> Result<usize, StorageError> {
        self.insert_results_shared(Arc::new(rows)).await
    }

    /// [`Storage::insert_results`] for rows the caller keeps (to retry).
    pub async fn insert_results_shared(
        &self,
        rows: Arc<Vec<NewTestResult>>,
    ) -> Result<usize, StorageError> {
        let rollups = self.inner.rollups.load(Ordering::Relaxed).then(|| {
            rollup::Rollups::since(
                now_ms() - self.inner.minute_retention_ms.load(Ordering::Relaxed),
            )
        });
        let upkeep = self.inner.metrics.rollup_upkeep.clone();
        self.inner
            .writer
            .call(op::INSERT_RESULTS, move |c| {
                queries::results::insert(c, &rows, rollups.clone(), &upkeep)
            })
            .await
    }

    /// Result totals of one execution.
    pub async fn result_counts(&self, execution_id: i64) -> Result<ResultCounts, StorageError> {
        self.inner
            .readers
            .run(op::RESULT_COUNTS, move |c| {
                queries::results::counts(c, execution_id)
            })
            .await
    }

    /// How many results are stored in all.
    pub async fn count_results(&self) -> Result<i64, StorageError> {
        self.inner
            .readers
            .run(op::RESULT_COUNTS, |c| {
                c.query_row("SELECT count(*) FROM test_results", [], |r| r.get(0))
            })
            .await
    }

    /// Proves the database takes writes: one small durable write through the
    /// writer, answered after COMMIT.
    pub async fn check_write(&self) -> Result<(), StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::HEALTH_WRITE, move |c| queries::meta::heartbeat(c, now))
            .await
    }

    /// Proves the read pool answers; returns the schema version it sees.
    pub async fn check_read(&self) -> Result<i64, StorageError> {
        self.inner
            .readers
            .run(op::HEALTH_READ, queries::meta::schema_version)
            .await
    }

    /// The cached response for `key`, unless it expired. A stored entry that
    /// no longer parses counts as a miss.
    pub async fn cache_get(&self, key: String) -> Result<Option<CachedResponse>, StorageError> {
        let now = now_ms();
        let raw = self
            .inner
            .readers
            .run(op::CACHE_GET, move |c| {
                queries::provider_cache::get(c, &key, now)
            })
            .await?;
        Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores (or replaces) a successful response.
    pub async fn cache_put(&self, entry: NewCacheEntry) -> Result<(), StorageError> {
        let now = now_ms();
        let json = serde_json::to_string(&entry.response).map_err(|e| StorageError::Query {
            operation: op::CACHE_PUT,
            message: e.to_string(),
        })?;
        self.inner
            .writer
            .call(op::CACHE_PUT, move |c| {
                queries::provider_cache::put(c, &entry, &json, now)
            })
            .await
    }

    /// Refreshes planner statistics where tables changed enough to matter
    /// (`PRAGMA optimize`); cheap when nothing changed.
    pub async fn optimize(&self) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::OPTIMIZE, queries::maintenance::optimize)
            .await
    }

    /// Frees the writer's page cache (up to 128 MiB) after a bulk write
    /// (a large suite stored, a large execution ended): it refills from
    /// the OS page cache when writes need it again.
    pub async fn release_memory(&self) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::RELEASE_MEMORY, |c| {
                c.execute_batch("PRAGMA shrink_memory")
            })
            .await
    }

    /// Flushes every write sent before this call, then stops and joins the
    /// writer thread. Later writes fail with [`StorageError::Closed`].
    pub async fn close(&self) {
        self.inner.writer.close().await;
    }
}

/// Applies pending migrations to the database at `path` and reports the
/// version, without starting the service.
pub fn migrate(path: &Path) -> Result<MigrationReport, StorageError> {
    let mut conn = connection::open_writer(path, connection::BUSY_TIMEOUT)?;
    migrations::migrate(&mut conn, path)
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
