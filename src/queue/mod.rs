//! The test queue: runs executions (prompts x providers x tests) durably,
//! concurrently and fairly, and records every result.
//!
//! - An execution's jobs are persisted before any runs ([`submit`]); a
//!   result's id is its job's, so a job re-run after a crash stores once,
//!   and a restart resumes what has no result ([`TestQueue::recover`]).
//! - Per provider, a lane holds an adaptive (AIMD) concurrency limit, a
//!   circuit breaker and optional rate limits; waiting jobs are served by
//!   priority, then in arrival order, so executions take turns.
//! - Results leave through the sink in batches, with the execution totals
//!   in the same transaction; nothing accumulates per result in memory.
//!
//! [`submit`]: TestQueue::submit

mod api;
mod breaker;
mod dispatch;
mod job;
mod lane;
mod limiter;
mod publish;
mod rate;
mod retry;
mod run;
mod sink;
mod submit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use api::{ExecutionView, ExportStream, GroupView, Page, ResultView, StoredSuite};
pub use lane::LaneSettings;
pub use run::Progress;
pub use submit::{SubmitRequest, Submitted, SuiteSource};

use crate::cache::TtlCache;
use crate::common::pool::CpuPool;
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::providers::{Client, Credentials};
use crate::storage::{ExecutionRecord, ExecutionStatus, Storage, StorageError};
use crate::suite::{ProviderSpec, SuiteError};
use lane::Lane;
use run::Run;
use sink::Finished;

/// How long a parsed stored suite is kept (`CACHE_TTL` overrides).
const SUITE_CACHE_TTL: Duration = Duration::from_secs(600);
/// Parsed stored suites kept at most.
const SUITE_CACHE_SIZE: usize = 256;
/// Outputs waiting for a grading thread; jobs wait beyond that.
const GRADING_QUEUE: usize = 1024;

/// What can go wrong, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No stored suite with that id.
    #[error("suite {0} not found")]
    SuiteNotFound(i64),
    /// No execution with that id.
    #[error("execution {0} not found")]
    NotFound(i64),
    /// The suite cannot run.
    #[error("{0}")]
    InvalidSuite(SuiteError),
    /// The request itself is wrong (unknown provider filter, ...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The execution already ended.
    #[error("execution {id} is already {}", status.as_str())]
    AlreadyFinished {
        /// The execution.
        id: i64,
        /// How it ended.
        status: ExecutionStatus,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The service is shutting down.
    #[error("the test queue is shutting down")]
    ShuttingDown,
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Starting (and highest) concurrency per provider (`MAX_CONCURRENT_TESTS`).
    pub max_concurrency: usize,
    /// Time to live of cached parsed suites (`CACHE_TTL`).
    pub cache_ttl: Option<Duration>,
    /// Where the server's credentials may go: guarded for suites posted to
    /// the API, local for `promptgauge run`.
    pub credentials: Credentials,
}

/// The test queue service. Cheap to clone.
#[derive(Clone)]
pub struct TestQueue {
    shared: Arc<Shared>,
}

/// State shared by the queue's handles and tasks.
pub(crate) struct Shared {
    storage: Storage,
    client: Client,
    metrics: crate::metrics::QueueMetrics,
    config: QueueConfig,
    runs: Mutex<HashMap<i64, Arc<Run>>>,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    sink: Mutex<Option<mpsc::Sender<Finished>>>,
    suites: TtlCache<i64, Arc<submit::Prepared>>,
    tracker: TaskTracker,
    token: CancellationToken,
    /// Where lifecycle, progress and result events go.
    events: EventBus,
    /// Model labels as the provider metrics bound them.
    provider_metrics: crate::metrics::ProviderMetrics,
    /// Threads that grade outputs, off the async workers.
    grading: CpuPool,
}

impl Shared {
    /// The suite parser's check of provider specs, under this queue's
    /// credentials policy.
    pub(super) fn checker(&self) -> impl Fn(&ProviderSpec) -> Vec<String> + '_ {
        |spec| check_provider(spec, &self.config.credentials)
    }
}

/// Checks a provider spec under `credentials`: the provider's own config
/// and the queue's keys.
pub fn check_provider(spec: &ProviderSpec, credentials: &Credentials) -> Vec<String> {
    let mut problems = crate::providers::check_with(spec, credentials);
    if let Err(e) = LaneSettings::from_config(&spec.config) {
        problems.push(e);
    }
    problems
}

