//! Log setup. `[log] level` (or `RUST_LOG`, which wins when set) sets the
//! verbosity of the gateway's own log lines; `[log] format` picks text or
//! JSON. Dependencies are capped at `info` whatever `RUST_LOG` says:
//! at debug and trace, pingora and the HTTP clients print whole request
//! headers, which carry cookies, authorization codes and bearer tokens.

use tracing::Level;

use crate::config::LogFormat;
use crate::ops::metrics::metrics;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

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

/// Installs the global subscriber (stderr): text or JSON lines, at `level`
/// (a filter directive) unless `RUST_LOG` is set. Call once, at start.
pub fn init(format: LogFormat, level: &str) {
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok());
    let env_filter = from_env
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let cap = filter_fn(|meta| allowed(meta.target(), meta.level()));
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(HandshakeFailures);
    let _ = if format == LogFormat::Json {
        registry
            .with(layer.json().with_filter(env_filter).with_filter(cap))
            .try_init()
    } else {
        registry
            .with(layer.with_filter(env_filter).with_filter(cap))
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_are_capped_at_info() {
        assert!(allowed("docusign_gateway::gateway", &Level::TRACE));
        assert!(allowed("pingora_proxy", &Level::INFO));
        assert!(allowed("pingora_proxy", &Level::WARN));
        assert!(!allowed("pingora_proxy", &Level::DEBUG));
        assert!(!allowed("reqwest::connect", &Level::TRACE));
    }
}
