//! `[session] store` and `[redis]`: where sessions live. With
//! `store = "redis"`, exactly one of `redis.url` (a standalone server) and
//! `redis.cluster_urls` (Redis Cluster seed nodes) must be set. A URL may
//! carry a password: no error, `check` output or log line shows it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::range;
use super::raw::RawRedis;

/// `[session] store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process only (the default; the demo and single instances).
    #[default]
    Memory,
    /// Shared by every instance through Redis.
    Redis,
}

/// Where Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Standalone(String),
    Cluster(Vec<String>),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Standalone(url) => {
                f.debug_tuple("Standalone").field(&redacted(url)).finish()
            }
            RedisTarget::Cluster(urls) => f
                .debug_tuple("Cluster")
                .field(&urls.iter().map(|u| redacted(u)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// The validated `[redis]` section (present only with `store = "redis"`).
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub target: RedisTarget,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

/// A URL with its password (if any) replaced by `***`; a string that does
/// not parse as a URL is not shown at all.
pub fn redacted(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => "<unparsable url>".to_owned(),
    }
}

/// The URL of `key`, checked for a Redis scheme and a host; the error never
/// quotes it.
fn redis_url(key: &str, raw: &str) -> Result<String, ConfigError> {
    let expected =
        "expected redis://[user:password@]host:port[/db] or rediss://... (the value is not shown)";
    let url = url::Url::parse(raw.trim()).map_err(|_| ConfigError::new(key, expected))?;
    if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(key, expected));
    }
    Ok(raw.trim().to_owned())
}

pub(super) fn validate(
    store: StoreKind,
    raw: RawRedis,
) -> Result<Option<RedisConfig>, ConfigError> {
    if store == StoreKind::Memory {
        return Ok(None);
    }
    let url = raw.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let cluster: Vec<&str> = raw
        .cluster_urls
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .collect();
    let target = match (url, cluster.is_empty()) {
        (Some(url), true) => RedisTarget::Standalone(redis_url("redis.url", url)?),
        (None, false) => RedisTarget::Cluster(
            cluster
                .iter()
                .map(|u| redis_url("redis.cluster_urls", u))
                .collect::<Result<_, _>>()?,
        ),
        (Some(_), false) => {
            return Err(ConfigError::new(
                "redis.url",
                "set either redis.url (one server) or redis.cluster_urls (a cluster), not both",
            ))
        }
        (None, true) => return Err(ConfigError::new(
            "redis.url",
            "session.store = \"redis\" needs redis.url (or DSGW_REDIS_URL) or redis.cluster_urls",
        )),
    };
    let prefix_ok = !raw.key_prefix.is_empty()
        && raw.key_prefix.len() <= 64
        && raw
            .key_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-:.".contains(&b));
    if !prefix_ok {
        return Err(ConfigError::new(
            "redis.key_prefix",
            "expected 1 to 64 letters, digits, '_', '-', ':' or '.'",
        ));
    }
    let ms = |key: &str, value: u64| {
        range::check(key, value, 1..=60_000, range::Unit::Milliseconds).map(Duration::from_millis)
    };
    Ok(Some(RedisConfig {
        target,
        key_prefix: raw.key_prefix,
        connect_timeout: ms("redis.connect_timeout_ms", raw.connect_timeout_ms)?,
        command_timeout: ms("redis.command_timeout_ms", raw.command_timeout_ms)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawRedis {
        RawRedis {
            url: Some("redis://user:hunter2@cache.internal:6380/0".into()),
            ..RawRedis::default()
        }
    }

    #[test]
    fn memory_needs_no_redis() {
        assert!(validate(StoreKind::Memory, RawRedis::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_url_is_kept_and_never_shown() {
        let c = validate(StoreKind::Redis, raw()).unwrap().unwrap();
        assert_eq!(c.key_prefix, "dsgw");
        assert_eq!(c.connect_timeout, Duration::from_millis(1000));
        assert_eq!(c.command_timeout, Duration::from_millis(500));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user:***@cache.internal:6380"), "{shown}");
        let bad = RawRedis {
            url: Some("http://user:hunter2@host".into()),
            ..raw()
        };
        let e = validate(StoreKind::Redis, bad).unwrap_err();
        assert_eq!(e.key, "redis.url");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn exactly_one_target() {
        let none = validate(StoreKind::Redis, RawRedis::default()).unwrap_err();
        assert_eq!(none.key, "redis.url");
        let both = RawRedis {
            cluster_urls: vec!["redis://a:7000".into()],
            ..raw()
        };
        let e = validate(StoreKind::Redis, both).unwrap_err();
        assert_eq!(e.key, "redis.url");
        assert!(e.message.contains("not both"), "{e}");
        let cluster = RawRedis {
            cluster_urls: vec!["redis://a:7000".into(), "redis://b:7001".into()],
            ..RawRedis::default()
        };
        let c = validate(StoreKind::Redis, cluster).unwrap().unwrap();
        assert_eq!(
            c.target,
            RedisTarget::Cluster(vec!["redis://a:7000".into(), "redis://b:7001".into()])
        );
        let bad = RawRedis {
            cluster_urls: vec!["redis://a:7000".into(), "nope".into()],
            ..RawRedis::default()
        };
        assert_eq!(
            validate(StoreKind::Redis, bad).unwrap_err().key,
            "redis.cluster_urls"
        );
    }

    #[test]
    fn from_the_environment_and_masked_in_check_output() {
        use crate::config::{Config, RawConfig};
        let env = [
            ("DSGW_SESSION_STORE", "redis"),
            (
                "DSGW_REDIS_CLUSTER_URLS",
                "redis://:hunter2@a:7000, redis://:hunter2@b:7001",
            ),
            ("DSGW_REDIS_COMMAND_TIMEOUT_MS", "250"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let file = "[docusign]\nclient_id = \"x\"\nclient_secret = \"y\"\n[session]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";
        let raw = RawConfig::parse(file, env.clone()).unwrap();
        let shown = raw.masked_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://:***@a:7000"), "{shown}");
        let cfg = Config::from_toml_str(file, env).unwrap();
        let redis = cfg.redis.expect("store = redis");
        assert_eq!(redis.command_timeout, Duration::from_millis(250));
        assert!(matches!(redis.target, RedisTarget::Cluster(ref u) if u.len() == 2));
        let bad = [
            ("DSGW_SESSION_STORE", "redis"),
            ("DSGW_REDIS_URL", "ftp://u:hunter2@h"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let e = Config::from_toml_str(file, bad).unwrap_err();
        assert_eq!(e.key, "redis.url");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let typo = [("DSGW_SESSION_STORE", "redls")].map(|(k, v)| (k.to_string(), v.to_string()));
        let e = Config::from_toml_str(file, typo).unwrap_err();
        assert_eq!(e.key, "session.store", "{e}");
    }

    #[test]
    fn prefix_and_timeouts_are_checked() {
        type Spoil = fn(&mut RawRedis);
        let cases: [(&str, Spoil); 4] = [
            ("redis.key_prefix", |r| r.key_prefix = "a{b}".into()),
            ("redis.key_prefix", |r| r.key_prefix = String::new()),
            ("redis.connect_timeout_ms", |r| r.connect_timeout_ms = 0),
            ("redis.command_timeout_ms", |r| {
                r.command_timeout_ms = 60_001
            }),
        ];
        for (key, spoil) in cases {
            let mut r = raw();
            spoil(&mut r);
            assert_eq!(validate(StoreKind::Redis, r).unwrap_err().key, key);
        }
    }
}
