//! PromQL of the repository's rules and dashboards, parsed with
//! `promql-parser`: the expressions, and the selectors in them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use promql_parser::parser::{self, Expr};
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every vector selector in `expr`, as `/api/v1/series` takes them
/// (without offsets).
pub fn selectors(expr: &Expr, out: &mut BTreeSet<String>) {
    each_selector(expr, &mut |v| {
        let mut v = v.clone();
        v.offset = None;
        v.at = None;
        out.insert(v.to_string());
    });
}

/// Calls `f` on every vector selector of `expr`.
pub fn each_selector(expr: &Expr, f: &mut dyn FnMut(&parser::VectorSelector)) {
    match expr {
        Expr::Aggregate(a) => {
            each_selector(&a.expr, f);
            if let Some(p) = &a.param {
                each_selector(p, f);
            }
        }
        Expr::Unary(u) => each_selector(&u.expr, f),
        Expr::Binary(b) => {
            each_selector(&b.lhs, f);
            each_selector(&b.rhs, f);
        }
        Expr::Paren(p) => each_selector(&p.expr, f),
        Expr::Subquery(s) => each_selector(&s.expr, f),
        Expr::VectorSelector(v) => f(v),
        Expr::MatrixSelector(m) => f(&m.vs),
        Expr::Call(c) => c.args.args.iter().for_each(|a| each_selector(a, f)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Every rule of the repository's rule files: (name, expression).
pub fn rules() -> Vec<(String, String)> {
    let mut rules = Vec::new();
    for file in [
        "alerts/promptgauge.rules.yml",
        "alerts/promptgauge.alerts.yml",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        let doc = promptgauge::yaml::from_str(&text).unwrap();
        for g in doc["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                let name = r["record"].as_str().or(r["alert"].as_str()).unwrap();
                rules.push((name.to_owned(), r["expr"].as_str().unwrap().to_owned()));
            }
        }
    }
    rules
}

/// The dashboards in `dashboards/`, by file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let doc = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, doc)
        })
        .collect()
}

/// Every panel target of every dashboard: (dashboard, panel title, raw expression).
pub fn dashboard_exprs() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, doc) in dashboards() {
        for panel in doc["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                out.push((
                    name.clone(),
                    panel["title"].as_str().unwrap().to_owned(),
                    t["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out
}

/// A dashboard expression as Prometheus would get it: Grafana's variables
/// replaced (`$__rate_interval` by `5m`, the others by `.+`).
pub fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$job", ".+")
        .replace("$instance", ".+")
}
