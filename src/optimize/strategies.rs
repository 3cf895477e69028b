//! Strategies: each turns the analysis (and, for the data-driven ones, what
//! the stored results say) into suggestions that state what they save.
//! Pure functions; [`super::OptimizeService`] runs them in parallel.

use serde::Serialize;
use serde_json::{Value, json};

use super::analysis::Analysis;
use super::rewrite;
use super::tokens;
use crate::providers::pricing::price_for;

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// The strategy that made it.
    pub strategy: &'static str,
    /// What to do.
    pub title: String,
    /// Why, with the figures.
    pub rationale: String,
    /// Prompt tokens it changes (negative: fewer).
    pub estimated_token_delta: i64,
    /// US dollars it changes per 1,000 runs of the prompt (negative: saves).
    pub estimated_cost_delta_per_1k_runs: f64,
    /// 0..1.
    pub confidence: f64,
    /// The prompt with the change made, where the strategy can make it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewritten_prompt: Option<String>,
    /// Where in the prompt, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<[usize; 2]>,
    /// The figures it rests on.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub evidence: Value,
}

/// The local strategies, in the order they are listed.
pub const LOCAL: &[&str] = &["conciseness", "structure", "few_shot"];
/// The strategies that read stored results.
pub const DATA: &[&str] = &["model_selection", "failure_focus", "caching"];

/// Prompt-token price of `model`, dollars per token.
fn input_price(model: Option<&str>) -> Option<f64> {
    let name = model?.rsplit(':').next()?;
    price_for(name).map(|p| p.input / 1e6)
}

/// Dollars per 1,000 runs for `delta` prompt tokens.
fn per_1k(delta: i64, model: Option<&str>) -> f64 {
    input_price(model).map_or(0.0, |p| delta as f64 * p * 1000.0)
}

fn price_note(model: Option<&str>) -> &'static str {
    if input_price(model).is_some() {
        ""
    } else {
        " (no list price for this model: the cost is not estimated)"
    }
}

/// Redundancy and filler removed; the rewrite.
pub fn conciseness(prompt: &str, a: &Analysis, model: Option<&str>) -> Vec<Suggestion> {
    let out = rewrite::concise(prompt);
    if out == prompt {
        return Vec::new();
    }
    let after = tokens::count(&out, model).count as i64;
    let delta = after - a.tokens.count as i64;
    if delta >= 0 {
        return Vec::new();
    }
    let removed = a
        .findings
        .iter()
        .filter(|f| matches!(f.kind, "redundancy" | "filler" | "hedging"))
        .count();
    vec![Suggestion {
        strategy: "conciseness",
        title: format!("Remove repetition and filler ({} tokens fewer)", -delta),
        rationale: format!(
            "{removed} repeated or filler passages add tokens without instructions; the rewrite keeps every variable and instruction{}.",
            price_note(model)
        ),
        estimated_token_delta: delta,
        estimated_cost_delta_per_1k_runs: per_1k(delta, model),
        confidence: 0.8,
        rewritten_prompt: Some(out),
        span: None,
        evidence: json!({"tokensBefore": a.tokens.count, "tokensAfter": after}),
    }]
}

const FORMAT_LINE: &str = "Return only the answer, with no preamble or explanation.";
const LENGTH_LINE: &str = "Keep the answer under 100 words.";

/// An explicit output format and a bound on length.
pub fn structure(prompt: &str, a: &Analysis, model: Option<&str>) -> Vec<Suggestion> {
    let mut out = Vec::new();
    let missing_format = a.structure.output_format.is_none();
    let unbounded = a.findings.iter().any(|f| f.kind == "unbounded_output");
    let mut add = |line: &str, title: &str, why: &str| {
        let rewritten = format!("{}\n\n{line}", prompt.trim_end());
        let delta = tokens::count(&rewritten, model).count as i64 - a.tokens.count as i64;
        out.push(Suggestion {
            strategy: "structure",
            title: title.to_owned(),
            rationale: format!(
                "{why} It adds {delta} prompt tokens; completions are usually the larger share of cost, so a bounded answer saves more than that{}.",
                price_note(model)
            ),
            estimated_token_delta: delta,
            estimated_cost_delta_per_1k_runs: per_1k(delta, model),
            confidence: 0.6,
            rewritten_prompt: Some(rewritten),
            span: None,
            evidence: Value::Null,
        });
    };
    if missing_format {
        add(
            FORMAT_LINE,
            "Specify the output format",
            "Nothing says what shape the answer takes: assertions are easier to pass and answers shorter when it is explicit (name the fields, or the one word expected).",
        );
    }
    if unbounded {
        add(
            LENGTH_LINE,
            "Bound the answer's length",
            "Nothing limits how long the answer is.",
        );
    }
    out
}

