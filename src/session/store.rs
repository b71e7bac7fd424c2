//! The interface of a session store. Every call can fail (a shared store
//! can be unreachable); a failure is never taken for "no such session", so
//! no session is ever deleted because a store did not answer.
//!
//! A refresh is a store write: [`SessionStore::swap_tokens`] replaces the
//! token pair only if the stored generation is still the one the refresh
//! started from (compare-and-set), so of two concurrent refreshes exactly one
//! wins and the other learns the winner's pair.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::grants::{Added, TokenRecord};
use super::model::Session;
use crate::docusign::TokenSet;

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timed out or refused: the session (if any) is intact;
    /// try again later.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
}

/// The outcome of a compare-and-set of a session's tokens.
#[derive(Debug, Clone)]
pub enum TokenSwap {
    /// The pair was replaced; this is the session as stored now.
    Replaced(Arc<Session>),
    /// The stored generation was not the expected one (another refresh
    /// won); this is the session as stored now.
    Stale(Arc<Session>),
    /// No such live session (logged out, expired or evicted).
    Gone,
}

/// One instance's right to refresh one session's tokens, across every
/// instance that shares the store. While it is held, no other instance
/// presents the session's refresh token.
pub struct Lease {
    pub session_id: String,
    /// Unique per acquisition.
    pub owner: String,
    /// Whatever the store needs while the lease is held (for example a task
    /// that renews it); dropped when the lease is committed or released.
    pub keeper: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Lease {
    /// A lease of a store that only this process uses: the refresher's
    /// in-process lock is all the exclusion needed.
    pub fn local(session_id: &str) -> Lease {
        Lease {
            session_id: session_id.to_string(),
            owner: String::new(),
            keeper: None,
        }
    }
}

/// Where sessions live.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// A short name for logs and `/readyz` ("memory", "redis").
    fn name(&self) -> &'static str;

    /// Stores a new session; a store with bounds may evict others for it.
    async fn insert(&self, session: Session) -> Result<Arc<Session>, StoreError>;

    /// The live session with this id; `Ok(None)` only when there is none.
    async fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError>;

    /// Ends a session (logout, refused refresh token). `Ok(false)` when
    /// there was none.
    async fn remove(&self, id: &str) -> Result<bool, StoreError>;

    /// Replaces the token pair if the stored generation is
    /// `expected_generation`; the new pair gets the next generation.
    async fn swap_tokens(
        &self,
        id: &str,
        expected_generation: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError>;

    /// Registers a gateway token of session `id`, unless the session has
    /// ended or already holds `max` live tokens.
    async fn add_token(
        &self,
        id: &str,
        record: TokenRecord,
        max: usize,
    ) -> Result<Added, StoreError>;

    /// The live tokens of session `id` (none when it has ended). On the
    /// request path of every gateway token: a store with a cache answers
    /// from it.
    async fn tokens(&self, id: &str) -> Result<Arc<Vec<TokenRecord>>, StoreError>;

    /// Revokes token `token_id` of session `id`: false when it was not
    /// there. Every instance refuses it from then on.
    async fn revoke_token(&self, id: &str, token_id: &str) -> Result<bool, StoreError>;

    /// How many sessions are stored (for metrics).
    async fn count(&self) -> Result<usize, StoreError>;

    /// Marks a login's OAuth `state` as used, for `ttl`: true the first
    /// time, false ever after (a state is single-use on every instance).
    /// `state_key` is a hash of the state, never the state itself.
    async fn claim_state(&self, state_key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Takes the session's refresh lease, waiting at most `wait` while
    /// another instance holds it (`Ok(None)`: still held). A store of one
    /// process grants it at once.
    async fn acquire_lease(&self, id: &str, wait: Duration) -> Result<Option<Lease>, StoreError> {
        let _ = wait;
        Ok(Some(Lease::local(id)))
    }

    /// Stores a refreshed pair under the lease (compare-and-set on the
    /// generation, and on the lease where the store has one) and releases it.
    async fn commit_tokens(
        &self,
        lease: &Lease,
        expected_generation: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError> {
        self.swap_tokens(&lease.session_id, expected_generation, tokens)
            .await
    }

    /// Gives the lease up without a commit (the refresh failed).
    async fn release_lease(&self, lease: Lease) -> Result<(), StoreError> {
        drop(lease);
        Ok(())
    }
}
