//! Configuration: one TOML file plus `DSGW_<SECTION>_<KEY>` environment
//! overrides, parsed and validated once at start into typed structs.
//!
//! Request-handling code only ever sees [`Config`]; raw TOML and environment
//! variables stay in this module. Every error names the offending key and says
//! what is expected; it never quotes a secret or a value from the environment.
//!
//! - `raw`: the file format ([`RawConfig`]), its defaults, parsing.
//! - `env`: the `DSGW_*` overlay.
//! - `server`, `docusign`, `session`, `log`, `redis`, `limits`: each
//!   section's validated struct and its validation.
//! - `range`: the one range check; `urls`: URL keys; `hosts`: host patterns.
//! - `error`: [`ConfigError`] and when it may quote a value.

mod access;
mod apis;
mod docusign;
mod env;
mod error;
mod hosts;
mod limits;
mod log;
mod range;
mod raw;
mod redis;
mod server;
mod service;
mod session;
mod urls;
pub mod warnings;
mod webhook;

pub use access::{email_domain, AccessConfig, DomainPattern, Refusal as AccessRefusal};
pub use apis::{Api, ApiSet, Apis};
pub use docusign::{DocusignConfig, Environment};
pub use error::{ConfigError, SECRET_KEYS};
pub use hosts::HostPattern;
pub use limits::LimitsConfig;
pub use log::{LogConfig, LogFormat};
pub use raw::{DefaultValue, RawConfig};
pub use redis::{redacted, RedisConfig, RedisTarget, StoreKind};
pub use server::{default_upgrade_sock, ServerConfig, TlsFiles};
pub use service::{parse_rsa_pem, ServiceConfig};
pub use session::SessionConfig;
pub use webhook::{split_keys as split_hmac_keys, valid_name as valid_webhook_name, WebhookConfig};

use std::path::Path;
use std::time::Duration;

use url::Url;

/// The DocuSign account server of the developer sandbox.
pub const DEMO_AUTH_SERVER: &str = "https://account-d.docusign.com";
/// The DocuSign account server of production.
pub const PRODUCTION_AUTH_SERVER: &str = "https://account.docusign.com";
/// Prefix of the environment variables that override file keys.
pub const ENV_PREFIX: &str = "DSGW_";
/// Longest time a login may take between `/auth/login` and the callback.
pub const MAX_LOGIN_TIMEOUT_SECS: u64 = 600;

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub docusign: DocusignConfig,
    pub session: SessionConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    /// `[access]`: who may log in, which accounts a session keeps.
    pub access: AccessConfig,
    /// Set when `session.store = "redis"`.
    pub redis: Option<RedisConfig>,
    /// `[[service]]`: back-end services using the JWT grant.
    pub services: Vec<ServiceConfig>,
    /// `[[webhook]]`: DocuSign Connect listeners.
    pub webhooks: Vec<WebhookConfig>,
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

    /// Validates a parsed configuration, section by section.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let RawConfig {
            server,
            docusign,
            session,
            log,
            limits,
            redis,
            access,
            services,
            webhooks,
            origins,
        } = raw;
        let redis = redis::validate(session.store, redis)?;
        let server = server::validate(server, &origins)?;
        let log = log::validate(log, &origins)?;
        let docusign = docusign::validate(docusign, &server.public_url, &origins)?;
        let session = session::validate(session)?;
        let limits = limits::validate(limits)?;
        let services = service::validate(services)?;
        let access = access::validate(access)?;
        access::check_services(&access, &services)?;
        let webhooks = webhook::validate(webhooks)?;
        Ok(Config {
            server,
            docusign,
            session,
            log,
            limits,
            access,
            redis,
            services,
            webhooks,
        })
    }

    /// The callback URL registered at DocuSign.
    pub fn redirect_uri(&self) -> &Url {
        &self.docusign.redirect_uri
    }

    /// How long a new session lives: its ttl, but never beyond the refresh
    /// token's lifetime.
    pub fn session_lifetime(&self) -> Duration {
        self.session.ttl.min(self.docusign.refresh_token_ttl)
    }

    /// The `[[webhook]]` named `name`.
    pub fn webhook(&self, name: &str) -> Option<&WebhookConfig> {
        self.webhooks.iter().find(|w| w.name == name)
    }

    /// The `[[service]]` named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
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
    fn the_other_apis_keys_come_from_the_environment_too() {
        let c = Config::from_toml_str(
            MINIMAL,
            env(&[
                ("DSGW_DOCUSIGN_APIS", "esignature, Click,admin"),
                (
                    "DSGW_DOCUSIGN_ADMIN_API_URL",
                    "https://egress.example.com/ds/management",
                ),
                ("DSGW_ACCESS_ALLOWED_ORGANIZATIONS", "ORG-1, org-2"),
            ]),
        )
        .unwrap();
        let apis = &c.docusign.apis;
        assert_eq!(
            apis.enabled.iter().collect::<Vec<_>>(),
            vec![Api::Esignature, Api::Click, Api::Admin]
        );
        assert_eq!(
            apis.admin_api_url.as_str(),
            "https://egress.example.com/ds/management"
        );
        assert_eq!(
            apis.platform_api_url.as_str(),
            "https://api-d.docusign.com/"
        );
        assert!(c.access.organization_allowed("org-1"));
        assert!(c.access.organization_allowed("ORG-2"));
        assert!(!c.access.organization_allowed("org-3"));
        let e = err(MINIMAL, &[("DSGW_DOCUSIGN_APIS", "esignature, rooms")]);
        assert_eq!(e.key, "docusign.apis", "{e}");
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
    fn the_client_read_buffer_is_none_by_default_and_bounded() {
        let c = Config::from_toml_str(MINIMAL, env(&[])).unwrap();
        assert_eq!(
            c.server.client_read_buffer_bytes,
            server::DEFAULT_CLIENT_READ_BUFFER
        );
        let var = "DSGW_SERVER_CLIENT_READ_BUFFER_BYTES";
        let some = Config::from_toml_str(MINIMAL, env(&[(var, "8192")])).unwrap();
        assert_eq!(some.server.client_read_buffer_bytes, 8192);
        let most = Config::from_toml_str(MINIMAL, env(&[(var, "1048576")])).unwrap();
        assert_eq!(most.server.client_read_buffer_bytes, 1_048_576);
        let e = err(MINIMAL, &[(var, "1048577")]);
        assert_eq!(e.key, "server.client_read_buffer_bytes");
        let e = err(MINIMAL, &[(var, "-1")]);
        assert_eq!(e.key, "server.client_read_buffer_bytes");
        assert_eq!(err(MINIMAL, &[(var, "lots")]).key, var);
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
                // The demo's [[webhook]] key (the demo sets a random one).
                ("DEMO_CONNECT_HMAC_KEYS", "demo-connect-key"),
            ]);
            Config::load(&path, vars).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
