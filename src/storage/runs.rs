//! Storage methods for suites, executions, jobs and results: what the test
//! queue and the API read and write.

use super::queries::{executions, results, suites};
use super::{
    ExecutionRecord, ExecutionStatus, GroupTotals, JobSpec, NewExecution, NewSuite, PendingJob,
    ResultFilter, ResultRecord, Storage, StorageError, SuiteRecord, now_ms, op,
};

impl Storage {
    /// Stores a suite and its prompts and test cases; returns its id and
    /// whether it is new (false: the same document was already stored).
    pub async fn create_suite(&self, suite: NewSuite) -> Result<(i64, bool), StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::CREATE_SUITE, move |c| suites::insert(c, &suite, now))
            .await
    }

    /// A stored suite (with its source) and its JSON document.
    pub async fn get_suite(&self, id: i64) -> Result<Option<(SuiteRecord, String)>, StorageError> {
        self.inner
            .readers
            .run(op::GET_SUITE, move |c| suites::get(c, id))
            .await
    }

    /// Stored suites, newest first, and how many there are.
    pub async fn list_suites(
        &self,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<SuiteRecord>, i64), StorageError> {
        self.inner
            .readers
            .run(op::LIST_SUITES, move |c| suites::list(c, limit, offset))
            .await
    }

    /// Creates an execution and reserves ids for its `total` jobs; returns
    /// the execution id and the first job id (job `i` gets `first + i`).
    /// Its jobs follow with [`Storage::add_jobs`], before any runs.
    pub async fn create_execution(&self, new: NewExecution) -> Result<(i64, i64), StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(super::op::CREATE_EXECUTION, move |c| {
                executions::insert(c, &new, now)
            })
            .await
    }

    /// Stores a chunk of an execution's jobs, ids from `first`. A large
    /// execution is stored chunk by chunk, so other writes (results, the
    /// health check) go in between instead of waiting for all of it.
    pub async fn add_jobs(
        &self,
        execution: i64,
        first: i64,
        jobs: Vec<JobSpec>,
    ) -> Result<(), StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(super::op::ADD_JOBS, move |c| {
                executions::insert_jobs(c, execution, first, &jobs, now)
            })
            .await
    }

    /// How many of an execution's jobs are stored.
    pub async fn job_count(&self, execution: i64) -> Result<i64, StorageError> {
        self.inner
            .readers
            .run(op::PENDING_JOBS, move |c| {
                executions::job_count(c, execution)
            })
            .await
    }

    /// One execution.
    pub async fn get_execution(&self, id: i64) -> Result<Option<ExecutionRecord>, StorageError> {
        self.inner
            .readers
            .run(op::GET_EXECUTION, move |c| executions::get(c, id))
            .await
    }

    /// The suite document (JSON) an execution runs.
    pub async fn execution_config(&self, id: i64) -> Result<Option<String>, StorageError> {
        self.inner
            .readers
            .run(op::GET_EXECUTION, move |c| executions::config(c, id))
            .await
    }

    /// Executions, newest first, optionally of one status, and how many.
    pub async fn list_executions(
        &self,
        status: Option<ExecutionStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ExecutionRecord>, i64), StorageError> {
        self.inner
            .readers
            .run(op::LIST_EXECUTIONS, move |c| {
                executions::list(c, status, limit, offset)
            })
            .await
    }

    /// Executions that were pending or running: a restart resumes them.
    pub async fn unfinished_executions(&self) -> Result<Vec<ExecutionRecord>, StorageError> {
        self.inner
            .readers
            .run(op::LIST_EXECUTIONS, executions::unfinished)
            .await
    }

    /// Jobs of an execution that have no result yet.
    pub async fn pending_jobs(&self, execution: i64) -> Result<Vec<PendingJob>, StorageError> {
        self.inner
            .readers
            .run(op::PENDING_JOBS, move |c| {
                executions::pending_jobs(c, execution)
            })
            .await
    }

    /// Moves an execution to `status` (no-op once it is final). Cancelling
    /// also marks its jobs without results cancelled. Returns whether it moved.
    pub async fn set_execution_status(
        &self,
        id: i64,
        status: ExecutionStatus,
        error: Option<String>,
    ) -> Result<bool, StorageError> {
        let now = now_ms();
        self.inner
            .writer
            .call(op::SET_STATUS, move |c| {
                executions::set_status(c, id, status, error.as_deref(), now)
            })
            .await
    }

    /// One page of an execution's results, in job order, and how many match.
    pub async fn list_results(
        &self,
        execution: &ExecutionRecord,
        filter: Option<ResultFilter>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ResultRecord>, i64), StorageError> {
        let range = job_range(execution);
        self.inner
            .readers
            .run(op::LIST_RESULTS, move |c| {
                results::list(c, range, filter, limit, offset)
            })
            .await
    }

    /// A keyset page of an execution's results for an export: up to
    /// `limit` after id `after` (0 for the first page), of one (prompt,
    /// provider) `group` or all, in job order.
    pub async fn results_after(
        &self,
        execution: &ExecutionRecord,
        after: i64,
        group: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<ResultRecord>, StorageError> {
        let range = job_range(execution);
        self.inner
            .readers
            .run(op::EXPORT_RESULTS, move |c| {
                results::after(c, range, after, group, limit)
            })
            .await
    }

    /// Totals per (prompt, provider) of an execution's results.
    pub async fn group_totals(
        &self,
        execution: &ExecutionRecord,
    ) -> Result<Vec<GroupTotals>, StorageError> {
        let range = job_range(execution);
        self.inner
            .readers
            .run(op::LIST_RESULTS, move |c| results::group_totals(c, range))
            .await
    }
}

/// An execution's id and the ids of its jobs (and results), `first..end`.
fn job_range(execution: &ExecutionRecord) -> (i64, i64, i64) {
    (
        execution.id,
        execution.first_job_id,
        execution.first_job_id + execution.total,
    )
}
