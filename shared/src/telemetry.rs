//! Structured logs via tracing. `RUST_LOG` picks the level (default `info`);
//! `SLUICE_LOG_FORMAT=json` is not offered yet: logs are human-readable lines.

/// Installs the global subscriber. Recipient addresses are logged at debug level only.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
