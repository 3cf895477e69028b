//! `promptgauge report KIND`: a report from this machine's database, or
//! from a server (`--server`), written to a file (its format from the
//! extension) or printed as Markdown.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::local::Local;
use super::{EXIT_ERROR, EXIT_PASSED};
use crate::config::Config;
use crate::monitor::{Monitor, MonitorConfig};
use crate::reports::{Format, ReportService, ReportSpec};

/// `promptgauge report` arguments.
#[derive(Debug, Clone, Default)]
pub struct ReportArgs {
    /// The kind.
    pub kind: String,
    /// `--execution`.
    pub execution: Option<i64>,
    /// `--from` (unix ms or RFC 3339).
    pub from: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--window` (`30d`).
    pub window: Option<String>,
    /// `--period`.
    pub period: Option<String>,
    /// `--suite`.
    pub suite: Option<i64>,
    /// `--format` (else from `-o`'s extension, else Markdown).
    pub format: Option<String>,
    /// `-o`.
    pub output: Option<PathBuf>,
    /// `--server`.
    pub server: Option<String>,
}

impl ReportArgs {
    /// The `params` object of the request.
    fn params(&self) -> Value {
        let mut p = json!({});
        let time = |s: &String| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n));
        if let Some(e) = self.execution {
            p["execution"] = json!(e);
        }
        if let Some(f) = &self.from {
            p["from"] = time(f);
        }
        if let Some(t) = &self.to {
            p["to"] = time(t);
        }
        if let Some(w) = &self.window {
            p["window"] = json!(w);
        }
        if let Some(pe) = &self.period {
            p["period"] = json!(pe);
        }
        if let Some(s) = self.suite {
            p["suite"] = json!(s);
        }
        p
    }

    fn format(&self) -> Result<Format, String> {
        let by_name = |s: &str| {
            Format::parse(s)
                .ok_or_else(|| format!("unknown format {s:?}: one of {}", Format::NAMES.join(", ")))
        };
        match (&self.format, &self.output) {
            (Some(f), _) => by_name(f),
            (None, Some(path)) => match path.extension().and_then(|e| e.to_str()) {
                Some("htm") => Ok(Format::Html),
                Some(ext) => by_name(ext),
                None => Ok(Format::Markdown),
            },
            (None, None) => Ok(Format::Markdown),
        }
    }
}

/// Makes the report and writes it; returns the exit code.
pub async fn report(args: ReportArgs, config: &Config) -> u8 {
    match run(args, config).await {
        Ok(()) => EXIT_PASSED,
        Err(e) => {
            eprintln!("promptgauge: {e}");
            EXIT_ERROR
        }
    }
}

async fn run(args: ReportArgs, config: &Config) -> Result<(), String> {
    let format = args.format()?;
    let params = args.params();
    let body = match &args.server {
        Some(url) => remote(url, &args.kind, params, format).await?,
        None => {
            let spec = ReportSpec::parse(&args.kind, &params).map_err(|e| e.to_string())?;
            local(config, spec, format).await?
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &body)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => println!("{body}"),
    }
    Ok(())
}

/// On this machine's database.
async fn local(config: &Config, spec: ReportSpec, format: Format) -> Result<String, String> {
    let l = Local::open(config)?;
    // Not started: its history and alerts come from the database.
    let monitor = Monitor::new(
        l.metrics.clone(),
        l.storage.clone(),
        l.events.clone(),
        MonitorConfig {
            interval: config.monitoring_interval,
            thresholds: config.thresholds,
            alert_for: config.alert_for,
            alertmanager: None,
            max_concurrent_tests: config.max_concurrent_tests,
        },
    );
    let reports = ReportService::new(
        l.analytics.clone(),
        l.queue.clone(),
        monitor,
        &l.metrics,
        config.report_templates.clone(),
        None,
    );
    let made = reports
        .generate(spec, format)
        .await
        .map_err(|e| e.to_string());
    l.close().await;
    Ok(made?.body)
}

/// On a server.
async fn remote(base: &str, kind: &str, params: Value, format: Format) -> Result<String, String> {
    let body = json!({"kind": kind, "params": params, "format": format.name()});
    super::local::post_to_server(base, "/api/reports", &body).await
}
