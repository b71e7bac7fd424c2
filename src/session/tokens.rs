//! [`Tokens`]: a session's current DocuSign token pair, held in the form it
//! is used in and no other. The access token exists once, as the
//! `Authorization: Bearer ...` value every forwarded request carries (built
//! when the pair arrives, so once per generation). The refresh token, sent
//! only when the pair is refreshed, is kept in binary form
//! ([`PackedToken`]: three quarters of its text). Stores see the same record
//! as before: the tokens' text.

use bytes::Bytes;
use http::HeaderValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::docusign::TokenSet;
use crate::util::packed_token::PackedToken;
use crate::util::secret::Secret;

const BEARER: &[u8] = b"Bearer ";

/// The current DocuSign tokens of a session.
#[derive(Debug, Clone)]
pub struct Tokens {
    access: Access,
    refresh: Option<PackedToken>,
    /// When the access token expires (Unix seconds).
    pub expires_at: u64,
    /// Increases with every refresh; tells a request whether the pair it used
    /// has been replaced meanwhile.
    pub generation: u64,
    /// When this pair was obtained (Unix seconds).
    pub obtained_at: u64,
}

#[derive(Debug, Clone)]
enum Access {
    /// `Bearer <access token>`, marked sensitive (its `Debug` hides it).
    Header(HeaderValue),
    /// A token that cannot be a header value: kept, never sent (a request
    /// on it fails instead of carrying a broken header).
    Unsendable(Secret),
}

impl Tokens {
    pub fn new(set: TokenSet, generation: u64, obtained_at: u64) -> Tokens {
        let token = set.access_token.expose();
        let access = match bearer_value(token) {
            Some(value) => Access::Header(value),
            None => Access::Unsendable(set.access_token.clone()),
        };
        Tokens {
            access,
            refresh: set.refresh_token.map(|r| PackedToken::new(r.expose())),
            expires_at: set.expires_at,
            generation,
            obtained_at,
        }
    }

    /// The pair that replaces this one, one generation on. An answer
    /// without a refresh token keeps the current one.
    pub fn next(&self, set: TokenSet, obtained_at: u64) -> Tokens {
        let keep_refresh = set.refresh_token.is_none();
        let mut next = Tokens::new(set, self.generation + 1, obtained_at);
        if keep_refresh {
            next.refresh = self.refresh.clone();
        }
        next
    }

    /// The `Authorization` value that carries the access token (marked
    /// sensitive); `None` for a token that cannot be a header value.
    pub fn bearer(&self) -> Option<&HeaderValue> {
        match &self.access {
            Access::Header(value) => Some(value),
            Access::Unsendable(_) => None,
        }
    }

    /// The access token itself: only for the place that has to send or
    /// store it.
    pub fn expose_access_token(&self) -> &str {
        match &self.access {
            // Built from a `&str` after an ASCII prefix, so always UTF-8.
            Access::Header(value) => {
                std::str::from_utf8(&value.as_bytes()[BEARER.len()..]).unwrap_or_default()
            }
            Access::Unsendable(secret) => secret.expose(),
        }
    }

    /// The refresh token (its text rebuilt: only when a refresh sends it).
    pub fn refresh_token(&self) -> Option<Secret> {
        self.refresh.as_ref().map(|r| Secret::new(r.unpack()))
    }

    /// The pair as the token endpoint gave it (the stored form).
    fn to_set(&self) -> TokenSet {
        TokenSet {
            access_token: Secret::new(self.expose_access_token()),
            refresh_token: self.refresh_token(),
            expires_at: self.expires_at,
        }
    }
}

