//! The fake's JWT grant against assertions signed with an openssl key.

use std::net::SocketAddr;
use std::process::Command;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

use super::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A fresh RSA key pair from openssl: (private PEM, public PEM).
fn rsa_pair() -> (String, String) {
    let dir = std::env::temp_dir().join(format!(
        "fake-jwt-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k.pem");
    let ok = Command::new("openssl")
        .arg("genrsa")
        .arg("-out")
        .arg(&key)
        .arg("2048")
        .output()
        .unwrap();
    assert!(ok.status.success());
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    let private = std::fs::read_to_string(&key).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (private, String::from_utf8(public.stdout).unwrap())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn grant(fake: &FakeDocuSign, assertion: &str) -> (u16, Value) {
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/oauth/token", fake.account_server_url()))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn checks_the_assertion_like_docusign() {
    let mut config = FakeConfig::demo_defaults();
    config.account_server = SocketAddr::from(([127, 0, 0, 1], 0));
    config.rest_hosts = vec![SocketAddr::from(([127, 0, 0, 2], 0))];
    config.redirect_uris = vec!["http://127.0.0.1:9/callback".into()];
    for user in &mut config.users {
        for account in &mut user.accounts {
            account.rest_host = 0;
        }
    }
    let fake = FakeDocuSign::start(config).await.unwrap();
    let (private, public) = rsa_pair();
    let (other, _) = rsa_pair();
    let sub = fake.config().users[0].sub.clone();
    let aud = fake
        .account_server_url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let iss = fake.config().client_id.clone();
    let sign = |claims: Value, pem: &str| {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    };
    let t = now();
    let good = json!({"iss": iss, "sub": sub, "aud": aud, "iat": t, "exp": t + 3600, "scope": "signature impersonation"});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };

    // No key registered yet.
    let (status, body) = grant(&fake, &sign(good.clone(), &private)).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("no_valid_keys_or_signatures"))
    );
    fake.add_jwt_public_key(&public);
    // Signed by another key.
    let (_, body) = grant(&fake, &sign(good.clone(), &other)).await;
    assert_eq!(body["error"], "invalid_grant");
    // Wrong audience, issuer, lifetime, user, scope.
    let (_, body) = grant(
        &fake,
        &sign(with("aud", json!("account-d.docusign.com")), &private),
    )
    .await;
    assert_eq!(body["error_description"], "no_valid_keys_or_signatures");
    let (_, body) = grant(&fake, &sign(with("iss", json!("another-key")), &private)).await;
    assert_eq!(body["error_description"], "issuer_not_found");
    let (_, body) = grant(&fake, &sign(with("exp", json!(t + 3601)), &private)).await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, body) = grant(
        &fake,
        &sign(
            with("sub", json!("00000000-0000-0000-0000-000000000000")),
            &private,
        ),
    )
    .await;
    assert_eq!(body["error_description"], "user_not_found");
    let (_, body) = grant(&fake, &sign(with("scope", json!("signature")), &private)).await;
    assert_eq!(body["error"], "invalid_scope");
    // No consent yet: DocuSign's consent_required.
    let (status, body) = grant(&fake, &sign(good.clone(), &private)).await;
    assert_eq!((status, body), (400, json!({"error": "consent_required"})));
    assert_eq!(fake.stats().token_jwt, 0);

    // Consent through /oauth/auth with the impersonation scope.
    let redirect = fake.config().redirect_uris[0].clone();
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}/oauth/auth", fake.account_server_url()))
        .query(&[
            ("response_type", "code"),
            ("client_id", iss.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "signature impersonation"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(fake.has_consent(&sub));
    let (status, body) = grant(&fake, &sign(good, &private)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    assert!(body.get("refresh_token").is_none(), "no refresh token");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(fake.stats().token_jwt, 1);
}
