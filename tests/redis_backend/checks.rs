//! What the backend promises, checked the same way on a standalone server
//! and on a cluster. Each check uses fresh session ids.

use std::sync::Arc;
use std::time::Duration;

use docusign_gateway::session::redis::{BackendError, CommitOutcome, Invalidation, RedisBackend};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

use super::Raw;

const LONG: Duration = Duration::from_secs(60);

/// A session id no other check uses.
pub fn fresh_id(label: &str) -> String {
    format!("{label}-{}", rand::random::<u64>())
}

pub async fn records(backend: &RedisBackend, raw: &Raw) {
    let id = fresh_id("record");
    assert_eq!(backend.get(&id).await.unwrap(), None);
    backend.put(&id, 1, b"first", LONG).await.unwrap();
    assert_eq!(
        backend.get(&id).await.unwrap(),
        Some((1, b"first".to_vec()))
    );
    backend.put(&id, 7, b"second", LONG).await.unwrap();
    assert_eq!(
        backend.get(&id).await.unwrap(),
        Some((7, b"second".to_vec()))
    );

    let key = backend.keys(&id).record;
    let pttl: i64 = raw.query(redis::cmd("PTTL").arg(&key));
    assert!(pttl > 50_000 && pttl <= 60_000, "PTTL {pttl}");
    assert!(backend.count_approx().await.unwrap() >= 1);

    assert!(backend.delete(&id).await.unwrap());
    assert_eq!(backend.get(&id).await.unwrap(), None);
    assert!(!backend.delete(&id).await.unwrap());

    let short = fresh_id("short");
    backend
        .put(&short, 0, b"brief", Duration::from_millis(300))
        .await
        .unwrap();
    assert!(backend.get(&short).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(backend.get(&short).await.unwrap(), None, "expired by TTL");
    backend.ping().await.unwrap();
}

pub async fn logins(backend: &RedisBackend) {
    let id = fresh_id("login");
    assert_eq!(backend.take_login(&id).await.unwrap(), None);
    backend
        .put_login(&id, b"state+verifier", LONG)
        .await
        .unwrap();
    assert_eq!(
        backend.take_login(&id).await.unwrap(),
        Some(b"state+verifier".to_vec())
    );
    assert_eq!(backend.take_login(&id).await.unwrap(), None, "taken once");

    let short = fresh_id("login-short");
    backend
        .put_login(&short, b"x", Duration::from_millis(200))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(backend.take_login(&short).await.unwrap(), None, "expired");
}

/// Values that are not this backend's (garbage, a value moved from another
/// key, one sealed under another secret) are `Corrupt`, never data.
pub async fn corrupt_values(backend: &RedisBackend, other_secret: &RedisBackend, raw: &Raw) {
    let (a, b) = (fresh_id("corrupt-a"), fresh_id("corrupt-b"));
    backend.put(&a, 3, b"alpha", LONG).await.unwrap();
    backend.put(&b, 3, b"beta", LONG).await.unwrap();
    let (key_a, key_b) = (backend.keys(&a).record, backend.keys(&b).record);

    let moved: Vec<u8> = raw.query(redis::cmd("HGET").arg(&key_a).arg("data"));
    let _: i64 = raw.query(redis::cmd("HSET").arg(&key_b).arg("data").arg(moved));
    assert!(matches!(
        backend.get(&b).await,
        Err(BackendError::Corrupt(_))
    ));

    let _: i64 = raw.query(redis::cmd("HSET").arg(&key_b).arg("data").arg("garbage"));
    assert!(matches!(
        backend.get(&b).await,
        Err(BackendError::Corrupt(_))
    ));

    let _: i64 = raw.query(redis::cmd("HDEL").arg(&key_b).arg("gen"));
    assert!(matches!(
        backend.get(&b).await,
        Err(BackendError::Corrupt(_))
    ));

    let _: () = raw.query(redis::cmd("SET").arg(&key_b).arg("a string"));
    assert!(matches!(
        backend.get(&b).await,
        Err(BackendError::Corrupt(_))
    ));

    assert!(matches!(
        other_secret.get(&a).await,
        Err(BackendError::Corrupt(_))
    ));
    assert_eq!(backend.get(&a).await.unwrap(), Some((3, b"alpha".to_vec())));
}

pub async fn leases(backend: &RedisBackend) {
    let id = fresh_id("lease");
    let ttl = Duration::from_secs(5);
    assert!(backend.acquire_lease(&id, "a", ttl).await.unwrap());
    assert!(
        !backend.acquire_lease(&id, "b", ttl).await.unwrap(),
        "exclusive"
    );
    assert!(
        !backend.acquire_lease(&id, "a", ttl).await.unwrap(),
        "not reentrant"
    );
    assert!(!backend.renew_lease(&id, "b", ttl).await.unwrap());
    assert!(
        !backend.release_lease(&id, "b").await.unwrap(),
        "only by owner"
    );
    assert!(!backend.acquire_lease(&id, "b", ttl).await.unwrap());
    assert!(backend.release_lease(&id, "a").await.unwrap());
    assert!(!backend.release_lease(&id, "a").await.unwrap());
    assert!(backend.acquire_lease(&id, "b", ttl).await.unwrap());

    // A renewed lease outlives its first TTL; an unrenewed one expires.
    let renewed = fresh_id("lease-renewed");
    let short = Duration::from_millis(400);
    assert!(backend.acquire_lease(&renewed, "a", short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(backend.renew_lease(&renewed, "a", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!backend.acquire_lease(&renewed, "b", ttl).await.unwrap());
    assert!(backend.renew_lease(&renewed, "a", short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !backend.renew_lease(&renewed, "a", ttl).await.unwrap(),
        "expired"
    );
    assert!(backend.acquire_lease(&renewed, "b", ttl).await.unwrap());
}

/// A kept lease outlives many TTLs and stays exclusive; dropping the
/// keeper lets it expire; a keeper notices a lease taken from it.
pub async fn kept_leases(backend: &RedisBackend) {
    let id = fresh_id("kept");
    let ttl = Duration::from_millis(300);
    assert!(backend.acquire_lease(&id, "a", ttl).await.unwrap());
    let keeper = backend.keep_lease(&id, "a", ttl);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !backend.acquire_lease(&id, "b", ttl).await.unwrap(),
        "still held"
    );
    assert!(!keeper.is_lost());
    drop(keeper);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        backend.acquire_lease(&id, "b", ttl).await.unwrap(),
        "expired"
    );

    let keeper = backend.keep_lease(&id, "b", ttl);
    assert!(backend.release_lease(&id, "b").await.unwrap());
    assert!(backend.acquire_lease(&id, "c", LONG).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(keeper.is_lost(), "the keeper saw another owner");
}

pub async fn commit_outcomes(backend: &RedisBackend) {
    let id = fresh_id("commit");
    let ttl = Duration::from_secs(5);
    backend.put(&id, 1, b"gen1", LONG).await.unwrap();

    assert!(backend.acquire_lease(&id, "a", ttl).await.unwrap());
    let outcome = backend.commit(&id, "a", 1, b"gen2", LONG).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(2));
    assert_eq!(backend.get(&id).await.unwrap(), Some((2, b"gen2".to_vec())));
    assert!(
        !backend.release_lease(&id, "a").await.unwrap(),
        "commit released it"
    );

    assert!(backend.acquire_lease(&id, "b", ttl).await.unwrap());
    let stale = backend.commit(&id, "b", 1, b"old", LONG).await.unwrap();
    assert_eq!(stale, CommitOutcome::Stale(2));
    assert!(
        backend.release_lease(&id, "b").await.unwrap(),
        "kept on Stale"
    );

    let short = Duration::from_millis(200);
    assert!(backend.acquire_lease(&id, "c", short).await.unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lost = backend.commit(&id, "c", 2, b"late", LONG).await.unwrap();
    assert_eq!(lost, CommitOutcome::LeaseLost);
    assert_eq!(
        backend.commit(&id, "nobody", 2, b"x", LONG).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(backend.get(&id).await.unwrap(), Some((2, b"gen2".to_vec())));

    assert!(backend.acquire_lease(&id, "d", ttl).await.unwrap());
    assert!(backend.delete(&id).await.unwrap());
    let gone = backend.commit(&id, "d", 2, b"x", LONG).await.unwrap();
    assert_eq!(gone, CommitOutcome::Gone);
    assert_eq!(backend.get(&id).await.unwrap(), None, "Gone wrote nothing");

    let ttl_id = fresh_id("commit-ttl");
    backend.put(&ttl_id, 1, b"x", LONG).await.unwrap();
    assert!(backend.acquire_lease(&ttl_id, "a", ttl).await.unwrap());
    let short_life = Duration::from_millis(300);
    let outcome = backend
        .commit(&ttl_id, "a", 1, b"y", short_life)
        .await
        .unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(2));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        backend.get(&ttl_id).await.unwrap(),
        None,
        "commit set the TTL"
    );
}

/// Sixteen owners race for one refresh of generation 5: each waits for the
/// lease, then commits expecting generation 5. Exactly one commits.
pub async fn concurrent_commits(backend: &RedisBackend) {
    let id = Arc::new(fresh_id("race"));
    backend.put(&id, 5, b"gen5", LONG).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..16 {
        let (backend, id) = (backend.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("owner-{n}");
            let ttl = Duration::from_secs(5);
            while !backend.acquire_lease(&id, &owner, ttl).await.unwrap() {
                tokio::task::yield_now().await;
            }
            let data = owner.clone().into_bytes();
            let outcome = backend.commit(&id, &owner, 5, &data, LONG).await.unwrap();
            backend.release_lease(&id, &owner).await.unwrap();
            (owner, outcome)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (owner, CommitOutcome::Committed(6)) => winners.push(owner),
            (_, CommitOutcome::Stale(6)) => {}
            (owner, other) => panic!("{owner}: unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    let stored = backend.get(&id).await.unwrap().unwrap();
    assert_eq!(stored, (6, winners[0].clone().into_bytes()));
}

/// Waits (bounded) for the next message.
pub async fn next(rx: &mut Receiver<Invalidation>) -> Invalidation {
    timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an invalidation within 10 s")
        .expect("subscriber alive")
}

pub async fn invalidations(backend: &RedisBackend) {
    let mut rx = backend.subscribe(64);
    assert_eq!(next(&mut rx).await, Invalidation::Resync, "subscribed");

    let quiet = fresh_id("inv-new");
    backend.put(&quiet, 1, b"new", LONG).await.unwrap();
    let marker = fresh_id("inv-marker");
    backend.publish_invalidation(&marker).await.unwrap();
    let first = Invalidation::Session(backend.keys(&marker).tag);
    assert_eq!(next(&mut rx).await, first, "a new session is not announced");

    // Many ids, so that in a cluster the scripts run on every master.
    for n in 0..12 {
        let id = fresh_id(&format!("inv-{n}"));
        let tag = Invalidation::Session(backend.keys(&id).tag);
        backend.put(&id, 1, b"v1", LONG).await.unwrap();
        backend.put(&id, 2, b"v2", LONG).await.unwrap();
        assert_eq!(next(&mut rx).await, tag, "replaced");
        assert!(backend.acquire_lease(&id, "a", LONG).await.unwrap());
        let committed = backend.commit(&id, "a", 2, b"v3", LONG).await.unwrap();
        assert_eq!(committed, CommitOutcome::Committed(3));
        assert_eq!(next(&mut rx).await, tag, "committed");
        backend.delete(&id).await.unwrap();
        assert_eq!(next(&mut rx).await, tag, "deleted");
    }
}

/// Writes a session and a pending login holding recognisable secrets.
pub async fn write_secrets(backend: &RedisBackend) {
    let id = "SESSION-ID-VISIBLE-123";
    let blob =
        br#"{"access_token":"ACCESS-TOKEN-PLAINTEXT","refresh_token":"REFRESH-TOKEN-PLAINTEXT"}"#;
    backend.put(id, 1, blob, LONG).await.unwrap();
    backend.acquire_lease(id, "owner-1", LONG).await.unwrap();
    let rotated = br#"{"refresh_token":"ROTATED-TOKEN-PLAINTEXT"}"#;
    let outcome = backend
        .commit(id, "owner-1", 1, rotated, LONG)
        .await
        .unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(2));
    backend
        .put(&fresh_id("other"), 1, blob, LONG)
        .await
        .unwrap();
    let login = br#"{"state":"STATE-PLAINTEXT","verifier":"PKCE-VERIFIER-PLAINTEXT"}"#;
    backend.put_login(id, login, LONG).await.unwrap();
}

/// No secret of `write_secrets` in any key name or value.
pub fn assert_no_plaintext(keys: &[String], values: &[u8]) {
    assert!(keys.len() >= 3, "the scan found the keys: {keys:?}");
    assert!(
        values.windows(4).any(|w| w == b"data"),
        "the dump holds the records' fields"
    );
    let secrets = [
        "SESSION-ID-VISIBLE-123",
        "ACCESS-TOKEN-PLAINTEXT",
        "REFRESH-TOKEN-PLAINTEXT",
        "ROTATED-TOKEN-PLAINTEXT",
        "STATE-PLAINTEXT",
        "PKCE-VERIFIER-PLAINTEXT",
        "PLAINTEXT",
    ];
    for secret in secrets {
        let needle = secret.as_bytes();
        assert!(
            !values.windows(needle.len()).any(|w| w == needle),
            "{secret} in a value"
        );
        assert!(
            !keys.iter().any(|k| k.contains(secret)),
            "{secret} in a key"
        );
    }
}
