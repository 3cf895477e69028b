//! Formats: the report's data as JSON, Markdown or one self-contained HTML
//! file (templates: minijinja, embedded, or from a folder that overrides
//! them), and a table as CSV. Pure over a [`Report`].

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, Value as Jinja};

use super::ReportError;
use super::charts;
use super::model::{Report, Table};

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The data (the stable schema).
    Json,
    /// Markdown.
    Markdown,
    /// One HTML file, inline CSS and SVG.
    Html,
    /// CSV (per result for an execution, else the report's main table).
    Csv,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [Format::Json, Format::Markdown, Format::Html, Format::Csv];

    /// Every format by name.
    pub const NAMES: [&'static str; 4] = ["json", "md", "html", "csv"];

    /// Parses `json`, `md` (or `markdown`), `html`, `csv`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "json" => Some(Format::Json),
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Csv => "csv",
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// The embedded templates; a folder may hold its own `report.html` and
/// `report.md` instead.
const HTML: &str = include_str!("templates/report.html");
const MARKDOWN: &str = include_str!("templates/report.md");

/// The template environment: the embedded templates, each replaced by a
/// file of the same name in `dir` when there is one.
pub fn templates(dir: Option<&Path>) -> Result<Environment<'static>, ReportError> {
    let mut env = Environment::new();
    env.add_filter("mdcell", |v: Jinja| {
        v.to_string().replace('|', "\\|").replace(['\n', '\r'], " ")
    });
    for (name, embedded) in [("report.html", HTML), ("report.md", MARKDOWN)] {
        let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
            Some(path) => std::fs::read_to_string(&path).map_err(|e| {
                ReportError::Template(format!("cannot read {}: {e}", path.display()))
            })?,
            None => embedded.to_owned(),
        };
        env.add_template_owned(name, source)
            .map_err(|e| ReportError::Template(format!("{name}: {e}")))?;
    }
    Ok(env)
}

/// Renders `report` as Markdown or HTML through `env`, or as JSON.
pub fn render(
    report: &Report,
    format: Format,
    env: &Environment<'_>,
) -> Result<String, ReportError> {
    let template = match format {
        Format::Json => {
            return serde_json::to_string(report).map_err(|e| ReportError::Template(e.to_string()));
        }
        Format::Csv => {
            return Err(ReportError::Template("CSV renders a table".into()));
        }
        Format::Markdown => "report.md",
        Format::Html => "report.html",
    };
    let charts: BTreeMap<&str, String> = if format == Format::Html {
        report
            .sections
            .iter()
            .filter_map(|s| Some((s.id.as_str(), charts::svg(s.chart.as_ref()?))))
            .collect()
    } else {
        BTreeMap::new()
    };
    let ctx = minijinja::context! {
        report => Jinja::from(minijinja::value::Serde(report)),
        charts => charts,
        generated => crate::common::time::rfc3339(report.generated_at),
        total_ms => format!("{:.1}", report.timings.total_ms),
    };
    env.get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(|e| ReportError::Template(format!("{template}: {e:#}")))
}

/// A table as CSV (RFC 4180).
pub fn csv(table: &Table) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let head: Vec<String> = table.columns.iter().map(|c| field(c)).collect();
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for row in &table.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => field(s),
                serde_json::Value::Null => String::new(),
                other => field(&other.to_string()),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}
