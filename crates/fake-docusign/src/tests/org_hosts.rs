//! The Click routes on the REST hosts and the Admin and api.docusign.com
//! hosts: each checks `Host` and the bearer token, answers its member's
//! resources and refuses others'.

use super::*;

async fn access_token(h: &Harness) -> String {
    let code = h.code(&[]).await;
    let (status, tokens) = h
        .token(
            &[("grant_type", "authorization_code"), ("code", &code)],
            GOOD,
        )
        .await;
    assert_eq!(status, 200);
    tokens["access_token"].as_str().expect("access").to_string()
}

async fn get(h: &Harness, url: &str, token: &str) -> (u16, Value) {
    let resp = h
        .http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn click_lists_creates_and_gets_clickwraps_of_members_only() {
    let h = Harness::start().await;
    let token = access_token(&h).await;
    let base = format!(
        "{}/clickapi/v1/accounts/{ACCOUNT_A}/clickwraps",
        h.fake.rest_host_url(0)
    );
    let (status, list) = get(&h, &base, &token).await;
    assert_eq!(
        (status, list["clickwraps"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let resp = h
        .http
        .post(&base)
        .bearer_auth(&token)
        .json(&serde_json::json!({"clickwrapName": "Terms"}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.expect("json");
    assert_eq!(created["clickwrapName"], "Terms");
    assert_eq!(created["clickwrapVersionId"], created["versionId"]);
    let id = created["clickwrapId"].as_str().expect("id");
    let (status, one) = get(&h, &format!("{base}/{id}"), &token).await;
    assert_eq!(
        (status, &one["clickwrapId"]),
        (200, &created["clickwrapId"])
    );
    let (status, _) = get(&h, &format!("{base}/not-there"), &token).await;
    assert_eq!(status, 404);
    let resp = h
        .http
        .post(&base)
        .bearer_auth(&token)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Account B lives on the other REST host; a stranger's account nowhere.
    let wrong_host = format!(
        "{}/clickapi/v1/accounts/{ACCOUNT_B}/clickwraps",
        h.fake.rest_host_url(0)
    );
    assert_ne!(get(&h, &wrong_host, &token).await.0, 200);
    let stranger = format!(
        "{}/clickapi/v1/accounts/00000000-0000-4000-8000-000000000000/clickwraps",
        h.fake.rest_host_url(0)
    );
    let (status, body) = get(&h, &stranger, &token).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (400, &Value::from("USER_LACKS_MEMBERSHIP"))
    );
    h.fake.revoke_access_tokens();
    assert_eq!(get(&h, &base, &token).await.0, 401);
}

#[tokio::test]
async fn the_admin_host_answers_its_members_organizations() {
    let h = Harness::start().await;
    let token = access_token(&h).await;
    let admin = h.fake.admin_api_url();
    let (status, orgs) = get(&h, &format!("{admin}/v2/organizations"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(orgs["organizations"][0]["id"], DEMO_ORGANIZATION_ID);
    // The Admin SDK's production spelling, and v2.1.
    let base = admin.replace("/management", "/Management");
    let (status, users) = get(
        &h,
        &format!("{base}/v2.1/organizations/{DEMO_ORGANIZATION_ID}/users"),
        &token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(users["users"][0]["email"], "demo.user@example.com");
    let other = format!("{admin}/v2/organizations/11111111-2222-4333-8444-555555555555");
    assert_eq!(get(&h, &other, &token).await.0, 403);
    assert_eq!(get(&h, &format!("{admin}/v2/nothing"), &token).await.0, 404);
    // Another Host, no token, a dead token.
    let resp = h
        .http
        .get(format!("{admin}/v2/organizations"))
        .header("Host", "api-d.docusign.net")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h
        .http
        .get(format!("{admin}/v2/organizations"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    h.fake.revoke_access_tokens();
    assert_eq!(
        get(&h, &format!("{admin}/v2/organizations"), &token)
            .await
            .0,
        401
    );
    let seen = h.fake.admin_requests();
    assert_eq!(seen.len(), 7, "every request recorded");
    assert_eq!(seen.last().map(|r| r.status), Some(401));
}

#[tokio::test]
async fn the_platform_host_answers_monitor_and_navigator() {
    let h = Harness::start().await;
    let token = access_token(&h).await;
    let platform = h.fake.platform_api_url();
    let (status, stream) = get(
        &h,
        &format!("{platform}/v1/organizations/{DEMO_ORGANIZATION_ID}/stream?limit=10"),
        &token,
    )
    .await;
    assert_eq!(
        (status, stream["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let agreements = format!("{platform}/v1/accounts/{ACCOUNT_A}/agreements");
    let (status, list) = get(&h, &agreements, &token).await;
    assert_eq!(status, 200);
    let id = list["data"][0]["id"]
        .as_str()
        .expect("agreement id")
        .to_string();
    assert_eq!(get(&h, &format!("{agreements}/{id}"), &token).await.0, 200);
    let stranger =
        format!("{platform}/v1/accounts/00000000-0000-4000-8000-000000000000/agreements");
    assert_eq!(get(&h, &stranger, &token).await.0, 403);
    h.fake.revoke_access_tokens();
    assert_eq!(get(&h, &agreements, &token).await.0, 401);
    assert_eq!(h.fake.platform_requests().len(), 5);
}
