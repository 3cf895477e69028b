//! `spawn_app()` and typed helpers shared by every test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use promptgauge::events::EventBus;
use promptgauge::storage::{NewExecution, NewTestResult, Storage};
use promptgauge::{App, Config};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running app and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub storage: Storage,
    /// The in-process event stream (alerts, ...).
    pub events: EventBus,
    pub db_path: PathBuf,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    dir: TempDir,
}

/// Starts the app with defaults, port 0 and a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app after `configure` adjusted the test config.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("promptgauge.db");
    spawn_app_at(dir, db_path, configure).await
}

/// Starts the app on an existing folder and database path.
pub async fn spawn_app_at(
    dir: TempDir,
    db_path: PathBuf,
    configure: impl FnOnce(&mut Config),
) -> TestApp {
    promptgauge::telemetry::init("warn");
    promptgauge::common::tls::install_crypto_provider();
    let mut config = Config {
        port: 0,
        database_path: db_path.clone(),
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let storage = app.storage().clone();
    let events = app.events().clone();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone().cancelled_owned()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        storage,
        events,
        db_path,
        shutdown,
        server,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    /// GET that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("JSON body")
    }

    /// Stores an example suite; returns its id.
    pub async fn store_example(&self, name: &str) -> i64 {
        let res = self
            .post_raw("/api/suites", "application/yaml", &example(name))
            .await;
        assert!(
            res.status().is_success(),
            "storing {name}: {}",
            res.status()
        );
        let body: serde_json::Value = res.json().await.expect("JSON body");
        body["id"].as_i64().expect("suite id")
    }

    /// Starts an execution; returns its id.
    pub async fn submit(&self, body: serde_json::Value) -> i64 {
        let res = self.post_json("/api/executions", &body).await;
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("JSON body");
        assert_eq!(status, 202, "{body}");
        body["id"].as_i64().expect("execution id")
    }

    /// Polls the execution until it ends (or a minute passes: a hang is a
    /// failure, not a wait).
    pub async fn wait_done(&self, id: i64) -> serde_json::Value {
        self.wait_for(id, |e| {
            matches!(
                e["status"].as_str(),
                Some("completed" | "failed" | "cancelled")
            )
        })
        .await
    }

    /// Polls the execution until `done` holds for its view.
    pub async fn wait_for(
        &self,
        id: i64,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let view = self.get_json(&format!("/api/executions/{id}")).await;
            if done(&view) {
                return view;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "execution {id} stuck: {view}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn metrics_text(&self) -> String {
        let res = self.get("/metrics").await;
        assert_eq!(res.status(), 200);
        res.text().await.expect("body")
    }

    /// Shuts down gracefully, asserts it went well, and hands back the
    /// folder so the database can be inspected or reopened.
    pub async fn stop(self) -> (TempDir, PathBuf) {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("clean shutdown");
        (self.dir, self.db_path)
    }
}

/// The text of `examples/NAME.yaml`.
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of one sample line (`name{labels} value`) in an exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// A stored execution to hang results on.
pub async fn new_execution(storage: &Storage) -> i64 {
    storage
        .create_execution(NewExecution {
            config: "{}".to_owned(),
            use_cache: true,
            ..NewExecution::default()
        })
        .await
        .expect("execution")
        .0
}

/// `count` plausible results with ids `first_id..`.
pub fn results(execution_id: i64, first_id: i64, count: i64) -> Vec<NewTestResult> {
    (first_id..first_id + count)
        .map(|id| NewTestResult {
            id: Some(id),
            execution_id,
            prompt_idx: id % 3,
            test_idx: id,
            provider: "mock:fast".to_owned(),
            model: ["gpt-4o-mini", "claude-3-haiku", "llama3"][(id % 3) as usize].to_owned(),
            passed: id % 5 != 0,
            score: if id % 5 != 0 { 1.0 } else { 0.4 },
            failure_reason: if id % 5 != 0 { 0 } else { 1 },
            execution_time_ms: 50 + id % 700,
            input_tokens: 40,
            output_tokens: 120,
            cost_usd: 0.00012,
            output: Some(format!("answer number {id}")),
            created_at: 1_700_000_000_000 + id,
            ..NewTestResult::default()
        })
        .collect()
}

/// Runs the real binary with `args` and extra environment.
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_promptgauge"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A stray variable from the developer's shell must not change the outcome.
    for var in [
        "API_TOKEN",
        "RUST_LOG",
        "HOST",
        "MAX_CONCURRENT_TESTS",
        "CACHE_TTL",
    ] {
        if !env.iter().any(|(k, _)| *k == var) {
            cmd.env_remove(var);
        }
    }
    cmd.output().expect("run promptgauge")
}

/// Opens the database file directly, to check what is really on disk.
pub fn open_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open db")
}

/// Kills the child if the test fails before it does.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (closed again at once; the child binds it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (30 s at most) until `url` answers 2xx; panics with the log if
/// `child` exits first.
pub async fn wait_ready(url: &str, child: &mut KillOnDrop, log: &Path) {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = client.get(url).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{url}: the process exited ({status}): {log}");
        }
        assert!(std::time::Instant::now() < deadline, "{url} not ready");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Starts a real Alertmanager (Debian `prometheus-alertmanager`) on a free
/// loopback port with a receiver that sends nothing; returns it, ready, and
/// its base URL.
pub async fn start_alertmanager(dir: &Path) -> (KillOnDrop, String) {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    let port = free_port();
    let log_path = dir.join("alertmanager.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus-alertmanager on PATH (apt-get install prometheus-alertmanager)");
    let mut child = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"), &mut child, &log_path).await;
    (child, base)
}

/// Polls `check` every 50 ms until it gives `Ok` (30 s at most: a hang is
/// a failure, not a wait); panics with `what` and the last `Err`.
pub async fn eventually<T, E: std::fmt::Debug, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "{what}: still {last:?}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Waits until the monitor has taken at least `n` samples.
pub async fn wait_samples(app: &TestApp, n: usize) {
    let path = "/api/performance/metrics/process_resident_memory_bytes?window=1h";
    eventually("monitor samples", || async {
        let res = app.get(path).await;
        if res.status() != 200 {
            return Err(res.status().to_string());
        }
        let body: serde_json::Value = res.json().await.unwrap();
        let taken = body["samples"].as_array().map_or(0, Vec::len);
        if taken >= n {
            Ok(())
        } else {
            Err(format!("{taken} samples"))
        }
    })
    .await
}
