//! Running one job: render the prompt, call the provider (through the
//! lane's breaker and rate limits, with retries), grade, build the row.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{Admission, TRIP_AFTER};
use super::lane::Lane;
use super::limiter::Permit;
use super::retry;
use super::run::{Run, Target};
use crate::assertions::{Assertion, FailureReason, Judgement, Output, judge};
use crate::common::pool::CpuPool;
use crate::metrics::QueueMetrics;
use crate::providers::{Client, Completion, ProviderError, estimate_tokens};
use crate::storage::{NewTestResult, PendingJob, now_ms};

/// Longest a job may take, retries and waits included.
pub(super) const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// What a job needs besides the job itself.
pub(super) struct JobContext {
    pub(super) run: Arc<Run>,
    pub(super) client: Client,
    pub(super) metrics: QueueMetrics,
    /// Where outputs are graded.
    pub(super) grading: CpuPool,
}

/// Runs `job` to a stored-ready result. `permit` is the lane unit the
/// dispatcher acquired; it is let go while backing off, and handed back
/// with the result (`None` if the job timed out waiting for one) so the
/// caller holds it until the result is passed on.
pub(super) async fn run_job(
    ctx: &JobContext,
    job: PendingJob,
    permit: Permit,
) -> (NewTestResult, Option<Permit>) {
    let run = &ctx.run;
    let (p, v, t) = (
        job.spec.prompt_idx as usize,
        job.spec.provider_idx as usize,
        job.spec.test_idx as usize,
    );
    let target = run.target(v, t);
    let provider = &target.provider;
    let test = &run.suite.tests[t];
    let started = Instant::now();
    let mut permit = Some(permit);
    let rendered = match test.error() {
        // Known before any call: promptfoo would call, then fail grading.
        Some(e) => Err(format!("the test cannot be graded: {e}")),
        None => run
            .suite
            .render_prompt(p, test)
            .map_err(|e| format!("prompt could not be rendered: {e}")),
    };
    let outcome = match rendered {
        Ok(prompt) => {
            let limit = run
                .suite
                .timeout_ms
                .map_or(JOB_TIMEOUT, Duration::from_millis);
            match tokio::time::timeout(limit, call(ctx, target, &prompt, &mut permit)).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::Timeout { after: limit }),
            }
        }
        Err(message) => Err(ProviderError::BadRequest { status: 0, message }),
    };
    ctx.metrics
        .run_duration
        .observe(started.elapsed().as_secs_f64());

    let (judgement, completion) = match outcome {
        Ok(c) => grade(ctx, t, c).await,
        Err(e) => (judge::<Assertion>(&[], None, Err(&e.to_string())), None),
    };
    let row = row(
        run,
        job,
        provider.id(),
        provider.model(),
        &judgement,
        completion.as_ref(),
    );
    (row, permit)
}

/// Grades `c` against test `t`'s assertions on the grading pool, never on
/// an async worker: a pattern can take its whole step budget.
async fn grade(ctx: &JobContext, t: usize, c: Completion) -> (Judgement, Option<Completion>) {
    let suite = ctx.run.suite.clone();
    let graded = ctx
        .grading
        .run(move || {
            let test = &suite.tests[t];
            let output = Output {
                text: &c.output,
                latency_ms: (!c.cached).then_some(c.latency.as_millis() as u64),
                cost: Some(c.cost_usd),
                finish_reason: c.finish_reason.as_deref(),
            };
            let j = judge(&test.assertions, test.threshold(), Ok(&output));
            (j, c)
        })
        .await;
    match graded {
        Ok((j, c)) => (j, Some(c)),
        Err(e) => (
            judge::<Assertion>(
                &[],
                None,
                Err(&format!("the output could not be graded: {e}")),
            ),
            None,
        ),
    }
}

