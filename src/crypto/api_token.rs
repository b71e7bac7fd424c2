//! Gateway-issued bearer tokens for API clients (curl, scripts, DocuSign's
//! SDKs): JWTs signed HS256 with a key derived from `session.secret` (not the
//! cookie key), naming the session they act for. They are never sent to
//! DocuSign; the gateway swaps them for the session's DocuSign token.

use std::sync::Arc;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::keys;
use crate::crypto::scope::Scope;
use crate::util::time::now_millis;
use crate::util::ttl_map::TtlMap;

/// The `aud` of every gateway token.
pub const AUDIENCE: &str = "docusign-gateway";
/// Tokens longer than this are not even parsed.
const MAX_TOKEN_LEN: usize = 4096;
/// Tokens that passed verification, kept (with their claims, until their
/// `exp`) so that a client's next request with the same token costs one map
/// lookup instead of a signature and two JSON parses. Only verified tokens
/// enter; the oldest leave first.
pub const VERIFIED_TOKENS_CACHED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The DocuSign user id.
    pub sub: String,
    /// The session id; `service:<name>` for a service's token.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    /// The `[[service]]` a service token acts for; absent on a session's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub svc: Option<String>,
    /// The token's id (not secret): what lists and revokes it. Tokens made
    /// before ids existed have none and act for their whole session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The name given at minting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the token may do; absent: all its session may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// What a session's new token is: its name, its lifetime and its scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    pub name: Option<String>,
    /// Seconds to live; `None`: `session.api_token_ttl_secs`.
    pub ttl_secs: Option<u64>,
    pub scope: Option<Scope>,
}

/// A minted token: its value, and the claims it carries.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub claims: Claims,
}

/// The `sid` of a service's gateway tokens (and the id of its session).
pub fn service_sid(name: &str) -> String {
    format!("{SERVICE_SID_PREFIX}{name}")
}

/// Whether a session id is a service's.
pub fn is_service(sid: &str) -> bool {
    sid.starts_with(SERVICE_SID_PREFIX)
}

/// What marks a session id as a service's.
pub const SERVICE_SID_PREFIX: &str = "service:";

/// A token id: 96 random bits, hex (not a secret: it cannot be used as a token).
fn random_token_id() -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub struct ApiTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
    verified: TtlMap<String, Arc<Claims>>,
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
            verified: TtlMap::new(VERIFIED_TOKENS_CACHED),
        }
    }

    /// A token for this session, living `ttl` but never past `session_expires_at`.
    pub fn mint(&self, sub: &str, sid: &str, now: u64, session_expires_at: u64) -> (String, u64) {
        let minted = self.mint_grant(sub, sid, now, session_expires_at, &Grant::default());
        (minted.token, minted.claims.exp)
    }

    /// A token for this session as `grant` describes it, with a new id;
    /// never living past `session_expires_at`.
    pub fn mint_grant(
        &self,
        sub: &str,
        sid: &str,
        now: u64,
        session_expires_at: u64,
        grant: &Grant,
    ) -> Minted {
        let ttl = grant.ttl_secs.unwrap_or(self.ttl_secs);
        let exp = now.saturating_add(ttl).min(session_expires_at);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_string(),
            sub: sub.to_string(),
            sid: sid.to_string(),
            iat: now,
            exp,
            svc: None,
            jti: Some(random_token_id()),
            name: grant.name.clone(),
            scope: grant.scope.clone().filter(|s| !s.is_whole()),
        };
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default();
        Minted { token, claims }
    }

    /// A token for the `[[service]]` `name` acting as DocuSign user `user_id`,
    /// as `grant` describes it (lifetime: the configured default when unset).
    pub fn mint_service(&self, name: &str, user_id: &str, now: u64, grant: &Grant) -> Minted {
        let exp = now.saturating_add(grant.ttl_secs.unwrap_or(self.ttl_secs));
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_string(),
            sub: user_id.to_string(),
            sid: service_sid(name),
            iat: now,
            exp,
            svc: Some(name.to_string()),
            jti: Some(random_token_id()),
            name: grant.name.clone(),
            scope: grant.scope.clone().filter(|s| !s.is_whole()),
        };
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default();
        Minted { token, claims }
    }

    /// The claims of a valid token: signature, algorithm, exp, iss and aud
    /// checked. Anything else is `None`. A token is valid while `now < exp`:
    /// jsonwebtoken (even with leeway 0) still accepts it in the second
    /// `now == exp`, so `exp` is checked here again, exactly.
    /// A token verified before is answered from the cache while `now < exp`
    /// (the cache entry expires at `exp`, to the millisecond).
    pub fn verify(&self, token: &str) -> Option<Arc<Claims>> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let now_ms = now_millis();
        if let Some(claims) = self.verified.get(token, now_ms) {
            return Some(claims);
        }
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
            .filter(|c| c.exp > now_ms / 1000)?;
        let claims = Arc::new(claims);
        let expires_at_ms = claims.exp.saturating_mul(1000);
        self.verified
            .insert(token.to_string(), claims.clone(), expires_at_ms, now_ms);
        Some(claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;
    use crate::util::time::now_unix;

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

    /// A verified token is answered from the cache with the same claims, and
    /// only until its `exp`; refused tokens never enter it.
    #[test]
    fn verified_tokens_are_cached_until_exp() {
        let t = tokens();
        let now = now_unix();
        let (jwt, _) = t.mint("user", "sid-1", now, now + 100);
        let first = t.verify(&jwt).unwrap();
        let again = t.verify(&jwt).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second answer is the cached one"
        );
        assert_eq!(t.verified.len(), 1);
        assert!(t.verify("not.a.token").is_none());
        assert_eq!(t.verified.len(), 1, "refused tokens are not kept");
        // One that expires: the cache does not outlive `exp`.
        let (short, exp) = t.mint("user", "sid-2", now, now + 1);
        assert!(t.verify(&short).is_some());
        while now_unix() < exp {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(t.verify(&short).is_none(), "refused from its exp second on");
    }

    #[test]
    fn service_tokens_name_their_service() {
        let t = tokens();
        let now = now_unix();
        let grant = Grant {
            ttl_secs: Some(60),
            ..Grant::default()
        };
        let minted = t.mint_service("backend", "u-guid", now, &grant);
        let (jwt, exp) = (minted.token, minted.claims.exp);
        assert_eq!(exp, now + 60);
        let c = t.verify(&jwt).unwrap();
        assert_eq!(c.svc.as_deref(), Some("backend"));
        assert_eq!(c.sid, "service:backend");
        assert_eq!(c.iat, now);
        let (session_jwt, _) = t.mint("user", "sid-1", now, now + 100);
        assert_eq!(t.verify(&session_jwt).unwrap().svc, None);
    }

    #[test]
    fn cookie_and_token_keys_differ() {
        let a: [u8; 32] = keys::derive(SECRET, keys::API_TOKEN_KEY);
        let b: [u8; 64] = keys::derive(SECRET, keys::COOKIE_KEY);
        assert_ne!(&a[..], &b[..32]);
    }
}
