//! Responses the gateway writes itself (auth endpoints, errors), as plain
//! values that are built, tested and then written to the client.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::{json, Value};

pub const JSON: &str = "application/json; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// The policy of the gateway's plain HTML pages ([`Reply::page`]).
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &Value) -> Reply {
        Reply::new(status, JSON, value.to_string())
    }

    /// `{"error": code, "message": message}`.
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(status, &json!({ "error": code, "message": message }))
    }

    /// A small HTML page; `title` and `text` are escaped here.
    pub fn page(status: u16, title: &str, text: &str, link: Option<(&str, &str)>) -> Reply {
        let link = link
            .map(|(href, label)| {
                format!(
                    "<p><a href=\"{}\">{}</a></p>",
                    escape_html(href),
                    escape_html(label)
                )
            })
            .unwrap_or_default();
        let body = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}}</style>\
             </head><body><h1>{t}</h1><p>{x}</p>{link}</body></html>\n",
            t = escape_html(title),
            x = escape_html(text),
        );
        Reply::new(status, HTML, body)
    }

    pub fn redirect(location: &str) -> Reply {
        Reply::new(302, "text/plain; charset=utf-8", "").header("Location", location)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    /// For responses that set or clear a cookie, or carry anything private.
    pub fn no_store(self) -> Reply {
        self.header("Cache-Control", "no-store")
    }

    /// An HTML reply gets `X-Frame-Options: DENY` and, unless it brings its
    /// own (the session page's, with a nonce), a Content-Security-Policy
    /// that allows only the page's inline style: no script, no framing.
    pub fn with_html_guards(mut self) -> Reply {
        let has =
            |r: &Reply, name: &str| r.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        let is_html = self.headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("Content-Type")
                && v.trim_start().to_ascii_lowercase().starts_with("text/html")
        });
        if !is_html {
            return self;
        }
        if !has(&self, "X-Frame-Options") {
            self = self.header("X-Frame-Options", "DENY");
        }
        if !has(&self, "Content-Security-Policy") {
            self = self.header("Content-Security-Policy", PAGE_CSP);
        }
        self
    }

    /// Writes the reply to the client.
    pub async fn send(self, session: &mut Session) -> pingora::Result<()> {
        let reply = self.with_html_guards();
        let mut head = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
        for (name, value) in reply.headers {
            head.append_header(name, value)?;
        }
        head.insert_header("Content-Length", reply.body.len().to_string())?;
        // No browser reads a JSON error or a token answer as HTML.
        head.insert_header("X-Content-Type-Options", "nosniff")?;
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(head), head_only || reply.body.is_empty())
            .await?;
        if !head_only && !reply.body.is_empty() {
            session.write_response_body(Some(reply.body), true).await?;
        }
        Ok(())
    }
}

/// Escapes text for HTML text and quoted attributes.
pub fn escape_html(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape() {
        let r = Reply::page(
            400,
            "<x>",
            "a & \"b\"",
            Some(("/auth/login?a=1&b=2", "Retry")),
        );
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert!(body.contains("&lt;x&gt;"));
        assert!(body.contains("a &amp; &quot;b&quot;"));
        assert!(body.contains("href=\"/auth/login?a=1&amp;b=2\""));
    }

    #[test]
    fn error_json() {
        let r = Reply::error(403, "account_not_permitted", "no");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "account_not_permitted");
        assert_eq!(r.headers[0].1, JSON);
    }

    /// Issue 13, item 11: every HTML reply gets X-Frame-Options and a CSP;
    /// a page that brings its own CSP keeps it.
    #[test]
    fn html_replies_get_frame_and_script_guards() {
        let header = |r: &Reply, name: &str| -> Vec<String> {
            r.headers
                .iter()
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        let page = Reply::page(200, "t", "x", None).with_html_guards();
        assert_eq!(header(&page, "X-Frame-Options"), ["DENY"]);
        assert_eq!(header(&page, "Content-Security-Policy"), [PAGE_CSP]);
        let own = Reply::new(200, HTML, "<p>")
            .header("Content-Security-Policy", "script-src 'nonce-abc'")
            .with_html_guards();
        assert_eq!(
            header(&own, "Content-Security-Policy"),
            ["script-src 'nonce-abc'"]
        );
        assert_eq!(header(&own, "X-Frame-Options"), ["DENY"]);
        let json = Reply::error(400, "x", "y").with_html_guards();
        assert!(header(&json, "X-Frame-Options").is_empty());
        assert!(header(&json, "Content-Security-Policy").is_empty());
    }
}
