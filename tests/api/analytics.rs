//! Analytics through the running app, against the truth: a generated
//! history (30 days, 8 models, bursty executions) stored through the
//! writer, and every endpoint's counts, pass rates and costs compared with
//! sums over the raw rows; percentiles exact for small windows and within
//! one bucket otherwise; `analytics rebuild` reproduces the rollups.

use promptgauge::bench::history::{self, HistorySpec};
use promptgauge::storage::{NewTestResult, now_ms};
use serde_json::Value;

use crate::helpers::{TestApp, open_db, run_binary, sample, spawn_app};

/// A stored row with its execution's suite.
struct Row {
    suite: i64,
    r: NewTestResult,
}

struct World {
    app: TestApp,
    rows: Vec<Row>,
    executions: Vec<i64>,
    now: i64,
}

async fn world(results: usize) -> World {
    let app = spawn_app().await;
    let now = now_ms();
    let spec = HistorySpec {
        results,
        days: 30,
        per_execution: 400,
        now,
        seed: 7,
    };
    let mut rows = Vec::new();
    let mut executions = Vec::new();
    history::store(&app.storage, &spec, |id, suite, rs| {
        executions.push(id);
        rows.extend(rs.iter().map(|r| Row {
            suite: suite.unwrap_or(0),
            r: r.clone(),
        }));
    })
    .await
    .expect("history stored");
    World {
        app,
        rows,
        executions,
        now,
    }
}

/// Sums over rows, as analytics should report them.
#[derive(Debug, Default, PartialEq)]
struct Truth {
    count: i64,
    passed: i64,
    failed: i64,
    errors: i64,
    cost: f64,
    latencies: Vec<i64>,
}

fn truth<'a>(rows: impl Iterator<Item = &'a Row>) -> Truth {
    let mut t = Truth::default();
    for Row { r, .. } in rows {
        t.count += 1;
        match (r.passed, r.failure_reason) {
            (true, _) => t.passed += 1,
            (false, 2) => t.errors += 1,
            (false, _) => t.failed += 1,
        }
        t.cost += r.cost_usd;
        t.latencies.push(r.execution_time_ms);
    }
    t.latencies.sort_unstable();
    t
}

fn in_window(w: &World, from: i64, to: i64) -> impl Iterator<Item = &Row> {
    w.rows
        .iter()
        .filter(move |x| x.r.created_at >= from && x.r.created_at < to)
}