/// Examples above this many are trimmed.
const MAX_EXAMPLES: usize = 5;
/// Examples kept when trimming.
const KEEP_EXAMPLES: usize = 3;

/// Too many examples cost tokens on every call; none on a task with a
/// fixed output shape leaves the model guessing the shape.
pub fn few_shot(prompt: &str, a: &Analysis, model: Option<&str>) -> Vec<Suggestion> {
    let n = a.structure.examples;
    if n > MAX_EXAMPLES {
        let blocks = example_blocks(prompt);
        if blocks.len() > KEEP_EXAMPLES {
            let (cut_from, cut_to) = (blocks[KEEP_EXAMPLES].0, blocks[blocks.len() - 1].1);
            let rewritten = format!("{}{}", &prompt[..cut_from], &prompt[cut_to..]);
            let delta = tokens::count(&rewritten, model).count as i64 - a.tokens.count as i64;
            let pos = super::analysis::Positions::new(prompt);
            return vec![Suggestion {
                strategy: "few_shot",
                title: format!("Keep {KEEP_EXAMPLES} of the {n} examples"),
                rationale: format!(
                    "Beyond a few examples, more rarely changes answers but every call pays for them ({} tokens){}. Keep the most varied ones; verify with the suite.",
                    -delta,
                    price_note(model)
                ),
                estimated_token_delta: delta,
                estimated_cost_delta_per_1k_runs: per_1k(delta, model),
                confidence: 0.5,
                rewritten_prompt: Some(rewritten),
                span: Some(pos.span(cut_from, cut_to)),
                evidence: json!({"examples": n}),
            }];
        }
    }
    let task = regex_lite_any(
        prompt,
        &[
            "classify",
            "categorize",
            "label",
            "extract",
            "tag ",
            "sentiment",
        ],
    );
    if n == 0 && task && a.structure.output_format.is_some() {
        const PER_EXAMPLE: i64 = 30;
        return vec![Suggestion {
            strategy: "few_shot",
            title: "Add one or two examples of input and expected output".into(),
            rationale: format!(
                "A {} task with a fixed output shape and no example: one or two short examples make the shape unambiguous (about {PER_EXAMPLE} tokens each, an estimate){}.",
                a.structure.output_format.unwrap_or("structured"),
                price_note(model)
            ),
            estimated_token_delta: 2 * PER_EXAMPLE,
            estimated_cost_delta_per_1k_runs: per_1k(2 * PER_EXAMPLE, model),
            confidence: 0.4,
            rewritten_prompt: None,
            span: None,
            evidence: json!({"examples": 0}),
        }];
    }
    Vec::new()
}

fn regex_lite_any(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| lower.contains(w))
}

/// Byte ranges of the examples: each from its marker to the next marker,
/// the last to the end of its paragraph.
fn example_blocks(prompt: &str) -> Vec<(usize, usize)> {
    let starts = super::analysis::example_starts(prompt);
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let end = starts
                .get(i + 1)
                .copied()
                .unwrap_or_else(|| prompt[s..].find("\n\n").map_or(prompt.len(), |e| s + e));
            (s, end)
        })
        .collect()
}

/// A model's figures on this suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelStats {
    /// `openai:gpt-4o`.
    pub provider: String,
    /// `gpt-4o`.
    pub model: String,
    /// Results.
    pub results: i64,
    /// Passed / results.
    pub pass_rate: f64,
    /// Dollars per test.
    pub cost_per_test: f64,
}

/// Results a model needs on the suite to be compared.
pub const MIN_MODEL_RESULTS: i64 = 20;

