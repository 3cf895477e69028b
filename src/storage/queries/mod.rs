//! SQL, grouped by table. Each function takes a connection and is run either
//! by the writer (inside its transaction) or by the read pool.

pub(super) mod analytics;
pub(super) mod benchmarks;
pub(super) mod executions;
pub(super) mod maintenance;
pub(super) mod meta;
pub(super) mod monitor;
pub(super) mod optimize;
pub(super) mod provider_cache;
pub(super) mod reports;
pub(super) mod results;
pub(super) mod suites;

use rusqlite::ErrorCode;

use super::StorageError;

/// Maps a SQLite error to the storage error callers see.
pub(super) fn query_error(operation: &'static str, e: rusqlite::Error) -> StorageError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            StorageError::Busy { operation }
        }
        _ => StorageError::Query {
            operation,
            message: e.to_string(),
        },
    }
}
