//! Reading what a request says about itself: query parameters, cookies, the
//! bearer token, whether a browser sent it.

use pingora::http::RequestHeader;

/// The value of one query parameter (decoded), if present.
pub fn query_param(req: &RequestHeader, name: &str) -> Option<String> {
    let query = req.uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn cookie_header(req: &RequestHeader) -> Option<&str> {
    req.headers.get(http::header::COOKIE)?.to_str().ok()
}

/// True when the client says it wants an HTML page (a browser).
pub fn wants_html(req: &RequestHeader) -> bool {
    req.headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"))
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
