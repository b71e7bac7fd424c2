//! Where sessions live. [`SessionStore`] is the interface (a shared store such
//! as Redis can implement it later); [`MemoryStore`] keeps them in a
//! `DashMap`, expires them after their ttl and never holds more than
//! `max_sessions` (expired ones go first, then the oldest).

use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;

use crate::session::Session;
use crate::util::time::now_unix;

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert(&self, session: Arc<Session>);
    /// The live session with this id; an expired one is removed and not returned.
    async fn get(&self, id: &str) -> Option<Arc<Session>>;
    async fn remove(&self, id: &str) -> Option<Arc<Session>>;
    /// How many sessions are stored (for metrics and readiness).
    async fn count(&self) -> usize;
}

pub struct MemoryStore {
    sessions: DashMap<String, Arc<Session>>,
    max_sessions: usize,
}

impl MemoryStore {
    pub fn new(max_sessions: usize) -> Self {
        MemoryStore {
            sessions: DashMap::new(),
            max_sessions: max_sessions.max(1),
        }
    }

    /// Sessions held (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn insert_at(&self, session: Arc<Session>, now: u64) {
        if self.sessions.len() >= self.max_sessions {
            self.sessions.retain(|_, s| !s.is_expired(now));
        }
        while self.sessions.len() >= self.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .min_by_key(|e| e.value().created_at)
                .map(|e| e.key().clone());
            match oldest {
                Some(id) => {
                    self.sessions.remove(&id);
                }
                None => break,
            }
        }
        self.sessions.insert(session.id.clone(), session);
    }

    fn get_at(&self, id: &str, now: u64) -> Option<Arc<Session>> {
        let session = self.sessions.get(id)?.value().clone();
        if session.is_expired(now) {
            self.sessions.remove_if(id, |_, s| s.is_expired(now));
            return None;
        }
        Some(session)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert(&self, session: Arc<Session>) {
        self.insert_at(session, now_unix());
    }

    async fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.get_at(id, now_unix())
    }

    async fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.sessions.remove(id).map(|(_, s)| s)
    }

    async fn count(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::model::test_support::session;

    fn with_created(created_at: u64, ttl: u64) -> Arc<Session> {
        let mut s = session(ttl);
        s.created_at = created_at;
        s.expires_at = created_at + ttl;
        Arc::new(s)
    }

    #[tokio::test]
    async fn insert_get_remove() {
        let store = MemoryStore::new(10);
        let s = Arc::new(session(60));
        store.insert(s.clone()).await;
        assert!(store.get(&s.id).await.is_some());
        assert!(store.get("nope").await.is_none());
        assert!(store.remove(&s.id).await.is_some());
        assert!(store.get(&s.id).await.is_none());
        assert_eq!(store.count().await, 0);
    }

    #[test]
    fn expired_sessions_are_gone() {
        let store = MemoryStore::new(10);
        let s = with_created(1000, 10);
        store.insert_at(s.clone(), 1000);
        assert!(store.get_at(&s.id, 1009).is_some());
        assert!(store.get_at(&s.id, 1010).is_none());
        assert_eq!(store.sessions.len(), 0);
    }

    #[test]
    fn bound_evicts_expired_then_oldest() {
        let store = MemoryStore::new(3);
        let expired = with_created(100, 10);
        let old = with_created(500, 1000);
        let mid = with_created(600, 1000);
        store.insert_at(expired.clone(), 100);
        store.insert_at(old.clone(), 500);
        store.insert_at(mid.clone(), 600);
        let new1 = with_created(700, 1000);
        store.insert_at(new1.clone(), 700);
        assert_eq!(store.sessions.len(), 3);
        assert!(store.get_at(&old.id, 700).is_some(), "expired goes first");
        let new2 = with_created(800, 1000);
        store.insert_at(new2.clone(), 800);
        assert_eq!(store.sessions.len(), 3);
        assert!(store.get_at(&old.id, 800).is_none(), "then the oldest");
        for s in [&mid, &new1, &new2] {
            assert!(store.get_at(&s.id, 800).is_some());
        }
    }
}
