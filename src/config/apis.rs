//! `[docusign] apis`, `admin_api_url`, `platform_api_url`: which of
//! DocuSign's APIs the gateway routes, and the fixed hosts of the ones that
//! do not live on the account's REST host (see `docs/src/other-apis.md`).

use url::Url;

use super::docusign::{service_url, Environment};
use super::error::{ConfigError, Origins};

/// One of DocuSign's APIs the gateway can route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `/restapi/...` on the account's REST host.
    Esignature,
    /// `/clickapi/...` on the account's REST host.
    Click,
    /// `/management/...` on the Admin host.
    Admin,
    /// `/v1/organizations/...` and `/v1/accounts/{id}/...` on the
    /// api.docusign.com host (Monitor, Navigator, Maestro).
    Platform,
}

impl Api {
    pub const ALL: [Api; 4] = [Api::Esignature, Api::Click, Api::Admin, Api::Platform];

    /// The name in `docusign.apis` and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Esignature => "esignature",
            Api::Click => "click",
            Api::Admin => "admin",
            Api::Platform => "platform",
        }
    }

    /// The API a request path belongs to, by its prefix: `/restapi/`,
    /// `/clickapi/`, `/management/` (the segment in any case),
    /// `/v1/organizations/` or `/v1/accounts/`.
    pub fn of_path(path: &str) -> Option<Api> {
        if path.starts_with("/restapi/") {
            return Some(Api::Esignature);
        }
        if path.starts_with("/clickapi/") {
            return Some(Api::Click);
        }
        if path.starts_with("/v1/organizations/") || path.starts_with("/v1/accounts/") {
            return Some(Api::Platform);
        }
        let first = path.strip_prefix('/')?.split_once('/')?.0;
        first
            .eq_ignore_ascii_case("management")
            .then_some(Api::Admin)
    }

    /// `path` after this API's prefix, or `None` when it is not this API's.
    pub fn strip_prefix(self, path: &str) -> Option<&str> {
        match self {
            Api::Esignature => path.strip_prefix("/restapi/"),
            Api::Click => path.strip_prefix("/clickapi/"),
            Api::Admin => {
                let (first, rest) = path.strip_prefix('/')?.split_once('/')?;
                first.eq_ignore_ascii_case("management").then_some(rest)
            }
            Api::Platform => (Api::of_path(path) == Some(Api::Platform)).then(|| &path[1..]),
        }
    }

    fn parse(name: &str) -> Option<Api> {
        Api::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name.trim()))
    }

    /// The OAuth scopes DocuSign's documentation names for this API: a
    /// token holding none of them is refused by it.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Api::Esignature => &["signature"],
            Api::Click => &["click.manage", "click.send"],
            Api::Admin => &[
                "organization_read",
                "group_read",
                "permission_read",
                "user_read",
                "user_write",
                "account_read",
                "domain_read",
                "identity_provider_read",
                "user_data_redact",
            ],
            // Monitor's `signature impersonation` (JWT grant), Navigator's,
            // Maestro's (`signature` alone opens none of them).
            Api::Platform => &["impersonation", "adm_store_unified_repo_read", "aow_manage"],
        }
    }
}

/// The enabled APIs, as a set that is free to copy and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSet(u8);

impl ApiSet {
    pub fn of(apis: &[Api]) -> ApiSet {
        ApiSet(apis.iter().fold(0, |bits, a| bits | 1 << *a as u8))
    }

    pub fn contains(self, api: Api) -> bool {
        self.0 & (1 << api as u8) != 0
    }

    /// The enabled APIs in [`Api::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = Api> {
        Api::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl Default for ApiSet {
    fn default() -> Self {
        ApiSet::of(&[Api::Esignature])
    }
}

/// The Admin API's host of an environment (the Admin SDK's `host`).
pub fn default_admin_url(env: Environment) -> &'static str {
    match env {
        Environment::Demo => "https://api-d.docusign.net/management",
        Environment::Production => "https://api.docusign.net/management",
    }
}

/// The api.docusign.com family's host of an environment.
pub fn default_platform_url(env: Environment) -> &'static str {
    match env {
        Environment::Demo => "https://api-d.docusign.com",
        Environment::Production => "https://api.docusign.com",
    }
}

/// The validated API keys of `[docusign]`.
#[derive(Debug, Clone)]
pub struct Apis {
    pub enabled: ApiSet,
    /// Where `/management/...` goes (its path, without a final
    /// `/management`, prefixes the forwarded path).
    pub admin_api_url: Url,
    /// Where `/v1/...` goes (its path prefixes the forwarded path).
    pub platform_api_url: Url,
}

impl Apis {
    /// One line per enabled API and where it goes, as `check` prints them.
    pub fn describe(&self) -> Vec<String> {
        self.enabled
            .iter()
            .map(|api| {
                let (route, upstream) = match api {
                    Api::Esignature => {
                        ("/restapi/...", "the account's REST host (base_uri)".into())
                    }
                    Api::Click => ("/clickapi/...", "the account's REST host (base_uri)".into()),
                    Api::Admin => ("/management/...", self.admin_api_url.to_string()),
                    Api::Platform => (
                        "/v1/organizations/..., /v1/accounts/{id}/...",
                        self.platform_api_url.to_string(),
                    ),
                };
                format!("API {}: {route} to {upstream}", api.as_str())
            })
            .collect()
    }

    /// The enabled APIs none of whose scopes `scopes` holds.
    pub fn without_scopes(&self, scopes: &[String]) -> Vec<Api> {
        self.enabled
            .iter()
            .filter(|api| {
                !api.scopes()
                    .iter()
                    .any(|want| scopes.iter().any(|s| s == want))
            })
            .collect()
    }
}

