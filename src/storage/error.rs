//! `StorageError`: what can go wrong in storage, named by what happened.

use std::path::PathBuf;

/// What can go wrong in storage, named by what happened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The file exists but is not a SQLite database.
    #[error(
        "{} is not a SQLite database; refusing to open it (the file was left untouched)",
        path.display()
    )]
    NotADatabase {
        /// The refused file.
        path: PathBuf,
    },
    /// A SQLite database that belongs to another application.
    #[error(
        "{} is a SQLite database of another application ({reason}); refusing to use it (the file was left untouched)",
        path.display()
    )]
    ForeignDatabase {
        /// The refused file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The schema was written by a newer promptgauge.
    #[error(
        "database {} has schema version {found}, newer than the {supported} this promptgauge knows; upgrade promptgauge or point DATABASE_PATH at another file",
        path.display()
    )]
    SchemaTooNew {
        /// The refused file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// The database could not be opened or configured.
    #[error("cannot open database {}: {message}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("migration {name} failed (nothing was changed): {message}")]
    Migration {
        /// The migration's file stem.
        name: &'static str,
        /// Why.
        message: String,
    },
    /// The database stayed locked past the busy timeout.
    #[error("database busy during {operation}")]
    Busy {
        /// The operation that waited.
        operation: &'static str,
    },
    /// A statement failed.
    #[error("storage operation {operation} failed: {message}")]
    Query {
        /// The operation (a metrics label).
        operation: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The writer has shut down; nothing more can be written.
    #[error("storage is shut down")]
    Closed,
}
