//! A bad configuration stops start-up with one message naming the key.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"
[docusign]
client_id = "ik"
[session]
secure_cookie = false
"#;

/// (config text, extra environment, the key the error must name)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// Runs the binary with this config text and environment; returns (exit code, stderr).
fn run(config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!(
        "dsgw-config-test-{}-{}.toml",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"));
    cmd.arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DSGW_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DSGW_DOCUSIGN_CLIENT_SECRET", "cs");
    cmd.env("DSGW_SESSION_SECRET", "0123456789abcdef0123456789abcdef");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::fs::remove_file(&path);
            panic!("gateway did not exit on a bad config");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    (status.code(), stderr)
}

#[test]
fn bad_configs_name_the_key_and_exit_non_zero() {
    let cases: &[Case] = &[
        (
            "[docusign]\nclient_id = \"ik\"\nclient_idd = \"x\"\n",
            &[],
            "docusign.client_idd",
        ),
        (
            GOOD,
            &[("DSGW_SESSION_SECRET", "too-short")],
            "session.secret",
        ),
        (
            GOOD,
            &[("DSGW_DOCUSIGN_AUTH_SERVER", "http://127.0.0.1:9")],
            "docusign.auth_server",
        ),
        (
            GOOD,
            &[("DSGW_DOCUSIGN_AUTH_SERVER", "::not a url::")],
            "docusign.auth_server",
        ),
        (
            GOOD,
            &[("DSGW_SERVER_PUBLIC_URL", "nope")],
            "server.public_url",
        ),
        (
            GOOD,
            &[("DSGW_SESSION_TTL_SECS", "forever")],
            "DSGW_SESSION_TTL_SECS",
        ),
        (GOOD, &[("DSGW_SESSION_BOGUS", "1")], "session.bogus"),
        (
            GOOD,
            &[("DSGW_DOCUSIGN_ALLOWED_API_HOSTS", "*")],
            "docusign.allowed_api_hosts",
        ),
        ("[docusign]\n", &[], "docusign.client_id"),
        ("not toml at all [", &[], "TOML"),
    ];
    for (config, env, key) in cases {
        let (code, stderr) = run(config, env);
        assert_ne!(code, Some(0), "{key}: exit code");
        assert!(code.is_some(), "{key}: exited normally, not by a signal");
        assert!(stderr.contains(key), "{key}: message was {stderr:?}");
        assert!(!stderr.contains("panicked"), "{key}: {stderr}");
        assert!(!stderr.contains("0123456789abcdef"), "secret echoed");
    }
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"))
        .args(["--config", "/nonexistent/gateway.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/gateway.toml"), "{stderr}");
}
