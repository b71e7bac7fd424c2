//! End-to-end tests of the fake over real sockets with reqwest.

mod connect;
mod org_hosts;
mod rate_limits;

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::tokens::pkce_challenge;
use super::*;

const CLIENT_ID: &str = "test-integration-key";
const CLIENT_SECRET: &str = "test-client-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const ACCOUNT_A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ACCOUNT_B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const VERIFIER: &str = "a-verifier-that-is-long-enough-to-be-valid-0123456789";

fn test_config() -> FakeConfig {
    let mut config = FakeConfig::demo_defaults();
    config.client_id = CLIENT_ID.into();
    config.client_secret = CLIENT_SECRET.into();
    config.redirect_uris = vec![REDIRECT_URI.into()];
    config.account_server = SocketAddr::from(([127, 0, 0, 1], 0));
    // Two REST hosts on one loopback address, told apart by their ports.
    config.rest_hosts = vec![
        SocketAddr::from(([127, 0, 0, 2], 0)),
        SocketAddr::from(([127, 0, 0, 2], 0)),
    ];
    config.document_size = 64 * 1024;
    let user = &mut config.users[0];
    user.accounts[0].account_id = ACCOUNT_A.into();
    user.accounts[1].account_id = ACCOUNT_B.into();
    config
}

fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("reqwest client")
}

struct Harness {
    fake: FakeDocuSign,
    http: Client,
}

impl Harness {
    async fn start() -> Harness {
        let fake = FakeDocuSign::start(test_config())
            .await
            .expect("start fake");
        Harness {
            fake,
            http: client(),
        }
    }

    fn auth_url(&self, extra: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!("{}/oauth/auth", self.fake.account_server_url()))
            .expect("url");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", CLIENT_ID)
                .append_pair("redirect_uri", REDIRECT_URI)
                .append_pair("scope", "signature extended");
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// Runs `/oauth/auth` and returns the redirect's query pairs.
    async fn authorize(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let resp = self
            .http
            .get(self.auth_url(extra))
            .send()
            .await
            .expect("auth");
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().expect("ascii");
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        url::Url::parse(location)
            .expect("location url")
            .query_pairs()
            .into_owned()
            .collect()
    }

    async fn code(&self, extra: &[(&str, &str)]) -> String {
        let q = self.authorize(extra).await;
        q.iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.clone())
            .expect("code in redirect")
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.fake.account_server_url()))
            .form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await.expect("token");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn rest_get(&self, host: usize, path: &str, token: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.fake.rest_host_url(host)))
            .bearer_auth(token)
            .send()
            .await
            .expect("rest");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

const GOOD: Option<(&str, &str)> = Some((CLIENT_ID, CLIENT_SECRET));

