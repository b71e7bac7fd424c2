//! Redis as the shared session store. [`RedisStore`] (`store.rs`, with its
//! cache in `cache.rs`) is the [`SessionStore`](crate::session::SessionStore);
//! below it, [`RedisBackend`] deals in raw sealed bytes plus a generation per
//! session, a refresh lease per session, pending logins, single-use claims
//! and invalidation messages. The backend knows nothing of the session type;
//! the store encodes a session to bytes and decides what a generation means.
//!
//! - Keys: [`layout`] (hash of the session id, one hash tag per session).
//! - Values: sealed by [`seal::Sealer`] (AES-256-GCM, key name as AAD).
//! - Every command runs under `command_timeout`; failures are
//!   [`BackendError::Unavailable`] (Redis unreachable, slow, cluster down) or
//!   [`BackendError::Corrupt`] (a reply or value of the wrong shape). Neither
//!   means "not found": callers must never delete a session on an error.
//! - Creating a backend never waits for Redis (see [`RedisBackend::connect`]).
//!
//! Invariants, each with the test that holds it (`tests/redis_backend.rs`
//! runs every check on a standalone server and on a three-node cluster):
//!
//! | invariant | test |
//! | --- | --- |
//! | no token, id or login secret readable in any key or value | `checks::assert_no_plaintext` (scan + GET/HGETALL) |
//! | a value moved to another key, tampered, or of another secret is `Corrupt` | `checks::corrupt_values`, `seal::tests` |
//! | one lease holder at a time; only the owner renews or releases | `checks::leases`, `checks::kept_leases` |
//! | a commit needs the lease and the expected generation; one winner | `checks::commit_outcomes`, `checks::concurrent_commits` |
//! | replace, commit and delete are announced; new sessions are not | `checks::invalidations` |
//! | Redis down: `Unavailable` within the timeout, data kept, recovery | `outage::stop_and_restart`, `outage::start_while_down` |
//! | the subscriber resubscribes after a restart | `outage::resubscribe_after_restart` |
//! | `rediss://` verifies the server certificate | `tests/redis_tls.rs` |
//! | the store passes the conformance suite (standalone and cluster) | `tests/redis_store.rs` |
//! | another instance's refresh and logout reach the cache within 1 s | `tests/redis_store.rs`, `tests/multi_instance.rs` |
//! | the cache is bypassed while the subscription is down | `cache::tests`, `tests/redis_store.rs` |

mod cache;
mod codec;
mod conn;
mod grants;
mod keeper;
pub mod layout;
mod lease;
mod pubsub;
mod record;
mod runtime;
mod script;
pub mod seal;
mod store;
mod swap;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisResult;

pub use conn::{redact_url, Target};
pub use keeper::LeaseKeeper;
pub use layout::{tag_of, Layout, SessionKeys};
pub use lease::CommitOutcome;
pub use pubsub::Invalidation;
pub use seal::Sealer;
pub use store::{RedisSettings, RedisStore};

use conn::{map_error, Conn};
pub(crate) use script::{arg, Lua};

/// Why a Redis operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Redis did not answer in time, refused, dropped the connection, or the
    /// cluster is down: retry later; the data may well be intact.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with something this backend did not write (wrong reply
    /// shape, a value that does not decrypt).
    #[error("session store data corrupt: {0}")]
    Corrupt(String),
    /// The target cannot be a Redis (bad URL, no cluster node): a config error.
    #[error("invalid Redis target: {0}")]
    InvalidTarget(String),
}

/// The shared session store's access to Redis. Cheap to clone: clones share
/// one multiplexed connection.
#[derive(Clone)]
pub struct RedisBackend {
    conn: Conn,
    target: Target,
    layout: Layout,
    sealer: Arc<Sealer>,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("target", &self.target)
            .field("layout", &self.layout)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

impl RedisBackend {
    /// A backend for `target`, without connecting: the first command
    /// connects, and a lost connection is re-established in the background,
    /// so the gateway starts and keeps running while Redis is down. Must be
    /// called inside a tokio runtime that outlives the backend. Fails only
    /// with [`BackendError::InvalidTarget`].
    pub fn connect(
        target: Target,
        key_prefix: &str,
        connect_timeout: Duration,
        command_timeout: Duration,
        sealer: Sealer,
    ) -> Result<RedisBackend, BackendError> {
        let conn = Conn::lazy(&target, connect_timeout, command_timeout)?;
        Ok(RedisBackend {
            conn,
            target,
            layout: Layout::new(key_prefix),
            sealer: Arc::new(sealer),
            connect_timeout,
            command_timeout,
        })
    }

    /// The key names of session `id` (its `tag` is what invalidations carry).
    pub fn keys(&self, id: &str) -> SessionKeys {
        self.layout.keys(id)
    }

    /// Readiness: Redis answers PING within the command timeout. (In a
    /// cluster this asks the nodes redis-rs routes PING to; a cluster with a
    /// lost master shows up as `Unavailable` on the commands of its slots.)
    pub async fn ping(&self) -> Result<(), BackendError> {
        let mut conn = self.conn.clone();
        let reply: String = self
            .run("PING", redis::cmd("PING").query_async(&mut conn))
            .await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(BackendError::Corrupt("PING: unexpected reply".into()))
        }
    }

    /// Number of keys in Redis (DBSIZE; summed over the masters of a
    /// cluster). Approximate as a session count: it also counts leases,
    /// pending logins, keys of other prefixes, and keys expired but not yet
    /// evicted. No SCAN, so it stays cheap with millions of keys.
    pub async fn count_approx(&self) -> Result<u64, BackendError> {
        let mut conn = self.conn.clone();
        self.run("DBSIZE", redis::cmd("DBSIZE").query_async(&mut conn))
            .await
    }

    /// The sealer of every value this backend writes (other users of the
    /// same Redis, such as the webhook queues, seal with it too).
    pub(crate) fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// `[redis] key_prefix`.
    pub fn key_prefix(&self) -> &str {
        self.layout.prefix()
    }

    /// Runs one command under the command timeout, mapping its errors.
    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, BackendError> {
        let mut conn = self.conn.clone();
        self.run(what, cmd.query_async(&mut conn)).await
    }

    /// Runs one Redis call under the command timeout, mapping its errors.
    async fn run<T>(
        &self,
        what: &str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(map_error(what, &e)),
            Err(_) => Err(BackendError::Unavailable(format!(
                "{what}: no answer within {} ms",
                self.command_timeout.as_millis()
            ))),
        }
    }
}

/// Longest TTL sent to Redis (ten years), far below its overflow check.
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Milliseconds for PEXPIRE / PX: at least 1 (Redis rejects 0), at most
/// [`MAX_TTL_MS`].
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(MAX_TTL_MS)
        .clamp(1, MAX_TTL_MS)
}
