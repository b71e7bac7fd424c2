//! Configuration: one TOML file plus `DSGW_<SECTION>_<KEY>` environment
//! overrides, parsed and validated once at start into typed structs.
//!
//! Request-handling code only ever sees [`Config`]; raw TOML and environment
//! variables stay in this module. Every error names the offending key and says
//! what is expected.

mod hosts;

pub use hosts::HostPattern;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::util::secret::Secret;

/// The DocuSign account server of the developer sandbox.
pub const DEMO_AUTH_SERVER: &str = "https://account-d.docusign.com";
/// The DocuSign account server of production.
pub const PRODUCTION_AUTH_SERVER: &str = "https://account.docusign.com";
/// Prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "DSGW_";
/// Longest time a login may take between `/auth/login` and the callback.
pub const MAX_LOGIN_TIMEOUT_SECS: u64 = 600;

/// A configuration error: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (`session.secret`), environment variable or file path.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// The file format (raw, as written by the operator).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    server: RawServer,
    docusign: RawDocusign,
    session: RawSession,
    log: RawLog,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: String,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    public_url: String,
    threads: u64,
    metrics_listen: Option<String>,
    grace_period_secs: u64,
    upgrade_sock: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            threads: 2,
            metrics_listen: None,
            grace_period_secs: 10,
            upgrade_sock: "/tmp/docusign-gateway-upgrade.sock".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDocusign {
    environment: String,
    auth_server: Option<String>,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    callback_path: String,
    allowed_api_hosts: Vec<String>,
    allow_plain_http: bool,
    request_timeout_secs: u64,
    refresh_token_ttl_secs: u64,
}

impl Default for RawDocusign {
    fn default() -> Self {
        RawDocusign {
            environment: "demo".into(),
            auth_server: None,
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["signature".into()],
            callback_path: "/auth/docusign/callback".into(),
            allowed_api_hosts: vec!["*.docusign.net".into()],
            allow_plain_http: false,
            request_timeout_secs: 10,
            refresh_token_ttl_secs: 30 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSession {
    cookie_name: String,
    secure_cookie: bool,
    secret: String,
    ttl_secs: u64,
    refresh_before_expiry_secs: u64,
    max_sessions: u64,
    login_timeout_secs: u64,
    max_pending_logins: u64,
    api_token_ttl_secs: u64,
}

impl Default for RawSession {
    fn default() -> Self {
        RawSession {
            cookie_name: "dsgw_session".into(),
            secure_cookie: true,
            secret: String::new(),
            ttl_secs: 30 * 24 * 3600,
            refresh_before_expiry_secs: 300,
            max_sessions: 100_000,
            login_timeout_secs: MAX_LOGIN_TIMEOUT_SECS,
            max_pending_logins: 10_000,
            api_token_ttl_secs: 30 * 24 * 3600,
        }
    }
}

// ---------------------------------------------------------------------------
// The validated configuration handed to the gateway.
// ---------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub docusign: DocusignConfig,
    pub session: SessionConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub json: bool,
    /// A `tracing` filter directive such as `info` or `docusign_gateway=debug`.
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How clients reach the gateway, without a trailing slash.
    pub public_url: Url,
    pub threads: usize,
    /// Where Prometheus metrics are served; none when unset.
    pub metrics_listen: Option<SocketAddr>,
    /// How long in-flight requests get to finish after SIGTERM or SIGQUIT.
    pub grace_period: Duration,
    /// The socket through which listening sockets are handed to a new
    /// process on a zero-downtime upgrade.
    pub upgrade_sock: std::path::PathBuf,
}

#[derive(Debug, Clone)]
pub struct DocusignConfig {
    /// The OAuth ("account server") base, e.g. `https://account-d.docusign.com`.
    pub auth_server: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    pub callback_path: String,
    /// `public_url` + `callback_path`.
    pub redirect_uri: Url,
    pub allowed_api_hosts: Vec<HostPattern>,
    pub allow_plain_http: bool,
    pub request_timeout: Duration,
    /// How long DocuSign's refresh tokens live (DocuSign does not say in its
    /// answer): no session outlives it.
    pub refresh_token_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub cookie_name: String,
    /// Name of the short-lived cookie that binds a login to its browser.
    pub login_cookie_name: String,
    pub secure_cookie: bool,
    pub secret: Secret,
    pub ttl: Duration,
    pub refresh_before_expiry: Duration,
    pub max_sessions: usize,
    pub login_timeout: Duration,
    pub max_pending_logins: usize,
    /// Lifetime of gateway-issued API tokens (never beyond their session).
    pub api_token_ttl: Duration,
}

impl Config {
    /// Reads `path` and applies the `DSGW_*` variables found in `env`.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::from_toml_str(&read_file(path)?, env)
    }

    /// Parses TOML text and applies the `DSGW_*` variables found in `env`.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        Self::from_raw(RawConfig::parse(text, env)?)
    }

