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
    let secrets = [
        ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
        ("DSGW_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
    ];
    let env: Vec<(&str, &str)> = secrets.iter().chain(env).copied().collect();
    run_with(&[], config, &env)
}

/// Runs the binary with `args` (e.g. `check`), this config text and exactly
/// this `DSGW_*` environment; returns (exit code, stderr).
fn run_with(args: &[&str], config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!(
        "dsgw-config-test-{}-{}.toml",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"));
    cmd.args(args)
        .arg("--config")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("DSGW_") {
            cmd.env_remove(k);
        }
    }
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
        (
            GOOD,
            &[("DSGW_SERVER_MAX_HEADER_BYTES", "1023")],
            "server.max_header_bytes",
        ),
        (
            GOOD,
            &[("DSGW_SERVER_MAX_HEADER_BYTES", "1048577")],
            "server.max_header_bytes",
        ),
        (
            GOOD,
            &[("DSGW_SERVER_MAX_HEADER_BYTES", "lots")],
            "DSGW_SERVER_MAX_HEADER_BYTES",
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

/// A valid configuration apart from what a case spoils.
const VALID: &str = r#"
[server]
listen = "127.0.0.1:0"
[docusign]
client_id = "ik"
client_secret = "cs"
[session]
secure_cookie = false
"#;

const SESSION_SECRET: (&str, &str) = ("DSGW_SESSION_SECRET", "0123456789abcdef0123456789abcdef");

#[test]
fn check_never_echoes_a_secret_or_a_value_from_the_environment() {
    const VALUE: &str = "1234567890123456789";
    // (config text, environment, the key the error must name)
    let cases: &[Case] = &[
        // A secret key in the file, with a value of the wrong type.
        (
            "[docusign]\nclient_id = \"ik\"\n[session]\nsecret = 1234567890123456789\n",
            &[("DSGW_DOCUSIGN_CLIENT_SECRET", "cs")],
            "session.secret",
        ),
        (
            "[docusign]\nclient_id = \"ik\"\nclient_secret = 1234567890123456789\n",
            &[SESSION_SECRET],
            "docusign.client_secret",
        ),
        // Values from the environment, in every kind of error.
        (
            VALID,
            &[
                SESSION_SECRET,
                ("DSGW_SESSION_TTL_SECS", "-1234567890123456789"),
            ],
            "session.ttl_secs",
        ),
        (
            VALID,
            &[
                SESSION_SECRET,
                ("DSGW_SESSION_TTL_SECS", "x1234567890123456789"),
            ],
            "DSGW_SESSION_TTL_SECS",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_SESSION_SECURE_COOKIE", VALUE)],
            "DSGW_SESSION_SECURE_COOKIE",
        ),
        (
            VALID,
            &[
                SESSION_SECRET,
                ("DSGW_SERVER_THREADS", "-1234567890123456789"),
            ],
            "server.threads",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_SERVER_LISTEN", VALUE)],
            "server.listen",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_SERVER_PUBLIC_URL", VALUE)],
            "server.public_url",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_DOCUSIGN_AUTH_SERVER", VALUE)],
            "docusign.auth_server",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_DOCUSIGN_ENVIRONMENT", VALUE)],
            "docusign.environment",
        ),
        (
            VALID,
            &[SESSION_SECRET, ("DSGW_LOG_FORMAT", VALUE)],
            "log.format",
        ),
        (
            VALID,
            &[
                SESSION_SECRET,
                ("DSGW_DOCUSIGN_ALLOWED_API_HOSTS", "*1234567890123456789"),
            ],
            "docusign.allowed_api_hosts",
        ),
    ];
    for (config, env, key) in cases {
        let (code, stderr) = run_with(&["check"], config, env);
        assert_eq!(code, Some(1), "{key}: {stderr}");
        assert!(stderr.contains(key), "{key}: message was {stderr:?}");
        assert!(
            stderr.contains("expected"),
            "{key}: says what is expected: {stderr:?}"
        );
        assert!(!stderr.contains(VALUE), "{key}: value echoed: {stderr:?}");
    }
}

/// A fresh directory under the temp dir with this mode.
fn scratch_dir(mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "dsgw-config-test-dir-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

#[test]
fn an_upgrade_socket_in_a_directory_others_can_write_is_refused() {
    let dir = scratch_dir(0o777);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nupgrade_sock = \"{}\"\n\
         [docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n\
         [session]\nsecure_cookie = false\n",
        dir.join("upgrade.sock").display()
    );
    let env = [SESSION_SECRET];
    // `check` reports it, and start-up refuses (it would run, not exit, if not).
    for args in [&["check"][..], &[][..]] {
        let (code, stderr) = run_with(args, &config, &env);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("server.upgrade_sock"), "{stderr}");
        assert!(stderr.contains("writable by group or others"), "{stderr}");
    }
    assert!(!dir.join("upgrade.sock").exists());
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn redis_settings_name_the_key_and_never_show_the_password() {
    const REDIS: (&str, &str) = ("DSGW_SESSION_STORE", "redis");
    let cases: &[Case] = &[
        (GOOD, &[REDIS], "redis.url"),
        (
            GOOD,
            &[REDIS, ("DSGW_REDIS_URL", "http://u:hunter2hunter2@h:1")],
            "redis.url",
        ),
        (
            GOOD,
            &[
                REDIS,
                ("DSGW_REDIS_URL", "redis://u:hunter2hunter2@h:1"),
                ("DSGW_REDIS_CLUSTER_URLS", "redis://u:hunter2hunter2@a:7000"),
            ],
            "redis.url",
        ),
        (
            GOOD,
            &[
                REDIS,
                ("DSGW_REDIS_CLUSTER_URLS", "redis://a:1,hunter2hunter2"),
            ],
            "redis.cluster_urls",
        ),
        (
            GOOD,
            &[("DSGW_SESSION_STORE", "hunter2hunter2")],
            "session.store",
        ),
        (
            GOOD,
            &[
                REDIS,
                ("DSGW_REDIS_URL", "redis://h:1"),
                ("DSGW_REDIS_KEY_PREFIX", "{x}"),
            ],
            "redis.key_prefix",
        ),
    ];
    for (config, env, key) in cases {
        let (code, stderr) = run(config, env);
        assert_ne!(code, Some(0), "{key}: exit code");
        assert!(stderr.contains(key), "{key}: message was {stderr:?}");
        assert!(
            !stderr.contains("hunter2"),
            "{key}: password shown: {stderr}"
        );
    }
}

#[test]
fn webhook_settings_name_the_key_and_never_show_a_key() {
    const KEYS: (&str, &str) = ("TEST_HOOK_KEYS", "hook-key-hunter2,second-hunter2");
    let hook = |name: &str, forward_to: &str| {
        format!(
            "[[webhook]]\nname = \"{name}\"\nforward_to = \"{forward_to}\"\nhmac_keys_env = \"TEST_HOOK_KEYS\"\n"
        )
    };
    let app = "http://127.0.0.1:3000/events";
    /// (config text, extra environment, the key the error must name)
    type Case = (String, Vec<(&'static str, &'static str)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            format!("{GOOD}{}", hook("connect", app)),
            vec![],
            "webhook.connect.hmac_keys_env",
        ),
        (
            format!("{GOOD}{}", hook("connect", app)),
            vec![("TEST_HOOK_KEYS", " , ")],
            "webhook.connect.hmac_keys_env",
        ),
        (
            format!("{GOOD}{}", hook("connect", "ftp://hunter2/x")),
            vec![KEYS],
            "webhook.connect.forward_to",
        ),
        (
            format!("{GOOD}{}{}", hook("connect", app), hook("connect", app)),
            vec![KEYS],
            "webhook.connect.name",
        ),
        (
            format!("{GOOD}{}", hook("Connect", app)),
            vec![KEYS],
            "webhook[0].name",
        ),
    ];
    for (config, env, key) in &cases {
        for args in [&[][..], &["check"][..]] {
            let (code, stderr) = run_with(
                args,
                config,
                &[
                    env.as_slice(),
                    &[("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"), SESSION_SECRET],
                ]
                .concat(),
            );
            assert_ne!(code, Some(0), "{key} {args:?}: exit code");
            assert!(stderr.contains(key), "{key} {args:?}: {stderr:?}");
            assert!(!stderr.contains("hunter2"), "{key}: a key shown: {stderr}");
        }
    }

    // A good webhook: `check` lists it with its key count, never a key.
    let path = std::env::temp_dir().join(format!("dsgw-webhook-check-{}.toml", std::process::id()));
    std::fs::write(&path, format!("{GOOD}{}", hook("connect", app))).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"));
    cmd.args(["check", "--config"]).arg(&path);
    for (k, _) in std::env::vars() {
        if k.starts_with("DSGW_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .envs([KEYS, ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"), SESSION_SECRET])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("/webhooks/connect"), "{text}");
    assert!(text.contains("2 HMAC key"), "{text}");
    assert!(!text.contains("hunter2"), "a key shown: {text}");
}
