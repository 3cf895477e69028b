//! The result sink: finished jobs stream in, leave in batches through the
//! storage writer, and only then count as done.
//!
//! A batch is whatever arrived while the previous writes were in flight (up
//! to [`MAX_BATCH`] rows), so batches grow with load, which is what keeps
//! the writer fast (BENCHMARKS.md). Two writes may be in flight so the
//! writer never idles between them. Memory is bounded by the channel.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::run::Run;
use super::{Shared, publish};
use crate::storage::{NewTestResult, Storage};

/// Rows per write command at most.
pub(super) const MAX_BATCH: usize = 5_000;
/// Results waiting for the sink at most; job tasks wait beyond that.
pub(super) const CHANNEL: usize = 20_000;
/// Writes in flight at once.
const WRITES_IN_FLIGHT: usize = 2;
/// Attempts per batch before giving up (the jobs then rerun after a restart).
const WRITE_ATTEMPTS: u32 = 5;

/// A graded job on its way to storage.
pub(super) struct Finished {
    pub(super) result: NewTestResult,
    /// Which of the run's providers answered.
    pub(super) provider_idx: usize,
    pub(super) run: Arc<Run>,
}

/// What the sink must remember of a row once it left for storage.
struct Outcome {
    run: Arc<Run>,
    provider_idx: usize,
    passed: bool,
    failure_reason: u8,
}

/// Runs until every sender is gone and everything received is written.
pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Finished>) {
    let mut writes: JoinSet<Option<Stored>> = JoinSet::new();
    loop {
        // Settle finished writes while waiting, or a quiet queue would hold
        // its last results as "running" until the next one arrives.
        let first = tokio::select! {
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
            Some(done) = writes.join_next(), if !writes.is_empty() => {
                settle(&shared, done.ok().flatten()).await;
                continue;
            }
        };
        let mut rows = Vec::with_capacity(MAX_BATCH.min(rx.len() + 1));
        let mut outcomes = Vec::with_capacity(rows.capacity());
        let mut next = Some(first);
        while let Some(f) = next.take() {
            outcomes.push(Outcome {
                run: f.run,
                provider_idx: f.provider_idx,
                passed: f.result.passed,
                failure_reason: f.result.failure_reason,
            });
            rows.push(f.result);
            if rows.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        while writes.len() >= WRITES_IN_FLIGHT {
            if let Some(done) = writes.join_next().await {
                settle(&shared, done.ok().flatten()).await;
            }
        }
        writes.spawn(write(shared.storage.clone(), Arc::new(rows), outcomes));
    }
    while let Some(done) = writes.join_next().await {
        settle(&shared, done.ok().flatten()).await;
    }
}

/// A stored batch: its rows and what the sink remembers of each.
type Stored = (Arc<Vec<NewTestResult>>, Vec<Outcome>);

/// Writes a batch, retrying storage hiccups; `None` if it could not.
async fn write(
    storage: Storage,
    rows: Arc<Vec<NewTestResult>>,
    outcomes: Vec<Outcome>,
) -> Option<Stored> {
    let mut attempt = 0;
    loop {
        match storage.insert_results_shared(rows.clone()).await {
            Ok(_) => return Some((rows, outcomes)),
            Err(e) => {
                attempt += 1;
                if attempt >= WRITE_ATTEMPTS {
                    tracing::error!(error = %e, rows = rows.len(), "results not stored; their jobs will rerun after a restart");
                    return None;
                }
                tracing::warn!(error = %e, attempt, "storing results failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

/// Counts a stored batch, publishes its results and each run's progress,
/// and finishes executions that are done.
async fn settle(shared: &Shared, batch: Option<Stored>) {
    let Some((rows, batch)) = batch else { return };
    let mut touched: Vec<Arc<Run>> = Vec::new();
    for f in &batch {
        if !touched.iter().any(|r| Arc::ptr_eq(r, &f.run)) {
            touched.push(f.run.clone());
        }
    }
    let mut done: Vec<Arc<Run>> = Vec::new();
    for f in &batch {
        let run = &f.run;
        let outcomes = run.outcomes.get(f.provider_idx);
        let (counter, metric) = match (f.passed, f.failure_reason) {
            (true, _) => (&run.passed, outcomes.map(|o| &o.passed)),
            (false, 2) => (&run.errors, outcomes.map(|o| &o.error)),
            (false, _) => (&run.failed, outcomes.map(|o| &o.failed)),
        };
        if let Some(m) = metric {
            m.inc();
        }
        counter.fetch_add(1, Ordering::Relaxed);
        run.finished.fetch_add(1, Ordering::AcqRel);
        if run.is_done() && !done.iter().any(|r| Arc::ptr_eq(r, run)) {
            done.push(run.clone());
        }
    }
    for run in &touched {
        let mine = rows
            .iter()
            .zip(&batch)
            .filter(|(_, o)| Arc::ptr_eq(&o.run, run))
            .map(|(row, o)| (row, o.provider_idx));
        publish::results(&shared.events, run, mine);
        publish::progress(&shared.events, run, std::time::Duration::ZERO);
    }
    for run in done {
        shared.finish(&run).await;
    }
}
