use std::sync::atomic::AtomicUsize;
use std::sync::Mutex;

use async_trait::async_trait;
use url::Url;

use super::*;
use crate::docusign::{TokenSet, UserInfo};
use crate::session::memory::MemoryStore;
use crate::session::model::test_support::session_at;
use crate::util::secret::Secret;
use crate::util::time::ManualClock;

const NOW: u64 = 1_000_000;

/// A token endpoint that answers from a script and counts calls.
struct Scripted {
    calls: AtomicUsize,
    /// Calls running now, and the most ever seen running at once.
    running: AtomicUsize,
    most_running: AtomicUsize,
    delay: Duration,
    answer: Mutex<Result<(), OAuthError>>,
    seen: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(answer: Result<(), OAuthError>, delay: Duration) -> Arc<Self> {
        Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
            delay,
            answer: Mutex::new(answer),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AccountServer for Scripted {
    fn authorize_url(&self) -> (Url, String, Secret) {
        unreachable!("not used by the refresher")
    }

    async fn exchange_code(&self, _: &str, _: &Secret) -> Result<TokenSet, OAuthError> {
        unreachable!("not used by the refresher")
    }

    async fn userinfo(&self, _: &Secret) -> Result<UserInfo, OAuthError> {
        unreachable!("not used by the refresher")
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenSet, OAuthError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen
            .lock()
            .unwrap()
            .push(refresh_token.expose().to_string());
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(running, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.answer.lock().unwrap().clone().map(|()| TokenSet {
            access_token: Secret::new(format!("at{n}")),
            refresh_token: Some(Secret::new(format!("rt{n}"))),
            expires_at: NOW + 3600,
        })
    }
}

fn policy(window_secs: u64, min_interval_secs: u64) -> RefreshPolicy {
    RefreshPolicy {
        window: Duration::from_secs(window_secs),
        wait_limit: Duration::from_secs(5),
        min_interval: Duration::from_secs(min_interval_secs),
        max_in_flight: 8,
    }
}

struct Fixture {
    ep: Arc<Scripted>,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    session: Arc<Session>,
}

impl Fixture {
    async fn new(ep: Arc<Scripted>) -> Fixture {
        let clock = ManualClock::at_unix(NOW);
        let store = Arc::new(MemoryStore::new(100, 10, clock.clone()));
        // The access token expires at NOW + 3600.
        let session = store.insert(session_at(NOW, 36_000)).await.unwrap();
        Fixture {
            ep,
            store,
            clock,
            session,
        }
    }

    fn refresher(&self, window_secs: u64) -> Refresher {
        Refresher::new(
            self.ep.clone(),
            self.store.clone(),
            self.clock.clone(),
            policy(window_secs, 0),
        )
    }

    async fn stored(&self) -> Option<Arc<Session>> {
        self.store.get(&self.session.id).await.unwrap()
    }
}

fn access(f: &Freshness) -> String {
    match f {
        Freshness::Ready(s) => s.tokens.expose_access_token().to_string(),
        other => panic!("expected Ready, got {other:?}"),
    }
}

#[tokio::test]
async fn a_storm_of_refreshes_runs_at_most_max_in_flight_at_once() {
    let ep = Scripted::new(Ok(()), Duration::from_millis(20));
    let clock = ManualClock::at_unix(NOW);
    let store = Arc::new(MemoryStore::new(100, 100, clock.clone()));
    let mut sessions = Vec::new();
    for _ in 0..20 {
        sessions.push(store.insert(session_at(NOW, 36_000)).await.unwrap());
    }
    let r = Refresher::new(
        ep.clone(),
        store.clone(),
        clock.clone(),
        RefreshPolicy {
            max_in_flight: 3,
            ..policy(300, 0)
        },
    );
    // Every access token is inside the refresh window at once.
    clock.advance_secs(3600 - 299);
    let outcomes = futures_util::future::join_all(sessions.iter().map(|s| r.fresh(s, None))).await;
    for outcome in &outcomes {
        assert!(access(outcome).starts_with("at"), "refreshed");
        assert_ne!(access(outcome), "at");
    }
    assert_eq!(ep.calls(), 20, "one grant per session");
    assert_eq!(
        ep.most_running.load(Ordering::SeqCst),
        3,
        "never more than 3 at once"
    );
}

#[tokio::test]
async fn outside_the_window_nothing_happens() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
    let r = f.refresher(300);
    assert_eq!(access(&r.fresh(&f.session, None).await), "at");
    assert_eq!(f.ep.calls(), 0);
}

#[tokio::test]
async fn inside_the_window_refreshes_first() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
    let r = f.refresher(300);
    f.clock.advance_secs(3600 - 299);
    assert_eq!(access(&r.fresh(&f.session, None).await), "at1");
    assert_eq!(f.ep.seen.lock().unwrap().as_slice(), ["rt"]);
    let stored = f.stored().await.unwrap();
    assert_eq!(stored.tokens.generation, 1, "the refresh is a store write");
    assert_eq!(stored.tokens.refresh_token().unwrap().expose(), "rt1");
}

#[tokio::test]
async fn concurrent_401s_cause_one_refresh_and_never_reuse_a_refresh_token() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::from_millis(50))).await;
    let r = Arc::new(f.refresher(300));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (r, s) = (r.clone(), f.session.clone());
        tasks.push(tokio::spawn(async move { r.fresh(&s, Some(0)).await }));
    }
    for t in tasks {
        assert_eq!(access(&t.await.unwrap()), "at1");
    }
    assert_eq!(f.ep.calls(), 1);
    // A later 401 on the new pair refreshes with the NEW refresh token.
    let current = f.stored().await.unwrap();
    assert_eq!(access(&r.fresh(&current, Some(1)).await), "at2");
    assert_eq!(f.ep.seen.lock().unwrap().as_slice(), ["rt", "rt1"]);
}

