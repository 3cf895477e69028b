//! The benchmark suite: a scenario ([`scenario`]) runs each of its
//! benchmarks ([`runners`], [`targets`]) `repeats` times; each benchmark
//! reports operations, duration, throughput, latency p50/p95/p99/max, the
//! process's CPU time and peak RSS, and the figure compared with the
//! baseline (the median of its samples, [`compare`]). A run renders as a
//! table, JSON and a Markdown section, with recommendations from the
//! figures (the monitor's rules where they apply).

mod advice;
pub mod compare;
mod render;
mod runners;
pub mod scenario;
pub mod service;
mod targets;

use std::path::Path;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use advice::recommendations;
pub use compare::{Comparison, compare};
pub use render::{BEGIN, END, markdown, splice, table};
pub use scenario::Scenario;

use crate::monitor::Recommendation;
use runners::Figure;

/// Latency percentiles, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// Percentiles of `v` (sorted in place; nearest rank).
    pub fn of(v: &mut [f64]) -> Self {
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// The figure a benchmark is compared by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FigureValue {
    /// `ops_per_s`, `p99_ms`, or a named one (`peak_rss_mb`, ...).
    pub name: String,
    /// Which way is better.
    pub lower_is_better: bool,
    /// The median of the samples.
    pub value: f64,
    /// Every sample's value.
    pub samples: Vec<f64>,
}

/// One benchmark's figures (those of its median sample).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchmarkResult {
    /// Its name in the scenario.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// What one operation is.
    pub unit: String,
    /// Operations.
    pub ops: u64,
    /// Seconds.
    pub duration_s: f64,
    /// Operations per second.
    pub throughput: f64,
    /// Per-operation latency, ms, where measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// CPU seconds of this process (and children it waited for) during the sample.
    pub cpu_s: f64,
    /// Peak resident memory of this process so far, MB.
    pub peak_rss_mb: f64,
    /// The compared figure.
    pub figure: FigureValue,
    /// Allowed worsening against the baseline.
    pub tolerance: f64,
    /// Targets, each with whether it was met.
    pub targets: Vec<(String, bool)>,
    /// Kind-specific figures.
    pub details: Value,
    /// Why it failed to run, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The machine a run was made on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    /// Logical cores.
    pub cores: usize,
    /// Memory, GiB.
    pub memory_gib: u64,
    /// `linux`, ...
    pub os: String,
    /// `x86_64`, ...
    pub arch: String,
    /// Baselines compare within a class: `linux-x86_64-2c-24g`.
    pub class: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        let memory_gib = (sys.total_memory() as f64 / (1u64 << 30) as f64).round() as u64;
        let (os, arch) = (
            std::env::consts::OS.to_owned(),
            std::env::consts::ARCH.to_owned(),
        );
        let class = format!("{os}-{arch}-{cores}c-{memory_gib}g");
        Self {
            cores,
            memory_gib,
            os,
            arch,
            class,
        }
    }
}

/// A benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Its stored id.
    pub id: Option<i64>,
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// promptgauge's version.
    pub version: String,
    /// The git revision built.
    pub revision: String,
    /// Where.
    pub machine: Machine,
    /// Unix ms.
    pub started_at: i64,
    /// How long.
    pub duration_ms: i64,
    /// `running`, `completed`, `failed`.
    pub status: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per benchmark.
    pub benchmarks: Vec<BenchmarkResult>,
    /// Against the baseline, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// Advice from the figures (made again, not read back, for a stored run).
    #[serde(skip_deserializing, default)]
    pub recommendations: Vec<Recommendation>,
    /// Whether it is its scenario's baseline on its machine class.
    pub baseline: bool,
}

impl Run {
    /// A run of `s` starting now.
    pub fn start(s: &Scenario) -> Self {
        Self {
            id: None,
            scenario: s.name.clone(),
            description: s.description.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: env!("PROMPTGAUGE_REVISION").to_owned(),
            machine: Machine::this(),
            started_at: crate::storage::now_ms(),
            duration_ms: 0,
            status: "running".into(),
            error: None,
            benchmarks: Vec::new(),
            comparison: None,
            recommendations: Vec::new(),
            baseline: false,
        }
    }

