//! Log setup. `[log] level` (or `RUST_LOG`, which wins when set) sets the
//! verbosity of the gateway's own log lines; `[log] format` picks text or
//! JSON. Dependencies are capped at `info` whatever `RUST_LOG` says:
//! at debug and trace, pingora and the HTTP clients print whole request
//! headers, which carry cookies, authorization codes and bearer tokens.
//!
//! Lines leave the request path at once: workers append them to a bounded
//! queue (`log_queue`) that one thread writes to stderr. A full queue
//! (stderr blocked) drops lines, counted by `dsgw_log_lines_dropped`, rather
//! than stall requests. ANSI colours only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Mutex;

use tracing::Level;

use crate::config::LogFormat;
use crate::ops::access_log;
use crate::ops::log_queue::{LogQueue, QueueWriter, LOG_BUFFER_BYTES};
use crate::ops::metrics::{metrics, register_live_gauge};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::prelude::*;

/// The writer thread, until [`flush`].
static WRITER: Mutex<Option<LogQueue>> = Mutex::new(None);

/// True for events that may be written: the gateway's own at any level,
/// anything else at `info` or above.
pub fn allowed(target: &str, level: &Level) -> bool {
    target.starts_with("docusign_gateway") || *level <= Level::INFO
}

/// Counts failed TLS handshakes on the gateway's listener. pingora reports
/// them only as an error log line ("Downstream handshake error/timeout"
/// from its listening service), so this layer watches for that line (it
/// sees every event, before any level filter).
struct HandshakeFailures;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HandshakeFailures {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        // pingora's `log` records arrive through tracing-log, whose metadata
        // names no real target: the level and the text identify the line.
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        struct Message(bool);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}").contains("Downstream handshake");
                }
            }
        }
        let mut m = Message(false);
        event.record(&mut m);
        if m.0 {
            metrics().tls_handshake_failures.inc();
        }
    }
}

/// Installs the global subscriber (stderr, through the queue): text or JSON
/// lines, at `level` (a filter directive) unless `RUST_LOG` is set. Call
/// once, at start; call [`flush`] before the process exits.
pub fn init(format: LogFormat, level: &str) {
    let (queue, writer) = LogQueue::start(std::io::stderr(), LOG_BUFFER_BYTES);
    if let Ok(mut slot) = WRITER.lock() {
        *slot = Some(queue);
    }
    install(writer, format, level, std::io::stderr().is_terminal());
}

/// Installs the global subscriber writing to `writer` (the workers' end of
/// a log queue): what [`init`] does once it has the queue. `ansi`: colours,
/// for a terminal. Does nothing if a subscriber is installed already.
pub fn install(writer: QueueWriter, format: LogFormat, level: &str, ansi: bool) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok());
    let env_filter = from_env
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Its hint says "any level" (the gateway's own lines may be at trace),
    // so the combined hint below is the configured level's.
    let cap = filter_fn(|meta| allowed(meta.target(), meta.level()))
        .with_max_level_hint(LevelFilter::TRACE);
    let counter = writer.clone();
    register_live_gauge(
        "dsgw_log_lines_dropped",
        "Log lines dropped because the log queue was full",
        move || counter.dropped() as i64,
    );
    if !ansi {
        // Access lines skip the generic formatter (same layout, same queue).
        access_log::install(writer.clone(), format);
        crate::ops::audit::install(writer.clone(), format);
    }
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    // Only errors reach the handshake counter: so the subscriber's level
    // hint stays the configured one, and `log` records below it (pingora's
    // debug lines) are discarded before they become events.
    let registry =
        tracing_subscriber::registry().with(HandshakeFailures.with_filter(LevelFilter::ERROR));
    // One filter, whose level hint is the configured level's: `try_init`
    // sets `log`'s maximum level from it.
    let filter = env_filter.and(cap);
    let _ = if format == LogFormat::Json {
        registry.with(layer.json().with_filter(filter)).try_init()
    } else {
        registry.with(layer.with_filter(filter)).try_init()
    };
    // `try_init` lets every `log` record through to tracing; pingora writes
    // many at debug. Stop them at the source, above the level in use.
    log::set_max_level(log_level(LevelFilter::current()));
}

/// `log`'s level filter for tracing's.
fn log_level(level: LevelFilter) -> log::LevelFilter {
    match level.into_level() {
        None => log::LevelFilter::Off,
        Some(Level::ERROR) => log::LevelFilter::Error,
        Some(Level::WARN) => log::LevelFilter::Warn,
        Some(Level::INFO) => log::LevelFilter::Info,
        Some(Level::DEBUG) => log::LevelFilter::Debug,
        Some(Level::TRACE) => log::LevelFilter::Trace,
    }
}

/// Writes the queued lines and stops the writer thread. Call right before
/// the process exits.
pub fn flush() {
    let queue = WRITER.lock().ok().and_then(|mut slot| slot.take());
    if let Some(queue) = queue {
        queue.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_follow_tracing_levels() {
        assert_eq!(log_level(LevelFilter::INFO), log::LevelFilter::Info);
        assert_eq!(log_level(LevelFilter::ERROR), log::LevelFilter::Error);
        assert_eq!(log_level(LevelFilter::OFF), log::LevelFilter::Off);
        assert_eq!(log_level(LevelFilter::TRACE), log::LevelFilter::Trace);
    }

    #[test]
    fn dependencies_are_capped_at_info() {
        assert!(allowed("docusign_gateway::gateway", &Level::TRACE));
        assert!(allowed("pingora_proxy", &Level::INFO));
        assert!(allowed("pingora_proxy", &Level::WARN));
        assert!(!allowed("pingora_proxy", &Level::DEBUG));
        assert!(!allowed("reqwest::connect", &Level::TRACE));
    }
}
