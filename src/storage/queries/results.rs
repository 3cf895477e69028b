//! The `test_results` table.

use rusqlite::{Connection, params};

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

/// Inserts rows, skipping ids already stored; returns how many were new.
pub(in crate::storage) fn insert(
    conn: &Connection,
    rows: &[NewTestResult],
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO test_results (
            id, execution_id, prompt_idx, test_idx, provider, model, passed, score,
            failure_reason, execution_time_ms, input_tokens, output_tokens, cost_usd,
            cached, output, error, grading, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    let mut inserted = 0;
    for r in rows {
        inserted += stmt.execute(params![
            r.id,
            r.execution_id,
            r.prompt_idx,
            r.test_idx,
            r.provider,
            r.model,
            r.passed,
            r.score,
            r.failure_reason,
            r.execution_time_ms,
            r.input_tokens,
            r.output_tokens,
            r.cost_usd,
            r.cached,
            r.output,
            r.error,
            r.grading,
            r.created_at,
        ])?;
    }
    Ok(inserted)
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
