//! The `executions` table.

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

/// Scheduling priority of an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Runs before normal and low.
    High,
    /// The default.
    #[default]
    Normal,
    /// Runs when nothing else waits.
    Low,
}

impl Priority {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

/// A new execution, before any job exists.
#[derive(Debug, Clone, Default)]
pub struct NewExecution {
    /// The stored suite it runs, if any (inline suites have none).
    pub suite_id: Option<i64>,
    /// The suite as run, as JSON.
    pub config: String,
    /// Scheduling priority.
    pub priority: Priority,
    /// Its own concurrency ceiling, if set.
    pub max_concurrency: Option<u32>,
    /// Whether cached provider responses may be used.
    pub use_cache: bool,
    /// Number of jobs it expands into.
    pub total: i64,
}

pub(in crate::storage) fn insert(
    conn: &Connection,
    e: &NewExecution,
    now_ms: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO executions (suite_id, config, priority, max_concurrency, use_cache, total, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.suite_id,
        e.config,
        e.priority.as_str(),
        e.max_concurrency,
        e.use_cache,
        e.total,
        now_ms
    ])?;
    Ok(conn.last_insert_rowid())
}
