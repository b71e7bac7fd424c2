//! The Redis backend against real servers: a standalone `redis-server` and a
//! three-node Redis Cluster, each started by the test on free loopback ports.
//! The same checks (`checks.rs`) run on both; `outage.rs` stops and restarts
//! Redis under a live backend.

#[path = "redis_backend/checks.rs"]
mod checks;
mod common;
#[path = "redis_backend/outage.rs"]
mod outage;

use std::time::Duration;

use common::redis::{RedisCluster, RedisServer};
use docusign_gateway::session::redis::{RedisBackend, Sealer, Target};

pub const SECRET: &[u8] = b"redis-test-secret-0123456789abcdef0123456789";
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// A backend on `target` with the test secret and timeouts.
pub fn backend(target: Target, prefix: &str) -> RedisBackend {
    backend_with_secret(target, prefix, SECRET)
}

pub fn backend_with_secret(target: Target, prefix: &str, secret: &[u8]) -> RedisBackend {
    RedisBackend::connect(
        target,
        prefix,
        CONNECT_TIMEOUT,
        COMMAND_TIMEOUT,
        Sealer::new(secret, None),
    )
    .expect("a loopback target is valid")
}

const OTHER_SECRET: &[u8] = b"another-secret-0123456789abcdef0123456789";

/// Direct access to what Redis holds, to check the backend from outside.
pub enum Raw {
    Single(String),
    Cluster(Vec<String>),
}

impl Raw {
    /// Runs one command with the plain (synchronous) redis-rs client.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        match self {
            Raw::Single(url) => {
                let mut conn = redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .expect("raw connection");
                cmd.query(&mut conn).expect("raw command")
            }
            Raw::Cluster(urls) => {
                let mut conn = redis::cluster::ClusterClient::new(urls.clone())
                    .and_then(|c| c.get_connection())
                    .expect("raw cluster connection");
                cmd.query(&mut conn).expect("raw command")
            }
        }
    }
}

fn standalone() -> (RedisServer, RedisBackend, Raw) {
    let server = RedisServer::start();
    let backend = backend(Target::Standalone(server.url()), "dsgw");
    let raw = Raw::Single(server.url());
    (server, backend, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_records() {
    let (server, backend, raw) = standalone();
    checks::records(&backend, &raw).await;
    checks::logins(&backend).await;
    let other = backend_with_secret(Target::Standalone(server.url()), "dsgw", OTHER_SECRET);
    checks::corrupt_values(&backend, &other, &raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_leases_and_commits() {
    let (_server, backend, _raw) = standalone();
    checks::leases(&backend).await;
    checks::kept_leases(&backend).await;
    checks::commit_outcomes(&backend).await;
    checks::concurrent_commits(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_invalidations() {
    let (_server, backend, _raw) = standalone();
    checks::invalidations(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_holds_no_plaintext() {
    let (server, backend, _raw) = standalone();
    checks::write_secrets(&backend).await;
    checks::assert_no_plaintext(&server.keys(), &server.dump_values());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_outage_and_recovery() {
    let mut server = RedisServer::start();
    let backend = backend(Target::Standalone(server.url()), "dsgw");
    outage::stop_and_restart(&backend, &mut [&mut server]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_resubscribes_after_restart() {
    let mut server = RedisServer::start();
    let backend = backend(Target::Standalone(server.url()), "dsgw");
    outage::resubscribe_after_restart(&backend, &mut [&mut server]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_while_redis_is_down() {
    outage::start_while_down().await;
}

fn cluster_dbsize(cluster: &RedisCluster) -> u64 {
    let size = |n: &RedisServer| n.cli_text(&["DBSIZE"]).trim().parse::<u64>().unwrap();
    cluster.nodes.iter().map(size).sum()
}

/// Every check on one three-node cluster (starting a cluster takes seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_everything() {
    let mut cluster = RedisCluster::start(3);
    let backend = backend(Target::Cluster(cluster.urls()), "dsgw");
    let raw = Raw::Cluster(cluster.urls());
    checks::records(&backend, &raw).await;
    checks::logins(&backend).await;
    let other = backend_with_secret(Target::Cluster(cluster.urls()), "dsgw", OTHER_SECRET);
    checks::corrupt_values(&backend, &other, &raw).await;
    checks::leases(&backend).await;
    checks::kept_leases(&backend).await;
    checks::commit_outcomes(&backend).await;
    checks::concurrent_commits(&backend).await;
    checks::invalidations(&backend).await;

    let before = cluster.keys().len();
    checks::write_secrets(&backend).await;
    let keys = cluster.keys();
    assert!(keys.len() > before, "the secrets were written");
    checks::assert_no_plaintext(&keys, &cluster.dump_values());
    // Keys only expire meanwhile: the backend's sum lies between two
    // sums of every node's DBSIZE.
    let before = cluster_dbsize(&cluster);
    let counted = backend.count_approx().await.unwrap();
    let after = cluster_dbsize(&cluster);
    assert!(
        (after..=before).contains(&counted),
        "summed over masters: {after} <= {counted} <= {before}"
    );
    let per_node: Vec<usize> = cluster.nodes.iter().map(|n| n.keys().len()).collect();
    assert!(
        per_node.iter().filter(|&&n| n > 0).count() >= 2,
        "keys spread over the masters: {per_node:?}"
    );

    let mut nodes: Vec<&mut RedisServer> = cluster.nodes.iter_mut().collect();
    outage::resubscribe_after_restart(&backend, &mut nodes).await;
    cluster.wait_ok();
    let mut nodes: Vec<&mut RedisServer> = cluster.nodes.iter_mut().collect();
    outage::stop_and_restart(&backend, &mut nodes).await;
}
