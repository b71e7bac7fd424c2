//! The gateway's cookies: the session cookie and the short-lived login cookie
//! that binds a pending login to its browser. Both are encrypted and
//! authenticated (AES-256-GCM through `cookie`'s private jar); a forged,
//! tampered or oversized cookie reads as absent.
//!
//! With `secure_cookie` on, both names carry the `__Host-` prefix: a browser
//! then only accepts them with `Secure`, `Path=/` and no `Domain`, so a
//! sibling subdomain cannot plant or shadow them.

use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, CookieJar, Key, SameSite};
use pingora::http::ResponseHeader;

use crate::config::SessionConfig;
use crate::crypto::keys;
use crate::util::time::now_millis;
use crate::util::ttl_map::TtlMap;

/// Sealed values longer than this are not even decrypted.
const MAX_COOKIE_VALUE: usize = 3072;
/// Session cookies that opened, kept with the session id they hold so that a
/// browser's next request costs a map lookup instead of parsing and
/// decrypting: at most this many, each for [`OPENED_TTL`]. Only values that
/// decrypted under the key enter (the session itself is still looked up
/// and checked in the store on every request).
pub const OPENED_SESSION_COOKIES: usize = 10_000;
const OPENED_TTL: Duration = Duration::from_secs(3600);

/// Prefix of the cookie names when `secure_cookie` is on.
pub const HOST_PREFIX: &str = "__Host-";

pub struct CookieCodec {
    key: Key,
    session_name: String,
    login_name: String,
    secure: bool,
    /// Sealed session cookie value -> the session id it holds (shared with
    /// each request's answer: a hit copies no string).
    opened: TtlMap<String, Arc<str>>,
}

impl CookieCodec {
    pub fn new(cfg: &SessionConfig) -> Self {
        let bytes: [u8; 64] = keys::derive(cfg.secret.expose().as_bytes(), keys::COOKIE_KEY);
        let name = |n: &str| match cfg.secure_cookie {
            true => format!("{HOST_PREFIX}{n}"),
            false => n.to_string(),
        };
        CookieCodec {
            key: Key::from(&bytes),
            session_name: name(&cfg.cookie_name),
            login_name: name(&cfg.login_cookie_name),
            secure: cfg.secure_cookie,
            opened: TtlMap::new(OPENED_SESSION_COOKIES),
        }
    }

    /// The session cookie's name as the browser sees it.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// The session id carried by a `Cookie` header, if one is there and valid.
    pub fn session_from(&self, cookie_header: Option<impl AsRef<str>>) -> Option<Arc<str>> {
        let header = cookie_header.as_ref().map(AsRef::as_ref)?;
        let now_ms = now_millis();
        for value in raw_values(header, &self.session_name) {
            if let Some(id) = self.opened.get(value, now_ms) {
                return Some(id);
            }
        }
        let (sealed, id) = self.open_sealed(Some(header), &self.session_name)?;
        let id: Arc<str> = Arc::from(id);
        let until = now_ms.saturating_add(OPENED_TTL.as_millis() as u64);
        self.opened.insert(sealed, id.clone(), until, now_ms);
        Some(id)
    }

