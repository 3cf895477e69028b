//! Progress and the summary table, from an execution view.
//!
//! On a terminal: one line redrawn in place (bar, done/total, pass, fail,
//! error, rate, ETA, and why it waits when it backs off). Otherwise (a
//! pipe, a file, `CI` set): a plain line every few seconds.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How often plain progress lines are printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR: usize = 24;

pub(super) struct Progress {
    live: bool,
    last_plain: Option<Instant>,
}

fn n(v: &Value, key: &str) -> i64 {
    v[key].as_i64().unwrap_or(0)
}

impl Progress {
    pub(super) fn new(live: bool) -> Self {
        Self {
            live,
            last_plain: None,
        }
    }

    pub(super) fn update(&mut self, status: &Value) {
        let line = line(status);
        if self.live {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if self.last_plain.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
            self.last_plain = Some(Instant::now());
            eprintln!("progress: {line}");
        }
    }

    pub(super) fn finish(&mut self, status: &Value) {
        if self.live {
            eprintln!("\r\x1b[2K{}", line(status));
        } else {
            eprintln!("progress: {}", line(status));
        }
    }
}

fn line(s: &Value) -> String {
    let (total, done) = (n(s, "total").max(0), n(s, "completed").max(0));
    let filled = if total > 0 {
        (done as usize * BAR / total as usize).min(BAR)
    } else {
        BAR
    };
    let p = &s["progress"];
    let rate = p["ratePerSec"].as_f64().unwrap_or(0.0);
    let mut out = format!(
        "[{}{}] {done}/{total}  pass {}  fail {}  error {}  {rate:.1}/s",
        "#".repeat(filled),
        "-".repeat(BAR - filled),
        n(s, "passed"),
        n(s, "failed"),
        n(s, "errors"),
    );
    if let Some(eta) = p["etaSeconds"].as_f64().filter(|_| done < total) {
        out.push_str(&format!("  ETA {}", human(eta)));
    }
    if let Some(waiting) = p["waiting"].as_str() {
        out.push_str(&format!("  waiting: {waiting}"));
    }
    out
}

fn human(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Dollars with four decimals, or enough significant digits for the tiny
/// sums of a few short prompts to read as more than zero.
fn money(usd: f64) -> String {
    if usd == 0.0 || usd >= 0.01 {
        return format!("${usd:.4}");
    }
    let decimals = (2 - usd.log10().floor() as i32).clamp(4, 12) as usize;
    format!("${usd:.decimals$}")
}

/// The table printed at the end: one row per prompt x provider, then totals.
pub(super) fn summary(s: &Value) -> String {
    let mut rows = vec![[
        "provider".to_owned(),
        "prompt".to_owned(),
        "pass".to_owned(),
        "fail".to_owned(),
        "error".to_owned(),
        "pass rate".to_owned(),
        "avg latency".to_owned(),
        "cost".to_owned(),
    ]];
    for g in s["groups"].as_array().into_iter().flatten() {
        let count = n(g, "count").max(1);
        let mut prompt: String = g["prompt"].as_str().unwrap_or_default().replace('\n', " ");
        if prompt.chars().count() > 40 {
            prompt = prompt.chars().take(39).collect::<String>() + "…";
        }
        rows.push([
            g["provider"].as_str().unwrap_or_default().to_owned(),
            prompt,
            n(g, "passed").to_string(),
            n(g, "failed").to_string(),
            n(g, "errors").to_string(),
            format!("{:.1}%", 100.0 * n(g, "passed") as f64 / count as f64),
            format!("{} ms", n(g, "latencyMs") / count),
            money(g["costUsd"].as_f64().unwrap_or(0.0)),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(
                &widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  "),
            );
            out.push('\n');
        }
    }
    let completed = n(s, "completed");
    out.push_str(&format!(
        "\nexecution {} {}: {} passed, {} failed, {} errors of {} ({:.1}% pass), {}, {}",
        n(s, "id"),
        s["status"].as_str().unwrap_or("?"),
        n(s, "passed"),
        n(s, "failed"),
        n(s, "errors"),
        completed,
        100.0 * s["passRate"].as_f64().unwrap_or(0.0),
        money(s["costUsd"].as_f64().unwrap_or(0.0)),
        human(n(s, "durationMs") as f64 / 1000.0),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_progress_line_shows_counts_rate_eta_and_why_it_waits() {
        let s = json!({"total": 100, "completed": 50, "passed": 45, "failed": 4, "errors": 1,
            "progress": {"ratePerSec": 12.5, "etaSeconds": 4.0, "waiting": "rate limited from openai:gpt-4o: retry 1 in 2.0 s"}});
        let l = line(&s);
        assert!(
            l.starts_with(
                "[############------------] 50/100  pass 45  fail 4  error 1  12.5/s  ETA 4s"
            ),
            "{l}"
        );
        assert!(
            l.ends_with("waiting: rate limited from openai:gpt-4o: retry 1 in 2.0 s"),
            "{l}"
        );
    }

    #[test]
    fn the_summary_has_a_row_per_prompt_and_provider() {
        let s = json!({"id": 7, "status": "completed", "passed": 3, "failed": 1, "errors": 0, "completed": 4,
            "passRate": 0.75, "costUsd": 0.0012, "durationMs": 2500,
            "groups": [{"provider": "echo", "prompt": "Hi {{name}}", "count": 4, "passed": 3, "failed": 1, "errors": 0, "latencyMs": 40, "costUsd": 0.0012}]});
        let t = summary(&s);
        assert!(
            t.contains("echo      Hi {{name}}  3     1     0      75.0%      10 ms"),
            "{t}"
        );
        assert_eq!(money(0.0000261), "$0.0000261");
        assert_eq!(money(12.5), "$12.5000");
        assert!(t.ends_with("execution 7 completed: 3 passed, 1 failed, 0 errors of 4 (75.0% pass), $0.00120, 3s"), "{t}");
    }
}
