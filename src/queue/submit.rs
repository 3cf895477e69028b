//! Creating executions: resolve the suite, pick providers, persist the
//! jobs, start running; and resuming executions after a restart.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::run::{Counts, Outcomes, Run, Target};
use super::{LaneSettings, QueueError, Shared, TestQueue, check_provider, dispatch, publish};
use crate::providers::Credentials;
use crate::providers::{self, Provider};
use crate::storage::{
    ExecutionRecord, ExecutionStatus, JobSpec, NewExecution, PendingJob, Priority,
};
use crate::suite::{self, Document, Format, Problem, Suite, SuiteError};

/// Where the suite comes from.
#[derive(Debug, Clone)]
pub enum SuiteSource {
    /// A stored suite.
    Stored(i64),
    /// A document sent with the request.
    Inline {
        /// The document.
        source: String,
        /// Its syntax.
        format: Format,
    },
    /// A document already parsed (`promptgauge run`, after it inlined
    /// the suite's files).
    Document(Document),
}

/// Jobs stored per writer command. A write queued behind a chunk (the
/// health check, results) waits for that one chunk: 10,000 gave the health
/// check a p99 of 103 ms while 1,000,000 jobs were stored (debug build),
/// 2,000 gives 68 ms at the same total time.
const JOB_CHUNK: usize = 2_000;

/// A request to run a suite.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    /// The suite.
    pub suite: SuiteSource,
    /// Only these providers (by id or label); all when `None`.
    pub providers: Option<Vec<String>>,
    /// The execution's concurrency ceiling (else the suite's
    /// `evaluateOptions.maxConcurrency`, else the queue's).
    pub max_concurrency: Option<u32>,
    /// Scheduling priority.
    pub priority: Priority,
    /// Use the response cache (else the suite's `evaluateOptions.cache`, else yes).
    pub use_cache: Option<bool>,
}

/// A created execution.
#[derive(Debug, Clone, Serialize)]
pub struct Submitted {
    /// Its id.
    pub id: i64,
    /// Jobs (prompts x providers x tests).
    pub total: u64,
    /// What the suite parse ignored.
    pub warnings: Vec<Problem>,
}

impl TestQueue {
    /// Validates, persists every job, and starts running. Returns at once.
    pub async fn submit(&self, req: SubmitRequest) -> Result<Submitted, QueueError> {
        if self.shared.token.is_cancelled() {
            return Err(QueueError::ShuttingDown);
        }
        let (prepared, suite_id) = self.prepare(req.suite, req.providers.as_deref()).await?;
        let Prepared {
            doc,
            suite,
            warnings,
        } = &*prepared;
        let suite = suite.clone();
        let max = req
            .max_concurrency
            .or(suite.max_concurrency)
            .map_or(self.shared.config.max_concurrency, |m| m as usize);
        let use_cache = req.use_cache.or(suite.use_cache).unwrap_or(true);
        let specs = job_specs(&suite);
        let total = specs.len() as u64;
        let new = NewExecution {
            suite_id,
            config: doc.to_string(),
            priority: req.priority,
            max_concurrency: Some(max as u32),
            use_cache,
            total: total as i64,
        };
        let providers = build_providers(&suite, &self.shared.config.credentials)?;
        let storage = &self.shared.storage;
        let (id, first) = storage.create_execution(new).await?;
        // In chunks: other writes go in between (see `Storage::add_jobs`).
        for (k, chunk) in specs.chunks(JOB_CHUNK).enumerate() {
            let stored = storage
                .add_jobs(id, first + (k * JOB_CHUNK) as i64, chunk.to_vec())
                .await;
            if let Err(e) = stored {
                let why = format!("its jobs could not be stored: {e}");
                let _ = storage
                    .set_execution_status(id, ExecutionStatus::Failed, Some(why))
                    .await;
                return Err(e.into());
            }
        }
        let jobs = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| PendingJob {
                id: first + i as i64,
                spec,
            })
            .collect();
        self.shared
            .start(
                id,
                suite,
                providers,
                (req.priority, use_cache, max),
                jobs,
                Counts {
                    total,
                    ..Counts::default()
                },
            )
            .await?;
        let warnings = warnings.clone();
        drop(prepared);
        // The document and what parsing it took are gone: give pages back.
        crate::common::memory::release_after(total as usize);
        Ok(Submitted {
            id,
            total,
            warnings,
        })
    }

    /// The parsed suite for a request: stored suites run without a provider
    /// filter come from the cache, so repeated runs do not re-read them.
    async fn prepare(
        &self,
        suite: SuiteSource,
        providers: Option<&[String]>,
    ) -> Result<(Arc<Prepared>, Option<i64>), QueueError> {
        let credentials = &self.shared.config.credentials;
        match (suite, providers) {
            (SuiteSource::Stored(id), None) => {
                let storage = &self.shared.storage;
                let prepared = self
                    .shared
                    .suites
                    .get_or_try_insert_with(&id, async {
                        prepare(stored_doc(storage, id).await?, None, credentials).map(Arc::new)
                    })
                    .await?;
                Ok((prepared, Some(id)))
            }
            (SuiteSource::Stored(id), filter) => {
                let doc = stored_doc(&self.shared.storage, id).await?;
                Ok((Arc::new(prepare(doc, filter, credentials)?), Some(id)))
            }
            (SuiteSource::Inline { source, format }, filter) => {
                let doc = suite::document(&source, format).map_err(QueueError::InvalidSuite)?;
                Ok((Arc::new(prepare(doc, filter, credentials)?), None))
            }
            (SuiteSource::Document(doc), filter) => {
                Ok((Arc::new(prepare(doc, filter, credentials)?), None))
            }
        }
    }
}

