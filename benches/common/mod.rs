//! A registry populated as a busy service has it, shared by the benches
//! that read the registry (`/metrics`, the monitor).

use promptgauge::metrics::Metrics;

const ROUTES: &[&str] = &[
    "/metrics",
    "/ws",
    "/api/suites",
    "/api/suites/{id}",
    "/api/executions",
    "/api/executions/{id}",
    "/api/executions/{id}/results",
    "/api/executions/{id}/cancel",
    "/api/analytics/realtime",
    "/api/analytics/historical",
    "/api/reports",
    "/api/performance/health",
    "unmatched",
];
const STATUSES: &[&str] = &["200", "202", "400", "401", "404", "500"];
const OPERATIONS: &[&str] = &[
    "insert_results",
    "create_execution",
    "result_counts",
    "health_read",
    "health_write",
    "optimize",
    "claim_jobs",
    "finish_jobs",
    "list_executions",
    "rollups_minute",
    "rollups_hour",
    "insert_alert",
];
const CACHES: &[&str] = &[
    "test_cases",
    "analytics_realtime",
    "analytics_historical",
    "reports",
    "optimize_analysis",
    "optimize_suggestions",
];

/// A registry with the series a busy service has, each with observations.
pub fn populated() -> Metrics {
    let m = Metrics::new().unwrap();
    for (i, route) in ROUTES.iter().enumerate() {
        for method in ["GET", "POST"] {
            m.http.preinit(method, route);
            for status in STATUSES {
                m.http
                    .requests
                    .with_label_values(&[method, route, status])
                    .inc_by(i as u64 * 7 + 1);
            }
            let h = m.http.duration.with_label_values(&[method, route]);
            for k in 0..50 {
                h.observe(0.001 * f64::from(k));
            }
        }
    }
    for op in OPERATIONS {
        m.storage.preinit(op);
        m.storage
            .query_duration
            .with_label_values(&[op])
            .observe(0.0007);
        m.storage.queries.with_label_values(&[op]).inc_by(1000);
    }
    for _ in 0..100 {
        m.storage.writer_batch_size.observe(4.0);
        m.storage.writer_commit_duration.observe(0.02);
        m.storage.checkpoint_duration.observe(0.3);
    }
    for (provider, model) in [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o"),
        ("openai", "llama-3.1-70b"),
        ("mock", "fast"),
        ("mock", "slow"),
        ("echo", "echo"),
    ] {
        m.providers.preinit(provider, model);
        let h = m.providers.duration.with_label_values(&[provider, model]);
        for k in 0..50 {
            h.observe(0.05 * f64::from(k));
        }
        m.providers
            .requests
            .with_label_values(&[provider, model, "success"])
            .inc_by(500);
        m.providers
            .cost
            .with_label_values(&[provider, model])
            .inc_by(1.25);
    }
    for cache in CACHES {
        m.cache
            .lookups
            .with_label_values(&[cache, "hit"])
            .inc_by(900);
        m.cache
            .lookups
            .with_label_values(&[cache, "miss"])
            .inc_by(100);
        m.cache
            .evictions
            .with_label_values(&[cache, "capacity"])
            .inc();
        m.cache
            .evictions
            .with_label_values(&[cache, "expired"])
            .inc();
        m.cache.entries.with_label_values(&[cache]).set(512);
    }
    m
}
