//! Recommendations: rules over current figures, each reporting the
//! evidence that triggered it. A rule is a function from [`Evidence`] to
//! recommendations; add one to [`RULES`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::bottlenecks::Bottleneck;
use super::leak::LeakAssessment;
use super::signals::Sample;
use super::thresholds::Thresholds;

/// What the rules look at.
pub struct Evidence<'a> {
    /// Mean of each value over the recent window.
    pub recent: &'a BTreeMap<String, f64>,
    /// Components over the recent window, slowest first.
    pub bottlenecks: &'a [Bottleneck],
    /// The leak fit.
    pub leak: &'a LeakAssessment,
    /// Thresholds in force.
    pub thresholds: &'a Thresholds,
    /// `MAX_CONCURRENT_TESTS`.
    pub max_concurrent_tests: usize,
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The rule, stable (`cache_hit_ratio_low`, ...).
    pub rule: &'static str,
    /// `info`, `warning` or `critical`.
    pub severity: &'static str,
    /// What is wrong.
    pub title: String,
    /// What to do.
    pub action: String,
    /// The figures that triggered it.
    pub evidence: BTreeMap<String, f64>,
}

type Rule = fn(&Evidence<'_>) -> Vec<Recommendation>;

/// Every rule, in the order their advice is listed.
pub const RULES: &[Rule] = &[
    cpu_saturated,
    memory_leak,
    provider_rate_limited,
    queue_backlog_with_headroom,
    cache_hit_ratio_low,
    slow_read_query,
    slow_responses,
    websocket_clients_behind,
];

/// Runs every rule.
pub fn recommend(e: &Evidence<'_>) -> Vec<Recommendation> {
    RULES.iter().flat_map(|rule| rule(e)).collect()
}

/// Mean values over `samples`, by name (each over the samples that have it).
pub fn means<'a>(samples: impl Iterator<Item = &'a Sample>) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, u32)> = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.values {
            let e = sums.entry(k.clone()).or_default();
            e.0 += v;
            e.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(k, (sum, n))| (k, sum / f64::from(n)))
        .collect()
}

fn evidence(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Values of `prefix:<name>` keys, by name.
fn per<'a>(recent: &'a BTreeMap<String, f64>, prefix: &str) -> Vec<(&'a str, f64)> {
    recent
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_prefix(':')?, *v)))
        .collect()
}

fn cpu_saturated(e: &Evidence<'_>) -> Vec<Recommendation> {
    let Some(&cpu) = e.recent.get("cpu_usage_ratio") else {
        return Vec::new();
    };
    if cpu < e.thresholds.cpu.warning {
        return Vec::new();
    }
    let critical = cpu >= e.thresholds.cpu.critical;
    vec![Recommendation {
        rule: "cpu_saturated",
        severity: if critical { "critical" } else { "warning" },
        title: format!("CPU is {:.0}% busy", cpu * 100.0),
        action: format!(
            "Lower MAX_CONCURRENT_TESTS (now {}) or the executions' maxConcurrency, or give the host more cores.",
            e.max_concurrent_tests
        ),
        evidence: evidence(&[
            ("cpu_usage_ratio", cpu),
            ("cpu_warning_threshold", e.thresholds.cpu.warning),
        ]),
    }]
}

fn memory_leak(e: &Evidence<'_>) -> Vec<Recommendation> {
    let (true, Some(fit)) = (e.leak.suspected, e.leak.fit) else {
        return Vec::new();
    };
    vec![Recommendation {
        rule: "memory_leak_suspected",
        severity: "warning",
        title: format!(
            "Resident memory grows steadily: {:.1} MiB/min over {:.0} min (R² {:.2})",
            fit.slope * 60.0 / (1024.0 * 1024.0),
            fit.span_secs / 60.0,
            fit.r2
        ),
        action: "A leak is suspected: compare /api/performance/metrics/process_resident_memory_bytes with the workload, and take a heap profile if it keeps growing while the load is flat.".to_owned(),
        evidence: evidence(&[
            ("growth_bytes_per_second", fit.slope),
            ("r2", fit.r2),
            ("window_seconds", fit.span_secs),
        ]),
    }]
}

fn provider_rate_limited(e: &Evidence<'_>) -> Vec<Recommendation> {
    per(e.recent, "provider_rate_limited_ratio")
        .into_iter()
        .filter(|&(_, ratio)| ratio >= 0.05)
        .map(|(provider, ratio)| Recommendation {
            rule: "provider_rate_limited",
            severity: "warning",
            title: format!("{provider} answers {:.0}% of calls with 429", ratio * 100.0),
            action: format!(
                "Lower the rate for {provider}: set requestsPerMinute (or tokensPerMinute) and maxConcurrency in its provider config below its quota."
            ),
            evidence: evidence(&[("rate_limited_ratio", ratio)]),
        })
        .collect()
}

