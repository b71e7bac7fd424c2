//! Which part of the gateway a request path belongs to.

use crate::config::{Api, ApiSet};
use crate::util::paths::*;
use crate::web::reply::Reply;

/// What the gateway does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    Login,
    Callback,
    SessionInfo,
    Logout,
    /// Mints a gateway API token.
    Token,
    /// Lists the session's gateway tokens.
    Tokens,
    /// `/auth/tokens/{id}`: revokes one.
    TokenItem,
    /// Sends a service's DocuSign user to consent (service mode).
    Consent,
    /// `POST /webhooks/<name>`: a DocuSign Connect message.
    Webhook,
    /// Forwarded to DocuSign: the API the path belongs to (one of `apis`).
    Api(Api),
    NotFound,
}

/// The route of `path`; a path of an API not in `apis` is not found.
pub fn route(path: &str, callback_path: &str, apis: ApiSet) -> Route {
    match path {
        HEALTH_PATH => Route::Health,
        READY_PATH => Route::Ready,
        LOGIN_PATH => Route::Login,
        SESSION_PATH => Route::SessionInfo,
        LOGOUT_PATH => Route::Logout,
        TOKEN_PATH => Route::Token,
        TOKENS_PATH => Route::Tokens,
        p if p
            .strip_prefix(TOKENS_PATH)
            .is_some_and(|rest| rest.starts_with('/')) =>
        {
            Route::TokenItem
        }
        CONSENT_PATH => Route::Consent,
        p if p == callback_path => Route::Callback,
        p if p.starts_with(WEBHOOKS_PREFIX) => Route::Webhook,
        p => match Api::of_path(p) {
            Some(api) if apis.contains(api) => Route::Api(api),
            _ => Route::NotFound,
        },
    }
}

/// The methods that are forwarded to DocuSign, as an `Allow` header value.
pub const FORWARDED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";

/// Only the methods DocuSign's REST API uses are forwarded: `TRACE` (which a
/// REST host may echo with the bearer token), WebDAV and made-up methods are
/// answered 405 here, before any session or token is looked at.
pub fn check_method(method: &http::Method) -> Result<(), Reply> {
    use http::Method;
    match *method {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE => Ok(()),
        _ => Err(Reply::error(
            405,
            "method_not_allowed",
            "The gateway forwards GET, HEAD, POST, PUT, PATCH and DELETE only.",
        )
        .header("Allow", FORWARDED_METHODS)),
    }
}

/// An API path that passed the grammar of [`parse_api_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiPath<'a> {
    /// The account the path names, as written (compare case-insensitively).
    pub account: Option<&'a str>,
    /// The organization the path names (Admin and platform APIs).
    pub organization: Option<&'a str>,
}

/// Why an API path is not forwarded (400 `invalid_path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("The path does not start with the API's prefix.")]
    NotApi,
    #[error("The path has an empty segment ('//' or a trailing '/').")]
    EmptySegment,
    #[error("Paths with '.' or '..' segments, or an encoded '/' or '\\', are not forwarded.")]
    DotSegment,
    #[error("The segment after the API's prefix (/restapi/, /clickapi/, /management/) must be an API version such as v2 or v2.1.")]
    BadVersion,
    #[error("The segment after the version may only hold letters, digits, '_' and '-'.")]
    BadResource,
    #[error("An account id is 1 to 64 letters, digits or '-' (a GUID or a numeric id).")]
    BadAccountId,
    #[error("An organization id is 1 to 64 letters, digits or '-' (a GUID).")]
    BadOrganizationId,
}

impl PathError {
    pub fn reply(self) -> Reply {
        Reply::error(400, "invalid_path", &self.to_string())
    }
}

/// Longest account id accepted in a path.
const MAX_ACCOUNT_ID: usize = 64;

