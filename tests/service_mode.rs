//! Service mode (issue 11): back-ends call `/restapi/...` with a service's
//! gateway token; the gateway gets DocuSign tokens through the JWT grant
//! (the fake checks assertions like DocuSign), consent, expiry, revocation,
//! failures, and no secret in any log line.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use fake_docusign::TokenEndpointMode;
use serde_json::Value;

const USER: &str = "4799e5e9-1559-4915-9862-cf4713bbcacc";
const ACCOUNT: &str = "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";

struct Svc {
    env: Env,
    _dir: TempDir,
    key_file: PathBuf,
}

/// A gateway with `[[service]] backend` (and `extra` keys) whose public key
/// the fake knows; consent is not given yet.
async fn start(extra: &str, rust_log: &str) -> Svc {
    let dir = unique_temp_path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let (key_file, public) = rsa_key(&dir, false);
    let opts = Options {
        extra_toml: format!(
            "[[service]]\nname = \"backend\"\nuser_id = \"{USER}\"\nprivate_key_file = \"{}\"\n{extra}\n",
            key_file.display()
        ),
        rust_log: rust_log.into(),
        ..Options::default()
    };
    let env = Env::start_with(opts).await;
    env.fake.add_jwt_public_key(&public);
    Svc {
        env,
        _dir: TempDir(dir),
        key_file,
    }
}

/// `docusign-gateway token --service backend` against the env's config.
fn service_token(env: &Env, extra_args: &[&str]) -> String {
    let out = Command::new(gateway_bin())
        .args(["token", "--config"])
        .arg(&env.gw.config_path)
        .args(["--service", "backend"])
        .args(extra_args)
        .env("DSGW_SESSION_SECRET", SECRET)
        .env(
            "DSGW_DOCUSIGN_CLIENT_SECRET",
            &env.fake.config().client_secret,
        )
        .output()
        .expect("token command");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with('\n') && text.lines().count() == 1);
    text.trim_end().to_string()
}

/// The consent dance through the gateway's `/auth/consent` in a browser.
async fn give_consent(env: &Env, consent_url: &str) {
    let mut b = env.browser();
    let r = b.get(consent_url).await;
    assert_eq!(r.status(), 302);
    let docusign = location(&r);
    assert_eq!(
        param(&docusign, "scope").as_deref(),
        Some("signature impersonation")
    );
    assert!(param(&docusign, "state").is_some());
    let r = b.get(&docusign).await;
    assert_eq!(r.status(), 302, "fake consent redirects");
    let callback = location(&r);
    assert!(callback.starts_with(&env.url(CALLBACK)));
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 200);
    assert!(b.cookie(COOKIE_NAME).is_none(), "no session is created");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("consent was given for service backend"),
        "{page}"
    );
    // The state is single-use.
    let r = b.get(&callback).await;
    assert_eq!(r.status(), 400);
}

fn account_path() -> String {
    format!("/restapi/v2.1/accounts/{ACCOUNT}")
}

#[tokio::test]
async fn consent_then_curl_style_calls_as_the_service_user() {
    let svc = start("", "info").await;
    let env = &svc.env;
    let token = service_token(env, &[]);

    let r = env.get_with_token(&token, &account_path()).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "consent_required");
    let consent_url = body["consent_url"].as_str().unwrap().to_string();
    assert_eq!(consent_url, env.url("/auth/consent?service=backend"));
    assert!(!env.fake.has_consent(USER));

    give_consent(env, &consent_url).await;
    assert!(env.fake.has_consent(USER));

    let r = env.get_with_token(&token, &account_path()).await;
    assert_eq!(r.status(), 200);
    let rest = env.fake.rest_requests();
    let last = rest.last().unwrap();
    assert!(last
        .authorization
        .as_deref()
        .unwrap()
        .starts_with("Bearer "));
    assert!(!last.authorization.as_deref().unwrap().contains(&token));
    // Other paths go to the default account; foreign accounts are refused.
    let r = env
        .get_with_token(
            &token,
            "/restapi/v2.1/accounts/00000000-0000-0000-0000-000000000000",
        )
        .await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "account_not_permitted");

    let r = env.get_with_token(&token, "/auth/session").await;
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["service"], "backend");
    assert_eq!(info["user"]["sub"], USER);
    assert!(!info["accounts"].as_array().unwrap().is_empty());
    assert_eq!(
        env.fake.stats().token_jwt,
        1,
        "one grant for all those calls"
    );
    // The JWT grant carries no Basic auth and no client secret.
    let jwt = env.fake.token_requests();
    let grant = jwt
        .iter()
        .find(|r| r.grant_type.as_deref() == Some("urn:ietf:params:oauth:grant-type:jwt-bearer"))
        .unwrap();
    assert!(!grant.basic_auth_present);
}