    /// Validates a parsed configuration.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        validate(raw)
    }
}

impl RawConfig {
    /// Parses TOML text and overlays the `DSGW_*` variables found in `env`.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RawConfig, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new("<file>", format!("not valid TOML: {}", e.message()))
        })?;
        apply_env(&mut table, env)?;
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let message = e.inner().message().to_string();
            ConfigError::new(key, message)
        })
    }

    /// The configuration as TOML with every default filled in and secrets
    /// masked, for `docusign-gateway check`.
    pub fn masked_toml(&self) -> String {
        let mut shown = self.clone();
        for secret in [&mut shown.docusign.client_secret, &mut shown.session.secret] {
            if !secret.is_empty() {
                *secret = "***".into();
            }
        }
        toml::to_string(&shown).unwrap_or_default()
    }

    /// Every key with its default, as `(section.key, default)`; `None` for
    /// keys that are unset by default.
    pub fn defaults() -> Vec<(String, Option<toml::Value>)> {
        let mut out = Vec::new();
        for (section, table) in default_table() {
            let Some(table) = table.as_table() else {
                continue;
            };
            for (key, value) in table {
                out.push((format!("{section}.{key}"), Some(value.clone())));
            }
        }
        // Option fields are skipped by serialization: name them explicitly.
        for unset in ["server.metrics_listen", "docusign.auth_server"] {
            out.push((unset.to_string(), None));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl Config {
    /// The callback URL registered at DocuSign.
    pub fn redirect_uri(&self) -> &Url {
        &self.docusign.redirect_uri
    }

    /// How long a new session lives: its ttl, but never beyond the refresh
    /// token's lifetime.
    pub fn session_lifetime(&self) -> Duration {
        self.session.ttl.min(self.docusign.refresh_token_ttl)
    }

    /// `public_url` joined with an absolute path, e.g. `/auth/login`.
    pub fn public_link(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.server.public_url.as_str().trim_end_matches('/'),
            path
        )
    }
}

/// The text of a configuration file; the error names the file.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path.display().to_string(),
            format!("cannot read the configuration file: {e}"),
        )
    })
}

