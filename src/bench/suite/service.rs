//! Benchmark runs started over the API: one at a time, in the background,
//! with progress on the event stream (`/ws` topic `benchmarks`) and the run
//! stored like the CLI's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Run, Scenario};
use crate::events::{Event, EventBus, Topic};
use crate::storage::{Storage, StorageError};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another run is going.
    #[error("benchmark run {0} is still running; one at a time")]
    Running(i64),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The benchmark runner of a server. Cheap to clone.
#[derive(Clone)]
pub struct BenchmarkService {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    events: EventBus,
    dir: PathBuf,
    /// The run going on, once it has an id, and what cancels it.
    running: Mutex<Option<i64>>,
    cancel: Mutex<CancellationToken>,
    /// Held while a run starts, so two requests cannot both start one.
    starting: tokio::sync::Mutex<()>,
}

impl BenchmarkService {
    /// Runs keep their data under `dir` (never the service's database).
    pub fn new(storage: Storage, events: EventBus, dir: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                events,
                dir,
                running: Mutex::new(None),
                cancel: Mutex::new(CancellationToken::new()),
                starting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The run going on.
    pub fn running(&self) -> Option<i64> {
        *self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels the run going on (it stops after the sample it measures,
    /// and is stored as cancelled); returns its id.
    pub fn cancel(&self) -> Option<i64> {
        let id = self.running()?;
        self.inner
            .cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cancel();
        Some(id)
    }

    /// Starts `scenario` in the background; returns the run's id.
    pub async fn start(&self, scenario: Scenario, save_baseline: bool) -> Result<i64, StartError> {
        let _starting = self.inner.starting.lock().await;
        if let Some(id) = self.running() {
            return Err(StartError::Running(id));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let cancel = CancellationToken::new();
        *self.inner.cancel.lock().unwrap_or_else(|p| p.into_inner()) = cancel.clone();
        let service = self.clone();
        tokio::spawn(async move {
            let i = &service.inner;
            let events = i.events.clone();
            let name = scenario.name.clone();
            let mut tx = Some(tx);
            let outcome = super::execute(
                &i.storage,
                &scenario,
                &i.dir,
                save_baseline,
                &cancel,
                |id| {
                    *i.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
                    events.publish(Event::new(
                        "benchmark.started",
                        Topic::Benchmark,
                        &json!({"id": id, "scenario": name, "benchmarks": scenario.benchmarks.len()}),
                    ));
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(id));
                    }
                },
                |id, p| {
                    events.publish(Event::new(
                        "benchmark.progress",
                        Topic::Benchmark,
                        &json!({"id": id, "scenario": name, "progress": p}),
                    ))
                },
            )
            .await;
            let id = *i.running.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Ok(run) => events.publish(finished(&run)),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "benchmark run failed");
                    events.publish(Event::new(
                        "benchmark.finished",
                        Topic::Benchmark,
                        &json!({"id": id, "scenario": name, "status": "failed", "error": format!("{e:#}")}),
                    ));
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Err(e));
                    }
                }
            }
            *i.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        });
        match rx.await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(e)) => Err(StartError::Storage(match e.downcast::<StorageError>() {
                Ok(s) => s,
                Err(other) => StorageError::Query {
                    operation: "benchmark_write",
                    message: other.to_string(),
                },
            })),
            Err(_) => Err(StartError::Storage(StorageError::Closed)),
        }
    }

    /// A stored run by id, or the newest (of a scenario).
    pub async fn run(
        &self,
        id: Option<i64>,
        scenario: Option<String>,
    ) -> Result<Option<Run>, StorageError> {
        let stored = match id {
            Some(id) => self.inner.storage.benchmark_run(id).await?,
            None => self.inner.storage.latest_benchmark_run(scenario).await?,
        };
        Ok(stored.and_then(|r| match super::stored(&r) {
            Ok(run) => Some(run),
            Err(e) => {
                tracing::warn!(id = r.id, error = %e, "a stored benchmark run is unreadable");
                None
            }
        }))
    }
}

fn finished(run: &Run) -> Event {
    Event::new(
        "benchmark.finished",
        Topic::Benchmark,
        &json!({
            "id": run.id,
            "scenario": run.scenario,
            "status": run.status,
            "durationMs": run.duration_ms,
            "regressions": run.comparison.as_ref().map(|c| c.regressions.clone()).unwrap_or_default(),
            "failedGate": run.failed_gate(),
        }),
    )
}