#[tokio::test]
async fn expiry_and_401_mint_once_for_100_concurrent_calls() {
    let svc = start("", "info").await;
    let env = &svc.env;
    let token = service_token(env, &["--ttl-secs", "600"]);
    env.fake.set_consenting_user(USER);
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    assert_eq!(env.fake.stats().token_jwt, 1);

    // DocuSign refuses the token: 100 concurrent calls, one new grant, replays.
    env.fake.revoke_access_tokens();
    let path = account_path();
    let calls = (0..100).map(|_| env.get_with_token(&token, &path));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200);
    }
    assert_eq!(env.fake.stats().token_jwt, 2, "one mint for 100 calls");

    // A token about to expire (inside refresh_before_expiry) is replaced first.
    env.fake.set_access_token_ttl(Duration::from_secs(305));
    env.fake.revoke_access_tokens();
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    assert_eq!(env.fake.stats().token_jwt, 3);
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let path = account_path();
    let calls = (0..100).map(|_| env.get_with_token(&token, &path));
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r.status(), 200, "no client sees the expiry");
    }
    assert_eq!(env.fake.stats().token_jwt, 4, "one mint at expiry");
}

#[tokio::test]
async fn refused_assertion_and_token_endpoint_down() {
    let svc = start("", "info").await;
    let env = &svc.env;
    let token = service_token(env, &[]);
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    // A token that is due for renewal (inside the window) but still valid.
    env.fake.set_access_token_ttl(Duration::from_secs(301));
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The token endpoint fails: the still-valid token keeps serving.
    env.fake.set_token_endpoint(TokenEndpointMode::ServerError);
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    // DocuSign refuses that token too: 503 with Retry-After.
    env.fake.revoke_access_tokens();
    let r = env.get_with_token(&token, &account_path()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "docusign_unavailable");

    // The failure is answered from memory for a few seconds (no grant storm).
    env.fake.set_token_endpoint(TokenEndpointMode::Normal);
    let grants = env.fake.token_requests().len();
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        503
    );
    assert_eq!(env.fake.token_requests().len(), grants);
    tokio::time::sleep(Duration::from_millis(5100)).await;

    env.fake.remove_jwt_public_keys();
    for _ in 0..3 {
        let r = env.get_with_token(&token, &account_path()).await;
        assert_eq!(r.status(), 502);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "service_auth_failed");
        assert_eq!(body["service"], "backend");
    }
    let logs = env.gw.logs_with("no_valid_keys_or_signatures").await;
    assert_eq!(
        logs.matches("no_valid_keys_or_signatures").count(),
        1,
        "logged once with DocuSign's code: {logs}"
    );
}

#[tokio::test]
async fn not_before_revokes_older_tokens() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let not_before = now + 8;
    let svc = start(&format!("not_before = {not_before}"), "info").await;
    let env = &svc.env;
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    let old = service_token(env, &[]);
    let r = env.get_with_token(&old, &account_path()).await;
    assert_eq!(r.status(), 401);
    let wait_until = std::time::UNIX_EPOCH + Duration::from_secs(not_before);
    if let Ok(left) = wait_until.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(50)).await;
    }
    let new = service_token(env, &[]);
    assert_eq!(
        env.get_with_token(&new, &account_path()).await.status(),
        200
    );
    assert_eq!(
        env.get_with_token(&old, &account_path()).await.status(),
        401
    );
}

