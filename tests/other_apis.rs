//! DocuSign's other APIs behind the same login (`docusign.apis`): Click on
//! the account's REST host, Admin and the api.docusign.com family on their
//! fixed hosts, each through the session cookie and a gateway token, with
//! the 401 refresh and replay, the account and organization checks, and
//! nothing at all for an API that is not enabled.

mod common;

use common::*;
use fake_docusign::{RecordedRequest, DEMO_ORGANIZATION_ID};
use serde_json::Value;

const ONE: &str = "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";
const FOREIGN: &str = "0f0f0f0f-0000-4000-8000-000000000000";
const FOREIGN_ORG: &str = "11111111-2222-4333-8444-555555555555";

const ALL_APIS: &str = r#"apis = ["esignature", "click", "admin", "platform"]
admin_api_url = "{admin_api_url}"
platform_api_url = "{platform_api_url}"
"#;

async fn start(extra_toml: &str, metrics: Option<u16>) -> Env {
    Env::start_with(Options {
        docusign_extra: ALL_APIS.into(),
        extra_toml: extra_toml.into(),
        server_extra: metrics
            .map(|p| format!("metrics_listen = \"127.0.0.1:{p}\""))
            .unwrap_or_default(),
        ..Options::default()
    })
    .await
}

/// Which of the fake's hosts a route reaches.
#[derive(Clone, Copy, Debug)]
enum Upstream {
    Rest,
    Admin,
    Platform,
}

/// One GET route of each non-eSignature API, with the host it belongs on.
fn routes() -> Vec<(String, Upstream)> {
    vec![
        (
            format!("/clickapi/v1/accounts/{ONE}/clickwraps?page_number=1"),
            Upstream::Rest,
        ),
        ("/management/v2/organizations".into(), Upstream::Admin),
        (
            // The Admin SDK's production spelling.
            format!("/Management/v2/organizations/{DEMO_ORGANIZATION_ID}/users"),
            Upstream::Admin,
        ),
        (
            format!("/v1/organizations/{DEMO_ORGANIZATION_ID}/stream?limit=10"),
            Upstream::Platform,
        ),
        (
            format!("/v1/accounts/{ONE}/agreements?limit=5"),
            Upstream::Platform,
        ),
    ]
}

fn received(env: &Env, upstream: Upstream) -> Vec<RecordedRequest> {
    match upstream {
        Upstream::Rest => env.fake.rest_requests(),
        Upstream::Admin => env.fake.admin_requests(),
        Upstream::Platform => env.fake.platform_requests(),
    }
}

fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or_default().to_string()
}

/// The `Host` each fake host insists on.
fn expected_host(env: &Env, upstream: Upstream) -> String {
    match upstream {
        Upstream::Rest => authority(&env.fake.rest_host_url(0)),
        Upstream::Admin => authority(&env.fake.admin_api_url()),
        Upstream::Platform => authority(&env.fake.platform_api_url()),
    }
}

/// The last request `upstream` received, which must be `path` as sent,
/// with its own Host, DocuSign's bearer token and no gateway secret.
fn assert_forwarded(env: &Env, upstream: Upstream, path: &str, not_in_it: &[&str]) {
    let rec = received(env, upstream)
        .pop()
        .unwrap_or_else(|| panic!("{path}: nothing reached {upstream:?}"));
    assert_eq!(rec.path_and_query, path, "path and query unchanged");
    assert_eq!(
        rec.host_header.as_deref(),
        Some(expected_host(env, upstream).as_str()),
        "{path}: Host"
    );
    let auth = rec.authorization.unwrap_or_default();
    assert!(auth.starts_with("Bearer "), "{path}: bearer token");
    assert!(
        env.fake
            .active_access_tokens()
            .iter()
            .any(|t| auth == format!("Bearer {t}")),
        "{path}: DocuSign's live access token"
    );
    assert!(rec.cookie.is_none(), "{path}: no cookie upstream");
    for secret in not_in_it {
        assert!(
            !rec.headers.iter().any(|(_, v)| v.contains(secret)),
            "{path}: the gateway's credential reached DocuSign"
        );
    }
    assert_eq!(rec.status, 200, "{path}: the fake answered 200");
}

#[tokio::test]
async fn every_api_answers_through_the_cookie_and_a_gateway_token() {
    let env = start("", None).await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let session_cookie = b.cookie(COOKIE_NAME).expect("session cookie");
    for (path, upstream) in routes() {
        let r = env.get_as(&b, &path).await;
        assert_eq!(r.status(), 200, "{path} with the cookie");
        let v: Value = r.json().await.expect("JSON");
        assert!(v.is_object(), "{path}: DocuSign's JSON");
        assert_forwarded(&env, upstream, &path, &[&session_cookie, &token]);

        let r = env.get_with_token(&token, &path).await;
        assert_eq!(r.status(), 200, "{path} with a gateway token");
        assert_forwarded(&env, upstream, &path, &[&session_cookie, &token]);
    }
    // A POST with a body on Click, as the Click SDK creates a clickwrap.
    let r = env
        .client
        .post(env.url(&format!("/clickapi/v1/accounts/{ONE}/clickwraps")))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"clickwrapName":"Terms of service"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["clickwrapName"], "Terms of service");
    let id = created["clickwrapId"].as_str().expect("id");
    let r = env
        .get_as(&b, &format!("/clickapi/v1/accounts/{ONE}/clickwraps/{id}"))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn docusigns_401_is_refreshed_and_replayed_on_every_api() {
    let env = start("", None).await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    for (i, (path, upstream)) in routes().into_iter().enumerate() {
        env.fake.revoke_access_tokens();
        let before = received(&env, upstream).len();
        let r = if i % 2 == 0 {
            env.get_as(&b, &path).await
        } else {
            env.get_with_token(&token, &path).await
        };
        assert_eq!(r.status(), 200, "{path}: replayed after the refresh");
        assert_eq!(env.fake.stats().token_refresh, i as u64 + 1, "{path}");
        let seen = received(&env, upstream);
        assert_eq!(seen.len(), before + 2, "{path}: the 401, then the replay");
        assert_eq!(seen[before].status, 401, "{path}: DocuSign's 401 first");
        assert_forwarded(&env, upstream, &path, &[&token]);
    }
}

