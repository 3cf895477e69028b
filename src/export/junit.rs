//! JUnit XML (`-o results.xml`), the report CI systems read: one
//! `<testsuite>` per provider x prompt (named like promptfoo's,
//! `[provider] prompt N`), one `<testcase>` per result, a `<failure>` with
//! the grading reason and the failed assertions for a failed test, an
//! `<error>` with the provider's error for one that never got graded.
//! Pieces are built per element so the queue can stream them.

use std::fmt::Write as _;

use super::ExportContext;
use crate::storage::{GroupTotals, ResultRecord};

/// Longest name, message and failure text, as promptfoo truncates them.
const MAX_NAME: usize = 512;
const MAX_MESSAGE: usize = 1024;
const MAX_DETAIL: usize = 8192;

/// The XML declaration and the opening `<testsuites>` with the totals.
pub fn junit_head(totals: &[GroupTotals]) -> String {
    let sum = |f: fn(&GroupTotals) -> i64| totals.iter().map(f).sum::<i64>();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"promptgauge\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\">\n",
        sum(|g| g.count),
        sum(|g| g.failed),
        sum(|g| g.errors),
        seconds(sum(|g| g.latency_ms)),
    )
}

/// The name of a provider x prompt suite, which is also its testcases'
/// `classname`.
pub fn junit_suite_name(ctx: &ExportContext<'_>, group: &GroupTotals) -> String {
    let provider = ctx
        .suite
        .providers
        .get(group.provider_idx as usize)
        .map_or("unknown provider", |p| p.name());
    inline(
        &format!("[{provider}] prompt {}", group.prompt_idx + 1),
        MAX_NAME,
    )
}

/// `<testsuite ...>` for one provider x prompt.
pub fn junit_suite_open(ctx: &ExportContext<'_>, group: &GroupTotals) -> String {
    let timestamp = crate::common::time::rfc3339(ctx.execution.created_at);
    format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\" timestamp=\"{}\">\n",
        escape(&junit_suite_name(ctx, group)),
        group.count,
        group.failed,
        group.errors,
        seconds(group.latency_ms),
        escape(&timestamp),
    )
}

/// `</testsuite>`.
pub fn junit_suite_close() -> &'static str {
    "  </testsuite>\n"
}

/// `</testsuites>`.
pub fn junit_tail() -> &'static str {
    "</testsuites>\n"
}

/// One result as a `<testcase>`.
pub fn junit_case(ctx: &ExportContext<'_>, classname: &str, r: &ResultRecord) -> String {
    let description = ctx
        .suite
        .tests
        .get(r.test_idx as usize)
        .and_then(|t| t.description())
        .map(|d| inline(d, MAX_NAME))
        .filter(|d| !d.is_empty());
    let name = match description {
        Some(d) => format!("test {}: {d}", r.test_idx + 1),
        None => format!("test {}", r.test_idx + 1),
    };
    let mut out = format!(
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        escape(&name),
        escape(classname),
        seconds(r.latency_ms)
    );
    if r.passed {
        out.push_str("/>\n");
        return out;
    }
    let grading: Option<serde_json::Value> = r
        .grading
        .as_deref()
        .and_then(|g| serde_json::from_str(g).ok());
    let reason = grading
        .as_ref()
        .and_then(|g| g["reason"].as_str())
        .or(r.error.as_deref())
        .unwrap_or("failed");
    if r.failure_reason == 2 {
        let error = r.error.as_deref().unwrap_or("error");
        let _ = write!(
            out,
            ">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>\n",
            escape(&inline(error, MAX_MESSAGE)),
            escape(&truncate(&format!("Reason: {error}"), MAX_DETAIL)),
        );
        return out;
    }
    let mut detail = format!("Score: {}\nReason: {reason}", crate::js::number(r.score));
    let failed: Vec<String> = grading
        .as_ref()
        .and_then(|g| g["componentResults"].as_array())
        .into_iter()
        .flatten()
        .filter(|c| c["pass"] == false)
        .map(|c| {
            let ty = c["assertion"]["type"].as_str().unwrap_or("assert-set");
            format!("- {ty}: {}", c["reason"].as_str().unwrap_or_default())
        })
        .collect();
    if !failed.is_empty() {
        detail.push_str("\nFailed assertions:\n");
        detail.push_str(&failed.join("\n"));
    }
    let _ = write!(
        out,
        ">\n      <failure message=\"{}\" type=\"assertion\">{}</failure>\n    </testcase>\n",
        escape(&inline(reason, MAX_MESSAGE)),
        escape(&truncate(&detail, MAX_DETAIL)),
    );
    out
}

/// Milliseconds as seconds with up to three decimals (`1.5`, `0.012`).
fn seconds(ms: i64) -> String {
    let s = format!("{:.3}", ms.max(0) as f64 / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// White space runs collapsed, trimmed, truncated.
fn inline(s: &str, max: usize) -> String {
    let collapsed = s
        .split(crate::js::is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    truncate(&collapsed, max)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let kept: String = s.chars().take(max - 3).collect();
    format!("{kept}...")
}

/// Text safe in XML 1.0 content and attributes: the five specials as
/// entities, characters XML cannot hold (most control characters,
/// U+FFFE, U+FFFF) replaced by U+FFFD.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_kept_within_xml_1_0() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{0}\u{1b}\tend"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{fffd}\u{fffd}\tend"
        );
        assert_eq!(seconds(1500), "1.5");
        assert_eq!(seconds(12), "0.012");
        assert_eq!(seconds(0), "0");
        assert_eq!(inline("  two\n lines  ", 50), "two lines");
        assert_eq!(truncate(&"x".repeat(10), 6), "xxx...");
    }
}
