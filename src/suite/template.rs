//! Prompt templates: `{{ var }}` rendered with minijinja, tuned to print
//! what the Nunjucks promptfoo uses prints:
//!
//! - no HTML escaping (prompts are not HTML);
//! - undefined and null print as nothing; numbers, lists and objects as
//!   JavaScript's `String()` prints them (`2.5`, `1e+21`, `a,b`,
//!   `[object Object]`); `dump` is `JSON.stringify`;
//! - a prompt that is JSON renders each string in it and is re-printed
//!   with two-space indentation, as promptfoo does;
//! - a prompt with an unclosed tag is sent as written (promptfoo wraps it
//!   in `{% raw %}`);
//! - a fuel limit stops hostile templates (`{% for %}` over huge ranges).

use std::collections::BTreeSet;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde_json::Map;

/// Instructions one render may execute.
const FUEL: u64 = 1_000_000;
/// Largest rendered prompt, in bytes.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Names the engine provides itself; never "missing vars".
const BUILTIN_NAMES: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

/// Distinct one-off templates an [`Engine`] keeps compiled.
const MAX_CACHED: usize = 1024;

/// A minijinja environment with promptgauge's settings.
pub struct Engine {
    env: Environment<'static>,
    /// One-off templates compiled into `env` by [`Engine::render_cached`].
    cached: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// A fresh engine.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        // Nunjucks keeps a template's last newline; minijinja drops it by default.
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        env.set_formatter(format_value);
        env.add_filter("dump", dump);
        env.add_filter("round", round);
        Self { env, cached: 0 }
    }

    /// Renders `source`, compiled once and kept for the next call (the
    /// same assertion value renders once per test); past a bound on
    /// distinct sources it compiles each time instead.
    pub fn render_cached(
        &mut self,
        source: &str,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        if self.env.get_template(source).is_err() {
            if self.cached >= MAX_CACHED {
                return self.render_str(source, vars);
            }
            self.env
                .add_template_owned(source.to_owned(), source.to_owned())
                .map_err(|e| describe(&e))?;
            self.cached += 1;
        }
        let template = self.env.get_template(source).map_err(|e| describe(&e))?;
        let rendered = template
            .render(Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| describe(&e))?;
        check_size(rendered)
    }

    /// Renders a one-off template string (assertion values, var values).
    pub fn render_str(
        &self,
        source: &str,
        vars: &Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        let rendered = self
            .env
            .render_str(source, Value::from(minijinja::value::Serde(vars)))
            .map_err(|e| describe(&e))?;
        check_size(rendered)
    }
}

/// One compiled prompt.
enum Compiled {
    /// Text, rendered whole.
    Text(String),
    /// JSON: each string leaf is a template named `{prompt}.{leaf}`.
    Json(serde_json::Value),
}

/// A set of compiled prompt templates, rendered by index.
pub struct Templates {
    engine: Engine,
    prompts: Vec<Compiled>,
    /// Per prompt, the top-level vars it reads.
    variables: Vec<BTreeSet<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.prompts.len())
            .finish()
    }
}

impl Templates {
    /// Compiles every prompt; the error names the first that fails.
    pub fn compile(prompts: &[String]) -> Result<Self, (usize, String)> {
        let mut engine = Engine::new();
        let mut compiled = Vec::with_capacity(prompts.len());
        for (i, raw) in prompts.iter().enumerate() {
            compiled.push(compile_one(&mut engine.env, i, raw).map_err(|e| (i, e))?);
        }
        let variables = compiled
            .iter()
            .map(|c| read_variables(&engine.env, c))
            .collect();
        Ok(Self {
            engine,
            prompts: compiled,
            variables,
        })
    }

    /// The engine the prompts were compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Top-level variables prompt `index` reads from its test's vars.
    pub fn variables(&self, index: usize) -> &BTreeSet<String> {
        &self.variables[index]
    }

