//! The writer thread: the only connection that writes, fed by a bounded
//! channel, committing whatever is waiting as one transaction.
//!
//! Group commit: the thread blocks for one command, drains up to
//! [`MAX_BATCH`] more that are already queued, runs each inside its own
//! SAVEPOINT (a failing command is rolled back alone), COMMITs once, then
//! answers every caller. Nobody hears "done" before its data is committed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StorageError;
use super::queries::query_error;
use crate::metrics::StorageMetrics;

/// Commands queued before senders wait: bounds memory and applies backpressure.
const QUEUE_CAPACITY: usize = 1024;
/// Commands per transaction at most, so one commit's latency stays bounded.
const MAX_BATCH: usize = 512;
/// The size gauge is refreshed at most this often.
const SIZE_REFRESH: Duration = Duration::from_secs(1);

/// A write to run inside the writer's transaction.
trait WriteCommand: Send {
    fn operation(&self) -> &'static str;
    /// Runs the statements; called once.
    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    /// Delivers the outcome, after COMMIT (or after the rollback).
    fn finish(self: Box<Self>, outcome: Result<(), StorageError>);
}

/// A closure and the channel its caller awaits.
struct Call<T, F> {
    operation: &'static str,
    f: Option<F>,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, F> WriteCommand for Call<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn operation(&self) -> &'static str {
        self.operation
    }

    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let f = self.f.take().expect("a write command is applied once");
        self.value = Some(f(conn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StorageError>) {
        let Self { value, reply, .. } = *self;
        let result = outcome.map(|()| value.expect("a committed command has its value"));
        // The caller may have given up waiting; the write stands regardless.
        let _ = reply.send(result);
    }
}

enum Message {
    Write(Box<dyn WriteCommand>),
    /// Stop accepting; finish everything already queued, then exit.
    Close,
}

/// Handle to the writer thread.
pub(super) struct Writer {
    tx: mpsc::Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    metrics: StorageMetrics,
}

impl Writer {
    /// Moves `conn` onto a new thread that serves writes until closed.
    pub(super) fn start(
        conn: Connection,
        path: &Path,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let mut state = Thread {
            conn,
            rx,
            path: path.to_owned(),
            metrics: metrics.clone(),
            size_refreshed: None,
        };
        let thread = std::thread::Builder::new()
            .name("promptgauge-writer".to_owned())
            .spawn(move || state.run())
            .map_err(|e| StorageError::Open {
                path: path.to_owned(),
                message: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(Self {
            tx,
            thread: Mutex::new(Some(thread)),
            metrics,
        })
    }

    /// Runs `f` in the next transaction and returns its value once committed.
    pub(super) async fn call<T, F>(&self, operation: &'static str, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let command = Call {
            operation,
            f: Some(f),
            value: None,
            reply,
        };
        self.tx
            .send(Message::Write(Box::new(command)))
            .await
            .map_err(|_| StorageError::Closed)?;
        self.metrics
            .writer_queue_depth
            .set((QUEUE_CAPACITY - self.tx.capacity()) as i64);
        rx.await.map_err(|_| StorageError::Closed)?
    }

    /// Flushes what was sent before, then joins the thread. Idempotent.
    pub(super) async fn close(&self) {
        // Fails only if the thread already stopped.
        let _ = self.tx.send(Message::Close).await;
        let handle = self.thread.lock().expect("writer handle lock").take();
        if let Some(handle) = handle {
            // Joining blocks; keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// State owned by the writer thread.
struct Thread {
    conn: Connection,
    rx: mpsc::Receiver<Message>,
    path: PathBuf,
    metrics: StorageMetrics,
    size_refreshed: Option<Instant>,
}

impl Thread {
    fn run(&mut self) {
        let mut batch: Vec<Box<dyn WriteCommand>> = Vec::with_capacity(MAX_BATCH);
        // After Close the channel is closed: recv drains what is queued, then None.
        while let Some(first) = self.rx.blocking_recv() {
            self.push(first, &mut batch);
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(msg) => self.push(msg, &mut batch),
                    Err(_) => break,
                }
            }
            self.metrics.writer_queue_depth.set(self.rx.len() as i64);
            if !batch.is_empty() {
                self.commit(std::mem::take(&mut batch));
            }
        }
        // Fold the WAL into the database file so a stopped service leaves one
        // self-contained file. Best effort: readers may still hold snapshots.
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::debug!(error = %e, "final checkpoint skipped");
        }
        self.refresh_size(true);
        tracing::debug!("storage writer stopped");
    }

    fn push(&mut self, msg: Message, batch: &mut Vec<Box<dyn WriteCommand>>) {
        match msg {
            Message::Write(cmd) => batch.push(cmd),
            Message::Close => self.rx.close(),
        }
    }

    /// One transaction for the whole batch; one savepoint per command.
    fn commit(&mut self, batch: Vec<Box<dyn WriteCommand>>) {
        let started = Instant::now();
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let err = self.failure("begin", e);
            for cmd in batch {
                cmd.finish(Err(err.clone_for_reply()));
            }
            return;
        }
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut batch = batch;
        for cmd in &mut batch {
            outcomes.push(self.apply_one(cmd.as_mut()));
        }
        let committed = self.conn.execute_batch("COMMIT");
        let elapsed = started.elapsed();
        self.metrics.writer_batch_size.observe(batch.len() as f64);
        self.metrics
            .writer_commit_duration
            .observe(elapsed.as_secs_f64());
        match committed {
            Ok(()) => {
                for (cmd, outcome) in batch.into_iter().zip(outcomes) {
                    cmd.finish(outcome);
                }
            }
            Err(e) => {
                let err = self.failure("commit", e);
                // Nothing of this batch is stored; say so to everyone.
                let _ = self.conn.execute_batch("ROLLBACK");
                for cmd in batch {
                    cmd.finish(Err(err.clone_for_reply()));
                }
            }
        }
        self.refresh_size(false);
    }

