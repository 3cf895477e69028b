//! What a prompt is made of and what is wrong with it: pure functions over
//! its text. Every finding carries its location as a character span
//! (`[start, end)`, in Unicode scalar values, as an editor counts) and a
//! severity.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::tokens::{self, TokenCount};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely costs tokens or quality.
    Warning,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// `redundancy`, `filler`, `hedging`, `vague`, `conflict`,
    /// `no_output_format`, `unbounded_output`, `injection`, `no_role_separation`.
    pub kind: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// What and why, for a person.
    pub message: String,
    /// Where, in characters; none for what is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<[usize; 2]>,
}

/// A template variable and where it sits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    /// Its name (`{{ name }}`).
    pub name: String,
    /// Where, in characters.
    pub span: [usize; 2],
    /// Whether quotes, backticks, brackets or tags enclose it.
    pub delimited: bool,
}

/// The prompt's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Structure {
    /// Headings, `Label:` lines and XML-style sections.
    pub sections: usize,
    /// List items.
    pub list_items: usize,
    /// Worked examples (`Example`, `Input:`/`Output:`, `Q:`/`A:`).
    pub examples: usize,
    /// The output format asked for (`json`, `markdown`, `list`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<&'static str>,
    /// Whether the output's length is bounded.
    pub length_limit: bool,
    /// Whether instructions and input are in separate roles.
    pub role_separation: bool,
    /// Template variables, in order.
    pub variables: Vec<Variable>,
}

/// Everything the analyzers found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    /// Tokens for the target model.
    pub tokens: TokenCount,
    /// Characters.
    pub chars: usize,
    /// Words.
    pub words: usize,
    /// Sentences.
    pub sentences: usize,
    /// Shape.
    pub structure: Structure,
    /// Problems, in text order (missing things first).
    pub findings: Vec<Finding>,
}

/// Findings of one kind kept at most (a pathological prompt stays readable).
const MAX_PER_KIND: usize = 25;

/// Analyzes `prompt` for `model`.
pub fn analyze(prompt: &str, model: Option<&str>) -> Analysis {
    let pos = Positions::new(prompt);
    let sentences = sentences(prompt);
    let structure = structure(prompt, &pos);
    let mut findings = Vec::new();
    missing(&structure, &mut findings);
    redundancy(prompt, &sentences, &pos, &mut findings);
    phrases(prompt, &pos, &mut findings);
    conflicts(prompt, &pos, &mut findings);
    injection(&structure, &mut findings);
    findings.sort_by_key(|f| f.span.map_or(0, |s| s[0] + 1));
    Analysis {
        tokens: tokens::count(prompt, model),
        chars: pos.chars,
        words: WORD.find_iter(prompt).count(),
        sentences: sentences.len(),
        structure,
        findings,
    }
}

/// Byte offsets to character offsets.
pub(super) struct Positions {
    /// Byte offset of each char boundary, ascending (ASCII text: the identity).
    starts: Option<Vec<usize>>,
    chars: usize,
}

impl Positions {
    pub(super) fn new(text: &str) -> Self {
        if text.is_ascii() {
            return Self {
                starts: None,
                chars: text.len(),
            };
        }
        let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        Self {
            chars: starts.len(),
            starts: Some(starts),
        }
    }

    fn at(&self, byte: usize) -> usize {
        match &self.starts {
            None => byte,
            Some(s) => s.partition_point(|&b| b < byte),
        }
    }

    pub(super) fn span(&self, start: usize, end: usize) -> [usize; 2] {
        [self.at(start), self.at(end)]
    }
}

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[\p{L}\p{N}']+").unwrap());
static VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([A-Za-z_][\w.]*)\s*(?:\|[^}]*)?\}\}|\{%.*?%\}").unwrap());
static HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(?:#{1,6}\s+\S.*|[A-Z][A-Za-z /]{1,40}:\s*)$|<([a-z_]+)>[\s\S]*?</([a-z_]+)>")
        .unwrap()
});
static LIST_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*(?:[-*•]|\d{1,3}[.)])\s+\S").unwrap());
static EXAMPLE_HEADING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mi)^[ \t]*(?:#+[ \t]*)?example\b").unwrap());
static EXAMPLE_INPUT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?mi)^[ \t]*(?:input|q|user)[ \t]*:").unwrap());

