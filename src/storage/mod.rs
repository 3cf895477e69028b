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

mod checkpointer;
mod connection;
mod error;
mod migrations;
mod queries;
mod readers;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::StorageError;
pub use migrations::{MigrationReport, SCHEMA_VERSION};
pub use queries::executions::{NewExecution, Priority};
pub use queries::provider_cache::{CachedResponse, NewCacheEntry};
pub use queries::results::{NewTestResult, ResultCounts};

use crate::metrics::StorageMetrics;
use checkpointer::WalLimits;
use readers::Readers;
use writer::Writer;

/// Operation names: the `operation` label of the storage metrics.
mod op {
    pub(super) const INSERT_RESULTS: &str = "insert_results";
    pub(super) const CREATE_EXECUTION: &str = "create_execution";
    pub(super) const RESULT_COUNTS: &str = "result_counts";
    pub(super) const HEALTH_WRITE: &str = "health_write";
    pub(super) const HEALTH_READ: &str = "health_read";
    pub(super) const OPTIMIZE: &str = "optimize";
    pub(super) const CACHE_GET: &str = "provider_cache_get";
    pub(super) const CACHE_PUT: &str = "provider_cache_put";
    /// Every operation, so their series exist (at zero) from the start.
    pub(super) const ALL: &[&str] = &[
        INSERT_RESULTS,
        CREATE_EXECUTION,
        RESULT_COUNTS,
        HEALTH_WRITE,
        HEALTH_READ,
        OPTIMIZE,
        CACHE_GET,
        CACHE_PUT,
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
}

impl Storage {
    /// Opens (creating if needed) and migrates the database at `path`, runs
    /// `PRAGMA optimize`, starts the writer thread and opens the read pool.
    ///
    /// Refuses, leaving the file untouched, a file that is not a SQLite
    /// database, a database of another application, and a schema newer than
    /// this binary.
    pub fn open(path: &Path, metrics: StorageMetrics) -> Result<Self, StorageError> {
        Self::open_with(path, WalLimits::default(), metrics)
    }

    fn open_with(
        path: &Path,
        limits: WalLimits,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        for operation in op::ALL {
            metrics.preinit(operation);
        }
        let mut conn = connection::open_writer(path)?;
        migrations::migrate(&mut conn, path)?;
        queries::maintenance::optimize(&conn).map_err(|e| connection::open_error(path, e))?;
        let readers = Readers::open(path, connection::reader_count(), metrics.clone())?;
        let writer = Writer::start(conn, path, limits, metrics)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                readers,
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
        self.inner
            .writer
            .call(op::INSERT_RESULTS, move |c| {
                queries::results::insert(c, &rows)
            })
            .await
    }

    /// Creates an execution row and returns its id.
    pub async fn create_execution(&self, new: NewExecution) -> Result<i64, StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::CREATE_EXECUTION, move |c| {
                queries::executions::insert(c, &new, now)
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

    /// Flushes every write sent before this call, then stops and joins the
    /// writer thread. Later writes fail with [`StorageError::Closed`].
    pub async fn close(&self) {
        self.inner.writer.close().await;
    }
}

/// Applies pending migrations to the database at `path` and reports the
/// version, without starting the service.
pub fn migrate(path: &Path) -> Result<MigrationReport, StorageError> {
    let mut conn = connection::open_writer(path)?;
    migrations::migrate(&mut conn, path)
}

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn open_temp() -> (tempfile::TempDir, Storage, Metrics) {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let storage = Storage::open(&dir.path().join("t.db"), metrics.storage.clone()).unwrap();
        (dir, storage, metrics)
    }

    fn rows(execution_id: i64, ids: std::ops::Range<i64>) -> Vec<NewTestResult> {
        ids.map(|id| NewTestResult {
            id: Some(id),
            execution_id,
            provider: "echo".into(),
            model: "echo".into(),
            passed: true,
            score: 1.0,
            execution_time_ms: id,
            created_at: id,
            ..Default::default()
        })
        .collect()
    }

