//! Reports over a million results: a 10,000-test execution report and a
//! 30-day model comparison, each made in every format with nothing cached
//! (analytics and report data), then re-made from the cached data, then
//! re-rendered from the stored report.
//!
//! The service is the real one ([`crate::app::App`]) on a copy of the
//! analytics history ([`super::analytics`]) with a 10,000-result execution
//! added in the last minutes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fixtures::remove_db;
use super::history::{self, HistorySpec, PlannedExecution};
use crate::app::App;
use crate::config::Config;
use crate::reports::{Format, ReportService, ReportSpec};
use crate::storage::{ExecutionStatus, NewExecution, Storage, now_ms};

/// Results of the execution the report is about.
const EXECUTION_RESULTS: usize = 10_000;
/// Reports made per (kind, format) with nothing cached.
const MISS_CALLS: usize = 15;
/// Per (kind, format) from cached data, and re-rendered from storage.
const HIT_CALLS: usize = 100;
/// Targets.
const MISS_MAX_MS: f64 = 250.0;
const HIT_MAX_MS: f64 = 10.0;

/// One (kind, format)'s times, ms: p50 and the worst.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportFigures {
    /// Kind and format.
    pub report: String,
    /// Size of the document, bytes.
    pub bytes: usize,
    /// Made with nothing cached.
    pub miss_ms: [f64; 2],
    /// Made again from cached data.
    pub hit_ms: [f64; 2],
    /// Re-rendered from the stored report (`GET /api/reports/{id}?format=`).
    pub stored_ms: [f64; 2],
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReportsBenchFigures {
    /// Results stored.
    pub results: i64,
    /// Per kind and format.
    pub reports: Vec<ReportFigures>,
    /// Each target and whether it was met.
    pub targets: Vec<(String, bool)>,
}

impl ReportsBenchFigures {
    /// Whether every target was met.
    pub fn met(&self) -> bool {
        self.targets.iter().all(|(_, met)| *met)
    }
}

/// Runs the benchmark on a copy of the cached history under `dir`.
pub async fn run(dir: &Path) -> anyhow::Result<ReportsBenchFigures> {
    let source = super::analytics::history_db(dir).await?;
    let db = dir.join("run-reports.db");
    remove_db(&db);
    std::fs::copy(&source, &db).with_context(|| format!("cannot copy {}", source.display()))?;
    let app = |cache_ttl| {
        App::build(Config {
            port: 0,
            database_path: db.clone(),
            cache_ttl,
            ..Config::default()
        })
    };
    // Nothing cached: every analytics query and every report's data is made afresh.
    let cold = app(Some(Duration::from_nanos(1))).await?;
    let warm = app(None).await?;
    let storage = cold.storage().clone();
    let execution = store_execution(&storage, EXECUTION_RESULTS).await?;
    let results = storage.count_results().await?;

    let specs = [
        (
            "execution (10,000 results)",
            json!({"execution": execution}),
        ),
        ("model-comparison 30d", json!({"window": "30d"})),
    ];
    let mut reports = Vec::new();
    for (name, params) in &specs {
        let kind = if name.starts_with("execution") {
            "execution"
        } else {
            "model-comparison"
        };
        let spec = ReportSpec::parse(kind, params).map_err(|e| anyhow::anyhow!("{e}"))?;
        for format in Format::ALL {
            let (miss_ms, _) = time(MISS_CALLS, || make(cold.reports(), &spec, format)).await?;
            make(warm.reports(), &spec, format).await?;
            let (hit_ms, (id, bytes)) =
                time(HIT_CALLS, || make(warm.reports(), &spec, format)).await?;
            let service = warm.reports();
            let (stored_ms, _) = time(HIT_CALLS, || async move {
                let r = service.stored(id, Some(format)).await?;
                Ok((r.id, r.body.len()))
            })
            .await?;
            reports.push(ReportFigures {
                report: format!("{name} {}", format.name()),
                bytes,
                miss_ms,
                hit_ms,
                stored_ms,
            });
        }
    }
    storage.close().await;
    drop((cold, warm));
    remove_db(&db);

    let worst = |f: fn(&ReportFigures) -> f64| reports.iter().map(f).fold(0.0, f64::max);
    let worst_miss = worst(|r| r.miss_ms[1]);
    let worst_hit = worst(|r| r.hit_ms[1]);
    let worst_stored = worst(|r| r.stored_ms[1]);
    let targets = vec![
        (
            format!(
                "every report made in <= {MISS_MAX_MS} ms with nothing cached (worst {worst_miss:.1})"
            ),
            worst_miss <= MISS_MAX_MS,
        ),
        (
            format!("a cached re-render in <= {HIT_MAX_MS} ms (worst {worst_hit:.2})"),
            worst_hit <= HIT_MAX_MS,
        ),
        (
            format!("a stored report re-rendered in <= {MISS_MAX_MS} ms (worst {worst_stored:.2})"),
            worst_stored <= MISS_MAX_MS,
        ),
    ];
    Ok(ReportsBenchFigures {
        results,
        reports,
        targets,
    })
}

