//! A bounded map whose entries expire: the one structure behind the session
//! store and the pending logins.
//!
//! [`TtlMap`] holds at most `capacity` entries. Each entry carries the time at
//! which it expires (`expires_at_ms`, milliseconds on the caller's clock) and
//! is invisible from then on: an entry is expired when `now_ms >=
//! expires_at_ms`. The map never reads a clock itself; every call that cares
//! about time takes `now_ms`, so callers inject their clock and tests need no
//! sleeps.
//!
//! When an insert finds the map full it makes room by evicting, one entry at a
//! time, the entry that expires first if it has already expired, and otherwise
//! the entry inserted longest ago. Evicted pairs are handed back to the caller
//! (to count them or act on them).
//!
//! Nothing here scans the map. Besides the `HashMap` that holds the entries,
//! two ordered indexes are kept (the idea of mini-redis's
//! `BTreeSet<(Instant, key)>`):
//! - an expiry index, `(expires_at_ms, seq)`, whose first element is the entry
//!   that expires next, and
//! - an insertion index, `seq -> key`, whose first element is the oldest entry,
//!
//! where `seq` is a sequence number given to each insert, so the key type needs
//! only `Eq + Hash + Clone`, no `Ord`. With `n` entries:
//!
//! | operation                                    | cost                                  |
//! |----------------------------------------------|---------------------------------------|
//! | [`get`](TtlMap::get), [`update`](TtlMap::update), [`contains_key`](TtlMap::contains_key) | O(1) expected; O(log n) when it removes an expired entry |
//! | [`insert`](TtlMap::insert)                   | O(log n), eviction included           |
//! | [`remove`](TtlMap::remove), [`remove_if`](TtlMap::remove_if) | O(log n)                |
//! | [`purge_expired`](TtlMap::purge_expired)     | O(k log n) for the `k <= max` removed |
//! | [`len`](TtlMap::len)                         | O(1)                                  |
//!
//! The map is shared by reference (`&self`); one `std::sync::Mutex` guards the
//! entries and both indexes, held only for the map operation itself (never
//! across an `.await`, and values leaving the map are dropped after it is
//! released). A panic inside a caller's closure ([`update`](TtlMap::update),
//! [`remove_if`](TtlMap::remove_if)) cannot leave the indexes inconsistent, so
//! a poisoned lock is recovered rather than propagated.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A thread-safe map bounded by a capacity, whose entries expire at a time
/// given by the caller. See the [module documentation](self).
pub struct TtlMap<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

struct Entry<V> {
    value: V,
    expires_at_ms: u64,
    /// The sequence number of the insert that stored this entry.
    seq: u64,
}

impl<V> Entry<V> {
    fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

struct Inner<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// `(expires_at_ms, seq)` of every entry; the first expires next.
    by_expiry: BTreeSet<(u64, u64)>,
    /// `seq -> key` of every entry; the first is the oldest.
    by_seq: BTreeMap<u64, K>,
    next_seq: u64,
}

impl<K: Eq + Hash + Clone, V> Inner<K, V> {
    fn new() -> Self {
        Inner {
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            by_seq: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn add(&mut self, key: K, value: V, expires_at_ms: u64) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_expiry.insert((expires_at_ms, seq));
        self.by_seq.insert(seq, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                expires_at_ms,
                seq,
            },
        );
    }

    fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = self.entries.remove(key)?;
        self.by_expiry.remove(&(entry.expires_at_ms, entry.seq));
        self.by_seq.remove(&entry.seq);
        Some(entry.value)
    }

    fn remove_seq(&mut self, seq: u64) -> Option<(K, V)> {
        let key = self.by_seq.remove(&seq)?;
        let entry = self.entries.remove(&key)?;
        self.by_expiry.remove(&(entry.expires_at_ms, entry.seq));
        Some((key, entry.value))
    }

    /// The `seq` of the entry that expires first, if it has expired.
    fn first_expired(&self, now_ms: u64) -> Option<u64> {
        match self.by_expiry.first() {
            Some(&(expires_at_ms, seq)) if expires_at_ms <= now_ms => Some(seq),
            _ => None,
        }
    }

    /// Evicts the entry that expires first if it has expired, else the oldest.
    fn evict_one(&mut self, now_ms: u64) -> Option<(K, V)> {
        let seq = match self.first_expired(now_ms) {
            Some(seq) => seq,
            None => *self.by_seq.first_key_value()?.0,
        };
        let evicted = self.remove_seq(seq);
        debug_assert!(evicted.is_some(), "ttl_map indexes out of step");
        evicted
    }
}