#[tokio::test]
async fn nothing_secret_in_any_log_line_at_trace() {
    let svc = start("", "trace").await;
    let env = &svc.env;
    let token = service_token(env, &[]);
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    env.fake.revoke_access_tokens();
    assert_eq!(
        env.get_with_token(&token, &account_path()).await.status(),
        200
    );
    let logs = env
        .gw
        .logs_with("replaying after DocuSign answered 401")
        .await;
    assert!(logs.contains("service token"), "the mint is logged");
    assert!(
        logs.contains("service_token_minted event=service_token_minted service=\"backend\""),
        "the mint is audited"
    );
    assert!(!logs.contains(&token), "gateway token logged");
    for secret in env.fake.issued_secrets() {
        assert!(!logs.contains(&secret), "DocuSign token or secret logged");
    }
    // An RS256 assertion starts with this header.
    assert!(
        !logs.contains("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9"),
        "assertion logged"
    );
    assert!(!logs.contains("assertion="), "grant body logged");
    let pem = std::fs::read_to_string(&svc.key_file).unwrap();
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!logs.contains(line), "private key logged");
    }
}

/// DocuSign's Python SDK with a service token (set up by `scripts/dev test`).
#[tokio::test]
async fn python_sdk_with_a_service_token() {
    let python = std::env::var("DOCUSIGN_GATEWAY_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("DOCUSIGN_GATEWAY_TEST_PYTHON is not set: run the tests with `scripts/dev test`")
    });
    let svc = start("", "info").await;
    let env = &svc.env;
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    let token = service_token(env, &[]);
    let host = format!("{}/restapi", env.gw.url);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/python_sdk.py");
    let run = |python: String, host: String, token: String| {
        tokio::task::spawn_blocking(move || {
            let out = Command::new(python)
                .arg(script)
                .args([host.as_str(), token.as_str(), ACCOUNT])
                .output()
                .expect("run the Python SDK script");
            assert!(
                out.status.success(),
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).expect("one JSON line")
        })
    };
    let first = run(python.clone(), host.clone(), token.clone())
        .await
        .unwrap();
    assert!(first["envelope_id"].is_string(), "{first}");
    assert!(env.fake.rest_requests().iter().all(|r| r.status < 300));
    assert!(env.fake.rest_requests().iter().any(|r| r
        .headers
        .iter()
        .any(|(k, v)| k == "x-docusign-sdk" && v.contains("Python"))));
    // DocuSign revokes the token: a new grant, invisible to the SDK.
    env.fake.revoke_access_tokens();
    let second = run(python, host, token).await.unwrap();
    assert_ne!(second["envelope_id"], first["envelope_id"]);
    assert_eq!(env.fake.stats().token_jwt, 2);
}

#[tokio::test]
async fn a_service_whose_user_the_policy_refuses_gets_nothing_forwarded() {
    // Its e-mail is only known from userinfo, so `check` cannot refuse it.
    let svc = start("[access]\nallowed_email_domains = [\"other.org\"]", "info").await;
    let env = &svc.env;
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    let token = service_token(env, &[]);
    let r = env.get_with_token(&token, &account_path()).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "access_denied");
    assert!(env.fake.rest_requests().is_empty(), "nothing forwarded");
}

#[tokio::test]
async fn the_token_command_mints_scoped_service_tokens() {
    let svc = start("", "info").await;
    let env = &svc.env;
    give_consent(env, &env.url("/auth/consent?service=backend")).await;
    let token = service_token(
        env,
        &[
            "--name",
            "status-reader",
            "--account",
            ACCOUNT,
            "--method",
            "GET",
            "--path",
            "/restapi/v2.1/accounts/*/envelopes/**",
        ],
    );
    let envelopes = format!("{}/envelopes", account_path());
    assert_eq!(env.get_with_token(&token, &envelopes).await.status(), 200);
    let r = env.get_with_token(&token, &account_path()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "token_scope");
    let r = env
        .client
        .post(env.url(&envelopes))
        .header("Authorization", format!("Bearer {token}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "GET only");
    let v: Value = env
        .get_with_token(&token, "/auth/session")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["token"]["name"], "status-reader");

    for (args, flag) in [
        (&["--method", "TRACE"][..], "--method"),
        (&["--path", "/a/**/b"][..], "--path"),
        (&["--name", "a/b"][..], "--name"),
        (&["--account", "not an id"][..], "--account"),
        (&["--ttl-secs", "0"][..], "--ttl-secs"),
    ] {
        let out = Command::new(gateway_bin())
            .args(["token", "--config"])
            .arg(&env.gw.config_path)
            .args(["--service", "backend"])
            .args(args)
            .env("DSGW_SESSION_SECRET", SECRET)
            .env(
                "DSGW_DOCUSIGN_CLIENT_SECRET",
                &env.fake.config().client_secret,
            )
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "no token");
    }
}