fn nearest_rank(sorted: &[i64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

/// Counts, cost and percentiles of `figures` equal (or, for histogram
/// percentiles, stay within one bucket of) `t`.
fn check(figures: &Value, t: &Truth, what: &str) {
    let n = |k: &str| {
        figures[k]
            .as_i64()
            .unwrap_or_else(|| panic!("{what}: {k} in {figures}"))
    };
    assert_eq!(
        (n("count"), n("passed"), n("failed"), n("errors")),
        (t.count, t.passed, t.failed, t.errors),
        "{what}"
    );
    let cost = figures["costUsd"].as_f64().unwrap();
    assert!(
        (cost - t.cost).abs() <= 1e-9 * t.count as f64 + 1e-12,
        "{what}: cost {cost} vs {}",
        t.cost
    );
    if t.count > 0 {
        let rate = figures["passRate"].as_f64().unwrap();
        assert!(
            (rate - t.passed as f64 / t.count as f64).abs() < 1e-12,
            "{what}"
        );
    }
    let l = &figures["latency"];
    if t.latencies.is_empty() {
        return;
    }
    for (i, (k, q)) in [("p50Ms", 0.5), ("p95Ms", 0.95), ("p99Ms", 0.99)]
        .iter()
        .enumerate()
    {
        let exact = nearest_rank(&t.latencies, *q);
        let got = l[k].as_f64().unwrap();
        match l["method"].as_str().unwrap() {
            "exact" => assert_eq!(got, exact, "{what}: {k}"),
            "histogram" => {
                let bound = l["maxErrorMs"][i].as_f64().unwrap();
                assert!(
                    (got - exact).abs() <= bound,
                    "{what}: {k} {got} vs exact {exact} (bucket {bound})"
                );
                assert!(
                    bound < exact.max(1.0) * 0.2 + 1.0,
                    "{what}: bucket {bound} too wide for {exact}"
                );
            }
            m => panic!("{what}: method {m}"),
        }
    }
}

async fn get(app: &TestApp, path: &str) -> Value {
    app.get_json(path).await
}

#[tokio::test]
async fn every_answer_equals_the_truth_over_raw_rows() {
    let w = world(24_000).await;
    let now = w.now;

    // Real time: small windows, exact percentiles.
    for (window, ms) in [("5m", 300_000), ("15m", 900_000), ("60m", 3_600_000)] {
        let body = get(&w.app, &format!("/api/analytics/realtime?window={window}")).await;
        let (from, to) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
        // Whole minutes, the current one included.
        assert!(
            to - from >= ms && to - from <= ms + 60_000,
            "{window}: {}",
            to - from
        );
        assert!(from <= now - ms && to >= now);
        let t = truth(in_window(&w, from, to));
        assert!(t.count > 0, "{window}: the history has recent results");
        check(&body["totals"], &t, window);
        let method = if t.count <= 1000 {
            "exact"
        } else {
            "histogram"
        };
        assert_eq!(
            body["totals"]["latency"]["method"], method,
            "{window}: {} results",
            t.count
        );
        let models = body["models"].as_array().unwrap();
        let sum: i64 = models.iter().map(|m| m["count"].as_i64().unwrap()).sum();
        assert_eq!(sum, t.count);
        assert_eq!(body["query"]["source"], "db");
    }

    // Historical, any window: unaligned edges, days long.
    let (from, to) = (now - 11 * 86_400_000 - 123_457, now - 86_400_000 - 7_001);
    let body = get(
        &w.app,
        &format!("/api/analytics/historical?from={from}&to={to}"),
    )
    .await;
    let t = truth(in_window(&w, from, to));
    assert!(t.count > 5000);
    check(&body["totals"], &t, "historical");
    assert_eq!(body["totals"]["latency"]["method"], "histogram");
    assert!(body["source"]["hourTierMs"].as_i64().unwrap() > 0);
    assert!(
        body["source"]["rawMs"].as_i64().unwrap() > 0,
        "edges from raw rows"
    );
    for m in body["models"].as_array().unwrap() {
        let model = m["model"].as_str().unwrap();
        let t = truth(in_window(&w, from, to).filter(|x| x.r.model == model));
        check(m, &t, model);
    }
    // The same window by RFC 3339 and with each filter.
    let iso = |ms: i64| promptgauge::common::time::rfc3339(ms);
    let body = get(
        &w.app,
        &format!(
            "/api/analytics/historical?from={}&to={}",
            iso(from),
            iso(to)
        ),
    )
    .await;
    check(&body["totals"], &t, "historical rfc3339");
    let suite = w.rows.iter().find(|x| x.suite != 0).unwrap().suite;
    let body = get(
        &w.app,
        &format!("/api/analytics/historical?from={from}&to={to}&suite={suite}"),
    )
    .await;
    check(
        &body["totals"],
        &truth(in_window(&w, from, to).filter(|x| x.suite == suite)),
        "suite filter",
    );
    let body = get(
        &w.app,
        &format!("/api/analytics/historical?from={from}&to={to}&suite=0"),
    )
    .await;
    check(
        &body["totals"],
        &truth(in_window(&w, from, to).filter(|x| x.suite == 0)),
        "inline suites",
    );
    let body = get(
        &w.app,
        "/api/analytics/historical?window=30d&provider=anthropic:claude-3-haiku",
    )
    .await;
    let (f, t2) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
    check(
        &body["totals"],
        &truth(in_window(&w, f, t2).filter(|x| x.r.provider == "anthropic:claude-3-haiku")),
        "provider filter",
    );
    let body = get(
        &w.app,
        "/api/analytics/historical?window=30d&model=llama3-8b",
    )
    .await;
    let (f, t2) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
    check(
        &body["totals"],
        &truth(in_window(&w, f, t2).filter(|x| x.r.model == "llama3-8b")),
        "model filter",
    );

    // Models: per provider/model over 7 days.
    let body = get(&w.app, "/api/analytics/models?window=7d").await;
    let (f, t2) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
    for m in body["models"].as_array().unwrap() {
        let (p, model) = (
            m["provider"].as_str().unwrap(),
            m["model"].as_str().unwrap(),
        );
        let t = truth(in_window(&w, f, t2).filter(|x| x.r.provider == p && x.r.model == model));
        check(m, &t, model);
        let per_pass = m["costPerPassingTestUsd"].as_f64().unwrap();
        assert!(
            (per_pass - t.cost / t.passed as f64).abs() < 1e-9,
            "{model}"
        );
    }

    // Cost: by model, suite, day; the last 24 h.
    let body = get(&w.app, "/api/analytics/cost").await;
    let (f, t2) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
    let total = truth(in_window(&w, f, t2)).cost;
    assert!((body["totalUsd"].as_f64().unwrap() - total).abs() < 1e-6);
    let by: f64 = body["byModel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["costUsd"].as_f64().unwrap())
        .sum();
    assert!((by - total).abs() < 1e-6);
    let by: f64 = body["bySuite"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["costUsd"].as_f64().unwrap())
        .sum();
    assert!((by - total).abs() < 1e-6);
    let days = body["byDay"].as_array().unwrap();
    assert!(days.len() >= 25, "{} days", days.len());
    for d in days {
        let day = d["name"].as_str().unwrap();
        let start = promptgauge::common::time::parse_rfc3339(day).unwrap();
        let t = truth(in_window(&w, start.max(f), (start + 86_400_000).min(t2)));
        assert!(
            (d["costUsd"].as_f64().unwrap() - t.cost).abs() < 1e-6,
            "{day}"
        );
        assert_eq!(d["count"].as_i64().unwrap(), t.count, "{day}");
    }
    let last = truth(in_window(&w, now - 86_400_000 - 3_600_000, now + 60_000)).cost;
    let recent = truth(in_window(&w, now - 86_400_000 + 3_600_000, now)).cost;
    // The last 24 h in whole hours: between these two.
    let got = body["last24hUsd"].as_f64().unwrap();
    assert!(
        got >= recent - 1e-6 && got <= last + 1e-6,
        "{got} not in [{recent}, {last}]"
    );
    assert!((body["projectedMonthlyUsd"].as_f64().unwrap() - got * 30.0).abs() < 1e-5);

    // Trends: buckets add up; current and previous are the rolling windows.
    for (period, len) in [
        ("hour", 3_600_000i64),
        ("day", 86_400_000),
        ("week", 7 * 86_400_000),
        ("month", 30 * 86_400_000),
    ] {
        let body = get(&w.app, &format!("/api/analytics/trends?period={period}")).await;
        let buckets = body["buckets"].as_array().unwrap();
        let step = body["bucketSeconds"].as_i64().unwrap() * 1000;
        let start = buckets[0]["start"].as_i64().unwrap();
        let end = start + step * buckets.len() as i64;
        let sum: i64 = buckets.iter().map(|b| b["count"].as_i64().unwrap()).sum();
        assert_eq!(sum, truth(in_window(&w, start, end)).count, "{period}");
        for b in buckets.iter().step_by(7) {
            let s = b["start"].as_i64().unwrap();
            assert_eq!(
                b["count"].as_i64().unwrap(),
                truth(in_window(&w, s, s + step)).count,
                "{period} bucket"
            );
        }
        let (f, t2) = (body["from"].as_i64().unwrap(), body["to"].as_i64().unwrap());
        assert_eq!((f, t2), (start, end), "{period}");
        assert_eq!(t2 - f, len, "{period}");
        check(&body["current"], &truth(in_window(&w, f, t2)), period);
        check(&body["previous"], &truth(in_window(&w, f - len, f)), period);
        assert!(body["change"]["passRatePoints"].is_number(), "{period}");
    }

    // One execution: its own rows, exact percentiles.
    let id = w.executions[3];
    let body = get(&w.app, &format!("/api/analytics/executions/{id}?limit=5")).await;
    let t = truth(w.rows.iter().filter(|x| x.r.execution_id == id));
    check(&body["summary"], &t, "execution");
    assert_eq!(body["summary"]["latency"]["method"], "exact");
    assert_eq!(body["tests"].as_array().unwrap().len(), 5);
    // Each (prompt, test, provider, model) once in this history.
    assert_eq!(body["testsTotal"].as_i64().unwrap(), t.count);
    let slowest = body["slowest"].as_array().unwrap();
    let max = t.latencies.last().copied().unwrap();
    assert_eq!(slowest[0]["maxLatencyMs"].as_i64().unwrap(), max);
    let failing = body["mostFailing"].as_array().unwrap();
    assert!(
        failing
            .iter()
            .all(|f| f["failed"].as_i64().unwrap() + f["errors"].as_i64().unwrap() > 0)
    );
}

#[tokio::test]
async fn repeated_queries_are_served_from_the_caches_and_counted() {
    let w = world(2000).await;
    for _ in 0..5 {
        get(&w.app, "/api/analytics/realtime?window=15m").await;
        get(&w.app, "/api/analytics/trends?period=week").await;
    }
    let second = get(&w.app, "/api/analytics/trends?period=week").await;
    assert_eq!(second["query"]["source"], "cache");
    let stats = get(&w.app, "/api/analytics/cache-stats").await;
    let caches = stats["caches"].as_array().unwrap();
    let trends = caches
        .iter()
        .find(|c| c["name"] == "analytics_trends")
        .unwrap();
    assert_eq!(
        (trends["hits"].as_u64(), trends["misses"].as_u64()),
        (Some(5), Some(1))
    );
    assert!((trends["hitRate"].as_f64().unwrap() - 5.0 / 6.0).abs() < 1e-9);
    assert_eq!(
        trends["ttlSeconds"], 300.0,
        "the cache's default (an hour's trend)"
    );
    let text = w.app.metrics_text().await;
    assert_eq!(
        sample(
            &text,
            r#"promptgauge_analytics_queries_total{query="trends",source="cache"}"#
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"promptgauge_analytics_queries_total{query="trends",source="db"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"promptgauge_cache_lookups_total{cache="analytics_realtime",result="hit"}"#
        ),
        Some(4.0)
    );
    assert!(text.contains(
        r#"promptgauge_analytics_query_duration_seconds_count{query="realtime",source="db"} 1"#
    ));
}

#[tokio::test]
async fn rebuild_reproduces_the_rollups_exactly() {
    let w = world(6000).await;
    let (dir, db) = w.app.stop().await;
    let snapshot = || -> Vec<String> {
        let conn = open_db(&db);
        let mut stmt = conn
            .prepare(
                "SELECT resolution_s || ',' || bucket_start || ',' || suite_id || ',' || provider
                        || ',' || model || ',' || count || ',' || passed || ',' || failed || ','
                        || errors || ',' || latency_sum_ms || ',' || hex(latency_hist) || ','
                        || input_tokens || ',' || output_tokens || ',' || cost_nusd
                 FROM rollups ORDER BY resolution_s, bucket_start, suite_id, provider, model",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let before = snapshot();
    assert!(before.len() > 100, "{} rows", before.len());
    // A damaged table, to see the rebuild write it back.
    open_db(&db)
        .execute(
            "DELETE FROM rollups WHERE resolution_s = 3600 AND bucket_start % 7200000 = 0",
            [],
        )
        .unwrap();
    open_db(&db)
        .execute("UPDATE rollups SET count = count + 1", [])
        .unwrap();
    assert_ne!(snapshot(), before);
    let out = run_binary(
        &["analytics", "rebuild"],
        &[("DATABASE_PATH", db.to_str().unwrap())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rollup rows rebuilt"));
    assert_eq!(snapshot(), before, "identical numbers");
    drop(dir);
}

#[tokio::test]
async fn bad_parameters_get_422_naming_them_and_change_nothing() {
    let w = world(800).await;
    let count_rollups = || -> i64 {
        open_db(&w.app.db_path)
            .query_row("SELECT count(*) FROM rollups", [], |r| r.get(0))
            .unwrap()
    };
    let before = count_rollups();
    for (path, param, status) in [
        ("/api/analytics/realtime?window=7m", "window", 422),
        ("/api/analytics/realtime?window=5m&color=red", "color", 422),
        ("/api/analytics/historical?from=2026-13-01", "from", 422),
        ("/api/analytics/historical?from=yesterday", "from", 422),
        ("/api/analytics/historical?from=2000&to=1000", "from", 422),
        (
            "/api/analytics/historical?from=0&to=99999999999999",
            "to",
            422,
        ),
        ("/api/analytics/historical?window=400d", "window", 422),
        ("/api/analytics/historical?window=1h&from=0", "window", 422),
        ("/api/analytics/historical?to=1000", "to", 422),
        ("/api/analytics/trends?period=fortnight", "period", 422),
        ("/api/analytics/models?suite=abc", "suite", 422),
        ("/api/analytics/models?suite=-1", "suite", 422),
        ("/api/analytics/cost?model=", "model", 422),
        (
            "/api/analytics/cost?provider=%3Cscript%3E%00",
            "provider",
            422,
        ),
        ("/api/analytics/executions/abc", "", 400),
        ("/api/analytics/executions/0", "", 400),
        ("/api/analytics/executions/99999", "", 404),
        ("/api/analytics/executions/1?limit=0", "limit", 422),
    ] {
        let res = w.app.get(path).await;
        assert_eq!(res.status(), status, "{path}");
        let body: Value = res.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        if !param.is_empty() {
            let named = body["error"]["problems"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["location"] == param);
            assert!(named, "{path}: {body}");
        }
        assert!(
            !message.is_empty() && message.len() < 400,
            "{path}: {message}"
        );
    }
    // Hostile but valid filters answer with nothing found.
    let body = get(
        &w.app,
        "/api/analytics/historical?window=1d&model=%27%3B%20DROP%20TABLE%20rollups%3B--",
    )
    .await;
    assert_eq!(body["totals"]["count"], 0);
    assert_eq!(count_rollups(), before);
}
