//! The file format, as the operator writes it: one struct per section, every
//! key with its default, parsed from TOML with the `DSGW_*` overlay applied.

use serde::{Deserialize, Serialize};

use super::access::RawAccess;
use super::docusign::Environment;
use super::error::{ConfigError, Origins};
use super::limits::RawLimits;
use super::log::LogFormat;
use super::redis::{redacted, StoreKind};
use super::server::default_upgrade_sock;
use super::MAX_LOGIN_TIMEOUT_SECS;

/// The configuration as written: file, `DSGW_*` variables and defaults, not
/// yet validated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub(super) server: RawServer,
    pub(super) docusign: RawDocusign,
    pub(super) session: RawSession,
    pub(super) log: RawLog,
    pub(super) limits: RawLimits,
    pub(super) redis: RawRedis,
    pub(super) access: RawAccess,
    /// `[[service]]`: back-end services using the JWT grant.
    #[serde(rename = "service", skip_serializing_if = "Vec::is_empty")]
    pub(super) services: Vec<super::service::RawService>,
    /// `[[webhook]]`: DocuSign Connect listeners.
    #[serde(rename = "webhook", skip_serializing_if = "Vec::is_empty")]
    pub(super) webhooks: Vec<super::webhook::RawWebhook>,
    /// Which keys the environment set (errors never quote those values).
    #[serde(skip)]
    pub(super) origins: Origins,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawServer {
    pub(super) listen: String,
    pub(super) public_url: String,
    pub(super) threads: u64,
    pub(super) listener_tasks: u64,
    pub(super) upstream_keepalive_pool: u64,
    pub(super) client_read_buffer_bytes: u64,
    pub(super) metrics_listen: Option<String>,
    pub(super) grace_period_secs: u64,
    pub(super) idle_timeout_secs: u64,
    pub(super) header_timeout_secs: u64,
    pub(super) max_connections: u64,
    pub(super) max_header_bytes: u64,
    /// Unset: [`default_upgrade_sock`], filled in by [`RawConfig::parse`].
    pub(super) upgrade_sock: Option<String>,
    pub(super) allowed_origins: Vec<String>,
    pub(super) tls_cert_file: Option<String>,
    pub(super) tls_key_file: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            threads: 2,
            listener_tasks: 1,
            upstream_keepalive_pool: 128,
            client_read_buffer_bytes: super::server::DEFAULT_CLIENT_READ_BUFFER as u64,
            metrics_listen: None,
            grace_period_secs: 10,
            idle_timeout_secs: 60,
            header_timeout_secs: 10,
            max_connections: 10_000,
            max_header_bytes: super::server::DEFAULT_MAX_HEADER_BYTES as u64,
            upgrade_sock: None,
            allowed_origins: Vec::new(),
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDocusign {
    pub(super) environment: Environment,
    pub(super) auth_server: Option<String>,
    pub(super) client_id: String,
    pub(super) client_secret: String,
    pub(super) scopes: Vec<String>,
    pub(super) callback_path: String,
    pub(super) allowed_api_hosts: Vec<String>,
    pub(super) allow_plain_http: bool,
    pub(super) request_timeout_secs: u64,
    pub(super) refresh_token_ttl_secs: u64,
    pub(super) max_refreshes_in_flight: u64,
    pub(super) apis: Vec<String>,
    pub(super) admin_api_url: Option<String>,
    pub(super) platform_api_url: Option<String>,
}

impl Default for RawDocusign {
    fn default() -> Self {
        RawDocusign {
            environment: Environment::Demo,
            auth_server: None,
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["signature".into()],
            callback_path: "/auth/docusign/callback".into(),
            allowed_api_hosts: vec!["*.docusign.net".into()],
            allow_plain_http: false,
            request_timeout_secs: 10,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            max_refreshes_in_flight: 32,
            apis: vec!["esignature".into()],
            admin_api_url: None,
            platform_api_url: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSession {
    pub(super) cookie_name: String,
    pub(super) secure_cookie: bool,
    pub(super) secret: String,
    pub(super) ttl_secs: u64,
    pub(super) refresh_before_expiry_secs: u64,
    pub(super) max_sessions: u64,
    pub(super) login_timeout_secs: u64,
    pub(super) max_pending_logins: u64,
    pub(super) api_token_ttl_secs: u64,
    pub(super) min_refresh_interval_secs: u64,
    pub(super) max_sessions_per_user: u64,
    pub(super) max_tokens_per_session: u64,
    pub(super) store: StoreKind,
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
            min_refresh_interval_secs: 60,
            max_sessions_per_user: 10,
            max_tokens_per_session: 100,
            store: StoreKind::Memory,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRedis {
    /// May carry a password: never shown (see [`redacted`]).
    pub(super) url: Option<String>,
    pub(super) cluster_urls: Vec<String>,
    pub(super) key_prefix: String,
    pub(super) connect_timeout_ms: u64,
    pub(super) command_timeout_ms: u64,
}

impl Default for RawRedis {
    fn default() -> Self {
        RawRedis {
            url: None,
            cluster_urls: Vec::new(),
            key_prefix: "dsgw".into(),
            connect_timeout_ms: 1000,
            command_timeout_ms: 500,
        }
    }
}

impl std::fmt::Debug for RawRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRedis")
            .field("url", &self.url.as_deref().map(redacted))
            .field(
                "cluster_urls",
                &self
                    .cluster_urls
                    .iter()
                    .map(|u| redacted(u))
                    .collect::<Vec<_>>(),
            )
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    pub(super) format: LogFormat,
    pub(super) level: String,
    pub(super) access: bool,
    pub(super) audit: bool,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: LogFormat::Text,
            level: "info".into(),
            access: true,
            audit: true,
        }
    }
}

/// A key's default, as [`RawConfig::defaults`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum DefaultValue {
    /// This value.
    Value(toml::Value),
    /// Off unless set.
    Unset,
    /// Computed from the process environment at start (see
    /// `docs/src/configuration.md`).
    FromEnvironment,
}

impl RawConfig {
    /// Parses TOML text and overlays the `DSGW_*` variables found in `env`.
    /// `env` also supplies `XDG_RUNTIME_DIR` and `HOME` for the default of
    /// `server.upgrade_sock`.
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RawConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        // The parser's message names no value; the line is where to look.
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|s| {
                let before = &text.as_bytes()[..s.start.min(text.len())];
                before.iter().filter(|b| **b == b'\n').count() + 1
            });
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            ConfigError::new("<file>", format!("not valid TOML{at}: {}", e.message()))
        })?;
        let origins = super::env::overlay(&mut table, &env)?;
        let mut raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| origins.serde_error(e.path().to_string(), e.inner().message()))?;
        raw.origins = origins;
        super::webhook::read_keys(&mut raw.webhooks, &env);
        if raw.server.upgrade_sock.is_none() {
            let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let path = default_upgrade_sock(var);
            raw.server.upgrade_sock = Some(path.display().to_string());
        }
        Ok(raw)
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
        // A Redis URL may hold a password.
        let redis = &mut shown.redis;
        redis.url = redis.url.as_deref().map(redacted);
        for url in &mut redis.cluster_urls {
            *url = redacted(url);
        }
        toml::to_string(&shown).unwrap_or_default()
    }

    /// Every key with its default, as `(section.key, default)`, sorted.
    pub fn defaults() -> Vec<(String, DefaultValue)> {
        let mut out = Vec::new();
        for (section, table) in default_table() {
            let Some(table) = table.as_table() else {
                continue;
            };
            for (key, value) in table {
                out.push((
                    format!("{section}.{key}"),
                    DefaultValue::Value(value.clone()),
                ));
            }
        }
        // Option fields are skipped by serialization: name them explicitly.
        for unset in [
            "server.metrics_listen",
            "docusign.auth_server",
            "docusign.admin_api_url",
            "docusign.platform_api_url",
            "server.tls_cert_file",
            "server.tls_key_file",
            "redis.url",
        ] {
            out.push((unset.to_string(), DefaultValue::Unset));
        }
        out.push(("server.upgrade_sock".into(), DefaultValue::FromEnvironment));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The defaults as TOML, section by section. `None` fields are absent (TOML
/// has no null): `RawConfig::defaults` names them.
pub(super) fn default_table() -> toml::Table {
    match toml::Value::try_from(RawConfig::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => toml::Table::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_defaults_shown() {
        let raw = RawConfig::parse(
            "[session]\nsecret = \"s3cr3t-s3cr3t\"\n",
            [("DSGW_DOCUSIGN_CLIENT_SECRET".into(), "cs-value".into())],
        )
        .unwrap();
        let text = raw.masked_toml();
        assert!(
            !text.contains("s3cr3t") && !text.contains("cs-value"),
            "{text}"
        );
        assert!(text.contains("secret = \"***\""), "{text}");
        assert!(text.contains("environment = \"demo\""), "{text}");
        assert!(text.contains("format = \"text\""), "{text}");
    }

    #[test]
    fn every_default_is_listed_once() {
        let defaults = RawConfig::defaults();
        let keys: Vec<&str> = defaults.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = keys.clone();
        unique.dedup();
        assert_eq!(keys, unique);
        assert!(defaults.contains(&(
            "docusign.environment".into(),
            DefaultValue::Value(toml::Value::String("demo".into()))
        )));
        assert!(defaults.contains(&("server.upgrade_sock".into(), DefaultValue::FromEnvironment)));
    }

    #[test]
    fn a_secret_key_with_a_number_is_not_echoed() {
        for text in [
            "[session]\nsecret = 1234567890123456789\n",
            "[docusign]\nclient_secret = 1234567890123456789\n",
            "[docusign]\nclient_secret = [1234567890123456789]\n",
        ] {
            let e = RawConfig::parse(text, Vec::new()).unwrap_err();
            assert!(!e.to_string().contains("1234567890123456789"), "{e}");
            assert!(e.key.ends_with("secret"), "{e}");
            assert!(e.message.contains("expected"), "{e}");
        }
    }

    #[test]
    fn a_toml_syntax_error_does_not_echo_the_line() {
        for text in [
            "[session]\nsecret = 98765432109876543210987\n",
            "[session]\nsecret = 9876543210987654321abc\n",
            "[session]\nsecret = \"98765432109876543210\n",
            "[session]\nsecret = 0x98765432109876543210\n",
        ] {
            let e = RawConfig::parse(text, Vec::new()).unwrap_err();
            assert_eq!(e.key, "<file>");
            assert!(e.message.contains("(line 2)"), "{e}");
            assert!(!e.to_string().contains("9876543210"), "{e}");
        }
    }

    #[test]
    fn a_wrong_value_in_the_file_of_a_plain_key_is_quoted() {
        let e = RawConfig::parse("[server]\nthreads = \"two\"\n", Vec::new()).unwrap_err();
        assert_eq!(e.key, "server.threads");
        assert!(e.message.contains("two"), "{e}");
    }
}

/// The configuration page of the docs, whose tables the tests below check.
#[cfg(test)]
fn configuration_page() -> &'static str {
    include_str!("../../docs/src/configuration.md")
}

#[cfg(test)]
mod reference_table {
    //! The configuration reference (`docs/src/configuration.md`) must name
    //! every key, its `DSGW_*` variable and its default, exactly as the
    //! structs define them.

    use super::*;

    /// How a default is written in the reference.
    fn shown(value: &DefaultValue) -> String {
        match value {
            DefaultValue::Unset => "unset".into(),
            DefaultValue::FromEnvironment => "from the environment".into(),
            DefaultValue::Value(toml::Value::String(s)) if s.is_empty() => "required".into(),
            DefaultValue::Value(v) => format!("`{v}`"),
        }
    }

    #[test]
    fn reference_table_matches_the_config_structs() {
        let rows: Vec<Vec<String>> = super::configuration_page()
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
                .unwrap_or_else(|| panic!("no reference row for {key}\n{hint}"));
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

#[cfg(test)]
mod repeated_tables {
    //! The tables of `[[service]]` and `[[webhook]]` keys in
    //! `docs/src/configuration.md` must name every key of their structs with
    //! its default ("required" for a key without one, "unset" for an
    //! optional one).

    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::super::service::RawService;
    use super::super::webhook::RawWebhook;

    /// `key -> default` of the rows `| \`<section>.key\` | default | meaning |`.
    fn documented_rows(section: &str) -> BTreeMap<String, String> {
        let prefix = format!("| `{section}.");
        super::configuration_page()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                assert_eq!(cells.len(), 3, "{l}");
                assert!(!cells[2].is_empty(), "{l} needs a meaning");
                let key = cells[0].trim_matches('`');
                let key = key.strip_prefix(&format!("{section}.")).unwrap_or(key);
                (key.to_string(), cells[1].to_string())
            })
            .collect()
    }

    /// What the reference must say for `raw`, parsed from `required` (the keys
    /// without a default) with `optional` keys absent.
    fn expected<T: Serialize>(
        raw: &T,
        required: &[&str],
        optional: &[&str],
    ) -> BTreeMap<String, String> {
        let toml::Value::Table(table) = toml::Value::try_from(raw).expect("serializes") else {
            panic!("not a table");
        };
        let mut out: BTreeMap<String, String> = table
            .into_iter()
            .map(|(k, v)| {
                let shown = if required.contains(&k.as_str()) {
                    "required".to_string()
                } else {
                    format!("`{v}`")
                };
                (k, shown)
            })
            .collect();
        for key in optional {
            assert!(
                out.insert(key.to_string(), "unset".into()).is_none(),
                "{key}"
            );
        }
        out
    }

    #[test]
    fn webhook_table_matches_the_struct() {
        let raw: RawWebhook =
            toml::from_str("name = \"n\"\nforward_to = \"http://a/b\"\nhmac_keys_env = \"V\"")
                .expect("minimal webhook");
        let want = expected(&raw, &["name", "forward_to", "hmac_keys_env"], &[]);
        assert_eq!(documented_rows("webhook"), want);
    }

    #[test]
    fn service_table_matches_the_struct() {
        let raw: RawService =
            toml::from_str("name = \"n\"\nuser_id = \"u\"").expect("minimal service");
        let want = expected(
            &raw,
            &["name", "user_id"],
            &["private_key_file", "private_key_env"],
        );
        assert_eq!(documented_rows("service"), want);
    }
}
