//! One sample of each benchmark kind. Every runner works on its own
//! database under the benchmark folder (never the user's), through the real
//! app or its services, and is bounded in count and time.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::scenario::Kind;
use crate::analytics::{AnalyticsConfig, AnalyticsEngine};
use crate::app::App;
use crate::bench::fixtures::{create_executions, generate, remove_db, write_all_timed};
use crate::bench::history::{self, HistorySpec};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::queue::{SubmitRequest, SuiteSource};
use crate::reports::{Format, ReportSpec};
use crate::storage::{Priority, Storage, now_ms};

/// What one sample measured.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    /// Operations done (rows, tests, requests, queries, ...).
    pub(super) ops: u64,
    /// What one operation is.
    pub(super) unit: &'static str,
    /// Wall time of the measured part.
    pub(super) duration_s: f64,
    /// Each operation's time, ms (empty where only throughput is measured).
    pub(super) latencies_ms: Vec<f64>,
    /// Percentiles measured elsewhere (a server's clients), instead of `latencies_ms`.
    pub(super) latency: Option<super::Latency>,
    /// CPU seconds of child processes it waited for.
    pub(super) child_cpu_s: f64,
    /// The figure compared with baselines.
    pub(super) figure: Figure,
    /// Targets the benchmark carries, with whether each was met.
    pub(super) targets: Vec<(String, bool)>,
    /// Kind-specific figures.
    pub(super) details: Value,
}

/// Which number is compared, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Figure {
    /// Operations per second: higher is better.
    Throughput,
    /// p99 latency: lower is better.
    P99,
    /// A named value, lower is better (ms, MB).
    Lower(&'static str, f64),
    /// A named value, higher is better.
    Higher(&'static str, f64),
}

/// A fresh database path under `dir`.
fn fresh_db(dir: &Path, name: &str) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join(format!("suite-{name}.db"));
    remove_db(&db);
    Ok(db)
}

/// The real app on `db`, nothing cached when `cold`.
async fn app(db: &Path, cold: bool) -> anyhow::Result<App> {
    App::build(Config {
        port: 0,
        database_path: db.to_owned(),
        cache_ttl: cold.then(|| Duration::from_nanos(1)),
        ..Config::default()
    })
    .await
}

/// Runs one sample of `kind` under `dir`.
pub(super) async fn sample(kind: &Kind, dir: &Path) -> anyhow::Result<Sample> {
    match kind {
        Kind::Writer { rows } => writer(dir, *rows as usize).await,
        Kind::Queue {
            tests,
            concurrency,
            latency_ms,
        } => queue(dir, *tests, *concurrency, *latency_ms).await,
        Kind::Analytics { results, calls } => {
            analytics(dir, *results as usize, *calls as usize).await
        }
        Kind::Reports {
            results,
            execution_results,
            calls,
        } => {
            reports(
                dir,
                *results as usize,
                *execution_results as usize,
                *calls as usize,
            )
            .await
        }
        Kind::Optimize {
            prompt_tokens,
            calls,
        } => optimize(dir, *prompt_tokens as usize, *calls as usize).await,
        Kind::Websocket {
            clients,
            latency_ms,
            concurrency,
            duration_s,
        } => websocket(dir, *clients, *latency_ms, *concurrency, *duration_s).await,
        Kind::Http {
            connections,
            duration_s,
            requests,
            endpoints,
        } => http(dir, *connections, *duration_s, *requests, endpoints).await,
        Kind::Metrics { scrapes } => metrics(dir, *scrapes).await,
        Kind::Run { tests } => run_cli(dir, *tests).await,
        Kind::Target { scenario } => {
            anyhow::bail!("target scenario {scenario} is run by `targets`")
        }
    }
}

