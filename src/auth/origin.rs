//! Cross-site request refusal for the session cookie: a cookie-authenticated
//! `POST`, `PUT`, `PATCH` or `DELETE` must come from `public_url`'s origin or
//! one of `server.allowed_origins`. Without an `Origin` header, a
//! `Sec-Fetch-Site: cross-site` is refused too; requests with neither (curl,
//! SDKs) and requests authenticated by a gateway token are unaffected.

use pingora::http::RequestHeader;
use url::{Origin, Url};

pub struct OriginPolicy {
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    pub fn new(public_url: &Url, extra: &[Origin]) -> Self {
        let mut allowed = vec![public_url.origin()];
        allowed.extend(extra.iter().cloned());
        OriginPolicy { allowed }
    }

    /// True when `req` is an unsafe request sent from another site.
    pub fn is_cross_site(&self, req: &RequestHeader) -> bool {
        use http::Method;
        if !matches!(
            req.method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            return false;
        }
        let header = |name: http::header::HeaderName| {
            req.headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
        };
        match header(http::header::ORIGIN) {
            Some(origin) => match Url::parse(origin) {
                Ok(url) => !self.allowed.contains(&url.origin()),
                // `null` and anything unreadable.
                Err(_) => true,
            },
            None => header(http::header::HeaderName::from_static("sec-fetch-site"))
                .is_some_and(|v| v.eq_ignore_ascii_case("cross-site")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&'static str, &str)]) -> RequestHeader {
        let mut r =
            RequestHeader::build(method, b"/restapi/v2.1/accounts/a/envelopes", None).unwrap();
        for (n, v) in headers {
            r.insert_header(*n, *v).unwrap();
        }
        r
    }

    #[test]
    fn only_unsafe_requests_from_other_sites_are_cross_site() {
        let public = Url::parse("https://gw.example").unwrap();
        let extra = [Url::parse("https://app.example:8443").unwrap().origin()];
        let p = OriginPolicy::new(&public, &extra);
        let cross = |m: &str, h: &[(&'static str, &str)]| p.is_cross_site(&req(m, h));
        assert!(cross("POST", &[("Origin", "https://evil.example")]));
        assert!(cross("DELETE", &[("Origin", "null")]));
        assert!(
            cross("PUT", &[("Origin", "http://gw.example")]),
            "scheme counts"
        );
        assert!(cross("PATCH", &[("Sec-Fetch-Site", "cross-site")]));
        assert!(!cross("POST", &[("Origin", "https://gw.example")]));
        assert!(!cross("POST", &[("Origin", "https://GW.example:443")]));
        assert!(!cross("POST", &[("Origin", "https://app.example:8443")]));
        assert!(!cross("POST", &[("Sec-Fetch-Site", "same-origin")]));
        assert!(!cross("POST", &[]), "curl and SDKs send neither");
        assert!(!cross("GET", &[("Origin", "https://evil.example")]));
    }
}
