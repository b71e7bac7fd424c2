//! What an operator relies on: `check`, metrics, logs, readiness, graceful
//! shutdown and zero-downtime upgrade.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use fake_docusign::TokenEndpointMode;
use serde_json::Value;

#[test]
fn check_prints_the_effective_config_with_secrets_masked() {
    let path = unique_temp_path("toml");
    std::fs::write(
        &path,
        "[docusign]\nclient_id = \"ik\"\n[session]\nttl_secs = 3600\n",
    )
    .unwrap();
    let out = Command::new(gateway_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("DSGW_DOCUSIGN_CLIENT_SECRET", "client-secret-value")
        .env(
            "DSGW_SESSION_SECRET",
            "session-secret-value-0123456789abcdef",
        )
        .env("DSGW_SESSION_REFRESH_BEFORE_EXPIRY_SECS", "120")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("client-secret-value") && !text.contains("session-secret-value"));
    assert!(text.contains("client_secret = \"***\""));
    assert!(
        text.contains("refresh_before_expiry_secs = 120"),
        "environment applied"
    );
    assert!(text.contains("ttl_secs = 3600"), "file applied");
    assert!(text.contains("max_sessions = 100000"), "defaults shown");
    assert!(text.contains("http://localhost:8080/auth/docusign/callback"));

    let out = Command::new(gateway_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("DSGW_DOCUSIGN_CLIENT_SECRET", "x")
        .env("DSGW_SESSION_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("session.secret") && err.contains("at least 32 bytes"),
        "{err}"
    );
    let _ = std::fs::remove_file(&path);
}

fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_requests_logins_refreshes_and_replays() {
    let port = free_port();
    let env = Env::start_with(Options {
        server_extra: format!("metrics_listen = \"127.0.0.1:{port}\""),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    let send = |p: String| {
        env.client
            .get(env.url(&p))
            .header("Cookie", b.cookie_header())
            .send()
    };
    assert_eq!(send(path.clone()).await.unwrap().status(), 200);
    env.fake.revoke_access_tokens();
    assert_eq!(send(path.clone()).await.unwrap().status(), 200);
    assert_eq!(
        send("/restapi/v2.1/accounts/nope".into())
            .await
            .unwrap()
            .status(),
        403
    );
    // A login that is started but never completed, then a forged callback.
    let mut stranger = env.browser();
    assert_eq!(stranger.get("/auth/login").await.status(), 302);
    let _ = stranger
        .get(&format!("{}{CALLBACK}?code=x&state=forged", env.gw.url))
        .await;

    // A request is counted once its response is written: wait for the last.
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let m = scrape(&env.client, port).await;
        if m.contains("dsgw_requests_total{class=\"proxied\",status=\"200\"} 2")
            || Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        sample(&m, "dsgw_requests_total{class=\"proxied\",status=\"200\"}"),
        2.0
    );
    assert_eq!(
        sample(&m, "dsgw_requests_total{class=\"rejected\",status=\"403\"}"),
        1.0
    );
    assert_eq!(sample(&m, "dsgw_logins_started_total"), 2.0);
    assert_eq!(sample(&m, "dsgw_logins_completed_total"), 1.0);
    assert_eq!(
        sample(&m, "dsgw_logins_failed_total{reason=\"bad_state\"}"),
        1.0
    );
    assert_eq!(
        sample(&m, "dsgw_token_refreshes_total{outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(sample(&m, "dsgw_token_refresh_duration_seconds_count"), 1.0);
    assert_eq!(sample(&m, "dsgw_replays_total"), 1.0);
    assert_eq!(sample(&m, "dsgw_sessions"), 1.0);
    assert_eq!(
        sample(&m, "dsgw_pending_logins"),
        1.0,
        "the stranger's login is still pending"
    );
    let host = env
        .fake
        .rest_host_url(0)
        .trim_start_matches("http://")
        .to_string();
    assert_eq!(
        sample(
            &m,
            &format!("dsgw_upstream_duration_seconds_count{{host=\"{host}\"}}")
        ),
        3.0,
        "two attempts and a replay"
    );
    for secret in env.fake.issued_secrets() {
        assert!(!m.contains(&secret));
    }
}

#[tokio::test]
async fn readiness_and_health() {
    let env = Env::start().await;
    let r = env.client.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(
        env.client
            .get(env.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // The container health probe.
    let out = Command::new(gateway_bin())
        .args(["health", "--addr", &env.gw.addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(gateway_bin())
        .args(["health", "--addr", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The gateway's log and its JSON lines, once the lines of the requests
/// made so far are written (the log queue writes every 10 ms; the wait is
/// long enough for an absent line to mean it was never logged).
async fn json_log(env: &Env) -> (String, Vec<Value>) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = env.gw.logs();
    let lines = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (logs, lines)
}

#[tokio::test]
async fn one_json_log_line_per_request_without_query_or_secrets() {
    let env = Env::start_with(Options {
        extra_toml: "[log]\nformat = \"json\"\nlevel = \"debug\"".into(),
        rust_log: String::new(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let path = format!("/restapi/v2.1/accounts/{}/envelopes", env.accounts()[1].0);
    let r = env
        .get_as(&b, &format!("{path}?from_date=2020-01-01&secret_marker=q1"))
        .await;
    assert_eq!(r.status(), 200);
    let (logs, lines) = json_log(&env).await;
    assert!(!lines.is_empty(), "JSON log lines:\n{logs}");
    let request = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request" && l["fields"]["path"] == path.as_str())
        .unwrap_or_else(|| panic!("a request line for {path} in\n{logs}"));
    let f = &request["fields"];
    assert_eq!(f["method"], "GET");
    assert_eq!(f["status"], 200);
    assert_eq!(f["class"], "proxied");
    assert_eq!(
        f["upstream"],
        env.fake.rest_host_url(1).trim_start_matches("http://")
    );
    assert!(f["duration_ms"].is_u64());
    assert_eq!(
        f["session"].as_str().unwrap().len(),
        12,
        "a short hash of the session id"
    );
    assert!(!logs.contains("secret_marker"), "no query strings in logs");
    assert!(lines
        .iter()
        .any(|l| l["fields"]["message"] == "login completed"));
    for secret in env.fake.issued_secrets() {
        assert!(!logs.contains(&secret));
    }
    assert!(!logs.contains(&b.cookie(COOKIE_NAME).unwrap()));
}

#[tokio::test]
async fn access_false_drops_the_request_lines_and_keeps_the_others() {
    let env = Env::start_with(Options {
        extra_toml: "[log]\nformat = \"json\"\naccess = false".into(),
        rust_log: String::new(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    assert_eq!(env.get_as(&b, &path).await.status(), 200);
    let (logs, lines) = json_log(&env).await;
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "login completed"),
        "other lines are written:\n{logs}"
    );
    assert!(
        !lines.iter().any(|l| l["fields"]["message"] == "request"),
        "no access lines:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish_and_exits_zero() {
    let mut env = Env::start_with(Options {
        server_extra: "grace_period_secs = 3".into(),
        ..Options::default()
    })
    .await;
    let b = env.logged_in().await;
    // A request held in flight by a slow token refresh.
    env.fake
        .set_token_endpoint(TokenEndpointMode::Delay(Duration::from_millis(1200)));
    env.fake.revoke_access_tokens();
    let client = env.client.clone();
    let url = env.url(&format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0));
    let cookie = b.cookie_header();
    let in_flight = tokio::spawn(async move {
        client
            .get(url)
            .header("Cookie", cookie)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.gw.signal("TERM");
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        200,
        "in-flight request finished"
    );
    let status = tokio::task::block_in_place(|| env.gw.wait_exit(Duration::from_secs(20)))
        .expect("gateway exits after the grace period");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_hands_over_the_socket_without_losing_a_request() {
    let mut env = Env::start_with(Options {
        server_extra: "grace_period_secs = 2".into(),
        ..Options::default()
    })
    .await;
    // Fresh connections, as a steady stream of independent clients.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = env.url("/healthz");
    let stream = steady_stream(client, url, 5);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut new = env.gw.spawn_upgrade();
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.gw.signal("QUIT");
    let old_exit = tokio::task::block_in_place(|| env.gw.wait_exit(Duration::from_secs(20)));
    let (ok, failed) = stream.await.unwrap();
    assert!(
        failed.is_empty(),
        "lost requests: {failed:?}\nnew:\n{}",
        new.logs()
    );
    assert!(ok > 50, "a steady stream ({ok} requests)");
    assert!(old_exit.is_some(), "the old process exited");
    assert!(
        tokio::task::block_in_place(|| new.wait_exit(Duration::from_millis(10))).is_none(),
        "the new process serves on"
    );
    assert_eq!(
        env.client
            .get(env.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(new.logs().contains("docusign-gateway starting"));
}
