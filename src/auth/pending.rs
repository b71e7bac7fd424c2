//! Logins in progress. What a login needs between `/auth/login` and the
//! callback (its `state`, the PKCE verifier, where to go afterwards, when it
//! expires) travels in the browser's encrypted, authenticated login cookie,
//! so it is bound to that browser, costs the server nothing, and completes on
//! any instance; no flood of anonymous logins can evict it. A browser keeps
//! its [`MAX_LOGINS_PER_BROWSER`] newest logins (several tabs).
//!
//! The server keeps only what makes a state single-use (the session store's
//! `claim_state`) and, for the `dsgw_pending_logins` gauge, a bounded map of
//! logins started here and not yet completed ([`PendingLogins`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::cookies::CookieCodec;
use crate::util::secret::{self, Secret};
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

/// Logins one browser can have in progress at once (the newest are kept).
pub const MAX_LOGINS_PER_BROWSER: usize = 3;
/// A longer `return_to` is replaced by the default (it must fit a cookie).
pub const MAX_RETURN_TO_LEN: usize = 512;

/// One login in progress, as the browser's login cookie carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    #[serde(with = "secret::stored")]
    pub state: Secret,
    #[serde(with = "secret::stored")]
    pub pkce_verifier: Secret,
    pub return_to: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a callback's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is unknown or was already used")]
    Unknown,
    #[error("the login has expired")]
    Expired,
    #[error("the browser has no login cookie (another browser started the login)")]
    OtherBrowser,
}

/// The logins in progress of one browser, from its login cookie.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BrowserLogins {
    logins: Vec<PendingLogin>,
}

impl BrowserLogins {
    /// The logins of a `Cookie` header (none if absent, forged or unreadable).
    pub fn from_cookie(codec: &CookieCodec, header: Option<impl AsRef<str>>) -> Option<Self> {
        let text = codec.login_from(header)?;
        serde_json::from_str(&text).ok()
    }

    /// Adds a login (newest first), dropping expired ones and the oldest
    /// beyond [`MAX_LOGINS_PER_BROWSER`].
    pub fn push(&mut self, login: PendingLogin, now: u64) {
        self.logins.retain(|l| l.expires_at > now);
        self.logins.insert(0, login);
        self.logins.truncate(MAX_LOGINS_PER_BROWSER);
    }

    /// Takes the login of `state` out (compared in constant time).
    pub fn take(&mut self, state: &str, now: u64) -> Result<PendingLogin, StateError> {
        let at = self
            .logins
            .iter()
            .position(|l| bool::from(l.state.expose().as_bytes().ct_eq(state.as_bytes())))
            .ok_or(StateError::Unknown)?;
        let login = self.logins.remove(at);
        if login.expires_at <= now {
            return Err(StateError::Expired);
        }
        Ok(login)
    }

    pub fn is_empty(&self) -> bool {
        self.logins.is_empty()
    }

    /// The `Set-Cookie` value that stores these logins (or clears the
    /// cookie when none is left).
    pub fn set_cookie(&self, codec: &CookieCodec, max_age: Duration) -> String {
        if self.logins.is_empty() {
            return codec.clear_login();
        }
        let text = serde_json::to_string(self).unwrap_or_default();
        codec.set_login(&text, max_age)
    }
}

/// The key under which a used state is remembered: a hash, never the state.
pub fn state_key(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Logins started on this instance and not completed, for the gauge only:
/// bounded (`session.max_pending_logins`), and nothing depends on it, so a
/// flood that fills it costs no login.
pub struct PendingLogins {
    started: TtlMap<String, ()>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl PendingLogins {
    pub fn new(ttl: Duration, max: usize, clock: Arc<dyn Clock>) -> Self {
        PendingLogins {
            started: TtlMap::new(max),
            ttl,
            clock,
        }
    }

    pub fn started(&self, state: &str) {
        let now = self.clock.now_millis();
        let expires = now.saturating_add(self.ttl.as_millis() as u64);
        self.started.insert(state_key(state), (), expires, now);
    }

    pub fn finished(&self, state: &str) {
        self.started.remove(state_key(state).as_str());
    }

    /// Logins in progress (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.started.purge_expired(self.clock.now_millis(), 1024);
        self.started.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
