//! Scoped gateway tokens (`POST /auth/token` with a JSON body), the token
//! registry (`GET /auth/tokens`, `DELETE /auth/tokens/{id}`), its bound,
//! and revocation seen by every instance.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::header::COOKIE;
use reqwest::Response;
use serde_json::{json, Value};

const ONE: &str = "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";
const TWO: &str = "c2b7e8f1-5d6a-4b3c-8e9f-0a1b2c3d4e5f";

fn envelopes(account: &str) -> String {
    format!("/restapi/v2.1/accounts/{account}/envelopes")
}

async fn mint(env: &Env, b: &Browser, body: Value) -> Response {
    env.post_json_as(b, "/auth/token", &body.to_string()).await
}

async fn minted(env: &Env, b: &Browser, body: Value) -> Value {
    let r = mint(env, b, body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn call(env: &Env, method: &str, token: &str, path: &str) -> Response {
    env.client
        .request(method.parse().unwrap(), env.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(if method == "POST" { "{}" } else { "" })
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_read_only_token_for_one_account_stays_inside_its_scope() {
    let port = free_port();
    let env = Env::start_with(Options {
        server_extra: format!("metrics_listen = \"127.0.0.1:{port}\""),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let v = minted(
        &env,
        &b,
        json!({"name": "crm-hook", "ttl_secs": 3600, "accounts": [ONE.to_uppercase()],
               "methods": ["get", "HEAD"], "paths": ["/restapi/v2.1/accounts/*/envelopes/**"]}),
    )
    .await;
    let token = v["token"].as_str().unwrap().to_string();
    assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(v["name"], "crm-hook");
    assert_eq!(
        v["scope"],
        json!({"accounts": [ONE], "methods": ["GET", "HEAD"],
               "paths": ["/restapi/v2.1/accounts/*/envelopes/**"]})
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = v["expires_at"].as_u64().unwrap();
    assert!((now + 3590..=now + 3601).contains(&exp), "{exp}");

    assert_eq!(
        call(&env, "GET", &token, &envelopes(ONE)).await.status(),
        200
    );
    let inside = format!("{}/e-1", envelopes(ONE));
    let r = call(&env, "GET", &token, &inside).await;
    assert_ne!(r.status(), 403, "inside the scope");

    let before = env.fake.rest_requests().len();
    for (method, path, outside) in [
        ("GET", envelopes(TWO), "account"),
        ("POST", envelopes(ONE), "method"),
        ("DELETE", envelopes(ONE), "method"),
        ("GET", format!("/restapi/v2.1/accounts/{ONE}/users"), "path"),
        ("GET", format!("/restapi/v2.1/accounts/{ONE}"), "path"),
    ] {
        let r = call(&env, method, &token, &path).await;
        assert_eq!(r.status(), 403, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "token_scope", "{method} {path}");
        assert_eq!(v["outside"], outside, "{method} {path}");
        assert!(v["message"].is_string());
    }
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");
    let metrics = scrape(&env.client, port).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("dsgw_requests_total")
            && l.contains("class=\"rejected\"")
            && l.contains("status=\"403\"")
            && l.ends_with(" 5")),
        "{metrics}"
    );

    // Inside the scope, DocuSign's 401 is refreshed and replayed as ever.
    env.fake.revoke_access_tokens();
    assert_eq!(
        call(&env, "GET", &token, &envelopes(ONE)).await.status(),
        200
    );

    // /auth/session shows the token beside the session.
    let r = call(&env, "GET", &token, "/auth/session").await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token"]["name"], "crm-hook");
    assert_eq!(v["token"]["expires_at"], exp);
    assert_eq!(v["token"]["scope"]["methods"], json!(["GET", "HEAD"]));
    assert!(v["token"]["id"].is_string());
    assert!(v["accounts"].is_array());
    // The cookie shows no token.
    let v: Value = env.get_as(&b, "/auth/session").await.json().await.unwrap();
    assert!(v["token"].is_null(), "{v}");

    let logs = env.gw.logs_with("token_minted").await;
    assert!(logs.contains("token_minted event=token_minted"), "{logs}");
    assert!(logs.contains("by=\"browser\""), "{logs}");
    assert!(!logs.contains(&token), "no token value in the logs");
}

#[tokio::test]
async fn a_scope_can_only_narrow() {
    let env = Env::start().await;
    let b = env.logged_in().await;
    for (body, field) in [
        (json!({"nmae": "x"}), "nmae"),
        (json!({"name": "no/slash"}), "name"),
        (json!({"name": "x".repeat(65)}), "name"),
        (
            json!({"accounts": ["00000000-0000-0000-0000-000000000000"]}),
            "accounts",
        ),
        (json!({"methods": ["TRACE"]}), "methods"),
        (json!({"methods": ["CONNECT"]}), "methods"),
        (json!({"paths": ["/restapi/**/envelopes"]}), "paths"),
        (json!({"paths": ["restapi"]}), "paths"),
        (json!({"ttl_secs": 0}), "ttl_secs"),
        (json!({"ttl_secs": 40 * 24 * 3600}), "ttl_secs"),
        (json!({"ttl_secs": -5}), "ttl_secs"),
    ] {
        let r = mint(&env, &b, body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_scope", "{body}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    let r = env.post_json_as(&b, "/auth/token", "not json").await;
    assert_eq!(r.status(), 400);
    // No body, as before: the whole session.
    let (token, _) = env.mint_token(&b).await;
    assert_eq!(
        call(&env, "GET", &token, &envelopes(TWO)).await.status(),
        200
    );
    // A token still cannot mint another, scoped or not.
    let r = env
        .client
        .post(env.url("/auth/token"))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"methods":["GET"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A body past the bound is refused.
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(20_000));
    let r = env.post_json_as(&b, "/auth/token", &huge).await;
    assert_eq!(r.status(), 413);
}

async fn tokens_of(env: &Env, b: &Browser) -> Vec<Value> {
    let r = env.get_as(b, "/auth/tokens").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    v["tokens"].as_array().unwrap().clone()
}

async fn delete_token(env: &Env, b: &Browser, id: &str, origin: Option<&str>) -> u16 {
    let mut r = env
        .client
        .delete(env.url(&format!("/auth/tokens/{id}")))
        .header(COOKIE, b.cookie_header());
    if let Some(origin) = origin {
        r = r.header("Origin", origin);
    }
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn tokens_are_listed_revoked_one_by_one_and_bounded() {
    let env = Env::start_with(Options {
        session_extra: "max_tokens_per_session = 3".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let first = minted(&env, &b, json!({"name": "first"})).await;
    let second = minted(&env, &b, json!({"name": "second", "methods": ["GET"]})).await;
    let (t1, t2) = (
        first["token"].as_str().unwrap().to_string(),
        second["token"].as_str().unwrap().to_string(),
    );
    let listed = tokens_of(&env, &b).await;
    assert_eq!(listed.len(), 2);
    let body = serde_json::to_string(&listed).unwrap();
    assert!(!body.contains(&t1) && !body.contains(&t2), "never a value");
    let entry = listed.iter().find(|t| t["id"] == second["id"]).unwrap();
    assert_eq!(entry["name"], "second");
    assert_eq!(entry["scope"], json!({"methods": ["GET"]}));
    assert!(entry["issued_at"].as_u64().is_some());
    assert_eq!(entry["expires_at"], second["expires_at"]);
    // A token of the session lists them too.
    let r = call(&env, "GET", &t2, "/auth/tokens").await;
    assert_eq!(r.status(), 200);

    // The bound: a third, then 409, nothing evicted.
    let third = minted(&env, &b, json!({})).await;
    let r = mint(&env, &b, json!({"name": "fourth"})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "too_many_tokens");
    assert_eq!(tokens_of(&env, &b).await.len(), 3);

    // Revoking: cross-site refused, then 204, then 404.
    let id1 = first["id"].as_str().unwrap();
    assert_eq!(
        delete_token(&env, &b, id1, Some("http://evil.example")).await,
        403
    );
    assert_eq!(call(&env, "GET", &t1, &envelopes(ONE)).await.status(), 200);
    // A token cannot revoke.
    let r = env
        .client
        .delete(env.url(&format!("/auth/tokens/{id1}")))
        .header("Authorization", format!("Bearer {t2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(delete_token(&env, &b, id1, None).await, 204);
    assert_eq!(delete_token(&env, &b, id1, None).await, 404);
    assert_eq!(delete_token(&env, &b, "0123abcd", None).await, 404);
    assert_eq!(delete_token(&env, &b, "not-an-id", None).await, 404);
    let before = env.fake.rest_requests().len();
    let r = call(&env, "GET", &t1, &envelopes(ONE)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "login_required");
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");
    // The session and its other tokens go on; the place is free again.
    assert_eq!(call(&env, "GET", &t2, &envelopes(ONE)).await.status(), 200);
    assert_eq!(env.get_as(&b, &envelopes(ONE)).await.status(), 200);
    assert_eq!(tokens_of(&env, &b).await.len(), 2);
    assert_eq!(mint(&env, &b, json!({})).await.status(), 200);

    let logs = env.gw.logs_with("token_revoked").await;
    let revoked = format!("token_id=\"{id1}\"");
    assert!(
        logs.lines()
            .any(|l| l.contains("token_revoked event=token_revoked") && l.contains(&revoked)),
        "{logs}"
    );

    // Logout ends every token.
    let t3 = third["token"].as_str().unwrap();
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for t in [t2.as_str(), t3] {
        assert_eq!(call(&env, "GET", t, &envelopes(ONE)).await.status(), 401);
    }
}

/// Revoked on one instance, refused on the other within a second; scopes
/// hold on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_every_instance_within_a_second() {
    let env = common::multi::Instances::start(2, "").await;
    let b = env.logged_in().await;
    let post = |i: usize, body: Value| {
        env.client
            .post(env.url(i, "/auth/token"))
            .header(COOKIE, b.cookie_header())
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
    };
    let v: Value = post(0, json!({"name": "a", "methods": ["GET"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (token, id) = (v["token"].as_str().unwrap(), v["id"].as_str().unwrap());
    let other: Value = post(0, json!({})).await.unwrap().json().await.unwrap();
    let other = other["token"].as_str().unwrap();
    let get = |i: usize, t: &str, method: &str| {
        env.client
            .request(method.parse().unwrap(), env.url(i, &envelopes(ONE)))
            .header("Authorization", format!("Bearer {t}"))
            .send()
    };
    // Warm both instances' caches, and the scope holds on both.
    for i in 0..2 {
        assert_eq!(get(i, token, "GET").await.unwrap().status(), 200);
        assert_eq!(get(i, token, "DELETE").await.unwrap().status(), 403);
    }
    // Warm, a proxied call with a gateway token makes no Redis call: 40 of
    // them cost less than the 80 reads (session, registry) they would.
    let commands = || {
        let info = env.redis.cli_text(&["INFO", "stats"]);
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("total_commands_processed")
    };
    let before = commands();
    for _ in 0..20 {
        for i in 0..2 {
            assert_eq!(get(i, token, "GET").await.unwrap().status(), 200);
        }
    }
    let spent = commands() - before;
    // The INFO calls, and each instance's periodic count of sessions.
    assert!(spent <= 6, "{spent} Redis commands for 40 warm calls");
    let r = env
        .client
        .delete(env.url(0, &format!("/auth/tokens/{id}")))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = get(1, token, "GET").await.unwrap().status();
        if status == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance 1 still answers {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(0, token, "GET").await.unwrap().status(), 401);
    for i in 0..2 {
        assert_eq!(get(i, other, "GET").await.unwrap().status(), 200);
    }
    let listed: Value = env
        .get_as(1, &b, "/auth/tokens")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "{listed}");
}
