//! Logins in progress: what `/auth/login` issued and the callback must find.
//!
//! Each entry is keyed by its `state`, holds the PKCE verifier, where to go
//! afterwards and the browser binding, and can be taken exactly once. Entries
//! expire after the login timeout, and the map never holds more than its bound,
//! so anonymous traffic cannot make it grow without limit.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use subtle::ConstantTimeEq;

use crate::util::secret::Secret;

#[derive(Debug)]
pub struct PendingLogin {
    pub pkce_verifier: Secret,
    pub return_to: String,
    /// The value of the login cookie of the browser that started the login.
    pub browser_binding: String,
    pub created: Instant,
}

/// Why a callback's state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Never issued, already used, or evicted.
    Unknown,
    Expired,
    /// Issued to another browser (or the login cookie is missing).
    OtherBrowser,
}

pub struct PendingLogins {
    entries: DashMap<String, PendingLogin>,
    ttl: Duration,
    max: usize,
}

impl PendingLogins {
    pub fn new(ttl: Duration, max: usize) -> Self {
        PendingLogins {
            entries: DashMap::new(),
            ttl,
            max: max.max(1),
        }
    }

    pub fn insert(&self, state: String, login: PendingLogin) {
        let now = Instant::now();
        if self.entries.len() >= self.max {
            self.entries
                .retain(|_, p| now.duration_since(p.created) < self.ttl);
        }
        while self.entries.len() >= self.max {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|e| e.value().created)
                .map(|e| e.key().clone());
            match oldest {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
        self.entries.insert(state, login);
    }

    /// Takes the login for `state` if it was issued to this browser and is
    /// not expired. A state presented by another browser stays pending.
    pub fn take(
        &self,
        state: &str,
        browser_binding: Option<&str>,
    ) -> Result<PendingLogin, StateError> {
        let now = Instant::now();
        let binding = browser_binding.unwrap_or("");
        let taken = self.entries.remove_if(state, |_, p| {
            bool::from(p.browser_binding.as_bytes().ct_eq(binding.as_bytes()))
        });
        match taken {
            Some((_, login)) if now.duration_since(login.created) < self.ttl => Ok(login),
            Some(_) => Err(StateError::Expired),
            None if self.entries.contains_key(state) => Err(StateError::OtherBrowser),
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

    fn login(binding: &str) -> PendingLogin {
        PendingLogin {
            pkce_verifier: Secret::new("v"),
            return_to: "/".into(),
            browser_binding: binding.into(),
            created: Instant::now(),
        }
    }

    #[test]
    fn single_use_and_bound_to_browser() {
        let p = PendingLogins::new(Duration::from_secs(60), 10);
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
        let p = PendingLogins::new(Duration::from_millis(1), 10);
        p.insert("s1".into(), login("b1"));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.take("s1", Some("b1")).unwrap_err(), StateError::Expired);
        assert!(p.is_empty());
    }

    #[test]
    fn bounded() {
        let p = PendingLogins::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            p.insert(format!("s{i}"), login("b"));
        }
        assert_eq!(p.len(), 3);
        assert!(p.take("s9", Some("b")).is_ok());
        assert_eq!(p.take("s0", Some("b")).unwrap_err(), StateError::Unknown);
    }
}
