use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

impl<K: Eq + Hash + Clone + std::fmt::Debug, V> TtlMap<K, V> {
    /// Panics unless the entries and both indexes describe the same set.
    fn check_invariants(&self) {
        let inner = self.lock();
        let n = inner.entries.len();
        assert!(n <= self.capacity, "{n} entries over {}", self.capacity);
        assert_eq!(inner.by_expiry.len(), n);
        assert_eq!(inner.by_seq.len(), n);
        for (key, entry) in &inner.entries {
            assert!(entry.seq < inner.next_seq);
            assert_eq!(inner.by_seq.get(&entry.seq), Some(key));
            assert!(inner.by_expiry.contains(&(entry.expires_at_ms, entry.seq)));
        }
    }
}

fn keys_of<V>(evicted: Vec<(&'static str, V)>) -> Vec<&'static str> {
    evicted.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn insert_get_remove() {
    let map = TtlMap::new(10);
    assert!(map.is_empty());
    assert!(map.insert("a".to_string(), 1, 100, 0).is_empty());
    assert_eq!(map.get("a", 0), Some(1));
    assert_eq!(map.get("b", 0), None);
    assert!(map.contains_key("a", 99));
    assert_eq!(map.len(), 1);
    assert_eq!(map.remove("a"), Some(1));
    assert_eq!(map.remove("a"), None);
    assert_eq!(map.get("a", 0), None);
    assert!(map.is_empty());
    map.check_invariants();
}

#[test]
fn capacity_is_at_least_one() {
    let map = TtlMap::new(0);
    assert_eq!(map.capacity(), 1);
    map.insert(1, 'a', 10, 0);
    assert_eq!(map.insert(2, 'b', 10, 0), vec![(1, 'a')]);
    assert_eq!(map.get(&2, 0), Some('b'));
    map.check_invariants();
}

#[test]
fn expiry_on_get() {
    let map = TtlMap::new(10);
    map.insert("a", 1, 1010, 1000);
    assert_eq!(map.get("a", 1009), Some(1));
    assert_eq!(map.len(), 1);
    assert_eq!(map.get("a", 1010), None, "expired at expires_at exactly");
    assert_eq!(map.len(), 0, "the expired entry is removed");
    map.check_invariants();
}

#[test]
fn expired_entry_is_gone_for_update_and_contains() {
    let map = TtlMap::new(10);
    map.insert("a", 1, 50, 0);
    map.insert("b", 2, 50, 0);
    let mut called = false;
    assert_eq!(map.update("a", 50, |_| called = true), None);
    assert!(!called, "f is not called on an expired entry");
    assert!(!map.contains_key("b", 60));
    assert!(map.is_empty());
    map.check_invariants();
}

#[test]
fn an_entry_inserted_expired_is_never_returned() {
    let map = TtlMap::new(10);
    map.insert("a", 1, 5, 10);
    assert_eq!(map.get("a", 10), None);
    assert!(map.is_empty());
}

#[test]
fn replacing_a_key_reindexes_it() {
    let map = TtlMap::new(2);
    map.insert("a", 1, 100, 0);
    map.insert("b", 2, 1000, 0);
    // Replace "a" with a later expiry: the old expiry (100) no longer counts.
    assert!(
        map.insert("a", 3, 1000, 0).is_empty(),
        "replacing never evicts"
    );
    assert_eq!(map.len(), 2);
    assert_eq!(map.get("a", 500), Some(3));
    // "a" is now the newest, so the oldest is "b", and nothing has expired.
    assert_eq!(keys_of(map.insert("c", 4, 1000, 500)), vec!["b"]);
    assert_eq!(map.get("a", 500), Some(3));
    map.check_invariants();

    // And a replaced key with an earlier expiry expires at the new time.
    map.insert("a", 5, 600, 500);
    assert_eq!(map.get("a", 600), None);
    assert_eq!(map.get("c", 600), Some(4));
    map.check_invariants();
}

#[test]
fn update_changes_the_value_in_place() {
    let map = TtlMap::new(2);
    map.insert("a", 1, 100, 0);
    map.insert("b", 2, 100, 0);
    // Compare-and-set: only succeeds when the value is what we expect.
    let cas = |expected, new| {
        map.update("a", 10, |v| {
            if *v == expected {
                *v = new;
                true
            } else {
                false
            }
        })
    };
    assert_eq!(cas(1, 7), Some(true));
    assert_eq!(cas(1, 8), Some(false));
    assert_eq!(map.get("a", 10), Some(7));
    assert_eq!(map.update("missing", 10, |v| *v), None);
    // Updating keeps the insertion order: "a" is still the oldest.
    assert_eq!(map.insert("c", 3, 100, 10), vec![("a", 7)]);
    map.check_invariants();
}

#[test]
fn remove_if_takes_only_what_the_predicate_accepts() {
    let map = TtlMap::new(10);
    map.insert("s", "browser-1", 100, 0);
    assert_eq!(map.remove_if("s", |b| *b == "browser-2"), None);
    assert_eq!(map.len(), 1, "a refused entry stays");
    assert_eq!(map.remove_if("nope", |_| true), None);
    assert_eq!(map.remove_if("s", |b| *b == "browser-1"), Some("browser-1"));
    assert!(map.is_empty());
    map.check_invariants();
}

#[test]
fn remove_returns_expired_entries_too() {
    let map = TtlMap::new(10);
    map.insert("a", 1, 10, 0);
    map.insert("b", 2, 10, 0);
    assert_eq!(map.remove("a"), Some(1));
    assert_eq!(map.remove_if("b", |_| true), Some(2));
    map.check_invariants();
}

#[test]
fn eviction_drops_expired_first_then_oldest() {
    let map = TtlMap::new(3);
    map.insert("old", 1, 1000, 0);
    map.insert("expires-soon", 2, 50, 10);
    map.insert("mid", 3, 1000, 20);
    // Full, nothing expired at 30: the oldest goes, not the soonest to expire.
    assert_eq!(keys_of(map.insert("new1", 4, 1000, 30)), vec!["old"]);
    // At 60 "expires-soon" has expired: it goes first, although "mid" is older.
    assert_eq!(
        map.insert("new2", 5, 1000, 60),
        vec![("expires-soon", 2)],
        "eviction returns the evicted pair"
    );
    assert_eq!(map.len(), 3);
    for (k, v) in [("mid", 3), ("new1", 4), ("new2", 5)] {
        assert_eq!(map.get(k, 60), Some(v));
    }
    map.check_invariants();
}

#[test]
fn expired_entries_go_in_expiry_order_one_per_insert() {
    let map = TtlMap::new(3);
    map.insert("a", 1, 30, 0);
    map.insert("b", 2, 10, 0);
    map.insert("c", 3, 20, 0);
    // All three expired: only as many go as are needed, earliest expiry first.
    assert_eq!(keys_of(map.insert("d", 4, 100, 50)), vec!["b"]);
    assert_eq!(keys_of(map.insert("e", 5, 100, 50)), vec!["c"]);
    assert_eq!(keys_of(map.insert("f", 6, 100, 50)), vec!["a"]);
    assert_eq!(keys_of(map.insert("g", 7, 100, 50)), vec!["d"]);
    map.check_invariants();
}

#[test]
fn purge_expired_is_bounded_by_max() {
    let map = TtlMap::new(100);
    for i in 0..10u64 {
        map.insert(i, i, 10 + i, 0);
    }
    map.insert(99, 99, 1000, 0);
    assert_eq!(map.purge_expired(5, 100), 0, "nothing expired yet");
    assert_eq!(map.purge_expired(100, 3), 3);
    assert_eq!(map.len(), 8);
    // The three that expired first are gone.
    for i in 0..3 {
        assert!(!map.contains_key(&i, 0));
    }
    assert!(map.contains_key(&3, 0));
    assert_eq!(map.purge_expired(100, 0), 0);
    assert_eq!(map.purge_expired(100, 100), 7);
    assert_eq!(map.get(&99, 100), Some(99));
    assert_eq!(map.len(), 1);
    map.check_invariants();
}

#[test]
fn a_panicking_closure_leaves_the_map_usable() {
    let map = TtlMap::new(4);
    map.insert(1, 10, 100, 0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        map.update(&1, 0, |_| panic!("caller bug"));
    }));
    assert!(result.is_err());
    assert_eq!(map.get(&1, 0), Some(10));
    map.insert(2, 20, 100, 0);
    assert_eq!(map.len(), 2);
    map.check_invariants();
}

/// The reference model: a plain vector, every operation an O(n) scan.
struct Model {
    capacity: usize,
    /// (key, value, expires_at_ms, seq)
    entries: Vec<(u8, u32, u64, u64)>,
    next_seq: u64,
}

impl Model {
    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|e| e.0 == key)
    }

    fn insert(&mut self, key: u8, value: u32, expires: u64, now: u64) -> Vec<(u8, u32)> {
        if let Some(i) = self.position(key) {
            self.entries.remove(i);
        }
        let mut evicted = Vec::new();
        while self.entries.len() >= self.capacity {
            let first_expiring = (0..self.entries.len())
                .min_by_key(|&i| (self.entries[i].2, self.entries[i].3))
                .unwrap();
            let i = if self.entries[first_expiring].2 <= now {
                first_expiring
            } else {
                (0..self.entries.len())
                    .min_by_key(|&i| self.entries[i].3)
                    .unwrap()
            };
            let e = self.entries.remove(i);
            evicted.push((e.0, e.1));
        }
        self.entries.push((key, value, expires, self.next_seq));
        self.next_seq += 1;
        evicted
    }

    /// The index of the live entry for `key`; an expired one is removed.
    fn live(&mut self, key: u8, now: u64) -> Option<usize> {
        let i = self.position(key)?;
        if self.entries[i].2 <= now {
            self.entries.remove(i);
            return None;
        }
        Some(i)
    }

    fn purge(&mut self, now: u64, max: usize) -> usize {
        let mut expired: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|e| e.2 <= now)
            .map(|e| (e.2, e.3))
            .collect();
        expired.sort();
        expired.truncate(max);
        self.entries
            .retain(|e| !expired.iter().any(|&(_, seq)| seq == e.3));
        expired.len()
    }
}