/// A suite ready to run, and the document it came from.
pub(super) struct Prepared {
    doc: Document,
    suite: Arc<Suite>,
    warnings: Vec<Problem>,
}

fn prepare(
    doc: Document,
    providers: Option<&[String]>,
    credentials: &Credentials,
) -> Result<Prepared, QueueError> {
    let doc = select_providers(doc, providers)?;
    let check = |spec: &crate::suite::ProviderSpec| check_provider(spec, credentials);
    let loaded = suite::parse_document(&doc, &check).map_err(QueueError::InvalidSuite)?;
    Ok(Prepared {
        doc,
        suite: Arc::new(loaded.suite),
        warnings: loaded.warnings,
    })
}

async fn stored_doc(storage: &crate::storage::Storage, id: i64) -> Result<Document, QueueError> {
    let (_, config) = storage
        .get_suite(id)
        .await?
        .ok_or(QueueError::SuiteNotFound(id))?;
    Document::from_json(&config)
        .map_err(|e| QueueError::InvalidRequest(format!("stored suite {id} is unreadable: {e}")))
}

impl Shared {
    /// Registers a run and starts its dispatchers.
    pub(super) async fn start(
        self: &Arc<Self>,
        id: i64,
        suite: Arc<Suite>,
        providers: Vec<Arc<dyn Provider>>,
        options: (Priority, bool, usize),
        jobs: Vec<PendingJob>,
        counts: Counts,
    ) -> Result<(), QueueError> {
        let target = |spec: &crate::suite::ProviderSpec, p: Arc<dyn Provider>| {
            let settings =
                LaneSettings::from_config(&spec.config).map_err(QueueError::InvalidRequest)?;
            let label = self.metrics.providers.get(p.id());
            let lane = self.lane(format!("{}|{}", p.id(), p.endpoint()), &label, settings);
            Ok(Target {
                provider: p,
                lane,
                delay: spec.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
            })
        };
        let columns = suite
            .providers
            .iter()
            .zip(&providers)
            .map(|(spec, p)| target(spec, p.clone()))
            .collect::<Result<Vec<_>, QueueError>>()?;
        let test_targets = suite
            .test_providers
            .iter()
            .map(|spec| {
                let p = build_provider(spec, &self.config.credentials)?;
                target(spec, p)
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        let outcomes = providers
            .iter()
            .map(|p| {
                let model = self.provider_metrics.model_label(p.model());
                Outcomes::new(&self.metrics.runs, p.kind(), &model)
            })
            .collect();
        let run = Arc::new(Run::new(
            id,
            suite,
            (columns, test_targets),
            options,
            jobs,
            counts,
            outcomes,
        ));
        // Live before it is marked running, so a cancel that comes now
        // either finds the run or is seen by the conditional update below.
        self.metrics.queue_length.add(run.to_run as i64);
        self.metrics.executions_running.inc();
        self.runs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, run.clone());
        let running = self
            .storage
            .set_execution_status(id, ExecutionStatus::Running, None)
            .await;
        if !matches!(running, Ok(true)) {
            // Cancelled while it was being prepared (a cancel during
            // recovery), or it cannot be marked: it does not run.
            run.cancel.cancel();
            self.metrics.queue_length.sub(run.drop_pending() as i64);
            self.forget(id);
            running?;
            return Ok(());
        }
        publish::started(&self.events, &run);
        if run.to_run == 0 {
            self.finish(&run).await;
            return Ok(());
        }
        for v in 0..run.providers.len() {
            self.tracker
                .spawn(dispatch::dispatch(self.clone(), run.clone(), v));
        }
        Ok(())
    }

    /// Restarts an execution from its stored suite and pending jobs.
    pub(super) async fn resume(
        self: &Arc<Self>,
        record: &ExecutionRecord,
    ) -> Result<(), QueueError> {
        let r = self.load_resumable(record).await?;
        self.start(r.id, r.suite, r.providers, r.options, r.jobs, r.counts)
            .await
    }

    /// Reads what [`Shared::resume`] starts: the stored suite and the jobs
    /// without a result.
    pub(super) async fn load_resumable(
        &self,
        record: &ExecutionRecord,
    ) -> Result<Resumable, QueueError> {
        let config = self
            .storage
            .execution_config(record.id)
            .await?
            .ok_or(QueueError::NotFound(record.id))?;
        let doc = Document::from_json(&config).map_err(QueueError::InvalidRequest)?;
        let suite = Arc::new(
            suite::parse_document(&doc, &self.checker())
                .map_err(QueueError::InvalidSuite)?
                .suite,
        );
        let providers = build_providers(&suite, &self.config.credentials)?;
        // Stopped while its jobs were being stored: what is there is not
        // the whole execution, so it cannot be resumed as one.
        if self.storage.job_count(record.id).await? < record.total {
            return Err(QueueError::InvalidRequest(
                "the service stopped while this execution's jobs were being stored".into(),
            ));
        }
        let jobs = self.storage.pending_jobs(record.id).await?;
        let max = record
            .max_concurrency
            .map_or(self.config.max_concurrency, |m| m as usize);
        Ok(Resumable {
            id: record.id,
            suite,
            providers,
            options: (record.priority, record.use_cache, max),
            jobs,
            counts: Counts {
                total: record.total as u64,
                passed: record.passed as u64,
                failed: record.failed as u64,
                errors: record.errors as u64,
            },
        })
    }
}

/// An execution read back for [`Shared::resume`].
pub(super) struct Resumable {
    pub(super) id: i64,
    pub(super) suite: Arc<Suite>,
    pub(super) providers: Vec<Arc<dyn Provider>>,
    pub(super) options: (Priority, bool, usize),
    pub(super) jobs: Vec<PendingJob>,
    pub(super) counts: Counts,
}

/// Test-major job order (as promptfoo runs them): each test, each prompt,
/// each provider.
fn job_specs(suite: &Suite) -> Vec<JobSpec> {
    let mut jobs = Vec::with_capacity(suite.job_count());
    for t in 0..suite.tests.len() {
        for p in 0..suite.prompts.len() {
            for v in 0..suite.providers.len() {
                jobs.push(JobSpec {
                    prompt_idx: p as u32,
                    provider_idx: v as u32,
                    test_idx: t as u32,
                });
            }
        }
    }
    jobs
}

fn build_providers(
    suite: &Suite,
    credentials: &Credentials,
) -> Result<Vec<Arc<dyn Provider>>, QueueError> {
    suite
        .providers
        .iter()
        .map(|spec| build_provider(spec, credentials))
        .collect()
}

fn build_provider(
    spec: &crate::suite::ProviderSpec,
    credentials: &Credentials,
) -> Result<Arc<dyn Provider>, QueueError> {
    providers::build_with(spec, &|name| std::env::var(name).ok(), credentials)
        .map_err(QueueError::InvalidRequest)
}

/// Keeps only the providers named (by id or label) in the document.
fn select_providers(mut doc: Document, wanted: Option<&[String]>) -> Result<Document, QueueError> {
    let Some(wanted) = wanted else { return Ok(doc) };
    if wanted.is_empty() {
        return Err(QueueError::InvalidRequest(
            "`providers` must name at least one provider".into(),
        ));
    }
    let entries: Vec<Value> = match doc.root().get("providers") {
        Some(Value::Array(a)) => a.clone(),
        Some(other @ Value::String(_)) => vec![other.clone()],
        _ => Vec::new(),
    };
    let name = |e: &Value| -> Vec<String> {
        match e {
            Value::String(id) => vec![id.clone()],
            Value::Object(o) if o.contains_key("id") => ["id", "label"]
                .iter()
                .filter_map(|k| o.get(*k).and_then(Value::as_str).map(str::to_owned))
                .collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| !entries.iter().any(|e| name(e).contains(w)))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<String> = entries.iter().flat_map(name).collect();
        return Err(QueueError::InvalidSuite(SuiteError {
            problems: unknown
                .into_iter()
                .map(|u| {
                    Problem::new(
                        "providers",
                        format!(
                            "no provider named \"{u}\" in the suite (it has: {})",
                            known.join(", ")
                        ),
                    )
                })
                .collect(),
        }));
    }
    let kept: Vec<Value> = entries
        .into_iter()
        .filter(|e| name(e).iter().any(|n| wanted.contains(n)))
        .collect();
    doc.root_mut()
        .insert("providers".to_owned(), Value::Array(kept));
    Ok(doc)
}
