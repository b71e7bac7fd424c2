//! The store conformance suite: one set of checks that every
//! [`SessionStore`] must pass, written once. The memory store runs it in its
//! unit tests; a shared store runs it from its integration tests against a
//! real server. Each check panics with what went wrong.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::grants::{Added, TokenRecord};
use super::model::test_support::session_at;
use super::model::Session;
use super::store::{SessionStore, TokenSwap};
use crate::crypto::scope::Scope;
use crate::docusign::TokenSet;
use crate::util::secret::Secret;
use crate::util::time::Clock;

type Advance = Box<dyn Fn(u64) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A fresh, empty store under test, with the clock it reads and a way to
/// move that clock on.
pub struct Subject {
    pub store: Arc<dyn SessionStore>,
    pub clock: Arc<dyn Clock>,
    advance: Advance,
    /// The store evicts when it holds its capacity (checked by
    /// [`capacity_evicts_expired_then_oldest`]).
    pub bounded: bool,
    /// The clock is real time (see [`Subject::real_time`]).
    real_time: bool,
}

impl Subject {
    /// A bounded store whose clock moves at once (a manual clock).
    pub fn new(
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        advance: impl Fn(u64) + Send + Sync + 'static,
    ) -> Self {
        Subject {
            store,
            clock,
            advance: Box::new(move |secs| {
                advance(secs);
                Box::pin(async {})
            }),
            bounded: true,
            real_time: false,
        }
    }

    /// A store on real time (a server with its own clock): `advance` waits.
    pub fn real_time(store: Arc<dyn SessionStore>, clock: Arc<dyn Clock>, bounded: bool) -> Self {
        Subject {
            store,
            clock,
            advance: Box::new(|secs| {
                Box::pin(tokio::time::sleep(std::time::Duration::from_secs(secs)))
            }),
            bounded,
            real_time: true,
        }
    }

    /// On real time, waits until just after the next whole second, so that
    /// a check that expires sessions at whole seconds has its full margin.
    async fn align(&self) {
        if self.real_time {
            let into_second = self.clock.now_millis() % 1000;
            let wait = 1000 - into_second + 20;
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
    }

    async fn advance(&self, secs: u64) {
        (self.advance)(secs).await
    }

    fn session(&self, ttl: u64) -> Session {
        session_at(self.clock.now_unix(), ttl)
    }
}

fn tokens(access: &str, refresh: &str) -> TokenSet {
    TokenSet {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(refresh)),
        expires_at: u64::MAX / 2,
    }
}

/// Runs every check, each on a fresh store from `make(capacity)`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Subject>,
{
    insert_get_remove(make(100).await).await;
    expiry(make(100).await).await;
    capacity_evicts_expired_then_oldest(make(3).await).await;
    swap_tokens_by_generation(make(100).await).await;
    concurrent_swaps_have_one_winner(make(100).await).await;
    logout_ends_the_session(make(100).await).await;
    states_are_single_use(make(100).await).await;
    token_registry(make(100).await).await;
    expired_tokens_leave_the_registry(make(100).await).await;
}

fn record(id: &str, issued_at: u64, ttl: u64) -> TokenRecord {
    TokenRecord {
        id: id.into(),
        name: Some(format!("name-{id}")),
        scope: Some(Scope {
            accounts: Some(vec!["a1".into()]),
            methods: Some(vec!["GET".into()]),
            paths: None,
        }),
        issued_at,
        expires_at: issued_at + ttl,
    }
}

