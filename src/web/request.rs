//! Reading what a request says about itself: query parameters, cookies, the
//! bearer token, whether a browser sent it.

use std::borrow::Cow;

use pingora::http::RequestHeader;

/// The value of one query parameter (decoded), if present.
pub fn query_param(req: &RequestHeader, name: &str) -> Option<String> {
    let query = req.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Every `Cookie` header of the request, joined with `"; "` (HTTP/2 clients
/// send one header per cookie; HTTP/1.1 clients may send several too).
/// Values that are not visible ASCII are skipped. `None` without any.
pub fn cookie_header(req: &RequestHeader) -> Option<Cow<'_, str>> {
    join_cookie_headers(req.headers.get_all(http::header::COOKIE).iter())
}

fn join_cookie_headers<'a>(
    values: impl Iterator<Item = &'a http::HeaderValue>,
) -> Option<Cow<'a, str>> {
    let mut values = values.filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    match values.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut joined = format!("{first}; {second}");
            for v in values {
                joined.push_str("; ");
                joined.push_str(v);
            }
            Some(Cow::Owned(joined))
        }
    }
}

/// True when the client says it wants an HTML page (a browser).
pub fn wants_html(req: &RequestHeader) -> bool {
    req.headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
}

/// True when the request asks to switch protocols: an `Upgrade` header
/// (`websocket`, `h2c`, anything), or `upgrade` among the `Connection`
/// header's options (any case, any of several headers).
pub fn asks_for_upgrade(req: &RequestHeader) -> bool {
    if req.headers.contains_key(http::header::UPGRADE) {
        return true;
    }
    req.headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
}

/// The token of `Authorization: Bearer <token>`, if one is there.
pub fn bearer_token(req: &RequestHeader) -> Option<&str> {
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookies: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for c in cookies {
            req.append_header("Cookie", *c).unwrap();
        }
        req
    }

    #[test]
    fn an_upgrade_is_seen_in_any_spelling() {
        let with = |headers: &[(&str, &str)]| {
            let mut req = RequestHeader::build("GET", b"/restapi/v2.1/x", None).unwrap();
            for (k, v) in headers {
                req.append_header(k.to_string(), *v).unwrap();
            }
            asks_for_upgrade(&req)
        };
        assert!(with(&[("Upgrade", "websocket")]));
        assert!(with(&[
            ("upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA")
        ]));
        assert!(with(&[("Connection", "Upgrade")]));
        assert!(with(&[("Connection", "keep-alive, UPGRADE ")]));
        assert!(with(&[("Connection", "close"), ("Connection", "upgrade")]));
        assert!(!with(&[]));
        assert!(!with(&[("Connection", "keep-alive")]));
        assert!(!with(&[("Connection", "upgraded-not, x-upgrade")]));
    }

    /// Issue 13, item 11: every `Cookie` header is read, not only the first.
    #[test]
    fn joins_every_cookie_header() {
        assert_eq!(cookie_header(&request(&[])), None);
        assert_eq!(
            cookie_header(&request(&["a=1; b=2"])).as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(
            cookie_header(&request(&["a=1", "dsgw_session=x", "c=3"])).as_deref(),
            Some("a=1; dsgw_session=x; c=3")
        );
        let mut req = request(&["a=1"]);
        req.append_header("Cookie", http::HeaderValue::from_bytes(b"\xff=1").unwrap())
            .unwrap();
        req.append_header("Cookie", "s=2").unwrap();
        assert_eq!(cookie_header(&req).as_deref(), Some("a=1; s=2"));
    }
}
