//! `limits.session_hourly` counted in Redis: two gateway instances (two
//! backends) on one Redis share each session's count; standalone and a
//! three-node cluster. The memory counter passes the same checks alone.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::{RedisCluster, RedisServer};
use docusign_gateway::session::ratelimit::{
    CallCount, CallCounter, MemoryCallCounter, RedisCallCounter,
};
use docusign_gateway::session::redis::{RedisBackend, Sealer, Target};
use docusign_gateway::util::time::{Clock, ManualClock};

const NOW: u64 = 1_800_000_000; // the start of a minute

fn backend(target: Target) -> RedisBackend {
    RedisBackend::connect(
        target,
        "dsgw",
        Duration::from_millis(1000),
        Duration::from_millis(1000),
        Sealer::new(b"redis-test-secret-0123456789abcdef0123456789", None),
    )
    .expect("a loopback target is valid")
}

/// `a` and `b` count into the same place (two instances, or one counter).
async fn shared_counts(a: &dyn CallCounter, b: &dyn CallCounter, clock: &ManualClock) {
    assert_eq!(a.count("s1", 3).await.unwrap(), CallCount::Counted);
    clock.advance_secs(70);
    assert_eq!(b.count("s1", 3).await.unwrap(), CallCount::Counted);
    assert_eq!(a.count("s1", 3).await.unwrap(), CallCount::Counted);
    // The oldest call (minute of NOW) counts until NOW + 3660.
    let refused = CallCount::Refused {
        retry_after_secs: 3660 - 70,
    };
    assert_eq!(b.count("s1", 3).await.unwrap(), refused);
    assert_eq!(a.count("s1", 3).await.unwrap(), refused);
    assert_eq!(a.count("s2", 3).await.unwrap(), CallCount::Counted);
    clock.advance_secs(3660 - 70);
    assert_eq!(b.count("s1", 3).await.unwrap(), CallCount::Counted);
    assert!(matches!(
        a.count("s1", 3).await.unwrap(),
        CallCount::Refused {
            retry_after_secs: 60
        }
    ));
}

#[tokio::test]
async fn memory_counter() {
    let clock = ManualClock::at_unix(NOW);
    let counter = MemoryCallCounter::new(100, clock.clone());
    shared_counts(&counter, &counter, &clock).await;
}

fn instances(target: &Target, clock: &Arc<ManualClock>) -> (RedisCallCounter, RedisCallCounter) {
    let clock: Arc<dyn Clock> = clock.clone();
    (
        RedisCallCounter::new(backend(target.clone()), clock.clone()),
        RedisCallCounter::new(backend(target.clone()), clock),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_instances_share_counts() {
    let server = RedisServer::start();
    let clock = ManualClock::at_unix(NOW);
    let (a, b) = instances(&Target::Standalone(server.url()), &clock);
    shared_counts(&a, &b, &clock).await;
    let keys = server.keys();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("dsgw:{") && k.ends_with("}:calls")),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| !k.contains("s1") && !k.contains("s2")));
    let ttl: i64 = server.cli_text(&["TTL", &keys[0]]).trim().parse().unwrap();
    assert!((1..=3660).contains(&ttl), "TTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_instances_share_counts() {
    let cluster = RedisCluster::start(3);
    let clock = ManualClock::at_unix(NOW);
    let (a, b) = instances(&Target::Cluster(cluster.urls()), &clock);
    shared_counts(&a, &b, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_an_error_not_a_count() {
    let mut server = RedisServer::start();
    let clock = ManualClock::at_unix(NOW);
    let (a, _) = instances(&Target::Standalone(server.url()), &clock);
    server.stop();
    assert!(a.count("s1", 3).await.is_err());
}
