//! Prompt templates: `{{ var }}` rendered with minijinja, tuned to behave
//! like the Nunjucks promptfoo uses where it matters for prompts.
//!
//! - no HTML escaping (prompts are not HTML);
//! - `none`/missing values print as nothing, objects and lists as JSON,
//!   `3.0` as `3` (JavaScript's number printing);
//! - attribute access on missing values is forgiving (`{{ a.b }}` is empty);
//! - `dump` (Nunjucks' JSON filter) is available beside `tojson`;
//! - a fuel limit stops hostile templates (`{% for %}` over huge ranges).

use std::collections::BTreeSet;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// Instructions one render may execute.
const FUEL: u64 = 1_000_000;
/// Largest rendered prompt, in bytes.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Names the engine provides itself; never "missing vars".
const BUILTIN_NAMES: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

/// A set of compiled prompt templates, rendered by index.
pub struct Templates {
    env: Environment<'static>,
    count: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.count)
            .finish()
    }
}

/// A fresh environment with promptgauge's settings.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_fuel(Some(FUEL));
    env.set_formatter(format_value);
    env.add_filter("dump", dump);
    env
}

impl Templates {
    /// Compiles every prompt; the error names the first that fails.
    pub fn compile(prompts: &[String]) -> Result<Self, (usize, String)> {
        let mut env = environment();
        for (i, raw) in prompts.iter().enumerate() {
            env.add_template_owned(i.to_string(), raw.clone())
                .map_err(|e| (i, describe(&e)))?;
        }
        Ok(Self {
            env,
            count: prompts.len(),
        })
    }

    /// Top-level variables prompt `index` reads from its test's vars.
    pub fn variables(&self, index: usize) -> BTreeSet<String> {
        self.env
            .get_template(&index.to_string())
            .map(|t| t.undeclared_variables(false))
            .unwrap_or_default()
            .into_iter()
            .filter(|name| !BUILTIN_NAMES.contains(&name.as_str()))
            .collect()
    }

    /// Renders prompt `index` with `vars`.
    pub fn render(
        &self,
        index: usize,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        let template = self
            .env
            .get_template(&index.to_string())
            .map_err(|e| describe(&e))?;
        let rendered = template
            .render(Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| describe(&e))?;
        check_size(rendered)
    }
}

/// Renders a one-off template string (assertion values) with `vars`.
pub fn render_str(
    env: &Environment<'static>,
    source: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let rendered = env
        .render_str(source, Value::from(minijinja::value::Serde(vars)))
        .map_err(|e| describe(&e))?;
    check_size(rendered)
}

fn check_size(rendered: String) -> Result<String, String> {
    if rendered.len() > MAX_RENDERED_BYTES {
        return Err(format!(
            "rendered prompt is {} bytes, over the limit of {MAX_RENDERED_BYTES}",
            rendered.len()
        ));
    }
    Ok(rendered)
}

/// The engine's message with the template line, without its debug dump.
fn describe(e: &Error) -> String {
    let mut msg = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    if e.kind() == ErrorKind::OutOfFuel {
        msg = "template does too much work (fuel exhausted)".to_owned();
    }
    match e.line() {
        Some(line) => format!("template error on line {line}: {msg}"),
        None => format!("template error: {msg}"),
    }
}

fn format_value(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    let write_failed = |_| Error::new(ErrorKind::WriteFailure, "cannot write output");
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Ok(()),
        // JavaScript spelling, not Python's `True`.
        ValueKind::Bool => out
            .write_str(if value.is_true() { "true" } else { "false" })
            .map_err(write_failed),
        ValueKind::Seq | ValueKind::Map => {
            let json = serde_json::to_string(value)
                .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.write_str(&json).map_err(write_failed)
        }
        ValueKind::Number if !value.is_integer() => match f64::try_from(value.clone()) {
            Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => {
                out.write_str(&(f as i64).to_string()).map_err(write_failed)
            }
            _ => minijinja::escape_formatter(out, state, value),
        },
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Nunjucks' `dump`: the value as JSON.
fn dump(value: Value) -> Result<String, Error> {
    serde_json::to_string(&value)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, vars: serde_json::Value) -> Result<String, String> {
        let t = Templates::compile(&[source.to_owned()]).map_err(|e| e.1)?;
        t.render(0, vars.as_object().unwrap())
    }

    #[test]
    fn vars_of_every_json_type_render_like_nunjucks_would_print_them() {
        let vars = json!({
            "s": "Paris", "i": 3, "f": 2.5, "whole": 4.0, "b": true, "n": null,
            "list": ["a", 1], "obj": {"k": "v", "n": 1}
        });
        let out = render(
            "{{s}}|{{i}}|{{f}}|{{whole}}|{{b}}|{{n}}|{{list}}|{{obj}}|{{obj.k}}|{{missing}}|{{missing.deeper}}|{{obj | dump}}",
            vars,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"Paris|3|2.5|4|true||["a",1]|{"k":"v","n":1}|v|||{"k":"v","n":1}"#
        );
    }

    #[test]
    fn html_is_not_escaped_and_control_flow_works() {
        let out = render(
            "{% for x in items %}<{{ x | upper }}>{% endfor %}{% if flag %} & more{% endif %}",
            json!({"items": ["a", "b"], "flag": true}),
        )
        .unwrap();
        assert_eq!(out, "<A><B> & more");
    }

    #[test]
    fn variables_lists_only_what_the_test_must_provide() {
        let t = Templates::compile(&["{% set x = 1 %}{{ city }} {{ x }} {% for i in range(3) %}{{ i }}{% endfor %}{{ user.name }}".to_owned()]).unwrap();
        let vars: Vec<String> = t.variables(0).into_iter().collect();
        assert_eq!(vars, ["city", "user"]);
    }

    #[test]
    fn hostile_templates_are_stopped() {
        let err = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            json!({}),
        )
        .unwrap_err();
        assert!(err.contains("fuel") || err.contains("range"), "{err}");
        let syntax = Templates::compile(&["ok".to_owned(), "{{ unclosed".to_owned()]).unwrap_err();
        assert_eq!(syntax.0, 1);
        assert!(
            syntax.1.starts_with("template error on line 1"),
            "{}",
            syntax.1
        );
    }
}
