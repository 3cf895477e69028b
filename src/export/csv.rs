//! CSV (RFC 4180): one row per result.

use super::ExportContext;
use crate::storage::ResultRecord;

const COLUMNS: &[&str] = &[
    "id",
    "prompt_idx",
    "test_idx",
    "provider",
    "model",
    "description",
    "vars",
    "output",
    "passed",
    "score",
    "failure_reason",
    "error",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cached",
];

/// The header line.
pub fn csv_header() -> String {
    let mut line = COLUMNS.join(",");
    line.push_str("\r\n");
    line
}

/// One result as a CSV line.
pub fn csv_row(ctx: &ExportContext<'_>, r: &ResultRecord) -> String {
    let test = ctx.suite.tests.get(r.test_idx as usize);
    let fields = [
        r.id.to_string(),
        r.prompt_idx.to_string(),
        r.test_idx.to_string(),
        r.provider.clone(),
        r.model.clone(),
        test.and_then(|t| t.description())
            .unwrap_or_default()
            .to_owned(),
        test.map(|t| t.vars_json().to_owned()).unwrap_or_default(),
        r.output.clone().unwrap_or_default(),
        r.passed.to_string(),
        r.score.to_string(),
        r.failure_reason.to_string(),
        r.error.clone().unwrap_or_default(),
        r.latency_ms.to_string(),
        r.input_tokens.to_string(),
        r.output_tokens.to_string(),
        r.cost_usd.to_string(),
        r.cached.to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Quotes a field holding a comma, quote or line break; doubles quotes.
fn escape(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_with_separators_are_quoted() {
        assert_eq!(super::escape("plain"), "plain");
        assert_eq!(super::escape("a,b"), "\"a,b\"");
        assert_eq!(super::escape("say \"hi\"\nbye"), "\"say \"\"hi\"\"\nbye\"");
    }
}
