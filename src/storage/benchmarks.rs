//! Storage methods for benchmark runs.

use super::queries::benchmarks as q;
use super::{Storage, StorageError, op};

/// A stored run: its id, its results (the run as JSON) and whether it is a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBenchmarkRun {
    /// Id.
    pub id: i64,
    /// The run, JSON.
    pub results: String,
    /// Whether it is its scenario's baseline on its machine class.
    pub baseline: bool,
}

fn wrap(r: Option<q::StoredRun>) -> Option<StoredBenchmarkRun> {
    r.map(|(id, results, baseline)| StoredBenchmarkRun {
        id,
        results,
        baseline,
    })
}

impl Storage {
    /// Stores a run as it starts; returns its id.
    pub async fn insert_benchmark_run(
        &self,
        name: String,
        scenario: String,
        revision: String,
        machine: String,
        results: String,
        started_at: i64,
    ) -> Result<i64, StorageError> {
        self.inner
            .writer
            .call(op::BENCHMARK_WRITE, move |c| {
                q::insert(
                    c, &name, &scenario, &revision, &machine, &results, started_at,
                )
            })
            .await
    }

    /// Stores a run's results as it ends; optionally makes it the baseline.
    pub async fn finish_benchmark_run(
        &self,
        id: i64,
        results: String,
        duration_ms: i64,
        baseline: bool,
    ) -> Result<(), StorageError> {
        self.inner
            .writer
            .call(op::BENCHMARK_WRITE, move |c| {
                q::finish(c, id, &results, duration_ms)?;
                if baseline {
                    q::set_baseline(c, id)?;
                }
                Ok(())
            })
            .await
    }

    /// One run.
    pub async fn benchmark_run(&self, id: i64) -> Result<Option<StoredBenchmarkRun>, StorageError> {
        self.inner
            .readers
            .run(op::BENCHMARK_READ, move |c| q::get(c, id).map(wrap))
            .await
    }

    /// The newest run, optionally of one scenario.
    pub async fn latest_benchmark_run(
        &self,
        scenario: Option<String>,
    ) -> Result<Option<StoredBenchmarkRun>, StorageError> {
        self.inner
            .readers
            .run(op::BENCHMARK_READ, move |c| {
                q::latest(c, scenario.as_deref()).map(wrap)
            })
            .await
    }

    /// The baseline of a scenario on a machine class.
    pub async fn benchmark_baseline(
        &self,
        scenario: String,
        class: String,
    ) -> Result<Option<StoredBenchmarkRun>, StorageError> {
        self.inner
            .readers
            .run(op::BENCHMARK_READ, move |c| {
                q::baseline(c, &scenario, &class).map(wrap)
            })
            .await
    }
}
