//! Reads for analytics: rollup rows of a tier, the same sums computed from
//! raw results (for the partial buckets at a window's edges), raw
//! latencies (exact percentiles of small windows), one execution's results
//! folded per test, and suite names.

use rusqlite::{Connection, params};

use crate::storage::rollup::{ResultFacts, RollupKey, RollupSums};

/// Which results count: any of these left `None` means all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RollupFilter {
    /// A stored suite (0: suites posted inline).
    pub suite_id: Option<i64>,
    /// A provider id.
    pub provider: Option<String>,
    /// A model.
    pub model: Option<String>,
}

/// A rollup row (or raw results summed the same way).
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// Tier, bucket, suite, provider, model.
    pub key: RollupKey,
    /// The sums.
    pub sums: RollupSums,
}

/// `AND` clauses for a filter; `r` aliases rollups or results, `suite` is
/// the expression of the suite id. Parameters ?3 (suite), ?4 (provider),
/// ?5 (model) are always bound; NULL matches everything.
fn clauses(suite: &str, r: &str) -> String {
    format!(
        " AND (?3 IS NULL OR {suite} = ?3) AND (?4 IS NULL OR {r}.provider = ?4)
          AND (?5 IS NULL OR {r}.model = ?5)"
    )
}

/// Rows of tier `resolution_s` with buckets in [from, to).
pub(in crate::storage) fn rollup_rows(
    conn: &Connection,
    resolution_s: i64,
    from: i64,
    to: i64,
    f: &RollupFilter,
) -> rusqlite::Result<Vec<RollupRow>> {
    let sql = format!(
        "SELECT bucket_start, suite_id, provider, model, count, passed, failed, errors,
                latency_sum_ms, latency_hist, input_tokens, output_tokens, cost_nusd
         FROM rollups r
         WHERE resolution_s = ?6 AND bucket_start >= ?1 AND bucket_start < ?2{}",
        clauses("r.suite_id", "r")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![from, to, f.suite_id, f.provider, f.model, resolution_s],
        |r| {
            let mut sums = RollupSums {
                count: r.get(4)?,
                passed: r.get(5)?,
                failed: r.get(6)?,
                errors: r.get(7)?,
                latency_sum_ms: r.get(8)?,
                input_tokens: r.get(10)?,
                output_tokens: r.get(11)?,
                cost_nusd: r.get(12)?,
                ..RollupSums::default()
            };
            sums.latency.add_encoded(r.get_ref(9)?.as_blob()?);
            Ok(RollupRow {
                key: RollupKey {
                    resolution_s,
                    bucket_start: r.get(0)?,
                    suite_id: r.get(1)?,
                    provider: r.get(2)?,
                    model: r.get(3)?,
                },
                sums,
            })
        },
    )?;
    rows.collect()
}

/// Raw results in [from, to) summed per (suite, provider, model), as
/// rows of resolution 0 starting at `from`.
pub(in crate::storage) fn raw_rows(
    conn: &Connection,
    from: i64,
    to: i64,
    f: &RollupFilter,
) -> rusqlite::Result<Vec<RollupRow>> {
    let sql = format!(
        "SELECT coalesce(e.suite_id, 0), r.provider, r.model, r.passed, r.failure_reason,
                r.execution_time_ms, r.input_tokens, r.output_tokens, r.cost_usd, r.created_at
         FROM test_results r JOIN executions e ON e.id = r.execution_id
         WHERE r.created_at >= ?1 AND r.created_at < ?2{}",
        clauses("coalesce(e.suite_id, 0)", "r")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![from, to, f.suite_id, f.provider, f.model])?;
    let mut out: Vec<RollupRow> = Vec::new();
    while let Some(r) = rows.next()? {
        let (suite_id, provider, model): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let facts = ResultFacts {
            created_at: r.get(9)?,
            suite_id,
            provider: &provider,
            model: &model,
            passed: r.get(3)?,
            failure_reason: r.get(4)?,
            latency_ms: r.get(5)?,
            input_tokens: r.get(6)?,
            output_tokens: r.get(7)?,
            cost_usd: r.get(8)?,
        };
        let i = match out.iter().position(|o| {
            o.key.suite_id == suite_id && o.key.provider == provider && o.key.model == model
        }) {
            Some(i) => i,
            None => {
                out.push(RollupRow {
                    key: RollupKey {
                        resolution_s: 0,
                        bucket_start: from,
                        suite_id,
                        provider: provider.clone(),
                        model: model.clone(),
                    },
                    sums: RollupSums::default(),
                });
                out.len() - 1
            }
        };
        out[i].sums.observe(&facts);
    }
    Ok(out)
}

