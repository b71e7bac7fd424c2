//! [`RedisStore`]: the [`SessionStore`] shared by every gateway instance.
//!
//! A session is stored as JSON, sealed by the backend, under keys derived
//! from a hash of its id, with its remaining life as TTL. An in-memory
//! [`Cache`] in front answers proxied requests without a round trip while
//! the invalidation subscription is up; a refresh or logout on another
//! instance reaches it through that subscription.
//!
//! Errors: a Redis that does not answer is [`StoreError::Unavailable`],
//! never "not found". A stored value that does not decode (another secret,
//! tampering, another version's format) is taken as no session, with a
//! warning: the user logs in again, nothing else is affected.
//!
//! The refresh lease: [`SessionStore::acquire_lease`] takes the session's
//! lease (SET NX PX, polled with jittered sleeps up to the wait), keeps it
//! alive while the token call runs, and drops the cached copy so the
//! refresher's re-read sees Redis. The commit checks the lease and the
//! generation in one script; if the lease was lost meanwhile, the redeemed
//! pair is still stored by a plain generation compare-and-set.
//!
//! Not enforced here: `session.max_sessions` bounds only the cache (Redis
//! holds every session until it expires), and `session.max_sessions_per_user`
//! is not applied to Redis.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tracing::warn;

use super::cache::Cache;
use super::codec::{corrupt, decode, encode, unavailable};
use super::lease::CommitOutcome;
use super::runtime::Background;
use super::{BackendError, LeaseKeeper, RedisBackend, Sealer, Target};
use crate::docusign::TokenSet;
use crate::session::grants::{live, Added, TokenRecord};
use crate::session::model::Session;
use crate::session::store::{Lease, SessionStore, StoreError, TokenSwap};
use crate::util::ids::{log_id, random_id};
use crate::util::time::Clock;

/// What a [`RedisStore`] is built from.
pub struct RedisSettings {
    pub target: Target,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// How long a refresh lease lives without renewal: longer than the
    /// token call's timeout.
    pub lease_ttl: Duration,
    /// Sessions kept in the in-memory cache.
    pub cache_capacity: usize,
    /// `session.secret` (and the previous one while rotating).
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
}

/// Sleeps between two tries of a busy lease.
const LEASE_POLL_MS: std::ops::Range<u64> = 20..60;
/// Messages buffered between the subscriber and the cache.
const INVALIDATION_BUFFER: usize = 4096;
/// How often the approximate session count (a gauge) is re-read.
const COUNT_INTERVAL: Duration = Duration::from_secs(5);

pub struct RedisStore {
    backend: RedisBackend,
    cache: Arc<Cache>,
    lease_ttl: Duration,
    clock: Arc<dyn Clock>,
    /// The last approximate count, -1 until Redis answered once.
    approx_count: Arc<AtomicI64>,
    /// The runtime of the connection and subscriber tasks.
    _background: Background,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("backend", &self.backend)
            .finish()
    }
}

impl RedisStore {
    /// A store whose Redis connection and invalidation subscriber run on a
    /// small runtime of their own, so it can be built before any other
    /// runtime exists (pingora builds its own later) and used from any.
    /// Never waits for Redis. Fails only on an invalid target.
    pub fn start(settings: RedisSettings, clock: Arc<dyn Clock>) -> Result<Self, BackendError> {
        let background = Background::new()?;
        let handle = background.handle();
        let _entered = handle.enter();
        Self::build(settings, clock, background)
    }

    fn build(
        s: RedisSettings,
        clock: Arc<dyn Clock>,
        background: Background,
    ) -> Result<Self, BackendError> {
        let sealer = Sealer::new(&s.secret, s.previous_secret.as_deref());
        let backend = RedisBackend::connect(
            s.target,
            &s.key_prefix,
            s.connect_timeout,
            s.command_timeout,
            sealer,
        )?;
        let (rx, link) = backend.subscribe_linked(INVALIDATION_BUFFER);
        let cache = Arc::new(Cache::new(s.cache_capacity, link));
        tokio::spawn(cache.clone().follow(rx));
        let approx_count = Arc::new(AtomicI64::new(-1));
        tokio::spawn(poll_count(backend.clone(), Arc::downgrade(&approx_count)));
        Ok(RedisStore {
            backend,
            cache,
            lease_ttl: s.lease_ttl,
            clock,
            approx_count,
            _background: background,
        })
    }

