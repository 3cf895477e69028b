//! Advice from a run's figures.

use std::collections::BTreeMap;

use super::Run;
use crate::monitor::Recommendation;

/// Advice from the figures: the monitor's rules over what applies (CPU
/// use, HTTP p95 against the thresholds), then the suite's own (missed
/// targets, regressions, failures).
pub fn recommendations(run: &Run) -> Vec<Recommendation> {
    use crate::monitor::recommend::{Evidence, recommend};
    let mut recent = BTreeMap::new();
    let (cpu, wall): (f64, f64) = run
        .benchmarks
        .iter()
        .fold((0.0, 0.0), |(c, w), b| (c + b.cpu_s, w + b.duration_s));
    if wall > 0.0 && run.machine.cores > 0 {
        recent.insert(
            "cpu_usage_ratio".to_owned(),
            (cpu / wall / run.machine.cores as f64).min(1.0),
        );
    }
    if let Some(l) = run
        .benchmarks
        .iter()
        .filter(|b| b.kind == "http")
        .filter_map(|b| b.latency_ms)
        .map(|l| l.p95)
        .reduce(f64::max)
    {
        recent.insert("http_response_time_p95_seconds".to_owned(), l / 1000.0);
    }
    let leak = crate::monitor::leak::assess(&[]);
    let thresholds = crate::monitor::Thresholds::default();
    let mut out = recommend(&Evidence {
        recent: &recent,
        bottlenecks: &[],
        leak: &leak,
        thresholds: &thresholds,
        max_concurrent_tests: crate::config::Config::default().max_concurrent_tests,
    });
    let ev = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    for b in &run.benchmarks {
        if let Some(e) = &b.error {
            out.push(Recommendation {
                rule: "benchmark_failed",
                severity: "critical",
                title: format!("{} did not run: {e}", b.name),
                action: "Fix what stopped it before reading the other figures.".into(),
                evidence: BTreeMap::new(),
            });
        }
        for (t, met) in &b.targets {
            if !met {
                out.push(Recommendation {
                    rule: "target_missed",
                    severity: "warning",
                    title: format!("{}: target missed: {t}", b.name),
                    action: "Profile the benchmark (BENCHMARKS.md records what moved it before) and fix what the profile shows.".into(),
                    evidence: ev(&[(b.figure.name.as_str(), b.figure.value)]),
                });
            }
        }
    }
    if let Some(c) = &run.comparison {
        for ch in c.changes.iter().filter(|c| c.verdict == "regression") {
            out.push(Recommendation {
                rule: "benchmark_regression",
                severity: "warning",
                title: format!(
                    "{} regressed: {} {:.3} against {:.3} ({:+.0} %, tolerance {:.0} %)",
                    ch.benchmark,
                    ch.figure,
                    ch.current,
                    ch.baseline,
                    ch.worse_by * 100.0,
                    ch.tolerance * 100.0
                ),
                action: format!(
                    "Compare revision {} with the baseline's {} on this benchmark; rerun to rule out noise (the figure is the median of its samples).",
                    run.revision, c.baseline_revision
                ),
                evidence: ev(&[("current", ch.current), ("baseline", ch.baseline)]),
            });
        }
    }
    out
}
