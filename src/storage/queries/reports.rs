//! Stored reports: their data (JSON), parameters, format, size and timings.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A report to store.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Its kind.
    pub kind: String,
    /// Its parameters, JSON.
    pub params: String,
    /// The format it was asked in.
    pub format: String,
    /// Its data, JSON.
    pub data: String,
    /// Section timings, JSON.
    pub timings: String,
    /// Time to make it, ms.
    pub duration_ms: i64,
}

/// A stored report, without its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRecord {
    /// Id.
    pub id: i64,
    /// Kind.
    pub kind: String,
    /// Parameters (JSON).
    #[serde(skip)]
    pub params: String,
    /// The format first asked for.
    pub format: String,
    /// `pending` while it renders, then `completed` or `failed`.
    pub status: String,
    /// Why rendering failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes of that document.
    pub size_bytes: i64,
    /// Time to make it, ms.
    pub duration_ms: Option<i64>,
    /// When, unix ms.
    pub created_at: i64,
}

pub(in crate::storage) fn insert(
    conn: &Connection,
    r: &NewReport,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO reports (kind, params, status, data, timings, created_at, duration_ms, format)
         VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.kind,
        r.params,
        r.data,
        r.timings,
        now,
        r.duration_ms,
        r.format
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Records the size of the rendered document, or why it could not be rendered.
pub(in crate::storage) fn finish(
    conn: &Connection,
    id: i64,
    rendered: Result<i64, &str>,
) -> rusqlite::Result<()> {
    let (status, size, error) = match rendered {
        Ok(size) => ("completed", size, None),
        Err(e) => ("failed", 0, Some(e)),
    };
    conn.prepare_cached(
        "UPDATE reports SET status = ?2, size_bytes = ?3, error = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status, size, error])?;
    Ok(())
}

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRecord> {
    Ok(ReportRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        params: r.get(2)?,
        format: r.get(3)?,
        status: r.get(4)?,
        error: r.get(5)?,
        size_bytes: r.get(6)?,
        duration_ms: r.get(7)?,
        created_at: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, kind, params, format, status, error, size_bytes, duration_ms, created_at";

/// One report with its data.
pub(in crate::storage) fn get(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<Option<(ReportRecord, String)>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, data FROM reports WHERE id = ?1"
    ))?
    .query_row([id], |r| {
        Ok((
            record(r)?,
            r.get::<_, Option<String>>(9)?.unwrap_or_default(),
        ))
    })
    .optional()
}

/// Reports, newest first, and how many there are.
pub(in crate::storage) fn list(
    conn: &Connection,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<ReportRecord>, i64)> {
    let total = conn
        .prepare_cached("SELECT count(*) FROM reports")?
        .query_row([], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM reports ORDER BY id DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map([limit, offset], record)?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// The latest completed execution of `suite_id` before `id`.
pub(in crate::storage) fn previous_execution(
    conn: &Connection,
    suite_id: i64,
    id: i64,
) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(
        "SELECT id FROM executions WHERE suite_id = ?1 AND id < ?2 AND status = 'completed'
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row([suite_id, id], |r| r.get(0))
    .optional()
}
