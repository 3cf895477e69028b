//! The `test_results` table.

use crate::storage::rollup::{ResultFacts, Rollups};
use rusqlite::{Connection, Statement, params};
use serde::{Deserialize, Serialize};

/// One graded output, ready to store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTestResult {
    /// The job id; `None` lets SQLite assign one.
    pub id: Option<i64>,
    /// The execution it belongs to (must exist).
    pub execution_id: i64,
    /// Index of the prompt in the suite.
    pub prompt_idx: i64,
    /// Index of the test case in the suite.
    pub test_idx: i64,
    /// Provider id as configured, e.g. `openai:gpt-4o-mini`.
    pub provider: String,
    /// Model name, e.g. `gpt-4o-mini`.
    pub model: String,
    /// Whether the test passed.
    pub passed: bool,
    /// Weighted score in 0..=1.
    pub score: f64,
    /// promptfoo's failureReason: 0 none, 1 assertion, 2 error.
    pub failure_reason: u8,
    /// Provider latency in milliseconds.
    pub execution_time_ms: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Cost of the call in US dollars.
    pub cost_usd: f64,
    /// Whether the response came from the provider cache.
    pub cached: bool,
    /// The model's output.
    pub output: Option<String>,
    /// The error, when the call failed.
    pub error: Option<String>,
    /// Grading details (componentResults) as JSON.
    pub grading: Option<String>,
    /// When it was graded, unix ms.
    pub created_at: i64,
}

/// Totals of one execution's stored results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResultCounts {
    /// Rows stored.
    pub total: i64,
    /// Rows that passed.
    pub passed: i64,
}

/// One statement per row, prepared once. (A multi-row `VALUES` list was 3-5x
/// slower: it needs a statement journal whose release walks every dirty page
/// of the transaction, so a command's cost grew with the square of its size.)
const INSERT: &str = "INSERT OR IGNORE INTO test_results (
        id, execution_id, prompt_idx, test_idx, provider, model, passed, score,
        failure_reason, execution_time_ms, input_tokens, output_tokens, cost_usd,
        cached, output, error, grading, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

/// An execution's new (passed, failed, errors, cost).
type Totals = (i64, i64, i64, f64);

/// Inserts rows, skipping ids already stored, and adds the new ones to
/// their executions' totals and to the rollups (`rollups`: `None` keeps
/// them out, for the writer benchmark's baseline) in the same transaction;
/// the time the rollups took goes to `upkeep`. Returns how many were new.
pub(in crate::storage) fn insert(
    conn: &Connection,
    rows: &[NewTestResult],
    rollups: Option<Rollups>,
    upkeep: &prometheus::Counter,
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    // The job is done in the transaction that stores its result.
    let mut done = conn.prepare_cached(
        "UPDATE jobs SET status = 'done', updated_at = ?2 WHERE id = ?1 AND status <> 'done'",
    )?;
    let mut suite_of =
        conn.prepare_cached("SELECT coalesce(suite_id, 0) FROM executions WHERE id = ?1")?;
    // Executions per batch are few.
    let mut totals: Vec<(i64, i64, Totals)> = Vec::new();
    // Which rows were new, and the suite of each (by execution).
    let mut new: Vec<(usize, i64)> = Vec::with_capacity(rows.len());
    for (k, r) in rows.iter().enumerate() {
        bind(&mut stmt, r)?;
        if stmt.raw_execute()? == 0 {
            continue; // already stored: a job re-run after a crash
        }
        if let Some(id) = r.id {
            done.execute(params![id, r.created_at])?;
        }
        let i = match totals.iter().position(|(e, ..)| *e == r.execution_id) {
            Some(i) => i,
            None => {
                let suite = suite_of.query_row([r.execution_id], |row| row.get(0))?;
                totals.push((r.execution_id, suite, (0, 0, 0, 0.0)));
                totals.len() - 1
            }
        };
        let (_, suite_id, t) = &mut totals[i];
        new.push((k, *suite_id));
        match (r.passed, r.failure_reason) {
            (true, _) => t.0 += 1,
            (false, 2) => t.2 += 1,
            (false, _) => t.1 += 1,
        }
        t.3 += r.cost_usd;
    }
    for (execution, _, t) in totals {
        super::executions::add_counts(conn, execution, t)?;
    }
    if let Some(mut rollups) = rollups.filter(|_| !new.is_empty()) {
        let started = std::time::Instant::now();
        for &(k, suite_id) in &new {
            let r = &rows[k];
            rollups.observe(&ResultFacts {
                created_at: r.created_at,
                suite_id,
                provider: &r.provider,
                model: &r.model,
                passed: r.passed,
                failure_reason: r.failure_reason,
                latency_ms: r.execution_time_ms,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cost_usd: r.cost_usd,
            });
        }
        rollups.apply(conn)?;
        upkeep.inc_by(started.elapsed().as_secs_f64());
    }
    Ok(new.len())
}