    fn apply_one(&mut self, cmd: &mut dyn WriteCommand) -> Result<(), StorageError> {
        let op = cmd.operation();
        let started = Instant::now();
        let conn = &self.conn;
        conn.execute_batch("SAVEPOINT command")
            .map_err(|e| query_error(op, e))?;
        // A panicking command must not take the writer (and every later
        // write) down with it: roll it back and report it like an error.
        let result = catch_unwind(AssertUnwindSafe(|| cmd.apply(conn)));
        self.metrics
            .query_duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        self.metrics.queries.with_label_values(&[op]).inc();
        let outcome = match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failure(op, e)),
            Err(_) => {
                tracing::error!(operation = op, "write command panicked; rolled back");
                self.metrics.query_errors.with_label_values(&[op]).inc();
                Err(StorageError::Query {
                    operation: op,
                    message: "the write command panicked".to_owned(),
                })
            }
        };
        if outcome.is_err() {
            let _ = conn.execute_batch("ROLLBACK TO command");
        }
        conn.execute_batch("RELEASE command")
            .map_err(|e| query_error(op, e))?;
        outcome
    }

    /// Counts and logs a failed statement, and maps it.
    fn failure(&self, op: &'static str, e: rusqlite::Error) -> StorageError {
        let err = query_error(op, e);
        if matches!(err, StorageError::Busy { .. }) {
            self.metrics.busy.inc();
        }
        self.metrics.query_errors.with_label_values(&[op]).inc();
        tracing::warn!(operation = op, error = %err, "write failed");
        err
    }

    /// Sets `promptgauge_db_size_bytes` from the file sizes (db + WAL).
    fn refresh_size(&mut self, force: bool) {
        let due = self
            .size_refreshed
            .is_none_or(|t| t.elapsed() >= SIZE_REFRESH);
        if !(force || due) {
            return;
        }
        self.size_refreshed = Some(Instant::now());
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let total = size(&self.path) + size(Path::new(&wal));
        self.metrics.size_bytes.set(total as i64);
    }
}

impl StorageError {
    /// The same error for each command of a failed batch.
    fn clone_for_reply(&self) -> StorageError {
        match self {
            StorageError::Busy { operation } => StorageError::Busy { operation },
            other => StorageError::Query {
                operation: "commit",
                message: other.to_string(),
            },
        }
    }
}
