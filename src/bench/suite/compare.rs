//! A run against its baseline: each benchmark's compared figure (the median
//! of its samples) against the baseline's, worse by more than the
//! benchmark's tolerance is a regression. Pure.

use serde::{Deserialize, Serialize};

use super::{BenchmarkResult, Run};

/// One benchmark against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The benchmark.
    pub benchmark: String,
    /// The figure compared.
    pub figure: String,
    /// The baseline's value (median of its samples).
    pub baseline: f64,
    /// This run's.
    pub current: f64,
    /// How much worse (positive) or better (negative), as a fraction.
    pub worse_by: f64,
    /// Allowed worse_by.
    pub tolerance: f64,
    /// `regression`, `improved`, `unchanged`, `new` (no baseline figure),
    /// `incomparable` (the figure changed kind).
    pub verdict: String,
}

/// A run against a baseline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// The baseline run's id.
    pub baseline_id: Option<i64>,
    /// Its revision.
    pub baseline_revision: String,
    /// Per benchmark.
    pub changes: Vec<Change>,
    /// The benchmarks that regressed.
    pub regressions: Vec<String>,
}

/// Compares `run` with `baseline`.
pub fn compare(run: &Run, baseline: &Run) -> Comparison {
    let changes: Vec<Change> = run
        .benchmarks
        .iter()
        .map(|b| change(b, baseline.benchmarks.iter().find(|x| x.name == b.name)))
        .collect();
    let regressions = changes
        .iter()
        .filter(|c| c.verdict == "regression")
        .map(|c| c.benchmark.clone())
        .collect();
    Comparison {
        baseline_id: baseline.id,
        baseline_revision: baseline.revision.clone(),
        changes,
        regressions,
    }
}

fn change(b: &BenchmarkResult, base: Option<&BenchmarkResult>) -> Change {
    let f = &b.figure;
    let mut c = Change {
        benchmark: b.name.clone(),
        figure: f.name.clone(),
        baseline: f64::NAN,
        current: f.value,
        worse_by: 0.0,
        tolerance: b.tolerance,
        verdict: "new".into(),
    };
    let Some(base) = base.filter(|x| x.error.is_none()) else {
        return c;
    };
    if b.error.is_some() {
        c.verdict = "regression".into();
        c.baseline = base.figure.value;
        return c;
    }
    if base.figure.name != f.name || base.figure.lower_is_better != f.lower_is_better {
        c.verdict = "incomparable".into();
        return c;
    }
    c.baseline = base.figure.value;
    let (cur, was) = (f.value, base.figure.value);
    c.worse_by = if was.abs() < f64::EPSILON {
        0.0
    } else if f.lower_is_better {
        (cur - was) / was
    } else {
        (was - cur) / was
    };
    c.verdict = if c.worse_by > c.tolerance {
        "regression"
    } else if c.worse_by < -c.tolerance {
        "improved"
    } else {
        "unchanged"
    }
    .into();
    c
}

#[cfg(test)]
mod tests {
    use super::super::{FigureValue, Latency, Machine};
    use super::*;

    fn bench(name: &str, value: f64, lower_is_better: bool) -> BenchmarkResult {
        BenchmarkResult {
            name: name.into(),
            kind: "metrics".into(),
            unit: "ops".into(),
            ops: 100,
            duration_s: 1.0,
            throughput: 100.0,
            latency_ms: Some(Latency {
                p50: 1.0,
                p95: 2.0,
                p99: 3.0,
                max: 4.0,
            }),
            cpu_s: 0.5,
            peak_rss_mb: 50.0,
            figure: FigureValue {
                name: if lower_is_better {
                    "p99_ms"
                } else {
                    "ops_per_s"
                }
                .into(),
                lower_is_better,
                value,
                samples: vec![value],
            },
            tolerance: 0.2,
            targets: Vec::new(),
            details: serde_json::Value::Null,
            error: None,
        }
    }

    fn run(benchmarks: Vec<BenchmarkResult>) -> Run {
        Run {
            id: Some(1),
            scenario: "s".into(),
            description: String::new(),
            version: "0".into(),
            revision: "abc".into(),
            machine: Machine::default(),
            started_at: 0,
            duration_ms: 0,
            status: "completed".into(),
            error: None,
            benchmarks,
            comparison: None,
            recommendations: Vec::new(),
            baseline: false,
        }
    }

    #[test]
    fn noise_within_tolerance_flags_nothing() {
        let base = run(vec![bench("a", 10.0, true), bench("b", 1000.0, false)]);
        // 15 % slower and 15 % less throughput: within 20 %.
        let now = run(vec![bench("a", 11.5, true), bench("b", 850.0, false)]);
        let c = compare(&now, &base);
        assert!(c.regressions.is_empty(), "{c:?}");
        assert!(c.changes.iter().all(|x| x.verdict == "unchanged"));
    }

    #[test]
    fn a_better_baseline_flags_exactly_that_benchmark() {
        let base = run(vec![
            bench("a", 10.0, true),
            bench("b", 2000.0, false),
            bench("c", 5.0, true),
        ]);
        // b's baseline was artificially better (2,000/s): now 1,000/s is 50 % worse.
        let now = run(vec![
            bench("a", 10.5, true),
            bench("b", 1000.0, false),
            bench("c", 3.0, true),
        ]);
        let c = compare(&now, &base);
        assert_eq!(c.regressions, ["b"]);
        let by = |n: &str| c.changes.iter().find(|x| x.benchmark == n).unwrap();
        assert!((by("b").worse_by - 0.5).abs() < 1e-12);
        assert_eq!(by("c").verdict, "improved");
        assert_eq!(by("a").verdict, "unchanged");
    }

    #[test]
    fn new_failed_and_changed_benchmarks_are_said_so() {
        let base = run(vec![bench("a", 10.0, true), bench("k", 10.0, true)]);
        let mut failed = bench("a", 0.0, true);
        failed.error = Some("boom".into());
        let now = run(vec![failed, bench("k", 10.0, false), bench("n", 1.0, true)]);
        let c = compare(&now, &base);
        let by = |n: &str| c.changes.iter().find(|x| x.benchmark == n).unwrap();
        assert_eq!(by("a").verdict, "regression", "a benchmark that fails now");
        assert_eq!(by("k").verdict, "incomparable");
        assert_eq!(by("n").verdict, "new");
        assert_eq!(c.regressions, ["a"]);
    }
}