fn queue_backlog_with_headroom(e: &Evidence<'_>) -> Vec<Recommendation> {
    let get = |k: &str| e.recent.get(k).copied().unwrap_or(0.0);
    let (queue, in_flight, limit) = (
        get("test_queue_length"),
        get("tests_in_flight"),
        get("test_concurrency_limit"),
    );
    let limited = per(e.recent, "provider_rate_limited_ratio")
        .iter()
        .any(|&(_, r)| r > 0.01);
    // The limit is what holds the backlog back, and providers are not pushing back.
    if queue < 10.0 || limit <= 0.0 || in_flight < 0.9 * limit || limited {
        return Vec::new();
    }
    vec![Recommendation {
        rule: "queue_backlog_with_headroom",
        severity: "info",
        title: format!("{queue:.0} tests wait while providers have headroom (no 429s)"),
        action: format!(
            "Raise MAX_CONCURRENT_TESTS (now {}) or the executions' maxConcurrency.",
            e.max_concurrent_tests
        ),
        evidence: evidence(&[
            ("test_queue_length", queue),
            ("tests_in_flight", in_flight),
            ("test_concurrency_limit", limit),
        ]),
    }]
}

fn cache_hit_ratio_low(e: &Evidence<'_>) -> Vec<Recommendation> {
    per(e.recent, "cache_hit_ratio")
        .into_iter()
        .filter_map(|(cache, ratio)| {
            let rate = e
                .recent
                .get(&format!("cache_lookups_per_second:{cache}"))
                .copied()
                .unwrap_or(0.0);
            // At least a lookup every ten seconds, or the ratio is noise.
            (ratio < 0.5 && rate >= 0.1).then(|| Recommendation {
                rule: "cache_hit_ratio_low",
                severity: "info",
                title: format!("The {cache} cache hits {:.0}% of lookups", ratio * 100.0),
                action: format!(
                    "Raise the {cache} cache's time to live (CACHE_TTL) or size, if the same keys come back later."
                ),
                evidence: evidence(&[("hit_ratio", ratio), ("lookups_per_second", rate)]),
            })
        })
        .collect()
}

fn slow_read_query(e: &Evidence<'_>) -> Vec<Recommendation> {
    e.bottlenecks
        .iter()
        .filter(|b| b.component.starts_with("db ") && b.p95_seconds >= 0.1 && b.count >= 5)
        .map(|b| Recommendation {
            rule: "slow_read_query",
            severity: "warning",
            title: format!("{} has a p95 of {:.0} ms", b.component, b.p95_seconds * 1000.0),
            action: format!(
                "Check the index and plan of {} (EXPLAIN QUERY PLAN); PRAGMA optimize runs every 10 minutes.",
                b.component.trim_start_matches("db ")
            ),
            evidence: evidence(&[
                ("p95_seconds", b.p95_seconds),
                ("count", b.count as f64),
                ("share", b.share),
            ]),
        })
        .collect()
}

fn slow_responses(e: &Evidence<'_>) -> Vec<Recommendation> {
    let Some(&p95) = e.recent.get("http_response_time_p95_seconds") else {
        return Vec::new();
    };
    if p95 < e.thresholds.response_time.warning {
        return Vec::new();
    }
    let top = e
        .bottlenecks
        .iter()
        .find(|b| b.component.starts_with("http "));
    let mut ev = evidence(&[("http_response_time_p95_seconds", p95)]);
    if let Some(b) = top {
        ev.insert("slowest_route_p95_seconds".to_owned(), b.p95_seconds);
    }
    vec![Recommendation {
        rule: "slow_responses",
        severity: "warning",
        title: format!("HTTP p95 is {:.0} ms", p95 * 1000.0),
        action: match top {
            Some(b) => format!(
                "Start with {} (p95 {:.0} ms, {:.0}% of request time); see /api/performance/bottlenecks.",
                b.component,
                b.p95_seconds * 1000.0,
                b.share * 100.0
            ),
            None => "See /api/performance/bottlenecks for the slowest components.".to_owned(),
        },
        evidence: ev,
    }]
}

/// WebSocket delivery p99 above which clients are advised about, seconds
/// (the `PromptgaugeWebsocketDeliverySlow` warning level).
pub const WEBSOCKET_DELIVERY_P99_WARNING: f64 = 0.1;

