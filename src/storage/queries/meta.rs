//! `service_meta` and schema facts, used by the health check.

use rusqlite::{Connection, params};

/// Records the time of the last write check; a real, durable write.
pub(in crate::storage) fn heartbeat(conn: &Connection, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO service_meta (key, value, updated_at) VALUES ('health_write', ?1, ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )?
    .execute(params![now_ms])?;
    Ok(())
}

/// The schema version as a reader sees it.
pub(in crate::storage) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}
