//! Gateway-issued bearer tokens: minting, using them like curl does, and
//! every way a token can be bad (401 and nothing forwarded).

mod common;

use common::*;
use docusign_gateway::crypto::api_token::{ApiTokens, AUDIENCE};
use docusign_gateway::crypto::keys;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn minting_needs_a_cookie_session_and_post() {
    let env = Env::start().await;
    let r = env
        .client
        .post(env.url("/auth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b = env.logged_in().await;
    let r = env.get_as(&b, "/auth/token").await;
    assert_eq!(r.status(), 405);
    let (token, expires_at) = env.mint_token(&b).await;
    assert!(expires_at > now() + 29 * 24 * 3600, "30 days by default");
    // A token cannot mint its successor.
    let r = env
        .client
        .post(env.url("/auth/token"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn curl_style_calls_with_a_gateway_token_survive_revocation() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let (account, host) = env.accounts()[1].clone();
    let path = format!("/restapi/v2.1/accounts/{account}");
    let r = env.get_with_token(&token, &path).await;
    assert_eq!(r.status(), 200);
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.host_index, host);
    let docusign_token = env.fake.active_access_tokens().pop().unwrap();
    assert_eq!(rec.authorization, Some(format!("Bearer {docusign_token}")));
    assert!(
        !format!("{rec:?}").contains(&token),
        "gateway token never sent upstream"
    );

    // /auth/session answers a token too.
    let r = env.get_with_token(&token, "/auth/session").await;
    assert_eq!(r.status(), 200);

    env.fake.revoke_access_tokens();
    let r = env
        .client
        .post(env.url(&format!("{path}/envelopes")))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"emailSubject":"via token","status":"sent"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(env.fake.stats().token_refresh, 1);
    for rec in env.fake.rest_requests() {
        assert!(!rec.authorization.unwrap_or_default().contains(&token));
    }
}

#[tokio::test]
async fn bad_tokens_are_401_and_nothing_is_forwarded() {
    let env = Env::start_with(Options {
        session_extra: "api_token_ttl_secs = 2".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let parts: Vec<&str> = token.split('.').collect();
    let sid = {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        let v: Value = serde_json::from_slice(&claims).unwrap();
        assert_eq!(v["aud"], AUDIENCE);
        assert_eq!(v["iss"], env.gw.url.as_str());
        assert_eq!(v["sub"], env.fake.config().users[0].sub.as_str());
        v["sid"].as_str().unwrap().to_string()
    };
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let key = EncodingKey::from_secret(&keys::derive::<32>(SECRET.as_bytes(), keys::API_TOKEN_KEY));
    let sign = |claims: Value| encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap();
    let sub = env.fake.config().users[0].sub.clone();
    let iss = env.gw.url.clone();
    let exp = now() + 600;

    let mut flipped_sig = parts[2].to_string();
    let c = if flipped_sig.starts_with('A') {
        "B"
    } else {
        "A"
    };
    flipped_sig.replace_range(0..1, c);
    let altered_claims = b64(
        &json!({"iss": iss, "aud": AUDIENCE, "sub": sub, "sid": sid, "iat": now(), "exp": exp + 99999}),
    );
    let none_header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let bad: Vec<(&str, String)> = vec![
        (
            "altered signature",
            format!("{}.{}.{flipped_sig}", parts[0], parts[1]),
        ),
        (
            "altered claims",
            format!("{}.{altered_claims}.{}", parts[0], parts[2]),
        ),
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "wrong aud",
            sign(
                json!({"iss": iss, "aud": "other", "sub": sub, "sid": sid, "iat": now(), "exp": exp}),
            ),
        ),
        (
            "wrong iss",
            ApiTokens::new(SECRET.as_bytes(), "http://elsewhere", 600)
                .mint(&sub, &sid, now(), exp)
                .0,
        ),
        (
            "foreign key",
            ApiTokens::new(b"some-other-gateway-secret-0123456789", &iss, 600)
                .mint(&sub, &sid, now(), exp)
                .0,
        ),
        (
            "unknown session",
            sign(
                json!({"iss": iss, "aud": AUDIENCE, "sub": sub, "sid": "no-such-session", "iat": now(), "exp": exp}),
            ),
        ),
        (
            "other user",
            sign(
                json!({"iss": iss, "aud": AUDIENCE, "sub": "someone-else", "sid": sid, "iat": now(), "exp": exp}),
            ),
        ),
        (
            "expired",
            sign(
                json!({"iss": iss, "aud": AUDIENCE, "sub": sub, "sid": sid, "iat": now() - 100, "exp": now() - 1}),
            ),
        ),
        ("garbage", "not-a-token".to_string()),
        (
            "a DocuSign token",
            env.fake.active_access_tokens().pop().unwrap(),
        ),
    ];
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    for (what, t) in &bad {
        let r = env
            .client
            .get(env.url(&path))
            .header("Authorization", format!("Bearer {t}"))
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "login_required", "{what}");
    }
    // The real token works, until it expires (api_token_ttl_secs = 2).
    assert_eq!(env.get_with_token(&token, &path).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(env.get_with_token(&token, &path).await.status(), 401);
    assert_eq!(
        env.fake.rest_requests().len(),
        1,
        "only the valid call was forwarded"
    );
}

#[tokio::test]
async fn logout_ends_every_token_of_the_session() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (t1, _) = env.mint_token(&b).await;
    let (t2, _) = env.mint_token(&b).await;
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    assert_eq!(env.get_with_token(&t1, &path).await.status(), 200);
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for t in [&t1, &t2] {
        let r = env.get_with_token(t, &path).await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(env.fake.rest_requests().len(), 1);
}

#[tokio::test]
async fn session_page_for_browsers() {
    let env = Env::start().await;
    let mut b = env.logged_in().await;
    let r = b.get("/auth/session").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let page = r.text().await.unwrap();
    assert!(page.contains("Demo User"));
    for (account, _) in env.accounts() {
        assert!(page.contains(&account));
    }
    assert!(page.contains(&format!("ApiClient(host=\"{}/restapi\")", env.gw.url)));
    assert!(page.contains(&format!("basePath: \"{}/restapi\"", env.gw.url)));
    assert!(page.contains("/auth/token"));
    for secret in env.fake.issued_secrets() {
        assert!(!page.contains(&secret));
    }
}
