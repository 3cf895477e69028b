//! The `test_results` table.

use rusqlite::{Connection, Statement, params};

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

/// One statement per row, prepared once. (A multi-row `VALUES` list is
/// slower here: it needs a statement journal, and releasing that inside the
/// writer's per-command savepoint walks every dirty page, so a command's cost
/// grows with the square of its size.)
const INSERT: &str = "INSERT OR IGNORE INTO test_results (
        id, execution_id, prompt_idx, test_idx, provider, model, passed, score,
        failure_reason, execution_time_ms, input_tokens, output_tokens, cost_usd,
        cached, output, error, grading, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

/// Inserts rows, skipping ids already stored; returns how many were new.
pub(in crate::storage) fn insert(
    conn: &Connection,
    rows: &[NewTestResult],
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(INSERT)?;
    let mut inserted = 0;
    for r in rows {
        bind(&mut stmt, r)?;
        inserted += stmt.raw_execute()?;
    }
    Ok(inserted)
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