fn run_against_model(seed: u64, capacity: usize, ops: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let map: TtlMap<u8, u32> = TtlMap::new(capacity);
    let mut model = Model {
        capacity,
        entries: Vec::new(),
        next_seq: 0,
    };
    let mut clock: u64 = 1_000;
    let mut evictions = 0;
    for step in 0..ops {
        clock += rng.gen_range(0..4);
        // Mostly the current time, sometimes a little in the past.
        let now = if rng.gen_bool(0.2) {
            clock - rng.gen_range(1..5)
        } else {
            clock
        };
        let key: u8 = rng.gen_range(0..12);
        let ctx = format!("seed {seed} capacity {capacity} step {step} now {now} key {key}");
        match rng.gen_range(0..100) {
            0..=39 => {
                let value: u32 = rng.gen();
                // Some already expired, some with equal expiries (ties by seq).
                let expires = now - 5 + rng.gen_range(0..40);
                let got = map.insert(key, value, expires, now);
                let want = model.insert(key, value, expires, now);
                evictions += want.len();
                assert_eq!(got, want, "insert: {ctx}");
            }
            40..=59 => {
                let want = model.live(key, now).map(|i| model.entries[i].1);
                assert_eq!(map.get(&key, now), want, "get: {ctx}");
            }
            60..=69 => {
                let add: u32 = rng.gen_range(1..100);
                let want = model.live(key, now).map(|i| {
                    let v = &mut model.entries[i].1;
                    *v = v.wrapping_add(add);
                    *v
                });
                let got = map.update(&key, now, |v| {
                    *v = v.wrapping_add(add);
                    *v
                });
                assert_eq!(got, want, "update: {ctx}");
            }
            70..=74 => {
                let want = model.live(key, now).is_some();
                assert_eq!(map.contains_key(&key, now), want, "contains_key: {ctx}");
            }
            75..=84 => {
                let want = model.position(key).map(|i| model.entries.remove(i).1);
                assert_eq!(map.remove(&key), want, "remove: {ctx}");
            }
            85..=94 => {
                let want = match model.position(key) {
                    Some(i) if model.entries[i].1.is_multiple_of(2) => {
                        Some(model.entries.remove(i).1)
                    }
                    _ => None,
                };
                assert_eq!(
                    map.remove_if(&key, |v| v % 2 == 0),
                    want,
                    "remove_if: {ctx}"
                );
            }
            _ => {
                let max = rng.gen_range(0..4);
                let want = model.purge(now, max);
                assert_eq!(map.purge_expired(now, max), want, "purge: {ctx}");
            }
        }
        assert_eq!(map.len(), model.entries.len(), "len: {ctx}");
        map.check_invariants();
    }
    // Everything still in the model is in the map with the same value.
    let now = clock;
    for key in 0..12u8 {
        let want = model.live(key, now).map(|i| model.entries[i].1);
        assert_eq!(map.get(&key, now), want, "final: seed {seed} key {key}");
    }
    assert!(
        evictions > 0 || capacity > 12,
        "seed {seed}: no eviction exercised"
    );
}

