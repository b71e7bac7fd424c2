//! Which REST hosts may receive a DocuSign token, and how to reach them.
//!
//! A `base_uri` from `/oauth/userinfo` is parsed once, at login, into an
//! [`ApiHost`]; one that fails the policy keeps the reason, and requests for
//! that account are refused with it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Deserializer, Serialize};
use url::{Host, Url};

use crate::config::HostPattern;

/// The rules a `base_uri` must pass before it may receive a token.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    pub allowed: Vec<HostPattern>,
    pub allow_plain_http: bool,
}

/// Why no token may go to an account's `base_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HostRefused {
    #[error("the account's base_uri {0:?} is not a valid URL")]
    InvalidUrl(String),
    #[error("the account's base_uri {0:?} is plain http, which is not allowed")]
    PlainHttp(String),
    #[error("the account's base_uri has scheme {0:?}")]
    Scheme(String),
    #[error("the account's base_uri carries credentials or a query")]
    CredentialsOrQuery,
    #[error("the account's base_uri has no host")]
    NoHost,
    #[error("the account's REST host {host:?} on port {port} is not in docusign.allowed_api_hosts (a pattern without a port admits port 443 only)")]
    NotAllowed { host: String, port: u16 },
}

/// A REST host that passed the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ApiHost {
    pub tls: bool,
    /// Host name or IP address (without brackets), used for DNS and SNI.
    pub host: String,
    pub port: u16,
    /// The `Host` header value: host, plus the port when it is not the default.
    pub authority: String,
    /// Path of the base_uri without a trailing slash (normally empty).
    pub path_prefix: String,
}

/// Distinct REST hosts that sessions share one copy of (DocuSign has a few
/// dozen, and `docusign.allowed_api_hosts` admits no others); a host beyond
/// this many gets its own copy.
pub const SHARED_API_HOSTS: usize = 1024;

/// `host` as the copy every session naming it shares: a session holds a
/// pointer per account, not the host's strings.
pub fn shared(host: ApiHost) -> Arc<ApiHost> {
    static HOSTS: OnceLock<Mutex<HashSet<Arc<ApiHost>>>> = OnceLock::new();
    let mut hosts = HOSTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = hosts.get(&host) {
        return known.clone();
    }
    let host = Arc::new(host);
    if hosts.len() < SHARED_API_HOSTS {
        hosts.insert(host.clone());
    }
    host
}

/// Serde's `deserialize_with` for an account's checked host: a stored
/// session shares its hosts as a new one does.
pub fn deserialize_shared<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Result<Arc<ApiHost>, HostRefused>, D::Error> {
    Ok(Result::<ApiHost, HostRefused>::deserialize(d)?.map(shared))
}

impl ApiHost {
    /// The host of an API the operator configured (`admin_api_url`,
    /// `platform_api_url`, validated at start): admitted as configured, not
    /// by `allowed_api_hosts`. `route_prefix` is the gateway's own prefix
    /// for that API when the URL ends in it (`/management`): the path is
    /// forwarded unchanged under what comes before.
    pub fn configured(url: &Url, route_prefix: Option<&str>) -> ApiHost {
        let host = host_name(url).unwrap_or_default();
        let tls = url.scheme() == "https";
        let authority = authority(url, &host);
        let mut path = url.path().trim_end_matches('/');
        if let Some(prefix) = route_prefix {
            let cut = path.len().saturating_sub(prefix.len());
            if path.is_char_boundary(cut) && path[cut..].eq_ignore_ascii_case(prefix) {
                path = &path[..cut];
            }
        }
        ApiHost {
            tls,
            port: url
                .port_or_known_default()
                .unwrap_or(if tls { 443 } else { 80 }),
            host,
            authority,
            path_prefix: path.to_string(),
        }
    }
}

/// The URL's host as the peer's name and SNI: a domain in lower case, an
/// address as text (IPv6 without brackets).
fn host_name(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain(d) => Some(d.to_ascii_lowercase()),
        Host::Ipv4(a) => Some(a.to_string()),
        Host::Ipv6(a) => Some(a.to_string()),
    }
}

