//! The one range check behind every numeric key.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::error::ConfigError;

/// What a number counts, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Seconds,
    Milliseconds,
    Count,
}

/// `value` of `key` when it lies in `allowed`; otherwise an error that names
/// the key and the range, never the value. An open upper end is written
/// `1..=u64::MAX`.
pub(crate) fn check(
    key: &str,
    value: u64,
    allowed: RangeInclusive<u64>,
    unit: Unit,
) -> Result<u64, ConfigError> {
    if allowed.contains(&value) {
        return Ok(value);
    }
    let what = match unit {
        Unit::Seconds => "a number of seconds",
        Unit::Milliseconds => "a number of milliseconds",
        Unit::Count => "a number",
    };
    let message = match (*allowed.start(), *allowed.end()) {
        (1, u64::MAX) => match unit {
            Unit::Seconds => "expected a positive number of seconds".to_string(),
            Unit::Milliseconds => "expected a positive number of milliseconds".to_string(),
            Unit::Count => "expected a positive number".to_string(),
        },
        (min, u64::MAX) => format!("expected {what} of at least {min}"),
        (min, max) => format!("expected {what} between {min} and {max}"),
    };
    Err(ConfigError::new(key, message))
}

/// [`check`] for a number of seconds.
pub(crate) fn secs(
    key: &str,
    value: u64,
    allowed: RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    check(key, value, allowed, Unit::Seconds).map(Duration::from_secs)
}

/// [`check`] for a count.
pub(crate) fn count(
    key: &str,
    value: u64,
    allowed: RangeInclusive<u64>,
) -> Result<usize, ConfigError> {
    let n = check(key, value, allowed, Unit::Count)?;
    usize::try_from(n).map_err(|_| ConfigError::new(key, "expected a smaller number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_the_range_passes() {
        assert_eq!(check("k", 1, 1..=1, Unit::Count), Ok(1));
        assert_eq!(secs("k", 0, 0..=3600), Ok(Duration::ZERO));
        assert_eq!(count("k", 7, 1..=u64::MAX), Ok(7));
    }

    #[test]
    fn outside_the_range_names_key_and_bounds() {
        let e = secs("docusign.request_timeout_secs", 301, 1..=300).unwrap_err();
        assert_eq!(e.key, "docusign.request_timeout_secs");
        assert_eq!(e.message, "expected a number of seconds between 1 and 300");
        let e = count("session.max_sessions", 0, 1..=u64::MAX).unwrap_err();
        assert_eq!(e.message, "expected a positive number");
        let e = secs("session.ttl_secs", 0, 1..=u64::MAX).unwrap_err();
        assert_eq!(e.message, "expected a positive number of seconds");
        let e = check("k", 1, 2..=u64::MAX, Unit::Count).unwrap_err();
        assert_eq!(e.message, "expected a number of at least 2");
    }

    #[test]
    fn the_value_is_not_quoted() {
        let e = check("k", 987654321, 1..=10, Unit::Count).unwrap_err();
        assert!(!e.to_string().contains("987654321"));
    }
}