    /// The approximate number of sessions in Redis as last read (every few
    /// seconds, in the background), for a gauge; -1 before the first answer.
    pub fn approx_count(&self) -> i64 {
        self.approx_count.load(Ordering::Relaxed)
    }

    /// Sessions in the cache of this instance.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The backend, for tests and tools.
    pub fn backend(&self) -> &RedisBackend {
        &self.backend
    }

    /// The session's remaining life, and a second: expiry is decided by
    /// the session's own `expires_at` (whole seconds) on every read; the
    /// TTL only has Redis drop it afterwards.
    fn ttl_of(&self, session: &Session) -> Duration {
        let left = session
            .expires_at
            .saturating_mul(1000)
            .saturating_sub(self.clock.now_millis());
        Duration::from_millis(left.saturating_add(1000))
    }

    /// Session `id` as Redis holds it now (the cache is refilled from it).
    async fn read(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        let ticket = self.cache.ticket();
        let record = match self.backend.get(id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(BackendError::Corrupt(e)) => return Ok(corrupt(id, &e)),
            Err(e) => return Err(unavailable(e)),
        };
        let session = match decode(record.0, &record.1) {
            Ok(session) if session.id == id => Arc::new(session),
            Ok(_) => return Ok(corrupt(id, "another session's record")),
            Err(e) => return Ok(corrupt(id, &e)),
        };
        let now = self.clock.now_millis();
        if session.is_expired(now / 1000) {
            return Ok(None);
        }
        self.cache.fill(ticket, &session, now);
        Ok(Some(session))
    }

    /// Stores `next` (built from `current`) by compare-and-set, with the
    /// lease if one is given.
    async fn write_next(
        &self,
        lease: Option<&Lease>,
        current: &Session,
        next: Session,
    ) -> Result<TokenSwap, StoreError> {
        let id = current.id.as_str();
        let expected = current.tokens.generation;
        let data = encode(&next)?;
        let ttl = self.ttl_of(&next);
        let mut outcome = match lease {
            Some(lease) => {
                let commit = self.backend.commit(id, &lease.owner, expected, &data, ttl);
                commit.await
            }
            None => self.backend.swap(id, expected, &data, ttl).await,
        }
        .map_err(unavailable)?;
        if outcome == CommitOutcome::LeaseLost {
            // The pair is redeemed already: store it unless another refresh
            // moved the generation on.
            warn!(session = %log_id(id), "refresh lease lost before the commit; storing by generation");
            outcome = self
                .backend
                .swap(id, expected, &data, ttl)
                .await
                .map_err(unavailable)?;
        }
        self.cache.forget(id);
        match outcome {
            CommitOutcome::Committed(_) => {
                let next = Arc::new(next);
                self.cache
                    .fill(self.cache.ticket(), &next, self.clock.now_millis());
                Ok(TokenSwap::Replaced(next))
            }
            CommitOutcome::Stale(_) | CommitOutcome::LeaseLost => match self.read(id).await? {
                Some(now) => Ok(TokenSwap::Stale(now)),
                None => Ok(TokenSwap::Gone),
            },
            CommitOutcome::Gone => Ok(TokenSwap::Gone),
        }
    }

