//! A session's registry of gateway tokens: what was minted (id, name,
//! scope, lifetime; never the token's value), so that the live ones can be
//! listed and one revoked without ending the session. A token with an id is
//! accepted only while its record is here.

use serde::{Deserialize, Serialize};

use crate::crypto::scope::Scope;

/// One live gateway token of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    pub issued_at: u64,
    pub expires_at: u64,
}

impl TokenRecord {
    pub fn is_live(&self, now_unix: u64) -> bool {
        now_unix < self.expires_at
    }
}

/// What adding a token to a session's registry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The session holds `session.max_tokens_per_session` live tokens.
    Full,
    /// The session has ended.
    NoSession,
}

/// The live records of `records` at `now_unix`.
pub fn live(records: &[TokenRecord], now_unix: u64) -> Vec<TokenRecord> {
    records
        .iter()
        .filter(|r| r.is_live(now_unix))
        .cloned()
        .collect()
}