/// Where each worked example starts (byte offsets): at its `Example`
/// heading, or at its `Input:` / `Q:` / `user:` line when there are none.
pub(super) fn example_starts(prompt: &str) -> Vec<usize> {
    let headings: Vec<usize> = EXAMPLE_HEADING
        .find_iter(prompt)
        .map(|m| m.start())
        .collect();
    if !headings.is_empty() {
        return headings;
    }
    EXAMPLE_INPUT.find_iter(prompt).map(|m| m.start()).collect()
}

static ROLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?mi)^\s*(?:system|user|assistant)\s*:|^\s*\[\s*\{\s*.role.").unwrap()
});
static LENGTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)(?:\s+or\s+fewer)?\s+(?:words?|sentences?|paragraphs?|bullets?|bullet points?|lines?|items?|characters?|tokens?|points?)|at most|no more than|maximum of|max(?:imum)?\s+\d+|under\s+\d+|less than\s+\d+|fewer than\s+\d+|one word|single word|yes or no|concise|brief|briefly|short)\b",
    )
    .unwrap()
});

/// (pattern, format name), first match wins.
static FORMATS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r"(?i)\bjson\b", "json"),
        (r"(?i)\byaml\b", "yaml"),
        (r"(?i)\bcsv\b", "csv"),
        (r"(?i)\bxml\b|<output>", "xml"),
        (r"(?i)\bmarkdown\b|\btable\b", "markdown"),
        (r"(?i)\bbullet|\bnumbered list\b|\bas a list\b", "list"),
        (
            r"(?i)\b(?:one|single) word\b|\byes or no\b|\brespond (?:only )?with\b|\banswer (?:only )?with\b|\breply (?:only )?with\b",
            "fixed answer",
        ),
        (r"(?i)\bformat\b", "described"),
    ]
    .into_iter()
    .map(|(p, name)| (Regex::new(p).unwrap(), name))
    .collect()
});

/// Sentences as byte ranges: split at `.`, `!`, `?` before whitespace and at
/// line breaks; blank pieces dropped.
pub(super) fn sentences(text: &str) -> Vec<(usize, usize)> {
    static END: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[.!?]+(?:\s+|$)|\n+").unwrap());
    let mut out = Vec::new();
    let mut start = 0;
    for m in END.find_iter(text) {
        push_trimmed(text, start, m.end(), &mut out);
        start = m.end();
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((start + lead, end - trail));
    }
}

