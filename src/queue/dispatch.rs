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
        // The lane first: its waiters are served by priority, and this
        // dispatcher must be among them while its jobs run, or a job of a
        // lower priority takes each unit a finishing job gives back (a job
        // gives back its slot before its unit, so the slot is then free).
        // A unit is never held while waiting for a slot: jobs backing off
        // hold slots and need units to go on.
        let permit = tokio::select! {
            () = run.cancel.cancelled() => return,
            () = shared.token.cancelled() => return,
            p = lane.limit.acquire(run.priority) => p,
        };
        let (slot, permit) = match run.slots.clone().try_acquire_owned() {
            Ok(slot) => (slot, permit),
            Err(_) => {
                drop(permit);
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
                (slot, permit)
            }
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
            grading: shared.grading.clone(),
        };
        let (sink, shared) = (sink.clone(), shared.clone());
        shared.tracker.clone().spawn(async move {
            let outcome = tokio::select! {
                () = ctx.run.cancel.cancelled() => None,
                done = run_job(&ctx, job, permit) => Some(done),
            };
            shared.metrics.in_flight.dec();
            match outcome {
                Some((result, permit)) => {
                    // Fails only after shutdown closed the sink: the job reruns on restart.
                    let _ = sink
                        .send(Finished {
                            result,
                            provider_idx: v,
                            run: ctx.run,
                        })
                        .await;
                    // Both are held until the result is handed over: when
                    // storage falls behind, new jobs wait instead of
                    // finished ones piling up. The slot goes first (see above).
                    drop(slot);
                    drop(permit);
                }
                None => {
                    if let Some(o) = ctx.run.outcomes.get(v) {
                        o.cancelled.inc();
                    }
                }
            }
        });
    }
}
