//! The paths the gateway answers itself (the ones it forwards are the
//! APIs' prefixes, `config::Api::of_path`).

pub const LOGIN_PATH: &str = "/auth/login";
pub const SESSION_PATH: &str = "/auth/session";
pub const LOGOUT_PATH: &str = "/auth/logout";
/// Methods the gateway forwards to DocuSign (the proxy's router refuses
/// others; a token's scope may name only these).
pub const FORWARDED_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Lists the session's gateway tokens; `TOKENS_PATH/{id}` revokes one.
pub const TOKENS_PATH: &str = "/auth/tokens";
pub const TOKEN_PATH: &str = "/auth/token";
/// Where a service's DocuSign user is sent to consent to impersonation.
pub const CONSENT_PATH: &str = "/auth/consent";
pub const HEALTH_PATH: &str = "/healthz";
pub const READY_PATH: &str = "/readyz";
/// DocuSign Connect posts to `WEBHOOKS_PREFIX<name>` (`[[webhook]]`).
pub const WEBHOOKS_PREFIX: &str = "/webhooks/";

/// Paths the gateway answers itself (the callback path may not shadow them).
pub fn is_reserved_path(path: &str) -> bool {
    [
        LOGIN_PATH,
        SESSION_PATH,
        LOGOUT_PATH,
        TOKEN_PATH,
        CONSENT_PATH,
        HEALTH_PATH,
        READY_PATH,
    ]
    .contains(&path)
}