#[tokio::test]
async fn full_flow() {
    let h = Harness::start().await;
    let fake = &h.fake;
    assert!(fake.account_server_url().starts_with("http://127.0.0.1:"));
    assert!(fake.rest_host_url(0).starts_with("http://127.0.0.2:"));
    assert_ne!(fake.rest_host_url(0), fake.rest_host_url(1));

    // /oauth/auth with PKCE; the state comes back exactly.
    let state = "a b&c=d/é?";
    let challenge = pkce_challenge(VERIFIER);
    let q = h
        .authorize(&[
            ("state", state),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let get = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some(state));
    let code = get("code").expect("code");

    // Code for tokens.
    let (status, tokens) = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT_URI),
            ],
            GOOD,
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens.as_object().map(|o| o.len()), Some(4), "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 28800);
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert!(access.starts_with("eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2Iiwia2lkIjoi"));
    assert_ne!(access, refresh);

    // userinfo
    let resp = h
        .http
        .get(format!("{}/oauth/userinfo", fake.account_server_url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(resp.status(), StatusCode::OK);
    let info: Value = resp.json().await.expect("json");
    assert_eq!(info["sub"], fake.config().users[0].sub.as_str());
    assert_eq!(info["accounts"][0]["account_id"], ACCOUNT_A);
    assert_eq!(info["accounts"][0]["is_default"], true);
    assert_eq!(
        info["accounts"][0]["base_uri"],
        fake.rest_host_url(0).as_str()
    );
    assert_eq!(
        info["accounts"][1]["base_uri"],
        fake.rest_host_url(1).as_str()
    );

    // REST with the right Host (reqwest sets it from the URL).
    let resp = h
        .http
        .get(format!(
            "{}/restapi/v2.1/accounts/{ACCOUNT_A}",
            fake.rest_host_url(0)
        ))
        .bearer_auth(&access)
        .send()
        .await
        .expect("rest");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(resp.headers()["x-ratelimit-limit"], "1000");
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "999");
    assert!(resp.headers().contains_key("x-ratelimit-reset"));
    assert!(resp.headers().contains_key("x-burstlimit-remaining"));
    let account: Value = resp.json().await.expect("json");
    assert_eq!(account["accountIdGuid"], ACCOUNT_A);

    // v2 works too; an account on the other host or of nobody does not.
    let (status, _) = h
        .rest_get(1, &format!("/restapi/v2/accounts/{ACCOUNT_B}"), &access)
        .await;
    assert_eq!(status, 200);
    let (status, body) = h
        .rest_get(0, &format!("/restapi/v2.1/accounts/{ACCOUNT_B}"), &access)
        .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (400, "INVALID_ACCOUNT_BASE_URI".into())
    );
    let (status, body) = h
        .rest_get(
            0,
            "/restapi/v2.1/accounts/00000000-0000-0000-0000-000000000000",
            &access,
        )
        .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (400, "USER_LACKS_MEMBERSHIP".into())
    );
    let (status, body) = h
        .rest_get(
            0,
            &format!("/restapi/v2.1/accounts/{ACCOUNT_A}/nothing"),
            &access,
        )
        .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (404, "RESOURCE_NOT_FOUND".into())
    );

    // Refresh rotates: the old refresh token is then refused.
    let (status, fresh) = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            GOOD,
        )
        .await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["refresh_token"].as_str(), Some(refresh.as_str()));
    assert_ne!(fresh["access_token"].as_str(), Some(access.as_str()));
    let (status, err) = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            GOOD,
        )
        .await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "invalid_grant".into())
    );

    // Revocation: REST and userinfo answer 401.
    fake.revoke_access_tokens();
    let (status, body) = h
        .rest_get(0, &format!("/restapi/v2.1/accounts/{ACCOUNT_A}"), &access)
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["errorCode"], "AUTHORIZATION_INVALID_TOKEN");
    let resp = h
        .http
        .get(format!("{}/oauth/userinfo", fake.account_server_url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(fake.active_access_tokens().is_empty());

    // A wrong Host is refused even with a live token.
    let (_, again) = h
        .token(
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    fresh["refresh_token"].as_str().unwrap_or_default(),
                ),
            ],
            GOOD,
        )
        .await;
    let live = again["access_token"].as_str().expect("access").to_string();
    let resp = h
        .http
        .get(format!(
            "{}/restapi/v2.1/accounts/{ACCOUNT_A}",
            fake.rest_host_url(0)
        ))
        .header("host", "demo.docusign.net")
        .bearer_auth(&live)
        .send()
        .await
        .expect("rest");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["errorCode"], "INVALID_REQUEST_PARAMETER");

    // Records and secrets.
    let secrets = fake.issued_secrets();
    for s in [CLIENT_SECRET, &code, &access, &refresh, &live] {
        assert!(secrets.iter().any(|x| x == s));
    }
    let stats = fake.stats();
    assert_eq!(stats.authorize_requests, 1);
    assert_eq!(stats.token_authorization_code, 1);
    assert_eq!(stats.token_refresh, 3);
    assert_eq!(stats.token_errors, 1);
    assert_eq!(stats.userinfo, 2);
    assert_eq!(stats.rest_requests_per_host, vec![6, 1]);
    let recorded = fake.rest_requests();
    assert_eq!(recorded.len(), 7);
    assert_eq!(recorded[0].status, 200);
    assert_eq!(recorded[0].host_index, 0);
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some(format!("Bearer {access}").as_str())
    );
    assert_eq!(
        recorded[0].host_header.as_deref(),
        fake.rest_host_url(0).strip_prefix("http://")
    );
    assert_eq!(recorded[6].status, 400);
    let token_requests = fake.token_requests();
    assert_eq!(
        token_requests[0].field_names,
        vec!["grant_type", "code", "code_verifier", "redirect_uri"]
    );
    assert!(token_requests[0].basic_auth_valid);
}

