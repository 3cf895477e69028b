//! Reports over a window of results: model comparison (with which model
//! wins on quality, on cost, on quality per dollar), cost (by model, suite,
//! day, the projection and the top drivers), and trend (a period against
//! the one before).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::model::{Chart, ChartKind, Point, Section, Stat, Table, n, pct, usd};
use super::{Report, ReportError, ReportService, build_sections, report};
use crate::analytics::{CostReport, ModelFigures, ModelsReport, Period, Span, Trends};
use crate::common::time::rfc3339;
use crate::storage::RollupFilter;

/// Models with fewer results are not crowned in the recommendation.
const MIN_RESULTS: i64 = 20;

fn filter(suite: Option<i64>) -> RollupFilter {
    RollupFilter {
        suite_id: suite,
        ..RollupFilter::default()
    }
}

fn cols(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn window(from: i64, to: i64) -> String {
    format!("{} to {}", &rfc3339(from)[..16], &rfc3339(to)[..16])
}

pub(super) async fn comparison(
    s: &ReportService,
    span: Span,
    suite: Option<i64>,
) -> Result<Report, ReportError> {
    let started = Instant::now();
    let data = s.inner.analytics.models(span, filter(suite)).await?.data;
    let fetch = started.elapsed();
    let count: i64 = data.models.iter().map(|m| m.figures.count).sum();
    let title = format!("Model comparison, {}", window(data.from, data.to));
    let summary = vec![
        Stat::num("results", count.to_string(), count as f64),
        Stat::num(
            "models",
            data.models.len().to_string(),
            data.models.len() as f64,
        ),
    ];
    let empty = count == 0;
    let sections = build_sections(data, COMPARISON, &s.inner.metrics).await;
    Ok(report(
        "model-comparison",
        title,
        empty,
        summary,
        sections,
        fetch,
    ))
}

const COMPARISON: &[super::Builder<ModelsReport>] = &[
    ("recommendation", recommendation),
    ("models", models_table),
    ("pass_rate", pass_rate_chart),
    ("cost_per_test", cost_chart),
];

/// Which model wins on quality, on cost, and on quality per dollar.
fn recommendation(d: &ModelsReport) -> Section {
    let eligible: Vec<&ModelFigures> = d
        .models
        .iter()
        .filter(|m| m.figures.count >= MIN_RESULTS)
        .collect();
    let name = |m: &ModelFigures| format!("{}/{}", m.provider, m.model);
    let mut text = Vec::new();
    if eligible.is_empty() {
        text.push(format!(
            "No model has {MIN_RESULTS} results or more in this window: nothing to recommend."
        ));
    } else {
        let quality = best(&eligible, |m| m.figures.pass_rate);
        text.push(format!(
            "Quality: {} passes {} of its tests.",
            name(quality),
            pct(quality.figures.pass_rate)
        ));
        // Cost rankings among models that were charged for: a free one (a
        // local or test provider) costs nothing and would win every time.
        let (priced, free): (Vec<&ModelFigures>, Vec<&ModelFigures>) =
            eligible.iter().partition(|m| m.figures.cost_usd > 0.0);
        if priced.is_empty() {
            text.push("Cost: no model in this window was charged for; nothing to compare.".into());
        } else {
            let cheap = best(&priced, |m| {
                -m.figures.cost_per_passing_test_usd.unwrap_or(f64::INFINITY)
            });
            let value = best(&priced, |m| {
                m.figures.pass_rate / m.figures.cost_per_test_usd.max(1e-12)
            });
            text.push(format!(
                "Cost: {} is cheapest per passing test at {}.",
                name(cheap),
                usd(cheap.figures.cost_per_passing_test_usd.unwrap_or(0.0))
            ));
            text.push(format!(
                "Quality per dollar: {} ({} pass rate at {} per test).",
                name(value),
                pct(value.figures.pass_rate),
                usd(value.figures.cost_per_test_usd)
            ));
        }
        if !free.is_empty() {
            let names: Vec<String> = free.iter().map(|m| name(m)).collect();
            text.push(format!(
                "Not charged for (left out of the cost ranking): {}.",
                names.join(", ")
            ));
        }
    }
    Section {
        id: "recommendation".into(),
        title: "Recommendation".into(),
        text,
        ..Section::default()
    }
}

/// The model of `among` (not empty) scoring highest on `f`.
fn best<'a>(among: &[&'a ModelFigures], f: impl Fn(&ModelFigures) -> f64) -> &'a ModelFigures {
    among
        .iter()
        .copied()
        .max_by(|a, b| f(a).total_cmp(&f(b)))
        .expect("not empty")
}

