//! Load scenarios: named sets of benchmarks with their sizes, read from
//! TOML (`benches/scenarios/*.toml`, embedded in the binary) or sent as
//! JSON to the API. Every size is bounded, so every loop stops by itself.

use serde::{Deserialize, Serialize};

use crate::suite::Problem;

/// The shipped scenarios: (name, TOML).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "smoke",
        include_str!("../../../benches/scenarios/smoke.toml"),
    ),
    (
        "standard",
        include_str!("../../../benches/scenarios/standard.toml"),
    ),
    (
        "stress",
        include_str!("../../../benches/scenarios/stress.toml"),
    ),
];

/// A scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (baselines are per scenario and machine class).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Samples per benchmark (medians are compared).
    #[serde(default = "one")]
    pub repeats: u32,
    /// How much worse than the baseline a figure may be before it is a
    /// regression (0.2: 20 %).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// The benchmarks, in order.
    #[serde(rename = "benchmark", alias = "benchmarks")]
    pub benchmarks: Vec<Benchmark>,
}

fn one() -> u32 {
    1
}

fn default_tolerance() -> f64 {
    0.2
}

/// One benchmark of a scenario. (Unknown keys are refused by
/// [`unknown_keys`]: serde cannot with a flattened enum.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benchmark {
    /// Unique within the scenario.
    pub name: String,
    /// What it measures.
    #[serde(flatten)]
    pub kind: Kind,
    /// Samples (else the scenario's).
    #[serde(default)]
    pub repeats: Option<u32>,
    /// Regression tolerance (else the scenario's).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// What a benchmark measures, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// Batched result inserts through the storage writer.
    Writer {
        /// Rows stored.
        rows: u64,
    },
    /// The test queue with the `mock` provider.
    Queue {
        /// Tests run.
        tests: u64,
        /// Tests in flight.
        concurrency: u64,
        /// The mock's latency.
        latency_ms: u64,
    },
    /// Every analytics query kind, on a cache miss and a hit.
    Analytics {
        /// Results in the generated history.
        results: u64,
        /// Calls per query kind and cache state.
        calls: u64,
    },
    /// Every report kind in every format.
    Reports {
        /// Results in the generated history.
        results: u64,
        /// Results of the execution reported on.
        execution_results: u64,
        /// Calls per kind and format.
        calls: u64,
    },
    /// Prompt analysis and strategies.
    Optimize {
        /// Tokens in the prompt.
        prompt_tokens: u64,
        /// Calls on a miss (ten times as many hits).
        calls: u64,
    },
    /// WebSocket fan-out to real loopback clients.
    Websocket {
        /// Clients.
        clients: u64,
        /// The mock's latency.
        latency_ms: u64,
        /// Tests in flight (results per second = concurrency / latency).
        concurrency: u64,
        /// Seconds measured.
        duration_s: u64,
    },
    /// The HTTP API under concurrent load.
    Http {
        /// Connections, each sending one request after another.
        connections: u64,
        /// Seconds (with `requests` unset).
        #[serde(default)]
        duration_s: Option<u64>,
        /// Requests in all (instead of a duration).
        #[serde(default)]
        requests: Option<u64>,
        /// Paths requested in turn.
        endpoints: Vec<String>,
    },
    /// `GET /metrics`.
    Metrics {
        /// Scrapes.
        scrapes: u64,
    },
    /// `promptgauge run` end to end on a generated promptfoo-style config.
    Run {
        /// Tests in the config.
        tests: u64,
    },
    /// A target scenario of the earlier issues, run as it was built
    /// (`queue-1k`, `queue-10k`, `queue-100k-memory`, `ws-1k`, `ws-10k`,
    /// `analytics`, `reports`, `optimize`).
    Target {
        /// Its name.
        scenario: String,
    },
}

/// Work a scenario posted to the API may cost ([`Scenario::cost`]): twice
/// the shipped `standard` scenario.
pub const POSTED_COST_LIMIT: u64 = 20_000_000;

impl Kind {
    /// One sample's work in units of about one stored row.
    pub fn cost(&self) -> u64 {
        let m = u64::saturating_mul;
        match self {
            Kind::Writer { rows } => *rows,
            Kind::Queue { tests, .. } | Kind::Run { tests } => m(*tests, 10),
            Kind::Analytics { results, calls } => results.saturating_add(m(*calls, 100)),
            Kind::Reports {
                results,
                execution_results,
                calls,
            } => results.saturating_add(m(*calls, *execution_results)),
            Kind::Optimize { calls, .. } => m(*calls, 100),
            Kind::Websocket {
                clients,
                duration_s,
                ..
            } => m(m(*clients, *duration_s), 100),
            Kind::Http {
                duration_s,
                requests,
                ..
            } => requests
                .unwrap_or(0)
                .saturating_add(m(duration_s.unwrap_or(0), 10_000)),
            Kind::Metrics { scrapes } => m(*scrapes, 1_000),
            // The shipped targets work on cached 1,000,000-result databases.
            Kind::Target { .. } => 1_000_000,
        }
    }

