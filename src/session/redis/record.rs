//! Session records and pending logins: sealed bytes with a TTL.
//!
//! A session record is a HASH `{prefix}:{tag}:s` with fields `gen` (decimal
//! integer) and `data` (sealed); a pending login is a string
//! `{prefix}:{tag}:login` (sealed). Writes that replace or remove a session
//! announce its tag on the invalidation channel, in the same script.

use std::sync::LazyLock;
use std::time::Duration;

use super::script::{arg, Lua};
use super::{ttl_ms, BackendError, RedisBackend};

/// KEYS: record. ARGV: gen, sealed data, ttl ms, channel, tag.
/// Announces the tag when an existing record was replaced.
static PUT: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        local existed = redis.call('EXISTS', KEYS[1])
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'data', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        if existed == 1 then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
        return existed
        ",
    )
});

/// KEYS: record. ARGV: channel, tag. Announces the tag even when the record
/// was already gone (another instance may still cache it).
static DELETE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        local removed = redis.call('DEL', KEYS[1])
        redis.call('DEL', KEYS[2])
        redis.call('PUBLISH', ARGV[1], ARGV[2])
        return removed
        ",
    )
});

impl RedisBackend {
    /// Stores session `id` with generation `gen`, replacing any record, with
    /// `ttl` as its lifetime. Announces the change if it replaced a record.
    pub async fn put(
        &self,
        id: &str,
        gen: u64,
        data: &[u8],
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let keys = self.layout.keys(id);
        let sealed = self.sealer.seal(data, keys.record.as_bytes());
        let args = [
            arg(gen),
            sealed,
            arg(ttl_ms(ttl)),
            arg(self.layout.channel()),
            arg(&keys.tag),
        ];
        let _replaced: i64 = self
            .eval("put session", &PUT, &[&keys.record], &args)
            .await?;
        Ok(())
    }

    /// The generation and data of session `id`; `None` only when Redis says
    /// the record does not exist.
    pub async fn get(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, BackendError> {
        let keys = self.layout.keys(id);
        let mut conn = self.conn.clone();
        let fields: (Option<String>, Option<Vec<u8>>) = self
            .run(
                "get session",
                redis::cmd("HMGET")
                    .arg(&keys.record)
                    .arg("gen")
                    .arg("data")
                    .query_async(&mut conn),
            )
            .await?;
        match fields {
            (None, None) => Ok(None),
            (Some(gen), Some(sealed)) => {
                let gen = gen.parse::<u64>().map_err(|_| {
                    BackendError::Corrupt("session generation is not a number".into())
                })?;
                let data = self.sealer.open(&sealed, keys.record.as_bytes())?;
                Ok(Some((gen, data)))
            }
            _ => Err(BackendError::Corrupt(
                "session record lacks its gen or data field".into(),
            )),
        }
    }

    /// Removes session `id` and announces it to every instance. True if a
    /// record was removed.
    pub async fn delete(&self, id: &str) -> Result<bool, BackendError> {
        let keys = self.layout.keys(id);
        let args = [arg(self.layout.channel()), arg(&keys.tag)];
        let removed: i64 = self
            .eval(
                "delete session",
                &DELETE,
                &[&keys.record, &keys.tokens],
                &args,
            )
            .await?;
        Ok(removed == 1)
    }

    /// Announces session `id` as changed without touching it (e.g. after a
    /// change made by other means).
    pub async fn publish_invalidation(&self, id: &str) -> Result<(), BackendError> {
        let tag = self.layout.keys(id).tag;
        let mut conn = self.conn.clone();
        let _receivers: i64 = self
            .run(
                "publish invalidation",
                redis::cmd("PUBLISH")
                    .arg(self.layout.channel())
                    .arg(tag)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    /// Stores what a login in progress needs, for `ttl` (the login timeout).
    pub async fn put_login(
        &self,
        id: &str,
        data: &[u8],
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let key = self.layout.keys(id).login;
        let sealed = self.sealer.seal(data, key.as_bytes());
        let mut conn = self.conn.clone();
        let () = self
            .run(
                "put login",
                redis::cmd("SET")
                    .arg(&key)
                    .arg(sealed)
                    .arg("PX")
                    .arg(ttl_ms(ttl))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(())
    }

    /// Takes the pending login `id` (GETDEL: a login completes once, on
    /// whichever instance the callback lands). `None` if absent or expired.
    pub async fn take_login(&self, id: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let key = self.layout.keys(id).login;
        let mut conn = self.conn.clone();
        let sealed: Option<Vec<u8>> = self
            .run(
                "take login",
                redis::cmd("GETDEL").arg(&key).query_async(&mut conn),
            )
            .await?;
        sealed
            .map(|sealed| self.sealer.open(&sealed, key.as_bytes()))
            .transpose()
    }
}
