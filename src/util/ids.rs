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

/// A short, stable, non-reversible name of a session id for log lines.
pub fn log_id(session_id: &str) -> String {
    let digest = Sha256::digest(session_id.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(log_id(&a).len(), 12);
        assert!(!log_id(&a).contains(&a[..12]));
    }
}
