//! What crosses the gateway: bodies, large downloads, headers, and never a
//! DocuSign token back to the client or into a log line.

mod common;

use common::*;
use fake_docusign::SAMPLE_ENVELOPE_ID;
use serde_json::Value;

#[tokio::test]
async fn json_post_arrives_byte_identical() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (account, host) = env.accounts()[1].clone();
    // Unusual spacing, unicode and key order must survive untouched.
    let body = "{ \"emailSubject\" : \"Bitte unterschreiben \u{2713}\",\n  \"status\":\"sent\", \"recipients\":{\"signers\":[{\"email\":\"a@example.com\",\"name\":\"A\",\"recipientId\":\"1\"}]},\"documents\":[] }";
    let r = env
        .post_json_as(
            &b,
            &format!("/restapi/v2.1/accounts/{account}/envelopes"),
            body,
        )
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "sent");
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.host_index, host);
    assert_eq!(rec.body.as_ref(), body.as_bytes());

    // The new envelope is listed through the gateway too.
    let r = env
        .get_as(
            &b,
            &format!("/restapi/v2.1/accounts/{account}/envelopes?from_date=2020-01-01"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains(v["envelopeId"].as_str().unwrap()));
}

#[tokio::test]
async fn three_mib_download_streams_back_intact() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (account, _) = env.accounts()[0].clone();
    let r = env
        .get_as(
            &b,
            &format!(
            "/restapi/v2.1/accounts/{account}/envelopes/{SAMPLE_ENVELOPE_ID}/documents/combined"
        ),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(bytes.len(), env.fake.config().document_size);
    assert!(bytes.len() >= 3 * 1024 * 1024);
    assert!(bytes.starts_with(b"%PDF-"));
    assert!(bytes.ends_with(b"%%EOF\n"));
}

#[tokio::test]
async fn upstream_errors_and_headers_pass_through_untouched() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (account, _) = env.accounts()[0].clone();
    let r = env
        .get_as(
            &b,
            &format!("/restapi/v2.1/accounts/{account}/envelopes/no-such-envelope"),
        )
        .await;
    assert_eq!(r.status(), 404);
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(r.headers().contains_key(h), "{h} passed through");
    }
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorCode"], "ENVELOPE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn no_docusign_token_in_any_response_or_log_line() {
    let env = Env::start_with(Options {
        rust_log: "trace".into(),
        ..Options::default()
    })
    .await;
    let mut b = env.browser();
    let mut seen = String::new();
    // The whole flow, recording every response the client sees.
    let q = "/auth/login?return_to=%2Fauth%2Fsession";
    let r = b.get(q).await;
    seen.push_str(&format!("{:?}", r.headers()));
    let consent = location(&r);
    let r = b.get(&consent).await;
    let callback = location(&r);
    let r = b.get(&callback).await;
    seen.push_str(&format!("{:?}", r.headers()));
    seen.push_str(&r.text().await.unwrap());
    let (account, _) = env.accounts()[0].clone();
    for path in [
        "/auth/session".to_string(),
        format!("/restapi/v2.1/accounts/{account}"),
        format!("/restapi/v2.1/accounts/{account}/envelopes"),
        "/restapi/v2.1/accounts/not-mine".to_string(),
        "/nope".to_string(),
    ] {
        let r = env.get_as(&b, &path).await;
        seen.push_str(&format!("{:?}", r.headers()));
        seen.push_str(&r.text().await.unwrap());
    }
    // A scoped token, used, listed and revoked: audit lines of their own.
    let r = env
        .post_json_as(&b, "/auth/token", r#"{"name":"t","methods":["GET"]}"#)
        .await;
    let minted: serde_json::Value = r.json().await.unwrap();
    let gateway_token = minted["token"].as_str().unwrap().to_string();
    let r = env
        .client
        .get(env.url(&format!("/restapi/v2.1/accounts/{account}")))
        .header("Authorization", format!("Bearer {gateway_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = env.get_as(&b, "/auth/tokens").await;
    seen.push_str(&r.text().await.unwrap());
    let r = env
        .client
        .delete(env.url(&format!("/auth/tokens/{}", minted["id"].as_str().unwrap())))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    seen.push_str(&format!("{:?}", r.headers()));
    seen.push_str(&r.text().await.unwrap());

    // Give the log readers a moment to drain.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let logs = env.gw.logs();
    assert!(
        logs.contains("login completed"),
        "logs are captured:\n{logs}"
    );
    for event in [
        "login",
        "token_minted",
        "token_revoked",
        "logout",
        "session_ended",
    ] {
        let line = format!("docusign_gateway::audit: {event} event={event}");
        assert!(logs.contains(&line), "audit line {event}:\n{logs}");
    }
    assert!(
        !logs.contains(&gateway_token),
        "the log leaks a gateway token"
    );
    assert!(
        !seen.contains(&gateway_token[10..]),
        "a listing leaks a gateway token"
    );
    let secrets = env.fake.issued_secrets();
    assert!(secrets.len() >= 3, "tokens, code and client secret");
    let code = param(&callback, "code").unwrap();
    let session_cookie = b.cookie(COOKIE_NAME).unwrap_or_default();
    for secret in secrets.iter().chain([&code, &SECRET.to_string()]) {
        assert!(!seen.contains(secret.as_str()), "a response leaks a secret");
        let leaking: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            leaking.is_empty(),
            "the log leaks a secret in:\n{}",
            leaking.join("\n")
        );
    }
    if !session_cookie.is_empty() {
        assert!(
            !logs.contains(&session_cookie),
            "the log leaks the session cookie"
        );
    }
}

#[tokio::test]
async fn unreachable_rest_host_is_a_502_json_not_a_panic() {
    let env = Env::start_with(Options {
        allowed_api_hosts: "[\"{rest0}\", \"{rest1}\", \"127.0.0.9:1\", \"host.invalid:80\"]"
            .into(),
        ..Options::default()
    })
    .await;
    let (down, _) = env.accounts()[1].clone();
    let (unresolvable, _) = env.accounts()[0].clone();
    // Nothing listens on 127.0.0.9:1; host.invalid never resolves.
    env.fake.set_base_uri_override(&down, "http://127.0.0.9:1");
    env.fake
        .set_base_uri_override(&unresolvable, "http://host.invalid");
    let b = env.logged_in().await;
    for (account, error) in [
        (&down, "upstream_error"),
        (&unresolvable, "upstream_unreachable"),
    ] {
        let r = env
            .get_as(&b, &format!("/restapi/v2.1/accounts/{account}"))
            .await;
        assert_eq!(r.status(), 502, "{account}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], error);
    }
    // The gateway is still serving.
    assert_eq!(env.get_as(&b, "/auth/session").await.status(), 200);
}
