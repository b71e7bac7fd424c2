//! Service mode's keys: `check` with `[[service]]` tables accepts RSA
//! private keys in PKCS#1 and PKCS#8 and refuses a missing, unreadable or
//! non-RSA key, both or neither of the key settings, and a duplicate or bad
//! name, naming the key and never printing key material.

mod common;

use std::path::Path;
use std::process::Command;
/// The DocuSign user of the `[[service]]` tables below.
const SERVICE_USER: &str = "4799e5e9-1559-4915-9862-cf4713bbcacc";

/// `check` with a `[[service]]` table: the exit status and output.
fn check(service: &str) -> (bool, String) {
    let path = common::unique_temp_path("toml");
    let text = format!(
        "[docusign]\nclient_id = \"ik\"\nclient_secret = \"cs\"\n[session]\nsecret = \"{}\"\n{service}",
        common::SECRET
    );
    std::fs::write(&path, text).unwrap();
    let out = Command::new(common::gateway_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("DSGW_SESSION_SECRET")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bad_key_files_fail_check_with_the_key_named() {
    let dir = common::unique_temp_path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = common::TempDir(dir.clone());
    let (pkcs8, _) = common::rsa_key(&dir, false);
    let (pkcs1, _) = common::rsa_key(&dir, true);
    let ec = dir.join("ec.pem");
    let ok = Command::new("openssl")
        .args(["ecparam", "-genkey", "-name", "prime256v1", "-out"])
        .arg(&ec)
        .status()
        .unwrap();
    assert!(ok.success());
    let svc = |name: &str, key: &str| {
        format!("[[service]]\nname = \"{name}\"\nuser_id = \"{SERVICE_USER}\"\n{key}\n")
    };
    let file = |p: &Path| format!("private_key_file = \"{}\"", p.display());

    for good in [&pkcs8, &pkcs1] {
        let (ok, out) = check(&svc("backend", &file(good)));
        assert!(ok, "{out}");
        assert!(out.contains("service backend"), "{out}");
        let pem = std::fs::read_to_string(good).unwrap();
        let body_line = pem.lines().nth(1).unwrap();
        assert!(!out.contains(body_line), "check printed the key");
    }
    let missing = dir.join("missing.pem");
    let cases = [
        (
            svc("backend", &file(&missing)),
            "service.backend.private_key_file",
        ),
        (
            svc("backend", &file(&ec)),
            "service.backend.private_key_file",
        ),
        (svc("backend", ""), "service.backend.private_key_file"),
        (
            svc(
                "backend",
                &format!("{}\nprivate_key_env = \"X\"", file(&pkcs8)),
            ),
            "service.backend.private_key_file",
        ),
        (
            svc(
                "backend",
                "private_key_env = \"DSGW_TEST_NO_SUCH_VARIABLE\"",
            ),
            "service.backend.private_key_env",
        ),
        (
            format!(
                "{}{}",
                svc("backend", &file(&pkcs8)),
                svc("backend", &file(&pkcs1))
            ),
            "service.backend.name",
        ),
        (svc("Bad_Name", &file(&pkcs8)), "service[0].name"),
        (
            format!(
                "[[service]]\nname = \"backend\"\nuser_id = \"not-a-guid\"\n{}\n",
                file(&pkcs8)
            ),
            "service.backend.user_id",
        ),
    ];
    let ec_pem = std::fs::read_to_string(&ec).unwrap();
    for (toml, key) in cases {
        let (ok, out) = check(&toml);
        assert!(!ok, "accepted:\n{toml}");
        assert!(out.contains(key), "{key} not named in: {out}");
        for line in ec_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!out.contains(line), "key material printed");
        }
    }
}
