use std::process::{Command, Stdio};

use crate::helpers::{sample, spawn_app};

const HEALTH_200: &str =
    r#"promptgauge_http_requests_total{method="GET",route="/api/performance/health",status="200"}"#;

#[tokio::test]
async fn metrics_are_served_in_the_text_format_with_its_content_type() {
    let app = spawn_app().await;

    let res = app.get("/metrics").await;

    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    for family in [
        "promptgauge_build_info",
        "process_resident_memory_bytes",
        "promptgauge_http_requests_total",
        "promptgauge_http_request_duration_seconds_bucket",
        "promptgauge_http_requests_in_flight",
        "promptgauge_db_writer_batch_size_bucket",
        "promptgauge_db_writer_commit_duration_seconds_bucket",
        "promptgauge_db_writer_queue_depth",
        "promptgauge_db_size_bytes",
        "promptgauge_db_busy_total",
    ] {
        assert!(text.contains(family), "missing {family}");
    }
    app.stop().await;
}

#[tokio::test]
async fn request_counters_move_by_route_template_and_status() {
    let app = spawn_app().await;
    let before = app.metrics_text().await;
    // Known routes are pre-initialised, so ratios have data before traffic.
    assert_eq!(sample(&before, HEALTH_200), Some(0.0));
    assert_eq!(
        sample(
            &before,
            r#"promptgauge_http_requests_total{method="GET",route="/api/performance/health",status="500"}"#
        ),
        Some(0.0)
    );

    assert_eq!(
        sample(
            &before,
            r#"promptgauge_db_query_errors_total{operation="insert_results"}"#
        ),
        Some(0.0)
    );

    for _ in 0..3 {
        assert_eq!(app.get("/api/performance/health").await.status(), 200);
    }
    assert_eq!(app.get("/no/such/route/42").await.status(), 404);
    let after = app.metrics_text().await;

    assert_eq!(sample(&after, HEALTH_200), Some(3.0));
    assert_eq!(
        sample(
            &after,
            r#"promptgauge_http_request_duration_seconds_count{method="GET",route="/api/performance/health"}"#
        ),
        Some(3.0)
    );
    // Unknown paths share one series instead of one per path.
    assert_eq!(
        sample(
            &after,
            r#"promptgauge_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    assert!(!after.contains("/no/such/route"));
    // The request being answered is the one in flight.
    assert_eq!(
        sample(&after, "promptgauge_http_requests_in_flight"),
        Some(1.0)
    );
    // Each health check wrote through the writer and read on the pool.
    assert_eq!(
        sample(
            &after,
            r#"promptgauge_db_queries_total{operation="health_write"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &after,
            r#"promptgauge_db_queries_total{operation="health_read"}"#
        ),
        Some(3.0)
    );
    assert!(sample(&after, "promptgauge_db_writer_batch_size_count").unwrap() >= 1.0);
    assert!(sample(&after, "promptgauge_db_size_bytes").unwrap() > 0.0);
    app.stop().await;
}

#[tokio::test]
#[ignore = "needs promtool (Debian package prometheus)"]
async fn metrics_pass_promtool_check_metrics() {
    let app = spawn_app().await;
    // Traffic first, so labelled series exist and get linted too.
    app.get("/api/performance/health").await;
    app.get("/missing").await;
    let text = app.metrics_text().await;

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on PATH (apt-get install prometheus)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();

    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool failed: {report}");
    assert_eq!(report, "", "promtool printed findings");
    app.stop().await;
}
