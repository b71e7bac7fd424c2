//! The refresh lease and the commit of a refreshed session.
//!
//! One refresh across all instances: an instance takes the lease
//! `{prefix}:{tag}:lk` (SET NX PX, value = its owner id), renews it while the
//! token call runs, and commits the new data with [`RedisBackend::commit`],
//! one script that checks the lease owner and the generation, writes, drops
//! the lease and announces the change. A lease or check that fails is an
//! outcome, never an error: errors mean Redis could not be asked.

use std::sync::LazyLock;
use std::time::Duration;

use super::script::{arg, Lua};
use super::{ttl_ms, BackendError, RedisBackend};

/// KEYS: lease. ARGV: owner, ttl ms. 1 if renewed.
static RENEW: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        ",
    )
});

/// KEYS: lease. ARGV: owner. 1 if released.
static RELEASE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
        end
        return 0
        ",
    )
});

/// KEYS: lease, record. ARGV: owner, expected gen, sealed data, ttl ms,
/// channel, tag. Returns {code, gen}: 1 committed (new gen), 2 lease lost,
/// 3 gone, 4 stale (current gen), 5 the stored gen is not a number.
static COMMIT: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {2, 0} end
        local gen = redis.call('HGET', KEYS[2], 'gen')
        if not gen then return {3, 0} end
        local current = tonumber(gen)
        if current == nil then return {5, 0} end
        if gen ~= ARGV[2] then return {4, current} end
        local new = string.format('%d', current + 1)
        redis.call('HSET', KEYS[2], 'gen', new, 'data', ARGV[3])
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        redis.call('DEL', KEYS[1])
        redis.call('PUBLISH', ARGV[5], ARGV[6])
        return {1, current + 1}
        ",
    )
});

/// What a commit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Written with this new generation; the lease is released.
    Committed(u64),
    /// The caller no longer holds the lease (expired, or taken by another
    /// instance): nothing written.
    LeaseLost,
    /// The stored generation is not the expected one (this is the current
    /// one): nothing written.
    Stale(u64),
    /// The session no longer exists (logged out, expired): nothing written.
    Gone,
}

impl RedisBackend {
    /// Takes the refresh lease of session `id` for `owner` if nobody holds
    /// it. False means another owner holds it: wait for its commit.
    pub async fn acquire_lease(
        &self,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let lease = self.layout.keys(id).lease;
        let mut conn = self.conn.clone();
        let reply: Option<String> = self
            .run(
                "acquire lease",
                redis::cmd("SET")
                    .arg(&lease)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply.is_some())
    }

    /// Extends the lease to `ttl` from now if `owner` still holds it.
    pub async fn renew_lease(
        &self,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let lease = self.layout.keys(id).lease;
        let args = [arg(owner), arg(ttl_ms(ttl))];
        let renewed: i64 = self.eval("renew lease", &RENEW, &[&lease], &args).await?;
        Ok(renewed == 1)
    }

    /// Drops the lease if `owner` holds it; true if it did.
    pub async fn release_lease(&self, id: &str, owner: &str) -> Result<bool, BackendError> {
        let lease = self.layout.keys(id).lease;
        let released: i64 = self
            .eval("release lease", &RELEASE, &[&lease], &[arg(owner)])
            .await?;
        Ok(released == 1)
    }

    /// Writes `new_data` as generation `expected_gen + 1` if `owner` holds
    /// the lease and the record is at `expected_gen`; then drops the lease
    /// and announces the change, all in one script.
    pub async fn commit(
        &self,
        id: &str,
        owner: &str,
        expected_gen: u64,
        new_data: &[u8],
        ttl: Duration,
    ) -> Result<CommitOutcome, BackendError> {
        let keys = self.layout.keys(id);
        let sealed = self.sealer.seal(new_data, keys.record.as_bytes());
        let args = [
            arg(owner),
            arg(expected_gen),
            sealed,
            arg(ttl_ms(ttl)),
            arg(self.layout.channel()),
            arg(&keys.tag),
        ];
        let script_keys = [keys.lease.as_str(), keys.record.as_str()];
        let (code, gen): (i64, i64) = self
            .eval("commit session", &COMMIT, &script_keys, &args)
            .await?;
        CommitOutcome::from_reply("commit", code, gen)
    }
}

impl CommitOutcome {
    /// The `{code, generation}` reply of the commit and swap scripts.
    pub(super) fn from_reply(op: &str, code: i64, gen: i64) -> Result<Self, BackendError> {
        let gen = u64::try_from(gen)
            .map_err(|_| BackendError::Corrupt(format!("{op}: negative generation")))?;
        match code {
            1 => Ok(CommitOutcome::Committed(gen)),
            2 => Ok(CommitOutcome::LeaseLost),
            3 => Ok(CommitOutcome::Gone),
            4 => Ok(CommitOutcome::Stale(gen)),
            _ => Err(BackendError::Corrupt(format!(
                "{op}: stored generation is not a number"
            ))),
        }
    }
}