/// A cheaper model whose pass rate is within `tolerance` of the current
/// one's, else a better one for about the same cost, else nothing.
pub fn model_selection(current: &str, stats: &[ModelStats], tolerance: f64) -> Vec<Suggestion> {
    let matches = |s: &ModelStats| s.model == current || s.provider == current;
    let Some(cur) = stats.iter().find(|s| matches(s)) else {
        return Vec::new();
    };
    let others: Vec<&ModelStats> = stats
        .iter()
        .filter(|s| !matches(s) && s.results >= MIN_MODEL_RESULTS)
        .collect();
    if cur.results < MIN_MODEL_RESULTS {
        return Vec::new();
    }
    let evidence = |s: &ModelStats| json!({"current": cur, "candidate": s, "tolerance": tolerance});
    let cheaper = others
        .iter()
        .filter(|s| s.cost_per_test < cur.cost_per_test && s.pass_rate >= cur.pass_rate - tolerance)
        .min_by(|a, b| a.cost_per_test.total_cmp(&b.cost_per_test));
    if let Some(s) = cheaper {
        let delta = (s.cost_per_test - cur.cost_per_test) * 1000.0;
        return vec![Suggestion {
            strategy: "model_selection",
            title: format!("Use {} instead of {}", s.provider, cur.provider),
            rationale: format!(
                "On this suite {} passes {:.1} % of {} results against {:.1} % of {} for {} (within {:.1} points) at ${:.6} per test instead of ${:.6}.",
                s.model,
                s.pass_rate * 100.0,
                s.results,
                cur.pass_rate * 100.0,
                cur.results,
                cur.model,
                tolerance * 100.0,
                s.cost_per_test,
                cur.cost_per_test
            ),
            estimated_token_delta: 0,
            estimated_cost_delta_per_1k_runs: delta,
            confidence: confidence(s.results.min(cur.results)),
            rewritten_prompt: None,
            span: None,
            evidence: evidence(s),
        }];
    }
    let better = others
        .iter()
        .filter(|s| {
            s.cost_per_test <= cur.cost_per_test * 1.1 && s.pass_rate > cur.pass_rate + tolerance
        })
        .max_by(|a, b| a.pass_rate.total_cmp(&b.pass_rate));
    if let Some(s) = better {
        return vec![Suggestion {
            strategy: "model_selection",
            title: format!(
                "Use {} for a higher pass rate at about the same cost",
                s.provider
            ),
            rationale: format!(
                "On this suite {} passes {:.1} % of {} results against {:.1} % for {}, at ${:.6} per test instead of ${:.6}.",
                s.model,
                s.pass_rate * 100.0,
                s.results,
                cur.pass_rate * 100.0,
                cur.model,
                s.cost_per_test,
                cur.cost_per_test
            ),
            estimated_token_delta: 0,
            estimated_cost_delta_per_1k_runs: (s.cost_per_test - cur.cost_per_test) * 1000.0,
            confidence: confidence(s.results.min(cur.results)),
            rewritten_prompt: None,
            span: None,
            evidence: evidence(s),
        }];
    }
    Vec::new()
}

/// More results, more confidence: 0.5 at 20, 0.9 at 2,000 and beyond.
fn confidence(results: i64) -> f64 {
    let r = (results.max(1) as f64).log10();
    (0.5 + (r - 1.3) * 0.2).clamp(0.3, 0.9)
}

/// Failing results of this prompt grouped by reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureGroup {
    /// The reason with quoted values and numbers masked.
    pub reason: String,
    /// Failing results.
    pub count: i64,
    /// Distinct tests (labels) that fail this way, a few.
    pub tests: Vec<String>,
}

/// The reasons most failures share, and the tests they hit.
pub fn failure_focus(groups: &[FailureGroup], results: i64) -> Vec<Suggestion> {
    let failing: i64 = groups.iter().map(|g| g.count).sum();
    let Some(top) = groups.first() else {
        return Vec::new();
    };
    if failing == 0 {
        return Vec::new();
    }
    let share = top.count as f64 / failing as f64;
    let others: Vec<String> = groups
        .iter()
        .skip(1)
        .take(2)
        .map(|g| format!("\"{}\" ({})", g.reason, g.count))
        .collect();
    vec![Suggestion {
        strategy: "failure_focus",
        title: format!("Fix what most failures share: {}", top.reason),
        rationale: format!(
            "{failing} of {results} recent results failed; {:.0} % of the failures say \"{}\", in tests {}.{}",
            share * 100.0,
            top.reason,
            top.tests.join(", "),
            if others.is_empty() {
                String::new()
            } else {
                format!(" Next: {}.", others.join(", "))
            }
        ),
        estimated_token_delta: 0,
        estimated_cost_delta_per_1k_runs: 0.0,
        confidence: (0.4 + share * 0.5).min(0.9),
        rewritten_prompt: None,
        span: None,
        evidence: json!({"failing": failing, "results": results, "groups": groups}),
    }]
}

