//! What promptfoo does to a test's vars before it renders a prompt
//! (`renderPrompt`): one trailing newline dropped from each string, simple
//! `{{ name }}` references between vars substituted, then every string var
//! that only uses defined vars rendered as a template itself. Assertion
//! values see the vars after the first two steps; text prompts after all
//! three.

use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::template::{self, Engine};

/// A test's vars at each stage; a stage equal to the one before is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StagedVars {
    /// After trailing newlines and references: what assertion values and
    /// JSON prompts are rendered with.
    pub resolved: Option<Map<String, Value>>,
    /// After rendering each var as a template: what text prompts see.
    pub rendered: Option<Map<String, Value>>,
}

/// Runs the three stages over `vars`; a var template that fails to
/// render fails the test, as it does in promptfoo.
pub fn stage(engine: &Engine, vars: &Map<String, Value>) -> Result<StagedVars, String> {
    // Most vars are plain text: nothing to copy.
    let plain = vars.values().all(|v| match v {
        Value::String(s) => !(s.ends_with('\n') || s.contains("{{") || s.contains("{%")),
        _ => true,
    });
    if plain {
        return Ok(StagedVars::default());
    }
    let mut resolved = vars.clone();
    for v in resolved.values_mut() {
        if let Value::String(s) = v
            && s.ends_with('\n')
        {
            s.pop();
        }
    }
    resolve_references(&mut resolved)?;
    let mut rendered = resolved.clone();
    for (key, value) in rendered.iter_mut() {
        let Value::String(s) = value else { continue };
        if !(s.contains("{{") || s.contains("{%")) || references_undefined(s, &resolved) {
            continue;
        }
        let out = engine
            .render_str(&template::auto_wrap(s), &resolved)
            .map_err(|e| format!("var `{key}`: {e}"))?;
        *s = out;
    }
    let rendered = (rendered != resolved).then_some(rendered);
    let resolved = (&resolved != vars).then_some(resolved);
    Ok(StagedVars { resolved, rendered })
}

/// Passes of reference substitution before a test is told its vars nest
/// too deep (a chain resolves in about log2 of its length, since a pass
/// reads values already substituted; a var needs a pass per reference).
const MAX_REFERENCE_PASSES: usize = 256;
/// How far a var may grow while references are substituted, beyond twice
/// the test's vars together: past it, references feed on themselves.
const GROWTH_ALLOWANCE: usize = 1 << 20;

/// `{{ name }}` in one var replaced by another var's value (its first
/// occurrence per pass), as `resolveVariables` does, but to any depth:
/// promptfoo stops after five passes and sends what is left as a literal
/// `{{ a7 }}`; here passes go on until nothing changes, and references
/// that never settle (a cycle, a var doubling itself) or nest past
/// [`MAX_REFERENCE_PASSES`] are an error naming the var.
fn resolve_references(vars: &mut Map<String, Value>) -> Result<(), String> {
    let keys: Vec<String> = vars.keys().cloned().collect();
    let given: usize = vars.values().filter_map(Value::as_str).map(str::len).sum();
    let max_bytes = GROWTH_ALLOWANCE + 2 * given;
    for _ in 0..MAX_REFERENCE_PASSES {
        let mut changed = false;
        for key in &keys {
            let Some(Value::String(s)) = vars.get(key) else {
                continue;
            };
            let Some((range, name)) = first_reference(s) else {
                continue;
            };
            let Some(target) = vars.get(name) else {
                continue;
            };
            let replaced = format!(
                "{}{}{}",
                &s[..range.start],
                crate::js::display(target),
                &s[range.end..]
            );
            if replaced == *s {
                return Err(cycle(key, name));
            }
            if replaced.len() > max_bytes {
                return Err(format!(
                    "var `{key}` grows past {max_bytes} bytes as its references are substituted: they must not form a cycle"
                ));
            }
            vars.insert(key.clone(), Value::String(replaced));
            changed = true;
        }
        if !changed {
            return Ok(());
        }
    }
    let deep = keys
        .iter()
        .find(|k| {
            vars.get(*k)
                .and_then(Value::as_str)
                .and_then(first_reference)
                .is_some_and(|(_, name)| vars.contains_key(name))
        })
        .map_or("?", String::as_str);
    Err(format!(
        "var `{deep}` still refers to another var after {MAX_REFERENCE_PASSES} passes: var references nest too deep or form a cycle"
    ))
}

fn cycle(key: &str, name: &str) -> String {
    format!(
        "var `{key}` refers back to itself through `{{{{ {name} }}}}`: var references must not form a cycle"
    )
}

/// The first `{{ name }}` in `s`: its byte range and the name.
fn first_reference(s: &str) -> Option<(std::ops::Range<usize>, &str)> {
    static REFERENCE: LazyLock<regress::Regex> = LazyLock::new(|| {
        regress::Regex::new(r"\{\{\s*(\w+)\s*\}\}").expect("the reference pattern compiles")
    });
    let m = REFERENCE.find(s)?;
    let name = m.group(1).map(|g| &s[g]).unwrap_or_default();
    Some((m.start()..m.end(), name))
}

