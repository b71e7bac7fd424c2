//! Token lifecycle through the real gateway and the fake DocuSign: refresh
//! before expiry, refresh + replay on 401, single flight, invalid_grant and
//! token endpoint outages.

mod common;

use std::time::Duration;

use common::*;
use fake_docusign::TokenEndpointMode;
use reqwest::Response;
use serde_json::Value;

async fn api_get(env: &Env, b: &Browser, path: &str) -> Response {
    env.client
        .get(env.url(path))
        .header("Cookie", b.cookie_header())
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap()
}

fn account_path(env: &Env, i: usize) -> String {
    format!("/restapi/v2.1/accounts/{}", env.accounts()[i].0)
}

#[tokio::test]
async fn proactive_refresh_inside_the_window_only() {
    let mut opts = Options {
        session_extra: "refresh_before_expiry_secs = 2".into(),
        ..Options::default()
    };
    opts.fake.access_token_ttl = Duration::from_secs(4);
    let env = Env::start_with(opts).await;
    let b = env.logged_in().await;
    let login_token = env.fake.active_access_tokens().pop().unwrap();

    // Outside the window: forwarded with the login token, no refresh.
    assert_eq!(
        api_get(&env, &b, &account_path(&env, 0)).await.status(),
        200
    );
    assert_eq!(env.fake.stats().token_refresh, 0);
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.authorization, Some(format!("Bearer {login_token}")));

    // Inside the window: refreshed first, forwarded with the new token.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        api_get(&env, &b, &account_path(&env, 1)).await.status(),
        200
    );
    assert_eq!(env.fake.stats().token_refresh, 1);
    let rec = env.fake.rest_requests().pop().unwrap();
    assert_eq!(rec.status, 200);
    assert_ne!(rec.authorization, Some(format!("Bearer {login_token}")));
    // DocuSign never saw a refused token.
    assert!(env.fake.rest_requests().iter().all(|r| r.status == 200));
}

#[tokio::test]
async fn revoked_token_is_refreshed_and_get_replayed_invisibly() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake.revoke_access_tokens();
    let r = api_get(&env, &b, &account_path(&env, 0)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["accountIdGuid"], env.accounts()[0].0.as_str());
    assert_eq!(env.fake.stats().token_refresh, 1);
    let recs = env.fake.rest_requests();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].status, recs[1].status), (401, 200));
    assert_ne!(recs[0].authorization, recs[1].authorization);
    // The next call uses the new token directly.
    assert_eq!(
        api_get(&env, &b, &account_path(&env, 1)).await.status(),
        200
    );
    assert_eq!(env.fake.rest_requests().len(), 3);
    assert_eq!(env.fake.stats().token_refresh, 1);
}

#[tokio::test]
async fn json_post_is_replayed_byte_identical() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake.revoke_access_tokens();
    let body = format!(
        "{{\"emailSubject\":\"replay me\",\"status\":\"sent\",\"note\":\"{}\"}}",
        "x".repeat(60_000)
    );
    let r = env
        .post_json_as(&b, &format!("{}/envelopes", account_path(&env, 1)), &body)
        .await;
    assert_eq!(r.status(), 201);
    let recs = env.fake.rest_requests();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].status, 401);
    assert_eq!(recs[1].status, 201);
    for rec in &recs {
        assert_eq!(rec.method, "POST");
        assert_eq!(rec.body.as_ref(), body.as_bytes());
    }
}

#[tokio::test]
async fn post_over_64_kib_gets_docusigns_401_and_the_next_call_works() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake.revoke_access_tokens();
    let body = format!(
        "{{\"emailSubject\":\"big\",\"note\":\"{}\"}}",
        "y".repeat(70_000)
    );
    let r = env
        .post_json_as(&b, &format!("{}/envelopes", account_path(&env, 0)), &body)
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers().contains_key("x-ratelimit-limit"),
        "DocuSign's headers"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorCode"], "AUTHORIZATION_INVALID_TOKEN");
    assert_eq!(env.fake.rest_requests().len(), 1, "not replayed");
    assert_eq!(
        env.fake.stats().token_refresh,
        1,
        "but refreshed for the next call"
    );

    let r = env
        .post_json_as(&b, &format!("{}/envelopes", account_path(&env, 0)), &body)
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        env.fake.rest_requests().pop().unwrap().body.len(),
        body.len()
    );
    assert_eq!(env.fake.stats().token_refresh, 1);
}

