//! What the queue tells the event bus: an execution started, stored
//! results, made progress, or ended. The progress hub streams these to
//! WebSocket clients; the queue never waits on anyone listening.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use super::run::Run;
use crate::events::{Event, EventBus, Topic};
use crate::progress::{ExecutionState, ResultSummary};
use crate::storage::NewTestResult;

/// How often running executions' progress is published when no result
/// arrives (so a stalled run still says why it waits). Runs whose results
/// keep coming are left alone: ticking them all at once would send a
/// burst of one event per run to every client each second.
const TICK: Duration = Duration::from_secs(1);

/// `execution.started` with the run's first state.
pub(super) fn started(events: &EventBus, run: &Run) {
    if let Some(p) = run.progress_if_changed(true, Duration::ZERO) {
        let state = ExecutionState::running(p);
        events.publish(Event::new(
            "execution.started",
            Topic::Execution(run.id),
            &state,
        ));
    }
}

/// `execution.progress`, if anything changed since the last one (and,
/// from the ticker, only if that one is older than a tick).
pub(super) fn progress(events: &EventBus, run: &Run, quiet_for: Duration) {
    if !events.has_listeners() {
        return;
    }
    if let Some(p) = run.progress_if_changed(false, quiet_for) {
        let state = ExecutionState::running(p);
        events.publish(Event::new(
            "execution.progress",
            Topic::Execution(run.id),
            &state,
        ));
    }
}

/// One `result` event with the summaries of a stored batch's rows of `run`.
pub(super) fn results<'a>(
    events: &EventBus,
    run: &Run,
    rows: impl Iterator<Item = (&'a NewTestResult, usize)>,
) {
    if !events.has_listeners() {
        return;
    }
    let mut json = Vec::with_capacity(4096);
    json.push(b'[');
    let mut n = 0u32;
    for (row, provider_idx) in rows {
        let summary = ResultSummary {
            job: row.id.unwrap_or_default(),
            prompt_idx: row.prompt_idx,
            test_idx: row.test_idx,
            description: run
                .suite
                .tests
                .get(row.test_idx as usize)
                .and_then(|t| t.description())
                .map(Into::into),
            // The column's label, unless the test called its own provider.
            provider: run
                .suite
                .providers
                .get(provider_idx)
                .filter(|p| p.id == row.provider)
                .map_or(row.provider.as_str(), |p| p.name())
                .into(),
            status: match (row.passed, row.failure_reason) {
                (true, _) => "passed",
                (false, 2) => "error",
                _ => "failed",
            }
            .into(),
            score: row.score,
            latency_ms: row.execution_time_ms,
            cost_usd: row.cost_usd,
            cached: row.cached,
        };
        if n > 0 {
            json.push(b',');
        }
        if serde_json::to_writer(&mut json, &summary).is_ok() {
            n += 1;
        }
    }
    json.push(b']');
    if n > 0 {
        let text = String::from_utf8(json).unwrap_or_default();
        events.publish(Event::batch("result", Topic::Execution(run.id), n, text));
    }
}

/// `execution.finished` (completed or failed) or `execution.cancelled`,
/// with the stored totals.
pub(super) async fn ended(shared: &Shared, id: i64) {
    match shared.storage.get_execution(id).await {
        Ok(Some(record)) => {
            let state = ExecutionState::stored(&record);
            shared
                .events
                .publish(Event::new(state.kind(), Topic::Execution(id), &state));
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(execution = id, error = %e, "cannot read an ended execution to publish it")
        }
    }
}

/// Publishes running executions' progress every [`TICK`] when it changed.
pub(super) async fn ticker(shared: Arc<Shared>, token: CancellationToken) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            _ = every.tick() => {
                let runs: Vec<Arc<Run>> = shared
                    .runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .cloned()
                    .collect();
                for run in runs {
                    progress(&shared.events, &run, TICK);
                }
            }
        }
    }
}
