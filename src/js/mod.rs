//! JavaScript's way with values, where promptfoo's verdicts depend on it:
//! how numbers and values print (`String(x)`, `JSON.stringify`,
//! `toFixed`, `toPrecision`), what `\s` matches, string lengths in UTF-16
//! code units, and `RegExp` ([`Regex`]). Pure functions; the suite, the
//! graders and the mock provider share them so a prompt, an assertion
//! value and a reason print a value alike.

pub mod engine;
mod regex;

use std::fmt::Write as _;

pub use regex::{MATCH_BUDGET, Regex};

use serde_json::Value;

/// `String(n)`: the shortest digits that round-trip, in ECMAScript's
/// layout (`1e+21`, `1e-7`, `0.000001`, `-0` as `0`).
pub fn number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".to_owned();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if n == 0.0 {
        return "0".to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e-7".
    let exp_form = format!("{:e}", n.abs());
    let (mantissa, exp) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    // The decimal point sits after `point` digits (ECMAScript's n).
    let point = exp.parse::<i32>().unwrap_or(0) + 1;
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    if k <= point && point <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (point - k) as usize));
    } else if 0 < point && point <= 21 {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    } else if -6 < point && point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(&digits);
    } else {
        let e = point - 1;
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
}

/// `n.toFixed(digits)`: exact ties round away from zero, as JavaScript
/// picks the larger candidate (Rust's formatting rounds them to even).
pub fn to_fixed(n: f64, digits: usize) -> String {
    let quick = format!("{n:.digits$}");
    // A tie is a value whose exact expansion ends in 5 right after the
    // last kept digit; only then do the two roundings disagree.
    let probe = format!("{:.*}", digits + 20, n.abs());
    let tail = &probe[probe.len() - 20..];
    if !(tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0')) {
        return quick;
    }
    let exact = format!("{:.1100}", n.abs());
    let cut = exact.find('.').map_or(exact.len(), |p| p + 1 + digits);
    if exact[cut + 1..].bytes().all(|b| b == b'0') && exact.as_bytes()[cut] == b'5' {
        let step = 10f64.powi(-(digits as i32));
        let up = (n.abs() / step).floor() * step + step;
        let signed = if n < 0.0 { -up } else { up };
        return format!("{signed:.digits$}");
    }
    quick
}

/// `n.toPrecision(2)`: two significant digits, exponential outside
/// 1e-6..1e2 like JavaScript.
pub fn to_precision_2(n: f64) -> String {
    if n == 0.0 {
        return "0.0".to_owned();
    }
    if !n.is_finite() {
        return number(n);
    }
    // Rounding may carry into the next power of ten (9.96 -> 10).
    let rounded = format!("{n:.1e}");
    let (mantissa, exp) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-6..2).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{}", exp.abs());
    }
    let decimals = (1 - exp).max(0) as usize;
    format!("{n:.decimals$}")
}

/// `String(value)` for a JSON value: arrays join their elements with `,`
/// (null and nested arrays as `Array.prototype.join` prints them),
/// objects print as `[object Object]`, null as `null`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Array(_) => {
            let mut out = String::new();
            join_into(v, &mut out);
            out
        }
        other => display_scalar(other),
    }
}

fn display_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        Value::Object(_) => "[object Object]".to_owned(),
        Value::Array(_) => display(v),
    }
}

fn join_into(v: &Value, out: &mut String) {
    let Value::Array(items) = v else {
        out.push_str(&display_scalar(v));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => {}
            Value::Array(_) => join_into(item, out),
            other => out.push_str(&display_scalar(other)),
        }
    }
}

/// `JSON.stringify(value)`: compact, keys in document order, numbers as
/// JavaScript prints them (`2.0` is `2`).
pub fn json(v: &Value) -> String {
    let mut out = String::new();
    json_into(v, &mut out);
    out
}

