//! `promptgauge serve --demo`: the example suites are stored and a gentle
//! workload keeps running on the `mock` provider, so a newcomer (and the
//! dashboards) see live data at once: passes and failures, provider errors
//! and 429s with their retries, response-cache hits.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::queue::{QueueError, SubmitRequest, SuiteSource, TestQueue};
use crate::storage::{ExecutionStatus, Priority};
use crate::suite::Format;

/// The suites under `examples/`, built into the binary so the demo runs
/// from any folder.
pub const EXAMPLES: [(&str, &str); 4] = [
    ("smoke", include_str!("../examples/smoke.yaml")),
    ("capitals", include_str!("../examples/capitals.yaml")),
    ("json-output", include_str!("../examples/json-output.yaml")),
    ("demo", include_str!("../examples/demo.yaml")),
];

/// Pause between two rounds.
const PAUSE: Duration = Duration::from_secs(5);
/// How often a running round is checked.
const POLL: Duration = Duration::from_millis(500);

/// Stores the examples, then runs one round after another until `token`
/// is cancelled: each round runs the `demo` suite without the response
/// cache (so the mock is really called) and every example with it.
pub async fn run(queue: TestQueue, token: CancellationToken) {
    let mut suites = Vec::with_capacity(EXAMPLES.len());
    for (name, source) in EXAMPLES {
        match queue.store_suite(source.to_owned(), Format::Yaml).await {
            Ok(stored) => suites.push((name, stored.suite.id)),
            Err(e) => tracing::error!(example = name, error = %e, "demo: cannot store the example"),
        }
    }
    tracing::info!(
        suites = suites.len(),
        "demo: examples stored; workload running"
    );
    loop {
        for &(name, id) in &suites {
            let use_cache = Some(name != "demo");
            let outcome = tokio::select! {
                () = token.cancelled() => return,
                o = round(&queue, &token, id, use_cache) => o,
            };
            if let Err(e) = outcome {
                if matches!(e, QueueError::ShuttingDown) {
                    return;
                }
                tracing::warn!(example = name, error = %e, "demo: round failed");
            }
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(PAUSE) => {}
        }
    }
}

/// Runs one stored suite at low priority and waits for it to end.
async fn round(
    queue: &TestQueue,
    token: &CancellationToken,
    suite: i64,
    use_cache: Option<bool>,
) -> Result<(), QueueError> {
    let submitted = queue
        .submit(SubmitRequest {
            suite: SuiteSource::Stored(suite),
            providers: None,
            max_concurrency: None,
            priority: Priority::Low,
            use_cache,
        })
        .await?;
    while !token.is_cancelled() {
        let view = queue.execution(submitted.id).await?;
        if view.record.status != ExecutionStatus::Running
            && view.record.status != ExecutionStatus::Pending
        {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_valid_suite() {
        // The demo posts them to the server: the server's policy applies.
        let server = crate::providers::Credentials::guarded(Default::default());
        let check = |spec: &crate::suite::ProviderSpec| crate::queue::check_provider(spec, &server);
        for (name, source) in EXAMPLES {
            let loaded = crate::suite::parse(source, Format::Yaml, &check)
                .unwrap_or_else(|e| panic!("examples/{name}.yaml: {e}"));
            assert!(
                loaded.warnings.is_empty(),
                "examples/{name}.yaml: {:?}",
                loaded.warnings
            );
        }
    }
}
