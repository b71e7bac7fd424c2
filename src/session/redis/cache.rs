//! The in-memory cache in front of Redis: a proxied request whose session is
//! cached makes no Redis round trip.
//!
//! Entries are keyed by the session's tag (what invalidation messages
//! carry). The cache is trusted only while the invalidation subscription is
//! up and has been resynchronised: the subscription's link counter (see
//! [`RedisBackend::subscribe_linked`](super::RedisBackend::subscribe_linked))
//! is odd and equal to the value seen when the last `Resync` cleared the
//! cache. Otherwise every read goes to Redis. A read that started before an
//! invalidation does not fill the cache with what it read (an epoch that
//! every invalidation moves on, checked under the same lock).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc::Receiver;

use super::layout::tag_of;
use super::pubsub::Invalidation;
use crate::session::grants::TokenRecord;
use crate::session::model::Session;
use crate::util::ttl_map::TtlMap;

pub(crate) struct Cache {
    map: TtlMap<String, Arc<Session>>,
    /// Each cached session's token registry, under the same rules (and
    /// dropped with it by every invalidation of its tag).
    tokens: TtlMap<String, Arc<Vec<TokenRecord>>>,
    /// Moves on at every invalidation; guarded by `fill` for writers.
    epoch: AtomicU64,
    /// The subscription's link counter.
    link: Arc<AtomicU64>,
    /// The link value when the cache was last resynchronised.
    synced: AtomicU64,
    /// Held for writing while an invalidation is applied, for reading while
    /// a read's result is stored.
    fill: RwLock<()>,
}

