//! `[docusign]`: the integration and the account server it talks to.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::apis::{self, Apis, RawApis};
use super::error::{ConfigError, Origins};
use super::hosts::HostPattern;
use super::range;
use super::raw::RawDocusign;
use super::urls::parse_url;
use super::{DEMO_AUTH_SERVER, PRODUCTION_AUTH_SERVER};

/// Which DocuSign: the developer sandbox or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Demo,
    Production,
}

impl Environment {
    /// The account server of this environment.
    pub fn auth_server(self) -> &'static str {
        match self {
            Environment::Demo => DEMO_AUTH_SERVER,
            Environment::Production => PRODUCTION_AUTH_SERVER,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DocusignConfig {
    pub environment: Environment,
    /// The OAuth ("account server") base, e.g. `https://account-d.docusign.com`.
    pub auth_server: Url,
    pub client_id: String,
    pub client_secret: crate::util::secret::Secret,
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
    /// Refresh grants this instance runs at once, at most; more wait (up to
    /// the refresh wait limit) for a turn.
    pub max_refreshes_in_flight: usize,
    /// Which APIs are routed, and the fixed hosts of Admin and platform.
    pub apis: Apis,
}

/// Validates `[docusign]`; `public_url` is the validated `server.public_url`.
pub(super) fn validate(
    raw: RawDocusign,
    public_url: &Url,
    origins: &Origins,
) -> Result<DocusignConfig, ConfigError> {
    let auth_server = auth_server(&raw, origins)?;
    if raw.client_id.trim().is_empty() {
        return Err(ConfigError::new(
            "docusign.client_id",
            "missing: set the integration key (or DSGW_DOCUSIGN_CLIENT_ID)",
        ));
    }
    if raw.client_secret.is_empty() {
        return Err(ConfigError::new(
            "docusign.client_secret",
            "missing: set the integration's secret key (or DSGW_DOCUSIGN_CLIENT_SECRET)",
        ));
    }
    if raw.scopes.is_empty() || raw.scopes.iter().any(|s| !valid_scope(s)) {
        return Err(ConfigError::new(
            "docusign.scopes",
            "expected a non-empty list of scope names such as [\"signature\"]",
        ));
    }
    let redirect_uri = redirect_uri(&raw.callback_path, public_url, origins)?;
    let apis = apis::validate(
        RawApis {
            names: &raw.apis,
            admin_api_url: raw.admin_api_url.as_deref(),
            platform_api_url: raw.platform_api_url.as_deref(),
            environment: raw.environment,
            allow_plain_http: raw.allow_plain_http,
        },
        origins,
    )?;
    Ok(DocusignConfig {
        apis,
        environment: raw.environment,
        auth_server,
        allowed_api_hosts: allowed_api_hosts(&raw.allowed_api_hosts, origins)?,
        request_timeout: range::secs(
            "docusign.request_timeout_secs",
            raw.request_timeout_secs,
            1..=300,
        )?,
        refresh_token_ttl: range::secs(
            "docusign.refresh_token_ttl_secs",
            raw.refresh_token_ttl_secs,
            1..=u64::MAX,
        )?,
        max_refreshes_in_flight: range::count(
            "docusign.max_refreshes_in_flight",
            raw.max_refreshes_in_flight,
            1..=10_000,
        )?,
        client_id: raw.client_id,
        client_secret: crate::util::secret::Secret::new(raw.client_secret),
        scopes: raw.scopes,
        callback_path: raw.callback_path,
        redirect_uri,
        allow_plain_http: raw.allow_plain_http,
    })
}

/// `auth_server` when set, else the environment's account server.
fn auth_server(raw: &RawDocusign, origins: &Origins) -> Result<Url, ConfigError> {
    let text = raw
        .auth_server
        .as_deref()
        .unwrap_or(raw.environment.auth_server());
    service_url("docusign.auth_server", text, raw.allow_plain_http, origins)
}

/// A DocuSign host the operator configures (`auth_server`,
/// `admin_api_url`, `platform_api_url`): https, or http with
/// `allow_plain_http`; no credentials, query or fragment.
pub(super) fn service_url(
    key: &str,
    text: &str,
    allow_plain_http: bool,
    origins: &Origins,
) -> Result<Url, ConfigError> {
    let url = parse_url(key, text, origins)?;
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http => {}
        "http" => {
            return Err(ConfigError::new(
                key,
                "http:// is only allowed with docusign.allow_plain_http = true (local fakes)",
            ))
        }
        _ => return Err(ConfigError::new(key, "expected an https:// URL")),
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::new(
            key,
            "expected a plain base URL without credentials or query",
        ));
    }
    Ok(url)
}

fn redirect_uri(
    callback_path: &str,
    public_url: &Url,
    origins: &Origins,
) -> Result<Url, ConfigError> {
    const KEY: &str = "docusign.callback_path";
    if !callback_path.starts_with('/')
        || callback_path.starts_with("//")
        || super::apis::Api::of_path(callback_path).is_some()
        || callback_path.contains(['?', '#', ' '])
        || crate::util::paths::is_reserved_path(callback_path)
        || callback_path.starts_with(crate::util::paths::WEBHOOKS_PREFIX)
    {
        return Err(ConfigError::new(
            KEY,
            "expected an absolute path such as \"/auth/docusign/callback\" that is not under an API's prefix (/restapi/, /clickapi/, /management/, /v1/accounts/, /v1/organizations/) and not another gateway endpoint (/auth/..., /webhooks/...)",
        ));
    }
    let base = public_url.as_str().trim_end_matches('/');
    parse_url(KEY, &format!("{base}{callback_path}"), origins)
}

fn allowed_api_hosts(
    patterns: &[String],
    origins: &Origins,
) -> Result<Vec<HostPattern>, ConfigError> {
    const KEY: &str = "docusign.allowed_api_hosts";
    let hosts = patterns
        .iter()
        .map(|p| HostPattern::parse(p).map_err(|m| ConfigError::invalid(KEY, &m, p, origins)))
        .collect::<Result<Vec<_>, _>>()?;
    if hosts.is_empty() {
        return Err(ConfigError::new(
            KEY,
            "expected at least one host pattern such as \"*.docusign.net\"",
        ));
    }
    Ok(hosts)
}

fn valid_scope(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawDocusign {
        RawDocusign {
            client_id: "ik".into(),
            client_secret: "cs".into(),
            ..RawDocusign::default()
        }
    }

    fn public() -> Url {
        Url::parse("http://localhost:8080").unwrap()
    }

    #[test]
    fn the_environment_picks_the_account_server() {
        let c = validate(raw(), &public(), &Origins::default()).unwrap();
        assert_eq!(c.environment, Environment::Demo);
        assert_eq!(c.auth_server.as_str(), "https://account-d.docusign.com/");
        let prod = RawDocusign {
            environment: Environment::Production,
            ..raw()
        };
        let c = validate(prod, &public(), &Origins::default()).unwrap();
        assert_eq!(c.auth_server.host_str(), Some("account.docusign.com"));
    }

    #[test]
    fn a_host_pattern_from_the_environment_is_not_echoed() {
        let mut origins = Origins::default();
        origins.set_by(
            "docusign.allowed_api_hosts".into(),
            "DSGW_DOCUSIGN_ALLOWED_API_HOSTS".into(),
        );
        let bad = RawDocusign {
            allowed_api_hosts: vec!["very secret!".into()],
            ..raw()
        };
        let e = validate(bad, &public(), &origins).unwrap_err();
        assert_eq!(e.key, "docusign.allowed_api_hosts");
        assert!(!e.to_string().contains("very secret!"), "{e}");
    }
}
