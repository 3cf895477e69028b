//! `executions` and their `jobs`.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Scheduling priority of an execution.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
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

    /// Parses a stored or API name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "high" => Some(Priority::High),
            "normal" => Some(Priority::Normal),
            "low" => Some(Priority::Low),
            _ => None,
        }
    }
}

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Created, jobs not started.
    Pending,
    /// Jobs running.
    Running,
    /// Every job has a result.
    Completed,
    /// Stopped by an error outside the jobs.
    Failed,
    /// Cancelled; finished results kept.
    Cancelled,
}

impl ExecutionStatus {
    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Completed => "completed",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or API name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether nothing more will run.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
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

/// One job: which prompt, provider and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    /// Index into the suite's prompts.
    pub prompt_idx: u32,
    /// Index into the suite's providers.
    pub provider_idx: u32,
    /// Index into the suite's (expanded) tests.
    pub test_idx: u32,
}

/// A job that has no result yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingJob {
    /// Job id (and the id its result will have).
    pub id: i64,
    /// What to run.
    pub spec: JobSpec,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    /// Id.
    pub id: i64,
    /// The stored suite, if any.
    pub suite_id: Option<i64>,
    /// Where it is.
    pub status: ExecutionStatus,
    /// Scheduling priority.
    pub priority: Priority,
    /// Concurrency ceiling, if set.
    pub max_concurrency: Option<u32>,
    /// Whether the response cache may be used.
    pub use_cache: bool,
    /// Jobs in all.
    pub total: i64,
    /// Results that passed.
    pub passed: i64,
    /// Results that failed an assertion.
    pub failed: i64,
    /// Results whose provider call failed.
    pub errors: i64,
    /// Money spent, US dollars.
    pub cost_usd: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Created, unix ms.
    pub created_at: i64,
    /// First job started, unix ms.
    pub started_at: Option<i64>,
    /// Finished, unix ms.
    pub finished_at: Option<i64>,
    /// Its jobs and results have ids `first_job_id .. first_job_id + total`.
    #[serde(skip)]
    pub first_job_id: i64,
}

/// Inserts an execution and reserves ids `first..first+total` for its
/// jobs (a result's id is its job's), past every id any execution holds
/// or has reserved, so executions created while this one's jobs are still
/// being stored never take its ids.
pub(in crate::storage) fn insert(
    conn: &Connection,
    e: &NewExecution,
    now: i64,
) -> rusqlite::Result<(i64, i64)> {
    let first: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(id) FROM jobs), 0),
                    coalesce((SELECT max(id) FROM test_results), 0),
                    coalesce((SELECT max(first_job_id + total - 1) FROM executions), 0)) + 1",
        [],
        |r| r.get(0),
    )?;
    conn.prepare_cached(
        "INSERT INTO executions (suite_id, config, priority, max_concurrency, use_cache, total, created_at, first_job_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![e.suite_id, e.config, e.priority.as_str(), e.max_concurrency, e.use_cache, e.total, now, first])?;
    Ok((conn.last_insert_rowid(), first))
}

/// Stores jobs of `execution` with ids from `first`.
pub(in crate::storage) fn insert_jobs(
    conn: &Connection,
    execution: i64,
    first: i64,
    jobs: &[JobSpec],
    now: i64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO jobs (id, execution_id, prompt_idx, provider_idx, test_idx, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    for (i, j) in jobs.iter().enumerate() {
        stmt.execute(params![
            first + i as i64,
            execution,
            j.prompt_idx,
            j.provider_idx,
            j.test_idx,
            now
        ])?;
    }
    Ok(())
}

/// How many jobs of `execution` are stored.
pub(in crate::storage) fn job_count(conn: &Connection, execution: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM jobs WHERE execution_id = ?1")?
        .query_row(params![execution], |r| r.get(0))
}

const COLUMNS: &str =
    "id, suite_id, status, priority, max_concurrency, use_cache, total, passed, failed,
    errors, cost_usd, error, created_at, started_at, finished_at, coalesce(first_job_id, 0)";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRecord> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(ExecutionRecord {
        id: r.get(0)?,
        suite_id: r.get(1)?,
        status: ExecutionStatus::parse(&text(2)?).unwrap_or(ExecutionStatus::Failed),
        priority: Priority::parse(&text(3)?).unwrap_or_default(),
        max_concurrency: r.get(4)?,
        use_cache: r.get(5)?,
        total: r.get(6)?,
        passed: r.get(7)?,
        failed: r.get(8)?,
        errors: r.get(9)?,
        cost_usd: r.get(10)?,
        error: r.get(11)?,
        created_at: r.get(12)?,
        started_at: r.get(13)?,
        finished_at: r.get(14)?,
        first_job_id: r.get(15)?,
    })
}