impl TestQueue {
    /// Starts the queue's sink on `tracker`; stops dispatching when `token`
    /// is cancelled.
    pub fn start(
        storage: Storage,
        metrics: &Metrics,
        events: EventBus,
        config: QueueConfig,
        tracker: TaskTracker,
        token: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(sink::CHANNEL);
        let q = &metrics.queue;
        let suite_ttl = config.cache_ttl.unwrap_or(SUITE_CACHE_TTL);
        let shared = Arc::new(Shared {
            client: Client::new(storage.clone(), metrics.providers.clone()),
            storage,
            metrics: q.clone(),
            config,
            runs: Mutex::new(HashMap::new()),
            lanes: Mutex::new(HashMap::new()),
            sink: Mutex::new(Some(tx)),
            suites: TtlCache::new("suites", SUITE_CACHE_SIZE, suite_ttl, &metrics.cache),
            tracker: tracker.clone(),
            token: token.clone(),
            events,
            provider_metrics: metrics.providers.clone(),
            // As `std::thread::spawn`, a process that cannot start two
            // threads at start-up stops there.
            grading: CpuPool::per_core("promptgauge-grade", GRADING_QUEUE)
                .expect("the grading threads start"),
        });
        tracker.spawn(sink::run(shared.clone(), rx));
        tracker.spawn(publish::ticker(shared.clone(), token));
        Self { shared }
    }

    /// Resumes executions a previous process left unfinished: their jobs
    /// without a result run now; finished ones are never run again.
    pub async fn recover(&self) -> Result<usize, QueueError> {
        let unfinished = self.shared.storage.unfinished_executions().await?;
        let mut resumed = 0;
        for record in unfinished {
            match self.shared.resume(&record).await {
                Ok(()) => resumed += 1,
                Err(e) => {
                    tracing::error!(execution = record.id, error = %e, "cannot resume execution");
                    self.shared
                        .storage
                        .set_execution_status(
                            record.id,
                            ExecutionStatus::Failed,
                            Some(format!("cannot resume: {e}")),
                        )
                        .await?;
                    publish::ended(&self.shared, record.id).await;
                }
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "resumed unfinished executions");
        }
        Ok(resumed)
    }

    /// Live progress of an execution running in this process.
    pub fn progress(&self, id: i64) -> Option<Progress> {
        let runs = self.shared.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.get(&id).map(|r| r.progress())
    }

    /// Cancels an execution: pending jobs are dropped, running ones
    /// aborted, finished results kept.
    pub async fn cancel(&self, id: i64) -> Result<ExecutionRecord, QueueError> {
        let record = self.shared.execution(id).await?;
        if record.status.is_final() {
            if record.status == ExecutionStatus::Cancelled {
                return Ok(record);
            }
            return Err(QueueError::AlreadyFinished {
                id,
                status: record.status,
            });
        }
        // Stored first: a run still being started (recovery) sees it and
        // does not run; one already live is found below.
        let cancelled = self
            .shared
            .storage
            .set_execution_status(id, ExecutionStatus::Cancelled, None)
            .await?;
        let run = {
            let runs = self.shared.runs.lock().unwrap_or_else(|p| p.into_inner());
            runs.get(&id).cloned()
        };
        if let Some(run) = run.filter(|_| cancelled) {
            run.cancel.cancel();
            let dropped = run.drop_pending();
            self.shared.metrics.queue_length.sub(dropped as i64);
            self.shared.forget(id);
        }
        if cancelled {
            publish::ended(&self.shared, id).await;
        }
        self.shared.execution(id).await
    }

    /// Stops dispatching and lets the sink end once running jobs stored
    /// their results. The app's token must be cancelled too.
    pub fn close(&self) {
        self.shared
            .sink
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// The storage the queue writes to.
    pub fn storage(&self) -> &Storage {
        &self.shared.storage
    }
}

impl Shared {
    /// The stored execution `id`, or `NotFound`.
    async fn execution(&self, id: i64) -> Result<ExecutionRecord, QueueError> {
        self.storage
            .get_execution(id)
            .await?
            .ok_or(QueueError::NotFound(id))
    }

    /// Removes a run from the live set.
    fn forget(&self, id: i64) {
        let removed = self
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(run) = removed {
            self.metrics.executions_running.dec();
            if run.cancel.is_cancelled() {
                run.ended.cancel();
            }
        }
    }

