//! `echo`: returns the rendered prompt as the output (promptfoo's `echo`),
//! at zero cost. Useful to test prompts and assertions without a model.
//! Like promptfoo's, it ignores `config` and waits its `delay` (in ms)
//! before answering, so the wait counts as latency.

use std::time::{Duration, Instant};

use serde_json::Map;

use super::{BoxFuture, Completion, Provider, ProviderError, RateLimitInfo, TokenUsage};
use crate::suite::ProviderSpec;

/// The echo provider.
pub struct Echo {
    id: String,
    params: Map<String, serde_json::Value>,
    delay: Option<Duration>,
}

impl Echo {
    /// Builds it; its `config` is ignored, as promptfoo's echo ignores it.
    pub fn new(spec: &ProviderSpec) -> Result<Self, String> {
        Ok(Self {
            id: spec.id.clone(),
            params: Map::new(),
            delay: spec.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
        })
    }
}

impl Provider for Echo {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "echo"
    }

    fn model(&self) -> &str {
        "echo"
    }

    fn params(&self) -> &Map<String, serde_json::Value> {
        &self.params
    }

    /// Echoing costs nothing; caching it would only fill the table.
    fn cacheable(&self) -> bool {
        false
    }

    fn complete<'a>(&'a self, prompt: &'a str) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let started = Instant::now();
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            let output = prompt.to_owned();
            Ok(Completion {
                output,
                latency: started.elapsed(),
                usage: TokenUsage::default(),
                cost_usd: 0.0,
                finish_reason: None,
                cached: false,
                rate_limit: RateLimitInfo::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn echo_returns_the_rendered_prompt_for_free() {
        let spec = ProviderSpec {
            id: "echo".into(),
            label: None,
            config: Map::new(),
            delay_ms: None,
        };
        let c = Echo::new(&spec)
            .unwrap()
            .complete("What is 2+2?")
            .await
            .unwrap();
        assert_eq!(c.output, "What is 2+2?");
        assert_eq!(
            (c.cost_usd, c.usage, c.cached),
            (0.0, TokenUsage::default(), false)
        );
    }
}
