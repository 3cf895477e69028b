//! One execution: its summary with exact percentiles, per provider/model,
//! a page of its tests, and its slowest and most failing tests.

use std::time::Duration;

use serde::Serialize;

use super::figures::Figures;
use super::queries::ModelFigures;
use super::{AnalyticsEngine, AnalyticsError, Answer};
use crate::storage::rollup::{FINITE_BUCKETS, RollupSums, bucket_upper_ms};
use crate::storage::{ExecutionRecord, ExecutionResults, TestRow};

/// How many slowest and most failing tests are listed.
const TOP: usize = 10;
/// How long a running execution's answer is cached.
const RUNNING_TTL: Duration = Duration::from_secs(5);

/// One test of an execution (per prompt, provider and model).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestFigures {
    /// Prompt index.
    pub prompt_idx: i64,
    /// Test index.
    pub test_idx: i64,
    /// Provider id.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Results (more than one when repeated).
    pub runs: i64,
    /// Passed.
    pub passed: i64,
    /// Failed an assertion.
    pub failed: i64,
    /// The call failed.
    pub errors: i64,
    /// Mean latency, ms.
    pub mean_latency_ms: f64,
    /// Slowest, ms.
    pub max_latency_ms: i64,
    /// US dollars.
    pub cost_usd: f64,
}

/// `GET /api/analytics/executions/{id}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionAnalytics {
    /// The execution.
    pub id: i64,
    /// Its status.
    pub status: String,
    /// Its stored suite, if any.
    pub suite_id: Option<i64>,
    /// Jobs in all.
    pub total: i64,
    /// Wall time, ms (so far while it runs).
    pub duration_ms: Option<i64>,
    /// Every result (exact percentiles).
    pub summary: Figures,
    /// Per provider and model.
    pub models: Vec<ModelFigures>,
    /// Tests of this page, in suite order.
    pub tests: Vec<TestFigures>,
    /// Tests in all (for paging).
    pub tests_total: usize,
    /// The slowest tests.
    pub slowest: Vec<TestFigures>,
    /// The tests that failed most (failures and errors), then slowest.
    pub most_failing: Vec<TestFigures>,
    /// How latencies spread: results per log-spaced bucket, from the first
    /// bucket with results to the last.
    pub latency_buckets: Vec<LatencyBucket>,
}

/// Results with a latency up to `le_ms` (and above the bucket before).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyBucket {
    /// The bucket's upper bound, ms (infinite for the last).
    pub le_ms: f64,
    /// Results in it.
    pub count: u32,
}

impl AnalyticsEngine {
    /// Execution `id`, with tests `offset..offset + limit`.
    pub async fn execution(
        &self,
        id: i64,
        limit: usize,
        offset: usize,
    ) -> Result<Answer<ExecutionAnalytics>, AnalyticsError> {
        let key = format!("{id} {limit} {offset}");
        let cache = &self.inner.caches.execution;
        self.answer_with_ttl("execution", cache, key, async {
            let record = self
                .inner
                .storage
                .get_execution(id)
                .await?
                .ok_or(AnalyticsError::ExecutionNotFound(id))?;
            let mut results = self.inner.storage.execution_tests(id).await?;
            // A running execution's figures move: they expire sooner.
            let ttl = (!record.status.is_final()).then_some(RUNNING_TTL);
            Ok((build(&record, &mut results, limit, offset), ttl))
        })
        .await
    }
}

fn build(
    r: &ExecutionRecord,
    results: &mut ExecutionResults,
    limit: usize,
    offset: usize,
) -> ExecutionAnalytics {
    let mut total = RollupSums::default();
    for (_, _, s) in &results.models {
        total.add(s);
    }
    let order = |a: &TestRow, b: &TestRow| b.max_latency_ms.cmp(&a.max_latency_ms);
    let mut slowest: Vec<&TestRow> = results.tests.iter().collect();
    slowest.sort_by(|a, b| order(a, b));
    let mut most_failing: Vec<&TestRow> = results
        .tests
        .iter()
        .filter(|t| t.failed + t.errors > 0)
        .collect();
    most_failing.sort_by(|a, b| {
        (b.failed + b.errors)
            .cmp(&(a.failed + a.errors))
            .then(order(a, b))
    });
    let now = crate::storage::now_ms();
    let latency_buckets = {
        let h = &total.latency.0;
        match (
            h.iter().position(|c| *c > 0),
            h.iter().rposition(|c| *c > 0),
        ) {
            (Some(a), Some(b)) => (a..=b)
                .map(|k| LatencyBucket {
                    le_ms: if k < FINITE_BUCKETS {
                        bucket_upper_ms(k)
                    } else {
                        f64::INFINITY
                    },
                    count: h[k],
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    ExecutionAnalytics {
        latency_buckets,
        id: r.id,
        status: r.status.as_str().to_owned(),
        suite_id: r.suite_id,
        total: r.total,
        duration_ms: r.started_at.map(|s| r.finished_at.unwrap_or(now) - s),
        summary: Figures::of(&total, Some(&mut results.latencies)),
        models: results
            .models
            .iter()
            .map(|(provider, model, s)| ModelFigures {
                provider: provider.clone(),
                model: model.clone(),
                figures: Figures::of(s, None),
            })
            .collect(),
        tests_total: results.tests.len(),
        tests: results
            .tests
            .iter()
            .skip(offset)
            .take(limit)
            .map(test)
            .collect(),
        slowest: slowest.into_iter().take(TOP).map(test).collect(),
        most_failing: most_failing.into_iter().take(TOP).map(test).collect(),
    }
}

fn test(t: &TestRow) -> TestFigures {
    TestFigures {
        prompt_idx: t.prompt_idx,
        test_idx: t.test_idx,
        provider: t.provider.clone(),
        model: t.model.clone(),
        runs: t.count,
        passed: t.passed,
        failed: t.failed,
        errors: t.errors,
        mean_latency_ms: if t.count > 0 {
            t.latency_sum_ms as f64 / t.count as f64
        } else {
            0.0
        },
        max_latency_ms: t.max_latency_ms,
        cost_usd: t.cost_nusd as f64 / crate::storage::rollup::NANOS_PER_USD,
    }
}
