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
    resolve_references(&mut resolved);
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

/// `{{ name }}` in one var replaced by another var's value (its first
/// occurrence per pass, five passes at most), as `resolveVariables` does.
fn resolve_references(vars: &mut Map<String, Value>) {
    static REFERENCE: LazyLock<regress::Regex> = LazyLock::new(|| {
        regress::Regex::new(r"\{\{\s*(\w+)\s*\}\}").expect("the reference pattern compiles")
    });
    for _ in 0..5 {
        let mut changed = false;
        let keys: Vec<String> = vars.keys().cloned().collect();
        for key in keys {
            let Some(Value::String(s)) = vars.get(&key) else {
                continue;
            };
            let Some(m) = REFERENCE.find(s) else { continue };
            let name = m.group(1).map(|g| &s[g]).unwrap_or_default();
            let Some(target) = vars.get(name) else {
                continue;
            };
            let replaced = format!(
                "{}{}{}",
                &s[..m.start()],
                crate::js::display(target),
                &s[m.end()..]
            );
            vars.insert(key, Value::String(replaced));
            changed = true;
        }
        if !changed {
            break;
        }
    }
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