/// Calls provider `v`, retrying what may succeed on a second try. The
/// lane unit in `permit` is given up while backing off and is back in
/// `permit` when this returns.
async fn call(
    ctx: &JobContext,
    target: &Target,
    prompt: &str,
    permit: &mut Option<Permit>,
) -> Result<Completion, ProviderError> {
    let run = &ctx.run;
    let (lane, provider) = (&target.lane, &target.provider);
    let estimate = estimate_tokens(prompt);
    let mut attempt = 0;
    loop {
        let held = match permit.take() {
            Some(p) => p,
            None => lane.limit.acquire(run.priority).await,
        };
        if let Err(e) = admitted(lane, &mut attempt).await {
            *permit = Some(held);
            return Err(e);
        }
        while let Err(wait) = lane.rate.try_take(estimate) {
            lane.note_wait(format!(
                "rate limit of {} (next call in {:.1} s)",
                lane.label,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
        let result = ctx
            .client
            .complete(provider.as_ref(), prompt, run.use_cache)
            .await;
        *permit = Some(held);
        let e = match result {
            // A cached response says nothing about the provider.
            Ok(c) if c.cached => return Ok(c),
            Ok(c) => {
                if let Some(limit) = lane.limit.on_success() {
                    ctx.metrics
                        .concurrency_limit
                        .with_label_values(&[&lane.label])
                        .set(limit as i64);
                }
                if lane.breaker.is_open() {
                    ctx.metrics
                        .circuit_open
                        .with_label_values(&[&lane.label])
                        .set(0);
                }
                lane.breaker.on_success();
                lane.rate
                    .charge((c.usage.input + c.usage.output).saturating_sub(estimate));
                // promptfoo's provider `delay`: a pause after each call it paid for.
                if let Some(d) = target.delay {
                    tokio::time::sleep(d).await;
                }
                return Ok(c);
            }
            Err(e) => e,
        };
        record_failure(ctx, lane, &e);
        let Some(reason) = retry::reason(&e) else {
            return Err(e);
        };
        attempt += 1;
        if attempt > lane.max_retries {
            return Err(e);
        }
        ctx.metrics
            .retries
            .with_label_values(&[&lane.label, reason])
            .inc();
        let delay = retry::delay(attempt, &e, fastrand::f64());
        lane.note_wait(format!(
            "{} from {}: retry {attempt} in {:.1} s",
            reason.replace('_', " "),
            lane.label,
            delay.as_secs_f64()
        ));
        // Others may call the provider while this job backs off.
        *permit = None;
        tokio::time::sleep(delay).await;
    }
}

/// Waits while the lane's circuit is open. Each pause counts as one of the
/// job's retries, so against a provider that keeps failing a job ends
/// within its retry schedule, naming the failure, instead of waiting out
/// the job timeout.
async fn admitted(lane: &Lane, attempt: &mut u32) -> Result<(), ProviderError> {
    loop {
        match lane.breaker.admit() {
            Admission::Go | Admission::Probe => return Ok(()),
            Admission::Probing => tokio::time::sleep(Duration::from_millis(100)).await,
            Admission::Wait(d) => {
                *attempt += 1;
                if *attempt > lane.max_retries {
                    return Err(ProviderError::Unavailable {
                        message: format!(
                            "{} failed {TRIP_AFTER} calls in a row and its circuit is open; the last: {}",
                            lane.label,
                            lane.breaker.last_failure()
                        ),
                    });
                }
                lane.note_wait(format!(
                    "circuit open for {}: next probe in {:.1} s",
                    lane.label,
                    d.as_secs_f64()
                ));
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// Tells the limit and the breaker what a failure says about the provider.
fn record_failure(ctx: &JobContext, lane: &Lane, e: &ProviderError) {
    match e {
        ProviderError::RateLimited { .. } => lane.limit.on_backoff(),
        ProviderError::Timeout { .. } => {
            lane.limit.on_backoff();
            trip(ctx, lane, e);
        }
        ProviderError::Server { .. } | ProviderError::Transport { .. } => {
            lane.limit.on_failure();
            trip(ctx, lane, e);
        }
        // The provider answered: it is up, the request or account is the problem.
        _ => lane.breaker.on_success(),
    }
    ctx.metrics
        .concurrency_limit
        .with_label_values(&[&lane.label])
        .set(lane.limit.limit() as i64);
}

fn trip(ctx: &JobContext, lane: &Lane, e: &ProviderError) {
    if lane.breaker.on_failure(&e.to_string()) {
        tracing::warn!(provider = %lane.label, "circuit breaker opened");
        ctx.metrics
            .circuit_open
            .with_label_values(&[&lane.label])
            .set(1);
    }
}

fn row(
    run: &Run,
    job: PendingJob,
    provider: &str,
    model: &str,
    j: &Judgement,
    c: Option<&Completion>,
) -> NewTestResult {
    NewTestResult {
        id: Some(job.id),
        execution_id: run.id,
        prompt_idx: i64::from(job.spec.prompt_idx),
        test_idx: i64::from(job.spec.test_idx),
        provider: provider.to_owned(),
        model: model.to_owned(),
        passed: j.pass,
        score: j.score,
        failure_reason: match j.failure_reason {
            FailureReason::None => 0,
            FailureReason::Assertion => 1,
            FailureReason::Error => 2,
        },
        execution_time_ms: c.map_or(0, |c| c.latency.as_millis() as i64),
        input_tokens: c.map_or(0, |c| c.usage.input as i64),
        output_tokens: c.map_or(0, |c| c.usage.output as i64),
        cost_usd: c.map_or(0.0, |c| c.cost_usd),
        cached: c.is_some_and(|c| c.cached),
        output: c.map(|c| c.output.clone()),
        error: j.error.clone(),
        grading: j
            .grading
            .as_ref()
            .and_then(|g| serde_json::to_string(g).ok()),
        created_at: now_ms(),
    }
}
