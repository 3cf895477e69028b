//! One provider as a suite (or a test) configures it.

use serde_json::{Map, Value};

use super::report::Report;
use super::{ProviderSpec, kind_of};

const PROVIDER_KEYS: &[&str] = &["id", "label", "config", "delay"];

/// One provider: an id, `{id, label, config, delay}`, or promptfoo's map
/// form `{<id>: {label, config}}`.
pub(super) fn provider_spec(at: &str, v: &Value, r: &mut Report) -> Option<ProviderSpec> {
    match v {
        Value::String(id) if !id.trim().is_empty() => Some(ProviderSpec {
            id: id.clone(),
            label: None,
            config: Map::new(),
            delay_ms: None,
        }),
        Value::Object(o) if o.contains_key("id") => {
            if o.contains_key("transform") {
                r.problem(at, "`transform` (a JavaScript transform) is not supported");
            }
            r.unknown_keys(at, o, &[PROVIDER_KEYS, &["transform"]].concat());
            let id = match o.get("id") {
                Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
                _ => {
                    r.problem(at, "`id` must be a non-empty string");
                    return None;
                }
            };
            let label = match o.get("label") {
                None | Some(Value::Null) => None,
                Some(Value::String(l)) => Some(l.clone()),
                Some(other) => {
                    r.problem(
                        at,
                        format!("`label` must be a string, got {}", kind_of(other)),
                    );
                    None
                }
            };
            let config = match o.get("config") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(c)) => c.clone(),
                Some(other) => {
                    r.problem(
                        at,
                        format!("`config` must be an object, got {}", kind_of(other)),
                    );
                    Map::new()
                }
            };
            let delay_ms = match o.get("delay") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64().filter(|d| *d <= 600_000) {
                    Some(d) => Some(d),
                    None => {
                        r.problem(
                            at,
                            format!("`delay` must be milliseconds from 0 to 600000, got {v}"),
                        );
                        None
                    }
                },
            };
            Some(ProviderSpec {
                id,
                label,
                config,
                delay_ms,
            })
        }
        // promptfoo's map form: `- openai:gpt-4o-mini: {config: ...}`.
        Value::Object(o) if o.len() == 1 => {
            let (id, rest) = o.iter().next()?;
            let mut full = rest.as_object().cloned().unwrap_or_default();
            full.insert("id".to_owned(), Value::String(id.clone()));
            provider_spec(at, &Value::Object(full), r)
        }
        other => {
            r.problem(
                at,
                format!(
                    "must be a provider id or an object with `id`, got {}",
                    kind_of(other)
                ),
            );
            None
        }
    }
}
