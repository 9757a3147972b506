//! Logging: structured `tracing` output, filtered by `RUST_LOG` (default
//! `info`), written to stderr so stdout stays for command output. Secrets never reach a log line: the database URL is logged masked,
//! and target properties are never logged at all.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are no-ops (tests call it
/// from many places).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
