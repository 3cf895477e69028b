//! `is-json` and `contains-json`, each with an optional JSON Schema.

use serde_json::Value;

use super::ajv::Schema;
use super::{Assertion, Check, Verdict};

/// Scanned text per `{` when looking for embedded JSON (promptfoo's limit).
const MAX_CANDIDATE_CHARS: usize = 100_000;
/// Characters scanned and parsed in all while looking for embedded JSON:
/// promptfoo rescans from every `{`, which is quadratic on a long output
/// full of unbalanced braces (`{{{{...`); past this, the search gives up.
pub(super) const EXTRACT_BUDGET: usize = 20_000_000;

pub(super) fn evaluate(a: &Assertion, text: &str) -> Verdict {
    match &a.check {
        Check::IsJson(schema) => is_json(schema.as_ref(), text, a.inverse),
        Check::ContainsJson(schema) => contains_json(schema.as_ref(), text, a.inverse),
        _ => unreachable!("only JSON checks are dispatched here"),
    }
}

fn is_json(schema: Option<&Schema>, text: &str, inv: bool) -> Verdict {
    let parsed = serde_json::from_str::<Value>(text).ok();
    let not = if inv { "not " } else { "" };
    if let (Some(value), Some(schema)) = (&parsed, schema) {
        let errors = schema.errors(value);
        let pass = errors.is_none() != inv;
        if !pass {
            let reason = match errors {
                Some(e) => format!("JSON does not conform to the provided schema. Errors: {e}"),
                None => "Output is JSON that conforms to the provided schema".to_owned(),
            };
            return Verdict {
                pass,
                score: 0.0,
                reason,
            };
        }
        return Verdict::binary(true, String::new);
    }
    Verdict::binary(parsed.is_some() != inv, || {
        format!("Expected output to {not}be valid JSON")
    })
}

fn contains_json(schema: Option<&Schema>, text: &str, inv: bool) -> Verdict {
    let Some(objects) = extract_json_objects(text) else {
        // No answer is not a verdict: it fails whatever its `not-`.
        return Verdict {
            pass: false,
            score: 0.0,
            reason: format!(
                "Output could not be searched for JSON: scanning it from every `{{` took more than {EXTRACT_BUDGET} characters and was stopped"
            ),
        };
    };
    let not = if inv { "not " } else { "" };
    let mut pass = objects.is_empty() == inv;
    let mut reason = format!("Expected output to {not}contain valid JSON");
    if let Some(schema) = schema {
        for object in &objects {
            match schema.errors(object) {
                None => {
                    pass = !inv;
                    if inv {
                        reason =
                            "Output contains JSON conforming to the provided schema".to_owned();
                    }
                    break;
                }
                Some(e) => {
                    pass = inv;
                    reason = format!("JSON does not conform to the provided schema. Errors: {e}");
                }
            }
        }
    }
    Verdict::binary(pass, || reason)
}

/// promptfoo's `extractJsonObjects`: from each `{`, count braces (in
/// strings too) and at each balance point, or at the end with the missing
/// braces added, try the text as YAML (so `{a: 1}`, trailing commas and
/// `//` comments pass); the first object that parses is taken and the scan
/// resumes after it. `None` past [`EXTRACT_BUDGET`].
pub(super) fn extract_json_objects(text: &str) -> Option<Vec<Value>> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut found = Vec::new();
    let mut spent = 0usize;
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1 != '{' {
            i += 1;
            continue;
        }
        let limit = (i + MAX_CANDIDATE_CHARS).min(chars.len());
        let (mut open, mut close, mut j) = (1usize, 0usize, i + 1);
        while j < limit && open > close {
            match chars[j].1 {
                '{' => open += 1,
                '}' => close += 1,
                _ => {}
            }
            j += 1;
            spent += 1;
            if open == close || j == chars.len() || j == i + MAX_CANDIDATE_CHARS {
                let end = chars.get(j).map_or(text.len(), |c| c.0);
                let mut candidate = text[chars[i].0..end].to_owned();
                candidate.extend(std::iter::repeat_n('}', open - close));
                spent += candidate.len();
                if spent > EXTRACT_BUDGET {
                    return None;
                }
                match crate::yaml::from_str(&slash_comments_to_hash(&candidate)) {
                    Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                        found.push(v);
                        i = j - 1;
                        break;
                    }
                    _ if open == close => break,
                    _ => {}
                }
            }
        }
        if spent > EXTRACT_BUDGET {
            return None;
        }
        i += 1;
    }
    Some(found)
}

