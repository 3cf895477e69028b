//! The writer, the read pool and WAL control, on real files.

use super::*;
use crate::metrics::Metrics;

fn open_temp() -> (tempfile::TempDir, Storage, Metrics) {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new().unwrap();
    let storage = Storage::open(&dir.path().join("t.db"), metrics.storage.clone()).unwrap();
    (dir, storage, metrics)
}

fn rows(execution_id: i64, ids: std::ops::Range<i64>) -> Vec<NewTestResult> {
    ids.map(|id| NewTestResult {
        id: Some(id),
        execution_id,
        provider: "echo".into(),
        model: "echo".into(),
        passed: true,
        score: 1.0,
        execution_time_ms: id,
        created_at: id,
        ..Default::default()
    })
    .collect()
}

async fn execution(s: &Storage) -> i64 {
    s.create_execution(NewExecution {
        config: "{}".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .0
}

#[tokio::test]
async fn a_stored_result_id_is_never_stored_twice() {
    let (_d, s, _m) = open_temp();
    let e = execution(&s).await;
    assert_eq!(s.insert_results(rows(e, 1..11)).await.unwrap(), 10);
    assert_eq!(s.insert_results(rows(e, 5..15)).await.unwrap(), 4);
    assert_eq!(s.result_counts(e).await.unwrap().total, 14);
    s.close().await;
}

#[tokio::test]
async fn a_failing_command_is_rolled_back_alone() {
    let (_d, s, m) = open_temp();
    let e = execution(&s).await;
    // Queue good and bad commands together so they can share a batch.
    let good1 = s.insert_results(rows(e, 1..51));
    let bad = s.insert_results(rows(e + 999, 100..150)); // no such execution
    let good2 = s.insert_results(rows(e, 200..250));
    let (g1, b, g2) = tokio::join!(good1, bad, good2);
    assert_eq!(g1.unwrap(), 50);
    assert_eq!(g2.unwrap(), 50);
    let err = b.unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    assert_eq!(s.result_counts(e).await.unwrap().total, 100);
    let errors = m
        .storage
        .query_errors
        .with_label_values(&["insert_results"])
        .get();
    assert_eq!(errors, 1);
    s.close().await;
}

#[tokio::test]
async fn a_panicking_command_does_not_stop_the_writer() {
    let (_d, s, _m) = open_temp();
    let boom = s
        .inner
        .writer
        .call("boom", |_c| -> rusqlite::Result<()> {
            panic!("bug in a write command")
        })
        .await;
    assert!(matches!(
        boom,
        Err(StorageError::Query {
            operation: "boom",
            ..
        })
    ));
    let e = execution(&s).await;
    assert_eq!(s.insert_results(rows(e, 1..3)).await.unwrap(), 2);
    s.close().await;
}

#[tokio::test]
async fn periodic_optimize_analyzes_a_table_that_grew_since_start_up() {
    let (_d, s, _m) = open_temp();
    let e = execution(&s).await;
    for b in 0..20 {
        s.insert_results(rows(e, b * 1000 + 1..(b + 1) * 1000 + 1))
            .await
            .unwrap();
    }
    s.optimize().await.unwrap();
    let analyzed = s
        .inner
        .readers
        .run("test", |c| {
            c.query_row(
                "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'test_results'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .unwrap();
    assert!(analyzed >= 4, "{analyzed}");
    s.close().await;
}

#[tokio::test]
async fn the_wal_stays_bounded_under_non_stop_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let m = Metrics::new().unwrap();
    let limits = WalLimits {
        checkpoint_at_pages: 50,
        limit_pages: 200,
    };
    let s = Storage::open_with(&path, limits, connection::BUSY_TIMEOUT, m.storage.clone()).unwrap();
    let e = execution(&s).await;
    let wal = path.with_extension("db-wal");
    let mut largest = 0;
    // About 13 MB of WAL without checkpoints, far past the 1.6 MB limit.
    for b in 0..60 {
        s.insert_results(rows(e, b * 500 + 1..(b + 1) * 500 + 1))
            .await
            .unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // The limit plus at most one batch's pages (a few hundred of 8 KiB).
    assert!(largest < 4 << 20, "WAL grew to {largest} bytes");
    let checkpoints = m.storage.checkpoint_duration.get_sample_count();
    assert!(
        checkpoints >= 2,
        "background and inline checkpoints ran: {checkpoints}"
    );
    assert_eq!(s.result_counts(e).await.unwrap().total, 30_000);
    s.close().await;
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "truncated at close"
    );
}

#[tokio::test]
async fn close_is_idempotent_and_later_writes_are_refused() {
    let (_d, s, _m) = open_temp();
    s.close().await;
    s.close().await;
    assert!(matches!(s.check_write().await, Err(StorageError::Closed)));
    assert_eq!(s.check_read().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test]
async fn monitor_history_is_read_by_metric_and_time_replaced_by_key_and_pruned() {
    let (_dir, s, _m) = open_temp();
    let row = |metric: &str, ts: i64, value: f64| MonitorSampleRow {
        metric: metric.to_owned(),
        resolution_s: 60,
        ts,
        value,
        min: value - 1.0,
        max: value + 1.0,
    };
    s.insert_monitor_samples(vec![
        row("cpu", 60_000, 1.0),
        row("cpu", 180_000, 3.0),
        row("cpu", 120_000, 2.0),
        row("memory", 120_000, 9.0),
    ])
    .await
    .unwrap();
    // The same (metric, resolution, ts) again replaces the point.
    s.insert_monitor_samples(vec![row("cpu", 180_000, 4.0)])
        .await
        .unwrap();

    let points = |rows: Vec<MonitorSampleRow>| -> Vec<(i64, f64)> {
        rows.into_iter().map(|r| (r.ts, r.value)).collect()
    };
    let cpu = s.monitor_samples("cpu".into(), 60, 100_000).await.unwrap();
    assert_eq!(
        points(cpu),
        [(120_000, 2.0), (180_000, 4.0)],
        "oldest first, since"
    );
    assert!(
        s.monitor_samples("cpu".into(), 3600, 0)
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(s.prune_monitor_samples(150_000).await.unwrap(), 3);
    let left = s.monitor_samples("cpu".into(), 60, 0).await.unwrap();
    assert_eq!(points(left), [(180_000, 4.0)]);
    s.close().await;
}

#[tokio::test]
async fn alerts_are_stored_updated_on_resolution_and_listed_by_state() {
    let (_dir, s, _m) = open_temp();
    let firing = AlertRow {
        id: 0,
        alertname: "PromptgaugeTestQueueBacklog".into(),
        signal: "queue_length".into(),
        severity: "warning".into(),
        state: "firing".into(),
        threshold: 100.0,
        value: 150.0,
        peak_value: 150.0,
        labels: "{}".into(),
        description: Some("test queue length is 150 jobs".into()),
        started_at: 1_000,
        fired_at: Some(61_000),
        resolved_at: None,
    };
    let id = s.insert_alert(firing.clone()).await.unwrap();
    let active = s.active_alerts().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!((active[0].id, active[0].state.as_str()), (id, "firing"));
    assert!(s.resolved_alerts(0, 10).await.unwrap().is_empty());

    s.update_alert(id, 20.0, 640.0, Some("resolved at 20".into()), Some(90_000))
        .await
        .unwrap();
    assert!(s.active_alerts().await.unwrap().is_empty());
    let resolved = s.resolved_alerts(0, 10).await.unwrap();
    assert_eq!(resolved.len(), 1);
    let r = &resolved[0];
    assert_eq!((r.id, r.state.as_str()), (id, "resolved"));
    assert_eq!(
        (r.value, r.peak_value, r.resolved_at),
        (20.0, 640.0, Some(90_000))
    );
    assert_eq!((r.started_at, r.fired_at), (1_000, Some(61_000)));
    assert!(
        s.resolved_alerts(90_001, 10).await.unwrap().is_empty(),
        "since"
    );
    s.close().await;
}
