//! Storage methods for analytics: rollup reads and upkeep (retention,
//! rebuild), raw-row sums for window edges, per-execution breakdowns.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::queries::analytics::{self as q, ExecutionResults, RollupFilter, RollupRow};
use super::queries::reports::{NewReport, ReportRecord};
use super::{Storage, StorageError, now_ms, op, rollup};

impl Storage {
    /// Rollup rows of tier `resolution_s` (60 or 3600) with buckets in [from, to).
    pub async fn rollup_rows(
        &self,
        resolution_s: i64,
        from: i64,
        to: i64,
        filter: RollupFilter,
    ) -> Result<Vec<RollupRow>, StorageError> {
        self.inner
            .readers
            .run(op::ROLLUP_READ, move |c| {
                q::rollup_rows(c, resolution_s, from, to, &filter)
            })
            .await
    }

    /// Raw results in [from, to) summed like rollup rows, per suite,
    /// provider and model (the partial buckets at a window's edges).
    pub async fn raw_rollup(
        &self,
        from: i64,
        to: i64,
        filter: RollupFilter,
    ) -> Result<Vec<RollupRow>, StorageError> {
        self.inner
            .readers
            .run(op::RAW_READ, move |c| q::raw_rows(c, from, to, &filter))
            .await
    }

    /// ("provider/model", latency) of the results in [from, to), or `None`
    /// if there are more than `limit`.
    pub async fn raw_latencies(
        &self,
        from: i64,
        to: i64,
        filter: RollupFilter,
        limit: usize,
    ) -> Result<Option<Vec<(String, i64)>>, StorageError> {
        self.inner
            .readers
            .run(op::RAW_READ, move |c| {
                q::raw_latencies(c, from, to, &filter, limit)
            })
            .await
    }

    /// Execution `id`'s results per test and per model, and their latencies.
    pub async fn execution_tests(&self, id: i64) -> Result<ExecutionResults, StorageError> {
        self.inner
            .readers
            .run(op::RAW_READ, move |c| q::execution_tests(c, id))
            .await
    }

    /// The latest completed execution of `suite_id` before execution `id`.
    pub async fn previous_execution(
        &self,
        suite_id: i64,
        id: i64,
    ) -> Result<Option<i64>, StorageError> {
        self.inner
            .readers
            .run(op::GET_EXECUTION, move |c| {
                super::queries::reports::previous_execution(c, suite_id, id)
            })
            .await
    }

    /// Stores a report; returns its id.
    pub async fn insert_report(&self, report: NewReport) -> Result<i64, StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::REPORT_WRITE, move |c| {
                super::queries::reports::insert(c, &report, now)
            })
            .await
    }

    /// Records the rendered size of a stored report, or the error that stopped
    /// its rendering (the report is then `failed`).
    pub async fn finish_report(
        &self,
        id: i64,
        rendered: Result<i64, String>,
    ) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::REPORT_WRITE, move |c| {
                super::queries::reports::finish(
                    c,
                    id,
                    rendered.as_ref().map(|s| *s).map_err(|e| e.as_str()),
                )
            })
            .await
    }

    /// A stored report and its data (JSON).
    pub async fn get_report(
        &self,
        id: i64,
    ) -> Result<Option<(ReportRecord, String)>, StorageError> {
        self.inner
            .readers
            .run(op::REPORT_READ, move |c| {
                super::queries::reports::get(c, id)
            })
            .await
    }

    /// Stored reports, newest first, and how many there are.
    pub async fn list_reports(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ReportRecord>, i64), StorageError> {
        self.inner
            .readers
            .run(op::REPORT_READ, move |c| {
                super::queries::reports::list(c, limit, offset)
            })
            .await
    }

    /// Stored suites' names by id.
    pub async fn suite_names(&self) -> Result<Vec<(i64, String)>, StorageError> {
        self.inner
            .readers
            .run(op::LIST_SUITES, q::suite_names)
            .await
    }

    /// How long minute rollups are kept (`ROLLUP_MINUTE_RETENTION`).
    pub fn set_minute_retention(&self, retention: Duration) {
        self.inner
            .minute_retention_ms
            .store(retention.as_millis() as i64, Ordering::Relaxed);
    }

    /// The minute rollups' retention.
    pub fn minute_retention(&self) -> Duration {
        Duration::from_millis(self.inner.minute_retention_ms.load(Ordering::Relaxed) as u64)
    }

    /// Stops maintaining rollups on insert: only for measuring what their
    /// upkeep costs the writer (`benches/writer.rs`).
    pub fn disable_rollups(&self) {
        self.inner.rollups.store(false, Ordering::Relaxed);
    }

    /// Drops minute rollups older than the retention; returns how many.
    pub async fn compact_rollups(&self) -> Result<usize, StorageError> {
        let before = now_ms() - self.minute_retention().as_millis() as i64;
        self.inner
            .writer
            .call(op::ROLLUP_WRITE, move |c| rollup::compact(c, before))
            .await
    }

    /// Recomputes every rollup from the raw results in one transaction
    /// (minute rows for the retention); returns the rows written.
    pub async fn rebuild_rollups(&self) -> Result<usize, StorageError> {
        let since = now_ms() - self.minute_retention().as_millis() as i64;
        self.inner
            .writer
            .call(op::ROLLUP_WRITE, move |c| rollup::rebuild(c, since))
            .await
    }
}
