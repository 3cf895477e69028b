//! `promptgauge run`: run a suite in this process or on a server, show
//! progress, write result files, print a summary, and exit like promptfoo:
//! 0 when every test passed, 100 when some failed, 1 when the run itself
//! could not complete.

mod backend;
mod display;
mod failures;
mod local;
mod optimize;
mod report;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

pub use backend::{Backend, Failure, Request};
pub use optimize::{OptimizeArgs, optimize};
pub use report::{ReportArgs, report};

use crate::config::Config;
use crate::export::ExportFormat;
use crate::metrics::Metrics;
use crate::suite::Format;

/// Every test passed.
pub const EXIT_PASSED: u8 = 0;
/// The run could not complete.
pub const EXIT_ERROR: u8 = 1;
/// Some tests failed (promptfoo's code).
pub const EXIT_FAILED: u8 = 100;

/// `promptgauge run` arguments.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The suite file.
    pub suite: PathBuf,
    /// `-o` files: `.json` (promptfoo), `.jsonl`, `.csv`, `.xml` (JUnit).
    pub outputs: Vec<PathBuf>,
    /// `--server`.
    pub server: Option<String>,
    /// `-j`.
    pub max_concurrency: Option<u32>,
    /// `--no-cache`.
    pub no_cache: bool,
}

/// Runs a suite and returns the exit code.
pub async fn run(args: RunArgs, config: &Config) -> u8 {
    match run_inner(args, config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("promptgauge: {e}");
            EXIT_ERROR
        }
    }
}

async fn run_inner(args: RunArgs, config: &Config) -> Result<u8, String> {
    let outputs = args
        .outputs
        .iter()
        .map(|p| output_format(p).map(|f| (p.clone(), f)))
        .collect::<Result<Vec<_>, _>>()?;
    let doc = load_suite(&args.suite)?;
    let metrics = Metrics::new().map_err(|e| e.to_string())?;
    let backend = match &args.server {
        Some(url) => Backend::server(url, std::env::var("API_TOKEN").ok())?,
        None => Backend::embedded(config, &metrics)?,
    };
    let request = Request {
        doc,
        max_concurrency: args.max_concurrency,
        no_cache: args.no_cache,
    };
    let result = drive(&backend, request, &outputs).await;
    backend.shutdown().await;
    result
}

/// Submits, follows progress until the execution ends, writes outputs.
async fn drive(
    backend: &Backend,
    request: Request,
    outputs: &[(PathBuf, ExportFormat)],
) -> Result<u8, String> {
    // Kept for the failures' labels: the request goes to the backend.
    let doc = request.doc.clone();
    let submitted = backend.submit(request).await?;
    for w in submitted["warnings"].as_array().into_iter().flatten() {
        let at = w["location"].as_str().unwrap_or_default();
        eprintln!(
            "warning: {}{}",
            if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            },
            w["message"].as_str().unwrap_or_default()
        );
    }
    let id = submitted["id"]
        .as_i64()
        .ok_or("the server did not return an execution id")?;
    let live = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let mut display = display::Progress::new(live);
    let mut follow = backend.follow(id).await;
    let every = Duration::from_millis(if live { 150 } else { 500 });
    let mut update = backend.status(id).await?;
    loop {
        display.update(&update);
        if update["status"]
            .as_str()
            .is_some_and(|s| matches!(s, "completed" | "failed" | "cancelled"))
        {
            break;
        }
        update = tokio::select! {
            u = backend.next_update(id, &mut follow, every) => u?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ninterrupted: cancelling execution {id}");
                backend.cancel(id).await;
                return Ok(EXIT_ERROR);
            }
        };
    }
    // The full view (with totals per prompt and provider) for the summary.
    let status = backend.status(id).await?;
    display.finish(&status);
    for (path, format) in outputs {
        backend.export(id, *format, path).await?;
        eprintln!("wrote {}", path.display());
    }
    println!("{}", display::summary(&status));
    print!("{}", failure_listing(backend, id, &status, &doc).await?);
    Ok(exit_code(&status))
}

/// The failed and errored tests, with labels from the suite document.
async fn failure_listing(
    backend: &Backend,
    id: i64,
    status: &Value,
    doc: &crate::suite::Document,
) -> Result<String, String> {
    let count = |k: &str| status[k].as_i64().unwrap_or(0);
    if count("failed") + count("errors") == 0 {
        return Ok(String::new());
    }
    let failed = backend.results(id, "failed", failures::SHOWN).await?;
    let errors = backend.results(id, "error", failures::SHOWN).await?;
    // Providers are not called here: none is built.
    let suite = crate::suite::parse_document(doc, &|_| Vec::new())
        .ok()
        .map(|l| l.suite);
    let colour = std::io::stdout().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var_os("NO_COLOR").is_none();
    Ok(failures::listing(
        &failed,
        &errors,
        suite.as_ref(),
        failures::Style { colour },
    ))
}

/// The suite file with its `file://` references resolved from its folder.
fn load_suite(path: &Path) -> Result<crate::suite::Document, String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        Some("yaml" | "yml") => Format::Yaml,
        _ => Format::detect(&source),
    };
    let invalid = |e: crate::suite::SuiteError| {
        let lines: Vec<String> = e.problems.iter().map(|p| format!("  {p}")).collect();
        format!("invalid suite {}:\n{}", path.display(), lines.join("\n"))
    };
    let doc = crate::suite::document(&source, format).map_err(invalid)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let inlined = crate::suite::files::inline(doc.into_value(), base).map_err(invalid)?;
    crate::suite::Document::from_value(inlined)
        .map_err(|e| format!("invalid suite {}: {e}", path.display()))
}

fn exit_code(status: &Value) -> u8 {
    if status["status"] != "completed" {
        return EXIT_ERROR;
    }
    let bad = status["failed"].as_i64().unwrap_or(0) + status["errors"].as_i64().unwrap_or(0);
    if bad > 0 { EXIT_FAILED } else { EXIT_PASSED }
}

fn output_format(path: &std::path::Path) -> Result<ExportFormat, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(ExportFormat::Promptfoo),
        Some("jsonl") => Ok(ExportFormat::Jsonl),
        Some("csv") => Ok(ExportFormat::Csv),
        Some("xml") => Ok(ExportFormat::Junit),
        _ => Err(format!(
            "-o {}: use a .json, .jsonl, .csv or .xml (JUnit) file",
            path.display()
        )),
    }
}
