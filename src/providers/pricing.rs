//! Prices per million tokens for common models, turning usage into cost.
//!
//! Looked up by exact model name, else by the longest known prefix (so
//! `gpt-4o-mini-2024-07-18` prices as `gpt-4o-mini`). A provider's
//! `config.pricing: {input, output}` (US dollars per million tokens)
//! overrides the table; unknown models without one cost 0.

use serde_json::{Map, Value};

use super::TokenUsage;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pricing {
    /// Per million prompt tokens.
    pub input: f64,
    /// Per million completion tokens.
    pub output: f64,
}

impl Pricing {
    /// Cost of `usage` in US dollars.
    pub fn cost(&self, usage: TokenUsage) -> f64 {
        (usage.input as f64 * self.input + usage.output as f64 * self.output) / 1_000_000.0
    }
}

/// (model, input, output) in US dollars per million tokens, list prices.
const TABLE: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-4-turbo", 10.00, 30.00),
    ("gpt-4", 30.00, 60.00),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("o1-mini", 1.10, 4.40),
    ("o1", 15.00, 60.00),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-opus", 15.00, 75.00),
    ("gemini-1.5-flash", 0.075, 0.30),
    ("gemini-1.5-pro", 1.25, 5.00),
    ("gemini-2.0-flash", 0.10, 0.40),
    ("mistral-small", 0.20, 0.60),
    ("mistral-large", 2.00, 6.00),
];

/// The table's price for `model`.
pub fn price_for(model: &str) -> Option<Pricing> {
    TABLE
        .iter()
        .filter(|(name, _, _)| model == *name || model.starts_with(&format!("{name}-")))
        .max_by_key(|(name, _, _)| name.len())
        .map(|&(_, input, output)| Pricing { input, output })
}

/// The price for a provider: `config.pricing` if set, else the table's.
pub(super) fn resolve(model: &str, config: &Map<String, Value>) -> Result<Option<Pricing>, String> {
    match config.get("pricing") {
        None | Some(Value::Null) => Ok(price_for(model)),
        Some(Value::Object(p)) => {
            let get = |k: &str| -> Result<f64, String> {
                p.get(k)
                    .and_then(Value::as_f64)
                    .filter(|v| *v >= 0.0 && v.is_finite())
                    .ok_or_else(|| format!("config.pricing.{k} must be a number >= 0 (US dollars per million tokens)"))
            };
            Ok(Some(Pricing {
                input: get("input")?,
                output: get("output")?,
            }))
        }
        Some(_) => Err(
            "config.pricing must be {input, output} in US dollars per million tokens".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_longest_matching_prefix_prices_a_dated_model() {
        assert_eq!(
            price_for("gpt-4o-mini-2024-07-18"),
            price_for("gpt-4o-mini")
        );
        assert_eq!(price_for("gpt-4o").unwrap().input, 2.5);
        assert!(price_for("gpt-4omega").is_none());
        assert!(price_for("llama3").is_none());
    }

    #[test]
    fn cost_is_per_million_tokens_and_config_overrides_the_table() {
        let p = price_for("gpt-4o-mini").unwrap();
        let cost = p.cost(TokenUsage {
            input: 1_000_000,
            output: 500_000,
        });
        assert!((cost - (0.15 + 0.30)).abs() < 1e-12);
        let own = resolve(
            "gpt-4o-mini",
            json!({"pricing": {"input": 1, "output": 2}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            own,
            Some(Pricing {
                input: 1.0,
                output: 2.0
            })
        );
        assert!(
            resolve(
                "x",
                json!({"pricing": {"input": -1, "output": 2}})
                    .as_object()
                    .unwrap()
            )
            .is_err()
        );
    }
}
