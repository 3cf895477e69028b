//! `new RegExp(pattern)`, no flags, as promptfoo builds a `regex`
//! assertion. The `regress` engine checks the syntax as Node 22's V8 does
//! and words errors as V8 does; matching runs in QuickJS
//! ([`super::engine`]) under a step budget, because a backtracking engine
//! without one can take hours on a 30-character text. Both match over the
//! text's UTF-16 code units without the `u` flag, so `.` is one code unit,
//! `\d`, `\w` and `\b` are ASCII, and inline flags such as `(?i)` are syntax
//! errors.

use std::fmt;
use std::sync::Arc;

use super::engine::{self, Budget, EngineError};

/// Backtracking steps one match may take (about 0.15 s of one core): far
/// beyond what any sane pattern needs, far short of a frozen worker.
pub const MATCH_BUDGET: Budget = Budget::steps(10_000_000);

/// A checked pattern; cheap to clone.
#[derive(Clone)]
pub struct Regex(Arc<str>);

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.0)
    }
}

impl Regex {
    /// Checks `pattern`, or V8's `Invalid regular expression: /p/: why`.
    pub fn new(pattern: &str) -> Result<Self, String> {
        regress::Regex::with_flags(pattern, regress::Flags::default())
            .map(|_| Self(pattern.into()))
            .map_err(|e| {
                format!(
                    "Invalid regular expression: /{pattern}/: {}",
                    v8_message(pattern, &e.text)
                )
            })
    }

    /// `regex.test(text)`, or why there is no answer: the pattern needed
    /// more than [`MATCH_BUDGET`] steps on this text.
    pub fn is_match(&self, text: &str) -> Result<bool, String> {
        engine::regex_test(&self.0, text, MATCH_BUDGET).map_err(|e| match e {
            EngineError::Budget { steps } => format!(
                "matching /{}/ took more than {steps} backtracking steps and was stopped (nested or overlapping quantifiers backtrack exponentially: rewrite the pattern)",
                self.0
            ),
            EngineError::Thrown(m) => format!("Invalid regular expression: /{}/: {m}", self.0),
        })
    }
}

/// V8's wording for the syntax errors people make, from regress's.
fn v8_message(pattern: &str, regress: &str) -> String {
    let v8 = match regress {
        "Unbalanced parenthesis" => {
            if closes_unopened(pattern) {
                "Unmatched ')'"
            } else {
                "Unterminated group"
            }
        }
        "Unbalanced bracket" => "Unterminated character class",
        "Invalid atom character" | "Quantifier not allowed here" => "Nothing to repeat",
        "Invalid quantifier" | "Invalid braced quantifier" => {
            "numbers out of order in {} quantifier"
        }
        "Invalid group modifier" => "Invalid group",
        "Incomplete escape" | "Unterminated escape" => "\\ at end of pattern",
        "Invalid token at named capture group identifier" if pattern.contains("(?<") => {
            "Invalid capture group name"
        }
        "Invalid token at named capture group identifier" => "Invalid group",
        "Duplicate capture group name" => "Duplicate capture group name",
        r if r.starts_with("Range values reversed") || r == "Invalid character range" => {
            "Range out of order in character class"
        }
        r if r.starts_with("Backreference to invalid named capture group") => {
            "Invalid named capture referenced"
        }
        other => other,
    };
    v8.to_owned()
}

/// Whether a `)` closes a group that was never opened (outside classes
/// and escapes).
fn closes_unopened(pattern: &str) -> bool {
    let (mut depth, mut in_class, mut chars) = (0i32, false, pattern.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(pattern: &str, text: &str) -> bool {
        Regex::new(pattern).unwrap().is_match(text).unwrap()
    }

    #[test]
    fn matching_follows_javascript_without_the_u_flag() {
        // Each expectation was checked with `new RegExp(p).test(t)` in Node 22.
        assert!(!test(r"\d", "٣"));
        assert!(!test(r"^\w+$", "café"));
        assert!(test(r"\W$", "café"));
        assert!(!test("^.$", "😀"));
        assert!(test("^..$", "😀"));
        assert!(test(r"\p{L}", "p{L}"));
        assert!(test("a{", "a{"));
        assert!(test("]", "]"));
        assert!(test(r"(?<=a)b", "ab"));
        assert!(test(r"(?<n>x)\k<n>", "xx"));
        assert!(test("[^]", "\n"));
        assert!(!test("a.b", "a\nb"));
        assert!(!test("^b", "a\nb"));
        assert!(test(r"\s", "\u{a0}"));
        assert!(test(r"\s", "\u{feff}"));
        assert!(!test("A", "a"));
        // Without the `u` flag `\u{41}` is 41 `u`s, as in Node.
        assert!(!test(r"^\u{41}$", "A"));
        assert!(test(r"^\u{41}$", &"u".repeat(41)));
    }

    #[test]
    fn syntax_errors_carry_v8s_message() {
        let cases = [
            ("(", "Unterminated group"),
            ("a)", "Unmatched ')'"),
            ("*", "Nothing to repeat"),
            ("a**", "Nothing to repeat"),
            ("[a-", "Unterminated character class"),
            ("x{2,1}", "numbers out of order in {} quantifier"),
            ("(?i)a", "Invalid group"),
            ("(?P<n>a)", "Invalid group"),
            ("\\", "\\ at end of pattern"),
            ("[z-a]", "Range out of order in character class"),
            ("(?<a>x)(?<a>y)", "Duplicate capture group name"),
            (r"\k<zz>(?<a>x)", "Invalid named capture referenced"),
            ("(?<1a>x)", "Invalid capture group name"),
            ("(?", "Invalid group"),
            ("(?<=a", "Unterminated group"),
        ];
        for (pattern, message) in cases {
            assert_eq!(
                Regex::new(pattern).unwrap_err(),
                format!("Invalid regular expression: /{pattern}/: {message}")
            );
        }
    }
}
