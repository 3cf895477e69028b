//! What the data-driven strategies read from the stored results: the
//! suite's per-model figures, and one prompt's recent failures and
//! repeated calls, shaped for [`super::strategies`].

use std::collections::HashMap;

use super::{DATA_WINDOW, Labelled, RECENT_EXECUTIONS, Suggestion, strategies};
use crate::analytics::{AnalyticsEngine, Span};
use crate::storage::{PromptHistory, RollupFilter, Storage};

pub(super) async fn model_selection(
    engine: &AnalyticsEngine,
    suite: i64,
    model: &str,
    tolerance: f64,
) -> Result<Vec<Suggestion>, String> {
    let filter = RollupFilter {
        suite_id: Some(suite),
        ..RollupFilter::default()
    };
    let answer = engine
        .models(Span::Last(DATA_WINDOW), filter)
        .await
        .map_err(|e| format!("reading the suite's models failed: {e}"))?;
    let stats: Vec<strategies::ModelStats> = answer
        .data
        .models
        .iter()
        .map(|m| strategies::ModelStats {
            provider: m.provider.clone(),
            model: m.model.clone(),
            results: m.figures.count,
            pass_rate: m.figures.pass_rate,
            cost_per_test: m.figures.cost_per_test_usd,
        })
        .collect();
    Ok(strategies::model_selection(model, &stats, tolerance))
}

pub(super) async fn prompt_history(
    storage: Storage,
    suite: i64,
    idx: i64,
) -> Result<Labelled, String> {
    let (history, suite_doc) = tokio::try_join!(
        storage.prompt_history(suite, idx, RECENT_EXECUTIONS),
        storage.get_suite(suite),
    )
    .map_err(|e| format!("reading the prompt's results failed: {e}"))?;
    let labels = suite_doc
        .map(|(_, config)| crate::suite::test_labels(&config))
        .unwrap_or_default();
    Ok((history, labels))
}

/// Failures grouped by their masked reason, most first, with a few tests each.
pub(super) fn failure_groups(
    h: &PromptHistory,
    labels: &[String],
) -> Vec<strategies::FailureGroup> {
    let mut groups: HashMap<String, (i64, Vec<i64>)> = HashMap::new();
    for (error, test, count) in &h.failures {
        let reason = if error.is_empty() {
            "failed without a reason".to_owned()
        } else {
            strategies::mask_reason(error)
        };
        let g = groups.entry(reason).or_default();
        g.0 += count;
        g.1.push(*test);
    }
    let mut out: Vec<strategies::FailureGroup> = groups
        .into_iter()
        .map(|(reason, (count, mut tests))| {
            tests.sort_unstable();
            tests.dedup();
            strategies::FailureGroup {
                reason,
                count,
                tests: tests
                    .iter()
                    .take(5)
                    .map(
                        |&t| match labels.get(t as usize).filter(|l| !l.is_empty()) {
                            Some(l) => format!("{t} ({l})"),
                            None => t.to_string(),
                        },
                    )
                    .collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(&b.reason)));
    out
}

pub(super) fn repeat_stats(h: &PromptHistory) -> strategies::RepeatStats {
    let mut r = strategies::RepeatStats::default();
    for &(calls, distinct, cost) in &h.calls {
        r.calls += calls;
        r.cost_usd += cost;
        if calls > 1 {
            r.repeated += calls - 1;
            if distinct <= 1 {
                r.identical_groups += 1;
            } else {
                r.varying_groups += 1;
            }
        }
    }
    r
}
