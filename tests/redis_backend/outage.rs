//! Redis going away under a live backend, and coming back: every operation
//! fails fast with `Unavailable` (no hang, no panic, no data lost), and the
//! backend and its subscriber recover by themselves.

use std::future::Future;
use std::time::{Duration, Instant};

use docusign_gateway::session::redis::{
    BackendError, CommitOutcome, Invalidation, RedisBackend, Target,
};
use tokio::sync::mpsc::Receiver;

use super::checks::{fresh_id, next};
use super::common::free_port;
use super::common::redis::RedisServer;
use super::{backend, COMMAND_TIMEOUT};

const LONG: Duration = Duration::from_secs(60);
/// How long the backend may take to notice that Redis is back.
const RECOVERY: Duration = Duration::from_secs(20);

/// Runs `op` and asserts it fails with `Unavailable` within the command
/// timeout plus a margin.
async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    op: impl Future<Output = Result<T, BackendError>>,
) {
    let started = Instant::now();
    let result = op.await;
    let elapsed = started.elapsed();
    match result {
        Err(BackendError::Unavailable(message)) => {
            assert!(!message.contains("127.0.0.1"), "{what}: {message}");
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    assert!(
        elapsed < COMMAND_TIMEOUT + Duration::from_millis(700),
        "{what} took {elapsed:?}"
    );
}

/// Polls `get(id)` until it answers (bounded); returns what it read.
async fn wait_recovered(backend: &RedisBackend, id: &str) -> Option<(u64, Vec<u8>)> {
    let deadline = Instant::now() + RECOVERY;
    loop {
        match backend.get(id).await {
            Ok(found) => {
                eprintln!(
                    "backend answered after {:?}",
                    RECOVERY - (deadline - Instant::now())
                );
                return found;
            }
            Err(BackendError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("backend did not recover within {RECOVERY:?}: {e}"),
        }
    }
}

pub async fn stop_and_restart(backend: &RedisBackend, nodes: &mut [&mut RedisServer]) {
    let id = fresh_id("outage");
    // A cluster restarted by the previous check may still be settling.
    assert_eq!(wait_recovered(backend, &id).await, None);
    backend.put(&id, 4, b"survives", LONG).await.unwrap();
    for node in nodes.iter_mut() {
        node.stop();
    }

    assert_unavailable("get", backend.get(&id)).await;
    assert_unavailable("put", backend.put(&id, 5, b"x", LONG)).await;
    assert_unavailable("delete", backend.delete(&id)).await;
    assert_unavailable("lease", backend.acquire_lease(&id, "a", LONG)).await;
    assert_unavailable("commit", backend.commit(&id, "a", 4, b"x", LONG)).await;
    assert_unavailable("ping", backend.ping()).await;
    assert_unavailable("count", backend.count_approx()).await;
    assert_unavailable("login", backend.take_login(&id)).await;
    // Still failing fast on repeated calls while the back-off runs.
    for _ in 0..3 {
        assert_unavailable("get again", backend.get(&id)).await;
    }

    for node in nodes.iter_mut() {
        node.start_again();
    }
    let found = wait_recovered(backend, &id).await;
    assert_eq!(found, Some((4, b"survives".to_vec())), "kept through AOF");
    backend.ping().await.unwrap();
    // The restarted servers lost their script cache: scripts still run.
    assert!(backend.acquire_lease(&id, "a", LONG).await.unwrap());
    let outcome = backend.commit(&id, "a", 4, b"after", LONG).await.unwrap();
    assert_eq!(outcome, CommitOutcome::Committed(5));
    assert!(backend.delete(&id).await.unwrap());
}

pub async fn resubscribe_after_restart(backend: &RedisBackend, nodes: &mut [&mut RedisServer]) {
    let mut rx = backend.subscribe(16);
    assert_eq!(next(&mut rx).await, Invalidation::Resync, "subscribed");
    for node in nodes.iter_mut() {
        node.stop();
    }
    for node in nodes.iter_mut() {
        node.start_again();
    }
    let resync = tokio::time::timeout(RECOVERY, rx.recv()).await;
    assert_eq!(
        resync.expect("resubscribed in time"),
        Some(Invalidation::Resync)
    );

    // In a cluster the subscriber may hop between nodes (one Resync each)
    // and publishing fails until the cluster has settled: announce again
    // until the subscriber hears it, bounded.
    let id = fresh_id("after-restart");
    let tag = Invalidation::Session(backend.keys(&id).tag);
    let deadline = Instant::now() + RECOVERY;
    loop {
        assert!(
            Instant::now() < deadline,
            "no invalidation heard after restart"
        );
        if backend.delete(&id).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if heard(&mut rx, &tag, Duration::from_secs(1)).await {
            return;
        }
    }
}

/// Waits up to `wait` for `expected`, skipping Resyncs.
async fn heard(rx: &mut Receiver<Invalidation>, expected: &Invalidation, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match message {
            Invalidation::Resync => continue,
            message => {
                assert_eq!(&message, expected, "only this session changed");
                return true;
            }
        }
    }
    false
}

/// The backend is created while nothing listens on its port: creating it
/// succeeds, calls fail fast, and it works once a server appears.
pub async fn start_while_down() {
    let port = free_port();
    let backend = backend(
        Target::Standalone(format!("redis://127.0.0.1:{port}")),
        "dsgw",
    );
    let mut rx = backend.subscribe(16);
    let id = fresh_id("late");
    assert_unavailable("get before Redis", backend.get(&id)).await;
    assert_unavailable("ping before Redis", backend.ping()).await;

    let _server = RedisServer::start_with(port, &[]);
    assert_eq!(wait_recovered(&backend, &id).await, None);
    backend.put(&id, 1, b"late", LONG).await.unwrap();
    assert_eq!(backend.get(&id).await.unwrap(), Some((1, b"late".to_vec())));
    assert_eq!(next(&mut rx).await, Invalidation::Resync, "subscribed late");
}
