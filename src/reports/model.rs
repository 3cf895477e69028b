//! What a report is, whatever its format: a title, headline figures, and
//! sections of text, figures, a table and a chart. This is the stable JSON
//! schema (`format=json`) and what stored reports keep; every other format
//! is rendered from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A report's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Its stored id, once stored.
    #[serde(default)]
    pub id: Option<i64>,
    /// `execution`, `model-comparison`, `cost`, `trend` or `performance`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// The parameters it was made for, normalized.
    pub params: Value,
    /// When it was made, unix ms.
    pub generated_at: i64,
    /// Whether its window held no data (the sections say so).
    pub empty: bool,
    /// Headline figures.
    pub summary: Vec<Stat>,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// How long each part took.
    pub timings: Timings,
}

/// One labelled figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// What it is.
    pub label: String,
    /// For people (`87.5 %`, `$1.23`, `1.2 s`).
    pub value: String,
    /// The number, when it is one.
    #[serde(default)]
    pub raw: Option<f64>,
}

impl Stat {
    /// A figure with its number.
    pub fn num(label: &str, value: String, raw: f64) -> Self {
        Self {
            label: label.to_owned(),
            value,
            raw: raw.is_finite().then_some(raw),
        }
    }

    /// A figure that is text.
    pub fn text(label: &str, value: impl Into<String>) -> Self {
        Self {
            label: label.to_owned(),
            value: value.into(),
            raw: None,
        }
    }
}

/// One section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Section {
    /// Stable id (`summary`, `models`, `failures`, ...), the metric label.
    pub id: String,
    /// Its heading.
    pub title: String,
    /// Paragraphs.
    #[serde(default)]
    pub text: Vec<String>,
    /// Figures.
    #[serde(default)]
    pub stats: Vec<Stat>,
    /// A table.
    #[serde(default)]
    pub table: Option<Table>,
    /// A chart.
    #[serde(default)]
    pub chart: Option<Chart>,
}

/// A table; cells are JSON numbers or strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// What a chart draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Horizontal bars, one per label.
    Bar,
    /// A line over ordered points.
    Line,
    /// Vertical bars over ordered buckets.
    Histogram,
}

/// A chart: labelled values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// How it is drawn.
    pub kind: ChartKind,
    /// What the values are (`pass rate`, `USD`, ...).
    pub unit: String,
    /// The points, in order.
    pub points: Vec<Point>,
}

/// One labelled value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Its label.
    pub label: String,
    /// Its value.
    pub value: f64,
}

/// Where a report's time went, ms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Fetching its data (in parallel).
    pub fetch_ms: f64,
    /// Building each section (in parallel).
    pub sections_ms: BTreeMap<String, f64>,
    /// Everything, as first made.
    pub total_ms: f64,
}

/// `12.3 %`.
pub fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// `$0.0123` (four decimals, more for small sums).
pub fn usd(x: f64) -> String {
    if x == 0.0 || x.abs() >= 0.01 {
        format!("${x:.4}")
    } else {
        let d = (2 - x.abs().log10().floor() as i32).clamp(4, 10) as usize;
        format!("${x:.d$}")
    }
}

/// `850 ms` or `2.35 s`.
pub fn ms(x: Option<f64>) -> String {
    match x {
        None => "-".to_owned(),
        Some(v) if v < 1000.0 => format!("{v:.0} ms"),
        Some(v) => format!("{:.2} s", v / 1000.0),
    }
}

/// A JSON number, rounded to `digits` decimals.
pub fn n(x: f64, digits: i32) -> Value {
    let f = 10f64.powi(digits);
    serde_json::json!((x * f).round() / f)
}

#[cfg(test)]
mod tests {
    #[test]
    fn figures_read_well() {
        assert_eq!(super::pct(0.875), "87.5 %");
        assert_eq!(super::usd(1.5), "$1.5000");
        assert_eq!(super::usd(0.000_123), "$0.000123");
        assert_eq!(super::ms(Some(850.0)), "850 ms");
        assert_eq!(super::ms(Some(2345.0)), "2.35 s");
        assert_eq!(super::ms(None), "-");
        assert_eq!(super::n(0.123_456, 3), serde_json::json!(0.123));
    }
}