#[tokio::test]
async fn accounts_not_the_sessions_are_refused_before_any_host() {
    let env = start("", None).await;
    let b = env.logged_in().await;
    let (rest, platform) = (
        env.fake.rest_requests().len(),
        env.fake.platform_requests().len(),
    );
    for path in [
        format!("/clickapi/v1/accounts/{FOREIGN}/clickwraps"),
        format!("/v1/accounts/{FOREIGN}/agreements"),
    ] {
        let r = env.get_as(&b, &path).await;
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "account_not_permitted", "{path}");
    }
    assert_eq!(env.fake.rest_requests().len(), rest);
    assert_eq!(env.fake.platform_requests().len(), platform);
    // Not logged in: 401 on every API, nothing forwarded.
    for (path, _) in routes() {
        let r = env.client.get(env.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a session");
    }
    assert!(env.fake.admin_requests().is_empty());
    assert_eq!(env.fake.platform_requests().len(), platform);
}

#[tokio::test]
async fn an_api_not_enabled_is_404_and_its_host_hears_nothing() {
    // The default: eSignature only, even with the hosts configured.
    let env = Env::start_with(Options {
        docusign_extra:
            "admin_api_url = \"{admin_api_url}\"\nplatform_api_url = \"{platform_api_url}\"\n"
                .into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let rest = env.fake.rest_requests().len();
    for (path, _) in routes() {
        for r in [
            env.get_as(&b, &path).await,
            env.get_with_token(&token, &path).await,
        ] {
            assert_eq!(r.status(), 404, "{path}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "not_found", "{path}");
        }
    }
    assert_eq!(env.fake.rest_requests().len(), rest, "no Click call");
    assert!(env.fake.admin_requests().is_empty());
    assert!(env.fake.platform_requests().is_empty());
    // eSignature still works.
    let r = env
        .get_as(&b, &format!("/restapi/v2.1/accounts/{ONE}"))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn allowed_organizations_refuse_other_organizations() {
    let env = start(
        &format!("[access]\nallowed_organizations = [\"{DEMO_ORGANIZATION_ID}\"]\n"),
        None,
    )
    .await;
    let b = env.logged_in().await;
    for path in [
        format!("/management/v2/organizations/{FOREIGN_ORG}/users"),
        format!("/management/v2.1/organizations/{FOREIGN_ORG}"),
        format!("/v1/organizations/{FOREIGN_ORG}/stream"),
    ] {
        let r = env.get_as(&b, &path).await;
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "organization_not_permitted", "{path}");
    }
    assert!(env.fake.admin_requests().is_empty());
    assert!(env.fake.platform_requests().is_empty());
    // The listed one (in another case) passes.
    let upper = DEMO_ORGANIZATION_ID.to_ascii_uppercase();
    let r = env
        .get_as(&b, &format!("/management/v2/organizations/{upper}/users"))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn scoped_tokens_and_metrics_cover_every_api() {
    let port = free_port();
    let env = start("", Some(port)).await;
    let b = env.logged_in().await;
    let r = env
        .post_json_as(
            &b,
            "/auth/token",
            r#"{"methods":["GET"],"paths":["/clickapi/v1/accounts/*/clickwraps"]}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    let click = format!("/clickapi/v1/accounts/{ONE}/clickwraps");
    assert_eq!(env.get_with_token(&token, &click).await.status(), 200);
    for path in [
        "/management/v2/organizations".to_string(),
        format!("/v1/accounts/{ONE}/agreements"),
        format!("/restapi/v2.1/accounts/{ONE}"),
    ] {
        let r = env.get_with_token(&token, &path).await;
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "token_scope", "{path}");
    }
    assert!(env.fake.admin_requests().is_empty());
    assert!(env.fake.platform_requests().is_empty());
    assert_eq!(
        env.get_as(&b, "/management/v2/organizations")
            .await
            .status(),
        200
    );
    let text = scrape(&env.client, port).await;
    for series in [
        "dsgw_forwarded_requests_total{api=\"click\",status=\"200\"} 1",
        "dsgw_forwarded_requests_total{api=\"admin\",status=\"200\"} 1",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn every_api_works_across_instances_sharing_redis() {
    let env = common::multi::Instances::start(2, ALL_APIS).await;
    let b = env.logged_in().await;
    for (i, (path, _)) in routes().into_iter().enumerate() {
        let r = env.get_as(i % 2, &b, &path).await;
        assert_eq!(r.status(), 200, "{path} on instance {}", i % 2);
    }
    env.fake.revoke_access_tokens();
    let path = format!("/Management/v2/organizations/{DEMO_ORGANIZATION_ID}");
    let r = env.get_as(1, &b, &path).await;
    assert_eq!(r.status(), 200, "refreshed and replayed by instance 1");
    let r = env.get_as(0, &b, &path).await;
    assert_eq!(r.status(), 200, "instance 0 uses the refreshed token");
    assert_eq!(env.fake.stats().token_refresh, 1);
}