pub(super) struct RawApis<'a> {
    pub names: &'a [String],
    pub admin_api_url: Option<&'a str>,
    pub platform_api_url: Option<&'a str>,
    pub environment: Environment,
    pub allow_plain_http: bool,
}

pub(super) fn validate(raw: RawApis<'_>, origins: &Origins) -> Result<Apis, ConfigError> {
    const KEY: &str = "docusign.apis";
    let mut enabled = Vec::new();
    for name in raw.names {
        let api = Api::parse(name).ok_or_else(|| {
            ConfigError::new(
                KEY,
                "expected a list of esignature, click, admin, platform (the value is not shown)",
            )
        })?;
        enabled.push(api);
    }
    if enabled.is_empty() {
        return Err(ConfigError::new(
            KEY,
            "expected at least one of esignature, click, admin, platform",
        ));
    }
    let url = |key: &str, set: Option<&str>, default: &str| {
        service_url(key, set.unwrap_or(default), raw.allow_plain_http, origins)
    };
    Ok(Apis {
        enabled: ApiSet::of(&enabled),
        admin_api_url: url(
            "docusign.admin_api_url",
            raw.admin_api_url,
            default_admin_url(raw.environment),
        )?,
        platform_api_url: url(
            "docusign.platform_api_url",
            raw.platform_api_url,
            default_platform_url(raw.environment),
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(names: &'a [String]) -> RawApis<'a> {
        RawApis {
            names,
            admin_api_url: None,
            platform_api_url: None,
            environment: Environment::Demo,
            allow_plain_http: false,
        }
    }

    #[test]
    fn names_parse_in_any_case_and_unknown_ones_fail() {
        let names: Vec<String> = vec!["esignature".into(), "Click".into(), " admin ".into()];
        let a = validate(raw(&names), &Origins::default()).unwrap();
        assert_eq!(
            a.enabled.iter().collect::<Vec<_>>(),
            [Api::Esignature, Api::Click, Api::Admin]
        );
        assert!(!a.enabled.contains(Api::Platform));
        assert_eq!(
            a.admin_api_url.as_str(),
            "https://api-d.docusign.net/management"
        );
        assert_eq!(a.platform_api_url.as_str(), "https://api-d.docusign.com/");
        for bad in [vec!["rooms".to_string()], vec![]] {
            let e = validate(raw(&bad), &Origins::default()).unwrap_err();
            assert_eq!(e.key, "docusign.apis");
        }
    }

    #[test]
    fn hosts_follow_the_environment_and_allow_plain_http() {
        let names = vec!["admin".to_string()];
        let prod = RawApis {
            environment: Environment::Production,
            ..raw(&names)
        };
        let a = validate(prod, &Origins::default()).unwrap();
        assert_eq!(a.admin_api_url.host_str(), Some("api.docusign.net"));
        assert_eq!(a.platform_api_url.host_str(), Some("api.docusign.com"));
        let plain = RawApis {
            admin_api_url: Some("http://127.0.0.4:9000/management"),
            ..raw(&names)
        };
        let e = validate(plain, &Origins::default()).unwrap_err();
        assert_eq!(e.key, "docusign.admin_api_url");
        let plain = RawApis {
            admin_api_url: Some("http://127.0.0.4:9000/management"),
            allow_plain_http: true,
            ..raw(&names)
        };
        assert!(validate(plain, &Origins::default()).is_ok());
        let query = RawApis {
            platform_api_url: Some("https://api.example/?x=1"),
            ..raw(&names)
        };
        let e = validate(query, &Origins::default()).unwrap_err();
        assert_eq!(e.key, "docusign.platform_api_url");
    }

    #[test]
    fn paths_belong_to_their_api_by_prefix() {
        for (path, api) in [
            ("/restapi/v2.1/accounts/a", Some(Api::Esignature)),
            ("/clickapi/v1/accounts/a/clickwraps", Some(Api::Click)),
            ("/management/v2/organizations", Some(Api::Admin)),
            ("/Management/v2/organizations", Some(Api::Admin)),
            ("/MANAGEMENT/v2", Some(Api::Admin)),
            ("/v1/organizations/o/stream", Some(Api::Platform)),
            ("/v1/accounts/a/agreements", Some(Api::Platform)),
            ("/management", None),
            ("/managementx/v2", None),
            ("/v1/other/x", None),
            ("/v1/accounts", None),
            ("/V1/accounts/a", None),
            ("/clickapi", None),
            ("/", None),
            ("", None),
        ] {
            assert_eq!(Api::of_path(path), api, "{path}");
            if let Some(api) = api {
                assert!(api.strip_prefix(path).is_some(), "{path}");
            }
        }
        assert_eq!(Api::Admin.strip_prefix("/Management/v2/x"), Some("v2/x"));
        assert_eq!(
            Api::Platform.strip_prefix("/v1/accounts/a"),
            Some("v1/accounts/a")
        );
        assert_eq!(Api::Click.strip_prefix("/restapi/v2.1"), None);
    }

    #[test]
    fn apis_without_their_scopes_are_named() {
        let names: Vec<String> = Api::ALL.iter().map(|a| a.as_str().to_string()).collect();
        let a = validate(raw(&names), &Origins::default()).unwrap();
        let scopes = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            a.without_scopes(&scopes(&["signature"])),
            [Api::Click, Api::Admin, Api::Platform]
        );
        assert_eq!(
            a.without_scopes(&scopes(&[
                "signature",
                "click.send",
                "user_read",
                "aow_manage"
            ])),
            []
        );
        let lines = a.describe();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[2].contains("https://api-d.docusign.net/management"),
            "{lines:?}"
        );
    }

    #[test]
    fn the_default_is_esignature_only() {
        let set = ApiSet::default();
        assert!(set.contains(Api::Esignature));
        assert_eq!(set.iter().count(), 1);
    }
}
