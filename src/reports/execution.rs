//! The execution report: summary, per provider/model, latency spread,
//! failures with their reasons and outputs, slowest, most failing and flaky
//! tests (mixed outcomes within this run, or against the suite's previous
//! run). Its CSV is every result with every metric column.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::model::{Chart, ChartKind, Point, Section, Stat, Table, ms, n, pct, usd};
use super::{ReportError, ReportService, build_sections, report};
use crate::analytics::{ExecutionAnalytics, TestFigures};
use crate::export::ExportFormat;
use crate::queue::ResultView;
use crate::storage::{ResultFilter, TestRow};

/// Failures listed at most (of each kind).
const FAILURES: i64 = 25;
/// Characters of a reason or output shown.
const CUT: usize = 200;
/// Largest CSV document kept in the cache, bytes.
const CSV_CACHED_MAX: usize = 32 << 20;

struct Data {
    a: Arc<ExecutionAnalytics>,
    /// Each test's description (or variables), by test index.
    labels: Vec<String>,
    failures: Vec<ResultView>,
    flaky: Vec<Flaky>,
}

/// A test whose outcome is not stable.
struct Flaky {
    test: TestRow,
    why: String,
}

pub(super) async fn make(s: &ReportService, id: i64) -> Result<super::Report, ReportError> {
    let started = Instant::now();
    let i = &s.inner;
    let (a, failed, errors, tests, config) = tokio::try_join!(
        async { Ok::<_, ReportError>(i.analytics.execution(id, 0, 0).await?.data) },
        async {
            Ok(i.queue
                .results(id, Some(ResultFilter::Failed), FAILURES, 0)
                .await?
                .items)
        },
        async {
            Ok(i.queue
                .results(id, Some(ResultFilter::Error), FAILURES, 0)
                .await?
                .items)
        },
        async { Ok(i.storage.execution_tests(id).await?.tests) },
        async { Ok(i.storage.execution_config(id).await?) },
    )?;
    let labels = config
        .as_deref()
        .map(crate::suite::test_labels)
        .unwrap_or_default();
    let previous = match a.suite_id {
        Some(suite) => match i.storage.previous_execution(suite, id).await? {
            Some(prev) => Some((prev, i.storage.execution_tests(prev).await?.tests)),
            None => None,
        },
        None => None,
    };
    let flaky = flaky(&tests, previous.as_ref());
    let fetch = started.elapsed();
    let data = Arc::new(Data {
        failures: failed.into_iter().chain(errors).collect(),
        flaky,
        labels,
        a,
    });
    let sum = &data.a.summary;
    let title = format!(
        "Execution {id}: {}, {} passed",
        data.a.status,
        pct(sum.pass_rate)
    );
    let summary = vec![
        Stat::num("results", sum.count.to_string(), sum.count as f64),
        Stat::num("pass rate", pct(sum.pass_rate), sum.pass_rate),
        Stat::num("failed", sum.failed.to_string(), sum.failed as f64),
        Stat::num("errors", sum.errors.to_string(), sum.errors as f64),
        Stat::num("cost", usd(sum.cost_usd), sum.cost_usd),
        Stat::num(
            "duration",
            ms(data.a.duration_ms.map(|d| d as f64)),
            data.a.duration_ms.unwrap_or(0) as f64,
        ),
    ];
    let empty = sum.count == 0;
    let sections = build_sections(data, BUILDERS, &i.metrics).await;
    Ok(report("execution", title, empty, summary, sections, fetch))
}

const BUILDERS: &[super::Builder<Data>] = &[
    ("summary", summary),
    ("models", models),
    ("latency", latency),
    ("failures", failures),
    ("slowest", slowest),
    ("most_failing", most_failing),
    ("flaky", flaky_section),
];