    async fn execution(s: &Storage) -> i64 {
        s.create_execution(NewExecution {
            config: "{}".into(),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_stored_result_id_is_never_stored_twice() {
        let (_d, s, _m) = open_temp();
        let e = execution(&s).await;
        assert_eq!(s.insert_results(rows(e, 1..11)).await.unwrap(), 10);
        assert_eq!(s.insert_results(rows(e, 5..15)).await.unwrap(), 4);
        assert_eq!(s.result_counts(e).await.unwrap().total, 14);
        s.close().await;
    }

    #[tokio::test]
    async fn a_failing_command_is_rolled_back_alone() {
        let (_d, s, m) = open_temp();
        let e = execution(&s).await;
        // Queue good and bad commands together so they can share a batch.
        let good1 = s.insert_results(rows(e, 1..51));
        let bad = s.insert_results(rows(e + 999, 100..150)); // no such execution
        let good2 = s.insert_results(rows(e, 200..250));
        let (g1, b, g2) = tokio::join!(good1, bad, good2);
        assert_eq!(g1.unwrap(), 50);
        assert_eq!(g2.unwrap(), 50);
        let err = b.unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        assert_eq!(s.result_counts(e).await.unwrap().total, 100);
        let errors = m
            .storage
            .query_errors
            .with_label_values(&["insert_results"])
            .get();
        assert_eq!(errors, 1);
        s.close().await;
    }

    #[tokio::test]
    async fn a_panicking_command_does_not_stop_the_writer() {
        let (_d, s, _m) = open_temp();
        let boom = s
            .inner
            .writer
            .call("boom", |_c| -> rusqlite::Result<()> {
                panic!("bug in a write command")
            })
            .await;
        assert!(matches!(
            boom,
            Err(StorageError::Query {
                operation: "boom",
                ..
            })
        ));
        let e = execution(&s).await;
        assert_eq!(s.insert_results(rows(e, 1..3)).await.unwrap(), 2);
        s.close().await;
    }

    #[tokio::test]
    async fn periodic_optimize_analyzes_a_table_that_grew_since_start_up() {
        let (_d, s, _m) = open_temp();
        let e = execution(&s).await;
        for b in 0..20 {
            s.insert_results(rows(e, b * 1000 + 1..(b + 1) * 1000 + 1))
                .await
                .unwrap();
        }
        s.optimize().await.unwrap();
        let analyzed = s
            .inner
            .readers
            .run("test", |c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'test_results'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .await
            .unwrap();
        assert!(analyzed >= 4, "{analyzed}");
        s.close().await;
    }

    #[tokio::test]
    async fn the_wal_stays_bounded_under_non_stop_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let m = Metrics::new().unwrap();
        let limits = WalLimits {
            checkpoint_at_pages: 50,
            limit_pages: 200,
        };
        let s = Storage::open_with(&path, limits, m.storage.clone()).unwrap();
        let e = execution(&s).await;
        let wal = path.with_extension("db-wal");
        let mut largest = 0;
        // About 13 MB of WAL without checkpoints, far past the 1.6 MB limit.
        for b in 0..60 {
            s.insert_results(rows(e, b * 500 + 1..(b + 1) * 500 + 1))
                .await
                .unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        // The limit plus at most one batch's pages (a few hundred of 8 KiB).
        assert!(largest < 4 << 20, "WAL grew to {largest} bytes");
        let checkpoints = m.storage.checkpoint_duration.get_sample_count();
        assert!(
            checkpoints >= 2,
            "background and inline checkpoints ran: {checkpoints}"
        );
        assert_eq!(s.result_counts(e).await.unwrap().total, 30_000);
        s.close().await;
        assert_eq!(
            std::fs::metadata(&wal).map_or(0, |m| m.len()),
            0,
            "truncated at close"
        );
    }

    #[tokio::test]
    async fn close_is_idempotent_and_later_writes_are_refused() {
        let (_d, s, _m) = open_temp();
        s.close().await;
        s.close().await;
        assert!(matches!(s.check_write().await, Err(StorageError::Closed)));
        assert_eq!(s.check_read().await.unwrap(), SCHEMA_VERSION);
    }
}
