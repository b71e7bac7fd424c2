//! `docusign-gateway check` warns about risky but valid settings (issue 13
//! item 11): it prints the warnings on stderr and still exits 0.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static RUNS: AtomicUsize = AtomicUsize::new(0);

const RANDOM_SECRET: &str = "q8Vx2LmN9pR4tW7yZ1bC3dF6gH0jK5sAe";

/// Runs `check` on this config text, written with this file mode, with
/// these `DSGW_*` variables (and no others); returns (exit code, stderr).
fn check(config: &str, mode: u32, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let n = RUNS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("dsgw-check-{}-{n}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join("gateway.toml");
    let text = format!(
        "{config}\n[server]\nlisten = \"127.0.0.1:0\"\nupgrade_sock = \"{}\"\n",
        dir.join("upgrade.sock").display()
    );
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_docusign-gateway"));
    cmd.arg("check")
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
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "check did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ENV_SECRETS: &[(&str, &str)] = &[
    ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
    ("DSGW_SESSION_SECRET", RANDOM_SECRET),
];

/// (config text, environment, the key the warning names)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const PLAIN: &str = "[docusign]\nclient_id = \"ik\"\n[session]\nsecure_cookie = false\n";

#[test]
fn a_sound_configuration_gets_no_warning() {
    let (code, stderr) = check(PLAIN, 0o644, ENV_SECRETS);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn a_secret_in_a_file_others_can_read_is_warned_about() {
    let config = format!(
        "[docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n\
         [session]\nsecure_cookie = false\nsecret = \"{RANDOM_SECRET}\"\n"
    );
    let (code, stderr) = check(&config, 0o644, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("warning: `session.secret`"), "{stderr}");
    assert!(
        stderr.contains("warning: `docusign.client_secret`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(RANDOM_SECRET),
        "never the secret: {stderr}"
    );
    // Not readable by others: no warning.
    let (code, stderr) = check(&config, 0o640, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn each_risky_setting_is_warned_about_and_check_still_passes() {
    let cases: &[Case] = &[
        (
            "[docusign]\nclient_id = \"ik\"\n[session]\nsecure_cookie = true\n",
            ENV_SECRETS,
            "session.secure_cookie",
        ),
        (
            PLAIN,
            &[
                ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
                ("DSGW_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ],
            "session.secret",
        ),
        (
            PLAIN,
            &[
                ("DSGW_DOCUSIGN_CLIENT_SECRET", "cs"),
                ("DSGW_SESSION_SECRET", "abababababababababababababababababab"),
            ],
            "session.secret",
        ),
        (
            "[docusign]\nclient_id = \"ik\"\nallowed_api_hosts = [\"*.docusign.net\", \"*.co.uk\"]\n\
             [session]\nsecure_cookie = false\n",
            ENV_SECRETS,
            "docusign.allowed_api_hosts",
        ),
        (
            "[docusign]\nclient_id = \"ik\"\nallowed_api_hosts = [\"*.github.io\"]\n\
             [session]\nsecure_cookie = false\n",
            ENV_SECRETS,
            "docusign.allowed_api_hosts",
        ),
        (
            "[docusign]\nclient_id = \"ik\"\n[session]\nsecure_cookie = false\n\
             refresh_before_expiry_secs = 28800\n",
            ENV_SECRETS,
            "session.refresh_before_expiry_secs",
        ),
    ];
    for (config, env, key) in cases {
        let (code, stderr) = check(config, 0o600, env);
        assert_eq!(code, Some(0), "{key}: {stderr}");
        assert!(
            stderr.contains(&format!("warning: `{key}`")),
            "{key}: {stderr}"
        );
        assert_eq!(stderr.matches("warning").count(), 1, "{key}: {stderr}");
        assert!(
            !stderr.contains("0123456789abcdef"),
            "never the secret: {stderr}"
        );
    }
}
