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

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

pub use counter::{CallCount, CallCounter, MemoryCallCounter};
pub use headers::RateHeaders;
pub use redis_counter::RedisCallCounter;

use crate::ops::metrics::{metrics, AccountGauges, RateLimitReason};
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
    map: TtlMap<String, Tracked>,
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
    /// rate-limit headers, and a 429 of DocuSign's. The account is kept
    /// until [`KEEP_SECS`] after this, to within [`KEEP_REFRESH_MS`]: an
    /// account seen again sooner is updated in place.
    pub fn observe(&self, account: &str, seen: &RateHeaders, status: u16) {
        if seen.is_empty() && status != 429 {
            return;
        }
        let now_ms = self.clock.now_millis();
        let now = now_ms / 1000;
        let key = lowercase(account);
        if status == 429 {
            metrics().ratelimited(&key, RateLimitReason::Docusign429);
        }
        let keep_until_ms = now_ms + KEEP_SECS * 1000;
        let updated = self.map.update(&*key, now_ms, |t| {
            t.record(&key, seen, status, now);
            (t.keep_until_ms + KEEP_REFRESH_MS <= keep_until_ms).then(|| t.clone())
        });
        let tracked = match updated {
            Some(None) => return,
            Some(Some(tracked)) => tracked,
            None => {
                let mut tracked = Tracked::default();
                tracked.record(&key, seen, status, now);
                tracked
            }
        };
        let tracked = Tracked {
            keep_until_ms,
            ..tracked
        };
        let key = key.into_owned();
        for (gone, _) in self.map.insert(key, tracked, keep_until_ms, now_ms) {
            metrics().forget_account(&gone);
        }
    }

    /// Whether calls to `account` are refused now, and until when.
    pub fn check(&self, account: &str) -> Option<Block> {
        let now_ms = self.clock.now_millis();
        let reserve = self.hourly_reserve;
        let check = |t: &mut Tracked| t.rate.block(reserve, now_ms / 1000);
        self.map.update(&*lowercase(account), now_ms, check)?
    }

    /// What was last seen of `account`.
    pub fn get(&self, account: &str) -> Option<AccountRate> {
        let now_ms = self.clock.now_millis();
        let rate = |t: &mut Tracked| t.rate.clone();
        self.map.update(&*lowercase(account), now_ms, rate)
    }
}

/// How far an account's keep-until may fall behind [`KEEP_SECS`] after its
/// last answer before its entry is renewed (a renewal reorders the map's
/// indexes; an update in place does not).
pub const KEEP_REFRESH_MS: u64 = 60_000;

/// An account's entry: what was seen of it, its metric series, and until
/// when it is kept (Unix milliseconds).
#[derive(Clone, Debug, Default)]
struct Tracked {
    rate: AccountRate,
    gauges: AccountGauges,
    keep_until_ms: u64,
}

impl Tracked {
    fn record(&mut self, account: &str, seen: &RateHeaders, status: u16, now: u64) {
        self.rate.merge(seen, now);
        if status == 429 {
            self.rate.last_429_at = Some(now);
        }
        let r = &self.rate;
        let (limit, remaining, burst) = (r.limit, r.remaining, r.burst_remaining);
        metrics().account_rate(account, &mut self.gauges, limit, remaining, burst);
    }
}

/// Account ids are compared without case; most arrive in lower case.
fn lowercase(account: &str) -> Cow<'_, str> {
    if account.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(account.to_ascii_lowercase())
    } else {
        Cow::Borrowed(account)
    }
}

#[cfg(test)]
mod tests;
