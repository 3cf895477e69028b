//! The `promptgauge` command: parses the command line, loads the
//! configuration, and runs the chosen subcommand. It only wires.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use promptgauge::config::{Config, Overrides};
use promptgauge::{App, cli, storage, telemetry};

/// Runs LLM prompt test suites at scale; Prometheus-native.
#[derive(Parser)]
#[command(name = "promptgauge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: Flags,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and /metrics (the default).
    Serve(ServeCommand),
    /// Apply pending database migrations and print the schema version.
    Migrate,
    /// Run a suite and exit 0 (all passed), 100 (some failed) or 1 (error).
    Run(RunCommand),
}

/// `promptgauge serve` arguments.
#[derive(Args, Default)]
struct ServeCommand {
    /// Store the example suites and keep a gentle mock workload running.
    #[arg(long)]
    demo: bool,
}

/// `promptgauge run` arguments.
#[derive(Args)]
struct RunCommand {
    /// The suite file (promptfoo-style YAML or JSON).
    suite: PathBuf,
    /// Write every result to FILE: .json (promptfoo's shape), .jsonl or .csv. Repeatable.
    #[arg(short, long = "output", value_name = "FILE")]
    output: Vec<PathBuf>,
    /// Submit to a promptgauge server (e.g. http://127.0.0.1:3001) instead of running here.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Tests in flight per provider for this execution.
    #[arg(short = 'j', long = "max-concurrency", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_concurrency: Option<u32>,
    /// Call the providers even when a cached response exists.
    #[arg(long)]
    no_cache: bool,
}

/// Flags override the environment variable of the same name.
#[derive(Args)]
struct Flags {
    /// Address to bind [env: HOST] [default: 127.0.0.1]
    #[arg(long, global = true, value_name = "IP")]
    host: Option<String>,
    /// Port to bind; 0 picks a free one [env: PORT] [default: 3001]
    #[arg(long, global = true, allow_hyphen_values = true)]
    port: Option<String>,
    /// SQLite database file [env: DATABASE_PATH] [default: ./data/promptgauge.db]
    #[arg(long, global = true, value_name = "PATH")]
    database_path: Option<String>,
    /// Starting per-provider test concurrency [env: MAX_CONCURRENT_TESTS] [default: 20]
    #[arg(long, global = true, value_name = "N", allow_hyphen_values = true)]
    max_concurrent_tests: Option<String>,
    /// Time to live of every cache, in ms [env: CACHE_TTL] [default: per cache]
    #[arg(long, global = true, value_name = "MS", allow_hyphen_values = true)]
    cache_ttl: Option<String>,
    /// Monitor sampling interval, in ms [env: PERFORMANCE_MONITORING_INTERVAL] [default: 5000]
    #[arg(long, global = true, value_name = "MS", allow_hyphen_values = true)]
    performance_monitoring_interval: Option<String>,
    /// Memory usage warning threshold, in percent [env: MEMORY_THRESHOLD] [default: 80]
    #[arg(
        long,
        global = true,
        value_name = "PERCENT",
        allow_hyphen_values = true
    )]
    memory_threshold: Option<String>,
}

impl Flags {
    fn into_overrides(self) -> Overrides {
        Overrides {
            host: self.host,
            port: self.port,
            database_path: self.database_path,
            max_concurrent_tests: self.max_concurrent_tests,
            cache_ttl: self.cache_ttl,
            performance_monitoring_interval: self.performance_monitoring_interval,
            memory_threshold: self.memory_threshold,
        }
    }
}

/// Exit code for configuration errors (as for usage errors).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.flags.into_overrides()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("promptgauge: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let command = cli
        .command
        .unwrap_or(Command::Serve(ServeCommand::default()));
    // `run` talks to a person through its progress line; only warnings
    // interrupt it unless RUST_LOG asks for more.
    let quiet = matches!(command, Command::Run(_)) && std::env::var_os("RUST_LOG").is_none();
    telemetry::init(if quiet { "warn" } else { &config.log_filter });
    let outcome = match command {
        Command::Serve(args) => serve(config, args.demo),
        Command::Migrate => migrate(&config),
        Command::Run(args) => return run(args, &config),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promptgauge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut app = App::build(config).await?;
        if demo {
            app = app.with_demo();
        }
        app.run(shutdown_signal()).await
    })
}

fn run(args: RunCommand, config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promptgauge: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_ERROR);
        }
    };
    let args = cli::RunArgs {
        suite: args.suite,
        outputs: args.output,
        server: args.server,
        max_concurrency: args.max_concurrency,
        no_cache: args.no_cache,
    };
    ExitCode::from(runtime.block_on(cli::run(args, config)))
}

fn migrate(config: &Config) -> anyhow::Result<()> {
    let path = &config.database_path;
    let report = storage::migrate(path)?;
    if report.applied.is_empty() {
        println!(
            "{}: schema version {} (up to date)",
            path.display(),
            report.to
        );
    } else {
        println!(
            "{}: schema version {} (was {}; applied {})",
            path.display(),
            report.to,
            report.from,
            report.applied.join(", ")
        );
    }
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
