//! Storage methods for the performance monitor.

use super::queries::monitor::{self, AlertRow, MonitorSampleRow};
use super::{Storage, StorageError, op};

impl Storage {
    /// Stores a new alert episode; returns its id.
    pub async fn insert_alert(&self, alert: AlertRow) -> Result<i64, StorageError> {
        self.inner
            .writer
            .call(op::ALERT_WRITE, move |c| monitor::insert_alert(c, &alert))
            .await
    }

    /// Updates an episode's value and peak; with `resolved_at`, ends it.
    pub async fn update_alert(
        &self,
        id: i64,
        value: f64,
        peak: f64,
        description: Option<String>,
        resolved_at: Option<i64>,
    ) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::ALERT_WRITE, move |c| {
                monitor::update_alert(c, id, value, peak, description.as_deref(), resolved_at)
                    .map(|_| ())
            })
            .await
    }

    /// Episodes not yet resolved (to restore after a restart).
    pub async fn active_alerts(&self) -> Result<Vec<AlertRow>, StorageError> {
        self.inner
            .readers
            .run(op::ALERT_READ, monitor::active_alerts)
            .await
    }

    /// Resolved episodes that ended at or after `since` (unix ms), newest first.
    pub async fn resolved_alerts(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StorageError> {
        self.inner
            .readers
            .run(op::ALERT_READ, move |c| {
                monitor::resolved_alerts(c, since, limit)
            })
            .await
    }

    /// Stores downsampled points (replacing any with the same key).
    pub async fn insert_monitor_samples(
        &self,
        rows: Vec<MonitorSampleRow>,
    ) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::MONITOR_SAMPLES_WRITE, move |c| {
                monitor::insert_samples(c, &rows)
            })
            .await
    }

    /// Points of `metric` at `resolution_s` since `since` (unix ms).
    pub async fn monitor_samples(
        &self,
        metric: String,
        resolution_s: i64,
        since: i64,
    ) -> Result<Vec<MonitorSampleRow>, StorageError> {
        self.inner
            .readers
            .run(op::MONITOR_SAMPLES_READ, move |c| {
                monitor::samples(c, &metric, resolution_s, since)
            })
            .await
    }

    /// Deletes points older than `before` (unix ms).
    pub async fn prune_monitor_samples(&self, before: i64) -> Result<usize, StorageError> {
        self.inner
            .writer
            .call(op::MONITOR_SAMPLES_WRITE, move |c| {
                monitor::prune_samples(c, before)
            })
            .await
    }
}