/// The defaults as TOML, section by section. `None` fields are absent (TOML
/// has no null): `RawConfig::defaults` names them.
fn default_table() -> toml::Table {
    match toml::Value::try_from(RawConfig::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

/// Overlays `DSGW_<SECTION>_<KEY>` variables on the parsed file. The expected
/// type of each key is read off the defaults, so `DSGW_SESSION_TTL_SECS=60`
/// becomes an integer while a numeric-looking secret stays a string.
fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let defaults = default_table();
    let sorted: BTreeMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    for (var, value) in sorted {
        let rest = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let Some((section, key)) = defaults.keys().find_map(|section| {
            rest.strip_prefix(section.as_str())
                .and_then(|r| r.strip_prefix('_'))
                .map(|key| (section.clone(), key.to_string()))
        }) else {
            return Err(ConfigError::new(
                var,
                "unknown variable: expected DSGW_SERVER_*, DSGW_DOCUSIGN_*, DSGW_SESSION_* or DSGW_LOG_*",
            ));
        };
        let expected = defaults
            .get(&section)
            .and_then(|s| s.as_table())
            .and_then(|s| s.get(&key));
        let parsed = env_value(expected, &value).map_err(|m| ConfigError::new(var.clone(), m))?;
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry.as_table_mut() {
            Some(t) => {
                t.insert(key, parsed);
            }
            None => {
                return Err(ConfigError::new(section, "must be a table"));
            }
        }
    }
    Ok(())
}

fn env_value(expected: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    match expected {
        Some(toml::Value::Integer(_)) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {value:?}")),
        Some(toml::Value::Boolean(_)) => match value.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {value:?}")),
        },
        Some(toml::Value::Array(_)) => {
            let trimmed = value.trim();
            if trimmed.starts_with('[') {
                let doc: toml::Table = format!("v = {trimmed}")
                    .parse()
                    .map_err(|_| "expected a TOML array or a comma-separated list".to_string())?;
                Ok(doc.get("v").cloned().unwrap_or(toml::Value::Array(vec![])))
            } else {
                Ok(toml::Value::Array(
                    trimmed
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ))
            }
        }
        _ => Ok(toml::Value::String(value.to_string())),
    }
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let RawConfig {
        server,
        docusign,
        session,
        log,
    } = raw;

    let listen: SocketAddr = server.listen.parse().map_err(|_| {
        ConfigError::new(
            "server.listen",
            format!(
                "expected an IP address and port such as \"127.0.0.1:8080\", got {:?}",
                server.listen
            ),
        )
    })?;
    let public_url = parse_url("server.public_url", &server.public_url)?;
    if !matches!(public_url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            "server.public_url",
            "expected an http:// or https:// URL",
        ));
    }
    let metrics_listen = match &server.metrics_listen {
        None => None,
        Some(m) => Some(m.parse::<SocketAddr>().map_err(|_| {
            ConfigError::new(
                "server.metrics_listen",
                format!("expected an IP address and port such as \"127.0.0.1:9090\", got {m:?}"),
            )
        })?),
    };
    if metrics_listen == Some(listen) {
        return Err(ConfigError::new(
            "server.metrics_listen",
            "must differ from server.listen",
        ));
    }
    if server.grace_period_secs > 3600 {
        return Err(ConfigError::new(
            "server.grace_period_secs",
            "expected a number of seconds between 0 and 3600",
        ));
    }
    if server.upgrade_sock.is_empty() || !server.upgrade_sock.starts_with('/') {
        return Err(ConfigError::new(
            "server.upgrade_sock",
            "expected an absolute path for the upgrade socket",
        ));
    }
    if !matches!(log.format.as_str(), "text" | "json") {
        return Err(ConfigError::new(
            "log.format",
            format!("expected \"text\" or \"json\", got {:?}", log.format),
        ));
    }
    if tracing_subscriber::EnvFilter::try_new(&log.level).is_err() || log.level.trim().is_empty() {
        return Err(ConfigError::new(
            "log.level",
            format!(
                "expected a level (error, warn, info, debug, trace) or a tracing filter, got {:?}",
                log.level
            ),
        ));
    }
    if server.threads == 0 || server.threads > 1024 {
        return Err(ConfigError::new(
            "server.threads",
            "expected a number between 1 and 1024",
        ));
    }

    let auth_server_text = match (&docusign.auth_server, docusign.environment.as_str()) {
        (Some(s), _) => s.clone(),
        (None, "demo") => DEMO_AUTH_SERVER.to_string(),
        (None, "production") => PRODUCTION_AUTH_SERVER.to_string(),
        (None, other) => {
            return Err(ConfigError::new(
                "docusign.environment",
                format!("expected \"demo\" or \"production\", got {other:?}"),
            ))
        }
    };
    if !matches!(docusign.environment.as_str(), "demo" | "production") {
        return Err(ConfigError::new(
            "docusign.environment",
            format!(
                "expected \"demo\" or \"production\", got {:?}",
                docusign.environment
            ),
        ));
    }
    let auth_server = parse_url("docusign.auth_server", &auth_server_text)?;
    match auth_server.scheme() {
        "https" => {}
        "http" if docusign.allow_plain_http => {}
        "http" => {
            return Err(ConfigError::new(
                "docusign.auth_server",
                "http:// is only allowed with docusign.allow_plain_http = true (local fakes)",
            ))
        }
        _ => {
            return Err(ConfigError::new(
                "docusign.auth_server",
                "expected an https:// URL",
            ))
        }
    }
    if auth_server.query().is_some() || !auth_server.username().is_empty() {
        return Err(ConfigError::new(
            "docusign.auth_server",
            "expected a plain base URL without credentials or query",
        ));
    }
    if docusign.client_id.trim().is_empty() {
        return Err(ConfigError::new(
            "docusign.client_id",
            "missing: set the integration key (or DSGW_DOCUSIGN_CLIENT_ID)",
        ));
    }
    if docusign.client_secret.is_empty() {
        return Err(ConfigError::new(
            "docusign.client_secret",
            "missing: set the integration's secret key (or DSGW_DOCUSIGN_CLIENT_SECRET)",
        ));
    }
    if docusign.scopes.is_empty() || docusign.scopes.iter().any(|s| !valid_scope(s)) {
        return Err(ConfigError::new(
            "docusign.scopes",
            "expected a non-empty list of scope names such as [\"signature\"]",
        ));
    }
    let callback_path = docusign.callback_path.clone();
    if !callback_path.starts_with('/')
        || callback_path.starts_with("//")
        || callback_path.starts_with("/restapi/")
        || callback_path.contains(['?', '#', ' '])
        || crate::util::paths::is_reserved_path(&callback_path)
    {
        return Err(ConfigError::new(
            "docusign.callback_path",
            "expected an absolute path such as \"/auth/docusign/callback\" that is not under /restapi/ and not another gateway endpoint",
        ));
    }
    let redirect_uri = parse_url(
        "docusign.callback_path",
        &format!(
            "{}{}",
            public_url.as_str().trim_end_matches('/'),
            callback_path
        ),
    )?;
    let mut allowed_api_hosts = Vec::new();
    for pattern in &docusign.allowed_api_hosts {
        allowed_api_hosts.push(HostPattern::parse(pattern).map_err(|m| {
            ConfigError::new("docusign.allowed_api_hosts", format!("{pattern:?}: {m}"))
        })?);
    }
    if allowed_api_hosts.is_empty() {
        return Err(ConfigError::new(
            "docusign.allowed_api_hosts",
            "expected at least one host pattern such as \"*.docusign.net\"",
        ));
    }
    if docusign.request_timeout_secs == 0 || docusign.request_timeout_secs > 300 {
        return Err(ConfigError::new(
            "docusign.request_timeout_secs",
            "expected a number of seconds between 1 and 300",
        ));
    }
    if docusign.refresh_token_ttl_secs == 0 {
        return Err(ConfigError::new(
            "docusign.refresh_token_ttl_secs",
            "expected a positive number of seconds (DocuSign: about 30 days)",
        ));
    }

    if session.cookie_name.is_empty()
        || !session
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::new(
            "session.cookie_name",
            "expected a cookie name made of letters, digits, '_' and '-'",
        ));
    }
    if session.secret.len() < 32 {
        return Err(ConfigError::new(
            "session.secret",
            format!(
                "{}: expected at least 32 bytes of random text (e.g. `openssl rand -base64 48`), preferably from DSGW_SESSION_SECRET",
                if session.secret.is_empty() { "missing" } else { "too short" }
            ),
        ));
    }
    if session.ttl_secs == 0 {
        return Err(ConfigError::new(
            "session.ttl_secs",
            "expected a positive number of seconds",
        ));
    }
    if session.max_sessions == 0 {
        return Err(ConfigError::new(
            "session.max_sessions",
            "expected a positive number",
        ));
    }
    if session.login_timeout_secs == 0 || session.login_timeout_secs > MAX_LOGIN_TIMEOUT_SECS {
        return Err(ConfigError::new(
            "session.login_timeout_secs",
            format!("expected a number of seconds between 1 and {MAX_LOGIN_TIMEOUT_SECS}"),
        ));
    }
    if session.api_token_ttl_secs == 0 {
        return Err(ConfigError::new(
            "session.api_token_ttl_secs",
            "expected a positive number of seconds",
        ));
    }
    if session.max_pending_logins == 0 {
        return Err(ConfigError::new(
            "session.max_pending_logins",
            "expected a positive number",
        ));
    }

    Ok(Config {
        server: ServerConfig {
            listen,
            public_url,
            threads: server.threads as usize,
            metrics_listen,
            grace_period: Duration::from_secs(server.grace_period_secs),
            upgrade_sock: server.upgrade_sock.into(),
        },
        log: LogConfig {
            json: log.format == "json",
            level: log.level,
        },
        docusign: DocusignConfig {
            auth_server,
            client_id: docusign.client_id,
            client_secret: Secret::new(docusign.client_secret),
            scopes: docusign.scopes,
            callback_path,
            redirect_uri,
            allowed_api_hosts,
            allow_plain_http: docusign.allow_plain_http,
            request_timeout: Duration::from_secs(docusign.request_timeout_secs),
            refresh_token_ttl: Duration::from_secs(docusign.refresh_token_ttl_secs),
        },
        session: SessionConfig {
            login_cookie_name: format!("{}_login", session.cookie_name),
            cookie_name: session.cookie_name,
            secure_cookie: session.secure_cookie,
            secret: Secret::new(session.secret),
            ttl: Duration::from_secs(session.ttl_secs),
            refresh_before_expiry: Duration::from_secs(session.refresh_before_expiry_secs),
            max_sessions: session.max_sessions as usize,
            login_timeout: Duration::from_secs(session.login_timeout_secs),
            max_pending_logins: session.max_pending_logins as usize,
            api_token_ttl: Duration::from_secs(session.api_token_ttl_secs),
        },
    })
}