    /// Marks a run whose every job is stored as completed.
    async fn finish(&self, run: &Run) {
        if run.cancel.is_cancelled() {
            return;
        }
        self.forget(run.id);
        if let Err(e) = self
            .storage
            .set_execution_status(run.id, ExecutionStatus::Completed, None)
            .await
        {
            tracing::error!(execution = run.id, error = %e, "cannot mark execution completed");
        }
        publish::ended(self, run.id).await;
        run.ended.cancel();
        // A large run over and nothing else running: the writer's cache
        // and the heap give their pages back (the periodic trim catches
        // what the last references free later).
        let idle = self
            .runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty();
        if idle && run.total as usize >= crate::common::memory::LARGE {
            let _ = self.storage.release_memory().await;
            crate::common::memory::release_after(run.total as usize);
        }
    }

    /// The lane for a provider, shared by every execution that calls it.
    fn lane(&self, key: String, label: &str, settings: LaneSettings) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .entry(key)
            .or_insert_with(|| {
                let lane = Arc::new(Lane::new(
                    label.to_owned(),
                    self.config.max_concurrency,
                    settings,
                ));
                self.metrics
                    .concurrency_limit
                    .with_label_values(&[label])
                    .set(lane.limit.limit() as i64);
                self.metrics.circuit_open.with_label_values(&[label]).set(0);
                lane
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Priority;
    use crate::suite::Format;

    fn queue(storage: &Storage, metrics: &Metrics) -> (TestQueue, TaskTracker, CancellationToken) {
        let (tracker, token) = (TaskTracker::new(), CancellationToken::new());
        let config = QueueConfig {
            max_concurrency: 1,
            cache_ttl: None,
            credentials: Credentials::Local,
        };
        let q = TestQueue::start(
            storage.clone(),
            metrics,
            EventBus::new(),
            config,
            tracker.clone(),
            token.clone(),
        );
        (q, tracker, token)
    }

    #[tokio::test]
    async fn a_cancel_while_recovery_prepares_a_run_keeps_it_from_running() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new().unwrap();
        let storage = Storage::open(&dir.path().join("q.db"), metrics.storage.clone()).unwrap();
        // An execution an earlier process left unfinished.
        let (first, tracker, token) = queue(&storage, &metrics);
        let suite = "prompts: ['p {{i}}']\nproviders: [{id: 'mock:m', config: {latencyMs: 1000}}]\ntests: [{vars: {i: 1}}, {vars: {i: 2}}, {vars: {i: 3}}, {vars: {i: 4}}, {vars: {i: 5}}]";
        let id = first
            .submit(SubmitRequest {
                suite: SuiteSource::Inline {
                    source: suite.to_owned(),
                    format: Format::Yaml,
                },
                providers: None,
                max_concurrency: None,
                priority: Priority::Normal,
                use_cache: Some(false),
            })
            .await
            .unwrap()
            .id;
        token.cancel();
        first.close();
        tracker.close();
        tracker.wait().await;

        let metrics = Metrics::new().unwrap();
        let (second, tracker, token) = queue(&storage, &metrics);
        let record = storage
            .unfinished_executions()
            .await
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(record.id, id);
        let stored = storage.count_results().await.unwrap();
        // Recovery has read the suite and the pending jobs...
        let resumable = second.shared.load_resumable(&record).await.unwrap();
        assert!(resumable.jobs.len() >= 4);
        // ...when the cancel lands, before the run is live.
        let cancelled = second.cancel(id).await.unwrap();
        assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
        let r = resumable;
        second
            .shared
            .start(r.id, r.suite, r.providers, r.options, r.jobs, r.counts)
            .await
            .unwrap();

        assert!(second.progress(id).is_none(), "the run is not live");
        assert_eq!(metrics.queue.queue_length.get(), 0);
        assert_eq!(metrics.queue.executions_running.get(), 0);
        assert_eq!(
            tracker.len(),
            2,
            "only the sink and the ticker: no dispatcher started"
        );
        assert_eq!(storage.count_results().await.unwrap(), stored);
        let record = storage.get_execution(id).await.unwrap().unwrap();
        assert_eq!(record.status, ExecutionStatus::Cancelled);
        token.cancel();
        second.close();
        tracker.close();
        tracker.wait().await;
    }
}