/// The one grammar a forwarded path must follow, after its API's prefix
/// (`/restapi`, `/clickapi`, `/management`; none for the platform APIs,
/// whose paths start `/v1/accounts/` or `/v1/organizations/`):
///
/// ```text
/// {prefix}/{version}[/{resource}[/{id}]][/{segment}...]
/// version    = "v" 1*DIGIT [ "." 1*DIGIT ]
/// resource   = 1*( ALPHA / DIGIT / "_" / "-" )
/// id         = 1*64( ALPHA / DIGIT / "-" )      when resource is "accounts"
///                                               or "organizations"
/// ```
///
/// No segment may be empty (`//`, trailing `/`), and no segment may be `.`
/// or `..` or hold an encoded `/` or `\`, literally or percent-encoded.
/// `resource` is compared with `accounts` case-insensitively: a path that
/// names an account in any spelling gets that account's check and host.
/// Percent-encoding and `;` parameters are refused in the version, the
/// resource and the account id. DocuSign's account ids (GUIDs and numeric
/// ids) fit the account id rule; the gateway then checks the id against the
/// session's accounts.
pub fn parse_api_path(api: Api, path: &str) -> Result<ApiPath<'_>, PathError> {
    let rest = api.strip_prefix(path).ok_or(PathError::NotApi)?;
    // The first three segments (version, resource, account id) are kept.
    let mut segments: [Option<&str>; 3] = [None; 3];
    for (i, seg) in rest.split('/').enumerate() {
        if seg.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if is_dot_segment(seg) {
            return Err(PathError::DotSegment);
        }
        if let Some(kept) = segments.get_mut(i) {
            *kept = Some(seg);
        }
    }
    let version = segments[0].unwrap_or_default();
    if !is_version(version) {
        return Err(PathError::BadVersion);
    }
    let mut named = ApiPath {
        account: None,
        organization: None,
    };
    if let Some(resource) = segments[1] {
        if !resource
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(PathError::BadResource);
        }
        let id = segments[2];
        if resource.eq_ignore_ascii_case("accounts") {
            named.account = id
                .map(|id| is_id(id).then_some(id).ok_or(PathError::BadAccountId))
                .transpose()?;
        } else if resource.eq_ignore_ascii_case("organizations") {
            named.organization = id
                .map(|id| is_id(id).then_some(id).ok_or(PathError::BadOrganizationId))
                .transpose()?;
        }
    }
    Ok(named)
}

/// The request target sent to the REST host: always origin-form, the path
/// and query that were checked, under the `base_uri`'s path prefix if it has
/// one. (pingora keeps an absolute-form target verbatim for the wire unless
/// the URI is set again, so it is always set.)
pub fn upstream_target(path_prefix: &str, uri: &http::Uri) -> Option<http::Uri> {
    let pq = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("{path_prefix}{pq}").parse().ok()
}

