//! Writer throughput: realistic test_results rows through the real writer
//! thread (group commit, four indexes), into an empty table and into a table
//! already holding 1,000,000 rows.
//!
//! `cargo bench --bench writer`. The 1M-row database is generated once and
//! cached under `target/tmp/`; each sample works on a fresh copy of it, so
//! every sample starts from the same state.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use promptgauge::metrics::Metrics;
use promptgauge::storage::{NewExecution, NewTestResult, Storage, now_ms};

/// Rows inserted per sample.
const ROWS: usize = 100_000;
/// Rows per write command. What sets throughput is rows per transaction:
/// every commit rewrites each index page it touched, and inserts land on
/// random pages of three of the four indexes. The queue's result sink sends
/// what accumulated while its previous write was in flight, up to this.
const ROWS_PER_COMMAND: usize = 5_000;
/// Concurrent producers (executions with their own sinks); the writer
/// groups their commands into one transaction.
const PRODUCERS: usize = 4;
/// Executions the rows are spread over.
const EXECUTIONS: i64 = 1_000;
/// Rows in the preloaded database.
const PRELOADED: usize = 1_000_000;
/// Bump when the generator changes, so the cached database is rebuilt.
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
fn generate(
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

async fn create_executions(storage: &Storage) -> Vec<i64> {
    let mut ids = Vec::with_capacity(EXECUTIONS as usize);
    for _ in 0..EXECUTIONS {
        let new = NewExecution {
            config: "{}".into(),
            ..Default::default()
        };
        ids.push(storage.create_execution(new).await.unwrap());
    }
    ids
}

/// Writes `rows` with `PRODUCERS` concurrent producers; returns the time taken.
async fn write_all(storage: &Storage, rows: Vec<NewTestResult>) -> Duration {
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
                for c in cmds {
                    storage.insert_results(c).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("writer-bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The cached 1M-row database, generated on first use.
fn preloaded_db(rt: &tokio::runtime::Runtime) -> PathBuf {
    let path = bench_dir().join(format!(
        "results-{PRELOADED}-v{GENERATOR_VERSION}-s{}.db",
        promptgauge::storage::SCHEMA_VERSION
    ));
    if path.exists() {
        return path;
    }
    eprintln!(
        "generating {PRELOADED} rows into {} (cached for later runs)",
        path.display()
    );
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    rt.block_on(async {
        let metrics = Metrics::new().unwrap();
        let storage = Storage::open(&partial, metrics.storage.clone()).unwrap();
        let executions = create_executions(&storage).await;
        let mut rng = fastrand::Rng::with_seed(7);
        // Spread over the last 30 days.
        let start = now_ms() - 30 * 86_400_000;
        for chunk in 0..PRELOADED / ROWS {
            let rows = generate(
                &mut rng,
                ROWS,
                &executions,
                start + (chunk * ROWS) as i64 * 2,
            );
            write_all(&storage, rows).await;
        }
        storage.optimize().await.unwrap();
        storage.close().await;
    });
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// Deletes a database and its WAL and shared-memory files.
fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// How a sample ends: when the last write is acknowledged (what producers
/// see; the background checkpointer may still owe work), or after the
/// storage closed and folded the whole WAL into the database file.
#[derive(Clone, Copy)]
enum Until {
    Acknowledged,
    Checkpointed,
}

/// Opens `path`, inserts `ROWS` rows with `PRODUCERS` producers, times it.
fn sample(
    rt: &tokio::runtime::Runtime,
    path: &Path,
    seed: u64,
    until: Until,
    preloaded: bool,
) -> Duration {
    rt.block_on(async {
        let metrics = Metrics::new().unwrap();
        let storage = Storage::open(path, metrics.storage.clone()).unwrap();
        let executions = if preloaded {
            // Created first by the generator, so their ids are 1..=EXECUTIONS.
            (1..=EXECUTIONS).collect()
        } else {
            create_executions(&storage).await
        };
        let rows = generate(
            &mut fastrand::Rng::with_seed(seed),
            ROWS,
            &executions,
            now_ms(),
        );
        let started = Instant::now();
        let acknowledged = write_all(&storage, rows).await;
        storage.close().await;
        match until {
            Until::Acknowledged => acknowledged,
            Until::Checkpointed => started.elapsed(),
        }
    })
}

fn writer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("writer");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(ROWS as u64));
    let dir = bench_dir();
    let preloaded = preloaded_db(&rt);
    let cases = [
        (
            "insert_100k_rows_into_empty_table",
            false,
            Until::Acknowledged,
        ),
        (
            "insert_100k_rows_into_empty_table_then_checkpoint",
            false,
            Until::Checkpointed,
        ),
        ("insert_100k_rows_with_1m_stored", true, Until::Acknowledged),
        (
            "insert_100k_rows_with_1m_stored_then_checkpoint",
            true,
            Until::Checkpointed,
        ),
    ];
    for (name, with_1m, until) in cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|i| {
                        let path = dir.join("sample.db");
                        remove_db(&path);
                        if with_1m {
                            std::fs::copy(&preloaded, &path).unwrap();
                        }
                        sample(&rt, &path, i, until, with_1m)
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
