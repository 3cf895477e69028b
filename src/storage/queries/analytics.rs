//! Reads for analytics: rollup rows of a tier, the same sums computed from
//! raw results (for the partial buckets at a window's edges), raw
//! latencies (exact percentiles of small windows), one execution's results
//! folded per test, and suite names.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

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
    let mut rows = stmt.query(params![
        from,
        to,
        f.suite_id,
        f.provider,
        f.model,
        resolution_s
    ])?;
    let mut names = Names::default();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
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
        out.push(RollupRow {
            key: RollupKey {
                resolution_s,
                bucket_start: r.get(0)?,
                suite_id: r.get(1)?,
                provider: names.get(r.get_ref(2)?.as_str()?),
                model: names.get(r.get_ref(3)?.as_str()?),
            },
            sums,
        });
    }
    Ok(out)
}

/// Strings a read names again and again, shared instead of copied.
#[derive(Default)]
struct Names(Vec<Arc<str>>);

impl Names {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.0.iter().find(|n| ***n == *s) {
            return n.clone();
        }
        let n: Arc<str> = s.into();
        self.0.push(n.clone());
        n
    }
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
        let suite_id: i64 = r.get(0)?;
        let (provider, model) = (r.get_ref(1)?.as_str()?, r.get_ref(2)?.as_str()?);
        let facts = ResultFacts {
            created_at: r.get(9)?,
            suite_id,
            provider,
            model,
            passed: r.get(3)?,
            failure_reason: r.get(4)?,
            latency_ms: r.get(5)?,
            input_tokens: r.get(6)?,
            output_tokens: r.get(7)?,
            cost_usd: r.get(8)?,
        };
        let i = match out.iter().position(|o| {
            o.key.suite_id == suite_id && *o.key.provider == *provider && *o.key.model == *model
        }) {
            Some(i) => i,
            None => {
                out.push(RollupRow {
                    key: RollupKey {
                        resolution_s: 0,
                        bucket_start: from,
                        suite_id,
                        provider: provider.into(),
                        model: model.into(),
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestRow {
    /// Prompt index.
    pub prompt_idx: i64,
    /// Test index.
    pub test_idx: i64,
    /// Provider id.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Results (more than one when repeated or re-run).
    pub count: i64,
    /// Passed.
    pub passed: i64,
    /// Failed an assertion.
    pub failed: i64,
    /// The call failed.
    pub errors: i64,
    /// Sum of latency, ms.
    pub latency_sum_ms: i64,
    /// Its slowest result, ms.
    pub max_latency_ms: i64,
    /// Cost in nano-dollars.
    pub cost_nusd: i64,
}

/// An execution's results: per test, per provider/model, and every latency.
#[derive(Debug, Clone, Default)]
pub struct ExecutionResults {
    /// Per test, in suite order.
    pub tests: Vec<TestRow>,
    /// Per (provider, model).
    pub models: Vec<(String, String, RollupSums)>,
    /// Every result's latency (for exact percentiles).
    pub latencies: Vec<i64>,
}

/// Every result of execution `id`. Its results' ids are its job ids, a
/// contiguous range: read by rowid range, not through an index.
pub(in crate::storage) fn execution_tests(
    conn: &Connection,
    id: i64,
) -> rusqlite::Result<ExecutionResults> {
    let range: Option<(Option<i64>, i64)> = conn
        .prepare_cached("SELECT first_job_id, total FROM executions WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (first, total) = match range {
        Some((Some(first), total)) => (first, total),
        _ => (i64::MIN, i64::MAX),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT prompt_idx, test_idx, provider, model, passed, failure_reason,
                execution_time_ms, input_tokens, output_tokens, cost_usd
         FROM test_results
         WHERE id >= ?1 AND id - ?1 < ?2 AND execution_id = ?3",
    )?;
    let mut rows = stmt.query(params![first, total, id])?;
    let mut out = ExecutionResults::default();
    // (provider, model) pairs are few per execution: rows name them by
    // index, so no row allocates a key.
    let mut at: HashMap<(i64, i64, usize), usize, foldhash::fast::RandomState> = HashMap::default();
    while let Some(r) = rows.next()? {
        let (prompt_idx, test_idx): (i64, i64) = (r.get(0)?, r.get(1)?);
        let (provider, model) = (r.get_ref(2)?.as_str()?, r.get_ref(3)?.as_str()?);
        let m = match out
            .models
            .iter()
            .position(|(p, mo, _)| p == provider && mo == model)
        {
            Some(m) => m,
            None => {
                out.models
                    .push((provider.to_owned(), model.to_owned(), RollupSums::default()));
                out.models.len() - 1
            }
        };
        let (passed, failure_reason): (bool, u8) = (r.get(4)?, r.get(5)?);
        let latency_ms: i64 = r.get(6)?;
        let cost_usd: f64 = r.get(9)?;
        out.latencies.push(latency_ms);
        out.models[m].2.observe(&ResultFacts {
            created_at: 0,
            suite_id: 0,
            provider,
            model,
            passed,
            failure_reason,
            latency_ms,
            input_tokens: r.get(7)?,
            output_tokens: r.get(8)?,
            cost_usd,
        });
        let i = *at.entry((prompt_idx, test_idx, m)).or_insert_with(|| {
            out.tests.push(TestRow {
                prompt_idx,
                test_idx,
                provider: out.models[m].0.clone(),
                model: out.models[m].1.clone(),
                ..TestRow::default()
            });
            out.tests.len() - 1
        });
        let t = &mut out.tests[i];
        t.count += 1;
        match (passed, failure_reason) {
            (true, _) => t.passed += 1,
            (false, 2) => t.errors += 1,
            (false, _) => t.failed += 1,
        }
        t.latency_sum_ms += latency_ms;
        t.max_latency_ms = t.max_latency_ms.max(latency_ms);
        t.cost_nusd += (cost_usd * crate::storage::rollup::NANOS_PER_USD).round() as i64;
    }
    out.tests.sort_by(|a, b| {
        (a.test_idx, a.prompt_idx, &a.provider, &a.model).cmp(&(
            b.test_idx,
            b.prompt_idx,
            &b.provider,
            &b.model,
        ))
    });
    Ok(out)
}

/// Names of stored suites by id.
pub(in crate::storage) fn suite_names(conn: &Connection) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, name FROM suites")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