    /// The kind's name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Writer { .. } => "writer",
            Kind::Queue { .. } => "queue",
            Kind::Analytics { .. } => "analytics",
            Kind::Reports { .. } => "reports",
            Kind::Optimize { .. } => "optimize",
            Kind::Websocket { .. } => "websocket",
            Kind::Http { .. } => "http",
            Kind::Metrics { .. } => "metrics",
            Kind::Run { .. } => "run",
            Kind::Target { .. } => "target",
        }
    }
}

/// The target scenarios a `target` benchmark may name.
pub const TARGETS: &[&str] = &[
    "queue-1k",
    "queue-10k",
    "queue-100k-memory",
    "ws-1k",
    "ws-10k",
    "analytics",
    "reports",
    "optimize",
];

impl Scenario {
    /// A shipped scenario by name.
    pub fn shipped(name: &str) -> Option<Result<Self, Vec<Problem>>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Self::from_toml(text))
    }

    /// Parses and checks a TOML scenario.
    pub fn from_toml(text: &str) -> Result<Self, Vec<Problem>> {
        let v: serde_json::Value =
            toml::from_str(text).map_err(|e| vec![Problem::new("scenario", e.to_string())])?;
        Self::from_json(&v)
    }

    /// Parses and checks a scenario posted to the API: besides each size's
    /// bound, its whole cost is bounded ([`POSTED_COST_LIMIT`]), so a client
    /// cannot make the server write billions of rows.
    pub fn from_posted_json(v: &serde_json::Value) -> Result<Self, Vec<Problem>> {
        let s = Self::from_json(v)?;
        let cost = s.cost();
        if cost > POSTED_COST_LIMIT {
            return Err(vec![Problem::new(
                "benchmark",
                format!(
                    "the scenario would cost {cost} work units (rows stored or generated, a request counting 1, a scrape 1,000, each sample counted), more than {POSTED_COST_LIMIT} allowed over the API; run it with `promptgauge bench --scenario FILE.toml`"
                ),
            )]);
        }
        Ok(s)
    }

    /// Its work in units of about one stored row, every sample counted.
    pub fn cost(&self) -> u64 {
        self.benchmarks
            .iter()
            .map(|b| u64::from(self.repeats_of(b)).saturating_mul(b.kind.cost()))
            .fold(0u64, u64::saturating_add)
    }

    /// Parses and checks a JSON scenario.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, Vec<Problem>> {
        unknown_keys(v)?;
        let s: Scenario = serde_json::from_value(v.clone())
            .map_err(|e| vec![Problem::new("scenario", e.to_string())])?;
        s.check()?;
        Ok(s)
    }

    /// Every size within its bound, names unique and sane.
    pub fn check(&self) -> Result<(), Vec<Problem>> {
        let mut p = Vec::new();
        let mut bound = |at: String, v: u64, min: u64, max: u64| {
            if v < min || v > max {
                p.push(Problem::new(at, format!("must be {min} to {max}, got {v}")));
            }
        };
        bound("repeats".into(), u64::from(self.repeats), 1, 20);
        let mut problems = Vec::new();
        if !(0.0..=100.0).contains(&self.tolerance) {
            problems.push(Problem::new(
                "tolerance",
                "must be 0 to 100 (a fraction: 0.2 is 20 %)",
            ));
        }
        if !name_ok(&self.name) {
            problems.push(Problem::new(
                "name",
                "1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
        if self.benchmarks.is_empty() || self.benchmarks.len() > 50 {
            problems.push(Problem::new("benchmark", "1 to 50 benchmarks"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, b) in self.benchmarks.iter().enumerate() {
            let at = |f: &str| format!("benchmark[{i}].{f}");
            if !name_ok(&b.name) || !seen.insert(b.name.as_str()) {
                problems.push(Problem::new(
                    at("name"),
                    "unique, 1 to 64 letters, digits, '-', '_' or '.'",
                ));
            }
            if let Some(r) = b.repeats {
                bound(at("repeats"), u64::from(r), 1, 20);
            }
            if b.tolerance.is_some_and(|t| !(0.0..=100.0).contains(&t)) {
                problems.push(Problem::new(at("tolerance"), "must be 0 to 100"));
            }
            match &b.kind {
                Kind::Writer { rows } => bound(at("rows"), *rows, 100, 2_000_000),
                Kind::Queue {
                    tests,
                    concurrency,
                    latency_ms,
                } => {
                    bound(at("tests"), *tests, 10, 100_000);
                    bound(at("concurrency"), *concurrency, 1, 10_000);
                    bound(at("latency_ms"), *latency_ms, 0, 10_000);
                }
                Kind::Analytics { results, calls } => {
                    bound(at("results"), *results, 1_000, 2_000_000);
                    bound(at("calls"), *calls, 1, 10_000);
                }
                Kind::Reports {
                    results,
                    execution_results,
                    calls,
                } => {
                    bound(at("results"), *results, 1_000, 2_000_000);
                    bound(at("execution_results"), *execution_results, 10, 10_000);
                    bound(at("calls"), *calls, 1, 1_000);
                }
                Kind::Optimize {
                    prompt_tokens,
                    calls,
                } => {
                    bound(at("prompt_tokens"), *prompt_tokens, 10, 20_000);
                    bound(at("calls"), *calls, 1, 10_000);
                }
                Kind::Websocket {
                    clients,
                    latency_ms,
                    concurrency,
                    duration_s,
                } => {
                    bound(at("clients"), *clients, 1, 10_000);
                    bound(at("latency_ms"), *latency_ms, 1, 10_000);
                    bound(at("concurrency"), *concurrency, 1, 1_000);
                    bound(at("duration_s"), *duration_s, 1, 300);
                }
                Kind::Http {
                    connections,
                    duration_s,
                    requests,
                    endpoints,
                } => {
                    bound(at("connections"), *connections, 1, 1_000);
                    match (duration_s, requests) {
                        (Some(d), None) => bound(at("duration_s"), *d, 1, 300),
                        (None, Some(r)) => bound(at("requests"), *r, 1, 10_000_000),
                        _ => problems.push(Problem::new(
                            at("duration_s"),
                            "give duration_s or requests, not both",
                        )),
                    }
                    if endpoints.is_empty() || endpoints.len() > 20 {
                        problems.push(Problem::new(at("endpoints"), "1 to 20 paths"));
                    }
                    for (j, e) in endpoints.iter().enumerate() {
                        let ok = e.starts_with('/')
                            && e.len() <= 200
                            && !e.starts_with("//")
                            && e.chars().all(|c| c.is_ascii_graphic());
                        if !ok {
                            problems.push(Problem::new(
                                format!("benchmark[{i}].endpoints[{j}]"),
                                "a path on this service, starting with /",
                            ));
                        }
                    }
                }
                Kind::Metrics { scrapes } => bound(at("scrapes"), *scrapes, 1, 100_000),
                Kind::Run { tests } => bound(at("tests"), *tests, 1, 10_000),
                Kind::Target { scenario } => {
                    if !TARGETS.contains(&scenario.as_str()) {
                        problems.push(Problem::new(
                            at("scenario"),
                            format!("one of {}", TARGETS.join(", ")),
                        ));
                    }
                }
            }
        }
        p.extend(problems);
        if p.is_empty() { Ok(()) } else { Err(p) }
    }

    /// Samples for benchmark `b`.
    pub fn repeats_of(&self, b: &Benchmark) -> u32 {
        b.repeats.unwrap_or(self.repeats)
    }

    /// Tolerance for benchmark `b`.
    pub fn tolerance_of(&self, b: &Benchmark) -> f64 {
        b.tolerance.unwrap_or(self.tolerance)
    }
}

/// Keys each benchmark kind takes (besides name, kind, repeats, tolerance).
const KIND_KEYS: &[(&str, &[&str])] = &[
    ("writer", &["rows"]),
    ("queue", &["tests", "concurrency", "latency_ms"]),
    ("analytics", &["results", "calls"]),
    ("reports", &["results", "execution_results", "calls"]),
    ("optimize", &["prompt_tokens", "calls"]),
    (
        "websocket",
        &["clients", "latency_ms", "concurrency", "duration_s"],
    ),
    (
        "http",
        &["connections", "duration_s", "requests", "endpoints"],
    ),
    ("metrics", &["scrapes"]),
    ("run", &["tests"]),
    ("target", &["scenario"]),
];

/// Refuses keys a benchmark's kind does not take, each located.
fn unknown_keys(v: &serde_json::Value) -> Result<(), Vec<Problem>> {
    let Some(list) = v
        .get("benchmark")
        .or_else(|| v.get("benchmarks"))
        .and_then(|b| b.as_array())
    else {
        return Ok(());
    };
    let mut problems = Vec::new();
    for (i, b) in list.iter().enumerate() {
        let Some(o) = b.as_object() else { continue };
        let kind = o.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let Some((_, keys)) = KIND_KEYS.iter().find(|(k, _)| *k == kind) else {
            let kinds: Vec<&str> = KIND_KEYS.iter().map(|(k, _)| *k).collect();
            problems.push(Problem::new(
                format!("benchmark[{i}].kind"),
                format!("one of {}", kinds.join(", ")),
            ));
            continue;
        };
        for key in o.keys() {
            if !["name", "kind", "repeats", "tolerance"].contains(&key.as_str())
                && !keys.contains(&key.as_str())
            {
                let shown: String = key.chars().take(64).collect();
                problems.push(Problem::new(
                    format!("benchmark[{i}].{shown}"),
                    format!("unknown for kind {kind} (takes {})", keys.join(", ")),
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn name_ok(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_scenarios_parse_and_check() {
        for (name, _) in SHIPPED {
            let s = Scenario::shipped(name).unwrap().unwrap();
            assert_eq!(s.name, *name);
            assert!(!s.benchmarks.is_empty());
        }
        let smoke = Scenario::shipped("smoke").unwrap().unwrap();
        let kinds: Vec<&str> = smoke.benchmarks.iter().map(|b| b.kind.name()).collect();
        assert_eq!(
            kinds,
            [
                "writer",
                "queue",
                "analytics",
                "reports",
                "optimize",
                "websocket",
                "http",
                "metrics",
                "run"
            ],
            "smoke covers every subsystem"
        );
        assert!(Scenario::shipped("nope").is_none());
    }

    #[test]
    fn posted_scenarios_are_bounded_in_total_and_standard_and_smoke_fit() {
        for name in ["smoke", "standard"] {
            let s = Scenario::shipped(name).unwrap().unwrap();
            assert!(s.cost() <= POSTED_COST_LIMIT, "{name}: {}", s.cost());
            let posted = serde_json::to_value(&s).unwrap();
            assert!(Scenario::from_posted_json(&posted).is_ok(), "{name}");
        }
        // 50 writer benchmarks x 2,000,000 rows x 20 samples: each within
        // its own bound, two billion rows in all.
        let benchmarks: Vec<serde_json::Value> = (0..50)
            .map(|i| serde_json::json!({"name": format!("w{i}"), "kind": "writer", "rows": 2_000_000}))
            .collect();
        let flood = serde_json::json!({"name": "flood", "repeats": 20, "benchmark": benchmarks});
        assert!(Scenario::from_json(&flood).is_ok());
        let problems = Scenario::from_posted_json(&flood).unwrap_err();
        assert!(
            problems[0].message.contains("2000000000 work units"),
            "{problems:?}"
        );
    }

    #[test]
    fn unbounded_or_unknown_input_is_refused_with_its_location() {
        let bad = r#"
name = "x"
[[benchmark]]
name = "w"
kind = "writer"
rows = 999999999
[[benchmark]]
name = "h"
kind = "http"
connections = 2
endpoints = ["http://example.com/"]
"#;
        let problems = Scenario::from_toml(bad).unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert!(at.contains(&"benchmark[0].rows"), "{problems:?}");
        assert!(at.contains(&"benchmark[1].duration_s"), "{problems:?}");
        assert!(at.contains(&"benchmark[1].endpoints[0]"), "{problems:?}");
        let unknown = "name = \"x\"\n[[benchmark]]\nname = \"a\"\nkind = \"disk\"\n";
        assert!(Scenario::from_toml(unknown).is_err());
        let stray = "name = \"x\"\n[[benchmark]]\nname = \"a\"\nkind = \"metrics\"\nscrapes = 1\nrows = 5\n";
        let problems = Scenario::from_toml(stray).unwrap_err();
        assert_eq!(problems[0].location, "benchmark[0].rows", "{problems:?}");
        let extra =
            "name = \"x\"\nfoo = 1\n[[benchmark]]\nname = \"a\"\nkind = \"metrics\"\nscrapes = 1\n";
        assert!(Scenario::from_toml(extra).is_err());
        let json = serde_json::json!({"name": "j", "benchmark": [{"name": "m", "kind": "metrics", "scrapes": 5}]});
        assert_eq!(Scenario::from_json(&json).unwrap().benchmarks.len(), 1);
    }
}
