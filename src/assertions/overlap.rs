//! N-gram overlap scores: `rouge-n` (ROUGE-1 F-measure) and `bleu` (BLEU-4).

use std::collections::HashMap;

/// n-gram counts; foldhash because SipHash was half of BLEU's time.
type Counts<'a> = HashMap<&'a [&'a str], usize, foldhash::fast::RandomState>;

use super::{Assertion, Check, Verdict};
use crate::js::{number as js_number, to_fixed};

pub(super) fn evaluate(a: &Assertion, text: &str) -> Verdict {
    let inv = a.inverse;
    match &a.check {
        Check::RougeN {
            reference,
            threshold,
        } => {
            let score = rouge_1(text, reference);
            let pass = (score >= *threshold) != inv;
            let (s, t) = (to_fixed(score, 2), js_number(*threshold));
            let at_least = score >= *threshold;
            Verdict {
                pass,
                score: if inv { 1.0 - score } else { score },
                reason: if at_least {
                    format!("ROUGE-N score {s} is greater than or equal to threshold {t}")
                } else {
                    format!("ROUGE-N score {s} is less than threshold {t}")
                },
            }
        }
        Check::Bleu {
            references,
            threshold,
        } => {
            let score = bleu_4(text, references);
            let pass = (score >= *threshold) != inv;
            let direction = if inv { "greater" } else { "less" };
            let mut v = Verdict::binary(pass, || {
                format!(
                    "BLEU score {} is {direction} than threshold {}",
                    to_fixed(score, 4),
                    js_number(*threshold)
                )
            });
            v.score = if inv { 1.0 - score } else { score };
            v
        }
        _ => unreachable!("only overlap checks are dispatched here"),
    }
}

/// ROUGE-1 F1 over lowercased Treebank-style tokens, with clipped counts.
pub(super) fn rouge_1(candidate: &str, reference: &str) -> f64 {
    let cand = tokenize(&candidate.to_lowercase());
    let refs = tokenize(&reference.to_lowercase());
    if cand.is_empty() || refs.is_empty() {
        return 0.0;
    }
    let (cand, refs): (Vec<&str>, Vec<&str>) = (
        cand.iter().map(String::as_str).collect(),
        refs.iter().map(String::as_str).collect(),
    );
    let matched = clipped_matches(&counts(&cand, 1), &counts(&refs, 1)) as f64;
    if matched == 0.0 {
        return 0.0;
    }
    let precision = matched / cand.len() as f64;
    let recall = matched / refs.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// promptfoo's BLEU-4: uniform weights over the n-gram orders the
/// candidate is long enough to have (renormalised), clipped counts against
/// the best reference, 1e-7 for a zero precision, and a brevity penalty
/// against the reference closest in length (the shorter on a tie).
pub(super) fn bleu_4(candidate: &str, references: &[String]) -> f64 {
    let words = |s: &str| -> Vec<String> {
        crate::js::trim(&s.to_lowercase())
            .split(crate::js::is_space)
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if crate::js::trim(candidate).is_empty() || references.is_empty() {
        return 0.0;
    }
    let cand_owned = words(candidate);
    let refs_owned: Vec<Vec<String>> = references.iter().map(|r| words(r)).collect();
    let cand: Vec<&str> = cand_owned.iter().map(String::as_str).collect();
    let refs: Vec<Vec<&str>> = refs_owned
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let c = cand.len();
    let closest = refs.iter().map(Vec::len).reduce(|prev, curr| {
        let (dc, dp) = (curr.abs_diff(c), prev.abs_diff(c));
        if dc < dp || (dc == dp && curr < prev) {
            curr
        } else {
            prev
        }
    });
    let closest = closest.unwrap_or(0) as f64;
    let mut usable: Vec<f64> = Vec::with_capacity(4);
    for n in 1..=4 {
        if n > c {
            continue;
        }
        let cand_grams = counts(&cand, n);
        let best = refs
            .iter()
            .map(|r| clipped_matches(&cand_grams, &counts(r, n)))
            .max()
            .unwrap_or(0);
        usable.push(best as f64 / (c - n + 1) as f64);
    }
    if usable.is_empty() {
        return 0.0;
    }
    let weight = 1.0 / usable.len() as f64;
    let log_sum: f64 = usable
        .iter()
        .map(|p| weight * (if *p == 0.0 { 1e-7 } else { *p }).ln())
        .sum();
    let brevity = if c as f64 > closest {
        1.0
    } else {
        (1.0 - closest / c as f64).exp()
    };
    brevity * log_sum.exp()
}

/// Counts of each contiguous `n`-word window, the window itself as key.
fn counts<'a>(words: &'a [&'a str], n: usize) -> Counts<'a> {
    let mut m = Counts::default();
    if n == 0 || n > words.len() {
        return m;
    }
    for gram in words.windows(n) {
        *m.entry(gram).or_insert(0) += 1;
    }
    m
}

fn clipped_matches(cand: &Counts<'_>, reference: &Counts<'_>) -> usize {
    cand.iter()
        .map(|(g, n)| (*n).min(reference.get(g).copied().unwrap_or(0)))
        .sum()
}

/// A Penn-Treebank-style word tokenizer: punctuation and clitics become
/// their own tokens ("don't" -> "do n't", "end." -> "end .").
fn tokenize(text: &str) -> Vec<String> {
    let mut spaced = String::with_capacity(text.len() + 16);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        match c {
            ',' | ':' if next.is_some_and(|n| n.is_ascii_digit()) => spaced.push(c),
            ',' | ':' | ';' | '@' | '#' | '$' | '%' | '&' | '?' | '!' | '(' | ')' | '[' | ']'
            | '{' | '}' | '<' | '>' | '"' => {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            }
            _ => spaced.push(c),
        }
    }
    let mut tokens = Vec::new();
    for word in spaced.split_whitespace() {
        split_word(word, &mut tokens);
    }
    tokens
}

/// Splits a trailing period and English clitics off one word.
fn split_word(word: &str, out: &mut Vec<String>) {
    let (body, period) = match word.strip_suffix('.') {
        // Keep "..." and abbreviations like "u.s." whole.
        Some(b) if !b.is_empty() && !b.contains('.') => (b, true),
        _ => (word, false),
    };
    let clitic = ["n't", "'ll", "'re", "'ve", "'s", "'m", "'d"]
        .iter()
        .find(|c| body.len() > c.len() && body.ends_with(**c));
    match clitic {
        Some(c) => {
            out.push(body[..body.len() - c.len()].to_owned());
            out.push((*c).to_owned());
        }
        None => out.push(body.to_owned()),
    }
    if period {
        out.push(".".to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_splits_punctuation_and_clitics() {
        assert_eq!(
            tokenize("i don't know, it's 1,000 dollars."),
            [
                "i", "do", "n't", "know", ",", "it", "'s", "1,000", "dollars", "."
            ]
        );
    }

    #[test]
    fn rouge_1_is_the_f_measure_of_unigram_overlap() {
        assert_eq!(rouge_1("The cat sat", "the cat sat"), 1.0);
        // 2 of 3 candidate and 2 of 4 reference tokens: P=2/3, R=1/2.
        let f = rouge_1("the cat ran", "the cat sat down");
        assert!(
            (f - 2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5)).abs() < 1e-12,
            "{f}"
        );
        assert_eq!(rouge_1("dogs", "cats"), 0.0);
    }

    #[test]
    fn bleu_matches_the_reference_formula() {
        let r = vec!["the quick brown fox jumps over the lazy dog".to_owned()];
        assert!((bleu_4("the quick brown fox jumps over the lazy dog", &r) - 1.0).abs() < 1e-12);
        // Shorter candidate: brevity penalty exp(1 - 9/4) on top of the precisions.
        let short = bleu_4("the quick brown fox", &r);
        let expected = (1.0f64 - 9.0 / 4.0).exp();
        assert!((short - expected).abs() < 1e-9, "{short} vs {expected}");
        // No 4-gram in common: smoothed precision drives the score near zero.
        assert!(bleu_4("fox dog the quick", &r) < 0.05);
    }
}