async fn writer(dir: &Path, rows: usize) -> anyhow::Result<Sample> {
    let db = fresh_db(dir, "writer")?;
    let storage = Storage::open(&db, Metrics::new()?.storage)?;
    let executions = create_executions(&storage).await?;
    let mut rng = fastrand::Rng::with_seed(5);
    let data = generate(&mut rng, rows, &executions, now_ms() - 3_600_000);
    let (took, per_command) = write_all_timed(&storage, data).await?;
    storage.close().await;
    remove_db(&db);
    Ok(Sample {
        ops: rows as u64,
        unit: "rows",
        duration_s: took.as_secs_f64(),
        latencies_ms: per_command,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::Throughput,
        targets: Vec::new(),
        details: json!({"rowsPerCommand": crate::bench::fixtures::ROWS_PER_COMMAND, "producers": crate::bench::fixtures::PRODUCERS}),
    })
}

/// A suite of `tests` tests (two list variables) on one mock provider.
fn suite(tests: u64, latency_ms: u64) -> Value {
    let side = (tests as f64).sqrt().ceil() as u64;
    let a: Vec<String> = (0..side).map(|i| i.to_string()).collect();
    let b: Vec<String> = (0..tests.div_ceil(side)).map(|i| i.to_string()).collect();
    json!({
        "description": "benchmark suite",
        "prompts": ["Item {{a}}-{{b}}: answer briefly."],
        "providers": [{"id": "mock:bench", "config": {"latencyMs": latency_ms, "seed": 1}}],
        "tests": [{"vars": {"a": a, "b": b}, "assert": [
            {"type": "not-is-refusal"},
            {"type": "latency", "threshold": 60_000}
        ]}],
    })
}

async fn queue(
    dir: &Path,
    tests: u64,
    concurrency: u64,
    latency_ms: u64,
) -> anyhow::Result<Sample> {
    let db = fresh_db(dir, "queue")?;
    let app = app(&db, false).await?;
    let q = app.queue().clone();
    let started = Instant::now();
    let at = now_ms();
    let submitted = q
        .submit(SubmitRequest {
            suite: SuiteSource::Document(
                crate::suite::Document::from_value(suite(tests, latency_ms))
                    .map_err(anyhow::Error::msg)?,
            ),
            providers: None,
            max_concurrency: Some(concurrency as u32),
            priority: Priority::Normal,
            use_cache: Some(false),
        })
        .await
        .context("submitting the benchmark suite")?;
    tokio::time::timeout(Duration::from_secs(600), q.ended(submitted.id))
        .await
        .context("the queue benchmark did not end within 10 minutes")?;
    let took = started.elapsed().as_secs_f64();
    let view = q.execution(submitted.id).await?;
    let page = q
        .results(submitted.id, None, submitted.total as i64, 0)
        .await?;
    let latencies: Vec<f64> = page
        .items
        .iter()
        .map(|r| (r.record.created_at - at) as f64)
        .collect();
    app.storage().close().await;
    drop(app);
    remove_db(&db);
    anyhow::ensure!(
        view.completed == submitted.total as i64,
        "{} of {} tests finished",
        view.completed,
        submitted.total
    );
    Ok(Sample {
        ops: view.completed as u64,
        unit: "tests",
        duration_s: took,
        latencies_ms: latencies,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::Throughput,
        targets: Vec::new(),
        details: json!({
            "concurrency": concurrency,
            "providerLatencyMs": latency_ms,
            "idealTestsPerSecond": if latency_ms == 0 { Value::Null } else { json!(concurrency as f64 * 1000.0 / latency_ms as f64) },
            "latencyIs": "from submission to each result stored",
        }),
    })
}

/// A history of `results` results over 30 days in a fresh database.
async fn history_db(
    dir: &Path,
    name: &str,
    results: usize,
) -> anyhow::Result<(std::path::PathBuf, Storage)> {
    let db = fresh_db(dir, name)?;
    let storage = Storage::open(&db, Metrics::new()?.storage)?;
    let spec = HistorySpec {
        results,
        days: 30,
        per_execution: (results / 50).clamp(10, 2_000),
        now: now_ms(),
        seed: 42,
    };
    history::store(&storage, &spec, |_, _, _| {}).await?;
    Ok((db, storage))
}

