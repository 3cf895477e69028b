//! What execution events carry: an execution's state and its results'
//! summaries. Producers fill them; the hub only passes their JSON on.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hub::State;
use crate::storage::{ExecutionRecord, ExecutionStatus};

/// A live view of an execution, for APIs and progress displays.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Jobs in all.
    pub total: u64,
    /// Results stored.
    pub completed: u64,
    /// Passed.
    pub passed: u64,
    /// Failed an assertion.
    pub failed: u64,
    /// Provider errors.
    pub errors: u64,
    /// Started, not yet stored.
    pub running: u64,
    /// Not started.
    pub pending: u64,
    /// Results per second since this process started the execution.
    pub rate_per_sec: f64,
    /// Estimated seconds to go at that rate.
    pub eta_seconds: Option<f64>,
    /// Tests it may have in flight now: its own ceiling, or less while its
    /// providers' adaptive limits are lowered.
    #[serde(default)]
    pub concurrency: u64,
    /// Why jobs wait right now (backing off after a 429, circuit open,
    /// rate limited), if they do.
    pub waiting: Option<String>,
}

/// An execution's state: the data of `execution.*` messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionState {
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Counts, rate, ETA and why it waits.
    #[serde(flatten)]
    pub progress: Progress,
    /// passed / completed (0 before any result).
    pub pass_rate: f64,
    /// Spent on provider calls so far (final states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Wall time, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Why it failed, for a failed execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ExecutionState {
    /// A running execution's state from its live progress.
    pub fn running(progress: Progress) -> Self {
        let done = progress.passed + progress.failed + progress.errors;
        Self {
            status: ExecutionStatus::Running.as_str().to_owned(),
            pass_rate: ratio(progress.passed, done),
            progress,
            ..Self::default()
        }
    }

    /// The state as stored (a finished execution, or one not running here).
    pub fn stored(r: &ExecutionRecord) -> Self {
        let (passed, failed, errors) = (r.passed as u64, r.failed as u64, r.errors as u64);
        let completed = passed + failed + errors;
        Self {
            status: r.status.as_str().to_owned(),
            progress: Progress {
                total: r.total as u64,
                completed,
                passed,
                failed,
                errors,
                pending: (r.total as u64).saturating_sub(completed),
                ..Progress::default()
            },
            pass_rate: ratio(passed, completed),
            cost_usd: Some(r.cost_usd),
            duration_ms: r.started_at.zip(r.finished_at).map(|(s, f)| f - s),
            error: r.error.clone(),
        }
    }

    /// The event kind that reports this state: the end, or progress.
    pub fn kind(&self) -> &'static str {
        match self.status.as_str() {
            "completed" | "failed" => "execution.finished",
            "cancelled" => "execution.cancelled",
            _ => "execution.progress",
        }
    }
}

/// A stored record as the hub's state of an execution it never saw.
pub(super) fn from_record(r: &ExecutionRecord) -> State {
    let s = ExecutionState::stored(r);
    State {
        kind: s.kind(),
        at_us: r.finished_at.or(r.started_at).unwrap_or(r.created_at) * 1000,
        data: Arc::from(serde_json::to_string(&s).unwrap_or_default()),
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One stored result in brief: the items of a `result` message (never
/// the output itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultSummary<'a> {
    /// The job (and result) id.
    pub job: i64,
    /// The prompt's index in the suite.
    pub prompt_idx: i64,
    /// The test's index in the suite.
    pub test_idx: i64,
    /// The test's description, if it has one.
    pub description: Option<Cow<'a, str>>,
    /// The provider as configured.
    pub provider: Cow<'a, str>,
    /// `passed`, `failed` (an assertion) or `error` (the call failed).
    pub status: Cow<'a, str>,
    /// Weighted score in 0..=1.
    pub score: f64,
    /// Provider latency.
    pub latency_ms: i64,
    /// Cost of the call in US dollars.
    pub cost_usd: f64,
    /// Whether the response came from the cache.
    pub cached: bool,
}
