//! A session's registry of gateway tokens in Redis: a HASH
//! `{prefix}:{tag}:tk` beside the session record (same slot), field = token
//! id, value = `<expires_at>:<sealed record>`. The expiry stays readable so
//! that the add script can drop expired tokens before it counts; the
//! record (name, scope) is sealed like every value, bound to its key and
//! field. Adding and revoking announce the session's tag on the
//! invalidation channel, so every instance's cache drops its copy.

use std::sync::LazyLock;

use super::script::{arg, Lua};
use super::{BackendError, RedisBackend};
use crate::session::grants::{Added, TokenRecord};

/// KEYS: session record, tokens. ARGV: id, value, max, now (unix s),
/// channel, tag. Returns 1 added, 0 full, -1 no session.
static ADD: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl <= 0 then return -1 end
        local now = tonumber(ARGV[4])
        local all = redis.call('HGETALL', KEYS[2])
        local live = 0
        for i = 1, #all, 2 do
            local value = all[i + 1]
            local colon = string.find(value, ':', 1, true)
            local exp = colon and tonumber(string.sub(value, 1, colon - 1))
            if exp == nil or exp <= now then
                redis.call('HDEL', KEYS[2], all[i])
            else
                live = live + 1
            end
        end
        if live >= tonumber(ARGV[3]) then return 0 end
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        redis.call('PEXPIRE', KEYS[2], ttl)
        redis.call('PUBLISH', ARGV[5], ARGV[6])
        return 1
        ",
    )
});

/// KEYS: tokens. ARGV: id, channel, tag. Returns 1 revoked, 0 not there.
static REVOKE: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
        local removed = redis.call('HDEL', KEYS[1], ARGV[1])
        if removed == 1 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
        return removed
        ",
    )
});

/// What a token record is sealed to: its key and its field.
fn aad(key: &str, id: &str) -> Vec<u8> {
    format!("{key}#{id}").into_bytes()
}

impl RedisBackend {
    /// Registers `record` for session `id`, at most `max` live ones.
    pub async fn add_token(
        &self,
        id: &str,
        record: &TokenRecord,
        max: usize,
        now_unix: u64,
    ) -> Result<Added, BackendError> {
        let keys = self.layout.keys(id);
        let json = serde_json::to_vec(record)
            .map_err(|e| BackendError::Corrupt(format!("token record: {e}")))?;
        let mut value = format!("{}:", record.expires_at).into_bytes();
        value.extend(self.sealer.seal(&json, &aad(&keys.tokens, &record.id)));
        let args = [
            arg(&record.id),
            value,
            arg(max),
            arg(now_unix),
            arg(self.layout.channel()),
            arg(&keys.tag),
        ];
        let code: i64 = self
            .eval("add token", &ADD, &[&keys.record, &keys.tokens], &args)
            .await?;
        Ok(match code {
            1 => Added::Added,
            0 => Added::Full,
            _ => Added::NoSession,
        })
    }

    /// Every token record of session `id` that opens (expired ones too:
    /// the caller filters). A value that does not open is left out.
    pub async fn tokens(&self, id: &str) -> Result<Vec<TokenRecord>, BackendError> {
        let keys = self.layout.keys(id);
        let mut conn = self.conn.clone();
        let all: Vec<(String, Vec<u8>)> = self
            .run(
                "get tokens",
                redis::cmd("HGETALL")
                    .arg(&keys.tokens)
                    .query_async(&mut conn),
            )
            .await?;
        let records = all
            .into_iter()
            .filter_map(|(field, value)| {
                let colon = value.iter().position(|&b| b == b':')?;
                let json = self
                    .sealer
                    .open(&value[colon + 1..], &aad(&keys.tokens, &field))
                    .ok()?;
                serde_json::from_slice::<TokenRecord>(&json)
                    .ok()
                    .filter(|r| r.id == field)
            })
            .collect();
        Ok(records)
    }

    /// Revokes token `token_id` of session `id`.
    pub async fn revoke_token(&self, id: &str, token_id: &str) -> Result<bool, BackendError> {
        let keys = self.layout.keys(id);
        let args = [arg(token_id), arg(self.layout.channel()), arg(&keys.tag)];
        let removed: i64 = self
            .eval("revoke token", &REVOKE, &[&keys.tokens], &args)
            .await?;
        Ok(removed == 1)
    }
}