/// A sentence reduced to its words, lower case.
pub(super) fn normalized(s: &str) -> String {
    WORD.find_iter(s)
        .map(|w| w.as_str().to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

fn structure(prompt: &str, pos: &Positions) -> Structure {
    let variables = VARIABLE
        .captures_iter(prompt)
        .filter_map(|c| {
            let name = c.get(1)?;
            let whole = c.get(0)?;
            Some(Variable {
                name: name.as_str().to_owned(),
                span: pos.span(whole.start(), whole.end()),
                delimited: delimited(prompt, whole.start(), whole.end()),
            })
        })
        .collect();
    Structure {
        sections: HEADING.find_iter(prompt).count(),
        list_items: LIST_ITEM.find_iter(prompt).count(),
        examples: example_starts(prompt).len(),
        output_format: FORMATS
            .iter()
            .find(|(r, _)| r.is_match(prompt))
            .map(|(_, name)| *name),
        length_limit: LENGTH.is_match(prompt),
        role_separation: ROLE.is_match(prompt),
        variables,
    }
}

/// Whether the text around `[start, end)` encloses it: a quote, backtick,
/// bracket or tag right before (spaces and line breaks aside) and its
/// closer right after.
fn delimited(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].trim_end();
    let after = text[end..].trim_start();
    let pairs = [
        ("\"", "\""),
        ("'", "'"),
        ("`", "`"),
        ("«", "»"),
        ("“", "”"),
        ("[", "]"),
        ("(", ")"),
        ("{", "}"),
    ];
    if pairs
        .iter()
        .any(|(open, close)| before.ends_with(open) && after.starts_with(close))
    {
        return true;
    }
    // <tag>{{x}}</tag>
    before.ends_with('>') && after.starts_with("</")
}

fn missing(s: &Structure, out: &mut Vec<Finding>) {
    if s.output_format.is_none() {
        out.push(Finding {
            kind: "no_output_format",
            severity: Severity::Warning,
            message: "No output format is specified: say exactly what to return (JSON with named fields, a list, one word), so answers can be checked and stay short.".into(),
            span: None,
        });
    }
    let fixed = matches!(s.output_format, Some("fixed answer"));
    if !s.length_limit && !fixed {
        out.push(Finding {
            kind: "unbounded_output",
            severity: Severity::Warning,
            message: "Nothing bounds the answer's length: completion tokens are usually the larger cost; give a limit (\"in at most 3 sentences\").".into(),
            span: None,
        });
    }
    if !s.role_separation && !s.variables.is_empty() {
        out.push(Finding {
            kind: "no_role_separation",
            severity: Severity::Info,
            message: "Instructions and input share one message: put the instructions in a system message and the input in the user message.".into(),
            span: None,
        });
    }
}

/// Repeated sentences (4+ words), then repeated 6-word runs elsewhere.
fn redundancy(prompt: &str, sentences: &[(usize, usize)], pos: &Positions, out: &mut Vec<Finding>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut repeated = vec![false; sentences.len()];
    let mut n = 0;
    for (i, &(a, b)) in sentences.iter().enumerate() {
        let key = normalized(&prompt[a..b]);
        if key.split(' ').count() < 4 {
            continue;
        }
        match seen.get(&key) {
            Some(&first) => {
                repeated[i] = true;
                if n < MAX_PER_KIND {
                    n += 1;
                    out.push(Finding {
                        kind: "redundancy",
                        severity: Severity::Warning,
                        message: format!(
                            "This sentence repeats sentence {} word for word.",
                            first + 1
                        ),
                        span: Some(pos.span(a, b)),
                    });
                }
            }
            None => {
                seen.insert(key, i);
            }
        }
    }
    // 6-word runs repeated outside the repeated sentences.
    const N: usize = 6;
    let words: Vec<(usize, usize, String)> = sentences
        .iter()
        .zip(&repeated)
        .filter(|(_, r)| !**r)
        .flat_map(|(&(a, b), _)| {
            WORD.find_iter(&prompt[a..b])
                .map(move |w| (a + w.start(), a + w.end(), w.as_str().to_lowercase()))
        })
        .collect();
    let mut grams: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut last_flagged_end = 0;
    let mut k = 0;
    for i in 0..words.len().saturating_sub(N - 1) {
        let gram = &words[i..i + N];
        let key: Vec<&str> = gram.iter().map(|w| w.2.as_str()).collect();
        let first = *grams.entry(key).or_insert(i);
        if first != i && gram[0].0 >= last_flagged_end && k < MAX_PER_KIND {
            k += 1;
            last_flagged_end = gram[N - 1].1;
            out.push(Finding {
                kind: "redundancy",
                severity: Severity::Info,
                message: format!(
                    "\"{}\" was already said.",
                    &prompt[gram[0].0..gram[N - 1].1]
                ),
                span: Some(pos.span(gram[0].0, gram[N - 1].1)),
            });
        }
    }
}

/// (phrase, kind, what to do). Matched on word boundaries, any case.
pub(super) const PHRASES: &[(&str, &str, &str)] = &[
    ("please note that", "filler", "drop it"),
    ("it is important to note that", "filler", "drop it"),
    (
        "it is important that you",
        "filler",
        "state the instruction",
    ),
    ("it is important that", "filler", "drop it"),
    ("it should be noted that", "filler", "drop it"),
    ("i would like you to", "filler", "state the instruction"),
    ("i want you to", "filler", "state the instruction"),
    ("could you please", "filler", "state the instruction"),
    ("can you please", "filler", "state the instruction"),
    ("please", "filler", "drop it"),
    ("kindly", "filler", "drop it"),
    ("basically", "filler", "drop it"),
    ("essentially", "filler", "drop it"),
    ("actually", "filler", "drop it"),
    ("really", "filler", "drop it"),
    ("very", "filler", "drop it or pick a stronger word"),
    ("just", "filler", "drop it"),
    ("needless to say", "filler", "drop it"),
    ("as an ai language model", "filler", "drop it"),
    ("feel free to", "filler", "drop it"),
    ("in order to", "filler", "write \"to\""),
    ("due to the fact that", "filler", "write \"because\""),
    ("in the event that", "filler", "write \"if\""),
    ("at this point in time", "filler", "write \"now\""),
    ("make sure to", "filler", "state the instruction"),
    ("perhaps", "hedging", "decide: state it or drop it"),
    ("maybe", "hedging", "decide: state it or drop it"),
    ("try to", "hedging", "state the instruction"),
    ("if possible", "hedging", "say when it is not possible"),
    ("you might want to", "hedging", "state the instruction"),
    ("it would be great if", "hedging", "state the instruction"),
    ("if you can", "hedging", "say what to do when it cannot"),
    ("etc", "vague", "list what you mean"),
    ("and so on", "vague", "list what you mean"),
    ("as needed", "vague", "say when it is needed"),
    ("as appropriate", "vague", "say what is appropriate"),
    ("appropriately", "vague", "say what is appropriate"),
    ("properly", "vague", "say what proper means here"),
    ("somehow", "vague", "say how"),
    ("good enough", "vague", "give the bar"),
    ("and stuff", "vague", "list what you mean"),
    ("or something", "vague", "list what you mean"),
];

static PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    let alternatives: Vec<String> = PHRASES.iter().map(|(p, _, _)| regex::escape(p)).collect();
    Regex::new(&format!(r"(?i)\b(?:{})\b", alternatives.join("|"))).unwrap()
});

