//! Keys derived from `session.secret`, one per purpose, never the same bytes.

use hkdf::Hkdf;
use sha2::Sha256;

const SALT: &[u8] = b"docusign-gateway key derivation v1";

/// Derives `N` bytes for `purpose` from the configured secret (HKDF-SHA256).
pub fn derive<const N: usize>(secret: &[u8], purpose: &str) -> [u8; N] {
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(SALT), secret)
        .expand(purpose.as_bytes(), &mut out)
        .expect("HKDF output length is a small constant");
    out
}

/// Purpose label of the session and login cookie key.
pub const COOKIE_KEY: &str = "session-cookie";
/// Purpose label of the gateway API token signing key.
pub const API_TOKEN_KEY: &str = "api-token";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_give_different_keys() {
        let a: [u8; 64] = derive(b"0123456789abcdef0123456789abcdef", COOKIE_KEY);
        let b: [u8; 64] = derive(b"0123456789abcdef0123456789abcdef", API_TOKEN_KEY);
        let c: [u8; 64] = derive(b"0123456789abcdef0123456789abcdeX", COOKIE_KEY);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            derive::<64>(b"0123456789abcdef0123456789abcdef", COOKIE_KEY)
        );
    }
}
