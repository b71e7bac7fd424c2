//! `limits.session_hourly`: how many calls a session forwarded in the last
//! hour, counted in one-minute buckets.
//!
//! A call made in minute `m` (Unix seconds `60m .. 60m+60`) is counted until
//! `60m + 3660`, the end of its minute plus an hour: a session never gets
//! more than the limit in any rolling hour, and a refused session waits at
//! most a minute longer than a precise count would make it. When refused,
//! `Retry-After` is the time until the oldest counted minute drops out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::session::StoreError;
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

/// Seconds a call stays counted after the start of its minute.
pub const COUNTED_SECS: u64 = 3600 + 60;

/// The outcome of counting one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallCount {
    /// Under the limit: the call is counted and may be forwarded.
    Counted,
    /// At the limit: not counted; retry after this many seconds.
    Refused { retry_after_secs: u64 },
}

/// Counts a session's forwarded calls, shared by every instance that uses
/// the same store. Only asked when `limits.session_hourly` is set.
#[async_trait]
pub trait CallCounter: Send + Sync {
    /// Counts one call of session `id` unless it made `limit` calls in the
    /// rolling hour: one round trip (or none, in memory).
    async fn count(&self, id: &str, limit: u64) -> Result<CallCount, StoreError>;
}

/// The minute buckets of one session, oldest first: `(minute, calls)`.
type Buckets = VecDeque<(u64, u64)>;

/// Counts one call at `now` into `buckets` unless `limit` is reached.
pub fn count_in(buckets: &mut Buckets, limit: u64, now: u64) -> CallCount {
    while buckets
        .front()
        .is_some_and(|(m, _)| m * 60 + COUNTED_SECS <= now)
    {
        buckets.pop_front();
    }
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    if total >= limit {
        let oldest = buckets.front().map_or(now / 60, |(m, _)| *m);
        let retry_after_secs = (oldest * 60 + COUNTED_SECS).saturating_sub(now).max(1);
        return CallCount::Refused { retry_after_secs };
    }
    let minute = now / 60;
    match buckets.back_mut() {
        Some((m, n)) if *m == minute => *n += 1,
        _ => buckets.push_back((minute, 1)),
    }
    CallCount::Counted
}

/// The in-process counter: one bucket list per session, at most as many
/// sessions as the session store keeps.
pub struct MemoryCallCounter {
    map: TtlMap<String, Buckets>,
    /// Serializes read, count and write of one call.
    write: Mutex<()>,
    clock: Arc<dyn Clock>,
}

impl MemoryCallCounter {
    pub fn new(max_sessions: usize, clock: Arc<dyn Clock>) -> MemoryCallCounter {
        MemoryCallCounter {
            map: TtlMap::new(max_sessions.max(1)),
            write: Mutex::new(()),
            clock,
        }
    }
}

#[async_trait]
impl CallCounter for MemoryCallCounter {
    async fn count(&self, id: &str, limit: u64) -> Result<CallCount, StoreError> {
        let now_ms = self.clock.now_millis();
        let now = now_ms / 1000;
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut buckets = self.map.get(id, now_ms).unwrap_or_default();
        let outcome = count_in(&mut buckets, limit, now);
        if outcome == CallCount::Counted {
            // Kept until the newest call stops counting.
            let until_ms = ((now / 60) * 60 + COUNTED_SECS) * 1000;
            self.map.insert(id.to_string(), buckets, until_ms, now_ms);
        }
        Ok(outcome)
    }
}