#[tokio::test]
async fn a_stale_401_uses_the_pair_already_refreshed() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
    let r = f.refresher(300);
    assert_eq!(access(&r.fresh(&f.session, Some(0)).await), "at1");
    // A request that used generation 0 (its snapshot is old) gets 401 too:
    // the store already holds generation 1, so no second grant.
    assert_eq!(access(&r.fresh(&f.session, Some(0)).await), "at1");
    assert_eq!(f.ep.calls(), 1);
}

#[tokio::test]
async fn a_refresh_outlives_the_request_that_started_it() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::from_millis(100))).await;
    let r = Arc::new(f.refresher(300));
    let started = {
        let (r, s) = (r.clone(), f.session.clone());
        tokio::spawn(async move { r.fresh(&s, Some(0)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    started.abort();
    // A second request waits for the first one's grant instead of starting
    // its own with the same refresh token.
    assert_eq!(access(&r.fresh(&f.session, Some(0)).await), "at1");
    assert_eq!(f.ep.calls(), 1);
}

#[tokio::test]
async fn invalid_grant_ends_the_session_for_everyone() {
    let ep = Scripted::new(
        Err(OAuthError::InvalidGrant(None)),
        Duration::from_millis(20),
    );
    let f = Fixture::new(ep).await;
    let r = Arc::new(f.refresher(300));
    let a = tokio::spawn({
        let (r, s) = (r.clone(), f.session.clone());
        async move { r.fresh(&s, Some(0)).await }
    });
    let b = r.fresh(&f.session, Some(0)).await;
    assert!(matches!(b, Freshness::LoginRequired));
    assert!(matches!(a.await.unwrap(), Freshness::LoginRequired));
    assert_eq!(f.ep.calls(), 1);
    assert!(f.stored().await.is_none(), "the session is deleted");
}

#[tokio::test]
async fn transient_failure_keeps_the_session_and_backs_off() {
    let ep = Scripted::new(Err(OAuthError::Unavailable("down".into())), Duration::ZERO);
    let f = Fixture::new(ep).await;
    let r = f.refresher(300);
    match r.fresh(&f.session, Some(0)).await {
        Freshness::Unavailable { retry_after_secs } => assert_eq!(retry_after_secs, 1),
        other => panic!("{other:?}"),
    }
    // Within the back-off, nobody calls the endpoint again.
    assert!(matches!(
        r.fresh(&f.session, Some(0)).await,
        Freshness::Unavailable { .. }
    ));
    assert_eq!(f.ep.calls(), 1);
    // A proactive refresh that fails still uses the valid token (another
    // refresher: its back-off is its own, so it calls once).
    let proactive = f.refresher(7200);
    assert_eq!(access(&proactive.fresh(&f.session, None).await), "at");
    assert_eq!(f.ep.calls(), 2);
    assert!(f.stored().await.is_some());
    // After the back-off, and once the endpoint is back, it recovers, with
    // the refresh token that was never redeemed.
    *f.ep.answer.lock().unwrap() = Ok(());
    f.clock.advance_millis(1_100);
    let fresh = r.fresh(&f.session, Some(0)).await;
    assert_eq!(access(&fresh), "at3");
    assert_eq!(f.ep.seen.lock().unwrap().as_slice(), ["rt", "rt", "rt"]);
}

#[tokio::test]
async fn a_logged_out_session_is_not_refreshed() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
    let r = f.refresher(300);
    f.store.remove(&f.session.id).await.unwrap();
    assert!(matches!(
        r.fresh(&f.session, Some(0)).await,
        Freshness::LoginRequired
    ));
    assert_eq!(f.ep.calls(), 0);
}

/// A store whose refresh lease another instance holds; that instance
/// commits its pair while we wait (when `commits` is set).
struct LeasedElsewhere {
    inner: Arc<MemoryStore>,
    commits: bool,
}

#[async_trait]
impl SessionStore for LeasedElsewhere {
    fn name(&self) -> &'static str {
        "leased-elsewhere"
    }
    async fn insert(&self, s: Session) -> Result<Arc<Session>, StoreError> {
        self.inner.insert(s).await
    }
    async fn get(&self, id: &str) -> Result<Option<Arc<Session>>, StoreError> {
        self.inner.get(id).await
    }
    async fn remove(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.remove(id).await
    }
    async fn swap_tokens(&self, id: &str, g: u64, t: TokenSet) -> Result<TokenSwap, StoreError> {
        self.inner.swap_tokens(id, g, t).await
    }
    async fn count(&self) -> Result<usize, StoreError> {
        self.inner.count().await
    }
    async fn claim_state(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.claim_state(key, ttl).await
    }
    async fn add_token(
        &self,
        id: &str,
        r: crate::session::TokenRecord,
        max: usize,
    ) -> Result<crate::session::Added, StoreError> {
        self.inner.add_token(id, r, max).await
    }
    async fn tokens(&self, id: &str) -> Result<Arc<Vec<crate::session::TokenRecord>>, StoreError> {
        self.inner.tokens(id).await
    }
    async fn revoke_token(&self, id: &str, token: &str) -> Result<bool, StoreError> {
        self.inner.revoke_token(id, token).await
    }
    async fn acquire_lease(
        &self,
        id: &str,
        _: Duration,
    ) -> Result<Option<super::Lease>, StoreError> {
        if self.commits {
            let other = TokenSet {
                access_token: Secret::new("at-other"),
                refresh_token: Some(Secret::new("rt-other")),
                expires_at: NOW + 3600,
            };
            self.inner.swap_tokens(id, 0, other).await?;
        }
        Ok(None)
    }
}

#[tokio::test]
async fn a_lease_held_by_another_instance_means_no_grant_here() {
    for commits in [true, false] {
        let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
        let store = Arc::new(LeasedElsewhere {
            inner: f.store.clone(),
            commits,
        });
        let r = Refresher::new(f.ep.clone(), store, f.clock.clone(), policy(300, 0));
        let outcome = r.fresh(&f.session, Some(0)).await;
        if commits {
            assert_eq!(access(&outcome), "at-other", "the other instance's pair");
        } else {
            assert!(
                matches!(outcome, Freshness::Unavailable { .. }),
                "{outcome:?}"
            );
        }
        assert_eq!(f.ep.calls(), 0, "never a second redemption");
    }
}

#[tokio::test]
async fn a_401_on_a_token_younger_than_the_minimum_interval_is_not_refreshed() {
    let f = Fixture::new(Scripted::new(Ok(()), Duration::ZERO)).await;
    let r = Refresher::new(
        f.ep.clone(),
        f.store.clone(),
        f.clock.clone(),
        policy(300, 60),
    );
    f.clock.advance_secs(59);
    for _ in 0..20 {
        assert!(matches!(
            r.fresh(&f.session, Some(0)).await,
            Freshness::TooRecent
        ));
    }
    assert_eq!(f.ep.calls(), 0, "20 401s cost no refresh grant");
    f.clock.advance_secs(1);
    assert_eq!(access(&r.fresh(&f.session, Some(0)).await), "at1");
    // The new pair is young again: a 401 on it passes through too.
    let current = f.stored().await.unwrap();
    assert!(matches!(
        r.fresh(&current, Some(1)).await,
        Freshness::TooRecent
    ));
    assert_eq!(f.ep.calls(), 1);
}
