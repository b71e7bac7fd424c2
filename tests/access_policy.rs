//! The `[access]` policy: who may log in, which accounts a session keeps,
//! checked again before every forward; and the audit lines it writes.

mod common;

use common::*;
use reqwest::header::{ACCEPT, COOKIE};
use serde_json::Value;

const USER: &str = "4799e5e9-1559-4915-9862-cf4713bbcacc";
const DEFAULT_ACCOUNT: &str = "a4ec37d6-04a4-4c8c-9f2a-6b3f1c2d3e4f";
const OTHER_ACCOUNT: &str = "c2b7e8f1-5d6a-4b3c-8e9f-0a1b2c3d4e5f";

async fn start(access: &str) -> Env {
    start_with_log(access, "").await
}

async fn start_with_log(access: &str, log: &str) -> Env {
    Env::start_with(Options {
        extra_toml: format!("[access]\n{access}\n[log]\n{log}\n"),
        ..Options::default()
    })
    .await
}

fn envelopes(account: &str) -> String {
    format!("/restapi/v2.1/accounts/{account}/envelopes")
}

/// A login that ends at the callback: its answer, and the browser.
async fn try_login(env: &Env, accept: &str) -> (u16, String, Browser) {
    let mut b = env.browser();
    let callback = b.start_login("/auth/session").await;
    let r = b
        .client
        .get(&callback)
        .header(COOKIE, b.cookie_header())
        .header(ACCEPT, accept)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies
            .iter()
            .all(|c| !c.starts_with(&format!("{COOKIE_NAME}="))),
        "no session cookie: {cookies:?}"
    );
    (status, r.text().await.unwrap(), b)
}

#[tokio::test]
async fn a_session_keeps_only_the_allowed_accounts() {
    let env = start(&format!("allowed_accounts = [\"{OTHER_ACCOUNT}\"]")).await;
    let b = env.logged_in().await;
    let r = env.get_as(&b, "/auth/session").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let accounts = v["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{v}");
    assert_eq!(accounts[0]["account_id"], OTHER_ACCOUNT);
    assert_eq!(v["default_account_id"], OTHER_ACCOUNT, "first allowed one");

    let before = env.fake.rest_requests().len();
    let r = env.get_as(&b, &envelopes(DEFAULT_ACCOUNT)).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "account_not_permitted");
    assert!(v["message"].is_string());
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");

    let r = env.get_as(&b, &envelopes(OTHER_ACCOUNT)).await;
    assert_eq!(r.status(), 200);
    // A path naming no account goes to the first allowed one's host.
    let before = env.fake.rest_requests().len();
    let r = env.get_as(&b, "/restapi/v2.1/diagnostics/ping").await;
    assert_ne!(r.status(), 403);
    assert_eq!(env.fake.rest_requests().len(), before + 1, "forwarded");
    let last = env.fake.rest_requests().pop().unwrap();
    assert_eq!(last.host_index, 1, "the allowed account's REST host");
}

#[tokio::test]
async fn a_user_outside_the_policy_is_refused_and_gets_no_session() {
    let port = free_port();
    let env = Env::start_with(Options {
        extra_toml: "[access]\nallowed_email_domains = [\"*.example.com\"]\n".into(),
        server_extra: format!("metrics_listen = \"127.0.0.1:{port}\""),
        ..Options::default()
    })
    .await;
    let (status, body, b) = try_login(&env, "application/json").await;
    assert_eq!(status, 403);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "access_denied");
    assert!(v["message"].is_string());
    // Without a session cookie, nothing works.
    let r = env.get_as(&b, "/auth/session").await;
    assert_eq!(r.status(), 401);
    // The code was exchanged (after the state check), then dropped.
    assert_eq!(env.fake.token_requests().len(), 1);

    let (status, page, _) = try_login(&env, "text/html").await;
    assert_eq!(status, 403);
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "{page}"
    );
    assert!(
        !page.contains("allowed_email_domains"),
        "no internal detail"
    );

    let metrics = scrape(&env.client, port).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("dsgw_logins_failed_total{reason=\"access_denied\"} 2")),
        "{metrics}"
    );
    let logs = env.gw.logs_with("login_denied").await;
    assert!(
        logs.contains(&format!(
            "login_denied event=login_denied user=\"{USER}\" email_domain=\"example.com\" reason=\"user_not_allowed\""
        )),
        "{logs}"
    );
    for secret in env.fake.issued_secrets() {
        assert!(!logs.contains(&secret), "a refused user's token logged");
    }
}