/// A failure reason with quoted values and numbers masked, so the same
/// assertion failing on different tests groups together.
pub fn mask_reason(reason: &str) -> String {
    use std::sync::LazyLock;
    static QUOTED: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r#""[^"]*"|'[^']*'|\d+(?:\.\d+)?"#).unwrap());
    let first_line = reason.lines().next().unwrap_or_default();
    let cut: String = first_line.chars().take(200).collect();
    QUOTED
        .replace_all(&cut, |c: &regex::Captures<'_>| {
            if c[0].starts_with(['"', '\'']) {
                "\"…\""
            } else {
                "N"
            }
        })
        .into_owned()
}

/// Calls of this prompt repeated with the same test and provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepeatStats {
    /// Calls made (not served from the cache).
    pub calls: i64,
    /// Of those, repeats of an earlier identical call.
    pub repeated: i64,
    /// Repeated groups whose outputs were all identical.
    pub identical_groups: i64,
    /// Repeated groups whose outputs differed.
    pub varying_groups: i64,
    /// Dollars spent on the calls.
    pub cost_usd: f64,
}

/// The response cache where identical calls repeat; temperature 0 where
/// the same call gives different answers.
pub fn caching(r: &RepeatStats) -> Vec<Suggestion> {
    let mut out = Vec::new();
    if r.calls == 0 || r.repeated == 0 {
        return out;
    }
    let share = r.repeated as f64 / r.calls as f64;
    let per_call = r.cost_usd / r.calls as f64;
    if r.identical_groups >= r.varying_groups {
        out.push(Suggestion {
            strategy: "caching",
            title: "Serve repeated identical calls from the response cache".into(),
            rationale: format!(
                "{} of {} recent calls ({:.0} %) repeated an earlier call with the same test and provider, and their answers were identical in {} of {} cases: run with the cache on (`cache: true`, the default).",
                r.repeated,
                r.calls,
                share * 100.0,
                r.identical_groups,
                r.identical_groups + r.varying_groups
            ),
            estimated_token_delta: 0,
            estimated_cost_delta_per_1k_runs: -share * per_call * 1000.0,
            confidence: 0.7,
            rewritten_prompt: None,
            span: None,
            evidence: json!(r),
        });
    }
    if r.varying_groups > 0 {
        out.push(Suggestion {
            strategy: "caching",
            title: "Set temperature 0 for repeatable answers".into(),
            rationale: format!(
                "The same call gave different answers in {} of {} repeated cases: with deterministic assertions this shows up as flaky tests.",
                r.varying_groups,
                r.identical_groups + r.varying_groups
            ),
            estimated_token_delta: 0,
            estimated_cost_delta_per_1k_runs: 0.0,
            confidence: 0.5,
            rewritten_prompt: None,
            span: None,
            evidence: json!(r),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::analysis::analyze;

    fn stats(model: &str, results: i64, pass_rate: f64, cost: f64) -> ModelStats {
        ModelStats {
            provider: format!("openai:{model}"),
            model: model.into(),
            results,
            pass_rate,
            cost_per_test: cost,
        }
    }

    #[test]
    fn a_cheaper_model_within_tolerance_is_suggested_with_its_cost_delta() {
        let s = [
            stats("gpt-4o", 400, 0.92, 0.006),
            stats("gpt-4o-mini", 400, 0.91, 0.0004),
            stats("gpt-3.5-turbo", 400, 0.80, 0.0002),
        ];
        let out = model_selection("gpt-4o", &s, 0.02);
        assert_eq!(out.len(), 1);
        assert!(out[0].title.contains("gpt-4o-mini"), "{}", out[0].title);
        assert!((out[0].estimated_cost_delta_per_1k_runs - (0.0004 - 0.006) * 1000.0).abs() < 1e-9);
        // None within tolerance, none better: nothing.
        assert!(model_selection("gpt-4o", &s[..1], 0.02).is_empty());
        let worse = [
            stats("gpt-4o", 400, 0.92, 0.006),
            stats("gpt-3.5-turbo", 400, 0.80, 0.0002),
        ];
        assert!(model_selection("gpt-4o", &worse, 0.02).is_empty());
        // Too few results to compare: nothing.
        let few = [
            stats("gpt-4o", 400, 0.92, 0.006),
            stats("gpt-4o-mini", 5, 1.0, 0.0004),
        ];
        assert!(model_selection("gpt-4o", &few, 0.02).is_empty());
    }

    #[test]
    fn a_better_model_for_the_same_cost_is_suggested() {
        let s = [stats("a", 100, 0.70, 0.001), stats("b", 100, 0.90, 0.00105)];
        let out = model_selection("a", &s, 0.02);
        assert_eq!(out.len(), 1);
        assert!(out[0].title.contains("higher pass rate"));
    }

    #[test]
    fn conciseness_rewrites_and_prices_the_savings() {
        let p = "Please note that you should really, really summarize {{text}}. Please note that you should really, really summarize {{text}}.";
        let a = analyze(p, Some("gpt-4o"));
        let s = conciseness(p, &a, Some("gpt-4o"));
        assert_eq!(s.len(), 1);
        let delta = s[0].estimated_token_delta;
        assert!(delta < 0);
        let after =
            tokens::count(s[0].rewritten_prompt.as_deref().unwrap(), Some("gpt-4o")).count as i64;
        assert_eq!(after - a.tokens.count as i64, delta);
        assert!(
            (s[0].estimated_cost_delta_per_1k_runs - delta as f64 * 2.5e-6 * 1000.0).abs() < 1e-12
        );
        // A model without a list price: the cost is not estimated.
        let s = conciseness(p, &a, Some("mock:x"));
        assert_eq!(s[0].estimated_cost_delta_per_1k_runs, 0.0);
    }

    #[test]
    fn structure_adds_format_and_bound_only_when_missing() {
        let p = "Tell me about {{topic}}.";
        let out = structure(p, &analyze(p, None), None);
        assert_eq!(out.len(), 2);
        assert!(
            out[0]
                .rewritten_prompt
                .as_deref()
                .unwrap()
                .ends_with(FORMAT_LINE)
        );
        let p = "Return JSON {\"a\": string} about <t>{{topic}}</t> in at most 2 sentences.";
        assert!(structure(p, &analyze(p, None), None).is_empty());
    }

    #[test]
    fn few_shot_trims_many_examples_and_asks_for_some_when_none() {
        let mut p =
            String::from("Classify the review as positive or negative. Respond with one word.\n\n");
        for i in 0..8 {
            p.push_str(&format!(
                "Example {i}\nInput: review {i}\nOutput: positive\n"
            ));
        }
        p.push_str("\nReview: <r>{{review}}</r>");
        let a = analyze(&p, None);
        let s = few_shot(&p, &a, None);
        assert_eq!(s.len(), 1, "{:?}", a.structure);
        let out = s[0].rewritten_prompt.as_deref().unwrap();
        assert!(
            out.contains("Example 2") && !out.contains("Example 3"),
            "{out}"
        );
        assert!(out.ends_with("Review: <r>{{review}}</r>"));
        let p = "Classify <r>{{review}}</r> as positive or negative. Respond with one word.";
        let s = few_shot(p, &analyze(p, None), None);
        assert_eq!(s.len(), 1);
        assert!(s[0].title.contains("Add"));
    }

    #[test]
    fn failure_focus_names_the_shared_reason() {
        assert_eq!(
            mask_reason("Expected output to contain \"refund\" (score 0.25)"),
            "Expected output to contain \"…\" (score N)"
        );
        let g = [
            FailureGroup {
                reason: "Expected output to contain \"…\"".into(),
                count: 6,
                tests: vec!["t1".into(), "t2".into()],
            },
            FailureGroup {
                reason: "Output is not valid JSON".into(),
                count: 2,
                tests: vec!["t3".into()],
            },
        ];
        let s = failure_focus(&g, 40);
        assert_eq!(s.len(), 1);
        assert!(s[0].rationale.contains("8 of 40"), "{}", s[0].rationale);
        assert!(s[0].rationale.contains("75 %"));
        assert!(failure_focus(&[], 40).is_empty());
    }

    #[test]
    fn caching_hints_follow_the_repeats() {
        assert!(caching(&RepeatStats::default()).is_empty());
        let r = RepeatStats {
            calls: 100,
            repeated: 50,
            identical_groups: 40,
            varying_groups: 10,
            cost_usd: 1.0,
        };
        let s = caching(&r);
        assert_eq!(s.len(), 2);
        assert!((s[0].estimated_cost_delta_per_1k_runs + 5.0).abs() < 1e-9);
    }
}
