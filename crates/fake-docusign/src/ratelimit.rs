//! DocuSign's API rate limits, per account (`docs/docusign.md`, "Rate
//! limits"): an hourly limit that resets at the top of the hour and a burst
//! limit per 30-second window. Every REST answer carries `X-RateLimit-*` and
//! `X-BurstLimit-*`; past a limit the answer is 429 with DocuSign's body.
//!
//! Calls that name no account (`/restapi/v2.1/accounts`) are counted per REST
//! host. Tests drive every case in seconds: [`RateLimits::set_limits`] sets
//! an account's limits, [`RateLimits::set_window`] what is left of its hour
//! and when that hour ends, [`RateLimits::set_burst_used`] its burst window.

use std::collections::HashMap;

/// Hourly limit of an account unless set otherwise (`X-RateLimit-Limit`).
pub const DEFAULT_HOURLY_LIMIT: u64 = 1000;
/// Burst limit of an account unless set otherwise (`X-BurstLimit-Limit`).
pub const DEFAULT_BURST_LIMIT: u64 = 500;
/// Length of a burst window; windows start at multiples of it (Unix time).
pub const BURST_WINDOW_SECS: u64 = 30;

/// How `X-RateLimit-Reset` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResetFormat {
    /// Unix seconds of the reset, as DocuSign documents it.
    #[default]
    UnixSeconds,
    /// Seconds from now until the reset (to test clients that accept both).
    SecondsFromNow,
}

/// An account's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimits {
    pub hourly: u64,
    pub burst: u64,
}

impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            hourly: DEFAULT_HOURLY_LIMIT,
            burst: DEFAULT_BURST_LIMIT,
        }
    }
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exceeded {
    Hourly,
    Burst,
}

/// The rate-limit headers of one answer, and whether the call was refused.
#[derive(Clone, Debug)]
pub(crate) struct RateSnapshot {
    pub(crate) limits: AccountLimits,
    pub(crate) remaining: u64,
    /// `X-RateLimit-Reset` as written (see [`ResetFormat`]).
    pub(crate) reset: u64,
    pub(crate) burst_remaining: u64,
    pub(crate) exceeded: Option<Exceeded>,
    /// Seconds until the exceeded limit resets (0 when none is).
    pub(crate) retry_after: u64,
}

#[derive(Clone, Debug)]
struct Window {
    /// Unix seconds at which this hour's count resets.
    reset_at: u64,
    used: u64,
    /// Index of the burst window (`now / BURST_WINDOW_SECS`).
    burst_window: u64,
    burst_used: u64,
}

impl Window {
    fn fresh(now: u64) -> Window {
        Window {
            reset_at: (now / 3600 + 1) * 3600,
            used: 0,
            burst_window: now / BURST_WINDOW_SECS,
            burst_used: 0,
        }
    }

    /// Starts a new hour or burst window when the current one has ended.
    fn roll(&mut self, now: u64) {
        if now >= self.reset_at {
            self.reset_at = (now / 3600 + 1) * 3600;
            self.used = 0;
        }
        if self.burst_window != now / BURST_WINDOW_SECS {
            self.burst_window = now / BURST_WINDOW_SECS;
            self.burst_used = 0;
        }
    }
}

/// Limits and counts of every account (keys are lower-case account ids, or
/// `host:N` for calls that name no account).
#[derive(Default)]
pub(crate) struct RateLimits {
    default: AccountLimits,
    per_account: HashMap<String, AccountLimits>,
    windows: HashMap<String, Window>,
    pub(crate) reset_format: ResetFormat,
}

impl RateLimits {
    fn limits(&self, key: &str) -> AccountLimits {
        self.per_account.get(key).copied().unwrap_or(self.default)
    }

    fn window(&mut self, key: &str, now: u64) -> &mut Window {
        let w = self
            .windows
            .entry(key.to_string())
            .or_insert_with(|| Window::fresh(now));
        w.roll(now);
        w
    }

    /// Counts one call of `key` at `now` (Unix seconds), unless a limit is
    /// already used up: then the call is refused and not counted.
    pub(crate) fn take(&mut self, key: &str, now: u64) -> RateSnapshot {
        let limits = self.limits(key);
        let format = self.reset_format;
        let w = self.window(key, now);
        let exceeded = if w.used >= limits.hourly {
            Some(Exceeded::Hourly)
        } else if w.burst_used >= limits.burst {
            Some(Exceeded::Burst)
        } else {
            w.used += 1;
            w.burst_used += 1;
            None
        };
        let burst_end = (w.burst_window + 1) * BURST_WINDOW_SECS;
        let retry_after = match exceeded {
            Some(Exceeded::Hourly) => w.reset_at.saturating_sub(now),
            Some(Exceeded::Burst) => burst_end.saturating_sub(now),
            None => 0,
        };
        RateSnapshot {
            limits,
            remaining: limits.hourly.saturating_sub(w.used),
            reset: match format {
                ResetFormat::UnixSeconds => w.reset_at,
                ResetFormat::SecondsFromNow => w.reset_at.saturating_sub(now),
            },
            burst_remaining: limits.burst.saturating_sub(w.burst_used),
            exceeded,
            retry_after,
        }
    }