/// promptfoo's `convertSlashCommentsToHash`: `// comment` outside quotes
/// becomes a YAML `# comment` (`//` in a URL is kept).
fn slash_comments_to_hash(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&line_comments_to_hash(line));
    }
    out
}

fn line_comments_to_hash(line: &str) -> String {
    #[derive(PartialEq)]
    enum State {
        Normal,
        Single,
        Double,
    }
    let chars: Vec<char> = line.chars().collect();
    let escaped = |i: usize| {
        let mut n = 0;
        while i > n && chars[i - 1 - n] == '\\' {
            n += 1;
        }
        n % 2 == 1
    };
    let mut state = State::Normal;
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        match state {
            State::Normal if c == '\'' && !prev.is_ascii_alphabetic() => state = State::Single,
            State::Normal if c == '"' => state = State::Double,
            State::Normal if c == '/' && next == '/' => {
                let token_start = chars[..i]
                    .iter()
                    .rposition(|c| crate::js::is_space(*c))
                    .map_or(0, |p| p + 1);
                let token: String = chars[token_start..(i + 2).min(chars.len())]
                    .iter()
                    .collect();
                if token.contains("://") {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let mut slashes = 2;
                while chars.get(i + slashes) == Some(&'/') {
                    slashes += 1;
                }
                out.extend(std::iter::repeat_n('#', slashes / 2));
                out.extend(&chars[i + slashes..]);
                return out;
            }
            State::Single if c == '\'' && !escaped(i) && !next.is_ascii_alphabetic() => {
                state = State::Normal
            }
            State::Double if c == '"' && !escaped(i) => state = State::Normal,
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn embedded_objects_are_found_in_prose() {
        let text = r#"Sure! {"a": 1} and then {"b": {"c": [1, 2]}} and, closed for it, {broken"#;
        let found = extract_json_objects(text).unwrap();
        assert_eq!(
            found,
            vec![
                json!({"a": 1}),
                json!({"b": {"c": [1, 2]}}),
                json!({"broken": null})
            ]
        );
    }

    #[test]
    fn a_text_of_unbalanced_braces_exhausts_the_budget_instead_of_a_worker() {
        // 300,000 `{`: each scan runs 100,000 characters, quadratically.
        let text = "{".repeat(300_000);
        assert_eq!(extract_json_objects(&text), None);
        // A long text with few braces is searched as usual.
        let long = format!(
            "{} {{\"a\": 1}} {}",
            "x".repeat(2_000_000),
            "y".repeat(2_000_000)
        );
        assert_eq!(extract_json_objects(&long), Some(vec![json!({"a": 1})]));
    }

    #[test]
    fn extraction_is_as_lenient_as_promptfoos() {
        assert_eq!(
            extract_json_objects("x {a: 1, b: [y]} z").unwrap(),
            vec![json!({"a": 1, "b": ["y"]})]
        );
        assert_eq!(
            extract_json_objects("{\"a\": 1 // count\n}").unwrap(),
            vec![json!({"a": 1})]
        );
        assert_eq!(
            extract_json_objects(r#"open {"a": {"b": 1}"#).unwrap(),
            vec![json!({"a": {"b": 1}})]
        );
        // Braces are counted inside strings too, so this one is cut short.
        assert!(
            extract_json_objects(r#"{"s": "}"} end"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            slash_comments_to_hash("see http://x.y // note"),
            "see http://x.y # note"
        );
    }
}
