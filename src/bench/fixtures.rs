//! Realistic stored results, for the benches and `promptgauge bench`: a
//! deterministic generator and a cached database of 1,000,000 results.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use anyhow::Context;

use crate::storage::{NewExecution, NewTestResult, Storage, now_ms};

/// Rows per write command. What sets throughput is rows per transaction:
/// every commit rewrites each index page it touched, and inserts land on
/// random pages of three of the four indexes. The queue's result sink sends
/// what accumulated while its previous write was in flight, up to this.
pub const ROWS_PER_COMMAND: usize = 5_000;
/// Concurrent producers (executions with their own sinks); the writer
/// groups their commands into one transaction.
pub const PRODUCERS: usize = 4;
/// Executions the preloaded rows are spread over (ids `1..=EXECUTIONS`).
pub const EXECUTIONS: i64 = 1_000;
/// Rows in the preloaded database.
pub const PRELOADED: usize = 1_000_000;
/// Rows generated per round while preloading.
const CHUNK: usize = 100_000;
/// Bump when the generator changes, so cached databases are rebuilt.
const GENERATOR_VERSION: u32 = 2;

const MODELS: &[(&str, &str, f64, f64)] = &[
    // (provider, model, $ per 1M input, $ per 1M output)
    ("openai:chat", "gpt-4o-mini", 0.15, 0.6),
    ("openai:chat", "gpt-4o", 2.5, 10.0),
    ("anthropic:messages", "claude-3-5-haiku", 0.8, 4.0),
    ("anthropic:messages", "claude-3-5-sonnet", 3.0, 15.0),
    ("openai:chat", "llama-3.1-8b-instruct", 0.05, 0.08),
    ("openai:chat", "llama-3.1-70b-instruct", 0.6, 0.6),
    ("openai:chat", "mistral-small", 0.2, 0.6),
    ("openai:chat", "gemini-1.5-flash", 0.075, 0.3),
];

const WORDS: &[&str] = &[
    "the",
    "answer",
    "is",
    "Paris",
    "because",
    "according",
    "to",
    "context",
    "we",
    "find",
    "that",
    "customer",
    "refund",
    "policy",
    "allows",
    "returns",
    "within",
    "thirty",
    "days",
    "summary",
    "JSON",
    "output",
    "sentiment",
    "positive",
    "negative",
    "neutral",
    "step",
    "first",
    "then",
    "finally",
    "translation",
    "bonjour",
    "capital",
    "France",
    "model",
];

/// Deterministic realistic rows: random model, log-normal latency, 85 %
/// pass rate, outputs of 100-600 characters, grading JSON.
pub fn generate(
    rng: &mut fastrand::Rng,
    count: usize,
    executions: &[i64],
    start_ms: i64,
) -> Vec<NewTestResult> {
    (0..count)
        .map(|i| {
            let (provider, model, price_in, price_out) = MODELS[rng.usize(..MODELS.len())];
            let passed = rng.f64() < 0.85;
            let errored = !passed && rng.f64() < 0.2;
            // Log-normal: median 900 ms, sigma 0.8 (p99 around 6 s).
            let normal = (-2.0 * rng.f64().max(1e-12).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * rng.f64()).cos();
            let latency = (900.0 * (0.8 * normal).exp()) as i64;
            let input_tokens = rng.i64(50..1500);
            let output_tokens = if errored { 0 } else { rng.i64(20..800) };
            let output_len = rng.usize(100..600);
            let mut output = String::with_capacity(output_len + 16);
            while output.len() < output_len {
                output.push_str(WORDS[rng.usize(..WORDS.len())]);
                output.push(' ');
            }
            let score = if passed { 1.0 } else { rng.f64() * 0.8 };
            NewTestResult {
                id: None,
                execution_id: executions[rng.usize(..executions.len())],
                prompt_idx: rng.i64(0..4),
                test_idx: rng.i64(0..200),
                provider: format!("{provider}:{model}"),
                model: model.to_owned(),
                passed,
                score,
                failure_reason: if passed { 0 } else if errored { 2 } else { 1 },
                execution_time_ms: if errored { 0 } else { latency.max(1) },
                input_tokens,
                output_tokens,
                cost_usd: (input_tokens as f64 * price_in + output_tokens as f64 * price_out) / 1e6,
                cached: rng.f64() < 0.1,
                output: (!errored).then_some(output),
                error: errored.then(|| "provider returned 503 Service Unavailable".to_owned()),
                grading: Some(format!(
                    r#"[{{"pass":{passed},"score":{score:.3},"reason":"Assertion passed","assertion":{{"type":"contains","value":"Paris"}}}},{{"pass":true,"score":1,"reason":"Assertion passed","assertion":{{"type":"is-json"}}}}]"#
                )),
                created_at: start_ms + i as i64 * 2,
            }
        })
        .collect()
}

