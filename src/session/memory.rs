//! [`MemoryStore`]: sessions in process memory, in a [`TtlMap`] bounded by
//! `session.max_sessions` (expired sessions go first, then the oldest), and
//! per user by `session.max_sessions_per_user`: a user's new session evicts
//! that user's oldest, never another user's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::grants::{live, Added, TokenRecord};
use super::model::Session;
use super::store::{SessionStore, StoreError, TokenSwap};
use crate::docusign::TokenSet;
use crate::ops::audit::{self, Event};
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

pub struct MemoryStore {
    /// By id; the map's key is shared by its indexes and the user index.
    sessions: TtlMap<Arc<str>, Arc<Session>>,
    /// Logins' states already used (single use), until they expire: the
    /// first 128 bits of a SHA-256 of the state key (no string per login).
    used_states: TtlMap<u128, ()>,
    /// Session ids of each user, oldest first (ids of sessions that ended
    /// are dropped lazily; see [`UserIndex`]).
    users: Mutex<UserIndex>,
    max_per_user: usize,
    /// Each session's registry of gateway tokens, until the session ends
    /// (by session id; as many entries as sessions at most).
    tokens: TtlMap<Arc<str>, Arc<Vec<TokenRecord>>>,
    /// Serialises the read-modify-write of a registry.
    token_writes: Mutex<()>,
    clock: Arc<dyn Clock>,
}

/// No tokens.
fn no_tokens() -> Arc<Vec<TokenRecord>> {
    Arc::new(Vec::new())
}

/// Which sessions each user has. Kept small: a user's list is pruned of
/// ended sessions whenever the user logs in, and the whole index when it
/// names more users than the store can hold sessions. Users are keyed by a
/// digest of their `sub` (no string per user), and a user's first session
/// takes a list of one.
#[derive(Default)]
struct UserIndex {
    by_user: HashMap<u128, VecDeque<Arc<str>>>,
}

impl MemoryStore {
    /// At most `max_sessions` sessions, `max_per_user` of them per user;
    /// time from `clock`.
    pub fn new(max_sessions: usize, max_per_user: usize, clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            sessions: TtlMap::new(max_sessions),
            used_states: TtlMap::new(max_sessions),
            users: Mutex::new(UserIndex::default()),
            max_per_user: max_per_user.max(1),
            tokens: TtlMap::new(max_sessions),
            token_writes: Mutex::new(()),
            clock,
        }
    }

    /// Makes room for one more session of `user`: returns the ids of that
    /// user's oldest sessions beyond the bound, which the caller removes.
    fn admit(&self, user: &str, id: &Arc<str>, now_ms: u64) -> Vec<Arc<str>> {
        let mut index = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if index.by_user.len() > self.sessions.capacity() {
            let live = |id: &Arc<str>| self.sessions.contains_key(&**id, now_ms);
            index.by_user.retain(|_, ids| {
                ids.retain(live);
                !ids.is_empty()
            });
        }
        let ids = index
            .by_user
            .entry(digest(user))
            .or_insert_with(|| VecDeque::with_capacity(1));
        // Forget ended sessions only when the user is at the bound: a check
        // per login would cost O(sessions of the user).
        if ids.len() >= self.max_per_user {
            ids.retain(|id| self.sessions.contains_key(&**id, now_ms));
        }
        let mut evicted = Vec::new();
        while ids.len() >= self.max_per_user {
            evicted.extend(ids.pop_front());
        }
        ids.push_back(id.clone());
        evicted
    }

    /// Sessions held (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

