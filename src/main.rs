//! The `promptgauge` command: parses the command line, loads the
//! configuration, and runs the chosen subcommand. It only wires.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use promptgauge::config::{Config, Overrides};
use promptgauge::{App, bench, cli, storage, telemetry};

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
    /// Run the load scenarios and print their figures; exit 1 if a target is missed.
    Bench(BenchCommand),
    /// Analytics upkeep: `rebuild` recomputes every rollup from the raw results.
    Analytics(AnalyticsCommand),
    /// Make a report (execution, model-comparison, cost, trend, performance).
    Report(ReportCommand),
    /// Analyze a prompt and suggest cheaper, better ones.
    Optimize(OptimizeCommand),
}

/// `promptgauge optimize` arguments.
#[derive(Args)]
struct OptimizeCommand {
    /// The prompt's text file (`-`: standard input).
    prompt_file: PathBuf,
    /// The model it runs on (`gpt-4o`, `openai:gpt-4o-mini`, `mock:x`): its tokenizer and prices.
    #[arg(long)]
    model: Option<String>,
    /// The stored suite it belongs to: compares models and reads failures on it.
    #[arg(long, value_name = "ID")]
    suite: Option<i64>,
    /// The prompt's index in that suite (from 0): its failures and repeated calls.
    #[arg(long, value_name = "N", requires = "suite")]
    prompt: Option<i64>,
    /// Print the whole answer as JSON.
    #[arg(long)]
    json: bool,
    /// Ask a promptgauge server instead of reading the local database.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

/// `promptgauge report` arguments.
#[derive(Args)]
struct ReportCommand {
    /// execution, model-comparison, cost, trend or performance.
    kind: String,
    /// The execution (execution reports).
    #[arg(long, value_name = "ID")]
    execution: Option<i64>,
    /// Start of the window: unix ms or RFC 3339 (model-comparison, cost).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// End of the window (default now).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The window ending now, e.g. 30d (model-comparison, cost, performance).
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
    /// day, week or month (trend).
    #[arg(long)]
    period: Option<String>,
    /// Only this stored suite (0: inline suites).
    #[arg(long, value_name = "ID")]
    suite: Option<i64>,
    /// json, md, html or csv (default: from -o's extension, else md).
    #[arg(long)]
    format: Option<String>,
    /// Write to FILE instead of printing.
    #[arg(short, long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Ask a promptgauge server instead of reading the local database.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
}

/// `promptgauge analytics` arguments.
#[derive(Args)]
struct AnalyticsCommand {
    #[command(subcommand)]
    action: AnalyticsAction,
}

#[derive(Subcommand)]
enum AnalyticsAction {
    /// Recompute the minute and hour rollups from the stored results, in one transaction.
    Rebuild,
}

/// `promptgauge bench` arguments.
#[derive(Args)]
struct BenchCommand {
    /// A suite scenario (smoke, standard, stress, or a .toml file; stored,
    /// compared with its baseline, exit 3 on a regression or missed target),
    /// or single scenarios (default: the queue ones): queue-1k, queue-10k,
    /// queue-100k-memory; ws-1k, ws-10k (WebSocket fan-out against a server
    /// in a child process); analytics (queries over 1M results); reports
    /// (execution and model-comparison reports over 1M results); optimize
    /// (prompt analysis and strategies for a 2,000-token prompt).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Where scenario databases and the cached 1M-result database live.
    #[arg(long, value_name = "DIR", default_value = "target/tmp/bench")]
    data_dir: PathBuf,
    /// Print the figures as JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Suite scenarios: make this run the baseline of its scenario on this
    /// machine class (later runs are compared with it).
    #[arg(long)]
    save_baseline: bool,
    /// Suite scenarios: write the run's Markdown section into FILE
    /// (between its markers; e.g. BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Internal: run one scenario on DB in this process and print its figures.
    #[arg(long, hide = true, value_name = "NAME", requires = "db")]
    one: Option<String>,
    /// Internal: the database of `--one`.
    #[arg(long, hide = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Internal: serve the bare WebSocket reference on PORT (ws-*-bare).
    #[arg(long, hide = true, value_name = "PORT")]
    bare_ws_server: Option<u16>,
    /// Internal: events per second of the bare reference.
    #[arg(long, hide = true, default_value_t = 100.0)]
    bare_rate: f64,
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
    #[arg(short = 'j', long = "max-concurrency", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
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
    limit_malloc_arenas();
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
    // Only commands that open this machine's database create its folder
    // (`run --server` and friends leave the disk alone).
    let local_db = match &command {
        Command::Serve(_) | Command::Migrate | Command::Analytics(_) => true,
        Command::Run(a) => a.server.is_none(),
        Command::Report(a) => a.server.is_none(),
        Command::Optimize(a) => a.server.is_none(),
        Command::Bench(a) => suite_scenario(&a.scenarios).is_some(),
    };
    if local_db && let Err(e) = config.prepare_database_dir() {
        eprintln!("promptgauge: {e}");
        return ExitCode::from(EXIT_CONFIG);
    }
    // `run` talks to a person through its progress line; only warnings
    // interrupt it unless RUST_LOG asks for more.
    let quiet = matches!(
        command,
        Command::Run(_) | Command::Report(_) | Command::Optimize(_)
    ) && std::env::var_os("RUST_LOG").is_none();
    telemetry::init(if quiet { "warn" } else { &config.log_filter });
    let outcome = match command {
        Command::Serve(args) => serve(config, args.demo),
        Command::Migrate => migrate(&config),
        Command::Run(args) => return run(args, &config),
        Command::Bench(args) => return bench(args, &config),
        Command::Report(args) => return report(args, &config),
        Command::Optimize(args) => return optimize(args, &config),
        Command::Analytics(args) => match args.action {
            AnalyticsAction::Rebuild => rebuild_rollups(&config),
        },
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("promptgauge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core)
/// and keeps freed memory in it; with SQLite's page caches filled on the
/// writer and reader threads, that held a peak RSS 50 MB above what was in
/// use (BENCHMARKS.md, queue-100k-memory). Two arenas, each thread with its
/// own tcache in front, keep RSS close to the heap at no measured cost.
/// Blocks of 1 MiB and more (a request body, a suite's test list) are
/// always their own mappings, returned to the system when freed: glibc's
/// default raises that threshold after the first large free, and the next
/// 20 MB body then landed in the heap and kept it from shrinking.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first in main, before any other thread exists;
    // mallopt only changes allocator tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
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

/// `promptgauge bench --scenario S`: a regression or a missed target.
const EXIT_BENCH_GATE: u8 = 3;

fn bench(args: BenchCommand, config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("promptgauge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(found) = suite_scenario(&args.scenarios) {
        let scenario = match found {
            Ok(s) => s,
            Err(e) => {
                eprintln!("promptgauge: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        return match runtime.block_on(bench_suite(&args, &scenario, config)) {
            Ok(run) if run.failed_gate() => ExitCode::from(EXIT_BENCH_GATE),
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("promptgauge: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(bench_inner(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("promptgauge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The suite scenario named by `--scenario` (a shipped one or a .toml
/// file), if that is what it names.
fn suite_scenario(names: &[String]) -> Option<Result<bench::suite::Scenario, String>> {
    let [name] = names else {
        return None;
    };
    let problems = |ps: Vec<promptgauge::suite::Problem>| {
        ps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if name.ends_with(".toml") {
        return Some(
            std::fs::read_to_string(name)
                .map_err(|e| format!("cannot read {name}: {e}"))
                .and_then(|t| bench::suite::Scenario::from_toml(&t).map_err(problems)),
        );
    }
    bench::suite::Scenario::shipped(name).map(|r| r.map_err(problems))
}

/// Runs a suite scenario, stores it, compares it with its baseline, prints it.
async fn bench_suite(
    args: &BenchCommand,
    s: &bench::suite::Scenario,
    config: &Config,
) -> anyhow::Result<bench::suite::Run> {
    config.prepare_database_dir()?;
    let metrics = promptgauge::metrics::Metrics::new()?;
    let storage = storage::Storage::open_with_busy_timeout(
        &config.database_path,
        config.db_busy_timeout,
        metrics.storage.clone(),
    )?;
    let quiet = args.json;
    // Ctrl-C stops the run after what it is measuring; it is stored as cancelled.
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_interrupt.cancel();
        }
    });
    let run = bench::suite::execute(
        &storage,
        s,
        &args.data_dir,
        args.save_baseline,
        &cancel,
        |id| {
            eprintln!(
                "benchmark run {id}: scenario {} ({} benchmarks)",
                s.name,
                s.benchmarks.len()
            )
        },
        |_, p| {
            if !quiet && p.state == "started" {
                eprintln!(
                    "  {} ({}/{}), sample {}/{} ...",
                    p.benchmark,
                    p.index + 1,
                    p.total,
                    p.sample,
                    p.samples
                );
            }
        },
    )
    .await;
    storage.close().await;
    let run = run?;
    if args.json {
        println!("{}", serde_json::to_string(&run)?);
    } else {
        print!("{}", bench::suite::table(&run));
    }
    if let Some(path) = &args.markdown {
        let command = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--markdown") && Some(a.as_str()) != path.to_str())
            .collect::<Vec<_>>()
            .join(" ");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let section = bench::suite::markdown(&run, &format!("promptgauge {command}"));
        std::fs::write(path, bench::suite::splice(&doc, &section))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the run's section into {}", path.display());
    }
    if run.baseline {
        eprintln!(
            "run {} is now the baseline of {} on {}",
            run.id.unwrap_or(0),
            run.scenario,
            run.machine.class
        );
    }
    Ok(run)
}

/// Runs each scenario in a child process (its own peak memory); returns
/// whether every target was met.
async fn bench_inner(args: BenchCommand) -> anyhow::Result<bool> {
    if let Some(port) = args.bare_ws_server {
        bench::bare_ws::serve(port, args.bare_rate).await?;
        return Ok(true);
    }
    if let (Some(name), Some(db)) = (&args.one, &args.db) {
        let s = bench::scenario(name).with_context(|| format!("unknown scenario {name:?}"))?;
        let figures = bench::queue::run(s, db).await?;
        println!("{}", serde_json::to_string(&figures)?);
        return Ok(true);
    }
    let names: Vec<String> = if args.scenarios.is_empty() {
        bench::SCENARIOS.iter().map(|s| s.name.to_owned()).collect()
    } else {
        args.scenarios.clone()
    };
    let mut all = Vec::new();
    let mut fan_out = Vec::new();
    let mut analytics_met = true;
    for name in &names {
        // Scenarios over their own data, in this process: (figures as
        // JSON, as a table, whether every target was met).
        let own: Option<(String, String, bool)> = match name.as_str() {
            "analytics" => {
                eprintln!("running {name} ...");
                let f = bench::analytics::run(&args.data_dir).await?;
                Some((
                    serde_json::to_string(&f)?,
                    bench::analytics::table(&f),
                    f.met(),
                ))
            }
            "optimize" => {
                eprintln!("running {name} ...");
                let f = bench::optimize::run(&args.data_dir).await?;
                Some((
                    serde_json::to_string(&f)?,
                    bench::optimize::table(&f),
                    f.met(),
                ))
            }
            "reports" => {
                eprintln!("running {name} ...");
                let f = bench::reports::run(&args.data_dir).await?;
                Some((
                    serde_json::to_string(&f)?,
                    bench::reports::table(&f),
                    f.met(),
                ))
            }
            _ => None,
        };
        if let Some((json, table, met)) = own {
            if args.json {
                println!("{json}");
            } else {
                print!("{table}");
            }
            analytics_met &= met;
            continue;
        }
        // Fan-out scenarios start their own server process and are the
        // client side themselves.
        if let Some(s) = bench::websocket::scenario(name) {
            eprintln!("running {name} ...");
            let figures = bench::websocket::run(s, &args.data_dir).await?;
            if args.json {
                println!("{}", serde_json::to_string(&figures)?);
            }
            fan_out.push(figures);
            continue;
        }
        let s = bench::scenario(name).with_context(|| {
            let known: Vec<&str> = bench::SCENARIOS
                .iter()
                .map(|s| s.name)
                .chain(bench::websocket::WS_SCENARIOS.iter().map(|s| s.name))
                .chain(["analytics", "reports", "optimize"])
                .collect();
            let suites: Vec<&str> = bench::suite::scenario::SHIPPED
                .iter()
                .map(|(n, _)| *n)
                .collect();
            format!(
                "unknown scenario {name:?}; suite scenarios: {} (or a .toml file); single ones: {}",
                suites.join(", "),
                known.join(", ")
            )
        })?;
        eprintln!("running {name} ...");
        let figures = bench::run_in_child(s, &args.data_dir).await?;
        if args.json {
            println!("{}", serde_json::to_string(&figures)?);
        }
        all.push(figures);
    }
    if !args.json {
        if !all.is_empty() {
            print!("{}", bench::table(&all));
        }
        if !fan_out.is_empty() {
            print!("{}", bench::websocket::table(&fan_out));
        }
    }
    Ok(all.iter().all(|f| f.met) && fan_out.iter().all(|f| f.met) && analytics_met)
}

fn optimize(args: OptimizeCommand, config: &Config) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::from(cli::EXIT_ERROR);
    };
    let args = cli::OptimizeArgs {
        prompt_file: args.prompt_file,
        model: args.model,
        suite: args.suite,
        prompt: args.prompt,
        json: args.json,
        server: args.server,
    };
    ExitCode::from(runtime.block_on(cli::optimize(args, config)))
}

/// A multi-threaded runtime for a one-shot command (the error printed).
fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("promptgauge: cannot start the async runtime: {e}"))
        .ok()
}

fn report(args: ReportCommand, config: &Config) -> ExitCode {
    let Some(runtime) = runtime() else {
        return ExitCode::from(cli::EXIT_ERROR);
    };
    let args = cli::ReportArgs {
        kind: args.kind,
        execution: args.execution,
        from: args.from,
        to: args.to,
        window: args.window,
        period: args.period,
        suite: args.suite,
        format: args.format,
        output: args.output,
        server: args.server,
    };
    ExitCode::from(runtime.block_on(cli::report(args, config)))
}

fn rebuild_rollups(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let metrics = promptgauge::metrics::Metrics::new()?;
        let storage = storage::Storage::open_with_busy_timeout(
            &config.database_path,
            config.db_busy_timeout,
            metrics.storage.clone(),
        )?;
        storage.set_minute_retention(config.rollup_minute_retention);
        let started = std::time::Instant::now();
        let rows = storage.rebuild_rollups().await;
        storage.close().await;
        println!(
            "{}: {} rollup rows rebuilt from the stored results in {:.2} s",
            config.database_path.display(),
            rows?,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
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
