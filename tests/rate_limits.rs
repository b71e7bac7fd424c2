//! DocuSign's rate limits through the real gateway and the fake DocuSign:
//! headers read and shown, the gateway's own 429 at the reserve (nothing
//! forwarded), recovery after the reset, `session_hourly` per session, and
//! DocuSign's own 429 passed through.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{free_port, scrape, Browser, Env, Options};
use fake_docusign::{AccountLimits, ResetFormat};
use reqwest::Response;
use serde_json::Value;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn limits(extra: &str) -> Options {
    Options {
        extra_toml: format!("[limits]\n{extra}"),
        ..Options::default()
    }
}

async fn call(env: &Env, b: &Browser, account: &str) -> Response {
    env.get_as(b, &format!("/restapi/v2.1/accounts/{account}"))
        .await
}

/// Checks the gateway's own 429 and returns its `Retry-After`.
async fn own_429(r: Response, reason: &str) -> u64 {
    assert_eq!(r.status(), 429);
    assert!(
        r.headers().get("x-ratelimit-limit").is_none(),
        "an answer of the gateway, not DocuSign's"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["reason"], reason);
    let reset_at = body["reset_at"].as_u64().unwrap();
    let now = now_unix();
    assert!(
        reset_at + 1 >= now + retry && reset_at <= now + retry + 1,
        "{body}"
    );
    retry
}

/// The `rate_limit` that `/auth/session` shows for `account`.
async fn rate_of(env: &Env, b: &Browser, account: &str) -> Value {
    let info: Value = env.get_as(b, "/auth/session").await.json().await.unwrap();
    let accounts = info["accounts"].as_array().unwrap();
    let found = accounts.iter().find(|a| a["account_id"] == account);
    found.expect("the account is listed")["rate_limit"].clone()
}

