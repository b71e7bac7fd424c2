//! The login flow end to end: gateway binary + fake DocuSign over loopback.

mod common;

use common::*;
use fake_docusign::FakeDocuSign;
use serde_json::Value;

#[tokio::test]
async fn full_browser_flow_with_state_and_pkce() {
    let env = Env::start().await;
    let mut b = env.browser();

    let r = b
        .get("/auth/login?return_to=%2Frestapi%2Fv2.1%2Faccounts")
        .await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let consent = location(&r);
    assert!(consent.starts_with(&format!("{}/oauth/auth?", env.fake.account_server_url())));
    assert_eq!(param(&consent, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&consent, "client_id").as_deref(),
        Some("demo-integration-key")
    );
    assert_eq!(param(&consent, "scope").as_deref(), Some("signature"));
    assert_eq!(
        param(&consent, "redirect_uri"),
        Some(format!("{}{CALLBACK}", env.gw.url))
    );
    assert_eq!(
        param(&consent, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&consent, "code_challenge").unwrap().len() >= 43);
    let state = param(&consent, "state").unwrap();
    assert!(state.len() >= 22);
    assert!(
        b.cookie(LOGIN_COOKIE_NAME).is_some(),
        "login bound to this browser"
    );

    let r = b.get(&consent).await;
    assert_eq!(r.status(), 302);
    let callback = location(&r);
    assert_eq!(param(&callback, "state"), Some(state.clone()));

    let r = b.get(&callback).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/restapi/v2.1/accounts");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let set_cookie: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session_cookie = set_cookie
        .iter()
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .expect("session cookie set");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }
    assert!(
        !session_cookie.contains("Secure"),
        "secure_cookie = false in tests"
    );
    assert!(b.cookie(COOKIE_NAME).is_some());
    assert!(
        b.cookie(LOGIN_COOKIE_NAME).is_none(),
        "login cookie cleared"
    );

    // The token exchange used Basic auth and the PKCE verifier.
    let grants = env.fake.token_requests();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grant_type.as_deref(), Some("authorization_code"));
    assert!(grants[0].basic_auth_valid);
    assert!(grants[0].field_names.iter().any(|f| f == "code_verifier"));
    assert_eq!(env.fake.stats().userinfo, 1);

    // /auth/session describes the user and accounts, never a token.
    let r = env.get_as(&b, "/auth/session").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["user"]["sub"], env.fake.config().users[0].sub.as_str());
    assert_eq!(v["user"]["email"], "demo.user@example.com");
    assert_eq!(v["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(v["default_account_id"], env.accounts()[0].0.as_str());
    assert!(v["access_token_expires_at"].as_u64().unwrap() > 0);
    assert_eq!(
        v["accounts"][1]["base_uri"],
        env.fake.rest_host_url(1).as_str()
    );
    for secret in env.fake.issued_secrets() {
        assert!(!text.contains(&secret), "session info leaks a token");
    }
}

#[tokio::test]
async fn proxied_calls_reach_each_accounts_host_with_its_token() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let token = env
        .fake
        .active_access_tokens()
        .pop()
        .expect("one access token");
    for (account, host) in env.accounts() {
        let r = env
            .client
            .get(env.url(&format!("/restapi/v2.1/accounts/{account}?include=x")))
            .header("Cookie", format!("{}; app=1", b.cookie_header()))
            .header("Authorization", "Bearer something-the-client-sent")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-ratelimit-remaining"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["accountIdGuid"], account.as_str());
        let rec = env.fake.rest_requests().pop().unwrap();
        assert_eq!(rec.host_index, host);
        assert_eq!(
            rec.path_and_query,
            format!("/restapi/v2.1/accounts/{account}?include=x")
        );
        let expected_host = env
            .fake
            .rest_host_url(host)
            .trim_start_matches("http://")
            .to_string();
        assert_eq!(rec.host_header.as_deref(), Some(expected_host.as_str()));
        assert_eq!(rec.authorization, Some(format!("Bearer {token}")));
        assert_eq!(
            rec.cookie.as_deref(),
            Some("app=1"),
            "gateway cookies stripped"
        );
    }
    // A path without an account goes to the default account's host.
    let r = env.get_as(&b, "/restapi/v2.1/billing_plans").await;
    assert_eq!(r.status(), 404, "the fake does not serve this path");
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.host_index, 0);
    assert_eq!(rec.path_and_query, "/restapi/v2.1/billing_plans");
    assert_eq!(rec.cookie, None);
}

