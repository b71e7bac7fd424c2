//! What a connection can make the gateway hold before it is authenticated
//! (issue 28): request heads bounded by `server.max_header_bytes` (431 and
//! closed past it, while the head is still arriving, on every request of a
//! kept-alive connection, and as the HTTP/2 header list size), no `Upgrade`
//! to a forwarded route, and `X-Content-Type-Options: nosniff` on every
//! answer the gateway writes itself. Memory is measured by
//! `cargo bench --bench head_memory`, never asserted here.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `GET /healthz` head of exactly `len` bytes (request line and headers,
/// the blank line included).
fn head_of(len: usize) -> String {
    let start = "GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Pad: ";
    let end = "\r\n\r\n";
    let pad = len - start.len() - end.len();
    let head = format!("{start}{}{end}", "p".repeat(pad));
    assert_eq!(head.len(), len);
    head
}

async fn env(server_extra: &str) -> Env {
    Env::start_with(Options {
        server_extra: server_extra.into(),
        ..Options::default()
    })
    .await
}

/// Everything the gateway sends until it closes `s` (bounded).
async fn rest_until_closed(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection is closed: {buf:?}");
    String::from_utf8_lossy(&buf).into_owned()
}

/// The 431 of the connection layer: the gateway's JSON error, closed.
fn assert_431(text: &str) {
    assert!(
        text.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{text:?}"
    );
    let lower = text.to_ascii_lowercase();
    assert!(lower.contains("connection: close"), "{text}");
    assert!(lower.contains("x-content-type-options: nosniff"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert_eq!(v["error"], "header_too_large");
    assert!(v["message"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_at_the_default_bound_is_served_one_byte_over_is_431() {
    let env = Env::start().await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(head_of(32_768).as_bytes()).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.write_all(head_of(32_769).as_bytes()).await.unwrap();
    assert_431(&rest_until_closed(&mut s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_bound_holds_on_every_request_of_a_connection() {
    let port = free_port();
    let env = env(&format!(
        "max_header_bytes = 4096\nmetrics_listen = \"127.0.0.1:{port}\""
    ))
    .await;
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    for n in 1..=2 {
        s.write_all(head_of(4096).as_bytes()).await.unwrap();
        let status = read_response(&mut s).await;
        assert!(status.starts_with("HTTP/1.1 200"), "request {n}: {status}");
    }
    // The third request of the same kept-alive connection is over the bound.
    s.write_all(head_of(4097).as_bytes()).await.unwrap();
    assert_431(&rest_until_closed(&mut s).await);
    let metrics = scrape(&env.client, port).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dsgw_requests_total{class=\"rejected\",status=\"431\"} 1")),
        "{metrics}"
    );
}

/// A head sent in 1-byte pieces is cut off once it passes the bound: the
/// gateway never waits for (or holds) more of it than the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_arriving_a_byte_at_a_time_is_cut_off_at_the_bound() {
    let env = env("max_header_bytes = 1024\nheader_timeout_secs = 60").await;
    let s = TcpStream::connect(env.gw.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = s.into_split();
    // Never ends: the head would go on for 1 MB.
    let head = head_of(1 << 20).into_bytes();
    let drip = tokio::spawn(async move {
        let mut sent = 0;
        for b in head.iter() {
            if writer.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            sent += 1;
            if sent % 64 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        sent
    });
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "cut off long before the 60 s head timeout");
    assert_431(&String::from_utf8_lossy(&buf));
    let sent = tokio::time::timeout(Duration::from_secs(30), drip)
        .await
        .expect("the writer stops once the connection is gone")
        .unwrap();
    assert!(
        sent < 1 << 20,
        "cut off before the whole head: {sent} bytes sent"
    );
}

/// A request body is no head: a forwarded 200 KB body on a kept-alive
/// connection does not count towards the next request's head, which is
/// bounded afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_not_counted_as_the_next_head() {
    let env = env("max_header_bytes = 4096").await;
    let b = env.logged_in().await;
    let (account, _) = env.accounts()[0].clone();
    let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000));
    let post = format!(
        "POST /restapi/v2.1/accounts/{account}/envelopes HTTP/1.1\r\nHost: gw\r\n\
         Cookie: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        b.cookie_header(),
        body.len()
    );
    s.write_all(post.as_bytes()).await.unwrap();
    let status = read_response(&mut s).await;
    assert!(!status.contains(" 431 "), "{status}");
    assert_eq!(env.fake.rest_requests().len(), 1, "forwarded");
    s.write_all(head_of(4096).as_bytes()).await.unwrap();
    assert!(read_response(&mut s).await.starts_with("HTTP/1.1 200"));
    s.write_all(head_of(4097).as_bytes()).await.unwrap();
    assert_431(&rest_until_closed(&mut s).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_requests_get_400_and_nothing_is_forwarded() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (account, _) = env.accounts()[0].clone();
    let path = format!("/restapi/v2.1/accounts/{account}/envelopes");
    let upgrades = [
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
         HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        "Upgrade: websocket\r\n",
        "Connection: keep-alive, upgrade\r\n",
    ];
    for headers in upgrades {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n{headers}\r\n",
            env.gw.addr,
            b.cookie_header()
        );
        let mut s = TcpStream::connect(env.gw.addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let (status, text) = read_whole_response(&mut s).await;
        assert!(status.starts_with("HTTP/1.1 400"), "{headers}: {text}");
        assert!(
            text.contains("\"error\":\"upgrade_not_supported\""),
            "{text}"
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("x-content-type-options: nosniff"),
            "{text}"
        );
    }
    assert!(env.fake.rest_requests().is_empty(), "nothing forwarded");
    // The same call without an upgrade is forwarded.
    let r = env.get_as(&b, &path).await;
    assert_ne!(r.status(), 400);
    assert_eq!(env.fake.rest_requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_answers_carry_nosniff_docusigns_pass_unchanged() {
    let port = free_port();
    let env = env(&format!("metrics_listen = \"127.0.0.1:{port}\"")).await;
    let nosniff = |r: &reqwest::Response| {
        r.headers()
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let anonymous = [
        "/healthz",
        "/readyz",
        "/auth/session",
        "/auth/login",
        "/nowhere",
        "/restapi/v2.1/accounts/x",
    ];
    for path in anonymous {
        let r = env.client.get(env.url(path)).send().await.unwrap();
        assert_eq!(nosniff(&r).as_deref(), Some("nosniff"), "{path}");
    }
    let r = env
        .client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(nosniff(&r).as_deref(), Some("nosniff"), "metrics");
    let b = env.logged_in().await;
    let r = env.get_as(&b, "/auth/session").await;
    assert_eq!(nosniff(&r).as_deref(), Some("nosniff"));
    let r = env.post_json_as(&b, "/auth/token", "").await;
    assert_eq!(nosniff(&r).as_deref(), Some("nosniff"), "token answer");
    // DocuSign's answers pass through as they are (the fake sends none).
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    let r = env.get_as(&b, &path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(nosniff(&r), None);
}

/// HTTP/2 (TLS, ALPN h2): the header list is bounded by the same key. The
/// client either learns the bound from the server's SETTINGS and refuses to
/// send, or the gateway answers 431; either way nothing is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_header_list_over_the_bound_is_refused() {
    let env = Env::start_with(Options {
        tls: Some(TestTls::new()),
        server_extra: "max_header_bytes = 4096".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let ca = env.tls.as_ref().unwrap().ca_pem.clone();
    let h2 = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    let r = h2
        .get(env.url(&path))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "under the bound: forwarded");
    let forwarded = env.fake.rest_requests().len();
    let big = h2
        .get(env.url(&path))
        .header("Cookie", b.cookie_header())
        .header("X-Pad", "p".repeat(8192))
        .send()
        .await;
    if let Ok(r) = big {
        assert_eq!(r.status(), 431);
    }
    assert_eq!(
        env.fake.rest_requests().len(),
        forwarded,
        "nothing forwarded"
    );
}
