//! A generated result history with known truth: executions spread over
//! N days, each a burst of results from a few of eight models (three
//! providers) with their own pass rates, latencies and prices, on three
//! stored suites and inline ones. Deterministic for a seed. The analytics
//! tests compare every answer with sums over these rows; the analytics
//! benchmark stores a million of them.

use serde_json::json;

use crate::storage::{NewExecution, NewSuite, NewTestResult, Storage, StorageError};

/// (provider, model, pass rate, median latency ms, dollars per call).
pub const MODELS: [(&str, &str, f64, f64, f64); 8] = [
    ("openai:gpt-4o", "gpt-4o", 0.93, 1400.0, 0.006),
    ("openai:gpt-4o-mini", "gpt-4o-mini", 0.86, 700.0, 0.0004),
    ("openai:o1-mini", "o1-mini", 0.95, 6000.0, 0.012),
    (
        "anthropic:claude-3-5-sonnet",
        "claude-3-5-sonnet",
        0.94,
        1800.0,
        0.009,
    ),
    (
        "anthropic:claude-3-haiku",
        "claude-3-haiku",
        0.84,
        500.0,
        0.0005,
    ),
    ("mock:llama3-70b", "llama3-70b", 0.88, 900.0, 0.0009),
    ("mock:llama3-8b", "llama3-8b", 0.71, 250.0, 0.0001),
    ("mock:mistral-large", "mistral-large", 0.9, 1100.0, 0.004),
];

/// Stored suites the history uses (executions on inline suites have none).
pub const SUITES: usize = 3;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct HistorySpec {
    /// Results in all.
    pub results: usize,
    /// Over the last this many days.
    pub days: i64,
    /// Results per execution (the last one may have fewer).
    pub per_execution: usize,
    /// "Now", unix ms: every result is before it.
    pub now: i64,
    /// The generator's seed.
    pub seed: u64,
}

/// One execution of the history.
#[derive(Debug, Clone)]
pub struct PlannedExecution {
    /// Its suite: 0..SUITES, or `None` for an inline suite.
    pub suite: Option<usize>,
    /// When its first result was stored, unix ms.
    pub start: i64,
    /// How long its burst lasts, ms.
    pub burst_ms: i64,
    /// Its models (indexes into [`MODELS`]).
    pub models: Vec<usize>,
    /// Results.
    pub results: usize,
}

/// The executions of a history: most spread over the days, and a few in
/// the last hour (and minutes), so real-time windows have data.
pub fn plan(spec: &HistorySpec) -> Vec<PlannedExecution> {
    let mut rng = fastrand::Rng::with_seed(spec.seed);
    let n = spec.results.div_ceil(spec.per_execution);
    let span = spec.days * 86_400_000;
    (0..n)
        .map(|i| {
            let results = spec
                .per_execution
                .min(spec.results - i * spec.per_execution);
            let burst_ms = rng.i64(60_000..1_800_000);
            // The last few: in the last hour, the very last ones in the last minutes.
            let start = match n - i {
                1 => spec.now - 4 * 60_000,
                2..=4 => spec.now - rng.i64(10 * 60_000..55 * 60_000),
                _ => spec.now - span + rng.i64(0..span - 2 * 3_600_000),
            };
            let burst_ms = burst_ms.min(spec.now - start - 1_000);
            let k = rng.usize(1..=3);
            let mut models: Vec<usize> = (0..k).map(|_| rng.usize(0..MODELS.len())).collect();
            models.sort_unstable();
            models.dedup();
            PlannedExecution {
                suite: (rng.u8(0..4) < 3).then(|| rng.usize(0..SUITES)),
                start,
                burst_ms,
                models,
                results,
            }
        })
        .collect()
}

/// The rows of execution `i` of the plan, stored as execution `id` with
/// result ids from `first_id`.
pub fn rows(
    spec: &HistorySpec,
    i: usize,
    e: &PlannedExecution,
    id: i64,
    first_id: i64,
) -> Vec<NewTestResult> {
    let mut rng =
        fastrand::Rng::with_seed(spec.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..e.results)
        .map(|j| {
            let m = e.models[j % e.models.len()];
            let (provider, model, pass_rate, median, price) = MODELS[m];
            // Log-normal latency around the median; one in fifty slow.
            let z = (rng.f64() + rng.f64() + rng.f64() - 1.5) * 1.4;
            let slow = if rng.u8(0..50) == 0 { 4.0 } else { 1.0 };
            let latency = (median * z.exp() * slow).round().max(1.0) as i64;
            let error = rng.u8(0..100) < 2;
            let passed = !error && rng.f64() < pass_rate;
            let tokens_in = rng.i64(50..600);
            let tokens_out = rng.i64(20..900);
            NewTestResult {
                id: Some(first_id + j as i64),
                execution_id: id,
                prompt_idx: (j % 2) as i64,
                test_idx: (j / 2) as i64,
                provider: provider.to_owned(),
                model: model.to_owned(),
                passed,
                score: if passed { 1.0 } else { 0.25 },
                failure_reason: if passed {
                    0
                } else if error {
                    2
                } else {
                    1
                },
                execution_time_ms: latency,
                input_tokens: tokens_in,
                output_tokens: tokens_out,
                cost_usd: if error {
                    0.0
                } else {
                    price * (tokens_in + tokens_out) as f64 / 500.0
                },
                cached: false,
                output: Some(format!("answer {j}")),
                error: error.then(|| "provider error 500".to_owned()),
                grading: None,
                created_at: e.start + (j as i64 * e.burst_ms) / e.results.max(1) as i64,
            }
        })
        .collect()
}

/// Stores the suites, then every execution and its rows through the
/// writer (rollups kept as in the service); `keep` sees each execution's
/// stored id and rows (the tests keep them to compare). Returns the suite
/// ids.
pub async fn store(
    storage: &Storage,
    spec: &HistorySpec,
    mut keep: impl FnMut(i64, Option<i64>, &[NewTestResult]),
) -> Result<Vec<i64>, StorageError> {
    let mut suites = Vec::new();
    for s in 0..SUITES {
        let doc = json!({"description": format!("history suite {s}")}).to_string();
        let (id, _) = storage
            .create_suite(NewSuite {
                name: format!("history suite {s}"),
                description: None,
                format: "json".to_owned(),
                source: doc.clone(),
                config: doc.clone(),
                config_hash: crate::hash::sha256_hex(doc.as_bytes()),
                prompts: Vec::new(),
                tests: Box::new(|| Box::new(std::iter::empty())),
            })
            .await?;
        suites.push(id);
    }
    for (i, e) in plan(spec).iter().enumerate() {
        let suite_id = e.suite.map(|s| suites[s]);
        let (id, first) = storage
            .create_execution(NewExecution {
                suite_id,
                config: "{}".to_owned(),
                use_cache: false,
                total: e.results as i64,
                ..NewExecution::default()
            })
            .await?;
        let rows = rows(spec, i, e, id, first);
        keep(id, suite_id, &rows);
        for chunk in rows.chunks(5000) {
            storage.insert_results(chunk.to_vec()).await?;
        }
        // Finished, as a history is: a server started on it has nothing to resume.
        storage
            .set_execution_status(id, crate::storage::ExecutionStatus::Completed, None)
            .await?;
    }
    Ok(suites)
}
