//! Small response builders shared by the fake's servers.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderValue, StatusCode};
use serde_json::Value;

pub(crate) const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON answer with `Content-Type: application/json; charset=utf-8`.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// Marks an answer as not cacheable (token and userinfo answers).
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An HTML error page such as DocuSign shows instead of redirecting. The
/// message is fixed text, but it is escaped anyway.
pub(crate) fn html_error(status: StatusCode, message: &str) -> Response {
    let message = escape_html(message);
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>Error</title></head>\
         <body><h1>Error</h1><p>{message}</p></body></html>\n"
    );
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    no_store(response)
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, message: &'static str) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn escape_html(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

/// Form or query parameters, first occurrence of each name wins; also the
/// names in order. Invalid UTF-8 is decoded lossily.
pub(crate) fn parse_form(input: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut names = Vec::new();
    for (k, v) in form_urlencoded::parse(input) {
        names.push(k.to_string());
        if !params.iter().any(|(name, _)| *name == k) {
            params.push((k.into_owned(), v.into_owned()));
        }
    }
    (params, names)
}

/// Looks up a parameter parsed by [`parse_form`].
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The credential of an `Authorization: Bearer <token>` header (scheme
/// case-insensitive), if there is a non-empty one.
pub(crate) fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_first_wins_and_survives_garbage() {
        let (p, names) = parse_form(b"a=1&b=%FF%FE&a=2&=&c");
        assert_eq!(param(&p, "a"), Some("1"));
        assert!(param(&p, "b").is_some());
        assert_eq!(param(&p, "c"), Some(""));
        assert_eq!(names, vec!["a", "b", "a", "", "c"]);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = http::HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer "),
        );
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Basic abc"),
        );
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert_eq!(bearer_token(&h), None);
    }
}