async fn analytics(dir: &Path, results: usize, calls: usize) -> anyhow::Result<Sample> {
    let (db, storage) = history_db(dir, "analytics", results).await?;
    let metrics = Metrics::new()?;
    let execution = storage.list_executions(None, 1, 0).await?.0[0].id;
    let cold = AnalyticsEngine::new(
        storage.clone(),
        &metrics,
        AnalyticsConfig {
            cache_ttl: Some(Duration::from_nanos(1)),
            ..AnalyticsConfig::default()
        },
    );
    let warm = AnalyticsEngine::new(storage.clone(), &metrics, AnalyticsConfig::default());
    let started = Instant::now();
    let mut misses = Vec::new();
    let mut per_query = serde_json::Map::new();
    let mut worst_hit_us: f64 = 0.0;
    for q in crate::bench::analytics::QUERIES {
        let mut own = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            q.call(&cold, execution).await?;
            own.push(t.elapsed().as_secs_f64() * 1e3);
        }
        q.call(&warm, execution).await?;
        let mut hits = Vec::with_capacity(calls);
        for _ in 0..calls {
            let t = Instant::now();
            q.call(&warm, execution).await?;
            hits.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let l = super::Latency::of(&mut own);
        let h = super::Latency::of(&mut hits);
        worst_hit_us = worst_hit_us.max(h.p99);
        per_query.insert(
            q.name.to_owned(),
            json!({"missP50Ms": l.p50, "missP99Ms": l.p99, "hitP50Us": h.p50, "hitP99Us": h.p99}),
        );
        misses.extend(own);
    }
    let took = started.elapsed().as_secs_f64();
    storage.close().await;
    remove_db(&db);
    Ok(Sample {
        ops: (misses.len() * 2) as u64,
        unit: "queries",
        duration_s: took,
        latencies_ms: misses,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: Vec::new(),
        details: json!({"results": results, "latencyIs": "cache misses", "worstHitP99Us": worst_hit_us, "queries": per_query}),
    })
}

