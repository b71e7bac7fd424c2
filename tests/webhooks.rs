//! DocuSign Connect webhooks with the memory store: signatures, byte-exact
//! delivery, retries, the app down, duplicates, the size and queue bounds.
//! (The Redis store: `tests/webhooks_redis.rs`.)

mod common;

use std::time::Duration;

use common::free_port;
use common::webhook::*;

const WAIT: Duration = Duration::from_secs(15);

/// Connect 2.0's shape, with CRLF line ends and non-ASCII text.
fn body(n: usize) -> Vec<u8> {
    format!(
        "{{\r\n  \"event\": \"envelope-completed\",\r\n  \"data\": {{ \"envelopeId\": \"env-{n}\", \"emailSubject\": \"Vertrag für Zoë – 契約\" }}\r\n}}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn only_signed_messages_are_kept_and_delivered_byte_for_byte() {
    let app = App::start(0, 0).await;
    let gw = WebhookGateway::start(&Store::Memory, &App::url(app.addr.port()), "").await;
    let b = body(1);
    // Refused: unsigned, wrong key, altered body, not base64.
    let r = gw.post("connect", &b, &[]).await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_signature");
    let wrong = [("X-DocuSign-Signature-1", sign("not-a-configured-key", &b))];
    assert_eq!(gw.post("connect", &b, &wrong).await.status(), 401);
    let altered = [("X-DocuSign-Signature-1", sign(KEY_1, &body(2)))];
    assert_eq!(gw.post("connect", &b, &altered).await.status(), 401);
    let garbage = [("X-DocuSign-Signature-1", "%%% not base64".to_string())];
    assert_eq!(gw.post("connect", &b, &garbage).await.status(), 401);
    // Key rotation: header 1 under a key no longer configured, the match
    // in header 2 under the second configured key.
    let rotated = [
        ("X-DocuSign-Signature-1", sign("retired-key", &b)),
        ("X-DocuSign-Signature-2", sign(KEY_2, &b)),
    ];
    let r = gw.post("connect", &b, &rotated).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "accepted");
    let id = v["id"].as_str().unwrap().to_string();
    // Unknown webhook, other method.
    assert_eq!(gw.post("other", &b, &rotated).await.status(), 404);
    let get = gw
        .client
        .get(format!("{}/webhooks/connect", gw.gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);

    let got = app.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "one delivery; logs:\n{}", gw.gw.logs());
    let d = &got[0];
    assert_eq!(d.body.as_ref(), b.as_slice(), "byte for byte");
    assert_eq!(d.header("content-type"), "application/json; charset=utf-8");
    assert_eq!(d.header("x-dsgw-webhook"), "connect");
    assert_eq!(d.event_id(), id);
    assert_eq!(d.header("x-dsgw-delivery-attempt"), "1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.received().len(), 1, "nothing refused was delivered");

    let m = gw.metrics().await;
    let received = |o: &str| {
        metric(
            &m,
            &format!("dsgw_webhook_received_total{{outcome=\"{o}\",webhook=\"connect\"}}"),
        )
    };
    assert_eq!(received("invalid_signature"), 4.0, "{m}");
    assert_eq!(received("accepted"), 1.0, "{m}");
    let delivered = metric(
        &m,
        "dsgw_webhook_deliveries_total{outcome=\"delivered\",webhook=\"connect\"}",
    );
    assert_eq!(delivered, 1.0, "{m}");
    assert!(
        m.contains("dsgw_webhook_delivery_seconds_count{webhook=\"connect\"} 1"),
        "{m}"
    );
    let logs = gw.gw.logs_with("webhook message delivered").await;
    assert!(logs.contains(&id), "{logs}");
    for secret in [KEY_1, KEY_2, "Zoë"] {
        assert!(!logs.contains(secret), "logs hold {secret}:\n{logs}");
    }
}

#[tokio::test]
async fn a_failing_app_is_retried_with_the_same_event_id() {
    let app = App::start(0, 2).await;
    let gw = WebhookGateway::start(&Store::Memory, &App::url(app.addr.port()), "").await;
    assert_eq!(gw.post_signed(&body(3)).await.status(), 200);
    // 500, then 1 s, 500, then 2 s, 200.
    let got = app.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3, "logs:\n{}", gw.gw.logs());
    let attempts: Vec<String> = got
        .iter()
        .map(|d| d.header("x-dsgw-delivery-attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(got.iter().all(|d| d.event_id() == got[0].event_id()));
    assert!(got.iter().all(|d| d.body.as_ref() == body(3).as_slice()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.received().len(), 3, "delivered: no more attempts");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "dsgw_webhook_deliveries_total{outcome=\"failed\",webhook=\"connect\"}"
        ),
        2.0,
        "{m}"
    );
}

#[tokio::test]
async fn messages_that_arrive_while_the_app_is_down_are_delivered_when_it_is_up() {
    let port = free_port();
    let gw = WebhookGateway::start(&Store::Memory, &App::url(port), "").await;
    for n in 10..13 {
        assert_eq!(gw.post_signed(&body(n)).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = gw.metrics().await;
    assert!(
        metric(
            &m,
            "dsgw_webhook_deliveries_total{outcome=\"failed\",webhook=\"connect\"}"
        ) >= 3.0,
        "{m}"
    );
    let app = App::start(port, 0).await;
    let got = app.wait_for(3, WAIT).await;
    let mut bodies: Vec<Vec<u8>> = got.iter().map(|d| d.body.to_vec()).collect();
    bodies.sort();
    let mut want: Vec<Vec<u8>> = (10..13).map(body).collect();
    want.sort();
    assert_eq!(bodies, want, "logs:\n{}", gw.gw.logs());
}

#[tokio::test]
async fn connects_retry_of_a_message_is_delivered_once() {
    let app = App::start(0, 0).await;
    let gw = WebhookGateway::start(&Store::Memory, &App::url(app.addr.port()), "").await;
    let r = gw.post_signed(&body(20)).await;
    let first: serde_json::Value = r.json().await.unwrap();
    let r = gw.post_signed(&body(20)).await;
    assert_eq!(r.status(), 200);
    let again: serde_json::Value = r.json().await.unwrap();
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["id"], first["id"]);
    app.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Once delivered, Connect's retry is still recognised.
    assert_eq!(gw.post_signed(&body(20)).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.received().len(), 1);
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "dsgw_webhook_received_total{outcome=\"duplicate\",webhook=\"connect\"}"
        ),
        2.0,
        "{m}"
    );
}