    /// Whether any benchmark regressed or missed a target, or failed.
    pub fn failed_gate(&self) -> bool {
        self.comparison
            .as_ref()
            .is_some_and(|c| !c.regressions.is_empty())
            || self
                .benchmarks
                .iter()
                .any(|b| b.error.is_some() || b.targets.iter().any(|(_, met)| !met))
    }
}

/// Where a run is: benchmark `index` of `total` started or ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// The benchmark.
    pub benchmark: String,
    /// 0-based.
    pub index: usize,
    /// Benchmarks in the run.
    pub total: usize,
    /// Its sample (1-based) and samples.
    pub sample: u32,
    /// Samples of this benchmark.
    pub samples: u32,
    /// `started` or `finished` (the sample).
    pub state: &'static str,
}

/// Runs every benchmark of `s` with data under `dir` (the data root);
/// `progress` hears
/// each sample start and end. A benchmark that fails is recorded with its
/// error and the run goes on.
pub async fn run(
    s: &Scenario,
    dir: &Path,
    cancel: &CancellationToken,
    progress: impl Fn(Progress),
) -> Run {
    let mut out = Run::start(s);
    let started = Instant::now();
    let total = s.benchmarks.len();
    out.status = "completed".into();
    for (index, b) in s.benchmarks.iter().enumerate() {
        if cancel.is_cancelled() {
            out.status = "cancelled".into();
            break;
        }
        let samples = s.repeats_of(b);
        let mut measured = Vec::new();
        let mut error = None;
        for k in 1..=samples {
            let p = |state| Progress {
                benchmark: b.name.clone(),
                index,
                total,
                sample: k,
                samples,
                state,
            };
            progress(p("started"));
            let cpu = process_cpu_seconds();
            // Target scenarios share the data root (their cached 1M-result
            // databases are the single scenarios' too); the others get a folder each.
            let sample = async {
                match &b.kind {
                    scenario::Kind::Target { scenario } => targets::run(scenario, dir).await,
                    kind => runners::sample(kind, &dir.join("suite").join(&b.name)).await,
                }
            };
            // A cancel drops the sample where it waits; its data stays in
            // the benchmark folder, never in the service's database.
            let result = tokio::select! {
                r = sample => r,
                () = cancel.cancelled() => Err(anyhow::anyhow!("cancelled")),
            };
            let cpu = process_cpu_seconds() - cpu;
            progress(p("finished"));
            match result {
                Ok(sample) => {
                    let cpu = cpu + sample.child_cpu_s;
                    measured.push((sample, cpu, peak_rss_mb()));
                }
                Err(e) => {
                    let e = format!("{e:#}");
                    let mut cut: String = e.chars().take(400).collect();
                    if cut.len() < e.len() {
                        cut.push_str(" …");
                    }
                    error = Some(cut);
                    break;
                }
            }
        }
        out.benchmarks
            .push(result_of(b, s.tolerance_of(b), measured, error));
    }
    if cancel.is_cancelled() {
        out.status = "cancelled".into();
    }
    out.duration_ms = started.elapsed().as_millis() as i64;
    out.recommendations = recommendations(&out);
    out
}