pub(in crate::storage) fn get(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<Option<ExecutionRecord>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"))?
        .query_row(params![id], record)
        .optional()
}

/// The suite document an execution runs.
pub(in crate::storage) fn config(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT config FROM executions WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()
}

/// Newest first, optionally one status only.
pub(in crate::storage) fn list(
    conn: &Connection,
    status: Option<ExecutionStatus>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<ExecutionRecord>, i64)> {
    let status = status.map(ExecutionStatus::as_str);
    let total = conn
        .prepare_cached("SELECT count(*) FROM executions WHERE ?1 IS NULL OR status = ?1")?
        .query_row(params![status], |r| r.get(0))?;
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM executions WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
        ))?
        .query_map(params![status, limit, offset], record)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// Executions a restart must resume.
pub(in crate::storage) fn unfinished(conn: &Connection) -> rusqlite::Result<Vec<ExecutionRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM executions WHERE status IN ('pending', 'running') ORDER BY id"
    ))?
    .query_map([], record)?
    .collect()
}

/// Jobs of `execution` without a result, in id order.
pub(in crate::storage) fn pending_jobs(
    conn: &Connection,
    execution: i64,
) -> rusqlite::Result<Vec<PendingJob>> {
    conn.prepare_cached(
        "SELECT j.id, j.prompt_idx, j.provider_idx, j.test_idx FROM jobs j
         WHERE j.execution_id = ?1 AND j.status = 'pending'
           AND NOT EXISTS (SELECT 1 FROM test_results r WHERE r.id = j.id)
         ORDER BY j.id",
    )?
    .query_map(params![execution], |r| {
        Ok(PendingJob {
            id: r.get(0)?,
            spec: JobSpec {
                prompt_idx: r.get(1)?,
                provider_idx: r.get(2)?,
                test_idx: r.get(3)?,
            },
        })
    })?
    .collect()
}

/// Moves an execution to `status`, stamping start or finish times.
pub(in crate::storage) fn set_status(
    conn: &Connection,
    id: i64,
    status: ExecutionStatus,
    error: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE executions SET status = ?2, error = coalesce(?3, error),
                 started_at = CASE WHEN ?2 = 'running' THEN coalesce(started_at, ?4) ELSE started_at END,
                 finished_at = CASE WHEN ?2 IN ('completed', 'failed', 'cancelled') THEN ?4 ELSE finished_at END
             WHERE id = ?1 AND status NOT IN ('completed', 'failed', 'cancelled')",
        )?
        .execute(params![id, status.as_str(), error, now])?;
    if changed > 0 && status == ExecutionStatus::Cancelled {
        // Jobs that never ran stay visible as cancelled.
        conn.prepare_cached(
            "UPDATE jobs SET status = 'cancelled', updated_at = ?2 WHERE execution_id = ?1 AND status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM test_results r WHERE r.id = jobs.id)",
        )?
        .execute(params![id, now])?;
    }
    Ok(changed > 0)
}

/// Adds a batch's outcome to an execution's totals.
pub(in crate::storage) fn add_counts(
    conn: &Connection,
    id: i64,
    (passed, failed, errors, cost): (i64, i64, i64, f64),
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE executions SET passed = passed + ?2, failed = failed + ?3, errors = errors + ?4,
             cost_usd = cost_usd + ?5 WHERE id = ?1",
    )?
    .execute(params![id, passed, failed, errors, cost])?;
    Ok(())
}
