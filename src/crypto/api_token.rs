//! Gateway-issued bearer tokens for API clients (curl, scripts, DocuSign's
//! SDKs): JWTs signed HS256 with a key derived from `session.secret` (not the
//! cookie key), naming the session they act for. They are never sent to
//! DocuSign; the gateway swaps them for the session's DocuSign token.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::crypto::keys;
use crate::util::time::now_unix;

/// The `aud` of every gateway token.
pub const AUDIENCE: &str = "docusign-gateway";
/// Tokens longer than this are not even parsed.
const MAX_TOKEN_LEN: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The DocuSign user id.
    pub sub: String,
    /// The session id.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

pub struct ApiTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
}

impl ApiTokens {
    /// `issuer` is the gateway's public URL.
    pub fn new(secret: &[u8], issuer: &str, ttl_secs: u64) -> Self {
        let key: [u8; 32] = keys::derive(secret, keys::API_TOKEN_KEY);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        ApiTokens {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            issuer: issuer.to_string(),
            ttl_secs,
        }
    }

    /// A token for this session, living `ttl` but never past `session_expires_at`.
    pub fn mint(&self, sub: &str, sid: &str, now: u64, session_expires_at: u64) -> (String, u64) {
        let exp = now.saturating_add(self.ttl_secs).min(session_expires_at);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_string(),
            sub: sub.to_string(),
            sid: sid.to_string(),
            iat: now,
            exp,
        };
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default();
        (token, exp)
    }

    /// The claims of a valid token: signature, algorithm, exp, iss and aud
    /// checked. Anything else is `None`. A token is valid while `now < exp`:
    /// jsonwebtoken (even with leeway 0) still accepts it in the second
    /// `now == exp`, so `exp` is checked here again, exactly.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
            .filter(|c| c.exp > now_unix())
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn tokens() -> ApiTokens {
        ApiTokens::new(SECRET, "http://gw.example", 3600)
    }

    #[test]
    fn round_trip() {
        let t = tokens();
        let now = now_unix();
        let (jwt, exp) = t.mint("user", "sid-1", now, now + 10_000);
        assert_eq!(exp, now + 3600);
        let c = t.verify(&jwt).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.sid.as_str(), c.aud.as_str()),
            ("user", "sid-1", AUDIENCE)
        );
        assert_eq!(c.iss, "http://gw.example");
    }

    #[test]
    fn never_outlives_the_session() {
        let now = now_unix();
        let (_, exp) = tokens().mint("u", "s", now, now + 60);
        assert_eq!(exp, now + 60);
    }

    #[test]
    fn refuses_altered_foreign_expired_and_unsigned_tokens() {
        let t = tokens();
        let now = now_unix();
        let (jwt, _) = t.mint("user", "sid-1", now, now + 10_000);
        let parts: Vec<&str> = jwt.split('.').collect();

        // Altered signature.
        let mut sig = parts[2].to_string();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        sig.replace_range(0..1, flipped);
        assert!(t
            .verify(&format!("{}.{}.{sig}", parts[0], parts[1]))
            .is_none());

        // Altered claims, old signature.
        let claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"iss":"http://gw.example","aud":AUDIENCE,"sub":"user","sid":"other","iat":now,"exp":now+100})).unwrap(),
        );
        assert!(t
            .verify(&format!("{}.{claims}.{}", parts[0], parts[2]))
            .is_none());

        // alg: none.
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(t.verify(&format!("{none}.{}.", parts[1])).is_none());

        // Another gateway's key, issuer or audience.
        let other = ApiTokens::new(
            b"another-secret-another-secret-xx",
            "http://gw.example",
            3600,
        );
        assert!(t
            .verify(&other.mint("user", "sid-1", now, now + 100).0)
            .is_none());
        let other_iss = ApiTokens::new(SECRET, "http://elsewhere", 3600);
        assert!(t
            .verify(&other_iss.mint("user", "sid-1", now, now + 100).0)
            .is_none());
        let foreign_aud = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"iss":"http://gw.example","aud":"someone-else","sub":"u","sid":"s","iat":now,"exp":now+100}),
            &EncodingKey::from_secret(&keys::derive::<32>(SECRET, keys::API_TOKEN_KEY)),
        )
        .unwrap();
        assert!(t.verify(&foreign_aud).is_none());

        // Expired.
        let (old, _) = t.mint("user", "sid-1", now - 7200, now - 10);
        assert!(t.verify(&old).is_none());

        // Garbage.
        for g in ["", "a.b.c", "not a jwt", &"x".repeat(10_000)] {
            assert!(t.verify(g).is_none());
        }
    }

    /// Issue 13, item 11: `exp` is exact, no second of grace.
    #[test]
    fn a_token_is_refused_from_its_exp_second_on() {
        let t = tokens();
        let now = now_unix();
        let (at_exp, exp) = t.mint("u", "s", now - 60, now);
        assert_eq!(exp, now);
        assert!(t.verify(&at_exp).is_none());
        let (next, _) = t.mint("u", "s", now, now + 2);
        assert!(t.verify(&next).is_some());
    }

    #[test]
    fn cookie_and_token_keys_differ() {
        let a: [u8; 32] = keys::derive(SECRET, keys::API_TOKEN_KEY);
        let b: [u8; 64] = keys::derive(SECRET, keys::COOKIE_KEY);
        assert_ne!(&a[..], &b[..32]);
    }
}
