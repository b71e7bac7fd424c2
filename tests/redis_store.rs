//! The Redis session store against real servers (a standalone
//! `redis-server` and a three-node cluster, started by each test on free
//! loopback ports): the store conformance suite, and what only a shared
//! store must do (one instance sees another's logout and refresh at once,
//! one lease holder across instances, an outage is an error and never a
//! lost session).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::redis::{RedisCluster, RedisServer};
use docusign_gateway::docusign::TokenSet;
use docusign_gateway::session::conformance::{self, Subject};
use docusign_gateway::session::model::test_support::session;
use docusign_gateway::session::redis::{RedisSettings, RedisStore, Target};
use docusign_gateway::session::{
    Added, Lease, Session, SessionStore, StoreError, TokenRecord, TokenSwap,
};
use docusign_gateway::util::secret::Secret;
use docusign_gateway::util::time::system_clock;

const SECRET: &[u8] = b"redis-store-test-secret-0123456789abcdef0123";

fn settings(target: Target) -> RedisSettings {
    RedisSettings {
        target,
        key_prefix: "dsgw".into(),
        connect_timeout: Duration::from_millis(1000),
        command_timeout: Duration::from_millis(500),
        lease_ttl: Duration::from_secs(3),
        cache_capacity: 1000,
        secret: SECRET.to_vec(),
        previous_secret: None,
    }
}

fn store(target: Target) -> Arc<RedisStore> {
    Arc::new(RedisStore::start(settings(target), system_clock()).expect("valid target"))
}

/// Two stores on one server, as two gateway instances would have.
fn two_instances(server: &RedisServer) -> (Arc<RedisStore>, Arc<RedisStore>) {
    let target = || Target::Standalone(server.url());
    (store(target()), store(target()))
}

/// A new session on `store`, whose refresh lease `store` holds.
async fn leased_session(store: &RedisStore) -> (Arc<Session>, Lease) {
    let s = store.insert(session(600)).await.unwrap();
    let lease = store
        .acquire_lease(&s.id, Duration::ZERO)
        .await
        .unwrap()
        .expect("free");
    (s, lease)
}

fn tokens(access: &str) -> TokenSet {
    TokenSet {
        access_token: Secret::new(access),
        refresh_token: Some(Secret::new(format!("r-{access}"))),
        expires_at: u64::MAX / 2,
    }
}

