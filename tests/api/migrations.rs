//! `promptgauge migrate`, and refusing databases the binary must not touch.

use std::path::Path;

use promptgauge::storage::SCHEMA_VERSION;
use promptgauge::{App, Config};

use crate::helpers::{new_execution, open_db, results, run_binary, spawn_app_at};

fn migrate(db: &Path) -> std::process::Output {
    run_binary(&["migrate"], &[("DATABASE_PATH", db.to_str().unwrap())])
}

fn user_version(db: &Path) -> i64 {
    open_db(db)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn migrate_creates_the_schema_on_a_fresh_file_and_prints_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested").join("pg.db");

    let out = migrate(&db);

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "schema version {SCHEMA_VERSION} (was 0; applied 0001_initial"
        )),
        "{stdout}"
    );
    assert_eq!(user_version(&db), SCHEMA_VERSION);
    let conn = open_db(&db);
    for table in [
        "suites",
        "prompts",
        "test_cases",
        "executions",
        "jobs",
        "test_results",
        "result_rollups",
        "provider_cache",
        "optimization_suggestions",
        "reports",
        "alerts",
        "monitor_samples",
        "benchmark_runs",
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'test_results' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        [
            "test_results_created_passed",
            "test_results_execution",
            "test_results_latency",
            "test_results_model"
        ]
    );
}

#[tokio::test]
async fn migrating_an_already_migrated_database_changes_nothing_and_keeps_data() {
    let app = crate::helpers::spawn_app().await;
    let execution = new_execution(&app.storage).await;
    app.storage
        .insert_results(results(execution, 1, 25))
        .await
        .unwrap();
    let (dir, db) = app.stop().await;

    let out = migrate(&db);

    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("schema version {SCHEMA_VERSION} (up to date)"))
    );
    // Restarting on the same file keeps every row.
    let app = spawn_app_at(dir, db, |_| {}).await;
    let counts = app.storage.result_counts(execution).await.unwrap();
    assert_eq!(counts.total, 25);
    assert_eq!(counts.passed, 20);
    app.stop().await;
}

fn newer_schema_db(dir: &Path) -> std::path::PathBuf {
    let db = dir.join("future.db");
    assert!(migrate(&db).status.success());
    open_db(&db)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 7)
        .unwrap();
    db
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = newer_schema_db(dir.path());
    let before = std::fs::read(&db).unwrap();

    let out = migrate(&db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("schema version {}", SCHEMA_VERSION + 7))
            && stderr.contains("upgrade promptgauge"),
        "{stderr}"
    );

    let config = Config {
        port: 0,
        database_path: db.clone(),
        ..Config::default()
    };
    let err = App::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("newer than"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(user_version(&db), SCHEMA_VERSION + 7);
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.db");
    let content = "These are my notes, not a database.\n".repeat(200);
    std::fs::write(&db, &content).unwrap();

    let out = run_binary(
        &[],
        &[("DATABASE_PATH", db.to_str().unwrap()), ("PORT", "0")],
    );

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not a SQLite database"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(std::fs::read_to_string(&db).unwrap(), content);
    let siblings: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(siblings.len(), 1, "no -wal or -shm created");

    let short = dir.path().join("short.db");
    std::fs::write(&short, "SQLite").unwrap();
    assert_eq!(migrate(&short).status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&short).unwrap(), "SQLite");
}

#[test]
fn another_applications_sqlite_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crm.db");
    open_db(&db)
        .execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada');")
        .unwrap();

    let out = migrate(&db);

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another application"), "{stderr}");
    let tables: i64 = open_db(&db)
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}