fn json_into(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            out.push_str(&if f.is_finite() {
                number(f)
            } else {
                "null".to_owned()
            });
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                json_into(item, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `JSON.stringify(value, null, 2)`: two-space indentation, as promptfoo
/// re-prints a prompt that is JSON.
pub fn json_pretty(v: &Value) -> String {
    let mut out = String::new();
    pretty_into(v, 0, &mut out);
    out
}

fn pretty_into(v: &Value, depth: usize, out: &mut String) {
    let indent = |out: &mut String, d: usize| out.extend(std::iter::repeat_n(' ', 2 * d));
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                pretty_into(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, item)) in map.iter().enumerate() {
                indent(out, depth + 1);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                pretty_into(item, depth + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push('}');
        }
        other => json_into(other, out),
    }
}

/// What JavaScript's `\s` (and `String.prototype.trim`) counts as white
/// space: Unicode `Zs`, the line terminators, tab, vertical tab, form
/// feed and the byte-order mark. Unlike Rust's `char::is_whitespace` it
/// includes U+FEFF and excludes U+0085.
pub fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// `s.trim()`.
pub fn trim(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// `s.length`: UTF-16 code units.
pub fn len_utf16(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_like_javascript() {
        let cases = [
            (5.0, "5"),
            (0.75, "0.75"),
            (-3.0, "-3"),
            (2.5, "2.5"),
            (-0.0, "0"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.25e-7, "1.25e-7"),
            (12345678901234567890.0, "12345678901234567000"),
            (0.1 + 0.2, "0.30000000000000004"),
            (123.456, "123.456"),
        ];
        for (n, want) in cases {
            assert_eq!(number(n), want, "{n:e}");
        }
    }

    #[test]
    fn to_fixed_rounds_exact_ties_up_like_javascript() {
        assert_eq!(to_fixed(0.625, 2), "0.63");
        assert_eq!(to_fixed(0.125, 2), "0.13");
        assert_eq!(to_fixed(2.5, 0), "3");
        assert_eq!(to_fixed(0.8, 2), "0.80");
        // 1.005 is really 1.00499999999999989...: no tie.
        assert_eq!(to_fixed(1.005, 2), "1.00");
        assert_eq!(to_fixed(-0.625, 2), "-0.63");
        assert_eq!(to_fixed(2.0 / 3.0, 2), "0.67");
    }

    #[test]
    fn precision_2_matches_javascript() {
        assert_eq!(to_precision_2(0.00123), "0.0012");
        assert_eq!(to_precision_2(0.5), "0.50");
        assert_eq!(to_precision_2(1.0), "1.0");
        assert_eq!(to_precision_2(12.3), "12");
        assert_eq!(to_precision_2(123.0), "1.2e+2");
        assert_eq!(to_precision_2(0.0000001234), "1.2e-7");
        assert_eq!(to_precision_2(9.96), "10");
        assert_eq!(to_precision_2(0.0), "0.0");
    }

    #[test]
    fn values_display_and_stringify_like_javascript() {
        assert_eq!(display(&json!([1, 2, [3, 4]])), "1,2,3,4");
        assert_eq!(display(&json!([{"a": 1}, "b", null])), "[object Object],b,");
        assert_eq!(display(&json!({"a": 1})), "[object Object]");
        assert_eq!(display(&json!(2.0)), "2");
        assert_eq!(display(&json!(true)), "true");
        assert_eq!(
            json(&json!({"a": [1, 2.0], "b": "x\"y"})),
            r#"{"a":[1,2],"b":"x\"y"}"#
        );
        assert_eq!(
            json_pretty(&json!([{"role": "user", "content": "hi"}, [], {}])),
            "[\n  {\n    \"role\": \"user\",\n    \"content\": \"hi\"\n  },\n  [],\n  {}\n]"
        );
    }

    #[test]
    fn white_space_and_lengths_follow_javascript() {
        assert!(is_space('\u{feff}') && is_space('\u{a0}') && !is_space('\u{85}'));
        assert_eq!(trim("\u{feff} x \u{2003}"), "x");
        assert_eq!(len_utf16("😀a"), 3);
    }
}
