//! `benchmark_runs`: each benchmark run (its results as JSON), and which
//! run is the baseline of its scenario on its machine class.

use rusqlite::{Connection, OptionalExtension, params};

/// A stored run: (id, results JSON, is baseline).
pub(in crate::storage) type StoredRun = (i64, String, bool);

pub(in crate::storage) fn insert(
    conn: &Connection,
    name: &str,
    scenario: &str,
    revision: &str,
    machine: &str,
    results: &str,
    started_at: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO benchmark_runs (name, scenario, revision, machine, results, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        name, scenario, revision, machine, results, started_at
    ])?;
    Ok(conn.last_insert_rowid())
}

pub(in crate::storage) fn finish(
    conn: &Connection,
    id: i64,
    results: &str,
    duration_ms: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE benchmark_runs SET results = ?2, duration_ms = ?3 WHERE id = ?1")?
        .execute(params![id, results, duration_ms])?;
    Ok(())
}

/// Makes run `id` the only baseline of its scenario on its machine class.
pub(in crate::storage) fn set_baseline(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE benchmark_runs SET is_baseline = 0
         WHERE is_baseline = 1
           AND name = (SELECT name FROM benchmark_runs WHERE id = ?1)
           AND json_extract(machine, '$.class') =
               (SELECT json_extract(machine, '$.class') FROM benchmark_runs WHERE id = ?1)",
    )?
    .execute([id])?;
    conn.prepare_cached("UPDATE benchmark_runs SET is_baseline = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRun> {
    Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? == 1))
}

pub(in crate::storage) fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<StoredRun>> {
    conn.prepare_cached("SELECT id, results, is_baseline FROM benchmark_runs WHERE id = ?1")?
        .query_row([id], stored)
        .optional()
}

/// The newest run, optionally of one scenario.
pub(in crate::storage) fn latest(
    conn: &Connection,
    name: Option<&str>,
) -> rusqlite::Result<Option<StoredRun>> {
    conn.prepare_cached(
        "SELECT id, results, is_baseline FROM benchmark_runs
         WHERE ?1 IS NULL OR name = ?1 ORDER BY id DESC LIMIT 1",
    )?
    .query_row([name], stored)
    .optional()
}

/// The baseline of scenario `name` on machine class `class`.
pub(in crate::storage) fn baseline(
    conn: &Connection,
    name: &str,
    class: &str,
) -> rusqlite::Result<Option<StoredRun>> {
    conn.prepare_cached(
        "SELECT id, results, is_baseline FROM benchmark_runs
         WHERE is_baseline = 1 AND name = ?1 AND json_extract(machine, '$.class') = ?2
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row([name, class], stored)
    .optional()
}
