//! `optimization_suggestions`, and what the data-driven strategies read:
//! a stored prompt, recent failures and repeated calls of one prompt.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A suggestion to store.
#[derive(Debug, Clone)]
pub struct NewSuggestion {
    /// sha256 of the prompt text.
    pub prompt_hash: String,
    /// Strategy.
    pub strategy: String,
    /// Title.
    pub title: String,
    /// Rationale.
    pub detail: String,
    /// The rewrite, if any.
    pub rewritten_prompt: Option<String>,
    /// Prompt tokens saved (negative: added).
    pub token_savings: i64,
    /// Dollars saved per 1,000 runs (negative: added).
    pub cost_savings_usd: f64,
    /// Model, confidence, span and figures, JSON.
    pub evidence: String,
}

/// A stored suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionRecord {
    /// Id.
    pub id: i64,
    /// sha256 of the prompt text.
    pub prompt_hash: String,
    /// Strategy.
    pub strategy: String,
    /// Title.
    pub title: String,
    /// Rationale.
    pub rationale: String,
    /// The rewrite, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten_prompt: Option<String>,
    /// Prompt tokens it changes (negative: fewer).
    pub estimated_token_delta: i64,
    /// Dollars per 1,000 runs it changes (negative: saves).
    pub estimated_cost_delta_per_1k_runs: f64,
    /// Model, confidence, span and figures.
    pub evidence: serde_json::Value,
    /// Unix ms.
    pub created_at: i64,
}

pub(in crate::storage) fn insert(
    conn: &Connection,
    rows: &[NewSuggestion],
    now: i64,
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO optimization_suggestions
           (prompt_hash, strategy, title, detail, rewritten_prompt, est_token_savings,
            est_cost_savings_usd, evidence, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for s in rows {
        stmt.execute(params![
            s.prompt_hash,
            s.strategy,
            s.title,
            s.detail,
            s.rewritten_prompt,
            s.token_savings,
            s.cost_savings_usd,
            s.evidence,
            now
        ])?;
    }
    Ok(())
}

/// Newest first, optionally of one prompt and one strategy; and how many match.
pub(in crate::storage) fn list(
    conn: &Connection,
    prompt_hash: Option<&str>,
    strategy: Option<&str>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<SuggestionRecord>, i64)> {
    const WHERE: &str = "WHERE (?1 IS NULL OR prompt_hash = ?1) AND (?2 IS NULL OR strategy = ?2)";
    let total = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM optimization_suggestions {WHERE}"
        ))?
        .query_row(params![prompt_hash, strategy], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, prompt_hash, strategy, title, detail, rewritten_prompt, est_token_savings,
                est_cost_savings_usd, evidence, created_at
         FROM optimization_suggestions {WHERE} ORDER BY id DESC LIMIT ?3 OFFSET ?4"
    ))?;
    let rows = stmt.query_map(params![prompt_hash, strategy, limit, offset], |r| {
        let evidence: String = r.get(8)?;
        Ok(SuggestionRecord {
            id: r.get(0)?,
            prompt_hash: r.get(1)?,
            strategy: r.get(2)?,
            title: r.get(3)?,
            rationale: r.get(4)?,
            rewritten_prompt: r.get(5)?,
            estimated_token_delta: -r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            estimated_cost_delta_per_1k_runs: -r.get::<_, Option<f64>>(7)?.unwrap_or(0.0),
            evidence: serde_json::from_str(&evidence).unwrap_or(serde_json::Value::Null),
            created_at: r.get(9)?,
        })
    })?;
    Ok((rows.collect::<rusqlite::Result<_>>()?, total))
}

/// Prompt `idx` of stored suite `suite`: (label, raw).
pub(in crate::storage) fn prompt(
    conn: &Connection,
    suite: i64,
    idx: i64,
) -> rusqlite::Result<Option<(Option<String>, String)>> {
    conn.prepare_cached("SELECT label, raw FROM prompts WHERE suite_id = ?1 AND idx = ?2")?
        .query_row(params![suite, idx], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// The latest `executions` executions of a suite.
const RECENT: &str =
    "recent AS (SELECT id FROM executions WHERE suite_id = ?1 ORDER BY id DESC LIMIT ?3)";

/// Failing results: (error, test index, count).
pub(in crate::storage) type Failure = (String, i64, i64);

/// Results of prompt `prompt_idx` in the suite's recent executions, and
/// its failing ones grouped by (error, test): (error, test, count).
pub(in crate::storage) fn failures(
    conn: &Connection,
    suite: i64,
    prompt_idx: i64,
    executions: i64,
) -> rusqlite::Result<(i64, Vec<Failure>)> {
    let total = conn
        .prepare_cached(&format!(
            "WITH {RECENT} SELECT count(*) FROM test_results
             WHERE execution_id IN recent AND prompt_idx = ?2"
        ))?
        .query_row(params![suite, prompt_idx, executions], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "WITH {RECENT} SELECT coalesce(error, ''), test_idx, count(*) FROM test_results
         WHERE execution_id IN recent AND prompt_idx = ?2 AND passed = 0
         GROUP BY 1, 2"
    ))?;
    let rows = stmt
        .query_map(params![suite, prompt_idx, executions], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((total, rows))
}

/// Calls of prompt `prompt_idx` in the suite's recent executions made to a
/// provider (not served from the cache), per (test, provider): (calls,
/// distinct outputs, cost).
pub(in crate::storage) fn repeats(
    conn: &Connection,
    suite: i64,
    prompt_idx: i64,
    executions: i64,
) -> rusqlite::Result<Vec<(i64, i64, f64)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "WITH {RECENT} SELECT count(*), count(DISTINCT output), sum(cost_usd) FROM test_results
         WHERE execution_id IN recent AND prompt_idx = ?2 AND cached = 0 AND failure_reason < 2
         GROUP BY test_idx, provider"
    ))?;
    let rows = stmt
        .query_map(params![suite, prompt_idx, executions], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
