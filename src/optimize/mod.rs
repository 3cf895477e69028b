//! Prompt optimization: analysis of the prompt text ([`analysis`]),
//! strategies run in parallel that each say what a change saves
//! ([`strategies`]): local ones over the text, data-driven ones over the
//! stored results of the suite, an optional LLM rewrite ([`llm`]); and
//! verification of candidates by running the suite on them through the
//! test queue ([`verify`]).
//!
//! Analyses are cached 30 minutes and answers 15, keyed by a content hash
//! of (prompt, model, options); suggestions are stored through the writer
//! after the answer leaves. This module knows nothing of HTTP.

pub mod analysis;
mod data;
pub mod llm;
pub mod rewrite;
pub mod strategies;
pub mod tokens;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use crate::analytics::{AnalyticsEngine, AnalyticsError, Span};
use crate::cache::TtlCache;
use crate::metrics::{Metrics, OptimizeMetrics};
use crate::providers::Provider;
use crate::queue::{QueueError, TestQueue};
use crate::storage::{NewSuggestion, PromptHistory, RollupFilter, Storage, StorageError};
use crate::suite::Problem;
pub use analysis::Analysis;
pub use strategies::Suggestion;
pub use verify::{Verification, VerifyRequest};

/// Longest prompt analyzed, characters.
pub const MAX_PROMPT_CHARS: usize = 100_000;
/// How long an analysis is kept.
const ANALYSIS_TTL: Duration = Duration::from_secs(1800);
/// How long an answer (suggestions) is kept.
const ANSWER_TTL: Duration = Duration::from_secs(900);
/// The window the data-driven strategies read.
const DATA_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// Executions of the suite whose results the failure and caching
/// strategies read.
const RECENT_EXECUTIONS: i64 = 20;
/// Default pass-rate tolerance of the model-selection strategy.
pub const DEFAULT_TOLERANCE: f64 = 0.02;

/// What can go wrong, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// The request is wrong (each problem located).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// What it refers to does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The queue refused or failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<AnalyticsError> for OptimizeError {
    fn from(e: AnalyticsError) -> Self {
        match e {
            AnalyticsError::ExecutionNotFound(id) => {
                OptimizeError::NotFound(format!("execution {id} not found"))
            }
            AnalyticsError::Storage(s) => OptimizeError::Storage(s),
        }
    }
}

fn invalid(location: &str, message: impl Into<String>) -> OptimizeError {
    OptimizeError::Invalid(vec![Problem::new(location, message)])
}

/// A prompt to analyze.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzeRequest {
    /// The prompt text.
    pub prompt: String,
    /// The model it runs on (`gpt-4o`, `openai:gpt-4o-mini`, `mock:x`).
    pub model: Option<String>,
    /// The stored suite it belongs to (data-driven strategies).
    pub suite_id: Option<i64>,
    /// Its index in that suite's prompts (failure focus, caching).
    pub prompt_idx: Option<i64>,
    /// Pass-rate points (0..1) a cheaper model may lose.
    pub tolerance: Option<f64>,
    /// Ask the configured model for a rewrite (default: when one is configured).
    pub llm: Option<bool>,
}

/// Time per step, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// The analysis.
    pub analysis_ms: f64,
    /// Each strategy (they run in parallel).
    pub strategies_ms: BTreeMap<&'static str, f64>,
    /// Everything.
    pub total_ms: f64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Optimization {
    /// sha256 of the prompt text (`GET /api/optimization/suggestions?prompt_hash=`).
    pub prompt_hash: String,
    /// The model it was analyzed for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The analysis.
    pub analysis: Arc<Analysis>,
    /// Every suggestion, largest saving first.
    pub suggestions: Vec<Suggestion>,
    /// Strategies that did not run, and why.
    pub skipped: BTreeMap<&'static str, String>,
    /// Time per step on the miss that made it.
    pub timings: Timings,
}

/// An answer and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The answer.
    pub optimization: Arc<Optimization>,
    /// Served from the cache.
    pub cached: bool,
}

/// The optimization service. Cheap to clone.
#[derive(Clone)]
pub struct OptimizeService {
    inner: Arc<Inner>,
}

