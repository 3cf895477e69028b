use crate::helpers::spawn_app;

#[tokio::test]
async fn health_reports_ok_with_database_read_and_write_checks() {
    let app = spawn_app().await;

    let res = app.get("/api/performance/health").await;

    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["schema_version"], promptgauge::storage::SCHEMA_VERSION);
    assert!(body["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(body["checks"]["database_read"]["status"], "ok");
    assert_eq!(body["checks"]["database_write"]["status"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn the_health_write_check_really_writes_to_the_database() {
    let app = spawn_app().await;
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    let (_dir, path) = app.stop().await;

    let conn = crate::helpers::open_db(&path);
    let written: i64 = conn
        .query_row(
            "SELECT updated_at FROM service_meta WHERE key = 'health_write'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(written > 1_700_000_000_000, "a real timestamp: {written}");
}

#[tokio::test]
async fn health_is_unavailable_once_storage_is_closed() {
    let app = spawn_app().await;
    app.storage.close().await;

    let res = app.get("/api/performance/health").await;

    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "critical");
    assert_eq!(body["checks"]["database_write"]["status"], "failed");
    assert_eq!(
        body["checks"]["database_write"]["error"],
        "storage is shut down"
    );
    // Reads still work: the read pool does not depend on the writer.
    assert_eq!(body["checks"]["database_read"]["status"], "ok");
    app.stop().await;
}
