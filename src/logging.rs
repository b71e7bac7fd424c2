//! Log setup. `RUST_LOG` (default `info`) sets the verbosity of the gateway's
//! own log lines. Dependencies are capped at `info` whatever `RUST_LOG` says:
//! at debug and trace, pingora and the HTTP clients print whole request
//! headers, which carry cookies, authorization codes and bearer tokens.

use tracing::Level;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// True for events that may be written: the gateway's own at any level,
/// anything else at `info` or above.
pub fn allowed(target: &str, level: &Level) -> bool {
    target.starts_with("docusign_gateway") || *level <= Level::INFO
}

/// Installs the global subscriber (stderr). Call once, at start.
pub fn init() {
    let env_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let cap = filter_fn(|meta| allowed(meta.target(), meta.level()));
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(env_filter)
                .with_filter(cap),
        )
        .try_init();
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
