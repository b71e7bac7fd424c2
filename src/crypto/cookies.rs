//! The gateway's cookies: the session cookie and the short-lived login cookie
//! that binds a pending login to its browser. Both are encrypted and
//! authenticated (AES-256-GCM through `cookie`'s private jar); a forged,
//! tampered or oversized cookie reads as absent.

use std::time::Duration;

use cookie::{Cookie, CookieJar, Key, SameSite};

use crate::config::SessionConfig;
use crate::crypto::keys;

/// Sealed values longer than this are not even decrypted.
const MAX_COOKIE_VALUE: usize = 1024;

pub struct CookieCodec {
    key: Key,
    session_name: String,
    login_name: String,
    secure: bool,
}

impl CookieCodec {
    pub fn new(cfg: &SessionConfig) -> Self {
        let bytes: [u8; 64] = keys::derive(cfg.secret.expose().as_bytes(), keys::COOKIE_KEY);
        CookieCodec {
            key: Key::from(&bytes),
            session_name: cfg.cookie_name.clone(),
            login_name: cfg.login_cookie_name.clone(),
            secure: cfg.secure_cookie,
        }
    }

    /// The session id carried by a `Cookie` header, if one is there and valid.
    pub fn session_from(&self, cookie_header: Option<&str>) -> Option<String> {
        self.open(cookie_header, &self.session_name)
    }

    /// The login binding carried by a `Cookie` header, if valid.
    pub fn login_from(&self, cookie_header: Option<&str>) -> Option<String> {
        self.open(cookie_header, &self.login_name)
    }

    /// `Set-Cookie` value that stores the session id for `max_age`.
    pub fn set_session(&self, session_id: &str, max_age: Duration) -> String {
        self.seal(&self.session_name, session_id, max_age)
    }

    /// `Set-Cookie` value that binds a login to this browser.
    pub fn set_login(&self, binding: &str, max_age: Duration) -> String {
        self.seal(&self.login_name, binding, max_age)
    }

    pub fn clear_session(&self) -> String {
        self.clear(&self.session_name)
    }

    pub fn clear_login(&self) -> String {
        self.clear(&self.login_name)
    }

    /// The `Cookie` header without the gateway's own cookies (None when
    /// nothing is left), for requests sent to DocuSign.
    pub fn strip_own(&self, cookie_header: &str) -> Option<String> {
        let kept: Vec<String> = cookie_header
            .split(';')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("").trim();
                name != self.session_name && name != self.login_name
            })
            .map(str::to_string)
            .collect();
        (!kept.is_empty()).then(|| kept.join("; "))
    }

    fn open(&self, header: Option<&str>, name: &str) -> Option<String> {
        let header = header?;
        for parsed in Cookie::split_parse(header.to_string()).flatten() {
            if parsed.name() != name || parsed.value().len() > MAX_COOKIE_VALUE {
                continue;
            }
            let mut jar = CookieJar::new();
            jar.add_original(parsed.into_owned());
            if let Some(c) = jar.private(&self.key).get(name) {
                return Some(c.value().to_string());
            }
        }
        None
    }

    fn seal(&self, name: &str, value: &str, max_age: Duration) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new(name.to_string(), value.to_string()));
        let sealed = jar
            .get(name)
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        let max_age =
            cookie::time::Duration::seconds(max_age.as_secs().min(i64::MAX as u64) as i64);
        self.attributes(Cookie::build((name.to_string(), sealed)).max_age(max_age))
    }

    fn clear(&self, name: &str) -> String {
        self.attributes(
            Cookie::build((name.to_string(), String::new())).max_age(cookie::time::Duration::ZERO),
        )
    }

    fn attributes(&self, builder: cookie::CookieBuilder<'static>) -> String {
        builder
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::secret::Secret;

    fn codec(secret: &str) -> CookieCodec {
        CookieCodec::new(&SessionConfig {
            cookie_name: "dsgw_session".into(),
            login_cookie_name: "dsgw_session_login".into(),
            secure_cookie: true,
            secret: Secret::new(secret),
            ttl: Duration::from_secs(60),
            refresh_before_expiry: Duration::from_secs(5),
            max_sessions: 10,
            login_timeout: Duration::from_secs(60),
            max_pending_logins: 10,
            api_token_ttl: Duration::from_secs(60),
            min_refresh_interval: Duration::ZERO,
            max_sessions_per_user: 10,
        })
    }

    fn header_from(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_string()
    }

    #[test]
    fn round_trip_with_attributes() {
        let c = codec("0123456789abcdef0123456789abcdef");
        let set = c.set_session("sid-123", Duration::from_secs(60));
        assert!(set.contains("HttpOnly"));
        assert!(set.contains("SameSite=Lax"));
        assert!(set.contains("Path=/"));
        assert!(set.contains("Secure"));
        assert!(set.contains("Max-Age=60"));
        assert!(!set.contains("sid-123"));
        let header = format!("other=1; {}", header_from(&set));
        assert_eq!(c.session_from(Some(&header)).as_deref(), Some("sid-123"));
        // The login cookie is a different name: the session value does not open as it.
        assert_eq!(c.login_from(Some(&header)), None);
    }

    #[test]
    fn tampered_foreign_and_garbage_cookies_are_absent() {
        let c = codec("0123456789abcdef0123456789abcdef");
        let other = codec("0123456789abcdef0123456789abcdeX");
        let good = header_from(&c.set_session("sid", Duration::from_secs(60)));
        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let foreign = header_from(&other.set_session("sid", Duration::from_secs(60)));
        let huge = format!("dsgw_session={}", "A".repeat(100_000));
        for h in [
            tampered.as_str(),
            foreign.as_str(),
            huge.as_str(),
            "dsgw_session=",
            "dsgw_session=%%%",
            "dsgw_session=\u{1F600}",
            ";;;=;",
            "",
        ] {
            assert_eq!(c.session_from(Some(h)), None, "{h:?}");
        }
        assert_eq!(c.session_from(None), None);
    }

    #[test]
    fn strips_only_own_cookies() {
        let c = codec("0123456789abcdef0123456789abcdef");
        assert_eq!(
            c.strip_own("a=1; dsgw_session=xyz; dsgw_session_login=q; b=2")
                .as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(c.strip_own("dsgw_session=xyz"), None);
        assert!(c.clear_session().contains("Max-Age=0"));
    }
}
