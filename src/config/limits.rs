//! `[limits]`: how the gateway spends DocuSign's per-account rate limits
//! (see `docs/src/rate-limits.md`).

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::range;

/// `[limits]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLimits {
    pub(super) hourly_reserve: u64,
    pub(super) session_hourly: u64,
}

#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    /// Calls to an account are refused by the gateway while its last seen
    /// `X-RateLimit-Remaining` is at or below this (and its reset ahead).
    pub hourly_reserve: u64,
    /// Calls one session may forward in any rolling hour; 0: no limit.
    pub session_hourly: u64,
}

/// Largest value of either key: far above any DocuSign hourly limit.
const MAX_CALLS: u64 = 10_000_000;

pub(super) fn validate(raw: RawLimits) -> Result<LimitsConfig, ConfigError> {
    let calls = |key: &str, value: u64| range::check(key, value, 0..=MAX_CALLS, range::Unit::Count);
    Ok(LimitsConfig {
        hourly_reserve: calls("limits.hourly_reserve", raw.hourly_reserve)?,
        session_hourly: calls("limits.session_hourly", raw.session_hourly)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_bounds_are_named() {
        let c = validate(RawLimits::default()).unwrap();
        assert_eq!((c.hourly_reserve, c.session_hourly), (0, 0));
        let raw = RawLimits {
            hourly_reserve: 10,
            session_hourly: MAX_CALLS + 1,
        };
        assert_eq!(validate(raw).unwrap_err().key, "limits.session_hourly");
    }
}
