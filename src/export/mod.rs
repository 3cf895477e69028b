//! Results in the shapes people import elsewhere: promptfoo's result file
//! (`-o results.json`, output version 3), JSON Lines of the same
//! per-result objects, and CSV. Pure functions over stored records; the
//! queue streams them page by page, so exports never hold every result.

mod csv;
mod junit;

use serde_json::{Map, Value, json};

pub use csv::{csv_header, csv_row};
pub use junit::{
    junit_case, junit_head, junit_suite_close, junit_suite_name, junit_suite_open, junit_tail,
};

use crate::storage::{ExecutionRecord, GroupTotals, ResultRecord};
use crate::suite::Suite;

/// A download format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// promptfoo's result file.
    Promptfoo,
    /// One promptfoo result object per line.
    Jsonl,
    /// One row per result.
    Csv,
    /// JUnit XML, for CI systems.
    Junit,
}

impl ExportFormat {
    /// Parses `promptfoo`, `jsonl`, `csv` or `junit`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "promptfoo" => Some(Self::Promptfoo),
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "junit" => Some(Self::Junit),
            _ => None,
        }
    }

    /// The file extension and `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Promptfoo => "application/json",
            Self::Jsonl => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Junit => "application/xml",
        }
    }
}

/// What every exported row needs besides itself.
pub struct ExportContext<'a> {
    /// The execution.
    pub execution: &'a ExecutionRecord,
    /// Its suite, parsed.
    pub suite: &'a Suite,
    /// Its suite document.
    pub doc: &'a crate::suite::Document,
}

fn token_usage(input: i64, output: i64, cached: bool) -> Value {
    json!({
        "prompt": input, "completion": output, "total": input + output,
        "cached": if cached { input + output } else { 0 }, "numRequests": 1
    })
}

/// One result as promptfoo writes it in `results.results[]`.
pub fn promptfoo_result(ctx: &ExportContext<'_>, r: &ResultRecord) -> Value {
    let suite = ctx.suite;
    let prompt = suite.prompts.get(r.prompt_idx as usize);
    let test = suite.tests.get(r.test_idx as usize);
    let provider = suite.providers.get(r.provider_idx as usize);
    let rendered = match (prompt, test) {
        (Some(_), Some(t)) => suite.render_prompt(r.prompt_idx as usize, t).ok(),
        _ => None,
    };
    let grading: Value = r
        .grading
        .as_deref()
        .and_then(|g| serde_json::from_str(g).ok())
        .unwrap_or(Value::Null);
    let usage = token_usage(r.input_tokens, r.output_tokens, r.cached);
    json!({
        "id": r.id.to_string(),
        // promptfoo's index into `prompts[]`: one per provider x prompt.
        "promptIdx": r.provider_idx * suite.prompts.len() as i64 + r.prompt_idx,
        "testIdx": r.test_idx,
        "promptId": prompt.map(|p| p.id.clone()),
        "prompt": {"raw": rendered, "label": prompt.map(|p| p.label.clone())},
        "provider": {"id": provider.map_or(r.provider.as_str(), |p| p.id.as_str()),
                     "label": provider.and_then(|p| p.label.clone()).unwrap_or_default()},
        "vars": test.map_or(Value::Object(Map::new()), |t| Value::Object(t.vars())),
        "response": r.output.as_ref().map(|o| json!({
            "output": o, "cached": r.cached, "cost": r.cost_usd, "tokenUsage": usage,
        })),
        "success": r.passed,
        "score": r.score,
        "failureReason": r.failure_reason,
        "error": r.error,
        "gradingResult": grading,
        "namedScores": grading.get("namedScores").cloned().unwrap_or_else(|| json!({})),
        "latencyMs": r.latency_ms,
        "cost": r.cost_usd,
        "tokenUsage": usage,
        "testCase": test.map(|t| json!({
            "description": t.description(), "vars": t.vars(), "assert": t.assert_specs(), "metadata": t.metadata(),
        })),
        "metadata": {"model": r.model},
    })
}

/// The promptfoo file around its results: everything before the first
/// result and everything after the last.
pub fn promptfoo_envelope(ctx: &ExportContext<'_>, totals: &[GroupTotals]) -> (String, String) {
    let e = ctx.execution;
    let suite = ctx.suite;
    // promptfoo lists each provider's prompts in turn.
    let mut ordered: Vec<&GroupTotals> = totals.iter().collect();
    ordered.sort_by_key(|g| (g.provider_idx, g.prompt_idx));
    let prompts: Vec<Value> = ordered
        .into_iter()
        .filter_map(|g| {
            let p = suite.prompts.get(g.prompt_idx as usize)?;
            let provider = suite.providers.get(g.provider_idx as usize)?;
            Some(json!({
                "id": p.id, "raw": p.raw, "label": p.label, "provider": provider.name(),
                "metrics": {
                    "score": g.score_sum, "testPassCount": g.passed, "testFailCount": g.failed,
                    "testErrorCount": g.errors, "totalLatencyMs": g.latency_ms,
                    "tokenUsage": {"prompt": g.input_tokens, "completion": g.output_tokens,
                                   "total": g.input_tokens + g.output_tokens, "numRequests": g.count},
                    "namedScores": {}, "cost": g.cost_usd,
                }
            }))
        })
        .collect();
    let sum = |f: fn(&GroupTotals) -> i64| totals.iter().map(f).sum::<i64>();
    let (input, output) = (sum(|g| g.input_tokens), sum(|g| g.output_tokens));
    let head = format!(
        "{{\"evalId\":{},\"results\":{{\"version\":3,\"timestamp\":{},\"prompts\":{},\"results\":[",
        json!(format!("promptgauge-{}", e.id)),
        json!(crate::common::time::rfc3339(e.created_at)),
        Value::Array(prompts)
    );
    let stats = json!({
        "successes": e.passed, "failures": e.failed, "errors": e.errors,
        "tokenUsage": {"prompt": input, "completion": output, "total": input + output,
                       "cached": 0, "numRequests": sum(|g| g.count)},
        "durationMs": match (e.started_at, e.finished_at) { (Some(s), Some(f)) => f - s, _ => 0 },
    });
    let tail = format!(
        "],\"stats\":{stats}}},\"config\":{},\"shareableUrl\":null,\"metadata\":{}}}",
        ctx.doc,
        json!({"promptgauge": {"executionId": e.id, "status": e.status.as_str(), "version": env!("CARGO_PKG_VERSION")}})
    );
    (head, tail)
}