fn metric(text: &str, name: &str, account: &str) -> Option<f64> {
    let prefix = format!("{name}{{account=\"{account}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// The metrics of `account` after one call with limits 100 / 50.
async fn assert_metrics(env: &Env, port: u16, account: &str) {
    let text = scrape(&env.client, port).await;
    let label = account.to_ascii_lowercase();
    assert_eq!(
        metric(&text, "dsgw_docusign_ratelimit_remaining", &label),
        Some(99.0)
    );
    assert_eq!(
        metric(&text, "dsgw_docusign_ratelimit_limit", &label),
        Some(100.0)
    );
    assert_eq!(
        metric(&text, "dsgw_docusign_burstlimit_remaining", &label),
        Some(49.0)
    );
}

#[tokio::test]
async fn headers_are_read_per_account_and_shown() {
    let port = free_port();
    let env = Env::start_with(Options {
        server_extra: format!("metrics_listen = \"127.0.0.1:{port}\""),
        ..Options::default()
    })
    .await;
    let (a0, a1) = (env.accounts()[0].0.clone(), env.accounts()[1].0.clone());
    let hourly_limit = AccountLimits {
        hourly: 100,
        burst: 50,
    };
    env.fake.set_rate_limits(Some(&a0), hourly_limit);
    let b = env.logged_in().await;
    let r = call(&env, &b, &a0).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit"], "100");
    assert_eq!(r.headers()["x-ratelimit-remaining"], "99");
    assert_eq!(r.headers()["x-burstlimit-remaining"], "49");
    let reset = (now_unix() / 3600 + 1) * 3600;

    let info: Value = env.get_as(&b, "/auth/session").await.json().await.unwrap();
    let accounts = info["accounts"].as_array().unwrap();
    let of = |id: &str| accounts.iter().find(|a| a["account_id"] == id).unwrap();
    let rate = &of(&a0)["rate_limit"];
    assert_eq!(
        (rate["limit"].as_u64(), rate["remaining"].as_u64()),
        (Some(100), Some(99))
    );
    assert_eq!(rate["burst_limit"], 50);
    let reset_at = rate["reset_at"].as_u64().unwrap();
    assert!(reset_at == reset || reset_at + 3600 == reset, "{rate}");
    assert!(of(&a1)["rate_limit"].is_null(), "no answer seen yet");

    // A reset written as seconds from now is read as a time.
    env.fake.set_reset_format(ResetFormat::SecondsFromNow);
    let r = call(&env, &b, &a1).await;
    let secs: u64 = r.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs <= 3600);
    let rate = rate_of(&env, &b, &a1).await;
    let reset_at = rate["reset_at"].as_u64().unwrap();
    assert!(reset_at.abs_diff(now_unix() + secs) <= 2, "{rate}");

    assert_metrics(&env, port, &a0).await;
}

#[tokio::test]
async fn the_gateway_answers_429_at_the_reserve_until_the_reset() {
    let env = Env::start_with(limits("hourly_reserve = 2")).await;
    let (a0, a1) = (env.accounts()[0].0.clone(), env.accounts()[1].0.clone());
    let b = env.logged_in().await;
    env.fake.set_rate_window(&a0, 4, Duration::from_secs(4));
    assert_eq!(call(&env, &b, &a0).await.status(), 200); // 3 left
    let r = call(&env, &b, &a0).await; // 2 left: at the reserve
    assert_eq!(r.headers()["x-ratelimit-remaining"], "2");

    let forwarded = env.fake.rest_requests().len();
    let retry = own_429(call(&env, &b, &a0).await, "docusign_hourly").await;
    assert!((1..=4).contains(&retry), "Retry-After {retry}");
    let (token, _) = env.mint_token(&b).await;
    let r = env
        .client
        .get(env.url(&format!("/restapi/v2.1/accounts/{a0}/envelopes")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    own_429(r, "docusign_hourly").await;
    assert_eq!(
        env.fake.rest_requests().len(),
        forwarded,
        "nothing forwarded"
    );
    // Another account of the same user is not affected.
    assert_eq!(call(&env, &b, &a1).await.status(), 200);

    // From the reset on, calls go through again.
    tokio::time::sleep(Duration::from_secs(retry + 1)).await;
    let r = call(&env, &b, &a0).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "999");
}

#[tokio::test]
async fn session_hourly_limits_one_session_and_not_another() {
    let env = Env::start_with(limits("session_hourly = 3")).await;
    let a0 = env.accounts()[0].0.clone();
    let first = env.logged_in().await;
    let second = env.logged_in().await;
    for _ in 0..3 {
        assert_eq!(call(&env, &first, &a0).await.status(), 200);
    }
    let forwarded = env.fake.rest_requests().len();
    let retry = own_429(call(&env, &first, &a0).await, "session_hourly").await;
    assert!((3540..=3660).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        env.fake.rest_requests().len(),
        forwarded,
        "nothing forwarded"
    );
    // The same account, another session: goes on.
    assert_eq!(call(&env, &second, &a0).await.status(), 200);
}

#[tokio::test]
async fn docusigns_own_429_passes_through_and_is_recorded() {
    let env = Env::start().await;
    let a0 = env.accounts()[0].0.clone();
    let b = env.logged_in().await;
    env.fake.set_rate_window(&a0, 0, Duration::from_secs(30));
    let forwarded = env.fake.rest_requests().len();
    let r = call(&env, &b, &a0).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "HOURLY_APIINVOCATION_LIMIT_EXCEEDED");
    assert_eq!(env.fake.rest_requests().len(), forwarded + 1);
    // From now on the gateway answers itself.
    own_429(call(&env, &b, &a0).await, "docusign_hourly").await;
    assert_eq!(env.fake.rest_requests().len(), forwarded + 1);
    let rate = rate_of(&env, &b, &a0).await;
    assert!(
        rate["last_429_at"].as_u64().unwrap() + 5 >= now_unix(),
        "{rate}"
    );
    assert_eq!(rate["remaining"], 0);
}

#[tokio::test]
async fn a_used_up_burst_is_docusigns_429_then_the_gateways() {
    let env = Env::start().await;
    let a0 = env.accounts()[0].0.clone();
    let b = env.logged_in().await;
    // Keep both calls inside one 30-second window.
    let into_window = now_unix() % 30;
    if into_window > 24 {
        tokio::time::sleep(Duration::from_secs(31 - into_window)).await;
    }
    env.fake
        .set_burst_used(&a0, fake_docusign::DEFAULT_BURST_LIMIT);
    let r = call(&env, &b, &a0).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["x-burstlimit-remaining"], "0");
    let forwarded = env.fake.rest_requests().len();
    let retry = own_429(call(&env, &b, &a0).await, "docusign_burst").await;
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(env.fake.rest_requests().len(), forwarded);
}

/// With the Redis store every instance counts a session's calls in Redis:
/// calls spread over two instances add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_hourly_is_shared_by_every_instance_with_redis() {
    // `[limits]` rides on the `[docusign]` extra lines (a table of its own).
    let env = common::multi::Instances::start(2, "[limits]\nsession_hourly = 3\n").await;
    let b = env.logged_in().await;
    let path = env.account_path();
    for i in 0..3 {
        let r = env.get_as(i % 2, &b, &path).await;
        assert_eq!(r.status(), 200, "call {i} on instance {}", i % 2);
    }
    let forwarded = env.fake.rest_requests().len();
    for i in 0..2 {
        own_429(env.get_as(i, &b, &path).await, "session_hourly").await;
    }
    assert_eq!(
        env.fake.rest_requests().len(),
        forwarded,
        "nothing forwarded"
    );
    let keys = env.redis.keys();
    assert!(keys.iter().any(|k| k.ends_with(":calls")), "{keys:?}");
}