/// Where each phrase of [`PHRASES`] occurs: (start, end, index into PHRASES).
pub(super) fn phrase_matches(prompt: &str) -> Vec<(usize, usize, usize)> {
    PHRASE
        .find_iter(prompt)
        .filter_map(|m| {
            let lower = m.as_str().to_lowercase();
            let i = PHRASES.iter().position(|(p, _, _)| *p == lower)?;
            Some((m.start(), m.end(), i))
        })
        .collect()
}

fn phrases(prompt: &str, pos: &Positions, out: &mut Vec<Finding>) {
    let mut per_kind: HashMap<&str, usize> = HashMap::new();
    for (a, b, i) in phrase_matches(prompt) {
        let (phrase, kind, fix) = PHRASES[i];
        let n = per_kind.entry(kind).or_default();
        if *n >= MAX_PER_KIND {
            continue;
        }
        *n += 1;
        let (severity, what) = match kind {
            "filler" => (Severity::Info, "adds tokens, not meaning"),
            "hedging" => (Severity::Info, "makes the instruction optional"),
            _ => (Severity::Warning, "leaves the model to guess"),
        };
        out.push(Finding {
            kind,
            severity,
            message: format!("\"{phrase}\" {what}: {fix}."),
            span: Some(pos.span(a, b)),
        });
    }
}

/// Pairs of instructions that pull against each other.
const CONFLICTS: &[(&str, &str)] = &[
    (
        r"(?i)\b(?:concise|brief|briefly|short|succinct)\b",
        r"(?i)\b(?:detailed|thorough|thoroughly|comprehensive|in depth|in detail|elaborate)\b",
    ),
    (
        r"(?i)\bformal\b",
        r"(?i)\b(?:casual|informal|friendly and relaxed)\b",
    ),
    (
        r"(?i)\bonly (?:return|output|respond with) json\b",
        r"(?i)\b(?:explain|explanation)\b",
    ),
];

static CONFLICT_RES: LazyLock<Vec<(Regex, Regex)>> = LazyLock::new(|| {
    CONFLICTS
        .iter()
        .map(|(a, b)| (Regex::new(a).unwrap(), Regex::new(b).unwrap()))
        .collect()
});

fn conflicts(prompt: &str, pos: &Positions, out: &mut Vec<Finding>) {
    for (a, b) in CONFLICT_RES.iter() {
        if let (Some(x), Some(y)) = (a.find(prompt), b.find(prompt)) {
            let later = if x.start() > y.start() { x } else { y };
            let earlier = if x.start() > y.start() { y } else { x };
            out.push(Finding {
                kind: "conflict",
                severity: Severity::Warning,
                message: format!(
                    "\"{}\" conflicts with \"{}\" earlier: say which wins, or when.",
                    later.as_str(),
                    earlier.as_str()
                ),
                span: Some(pos.span(later.start(), later.end())),
            });
        }
    }
}