    /// Renders prompt `index`: text prompts with `text_vars`, JSON prompts
    /// with `json_vars` (promptfoo renders the two differently).
    pub fn render(
        &self,
        index: usize,
        text_vars: &Map<String, serde_json::Value>,
        json_vars: &Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        match &self.prompts[index] {
            Compiled::Text(name) => {
                let template = self
                    .engine
                    .env
                    .get_template(name)
                    .map_err(|e| describe(&e))?;
                let rendered = template
                    .render(Value::from(minijinja::value::Serde(text_vars)))
                    .map_err(|e| describe(&e))?;
                check_size(rendered)
            }
            Compiled::Json(leaves) => {
                let ctx = Value::from(minijinja::value::Serde(json_vars));
                let rendered = map_strings(leaves, &mut |name| {
                    let t = self
                        .engine
                        .env
                        .get_template(name)
                        .map_err(|e| describe(&e))?;
                    t.render(ctx.clone()).map_err(|e| describe(&e))
                })?;
                check_size(crate::js::json_pretty(&rendered))
            }
        }
    }

    /// Renders a prompt built for one test (a `prefix`/`suffix` around a
    /// prompt), compiled on the spot.
    pub fn render_raw(
        &self,
        raw: &str,
        text_vars: &Map<String, serde_json::Value>,
        json_vars: &Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        let one = Templates::compile(&[raw.to_owned()]).map_err(|(_, e)| e)?;
        one.render(0, text_vars, json_vars)
    }
}

/// The top-level vars a compiled prompt reads.
fn read_variables(env: &Environment<'static>, prompt: &Compiled) -> BTreeSet<String> {
    let names: Vec<String> = match prompt {
        Compiled::Text(name) => vec![name.clone()],
        Compiled::Json(leaves) => {
            let mut names = Vec::new();
            walk_strings(leaves, &mut |s| names.push(s.to_owned()));
            names
        }
    };
    names
        .iter()
        .filter_map(|n| env.get_template(n).ok())
        .flat_map(|t| t.undeclared_variables(false))
        .filter(|name| !BUILTIN_NAMES.contains(&name.as_str()))
        .collect()
}

fn compile_one(env: &mut Environment<'static>, i: usize, raw: &str) -> Result<Compiled, String> {
    // promptfoo tries JSON first: a prompt that parses is a JSON prompt.
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(raw) {
        let mut n = 0;
        let leaves = map_strings(&json, &mut |s| {
            let name = format!("{i}.{n}");
            n += 1;
            env.add_template_owned(name.clone(), s.to_owned())
                .map_err(|e| describe(&e))?;
            Ok(name)
        })?;
        return Ok(Compiled::Json(leaves));
    }
    let name = i.to_string();
    env.add_template_owned(name.clone(), auto_wrap(raw))
        .map_err(|e| describe(&e))?;
    Ok(Compiled::Text(name))
}

/// The same JSON with every string replaced by `f(string)`.
fn map_strings(
    v: &serde_json::Value,
    f: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::String(s) => J::String(f(s)?),
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|i| map_strings(i, f))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => {
            let mut out = Map::new();
            for (k, item) in map {
                out.insert(k.clone(), map_strings(item, f)?);
            }
            J::Object(out)
        }
        other => other.clone(),
    })
}

fn walk_strings(v: &serde_json::Value, f: &mut dyn FnMut(&str)) {
    use serde_json::Value as J;
    match v {
        J::String(s) => f(s),
        J::Array(items) => items.iter().for_each(|i| walk_strings(i, f)),
        J::Object(map) => map.values().for_each(|i| walk_strings(i, f)),
        _ => {}
    }
}

/// promptfoo's `autoWrapRawIfPartialNunjucks`: a template with a tag left
/// open on its line (`{{` with no `}` after it, `{%` with no `%`, `{#`
/// with no `#`) is wrapped in `{% raw %}` so it is sent as written.
pub fn auto_wrap(template: &str) -> String {
    let open_on_line = |line: &str| {
        [("{%", '%'), ("{{", '}'), ("{#", '#')]
            .iter()
            .any(|(open, close)| {
                line.match_indices(open)
                    .any(|(at, _)| !line[at + open.len()..].contains(*close))
            })
    };
    let partial = template.split('\n').any(open_on_line);
    let wrapped = has_tag(template, "raw") && has_tag(template, "endraw");
    if partial && !wrapped {
        format!("{{% raw %}}{template}{{% endraw %}}")
    } else {
        template.to_owned()
    }
}

