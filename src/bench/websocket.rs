//! WebSocket fan-out: a real `promptgauge serve` in a child process, real
//! executions on the `mock` provider, and N real clients on loopback in
//! this process, each measuring the time from an event's creation on the
//! server (its `ts`) to its arrival.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;

use super::process::{Server, process_cpu_seconds};
use crate::progress::TopicName;
use crate::progress::client::{ClientOptions, ProgressClient};

/// What the clients watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The `executions` topic: every execution's progress (an overview page).
    ProgressTopic,
    /// One execution by id: its progress and its results.
    OneExecution,
}

/// One fan-out load shape.
#[derive(Debug, Clone, Copy)]
pub struct WsScenario {
    /// Its name on the command line.
    pub name: &'static str,
    /// Clients connected.
    pub subscribers: usize,
    /// Executions running at once.
    pub executions: usize,
    /// Tests in flight per execution.
    pub concurrency: usize,
    /// The mock's latency: with `concurrency`, the results per second.
    pub latency_ms: u64,
    /// What the clients watch.
    pub watch: Watch,
    /// Seconds measured, after every client is connected.
    pub measure_secs: u64,
    /// p99 delivery latency to meet, ms.
    pub target_p99_ms: f64,
    /// Instead of promptgauge, the bare broadcast reference ([`super::bare_ws`])
    /// sending this many events per second.
    pub bare_rate: Option<f64>,
}

/// The scenarios the issue's targets name.
pub const WS_SCENARIOS: [WsScenario; 4] = [
    // 20 executions x 5 results/s: 100 progress events/s, each to 1,000 clients.
    WsScenario {
        name: "ws-1k",
        subscribers: 1_000,
        executions: 20,
        concurrency: 1,
        latency_ms: 200,
        watch: Watch::ProgressTopic,
        measure_secs: 10,
        target_p99_ms: 10.0,
        bare_rate: None,
    },
    // One execution at 200 results/s watched by 10,000 clients.
    WsScenario {
        name: "ws-10k",
        subscribers: 10_000,
        executions: 1,
        concurrency: 20,
        latency_ms: 100,
        watch: Watch::OneExecution,
        measure_secs: 10,
        target_p99_ms: 100.0,
        bare_rate: None,
    },
    // The references the issue quotes, measured here by the same clients.
    WsScenario {
        name: "ws-1k-bare",
        subscribers: 1_000,
        executions: 0,
        concurrency: 0,
        latency_ms: 0,
        watch: Watch::ProgressTopic,
        measure_secs: 10,
        target_p99_ms: 15.0,
        bare_rate: Some(100.0),
    },
    WsScenario {
        name: "ws-10k-bare",
        subscribers: 10_000,
        executions: 0,
        concurrency: 0,
        latency_ms: 0,
        watch: Watch::ProgressTopic,
        measure_secs: 10,
        target_p99_ms: 112.0,
        bare_rate: Some(10.0),
    },
];

/// The WebSocket scenario called `name`.
pub fn scenario(name: &str) -> Option<&'static WsScenario> {
    WS_SCENARIOS.iter().find(|s| s.name == name)
}

/// What one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WsFigures {
    /// The scenario.
    pub scenario: String,
    /// Clients connected.
    pub subscribers: usize,
    /// Seconds measured.
    pub seconds: f64,
    /// Progress messages the busiest client received per second.
    pub progress_per_client_per_sec: f64,
    /// Frames the clients received per second, all together.
    pub deliveries_per_sec: f64,
    /// Frames per client per second.
    pub per_client_per_sec: f64,
    /// Delivery latency of every frame, ms: p50, p95, p99, max.
    pub latency_ms: [f64; 4],
    /// The same for `execution.progress` frames alone.
    pub progress_latency_ms: [f64; 4],
    /// The server's own p99 (event created -> frame written), ms, from its
    /// delivery histogram (interpolated within a bucket).
    pub server_p99_ms: f64,
    /// Progress messages coalesced, events dropped, resyncs sent (server).
    pub coalesced: f64,
    /// Events dropped for clients that fell behind.
    pub dropped: f64,
    /// Resyncs sent.
    pub resyncs: f64,
    /// The server's CPU over the window, in cores.
    pub server_cpu_cores: f64,
    /// The server's peak resident memory, MB.
    pub server_peak_rss_mb: f64,
    /// The clients' process CPU over the window, in cores.
    pub client_cpu_cores: f64,
    /// The target, in words.
    pub target: String,
    /// Whether it was met.
    pub met: bool,
}