/// `Bearer <token>` in one allocation of its exact size, or `None` when the
/// token holds a byte a header value cannot.
fn bearer_value(token: &str) -> Option<HeaderValue> {
    let mut bytes = Vec::with_capacity(BEARER.len() + token.len());
    bytes.extend_from_slice(BEARER);
    bytes.extend_from_slice(token.as_bytes());
    let mut value = HeaderValue::from_maybe_shared(Bytes::from(bytes)).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The stored form, unchanged from when `Tokens` held a `TokenSet`:
/// `{"set": {"access_token", "refresh_token", "expires_at"}, "generation",
/// "obtained_at"}`, so records written by earlier versions still read.
#[derive(Serialize, Deserialize)]
struct Record {
    set: TokenSet,
    generation: u64,
    obtained_at: u64,
}

impl Serialize for Tokens {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Record {
            set: self.to_set(),
            generation: self.generation,
            obtained_at: self.obtained_at,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tokens, D::Error> {
        let r = Record::deserialize(d)?;
        Ok(Tokens::new(r.set, r.generation, r.obtained_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(access: &str, refresh: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: Secret::new(access),
            refresh_token: refresh.map(Secret::new),
            expires_at: 5000,
        }
    }

    #[test]
    fn the_access_token_is_held_once_as_its_header_value() {
        let t = Tokens::new(set("eyJ0.eyJ1.c2ln", Some("eyJ0.eyJy.c2ln")), 3, 1000);
        let bearer = t.bearer().unwrap();
        assert_eq!(bearer.to_str().unwrap(), "Bearer eyJ0.eyJ1.c2ln");
        assert!(bearer.is_sensitive());
        assert_eq!(t.expose_access_token(), "eyJ0.eyJ1.c2ln");
        assert_eq!(
            t.expose_access_token().as_ptr(),
            bearer.as_bytes()[BEARER.len()..].as_ptr(),
            "the token is the header value's bytes, not a copy"
        );
        assert_eq!(t.refresh_token().unwrap().expose(), "eyJ0.eyJy.c2ln");
        assert!(t.refresh.as_ref().unwrap().is_packed());
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_kept_and_never_sent() {
        let t = Tokens::new(set("a\nb", None), 0, 1000);
        assert!(t.bearer().is_none());
        assert_eq!(t.expose_access_token(), "a\nb");
        assert!(t.refresh_token().is_none());
    }

    #[test]
    fn the_next_pair_keeps_the_refresh_token_when_none_comes() {
        let t = Tokens::new(set("at", Some("rt")), 0, 1000);
        let next = t.next(set("at2", None), 1010);
        assert_eq!(next.generation, 1);
        assert_eq!(next.obtained_at, 1010);
        assert_eq!(next.expose_access_token(), "at2");
        assert_eq!(next.refresh_token().unwrap().expose(), "rt");
        let replaced = next.next(set("at3", Some("rt3")), 1020);
        assert_eq!(replaced.generation, 2);
        assert_eq!(replaced.refresh_token().unwrap().expose(), "rt3");
        assert_eq!(t.expose_access_token(), "at", "the old pair is untouched");
    }

    #[test]
    fn the_stored_record_keeps_its_earlier_form() {
        let t = Tokens::new(set("at", Some("rt")), 2, 1000);
        let value = serde_json::to_value(&t).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "set": {"access_token": "at", "refresh_token": "rt", "expires_at": 5000},
                "generation": 2,
                "obtained_at": 1000,
            })
        );
        let back: Tokens = serde_json::from_value(value).unwrap();
        assert_eq!(back.bearer().unwrap().to_str().unwrap(), "Bearer at");
        assert_eq!(back.refresh_token().unwrap().expose(), "rt");
        assert_eq!((back.generation, back.obtained_at), (2, 1000));
        let text = serde_json::to_string(&t).unwrap();
        assert!(!text.contains("Bearer"), "{text}");
        let none: Tokens = serde_json::from_str(
            r#"{"set":{"access_token":"at","refresh_token":null,"expires_at":1},"generation":0,"obtained_at":0}"#,
        )
        .unwrap();
        assert!(none.refresh_token().is_none());
    }

    #[test]
    fn debug_shows_no_token() {
        let t = Tokens::new(set("secret-access", Some("secret-refresh")), 0, 0);
        let text = format!("{t:?}");
        assert!(!text.contains("secret"), "{text}");
        let unsendable = Tokens::new(set("secret\naccess", None), 0, 0);
        assert!(!format!("{unsendable:?}").contains("secret"));
    }
}