/// (provider/model, latency) of the results in [from, to), at most
/// `limit` of them (`None` when there are more: the caller falls back to
/// buckets).
pub(in crate::storage) fn raw_latencies(
    conn: &Connection,
    from: i64,
    to: i64,
    f: &RollupFilter,
    limit: usize,
) -> rusqlite::Result<Option<Vec<(String, i64)>>> {
    let sql = format!(
        "SELECT r.provider || '/' || r.model, r.execution_time_ms
         FROM test_results r JOIN executions e ON e.id = r.execution_id
         WHERE r.created_at >= ?1 AND r.created_at < ?2{} LIMIT ?6",
        clauses("coalesce(e.suite_id, 0)", "r")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![from, to, f.suite_id, f.provider, f.model, limit as i64 + 1],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let all: Vec<(String, i64)> = rows.collect::<rusqlite::Result<_>>()?;
    Ok((all.len() <= limit).then_some(all))
}

/// One execution's results folded per (prompt, test, provider, model).
#[derive(Debug, Clone, PartialEq)]
pub struct TestRow {
    /// Prompt index.
    pub prompt_idx: i64,
    /// Test index.
    pub test_idx: i64,
    /// Provider id.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Its sums (a test repeated or re-run counts each result).
    pub sums: RollupSums,
    /// Its slowest result, ms.
    pub max_latency_ms: i64,
}

/// Every result of execution `id`, folded per test; and the raw
/// latencies (for exact percentiles).
pub(in crate::storage) fn execution_tests(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<(Vec<TestRow>, Vec<i64>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT prompt_idx, test_idx, provider, model, passed, failure_reason,
                execution_time_ms, input_tokens, output_tokens, cost_usd, created_at
         FROM test_results WHERE execution_id = ?1 ORDER BY test_idx, prompt_idx, provider, model",
    )?;
    let mut rows = stmt.query([id])?;
    let mut tests: Vec<TestRow> = Vec::new();
    let mut latencies = Vec::new();
    while let Some(r) = rows.next()? {
        let (prompt_idx, test_idx): (i64, i64) = (r.get(0)?, r.get(1)?);
        let (provider, model): (String, String) = (r.get(2)?, r.get(3)?);
        let latency_ms: i64 = r.get(6)?;
        latencies.push(latency_ms);
        let facts = ResultFacts {
            created_at: r.get(10)?,
            suite_id: 0,
            provider: &provider,
            model: &model,
            passed: r.get(4)?,
            failure_reason: r.get(5)?,
            latency_ms,
            input_tokens: r.get(7)?,
            output_tokens: r.get(8)?,
            cost_usd: r.get(9)?,
        };
        // Rows come ordered by test: the match is the last one or new.
        let same = tests.last().is_some_and(|t| {
            t.prompt_idx == prompt_idx
                && t.test_idx == test_idx
                && t.provider == provider
                && t.model == model
        });
        if !same {
            tests.push(TestRow {
                prompt_idx,
                test_idx,
                provider: provider.clone(),
                model: model.clone(),
                sums: RollupSums::default(),
                max_latency_ms: 0,
            });
        }
        let t = tests.last_mut().expect("pushed");
        t.sums.observe(&facts);
        t.max_latency_ms = t.max_latency_ms.max(latency_ms);
    }
    Ok((tests, latencies))
}

/// Names of stored suites by id.
pub(in crate::storage) fn suite_names(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM suites")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