/// Runs `s` against a server started from this binary on a database in `dir`.
pub async fn run(s: &WsScenario, dir: &Path) -> anyhow::Result<WsFigures> {
    crate::common::tls::install_crypto_provider();
    std::fs::create_dir_all(dir)?;
    let db = dir.join(format!("{}.db", s.name));
    super::fixtures::remove_db(&db);
    let server = match s.bare_rate {
        Some(rate) => Server::bare(rate).await?,
        None => Server::start(&db, s.subscribers + 100).await?,
    };
    let http = reqwest::Client::new();
    let base = server.base.clone();

    // Overview clients subscribe before the executions exist; execution
    // watchers need the id first.
    let mut ids = Vec::new();
    if s.watch == Watch::OneExecution && s.bare_rate.is_none() {
        ids.push(submit(&http, &base, s).await?);
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let mut readers = JoinSet::new();
    let tallies = connect_all(s, &base, &ids, &measuring, &mut readers).await?;
    if s.watch == Watch::ProgressTopic && s.bare_rate.is_none() {
        for _ in 0..s.executions {
            ids.push(submit(&http, &base, s).await?);
        }
    }
    // Let the runs reach their steady state, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.sample(&http).await?;
    let cpu_before = process_cpu_seconds(std::process::id());
    let started = Instant::now();
    measuring.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_secs(s.measure_secs)).await;
    measuring.store(false, Ordering::Release);
    let seconds = started.elapsed().as_secs_f64();
    let after = server.sample(&http).await?;
    let client_cpu = process_cpu_seconds(std::process::id()) - cpu_before;
    for id in &ids {
        let _ = http
            .post(format!("{base}/api/executions/{id}/cancel"))
            .send()
            .await;
    }
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    let peak_rss = server.stop().await;

    let (mut all, mut progress, mut most_progress) = (Vec::new(), Vec::new(), 0);
    for t in &tallies {
        let t = t.lock().unwrap_or_else(|p| p.into_inner());
        all.extend_from_slice(&t.all);
        progress.extend_from_slice(&t.progress);
        most_progress = most_progress.max(t.progress.len());
    }
    let frames = all.len() as f64;
    let latency = percentiles(all);
    let met = latency[2] <= s.target_p99_ms;
    Ok(WsFigures {
        scenario: s.name.to_owned(),
        subscribers: s.subscribers,
        seconds,
        progress_per_client_per_sec: most_progress as f64 / seconds,
        deliveries_per_sec: frames / seconds,
        per_client_per_sec: frames / seconds / s.subscribers as f64,
        latency_ms: latency,
        progress_latency_ms: percentiles(progress),
        server_p99_ms: bucket_quantile(&before.delivery, &after.delivery, 0.99) * 1000.0,
        coalesced: after.coalesced - before.coalesced,
        dropped: after.dropped - before.dropped,
        resyncs: after.resyncs - before.resyncs,
        server_cpu_cores: (after.cpu_seconds - before.cpu_seconds) / seconds,
        server_peak_rss_mb: peak_rss,
        client_cpu_cores: client_cpu / seconds,
        target: format!("p99 <= {} ms", s.target_p99_ms),
        met,
    })
}

/// One client's latency samples while measuring, in microseconds.
#[derive(Default)]
struct Tally {
    all: Vec<u32>,
    progress: Vec<u32>,
}

type Shared = Arc<std::sync::Mutex<Tally>>;

/// Connects every client (a few hundred handshakes at a time) and starts
/// its reader; returns each client's tally.
async fn connect_all(
    s: &WsScenario,
    base: &str,
    ids: &[i64],
    measuring: &Arc<AtomicBool>,
    readers: &mut JoinSet<()>,
) -> anyhow::Result<Vec<Shared>> {
    let mut connecting = JoinSet::new();
    let mut tallies = Vec::with_capacity(s.subscribers);
    let mut start = |c: ProgressClient| {
        let tally = Shared::default();
        tallies.push(tally.clone());
        readers.spawn(read(c, measuring.clone(), tally));
    };
    for i in 0..s.subscribers {
        if connecting.len() >= 256 {
            if let Some(c) = connecting.join_next().await {
                start(c??);
            }
        }
        let (base, ids, watch) = (base.to_owned(), ids.to_vec(), s.watch);
        connecting.spawn(async move {
            let mut c = ProgressClient::connect(&base, &ClientOptions::default())
                .await
                .with_context(|| format!("client {i}"))?;
            match watch {
                Watch::ProgressTopic => c.subscribe_topics(&[TopicName::Executions]).await?,
                Watch::OneExecution => c.subscribe(&ids).await?,
            }
            Ok::<_, anyhow::Error>(c)
        });
    }
    while let Some(c) = connecting.join_next().await {
        start(c??);
    }
    Ok(tallies)
}

/// Reads frames until aborted, noting each one's latency while measuring.
async fn read(mut c: ProgressClient, measuring: Arc<AtomicBool>, tally: Shared) {
    while let Ok(frame) = c.next_frame().await {
        if !measuring.load(Ordering::Acquire) {
            continue;
        }
        let Some((kind, ts)) = head(frame.text()) else {
            continue;
        };
        let now_ms = crate::events::now_us() as f64 / 1000.0;
        let micros = ((now_ms - ts) * 1000.0).max(0.0) as u32;
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        t.all.push(micros);
        if kind == "execution.progress" {
            t.progress.push(micros);
        }
    }
}

