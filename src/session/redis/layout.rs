//! Key names in Redis, cluster safe.
//!
//! Every key of one session carries the same hash tag, `{<tag>}`, so Redis
//! Cluster puts them in one slot and a Lua script may touch them together.
//! The tag is a hex prefix of SHA-256 of the session id the caller passes:
//! neither the raw id nor any cookie value ever appears in a key name.

use sha2::{Digest, Sha256};

/// Bytes of SHA-256 kept in the tag (128 bits: collisions are out of reach).
const TAG_BYTES: usize = 16;

/// The key names of one key prefix (`[redis] key_prefix`).
#[derive(Clone, Debug)]
pub struct Layout {
    prefix: String,
}

/// The keys of one session id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Hex hash of the session id; what invalidation messages carry.
    pub tag: String,
    /// HASH with fields `gen` and `data` (sealed).
    pub record: String,
    /// Refresh lease: a string holding the owner id, with a TTL.
    pub lease: String,
    /// A login in progress (sealed), with the login timeout as TTL.
    pub login: String,
    /// HASH of the session's gateway tokens: field = token id, value =
    /// `<expires_at>:<sealed record>`; lives as long as the record.
    pub tokens: String,
}

/// Hex tag of a session id: the first 16 bytes of its SHA-256.
pub fn tag_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    hex::encode(&digest[..TAG_BYTES])
}

impl Layout {
    pub fn new(prefix: &str) -> Self {
        Layout {
            prefix: prefix.to_owned(),
        }
    }

    /// `[redis] key_prefix`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// All keys of the session `id`.
    pub fn keys(&self, id: &str) -> SessionKeys {
        let tag = tag_of(id);
        let base = format!("{}:{{{}}}", self.prefix, tag);
        SessionKeys {
            record: format!("{base}:s"),
            lease: format!("{base}:lk"),
            login: format!("{base}:login"),
            tokens: format!("{base}:tk"),
            tag,
        }
    }

    /// The key marking a single-use `name` as claimed (see
    /// [`RedisBackend::claim`](super::RedisBackend::claim)).
    pub fn claim_key(&self, name: &str) -> String {
        format!("{}:{{{}}}:claim", self.prefix, tag_of(name))
    }

    /// The pub/sub channel on which changed and deleted sessions are announced.
    pub fn channel(&self) -> String {
        format!("{}:invalidate", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag_and_hide_the_id() {
        let keys = Layout::new("dsgw").keys("session-id-123");
        assert_eq!(keys.tag.len(), 2 * TAG_BYTES);
        assert!(keys.tag.chars().all(|c| c.is_ascii_hexdigit()));
        let tagged = format!("dsgw:{{{}}}:", keys.tag);
        for key in [&keys.record, &keys.lease, &keys.login, &keys.tokens] {
            assert!(key.starts_with(&tagged), "{key}");
            assert!(!key.contains("session-id-123"));
        }
        assert_eq!(keys.record, format!("{tagged}s"));
        assert_eq!(keys.lease, format!("{tagged}lk"));
        assert_eq!(keys.login, format!("{tagged}login"));
        assert_eq!(keys.tokens, format!("{tagged}tk"));
    }

    #[test]
    fn tags_differ_per_id_and_are_stable() {
        assert_eq!(tag_of("a"), tag_of("a"));
        assert_ne!(tag_of("a"), tag_of("b"));
        // SHA-256("abc") starts with ba7816bf8f01cfea414140de5dae2223.
        assert_eq!(tag_of("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn channel_uses_the_prefix() {
        assert_eq!(Layout::new("x").channel(), "x:invalidate");
    }
}