/// Binds one row's columns; no intermediate parameter array.
fn bind(stmt: &mut Statement<'_>, r: &NewTestResult) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, r.id)?;
    stmt.raw_bind_parameter(2, r.execution_id)?;
    stmt.raw_bind_parameter(3, r.prompt_idx)?;
    stmt.raw_bind_parameter(4, r.test_idx)?;
    stmt.raw_bind_parameter(5, &r.provider)?;
    stmt.raw_bind_parameter(6, &r.model)?;
    stmt.raw_bind_parameter(7, r.passed)?;
    stmt.raw_bind_parameter(8, r.score)?;
    stmt.raw_bind_parameter(9, r.failure_reason)?;
    stmt.raw_bind_parameter(10, r.execution_time_ms)?;
    stmt.raw_bind_parameter(11, r.input_tokens)?;
    stmt.raw_bind_parameter(12, r.output_tokens)?;
    stmt.raw_bind_parameter(13, r.cost_usd)?;
    stmt.raw_bind_parameter(14, r.cached)?;
    stmt.raw_bind_parameter(15, &r.output)?;
    stmt.raw_bind_parameter(16, &r.error)?;
    stmt.raw_bind_parameter(17, &r.grading)?;
    stmt.raw_bind_parameter(18, r.created_at)
}

pub(in crate::storage) fn counts(
    conn: &Connection,
    execution_id: i64,
) -> rusqlite::Result<ResultCounts> {
    conn.prepare_cached(
        "SELECT count(*), coalesce(sum(passed), 0) FROM test_results WHERE execution_id = ?1",
    )?
    .query_row(params![execution_id], |r| {
        Ok(ResultCounts {
            total: r.get(0)?,
            passed: r.get(1)?,
        })
    })
}

/// Which results to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultFilter {
    /// Passed (failure reason 0).
    Passed,
    /// Failed an assertion (1).
    Failed,
    /// The provider call failed (2).
    Error,
}

impl ResultFilter {
    fn failure_reason(self) -> i64 {
        match self {
            ResultFilter::Passed => 0,
            ResultFilter::Failed => 1,
            ResultFilter::Error => 2,
        }
    }
}

/// A stored result, with its job's provider index.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultRecord {
    /// Id (= job id).
    pub id: i64,
    /// Execution.
    pub execution_id: i64,
    /// Prompt index.
    pub prompt_idx: i64,
    /// Provider index in the suite.
    pub provider_idx: i64,
    /// Test index.
    pub test_idx: i64,
    /// Provider id.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Passed.
    pub passed: bool,
    /// Score.
    pub score: f64,
    /// 0 none, 1 assertion, 2 error.
    pub failure_reason: u8,
    /// Provider latency, ms.
    pub latency_ms: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// US dollars.
    pub cost_usd: f64,
    /// Served from the response cache.
    pub cached: bool,
    /// The output.
    pub output: Option<String>,
    /// The error or first failing reason.
    pub error: Option<String>,
    /// Grading result JSON (served parsed, as `gradingResult`).
    #[serde(skip)]
    pub grading: Option<String>,
    /// Graded at, unix ms.
    pub created_at: i64,
}

/// The columns of a [`ResultRecord`], its provider index from the job.
const SELECT_RESULT: &str = "SELECT r.id, r.execution_id, r.prompt_idx, coalesce(j.provider_idx, 0), r.test_idx, r.provider,
        r.model, r.passed, r.score, r.failure_reason, r.execution_time_ms, r.input_tokens,
        r.output_tokens, r.cost_usd, r.cached, r.output, r.error, r.grading, r.created_at
     FROM test_results r LEFT JOIN jobs j ON j.id = r.id";

fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ResultRecord> {
    Ok(ResultRecord {
        id: r.get(0)?,
        execution_id: r.get(1)?,
        prompt_idx: r.get(2)?,
        provider_idx: r.get(3)?,
        test_idx: r.get(4)?,
        provider: r.get(5)?,
        model: r.get(6)?,
        passed: r.get(7)?,
        score: r.get(8)?,
        failure_reason: r.get(9)?,
        latency_ms: r.get(10)?,
        input_tokens: r.get(11)?,
        output_tokens: r.get(12)?,
        cost_usd: r.get(13)?,
        cached: r.get(14)?,
        output: r.get(15)?,
        error: r.get(16)?,
        grading: r.get(17)?,
        created_at: r.get(18)?,
    })
}

