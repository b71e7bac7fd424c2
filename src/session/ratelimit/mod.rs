//! DocuSign's rate limits as the gateway sees them: per account, the last
//! seen `X-RateLimit-*` and `X-BurstLimit-*` headers ([`AccountRates`]), and
//! per session, the calls forwarded in the last hour ([`CallCounter`]).
//!
//! The request path fills [`AccountRates`] from every REST answer and asks it
//! before forwarding; `/auth/session` shows it. An account is blocked while
//! its last seen `X-RateLimit-Remaining` is at or below `limits.hourly_reserve`
//! and its `X-RateLimit-Reset` is ahead, or while its last seen
//! `X-BurstLimit-Remaining` is 0 and the 30-second burst window it was seen
//! in has not ended. DocuSign sends no burst reset: windows are taken to
//! start at multiples of 30 seconds of Unix time.
//!
//! The state is per gateway process (each instance learns it from the
//! answers it sees; any answer corrects it). It is kept for at most
//! [`MAX_ACCOUNTS`] accounts, each until [`KEEP_SECS`] after it was last seen.

pub mod counter;
mod headers;
pub mod redis_counter;

use std::sync::Arc;

use serde::Serialize;

pub use counter::{CallCount, CallCounter, MemoryCallCounter};
pub use headers::RateHeaders;
pub use redis_counter::RedisCallCounter;

use crate::ops::metrics::{metrics, RateLimitReason};
use crate::util::time::Clock;
use crate::util::ttl_map::TtlMap;

/// Most accounts whose rate state is kept (the bound of the map; beyond it
/// the state seen longest ago goes first, and with it its metric series).
pub const MAX_ACCOUNTS: usize = 10_000;
/// An account's state is dropped this long after it was last seen (past any
/// hourly reset).
pub const KEEP_SECS: u64 = 2 * 3600;
/// Length of DocuSign's burst window.
pub const BURST_WINDOW_SECS: u64 = 30;

/// What the gateway last saw of one account's limits (Unix seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AccountRate {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset_at: Option<u64>,
    pub burst_limit: Option<u64>,
    pub burst_remaining: Option<u64>,
    /// End of the burst window in which `burst_remaining` was seen.
    pub burst_reset_at: Option<u64>,
    /// When the last rate-limit header was seen.
    pub seen_at: u64,
    /// When DocuSign last answered 429 for this account.
    pub last_429_at: Option<u64>,
}

impl AccountRate {
    fn merge(&mut self, seen: &RateHeaders, now: u64) {
        let keep = |old: &mut Option<u64>, new: Option<u64>| {
            if new.is_some() {
                *old = new;
            }
        };
        keep(&mut self.limit, seen.limit);
        keep(&mut self.remaining, seen.remaining);
        keep(&mut self.reset_at, seen.reset_at);
        keep(&mut self.burst_limit, seen.burst_limit);
        if seen.burst_remaining.is_some() {
            self.burst_remaining = seen.burst_remaining;
            self.burst_reset_at = Some((now / BURST_WINDOW_SECS + 1) * BURST_WINDOW_SECS);
        }
        if !seen.is_empty() {
            self.seen_at = now;
        }
    }

    /// Why calls are refused now, if they are.
    fn block(&self, reserve: u64, now: u64) -> Option<Block> {
        if let (Some(remaining), Some(reset_at)) = (self.remaining, self.reset_at) {
            if remaining <= reserve && reset_at > now {
                return Some(Block {
                    reason: RateLimitReason::DocusignHourly,
                    reset_at,
                });
            }
        }
        match (self.burst_remaining, self.burst_reset_at) {
            (Some(0), Some(reset_at)) if reset_at > now => Some(Block {
                reason: RateLimitReason::DocusignBurst,
                reset_at,
            }),
            _ => None,
        }
    }
}

/// Calls to an account are refused until `reset_at` (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub reason: RateLimitReason,
    pub reset_at: u64,
}

/// The rate state of every account seen, shared by all requests.
pub struct AccountRates {
    map: TtlMap<String, AccountRate>,
    hourly_reserve: u64,
    clock: Arc<dyn Clock>,
}

impl AccountRates {
    pub fn new(hourly_reserve: u64, clock: Arc<dyn Clock>) -> AccountRates {
        AccountRates {
            map: TtlMap::new(MAX_ACCOUNTS),
            hourly_reserve,
            clock,
        }
    }

    /// Records a REST answer of `account` with status `status`: its
    /// rate-limit headers, and a 429 of DocuSign's.
    pub fn observe(&self, account: &str, seen: &RateHeaders, status: u16) {
        if seen.is_empty() && status != 429 {
            return;
        }
        let now_ms = self.clock.now_millis();
        let now = now_ms / 1000;
        let key = account.to_ascii_lowercase();
        let mut rate = self.map.get(&key, now_ms).unwrap_or_default();
        rate.merge(seen, now);
        if status == 429 {
            rate.last_429_at = Some(now);
            metrics().ratelimited(&key, RateLimitReason::Docusign429);
        }
        metrics().account_rate(&key, rate.limit, rate.remaining, rate.burst_remaining);
        let keep_until = now_ms + KEEP_SECS * 1000;
        for (gone, _) in self.map.insert(key, rate, keep_until, now_ms) {
            metrics().forget_account(&gone);
        }
    }

    /// Whether calls to `account` are refused now, and until when.
    pub fn check(&self, account: &str) -> Option<Block> {
        let now_ms = self.clock.now_millis();
        let rate = self.map.get(&account.to_ascii_lowercase(), now_ms)?;
        rate.block(self.hourly_reserve, now_ms / 1000)
    }

    /// What was last seen of `account`.
    pub fn get(&self, account: &str) -> Option<AccountRate> {
        self.map
            .get(&account.to_ascii_lowercase(), self.clock.now_millis())
    }
}

#[cfg(test)]
mod tests;
