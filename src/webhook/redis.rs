//! The store of `session.store = "redis"`: one Redis Stream per webhook
//! with a consumer group, so that a message is delivered by one instance at
//! a time and survives the instance that stored it.
//!
//! Keys, all under the hash tag `{wh:<name>}` (one slot in a cluster, so
//! each script touches one slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `<prefix>:{wh:<name>}:q` | stream, group `dsgw` | messages not delivered yet: `e` event id, `m` sealed body, `ct`, `r` received ms |
//! | `<prefix>:{wh:<name>}:att` | hash | event id -> `attempts:due_ms` after a failure |
//! | `<prefix>:{wh:<name>}:d:<sha-256>` | string, 24 h TTL | a body seen: its event id |
//! | `<prefix>:{wh:<name>}:dead` | sorted set | dead event ids by when they died |
//! | `<prefix>:{wh:<name>}:dead:<id>` | hash, 7 days TTL | a dead message |
//!
//! Each instance reads new entries with XREADGROUP (no BLOCK: the
//! connection is shared with the session store) and takes over entries
//! whose holder has been silent for [`CLAIM_IDLE`] with XAUTOCLAIM; a holder
//! renews its entries every [`KEEP_EVERY`]. Bodies are sealed like session
//! values (AES-256-GCM, the event id as associated data).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::Value;

use super::queue::{
    body_digest, Claimed, DeadMessage, Message, Pushed, Queue, QueueError, DEDUP_WINDOW,
};
use crate::session::redis::{arg, BackendError, Lua, RedisBackend};
use crate::util::ids::random_id;

/// An entry whose holder said nothing for this long is taken over.
pub const CLAIM_IDLE: Duration = Duration::from_secs(15);
/// How often a holder renews the entries it holds.
pub const KEEP_EVERY: Duration = Duration::from_secs(5);
/// How long a dead message is kept.
pub const DEAD_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Dead messages listed or replayed at once, at most.
pub const MAX_DEAD_LISTED: usize = 10_000;
const GROUP: &str = "dsgw";

/// The keys of one webhook.
#[derive(Debug, Clone)]
struct Keys {
    base: String,
    stream: String,
    attempts: String,
    dead_index: String,
}

impl Keys {
    fn new(prefix: &str, name: &str) -> Keys {
        let base = format!("{prefix}:{{wh:{name}}}");
        Keys {
            stream: format!("{base}:q"),
            attempts: format!("{base}:att"),
            dead_index: format!("{base}:dead"),
            base,
        }
    }

    fn dedup(&self, digest: &[u8; 32]) -> String {
        format!("{}:d:{}", self.base, hex::encode(&digest[..16]))
    }

    fn dead(&self, id: &str) -> String {
        format!("{}:dead:{id}", self.base)
    }

    /// Associated data of a sealed body: the webhook and the event id, so a
    /// body moved to another message does not open.
    fn aad(&self, id: &str) -> Vec<u8> {
        format!("{}:m:{id}", self.base).into_bytes()
    }
}

pub struct RedisQueue {
    backend: RedisBackend,
    keys: Keys,
    consumer: String,
    max_pending: usize,
    /// Where XAUTOCLAIM goes on, and when it last ran.
    cursor: Mutex<(String, Option<std::time::Instant>)>,
    /// When this instance last removed the group's departed consumers.
    pruned: Mutex<Option<std::time::Instant>>,
}

/// Consumers (instances) silent this long and holding nothing are removed
/// from the group: every start of an instance adds one, and the group would
/// otherwise list every instance that ever ran.
pub const PRUNE_IDLE: Duration = Duration::from_secs(3600);
/// How often an instance looks for them.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// How often a claim also looks for entries other consumers left idle
/// (they wait [`CLAIM_IDLE`] first, so looking more often gains nothing;
/// the claims in between cost one round trip less).
const AUTOCLAIM_EVERY: Duration = Duration::from_secs(1);

/// Removes the consumers of group ARGV[1] other than ARGV[2] that hold no
/// entry and have been idle more than ARGV[3] ms; returns how many.
static PRUNE: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
local gone = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] ~= ARGV[2] and tonumber(f['pending']) == 0 and tonumber(f['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    gone = gone + 1
  end
end
return gone
"#,
    )
});

static PUSH: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
local seen = redis.call('GET', KEYS[2])
if seen then return {0, seen} end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {2, ''} end
redis.call('XADD', KEYS[1], '*', 'e', ARGV[1], 'm', ARGV[2], 'ct', ARGV[3], 'r', ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[5])
return {1, ARGV[1]}
"#,
    )
});

/// Whether entry ARGV[3] is consumer ARGV[2]'s; if so its idle time starts again.
static KEEP: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"#,
    )
});

