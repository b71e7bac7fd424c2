//! HTTPS on the gateway's own listener (issue 14): the browser flow and a
//! proxied call over TLS with HTTP/1.1 and HTTP/2, and the config errors.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

async fn tls_env() -> Env {
    Env::start_with(Options {
        tls: Some(TestTls::new()),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn the_browser_flow_and_forwarding_work_over_https() {
    let env = tls_env().await;
    assert!(env.gw.url.starts_with("https://"));
    let b = env.logged_in().await;
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    let r = env.get_as(&b, &path).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let (token, _) = env.mint_token(&b).await;
    assert!(!token.is_empty());
    let r = env.get_as(&b, "/auth/session").await;
    let v: Value = r.json().await.unwrap();
    assert!(v["user"]["sub"].as_str().is_some());
}

#[tokio::test]
async fn http2_is_offered_through_alpn() {
    let env = tls_env().await;
    let b = env.logged_in().await;
    let ca = reqwest::Certificate::from_pem(ca_of(&env).as_bytes()).unwrap();
    let h2 = reqwest::Client::builder()
        .add_root_certificate(ca)
        .http2_adaptive_window(true)
        .build()
        .unwrap();
    let path = format!("/restapi/v2.1/accounts/{}", env.accounts()[0].0);
    let r = h2
        .get(env.url(&path))
        .header("Cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let r = h2.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The CA a test gateway's certificate was signed with.
fn ca_of(env: &Env) -> String {
    env.tls.as_ref().expect("a TLS gateway").ca_pem.clone()
}

#[tokio::test]
async fn failed_handshakes_are_counted_and_plain_http_gets_no_answer() {
    let metrics_port = free_port();
    let env = Env::start_with(Options {
        tls: Some(TestTls::new()),
        server_extra: format!("metrics_listen = \"127.0.0.1:{metrics_port}\""),
        ..Options::default()
    })
    .await;
    let (status, _) = raw_request(env.gw.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_ne!(status, 200);
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let mut seen = 0.0;
    for _ in 0..50 {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        seen = text
            .lines()
            .find(|l| l.starts_with("dsgw_tls_handshake_failures_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0);
        if seen >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        seen >= 1.0,
        "the failed handshake is counted; logs:\n{}",
        env.gw.logs()
    );
}

fn check_with(server_lines: &str) -> (bool, String) {
    let dir = unique_temp_path("tls-check");
    std::fs::create_dir_all(&dir).unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://gw.example\"\nupgrade_sock = \"{}\"\n{server_lines}\n\
         [docusign]\nclient_id = \"ik\"\n[session]\nsecret = \"{SECRET}\"\n",
        dir.join("sock/upgrade.sock").display()
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(gateway_bin())
        .args(["check", "--config", path.to_str().unwrap()])
        .env("DSGW_DOCUSIGN_CLIENT_SECRET", "cs")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_describes_the_certificate_and_refuses_bad_pairs() {
    let tls = TestTls::new();
    let other = TestTls::new();
    let line = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        )
    };
    let (ok, text) = check_with(&line(&tls.cert_file, &tls.key_file));
    assert!(ok, "{text}");
    assert!(
        text.contains("127.0.0.1") && text.contains("expires"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let (ok, text) = check_with(&line(&tls.cert_file, &other.key_file));
    assert!(!ok && text.contains("server.tls_key_file"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let (ok, text) = check_with(&format!("tls_cert_file = \"{}\"", tls.cert_file.display()));
    assert!(!ok && text.contains("server.tls_key_file"), "{text}");
    let (ok, text) = check_with(&line(&tls.dir.join("missing.pem"), &tls.key_file));
    assert!(!ok && text.contains("server.tls_cert_file"), "{text}");
    // https:// without TLS here, with the Secure cookie: fine behind a
    // terminator, and check says so.
    let (ok, text) = check_with("");
    assert!(
        ok && text.contains("warning") && text.contains("TLS terminator"),
        "{text}"
    );
}

/// An upgrade (how a renewed certificate is picked up) over TLS loses no
/// request: the new process loads the certificate files again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_over_tls_loses_no_request() {
    use std::time::Duration;
    let mut env = Env::start_with(Options {
        tls: Some(TestTls::new()),
        server_extra: "grace_period_secs = 2".into(),
        ..Options::default()
    })
    .await;
    let ca = reqwest::Certificate::from_pem(ca_of(&env).as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = env.url("/healthz");
    let stream = steady_stream(client, url, 5);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let new = env.gw.spawn_upgrade();
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
    assert_eq!(
        env.client
            .get(env.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The container health check (`docusign-gateway health`) speaks TLS to a
/// TLS listener.
#[tokio::test]
async fn the_health_command_probes_an_https_listener() {
    let env = tls_env().await;
    let config = env.gw.config_path.clone();
    let secret = env.fake.config().client_secret.clone();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(gateway_bin())
            .args(["health", "--config", config.to_str().unwrap()])
            .env("DSGW_DOCUSIGN_CLIENT_SECRET", secret)
            .env("DSGW_SESSION_SECRET", SECRET)
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(status.success());
}
