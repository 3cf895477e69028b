//! The tests that failed or errored, listed after the summary: in CI that
//! list is the point of the run. Each names its test (description, else
//! vars), prompt, provider and the failing assertion's reason or the
//! error; at most [`SHOWN`] of each kind, with a count of the rest. In
//! colour on a terminal, plain in a pipe, with `CI` or `NO_COLOR`.

use serde_json::Value;

use crate::suite::Suite;

/// Results of each kind (failed, errored) listed at most.
pub(super) const SHOWN: i64 = 20;
/// Longest test label, prompt label and reason, in characters.
const LABEL: usize = 60;
const PROMPT: usize = 40;
const REASON: usize = 200;

/// Colours, or none.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    pub(super) colour: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The listing for pages of failed and errored results (as
/// `GET .../results?filter=failed|error` answers), with labels from
/// `suite` when it could be read.
pub(super) fn listing(
    failed: &Value,
    errors: &Value,
    suite: Option<&Suite>,
    style: Style,
) -> String {
    let mut out = String::new();
    for (page, kind, code) in [(failed, "FAIL", "31"), (errors, "ERROR", "33")] {
        let items = page["items"].as_array().map_or(&[][..], Vec::as_slice);
        let total = page["total"].as_i64().unwrap_or(items.len() as i64);
        if items.is_empty() {
            continue;
        }
        let title = if kind == "FAIL" { "Failed" } else { "Errored" };
        out.push_str(&style.paint("1", &format!("\n{title} ({total}):\n")));
        for r in items {
            out.push_str(&row(r, kind, code, suite, style));
        }
        let rest = total - items.len() as i64;
        if rest > 0 {
            out.push_str(&format!(
                "  ... and {rest} more (-o results.json writes every result)\n"
            ));
        }
    }
    out
}

fn row(r: &Value, kind: &str, code: &str, suite: Option<&Suite>, style: Style) -> String {
    let (t, p) = (
        r["testIdx"].as_u64().unwrap_or(0) as usize,
        r["promptIdx"].as_u64().unwrap_or(0) as usize,
    );
    let test = suite
        .and_then(|s| s.tests.get(t))
        .map(|test| match test.description() {
            Some(d) => d.to_owned(),
            None => test.vars_json().to_owned(),
        })
        .unwrap_or_else(|| format!("test {t}"));
    let prompt = suite
        .and_then(|s| s.prompts.get(p))
        .map_or_else(|| format!("prompt {p}"), |prompt| prompt.label.clone());
    let reason = r["error"].as_str().unwrap_or("(no reason recorded)");
    format!(
        "  {} {}  {}  {}\n      {}\n",
        style.paint(code, &format!("{kind:<5}")),
        cut(&test, LABEL),
        style.paint("2", &format!("[{}]", cut(&prompt, PROMPT))),
        style.paint("2", r["provider"].as_str().unwrap_or("?")),
        cut(reason, REASON),
    )
}

/// One line of at most `max` characters.
fn cut(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    flat.chars().take(max - 1).collect::<String>() + "…"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn page(items: Vec<Value>, total: i64) -> Value {
        json!({"items": items, "total": total})
    }

    #[test]
    fn failures_and_errors_are_listed_bounded_with_the_rest_counted() {
        let failed = page(
            vec![json!({"testIdx": 1, "promptIdx": 0, "provider": "echo",
                "error": "Expected output to contain \"Tokyo\"\nsecond line"})],
            3,
        );
        let errors = page(
            vec![
                json!({"testIdx": 0, "promptIdx": 0, "provider": "openai:gpt-4o", "error": "provider error 500: down"}),
            ],
            1,
        );
        let text = listing(&failed, &errors, None, Style { colour: false });
        assert_eq!(
            text,
            "\nFailed (3):\n  FAIL  test 1  [prompt 0]  echo\n      Expected output to contain \"Tokyo\" second line\n  ... and 2 more (-o results.json writes every result)\n\nErrored (1):\n  ERROR test 0  [prompt 0]  openai:gpt-4o\n      provider error 500: down\n"
        );
        let coloured = listing(&failed, &errors, None, Style { colour: true });
        assert!(coloured.contains("\x1b[31mFAIL \x1b[0m"), "{coloured}");
        assert!(
            listing(
                &page(vec![], 0),
                &page(vec![], 0),
                None,
                Style { colour: true }
            )
            .is_empty()
        );
    }

    #[test]
    fn long_labels_are_cut_to_one_line() {
        assert_eq!(cut("a\nb", 10), "a b");
        assert_eq!(cut(&"x".repeat(300), 5), "xxxx…");
    }
}
