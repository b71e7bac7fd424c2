//! [`MemoryStore`]: sessions in process memory, in a [`TtlMap`] bounded by
//! `session.max_sessions` (expired sessions go first, then the oldest) and
//! by `max_sessions_per_user`... see [`MemoryStore::new`].

use std::sync::Arc;

use async_trait::async_trait;

use super::model::Session;
use super::store::{SessionStore, StoreError, TokenSwap};
use crate::docusign::TokenSet;
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

pub struct MemoryStore {
    sessions: TtlMap<String, Arc<Session>>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// At most `max_sessions` sessions; time from `clock`.
    pub fn new(max_sessions: usize, clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            sessions: TtlMap::new(max_sessions),
            clock,
        }
    }

    /// Sessions held (some may have expired and not been swept yet).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn insert(&self, session: Session) -> Result<Arc<Session>, StoreError> {
        let session = Arc::new(session);
        let expires_ms = session.expires_at.saturating_mul(1000);
        self.sessions.insert(
            session.id.clone(),
            session.clone(),
            expires_ms,
            self.clock.now_millis(),
        );
        Ok(session)
    }

    async fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        Ok(self.sessions.get(id, self.clock.now_millis()))
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.sessions.remove(id).is_some())
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::conformance::{self, Subject};
    use crate::util::time::ManualClock;

    fn subject(capacity: usize) -> Subject {
        let clock = ManualClock::at_unix(1_000_000);
        let store = Arc::new(MemoryStore::new(capacity, clock.clone()));
        Subject::new(store, clock.clone(), move |secs| clock.advance_secs(secs))
    }

    #[tokio::test]
    async fn passes_the_store_conformance_suite() {
        conformance::run_all(|capacity| async move { subject(capacity) }).await;
    }
}
