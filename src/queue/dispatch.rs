//! One dispatcher per (execution, provider): takes the next job, waits for
//! a slot of the execution and a unit of the provider's lane, and starts
//! the job as its own task. The lane's waiter order (priority, then
//! arrival) is what makes concurrent executions share a provider fairly.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Shared;
use super::job::{JobContext, run_job};
use super::run::Run;
use super::sink::Finished;

pub(super) async fn dispatch(shared: Arc<Shared>, run: Arc<Run>, v: usize) {
    let Some(sink) = shared
        .sink
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    else {
        return;
    };
    let lane = run.lanes[v].clone();
    while let Some(job) = run.next_job(v) {
        let slot = tokio::select! {
            () = run.cancel.cancelled() => return,
            () = shared.token.cancelled() => return,
            slot = run.slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => return,
            },
        };
        let permit = tokio::select! {
            () = run.cancel.cancelled() => return,
            () = shared.token.cancelled() => return,
            p = lane.limit.acquire(run.priority) => p,
        };
        let m = &shared.metrics;
        m.queue_length.dec();
        m.queue_wait.observe(run.began.elapsed().as_secs_f64());
        m.in_flight.inc();
        run.started.fetch_add(1, Ordering::Relaxed);
        let ctx = JobContext {
            run: run.clone(),
            client: shared.client.clone(),
            metrics: shared.metrics.clone(),
        };
        let (sink, shared) = (sink.clone(), shared.clone());
        shared.tracker.clone().spawn(async move {
            let outcome = tokio::select! {
                () = ctx.run.cancel.cancelled() => None,
                row = run_job(&ctx, job, permit) => Some(row),
            };
            shared.metrics.in_flight.dec();
            drop(slot);
            match outcome {
                Some(result) => {
                    // Fails only after shutdown closed the sink: the job reruns on restart.
                    let _ = sink
                        .send(Finished {
                            result,
                            run: ctx.run,
                        })
                        .await;
                }
                None => shared.runs_cancelled.inc(),
            }
        });
    }
}