/// A session's tokens: added, listed, bounded (never evicted), revoked one
/// by one, and ended with the session.
pub async fn token_registry(s: Subject) {
    let now = s.clock.now_unix();
    let a = s.store.insert(s.session(600)).await.expect("insert");
    let b = s.store.insert(s.session(600)).await.expect("insert");
    assert!(s.store.tokens(&a.id).await.expect("tokens").is_empty());
    for id in ["t1", "t2", "t3"] {
        let added = s.store.add_token(&a.id, record(id, now, 300), 3).await;
        assert_eq!(added.expect("add"), Added::Added, "{id}");
    }
    let full = s.store.add_token(&a.id, record("t4", now, 300), 3).await;
    assert_eq!(full.expect("add"), Added::Full, "bounded, nothing evicted");
    let listed = s.store.tokens(&a.id).await.expect("tokens");
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(listed.len(), 3);
    for id in ["t1", "t2", "t3"] {
        assert!(ids.contains(&id), "{id} listed: {ids:?}");
    }
    assert_eq!(
        listed.iter().find(|t| t.id == "t2").expect("t2"),
        &record("t2", now, 300),
        "kept whole"
    );
    assert!(
        s.store.tokens(&b.id).await.expect("tokens").is_empty(),
        "per session"
    );
    assert!(s.store.revoke_token(&a.id, "t2").await.expect("revoke"));
    assert!(
        !s.store.revoke_token(&a.id, "t2").await.expect("revoke"),
        "once"
    );
    assert!(
        !s.store.revoke_token(&b.id, "t1").await.expect("revoke"),
        "not b's"
    );
    assert!(!s.store.revoke_token(&a.id, "nope").await.expect("revoke"));
    let ids: Vec<String> = s
        .store
        .tokens(&a.id)
        .await
        .expect("tokens")
        .iter()
        .map(|t| t.id.clone())
        .collect();
    assert!(
        !ids.contains(&"t2".to_string()) && ids.len() == 2,
        "{ids:?}"
    );
    let room = s.store.add_token(&a.id, record("t4", now, 300), 3).await;
    assert_eq!(
        room.expect("add"),
        Added::Added,
        "a revoked token frees its place"
    );
    let gone = s
        .store
        .add_token("no-such-session", record("x", now, 300), 3)
        .await;
    assert_eq!(gone.expect("add"), Added::NoSession);
    assert!(s.store.remove(&a.id).await.expect("remove"));
    assert!(
        s.store.tokens(&a.id).await.expect("tokens").is_empty(),
        "ended with it"
    );
    let after = s.store.add_token(&a.id, record("t5", now, 300), 3).await;
    assert_eq!(after.expect("add"), Added::NoSession);
}

/// Expired tokens are not listed and do not count towards the bound.
pub async fn expired_tokens_leave_the_registry(s: Subject) {
    s.align().await;
    let now = s.clock.now_unix();
    let a = s.store.insert(s.session(600)).await.expect("insert");
    let short = s.store.add_token(&a.id, record("short", now, 1), 1).await;
    assert_eq!(short.expect("add"), Added::Added);
    s.advance(2).await;
    assert!(s
        .store
        .tokens(&a.id)
        .await
        .expect("tokens")
        .iter()
        .all(|t| !t.is_live(s.clock.now_unix())));
    let next = s
        .store
        .add_token(&a.id, record("next", s.clock.now_unix(), 300), 1)
        .await;
    assert_eq!(
        next.expect("add"),
        Added::Added,
        "the expired one made room"
    );
    let listed = s.store.tokens(&a.id).await.expect("tokens");
    assert_eq!(
        listed
            .iter()
            .filter(|t| t.is_live(s.clock.now_unix()))
            .count(),
        1
    );
}

pub async fn states_are_single_use(s: Subject) {
    let ttl = std::time::Duration::from_secs(600);
    assert!(s
        .store
        .claim_state("state-hash-1", ttl)
        .await
        .expect("claim"));
    assert!(
        !s.store
            .claim_state("state-hash-1", ttl)
            .await
            .expect("claim"),
        "only once"
    );
    assert!(s
        .store
        .claim_state("state-hash-2", ttl)
        .await
        .expect("claim"));
}

pub async fn insert_get_remove(s: Subject) {
    let a = s.store.insert(s.session(600)).await.expect("insert");
    let b = s.store.insert(s.session(600)).await.expect("insert");
    let got = s.store.get(&a.id).await.expect("get").expect("a is stored");
    assert_eq!(got.id, a.id);
    assert_eq!(got.user, a.user);
    assert_eq!(got.accounts, a.accounts);
    assert_eq!(
        got.tokens.expose_access_token(),
        a.tokens.expose_access_token()
    );
    assert_eq!(got.tokens.refresh_token(), a.tokens.refresh_token());
    assert_eq!(got.expires_at, a.expires_at);
    assert!(s.store.get("no-such-id").await.expect("get").is_none());
    assert_eq!(s.store.count().await.expect("count"), 2);
    assert!(s.store.remove(&a.id).await.expect("remove"));
    assert!(s.store.get(&a.id).await.expect("get").is_none());
    assert!(
        s.store.get(&b.id).await.expect("get").is_some(),
        "b is kept"
    );
}

