//! What a report is asked for: its kind and parameters, checked with every
//! problem located (`params.window`, ...).

use std::time::Duration;

use crate::common::json::{kind as kind_of, short};
use serde_json::{Map, Value, json};

use super::ReportError;
use crate::analytics::{MAX_WINDOW, Period, Span};
use crate::common::time::{MAX_TIME_MS, parse_duration, parse_instant};
use crate::suite::Problem;

/// The kinds, by name.
pub const KINDS: [&str; 5] = [
    "execution",
    "model-comparison",
    "cost",
    "trend",
    "performance",
];
/// The longest window of a performance report (the monitor's history).
const PERFORMANCE_MAX: Duration = Duration::from_secs(7 * 86_400);

/// A report to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportSpec {
    /// One execution's outcome.
    Execution {
        /// Its id.
        execution: i64,
    },
    /// Models side by side over a window.
    ModelComparison {
        /// The window.
        span: Span,
        /// One stored suite (0: inline), or all.
        suite: Option<i64>,
    },
    /// Spend over a window.
    Cost {
        /// The window.
        span: Span,
        /// One stored suite, or all.
        suite: Option<i64>,
    },
    /// A period against the one before.
    Trend {
        /// Day, week or month (or hour).
        period: Period,
        /// One stored suite, or all.
        suite: Option<i64>,
    },
    /// The service's own figures over a window.
    Performance {
        /// The window (up to 7 days).
        window: Duration,
    },
}

