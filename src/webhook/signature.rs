//! Connect's HMAC signature: HMAC-SHA256 of the exact body, keyed by the
//! HMAC secret's UTF-8 bytes, base64, in `X-DocuSign-Signature-1` ...
//! `-100` (one per active key). One match of any header with any key is
//! enough; the comparison is constant-time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::util::secret::Secret;

/// The signature headers' common prefix (any case).
pub const HEADER_PREFIX: &str = "x-docusign-signature-";
/// Connect numbers its headers 1 to 100.
pub const MAX_SIGNATURE_HEADERS: usize = 100;

type HmacSha256 = Hmac<Sha256>;

/// The decoded signatures of `headers` (name, value) that Connect would
/// send: `X-DocuSign-Signature-<1..=100>`, base64 of 32 bytes. Others are
/// ignored (a signature that is not base64 matches nothing).
pub fn signatures<'a>(headers: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for (name, value) in headers {
        let Some(n) = strip_prefix_ignore_case(name, HEADER_PREFIX) else {
            continue;
        };
        let numbered = n
            .parse::<usize>()
            .is_ok_and(|n| (1..=MAX_SIGNATURE_HEADERS).contains(&n));
        if !numbered || out.len() >= MAX_SIGNATURE_HEADERS {
            continue;
        }
        let decoded = STANDARD.decode(value.trim_ascii());
        if let Ok(Ok(sig)) = decoded.map(<[u8; 32]>::try_from) {
            out.push(sig);
        }
    }
    out
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
}

/// HMAC-SHA256 of `body` under `key`.
pub fn sign(key: &str, body: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Whether one of `signatures` is the HMAC of `body` under one of `keys`.
/// Each key's HMAC is computed once; every comparison runs in constant time
/// and all of them run (no early exit that would time the match).
pub fn verify(keys: &[Secret], signatures: &[[u8; 32]], body: &[u8]) -> bool {
    if signatures.is_empty() {
        return false;
    }
    let mut matched = subtle::Choice::from(0);
    for key in keys {
        let expected = sign(key.expose(), body);
        for sig in signatures {
            matched |= expected.ct_eq(sig);
        }
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(key: &str, body: &[u8]) -> String {
        STANDARD.encode(sign(key, body))
    }

    fn check(keys: &[&str], headers: &[(&str, String)], body: &[u8]) -> bool {
        let keys: Vec<Secret> = keys.iter().map(|k| Secret::new(*k)).collect();
        let sigs = signatures(headers.iter().map(|(n, v)| (*n, v.as_bytes())));
        verify(&keys, &sigs, body)
    }

    /// DocuSign's own example (docs "How to validate an HMAC signature"
    /// computes HMAC-SHA256 base64): checked against the RFC 4231 vector.
    #[test]
    fn hmac_matches_rfc_4231() {
        let tag = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn one_match_of_any_header_with_any_key_is_enough() {
        let body = b"{\"event\":\"envelope-completed\"}\r\n";
        let h1 = ("X-DocuSign-Signature-1", b64("old", body));
        let h2 = ("x-docusign-signature-2", b64("new", body));
        assert!(check(&["new"], &[h1.clone(), h2.clone()], body));
        assert!(check(&["other", "old"], std::slice::from_ref(&h1), body));
        assert!(!check(&["new"], std::slice::from_ref(&h1), body));
        assert!(!check(
            &["new"],
            std::slice::from_ref(&h2),
            b"{\"event\":\"envelope-completed\"}\n"
        ));
        assert!(!check(&["new"], &[], body));
        // Not base64, the wrong length, an unnumbered or out-of-range header.
        assert!(!check(
            &["new"],
            &[("X-DocuSign-Signature-1", "!!!".into())],
            body
        ));
        assert!(!check(
            &["new"],
            &[("X-DocuSign-Signature-1", STANDARD.encode([1u8; 31]))],
            body
        ));
        for name in [
            "X-DocuSign-Signature",
            "X-DocuSign-Signature-0",
            "X-DocuSign-Signature-101",
            "X-DocuSign-Signature-x",
        ] {
            assert!(
                !check(&["new"], &[(name, b64("new", body))], body),
                "{name}"
            );
        }
        assert!(check(
            &["new"],
            &[("X-DocuSign-Signature-100", b64("new", body))],
            body
        ));
    }
}