/// Whether `{% word %}` (any spacing) appears.
fn has_tag(template: &str, word: &str) -> bool {
    template.match_indices("{%").any(|(at, _)| {
        let rest = template[at + 2..].trim_start();
        rest.strip_prefix(word)
            .is_some_and(|r| r.trim_start().starts_with("%}"))
    })
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
        ValueKind::Bool | ValueKind::Number | ValueKind::Seq | ValueKind::Map => {
            let json = serde_json::to_value(value)
                .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
            out.write_str(&crate::js::display(&json))
                .map_err(write_failed)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Nunjucks' `round(value, precision=0, method="common")`, where
/// "common" is `Math.round` (halves go up: -1.5 becomes -1).
fn round(value: f64, precision: Option<i32>, method: Option<String>) -> Value {
    let factor = 10f64.powi(precision.unwrap_or(0));
    let scaled = value * factor;
    let rounded = match method.as_deref() {
        Some("ceil") => scaled.ceil(),
        Some("floor") => scaled.floor(),
        _ => (scaled + 0.5).floor(),
    };
    Value::from(rounded / factor)
}

/// Nunjucks' `dump`: `JSON.stringify`.
fn dump(value: Value) -> Result<String, Error> {
    let json = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
    Ok(crate::js::json(&json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, vars: serde_json::Value) -> Result<String, String> {
        let t = Templates::compile(&[source.to_owned()]).map_err(|e| e.1)?;
        let vars = vars.as_object().unwrap();
        t.render(0, vars, vars)
    }

    #[test]
    fn vars_of_every_json_type_render_like_nunjucks_would_print_them() {
        let vars = json!({
            "s": "Paris", "i": 3, "f": 2.5, "whole": 4.0, "b": true, "n": null,
            "list": ["a", 1, [2, 3], null], "obj": {"k": "v", "n": 1}, "big": 1e21
        });
        let out = render(
            "{{s}}|{{i}}|{{f}}|{{whole}}|{{b}}|{{n}}|{{list}}|{{obj}}|{{obj.k}}|{{missing}}|{{missing.deeper}}|{{obj | dump}}|{{big}}",
            vars,
        )
        .unwrap();
        assert_eq!(
            out,
            r#"Paris|3|2.5|4|true||a,1,2,3,|[object Object]|v|||{"k":"v","n":1}|1e+21"#
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
    fn json_prompts_render_each_string_and_print_indented() {
        let out = render(
            r#"[{"role": "user", "content": "Hi {{name}}", "n": 1.0}]"#,
            json!({"name": "Ada"}),
        )
        .unwrap();
        assert_eq!(
            out,
            "[\n  {\n    \"role\": \"user\",\n    \"content\": \"Hi Ada\",\n    \"n\": 1\n  }\n]"
        );
    }

    #[test]
    fn unclosed_tags_are_sent_as_written() {
        assert_eq!(render("open {{ only", json!({})).unwrap(), "open {{ only");
        assert_eq!(
            auto_wrap("a {{ b }}\nc {% d"),
            "{% raw %}a {{ b }}\nc {% d{% endraw %}"
        );
        assert_eq!(auto_wrap("{{ fine }}"), "{{ fine }}");
    }

    #[test]
    fn variables_lists_only_what_the_test_must_provide() {
        let t = Templates::compile(&["{% set x = 1 %}{{ city }} {{ x }} {% for i in range(3) %}{{ i }}{% endfor %}{{ user.name }}".to_owned()]).unwrap();
        let vars: Vec<&String> = t.variables(0).iter().collect();
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
        let syntax =
            Templates::compile(&["ok".to_owned(), "{{ unclosed }".to_owned()]).unwrap_err();
        assert_eq!(syntax.0, 1);
        assert!(
            syntax.1.starts_with("template error on line 1"),
            "{}",
            syntax.1
        );
    }
}
