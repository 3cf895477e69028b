//! Logging: a `tracing` subscriber writing human-readable lines to stderr.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber with `filter` (already validated by
/// `Config`). A second call is a no-op, so tests may call it freely.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for people; log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