fn summary(d: &Data) -> Section {
    let s = &d.a.summary;
    Section {
        id: "summary".into(),
        title: "Summary".into(),
        stats: vec![
            Stat::text("status", d.a.status.clone()),
            Stat::num("results", s.count.to_string(), s.count as f64),
            Stat::num("of jobs", d.a.total.to_string(), d.a.total as f64),
            Stat::num("passed", s.passed.to_string(), s.passed as f64),
            Stat::num("pass rate", pct(s.pass_rate), s.pass_rate),
            Stat::num("error rate", pct(s.error_rate), s.error_rate),
            Stat::num(
                "latency p50",
                ms(s.latency.p50_ms),
                s.latency.p50_ms.unwrap_or(0.0),
            ),
            Stat::num(
                "latency p95",
                ms(s.latency.p95_ms),
                s.latency.p95_ms.unwrap_or(0.0),
            ),
            Stat::num(
                "latency p99",
                ms(s.latency.p99_ms),
                s.latency.p99_ms.unwrap_or(0.0),
            ),
            Stat::num("cost", usd(s.cost_usd), s.cost_usd),
            Stat::num(
                "input tokens",
                s.input_tokens.to_string(),
                s.input_tokens as f64,
            ),
            Stat::num(
                "output tokens",
                s.output_tokens.to_string(),
                s.output_tokens as f64,
            ),
        ],
        text: vec![format!(
            "Percentiles are {} (from every result).",
            s.latency.method
        )],
        ..Section::default()
    }
}

fn models(d: &Data) -> Section {
    let rows =
        d.a.models
            .iter()
            .map(|m| {
                let f = &m.figures;
                vec![
                    json!(m.provider),
                    json!(m.model),
                    json!(f.count),
                    n(f.pass_rate, 4),
                    n(f.latency.p50_ms.unwrap_or(0.0), 1),
                    n(f.latency.p95_ms.unwrap_or(0.0), 1),
                    n(f.cost_usd, 6),
                    f.cost_per_passing_test_usd.map_or(Value::Null, |c| n(c, 6)),
                ]
            })
            .collect();
    Section {
        id: "models".into(),
        title: "Providers and models".into(),
        table: Some(Table {
            columns: cols(&[
                "provider",
                "model",
                "results",
                "pass rate",
                "p50 ms",
                "p95 ms",
                "cost USD",
                "USD per passing test",
            ]),
            rows,
        }),
        chart: Some(Chart {
            kind: ChartKind::Bar,
            unit: "pass rate".into(),
            points: d
                .a
                .models
                .iter()
                .map(|m| Point {
                    label: m.model.clone(),
                    value: m.figures.pass_rate,
                })
                .collect(),
        }),
        ..Section::default()
    }
}

fn latency(d: &Data) -> Section {
    Section {
        id: "latency".into(),
        title: "Latency distribution".into(),
        text: vec!["Results per latency bucket (log-spaced, upper bound shown).".into()],
        chart: Some(Chart {
            kind: ChartKind::Histogram,
            unit: "results".into(),
            points: d
                .a
                .latency_buckets
                .iter()
                .map(|b| Point {
                    label: if b.le_ms.is_finite() {
                        format!("≤{:.0} ms", b.le_ms)
                    } else {
                        "more".into()
                    },
                    value: f64::from(b.count),
                })
                .collect(),
        }),
        ..Section::default()
    }
}

fn failures(d: &Data) -> Section {
    let rows = d
        .failures
        .iter()
        .map(|r| {
            let r = &r.record;
            vec![
                json!(r.test_idx),
                json!(cut(d.label(r.test_idx))),
                json!(r.prompt_idx),
                json!(r.provider),
                json!(if r.failure_reason == 2 {
                    "error"
                } else {
                    "failed"
                }),
                json!(cut(r.error.as_deref().unwrap_or(""))),
                json!(cut(r.output.as_deref().unwrap_or(""))),
            ]
        })
        .collect();
    Section {
        id: "failures".into(),
        title: "Failures".into(),
        text: vec![format!(
            "Up to {FAILURES} failed and {FAILURES} errored results, reasons and outputs cut at {CUT} characters."
        )],
        table: Some(Table {
            columns: cols(&[
                "test",
                "description",
                "prompt",
                "provider",
                "kind",
                "reason",
                "output",
            ]),
            rows,
        }),
        ..Section::default()
    }
}

impl Data {
    fn label(&self, test: i64) -> &str {
        usize::try_from(test)
            .ok()
            .and_then(|t| self.labels.get(t))
            .map_or("", String::as_str)
    }
}

