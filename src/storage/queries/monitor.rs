//! The monitor's tables: alert episodes (active and history) and the
//! downsampled history of its signals.

use rusqlite::{Connection, Row, params};

/// One alert episode as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    /// Its id (ignored on insert).
    pub id: i64,
    /// e.g. `PromptgaugeHighCpuUsage`.
    pub alertname: String,
    /// The signal watched.
    pub signal: String,
    /// `warning` or `critical`.
    pub severity: String,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    /// The level breached.
    pub threshold: f64,
    /// The latest value.
    pub value: f64,
    /// The worst value of the episode.
    pub peak_value: f64,
    /// Labels, as a JSON object.
    pub labels: String,
    /// A sentence for people.
    pub description: Option<String>,
    /// When the breach began, unix ms.
    pub started_at: i64,
    /// When it began firing, unix ms.
    pub fired_at: Option<i64>,
    /// When it resolved, unix ms.
    pub resolved_at: Option<i64>,
}

/// One downsampled point of a monitor signal.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSampleRow {
    /// The signal, e.g. `cpu_usage_ratio`.
    pub metric: String,
    /// Seconds each point covers.
    pub resolution_s: i64,
    /// Start of the period, unix ms.
    pub ts: i64,
    /// Mean over the period.
    pub value: f64,
    /// Lowest sample of the period.
    pub min: f64,
    /// Highest sample of the period.
    pub max: f64,
}

pub(in crate::storage) fn insert_alert(c: &Connection, a: &AlertRow) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO alerts (alertname, signal, severity, state, threshold, value, peak_value,
                             labels, description, started_at, fired_at, resolved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        a.alertname,
        a.signal,
        a.severity,
        a.state,
        a.threshold,
        a.value,
        a.peak_value,
        a.labels,
        a.description,
        a.started_at,
        a.fired_at,
        a.resolved_at
    ])?;
    Ok(c.last_insert_rowid())
}

/// Records the end of an episode (or, without `resolved_at`, its latest
/// value and peak while it fires).
pub(in crate::storage) fn update_alert(
    c: &Connection,
    id: i64,
    value: f64,
    peak: f64,
    description: Option<&str>,
    resolved_at: Option<i64>,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE alerts SET value = ?2, peak_value = max(peak_value, ?3),
                description = coalesce(?4, description),
                state = CASE WHEN ?5 IS NULL THEN state ELSE 'resolved' END,
                resolved_at = coalesce(?5, resolved_at)
         WHERE id = ?1",
    )?
    .execute(params![id, value, peak, description, resolved_at])
}

const ALERT_COLUMNS: &str = "id, alertname, signal, severity, state, threshold, value, peak_value,
    labels, description, started_at, fired_at, resolved_at";

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        alertname: r.get(1)?,
        signal: r.get(2)?,
        severity: r.get(3)?,
        state: r.get(4)?,
        threshold: r.get(5)?,
        value: r.get(6)?,
        peak_value: r.get(7)?,
        labels: r.get(8)?,
        description: r.get(9)?,
        started_at: r.get(10)?,
        fired_at: r.get(11)?,
        resolved_at: r.get(12)?,
    })
}

/// Episodes not yet resolved.
pub(in crate::storage) fn active_alerts(c: &Connection) -> rusqlite::Result<Vec<AlertRow>> {
    c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE state <> 'resolved' ORDER BY started_at"
    ))?
    .query_map([], alert_row)?
    .collect()
}

/// Resolved episodes that ended at or after `since`, newest first.
pub(in crate::storage) fn resolved_alerts(
    c: &Connection,
    since: i64,
    limit: i64,
) -> rusqlite::Result<Vec<AlertRow>> {
    c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts
         WHERE state = 'resolved' AND resolved_at >= ?1
         ORDER BY resolved_at DESC LIMIT ?2"
    ))?
    .query_map(params![since, limit], alert_row)?
    .collect()
}

pub(in crate::storage) fn insert_samples(
    c: &Connection,
    rows: &[MonitorSampleRow],
) -> rusqlite::Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT OR REPLACE INTO monitor_samples (metric, resolution_s, ts, value, min, max)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in rows {
        stmt.execute(params![
            r.metric,
            r.resolution_s,
            r.ts,
            r.value,
            r.min,
            r.max
        ])?;
    }
    Ok(())
}

/// Points of `metric` at `resolution_s` from `since` on, oldest first.
pub(in crate::storage) fn samples(
    c: &Connection,
    metric: &str,
    resolution_s: i64,
    since: i64,
) -> rusqlite::Result<Vec<MonitorSampleRow>> {
    c.prepare_cached(
        "SELECT metric, resolution_s, ts, value, min, max FROM monitor_samples
         WHERE metric = ?1 AND resolution_s = ?2 AND ts >= ?3 ORDER BY ts",
    )?
    .query_map(params![metric, resolution_s, since], |r| {
        Ok(MonitorSampleRow {
            metric: r.get(0)?,
            resolution_s: r.get(1)?,
            ts: r.get(2)?,
            value: r.get(3)?,
            min: r.get(4)?,
            max: r.get(5)?,
        })
    })?
    .collect()
}

/// Deletes points older than `before`; returns how many.
pub(in crate::storage) fn prune_samples(c: &Connection, before: i64) -> rusqlite::Result<usize> {
    c.prepare_cached("DELETE FROM monitor_samples WHERE ts < ?1")?
        .execute(params![before])
}