#[tokio::test]
async fn the_size_bound_and_the_queue_bound_answer_instead_of_dropping() {
    let port = free_port();
    let gw = WebhookGateway::start(
        &Store::Memory,
        &App::url(port),
        "max_body_bytes = 1024\nmax_pending = 2",
    )
    .await;
    let big = vec![b'x'; 1025];
    let r = gw.post_signed(&big).await;
    assert_eq!(r.status(), 413);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "body_too_large");
    // Without Content-Length (chunked) too.
    let chunk = "y".repeat(700);
    let request = format!(
        "POST /webhooks/connect HTTP/1.1\r\nHost: x\r\nX-DocuSign-Signature-1: {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2bc\r\n{chunk}\r\n2bc\r\n{chunk}\r\n0\r\n\r\n",
        sign(KEY_1, "y".repeat(1400).as_bytes())
    );
    let (status, _) = common::raw_request(gw.gw.addr, &request).await;
    assert_eq!(status, 413);
    // The app is down: two messages fill the queue; the third is refused
    // with Retry-After (Connect retries), never dropped silently.
    assert_eq!(gw.post_signed(&body(30)).await.status(), 200);
    assert_eq!(gw.post_signed(&body(31)).await.status(), 200);
    let r = gw.post_signed(&body(32)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "queue_full");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "dsgw_webhook_received_total{outcome=\"too_large\",webhook=\"connect\"}"
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "dsgw_webhook_received_total{outcome=\"store_unavailable\",webhook=\"connect\"}"
        ),
        1.0,
        "{m}"
    );
    // Once the app is up and takes them, there is room again.
    let app = App::start(port, 0).await;
    app.wait_for(2, WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = gw.post_signed(&body(32)).await.status();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "queue never drained");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = app.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
}

#[tokio::test]
async fn a_message_retried_past_retry_for_is_dead_and_counted() {
    let app = App::start(0, usize::MAX).await;
    let gw = WebhookGateway::start(
        &Store::Memory,
        &App::url(app.addr.port()),
        "retry_for_secs = 2",
    )
    .await;
    assert_eq!(gw.post_signed(&body(40)).await.status(), 200);
    // Attempts at 0 s and 1 s; the next (after 2 s more) would be past 2 s.
    let logs = gw.gw.logs_with("webhook message dead").await;
    assert!(logs.contains("webhook message dead"), "{logs}");
    let m = gw.metrics().await;
    assert_eq!(
        metric(
            &m,
            "dsgw_webhook_deliveries_total{outcome=\"dead\",webhook=\"connect\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(app.received().len(), 2);
    let (ok, _, err) = gw.webhooks_command(&["dead", "connect"]);
    assert!(!ok && err.contains("session.store is \"memory\""), "{err}");
}
