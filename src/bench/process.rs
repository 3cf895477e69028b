//! The server side of a fan-out benchmark: `promptgauge serve` (or the
//! bare reference) in a child process, its figures read from `/metrics`
//! and `/proc`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;

/// The server under test: `promptgauge serve` in a child process.
pub(super) struct Server {
    child: tokio::process::Child,
    pub(super) base: String,
    pid: u32,
}

/// Server figures at one moment.
pub(super) struct ServerSample {
    pub(super) cpu_seconds: f64,
    /// `promptgauge_websocket_delivery_seconds` buckets: (le, count).
    pub(super) delivery: Vec<(f64, f64)>,
    pub(super) coalesced: f64,
    pub(super) dropped: f64,
    pub(super) resyncs: f64,
}

impl Server {
    pub(super) async fn start(db: &Path, max_connections: usize) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--port", &port.to_string(), "--database-path"])
            .arg(db)
            .env("WS_MAX_CONNECTIONS", max_connections.to_string())
            .env("RUST_LOG", "warn")
            .env_remove("API_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let pid = child.id().context("the server exited at once")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("{base}/api/performance/health"))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { child, base, pid })
    }

    /// The bare reference server on a free port.
    pub(super) async fn bare(rate: f64) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .args([
                "bench",
                "--bare-ws-server",
                &port.to_string(),
                "--bare-rate",
                &rate.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the bare server")?;
        let pid = child.id().context("the bare server exited at once")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "the bare server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            child,
            base: format!("ws://127.0.0.1:{port}/"),
            pid,
        })
    }

    pub(super) async fn sample(&self, http: &reqwest::Client) -> anyhow::Result<ServerSample> {
        let text = if self.base.starts_with("ws://") {
            String::new()
        } else {
            http.get(format!("{}/metrics", self.base))
                .send()
                .await?
                .text()
                .await?
        };
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let delivery = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("promptgauge_websocket_delivery_seconds_bucket{le=\"")?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse().ok()?))
            })
            .collect();
        Ok(ServerSample {
            cpu_seconds: process_cpu_seconds(self.pid),
            delivery,
            coalesced: value("promptgauge_websocket_messages_coalesced_total"),
            dropped: value("promptgauge_websocket_messages_dropped_total"),
            resyncs: value("promptgauge_websocket_resyncs_total"),
        })
    }

    /// Stops the server (SIGTERM, then kill); returns its peak RSS in MB.
    pub(super) async fn stop(mut self) -> f64 {
        let peak = peak_rss_mb(self.pid);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: sending a signal to our own child has no memory effects.
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        peak
    }
}

/// utime + stime of a process, seconds (Linux).
pub(crate) fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 11 and 12 after ")".
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let t = 100;
    if t > 0 { t as f64 } else { 100.0 }
}

/// A process's peak resident memory (`VmHWM`), MB.
fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1000.0)
}
