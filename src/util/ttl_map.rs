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

    /// Removes every entry (dropped after the lock is released). O(n).
    pub fn clear(&self) {
        let old = std::mem::replace(&mut *self.lock(), Inner::new());
        drop(old);
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
mod tests;
