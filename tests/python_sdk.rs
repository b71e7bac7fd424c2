//! Real clients: DocuSign's official Python SDKs (`docusign-esign`,
//! `docusign-click`, `docusign-admin`) talk to the gateway with a gateway
//! token, before and after DocuSign revoked the access token. `scripts/dev
//! test` (and so CI) installs them into a virtualenv and sets
//! DOCUSIGN_GATEWAY_TEST_PYTHON to its interpreter.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

const PYTHON_VAR: &str = "DOCUSIGN_GATEWAY_TEST_PYTHON";

fn run_sdk(python: &str, host: &str, token: &str, account: &str) -> Value {
    run_sdk_with(python, &[host, token, account])
}

fn run_sdk_with(python: &str, args: &[&str]) -> Value {
    run_script(python, "python_sdk.py", args)
}

fn run_script(python: &str, script: &str, args: &[&str]) -> Value {
    let script = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("run the Python SDK script");
    assert!(
        out.status.success(),
        "Python SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[tokio::test]
async fn python_sdk_reads_creates_and_lists_through_the_gateway() {
    let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| {
        panic!("{PYTHON_VAR} is not set: run the tests with `scripts/dev test`, which installs docusign-esign into target/sdk-venv")
    });
    let env = Env::start().await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let host = format!("{}/restapi", env.gw.url);
    let (account, host_index) = env.accounts()[1].clone();

    let python2 = python.clone();
    let (h, t, a) = (host.clone(), token.clone(), account.clone());
    let first = tokio::task::spawn_blocking(move || run_sdk(&python2, &h, &t, &a))
        .await
        .unwrap();
    assert_eq!(first["account_name"], "Demo Account Two");
    let recs = env.fake.rest_requests();
    assert_eq!(recs.len(), 3);
    assert!(recs
        .iter()
        .all(|r| r.host_index == host_index && r.status < 300));
    assert!(recs.iter().any(|r| r
        .headers
        .iter()
        .any(|(k, v)| k == "x-docusign-sdk" && v.contains("Python"))));

    env.fake.revoke_access_tokens();
    let second = tokio::task::spawn_blocking(move || run_sdk(&python, &host, &token, &account))
        .await
        .unwrap();
    assert_ne!(second["envelope_id"], first["envelope_id"]);
    assert_eq!(
        second["listed"].as_u64().unwrap(),
        first["listed"].as_u64().unwrap() + 1
    );
    assert_eq!(
        env.fake.stats().token_refresh,
        1,
        "refreshed once, invisibly"
    );
}

#[tokio::test]
async fn python_sdk_works_over_https_with_the_tests_ca() {
    let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| {
        panic!("{PYTHON_VAR} is not set: run the tests with `scripts/dev test`")
    });
    let env = Env::start_with(Options {
        tls: Some(TestTls::new()),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let host = format!("{}/restapi", env.gw.url);
    assert!(host.starts_with("https://"));
    let (account, _) = env.accounts()[0].clone();
    let ca = env.tls.as_ref().unwrap().dir.join("ca.pem");
    let ca = ca.to_str().unwrap().to_string();
    let out =
        tokio::task::spawn_blocking(move || run_sdk_with(&python, &[&host, &token, &account, &ca]))
            .await
            .unwrap();
    assert!(out["envelope_id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn click_and_admin_sdks_work_with_their_host_and_token_changed() {
    let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| {
        panic!("{PYTHON_VAR} is not set: run the tests with `scripts/dev test`")
    });
    let env = Env::start_with(Options {
        docusign_extra:
            "apis = [\"esignature\", \"click\", \"admin\"]\nadmin_api_url = \"{admin_api_url}\"\n"
                .into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let (token, _) = env.mint_token(&b).await;
    let (account, host_index) = env.accounts()[0].clone();
    let org = fake_docusign::DEMO_ORGANIZATION_ID;
    let run = |python: String, token: String| {
        let (url, account) = (env.gw.url.clone(), account.clone());
        tokio::task::spawn_blocking(move || {
            run_script(&python, "other_sdks.py", &[&url, &token, &account, org])
        })
    };
    let first = run(python.clone(), token.clone()).await.unwrap();
    assert_eq!(first["clickwrap_name"], "Terms of service");
    assert_eq!(first["clickwraps"], 1);
    assert_eq!(first["organizations"], serde_json::json!([org]));
    assert_eq!(
        first["emails"],
        serde_json::json!(["demo.user@example.com"])
    );
    let click = env.fake.rest_requests();
    assert_eq!(click.len(), 2, "create and list on the account's REST host");
    assert!(click
        .iter()
        .all(|r| r.host_index == host_index && r.path_and_query.starts_with("/clickapi/v1/")));
    let admin = env.fake.admin_requests();
    assert_eq!(admin.len(), 2);
    assert!(admin.iter().all(|r| r.status == 200
        && r.path_and_query.starts_with("/management/v2/organizations")
        && r.headers
            .iter()
            .any(|(k, v)| k == "x-docusign-sdk" && v.contains("Python"))));

    env.fake.revoke_access_tokens();
    let second = run(python, token).await.unwrap();
    assert_eq!(second["clickwraps"], 2);
    assert_ne!(second["clickwrap_id"], first["clickwrap_id"]);
    assert_eq!(
        env.fake.stats().token_refresh,
        1,
        "refreshed once, invisibly"
    );
}