/// `v` + digits + optional `.` + digits.
fn is_version(seg: &str) -> bool {
    let Some(num) = seg.strip_prefix('v') else {
        return false;
    };
    let (major, minor) = match num.split_once('.') {
        Some((major, minor)) => (major, Some(minor)),
        None => (num, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && minor.is_none_or(digits)
}

/// An account or organization id: a GUID or a numeric id.
fn is_id(seg: &str) -> bool {
    !seg.is_empty()
        && seg.len() <= MAX_ACCOUNT_ID
        && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A `.` or `..` segment, literally or percent-encoded, or one that decodes
/// to something holding `/` or `\`: such a path could reach another account
/// than the one it names.
fn is_dot_segment(seg: &str) -> bool {
    if !seg.contains('%') {
        // Nothing to decode (and a segment holds no `/`).
        return seg == "." || seg == ".." || seg.contains('\\');
    }
    let decoded = percent_encoding::percent_decode_str(seg).decode_utf8_lossy();
    decoded == "." || decoded == ".." || decoded.contains(['/', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, cb: &str) -> Route {
        super::route(path, cb, ApiSet::default())
    }

    #[test]
    fn routes() {
        let cb = "/auth/docusign/callback";
        assert_eq!(route("/healthz", cb), Route::Health);
        assert_eq!(route("/auth/login", cb), Route::Login);
        assert_eq!(route(cb, cb), Route::Callback);
        assert_eq!(
            route("/restapi/v2.1/accounts/x", cb),
            Route::Api(Api::Esignature)
        );
        assert_eq!(route("/restapi", cb), Route::NotFound);
        assert_eq!(route("/", cb), Route::NotFound);
        assert_eq!(route("/readyz", cb), Route::Ready);
        assert_eq!(route("/auth/token", cb), Route::Token);
    }

    /// An API not in `docusign.apis` is not routed: 404 like any unknown path.
    #[test]
    fn only_enabled_apis_are_routed() {
        let cb = "/cb";
        let paths = [
            ("/restapi/v2.1/accounts/x", Api::Esignature),
            ("/clickapi/v1/accounts/x/clickwraps", Api::Click),
            ("/Management/v2/organizations", Api::Admin),
            ("/v1/accounts/x/agreements", Api::Platform),
            ("/v1/organizations/o/stream", Api::Platform),
        ];
        for (path, api) in paths {
            assert_eq!(route(path, cb) == Route::NotFound, api != Api::Esignature);
            let all = ApiSet::of(&Api::ALL);
            assert_eq!(super::route(path, cb, all), Route::Api(api), "{path}");
            let only = ApiSet::of(&[api]);
            assert_eq!(super::route(path, cb, only), Route::Api(api), "{path}");
            for other in Api::ALL.into_iter().filter(|a| *a != api) {
                let without = ApiSet::of(&[other]);
                assert_eq!(super::route(path, cb, without), Route::NotFound, "{path}");
            }
        }
    }

    /// The account and organization a path names.
    type Named<'a> = Result<(Option<&'a str>, Option<&'a str>), PathError>;

    fn named(api: Api, path: &str) -> Named<'_> {
        parse_api_path(api, path).map(|p| (p.account, p.organization))
    }

    #[test]
    fn other_apis_follow_the_same_grammar() {
        use PathError::*;
        let org = "0b4e5a2c-1f3d-4e6a-9b8c-7d6e5f4a3b2c";
        let table: &[(Api, String, Named)] = &[
            (
                Api::Click,
                format!("/clickapi/v1/accounts/{ID}/clickwraps"),
                Ok((Some(ID), None)),
            ),
            (
                Api::Click,
                format!("/clickapi/v1/Accounts/{ID}"),
                Ok((Some(ID), None)),
            ),
            (Api::Click, "/clickapi/v1/accounts".into(), Ok((None, None))),
            (
                Api::Click,
                format!("/clickapi/v1/accounts/{ID}/../x"),
                Err(DotSegment),
            ),
            (
                Api::Click,
                format!("/clickapi/v1/%61ccounts/{ID}"),
                Err(BadResource),
            ),
            (
                Api::Click,
                format!("/clickapi/accounts/{ID}"),
                Err(BadVersion),
            ),
            (
                Api::Admin,
                "/management/v2/organizations".into(),
                Ok((None, None)),
            ),
            (
                Api::Admin,
                format!("/management/v2/organizations/{org}/users"),
                Ok((None, Some(org))),
            ),
            (
                Api::Admin,
                format!("/Management/v2.1/Organizations/{org}/x"),
                Ok((None, Some(org))),
            ),
            (
                Api::Admin,
                format!("/management/v2/organizations/{org};x/users"),
                Err(BadOrganizationId),
            ),
            (
                Api::Admin,
                format!("/management/v2/%6Frganizations/{org}"),
                Err(BadResource),
            ),
            (
                Api::Admin,
                format!("/management/v2/organizations/{org}//users"),
                Err(EmptySegment),
            ),
            (
                Api::Admin,
                format!("/management/v2/organizations/%2e%2e/{org}"),
                Err(DotSegment),
            ),
            (
                Api::Admin,
                "/management/organizations".into(),
                Err(BadVersion),
            ),
            (
                Api::Admin,
                format!("/management/v2/data_redaction/accounts/{ID}/user"),
                Ok((None, None)),
            ),
            (
                Api::Platform,
                format!("/v1/organizations/{org}/stream"),
                Ok((None, Some(org))),
            ),
            (
                Api::Platform,
                format!("/v1/accounts/{ID}/agreements"),
                Ok((Some(ID), None)),
            ),
            (
                Api::Platform,
                format!("/v1/accounts/{ID}x%2F"),
                Err(DotSegment),
            ),
            (
                Api::Platform,
                "/v1/accounts/a_b/agreements".into(),
                Err(BadAccountId),
            ),
            (Api::Platform, "/v1/other/x".into(), Err(NotApi)),
            (
                Api::Esignature,
                format!("/clickapi/v1/accounts/{ID}"),
                Err(NotApi),
            ),
        ];
        for (api, path, want) in table {
            assert_eq!(named(*api, path), *want, "{path}");
        }
    }

    #[test]
    fn every_answered_path_is_reserved() {
        for p in [
            "/auth/login",
            "/auth/session",
            "/auth/logout",
            "/auth/token",
            "/healthz",
            "/readyz",
        ] {
            assert!(is_reserved_path(p), "{p}");
            assert_ne!(route(p, "/cb"), Route::NotFound);
        }
    }

    const ID: &str = "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";

    fn account(path: &str) -> Result<Option<&str>, PathError> {
        parse_api_path(Api::Esignature, path).map(|p| p.account)
    }

    #[test]
    fn finds_the_account() {
        assert_eq!(account("/restapi/v2.1/accounts/abc"), Ok(Some("abc")));
        assert_eq!(
            account("/restapi/v2/accounts/abc/envelopes"),
            Ok(Some("abc"))
        );
        assert_eq!(
            account("/restapi/v2.1/accounts/12345678"),
            Ok(Some("12345678"))
        );
        assert_eq!(
            account(&format!("/restapi/v2.1/accounts/{ID}/envelopes")),
            Ok(Some(ID))
        );
        assert_eq!(account("/restapi/v2.1/accounts"), Ok(None));
        assert_eq!(account("/restapi/v2.1/billing_plans"), Ok(None));
        assert_eq!(account("/restapi/v2.1"), Ok(None));
        // Later segments may be percent-encoded (document names, ids).
        assert_eq!(
            account(&format!("/restapi/v2.1/accounts/{ID}/envelopes/e%20f")),
            Ok(Some(ID))
        );
    }

    /// Every spelling the audit used to reach the default account's host
    /// with a foreign account id (issue 13, item 3), and more.
    #[test]
    fn odd_spellings_are_refused_or_name_their_account() {
        use PathError::*;
        let table: &[(&str, Result<Option<&str>, PathError>)] = &[
            // Any spelling of `accounts` names the account.
            ("/restapi/v2.1/Accounts/{id}", Ok(Some(ID))),
            ("/restapi/v2.1/ACCOUNTS/{id}/envelopes", Ok(Some(ID))),
            ("/restapi/v2.1/aCcOuNtS/{id}", Ok(Some(ID))),
            // Empty segments anywhere.
            ("/restapi/v2.1/accounts//{id}", Err(EmptySegment)),
            ("/restapi//v2.1/accounts/{id}", Err(EmptySegment)),
            ("/restapi/v2.1//accounts/{id}", Err(EmptySegment)),
            ("/restapi/v2.1/accounts/{id}//envelopes", Err(EmptySegment)),
            ("/restapi/v2.1/accounts/", Err(EmptySegment)),
            ("/restapi/v2.1/accounts/{id}/", Err(EmptySegment)),
            ("/restapi/", Err(EmptySegment)),
            // Percent-encoding and parameters in `accounts`.
            ("/restapi/v2.1/%61ccounts/{id}", Err(BadResource)),
            ("/restapi/v2.1/%41CCOUNTS/{id}", Err(BadResource)),
            ("/restapi/v2.1/accounts%20/{id}", Err(BadResource)),
            ("/restapi/v2.1/accounts;x=1/{id}", Err(BadResource)),
            ("/restapi/v2.1/accounts;/{id}", Err(BadResource)),
            ("/restapi/v2.1/accounts /{id}", Err(BadResource)),
            ("/restapi/v2.1/accounts./{id}", Err(BadResource)),
            // No version, or a version in another spelling.
            ("/restapi/accounts/{id}", Err(BadVersion)),
            ("/restapi/accounts", Err(BadVersion)),
            ("/restapi/V2.1/accounts/{id}", Err(BadVersion)),
            ("/restapi/v2.1;x=1/accounts/{id}", Err(BadVersion)),
            ("/restapi/v2%2E1/accounts/{id}", Err(BadVersion)),
            ("/restapi/%762.1/accounts/{id}", Err(BadVersion)),
            ("/restapi/v/accounts/{id}", Err(BadVersion)),
            ("/restapi/v2./accounts/{id}", Err(BadVersion)),
            ("/restapi/v.1/accounts/{id}", Err(BadVersion)),
            ("/restapi/v2.1.0/accounts/{id}", Err(BadVersion)),
            ("/restapi/v2x/accounts/{id}", Err(BadVersion)),
            // `restapi` itself in another spelling is not an API path at all.
            ("/restapi;x=1/v2.1/accounts/{id}", Err(NotApi)),
            ("/%72estapi/v2.1/accounts/{id}", Err(NotApi)),
            ("/RESTAPI/v2.1/accounts/{id}", Err(NotApi)),
            ("//restapi/v2.1/accounts/{id}", Err(NotApi)),
            // The account id: strict characters, never encoded.
            ("/restapi/v2.1/accounts/%61{id}", Err(BadAccountId)),
            ("/restapi/v2.1/accounts/{id};x=1", Err(BadAccountId)),
            ("/restapi/v2.1/accounts/{id}%20", Err(BadAccountId)),
            ("/restapi/v2.1/accounts/{id}%2F..%2Fother", Err(DotSegment)),
            ("/restapi/v2.1/accounts/a_b", Err(BadAccountId)),
            ("/restapi/v2.1/accounts/{id}{id}", Err(BadAccountId)),
            // Dot segments, literal or encoded, anywhere.
            ("/restapi/v2.1/accounts/{id}/../other", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/%2e%2E/other", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/%2E/x", Err(DotSegment)),
            ("/restapi/./v2.1/accounts/{id}", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/a%5Cb", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/a\\b", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/envelopes/..", Err(DotSegment)),
            ("/restapi/v2.1/accounts/{id}/envelopes/x/.", Err(DotSegment)),
            (
                "/restapi/v2.1/accounts/{id}/envelopes/x/",
                Err(EmptySegment),
            ),
        ];
        for (path, want) in table {
            let path = path.replace("{id}", ID);
            assert_eq!(account(&path), *want, "{path}");
        }
    }

    #[test]
    fn upstream_targets_are_origin_form_under_the_prefix() {
        let id = format!("/restapi/v2.1/accounts/{ID}?a=1");
        let uri: http::Uri = format!("http://evil.example:8443{id}").parse().unwrap();
        assert_eq!(upstream_target("", &uri).unwrap().to_string(), id);
        assert_eq!(
            upstream_target("/base", &id.parse().unwrap())
                .unwrap()
                .to_string(),
            format!("/base{id}")
        );
    }

    #[test]
    fn refused_paths_are_400_invalid_path() {
        let r = PathError::EmptySegment.reply();
        assert_eq!(r.status, 400);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "invalid_path");
    }

    #[test]
    fn only_rest_methods_are_forwarded() {
        for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(check_method(&m.parse().unwrap()).is_ok(), "{m}");
        }
        for m in [
            "TRACE", "PROPFIND", "OPTIONS", "CONNECT", "MKCOL", "BREW", "get",
        ] {
            let r = check_method(&m.parse().unwrap()).unwrap_err();
            assert_eq!(r.status, 405, "{m}");
            assert!(r
                .headers
                .iter()
                .any(|(k, v)| *k == "Allow" && v == FORWARDED_METHODS));
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["error"], "method_not_allowed");
        }
    }
}