fn models_table(d: &ModelsReport) -> Section {
    let rows = d
        .models
        .iter()
        .map(|m| {
            let f = &m.figures;
            vec![
                json!(m.provider),
                json!(m.model),
                json!(f.count),
                n(f.pass_rate, 4),
                n(f.error_rate, 4),
                n(f.latency.p50_ms.unwrap_or(0.0), 1),
                n(f.latency.p95_ms.unwrap_or(0.0), 1),
                n(f.cost_per_test_usd, 6),
                f.cost_per_passing_test_usd
                    .map_or(serde_json::Value::Null, |c| n(c, 6)),
                n(f.cost_usd, 4),
            ]
        })
        .collect();
    let method = d
        .models
        .first()
        .map_or("histogram", |m| m.figures.latency.method);
    Section {
        id: "models".into(),
        title: "Providers and models".into(),
        text: vec![format!("Latency percentiles: {method}.")],
        table: Some(Table {
            columns: cols(&[
                "provider",
                "model",
                "results",
                "pass rate",
                "error rate",
                "p50 ms",
                "p95 ms",
                "USD per test",
                "USD per passing test",
                "USD",
            ]),
            rows,
        }),
        ..Section::default()
    }
}

fn bar(id: &str, title: &str, unit: &str, points: Vec<Point>) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        chart: Some(Chart {
            kind: ChartKind::Bar,
            unit: unit.into(),
            points,
        }),
        ..Section::default()
    }
}

fn pass_rate_chart(d: &ModelsReport) -> Section {
    let points = d
        .models
        .iter()
        .map(|m| Point {
            label: m.model.clone(),
            value: m.figures.pass_rate,
        })
        .collect();
    bar("pass_rate", "Pass rate by model", "pass rate", points)
}

fn cost_chart(d: &ModelsReport) -> Section {
    let points = d
        .models
        .iter()
        .map(|m| Point {
            label: m.model.clone(),
            value: m.figures.cost_per_test_usd,
        })
        .collect();
    bar("cost_per_test", "Cost per test by model", "USD", points)
}

pub(super) async fn cost(
    s: &ReportService,
    span: Span,
    suite: Option<i64>,
) -> Result<Report, ReportError> {
    let started = Instant::now();
    let data = s.inner.analytics.cost(span, filter(suite)).await?.data;
    let fetch = started.elapsed();
    let title = format!("Cost, {}", window(data.from, data.to));
    let summary = vec![
        Stat::num("spent", usd(data.total_usd), data.total_usd),
        Stat::num("last 24 h", usd(data.last_24h_usd), data.last_24h_usd),
        Stat::num(
            "projected per month",
            usd(data.projected_monthly_usd),
            data.projected_monthly_usd,
        ),
    ];
    let empty = data.by_model.is_empty();
    let sections = build_sections(data, COST, &s.inner.metrics).await;
    Ok(report("cost", title, empty, summary, sections, fetch))
}

const COST: &[super::Builder<CostReport>] = &[
    ("drivers", drivers),
    ("by_model", by_model),
    ("by_suite", by_suite),
    ("by_day", by_day),
];

fn spend_table(rows: &[crate::analytics::Spend], first: &str) -> Table {
    Table {
        columns: cols(&[first, "USD", "results", "USD per test"]),
        rows: rows
            .iter()
            .map(|s| {
                vec![
                    json!(s.name),
                    n(s.cost_usd, 6),
                    json!(s.count),
                    n(s.cost_per_test_usd, 6),
                ]
            })
            .collect(),
    }
}

fn drivers(d: &CostReport) -> Section {
    let share = |c: f64| {
        if d.total_usd > 0.0 {
            c / d.total_usd
        } else {
            0.0
        }
    };
    let mut text: Vec<String> = d
        .by_model
        .iter()
        .take(3)
        .map(|s| {
            format!(
                "{} spent {} ({} of the total).",
                s.name,
                usd(s.cost_usd),
                pct(share(s.cost_usd))
            )
        })
        .collect();
    if let Some(top) = d.by_suite.first() {
        text.push(format!(
            "The costliest suite is {} at {} ({}).",
            top.name,
            usd(top.cost_usd),
            pct(share(top.cost_usd))
        ));
    }
    if text.is_empty() {
        text.push("Nothing was spent in this window.".into());
    }
    Section {
        id: "drivers".into(),
        title: "Top cost drivers".into(),
        text,
        stats: vec![Stat::num(
            "projected per month",
            usd(d.projected_monthly_usd),
            d.projected_monthly_usd,
        )],
        ..Section::default()
    }
}

fn by_model(d: &CostReport) -> Section {
    let mut s = bar(
        "by_model",
        "By provider and model",
        "USD",
        d.by_model
            .iter()
            .map(|m| Point {
                label: m.name.clone(),
                value: m.cost_usd,
            })
            .collect(),
    );
    s.table = Some(spend_table(&d.by_model, "provider/model"));
    s
}

fn by_suite(d: &CostReport) -> Section {
    Section {
        id: "by_suite".into(),
        title: "By suite".into(),
        table: Some(spend_table(&d.by_suite, "suite")),
        ..Section::default()
    }
}