/// The benchmark's result: the median sample's figures, every sample's
/// compared value.
fn result_of(
    b: &scenario::Benchmark,
    tolerance: f64,
    measured: Vec<(runners::Sample, f64, f64)>,
    error: Option<String>,
) -> BenchmarkResult {
    let mut rows: Vec<(f64, BenchmarkResult)> = measured
        .into_iter()
        .map(|(mut s, cpu_s, peak_rss_mb)| {
            let latency = s
                .latency
                .or_else(|| (!s.latencies_ms.is_empty()).then(|| Latency::of(&mut s.latencies_ms)));
            let throughput = if s.duration_s > 0.0 {
                s.ops as f64 / s.duration_s
            } else {
                0.0
            };
            let (name, lower, value) = match s.figure {
                Figure::Throughput => (format!("{}_per_s", s.unit), false, throughput),
                Figure::P99 => ("p99_ms".to_owned(), true, latency.map_or(0.0, |l| l.p99)),
                Figure::Lower(n, v) => (n.to_owned(), true, v),
                Figure::Higher(n, v) => (n.to_owned(), false, v),
            };
            let r = BenchmarkResult {
                name: b.name.clone(),
                kind: b.kind.name().to_owned(),
                unit: s.unit.to_owned(),
                ops: s.ops,
                duration_s: s.duration_s,
                throughput,
                latency_ms: latency,
                cpu_s,
                peak_rss_mb,
                figure: FigureValue {
                    name,
                    lower_is_better: lower,
                    value,
                    samples: Vec::new(),
                },
                tolerance,
                targets: s.targets,
                details: s.details,
                error: None,
            };
            (value, r)
        })
        .collect();
    let samples: Vec<f64> = rows.iter().map(|(v, _)| *v).collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = rows.len().checked_sub(1).map(|last| last / 2);
    match (median, error) {
        (Some(m), error) => {
            let mut r = rows.swap_remove(m).1;
            r.figure.samples = samples;
            r.error = error;
            r
        }
        (None, error) => BenchmarkResult {
            name: b.name.clone(),
            kind: b.kind.name().to_owned(),
            unit: String::new(),
            ops: 0,
            duration_s: 0.0,
            throughput: 0.0,
            latency_ms: None,
            cpu_s: 0.0,
            peak_rss_mb: peak_rss_mb(),
            figure: FigureValue {
                name: String::new(),
                lower_is_better: true,
                value: 0.0,
                samples,
            },
            tolerance,
            targets: Vec::new(),
            details: Value::Null,
            error: Some(error.unwrap_or_else(|| "no sample".into())),
        },
    }
}

/// Runs `s` and keeps it: the run is stored as it starts (`id` known to
/// `started`), compared with the baseline of its scenario on this machine
/// class, stored with its results, and made the baseline when asked.
pub async fn execute(
    storage: &crate::storage::Storage,
    s: &Scenario,
    dir: &Path,
    save_baseline: bool,
    cancel: &CancellationToken,
    started: impl FnOnce(i64),
    progress: impl Fn(i64, Progress),
) -> anyhow::Result<Run> {
    let mut shell = Run::start(s);
    let id = storage
        .insert_benchmark_run(
            s.name.clone(),
            serde_json::to_string(s)?,
            shell.revision.clone(),
            serde_json::to_string(&shell.machine)?,
            serde_json::to_string(&shell)?,
            shell.started_at,
        )
        .await?;
    started(id);
    shell.id = Some(id);
    let mut out = run(s, dir, cancel, |p| progress(id, p)).await;
    out.id = Some(id);
    out.started_at = shell.started_at;
    let baseline = storage
        .benchmark_baseline(s.name.clone(), out.machine.class.clone())
        .await?;
    if let Some(b) = baseline {
        match serde_json::from_str::<Run>(&b.results) {
            Ok(mut base) => {
                base.id = Some(b.id);
                out.comparison = Some(compare(&out, &base));
            }
            Err(e) => {
                tracing::warn!(id = b.id, error = %e, "the stored baseline is unreadable; not compared")
            }
        }
    }
    // A cancelled run is never anyone's baseline.
    let save_baseline = save_baseline && out.status == "completed";
    out.baseline = save_baseline;
    out.recommendations = recommendations(&out);
    storage
        .finish_benchmark_run(
            id,
            serde_json::to_string(&out)?,
            out.duration_ms,
            save_baseline,
        )
        .await?;
    Ok(out)
}

/// A stored run, with its recommendations made again.
pub fn stored(r: &crate::storage::StoredBenchmarkRun) -> anyhow::Result<Run> {
    let mut run: Run = serde_json::from_str(&r.results)?;
    run.id = Some(r.id);
    run.baseline = r.baseline;
    run.recommendations = recommendations(&run);
    Ok(run)
}

/// utime + stime of this process, seconds.
fn process_cpu_seconds() -> f64 {
    crate::bench::process_cpu_seconds(std::process::id())
}

/// This process's peak resident memory, MB (0 where unknown).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&mut v);
        assert_eq!((l.p50, l.p95, l.p99, l.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Latency::of(&mut []), Latency::default());
    }
}
