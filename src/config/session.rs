//! `[session]`: cookies, the session secret, lifetimes and limits.

use std::time::Duration;

use super::error::ConfigError;
use super::range;
use super::raw::RawSession;
use super::MAX_LOGIN_TIMEOUT_SECS;
use crate::util::secret::Secret;

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
    /// A DocuSign 401 on a token younger than this causes no refresh.
    pub min_refresh_interval: Duration,
    /// A user's new session evicts that user's oldest beyond this.
    pub max_sessions_per_user: usize,
    /// Live gateway tokens one session may hold; past it a mint is 409.
    pub max_tokens_per_session: usize,
}

/// Largest `session.max_tokens_per_session`.
pub const MAX_TOKENS_PER_SESSION: u64 = 10_000;

/// Shortest accepted `session.secret`, in bytes.
const MIN_SECRET_LEN: usize = 32;

pub(super) fn validate(raw: RawSession) -> Result<SessionConfig, ConfigError> {
    if raw.cookie_name.is_empty()
        || !raw
            .cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::new(
            "session.cookie_name",
            "expected a cookie name made of letters, digits, '_' and '-'",
        ));
    }
    if raw.secret.len() < MIN_SECRET_LEN {
        let problem = if raw.secret.is_empty() {
            "missing"
        } else {
            "too short"
        };
        return Err(ConfigError::new(
            "session.secret",
            format!("{problem}: expected at least {MIN_SECRET_LEN} bytes of random text (e.g. `openssl rand -base64 48`), preferably from DSGW_SESSION_SECRET"),
        ));
    }
    let any = 1..=u64::MAX;
    Ok(SessionConfig {
        login_cookie_name: format!("{}_login", raw.cookie_name),
        cookie_name: raw.cookie_name,
        secure_cookie: raw.secure_cookie,
        secret: Secret::new(raw.secret),
        ttl: range::secs("session.ttl_secs", raw.ttl_secs, any.clone())?,
        refresh_before_expiry: Duration::from_secs(raw.refresh_before_expiry_secs),
        max_sessions: range::count("session.max_sessions", raw.max_sessions, any.clone())?,
        login_timeout: range::secs(
            "session.login_timeout_secs",
            raw.login_timeout_secs,
            1..=MAX_LOGIN_TIMEOUT_SECS,
        )?,
        max_pending_logins: range::count(
            "session.max_pending_logins",
            raw.max_pending_logins,
            any.clone(),
        )?,
        api_token_ttl: range::secs(
            "session.api_token_ttl_secs",
            raw.api_token_ttl_secs,
            any.clone(),
        )?,
        min_refresh_interval: range::secs(
            "session.min_refresh_interval_secs",
            raw.min_refresh_interval_secs,
            0..=3600,
        )?,
        max_sessions_per_user: range::count(
            "session.max_sessions_per_user",
            raw.max_sessions_per_user,
            any,
        )?,
        max_tokens_per_session: range::count(
            "session.max_tokens_per_session",
            raw.max_tokens_per_session,
            1..=MAX_TOKENS_PER_SESSION,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSession {
        RawSession {
            secret: "0123456789abcdef0123456789abcdef".into(),
            ..RawSession::default()
        }
    }

    #[test]
    fn defaults_are_valid() {
        let c = validate(raw()).unwrap();
        assert_eq!(c.login_cookie_name, "dsgw_session_login");
        assert_eq!(c.login_timeout, Duration::from_secs(MAX_LOGIN_TIMEOUT_SECS));
    }

    #[test]
    fn a_short_secret_is_named_not_shown() {
        let short = RawSession {
            secret: "hunter2".into(),
            ..raw()
        };
        let e = validate(short).unwrap_err();
        assert_eq!(e.key, "session.secret");
        assert!(e.message.starts_with("too short"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn every_limit_is_range_checked() {
        type Spoil = fn(&mut RawSession);
        let cases: [(&str, Spoil); 7] = [
            ("session.ttl_secs", |r| r.ttl_secs = 0),
            ("session.max_sessions", |r| r.max_sessions = 0),
            ("session.login_timeout_secs", |r| r.login_timeout_secs = 601),
            ("session.max_pending_logins", |r| r.max_pending_logins = 0),
            ("session.api_token_ttl_secs", |r| r.api_token_ttl_secs = 0),
            ("session.min_refresh_interval_secs", |r| {
                r.min_refresh_interval_secs = 3601
            }),
            ("session.max_sessions_per_user", |r| {
                r.max_sessions_per_user = 0
            }),
        ];
        for (key, spoil) in cases {
            let mut r = raw();
            spoil(&mut r);
            assert_eq!(validate(r).unwrap_err().key, key);
        }
    }
}
