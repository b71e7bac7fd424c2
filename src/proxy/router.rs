//! Which part of the gateway a request path belongs to.

use crate::util::paths::*;

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
    /// Forwarded to a DocuSign REST host.
    Api,
    NotFound,
}

pub fn route(path: &str, callback_path: &str) -> Route {
    match path {
        HEALTH_PATH => Route::Health,
        READY_PATH => Route::Ready,
        LOGIN_PATH => Route::Login,
        SESSION_PATH => Route::SessionInfo,
        LOGOUT_PATH => Route::Logout,
        TOKEN_PATH => Route::Token,
        p if p == callback_path => Route::Callback,
        p if p.starts_with(API_PREFIX) => Route::Api,
        _ => Route::NotFound,
    }
}

/// The account a REST path names: `/restapi/{version}/accounts/{accountId}...`.
pub fn account_in_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(API_PREFIX)?;
    let mut parts = rest.split('/');
    let _version = parts.next()?;
    if parts.next()? != "accounts" {
        return None;
    }
    parts.next().filter(|id| !id.is_empty())
}

/// True when the path has a `.` or `..` segment, literally or percent-encoded:
/// such a path could reach another account than the one it names.
pub fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let decoded: String = percent_encoding::percent_decode_str(seg)
            .decode_utf8_lossy()
            .into_owned();
        decoded == "." || decoded == ".." || decoded.contains(['/', '\\'])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cb = "/auth/docusign/callback";
        assert_eq!(route("/healthz", cb), Route::Health);
        assert_eq!(route("/auth/login", cb), Route::Login);
        assert_eq!(route(cb, cb), Route::Callback);
        assert_eq!(route("/restapi/v2.1/accounts/x", cb), Route::Api);
        assert_eq!(route("/restapi", cb), Route::NotFound);
        assert_eq!(route("/", cb), Route::NotFound);
        assert_eq!(route("/readyz", cb), Route::Ready);
        assert_eq!(route("/auth/token", cb), Route::Token);
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

    #[test]
    fn finds_the_account() {
        assert_eq!(account_in_path("/restapi/v2.1/accounts/abc"), Some("abc"));
        assert_eq!(
            account_in_path("/restapi/v2/accounts/abc/envelopes"),
            Some("abc")
        );
        assert_eq!(account_in_path("/restapi/v2.1/accounts/"), None);
        assert_eq!(account_in_path("/restapi/v2.1/accounts"), None);
        assert_eq!(account_in_path("/restapi/v2.1/billing_plans"), None);
    }

    #[test]
    fn dot_segments() {
        assert!(has_dot_segment("/restapi/v2.1/accounts/a/../b"));
        assert!(has_dot_segment("/restapi/v2.1/accounts/a/%2e%2E/b"));
        assert!(has_dot_segment("/restapi/v2.1/accounts/a%2F..%2Fb"));
        assert!(has_dot_segment("/restapi/./x"));
        assert!(!has_dot_segment("/restapi/v2.1/accounts/a/envelopes"));
    }
}