    /// Sets the limits of one account (`Some`, any case) or of every account
    /// without limits of its own (`None`).
    pub(crate) fn set_limits(&mut self, account: Option<&str>, limits: AccountLimits) {
        match account {
            Some(id) => {
                self.per_account.insert(id.to_ascii_lowercase(), limits);
            }
            None => self.default = limits,
        }
    }

    /// The account's current hour ends `reset_in_secs` after `now` and has
    /// `remaining` calls left (of its hourly limit).
    pub(crate) fn set_window(
        &mut self,
        account: &str,
        remaining: u64,
        reset_in_secs: u64,
        now: u64,
    ) {
        let key = account.to_ascii_lowercase();
        let hourly = self.limits(&key).hourly;
        let w = self.window(&key, now);
        w.reset_at = now + reset_in_secs.max(1);
        w.used = hourly.saturating_sub(remaining);
    }

    /// The account has used `used` calls of its current burst window.
    pub(crate) fn set_burst_used(&mut self, account: &str, used: u64, now: u64) {
        let key = account.to_ascii_lowercase();
        self.window(&key, now).burst_used = used;
    }
}

/// The key a REST call is counted under: the account its path names, else
/// its REST host.
pub(crate) fn key_of(path: &str, host_index: usize) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["restapi", _, accounts, id, ..] if accounts.eq_ignore_ascii_case("accounts") => {
            id.to_ascii_lowercase()
        }
        _ => format!("host:{host_index}"),
    }
}

/// DocuSign's body of a refused call.
pub(crate) fn exceeded_body(exceeded: Exceeded, limits: AccountLimits) -> serde_json::Value {
    match exceeded {
        Exceeded::Hourly => serde_json::json!({
            "errorCode": "HOURLY_APIINVOCATION_LIMIT_EXCEEDED",
            "message": format!(
                "The maximum number of hourly API invocations has been exceeded. The hourly limit is {}.",
                limits.hourly
            ),
        }),
        // Invented: docusign.md gives no body for the burst limit; this one
        // follows the hourly one.
        Exceeded::Burst => serde_json::json!({
            "errorCode": "BURST_APIINVOCATION_LIMIT_EXCEEDED",
            "message": format!(
                "The maximum number of API invocations per 30 seconds has been exceeded. The burst limit is {}.",
                limits.burst
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000; // a multiple of 3600 and of 30

    #[test]
    fn counts_down_per_account_and_resets_at_the_top_of_the_hour() {
        let mut r = RateLimits::default();
        assert_eq!(r.take("a", NOW + 5).remaining, DEFAULT_HOURLY_LIMIT - 1);
        assert_eq!(r.take("a", NOW + 6).remaining, DEFAULT_HOURLY_LIMIT - 2);
        assert_eq!(r.take("b", NOW + 6).remaining, DEFAULT_HOURLY_LIMIT - 1);
        let s = r.take("a", NOW + 3600);
        assert_eq!(s.remaining, DEFAULT_HOURLY_LIMIT - 1);
        assert_eq!(s.reset, NOW + 7200);
    }

    #[test]
    fn the_hourly_limit_refuses_until_the_reset() {
        let mut r = RateLimits::default();
        r.set_limits(
            Some("A"),
            AccountLimits {
                hourly: 2,
                burst: 10,
            },
        );
        assert!(r.take("a", NOW).exceeded.is_none());
        assert!(r.take("a", NOW).exceeded.is_none());
        let s = r.take("a", NOW + 100);
        assert_eq!(s.exceeded, Some(Exceeded::Hourly));
        assert_eq!((s.remaining, s.retry_after), (0, 3500));
        r.set_window("a", 0, 3, NOW + 100);
        assert_eq!(r.take("a", NOW + 102).exceeded, Some(Exceeded::Hourly));
        let s = r.take("a", NOW + 103);
        assert!(s.exceeded.is_none());
        assert_eq!(s.remaining, 1);
    }

    #[test]
    fn the_burst_limit_refuses_for_the_rest_of_its_window() {
        let mut r = RateLimits::default();
        r.set_limits(
            None,
            AccountLimits {
                hourly: 100,
                burst: 1,
            },
        );
        assert!(r.take("a", NOW + 1).exceeded.is_none());
        let s = r.take("a", NOW + 10);
        assert_eq!(s.exceeded, Some(Exceeded::Burst));
        assert_eq!((s.burst_remaining, s.retry_after, s.remaining), (0, 20, 99));
        assert!(r.take("a", NOW + 30).exceeded.is_none());
    }

    #[test]
    fn the_reset_may_be_written_as_seconds_from_now() {
        let mut r = RateLimits {
            reset_format: ResetFormat::SecondsFromNow,
            ..RateLimits::default()
        };
        assert_eq!(r.take("a", NOW + 600).reset, 3000);
    }

    #[test]
    fn keys_name_the_account_or_the_host() {
        assert_eq!(key_of("/restapi/v2.1/accounts/AbC/envelopes", 0), "abc");
        assert_eq!(key_of("/restapi/v2/Accounts/x", 1), "x");
        assert_eq!(key_of("/restapi/v2.1/accounts", 1), "host:1");
    }
}
