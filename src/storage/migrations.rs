//! Embedded, append-only migrations tracked by `PRAGMA user_version`.
//!
//! Every pending migration runs in one transaction: a failure leaves the
//! database exactly as it was. A database newer than this binary, or one
//! that belongs to another application, is refused untouched.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StorageError;

/// One numbered SQL file from `migrations/`, and what must run in Rust
/// right after it (in the same transaction).
struct Migration {
    name: &'static str,
    sql: &'static str,
    then: Option<fn(&Connection) -> rusqlite::Result<()>>,
}

/// In order; version N is `MIGRATIONS[N - 1]`. Append only.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "0001_initial",
        sql: include_str!("../../migrations/0001_initial.sql"),
        then: None,
    },
    Migration {
        name: "0002_rollups",
        sql: include_str!("../../migrations/0002_rollups.sql"),
        then: Some(backfill_rollups),
    },
    Migration {
        name: "0003_reports",
        sql: include_str!("../../migrations/0003_reports.sql"),
        then: None,
    },
    Migration {
        name: "0004_finished_jobs",
        sql: include_str!("../../migrations/0004_finished_jobs.sql"),
        then: None,
    },
];

/// Rollups for the results a database already holds (minute rows for the
/// default retention; the hour tier in full).
fn backfill_rollups(conn: &Connection) -> rusqlite::Result<()> {
    let since = super::now_ms() - super::ROLLUP_MINUTE_RETENTION.as_millis() as i64;
    super::rollup::rebuild(conn, since).map(|_| ())
}

/// The schema version this binary writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A short hash of every migration's text: changes whenever the schema
/// does, so caches of generated databases know when they are stale.
pub fn schema_fingerprint() -> String {
    let all: String = MIGRATIONS.iter().map(|m| m.sql).collect();
    crate::hash::sha256_hex(all.as_bytes())[..12].to_owned()
}

/// Marks our files (`PRAGMA application_id`), so we never migrate into
/// another application's database: "PGAU".
const APPLICATION_ID: i64 = 0x5047_4155;

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Version before.
    pub from: i64,
    /// Version after (always [`SCHEMA_VERSION`]).
    pub to: i64,
    /// Names of the migrations applied, in order.
    pub applied: Vec<&'static str>,
}

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<MigrationReport, StorageError> {
    let open_err = |e: rusqlite::Error| super::connection::open_error(path, e);
    // IMMEDIATE: take the write lock before reading the version, so two
    // processes starting together cannot both apply the same migration.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let from: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_err)?;
    check_ownership(&tx, path, from)?;
    if from > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            path: path.to_owned(),
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    let mut applied = Vec::new();
    for m in &MIGRATIONS[from as usize..] {
        let failed = |e: rusqlite::Error| StorageError::Migration {
            name: m.name,
            message: e.to_string(),
        };
        tx.execute_batch(m.sql).map_err(failed)?;
        if let Some(then) = m.then {
            then(&tx).map_err(failed)?;
        }
        applied.push(m.name);
    }
    if !applied.is_empty() {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_err)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(open_err)?;
    }
    tx.commit().map_err(open_err)?;
    Ok(MigrationReport {
        from,
        to: SCHEMA_VERSION,
        applied,
    })
}

/// A database is ours if it carries our application id, or is brand new
/// (no id, version 0, no tables).
fn check_ownership(conn: &Connection, path: &Path, version: i64) -> Result<(), StorageError> {
    let open_err = |e: rusqlite::Error| super::connection::open_error(path, e);
    let app_id: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(open_err)?;
    let foreign = |reason: String| StorageError::ForeignDatabase {
        path: path.to_owned(),
        reason,
    };
    if app_id == APPLICATION_ID {
        return Ok(());
    }
    if app_id != 0 {
        return Err(foreign(format!("application_id {app_id:#x}")));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(open_err)?;
    if version == 0 && tables > 0 {
        return Err(foreign(format!(
            "it has {tables} tables but no promptgauge schema"
        )));
    }
    if version > 0 && version <= SCHEMA_VERSION {
        return Err(foreign(format!(
            "schema version {version} without the promptgauge application id"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, embedded);
        for (i, name) in files.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name}");
        }
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn = Connection::open(&path).unwrap();
        // A table named like one of ours makes 0001 fail half-way... but a
        // foreign table is refused first, so fake ownership to reach it.
        conn.execute_batch("PRAGMA application_id = 0x50474155; CREATE TABLE reports (x);")
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Migration {
                    name: "0001_initial",
                    ..
                }
            ),
            "{err}"
        );
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type='table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1, "the partial migration was rolled back");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 0);
    }

    #[test]
    fn another_applications_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
            .unwrap();
        let err = migrate(&mut conn, &path).unwrap_err();
        assert!(matches!(err, StorageError::ForeignDatabase { .. }), "{err}");
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type='table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
    }
}