impl<K: Eq + Hash + Clone, V> TtlMap<K, V> {
    /// An empty map that holds at most `capacity` entries (at least one: a
    /// capacity of 0 is taken as 1).
    pub fn new(capacity: usize) -> Self {
        TtlMap {
            inner: Mutex::new(Inner::new()),
            capacity: capacity.max(1),
        }
    }

    /// The most entries the map holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held, including expired ones not removed yet. O(1).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores `value` under `key` until `expires_at_ms`, and returns the
    /// entries evicted to make room.
    ///
    /// An existing entry for `key` is replaced (its value dropped, not
    /// returned): the new entry has the new expiry and counts as the newest,
    /// and replacing never evicts. When the map is full, entries are evicted
    /// one by one until there is room: the entry that expires first if it has
    /// expired at `now_ms`, otherwise the oldest inserted. With the capacity
    /// fixed that is at most one entry per insert.
    ///
    /// An entry inserted already expired (`expires_at_ms <= now_ms`) is stored
    /// but never returned, and is the first to go. O(log n).
    pub fn insert(&self, key: K, value: V, expires_at_ms: u64, now_ms: u64) -> Vec<(K, V)> {
        let mut evicted = Vec::new();
        let replaced = {
            let mut inner = self.lock();
            let replaced = inner.remove(&key);
            while inner.entries.len() >= self.capacity {
                match inner.evict_one(now_ms) {
                    Some(pair) => evicted.push(pair),
                    None => break,
                }
            }
            inner.add(key, value, expires_at_ms);
            replaced
        };
        drop(replaced);
        evicted
    }

    /// A clone of the live value for `key`. An expired entry is removed and
    /// not returned. O(1) expected.
    pub fn get<Q>(&self, key: &Q, now_ms: u64) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let expired = {
            let mut inner = self.lock();
            let entry = inner.entries.get(key)?;
            if entry.is_live(now_ms) {
                return Some(entry.value.clone());
            }
            inner.remove(key)
        };
        drop(expired);
        None
    }

    /// Whether a live entry for `key` is held. An expired entry is removed.
    /// O(1) expected.
    pub fn contains_key<Q>(&self, key: &Q, now_ms: u64) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.update(key, now_ms, |_| ()).is_some()
    }

    /// Runs `f` on the live value for `key` under the map's lock and returns
    /// its result; `None` (without calling `f`) when there is no live entry,
    /// an expired one being removed. The entry keeps its expiry and its place
    /// in the insertion order.
    ///
    /// This is the compare-and-set primitive: `f` can check the value and
    /// change it in one step that no other caller can interleave with. Keep
    /// `f` short: it blocks every other use of the map. O(1) expected.
    pub fn update<Q, R>(&self, key: &Q, now_ms: u64, f: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let expired = {
            let mut inner = self.lock();
            let entry = inner.entries.get_mut(key)?;
            if entry.is_live(now_ms) {
                return Some(f(&mut entry.value));
            }
            inner.remove(key)
        };
        drop(expired);
        None
    }

    /// Removes the entry for `key` and returns its value, expired or not
    /// (a caller that must tell "expired" from "unknown" keeps the time in
    /// the value). O(log n).
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(key)
    }

    /// Removes the entry for `key` if `pred` accepts its value (expired or
    /// not), in one step under the map's lock; the entry stays when `pred`
    /// refuses it. O(log n).
    pub fn remove_if<Q>(&self, key: &Q, pred: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut inner = self.lock();
        if !pred(&inner.entries.get(key)?.value) {
            return None;
        }
        inner.remove(key)
    }

    /// Removes up to `max` expired entries, those that expired first going
    /// first, and returns how many were removed: a bounded sweep for a
    /// periodic task, so expired entries nobody asks for again do not wait
    /// for eviction. O(k log n) for the `k` removed.
    pub fn purge_expired(&self, now_ms: u64, max: usize) -> usize {
        let mut purged = Vec::new();
        {
            let mut inner = self.lock();
            while purged.len() < max {
                let Some(seq) = inner.first_expired(now_ms) else {
                    break;
                };
                match inner.remove_seq(seq) {
                    Some(pair) => purged.push(pair),
                    None => break,
                }
            }
        }
        purged.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // A panic in a caller's closure only ever interrupts `f(&mut value)`
        // or `pred(&value)`, never an index update, so the data stays
        // consistent and the map stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
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
                        Some(i) if model.entries[i].1 % 2 == 0 => Some(model.entries.remove(i).1),
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
}
