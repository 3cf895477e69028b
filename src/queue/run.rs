//! One execution in memory while it runs: its suite and providers, the jobs
//! not yet started (one queue per provider), counters, and its cancel token.
//! Only ids and indices are held per job, so memory stays small however
//! many results stream through.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntCounterVec};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lane::Lane;
pub use crate::progress::Progress;
use crate::providers::Provider;
use crate::storage::{PendingJob, Priority};
use crate::suite::Suite;

/// A provider a job calls, with its lane and its `delay` after each call.
pub(super) struct Target {
    pub(super) provider: Arc<dyn Provider>,
    pub(super) lane: Arc<Lane>,
    pub(super) delay: Option<Duration>,
}

/// A running execution.
pub(super) struct Run {
    pub(super) id: i64,
    pub(super) suite: Arc<Suite>,
    pub(super) providers: Vec<Arc<dyn Provider>>,
    pub(super) lanes: Vec<Arc<Lane>>,
    /// What a job calls: its column's provider, or its test's own
    /// (`test_targets`, by `TestCase::provider`).
    pub(super) columns: Vec<Target>,
    pub(super) test_targets: Vec<Target>,
    pub(super) priority: Priority,
    pub(super) use_cache: bool,
    /// The execution's own concurrency ceiling.
    pub(super) slots: Arc<Semaphore>,
    max_concurrency: usize,
    pub(super) cancel: CancellationToken,
    /// Cancelled once the run is over (completed and stored, or cancelled).
    pub(super) ended: CancellationToken,
    /// Jobs not started, per provider index.
    pending: Mutex<Vec<VecDeque<PendingJob>>>,
    /// Jobs this process will run (pending at start).
    pub(super) to_run: u64,
    pub(super) started: AtomicU64,
    /// Results persisted.
    pub(super) finished: AtomicU64,
    pub(super) passed: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) errors: AtomicU64,
    /// `promptgauge_test_runs_total` handles per provider index.
    pub(super) outcomes: Vec<Outcomes>,
    /// Jobs already done before this process started (resumed executions).
    pub(super) done_before: u64,
    pub(super) total: u64,
    pub(super) began: Instant,
    /// What the last progress event said (completed, running, waiting)
    /// and when, so only changes are published and the ticker only speaks
    /// for a run that went quiet.
    published: Mutex<Option<(ProgressKey, Instant)>>,
}

/// What decides whether progress changed.
type ProgressKey = (u64, u64, Option<String>);

/// An execution's size and what was stored of it before this process
/// started it (a resumed execution).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) total: u64,
    pub(super) passed: u64,
    pub(super) failed: u64,
    pub(super) errors: u64,
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: i64,
        suite: Arc<Suite>,
        (columns, test_targets): (Vec<Target>, Vec<Target>),
        (priority, use_cache, max_concurrency): (Priority, bool, usize),
        jobs: Vec<PendingJob>,
        counts: Counts,
        outcomes: Vec<Outcomes>,
    ) -> Self {
        let providers: Vec<Arc<dyn Provider>> =
            columns.iter().map(|t| t.provider.clone()).collect();
        let lanes: Vec<Arc<Lane>> = columns.iter().map(|t| t.lane.clone()).collect();
        let mut pending: Vec<VecDeque<PendingJob>> = vec![VecDeque::new(); providers.len()];
        let to_run = jobs.len() as u64;
        for job in jobs {
            if let Some(q) = pending.get_mut(job.spec.provider_idx as usize) {
                q.push_back(job);
            }
        }
        Self {
            id,
            suite,
            providers,
            lanes,
            columns,
            test_targets,
            priority,
            use_cache,
            slots: Arc::new(Semaphore::new(max_concurrency.max(1))),
            max_concurrency: max_concurrency.max(1),
            cancel: CancellationToken::new(),
            ended: CancellationToken::new(),
            pending: Mutex::new(pending),
            to_run,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            passed: AtomicU64::new(counts.passed),
            failed: AtomicU64::new(counts.failed),
            errors: AtomicU64::new(counts.errors),
            outcomes,
            done_before: counts.total - to_run,
            total: counts.total,
            began: Instant::now(),
            published: Mutex::new(None),
        }
    }

    /// What test `test_idx` in column `v` calls.
    pub(super) fn target(&self, v: usize, test_idx: usize) -> &Target {
        match self.suite.tests[test_idx].provider() {
            Some(i) => &self.test_targets[i],
            None => &self.columns[v],
        }
    }

    /// The next job for provider `idx`.
    pub(super) fn next_job(&self, idx: usize) -> Option<PendingJob> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(idx)?
            .pop_front()
    }

    /// Drops every job not started, counting them cancelled; returns how many.
    pub(super) fn drop_pending(&self) -> u64 {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for (idx, q) in pending.iter_mut().enumerate() {
            if let Some(o) = self.outcomes.get(idx) {
                o.cancelled.inc_by(q.len() as u64);
            }
            n += q.len() as u64;
            q.clear();
        }
        n
    }

    /// Jobs not started.
    pub(super) fn pending_len(&self) -> u64 {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.iter().map(VecDeque::len).sum::<usize>() as u64
    }

    /// Whether every job this process runs has its result stored.
    pub(super) fn is_done(&self) -> bool {
        self.finished.load(Ordering::Acquire) >= self.to_run
    }

    pub(super) fn progress(&self) -> Progress {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let finished = load(&self.finished);
        let started = load(&self.started);
        let elapsed = self.began.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            finished as f64 / elapsed
        } else {
            0.0
        };
        let left = self.to_run.saturating_sub(finished);
        Progress {
            total: self.total,
            completed: self.done_before + finished,
            passed: load(&self.passed),
            failed: load(&self.failed),
            errors: load(&self.errors),
            running: started.saturating_sub(finished),
            pending: self.pending_len(),
            rate_per_sec: rate,
            eta_seconds: (rate > 0.0).then(|| left as f64 / rate),
            concurrency: self.concurrency(),
            waiting: self.lanes.iter().find_map(|l| l.waiting()),
        }
    }

    /// Tests it may have in flight now: its ceiling, or its providers'
    /// adaptive limits when those are lower.
    fn concurrency(&self) -> u64 {
        let lanes: usize = self.lanes.iter().map(|l| l.limit.limit()).sum();
        lanes.min(self.max_concurrency) as u64
    }

    /// Its progress, if it changed since the last published one (always
    /// with `force`), and only if that one is older than `quiet_for`.
    pub(super) fn progress_if_changed(&self, force: bool, quiet_for: Duration) -> Option<Progress> {
        let p = self.progress();
        let key = (p.completed, p.running, p.waiting.clone());
        let mut last = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if !force {
            if let Some((k, at)) = last.as_ref() {
                if *k == key || at.elapsed() < quiet_for {
                    return None;
                }
            }
        }
        *last = Some((key, Instant::now()));
        Some(p)
    }
}

/// Finished tests of one provider and model, by outcome
/// (`promptgauge_test_runs_total{provider,model,status}`).
pub(super) struct Outcomes {
    pub(super) passed: IntCounter,
    pub(super) failed: IntCounter,
    pub(super) error: IntCounter,
    pub(super) cancelled: IntCounter,
}

impl Outcomes {
    /// The handles for `provider` (its kind) and `model` (a bounded label).
    pub(super) fn new(runs: &IntCounterVec, provider: &str, model: &str) -> Self {
        let h = |status| runs.with_label_values(&[provider, model, status]);
        Self {
            passed: h("passed"),
            failed: h("failed"),
            error: h("error"),
            cancelled: h("cancelled"),
        }
    }
}