pub async fn expiry(s: Subject) {
    s.align().await;
    let short = s.store.insert(s.session(2)).await.expect("insert");
    let long = s.store.insert(s.session(600)).await.expect("insert");
    s.advance(1).await;
    assert!(s.store.get(&short.id).await.expect("get").is_some());
    s.advance(2).await;
    assert!(
        s.store.get(&short.id).await.expect("get").is_none(),
        "an expired session is gone"
    );
    assert!(s.store.get(&long.id).await.expect("get").is_some());
}

pub async fn capacity_evicts_expired_then_oldest(s: Subject) {
    if !s.bounded {
        return;
    }
    // Capacity 3.
    let expiring = s.store.insert(s.session(1)).await.expect("insert");
    let old = s.store.insert(s.session(600)).await.expect("insert");
    let mid = s.store.insert(s.session(600)).await.expect("insert");
    s.advance(2).await;
    let new1 = s.store.insert(s.session(600)).await.expect("insert");
    assert!(s.store.get(&expiring.id).await.expect("get").is_none());
    assert!(
        s.store.get(&old.id).await.expect("get").is_some(),
        "the expired session goes first"
    );
    let new2 = s.store.insert(s.session(600)).await.expect("insert");
    assert!(
        s.store.get(&old.id).await.expect("get").is_none(),
        "then the oldest"
    );
    for kept in [&mid, &new1, &new2] {
        assert!(s.store.get(&kept.id).await.expect("get").is_some());
    }
}

pub async fn swap_tokens_by_generation(s: Subject) {
    let a = s.store.insert(s.session(600)).await.expect("insert");
    match s.store.swap_tokens(&a.id, 0, tokens("at1", "rt1")).await {
        Ok(TokenSwap::Replaced(now)) => {
            assert_eq!(now.tokens.generation, 1);
            assert_eq!(now.tokens.expose_access_token(), "at1");
        }
        other => panic!("expected Replaced, got {other:?}"),
    }
    let stored = s.store.get(&a.id).await.expect("get").expect("stored");
    assert_eq!(stored.tokens.generation, 1);
    assert_eq!(stored.tokens.refresh_token().unwrap().expose(), "rt1");
    assert_eq!(
        stored.expires_at, a.expires_at,
        "a refresh keeps the session's expiry"
    );
    match s.store.swap_tokens(&a.id, 0, tokens("late", "late")).await {
        Ok(TokenSwap::Stale(now)) => assert_eq!(now.tokens.expose_access_token(), "at1"),
        other => panic!("expected Stale, got {other:?}"),
    }
    assert!(matches!(
        s.store.swap_tokens("no-such-id", 0, tokens("x", "y")).await,
        Ok(TokenSwap::Gone)
    ));
}

pub async fn concurrent_swaps_have_one_winner(s: Subject) {
    let a = s.store.insert(s.session(600)).await.expect("insert");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, id) = (s.store.clone(), a.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .swap_tokens(&id, 0, tokens(&format!("at{i}"), &format!("rt{i}")))
                .await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(TokenSwap::Replaced(s)) => winners.push(s.tokens.expose_access_token().to_string()),
            Ok(TokenSwap::Stale(_)) => {}
            other => panic!("expected Replaced or Stale, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one swap wins");
    let stored = s.store.get(&a.id).await.expect("get").expect("stored");
    assert_eq!(stored.tokens.generation, 1);
    assert_eq!(stored.tokens.expose_access_token(), winners[0]);
}

pub async fn logout_ends_the_session(s: Subject) {
    let a = s.store.insert(s.session(600)).await.expect("insert");
    assert!(s.store.remove(&a.id).await.expect("remove"));
    assert!(!s.store.remove(&a.id).await.expect("remove"), "only once");
    assert!(s.store.get(&a.id).await.expect("get").is_none());
    assert!(matches!(
        s.store.swap_tokens(&a.id, 0, tokens("x", "y")).await,
        Ok(TokenSwap::Gone)
    ));
}
