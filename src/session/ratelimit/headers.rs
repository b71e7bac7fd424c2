//! DocuSign's rate-limit headers, read off one REST answer.

use http::header::{HeaderMap, HeaderName};

/// Seconds values below this are a duration ("resets in N seconds"), not a
/// Unix time: 10^9 seconds after the epoch is September 2001.
const UNIX_TIME_FLOOR: u64 = 1_000_000_000;

/// The rate-limit headers of one answer; a header that is absent or not a
/// whole number is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// `X-RateLimit-Limit`: calls per hour.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`, as Unix seconds (a small value is taken as
    /// seconds from `now`).
    pub reset_at: Option<u64>,
    /// `X-BurstLimit-Limit`: calls per 30 seconds.
    pub burst_limit: Option<u64>,
    /// `X-BurstLimit-Remaining`.
    pub burst_remaining: Option<u64>,
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
const BURST_LIMIT: HeaderName = HeaderName::from_static("x-burstlimit-limit");
const BURST_REMAINING: HeaderName = HeaderName::from_static("x-burstlimit-remaining");

impl RateHeaders {
    /// Reads the headers of an answer at `now` (Unix seconds).
    pub fn parse(headers: &HeaderMap, now: u64) -> RateHeaders {
        let number = |name: &HeaderName| {
            let value = headers.get(name)?.to_str().ok()?;
            value.trim().parse::<u64>().ok()
        };
        RateHeaders {
            limit: number(&LIMIT),
            remaining: number(&REMAINING),
            reset_at: number(&RESET).map(|v| absolute(v, now)),
            burst_limit: number(&BURST_LIMIT),
            burst_remaining: number(&BURST_REMAINING),
        }
    }

    /// No rate-limit header at all.
    pub fn is_empty(&self) -> bool {
        *self == RateHeaders::default()
    }
}

/// A reset as Unix seconds: a value that is clearly a number of seconds
/// (below [`UNIX_TIME_FLOOR`]) counts from `now`.
fn absolute(value: u64, now: u64) -> u64 {
    if value < UNIX_TIME_FLOOR {
        now.saturating_add(value)
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&'static str, &'static str)], now: u64) -> RateHeaders {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_static(value),
            );
        }
        RateHeaders::parse(&headers, now)
    }

    #[test]
    fn every_header_is_read() {
        let h = parse(
            &[
                ("X-RateLimit-Limit", "3000"),
                ("X-RateLimit-Remaining", " 2999 "),
                ("X-RateLimit-Reset", "1800003600"),
                ("X-BurstLimit-Limit", "500"),
                ("X-BurstLimit-Remaining", "499"),
            ],
            1_800_000_000,
        );
        assert_eq!(
            h,
            RateHeaders {
                limit: Some(3000),
                remaining: Some(2999),
                reset_at: Some(1_800_003_600),
                burst_limit: Some(500),
                burst_remaining: Some(499),
            }
        );
    }

    #[test]
    fn a_reset_in_seconds_counts_from_now() {
        let h = parse(&[("x-ratelimit-reset", "120")], 1_800_000_000);
        assert_eq!(h.reset_at, Some(1_800_000_120));
        let h = parse(&[("x-ratelimit-reset", "0")], 1_800_000_000);
        assert_eq!(h.reset_at, Some(1_800_000_000));
    }

    #[test]
    fn absent_or_odd_values_are_none() {
        assert!(parse(&[], 1).is_empty());
        let h = parse(
            &[
                ("x-ratelimit-remaining", "-1"),
                ("x-ratelimit-limit", "3e3"),
            ],
            1,
        );
        assert!(h.is_empty());
    }
}