#[test]
fn random_operations_match_a_naive_model() {
    for seed in 0..24 {
        let capacity = 1 + (seed as usize % 8);
        run_against_model(seed, capacity, 2_000);
    }
    // A capacity above the key space: expiry alone, never eviction.
    run_against_model(99, 20, 2_000);
}

#[test]
fn concurrent_use_keeps_the_bound_and_the_indexes() {
    const THREADS: u64 = 4;
    let map = Arc::new(TtlMap::new(64));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let mut evicted = 0;
                for i in 0..5_000u64 {
                    let now = i;
                    let key: u64 = rng.gen_range(0..200);
                    match rng.gen_range(0..6) {
                        0 | 1 => {
                            let expires = now + rng.gen_range(0..2_000);
                            evicted += map.insert(key, t, expires, now).len();
                        }
                        2 => {
                            map.get(&key, now);
                        }
                        3 => {
                            map.update(&key, now, |v| *v = t);
                        }
                        4 => {
                            map.remove_if(&key, |v| *v == t);
                        }
                        _ => {
                            map.purge_expired(now, 4);
                        }
                    }
                    assert!(map.len() <= 64);
                }
                evicted
            })
        })
        .collect();
    let evicted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(evicted > 0, "the bound was never reached");
    map.check_invariants();
}

#[test]
fn concurrent_compare_and_set_has_exactly_one_winner() {
    let map = Arc::new(TtlMap::new(8));
    map.insert("token", 0u64, 1_000, 0);
    let handles: Vec<_> = (1..=8u64)
        .map(|id| {
            let map = Arc::clone(&map);
            std::thread::spawn(move || {
                map.update("token", 10, |generation| {
                    if *generation == 0 {
                        *generation = id;
                        true
                    } else {
                        false
                    }
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(Option::is_some));
    let winners = results.iter().filter(|r| **r == Some(true)).count();
    assert_eq!(winners, 1);
    let winner = map.get("token", 10).unwrap();
    assert!((1..=8).contains(&winner));
}

#[test]
fn clear_empties_the_map_and_it_stays_usable() {
    let map: TtlMap<String, u32> = TtlMap::new(2);
    map.insert("a".into(), 1, 100, 0);
    map.insert("b".into(), 2, 100, 0);
    map.clear();
    assert!(map.is_empty());
    assert_eq!(map.get("a", 0), None);
    map.insert("c".into(), 3, 100, 0);
    map.insert("d".into(), 4, 100, 0);
    assert_eq!(map.get("c", 0), Some(3));
    assert_eq!(map.len(), 2);
}
