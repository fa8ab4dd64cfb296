//! Structured logs via tracing. `RUST_LOG` picks the level (default `info`);
//! `SLUICE_LOG_FORMAT=json` writes one JSON object per line (with the current spans, such as
//! an API call's `request_id`), otherwise human-readable lines.

/// Installs the global subscriber. Recipient addresses are logged at debug level only.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let json = std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).with_span_list(false).init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
}