/// A `results`-result execution of a real suite (two prompts, half as
/// many tests, one model) finished in the last minutes.
pub(super) async fn store_execution(storage: &Storage, results: usize) -> anyhow::Result<i64> {
    let tests = results / 2;
    let (_, model, ..) = history::MODELS[1];
    let doc = json!({
        "description": "reports bench",
        "prompts": ["Answer: {{q}}", "Answer briefly: {{q}}"],
        "providers": [format!("openai:{model}")],
        "tests": (0..tests).map(|i| json!({
            "description": format!("question {i}"),
            "vars": {"q": format!("question {i}")},
            "assert": [{"type": "icontains", "value": "answer"}],
        })).collect::<Vec<_>>(),
    });
    let (id, first) = storage
        .create_execution(NewExecution {
            config: doc.to_string(),
            total: results as i64,
            ..NewExecution::default()
        })
        .await?;
    let now = now_ms();
    let spec = HistorySpec {
        results,
        days: 1,
        per_execution: results,
        now,
        seed: 44,
    };
    let planned = PlannedExecution {
        suite: None,
        start: now - 240_000,
        burst_ms: 200_000,
        models: vec![1],
        results,
    };
    for chunk in history::rows(&spec, 0, &planned, id, first).chunks(5000) {
        storage.insert_results(chunk.to_vec()).await?;
    }
    storage
        .set_execution_status(id, ExecutionStatus::Completed, None)
        .await?;
    Ok(id)
}

async fn make(
    service: &ReportService,
    spec: &ReportSpec,
    format: Format,
) -> anyhow::Result<(i64, usize)> {
    let r = service
        .generate(*spec, format)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((r.id, r.body.len()))
}

/// p50 and the slowest of `calls` sequential calls, ms, and the last answer.
async fn time<T, F, Fut>(calls: usize, mut f: F) -> anyhow::Result<([f64; 2], T)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut took = Vec::with_capacity(calls);
    let mut last = None;
    for _ in 0..calls {
        let started = Instant::now();
        last = Some(f().await?);
        took.push(started.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    let last = last.context("no calls")?;
    Ok(([took[took.len() / 2], took[took.len() - 1]], last))
}

/// The figures as a table.
pub fn table(f: &ReportsBenchFigures) -> String {
    let mut out = format!(
        "reports over {} results (ms: p50 / slowest)\n{:<36} {:>9} {:>17} {:>17} {:>17}\n",
        f.results, "report", "bytes", "nothing cached", "cached data", "stored"
    );
    for r in &f.reports {
        out.push_str(&format!(
            "{:<36} {:>9} {:>8.2} / {:>6.2} {:>8.2} / {:>6.2} {:>8.2} / {:>6.2}\n",
            r.report,
            r.bytes,
            r.miss_ms[0],
            r.miss_ms[1],
            r.hit_ms[0],
            r.hit_ms[1],
            r.stored_ms[0],
            r.stored_ms[1]
        ));
    }
    for (t, met) in &f.targets {
        out.push_str(&format!("  {t}: {}\n", if *met { "met" } else { "MISSED" }));
    }
    out
}
