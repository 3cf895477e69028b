//! Planner statistics.
//!
//! Without `sqlite_stat1` SQLite guesses, and for time-window queries over
//! test_results it guesses a full index scan (about 170x slower on a day's
//! window). `PRAGMA optimize` with 0x10000 checks every table and re-runs
//! ANALYZE (bounded by `analysis_limit`) where the row count moved enough
//! since the last one, so running it often is cheap.

use rusqlite::Connection;

pub(in crate::storage) fn optimize(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA optimize = 0x10002")
}