#[tokio::test]
async fn envelopes_and_documents() {
    let h = Harness::start().await;
    let code = h.code(&[]).await;
    let (_, tokens) = h
        .token(
            &[("grant_type", "authorization_code"), ("code", &code)],
            GOOD,
        )
        .await;
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let base = format!(
        "{}/restapi/v2.1/accounts/{ACCOUNT_A}",
        h.fake.rest_host_url(0)
    );

    let resp = h
        .http
        .post(format!("{base}/envelopes"))
        .bearer_auth(&access)
        .json(&serde_json::json!({"emailSubject": "Please sign", "status": "created"}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.expect("json");
    assert_eq!(created["status"], "created");
    let id = created["envelopeId"].as_str().expect("id").to_string();
    assert_eq!(created["uri"], format!("/envelopes/{id}"));

    let (status, env) = h
        .rest_get(
            0,
            &format!("/restapi/v2.1/accounts/{ACCOUNT_A}/envelopes/{id}"),
            &access,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(env["emailSubject"], "Please sign");
    let (status, list) = h
        .rest_get(
            0,
            &format!("/restapi/v2.1/accounts/{ACCOUNT_A}/envelopes?from_date=2020-01-01"),
            &access,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["resultSetSize"], "2");
    let (status, err) = h
        .rest_get(
            0,
            &format!(
                "/restapi/v2.1/accounts/{ACCOUNT_A}/envelopes/{}",
                tokens::new_guid()
            ),
            &access,
        )
        .await;
    assert_eq!(
        (status, err["errorCode"].clone()),
        (404, "ENVELOPE_DOES_NOT_EXIST".into())
    );

    let resp = h
        .http
        .post(format!("{base}/envelopes"))
        .bearer_auth(&access)
        .body("not json")
        .send()
        .await
        .expect("bad create");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    for envelope in [SAMPLE_ENVELOPE_ID, id.as_str()] {
        let resp = h
            .http
            .get(format!("{base}/envelopes/{envelope}/documents/combined"))
            .bearer_auth(&access)
            .send()
            .await
            .expect("download");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/pdf");
        assert_eq!(resp.headers()["content-length"], "65536");
        let pdf = resp.bytes().await.expect("pdf");
        assert_eq!(pdf.len(), 64 * 1024);
        assert!(pdf.starts_with(b"%PDF-1.4\n") && pdf.ends_with(b"%%EOF\n"));
    }
}

#[tokio::test]
async fn pkce_mismatch_and_used_code_are_rejected() {
    let h = Harness::start().await;
    let challenge = pkce_challenge(VERIFIER);
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    let code = h.code(&pkce).await;
    let (status, err) = h
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", "wrong"),
            ],
            GOOD,
        )
        .await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "invalid_grant".into())
    );

    let code = h.code(&pkce).await;
    let (status, _) = h
        .token(
            &[("grant_type", "authorization_code"), ("code", &code)],
            GOOD,
        )
        .await;
    assert_eq!(status, 400, "verifier required");

    let code = h.code(&pkce).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
    ];
    assert_eq!(h.token(&form, GOOD).await.0, 200);
    let (status, err) = h.token(&form, GOOD).await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "invalid_grant".into())
    );

    // plain PKCE is not accepted: redirected with invalid_request.
    let q = h
        .authorize(&[
            ("code_challenge", "abc"),
            ("code_challenge_method", "plain"),
        ])
        .await;
    assert!(q.contains(&("error".into(), "invalid_request".into())));
}