#[tokio::test]
async fn foreign_account_is_403_and_nothing_is_forwarded() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    for path in [
        "/restapi/v2.1/accounts/00000000-0000-0000-0000-000000000000/envelopes",
        "/restapi/v2.1/accounts/not-mine",
    ] {
        let r = env.get_as(&b, path).await;
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "account_not_permitted");
    }
    let (mine, _) = env.accounts()[0].clone();
    for path in [
        format!("/restapi/v2.1/accounts/{mine}/%2e%2e/other"),
        format!("/restapi/v2.1/accounts/{mine}/../other"),
    ] {
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nConnection: close\r\n\r\n",
            env.gw.addr,
            b.cookie_header()
        );
        let (status, _) = raw_request(env.gw.addr, &head).await;
        assert_eq!(status, 400, "{path}");
    }
    assert!(env.fake.rest_requests().is_empty());
}

#[tokio::test]
async fn account_id_is_matched_case_insensitively() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (mine, host) = env.accounts()[1].clone();
    let r = env
        .get_as(
            &b,
            &format!("/restapi/v2.1/accounts/{}", mine.to_uppercase()),
        )
        .await;
    assert_eq!(env.fake.rest_requests().pop().unwrap().host_index, host);
    assert_ne!(r.status(), 403);
}

#[tokio::test]
async fn without_session_browsers_are_redirected_and_api_clients_get_401() {
    let env = Env::start().await;
    let r = env
        .client
        .get(env.url("/restapi/v2.1/accounts/abc/envelopes?from_date=2024-01-01"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(
        loc.starts_with(&format!("{}/auth/login?return_to=", env.gw.url)),
        "{loc}"
    );
    assert_eq!(
        param(&loc, "return_to").as_deref(),
        Some("/restapi/v2.1/accounts/abc/envelopes?from_date=2024-01-01")
    );

    let r = env
        .client
        .get(env.url("/restapi/v2.1/accounts/abc"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "login_required");
    assert_eq!(v["login_url"], format!("{}/auth/login", env.gw.url));

    let r = env
        .client
        .get(env.url("/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(env.fake.rest_requests().is_empty());
}

#[tokio::test]
async fn tampered_and_garbage_cookies_are_no_session() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let good = b.cookie(COOKIE_NAME).unwrap();
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let long = "A".repeat(6000);
    let cases = [
        format!("{COOKIE_NAME}={flipped}"),
        format!("{COOKIE_NAME}={}", &good[..good.len() - 4]),
        format!("{COOKIE_NAME}=garbage"),
        format!("{COOKIE_NAME}="),
        format!("{COOKIE_NAME}={long}"),
        format!("{COOKIE_NAME}=%ZZ%00; ;=;"),
        "nonsense".to_string(),
    ];
    for cookie in cases {
        let r = env
            .client
            .get(env.url("/restapi/v2.1/accounts/x"))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "cookie {cookie:.60}");
    }
    // The real cookie still works: nothing above broke the gateway.
    let r = env.get_as(&b, "/auth/session").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn bad_states_are_400_without_any_code_exchange() {
    let env = Env::start().await;

    // Forged state.
    let mut b = env.browser();
    let callback = b.start_login("/").await;
    let code = param(&callback, "code").unwrap();
    let forged = format!("{}{CALLBACK}?code={code}&state=forged-state", env.gw.url);
    assert_eq!(b.get(&forged).await.status(), 400);

    // Another browser presents this browser's callback.
    let mut other = env.browser();
    let r = other.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert!(other.cookie(COOKIE_NAME).is_none());
    // ... and a request without the login cookie at all.
    let r = env.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Missing parameters.
    assert_eq!(
        b.get(&format!("{}{CALLBACK}", env.gw.url)).await.status(),
        400
    );
    assert_eq!(
        env.fake.stats().token_authorization_code,
        0,
        "nothing exchanged yet"
    );

    // The right browser completes; a replay of the same callback is refused.
    assert_eq!(b.get(&callback).await.status(), 302);
    assert_eq!(env.fake.stats().token_authorization_code, 1);
    let mut replayer = b.clone();
    replayer.cookies.retain(|(k, _)| k != COOKIE_NAME);
    let r = replayer.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        env.fake.stats().token_authorization_code,
        1,
        "replay not exchanged"
    );
}

#[tokio::test]
async fn expired_state_is_400_without_code_exchange() {
    let env = Env::start_with(Options {
        session_extra: "login_timeout_secs = 1".into(),
        ..Options::default()
    })
    .await;
    let mut b = env.browser();
    let callback = b.start_login("/").await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("expired"));
    assert_eq!(env.fake.stats().token_authorization_code, 0);
}

#[tokio::test]
async fn refused_consent_is_a_clear_4xx_page() {
    let env = Env::start().await;
    env.fake.set_deny_consent(true);
    let mut b = env.browser();
    let callback = b.start_login("/").await;
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("declined"));
    assert_eq!(env.fake.stats().token_authorization_code, 0);
    let r = b
        .get(&format!(
            "{}{CALLBACK}?error=server_error&state=x",
            env.gw.url
        ))
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn return_to_only_accepts_local_paths() {
    let env = Env::start().await;
    for attempt in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
    ] {
        let mut b = env.browser();
        let r = b.login(attempt).await;
        assert_eq!(r.status(), 302);
        assert_eq!(location(&r), "/auth/session", "return_to {attempt:?}");
    }
    let mut b = env.browser();
    let r = b.login("/restapi/v2.1/accounts?x=1").await;
    assert_eq!(location(&r), "/restapi/v2.1/accounts?x=1");
}

#[tokio::test]
async fn logout_deletes_the_session() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let cookie = b.cookie_header();
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with(&format!("{COOKIE_NAME}=;")) && cleared.contains("Max-Age=0"));
    // The old cookie no longer works, even if a client keeps sending it.
    let r = env
        .client
        .get(env.url("/auth/session"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // GET does nothing (a link on another site must not log anyone out).
    let b2 = env.logged_in().await;
    let r = env.get_as(&b2, "/auth/logout").await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    let r = env.get_as(&b2, "/auth/session").await;
    assert_eq!(r.status(), 200, "still logged in");
}

#[tokio::test]
async fn health_and_unknown_paths() {
    let env = Env::start().await;
    assert_eq!(
        env.client
            .get(env.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = env.client.get(env.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
}

#[tokio::test]
async fn is_default_as_string_is_honoured() {
    let mut opts = Options::default();
    // Make the second account the default.
    opts.fake.users[0].accounts[0].is_default = false;
    opts.fake.users[0].accounts[1].is_default = true;
    let env = Env::start_with(opts).await;
    env.fake.set_is_default_as_string(true);
    let b = env.logged_in().await;
    let r = env.get_as(&b, "/restapi/v2.1/whatever").await;
    let _ = r.bytes().await;
    assert_eq!(env.fake.rest_requests().pop().unwrap().host_index, 1);
}

#[tokio::test]
async fn base_uri_outside_allowed_hosts_never_gets_a_token() {
    let env = Env::start_with(Options {
        allowed_api_hosts: "[\"{rest0}\"]".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let (blocked, _) = env.accounts()[1].clone();
    let r = env
        .get_as(&b, &format!("/restapi/v2.1/accounts/{blocked}"))
        .await;
    assert_eq!(r.status(), 502);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "api_host_not_allowed");
    assert!(v["message"].as_str().unwrap().contains("allowed_api_hosts"));
    assert!(env.fake.rest_requests().is_empty());
    let (allowed, _) = env.accounts()[0].clone();
    let r = env
        .get_as(&b, &format!("/restapi/v2.1/accounts/{allowed}"))
        .await;
    assert_eq!(r.status(), 200);
}

/// Keeps the type in use for rustc when this file is compiled alone.
#[allow(dead_code)]
fn _uses(_: &FakeDocuSign) {}

#[tokio::test]
async fn logging_in_again_replaces_the_previous_session() {
    let env = Env::start().await;
    let mut b = env.logged_in().await;
    let first = b.clone();
    let r = b.login("/auth/session").await;
    assert_eq!(r.status(), 302);
    assert_ne!(
        b.cookie(COOKIE_NAME),
        first.cookie(COOKIE_NAME),
        "a fresh session id"
    );
    assert_eq!(env.get_as(&b, "/auth/session").await.status(), 200);
    assert_eq!(
        env.get_as(&first, "/auth/session").await.status(),
        401,
        "old session ended"
    );
}