struct Inner {
    storage: Storage,
    analytics: AnalyticsEngine,
    queue: TestQueue,
    metrics: OptimizeMetrics,
    analyses: TtlCache<String, Arc<Analysis>>,
    answers: TtlCache<String, Arc<Optimization>>,
    llm: Option<Arc<dyn Provider>>,
    /// Suggestion writes in flight.
    stores: tokio_util::task::TaskTracker,
}

/// A prompt's stored history with its suite's test labels.
pub(super) type Labelled = (PromptHistory, Vec<String>);

/// What one strategy task returns.
type Outcome = (&'static str, f64, Result<Vec<Suggestion>, String>);

impl OptimizeService {
    /// A service over storage, analytics and the queue; `llm` is the model
    /// asked for rewrites, if any. Loads the tokenizers in the background.
    pub fn new(
        storage: Storage,
        analytics: AnalyticsEngine,
        queue: TestQueue,
        metrics: &Metrics,
        llm: Option<Arc<dyn Provider>>,
        cache_ttl: Option<Duration>,
    ) -> Self {
        tokio::task::spawn_blocking(tokens::warm_up);
        Self {
            inner: Arc::new(Inner {
                analyses: TtlCache::new(
                    "optimize_analysis",
                    1024,
                    cache_ttl.unwrap_or(ANALYSIS_TTL),
                    &metrics.cache,
                ),
                answers: TtlCache::new(
                    "optimize_suggestions",
                    1024,
                    cache_ttl.unwrap_or(ANSWER_TTL),
                    &metrics.cache,
                ),
                metrics: metrics.optimize.clone(),
                storage,
                analytics,
                queue,
                llm,
                stores: tokio_util::task::TaskTracker::new(),
            }),
        }
    }

    /// Analyzes `req.prompt` and runs every strategy that applies.
    pub async fn analyze(&self, req: AnalyzeRequest) -> Result<Answer, OptimizeError> {
        let started = Instant::now();
        let key = self.validate(&req).await?;
        let i = &self.inner;
        if let Some(hit) = i.answers.get(&key) {
            i.metrics.requests.with_label_values(&["cache"]).inc();
            return Ok(Answer {
                optimization: hit,
                cached: true,
            });
        }
        let mut fresh = false;
        let optimization = i
            .answers
            .get_or_try_insert_with(&key, async {
                fresh = true;
                self.compute(req, started).await.map(Arc::new)
            })
            .await?;
        let source = if fresh { "computed" } else { "cache" };
        i.metrics.requests.with_label_values(&[source]).inc();
        if fresh {
            self.store(&optimization);
        }
        Ok(Answer {
            optimization,
            cached: !fresh,
        })
    }

    /// Checks the request; returns its cache key.
    async fn validate(&self, req: &AnalyzeRequest) -> Result<String, OptimizeError> {
        if req.prompt.trim().is_empty() {
            return Err(invalid("prompt", "empty: give the prompt text"));
        }
        let chars = req.prompt.chars().count();
        if chars > MAX_PROMPT_CHARS {
            return Err(invalid(
                "prompt",
                format!("{chars} characters; at most {MAX_PROMPT_CHARS}"),
            ));
        }
        if let Some(t) = req.tolerance
            && !(0.0..=1.0).contains(&t)
        {
            return Err(invalid(
                "tolerance",
                format!("expected pass-rate points from 0 to 1, got {t}"),
            ));
        }
        if let Some(model) = &req.model {
            self.check_model(model).await?;
        }
        match (req.suite_id, req.prompt_idx) {
            (None, Some(_)) => {
                return Err(invalid("promptId", "needs suiteId: the prompt's suite"));
            }
            (Some(suite), idx) => {
                if self.inner.storage.get_suite(suite).await?.is_none() {
                    return Err(OptimizeError::NotFound(format!("suite {suite} not found")));
                }
                if let Some(idx) = idx
                    && self.inner.storage.suite_prompt(suite, idx).await?.is_none()
                {
                    return Err(OptimizeError::NotFound(format!(
                        "suite {suite} has no prompt {idx} (prompts count from 0)"
                    )));
                }
            }
            (None, None) => {}
        }
        let llm = self.inner.llm.is_some() && req.llm != Some(false);
        let options = json!([req.model, req.suite_id, req.prompt_idx, req.tolerance, llm]);
        Ok(crate::hash::sha256_hex(
            format!("{}\u{0}{options}", req.prompt).as_bytes(),
        ))
    }

    /// A model is known when it has a tokenizer or a list price, is a
    /// built-in provider, or has results stored.
    async fn check_model(&self, model: &str) -> Result<(), OptimizeError> {
        let shown: String = model.chars().take(80).collect();
        if model.trim().is_empty() || model.len() > 200 {
            return Err(invalid("model", format!("{shown:?} is not a model name")));
        }
        let name = model.rsplit(':').next().unwrap_or(model);
        let builtin = model == "echo" || model.starts_with("mock:");
        if builtin
            || tiktoken_rs::tokenizer::get_tokenizer(name).is_some()
            || crate::providers::pricing::price_for(name).is_some()
        {
            return Ok(());
        }
        let stored = self
            .inner
            .analytics
            .models(Span::Last(DATA_WINDOW), RollupFilter::default())
            .await?;
        if stored
            .data
            .models
            .iter()
            .any(|m| m.model == name || m.provider == model)
        {
            return Ok(());
        }
        Err(invalid(
            "model",
            format!(
                "unknown model {shown:?}: no tokenizer or list price for it and no results stored for it in the last 30 days"
            ),
        ))
    }

    async fn compute(
        &self,
        req: AnalyzeRequest,
        started: Instant,
    ) -> Result<Optimization, OptimizeError> {
        let i = &self.inner;
        let prompt: Arc<str> = Arc::from(req.prompt.as_str());
        let model: Option<Arc<str>> = req.model.as_deref().map(Arc::from);
        let analysis_key = crate::hash::sha256_hex(
            format!("{}\u{0}{}", req.prompt, req.model.as_deref().unwrap_or("")).as_bytes(),
        );
        let t = Instant::now();
        let analysis = {
            let (p, m) = (prompt.clone(), model.clone());
            i.analyses
                .get_or_try_insert_with(&analysis_key, async move {
                    tokio::task::spawn_blocking(move || {
                        Arc::new(analysis::analyze(&p, m.as_deref()))
                    })
                    .await
                    .map_err(|e| {
                        OptimizeError::Invalid(vec![Problem::new(
                            "prompt",
                            format!("analysis failed: {e}"),
                        )])
                    })
                })
                .await?
        };
        let analysis_ms = ms(t);
        i.metrics
            .duration
            .with_label_values(&["analysis"])
            .observe(analysis_ms / 1e3);

        let mut skipped = BTreeMap::new();
        let mut set: JoinSet<Outcome> = JoinSet::new();
        // Local strategies: CPU only, each on the blocking pool.
        type Local = fn(&str, &Analysis, Option<&str>) -> Vec<Suggestion>;
        let local: [(&'static str, Local); 3] = [
            ("conciseness", strategies::conciseness),
            ("structure", strategies::structure),
            ("few_shot", strategies::few_shot),
        ];
        for (name, f) in local {
            let (p, a, m) = (prompt.clone(), analysis.clone(), model.clone());
            set.spawn_blocking(move || {
                let t = Instant::now();
                let out = f(&p, &a, m.as_deref());
                (name, ms(t), Ok(out))
            });
        }
        // Data-driven strategies.
        match (&model, req.suite_id) {
            (Some(m), Some(suite)) => {
                let (engine, m) = (i.analytics.clone(), m.clone());
                let tolerance = req.tolerance.unwrap_or(DEFAULT_TOLERANCE);
                set.spawn(async move {
                    let t = Instant::now();
                    let out = data::model_selection(&engine, suite, &m, tolerance).await;
                    ("model_selection", ms(t), out)
                });
            }
            _ => {
                skipped.insert(
                    "model_selection",
                    "needs model and suiteId: compares the models' results on the suite".to_owned(),
                );
            }
        }
        match (req.suite_id, req.prompt_idx) {
            (Some(suite), Some(idx)) => {
                let history: Arc<OnceCell<Result<Labelled, String>>> = Arc::new(OnceCell::new());
                for name in ["failure_focus", "caching"] {
                    let (storage, history) = (i.storage.clone(), history.clone());
                    set.spawn(async move {
                        let t = Instant::now();
                        let h = history
                            .get_or_init(|| data::prompt_history(storage, suite, idx))
                            .await;
                        let out = match h {
                            Err(e) => Err(e.clone()),
                            Ok((h, labels)) if name == "failure_focus" => {
                                Ok(strategies::failure_focus(
                                    &data::failure_groups(h, labels),
                                    h.results,
                                ))
                            }
                            Ok((h, _)) => Ok(strategies::caching(&data::repeat_stats(h))),
                        };
                        (name, ms(t), out)
                    });
                }
            }
            _ => {
                for name in ["failure_focus", "caching"] {
                    skipped.insert(
                        name,
                        "needs suiteId and promptId: reads the prompt's stored results".to_owned(),
                    );
                }
            }
        }
        match (&i.llm, req.llm) {
            (Some(provider), None | Some(true)) => {
                let (provider, p, a) = (provider.clone(), prompt.clone(), analysis.clone());
                set.spawn(async move {
                    let t = Instant::now();
                    let out = llm::rewrite(provider.as_ref(), &p, &a).await;
                    ("llm_rewrite", ms(t), out)
                });
            }
            (Some(_), Some(false)) => {
                skipped.insert("llm_rewrite", "not asked for (llm: false)".to_owned());
            }
            (None, _) => {
                skipped.insert(
                    "llm_rewrite",
                    "no model configured for rewrites (OPTIMIZE_PROVIDER)".to_owned(),
                );
            }
        }

        let mut suggestions = Vec::new();
        let mut strategies_ms = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            let Ok((name, took, out)) = joined else {
                continue;
            };
            strategies_ms.insert(name, took);
            i.metrics
                .duration
                .with_label_values(&[name])
                .observe(took / 1e3);
            match out {
                Ok(s) => {
                    i.metrics
                        .suggestions
                        .with_label_values(&[name])
                        .inc_by(s.len() as u64);
                    suggestions.extend(s);
                }
                Err(e) => {
                    skipped.insert(name, e);
                }
            }
        }
        // Largest saving first; additions (structure, examples) after.
        suggestions.sort_by(|a, b| {
            a.estimated_cost_delta_per_1k_runs
                .total_cmp(&b.estimated_cost_delta_per_1k_runs)
                .then(a.estimated_token_delta.cmp(&b.estimated_token_delta))
                .then(a.strategy.cmp(b.strategy))
        });
        let total_ms = ms(started);
        i.metrics
            .duration
            .with_label_values(&["total"])
            .observe(total_ms / 1e3);
        Ok(Optimization {
            prompt_hash: crate::hash::sha256_hex(req.prompt.as_bytes()),
            model: req.model,
            analysis,
            suggestions,
            skipped,
            timings: Timings {
                analysis_ms,
                strategies_ms,
                total_ms,
            },
        })
    }

    /// Stores the suggestions through the writer, after the answer leaves.
    fn store(&self, o: &Arc<Optimization>) {
        if o.suggestions.is_empty() {
            return;
        }
        let rows: Vec<NewSuggestion> = o
            .suggestions
            .iter()
            .map(|s| NewSuggestion {
                prompt_hash: o.prompt_hash.clone(),
                strategy: s.strategy.to_owned(),
                title: s.title.clone(),
                detail: s.rationale.clone(),
                rewritten_prompt: s.rewritten_prompt.clone(),
                token_savings: -s.estimated_token_delta,
                cost_savings_usd: -s.estimated_cost_delta_per_1k_runs,
                evidence: json!({
                    "model": o.model,
                    "confidence": s.confidence,
                    "span": s.span,
                    "figures": s.evidence,
                })
                .to_string(),
            })
            .collect();
        let storage = self.inner.storage.clone();
        self.inner.stores.spawn(async move {
            if let Err(e) = storage.insert_suggestions(rows).await {
                tracing::warn!(error = %e, "storing optimization suggestions failed");
            }
        });
    }

    /// Waits until the suggestions of every answer so far are stored.
    pub async fn settle(&self) {
        let stores = &self.inner.stores;
        stores.close();
        stores.wait().await;
        stores.reopen();
    }

    /// Stored suggestions, newest first.
    pub async fn suggestions(
        &self,
        prompt_hash: Option<String>,
        strategy: Option<String>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<crate::storage::SuggestionRecord>, i64), OptimizeError> {
        Ok(self
            .inner
            .storage
            .list_suggestions(prompt_hash, strategy, limit, offset)
            .await?)
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