/// Eight 25 MB envelopes at once while the access token is revoked: each
/// gets DocuSign's own 401 (too large to replay), DocuSign receives each
/// body once and whole, one refresh serves them all, and the next upload
/// goes through.
#[tokio::test]
async fn uploads_over_the_replay_buffer_under_load_get_docusigns_401_once_each() {
    const UPLOADS: usize = 8;
    const BYTES: usize = 25 * 1000 * 1000;
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake.revoke_access_tokens();
    let path = format!("{}/envelopes", account_path(&env, 0));
    let body = |i: usize| {
        let mut s = format!("{{\"emailSubject\":\"upload {i}\",\"documentBase64\":\"");
        s.extend(std::iter::repeat_n('A', BYTES - s.len() - 2));
        s.push_str("\"}");
        bytes::Bytes::from(s)
    };
    let mut tasks = Vec::new();
    for i in 0..UPLOADS {
        let (client, url, cookie) = (env.client.clone(), env.url(&path), b.cookie_header());
        let body = body(i);
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("Cookie", cookie)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("upload");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 401, "{v}");
        assert_eq!(
            v["errorCode"], "AUTHORIZATION_INVALID_TOKEN",
            "DocuSign's own 401"
        );
    }
    let seen = env.fake.rest_requests();
    assert_eq!(seen.len(), UPLOADS, "nothing replayed");
    let mut subjects: Vec<String> = seen
        .iter()
        .map(|r| {
            assert_eq!(
                r.body.len(),
                BYTES,
                "each body reached DocuSign whole, once"
            );
            String::from_utf8_lossy(&r.body[..40]).into_owned()
        })
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), UPLOADS, "each upload once");
    assert_eq!(env.fake.stats().token_refresh, 1, "one refresh for all");

    let r = env
        .client
        .post(env.url(&path))
        .header("Cookie", b.cookie_header())
        .header("Content-Type", "application/json")
        .body(body(UPLOADS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let last = env.fake.rest_requests().pop().unwrap();
    assert_eq!(last.body, body(UPLOADS));
    assert_eq!(env.fake.stats().token_refresh, 1);
}

#[tokio::test]
async fn hundred_concurrent_requests_cause_exactly_one_refresh() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(200)));
    env.fake.revoke_access_tokens();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = env.client.clone();
        let url = env.url(&account_path(&env, i % 2));
        let cookie = b.cookie_header();
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    assert_eq!(env.fake.stats().token_refresh, 1);
    let refreshes: Vec<_> = env
        .fake
        .token_requests()
        .into_iter()
        .filter(|t| t.grant_type.as_deref() == Some("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].status, 200);
    assert!(
        refreshes[0].basic_auth_valid,
        "refresh uses HTTP Basic client auth"
    );
}

#[tokio::test]
async fn sessions_refresh_in_parallel_not_behind_one_lock() {
    let env = Env::start().await;
    let mut browsers = Vec::new();
    for _ in 0..6 {
        browsers.push(env.logged_in().await);
    }
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(700)));
    env.fake.revoke_access_tokens();
    let mut tasks = Vec::new();
    for b in &browsers {
        let client = env.client.clone();
        let url = env.url(&account_path(&env, 0));
        let cookie = b.cookie_header();
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .header("Cookie", cookie)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
    let stats = env.fake.stats();
    assert_eq!(stats.token_refresh, 6, "one refresh per session");
    // While one refresh was held up at DocuSign, the others were in flight too.
    assert!(
        stats.max_concurrent_token_requests >= 2,
        "refreshes of different sessions overlapped: {stats:?}"
    );
}

#[tokio::test]
async fn invalid_grant_ends_the_session() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    let b2 = env.logged_in().await;
    env.fake.revoke_refresh_tokens();
    env.fake.revoke_access_tokens();

    let r = api_get(&env, &b, &account_path(&env, 0)).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "login_required");
    let r = api_get(&env, &b, "/auth/session").await;
    assert_eq!(r.status(), 401, "session deleted");

    // A browser gets sent to login instead.
    let r = env
        .client
        .get(env.url(&account_path(&env, 1)))
        .header("Cookie", b2.cookie_header())
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).contains("/auth/login?return_to="));
}

#[tokio::test]
async fn token_endpoint_down_is_503_then_recovers() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    env.fake.set_token_endpoint(TokenEndpointMode::ServerError);
    env.fake.revoke_access_tokens();

    let r = api_get(&env, &b, &account_path(&env, 0)).await;
    assert_eq!(r.status(), 503);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "docusign_unavailable");
    // Session kept.
    assert_eq!(api_get(&env, &b, "/auth/session").await.status(), 200);
    // During the back-off the endpoint is not hammered.
    assert_eq!(
        api_get(&env, &b, &account_path(&env, 0)).await.status(),
        503
    );
    assert_eq!(env.fake.stats().token_refresh, 1);

    env.fake.set_token_endpoint(TokenEndpointMode::Normal);
    tokio::time::sleep(Duration::from_secs(retry_after) + Duration::from_millis(100)).await;
    assert_eq!(
        api_get(&env, &b, &account_path(&env, 0)).await.status(),
        200
    );
    assert_eq!(env.fake.stats().token_refresh, 2);
}

#[tokio::test]
async fn slow_token_endpoint_times_out_into_503() {
    let env = Env::start_with(Options {
        docusign_extra: "request_timeout_secs = 1".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_secs(3)));
    env.fake.revoke_access_tokens();
    let r = api_get(&env, &b, &account_path(&env, 0)).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(api_get(&env, &b, "/auth/session").await.status(), 200);
}

#[tokio::test]
async fn session_cookie_never_outlives_the_refresh_token() {
    let env = Env::start_with(Options {
        session_extra: "ttl_secs = 100000".into(),
        docusign_extra: "refresh_token_ttl_secs = 500".into(),
        ..Options::default()
    })
    .await;
    let mut b = env.browser();
    let r = b.login("/").await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .unwrap();
    assert!(cookie.contains("Max-Age=500"), "{cookie}");
    let r = api_get(&env, &b, "/auth/session").await;
    let v: Value = r.json().await.unwrap();
    let expires = v["session_expires_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires <= now + 500);
}

#[tokio::test]
async fn repeated_401s_on_a_young_token_cost_no_refresh_grant() {
    let env = Env::start_with(Options {
        session_extra: "min_refresh_interval_secs = 60".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    env.fake.revoke_access_tokens();
    for _ in 0..20 {
        let r = api_get(&env, &b, &account_path(&env, 0)).await;
        assert_eq!(r.status(), 401, "DocuSign's own 401 passes through");
    }
    assert_eq!(env.fake.stats().token_refresh, 0, "20 401s, no grant");
    assert_eq!(api_get(&env, &b, "/auth/session").await.status(), 200);
}