/// promptfoo's `extractVariablesFromTemplate`: the names a template
/// reads, found by pattern rather than by parsing.
pub fn template_variables(template: &str) -> Vec<String> {
    static COMMENT: LazyLock<regress::Regex> =
        LazyLock::new(|| regress::Regex::new(r"\{#[\s\S]*?#\}").expect("compiles"));
    static USE: LazyLock<regress::Regex> = LazyLock::new(|| {
        regress::Regex::new(
            r"\{\{[\s]*([^{}\s|]+)[\s]*(?:\|[^}]+)?\}\}|\{%[\s]*(?:if|for)[\s]+([^{}\s]+)[\s]*.*?%\}",
        )
        .expect("compiles")
    });
    static FOR: LazyLock<regress::Regex> = LazyLock::new(|| {
        regress::Regex::new(r"\{%[\s]*for[\s]+(\w+)[\s]+in[\s]+(\w+)[\s]*%\}").expect("compiles")
    });
    let cleaned = COMMENT.replace_all(template, "");
    let mut names: Vec<String> = Vec::new();
    for m in USE.find_iter(&cleaned) {
        if let Some(g) = m.group(1).or_else(|| m.group(2)) {
            let name = cleaned[g].to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    for m in FOR.find_iter(&cleaned) {
        let (Some(item), Some(list)) = (m.group(1), m.group(2)) else {
            continue;
        };
        names.retain(|n| n != &cleaned[item.clone()]);
        let list = cleaned[list].to_owned();
        if !names.contains(&list) {
            names.push(list);
        }
    }
    names
}

/// Whether `template` reads a var that `vars` does not define (`env` is
/// always defined): such a var value is passed through unrendered.
fn references_undefined(template: &str, vars: &Map<String, Value>) -> bool {
    template_variables(template).iter().any(|name| {
        let root: String = name
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let starts_right = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        starts_right && root != "env" && !vars.contains_key(&root)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn staged(vars: Value) -> StagedVars {
        stage(&Engine::new(), vars.as_object().unwrap()).unwrap()
    }

    #[test]
    fn one_trailing_newline_is_dropped_and_references_resolve() {
        let s = staged(json!({"a": "x\n\n", "b": "see {{ c }} and {{c}}", "c": 3}));
        let resolved = s.resolved.unwrap();
        assert_eq!(resolved["a"], "x\n");
        assert_eq!(resolved["b"], "see 3 and 3");
    }

    #[test]
    fn var_templates_render_unless_they_read_an_undefined_var() {
        let s = staged(json!({
            "name": "ada", "up": "{{ name | upper }}", "unknown": "{{ nobody }}",
            "tag": "{% if true %}yes{% endif %}", "partial": "open {{ only"
        }));
        let rendered = s.rendered.unwrap();
        assert_eq!(rendered["up"], "ADA");
        assert_eq!(rendered["unknown"], "{{ nobody }}");
        // `true` reads as a variable name to promptfoo's pattern.
        assert_eq!(rendered["tag"], "{% if true %}yes{% endif %}");
        assert_eq!(rendered["partial"], "open {{ only");
    }

    #[test]
    fn references_resolve_to_any_depth_and_cycles_are_errors() {
        // Eight levels: promptfoo's five passes would leave `{{a7}}`-like
        // literals in the prompt.
        let chain = json!({"a1": "{{a2}}", "a2": "{{a3}}", "a3": "{{a4}}", "a4": "{{a5}}",
            "a5": "{{a6}}", "a6": "{{a7}}", "a7": "{{a8}}", "a8": "deep", "q": "say {{a1}}"});
        let resolved = staged(chain).resolved.unwrap();
        assert_eq!(resolved["q"], "say deep");
        assert_eq!(resolved["a1"], "deep");

        let engine = Engine::new();
        let stage_of = |v: Value| stage(&engine, v.as_object().unwrap());
        let e = stage_of(json!({"a": "{{b}}", "b": "{{a}}"})).unwrap_err();
        assert!(e.contains("must not form a cycle"), "{e}");
        let e = stage_of(json!({"a": "{{a}}"})).unwrap_err();
        assert!(e.contains("var `a` refers back to itself"), "{e}");
        let e = stage_of(json!({"a": "x {{a}}"})).unwrap_err();
        assert!(
            e.contains("var `a` grows past") && e.contains("cycle"),
            "{e}"
        );
        // Each pass doubles them: stopped by size, not by memory.
        let e = stage_of(json!({"a": "{{b}}{{b}}", "b": "{{a}}{{a}}"})).unwrap_err();
        assert!(e.contains("must not form a cycle"), "{e}");
        // A chain of 1,000 resolves (a pass reads values already
        // substituted); 300 references in one var need a pass each, past
        // the limit: an error, not a literal.
        let mut long = serde_json::Map::new();
        for i in 0..1000 {
            long.insert(format!("v{i}"), json!(format!("{{{{v{}}}}}", i + 1)));
        }
        long.insert("v1000".into(), json!("end"));
        assert_eq!(
            stage(&engine, &long).unwrap().resolved.unwrap()["v0"],
            "end"
        );
        let many = json!({"b": "x", "a": "{{b}}".repeat(300)});
        let e = stage_of(many).unwrap_err();
        assert!(
            e.contains("var `a` still refers to another var after 256 passes"),
            "{e}"
        );
    }

    #[test]
    fn plain_vars_need_no_copies() {
        assert_eq!(staged(json!({"a": "plain", "n": 1})), StagedVars::default());
    }

    #[test]
    fn variables_are_found_like_promptfoo_finds_them() {
        assert_eq!(
            template_variables(
                "{{ a }} {{ b.c | upper }} {# {{ d }} #} {% for x in items %}{{ x }}{% endfor %} {% if flag %}"
            ),
            ["a", "b.c", "flag", "items"]
        );
    }
}