#[tokio::test]
async fn client_authentication_and_bad_requests() {
    let h = Harness::start().await;
    let code = h.code(&[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];

    let (status, err) = h.token(&form, None).await;
    assert_eq!(
        (status, err["error"].clone()),
        (401, "invalid_client".into())
    );
    let (status, err) = h.token(&form, Some((CLIENT_ID, "wrong"))).await;
    assert_eq!(
        (status, err["error"].clone()),
        (401, "invalid_client".into())
    );
    // Client authentication failures do not consume the code.
    assert_eq!(h.token(&form, GOOD).await.0, 200);

    let (status, err) = h.token(&[("grant_type", "password")], GOOD).await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "unsupported_grant_type".into())
    );
    let (status, err) = h.token(&[("grant_type", "refresh_token")], GOOD).await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "invalid_request".into())
    );
    let (status, err) = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
            GOOD,
        )
        .await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, "invalid_grant".into())
    );

    let resp = h
        .http
        .post(format!("{}/oauth/token", h.fake.account_server_url()))
        .header("authorization", "Basic %%%not-base64")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .expect("garbage");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let record = h.fake.token_requests().pop().expect("recorded");
    assert!(record.basic_auth_present && !record.basic_auth_valid);

    // Unregistered redirect URI or unknown client: 400 page, no redirect.
    for url in [
        h.auth_url(&[]).replace("callback", "elsewhere"),
        h.auth_url(&[]).replace(CLIENT_ID, "someone-else"),
        h.auth_url(&[])
            .replace("response_type=code", "response_type=token"),
    ] {
        let resp = h.http.get(url).send().await.expect("auth");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(!resp.headers().contains_key("location"));
    }

    let resp = h
        .http
        .get(format!("{}/nowhere", h.fake.account_server_url()))
        .send()
        .await
        .expect("404");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn switches_change_behaviour() {
    let h = Harness::start().await;
    let fake = &h.fake;

    fake.set_deny_consent(true);
    let q = h.authorize(&[("state", "s1")]).await;
    assert!(q.contains(&("error".into(), "access_denied".into())));
    assert!(q.contains(&("state".into(), "s1".into())));
    fake.set_deny_consent(false);

    fake.set_token_endpoint(TokenEndpointMode::ServerError);
    let code = h.code(&[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    assert_eq!(h.token(&form, GOOD).await.0, 503);
    fake.set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(50)));
    fake.set_access_token_ttl(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let (status, tokens) = h.token(&form, GOOD).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(tokens["expires_in"], 1);
    fake.set_token_endpoint(TokenEndpointMode::Normal);

    fake.set_is_default_as_string(true);
    let access = tokens["access_token"].as_str().expect("access").to_string();
    let resp = h
        .http
        .get(format!("{}/oauth/userinfo", fake.account_server_url()))
        .bearer_auth(&access)
        .send()
        .await
        .expect("userinfo");
    let info: Value = resp.json().await.expect("json");
    assert_eq!(info["accounts"][0]["is_default"], "true");
    assert_eq!(info["accounts"][1]["is_default"], "false");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = h
        .rest_get(0, &format!("/restapi/v2.1/accounts/{ACCOUNT_A}"), &access)
        .await;
    assert_eq!(status, 401, "expired token");

    fake.revoke_refresh_tokens();
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let (status, _) = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            GOOD,
        )
        .await;
    assert_eq!(status, 400);

    // Unknown consenting user: /oauth/auth cannot consent.
    fake.set_consenting_user("nobody");
    let resp = h.http.get(h.auth_url(&[])).send().await.expect("auth");
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn control_endpoints() {
    let h = Harness::start().await;
    let base = h.fake.account_server_url();
    let code = h.code(&[]).await;
    let (_, tokens) = h
        .token(
            &[("grant_type", "authorization_code"), ("code", &code)],
            GOOD,
        )
        .await;

    let resp = h
        .http
        .post(format!("{base}/_fake/access-token-ttl?secs=5"))
        .send()
        .await
        .expect("ttl");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = h
        .http
        .post(format!("{base}/_fake/access-token-ttl?secs=-1"))
        .send()
        .await
        .expect("ttl");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = h
        .http
        .post(format!("{base}/_fake/revoke-access-tokens"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(h.fake.active_access_tokens().is_empty());
    let resp = h
        .http
        .post(format!("{base}/_fake/revoke-refresh-tokens"))
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), StatusCode::OK);
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let (status, _) = h
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            GOOD,
        )
        .await;
    assert_eq!(status, 400);

    let code = h.code(&[]).await;
    let (_, tokens) = h
        .token(
            &[("grant_type", "authorization_code"), ("code", &code)],
            GOOD,
        )
        .await;
    assert_eq!(tokens["expires_in"], 5);

    let resp = h
        .http
        .get(format!("{base}/_fake/stats"))
        .send()
        .await
        .expect("stats");
    let text = resp.text().await.expect("text");
    let stats: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(stats["authorize_requests"], 2);
    assert_eq!(stats["token_authorization_code"], 2);
    for secret in h.fake.issued_secrets() {
        assert!(!text.contains(&secret));
    }
}

#[tokio::test]
async fn start_fails_clearly() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut config = test_config();
    config.account_server = taken.local_addr().expect("addr");
    let err = FakeDocuSign::start(config).await.expect_err("port taken");
    assert!(err
        .to_string()
        .contains(&taken.local_addr().expect("addr").to_string()));

    let mut config = test_config();
    config.rest_hosts.truncate(1);
    let err = FakeDocuSign::start(config)
        .await
        .expect_err("bad host index");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// The `sub` of whoever consents to a login's authorization now.
async fn consenting_sub(h: &Harness) -> String {
    let code = h.code(&[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];
    let (_, tokens) = h.token(&form, GOOD).await;
    let access = tokens["access_token"].as_str().expect("access");
    let info: Value = h
        .http
        .get(format!("{}/oauth/userinfo", h.fake.account_server_url()))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    info["sub"].as_str().expect("sub").to_string()
}

#[tokio::test]
async fn users_consent_in_turn_when_asked() {
    let mut config = test_config();
    let mut second = config.users[0].clone();
    second.sub = "22222222-2222-4222-8222-222222222222".into();
    second.email = "second@example.com".into();
    config.users.push(second);
    let h = Harness {
        fake: FakeDocuSign::start(config).await.expect("start fake"),
        http: client(),
    };
    let subs: Vec<String> = h
        .fake
        .config()
        .users
        .iter()
        .map(|u| u.sub.clone())
        .collect();
    assert_eq!(consenting_sub(&h).await, subs[0]);
    assert_eq!(
        consenting_sub(&h).await,
        subs[0],
        "the consenting user, by default"
    );
    h.fake.set_users_consent_in_turn(true);
    for expected in [0, 1, 0, 1] {
        assert_eq!(consenting_sub(&h).await, subs[expected]);
    }
    h.fake.set_consenting_user(&subs[1]);
    assert_eq!(
        consenting_sub(&h).await,
        subs[1],
        "a set user ends the turns"
    );
    assert_eq!(consenting_sub(&h).await, subs[1]);
}
