//! Unguessable identifiers, and the short names of them that log lines use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 256 random bits, base64url: the session id and other unguessable values.
pub fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A short, stable, non-reversible name of a session id for log lines:
/// the first 6 bytes of its SHA-256, printed as 12 hex digits. A value,
/// not a `String`: the access log names a session per request.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct LogId(Option<[u8; 6]>);

pub fn log_id(session_id: &str) -> LogId {
    let digest = Sha256::digest(session_id.as_bytes());
    let mut short = [0u8; 6];
    short.copy_from_slice(&digest[..6]);
    LogId(Some(short))
}

impl LogId {
    /// 12 hex digits in `buffer`; nothing for the default (no session).
    pub fn hex<'a>(&self, buffer: &'a mut [u8; 12]) -> &'a str {
        let Some(short) = &self.0 else {
            return "";
        };
        // 6 bytes fill 12 digits exactly: neither step can fail.
        if hex::encode_to_slice(short, buffer).is_err() {
            return "";
        }
        std::str::from_utf8(buffer).unwrap_or_default()
    }
}

impl std::fmt::Display for LogId {
    /// 12 hex digits; nothing for the default (no session).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hex(&mut [0; 12]))
    }
}

impl std::fmt::Debug for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_log_ids_short_and_stable() {
        let (a, b) = (random_id(), random_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(log_id(&a), log_id(&a));
        assert_ne!(log_id(&a), log_id(&b));
        let shown = log_id(&a).to_string();
        assert_eq!(shown.len(), 12);
        assert!(shown.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(!shown.contains(&a[..12]));
        assert_eq!(LogId::default().to_string(), "");
    }
}
