//! `promptgauge optimize PROMPT_FILE`: the analysis and suggestions for a
//! prompt, from this machine's database or a server (`--server`), as a
//! summary for a person or as JSON.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::local::Local;
use super::{EXIT_ERROR, EXIT_PASSED};
use crate::config::Config;
use crate::optimize::{AnalyzeRequest, OptimizeService};

/// `promptgauge optimize` arguments.
#[derive(Debug, Clone, Default)]
pub struct OptimizeArgs {
    /// The prompt file (`-` reads standard input).
    pub prompt_file: PathBuf,
    /// `--model`.
    pub model: Option<String>,
    /// `--suite`.
    pub suite: Option<i64>,
    /// `--prompt` (its index in the suite).
    pub prompt: Option<i64>,
    /// `--json`.
    pub json: bool,
    /// `--server`.
    pub server: Option<String>,
}

/// Analyzes the prompt and prints the answer; returns the exit code.
pub async fn optimize(args: OptimizeArgs, config: &Config) -> u8 {
    match run(args, config).await {
        Ok(()) => EXIT_PASSED,
        Err(e) => {
            eprintln!("promptgauge: {e}");
            EXIT_ERROR
        }
    }
}

async fn run(args: OptimizeArgs, config: &Config) -> Result<(), String> {
    let prompt = if args.prompt_file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))?
    } else {
        std::fs::read_to_string(&args.prompt_file)
            .map_err(|e| format!("cannot read {}: {e}", args.prompt_file.display()))?
    };
    let body = json!({
        "prompt": prompt,
        "model": args.model,
        "suiteId": args.suite,
        "promptId": args.prompt,
    });
    let answer = match &args.server {
        Some(url) => remote(url, &body).await?,
        None => {
            let req = AnalyzeRequest {
                prompt,
                model: args.model.clone(),
                suite_id: args.suite,
                prompt_idx: args.prompt,
                ..AnalyzeRequest::default()
            };
            local(config, req).await?
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
    } else {
        print!("{}", summary(&answer));
    }
    Ok(())
}

async fn local(config: &Config, req: AnalyzeRequest) -> Result<Value, String> {
    let l = Local::open(config)?;
    let llm = match &config.optimize_provider {
        Some(spec) => {
            Some(crate::providers::build(spec).map_err(|e| format!("OPTIMIZE_PROVIDER: {e}"))?)
        }
        None => None,
    };
    let service = OptimizeService::new(
        l.storage.clone(),
        l.analytics.clone(),
        l.queue.clone(),
        &l.metrics,
        llm,
        None,
    );
    let answer = service.analyze(req).await.map_err(|e| e.to_string());
    service.settle().await;
    l.close().await;
    serde_json::to_value(&*answer?.optimization).map_err(|e| e.to_string())
}

async fn remote(base: &str, body: &Value) -> Result<Value, String> {
    let text = super::local::post_to_server(base, "/api/optimization/analyze", body).await?;
    serde_json::from_str(&text).map_err(|e| format!("the server's answer is not JSON: {e}"))
}

/// The answer for a person.
fn summary(v: &Value) -> String {
    let a = &v["analysis"];
    let t = &a["tokens"];
    let mut out = format!(
        "prompt: {} tokens ({}, {}), {} characters, {} words\n",
        t["count"],
        str(&t["encoding"]),
        str(&t["method"]),
        a["chars"],
        a["words"]
    );
    let findings = a["findings"].as_array().map_or(&[][..], Vec::as_slice);
    if !findings.is_empty() {
        out.push_str("\nfindings:\n");
    }
    for f in findings {
        let at = f["span"]
            .as_array()
            .map(|s| format!(" [{}..{}]", s[0], s[1]))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<8} {:<18}{at} {}\n",
            str(&f["severity"]),
            str(&f["kind"]),
            str(&f["message"])
        ));
    }
    let suggestions = v["suggestions"].as_array().map_or(&[][..], Vec::as_slice);
    out.push_str(&format!(
        "\nsuggestions ({}, largest saving first):\n",
        suggestions.len()
    ));
    for (i, s) in suggestions.iter().enumerate() {
        out.push_str(&format!(
            "  {}. [{}] {}\n     {:+} tokens, {:+.4} USD per 1,000 runs, confidence {:.2}\n     {}\n",
            i + 1,
            str(&s["strategy"]),
            str(&s["title"]),
            s["estimatedTokenDelta"].as_i64().unwrap_or(0),
            s["estimatedCostDeltaPer1kRuns"].as_f64().unwrap_or(0.0),
            s["confidence"].as_f64().unwrap_or(0.0),
            str(&s["rationale"])
        ));
        if let Some(p) = s["rewrittenPrompt"].as_str() {
            out.push_str("     rewritten prompt:\n");
            for line in p.lines() {
                out.push_str(&format!("       | {line}\n"));
            }
        }
    }
    if let Some(skipped) = v["skipped"].as_object() {
        for (name, why) in skipped {
            out.push_str(&format!("  (not run: {name}: {})\n", str(why)));
        }
    }
    out.push_str(&format!(
        "\n{:.1} ms; prompt hash {}\n",
        v["timings"]["totalMs"].as_f64().unwrap_or(0.0),
        str(&v["promptHash"])
    ));
    out
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}