fn by_day(d: &CostReport) -> Section {
    Section {
        id: "by_day".into(),
        title: "By day".into(),
        chart: Some(Chart {
            kind: ChartKind::Line,
            unit: "USD".into(),
            points: d
                .by_day
                .iter()
                .map(|s| Point {
                    label: s.name.clone(),
                    value: s.cost_usd,
                })
                .collect(),
        }),
        table: Some(spend_table(&d.by_day, "day (UTC)")),
        ..Section::default()
    }
}

pub(super) async fn trend(
    s: &ReportService,
    period: Period,
    suite: Option<i64>,
) -> Result<Report, ReportError> {
    let started = Instant::now();
    let data: Arc<Trends> = s.inner.analytics.trends(period, filter(suite)).await?.data;
    let fetch = started.elapsed();
    let (c, p) = (&data.current, &data.previous);
    let title = format!("Trend: this {} against the one before", data.period);
    let change = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:+.1} %"));
    let summary = vec![
        Stat::num("results", c.count.to_string(), c.count as f64),
        Stat::num("pass rate", pct(c.pass_rate), c.pass_rate),
        Stat::num(
            "change in pass rate",
            format!("{:+.1} points", data.change.pass_rate_points),
            data.change.pass_rate_points,
        ),
        Stat::text(
            "change in results per hour",
            change(data.change.count_per_hour_pct),
        ),
        Stat::text("change in p95", change(data.change.p95_pct)),
        Stat::text(
            "change in cost per hour",
            change(data.change.cost_per_hour_pct),
        ),
        Stat::num("previous results", p.count.to_string(), p.count as f64),
    ];
    let empty = c.count == 0 && p.count == 0;
    let sections = build_sections(data, TREND, &s.inner.metrics).await;
    Ok(report("trend", title, empty, summary, sections, fetch))
}

const TREND: &[super::Builder<Trends>] = &[
    ("comparison", trend_comparison),
    ("volume", |d| {
        trend_line(d, "volume", "Results per bucket", "results", |b| {
            b.count as f64
        })
    }),
    ("pass_rate_trend", |d| {
        trend_line(
            d,
            "pass_rate_trend",
            "Pass rate per bucket",
            "pass rate",
            |b| b.pass_rate,
        )
    }),
    ("latency_trend", |d| {
        trend_line(d, "latency_trend", "p95 latency per bucket", "ms", |b| {
            b.p95_ms.unwrap_or(0.0)
        })
    }),
    ("buckets", trend_buckets),
];

fn trend_comparison(d: &Trends) -> Section {
    let row = |name: &str, f: &crate::analytics::Figures| {
        vec![
            json!(name),
            json!(f.count),
            n(f.pass_rate, 4),
            n(f.error_rate, 4),
            n(f.latency.p95_ms.unwrap_or(0.0), 1),
            n(f.cost_usd, 4),
        ]
    };
    Section {
        id: "comparison".into(),
        title: format!("This {} and the one before", d.period),
        text: vec![
            "The current period is still going: changes in volume and cost compare per-hour rates."
                .into(),
        ],
        table: Some(Table {
            columns: cols(&[
                "period",
                "results",
                "pass rate",
                "error rate",
                "p95 ms",
                "USD",
            ]),
            rows: vec![row("current", &d.current), row("previous", &d.previous)],
        }),
        ..Section::default()
    }
}

fn label(d: &Trends, start: i64) -> String {
    let t = rfc3339(start);
    if d.bucket_seconds >= 86_400 {
        t[..10].to_owned()
    } else {
        t[11..16].to_owned()
    }
}

fn trend_line(
    d: &Trends,
    id: &str,
    title: &str,
    unit: &str,
    f: fn(&crate::analytics::TrendBucket) -> f64,
) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        chart: Some(Chart {
            kind: ChartKind::Line,
            unit: unit.into(),
            points: d
                .buckets
                .iter()
                .map(|b| Point {
                    label: label(d, b.start),
                    value: f(b),
                })
                .collect(),
        }),
        ..Section::default()
    }
}

fn trend_buckets(d: &Trends) -> Section {
    Section {
        id: "buckets".into(),
        title: "Buckets".into(),
        table: Some(Table {
            columns: cols(&[
                "start",
                "results",
                "pass rate",
                "error rate",
                "p50 ms",
                "p95 ms",
                "USD",
            ]),
            rows: d
                .buckets
                .iter()
                .map(|b| {
                    vec![
                        json!(rfc3339(b.start)),
                        json!(b.count),
                        n(b.pass_rate, 4),
                        n(b.error_rate, 4),
                        n(b.p50_ms.unwrap_or(0.0), 1),
                        n(b.p95_ms.unwrap_or(0.0), 1),
                        n(b.cost_usd, 6),
                    ]
                })
                .collect(),
        }),
        ..Section::default()
    }
}