fn websocket_clients_behind(e: &Evidence<'_>) -> Vec<Recommendation> {
    let dropped = e
        .recent
        .get("websocket_dropped_per_second")
        .copied()
        .unwrap_or(0.0);
    let p99 = e
        .recent
        .get("websocket_delivery_p99_seconds")
        .copied()
        .unwrap_or(0.0);
    if dropped <= 0.0 && p99 < WEBSOCKET_DELIVERY_P99_WARNING {
        return Vec::new();
    }
    vec![Recommendation {
        rule: "websocket_clients_behind",
        severity: "warning",
        title: format!(
            "WebSocket clients fall behind: {dropped:.1} events/s dropped, delivery p99 {:.0} ms",
            p99 * 1000.0
        ),
        action: "Slow clients get resyncs instead of their backlog. Widen WS_BATCH_WINDOW so more events share a frame, raise WS_CLIENT_QUEUE for bursty clients, and have overview dashboards subscribe to the executions topic rather than to results.".to_owned(),
        evidence: evidence(&[
            ("websocket_dropped_per_second", dropped),
            ("websocket_delivery_p99_seconds", p99),
        ]),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::leak;

    fn run(recent: &[(&str, f64)], bottlenecks: &[Bottleneck]) -> Vec<Recommendation> {
        let recent: BTreeMap<String, f64> =
            recent.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let leak = leak::assess(&[]);
        recommend(&Evidence {
            recent: &recent,
            bottlenecks,
            leak: &leak,
            thresholds: &Thresholds::default(),
            max_concurrent_tests: 20,
        })
    }

    fn rules(r: &[Recommendation]) -> Vec<&str> {
        r.iter().map(|r| r.rule).collect()
    }

    #[test]
    fn the_websocket_advice_starts_where_the_prometheus_warning_does() {
        let file = include_str!("../../alerts/promptgauge.alerts.yml");
        let warning = file
            .lines()
            .find(|l| l.contains("job:promptgauge_websocket_delivery_seconds:p99_5m >="))
            .and_then(|l| l.rsplit(">=").next())
            .and_then(|c| c.trim().parse::<f64>().ok())
            .expect("the warning rule");
        assert_eq!(warning, WEBSOCKET_DELIVERY_P99_WARNING);
        let r = run(&[("websocket_delivery_p99_seconds", warning)], &[]);
        assert_eq!(rules(&r), ["websocket_clients_behind"]);
        assert!(run(&[("websocket_delivery_p99_seconds", 0.05)], &[]).is_empty());
    }

    #[test]
    fn quiet_figures_give_no_advice() {
        let r = run(
            &[
                ("cpu_usage_ratio", 0.2),
                ("cache_hit_ratio:suites", 0.95),
                ("cache_lookups_per_second:suites", 3.0),
                ("test_queue_length", 0.0),
            ],
            &[],
        );
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn each_rule_fires_on_its_evidence() {
        let slow_db = Bottleneck {
            component: "db list_results".into(),
            count: 40,
            mean_seconds: 0.08,
            p95_seconds: 0.4,
            p99_seconds: 0.9,
            total_seconds: 3.2,
            share: 0.6,
        };
        let r = run(
            &[
                ("cpu_usage_ratio", 0.93),
                ("provider_rate_limited_ratio:openai:gpt-4o", 0.12),
                ("cache_hit_ratio:suites", 0.2),
                ("cache_lookups_per_second:suites", 2.0),
                ("cache_hit_ratio:rare", 0.0),
                ("cache_lookups_per_second:rare", 0.01),
                ("http_response_time_p95_seconds", 1.8),
                ("websocket_dropped_per_second", 12.0),
            ],
            &[slow_db],
        );
        assert_eq!(
            rules(&r),
            [
                "cpu_saturated",
                "provider_rate_limited",
                "cache_hit_ratio_low",
                "slow_read_query",
                "slow_responses",
                "websocket_clients_behind"
            ]
        );
        assert_eq!(r[0].severity, "critical");
        assert_eq!(r[0].evidence["cpu_usage_ratio"], 0.93);
        assert!(r[1].action.contains("openai:gpt-4o"), "{:?}", r[1]);
        assert!(
            r[2].title.contains("suites"),
            "the rarely used cache is not advice"
        );
        assert!(r[3].action.contains("list_results"));
    }

    #[test]
    fn a_backlog_is_advice_only_when_the_limit_holds_it_back_and_providers_do_not_push_back() {
        let base = [
            ("test_queue_length", 300.0),
            ("tests_in_flight", 20.0),
            ("test_concurrency_limit", 20.0),
        ];
        assert_eq!(rules(&run(&base, &[])), ["queue_backlog_with_headroom"]);
        let mut limited = base.to_vec();
        limited.push(("provider_rate_limited_ratio:mock", 0.2));
        assert!(!rules(&run(&limited, &[])).contains(&"queue_backlog_with_headroom"));
        let idle = [
            ("test_queue_length", 300.0),
            ("tests_in_flight", 2.0),
            ("test_concurrency_limit", 20.0),
        ];
        assert!(run(&idle, &[]).is_empty());
    }
}
