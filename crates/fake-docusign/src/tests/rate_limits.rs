//! Rate limits over HTTP: the headers, DocuSign's 429 bodies with
//! `Retry-After`, and the `/_fake/rate-limit` control.

use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

async fn set(h: &Harness, query: &str) {
    let base = h.fake.account_server_url();
    let resp = h
        .http
        .post(format!("{base}/_fake/rate-limit?{query}"))
        .send()
        .await
        .expect("control");
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn get(h: &Harness, token: &str) -> reqwest::Response {
    h.http
        .get(format!(
            "{}/restapi/v2.1/accounts/{ACCOUNT_A}",
            h.fake.rest_host_url(0)
        ))
        .bearer_auth(token)
        .send()
        .await
        .expect("rest")
}

fn header(r: &reqwest::Response, name: &str) -> u64 {
    r.headers()[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn limits_are_announced_and_enforced_per_account() {
    let h = Harness::start().await;
    let code = h.code(&[]).await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    let (_, tokens) = h.token(&grant, GOOD).await;
    let token = tokens["access_token"].as_str().expect("token").to_string();

    set(
        &h,
        &format!("account={ACCOUNT_A}&hourly=5&burst=3&remaining=1&reset_in=60"),
    )
    .await;
    let r = get(&h, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        (
            header(&r, "x-ratelimit-limit"),
            header(&r, "x-ratelimit-remaining")
        ),
        (5, 0)
    );
    assert_eq!(header(&r, "x-burstlimit-limit"), 3);
    let r = get(&h, &token).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((59..=60).contains(&header(&r, "retry-after")));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "HOURLY_APIINVOCATION_LIMIT_EXCEEDED");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .ends_with("The hourly limit is 5."));

    // The burst: a fresh hour, the window's calls used up.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 30 >= 28 {
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    set(&h, &format!("account={ACCOUNT_A}&remaining=5&burst_used=3")).await;
    let r = get(&h, &token).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "x-burstlimit-remaining"), 0);
    assert!((1..=30).contains(&header(&r, "retry-after")));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["errorCode"], "BURST_APIINVOCATION_LIMIT_EXCEEDED");
}
