//! Prompt optimization: the analysis plus every local strategy for a
//! 2,000-token prompt, through the real app's service, with nothing cached
//! (each call analyzes, runs the strategies in parallel and stores its
//! suggestions) and from the answer cache.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fixtures::remove_db;
use crate::app::App;
use crate::config::Config;
use crate::optimize::{AnalyzeRequest, OptimizeService, tokens};

/// Tokens in the prompt (at least).
const PROMPT_TOKENS: usize = 2_000;
/// The model it is analyzed for.
const MODEL: &str = "gpt-4o";
/// Calls with nothing cached.
const MISS_CALLS: usize = 300;
/// Calls answered from the cache.
const HIT_CALLS: usize = 20_000;
/// Targets.
const MISS_P99_MS: f64 = 20.0;
const HIT_P99_US: f64 = 50.0;

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimizeFigures {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Findings and suggestions of the answer.
    pub findings: usize,
    /// Suggestions.
    pub suggestions: usize,
    /// Nothing cached: p50, p99, ms.
    pub miss_ms: [f64; 2],
    /// Each step's p50 on a miss, ms (they overlap: strategies run in parallel).
    pub steps_p50_ms: Vec<(String, f64)>,
    /// From the cache: p50, p99, µs.
    pub hit_us: [f64; 2],
    /// Each target and whether it was met.
    pub targets: Vec<(String, bool)>,
}

impl OptimizeFigures {
    /// Whether every target was met.
    pub fn met(&self) -> bool {
        self.targets.iter().all(|(_, met)| *met)
    }
}

/// A long system prompt of the usual kind: a role, rules, a format, worked
/// examples, some filler and repetition, and input variables; sections
/// vary so it is not one paragraph repeated.
pub fn long_prompt(min_tokens: usize) -> String {
    let mut p = String::from(
        "# Role\nYou are a support assistant for an online bookshop. I would like you to answer \
customer questions politely and accurately. Please note that it is important that you really \
use only the policy text below.\n\n# Rules\n",
    );
    let topics = [
        "refunds",
        "shipping",
        "gift cards",
        "damaged items",
        "pre-orders",
        "e-books",
        "loyalty points",
        "invoices",
        "address changes",
        "cancellations",
    ];
    let mut i = 0;
    while tokens::count(&p, Some(MODEL)).count < min_tokens {
        let t = topics[i % topics.len()];
        let n = i / topics.len();
        p.push_str(&format!(
            "- For questions about {t} (case {n}), quote the matching policy section and give the \
customer the next step. Basically, you should try to keep the answer very short and friendly, \
and mention the order number {{{{order_id}}}} if the customer gave one.\n"
        ));
        if i % 7 == 3 {
            p.push_str("Always answer in the customer's language.\n");
        }
        if i % 11 == 5 {
            p.push_str(&format!(
                "\nExample {}\nInput: Where is my order with {t}?\nOutput: Your order ships within 2 days.\n\n",
                i / 11 + 1
            ));
        }
        i += 1;
    }
    p.push_str("\nPolicy:\n{{policy}}\n\nCustomer question: {{question}}\n");
    p
}

/// Runs the benchmark with a fresh database under `dir`.
pub async fn run(dir: &Path) -> anyhow::Result<OptimizeFigures> {
    Ok(measure(dir, PROMPT_TOKENS, MISS_CALLS, HIT_CALLS).await?.0)
}

/// The benchmark at any size: its figures and every call's time (misses
/// in ms, hits in µs).
pub async fn measure(
    dir: &Path,
    prompt_tokens: usize,
    miss_calls: usize,
    hit_calls: usize,
) -> anyhow::Result<(OptimizeFigures, Vec<f64>, Vec<f64>)> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("run-optimize.db");
    remove_db(&db);
    let app = |cache_ttl| {
        App::build(Config {
            port: 0,
            database_path: db.clone(),
            cache_ttl,
            ..Config::default()
        })
    };
    let cold = app(Some(Duration::from_nanos(1))).await?;
    let warm = app(None).await?;
    let prompt = long_prompt(prompt_tokens);
    let req = AnalyzeRequest {
        prompt: prompt.clone(),
        model: Some(MODEL.to_owned()),
        ..AnalyzeRequest::default()
    };
    // First calls load the tokenizers; not counted.
    let first = call(cold.optimize(), &req).await?;
    let mut miss = Vec::with_capacity(miss_calls);
    let mut steps: Vec<(String, Vec<f64>)> = Vec::new();
    for _ in 0..miss_calls {
        let started = Instant::now();
        let o = call(cold.optimize(), &req).await?;
        miss.push(started.elapsed().as_secs_f64() * 1e3);
        let t = &o.timings;
        let all = std::iter::once(("analysis", t.analysis_ms))
            .chain(t.strategies_ms.iter().map(|(k, v)| (*k, *v)));
        for (name, ms) in all {
            match steps.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => v.push(ms),
                None => steps.push((name.to_owned(), vec![ms])),
            }
        }
    }
    call(warm.optimize(), &req).await?;
    let mut hit = Vec::with_capacity(hit_calls);
    for _ in 0..hit_calls {
        let started = Instant::now();
        call(warm.optimize(), &req).await?;
        hit.push(started.elapsed().as_secs_f64() * 1e6);
    }
    cold.optimize().settle().await;
    warm.optimize().settle().await;
    cold.storage().close().await;
    drop((cold, warm));
    remove_db(&db);

    let miss_ms = p50_p99(&mut miss);
    let hit_us = p50_p99(&mut hit);
    let calls = (miss.clone(), hit.clone());
    let steps_p50_ms = steps
        .into_iter()
        .map(|(n, mut v)| (n, p50_p99(&mut v)[0]))
        .collect();
    let targets = vec![
        (
            format!(
                "analysis and local strategies p99 <= {MISS_P99_MS} ms on a miss ({:.2})",
                miss_ms[1]
            ),
            miss_ms[1] <= MISS_P99_MS,
        ),
        (
            format!("p99 <= {HIT_P99_US} µs on a hit ({:.1})", hit_us[1]),
            hit_us[1] <= HIT_P99_US,
        ),
    ];
    let figures = OptimizeFigures {
        prompt_tokens: first.analysis.tokens.count,
        findings: first.analysis.findings.len(),
        suggestions: first.suggestions.len(),
        miss_ms,
        steps_p50_ms,
        hit_us,
        targets,
    };
    Ok((figures, calls.0, calls.1))
}

async fn call(
    service: &OptimizeService,
    req: &AnalyzeRequest,
) -> anyhow::Result<std::sync::Arc<crate::optimize::Optimization>> {
    let a = service
        .analyze(req.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(a.optimization)
}

fn p50_p99(v: &mut [f64]) -> [f64; 2] {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    [at(0.5), at(0.99)]
}

/// The figures as a table.
pub fn table(f: &OptimizeFigures) -> String {
    let mut out = format!(
        "optimize: a {}-token prompt ({} findings, {} suggestions)\n  miss p50 {:.2} ms, p99 {:.2} ms; hit p50 {:.1} µs, p99 {:.1} µs\n  step p50s:",
        f.prompt_tokens,
        f.findings,
        f.suggestions,
        f.miss_ms[0],
        f.miss_ms[1],
        f.hit_us[0],
        f.hit_us[1]
    );
    for (name, ms) in &f.steps_p50_ms {
        out.push_str(&format!(" {name} {ms:.2} ms;"));
    }
    out.push('\n');
    for (t, met) in &f.targets {
        out.push_str(&format!("  {t}: {}\n", if *met { "met" } else { "MISSED" }));
    }
    out
}
