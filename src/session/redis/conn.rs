//! The connection to Redis: one multiplexed, self-reconnecting connection per
//! process (redis-rs `ConnectionManager` for a standalone server, the async
//! cluster client for Redis Cluster), both created lazily so that the gateway
//! starts while Redis is down and recovers by itself when it returns.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::BackendError;

/// Where Redis is.
#[derive(Clone)]
pub enum Target {
    /// `redis://[user:password@]host:port/db` or `rediss://...` (TLS).
    Standalone(String),
    /// Seed nodes of a Redis Cluster, each a `redis://` or `rediss://` URL.
    Cluster(Vec<String>),
}

impl From<&crate::config::RedisTarget> for Target {
    fn from(target: &crate::config::RedisTarget) -> Target {
        match target {
            crate::config::RedisTarget::Standalone(url) => Target::Standalone(url.clone()),
            crate::config::RedisTarget::Cluster(urls) => Target::Cluster(urls.clone()),
        }
    }
}

impl Target {
    /// The URLs a pub/sub connection may use, in order of preference.
    pub(crate) fn urls(&self) -> Vec<String> {
        match self {
            Target::Standalone(url) => vec![url.clone()],
            Target::Cluster(urls) => urls.clone(),
        }
    }
}

/// Prints URLs with their passwords replaced by `***`.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Standalone(url) => f.debug_tuple("Standalone").field(&redact_url(url)).finish(),
            Target::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redact_url(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A URL fit for a log line: its password (if any) replaced by `***`; a
/// string that does not parse as a URL is not shown at all (the same rule
/// as the configuration's).
pub use crate::config::redacted as redact_url;

/// Either kind of connection; cheap to clone (both are handles to one
/// multiplexed connection).
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Reconnection back-off of the standalone connection: short, so that the
/// gateway notices a returning Redis within about a second.
const RETRY_MIN_DELAY: Duration = Duration::from_millis(100);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(1);

impl Conn {
    /// Creates the connection without connecting: must run inside a tokio
    /// runtime (redis-rs spawns its connection tasks there). Fails only on a
    /// target that cannot be valid (an unparsable URL, an empty node list).
    pub(crate) fn lazy(
        target: &Target,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<Conn, BackendError> {
        match target {
            Target::Standalone(url) => {
                let client = redis::Client::open(url.as_str()).map_err(|e| {
                    BackendError::InvalidTarget(format!("{}: {:?}", redact_url(url), e.kind()))
                })?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(command_timeout))
                    .set_min_delay(RETRY_MIN_DELAY)
                    .set_max_delay(RETRY_MAX_DELAY);
                let manager = ConnectionManager::new_lazy_with_config(client, config)
                    .map_err(|e| BackendError::InvalidTarget(format!("{:?}", e.kind())))?;
                Ok(Conn::Single(manager))
            }
            Target::Cluster(urls) => {
                if urls.is_empty() {
                    return Err(BackendError::InvalidTarget("no cluster node URL".into()));
                }
                let client = ClusterClient::builder(urls.iter().map(String::as_str))
                    .connection_timeout(connect_timeout)
                    .response_timeout(command_timeout)
                    .build()
                    .map_err(|e| BackendError::InvalidTarget(format!("{:?}", e.kind())))?;
                // Connects in the background (no hang in setup, redis-rs
                // #1953) and reconnects to the seed nodes when all are lost.
                let config = ClusterConfig::new()
                    .set_connection_timeout(connect_timeout)
                    .set_response_timeout(command_timeout);
                Ok(Conn::Cluster(
                    client.get_pending_async_connection_with_config(config),
                ))
            }
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Maps a redis-rs error to the backend's two cases. The message names the
/// operation and the kind of failure only: never a key, a value or a URL.
pub(crate) fn map_error(what: &str, e: &RedisError) -> BackendError {
    use redis::ErrorKind;
    match e.kind() {
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => BackendError::Corrupt(format!(
            "{what}: unexpected reply from Redis ({:?})",
            e.kind()
        )),
        _ if e.code() == Some("WRONGTYPE") => {
            BackendError::Corrupt(format!("{what}: a key holds another type than expected"))
        }
        kind => {
            let reason = if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connection_refusal() {
                "connection refused".to_owned()
            } else if e.is_connection_dropped() {
                "connection dropped".to_owned()
            } else if let Some(code) = e.code() {
                format!("Redis answered {code}")
            } else {
                format!("{kind:?}")
            };
            BackendError::Unavailable(format!("{what}: {reason}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        let url = "redis://user:hunter2@cache.internal:6380/2";
        assert_eq!(redact_url(url), "redis://user:***@cache.internal:6380/2");
        let target = Target::Cluster(vec![url.into(), "redis://a:7000".into()]);
        let debug = format!("{target:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://a:7000"), "{debug}");
        assert_eq!(redact_url("not a url with hunter2"), "<unparsable url>");
    }

    #[test]
    fn errors_map_to_unavailable_or_corrupt() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let mapped = map_error("get session", &RedisError::from(refused));
        assert_eq!(
            mapped,
            BackendError::Unavailable("get session: connection refused".into())
        );
        let shape = RedisError::from((redis::ErrorKind::UnexpectedReturnType, "shape"));
        assert!(matches!(map_error("x", &shape), BackendError::Corrupt(_)));
        for (reply, corrupt) in [
            (&b"-WRONGTYPE Operation against a key\r\n"[..], true),
            (b"-CLUSTERDOWN The cluster is down\r\n", false),
            (b"-LOADING Redis is loading\r\n", false),
        ] {
            let Ok(Value::ServerError(error)) = redis::parse_redis_value(reply) else {
                panic!("a server error reply");
            };
            let mapped = map_error("x", &RedisError::from(error));
            assert_eq!(
                matches!(mapped, BackendError::Corrupt(_)),
                corrupt,
                "{mapped}"
            );
            assert!(!mapped.to_string().contains("Operation"), "{mapped}");
        }
    }

    #[tokio::test]
    async fn an_invalid_url_is_a_target_error_not_a_leak() {
        let target = Target::Standalone("http://user:hunter2@host:1".into());
        let err = Conn::lazy(&target, Duration::from_secs(1), Duration::from_secs(1))
            .err()
            .expect("an http URL is not a Redis target");
        assert!(matches!(err, BackendError::InvalidTarget(_)));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
