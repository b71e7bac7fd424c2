//! Asynchronous DNS for REST hosts, with a small cache.
//!
//! pingora's `HttpPeer::new` resolves names with blocking std resolution and
//! panics when a lookup fails, so the gateway resolves first and hands pingora
//! a `SocketAddr`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dashmap::DashMap;

const TTL: Duration = Duration::from_secs(60);
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 1024;

/// Why a REST host has no address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("cannot resolve {host}: {reason}")]
    Failed { host: String, reason: String },
    #[error("resolving {0} timed out")]
    TimedOut(String),
}

/// Keyed by host name, so that a hit borrows the name (no allocation on
/// the request path); the entry holds the address of one port, and another
/// port of the same name is a miss that replaces it.
#[derive(Default)]
pub struct Resolver {
    cache: DashMap<String, (SocketAddr, Instant)>,
}

impl Resolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// One address of `host:port`; the error says why there is none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, ResolveError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        if let Some(entry) = self.cache.get(host) {
            if entry.0.port() == port && entry.1.elapsed() < TTL {
                return Ok(entry.0);
            }
        }
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)));
        let addr = match lookup.await {
            Ok(Ok(mut addrs)) => addrs
                .next()
                .ok_or_else(|| ResolveError::NoAddress(host.to_string()))?,
            Ok(Err(e)) => {
                return Err(ResolveError::Failed {
                    host: host.to_string(),
                    reason: e.to_string(),
                })
            }
            Err(_) => return Err(ResolveError::TimedOut(host.to_string())),
        };
        if self.cache.len() >= MAX_ENTRIES {
            self.cache.clear();
        }
        let addr = SocketAddr::new(addr.ip(), port);
        self.cache.insert(host.to_string(), (addr, Instant::now()));
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_failures() {
        let r = Resolver::new();
        assert_eq!(
            r.resolve("127.0.0.2", 9001).await.unwrap(),
            "127.0.0.2:9001".parse().unwrap()
        );
        assert_eq!(
            r.resolve("::1", 443).await.unwrap(),
            "[::1]:443".parse().unwrap()
        );
        assert_eq!(r.resolve("localhost", 80).await.unwrap().port(), 80);
        // Cached by name: another port of the same name is its own answer.
        assert_eq!(r.resolve("localhost", 80).await.unwrap().port(), 80);
        assert_eq!(r.resolve("localhost", 8443).await.unwrap().port(), 8443);
        assert!(r.resolve("no-such-host.invalid", 443).await.is_err());
    }
}
