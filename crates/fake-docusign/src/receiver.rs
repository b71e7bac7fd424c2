//! Not DocuSign: the app behind a gateway's webhook, for the demo and the
//! benches. It answers 200 to every POST, on any path, and hands each
//! request with the moment its body had arrived to a callback; [`summary`]
//! is the one line the demo prints of each.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use tokio::task::JoinHandle;

/// Largest body taken (a Connect message may carry documents); past it 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Longest [`summary`], in characters.
pub const MAX_SUMMARY_CHARS: usize = 190;

/// One request the receiver took.
pub struct Arrival {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the whole body had arrived.
    pub at: Instant,
}

type OnArrival = Arc<dyn Fn(Arrival) + Send + Sync>;

/// A running receiver; it stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn arrive(
    State(on_arrival): State<OnArrival>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if method != Method::POST {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    let at = Instant::now();
    on_arrival(Arrival { headers, body, at });
    StatusCode::OK
}

impl Receiver {
    /// Binds `addr` (port 0: any) and serves on the current tokio runtime;
    /// `on_arrival` runs for every POST before it is answered.
    pub async fn start(
        addr: SocketAddr,
        on_arrival: impl Fn(Arrival) + Send + Sync + 'static,
    ) -> io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind the webhook receiver on {addr}: {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        let router = axum::Router::new()
            .fallback(arrive)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::new(on_arrival) as OnArrival);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "webhook receiver stopped");
            }
        });
        Ok(Receiver { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/events`: a `forward_to` for it (any path would do).
    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }
}

/// One line about a delivery from a gateway: its `X-Dsgw-Webhook`,
/// `X-Dsgw-Event-Id` and `X-Dsgw-Delivery-Attempt`, and of a Connect JSON
/// body the event, envelope id and status. At most [`MAX_SUMMARY_CHARS`]
/// characters, no control characters.
pub fn summary(headers: &HeaderMap, body: &[u8]) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let mut line = format!(
        "webhook={} id={} attempt={}",
        clip(header("x-dsgw-webhook"), 32),
        clip(header("x-dsgw-event-id"), 48),
        clip(header("x-dsgw-delivery-attempt"), 8),
    );
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let field = |pointers: &[&str]| {
                let found = pointers.iter().find_map(|p| v.pointer(p)?.as_str());
                clip(found.unwrap_or("-"), 40)
            };
            line.push_str(&format!(
                " event={} envelopeId={} status={}",
                field(&["/event"]),
                field(&["/data/envelopeId", "/envelopeId"]),
                field(&["/data/envelopeSummary/status", "/status"]),
            ));
        }
        Err(_) => line.push_str(" (not JSON)"),
    }
    line.push_str(&format!(" ({} bytes)", body.len()));
    clip(&line, MAX_SUMMARY_CHARS)
}

/// At most `max` characters of `text`, control characters as `?`, and `…`
/// in place of the last one when cut.
fn clip(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_connect_message_is_one_short_line() {
        let h = headers(&[
            ("x-dsgw-webhook", "connect"),
            ("x-dsgw-event-id", "ev-1"),
            ("x-dsgw-delivery-attempt", "2"),
        ]);
        let body = br#"{"event":"envelope-sent","data":{"envelopeId":"e1","envelopeSummary":{"status":"sent"}}}"#;
        assert_eq!(
            summary(&h, body),
            format!(
                "webhook=connect id=ev-1 attempt=2 event=envelope-sent envelopeId=e1 status=sent ({} bytes)",
                body.len()
            )
        );
        assert_eq!(
            summary(&HeaderMap::new(), b"<xml/>"),
            "webhook=- id=- attempt=- (not JSON) (6 bytes)"
        );
    }

    #[test]
    fn long_or_odd_values_are_clipped() {
        let long = "x".repeat(500);
        let h = headers(&[("x-dsgw-event-id", &long)]);
        let body = format!(r#"{{"event":"a\nb{long}","envelopeId":"{long}","status":"{long}"}}"#);
        let line = summary(&h, body.as_bytes());
        assert!(line.chars().count() <= MAX_SUMMARY_CHARS, "{line}");
        assert!(!line.chars().any(char::is_control), "{line}");
        assert!(line.contains("event=a?bx"), "{line}");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
    }

    #[tokio::test]
    async fn posts_are_handed_over_and_answered_200() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let receiver = Receiver::start(SocketAddr::from(([127, 0, 0, 1], 0)), move |a| {
            let _ = tx.send((a.headers, a.body));
        })
        .await
        .unwrap();
        let client = reqwest::Client::new();
        let r = client
            .post(receiver.url())
            .header("x-dsgw-event-id", "ev-9")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (h, body) = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h["x-dsgw-event-id"], "ev-9");
        assert_eq!(&body[..], b"{}");
        let r = client.get(receiver.url()).send().await.unwrap();
        assert_eq!(r.status(), 405);
    }
}