async fn reports(
    dir: &Path,
    results: usize,
    execution_results: usize,
    calls: usize,
) -> anyhow::Result<Sample> {
    let (db, storage) = history_db(dir, "reports", results).await?;
    let execution = crate::bench::reports::store_execution(&storage, execution_results).await?;
    storage.close().await;
    let cold = app(&db, true).await?;
    let specs = [
        ("execution", json!({"execution": execution})),
        ("model-comparison", json!({"window": "30d"})),
        ("cost", json!({"window": "30d"})),
        ("trend", json!({"period": "week"})),
        ("performance", json!({"window": "1h"})),
    ];
    let started = Instant::now();
    let mut all = Vec::new();
    let mut per = serde_json::Map::new();
    for (kind, params) in &specs {
        let spec = ReportSpec::parse(kind, params).map_err(|e| anyhow::anyhow!("{e}"))?;
        for format in Format::ALL {
            let mut own = Vec::with_capacity(calls);
            for _ in 0..calls {
                let t = Instant::now();
                cold.reports()
                    .generate(spec, format)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                own.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let l = super::Latency::of(&mut own);
            per.insert(
                format!("{kind} {}", format.name()),
                json!({"p50Ms": l.p50, "maxMs": l.max}),
            );
            all.extend(own);
        }
    }
    let took = started.elapsed().as_secs_f64();
    cold.storage().close().await;
    drop(cold);
    remove_db(&db);
    Ok(Sample {
        ops: all.len() as u64,
        unit: "reports",
        duration_s: took,
        latencies_ms: all,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: Vec::new(),
        details: json!({"results": results, "executionResults": execution_results, "latencyIs": "nothing cached", "reports": per}),
    })
}

async fn optimize(dir: &Path, prompt_tokens: usize, calls: usize) -> anyhow::Result<Sample> {
    let started = Instant::now();
    let (f, miss, _hits) =
        crate::bench::optimize::measure(dir, prompt_tokens, calls, calls * 10).await?;
    Ok(Sample {
        ops: (calls * 11) as u64,
        unit: "analyses",
        duration_s: started.elapsed().as_secs_f64(),
        latencies_ms: miss,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: Vec::new(),
        details: json!({"promptTokens": f.prompt_tokens, "suggestions": f.suggestions, "latencyIs": "cache misses", "hitUs": f.hit_us, "stepsP50Ms": f.steps_p50_ms}),
    })
}

async fn websocket(
    dir: &Path,
    clients: u64,
    latency_ms: u64,
    concurrency: u64,
    duration_s: u64,
) -> anyhow::Result<Sample> {
    use crate::bench::websocket::{Watch, WsScenario};
    let s = WsScenario {
        name: "suite-ws",
        subscribers: clients as usize,
        executions: 1,
        concurrency: concurrency as usize,
        latency_ms,
        watch: Watch::ProgressTopic,
        measure_secs: duration_s,
        target_p99_ms: f64::INFINITY,
        bare_rate: None,
    };
    let f = crate::bench::websocket::run(&s, dir).await?;
    let [p50, p95, p99, max] = f.latency_ms;
    Ok(Sample {
        ops: (f.deliveries_per_sec * f.seconds) as u64,
        unit: "frames",
        duration_s: f.seconds,
        latencies_ms: Vec::new(),
        latency: Some(super::Latency { p50, p95, p99, max }),
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: Vec::new(),
        details: json!({
            "clients": clients,
            "serverCpuCores": f.server_cpu_cores,
            "serverPeakRssMb": f.server_peak_rss_mb,
            "resyncs": f.resyncs,
            "dropped": f.dropped,
        }),
    })
}

/// The real app serving on loopback until the token is cancelled.
struct Served {
    base: String,
    token: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    db: std::path::PathBuf,
}

impl Served {
    async fn start(dir: &Path, name: &str, history_results: usize) -> anyhow::Result<Self> {
        let db = if history_results > 0 {
            let (db, storage) = history_db(dir, name, history_results).await?;
            storage.close().await;
            db
        } else {
            fresh_db(dir, name)?
        };
        let app = app(&db, false).await?;
        let base = format!("http://{}", app.local_addr());
        let token = CancellationToken::new();
        let stop = token.clone();
        let task = tokio::spawn(app.run(async move { stop.cancelled().await }));
        Ok(Self {
            base,
            token,
            task,
            db,
        })
    }

    async fn stop(self) {
        self.token.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        remove_db(&self.db);
    }
}

async fn http(
    dir: &Path,
    connections: u64,
    duration_s: Option<u64>,
    requests: Option<u64>,
    endpoints: &[String],
) -> anyhow::Result<Sample> {
    crate::common::tls::install_crypto_provider();
    let served = Served::start(dir, "http", 20_000).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections as usize)
        .build()?;
    let issued = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(duration_s.unwrap_or(300));
    let limit = requests.unwrap_or(u64::MAX);
    let endpoints: Arc<Vec<String>> = Arc::new(endpoints.to_vec());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let (client, issued, errors, endpoints, base) = (
            client.clone(),
            issued.clone(),
            errors.clone(),
            endpoints.clone(),
            served.base.clone(),
        );
        tasks.spawn(async move {
            let mut took = Vec::new();
            let mut k = c as usize;
            while Instant::now() < deadline {
                if issued.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
                let path = &endpoints[k % endpoints.len()];
                k += 1;
                let t = Instant::now();
                let ok = match client.get(format!("{base}{path}")).send().await {
                    Ok(r) => {
                        let good = r.status().is_success();
                        let _ = r.bytes().await;
                        good
                    }
                    Err(_) => false,
                };
                took.push(t.elapsed().as_secs_f64() * 1e3);
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            took
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t?);
    }
    let took = started.elapsed().as_secs_f64();
    served.stop().await;
    let errors = errors.load(Ordering::Relaxed);
    Ok(Sample {
        ops: all.len() as u64,
        unit: "requests",
        duration_s: took,
        latencies_ms: all,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: vec![(format!("no failed requests ({errors})"), errors == 0)],
        details: json!({"connections": connections, "endpoints": *endpoints, "errors": errors, "historyResults": 20_000}),
    })
}

async fn metrics(dir: &Path, scrapes: u64) -> anyhow::Result<Sample> {
    crate::common::tls::install_crypto_provider();
    let served = Served::start(dir, "metrics", 0).await?;
    let client = reqwest::Client::new();
    // One execution first, so the families carry real series.
    let _ = client
        .post(format!("{}/api/executions", served.base))
        .json(&json!({"suite": suite(100, 0)}))
        .send()
        .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut took = Vec::with_capacity(scrapes as usize);
    let mut bytes = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let body = client
            .get(format!("{}/metrics", served.base))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        took.push(t.elapsed().as_secs_f64() * 1e3);
        bytes = body.len();
    }
    let duration = started.elapsed().as_secs_f64();
    served.stop().await;
    Ok(Sample {
        ops: scrapes,
        unit: "scrapes",
        duration_s: duration,
        latencies_ms: took,
        latency: None,
        child_cpu_s: 0.0,
        figure: Figure::P99,
        targets: Vec::new(),
        details: json!({"bytes": bytes}),
    })
}

