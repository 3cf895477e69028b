//! The writer thread: the only connection that writes, fed by a bounded
//! channel, committing whatever is waiting as one transaction.
//!
//! Group commit: the thread blocks for one command, drains up to
//! [`MAX_BATCH`] more that are already queued, runs them in one transaction,
//! COMMITs, then answers every caller. Nobody hears "done" before its data
//! is committed.
//!
//! A failing command must not take the others down with it. Savepoints per
//! command would isolate it, but they copy every page a command first
//! touches into a statement journal (a tenth of the writer's time with big
//! batches). So the happy path runs without them; when a command fails, the
//! whole transaction is rolled back and each command is replayed in its own
//! transaction, where only the bad one fails. Commands are `FnMut` for that.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::StorageError;
use super::checkpointer::{WalControl, WalLimits};
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
    /// Runs the statements. May run again after a rollback.
    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()>;
    /// Delivers the outcome, after COMMIT (or after the rollback).
    fn finish(self: Box<Self>, outcome: Result<(), StorageError>);
}

/// A closure and the channel its caller awaits.
struct Call<T, F> {
    operation: &'static str,
    f: F,
    value: Option<T>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, F> WriteCommand for Call<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send,
{
    fn operation(&self) -> &'static str {
        self.operation
    }

    fn apply(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.value = Some((self.f)(conn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), StorageError>) {
        let Self {
            value, reply, f, ..
        } = *self;
        // What the closure owns (a suite's rows) is freed before the
        // caller resumes, so it can give the memory back at once.
        drop(f);
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
        mut conn: Connection,
        path: &Path,
        limits: WalLimits,
        metrics: StorageMetrics,
    ) -> Result<Self, StorageError> {
        let wal = WalControl::install(&mut conn, path, limits, metrics.clone())?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let mut state = Thread {
            conn,
            rx,
            path: path.to_owned(),
            metrics: metrics.clone(),
            size_refreshed: None,
            wal: Some(wal),
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
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let command = Call {
            operation,
            f,
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

type Batch = Vec<Box<dyn WriteCommand>>;

/// State owned by the writer thread.
struct Thread {
    conn: Connection,
    rx: mpsc::Receiver<Message>,
    path: PathBuf,
    metrics: StorageMetrics,
    size_refreshed: Option<Instant>,
    wal: Option<WalControl>,
}

impl Thread {
    fn run(&mut self) {
        let mut batch: Batch = Vec::with_capacity(MAX_BATCH);
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
        if let Some(wal) = self.wal.take() {
            wal.shutdown(&mut self.conn, &self.metrics);
        }
        self.refresh_size(true);
        tracing::debug!("storage writer stopped");
    }

    fn push(&mut self, msg: Message, batch: &mut Batch) {
        match msg {
            Message::Write(cmd) => batch.push(cmd),
            Message::Close => self.rx.close(),
        }
    }

    /// One transaction for the whole batch; on a failure, one per command.
    fn commit(&mut self, mut batch: Batch) {
        let started = Instant::now();
        let outcome = self.transaction(&mut batch);
        self.metrics
            .writer_commit_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.writer_batch_size.observe(batch.len() as f64);
        match outcome {
            Ok(()) => batch.into_iter().for_each(|cmd| cmd.finish(Ok(()))),
            Err(Failed::Database(e)) => {
                // BEGIN or COMMIT failed (locked, disk full, I/O): no command
                // is to blame and a replay would only wait again, once per
                // command. Everyone hears the same error now.
                for cmd in batch {
                    self.finish(cmd, Err(e.clone()));
                }
            }
            Err(Failed::Command(_)) if batch.len() > 1 => {
                // Replay alone, so only the command that fails hears of it.
                for mut cmd in batch {
                    let outcome = self.transaction(std::slice::from_mut(&mut cmd));
                    self.finish(cmd, outcome.map_err(Failed::into_error));
                }
            }
            Err(Failed::Command(e)) => {
                // A batch of one: its own error.
                if let Some(cmd) = batch.pop() {
                    self.finish(cmd, Err(e));
                }
            }
        }
        if let Some(wal) = &self.wal {
            wal.after_commit(&self.conn, &self.metrics);
        }
        self.refresh_size(false);
    }

    /// Runs `cmds` between BEGIN and COMMIT, or rolls everything back and
    /// says whose fault it was.
    fn transaction(&mut self, cmds: &mut [Box<dyn WriteCommand>]) -> Result<(), Failed> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| Failed::Database(query_error("begin", e)))?;
        let applied = cmds
            .iter_mut()
            .try_for_each(|cmd| self.apply(cmd.as_mut()))
            .map_err(Failed::Command);
        let committed = applied.and_then(|()| {
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| Failed::Database(query_error("commit", e)))
        });
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        committed
    }

    /// Runs one command's statements, timed under its operation.
    fn apply(&self, cmd: &mut dyn WriteCommand) -> Result<(), StorageError> {
        let op = cmd.operation();
        let started = Instant::now();
        // A panicking command must not take the writer (and every later
        // write) down with it: treat it like a failed statement.
        let result = catch_unwind(AssertUnwindSafe(|| cmd.apply(&self.conn)));
        self.metrics
            .query_duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        self.metrics.queries.with_label_values(&[op]).inc();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(query_error(op, e)),
            Err(_) => {
                tracing::error!(operation = op, "write command panicked");
                Err(StorageError::Query {
                    operation: op,
                    message: "the write command panicked".to_owned(),
                })
            }
        }
    }

    /// Answers a command; a failure is counted once, under its operation.
    fn finish(&self, cmd: Box<dyn WriteCommand>, outcome: Result<(), StorageError>) {
        if let Err(err) = &outcome {
            let op = cmd.operation();
            if matches!(err, StorageError::Busy { .. }) {
                self.metrics.busy.inc();
            }
            self.metrics.query_errors.with_label_values(&[op]).inc();
            tracing::warn!(operation = op, error = %err, "write failed; rolled back");
        }
        cmd.finish(outcome);
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

/// Why a transaction failed.
enum Failed {
    /// The database refused BEGIN or COMMIT: every command of the batch fails.
    Database(StorageError),
    /// One command's statements failed.
    Command(StorageError),
}

impl Failed {
    fn into_error(self) -> StorageError {
        match self {
            Self::Database(e) | Self::Command(e) => e,
        }
    }
}