impl ReportSpec {
    /// Parses `kind` and its `params` object.
    pub fn parse(kind: &str, params: &Value) -> Result<Self, ReportError> {
        let empty = Map::new();
        let p = match params {
            Value::Object(o) => o,
            Value::Null => &empty,
            other => {
                return Err(invalid(
                    "params",
                    format!("must be an object, got {}", kind_of(other)),
                ));
            }
        };
        let mut problems = Vec::new();
        let allowed: &[&str] = match kind {
            "execution" => &["execution"],
            "model-comparison" | "cost" => &["window", "from", "to", "suite"],
            "trend" => &["period", "suite"],
            "performance" => &["window"],
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(invalid(
                    "kind",
                    format!("unknown kind {shown:?}: one of {}", KINDS.join(", ")),
                ));
            }
        };
        for key in p.keys().filter(|k| !allowed.contains(&k.as_str())) {
            problems.push(Problem::new(
                format!("params.{key}"),
                format!(
                    "unknown parameter for {kind} (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        let suite = p
            .get("suite")
            .and_then(|v| int(v, "params.suite", 0, &mut problems));
        let spec = match kind {
            "execution" => match p.get("execution") {
                None => {
                    problems.push(Problem::new(
                        "params.execution",
                        "missing: the execution's id",
                    ));
                    None
                }
                Some(v) => int(v, "params.execution", 1, &mut problems)
                    .map(|execution| ReportSpec::Execution { execution }),
            },
            "model-comparison" => {
                span(p, &mut problems).map(|span| ReportSpec::ModelComparison { span, suite })
            }
            "cost" => span(p, &mut problems).map(|span| ReportSpec::Cost { span, suite }),
            "trend" => {
                let period = match p.get("period") {
                    None => Some(Period::Day),
                    Some(Value::String(s)) if Period::parse(s).is_some() => Period::parse(s),
                    Some(v) => {
                        problems.push(Problem::new(
                            "params.period",
                            format!(
                                "expected one of {}, got {}",
                                Period::NAMES.join(", "),
                                short(v)
                            ),
                        ));
                        None
                    }
                };
                period.map(|period| ReportSpec::Trend { period, suite })
            }
            _ => match p.get("window") {
                None => Some(ReportSpec::Performance {
                    window: Duration::from_secs(86_400),
                }),
                Some(v) => match v.as_str().and_then(parse_duration) {
                    Some(w) if w >= Duration::from_secs(60) && w <= PERFORMANCE_MAX => {
                        Some(ReportSpec::Performance { window: w })
                    }
                    _ => {
                        problems.push(Problem::new(
                            "params.window",
                            format!(
                                "expected a duration from 1m to 7d such as 24h, got {}",
                                short(v)
                            ),
                        ));
                        None
                    }
                },
            },
        };
        match spec {
            Some(s) if problems.is_empty() => Ok(s),
            _ => Err(ReportError::Invalid(problems)),
        }
    }

    /// Its kind's name.
    pub fn kind(&self) -> &'static str {
        match self {
            ReportSpec::Execution { .. } => KINDS[0],
            ReportSpec::ModelComparison { .. } => KINDS[1],
            ReportSpec::Cost { .. } => KINDS[2],
            ReportSpec::Trend { .. } => KINDS[3],
            ReportSpec::Performance { .. } => KINDS[4],
        }
    }

    /// The parameters, normalized (as stored and shown).
    pub fn params_json(&self) -> Value {
        let span = |s: &Span| match *s {
            Span::Last(d) => json!({"window": format!("{}s", d.as_secs())}),
            Span::Between { from, to } => json!({"from": from, "to": to}),
        };
        let mut v = match self {
            ReportSpec::Execution { execution } => json!({"execution": execution}),
            ReportSpec::ModelComparison { span: s, .. } | ReportSpec::Cost { span: s, .. } => {
                span(s)
            }
            ReportSpec::Trend { period, .. } => json!({"period": Period::NAMES[*period as usize]}),
            ReportSpec::Performance { window } => {
                json!({"window": format!("{}s", window.as_secs())})
            }
        };
        if let ReportSpec::ModelComparison { suite: Some(s), .. }
        | ReportSpec::Cost { suite: Some(s), .. }
        | ReportSpec::Trend { suite: Some(s), .. } = self
        {
            v["suite"] = json!(s);
        }
        v
    }

    /// The key its data is cached under.
    pub(crate) fn cache_key(&self) -> String {
        format!("{} {}", self.kind(), self.params_json())
    }
}

fn span(p: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<Span> {
    let time = |key: &str, problems: &mut Vec<Problem>| -> Option<i64> {
        let v = p.get(key)?;
        let t = match v {
            Value::Number(n) => n.as_i64().filter(|t| (0..=MAX_TIME_MS).contains(t)),
            Value::String(s) => parse_instant(s),
            _ => None,
        };
        if t.is_none() {
            problems.push(Problem::new(
                format!("params.{key}"),
                format!("expected unix ms or an RFC 3339 time, got {}", short(v)),
            ));
        }
        t
    };
    let (from, to) = (time("from", problems), time("to", problems));
    let window = p.get("window").map(|v| {
        let d = v
            .as_str()
            .and_then(parse_duration)
            .filter(|d| *d >= Duration::from_secs(60) && *d <= MAX_WINDOW);
        if d.is_none() {
            problems.push(Problem::new(
                "params.window",
                format!(
                    "expected a duration from 1m to 366d such as 30d, got {}",
                    short(v)
                ),
            ));
        }
        d
    });
    match (window, p.contains_key("from")) {
        (Some(_), true) => {
            problems.push(Problem::new(
                "params.window",
                "give either window or from/to, not both",
            ));
            None
        }
        (Some(w), false) => w.map(Span::Last),
        (None, true) => {
            let (from, to) = (from?, to.unwrap_or_else(crate::storage::now_ms));
            if from >= to {
                problems.push(Problem::new(
                    "params.from",
                    format!("from ({from}) must be before to ({to})"),
                ));
                return None;
            }
            if to - from > MAX_WINDOW.as_millis() as i64 {
                problems.push(Problem::new(
                    "params.to",
                    "the window is longer than 366 days",
                ));
                return None;
            }
            Some(Span::Between { from, to })
        }
        (None, false) => {
            if p.contains_key("to") {
                problems.push(Problem::new("params.to", "to needs from"));
                return None;
            }
            Some(Span::Last(Duration::from_secs(30 * 86_400)))
        }
    }
}

fn int(v: &Value, at: &str, min: i64, problems: &mut Vec<Problem>) -> Option<i64> {
    let n = v.as_i64().filter(|n| *n >= min);
    if n.is_none() {
        problems.push(Problem::new(
            at,
            format!("expected an integer >= {min}, got {}", short(v)),
        ));
    }
    n
}

fn invalid(at: &str, message: String) -> ReportError {
    ReportError::Invalid(vec![Problem::new(at, message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_and_normalizes_its_params() {
        let s = ReportSpec::parse("execution", &json!({"execution": 7})).unwrap();
        assert_eq!(s, ReportSpec::Execution { execution: 7 });
        let s =
            ReportSpec::parse("model-comparison", &json!({"window": "7d", "suite": 2})).unwrap();
        assert_eq!(s.params_json(), json!({"window": "604800s", "suite": 2}));
        let s = ReportSpec::parse(
            "cost",
            &json!({"from": "2026-11-01", "to": 1_796_169_600_000i64}),
        )
        .unwrap();
        assert!(matches!(
            s,
            ReportSpec::Cost {
                span: Span::Between { .. },
                suite: None
            }
        ));
        assert_eq!(
            ReportSpec::parse("trend", &Value::Null)
                .unwrap()
                .params_json(),
            json!({"period": "day"})
        );
        assert_eq!(
            ReportSpec::parse("performance", &json!({"window": "1h"})).unwrap(),
            ReportSpec::Performance {
                window: Duration::from_secs(3600)
            }
        );
    }

    #[test]
    fn bad_params_are_refused_with_every_problem_located() {
        let locations = |kind: &str, p: Value| -> Vec<String> {
            match ReportSpec::parse(kind, &p) {
                Err(ReportError::Invalid(ps)) => ps.into_iter().map(|p| p.location).collect(),
                other => panic!("{kind} {p}: {other:?}"),
            }
        };
        assert_eq!(locations("execution", json!({})), ["params.execution"]);
        assert_eq!(
            locations("execution", json!({"execution": "x", "color": 1})),
            ["params.color", "params.execution"]
        );
        assert_eq!(
            locations("cost", json!({"window": "1y"})),
            ["params.window"]
        );
        assert_eq!(
            locations("cost", json!({"from": 10, "to": 5})),
            ["params.from"]
        );
        assert_eq!(
            locations("cost", json!({"window": "1d", "from": 1})),
            ["params.window"]
        );
        assert_eq!(
            locations("trend", json!({"period": "fortnight"})),
            ["params.period"]
        );
        assert_eq!(
            locations("performance", json!({"window": "30d"})),
            ["params.window"]
        );
        assert_eq!(locations("dashboard", json!({})), ["kind"]);
        assert_eq!(locations("cost", json!([1])), ["params"]);
    }
}