fn injection(s: &Structure, out: &mut Vec<Finding>) {
    for v in s
        .variables
        .iter()
        .filter(|v| !v.delimited)
        .take(MAX_PER_KIND)
    {
        out.push(Finding {
            kind: "injection",
            severity: Severity::Warning,
            message: format!(
                "{{{{{}}}}} is inserted without delimiters: text in it can read as instructions. Enclose it (<{0}>...</{0}>, triple backticks or quotes) and say it is data.",
                v.name
            ),
            span: Some(v.span),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(a: &Analysis) -> Vec<&'static str> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_prompt_without_output_format_or_bound_gets_both_findings() {
        let a = analyze("Tell me about the history of Rome.", Some("gpt-4o"));
        assert!(kinds(&a).contains(&"no_output_format"), "{:?}", a.findings);
        assert!(kinds(&a).contains(&"unbounded_output"));
        let a = analyze(
            "Return JSON {\"summary\": string} with at most 3 sentences about Rome.",
            None,
        );
        assert_eq!(a.structure.output_format, Some("json"));
        assert!(a.structure.length_limit);
        assert!(!kinds(&a).contains(&"no_output_format"));
        assert!(!kinds(&a).contains(&"unbounded_output"));
    }

    #[test]
    fn repeated_sentences_and_runs_are_located() {
        let p = "Answer the question about the product. Use the manual.\nAnswer the question about the product.";
        let a = analyze(p, None);
        let r: Vec<&Finding> = a
            .findings
            .iter()
            .filter(|f| f.kind == "redundancy")
            .collect();
        assert_eq!(r.len(), 1, "{r:?}");
        let [s, e] = r[0].span.unwrap();
        assert_eq!(&p[s..e], "Answer the question about the product.");
        assert!(s > 40, "the second one");
    }

    #[test]
    fn filler_hedging_and_vague_phrases_are_found_with_character_spans() {
        let p = "Ünïcode first. Please note that you should try to list tools, etc.";
        let a = analyze(p, None);
        let chars: Vec<char> = p.chars().collect();
        let text = |f: &Finding| {
            let [s, e] = f.span.unwrap();
            chars[s..e].iter().collect::<String>()
        };
        let found: Vec<(&str, String)> = a
            .findings
            .iter()
            .filter(|f| matches!(f.kind, "filler" | "hedging" | "vague"))
            .map(|f| (f.kind, text(f)))
            .collect();
        assert_eq!(
            found,
            [
                ("filler", "Please note that".to_owned()),
                ("hedging", "try to".to_owned()),
                ("vague", "etc".to_owned())
            ]
        );
    }

    #[test]
    fn conflicting_instructions_are_found() {
        let a = analyze("Be concise. Give a detailed, thorough explanation.", None);
        let c: Vec<&Finding> = a.findings.iter().filter(|f| f.kind == "conflict").collect();
        assert_eq!(c.len(), 1);
        assert!(c[0].message.contains("detailed"), "{}", c[0].message);
    }

    #[test]
    fn variables_are_found_and_undelimited_ones_flagged() {
        let p = "Summarize <doc>{{ document }}</doc> for {{audience}} in \"{{tone}}\" tone.";
        let a = analyze(p, None);
        let v = &a.structure.variables;
        assert_eq!(
            v.iter()
                .map(|v| (v.name.as_str(), v.delimited))
                .collect::<Vec<_>>(),
            [("document", true), ("audience", false), ("tone", true)]
        );
        let inj: Vec<&Finding> = a
            .findings
            .iter()
            .filter(|f| f.kind == "injection")
            .collect();
        assert_eq!(inj.len(), 1);
        let [s, e] = inj[0].span.unwrap();
        assert_eq!(&p[s..e], "{{audience}}");
        assert!(kinds(&a).contains(&"no_role_separation"));
    }

    #[test]
    fn structure_counts_sections_lists_and_examples() {
        let p = "# Task\nClassify the review.\n\n## Rules\n- one label\n- no prose\n\nExample 1\nInput: great\nOutput: positive\nExample 2\nInput: awful\nOutput: negative\n\nsystem: you classify\nRespond with one word.";
        let a = analyze(p, None);
        let s = &a.structure;
        assert_eq!(s.sections, 2);
        assert_eq!(s.list_items, 2);
        assert_eq!(s.examples, 2);
        assert!(s.role_separation);
        assert_eq!(s.output_format, Some("fixed answer"));
        assert_eq!(a.sentences, 13, "{:?}", sentences(p));
    }

    #[test]
    fn empty_and_hostile_text_does_not_panic() {
        for p in ["", " ", "{{", "}}{{x", "\u{0}\u{202e}", &"é".repeat(5000)] {
            let a = analyze(p, Some("gpt-4o"));
            assert_eq!(a.chars, p.chars().count());
        }
    }
}
