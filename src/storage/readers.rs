//! The read pool: a few read-only connections, used on blocking threads.
//!
//! A semaphore bounds concurrent queries to the number of connections; each
//! query borrows one connection, runs on `spawn_blocking` (SQLite calls block)
//! and gives it back. Timing and errors are recorded per operation.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::StorageError;
use super::connection::open_reader;
use super::queries::query_error;
use crate::metrics::StorageMetrics;

pub(super) struct Readers {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Semaphore,
    path: PathBuf,
    metrics: StorageMetrics,
}

impl Readers {
    pub(super) fn open(
        path: &Path,
        count: usize,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        let conns = (0..count)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            idle: Arc::new(Mutex::new(conns)),
            permits: Semaphore::new(count),
            path: path.to_owned(),
            metrics,
        })
    }

    /// Runs `f` on an idle read-only connection.
    pub(super) async fn run<T, F>(&self, operation: &'static str, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        // The semaphore is never closed, so acquire cannot fail.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StorageError::Closed)?;
        // A permit guarantees an idle connection, unless one was lost to a
        // panic: then open a replacement.
        let conn = match self.idle.lock().expect("read pool lock").pop() {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let metrics = self.metrics.clone();
        let idle = self.idle.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let result = f(&conn);
            metrics
                .query_duration
                .with_label_values(&[operation])
                .observe(started.elapsed().as_secs_f64());
            metrics.queries.with_label_values(&[operation]).inc();
            idle.lock().expect("read pool lock").push(conn);
            result
        })
        .await;
        let result = joined.map_err(|_| StorageError::Query {
            operation,
            message: "the read query panicked".to_owned(),
        })?;
        result.map_err(|e| {
            let err = query_error(operation, e);
            if matches!(err, StorageError::Busy { .. }) {
                self.metrics.busy.inc();
            }
            self.metrics
                .query_errors
                .with_label_values(&[operation])
                .inc();
            err
        })
    }
}