/// The `promptgauge` binary: this one, unless it is not (tests).
fn binary() -> anyhow::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let name = exe.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    anyhow::ensure!(
        name == "promptgauge",
        "the `run` benchmark starts the promptgauge binary; this process is {}",
        exe.display()
    );
    Ok(exe)
}

async fn run_cli(dir: &Path, tests: u64) -> anyhow::Result<Sample> {
    let exe = binary()?;
    std::fs::create_dir_all(dir)?;
    let db = fresh_db(dir, "run")?;
    let config = dir.join("suite-run.yaml");
    let mut yaml = String::from(
        "description: promptgauge run benchmark\nprompts:\n  - \"Answer briefly: {{question}}\"\nproviders:\n  - id: mock:run\n    config:\n      latencyMs: 0\n      seed: 3\ntests:\n",
    );
    for i in 0..tests {
        yaml.push_str(&format!(
            "  - description: case {i}\n    vars:\n      question: \"What is {i} + {i}?\"\n    assert:\n      - type: not-is-refusal\n      - type: latency\n        threshold: 60000\n"
        ));
    }
    std::fs::write(&config, yaml)?;
    let (cpu_before, _) = children_usage();
    let started = Instant::now();
    let out = tokio::process::Command::new(exe)
        .arg("run")
        .arg(&config)
        .env("DATABASE_PATH", &db)
        .env("CI", "1")
        .env_remove("API_TOKEN")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), out)
        .await
        .context("promptgauge run did not end within 10 minutes")??;
    let took = started.elapsed().as_secs_f64();
    let (cpu_after, max_rss_mb) = children_usage();
    remove_db(&db);
    let _ = std::fs::remove_file(&config);
    // 0: all passed; 100: some failed. Anything else is a failed run.
    anyhow::ensure!(
        matches!(out.status.code(), Some(0 | 100)),
        "promptgauge run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Sample {
        ops: tests,
        unit: "tests",
        duration_s: took,
        latencies_ms: Vec::new(),
        latency: None,
        child_cpu_s: cpu_after - cpu_before,
        figure: Figure::Lower("wall_seconds", took),
        targets: Vec::new(),
        details: json!({"childCpuSeconds": cpu_after - cpu_before, "childMaxRssMb": max_rss_mb}),
    })
}

/// CPU seconds of waited-for children, and the largest child's peak RSS, MB.
fn children_usage() -> (f64, f64) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: getrusage writes into the struct we own.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) } == 0 {
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            return (
                secs(u.ru_utime) + secs(u.ru_stime),
                u.ru_maxrss as f64 / 1000.0,
            );
        }
    }
    (0.0, 0.0)
}
