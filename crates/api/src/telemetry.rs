//! Logging set-up, in one place: `tracing` with `RUST_LOG` for the level and `LOG_FORMAT` for
//! the shape (`pretty` for people, `json` for machines). Log lines never carry a token, a
//! password or a secret: those types do not print their content.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The log filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,actix_http::h1::dispatcher=off";

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init(format: LogFormat) {
    // Without RUST_LOG: info, but not actix-http's connection-level ERROR lines, which a
    // malformed request (already answered 400) or a client hanging up would print, so that
    // any client could fill the log with errors that are not the server's.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // Colours only for a person at a terminal (and then not with NO_COLOR): a log redirected to
    // a file or collected by a supervisor gets plain text, not escape codes.
    let builder = if std::io::stdout().is_terminal() { builder } else { builder.with_ansi(false) };
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
