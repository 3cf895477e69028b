//! WAL checkpoints off the writer's commit path, with a bound on WAL size.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses its
//! threshold, so the writer stalls while pages are copied into the database
//! file and fsynced; with random index pages that stall was about half the
//! writer's time (BENCHMARKS.md). Here a WAL hook on the writer only
//! *requests* a checkpoint; a PASSIVE checkpoint runs on this module's own
//! thread and connection beside further commits.
//!
//! Under non-stop writes the background checkpoint is always one commit
//! behind, so the WAL would never restart and would grow without end (and
//! every page lookup walks the WAL index, so commits slow down with it). Past
//! [`WalLimits::limit_pages`] the writer therefore runs a blocking RESTART
//! checkpoint itself; it only copies the frames the background thread has
//! not, and lets the next transaction start the WAL from the beginning.

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;

use super::StorageError;
use super::connection::{open_checkpointer, open_error};
use crate::metrics::StorageMetrics;

/// When checkpoints run, in WAL pages.
#[derive(Debug, Clone, Copy)]
pub(super) struct WalLimits {
    /// The background checkpoint is requested from this size on.
    pub(super) checkpoint_at_pages: i64,
    /// Past this size the writer checkpoints (RESTART) itself.
    pub(super) limit_pages: i64,
}

impl Default for WalLimits {
    /// 64 MiB and 512 MiB of 8 KiB pages. A larger request threshold copies
    /// each hot index page once for more commits; each inline checkpoint
    /// stalls the writer, so the limit is generous: at 1M stored rows a
    /// 16k-page limit gave 20k rows/s, 64k pages 26k (BENCHMARKS.md).
    fn default() -> Self {
        Self {
            checkpoint_at_pages: 8_000,
            limit_pages: 64_000,
        }
    }
}

/// The writer's side: the hook's state and the background thread.
pub(super) struct WalControl {
    /// WAL size in pages after the last commit, written by the hook.
    pages: Arc<AtomicI64>,
    limits: WalLimits,
    page_size: i64,
    requests: SyncSender<()>,
    /// Held while any checkpoint runs: SQLite answers a second checkpointer
    /// with SQLITE_BUSY at once (no busy handler), so the writer's blocking
    /// checkpoint waits here for the background one instead.
    running: Arc<Mutex<()>>,
    thread: JoinHandle<()>,
}

impl WalControl {
    /// Starts the checkpoint thread and replaces SQLite's automatic
    /// checkpoint on `conn` with a hook that requests one.
    pub(super) fn install(
        conn: &mut Connection,
        path: &Path,
        limits: WalLimits,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        let checkpoint_conn = open_checkpointer(path)?;
        // One slot: requests arriving while a checkpoint runs collapse into one.
        let (requests, rx) = sync_channel(1);
        let running = Arc::new(Mutex::new(()));
        let lock = running.clone();
        let thread = std::thread::Builder::new()
            .name("promptgauge-checkpoint".to_owned())
            .spawn(move || run(checkpoint_conn, rx, &lock, &metrics))
            .map_err(|e| StorageError::Open {
                path: path.to_owned(),
                message: format!("cannot start the checkpoint thread: {e}"),
            })?;

        let pages = Arc::new(AtomicI64::new(0));
        let (seen, request) = (pages.clone(), requests.clone());
        conn.wal_hook(Some(move |_: &mut Wal, n: c_int| {
            seen.store(i64::from(n), Ordering::Relaxed);
            if i64::from(n) >= limits.checkpoint_at_pages {
                // Full: a request already waits. Disconnected: shutting down.
                let _ = request.try_send(());
            }
            Ok(())
        }))
        .map_err(|e| open_error(path, e))?;
        let page_size = conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(|e| open_error(path, e))?;
        Ok(Self {
            pages,
            limits,
            page_size,
            requests,
            running,
            thread,
        })
    }

    /// Called by the writer after each commit (callers already answered).
    pub(super) fn after_commit(&self, conn: &Connection, metrics: &StorageMetrics) {
        let pages = self.pages.load(Ordering::Relaxed);
        metrics.wal_size_bytes.set(pages * self.page_size);
        if pages >= self.limits.limit_pages {
            let _exclusive = lock(&self.running);
            checkpoint(conn, CheckpointMode::RESTART, metrics);
        }
    }

    /// Stops the thread and folds the WAL into the database file, so a
    /// stopped service leaves one self-contained file.
    pub(super) fn shutdown(self, conn: &mut Connection, metrics: &StorageMetrics) {
        // Removing the hook drops its sender; with ours gone the thread ends.
        let _ = conn.wal_hook(None::<fn(&mut Wal, c_int) -> rusqlite::Result<()>>);
        drop(self.requests);
        let _ = self.thread.join();
        checkpoint(conn, CheckpointMode::TRUNCATE, metrics);
        metrics.wal_size_bytes.set(0);
    }
}

fn run(conn: Connection, requests: Receiver<()>, running: &Mutex<()>, metrics: &StorageMetrics) {
    while requests.recv().is_ok() {
        let _running = lock(running);
        checkpoint(&conn, CheckpointMode::PASSIVE, metrics);
    }
}

fn checkpoint(conn: &Connection, mode: CheckpointMode, metrics: &StorageMetrics) {
    let started = Instant::now();
    match conn.wal_checkpoint_v2(None::<&str>, mode) {
        Ok(_) => metrics
            .checkpoint_duration
            .observe(started.elapsed().as_secs_f64()),
        // Readers still on old frames past the busy timeout: the next one will do.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            metrics.busy.inc();
        }
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
    }
}

/// The lock guards no data, only "a checkpoint runs": a poisoned one is fine.
fn lock(m: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
