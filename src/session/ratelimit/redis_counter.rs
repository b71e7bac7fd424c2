//! [`CallCounter`] in Redis, so every instance counts a session's calls in
//! one place: one Lua script per call on one key per session,
//! `<prefix>:{<tag>}:calls` (the session's hash tag, so it shares the slot
//! of the session's record), a HASH of minute -> calls with a TTL of an
//! hour and a minute. The same one-minute buckets as the memory counter
//! (see `counter.rs`).

use std::sync::Arc;

use async_trait::async_trait;

use super::counter::{CallCount, CallCounter, COUNTED_SECS};
use crate::session::redis::{arg, Lua, RedisBackend};
use crate::session::StoreError;
use crate::util::time::Clock;

/// KEYS[1]: the session's calls; ARGV: now (Unix seconds), limit, seconds a
/// call stays counted. Returns 0 when the call was counted, else the seconds
/// until the oldest counted minute drops out.
const COUNT_LUA: &str = r#"
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local counted = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local total = 0
local oldest = nil
for i = 1, #all, 2 do
  local m = tonumber(all[i])
  if m * 60 + counted <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(all[i + 1])
    if oldest == nil or m < oldest then oldest = m end
  end
end
if total >= limit then
  if oldest == nil then oldest = math.floor(now / 60) end
  return math.max(1, oldest * 60 + counted - now)
end
redis.call('HINCRBY', KEYS[1], tostring(math.floor(now / 60)), 1)
redis.call('EXPIRE', KEYS[1], counted)
return 0
"#;

pub struct RedisCallCounter {
    backend: RedisBackend,
    clock: Arc<dyn Clock>,
    lua: Lua,
}

impl RedisCallCounter {
    pub fn new(backend: RedisBackend, clock: Arc<dyn Clock>) -> RedisCallCounter {
        RedisCallCounter {
            backend,
            clock,
            lua: Lua::new(COUNT_LUA),
        }
    }

    /// The key of session `id`'s calls, beside its record.
    fn key(&self, id: &str) -> String {
        let record = self.backend.keys(id).record;
        let base = record.strip_suffix(":s").unwrap_or(&record);
        format!("{base}:calls")
    }
}

#[async_trait]
impl CallCounter for RedisCallCounter {
    async fn count(&self, id: &str, limit: u64) -> Result<CallCount, StoreError> {
        let key = self.key(id);
        let now = self.clock.now_unix();
        let args = [arg(now), arg(limit), arg(COUNTED_SECS)];
        let retry_after_secs: u64 = self
            .backend
            .eval("session_hourly", &self.lua, &[&key], &args)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(match retry_after_secs {
            0 => CallCount::Counted,
            secs => CallCount::Refused {
                retry_after_secs: secs,
            },
        })
    }
}
