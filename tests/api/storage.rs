//! The storage writer under load, at shutdown and after a crash.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use promptgauge::metrics::Metrics;
use promptgauge::storage::Storage;

use crate::helpers::{KillOnDrop, new_execution, open_db, results, spawn_app, spawn_app_at};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_keep_answering_during_a_write_burst() {
    let app = spawn_app().await;
    let execution = new_execution(&app.storage).await;
    let (writers, batches, rows) = (4_i64, 40_i64, 100_i64);
    let total = writers * batches * rows;
    let mut burst = Vec::new();
    for w in 0..writers {
        let storage = app.storage.clone();
        burst.push(tokio::spawn(async move {
            for b in 0..batches {
                let first = 1 + (w * batches + b) * rows;
                let n = storage
                    .insert_results(results(execution, first, rows))
                    .await
                    .unwrap();
                assert_eq!(n as i64, rows);
            }
        }));
    }

    let mut seen = Vec::new();
    while burst.iter().any(|t| !t.is_finished()) {
        seen.push(app.storage.result_counts(execution).await.unwrap().total);
        assert_eq!(app.get("/api/performance/health").await.status(), 200);
    }
    for t in burst {
        t.await.unwrap();
    }

    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "a reader went back in time: {seen:?}"
    );
    assert!(
        seen.iter().any(|&n| n > 0 && n < total),
        "reads ran between commits, not only before or after: {seen:?}"
    );
    assert_eq!(
        app.storage.result_counts(execution).await.unwrap().total,
        total
    );
    app.stop().await;
}

#[tokio::test]
async fn shutdown_flushes_every_write_queued_before_it() {
    let app = spawn_app().await;
    let execution = new_execution(&app.storage).await;
    // Queue 100 writes without waiting for their commits: polling each
    // future once puts its command on the writer's channel.
    let mut pending = Vec::new();
    let mut early = 0;
    for i in 0..100 {
        let storage = app.storage.clone();
        let mut write = Box::pin(async move {
            storage
                .insert_results(results(execution, 1 + i * 50, 50))
                .await
        });
        tokio::select! {
            biased;
            // The writer thread can commit between the send and the first
            // check; such a write is simply done already.
            done = &mut write => {
                assert_eq!(done.expect("committed"), 50);
                early += 1;
                continue;
            }
            () = std::future::ready(()) => {}
        }
        pending.push(write);
    }
    assert!(early < 100, "some writes are still queued at shutdown");

    let (_dir, db) = app.stop().await;

    for write in pending {
        assert_eq!(
            write.await.expect("queued before shutdown, so committed"),
            50
        );
    }
    let stored: i64 = open_db(&db)
        .query_row("SELECT count(*) FROM test_results", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 100 * 50);
}

#[tokio::test]
async fn writes_after_shutdown_fail_cleanly() {
    let app = spawn_app().await;
    let storage = app.storage.clone();
    app.stop().await;
    let err = storage.insert_results(results(1, 1, 1)).await.unwrap_err();
    assert_eq!(err.to_string(), "storage is shut down");
}

#[tokio::test]
async fn statistics_exist_after_a_restart_and_the_planner_uses_the_time_index() {
    let app = spawn_app().await;
    let execution = new_execution(&app.storage).await;
    for b in 0..20 {
        app.storage
            .insert_results(results(execution, 1 + b * 500, 500))
            .await
            .unwrap();
    }
    let (dir, db) = app.stop().await;
    // Start-up runs PRAGMA optimize, which analyzes the grown table.
    let app = spawn_app_at(dir, db.clone(), |_| {}).await;
    let (_dir, db) = app.stop().await;

    let conn = open_db(&db);
    let analyzed: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'test_results'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(analyzed >= 4, "stats for the four indexes, got {analyzed}");
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN
             SELECT count(*), sum(passed) FROM test_results WHERE created_at >= 1700000009000",
        )
        .unwrap()
        .query_map([], |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let plan = plan.join(" | ");
    assert!(plan.contains("test_results_created_passed"), "{plan}");
}

const CHILD_DB: &str = "PROMPTGAUGE_TEST_CRASH_CHILD_DB";

/// The child side: writes through the real writer and prints each
/// acknowledged range. Runs only inside the process the parent starts.
async fn child_write_burst(db: String) {
    let metrics = Metrics::new().unwrap();
    let storage = Storage::open(db.as_ref(), metrics.storage.clone()).unwrap();
    let execution = new_execution(&storage).await;
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for w in 0..4_i64 {
        let (storage, out) = (storage.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            // Bounded (200k rows): the parent kills us long before this ends.
            for b in 0..1_000_i64 {
                let first = 1 + (b * 4 + w) * 50;
                storage
                    .insert_results(results(execution, first, 50))
                    .await
                    .unwrap();
                let mut out = out.lock().unwrap();
                writeln!(out, "ACK {execution} {first} 50").unwrap();
                out.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_write_burst_loses_no_acknowledged_write() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        return child_write_burst(db).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "storage::sigkill_during_a_write_burst_loses_no_acknowledged_write",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    // Kill mid-burst, after enough acknowledgements to mean something.
    while acked.len() < 60 {
        let line = lines.next().expect("child still writing").unwrap();
        if let Some(ack) = parse_ack(&line) {
            acked.push(ack);
        }
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();
    // Acknowledgements printed before the kill, still in the pipe.
    acked.extend(lines.map_while(Result::ok).filter_map(|l| parse_ack(&l)));

    // Restart on the same file: SQLite recovers the WAL; everything
    // acknowledged must be there.
    let app = spawn_app_at(dir, db.clone(), |_| {}).await;
    let conn = open_db(&db);
    let mut check = conn
        .prepare(
            "SELECT count(*) FROM test_results WHERE execution_id = ?1 AND id BETWEEN ?2 AND ?3",
        )
        .unwrap();
    for (execution, first, n) in &acked {
        let found: i64 = check
            .query_row([execution, first, &(first + n - 1)], |r| r.get(0))
            .unwrap();
        assert_eq!(found, *n, "acknowledged rows {first}..{} lost", first + n);
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(app.get("/api/performance/health").await.status(), 200);
    drop(check);
    app.stop().await;
}

fn parse_ack(line: &str) -> Option<(i64, i64, i64)> {
    let mut parts = line
        .strip_prefix("ACK ")?
        .split(' ')
        .map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}
