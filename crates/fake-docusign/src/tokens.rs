//! Minting of opaque codes and tokens shaped like DocuSign's, GUIDs, and the
//! PKCE S256 transform.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::time::unix_secs;

/// DocuSign's token header; its base64url form starts with
/// `eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2Iiwia2lkIjoi`.
const HEADER_JSON: &str =
    r#"{"typ":"MT","alg":"RS256","kid":"68185ff1-4e51-4ce9-af1c-689812203317"}"#;

/// At most this many scopes, each cut to this many bytes, go into a token,
/// so that a silly `scope` parameter cannot make tokens huge.
const MAX_SCOPES: usize = 8;
const MAX_SCOPE_LEN: usize = 32;

#[derive(Clone, Copy, Debug)]
pub(crate) enum TokenKind {
    AuthorizationCode,
    Access,
    Refresh,
}

impl TokenKind {
    fn type_code(self) -> u8 {
        match self {
            TokenKind::AuthorizationCode => 2,
            TokenKind::Access => 5,
            TokenKind::Refresh => 15,
        }
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh unguessable token: `header.payload.signature`, base64url, about
/// 900 characters, with 32 random bytes in the payload and a 256-byte random
/// "signature". Carries no secret.
pub(crate) fn mint(
    kind: TokenKind,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    ttl: Duration,
) -> String {
    let now = unix_secs(SystemTime::now());
    let scp: Vec<&str> = scopes
        .iter()
        .take(MAX_SCOPES)
        .map(|s| truncate(s, MAX_SCOPE_LEN))
        .collect();
    let payload = serde_json::json!({
        "Version": 1,
        "TokenType": kind.type_code(),
        "IssueInstant": now,
        "Expiration": now.saturating_add(ttl.as_secs()),
        "UserId": truncate(sub, 64),
        "site": 1,
        "siteDomain": "fake.docusign.test",
        "ClientId": truncate(client_id, 64),
        "AuthenticationMethod": 0,
        "amr": ["interactive"],
        "scp": scp,
        "jti": hex(&random_bytes::<32>()),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER_JSON),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(random_bytes::<256>()),
    )
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A random version-4 GUID, lower-case.
pub(crate) fn new_guid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// PKCE S256: BASE64URL-NOPAD(SHA256(verifier)).
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_like_docusign_and_differ() {
        let scopes = vec!["signature".to_string(), "extended".to_string()];
        let a = mint(
            TokenKind::Access,
            "sub",
            "client",
            &scopes,
            Duration::from_secs(1),
        );
        let b = mint(
            TokenKind::Access,
            "sub",
            "client",
            &scopes,
            Duration::from_secs(1),
        );
        assert!(a.starts_with("eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2Iiwia2lkIjoi"));
        assert!((700..=1000).contains(&a.len()), "length {}", a.len());
        assert_ne!(a, b);
        let huge = vec!["x".repeat(10_000); 100];
        let c = mint(
            TokenKind::Refresh,
            "é".repeat(100).as_str(),
            "c",
            &huge,
            Duration::MAX,
        );
        assert!(c.len() < 1400, "length {}", c.len());
    }

    #[test]
    fn guid_shape() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_eq!(g.matches('-').count(), 4);
    }

    #[test]
    fn pkce_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