    /// Replaces the pair of `id` at `expected` (under `lease` if given).
    async fn replace_tokens(
        &self,
        lease: Option<&Lease>,
        id: &str,
        expected: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError> {
        let Some(current) = self.read(id).await? else {
            return Ok(TokenSwap::Gone);
        };
        if current.tokens.generation != expected {
            return Ok(TokenSwap::Stale(current));
        }
        let next = current.with_tokens(tokens, self.clock.now_unix());
        self.write_next(lease, &current, next).await
    }
}

/// Re-reads the approximate count until the store is dropped.
async fn poll_count(backend: RedisBackend, count: std::sync::Weak<AtomicI64>) {
    loop {
        let n = backend.count_approx().await;
        let Some(count) = count.upgrade() else { return };
        if let Ok(n) = n {
            count.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
        drop(count);
        tokio::time::sleep(COUNT_INTERVAL).await;
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn insert(&self, session: Session) -> Result<Arc<Session>, StoreError> {
        let data = encode(&session)?;
        let ttl = self.ttl_of(&session);
        let ticket = self.cache.ticket();
        self.backend
            .put(&session.id, session.tokens.generation, &data, ttl)
            .await
            .map_err(unavailable)?;
        let session = Arc::new(session);
        self.cache.fill(ticket, &session, self.clock.now_millis());
        Ok(session)
    }

    async fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        let now = self.clock.now_millis();
        match self.cache.get(id, now) {
            Some(session) if !session.is_expired(now / 1000) => Ok(Some(session)),
            _ => self.read(id).await,
        }
    }

    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self.backend.delete(id).await.map_err(unavailable);
        self.cache.forget(id);
        removed
    }

    async fn swap_tokens(
        &self,
        id: &str,
        expected_generation: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError> {
        self.replace_tokens(None, id, expected_generation, tokens)
            .await
    }

    /// Approximate: the number of keys in Redis (see
    /// [`RedisBackend::count_approx`]).
    async fn add_token(
        &self,
        id: &str,
        record: TokenRecord,
        max: usize,
    ) -> Result<Added, StoreError> {
        let now = self.clock.now_unix();
        let added = self.backend.add_token(id, &record, max, now).await;
        self.cache.forget(id);
        added.map_err(unavailable)
    }

    async fn tokens(&self, id: &str) -> Result<Arc<Vec<TokenRecord>>, StoreError> {
        let now_ms = self.clock.now_millis();
        if let Some(tokens) = self.cache.tokens(id, now_ms) {
            return Ok(tokens);
        }
        // The session first: its end bounds how long the registry is cached.
        let Some(session) = self.get(id).await? else {
            return Ok(Arc::new(Vec::new()));
        };
        let ticket = self.cache.ticket();
        let records = self.backend.tokens(id).await.map_err(unavailable)?;
        let tokens = Arc::new(live(&records, now_ms / 1000));
        let expires_ms = session.expires_at.saturating_mul(1000);
        self.cache
            .fill_tokens(ticket, id, tokens.clone(), expires_ms, now_ms);
        Ok(tokens)
    }

    async fn revoke_token(&self, id: &str, token_id: &str) -> Result<bool, StoreError> {
        let revoked = self.backend.revoke_token(id, token_id).await;
        self.cache.forget(id);
        revoked.map_err(unavailable)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let n = self.backend.count_approx().await.map_err(unavailable)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn claim_state(&self, state_key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.backend
            .claim(state_key, ttl)
            .await
            .map_err(unavailable)
    }

    async fn acquire_lease(&self, id: &str, wait: Duration) -> Result<Option<Lease>, StoreError> {
        // Whatever happens, the caller re-reads next: from Redis.
        self.cache.forget(id);
        let owner = random_id();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let taken = self.backend.acquire_lease(id, &owner, self.lease_ttl);
            if taken.await.map_err(unavailable)? {
                // Again now that it is ours: while this waited, a read on
                // this instance may have cached the session from before
                // the previous holder's commit, whose invalidation may not
                // have arrived yet. The caller's re-read must see that
                // commit, or it would present a spent refresh token.
                self.cache.forget(id);
                let keeper = self.backend.keep_lease(id, &owner, self.lease_ttl);
                return Ok(Some(Lease {
                    session_id: id.to_owned(),
                    owner,
                    keeper: Some(Box::new(keeper)),
                }));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                self.cache.forget(id);
                return Ok(None);
            }
            let pause = Duration::from_millis(rand::thread_rng().gen_range(LEASE_POLL_MS));
            tokio::time::sleep(pause.min(deadline - now)).await;
        }
    }

    async fn commit_tokens(
        &self,
        lease: &Lease,
        expected_generation: u64,
        tokens: TokenSet,
    ) -> Result<TokenSwap, StoreError> {
        if let Some(keeper) = lease
            .keeper
            .as_ref()
            .and_then(|k| k.downcast_ref::<LeaseKeeper>())
        {
            if keeper.is_lost() {
                warn!(session = %log_id(&lease.session_id), "refresh lease was lost during the token call");
            }
        }
        let swap = self
            .replace_tokens(Some(lease), &lease.session_id, expected_generation, tokens)
            .await?;
        if !matches!(swap, TokenSwap::Replaced(_)) {
            // No commit ran (a committed script drops the lease itself): free
            // the lease now rather than at its expiry. Owner-checked.
            let _ = self
                .backend
                .release_lease(&lease.session_id, &lease.owner)
                .await;
        }
        Ok(swap)
    }

    async fn release_lease(&self, mut lease: Lease) -> Result<(), StoreError> {
        // Stop renewing first, then drop it if it is still ours.
        lease.keeper.take();
        self.backend
            .release_lease(&lease.session_id, &lease.owner)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