#[tokio::test]
async fn users_are_admitted_by_guid_or_exact_domain() {
    for access in [
        format!("allowed_users = [\"{}\"]", USER.to_uppercase()),
        "allowed_email_domains = [\"EXAMPLE.com\"]".to_string(),
        "allowed_users = [\"someone-else\"]\nallowed_email_domains = [\"example.com\"]".to_string(),
    ] {
        let env = start(&access).await;
        let b = env.logged_in().await;
        let r = env.get_as(&b, &envelopes(DEFAULT_ACCOUNT)).await;
        assert_eq!(r.status(), 200, "{access}");
    }
    let env = start(&format!("allowed_accounts = [\"{}\"]", "0000-none")).await;
    let (status, _, _) = try_login(&env, "application/json").await;
    assert_eq!(status, 403, "a user with no allowed account is refused");
    let logs = env.gw.logs_with("no_allowed_account").await;
    assert!(logs.contains("reason=\"no_allowed_account\""), "{logs}");
}

#[tokio::test]
async fn json_audit_lines_for_login_and_logout() {
    let env = start_with_log("", "format = \"json\"").await;
    let b = env.logged_in().await;
    let r = env
        .client
        .post(env.url("/auth/logout"))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logs = env.gw.logs_with("session_ended").await;
    let events: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "docusign_gateway::audit")
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(names, ["login", "logout", "session_ended"], "{logs}");
    assert_eq!(events[0]["user"], USER);
    assert_eq!(events[0]["email_domain"], "example.com");
    assert_eq!(events[0]["accounts"][0], DEFAULT_ACCOUNT);
    assert_eq!(events[2]["reason"], "logout");
    assert_eq!(events[0]["session"], events[1]["session"]);

    // Turned off, none is written.
    let env = start_with_log("", "audit = false").await;
    env.logged_in().await;
    let logs = env.gw.logs_with("login completed").await;
    assert!(logs.contains("login completed"), "{logs}");
    assert!(!logs.contains("docusign_gateway::audit"), "{logs}");
}

#[tokio::test]
async fn a_service_the_policy_refuses_fails_check_naming_it() {
    let dir = TempDir(unique_temp_path("access-check"));
    std::fs::create_dir(&dir.0).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (key, _) = rsa_key(&dir.0, false);
    let toml = format!(
        "[server]\nupgrade_sock = \"{}\"\n[docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n\
         [session]\nsecret = \"0123456789abcdef0123456789abcdef\"\n\
         [access]\nallowed_users = [\"{USER}\"]\n\
         [[service]]\nname = \"backend\"\nuser_id = \"0d0f5d8e-0000-4000-8000-000000000001\"\nprivate_key_file = \"{}\"\n",
        dir.0.join("upgrade.sock").display(),
        key.display()
    );
    let path = dir.0.join("gateway.toml");
    std::fs::write(&path, &toml).unwrap();
    let out = std::process::Command::new(gateway_bin())
        .args(["--config", path.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("service.backend.user_id"), "{stderr}");

    // Admitted by GUID: check passes and prints the policy.
    std::fs::write(
        &path,
        toml.replace(USER, "0d0f5d8e-0000-4000-8000-000000000001"),
    )
    .unwrap();
    let out = std::process::Command::new(gateway_bin())
        .args(["--config", path.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("0d0f5d8e-0000-4000-8000-000000000001"),
        "{stdout}"
    );
}

/// A session made under a wider policy (in Redis) meets the narrower one
/// of the instance serving it: the account is refused, then the user, and
/// the session ends on every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serving_instance_policy_applies_to_shared_sessions() {
    let mut env = common::multi::Instances::start(2, "").await;
    let b = env.logged_in().await;
    let path = |account: &str| envelopes(account);
    assert_eq!(env.get_as(1, &b, &path(OTHER_ACCOUNT)).await.status(), 200);

    env.gws[1].set_env("DSGW_ACCESS_ALLOWED_ACCOUNTS", DEFAULT_ACCOUNT);
    env.restart(1).await;
    let before = env.fake.rest_requests().len();
    let r = env.get_as(1, &b, &path(OTHER_ACCOUNT)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "account_not_permitted"
    );
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");
    assert_eq!(
        env.get_as(1, &b, &path(DEFAULT_ACCOUNT)).await.status(),
        200
    );
    // The wider instance still serves both.
    assert_eq!(env.get_as(0, &b, &path(OTHER_ACCOUNT)).await.status(), 200);

    env.gws[1].set_env("DSGW_ACCESS_ALLOWED_USERS", "someone-else");
    env.restart(1).await;
    let before = env.fake.rest_requests().len();
    let r = env.get_as(1, &b, &path(DEFAULT_ACCOUNT)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "login_required");
    assert_eq!(env.fake.rest_requests().len(), before, "nothing forwarded");
    // The session ended in Redis: instance 0 refuses it too (within 1 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let status = env.get_as(0, &b, &path(DEFAULT_ACCOUNT)).await.status();
        if status == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = env.gws[1].logs_with("session_ended").await;
    assert!(logs.contains("reason=\"policy\""), "{logs}");
}