/// A live session made room for a new one.
fn audit_evicted(session: &Session, bound: &'static str) {
    audit::emit(
        Event::new("session_ended")
            .with("session", session.log_id().to_string())
            .with("user", session.user.sub.as_str())
            .with("reason", "evicted")
            .with("bound", bound),
    );
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn insert(&self, session: Session) -> Result<Arc<Session>, StoreError> {
        let session = Arc::new(session);
        let id: Arc<str> = Arc::from(session.id.as_str());
        let now = self.clock.now_millis();
        for oldest in self.admit(&session.user.sub, &id, now) {
            if let Some(ended) = self.sessions.remove(&*oldest) {
                audit_evicted(&ended, "max_sessions_per_user");
            }
        }
        let expires_ms = session.expires_at.saturating_mul(1000);
        for (_, ended) in self.sessions.insert(id, session.clone(), expires_ms, now) {
            if ended.expires_at.saturating_mul(1000) > now {
                audit_evicted(&ended, "max_sessions");
            }
        }
        Ok(session)
    }

    async fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.sessions.get(id, self.clock.now_millis()))
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.tokens.remove(id);
        Ok(self.sessions.remove(id).is_some())
    }

    async fn add_token(
        &self,
        id: &str,
        record: TokenRecord,
        max: usize,
    ) -> Result<Added, StoreError> {
        let _write = self.token_writes.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = self.clock.now_millis();
        let Some(session) = self.sessions.get(id, now_ms) else {
            return Ok(Added::NoSession);
        };
        let current = self.tokens.get(id, now_ms).unwrap_or_else(no_tokens);
        let mut next = live(&current, now_ms / 1000);
        if next.len() >= max {
            return Ok(Added::Full);
        }
        next.push(record);
        let expires_ms = session.expires_at.saturating_mul(1000);
        self.tokens
            .insert(Arc::from(id), Arc::new(next), expires_ms, now_ms);
        Ok(Added::Added)
    }

    async fn tokens(&self, id: &str) -> Result<Arc<Vec<TokenRecord>>, StoreError> {
        let now_ms = self.clock.now_millis();
        if self.sessions.get(id, now_ms).is_none() {
            return Ok(no_tokens());
        }
        Ok(self.tokens.get(id, now_ms).unwrap_or_else(no_tokens))
    }

    async fn revoke_token(&self, id: &str, token_id: &str) -> Result<bool, StoreError> {
        let _write = self.token_writes.lock().unwrap_or_else(|p| p.into_inner());
        let now_ms = self.clock.now_millis();
        let (Some(session), Some(current)) =
            (self.sessions.get(id, now_ms), self.tokens.get(id, now_ms))
        else {
            return Ok(false);
        };
        let now = now_ms / 1000;
        if !current.iter().any(|r| r.id == token_id && r.is_live(now)) {
            return Ok(false);
        }
        let next: Vec<TokenRecord> = live(&current, now)
            .into_iter()
            .filter(|r| r.id != token_id)
            .collect();
        let expires_ms = session.expires_at.saturating_mul(1000);
        self.tokens
            .insert(Arc::from(id), Arc::new(next), expires_ms, now_ms);
        Ok(true)
    }

    async fn swap_tokens(
        &self,
        id: &str,
        expected_generation: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError> {
        let now = self.clock.now_millis();
        let swapped = self.sessions.update(id, now, |stored| {
            if stored.tokens.generation != expected_generation {
                return TokenSwap::Stale(stored.clone());
            }
            *stored = Arc::new(stored.with_tokens(tokens, now / 1000));
            TokenSwap::Replaced(stored.clone())
        });
        Ok(swapped.unwrap_or(TokenSwap::Gone))
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.sessions.len())
    }

    async fn claim_state(&self, state_key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.clock.now_millis();
        let key = digest(state_key);
        if self.used_states.contains_key(&key, now) {
            return Ok(false);
        }
        let expires = now.saturating_add(ttl.as_millis() as u64);
        self.used_states.insert(key, (), expires, now);
        Ok(true)
    }
}

/// 128 bits of a SHA-256 of a state key or a user's `sub`: two different
/// texts share a digest with odds of 2^-128 per pair.
fn digest(text: &str) -> u128 {
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::conformance::{self, Subject};
    use crate::util::time::ManualClock;

    fn subject(capacity: usize) -> Subject {
        let clock = ManualClock::at_unix(1_000_000);
        let store = Arc::new(MemoryStore::new(capacity, capacity, clock.clone()));
        Subject::new(store, clock.clone(), move |secs| clock.advance_secs(secs))
    }

    #[tokio::test]
    async fn a_users_new_session_evicts_only_that_users_oldest() {
        use crate::session::model::test_support::session_at;
        let clock = ManualClock::at_unix(1_000_000);
        let store = MemoryStore::new(100, 2, clock.clone());
        let of = |user: &str| {
            let mut s = session_at(1_000_000, 600);
            s.user.sub = user.to_string();
            s
        };
        let victim = store.insert(of("victim")).await.unwrap();
        let mut mallory = Vec::new();
        for _ in 0..50 {
            mallory.push(store.insert(of("mallory")).await.unwrap());
        }
        assert!(
            store.get(&victim.id).await.unwrap().is_some(),
            "another user's session stays"
        );
        let kept: Vec<_> = mallory
            .iter()
            .filter(|s| store.sessions.contains_key(s.id.as_str(), 0))
            .collect();
        assert_eq!(kept.len(), 2, "mallory keeps only the newest two");
        assert_eq!(kept[1].id, mallory[49].id);
        assert_eq!(store.len(), 3);
        // An ended session does not count against its user's bound.
        let first = store.insert(of("ada")).await.unwrap();
        let second = store.insert(of("ada")).await.unwrap();
        store.remove(&first.id).await.unwrap();
        let third = store.insert(of("ada")).await.unwrap();
        assert!(
            store.get(&second.id).await.unwrap().is_some(),
            "still one of two"
        );
        assert!(store.get(&third.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn passes_the_store_conformance_suite() {
        conformance::run_all(|capacity| async move { subject(capacity) }).await;
    }
}
