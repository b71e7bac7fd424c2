//! Encryption of every value the gateway writes to Redis.
//!
//! AES-256-GCM with a key derived from `session.secret` under its own HKDF
//! label. A sealed value is `key id (1 byte) | nonce (12 bytes) | ciphertext
//! and tag`. The Redis key name is the associated data, so a value copied to
//! another key does not open. The key id lets the secret rotate: values
//! sealed under the previous secret still open until they expire.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::BackendError;
use crate::crypto::keys::derive;

/// HKDF label of the Redis value key.
pub const REDIS_VALUE_KEY: &str = "redis-session-store";
/// HKDF label of the one-byte key id (derived apart from the key itself).
const REDIS_KEY_ID: &str = "redis-session-store key id";
const NONCE_LEN: usize = 12;

struct SealKey {
    id: u8,
    cipher: Aes256Gcm,
}

impl SealKey {
    fn from_secret(secret: &[u8]) -> Self {
        let key: [u8; 32] = derive(secret, REDIS_VALUE_KEY);
        let id: [u8; 1] = derive(secret, REDIS_KEY_ID);
        SealKey {
            id: id[0],
            cipher: Aes256Gcm::new(&key.into()),
        }
    }
}

/// Seals and opens Redis values; holds the current key and, during a
/// rotation, the previous one.
pub struct Sealer {
    current: SealKey,
    previous: Option<SealKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.current.id)
            .field("previous_key_id", &self.previous.as_ref().map(|k| k.id))
            .finish()
    }
}

impl Sealer {
    /// Keys from the current `session.secret` and, while rotating, the
    /// previous one (only used to open values).
    pub fn new(current_secret: &[u8], previous_secret: Option<&[u8]>) -> Self {
        Sealer {
            current: SealKey::from_secret(current_secret),
            previous: previous_secret.map(SealKey::from_secret),
        }
    }

    /// Encrypts `plaintext` for the Redis key named `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value read from the Redis key named `aad`. Any failure
    /// (unknown key id, tampering, wrong key name) is `Corrupt`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, BackendError> {
        if sealed.len() < 1 + NONCE_LEN {
            return Err(BackendError::Corrupt("sealed value too short".into()));
        }
        let (id, rest) = (sealed[0], &sealed[1..]);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::from_slice(nonce);
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        let mut known_id = false;
        for key in keys.filter(|k| k.id == id) {
            known_id = true;
            let payload = Payload {
                msg: ciphertext,
                aad,
            };
            if let Ok(plain) = key.cipher.decrypt(nonce, payload) {
                return Ok(plain);
            }
        }
        Err(BackendError::Corrupt(if known_id {
            "sealed value does not open (tampered, or stored under another key name)".into()
        } else {
            format!("sealed value has unknown key id {id} (session.secret rotated twice?)")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"current-secret-0123456789abcdef0123456789";
    const OLD: &[u8] = b"previous-secret-0123456789abcdef012345678";
    const AAD: &[u8] = b"dsgw:{abc}:s";

    #[test]
    fn round_trip_hides_the_plaintext() {
        let sealer = Sealer::new(SECRET, None);
        let sealed = sealer.seal(b"refresh-token-XYZ", AAD);
        assert!(!sealed
            .windows(b"refresh-token-XYZ".len())
            .any(|w| w == b"refresh-token-XYZ"));
        assert_eq!(sealer.open(&sealed, AAD).unwrap(), b"refresh-token-XYZ");
        assert_ne!(
            sealer.seal(b"refresh-token-XYZ", AAD),
            sealed,
            "fresh nonce"
        );
    }

    #[test]
    fn tampering_is_corrupt() {
        let sealer = Sealer::new(SECRET, None);
        let sealed = sealer.seal(b"data", AAD);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(
                sealer.open(&bad, AAD),
                Err(BackendError::Corrupt(_))
            ));
        }
        assert!(sealer.open(&sealed[..5], AAD).is_err());
    }

    #[test]
    fn wrong_key_or_key_name_is_corrupt() {
        let sealed = Sealer::new(SECRET, None).seal(b"data", AAD);
        let other = Sealer::new(b"another-secret-0123456789abcdef0123456789", None);
        assert!(matches!(
            other.open(&sealed, AAD),
            Err(BackendError::Corrupt(_))
        ));
        let sealer = Sealer::new(SECRET, None);
        assert!(matches!(
            sealer.open(&sealed, b"dsgw:{abd}:s"),
            Err(BackendError::Corrupt(_))
        ));
    }

    #[test]
    fn rotation_opens_old_values_and_seals_with_the_new_key() {
        let old_value = Sealer::new(OLD, None).seal(b"old", AAD);
        let rotated = Sealer::new(SECRET, Some(OLD));
        assert_eq!(rotated.open(&old_value, AAD).unwrap(), b"old");
        let new_value = rotated.seal(b"new", AAD);
        assert_eq!(
            Sealer::new(SECRET, None).open(&new_value, AAD).unwrap(),
            b"new"
        );
        assert!(Sealer::new(OLD, None).open(&new_value, AAD).is_err());
        // After the rotation ends, values of the old secret no longer open.
        assert!(Sealer::new(SECRET, None).open(&old_value, AAD).is_err());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let text = format!("{:?}", Sealer::new(SECRET, Some(OLD)));
        assert!(text.starts_with("Sealer"));
        assert!(!text.contains("secret"));
    }
}