/// The epoch a Redis read started in, to hand back to [`Cache::fill`].
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl Cache {
    pub(crate) fn new(capacity: usize, link: Arc<AtomicU64>) -> Self {
        Cache {
            map: TtlMap::new(capacity),
            tokens: TtlMap::new(capacity),
            epoch: AtomicU64::new(0),
            link,
            synced: AtomicU64::new(0),
            fill: RwLock::new(()),
        }
    }

    fn trusted(&self) -> bool {
        let link = self.link.load(Ordering::SeqCst);
        link % 2 == 1 && link == self.synced.load(Ordering::SeqCst)
    }

    /// The cached session `id`, if the cache may be trusted and holds it.
    pub(crate) fn get(&self, id: &str, now_ms: u64) -> Option<Arc<Session>> {
        if !self.trusted() {
            return None;
        }
        self.map
            .get(tag_of(id).as_str(), now_ms)
            .filter(|s| s.id == id)
    }

    /// To take before reading Redis.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::SeqCst))
    }

    /// Stores what a read (or a write of this instance) found, unless an
    /// invalidation came in since `ticket` or the cache is not trusted.
    pub(crate) fn fill(&self, ticket: Ticket, session: &Arc<Session>, now_ms: u64) {
        let _guard = self.fill.read().unwrap_or_else(|p| p.into_inner());
        if !self.trusted() || self.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        let expires_ms = session.expires_at.saturating_mul(1000);
        self.map
            .insert(tag_of(&session.id), session.clone(), expires_ms, now_ms);
    }

    /// The cached token registry of session `id`, if trusted and held.
    pub(crate) fn tokens(&self, id: &str, now_ms: u64) -> Option<Arc<Vec<TokenRecord>>> {
        if !self.trusted() {
            return None;
        }
        self.tokens.get(tag_of(id).as_str(), now_ms)
    }

    /// Stores the token registry a read found, under [`Cache::fill`]'s rules;
    /// kept until `expires_ms` (the session's end) at most.
    pub(crate) fn fill_tokens(
        &self,
        ticket: Ticket,
        id: &str,
        tokens: Arc<Vec<TokenRecord>>,
        expires_ms: u64,
        now_ms: u64,
    ) {
        let _guard = self.fill.read().unwrap_or_else(|p| p.into_inner());
        if !self.trusted() || self.epoch.load(Ordering::SeqCst) != ticket.0 {
            return;
        }
        self.tokens.insert(tag_of(id), tokens, expires_ms, now_ms);
    }

    /// Drops session `id` (this instance changed or ended it).
    pub(crate) fn forget(&self, id: &str) {
        self.apply(Invalidation::Session(tag_of(id)));
    }

    /// Applies one invalidation message.
    pub(crate) fn apply(&self, message: Invalidation) {
        let _guard = self.fill.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::SeqCst);
        match message {
            Invalidation::Session(tag) => {
                self.map.remove(tag.as_str());
                self.tokens.remove(tag.as_str());
            }
            Invalidation::Resync => {
                self.map.clear();
                self.tokens.clear();
                self.synced
                    .store(self.link.load(Ordering::SeqCst), Ordering::SeqCst);
            }
        }
    }

    /// Applies messages until the subscription ends.
    pub(crate) async fn follow(self: Arc<Self>, mut rx: Receiver<Invalidation>) {
        while let Some(message) = rx.recv().await {
            self.apply(message);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::model::test_support::session_at;

    fn cached(cache: &Cache, s: &Arc<Session>) -> bool {
        cache.get(&s.id, 1_000_000_000).is_some()
    }

    #[test]
    fn trusted_only_while_subscribed_and_resynced() {
        let link = Arc::new(AtomicU64::new(0));
        let cache = Cache::new(10, link.clone());
        let s = Arc::new(session_at(1_000_000, 600));
        let now = 1_000_000_000;
        cache.fill(cache.ticket(), &s, now);
        assert!(!cached(&cache, &s), "not subscribed yet: nothing cached");
        link.store(1, Ordering::SeqCst);
        assert!(!cached(&cache, &s));
        cache.fill(cache.ticket(), &s, now);
        assert!(!cached(&cache, &s), "subscribed but not resynced");
        cache.apply(Invalidation::Resync);
        cache.fill(cache.ticket(), &s, now);
        assert!(cached(&cache, &s));
        link.store(2, Ordering::SeqCst);
        assert!(!cached(&cache, &s), "subscription lost: bypassed");
        link.store(3, Ordering::SeqCst);
        assert!(!cached(&cache, &s), "resubscribed, Resync not handled yet");
        cache.apply(Invalidation::Resync);
        assert!(!cached(&cache, &s), "a Resync clears the cache");
    }

    #[test]
    fn invalidations_drop_entries_and_stale_reads_do_not_fill() {
        let link = Arc::new(AtomicU64::new(1));
        let cache = Cache::new(10, link);
        cache.apply(Invalidation::Resync);
        let (a, b) = (
            Arc::new(session_at(1_000_000, 600)),
            Arc::new(session_at(1_000_000, 600)),
        );
        let now = 1_000_000_000;
        cache.fill(cache.ticket(), &a, now);
        cache.fill(cache.ticket(), &b, now);
        cache.apply(Invalidation::Session(tag_of(&a.id)));
        assert!(!cached(&cache, &a));
        assert!(cached(&cache, &b));
        let before = cache.ticket();
        cache.forget(&b.id);
        cache.fill(before, &a, now);
        assert!(!cached(&cache, &a), "a read older than an invalidation");
        assert!(!cached(&cache, &b));
        assert_eq!(cache.len(), 0);
        // A registry goes with its session's invalidation.
        let t = cache.ticket();
        cache.fill_tokens(t, &a.id, Arc::new(Vec::new()), u64::MAX, now);
        assert!(cache.tokens(&a.id, now).is_some());
        cache.apply(Invalidation::Session(tag_of(&a.id)));
        assert!(cache.tokens(&a.id, now).is_none());
        let stale = cache.ticket();
        cache.forget(&a.id);
        cache.fill_tokens(stale, &a.id, Arc::new(Vec::new()), u64::MAX, now);
        assert!(
            cache.tokens(&a.id, now).is_none(),
            "a stale read does not fill"
        );
    }
}
