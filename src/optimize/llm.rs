//! The optional LLM rewrite: the configured model (`OPTIMIZE_PROVIDER`) is
//! asked, with a meta-prompt that carries the analysis' findings, for a
//! shorter, clearer prompt. Its answer is accepted only if it keeps every
//! variable of the original.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::analysis::{Analysis, analyze};
use super::strategies::Suggestion;
use crate::providers::Provider;

/// How long the model may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Findings quoted in the meta-prompt at most.
const FINDINGS: usize = 12;

/// The meta-prompt for `prompt`.
pub fn meta_prompt(prompt: &str, a: &Analysis) -> String {
    let mut findings = String::new();
    for f in a.findings.iter().take(FINDINGS) {
        findings.push_str(&format!("- {}: {}\n", f.kind, f.message));
    }
    if findings.is_empty() {
        findings.push_str("- none found\n");
    }
    format!(
        "You improve prompts for LLM applications. Rewrite the prompt between <prompt> tags so it \
costs fewer tokens and is clearer, without changing what it asks for.\n\
Rules: keep every template variable ({{{{name}}}}) exactly as written; keep every instruction; \
remove repetition and filler; state the output format and a length limit if missing; \
return only the rewritten prompt, with no commentary and no tags.\n\n\
Findings of an automatic analysis:\n{findings}\n<prompt>\n{prompt}\n</prompt>"
    )
}

/// The rewrite as a suggestion, or why there is none.
pub async fn rewrite(
    provider: &dyn Provider,
    prompt: &str,
    a: &Analysis,
) -> Result<Vec<Suggestion>, String> {
    let asked = meta_prompt(prompt, a);
    let answer = tokio::time::timeout(TIMEOUT, provider.complete(&asked))
        .await
        .map_err(|_| {
            format!(
                "{} did not answer within {}s",
                provider.id(),
                TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{} failed: {e}", provider.id()))?;
    let text = clean(&answer.output);
    if text.is_empty() {
        return Err(format!("{} answered with an empty prompt", provider.id()));
    }
    let model = Some(provider.model());
    let after = analyze(&text, model);
    let names = |a: &Analysis| -> BTreeSet<String> {
        a.structure
            .variables
            .iter()
            .map(|v| v.name.clone())
            .collect()
    };
    let (before_vars, after_vars) = (names(a), names(&after));
    if before_vars != after_vars {
        let lost: Vec<&String> = before_vars.difference(&after_vars).collect();
        let added: Vec<&String> = after_vars.difference(&before_vars).collect();
        return Err(format!(
            "the rewrite changed the variables (lost {lost:?}, added {added:?}); not suggested"
        ));
    }
    let delta = after.tokens.count as i64 - a.tokens.count as i64;
    let price = crate::providers::pricing::price_for(provider.model());
    Ok(vec![Suggestion {
        strategy: "llm_rewrite",
        title: format!(
            "Rewrite by {} ({} tokens {})",
            provider.id(),
            delta.abs(),
            if delta <= 0 { "fewer" } else { "more" }
        ),
        rationale: format!(
            "{} rewrote the prompt from the analysis' {} findings; variables kept. Verify it with the suite before adopting it.",
            provider.id(),
            a.findings.len()
        ),
        estimated_token_delta: delta,
        estimated_cost_delta_per_1k_runs: price
            .map_or(0.0, |p| delta as f64 * p.input / 1e6 * 1000.0),
        confidence: 0.5,
        rewritten_prompt: Some(text),
        span: None,
        evidence: json!({
            "model": provider.model(),
            "callCostUsd": answer.cost_usd,
            "callTokens": {"input": answer.usage.input, "output": answer.usage.output},
        }),
    }])
}

/// The answer without a code fence or `<prompt>` tags around it.
fn clean(output: &str) -> String {
    let mut t = output.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let rest = rest.split_once('\n').map_or("", |(_, r)| r);
        t = rest.strip_suffix("```").unwrap_or(rest).trim();
    }
    if let Some(rest) = t.strip_prefix("<prompt>") {
        t = rest.strip_suffix("</prompt>").unwrap_or(rest).trim();
    }
    t.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_unwrapped() {
        assert_eq!(clean("```text\nSay {{x}}.\n```"), "Say {{x}}.");
        assert_eq!(clean(" <prompt>\nSay {{x}}.\n</prompt> "), "Say {{x}}.");
        assert_eq!(clean("Say {{x}}."), "Say {{x}}.");
    }

    #[test]
    fn the_meta_prompt_carries_the_prompt_and_findings() {
        let p = "Please tell me about {{topic}}.";
        let m = meta_prompt(p, &analyze(p, None));
        assert!(m.contains("<prompt>\nPlease tell me about {{topic}}.\n</prompt>"));
        assert!(m.contains("- filler:"));
        assert!(m.contains("{{name}}"));
    }
}
