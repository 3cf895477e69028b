//! The conciseness rewrite: the prompt without repeated sentences and filler,
//! every variable and every instruction kept. Pure.

use std::collections::HashSet;

use super::analysis::{PHRASES, normalized, phrase_matches, sentences};

/// What a phrase becomes in the rewrite; `None` keeps it (vague wording
/// needs a person to say what was meant).
fn replacement(phrase: &str, kind: &str) -> Option<&'static str> {
    match phrase {
        "in order to" => Some("to"),
        "due to the fact that" => Some("because"),
        "in the event that" => Some("if"),
        "at this point in time" => Some("now"),
        "try to" | "you might want to" => Some(""),
        _ if kind == "filler" => Some(""),
        _ => None,
    }
}

/// `prompt` with filler removed, then later copies of a sentence (4+
/// words, compared word for word) removed.
pub fn concise(prompt: &str) -> String {
    let lean = without_filler(prompt);
    let mut seen = HashSet::new();
    let repeats: Vec<(usize, usize, &str)> = sentences(&lean)
        .into_iter()
        .filter(|&(a, b)| {
            let key = normalized(&lean[a..b]);
            key.split(' ').count() >= 4 && !seen.insert(key)
        })
        .map(|(a, b)| (a, b, ""))
        .collect();
    apply(&lean, repeats)
}

fn without_filler(prompt: &str) -> String {
    let mut edits: Vec<(usize, usize, &str)> = Vec::new();
    let variables = variable_ranges(prompt);
    for (a, b, i) in phrase_matches(prompt) {
        let (phrase, kind, _) = PHRASES[i];
        let inside = |r: &(usize, usize)| a < r.1 && b > r.0;
        if variables.iter().any(inside) {
            continue;
        }
        if let Some(to) = replacement(phrase, kind) {
            edits.push((a, b, to));
        }
    }
    apply(prompt, edits)
}

/// `prompt` with each `(start, end, replacement)` made, the text tidied.
fn apply(prompt: &str, mut edits: Vec<(usize, usize, &str)>) -> String {
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(prompt.len());
    let mut at = 0;
    // Where a sentence lost its first words: the next word starts it.
    let mut marks = Vec::new();
    for (a, b, to) in edits {
        if a < at {
            continue;
        }
        out.push_str(&prompt[at..a]);
        let upper = starts_sentence(&out) && is_upper_start(&prompt[a..b]);
        if to.is_empty() {
            if upper {
                marks.push(out.len());
            }
        } else {
            push_cased(&mut out, to, upper);
        }
        at = b;
    }
    out.push_str(&prompt[at..]);
    for m in marks.into_iter().rev() {
        let rest = &out[m..];
        let skip = rest.len() - rest.trim_start_matches([' ', ',']).len();
        out.replace_range(m..m + skip, "");
        if let Some(c) = out[m..].chars().next().filter(|c| c.is_lowercase()) {
            out.replace_range(m..m + c.len_utf8(), &c.to_uppercase().to_string());
        }
    }
    tidy(&out)
}

fn is_upper_start(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

fn push_cased(out: &mut String, word: &str, upper: bool) {
    let mut chars = word.chars();
    if let (true, Some(c)) = (upper, chars.next()) {
        out.extend(c.to_uppercase());
        out.push_str(chars.as_str());
    } else {
        out.push_str(word);
    }
}

/// Whether the text so far ends where a sentence starts.
fn starts_sentence(out: &str) -> bool {
    let t = out.trim_end_matches([' ', '\t']);
    t.is_empty() || t.ends_with(['.', '!', '?', '\n', ':'])
}

fn variable_ranges(prompt: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(s) = prompt[from..].find("{{") {
        let start = from + s;
        match prompt[start..].find("}}") {
            Some(e) => {
                out.push((start, start + e + 2));
                from = start + e + 2;
            }
            None => break,
        }
    }
    out
}

/// Double spaces, spaces before punctuation, blank runs left by removals.
fn tidy(s: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    for line in s.lines() {
        let mut l = String::with_capacity(line.len());
        let indent = line.len() - line.trim_start().len();
        l.push_str(&line[..indent]);
        let mut prev_space = false;
        for c in line[indent..].chars() {
            if c == ' ' {
                if !prev_space {
                    l.push(' ');
                }
                prev_space = true;
                continue;
            }
            if matches!(c, ',' | '.' | ';' | ':' | '?' | '!') && prev_space {
                l.pop();
            }
            prev_space = false;
            l.push(c);
        }
        let l = l.trim_end().to_owned();
        // A line emptied by a removal goes; an empty line that was there stays (once).
        let was_blank = line.trim().is_empty();
        if l.trim().is_empty() && !was_blank {
            continue;
        }
        if l.is_empty() && lines.last().is_some_and(String::is_empty) {
            continue;
        }
        lines.push(l);
    }
    let mut out = lines.join("\n");
    if s.ends_with('\n') {
        out.push('\n');
    }
    out.trim_start().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimize::analysis::analyze;

    const VERBOSE: &str = "I would like you to summarize the following customer review. \
Please note that it is important that you really keep the summary very short. \
Basically, you should try to mention the product name. \
Summarize the following customer review.\n\
In order to help the support team, list the complaints.\n\
Review: \"{{review}}\" from {{ customer_name }}.";

    #[test]
    fn a_verbose_prompt_gets_shorter_with_the_same_variables_and_instructions() {
        let out = concise(VERBOSE);
        let before = analyze(VERBOSE, Some("gpt-4o"));
        let after = analyze(&out, Some("gpt-4o"));
        assert!(
            after.tokens.count + 15 < before.tokens.count,
            "{} -> {}: {out}",
            before.tokens.count,
            after.tokens.count
        );
        let names = |a: &crate::optimize::analysis::Analysis| {
            a.structure
                .variables
                .iter()
                .map(|v| v.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&before), names(&after));
        for instruction in [
            "summarize the following customer review",
            "keep the summary short",
            "mention the product name",
            "to help the support team list the complaints",
        ] {
            assert!(
                normalized(&out).contains(instruction),
                "{instruction:?} lost: {out}"
            );
        }
        assert_eq!(
            out,
            "Summarize the following customer review. Keep the summary short. \
You should mention the product name.\n\
To help the support team, list the complaints.\n\
Review: \"{{review}}\" from {{ customer_name }}."
        );
    }

    #[test]
    fn a_tight_prompt_is_left_alone() {
        let p = "Classify the sentiment of <review>{{review}}</review> as positive or negative. Respond with one word.";
        assert_eq!(concise(p), p);
    }

    #[test]
    fn filler_inside_a_variable_is_kept() {
        let p = "Answer {{ just_the_facts }} now.";
        assert_eq!(concise(p), p);
    }
}
