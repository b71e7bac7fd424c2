use super::*;
use crate::util::time::ManualClock;

const NOW: u64 = 1_800_000_000; // a multiple of 3600 and of 60

fn seen(remaining: u64, reset_at: u64, burst_remaining: u64) -> RateHeaders {
    RateHeaders {
        limit: Some(100),
        remaining: Some(remaining),
        reset_at: Some(reset_at),
        burst_limit: Some(10),
        burst_remaining: Some(burst_remaining),
    }
}

#[test]
fn the_last_answer_is_kept_per_account() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(0, clock.clone());
    rates.observe("A1", &seen(42, NOW + 60, 9), 200);
    let r = rates.get("a1").unwrap();
    assert_eq!(
        (r.limit, r.remaining, r.reset_at),
        (Some(100), Some(42), Some(NOW + 60))
    );
    assert_eq!(
        (r.burst_remaining, r.burst_reset_at),
        (Some(9), Some(NOW + 30))
    );
    assert!(rates.get("a2").is_none());
    assert!(rates.check("A1").is_none());
    rates.observe("a1", &RateHeaders::default(), 200);
    assert_eq!(rates.get("a1").unwrap().remaining, Some(42));
}

#[test]
fn remaining_at_the_reserve_blocks_until_the_reset() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(5, clock.clone());
    rates.observe("a1", &seen(6, NOW + 60, 9), 200);
    assert!(rates.check("a1").is_none());
    rates.observe("a1", &seen(5, NOW + 60, 9), 200);
    let block = rates.check("a1").unwrap();
    assert_eq!(block.reason, RateLimitReason::DocusignHourly);
    assert_eq!(block.reset_at, NOW + 60);
    clock.advance_secs(59);
    assert!(rates.check("a1").is_some());
    clock.advance_secs(1);
    assert!(rates.check("a1").is_none());
}

#[test]
fn a_used_up_burst_blocks_for_the_rest_of_its_window() {
    let clock = ManualClock::at_unix(NOW + 10);
    let rates = AccountRates::new(0, clock.clone());
    rates.observe("a1", &seen(50, NOW + 3600, 0), 200);
    let block = rates.check("a1").unwrap();
    assert_eq!(block.reason, RateLimitReason::DocusignBurst);
    assert_eq!(block.reset_at, NOW + 30);
    clock.advance_secs(20);
    assert!(rates.check("a1").is_none());
}

#[test]
fn docusigns_429_is_recorded() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(0, clock.clone());
    rates.observe("a1", &RateHeaders::default(), 429);
    assert_eq!(rates.get("a1").unwrap().last_429_at, Some(NOW));
    // Without headers saying the account is used up, nothing is blocked
    // (a 429 may be about one envelope's polling).
    assert!(rates.check("a1").is_none());
    rates.observe("a1", &seen(0, NOW + 100, 3), 429);
    assert_eq!(rates.check("a1").unwrap().reset_at, NOW + 100);
}

#[test]
fn state_is_dropped_after_two_hours() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(0, clock.clone());
    rates.observe("a1", &seen(0, NOW + 3600, 3), 200);
    clock.advance_secs(KEEP_SECS);
    assert!(rates.get("a1").is_none());
}

#[test]
fn the_gauges_show_each_answer_in_place_and_after_a_renewal() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(0, clock.clone());
    let account = "gauges-in-place-and-renewed";
    let remaining = || {
        let gauge = &metrics().ratelimit_remaining;
        gauge.with_label_values(&[account]).get()
    };
    rates.observe(account, &seen(10, NOW + 3600, 3), 200);
    assert_eq!(remaining(), 10);
    clock.advance_secs(1);
    rates.observe(account, &seen(9, NOW + 3600, 3), 200);
    assert_eq!(remaining(), 9, "updated in place");
    clock.advance_secs(KEEP_REFRESH_MS / 1000 + 1);
    rates.observe(account, &seen(8, NOW + 3600, 3), 200);
    assert_eq!(remaining(), 8, "renewed in the map");
    clock.advance_secs(1);
    rates.observe(account, &seen(7, NOW + 3600, 3), 200);
    assert_eq!(remaining(), 7, "the renewed entry's series");
}

#[test]
fn an_account_seen_again_is_kept_from_its_last_answer_to_the_minute() {
    let clock = ManualClock::at_unix(NOW);
    let rates = AccountRates::new(0, clock.clone());
    rates.observe("a1", &seen(10, NOW + 3600, 3), 200);
    // Within KEEP_REFRESH_MS: updated in place, the keep-until unchanged.
    clock.advance_secs(30);
    rates.observe("a1", &seen(9, NOW + 3600, 3), 200);
    assert_eq!(rates.get("a1").unwrap().remaining, Some(9));
    // Later than that: kept until KEEP_SECS after this answer.
    clock.advance_secs(60);
    rates.observe("A1", &seen(8, NOW + 3600, 3), 200);
    clock.advance_secs(KEEP_SECS - 1);
    assert_eq!(rates.get("a1").unwrap().remaining, Some(8));
    clock.advance_secs(1);
    assert!(rates.get("a1").is_none());
}

#[test]
fn calls_are_counted_per_minute_for_an_hour() {
    let mut b = Default::default();
    assert_eq!(count_in_at(&mut b, 2, NOW + 10), CallCount::Counted);
    assert_eq!(count_in_at(&mut b, 2, NOW + 70), CallCount::Counted);
    // The first call (minute NOW/60) counts until NOW + 3660.
    assert_eq!(
        count_in_at(&mut b, 2, NOW + 100),
        CallCount::Refused {
            retry_after_secs: 3560
        }
    );
    assert_eq!(
        count_in_at(&mut b, 2, NOW + 3659),
        CallCount::Refused {
            retry_after_secs: 1
        }
    );
    assert_eq!(count_in_at(&mut b, 2, NOW + 3660), CallCount::Counted);
    assert!(matches!(
        count_in_at(&mut b, 2, NOW + 3661),
        CallCount::Refused { .. }
    ));
}

fn count_in_at(b: &mut std::collections::VecDeque<(u64, u64)>, limit: u64, now: u64) -> CallCount {
    counter::count_in(b, limit, now)
}

#[tokio::test]
async fn the_memory_counter_counts_each_session_alone() {
    let clock = ManualClock::at_unix(NOW);
    let counter = MemoryCallCounter::new(10, clock.clone());
    for _ in 0..3 {
        assert_eq!(counter.count("s1", 3).await.unwrap(), CallCount::Counted);
    }
    assert!(matches!(
        counter.count("s1", 3).await.unwrap(),
        CallCount::Refused {
            retry_after_secs: 3660
        }
    ));
    assert_eq!(counter.count("s2", 3).await.unwrap(), CallCount::Counted);
    clock.advance_secs(1800);
    assert!(matches!(
        counter.count("s1", 3).await.unwrap(),
        CallCount::Refused { .. }
    ));
    clock.advance_secs(1860);
    assert_eq!(counter.count("s1", 3).await.unwrap(), CallCount::Counted);
}
