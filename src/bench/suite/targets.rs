//! The earlier issues' target scenarios as benchmarks of a suite: each run
//! as it was built (queue scenarios in a child process, fan-out against a
//! server process, analytics, reports and optimization over their cached
//! 1,000,000-result history), its figures mapped to a sample with the
//! scenario's own targets.

use std::path::Path;

use serde_json::json;

use super::runners::{Figure, Sample};

/// Runs target scenario `name` with its data under `dir`.
pub(super) async fn run(name: &str, dir: &Path) -> anyhow::Result<Sample> {
    if let Some(s) = crate::bench::scenario(name) {
        let f = crate::bench::run_in_child(s, dir).await?;
        let figure = match s.target {
            crate::bench::Target::Rate(_) => Figure::Higher("steady_results_per_s", f.steady_rate),
            crate::bench::Target::PeakRssMb(_) => {
                Figure::Lower("peak_rss_mb", f.peak_rss_mb.unwrap_or(0.0))
            }
        };
        return Ok(Sample {
            ops: f.results as u64,
            unit: "tests",
            duration_s: f.seconds,
            latencies_ms: Vec::new(),
            latency: None,
            child_cpu_s: 0.0,
            figure,
            targets: vec![(f.target.clone(), f.met)],
            details: serde_json::to_value(&f)?,
        });
    }
    if let Some(s) = crate::bench::websocket::scenario(name) {
        let f = crate::bench::websocket::run(s, dir).await?;
        let [p50, p95, p99, max] = f.latency_ms;
        return Ok(Sample {
            ops: (f.deliveries_per_sec * f.seconds) as u64,
            unit: "frames",
            duration_s: f.seconds,
            latencies_ms: Vec::new(),
            latency: Some(super::Latency { p50, p95, p99, max }),
            child_cpu_s: 0.0,
            figure: Figure::P99,
            targets: vec![(f.target.clone(), f.met)],
            details: serde_json::to_value(&f)?,
        });
    }
    let started = std::time::Instant::now();
    match name {
        "analytics" => {
            let f = crate::bench::analytics::run(dir).await?;
            let worst = f.queries.iter().map(|q| q.miss_ms[1]).fold(0.0, f64::max);
            Ok(Sample {
                ops: f.queries.len() as u64,
                unit: "query kinds",
                duration_s: started.elapsed().as_secs_f64(),
                latencies_ms: Vec::new(),
                latency: None,
                child_cpu_s: 0.0,
                figure: Figure::Lower("worst_miss_p99_ms", worst),
                targets: f.targets.clone(),
                details: serde_json::to_value(&f)?,
            })
        }
        "reports" => {
            let f = crate::bench::reports::run(dir).await?;
            let worst = f.reports.iter().map(|r| r.miss_ms[1]).fold(0.0, f64::max);
            Ok(Sample {
                ops: f.reports.len() as u64,
                unit: "report kinds x formats",
                duration_s: started.elapsed().as_secs_f64(),
                latencies_ms: Vec::new(),
                latency: None,
                child_cpu_s: 0.0,
                figure: Figure::Lower("slowest_uncached_ms", worst),
                targets: f.targets.clone(),
                details: serde_json::to_value(&f)?,
            })
        }
        "optimize" => {
            let f = crate::bench::optimize::run(dir).await?;
            Ok(Sample {
                ops: 1,
                unit: "prompt",
                duration_s: started.elapsed().as_secs_f64(),
                latencies_ms: Vec::new(),
                latency: None,
                child_cpu_s: 0.0,
                figure: Figure::Lower("miss_p99_ms", f.miss_ms[1]),
                targets: f.targets.clone(),
                details: json!(f),
            })
        }
        other => anyhow::bail!("unknown target scenario {other:?}"),
    }
}