    /// The login binding carried by a `Cookie` header, if valid.
    pub fn login_from(&self, cookie_header: Option<impl AsRef<str>>) -> Option<String> {
        self.open(cookie_header.as_ref().map(AsRef::as_ref), &self.login_name)
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

    /// True when a `Set-Cookie` value from a REST host would set (or clear)
    /// one of the gateway's own cookies: such a header is dropped before the
    /// response reaches the browser. Names are compared without an
    /// `__Host-`/`__Secure-` prefix and without case, so no spelling of the
    /// gateway's names gets through.
    pub fn is_own_set_cookie(&self, set_cookie: &[u8]) -> bool {
        let text = String::from_utf8_lossy(set_cookie);
        let name = text.split([';', '=']).next().unwrap_or("").trim();
        let bare = |n: &str| {
            let lower = n.to_ascii_lowercase();
            for prefix in ["__host-", "__secure-"] {
                if let Some(rest) = lower.strip_prefix(prefix) {
                    return rest.to_string();
                }
            }
            lower
        };
        let name = bare(name);
        name == bare(&self.session_name) || name == bare(&self.login_name)
    }

    /// Drops every `Set-Cookie` of a REST host's response that
    /// [`is_own_set_cookie`](Self::is_own_set_cookie); the others stay, in order.
    pub fn strip_own_set_cookies(&self, response: &mut ResponseHeader) -> pingora::Result<()> {
        let all = response.headers.get_all(http::header::SET_COOKIE);
        if !all.iter().any(|v| self.is_own_set_cookie(v.as_bytes())) {
            return Ok(());
        }
        let kept: Vec<http::HeaderValue> = all
            .iter()
            .filter(|v| !self.is_own_set_cookie(v.as_bytes()))
            .cloned()
            .collect();
        response.remove_header(&http::header::SET_COOKIE);
        for v in kept {
            response.append_header(http::header::SET_COOKIE, v)?;
        }
        Ok(())
    }

    fn open(&self, header: Option<&str>, name: &str) -> Option<String> {
        self.open_sealed(header, name).map(|(_, plain)| plain)
    }

    /// The first cookie `name` that decrypts: its sealed value and its
    /// plaintext.
    fn open_sealed(&self, header: Option<&str>, name: &str) -> Option<(String, String)> {
        let header = header?;
        for parsed in Cookie::split_parse(header.to_string()).flatten() {
            if parsed.name() != name || parsed.value().len() > MAX_COOKIE_VALUE {
                continue;
            }
            let sealed = parsed.value().to_string();
            let mut jar = CookieJar::new();
            jar.add_original(parsed.into_owned());
            if let Some(c) = jar.private(&self.key).get(name) {
                return Some((sealed, c.value().to_string()));
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

/// The values of cookie `name` in a `Cookie` header, as written (for the
/// cache of opened cookies only: a value found there decrypted before).
fn raw_values<'h>(header: &'h str, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(n, _)| *n == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::secret::Secret;

    fn codec(secret: &str) -> CookieCodec {
        codec_with(secret, false)
    }

    fn codec_with(secret: &str, secure: bool) -> CookieCodec {
        CookieCodec::new(&SessionConfig {
            cookie_name: "dsgw_session".into(),
            login_cookie_name: "dsgw_session_login".into(),
            secure_cookie: secure,
            secret: Secret::new(secret),
            ttl: Duration::from_secs(60),
            refresh_before_expiry: Duration::from_secs(5),
            max_sessions: 10,
            login_timeout: Duration::from_secs(60),
            max_pending_logins: 10,
            api_token_ttl: Duration::from_secs(60),
            min_refresh_interval: Duration::ZERO,
            max_sessions_per_user: 10,
            max_tokens_per_session: 10,
        })
    }

    fn header_from(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_string()
    }

    #[test]
    fn round_trip_with_attributes() {
        let c = codec_with("0123456789abcdef0123456789abcdef", true);
        let set = c.set_session("sid-123", Duration::from_secs(60));
        assert!(set.starts_with("__Host-dsgw_session="), "{set}");
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
    fn opened_session_cookies_are_cached_and_only_those() {
        let c = codec("0123456789abcdef0123456789abcdef");
        let good = header_from(&c.set_session("sid-7", Duration::from_secs(60)));
        assert_eq!(c.session_from(Some(&good)).as_deref(), Some("sid-7"));
        assert_eq!(c.opened.len(), 1);
        let header = format!("a=1; {good}; b=2");
        assert_eq!(c.session_from(Some(&header)).as_deref(), Some("sid-7"));
        assert_eq!(c.opened.len(), 1, "the second answer came from the cache");
        // A forged value next to nothing valid opens nothing and is not kept.
        assert_eq!(c.session_from(Some("dsgw_session=Zm9yZ2Vk")), None);
        assert_eq!(c.opened.len(), 1);
        // The same value under another name is not the session cookie.
        let renamed = good.replacen("dsgw_session=", "other=", 1);
        assert_eq!(c.session_from(Some(&renamed)), None);
        // A forged cookie first, the real one second: the real one counts.
        let both = format!("dsgw_session=Zm9yZ2Vk; {good}");
        assert_eq!(c.session_from(Some(&both)).as_deref(), Some("sid-7"));
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
        assert_eq!(c.session_from(None::<&str>), None);
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

    /// Issue 13, item 9: with `secure_cookie` the names carry `__Host-`
    /// (which browsers only accept with Secure, Path=/ and no Domain).
    #[test]
    fn secure_cookies_get_the_host_prefix() {
        let secret = "0123456789abcdef0123456789abcdef";
        let secure = codec_with(secret, true);
        let plain = codec_with(secret, false);
        let set = secure.set_login("b", Duration::from_secs(60));
        assert!(set.starts_with("__Host-dsgw_session_login="), "{set}");
        assert!(set.contains("Secure") && set.contains("Path=/"));
        assert!(!set.to_ascii_lowercase().contains("domain="));
        assert!(secure.clear_session().starts_with("__Host-dsgw_session=;"));
        assert_eq!(secure.session_name(), "__Host-dsgw_session");
        let set = plain.set_session("sid", Duration::from_secs(60));
        assert!(set.starts_with("dsgw_session="), "{set}");
        assert!(!set.contains("Secure"));
        // A cookie without the prefix does not open as the prefixed one.
        let unprefixed = header_from(&plain.set_session("sid", Duration::from_secs(60)));
        assert_eq!(secure.session_from(Some(&unprefixed)), None);
        // Both spellings are stripped before forwarding.
        assert_eq!(
            secure
                .strip_own("__Host-dsgw_session=x; a=1; __Host-dsgw_session_login=y")
                .as_deref(),
            Some("a=1")
        );
    }

    /// Issue 13, item 11: all `Cookie` headers are read, joined.
    #[test]
    fn reads_a_cookie_from_any_joined_header() {
        let c = codec("0123456789abcdef0123456789abcdef");
        let sealed = header_from(&c.set_session("sid-9", Duration::from_secs(60)));
        let joined = format!("a=1; b=2; {sealed}");
        assert_eq!(c.session_from(Some(joined)).as_deref(), Some("sid-9"));
    }

    /// Issue 13, item 11: a REST host cannot set the gateway's cookies.
    #[test]
    fn recognises_set_cookie_for_own_names() {
        for secure in [false, true] {
            let c = codec_with("0123456789abcdef0123456789abcdef", secure);
            for own in [
                "dsgw_session=planted; Path=/",
                "dsgw_session_login=x",
                "DSGW_SESSION=x; Path=/",
                " dsgw_session =x",
                "__Host-dsgw_session=x; Secure; Path=/",
                "__Secure-dsgw_session_login=x; Secure",
                "__host-Dsgw_Session=x",
                "dsgw_session; Path=/",
            ] {
                assert!(c.is_own_set_cookie(own.as_bytes()), "{secure} {own}");
            }
            for other in [
                "app=1; Path=/",
                "dsgw_session2=x",
                "x=dsgw_session",
                "dsgw=1",
                "",
            ] {
                assert!(!c.is_own_set_cookie(other.as_bytes()), "{secure} {other}");
            }
        }
    }

    #[test]
    fn strips_own_set_cookies_from_a_response() {
        let c = codec("0123456789abcdef0123456789abcdef");
        let mut resp = ResponseHeader::build(200, None).unwrap();
        for v in [
            "app=1",
            "dsgw_session=planted; Path=/",
            "b=2",
            "dsgw_session_login=x",
        ] {
            resp.append_header("Set-Cookie", v).unwrap();
        }
        resp.append_header("X-Other", "kept").unwrap();
        c.strip_own_set_cookies(&mut resp).unwrap();
        let left: Vec<&str> = resp
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(left, ["app=1", "b=2"]);
        assert_eq!(resp.headers["x-other"], "kept");
    }
}
