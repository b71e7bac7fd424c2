//! The Connect sender over loopback: a tiny axum receiver records what
//! arrives; the fake signs, delivers, retries and records attempts, on its
//! own, from the REST API and from the control routes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use tokio::sync::mpsc;

use super::*;

/// Longest wait for anything to arrive.
const WAIT: Duration = Duration::from_secs(5);
/// The receiver's answer that never comes in time (it sleeps instead).
const HANG: u16 = 0;

/// One request as the receiver got it.
struct Received {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

#[derive(Clone)]
struct Script {
    /// Answers in order; `then` once they run out.
    answers: Arc<Mutex<VecDeque<u16>>>,
    then: u16,
    arrivals: mpsc::UnboundedSender<Received>,
}

/// A listener on 127.0.0.1:0 answering a script of statuses.
struct Receiver {
    url: String,
    arrivals: mpsc::UnboundedReceiver<Received>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hook(State(script): State<Script>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = script.arrivals.send(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let next = script.answers.lock().unwrap().pop_front();
    let status = next.unwrap_or(script.then);
    if status == HANG {
        tokio::time::sleep(WAIT).await;
        return StatusCode::OK;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start(answers: &[u16], then: u16) -> Receiver {
        let (tx, arrivals) = mpsc::unbounded_channel();
        let script = Script {
            answers: Arc::new(Mutex::new(answers.iter().copied().collect())),
            then,
            arrivals: tx,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(script);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            arrivals,
            server,
        }
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.arrivals.recv())
            .await
            .expect("a Connect message in time")
            .expect("receiver running")
    }

    /// Nothing more arrives within `quiet`.
    async fn silent_for(&mut self, quiet: Duration) {
        let more = tokio::time::timeout(quiet, self.arrivals.recv()).await;
        assert!(more.is_err(), "an unexpected extra delivery arrived");
    }

    fn listener(&self, keys: &[&str]) -> ConnectListener {
        let mut l = ConnectListener::new(&self.url, keys.iter().map(|k| k.to_string()).collect());
        l.first_retry = Duration::from_millis(50);
        l.timeout = Duration::from_secs(2);
        l
    }
}

/// Waits until `fake` recorded at least `n` attempts; returns them all.
async fn attempts(fake: &FakeDocuSign, n: usize) -> Vec<ConnectAttempt> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = fake.connect_attempts();
        if all.len() >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "only {} attempts: {all:?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The attempts of one listener URL.
fn of(all: &[ConnectAttempt], url: &str) -> Vec<ConnectAttempt> {
    all.iter().filter(|a| a.url == url).cloned().collect()
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers
        .get(name)
        .map(|v| v.to_str().expect("ascii header"))
}

/// Checks `signature` independently: HMAC-SHA256 of `body` under `key`.
fn signed_with(key: &str, body: &[u8], signature: &str) -> bool {
    let Ok(raw) = STANDARD.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key");
    mac.update(body);
    mac.verify_slice(&raw).is_ok()
}

/// The one signature per key, in key order, and the digest header.
fn assert_signed(r: &Received, keys: &[&str]) {
    for (i, key) in keys.iter().enumerate() {
        let name = format!("x-docusign-signature-{}", i + 1);
        let sig = header(r, &name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(signed_with(key, &r.body, sig), "{name} is not by key {i}");
    }
    let extra = format!("x-docusign-signature-{}", keys.len() + 1);
    assert!(header(r, &extra).is_none(), "{extra} is one too many");
    let digest = header(r, "x-authorization-digest");
    assert_eq!(digest, (!keys.is_empty()).then_some("HMACSHA256"));
}

async fn access_token(h: &Harness) -> String {
    let code = h.code(&[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    let (status, tokens) = h.token(&form, GOOD).await;
    assert_eq!(status, 200);
    tokens["access_token"].as_str().expect("access").to_string()
}

async fn control(h: &Harness, path_and_query: &str, body: &'static [u8]) -> (u16, String) {
    let url = format!("{}{path_and_query}", h.fake.account_server_url());
    let resp = h.http.post(url).body(body).send().await.expect("control");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("text"))
}

#[tokio::test]
async fn connect_messages_arrive_byte_for_byte_signed_once_per_key() {
    let h = Harness::start().await;
    let mut signed = Receiver::start(&[], 200).await;
    let mut unsigned = Receiver::start(&[], 204).await;
    let keys = ["first-key", "second kéy"];
    h.fake
        .set_connect_listeners(vec![signed.listener(&keys), unsigned.listener(&[])]);

    let body = "a\r\nb é ü 日本".as_bytes().to_vec();
    let id = h.fake.send_connect(body.clone());
    let got = signed.next().await;
    assert_eq!(got.body, body);
    assert_eq!(header(&got, "content-type"), Some("application/json"));
    assert_signed(&got, &keys);
    assert_eq!(
        header(&got, "x-docusign-signature-1"),
        Some(sign(keys[0], &body).as_str())
    );
    let plain = unsigned.next().await;
    assert_eq!(plain.body, body);
    assert_signed(&plain, &[]);

    let all = attempts(&h.fake, 2).await;
    for (url, status) in [(&signed.url, 200), (&unsigned.url, 204)] {
        let expected = ConnectAttempt {
            url: url.clone(),
            message_id: id,
            attempt: 1,
            status: Some(status),
            error: None,
        };
        assert_eq!(of(&all, url), vec![expected]);
    }
    assert_ne!(h.fake.send_connect(b"{}".to_vec()), id, "fresh message ids");
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_the_same_bytes_at_growing_intervals() {
    let h = Harness::start().await;
    let mut receiver = Receiver::start(&[500, 500], 200).await;
    h.fake
        .set_connect_listeners(vec![receiver.listener(&["k"])]);
    let body = b"{\"event\":\"envelope-sent\"}\r\n".to_vec();
    let id = h.fake.send_connect(body.clone());

    let arrivals = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ];
    for got in &arrivals {
        assert_eq!(got.body, body);
        assert_eq!(
            header(got, "x-docusign-signature-1"),
            header(&arrivals[0], "x-docusign-signature-1")
        );
        assert_signed(got, &["k"]);
    }
    assert!(arrivals[1].at - arrivals[0].at >= Duration::from_millis(50));
    assert!(arrivals[2].at - arrivals[1].at >= Duration::from_millis(100));

    let all = attempts(&h.fake, 3).await;
    let seen: Vec<(u64, u32, Option<u16>)> = all
        .iter()
        .map(|a| (a.message_id, a.attempt, a.status))
        .collect();
    assert_eq!(
        seen,
        vec![(id, 1, Some(500)), (id, 2, Some(500)), (id, 3, Some(200))]
    );
    assert!(all[2].succeeded() && !all[0].succeeded());
    receiver.silent_for(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn max_attempts_bounds_the_retries_of_failing_listeners() {
    let h = Harness::start().await;
    let mut failing = Receiver::start(&[], 503).await;
    let mut always_failing = failing.listener(&[]);
    always_failing.max_attempts = 3;
    always_failing.first_retry = Duration::from_millis(20);

    // Nobody listens on a port just released; a hanging listener times out.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let mut refused = ConnectListener::new(&closed_url, vec![]);
    (refused.max_attempts, refused.first_retry) = (2, Duration::from_millis(20));
    let hanging = Receiver::start(&[], HANG).await;
    let mut slow = hanging.listener(&[]);
    (slow.max_attempts, slow.timeout) = (1, Duration::from_millis(100));

    h.fake
        .set_connect_listeners(vec![always_failing, refused, slow]);
    h.fake.send_connect(b"{}".to_vec());
    for _ in 0..3 {
        assert_eq!(failing.next().await.body, &b"{}"[..]);
    }
    let all = attempts(&h.fake, 6).await;
    failing.silent_for(Duration::from_millis(300)).await;
    let all_now = h.fake.connect_attempts();
    assert_eq!(all_now.len(), 6, "{all_now:?}");

    let statuses: Vec<_> = of(&all, &failing.url).iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(503); 3]);
    let refusals = of(&all, &closed_url);
    assert_eq!(refusals.len(), 2);
    assert!(refusals
        .iter()
        .all(|a| a.status.is_none() && a.error.is_some()));
    let timeouts = of(&all, &hanging.url);
    assert_eq!(timeouts.len(), 1);
    let error = timeouts[0].error.as_deref().unwrap_or_default();
    assert!(error.starts_with("timeout"), "{error}");
}

#[tokio::test]
async fn creating_an_envelope_sends_envelope_sent_to_the_listeners() {
    let h = Harness::start().await;
    let token = access_token(&h).await;
    let base = format!(
        "{}/restapi/v2.1/accounts/{ACCOUNT_A}/envelopes",
        h.fake.rest_host_url(0)
    );
    let create = |subject: &'static str| {
        h.http
            .post(&base)
            .bearer_auth(&token)
            .json(&serde_json::json!({"emailSubject": subject, "status": "sent"}))
            .send()
    };
    // Without listeners nothing is queued.
    assert_eq!(create("unheard").await.expect("create").status(), 201);

    let mut receiver = Receiver::start(&[], 200).await;
    h.fake
        .set_connect_listeners(vec![receiver.listener(&["key"])]);
    let resp = create("Please sign").await.expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.expect("json");
    let envelope_id = created["envelopeId"].as_str().expect("id");

    let got = receiver.next().await;
    assert_signed(&got, &["key"]);
    let event: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(event["event"], "envelope-sent");
    assert_eq!(event["apiVersion"], "v2.1");
    assert_eq!(
        event["uri"],
        format!("/restapi/v2.1/accounts/{ACCOUNT_A}/envelopes/{envelope_id}")
    );
    let data = &event["data"];
    assert_eq!(data["accountId"], ACCOUNT_A);
    assert_eq!(data["envelopeId"], envelope_id);
    assert_eq!(data["userId"], h.fake.config().users[0].sub.as_str());
    assert_eq!(data["envelopeSummary"]["status"], "sent");
    assert_eq!(data["envelopeSummary"]["emailSubject"], "Please sign");
    assert_eq!(attempts(&h.fake, 1).await.len(), 1);
    receiver.silent_for(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn connect_control_routes_set_send_and_report() {
    let h = Harness::start().await;
    let mut receiver = Receiver::start(&[500], 200).await;
    for bad in [
        "/_fake/connect/listener".to_string(),
        "/_fake/connect/listener?url=ftp://127.0.0.1/x".to_string(),
        format!(
            "/_fake/connect/listener?url={}&max_attempts=0",
            receiver.url
        ),
        format!(
            "/_fake/connect/listener?url={}&first_retry_ms=soon",
            receiver.url
        ),
    ] {
        assert_eq!(control(&h, &bad, b"").await.0, 400, "{bad}");
    }
    let query = format!(
        "/_fake/connect/listener?url={}&keys=secret-one,secret-two&max_attempts=2&first_retry_ms=30",
        receiver.url
    );
    let (status, text) = control(&h, &query, b"").await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("secret-"), "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["connect_listener"]["hmac_keys"], 2);

    // An empty body: the sample envelope-completed event, retried once.
    let (status, text) = control(&h, "/_fake/connect/send", b"").await;
    assert_eq!(status, 200, "{text}");
    let first: Value = serde_json::from_str(&text).expect("json");
    let sample = receiver.next().await;
    assert_signed(&sample, &["secret-one", "secret-two"]);
    let event: Value = serde_json::from_slice(&sample.body).expect("json");
    assert_eq!(event["event"], "envelope-completed");
    assert_eq!(event["data"]["accountId"], ACCOUNT_A);
    assert_eq!(event["data"]["envelopeId"], SAMPLE_ENVELOPE_ID);
    assert_eq!(event["data"]["envelopeSummary"]["status"], "completed");
    assert_eq!(receiver.next().await.body, sample.body);

    // A raw body goes out byte for byte.
    let (_, text) = control(&h, "/_fake/connect/send", b"raw\r\nbody \xc3\xa9").await;
    let second: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(receiver.next().await.body, &b"raw\r\nbody \xc3\xa9"[..]);

    attempts(&h.fake, 3).await;
    let url = format!("{}/_fake/connect/attempts", h.fake.account_server_url());
    let text = h.http.get(url).send().await.expect("attempts");
    let text = text.text().await.expect("text");
    assert!(!text.contains("secret-"), "{text}");
    let report: Value = serde_json::from_str(&text).expect("json");
    let rows: Vec<(u64, u64, u64)> = report["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            let n = |k: &str| a[k].as_u64().expect("number");
            (n("message_id"), n("attempt"), n("status"))
        })
        .collect();
    let (m1, m2) = (first["message_id"].as_u64(), second["message_id"].as_u64());
    let (m1, m2) = (m1.expect("id"), m2.expect("id"));
    assert_eq!(rows, vec![(m1, 1, 500), (m1, 2, 200), (m2, 1, 200)]);
    assert_eq!(report["attempts"][0]["url"], receiver.url.as_str());
}

#[tokio::test]
async fn listeners_are_validated_redacted_and_stopped_with_the_fake() {
    let mut config = test_config();
    config.connect = vec![ConnectListener::new("file:///etc/passwd", vec![])];
    let err = FakeDocuSign::start(config).await.expect_err("bad URL");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let mut receiver = Receiver::start(&[], 500).await;
    let mut config = test_config();
    config.connect = vec![receiver.listener(&["configured-secret"])];
    assert!(!format!("{config:?}").contains("configured-secret"));
    let fake = FakeDocuSign::start(config).await.expect("start");
    fake.send_connect(FakeDocuSign::connect_event(
        "envelope-sent",
        ACCOUNT_A,
        "user",
        SAMPLE_ENVELOPE_ID,
    ));
    let got = receiver.next().await;
    let event: Value = serde_json::from_slice(&got.body).expect("json");
    assert_eq!(event["data"]["envelopeSummary"]["status"], "sent");
    drop(fake);
    receiver.silent_for(Duration::from_millis(300)).await;
}