/// Waits (bounded) until the store's invalidation subscription is up, so
/// that its cache is in use.
async fn until_cached(store: &RedisStore) {
    let probe = store.insert(session(600)).await.expect("insert");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.cached() == 0 || store.get(&probe.id).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "the cache never came into use");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = store.get(&probe.id).await;
    }
    store.remove(&probe.id).await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_standalone_server() {
    let server = RedisServer::start();
    let url = server.url();
    conformance::run_all(|_capacity| {
        let flushed = server.cli_text(&["FLUSHALL"]);
        assert!(flushed.contains("OK"), "{flushed}");
        let store = store(Target::Standalone(url.clone()));
        async move { Subject::real_time(store, system_clock(), false) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_cluster() {
    let cluster = RedisCluster::start(3);
    let urls = cluster.urls();
    conformance::run_all(|_capacity| {
        for node in &cluster.nodes {
            let flushed = node.cli_text(&["FLUSHALL"]);
            assert!(flushed.contains("OK"), "{flushed}");
        }
        let store = store(Target::Cluster(urls.clone()));
        async move { Subject::real_time(store, system_clock(), false) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_logout_and_refresh_are_seen_within_a_second() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server);
    until_cached(&a).await;
    until_cached(&b).await;
    let s = a.insert(session(600)).await.unwrap();
    assert!(b.get(&s.id).await.unwrap().is_some());
    assert!(a.get(&s.id).await.unwrap().is_some());
    assert!(b.cached() > 0 && a.cached() > 0, "both cache it now");

    let swapped = a.swap_tokens(&s.id, 0, tokens("at1")).await.unwrap();
    assert!(matches!(swapped, TokenSwap::Replaced(_)));
    let seen = within_a_second(|| async {
        let got = b.get(&s.id).await.unwrap().expect("still there");
        got.tokens.generation == 1
    })
    .await;
    assert!(seen, "B sees A's refresh within a second");

    assert!(a.remove(&s.id).await.unwrap());
    let gone = within_a_second(|| async { b.get(&s.id).await.unwrap().is_none() }).await;
    assert!(gone, "B sees A's logout within a second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_token_revocation_is_seen_within_a_second() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server);
    until_cached(&a).await;
    until_cached(&b).await;
    let s = a.insert(session(600)).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for id in ["aa01", "aa02"] {
        let record = TokenRecord {
            id: id.into(),
            name: None,
            scope: None,
            issued_at: now,
            expires_at: now + 300,
        };
        assert_eq!(a.add_token(&s.id, record, 10).await.unwrap(), Added::Added);
    }
    let listed = |store: Arc<RedisStore>| {
        let id = s.id.clone();
        async move {
            let tokens = store.tokens(&id).await.unwrap();
            let mut ids: Vec<String> = tokens.iter().map(|t| t.id.clone()).collect();
            ids.sort();
            ids
        }
    };
    let both = within_a_second(|| {
        let b = b.clone();
        async move { listed(b).await == ["aa01", "aa02"] }
    })
    .await;
    assert!(both, "B sees A's tokens");
    // Warm: B answers from its cache, even with Redis gone.
    server.cli(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let started = Instant::now();
    assert_eq!(listed(b.clone()).await, ["aa01", "aa02"]);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "no Redis call"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;

    assert!(a.revoke_token(&s.id, "aa01").await.unwrap());
    let revoked = within_a_second(|| {
        let b = b.clone();
        async move { listed(b).await == ["aa02"] }
    })
    .await;
    assert!(revoked, "B sees A's revocation within a second");
    assert!(b.get(&s.id).await.unwrap().is_some(), "the session goes on");
    assert!(a.remove(&s.id).await.unwrap());
    let keys = server.keys();
    assert!(
        keys.iter().all(|k| !k.ends_with(":tk")),
        "logout drops the registry: {keys:?}"
    );
}

async fn within_a_second<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_lease_holder_across_instances_and_a_lost_lease_still_commits() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server);
    let (s, lease) = leased_session(&a).await;
    let started = Instant::now();
    let busy = b
        .acquire_lease(&s.id, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(busy.is_none(), "B waits while A holds the lease");
    assert!(started.elapsed() >= Duration::from_millis(290));

    // The keeper renews A's lease (TTL 3 s) past its first expiry.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(b
        .acquire_lease(&s.id, Duration::ZERO)
        .await
        .unwrap()
        .is_none());

    let committed = a.commit_tokens(&lease, 0, tokens("at1")).await.unwrap();
    let TokenSwap::Replaced(now) = committed else {
        panic!("expected Replaced, got {committed:?}");
    };
    assert_eq!(now.tokens.generation, 1);
    let lease_b = b
        .acquire_lease(&s.id, Duration::from_secs(1))
        .await
        .unwrap()
        .expect("released by the commit");
    let seen = b.get(&s.id).await.unwrap().unwrap();
    assert_eq!(
        seen.tokens.generation, 1,
        "the re-read after a lease is fresh"
    );

    // B's lease disappears (as if it expired): its commit still lands by
    // generation, since nobody else moved it.
    server.cli_text(&["DEL", &b.backend().keys(&s.id).lease]);
    let late = b.commit_tokens(&lease_b, 1, tokens("at2")).await.unwrap();
    assert!(
        matches!(late, TokenSwap::Replaced(ref n) if n.tokens.generation == 2),
        "{late:?}"
    );
    // A commit on an old generation is stale and writes nothing.
    let stale = a.commit_tokens(&lease, 0, tokens("late")).await.unwrap();
    assert!(
        matches!(stale, TokenSwap::Stale(ref n) if n.tokens.generation == 2),
        "{stale:?}"
    );
}

/// Found by the two-instance refresh test under load: B waits for the
/// lease while A refreshes; meanwhile a request on B caches the session as
/// it was before A's commit. If A's invalidation reaches B after B takes
/// the lease, B's re-read must still not come from that cache, or B would
/// present the refresh token A already spent. A release without a commit
/// publishes nothing, which makes the late invalidation certain here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_the_lease_drops_what_was_cached_while_waiting_for_it() {
    let server = RedisServer::start();
    let (a, b) = two_instances(&server);
    until_cached(&b).await;
    let (s, lease) = leased_session(&a).await;
    let waiter = {
        let (b, id) = (b.clone(), s.id.clone());
        tokio::spawn(async move { b.acquire_lease(&id, Duration::from_secs(5)).await })
    };
    // B reads (and caches) the session while its lease call waits.
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.cached() == 0 {
        assert!(Instant::now() < deadline, "B never cached the session");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(b.get(&s.id).await.unwrap().is_some());
    }
    a.release_lease(lease).await.unwrap();
    let lease_b = waiter.await.unwrap().unwrap().expect("released by A");
    assert_eq!(b.cached(), 0, "the lease holder's re-read goes to Redis");
    b.release_lease(lease_b).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_unavailable_never_not_found_and_the_cache_is_bypassed() {
    let mut server = RedisServer::start();
    let a = store(Target::Standalone(server.url()));
    until_cached(&a).await;
    let s = a.insert(session(600)).await.unwrap();
    assert!(a.get(&s.id).await.unwrap().is_some());
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match a.get(&s.id).await {
            Err(StoreError::Unavailable(_)) => break,
            Ok(Some(_)) => {}
            other => panic!("a down store must not say {other:?}"),
        }
        assert!(Instant::now() < deadline, "the cached copy is still served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(a.count().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(
        a.swap_tokens(&s.id, 0, tokens("x")).await,
        Err(StoreError::Unavailable(_))
    ));
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(found) = a.get(&s.id).await {
            assert!(found.is_some(), "the session survived the restart");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_another_secret_is_no_session_and_nothing_is_plaintext() {
    let server = RedisServer::start();
    let a = store(Target::Standalone(server.url()));
    let s = a.insert(session(600)).await.unwrap();
    let values = String::from_utf8_lossy(&server.dump_values()).into_owned();
    let keys = server.keys().join("\n");
    for secret in [&s.id, "\"rt\"", "ada@example.com"] {
        assert!(!values.contains(secret), "{secret} readable in Redis");
        assert!(!keys.contains(secret), "{secret} in a key name");
    }
    let mut other = settings(Target::Standalone(server.url()));
    other.secret = b"another-secret-0123456789abcdef0123456789ab".to_vec();
    let other = RedisStore::start(other, system_clock()).unwrap();
    assert!(other.get(&s.id).await.unwrap().is_none(), "corrupt = none");
    assert!(a.get(&s.id).await.unwrap().is_some(), "and it is kept");
}
