//! `promptgauge bench`: load scenarios with the figures the issues set as
//! targets. Each scenario runs in a child process of its own, so its peak
//! memory is its own, on a fresh database (a copy of the cached 1M-result
//! database where the scenario starts from one).

pub mod analytics;
pub mod bare_ws;
pub mod fixtures;
pub mod history;
pub mod optimize;
mod process;
pub(crate) use process::process_cpu_seconds;
pub mod queue;
pub mod reports;
pub mod suite;
pub mod websocket;

use std::path::{Path, PathBuf};

pub use queue::{Figures, SCENARIOS, Scenario, Target};

/// The scenario called `name`.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// A fresh database for `s` under `dir`: empty, or a copy of the cached
/// preloaded one.
pub async fn prepare(s: &Scenario, dir: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join(format!("run-{}.db", s.name));
    fixtures::remove_db(&db);
    if s.preloaded {
        let source = fixtures::preloaded_db(dir).await?;
        std::fs::copy(&source, &db)
            .with_context(|| format!("cannot copy {} to {}", source.display(), db.display()))?;
    }
    Ok(db)
}

/// Runs queue scenario `s` in a child process of this binary (`bench
/// --one`), so its peak memory is its own, on a fresh database under `dir`.
pub async fn run_in_child(s: &Scenario, dir: &Path) -> anyhow::Result<Figures> {
    use anyhow::Context;
    let db = prepare(s, dir).await?;
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "--one", s.name, "--db"])
        .arg(&db)
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot start the scenario process")?;
    fixtures::remove_db(&db);
    anyhow::ensure!(
        out.status.success(),
        "scenario {} failed ({})",
        s.name,
        out.status
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("scenario {} printed no figures", s.name))
}

/// The figures as a table.
pub fn table(figures: &[Figures]) -> String {
    let mut out = format!(
        "{:<18} {:>9} {:>8} {:>7} {:>10} {:>9} {:>8} {:>7} {:>9} {:>9}  target\n",
        "scenario",
        "stored",
        "results",
        "secs",
        "results/s",
        "steady/s",
        "ideal/s",
        "writer",
        "peak RSS",
        "(SQLite)"
    );
    for f in figures {
        out.push_str(&format!(
            "{:<18} {:>9} {:>8} {:>7.2} {:>10.0} {:>9.0} {:>8.0} {:>6.0}% {:>9} {:>9}  {} ({})\n",
            f.scenario,
            f.preloaded,
            f.results,
            f.seconds,
            f.rate,
            f.steady_rate,
            f.ideal_rate,
            100.0 * f.writer_busy,
            f.peak_rss_mb
                .map_or("-".to_owned(), |m| format!("{m:.0} MB")),
            format!("{:.0} MB", f.sqlite_peak_mb),
            f.target,
            if f.met { "met" } else { "MISSED" },
        ));
    }
    out
}
