//! Writes without a lease: the compare-and-set of a session's data by
//! generation (a refresh whose lease expired under it still stores the pair
//! it redeemed, if nobody else moved the generation), and single-use claims
//! (a login's OAuth state).

use std::sync::LazyLock;
use std::time::Duration;

use super::lease::CommitOutcome;
use super::script::{arg, Lua};
use super::{ttl_ms, BackendError, RedisBackend};

/// KEYS: record. ARGV: expected gen, sealed data, ttl ms, channel, tag.
/// Returns {code, gen} as the commit script does (no lease: never 2).
static SWAP: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        local gen = redis.call('HGET', KEYS[1], 'gen')
        if not gen then return {3, 0} end
        local current = tonumber(gen)
        if current == nil then return {5, 0} end
        if gen ~= ARGV[1] then return {4, current} end
        local new = string.format('%d', current + 1)
        redis.call('HSET', KEYS[1], 'gen', new, 'data', ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PUBLISH', ARGV[4], ARGV[5])
        return {1, current + 1}
        ",
    )
});

impl RedisBackend {
    /// Writes `new_data` as generation `expected_gen + 1` if the record is at
    /// `expected_gen`, and announces the change; no lease involved.
    pub async fn swap(
        &self,
        id: &str,
        expected_gen: u64,
        new_data: &[u8],
        ttl: Duration,
    ) -> Result<CommitOutcome, BackendError> {
        let keys = self.layout.keys(id);
        let sealed = self.sealer.seal(new_data, keys.record.as_bytes());
        let args = [
            arg(expected_gen),
            sealed,
            arg(ttl_ms(ttl)),
            arg(self.layout.channel()),
            arg(&keys.tag),
        ];
        let (code, gen): (i64, i64) = self
            .eval("swap session", &SWAP, &[&keys.record], &args)
            .await?;
        CommitOutcome::from_reply("swap", code, gen)
    }

    /// Marks `name` (already a hash of a secret, such as a login's state) as
    /// used for `ttl`: true the first time, false while the mark lives. The
    /// key is `{prefix}:{<hash of name>}:claim`.
    pub async fn claim(&self, name: &str, ttl: Duration) -> Result<bool, BackendError> {
        let key = self.layout.claim_key(name);
        let mut conn = self.conn.clone();
        let reply: Option<String> = self
            .run(
                "claim",
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(reply.is_some())
    }
}