/// Results after id `after` of ids `first..end` (one execution's jobs), in
/// job order, `limit` at most, of one (prompt, provider) group or all:
/// keyset pages for exports, each a range seek on the primary key, so a
/// whole export reads every row once whatever its size.
pub(in crate::storage) fn after(
    conn: &Connection,
    (execution, first, end): (i64, i64, i64),
    after: i64,
    group: Option<(i64, i64)>,
    limit: i64,
) -> rusqlite::Result<Vec<ResultRecord>> {
    let (prompt, provider) = group.unzip();
    conn.prepare_cached(&format!(
        "{SELECT_RESULT} WHERE r.id > max(?1, ?2 - 1) AND r.id < ?3 AND +r.execution_id = ?4
           AND (?5 IS NULL OR (r.prompt_idx = ?5 AND j.provider_idx = ?6))
         ORDER BY r.id LIMIT ?7"
    ))?
    .query_map(
        params![after, first, end, execution, prompt, provider, limit],
        record,
    )?
    .collect()
}

/// Results of ids `first..end` (one execution's jobs), in job order.
pub(in crate::storage) fn list(
    conn: &Connection,
    (execution, first, end): (i64, i64, i64),
    filter: Option<ResultFilter>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<ResultRecord>, i64)> {
    let reason = filter.map(ResultFilter::failure_reason);
    let total = conn
        .prepare_cached(
            "SELECT count(*) FROM test_results WHERE id >= ?1 AND id < ?2 AND execution_id = ?3
               AND (?4 IS NULL OR failure_reason = ?4)",
        )?
        .query_row(params![first, end, execution, reason], |r| r.get(0))?;
    let rows = conn
        .prepare_cached(&format!(
            "{SELECT_RESULT} WHERE r.id >= ?1 AND r.id < ?2 AND +r.execution_id = ?3 AND (?4 IS NULL OR r.failure_reason = ?4)
             ORDER BY r.id LIMIT ?5 OFFSET ?6"
        ))?
        .query_map(params![first, end, execution, reason, limit, offset], record)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}

/// Totals of one (prompt, provider) pair of an execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupTotals {
    /// Prompt index.
    pub prompt_idx: i64,
    /// Provider index.
    pub provider_idx: i64,
    /// Results.
    pub count: i64,
    /// Passed.
    pub passed: i64,
    /// Failed an assertion.
    pub failed: i64,
    /// Provider errors.
    pub errors: i64,
    /// Sum of scores (promptfoo's `metrics.score`).
    pub score_sum: f64,
    /// Sum of latencies, ms.
    pub latency_ms: i64,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Served from the cache.
    pub cached: i64,
    /// US dollars.
    pub cost_usd: f64,
}

/// Totals per (prompt, provider) of ids `first..end`.
pub(in crate::storage) fn group_totals(
    conn: &Connection,
    (execution, first, end): (i64, i64, i64),
) -> rusqlite::Result<Vec<GroupTotals>> {
    conn.prepare_cached(
        "SELECT r.prompt_idx, coalesce(j.provider_idx, 0), count(*), sum(r.passed),
                sum(r.failure_reason = 1), sum(r.failure_reason = 2), sum(r.score),
                sum(r.execution_time_ms), sum(r.input_tokens), sum(r.output_tokens), sum(r.cached),
                sum(r.cost_usd)
         FROM test_results r LEFT JOIN jobs j ON j.id = r.id
         WHERE r.id >= ?1 AND r.id < ?2 AND r.execution_id = ?3
         GROUP BY 1, 2 ORDER BY 1, 2",
    )?
    .query_map(params![first, end, execution], |r| {
        Ok(GroupTotals {
            prompt_idx: r.get(0)?,
            provider_idx: r.get(1)?,
            count: r.get(2)?,
            passed: r.get(3)?,
            failed: r.get(4)?,
            errors: r.get(5)?,
            score_sum: r.get(6)?,
            latency_ms: r.get(7)?,
            input_tokens: r.get(8)?,
            output_tokens: r.get(9)?,
            cached: r.get(10)?,
            cost_usd: r.get(11)?,
        })
    })?
    .collect()
}
