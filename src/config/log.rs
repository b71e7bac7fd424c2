//! `[log]`: the format and verbosity of the gateway's log lines.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Origins};
use super::raw::RawLog;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive such as `info` or `docusign_gateway=debug`.
    pub level: String,
    /// One line per request (at `info`, target `docusign_gateway::access`).
    pub access: bool,
    /// One line per security event (at `info`, target
    /// `docusign_gateway::audit`), whatever `level` says.
    pub audit: bool,
}

pub(super) fn validate(raw: RawLog, origins: &Origins) -> Result<LogConfig, ConfigError> {
    if raw.level.trim().is_empty() || tracing_subscriber::EnvFilter::try_new(&raw.level).is_err() {
        return Err(ConfigError::invalid(
            "log.level",
            "expected a level (error, warn, info, debug, trace) or a tracing filter",
            &raw.level,
            origins,
        ));
    }
    Ok(LogConfig {
        format: raw.format,
        level: raw.level,
        access: raw.access,
        audit: raw.audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_level_are_checked() {
        let raw = RawLog {
            format: LogFormat::Json,
            level: "docusign_gateway=debug".into(),
            access: false,
            audit: true,
        };
        assert_eq!(
            validate(raw, &Origins::default()).unwrap().format,
            LogFormat::Json
        );
        let raw = RawLog {
            level: " ".into(),
            ..RawLog::default()
        };
        assert_eq!(
            validate(raw, &Origins::default()).unwrap_err().key,
            "log.level"
        );
    }
}
