//! Queue throughput: a whole execution through the real test queue (jobs
//! persisted, lanes, the `mock` provider sleeping a fixed latency, grading,
//! the result sink, the writer) on its own database file.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::queue::{QueueConfig, SubmitRequest, SuiteSource, TestQueue};
use crate::storage::{ExecutionStatus, Priority, Storage};
use crate::suite::Format;

/// One load shape.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// Prompts in the suite (jobs = prompts x tests).
    pub prompts: usize,
    /// Tests in the suite (at most the suite limit, 10,000).
    pub tests: usize,
    /// Tests in flight (the provider's concurrency).
    pub in_flight: usize,
    /// The mock's fixed latency.
    pub latency_ms: u64,
    /// Start from the cached database of 1,000,000 stored results.
    pub preloaded: bool,
    /// What must hold.
    pub target: Target,
}

/// A scenario's pass mark.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Steady results per second at least this.
    Rate(f64),
    /// Peak resident memory below this many MB.
    PeakRssMb(f64),
}

/// The scenarios the targets name.
pub const SCENARIOS: [Scenario; 3] = [
    Scenario {
        name: "queue-1k",
        prompts: 5,
        tests: 10_000,
        in_flight: 1_000,
        latency_ms: 200,
        preloaded: false,
        // 95 % of 1,000 / 0.2 s.
        target: Target::Rate(4_750.0),
    },
    Scenario {
        name: "queue-10k",
        prompts: 20,
        tests: 10_000,
        in_flight: 10_000,
        latency_ms: 200,
        preloaded: true,
        target: Target::Rate(20_000.0),
    },
    Scenario {
        name: "queue-100k-memory",
        prompts: 10,
        tests: 10_000,
        in_flight: 10_000,
        latency_ms: 200,
        preloaded: false,
        target: Target::PeakRssMb(250.0),
    },
];

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Figures {
    /// The scenario.
    pub scenario: String,
    /// Results stored.
    pub results: i64,
    /// Submit to the execution's end.
    pub seconds: f64,
    /// results / seconds.
    pub rate: f64,
    /// Results per second between 10 % and 90 % done (no ramp, no tail);
    /// the overall rate when the run was too short to see that window.
    pub steady_rate: f64,
    /// Whether `steady_rate` was measured (else it is the overall rate).
    #[serde(default)]
    pub steady_measured: bool,
    /// in_flight / latency: the most the queue could do.
    pub ideal_rate: f64,
    /// Peak resident memory of the process (Linux), in MB.
    pub peak_rss_mb: Option<f64>,
    /// Of which SQLite had allocated at most (page caches mostly), in MB.
    pub sqlite_peak_mb: f64,
    /// Share of the run the storage writer spent in transactions (1.0:
    /// the writer is what bounds the rate).
    pub writer_busy: f64,
    /// Results stored before the run.
    pub preloaded: usize,
    /// The target, in words.
    pub target: String,
    /// Whether it was met.
    pub met: bool,
}

/// The suite: `prompts` prompts x one mock provider x `tests` tests (list
/// vars expand into the tests), two cheap assertions each.
fn suite(s: &Scenario) -> String {
    let side = (s.tests as f64).sqrt().ceil() as usize;
    let a: Vec<String> = (0..side).map(|i| i.to_string()).collect();
    let b: Vec<String> = (0..s.tests.div_ceil(side)).map(|i| i.to_string()).collect();
    json!({
        "description": format!("bench {}", s.name),
        "prompts": (0..s.prompts).map(|p| format!("Prompt {p}: item {{{{a}}}}-{{{{b}}}}")).collect::<Vec<_>>(),
        "providers": [{"id": "mock:bench", "config": {"latencyMs": s.latency_ms, "seed": 1}}],
        "tests": [{"vars": {"a": a, "b": b}, "assert": [
            {"type": "not-is-refusal"},
            {"type": "latency", "threshold": 60_000}
        ]}],
    })
    .to_string()
}

/// Runs `s` on the database at `db` (created or copied by the caller).
pub async fn run(s: &Scenario, db: &Path) -> anyhow::Result<Figures> {
    let metrics = Metrics::new()?;
    let storage = Storage::open(db, metrics.storage.clone())?;
    let preloaded = storage.count_results().await? as usize;
    let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
    let queue = TestQueue::start(
        storage.clone(),
        &metrics,
        crate::events::EventBus::new(),
        QueueConfig {
            max_concurrency: s.in_flight,
            cache_ttl: None,
            credentials: crate::providers::Credentials::Local,
        },
        tracker.clone(),
        token.clone(),
    );
    let writer_time = || metrics.storage.writer_commit_duration.get_sample_sum();
    let busy_before = writer_time();
    let started = Instant::now();
    let submitted = queue
        .submit(SubmitRequest {
            suite: SuiteSource::Inline {
                source: suite(s),
                format: Format::Json,
            },
            providers: None,
            max_concurrency: Some(s.in_flight as u32),
            priority: Priority::Normal,
            use_cache: Some(false),
        })
        .await
        .context("submitting the bench suite")?;
    let total = submitted.total as i64;
    let (mut at10, mut at90) = (None, None);
    let view = loop {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let view = queue.execution(submitted.id).await?;
        let done = view.completed;
        if at10.is_none() && done * 10 >= total {
            at10 = Some((Instant::now(), done));
        }
        if at90.is_none() && done * 10 >= total * 9 {
            at90 = Some((Instant::now(), done));
        }
        if !matches!(
            view.record.status,
            ExecutionStatus::Pending | ExecutionStatus::Running
        ) {
            break view;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let writer_busy = (writer_time() - busy_before) / seconds;
    token.cancel();
    queue.close();
    tracker.close();
    tracker.wait().await;
    storage.close().await;
    anyhow::ensure!(
        view.record.status == ExecutionStatus::Completed && view.completed == total,
        "the execution ended {} with {} of {total} results",
        view.record.status.as_str(),
        view.completed
    );
    let (steady_rate, steady_measured) = match (at10, at90) {
        (Some((t1, n1)), Some((t2, n2))) if t2 > t1 => {
            ((n2 - n1) as f64 / (t2 - t1).as_secs_f64(), true)
        }
        _ => (total as f64 / seconds, false),
    };
    let peak_rss_mb = peak_rss_bytes().map(|b| b as f64 / 1e6);
    let (target, met) = match s.target {
        Target::Rate(r) if steady_measured => {
            (format!(">= {r:.0} results/s steady"), steady_rate >= r)
        }
        Target::Rate(r) => (
            format!(">= {r:.0} results/s (overall: the run had no 10-90 % window)"),
            steady_rate >= r,
        ),
        Target::PeakRssMb(mb) => (
            format!("peak RSS < {mb:.0} MB"),
            peak_rss_mb.is_some_and(|p| p < mb),
        ),
    };
    Ok(Figures {
        scenario: s.name.to_owned(),
        results: view.completed,
        seconds,
        rate: view.completed as f64 / seconds,
        steady_rate,
        steady_measured,
        ideal_rate: s.in_flight as f64 * 1000.0 / s.latency_ms as f64,
        peak_rss_mb,
        sqlite_peak_mb: crate::storage::sqlite_memory_peak() as f64 / 1e6,
        writer_busy,
        preloaded,
        target,
        met,
    })
}

/// The process's peak resident set (`VmHWM`), on Linux.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