/// `type` and `ts` of a message, read from its head: the server writes
/// them first (`{"type":"..","seq":N,"ts":T,...`), so 100,000 frames a
/// second need not be parsed whole on the client side of the benchmark.
fn head(text: &str) -> Option<(&str, f64)> {
    let rest = text.strip_prefix(r#"{"type":""#)?;
    let (kind, rest) = rest.split_once('"')?;
    let at = rest.find(r#""ts":"#)? + 5;
    let ts = &rest[at..];
    let end = ts.find([',', '}'])?;
    Some((kind, ts[..end].parse().ok()?))
}

/// The `q` quantile of the observations between two readings of one
/// histogram's cumulative buckets, interpolated as `histogram_quantile` does.
fn bucket_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == le)
                .map_or(0.0, |(_, n)| *n);
            (*le, n - was)
        })
        .collect();
    let total = counts.last().map_or(0.0, |(_, n)| *n);
    if total <= 0.0 {
        return 0.0;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, n) in counts {
        if n >= rank {
            if le.is_infinite() {
                return lower;
            }
            return lower + (le - lower) * (rank - below) / (n - below).max(f64::MIN_POSITIVE);
        }
        (lower, below) = (le, n);
    }
    lower
}

/// p50, p95, p99, max of microsecond samples, in ms.
fn percentiles(mut v: Vec<u32>) -> [f64; 4] {
    if v.is_empty() {
        return [0.0; 4];
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    [at(0.5), at(0.95), at(0.99), at(1.0)]
}

/// Starts one execution shaped by `s`; returns its id.
async fn submit(http: &reqwest::Client, base: &str, s: &WsScenario) -> anyhow::Result<i64> {
    // Enough tests to outlast the warm-up and the window.
    let per_sec = s.concurrency as u64 * 1000 / s.latency_ms.max(1);
    let tests = (per_sec * (s.measure_secs + 30)) as usize;
    let suite = json!({
        "description": format!("bench {}", s.name),
        "prompts": ["item {{i}}"],
        // Latency varies (p99 twice the median), so executions drift
        // apart and events come steadily rather than in lockstep bursts.
        "providers": [{"id": "mock:ws", "config": {"latency": {"medianMs": s.latency_ms, "p99Ms": 2 * s.latency_ms}}}],
        "tests": [{"description": "a test", "vars": {"i": (0..tests).map(|i| i.to_string()).collect::<Vec<_>>()}}],
    });
    let resp = http
        .post(format!("{base}/api/executions"))
        .json(&json!({"suite": suite, "maxConcurrency": s.concurrency, "cache": false}))
        .send()
        .await?;
    anyhow::ensure!(resp.status() == 202, "submit answered {}", resp.status());
    let body: serde_json::Value = resp.json().await?;
    body["id"].as_i64().context("no execution id")
}

/// The figures as a table.
pub fn table(figures: &[WsFigures]) -> String {
    let mut out = format!(
        "{:<8} {:>7} {:>9} {:>11} {:>9} {:>28} {:>11} {:>9} {:>9} {:>8}  target\n",
        "scenario",
        "clients",
        "progress/s",
        "frames/s",
        "per client",
        "latency p50/p95/p99/max ms",
        "server p99",
        "coalesced",
        "dropped",
        "server"
    );
    for f in figures {
        let l = f.latency_ms;
        out.push_str(&format!(
            "{:<8} {:>7} {:>9.0} {:>11.0} {:>9.1}/s {:>28} {:>9.2} ms {:>9.0} {:>9.0} {:>5.2} cores  {} ({})\n",
            f.scenario,
            f.subscribers,
            f.progress_per_client_per_sec,
            f.deliveries_per_sec,
            f.per_client_per_sec,
            format!("{:.2}/{:.2}/{:.2}/{:.1}", l[0], l[1], l[2], l[3]),
            f.server_p99_ms,
            f.coalesced,
            f.dropped,
            f.server_cpu_cores,
            f.target,
            if f.met { "met" } else { "MISSED" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_head_of_a_message_is_its_type_and_time() {
        let m = r#"{"type":"execution.progress","seq":9,"ts":1764672000123.456,"execution":1,"data":{"ts":1}}"#;
        assert_eq!(
            super::head(m),
            Some(("execution.progress", 1_764_672_000_123.456))
        );
        assert_eq!(super::head("{}"), None);
        let q = [1000u32, 2000, 3000, 4000];
        assert_eq!(super::percentiles(q.to_vec())[3], 4.0);
        let before = [(0.01, 0.0), (0.1, 0.0), (f64::INFINITY, 0.0)];
        let after = [(0.01, 50.0), (0.1, 100.0), (f64::INFINITY, 100.0)];
        // Rank 99 of 100 lies in (0.01, 0.1]: 49 of its 50.
        let q99 = super::bucket_quantile(&before, &after, 0.99);
        assert!((q99 - (0.01 + 0.09 * 49.0 / 50.0)).abs() < 1e-12, "{q99}");
    }
}
