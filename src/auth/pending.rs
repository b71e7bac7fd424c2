//! Logins in progress: what `/auth/login` issued and the callback must find.
//!
//! Each entry is keyed by its `state`, holds the PKCE verifier, where to go
//! afterwards and the browser binding, and can be taken exactly once. Entries
//! expire after the login timeout, and the map never holds more than its bound
//! (a [`TtlMap`]: expired entries go first, then the oldest, in O(log n)), so
//! anonymous traffic cannot make it grow without limit.

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::util::secret::Secret;
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

#[derive(Debug, Clone)]
pub struct PendingLogin {
    pub pkce_verifier: Secret,
    pub return_to: String,
    /// The value of the login cookie of the browser that started the login.
    pub browser_binding: String,
}

/// Why a callback's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is unknown, already used or evicted")]
    Unknown,
    #[error("the login has expired")]
    Expired,
    #[error("the state was issued to another browser")]
    OtherBrowser,
}

#[derive(Clone)]
struct Entry {
    login: Arc<PendingLogin>,
    expires_at_ms: u64,
}

pub struct PendingLogins {
    entries: TtlMap<String, Entry>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl PendingLogins {
    pub fn new(ttl: Duration, max: usize, clock: Arc<dyn Clock>) -> Self {
        PendingLogins {
            entries: TtlMap::new(max),
            ttl,
            clock,
        }
    }

    pub fn insert(&self, state: String, login: PendingLogin) {
        let now = self.clock.now_millis();
        let expires_at_ms = now.saturating_add(self.ttl.as_millis() as u64);
        let entry = Entry {
            login: Arc::new(login),
            expires_at_ms,
        };
        self.entries.insert(state, entry, expires_at_ms, now);
    }

    /// Takes the login for `state` if it was issued to this browser and is
    /// not expired. A state presented by another browser stays pending.
    pub fn take(
        &self,
        state: &str,
        browser_binding: Option<&str>,
    ) -> Result<Arc<PendingLogin>, StateError> {
        let now = self.clock.now_millis();
        let binding = browser_binding.unwrap_or("");
        let taken = self.entries.remove_if(state, |e| {
            bool::from(e.login.browser_binding.as_bytes().ct_eq(binding.as_bytes()))
        });
        match taken {
            Some(e) if now < e.expires_at_ms => Ok(e.login),
            Some(_) => Err(StateError::Expired),
            None if self.entries.contains_key(state, now) => Err(StateError::OtherBrowser),
            None => Err(StateError::Unknown),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::time::ManualClock;

    fn login(binding: &str) -> PendingLogin {
        PendingLogin {
            pkce_verifier: Secret::new("v"),
            return_to: "/".into(),
            browser_binding: binding.into(),
        }
    }

    fn logins(ttl_secs: u64, max: usize) -> (PendingLogins, Arc<ManualClock>) {
        let clock = ManualClock::at_unix(1_000);
        let p = PendingLogins::new(Duration::from_secs(ttl_secs), max, clock.clone());
        (p, clock)
    }

    #[test]
    fn single_use_and_bound_to_browser() {
        let (p, _) = logins(60, 10);
        p.insert("s1".into(), login("b1"));
        assert_eq!(
            p.take("s1", Some("b2")).unwrap_err(),
            StateError::OtherBrowser
        );
        assert_eq!(p.take("s1", None).unwrap_err(), StateError::OtherBrowser);
        assert!(p.take("s1", Some("b1")).is_ok());
        assert_eq!(p.take("s1", Some("b1")).unwrap_err(), StateError::Unknown);
        assert_eq!(
            p.take("forged", Some("b1")).unwrap_err(),
            StateError::Unknown
        );
    }

    #[test]
    fn expires() {
        let (p, clock) = logins(60, 10);
        p.insert("s1".into(), login("b1"));
        clock.advance_secs(60);
        assert_eq!(p.take("s1", Some("b1")).unwrap_err(), StateError::Expired);
        assert!(p.is_empty());
    }

    #[test]
    fn bounded() {
        let (p, _) = logins(60, 3);
        for i in 0..10 {
            p.insert(format!("s{i}"), login("b"));
        }
        assert_eq!(p.len(), 3);
        assert!(p.take("s9", Some("b")).is_ok());
        assert_eq!(p.take("s0", Some("b")).unwrap_err(), StateError::Unknown);
    }
}