/// [`EXECUTIONS`] empty executions to hang results on.
pub async fn create_executions(storage: &Storage) -> anyhow::Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(EXECUTIONS as usize);
    for _ in 0..EXECUTIONS {
        let new = NewExecution {
            config: "{}".into(),
            ..Default::default()
        };
        ids.push(storage.create_execution(new).await?.0);
    }
    Ok(ids)
}

/// Writes `rows` with `PRODUCERS` concurrent producers; returns the time taken.
pub async fn write_all(storage: &Storage, rows: Vec<NewTestResult>) -> anyhow::Result<Duration> {
    Ok(write_all_timed(storage, rows).await?.0)
}

/// [`write_all`], with each command's time to acknowledgement, ms.
pub async fn write_all_timed(
    storage: &Storage,
    rows: Vec<NewTestResult>,
) -> anyhow::Result<(Duration, Vec<f64>)> {
    let mut commands: Vec<Vec<NewTestResult>> = Vec::new();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        commands.push(rows.by_ref().take(ROWS_PER_COMMAND).collect());
    }
    let mut per_producer: Vec<Vec<Vec<NewTestResult>>> =
        (0..PRODUCERS).map(|_| Vec::new()).collect();
    for (i, c) in commands.into_iter().enumerate() {
        per_producer[i % PRODUCERS].push(c);
    }
    let started = Instant::now();
    let tasks: Vec<_> = per_producer
        .into_iter()
        .map(|cmds| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(cmds.len());
                for c in cmds {
                    let t = Instant::now();
                    storage.insert_results(c).await?;
                    took.push(t.elapsed().as_secs_f64() * 1e3);
                }
                anyhow::Ok(took)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.context("a producer panicked")??);
    }
    Ok((started.elapsed(), all))
}

/// The cached database holding [`PRELOADED`] generated results, under
/// `dir`; generated (about 30 s) on first use. Copy it before writing.
pub async fn preloaded_db(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!(
        "results-{PRELOADED}-v{GENERATOR_VERSION}-{}.db",
        crate::storage::schema_fingerprint()
    ));
    if path.exists() {
        return Ok(path);
    }
    tracing::warn!(path = %path.display(), "generating {PRELOADED} results (cached for later runs)");
    let partial = path.with_extension("partial");
    remove_db(&partial);
    let metrics = Metrics::new()?;
    let storage = Storage::open(&partial, metrics.storage.clone())?;
    let executions = create_executions(&storage).await?;
    let mut rng = fastrand::Rng::with_seed(7);
    // Spread over the last 30 days.
    let start = now_ms() - 30 * 86_400_000;
    for chunk in 0..PRELOADED / CHUNK {
        let rows = generate(
            &mut rng,
            CHUNK,
            &executions,
            start + (chunk * CHUNK) as i64 * 2,
        );
        write_all(&storage, rows).await?;
    }
    storage.optimize().await?;
    storage.close().await;
    std::fs::rename(&partial, &path)
        .with_context(|| format!("cannot move the generated database to {}", path.display()))?;
    remove_db(&partial);
    Ok(path)
}

/// Deletes a database and its WAL and shared-memory files.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
