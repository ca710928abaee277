//! Logging: a `tracing` subscriber writing to stderr, plain text for journald by default,
//! JSON lines when `daemon.log_format = "json"`. `RUST_LOG` overrides the level (default
//! `info`). Secrets never reach a log line: webhooks are logged by name only, and URLs
//! that may carry credentials are stripped before they get into an error.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; later calls are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // journald stamps every line itself; a second timestamp is noise there.
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let result = match (format, under_journald) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, true) => builder.without_time().try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
    // Err only means a subscriber is already installed (tests call this repeatedly).
    let _ = result;
}

/// An error and its sources on one line, "a: b: c", skipping causes already quoted: how
/// errors are written to logs and to the terminal.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