/// The `Host` header for `url` whose host is `host`: IPv6 in brackets, the
/// port only when the URL names one.
fn authority(url: &Url, host: &str) -> String {
    let host = match url.host() {
        Some(Host::Ipv6(_)) => format!("[{host}]"),
        _ => host.to_string(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

impl HostPolicy {
    /// Checks a `base_uri`; the error says why no token may go there.
    pub fn check(&self, base_uri: &str) -> Result<ApiHost, HostRefused> {
        let url =
            Url::parse(base_uri).map_err(|_| HostRefused::InvalidUrl(base_uri.to_string()))?;
        let tls = match url.scheme() {
            "https" => true,
            "http" if self.allow_plain_http => false,
            "http" => return Err(HostRefused::PlainHttp(base_uri.to_string())),
            other => return Err(HostRefused::Scheme(other.to_string())),
        };
        if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
            return Err(HostRefused::CredentialsOrQuery);
        }
        let host = host_name(&url).ok_or(HostRefused::NoHost)?;
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        if !self.allows(&host, port) {
            return Err(HostRefused::NotAllowed { host, port });
        }
        let authority = authority(&url, &host);
        Ok(ApiHost {
            tls,
            host,
            port,
            authority,
            path_prefix: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// Whether a pattern of `allowed_api_hosts` matches `host:port`.
    fn allows(&self, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|p| p.matches(host, port))
    }

    /// Whether this policy still admits a host checked at login, perhaps by
    /// an instance with another configuration (a session read from a shared
    /// store): a narrowed `allowed_api_hosts` or a `allow_plain_http` turned
    /// off holds for sessions made before it. Checked before every forward.
    pub fn admits(&self, host: &ApiHost) -> Result<(), HostRefused> {
        if !host.tls && !self.allow_plain_http {
            return Err(HostRefused::PlainHttp(format!("http://{}", host.authority)));
        }
        if !self.allows(&host.host, host.port) {
            return Err(HostRefused::NotAllowed {
                host: host.host.clone(),
                port: host.port,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(patterns: &[&str], plain: bool) -> HostPolicy {
        HostPolicy {
            allowed: patterns
                .iter()
                .map(|p| HostPattern::parse(p).unwrap())
                .collect(),
            allow_plain_http: plain,
        }
    }

    #[test]
    fn sessions_share_one_copy_of_a_host_through_serde_too() {
        let p = policy(&["*.docusign.net"], false);
        let a = shared(p.check("https://na9.docusign.net").unwrap());
        let b = shared(p.check("https://na9.docusign.net/").unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared(p.check("https://eu9.docusign.net").unwrap());
        assert!(!Arc::ptr_eq(&a, &c));
        #[derive(Deserialize)]
        struct Held(
            #[serde(deserialize_with = "deserialize_shared")] Result<Arc<ApiHost>, HostRefused>,
        );
        let json = serde_json::to_string(&Ok::<_, HostRefused>(a.clone())).unwrap();
        let Held(back) = serde_json::from_str(&json).unwrap();
        assert!(Arc::ptr_eq(&a, &back.unwrap()));
        let refused = serde_json::to_string(&Err::<ApiHost, _>(HostRefused::NoHost)).unwrap();
        let Held(back) = serde_json::from_str(&refused).unwrap();
        assert_eq!(back, Err(HostRefused::NoHost));
    }

    #[test]
    fn a_host_checked_under_a_wider_policy_is_refused_by_a_narrower_one() {
        let wide = policy(&["*.docusign.net", "127.0.0.2:8080"], true);
        let na9 = wide.check("https://na9.docusign.net").unwrap();
        let local = wide.check("http://127.0.0.2:8080").unwrap();
        assert_eq!(wide.admits(&na9), Ok(()));
        assert_eq!(wide.admits(&local), Ok(()));
        let narrow = policy(&["na9.docusign.net", "127.0.0.2:8080"], false);
        assert_eq!(narrow.admits(&na9), Ok(()));
        assert_eq!(
            narrow.admits(&local),
            Err(HostRefused::PlainHttp("http://127.0.0.2:8080".into()))
        );
        let other = policy(&["eu.docusign.net"], true);
        assert_eq!(
            other.admits(&na9),
            Err(HostRefused::NotAllowed {
                host: "na9.docusign.net".into(),
                port: 443
            })
        );
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let p = HostPattern::parse("*.docusign.net").unwrap();
        assert!(p.matches("demo.docusign.net", 443));
        assert!(p.matches("NA2.docusign.net", 443));
        assert!(p.matches("a.b.docusign.net", 443));
        assert!(!p.matches("docusign.net", 443));
        assert!(!p.matches("evildocusign.net", 443));
        assert!(!p.matches("demo.docusign.net.evil.com", 443));
        assert!(HostPattern::parse("*.net").is_err());
        assert!(HostPattern::parse("*").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("exa mple.com").is_err());
    }

    /// Issue 13, item 11: the port of an allowed host is checked too.
    #[test]
    fn only_port_443_or_the_written_port_gets_a_token() {
        let p = policy(&["*.docusign.net", "127.0.0.2:9001", "[::1]:8443"], true);
        assert!(p.check("https://demo.docusign.net").is_ok());
        assert!(p.check("https://demo.docusign.net:443").is_ok());
        for refused in [
            "https://demo.docusign.net:8443",
            "https://demo.docusign.net:444",
            "http://demo.docusign.net",
            "http://127.0.0.2:9002",
            "http://127.0.0.2",
            "https://[::1]",
        ] {
            let e = p.check(refused).unwrap_err();
            assert!(
                e.to_string().contains("allowed_api_hosts"),
                "{refused}: {e}"
            );
        }
        assert!(p.check("http://127.0.0.2:9001").is_ok());
        assert!(p.check("https://[::1]:8443/").is_ok());
        // A bare IPv6 address or host with `:443` is the same as without.
        assert!(policy(&["::1"], false).check("https://[::1]").is_ok());
        assert!(policy(&["a.example:443"], false)
            .check("https://a.example")
            .is_ok());
        for bad in [
            "a.example:0",
            "a.example:x",
            "a.example:65536",
            "a.example:",
            "a.example:+1",
            "*.docusign.net:",
            "[::1",
            "[::1]x",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn configured_hosts_keep_the_path_before_the_routes_prefix() {
        let url = |s: &str| Url::parse(s).unwrap();
        let admin = ApiHost::configured(
            &url("https://api-d.docusign.net/management"),
            Some("/management"),
        );
        assert_eq!(
            (
                admin.tls,
                admin.host.as_str(),
                admin.port,
                admin.authority.as_str()
            ),
            (true, "api-d.docusign.net", 443, "api-d.docusign.net")
        );
        assert_eq!(admin.path_prefix, "");
        let egress = ApiHost::configured(
            &url("http://127.0.0.4:9001/egress/Management/"),
            Some("/management"),
        );
        assert_eq!(egress.path_prefix, "/egress");
        assert_eq!(egress.authority, "127.0.0.4:9001");
        assert!(!egress.tls);
        let bare = ApiHost::configured(&url("http://127.0.0.4:9001"), Some("/management"));
        assert_eq!(bare.path_prefix, "");
        let platform = ApiHost::configured(&url("https://api-d.docusign.com/"), None);
        assert_eq!(
            (platform.host.as_str(), platform.path_prefix.as_str()),
            ("api-d.docusign.com", "")
        );
    }

    #[test]
    fn docusign_base_uri_passes() {
        let h = policy(&["*.docusign.net"], false)
            .check("https://demo.docusign.net")
            .unwrap();
        assert_eq!(
            h,
            ApiHost {
                tls: true,
                host: "demo.docusign.net".into(),
                port: 443,
                authority: "demo.docusign.net".into(),
                path_prefix: String::new(),
            }
        );
    }

    #[test]
    fn plain_http_and_foreign_hosts_are_refused() {
        let p = policy(&["*.docusign.net", "127.0.0.2:9001"], false);
        assert!(p
            .check("http://demo.docusign.net")
            .unwrap_err()
            .to_string()
            .contains("plain http"));
        assert!(p
            .check("https://evil.example")
            .unwrap_err()
            .to_string()
            .contains("allowed_api_hosts"));
        assert!(p.check("https://u:p@demo.docusign.net").is_err());
        assert!(p.check("ftp://demo.docusign.net").is_err());
        assert!(p.check("not a url").is_err());
        let h = policy(&["127.0.0.2:9001"], true)
            .check("http://127.0.0.2:9001/")
            .unwrap();
        assert_eq!(
            (h.tls, h.port, h.authority.as_str()),
            (false, 9001, "127.0.0.2:9001")
        );
    }
}