fn tests_table(d: &Data, tests: &[TestFigures]) -> Table {
    Table {
        columns: cols(&[
            "test",
            "description",
            "prompt",
            "provider",
            "model",
            "runs",
            "failed",
            "errors",
            "max ms",
            "mean ms",
        ]),
        rows: tests
            .iter()
            .map(|t| {
                vec![
                    json!(t.test_idx),
                    json!(cut(d.label(t.test_idx))),
                    json!(t.prompt_idx),
                    json!(t.provider),
                    json!(t.model),
                    json!(t.runs),
                    json!(t.failed),
                    json!(t.errors),
                    json!(t.max_latency_ms),
                    n(t.mean_latency_ms, 1),
                ]
            })
            .collect(),
    }
}

fn slowest(d: &Data) -> Section {
    Section {
        id: "slowest".into(),
        title: "Slowest tests".into(),
        table: Some(tests_table(d, &d.a.slowest)),
        ..Section::default()
    }
}

fn most_failing(d: &Data) -> Section {
    Section {
        id: "most_failing".into(),
        title: "Most failing tests".into(),
        table: Some(tests_table(d, &d.a.most_failing)),
        ..Section::default()
    }
}

fn flaky_section(d: &Data) -> Section {
    Section {
        id: "flaky".into(),
        title: "Flaky tests".into(),
        text: vec![if d.flaky.is_empty() {
            "No test changed outcome within this run or against the suite's previous run.".into()
        } else {
            format!(
                "{} tests passed and failed across repeats or runs.",
                d.flaky.len()
            )
        }],
        table: Some(Table {
            columns: cols(&["test", "description", "prompt", "provider", "model", "why"]),
            rows: d
                .flaky
                .iter()
                .map(|f| {
                    vec![
                        json!(f.test.test_idx),
                        json!(cut(d.label(f.test.test_idx))),
                        json!(f.test.prompt_idx),
                        json!(f.test.provider),
                        json!(f.test.model),
                        json!(f.why),
                    ]
                })
                .collect(),
        }),
        ..Section::default()
    }
}

/// Tests with mixed outcomes in this run, or whose outcome differs from
/// the previous run of the same suite.
fn flaky(tests: &[TestRow], previous: Option<&(i64, Vec<TestRow>)>) -> Vec<Flaky> {
    let ok = |t: &TestRow| t.failed + t.errors == 0;
    let before: HashMap<(i64, i64, &str, &str), bool> = previous
        .map(|(_, p)| {
            p.iter()
                .map(|t| {
                    (
                        (
                            t.prompt_idx,
                            t.test_idx,
                            t.provider.as_str(),
                            t.model.as_str(),
                        ),
                        ok(t),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    tests
        .iter()
        .filter_map(|t| {
            let why = if t.passed > 0 && t.failed + t.errors > 0 {
                format!("{} of {} runs passed", t.passed, t.count)
            } else {
                let was = before.get(&(
                    t.prompt_idx,
                    t.test_idx,
                    t.provider.as_str(),
                    t.model.as_str(),
                ))?;
                if *was == ok(t) {
                    return None;
                }
                let prev = previous.map_or(0, |(id, _)| *id);
                if ok(t) {
                    format!("passed now, failed in execution {prev}")
                } else {
                    format!("failed now, passed in execution {prev}")
                }
            };
            Some(Flaky {
                test: t.clone(),
                why,
            })
        })
        .collect()
}

/// Every result of the execution as CSV (the export's columns).
/// Every result of execution `id` as CSV. A finished execution's document
/// is kept as long as report data (its results no longer change).
pub(super) async fn csv(s: &ReportService, id: i64) -> Result<String, ReportError> {
    let i = &s.inner;
    let doc = i
        .csv
        .get_or_try_insert_with_expiry(&id, async {
            // Read before the results: one finishing meanwhile is not kept.
            let finished = i
                .storage
                .get_execution(id)
                .await?
                .is_some_and(|e| e.status.is_final());
            let mut stream = i.queue.export(id, ExportFormat::Csv).await?;
            let mut out = Vec::new();
            while let Some(chunk) = stream.next().await {
                out.extend_from_slice(&chunk?);
            }
            let body = String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            let ttl = if finished && body.len() <= CSV_CACHED_MAX {
                i.data.ttl()
            } else {
                Duration::ZERO
            };
            Ok::<_, ReportError>((Arc::new(body), ttl))
        })
        .await?;
    Ok(String::clone(&doc))
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn cut(s: &str) -> String {
    if s.chars().count() <= CUT {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(CUT).collect();
    t.push('…');
    t
}