fn parse_url(key: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| {
        ConfigError::new(key, format!("expected an absolute URL, got {text:?} ({e})"))
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            key,
            format!("expected a URL with a host, got {text:?}"),
        ));
    }
    Ok(url)
}

fn valid_scope(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[docusign]
client_id = "ik"
client_secret = "cs"
[session]
secret = "0123456789abcdef0123456789abcdef"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(text: &str, vars: &[(&str, &str)]) -> ConfigError {
        Config::from_toml_str(text, env(vars)).expect_err("config should be rejected")
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MINIMAL, env(&[])).unwrap();
        assert_eq!(
            c.docusign.auth_server.as_str(),
            "https://account-d.docusign.com/"
        );
        assert_eq!(
            c.redirect_uri().as_str(),
            "http://localhost:8080/auth/docusign/callback"
        );
        assert_eq!(c.session.cookie_name, "dsgw_session");
        assert_eq!(c.session.login_cookie_name, "dsgw_session_login");
        assert!(c.session.secure_cookie);
        assert_eq!(c.session.refresh_before_expiry, Duration::from_secs(300));
        assert_eq!(
            c.public_link("/auth/login"),
            "http://localhost:8080/auth/login"
        );
    }

    #[test]
    fn production_environment_selects_production_host() {
        let text = format!("{MINIMAL}\n");
        let c = Config::from_toml_str(&text, env(&[("DSGW_DOCUSIGN_ENVIRONMENT", "production")]))
            .unwrap();
        assert_eq!(
            c.docusign.auth_server.host_str(),
            Some("account.docusign.com")
        );
    }

    #[test]
    fn environment_overrides_file_with_typed_values() {
        let c = Config::from_toml_str(
            MINIMAL,
            env(&[
                ("DSGW_SESSION_REFRESH_BEFORE_EXPIRY_SECS", "60"),
                ("DSGW_DOCUSIGN_CLIENT_SECRET", "123456"),
                ("DSGW_SESSION_SECURE_COOKIE", "false"),
                ("DSGW_DOCUSIGN_SCOPES", "signature, extended"),
                ("DSGW_DOCUSIGN_ALLOWED_API_HOSTS", "[\"demo.docusign.net\"]"),
                ("OTHER_VAR", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.session.refresh_before_expiry, Duration::from_secs(60));
        assert_eq!(c.docusign.client_secret.expose(), "123456");
        assert!(!c.session.secure_cookie);
        assert_eq!(c.docusign.scopes, vec!["signature", "extended"]);
        assert_eq!(c.docusign.allowed_api_hosts.len(), 1);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err("[docusign]\nclient_idd = \"x\"", &[]).key,
            "docusign.client_idd"
        );
        assert_eq!(err("[sesion]\n", &[]).key, "sesion");
        assert_eq!(
            err("[docusign]\nclient_secret = \"x\"", &[]).key,
            "docusign.client_id"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSION_SECRET", "short")]).key,
            "session.secret"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSION_TTL_SECS", "soon")]).key,
            "DSGW_SESSION_TTL_SECS"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSIONS_SECRET", "x")]).key,
            "DSGW_SESSIONS_SECRET"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSION_NOPE", "x")]).key,
            "session.nope"
        );
        assert_eq!(
            err(
                MINIMAL,
                &[("DSGW_DOCUSIGN_AUTH_SERVER", "http://127.0.0.1:9")]
            )
            .key,
            "docusign.auth_server"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_DOCUSIGN_AUTH_SERVER", "not a url")]).key,
            "docusign.auth_server"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SERVER_LISTEN", "localhost")]).key,
            "server.listen"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_DOCUSIGN_ENVIRONMENT", "staging")]).key,
            "docusign.environment"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSION_TTL_SECS", "0")]).key,
            "session.ttl_secs"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_DOCUSIGN_CALLBACK_PATH", "/restapi/cb")]).key,
            "docusign.callback_path"
        );
        assert_eq!(
            err(MINIMAL, &[("DSGW_SESSION_LOGIN_TIMEOUT_SECS", "601")]).key,
            "session.login_timeout_secs"
        );
        assert_eq!(err("[server\n", &[]).key, "<file>");
        assert_eq!(err("[server]\nthreads = \"2\"", &[]).key, "server.threads");
    }

    #[test]
    fn plain_http_auth_server_needs_the_flag() {
        let c = Config::from_toml_str(
            MINIMAL,
            env(&[
                ("DSGW_DOCUSIGN_AUTH_SERVER", "http://127.0.0.1:9000"),
                ("DSGW_DOCUSIGN_ALLOW_PLAIN_HTTP", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(c.docusign.auth_server.as_str(), "http://127.0.0.1:9000/");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = Config::from_toml_str(MINIMAL, env(&[])).unwrap();
        let dump = format!("{c:?}");
        assert!(!dump.contains("0123456789abcdef0123456789abcdef"));
        assert!(!dump.contains("\"cs\""));
    }

    #[test]
    fn example_files_are_valid() {
        for file in ["config/gateway.toml", "config/demo.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let vars = env(&[
                ("DSGW_DOCUSIGN_CLIENT_ID", "ik"),
                ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
                ("DSGW_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ]);
            Config::load(&path, vars).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

#[cfg(test)]
mod reference_table {
    //! The README's configuration reference must name every key, its
    //! `DSGW_*` variable and its default, exactly as the structs define them.

    use super::*;

    /// How a default is written in the README.
    fn shown(value: &Option<toml::Value>) -> String {
        match value {
            None => "unset".into(),
            Some(toml::Value::String(s)) if s.is_empty() => "required".into(),
            Some(v) => format!("`{v}`"),
        }
    }

    #[test]
    fn readme_table_matches_the_config_structs() {
        let readme =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
                .expect("README.md");
        let rows: Vec<Vec<String>> = readme
            .lines()
            .filter(|l| l.starts_with("| `") && l.contains("` | `DSGW_"))
            .map(|l| {
                l.trim_matches('|')
                    .split(" | ")
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect();
        let expected: Vec<String> = RawConfig::defaults()
            .iter()
            .map(|(key, default)| {
                format!(
                    "| `{key}` | `DSGW_{}` | {} |",
                    key.replace('.', "_").to_uppercase(),
                    shown(default)
                )
            })
            .collect();
        let hint = format!(
            "expected rows (key | variable | default | meaning):\n{}",
            expected.join("\n")
        );
        assert_eq!(rows.len(), expected.len(), "{hint}");
        for (key, default) in RawConfig::defaults() {
            let row = rows
                .iter()
                .find(|r| r[0] == format!("`{key}`"))
                .unwrap_or_else(|| panic!("README has no row for {key}\n{hint}"));
            assert_eq!(
                row[1],
                format!("`DSGW_{}`", key.replace('.', "_").to_uppercase()),
                "{key}"
            );
            assert_eq!(row[2], shown(&default), "default of {key}");
            assert!(
                row.len() == 4 && !row[3].is_empty(),
                "{key} needs a meaning"
            );
        }
    }
}
