//! One execution: its summary with exact percentiles, per provider/model,
//! a page of its tests, and its slowest and most failing tests.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::figures::Figures;
use super::queries::ModelFigures;
use super::{AnalyticsEngine, AnalyticsError, Answer};
use crate::storage::rollup::RollupSums;
use crate::storage::{ExecutionRecord, TestRow};

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
}

impl AnalyticsEngine {
    /// Execution `id`, with tests `offset..offset + limit`.
    pub async fn execution(
        &self,
        id: i64,
        limit: usize,
        offset: usize,
    ) -> Result<Answer<ExecutionAnalytics>, AnalyticsError> {
        let record = self
            .inner
            .storage
            .get_execution(id)
            .await?
            .ok_or(AnalyticsError::ExecutionNotFound(id))?;
        let ttl = (!record.status.is_final()).then_some(RUNNING_TTL);
        let key = format!("{id} {limit} {offset}");
        let cache = &self.inner.caches.execution;
        self.answer("execution", cache, key, ttl, async {
            let (tests, mut latencies) = self.inner.storage.execution_tests(id).await?;
            Ok(build(&record, &tests, &mut latencies, limit, offset))
        })
        .await
    }
}

fn build(
    r: &ExecutionRecord,
    tests: &[TestRow],
    latencies: &mut [i64],
    limit: usize,
    offset: usize,
) -> ExecutionAnalytics {
    let mut total = RollupSums::default();
    let mut models: BTreeMap<(String, String), RollupSums> = BTreeMap::new();
    for t in tests {
        total.add(&t.sums);
        models
            .entry((t.provider.clone(), t.model.clone()))
            .or_default()
            .add(&t.sums);
    }
    let figures: Vec<TestFigures> = tests.iter().map(test).collect();
    let mut slowest = figures.clone();
    slowest.sort_by_key(|t| std::cmp::Reverse(t.max_latency_ms));
    slowest.truncate(TOP);
    let mut most_failing: Vec<TestFigures> = figures
        .iter()
        .filter(|t| t.failed + t.errors > 0)
        .cloned()
        .collect();
    most_failing.sort_by(|a, b| {
        (b.failed + b.errors)
            .cmp(&(a.failed + a.errors))
            .then(b.max_latency_ms.cmp(&a.max_latency_ms))
    });
    most_failing.truncate(TOP);
    let now = crate::storage::now_ms();
    ExecutionAnalytics {
        id: r.id,
        status: r.status.as_str().to_owned(),
        suite_id: r.suite_id,
        total: r.total,
        duration_ms: r.started_at.map(|s| r.finished_at.unwrap_or(now) - s),
        summary: Figures::of(&total, Some(latencies)),
        models: models
            .into_iter()
            .map(|((provider, model), s)| ModelFigures {
                provider,
                model,
                figures: Figures::of(&s, None),
            })
            .collect(),
        tests_total: figures.len(),
        tests: figures.into_iter().skip(offset).take(limit).collect(),
        slowest,
        most_failing,
    }
}

fn test(t: &TestRow) -> TestFigures {
    let s = &t.sums;
    TestFigures {
        prompt_idx: t.prompt_idx,
        test_idx: t.test_idx,
        provider: t.provider.clone(),
        model: t.model.clone(),
        runs: s.count,
        passed: s.passed,
        failed: s.failed,
        errors: s.errors,
        mean_latency_ms: if s.count > 0 {
            s.latency_sum_ms as f64 / s.count as f64
        } else {
            0.0
        },
        max_latency_ms: t.max_latency_ms,
        cost_usd: s.cost_usd(),
    }
}