/// Removes entry ARGV[2] (event ARGV[3]) once delivered.
static DONE: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
return 1
"#,
    )
});

/// Moves entry ARGV[2] (event ARGV[3]) to the dead keys, if it is still there.
static DEAD: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
local e = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #e == 0 then return 0 end
local f = e[1][2]
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[3], unpack(f))
redis.call('HSET', KEYS[3], 'dead', ARGV[4], 'n', ARGV[5], 'err', ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[3])
return 1
"#,
    )
});

/// Queues dead message ARGV[1] again with received time ARGV[2].
static REPLAY: std::sync::LazyLock<Lua> = std::sync::LazyLock::new(|| {
    Lua::new(
        r#"
local d = redis.call('HMGET', KEYS[2], 'e', 'm', 'ct')
redis.call('ZREM', KEYS[3], ARGV[1])
if not d[1] or not d[2] then return 0 end
redis.call('XADD', KEYS[1], '*', 'e', d[1], 'm', d[2], 'ct', d[3] or '', 'r', ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"#,
    )
});

fn store_error(e: BackendError) -> QueueError {
    match e {
        BackendError::Corrupt(m) => QueueError::Corrupt(m),
        BackendError::Unavailable(m) | BackendError::InvalidTarget(m) => QueueError::Unavailable(m),
    }
}

fn text(map: &std::collections::HashMap<String, Value>, field: &str) -> Option<Vec<u8>> {
    match map.get(field)? {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        _ => None,
    }
}

fn utf8(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.and_then(|b| String::from_utf8(b).ok())
}

impl RedisQueue {
    /// The queue of webhook `name` in the session store's Redis; this
    /// instance's consumer name is random.
    pub fn new(backend: RedisBackend, name: &str, max_pending: usize) -> RedisQueue {
        let keys = Keys::new(backend.key_prefix(), name);
        RedisQueue {
            backend,
            keys,
            consumer: random_id()[..16].to_owned(),
            max_pending,
            cursor: Mutex::new(("0-0".into(), None)),
            pruned: Mutex::new(None),
        }
    }

    /// Removes the group's other consumers that hold nothing and were idle
    /// more than `idle` (departed instances); returns how many.
    pub async fn prune_consumers(&self, idle: Duration) -> Result<usize, QueueError> {
        let args = [
            arg(GROUP),
            arg(&self.consumer),
            arg(idle.as_millis() as u64),
        ];
        let gone: i64 = self
            .backend
            .eval("webhook prune", &PRUNE, &[&self.keys.stream], &args)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(gone).unwrap_or(0))
    }

    /// [`Self::prune_consumers`] every [`PRUNE_EVERY`], from the claim loop;
    /// a failure only logs (the next claim says whether Redis answers).
    async fn prune_now_and_then(&self) {
        {
            let mut last = self.pruned.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        match self.prune_consumers(PRUNE_IDLE).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(webhook_stream = %self.keys.stream, removed = n, "departed webhook consumers removed from the group")
            }
            Err(e) => tracing::debug!(error = %e, "webhook consumers not pruned"),
        }
    }

    async fn create_group(&self) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM");
        match self.backend.query::<Value>("webhook group", &cmd).await {
            Ok(_) => Ok(()),
            Err(BackendError::Unavailable(m)) if m.contains("BUSYGROUP") => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    /// A stream entry as a message, with its attempts so far.
    /// The message of a stream entry, its body opened.
    fn message(&self, entry: &StreamId) -> Result<Message, QueueError> {
        let corrupt = |what: &str| QueueError::Corrupt(format!("webhook entry without {what}"));
        let id = utf8(text(&entry.map, "e")).ok_or_else(|| corrupt("event id"))?;
        let sealed = text(&entry.map, "m").ok_or_else(|| corrupt("body"))?;
        let body = self
            .backend
            .sealer()
            .open(&sealed, &self.keys.aad(&id))
            .map_err(store_error)?;
        let content_type = utf8(text(&entry.map, "ct")).filter(|c| !c.is_empty());
        let received_ms = utf8(text(&entry.map, "r"))
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| corrupt("received time"))?;
        Ok(Message {
            id,
            body: Bytes::from(body),
            content_type,
            received_ms,
        })
    }

    /// The attempts made so far and when the next is due, of each message,
    /// in one round trip.
    async fn attempts(
        &self,
        messages: &[(String, Message)],
    ) -> Result<Vec<(u32, u64)>, QueueError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&self.keys.attempts);
        for (_, m) in messages {
            cmd.arg(&m.id);
        }
        let states: Vec<Option<String>> = self
            .backend
            .query("webhook attempts", &cmd)
            .await
            .map_err(store_error)?;
        Ok((0..messages.len())
            .map(|i| {
                states
                    .get(i)
                    .and_then(Option::as_deref)
                    .and_then(|s| s.split_once(':'))
                    .and_then(|(a, d)| Some((a.parse().ok()?, d.parse().ok()?)))
                    .unwrap_or((0, 0))
            })
            .collect())
    }

    /// Entries other consumers held and left idle past [`CLAIM_IDLE`]
    /// (none when the last look was less than [`AUTOCLAIM_EVERY`] ago).
    async fn abandoned(&self, max: usize) -> Result<Vec<StreamId>, BackendError> {
        let cursor = {
            let mut state = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
            if state.1.is_some_and(|at| at.elapsed() < AUTOCLAIM_EVERY) {
                return Ok(Vec::new());
            }
            state.1 = Some(std::time::Instant::now());
            state.0.clone()
        };
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.keys.stream)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(CLAIM_IDLE.as_millis() as u64)
            .arg(cursor)
            .arg("COUNT")
            .arg(max);
        let reply: StreamAutoClaimReply = self.backend.query("webhook claim", &cmd).await?;
        self.cursor.lock().unwrap_or_else(|e| e.into_inner()).0 = reply.next_stream_id;
        Ok(reply.claimed)
    }

    /// New entries, never handed to any consumer.
    async fn fresh(&self, max: usize) -> Result<Vec<StreamId>, BackendError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(">");
        let reply: Option<StreamReadReply> = self.backend.query("webhook read", &cmd).await?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    async fn entries(&self, max: usize) -> Result<Vec<StreamId>, BackendError> {
        let mut entries = self.abandoned(max).await?;
        if entries.len() < max {
            entries.extend(self.fresh(max - entries.len()).await?);
        }
        Ok(entries)
    }

    async fn dead_ids(&self, now_ms: u64) -> Result<Vec<String>, QueueError> {
        let oldest = now_ms.saturating_sub(DEAD_TTL.as_millis() as u64);
        let mut trim = redis::cmd("ZREMRANGEBYSCORE");
        trim.arg(&self.keys.dead_index)
            .arg("-inf")
            .arg(format!("({oldest}"));
        self.backend
            .query::<Value>("webhook dead trim", &trim)
            .await
            .map_err(store_error)?;
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.keys.dead_index)
            .arg(0)
            .arg(MAX_DEAD_LISTED as i64 - 1);
        self.backend
            .query("webhook dead list", &cmd)
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn push(
        &self,
        body: Bytes,
        content_type: Option<String>,
        now_ms: u64,
    ) -> Result<Pushed, QueueError> {
        let digest = body_digest(&body);
        let id = random_id();
        let sealed = self.backend.sealer().seal(&body, &self.keys.aad(&id));
        let dedup = self.keys.dedup(&digest);
        let args = [
            arg(&id),
            sealed,
            arg(content_type.as_deref().unwrap_or("")),
            arg(now_ms),
            arg(DEDUP_WINDOW.as_millis() as u64),
            arg(self.max_pending),
        ];
        let (code, id): (u8, String) = self
            .backend
            .eval("webhook push", &PUSH, &[&self.keys.stream, &dedup], &args)
            .await
            .map_err(store_error)?;
        match code {
            0 => Ok(Pushed::Duplicate(id)),
            1 => Ok(Pushed::Stored(id)),
            _ => Err(QueueError::Full),
        }
    }

    async fn claim(&self, max: usize) -> Result<Vec<Claimed>, QueueError> {
        let entries = match self.entries(max).await {
            Err(BackendError::Unavailable(m)) if m.contains("NOGROUP") => {
                // A new stream, or a Redis that lost its data: the group
                // starts at the beginning, so nothing stored is skipped.
                self.create_group().await?;
                self.entries(max).await.map_err(store_error)?
            }
            other => other.map_err(store_error)?,
        };
        self.prune_now_and_then().await;
        let mut messages = Vec::with_capacity(entries.len());
        for entry in entries {
            match self.message(&entry) {
                Ok(m) => messages.push((entry.id, m)),
                Err(QueueError::Corrupt(why)) => {
                    // Not ours to deliver (another secret, tampering): drop
                    // it from the group so it is not claimed forever.
                    tracing::error!(webhook_entry = %entry.id, %why, "webhook entry does not open: dropped");
                    let args = [arg(GROUP), arg(&entry.id), arg("")];
                    let keys = [self.keys.stream.as_str(), self.keys.attempts.as_str()];
                    let _: Result<i64, _> =
                        self.backend.eval("webhook drop", &DONE, &keys, &args).await;
                }
                Err(e) => return Err(e),
            }
        }
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let attempts = self.attempts(&messages).await?;
        Ok(messages
            .into_iter()
            .zip(attempts)
            .map(|((entry, message), (attempts, due_ms))| Claimed {
                message,
                attempts,
                due_ms,
                entry,
            })
            .collect())
    }

    async fn keep(&self, c: &Claimed) -> Result<bool, QueueError> {
        let args = [arg(GROUP), arg(&self.consumer), arg(&c.entry)];
        let kept: i64 = self
            .backend
            .eval("webhook keep", &KEEP, &[&self.keys.stream], &args)
            .await
            .map_err(store_error)?;
        Ok(kept == 1)
    }

    async fn failed(&self, c: &Claimed, attempts: u32, due_ms: u64) -> Result<(), QueueError> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(&self.keys.attempts)
            .arg(&c.message.id)
            .arg(format!("{attempts}:{due_ms}"));
        self.backend
            .query::<Value>("webhook attempt", &cmd)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delivered(&self, c: &Claimed) -> Result<(), QueueError> {
        let args = [arg(GROUP), arg(&c.entry), arg(&c.message.id)];
        let keys = [self.keys.stream.as_str(), self.keys.attempts.as_str()];
        let _: i64 = self
            .backend
            .eval("webhook delivered", &DONE, &keys, &args)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn dead(&self, c: &Claimed, dead: DeadMessage) -> Result<(), QueueError> {
        let dead_key = self.keys.dead(&c.message.id);
        let keys = [
            self.keys.stream.as_str(),
            self.keys.attempts.as_str(),
            dead_key.as_str(),
            self.keys.dead_index.as_str(),
        ];
        let args = [
            arg(GROUP),
            arg(&c.entry),
            arg(&c.message.id),
            arg(dead.dead_ms),
            arg(dead.attempts),
            arg(&dead.last_error),
            arg(DEAD_TTL.as_millis() as u64),
        ];
        let _: i64 = self
            .backend
            .eval("webhook dead", &DEAD, &keys, &args)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn pending(&self) -> Result<u64, QueueError> {
        let mut cmd = redis::cmd("XLEN");
        cmd.arg(&self.keys.stream);
        self.backend
            .query("webhook pending", &cmd)
            .await
            .map_err(store_error)
    }

    async fn dead_messages(&self) -> Result<Vec<DeadMessage>, QueueError> {
        let now = crate::util::time::now_millis();
        let mut out = Vec::new();
        for id in self.dead_ids(now).await? {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.keys.dead(&id));
            let map: std::collections::HashMap<String, Value> = self
                .backend
                .query("webhook dead read", &cmd)
                .await
                .map_err(store_error)?;
            let Some(sealed) = text(&map, "m") else {
                continue; // expired meanwhile
            };
            let body = self
                .backend
                .sealer()
                .open(&sealed, &self.keys.aad(&id))
                .map_err(store_error)?;
            let number = |f: &str| {
                utf8(text(&map, f))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            out.push(DeadMessage {
                id,
                received_ms: number("r"),
                dead_ms: number("dead"),
                attempts: u32::try_from(number("n")).unwrap_or(u32::MAX),
                last_error: utf8(text(&map, "err")).unwrap_or_default(),
                content_type: utf8(text(&map, "ct")).filter(|c| !c.is_empty()),
                bytes: body.len(),
            });
        }
        Ok(out)
    }

    async fn replay(&self, id: Option<&str>, now_ms: u64) -> Result<usize, QueueError> {
        let ids = match id {
            Some(id) => vec![id.to_owned()],
            None => self.dead_ids(now_ms).await?,
        };
        let mut replayed = 0;
        for id in ids {
            let dead_key = self.keys.dead(&id);
            let keys = [
                self.keys.stream.as_str(),
                dead_key.as_str(),
                self.keys.dead_index.as_str(),
                self.keys.attempts.as_str(),
            ];
            let done: i64 = self
                .backend
                .eval("webhook replay", &REPLAY, &keys, &[arg(&id), arg(now_ms)])
                .await
                .map_err(store_error)?;
            replayed += usize::try_from(done).unwrap_or(0);
        }
        Ok(replayed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_webhook_shares_its_hash_tag() {
        let k = Keys::new("dsgw", "connect");
        let tag = "dsgw:{wh:connect}:";
        for key in [
            &k.stream,
            &k.attempts,
            &k.dead_index,
            &k.dead("x"),
            &k.dedup(&[7; 32]),
        ] {
            assert!(key.starts_with(tag), "{key}");
        }
        assert_ne!(k.aad("a"), k.aad("b"));
    }
}
