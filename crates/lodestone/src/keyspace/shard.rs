//! A shard: one lock's worth of a database's keys.
//!
//! Each shard owns a hash table of entries and the count of keys with a
//! TTL. Tables are small (a database
//! is split into many shards), so growing one never stalls for long.

use super::entry::{Entry, Value};
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// The hasher for keys inside a shard's table.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    static STATE: foldhash::fast::FixedState =
        foldhash::fast::FixedState::with_seed(0x6c6f_6465_7374_6f6e);
    STATE.hash_one(key)
}

#[derive(Default)]
pub struct Shard {
    table: HashTable<Entry>,
    volatile: usize,
    /// Keys deleted by lazy or active expiry since the last read of the
    /// counter (folded into the server's `expired_keys`).
    pub expired: u64,
    /// Names of keys deleted by expiry, kept only while someone listens
    /// (keyspace notifications; later replication and AOF): drained by
    /// the command or cycle that expired them.
    pub expired_log: Vec<Vec<u8>>,
    /// The last snapshot epoch that captured this shard (see
    /// `Keyspace::snap_check`): a snapshot with a greater epoch has not
    /// serialized it yet.
    pub snap_epoch: u64,
}

/// Whether shards record the names of added keys in [`NEW_KEYS`].
pub static LOG_NEW: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// Keys added by the running command on this thread, kept only while
    /// `new` keyspace events are enabled: the next event the command
    /// publishes (or the dispatcher, after it) raises their `new` events
    /// first, in Redis's order.
    pub static NEW_KEYS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether shards record the names of expired keys in `expired_log`.
pub static LOG_EXPIRED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[inline]
fn log_expired() -> bool {
    LOG_EXPIRED.load(std::sync::atomic::Ordering::Relaxed)
}

impl Shard {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn volatile_len(&self) -> usize {
        self.volatile
    }

    /// Finds a key without applying expiry.
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.table.find(key_hash(key), |e| e.key() == key)
    }

    /// Finds a live key, deleting it first if its TTL has passed.
    #[inline]
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Entry> {
        let h = key_hash(key);
        let o = self.table.find_entry(h, |e| e.key() == key).ok()?;
        if o.get().is_expired(now_ms) {
            let (e, _) = o.remove();
            self.volatile -= 1;
            self.expired += 1;
            if log_expired() {
                self.expired_log.push(e.key().to_vec());
            }
            return None;
        }
        Some(o.into_mut())
    }

    /// Whether a live key exists (expiring it if due).
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get_mut(key, now_ms).is_some()
    }

    /// Inserts or replaces a key with a value and TTL; returns the old entry.
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) -> Option<Entry> {
        self.insert_entry(Entry::new_full(key, value, expire_at, 0))
    }

    /// Inserts a prepared entry, replacing any entry with the same key.
    pub fn insert_entry(&mut self, e: Entry) -> Option<Entry> {
        let h = key_hash(e.key());
        if e.expire_at().is_some() {
            self.volatile += 1;
        }
        match self
            .table
            .entry(h, |x| x.key() == e.key(), |x| key_hash(x.key()))
        {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                let old = std::mem::replace(o.get_mut(), e);
                if old.expire_at().is_some() {
                    self.volatile -= 1;
                }
                Some(old)
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                if LOG_NEW.load(std::sync::atomic::Ordering::Relaxed) {
                    NEW_KEYS.with(|n| n.borrow_mut().push(e.key().to_vec()));
                }
                v.insert(e);
                None
            }
        }
    }

    /// Removes a key (live or not) and returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_hashed(key_hash(key), key)
    }

    fn remove_hashed(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        match self.table.find_entry(h, |e| e.key() == key) {
            Ok(o) => {
                let (e, _) = o.remove();
                if e.expire_at().is_some() {
                    self.volatile -= 1;
                }
                Some(e)
            }
            Err(_) => None,
        }
    }

    /// Sets or clears a key's TTL, keeping the volatile count right.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>) -> bool {
        let h = key_hash(key);
        let Some(e) = self.table.find_mut(h, |e| e.key() == key) else {
            return false;
        };
        let had = e.set_expire_raw(at);
        match (had, at.is_some()) {
            (false, true) => self.volatile += 1,
            (true, false) => self.volatile -= 1,
            _ => {}
        }
        true
    }

    /// Deletes every key; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.table.len();
        self.table = HashTable::new();
        self.volatile = 0;
        n
    }

    /// Iterates over all entries, expired or not.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter()
    }

    /// Deletes every expired key; returns (examined, deleted). Used by the
    /// active expiry cycle, which picks shards with a TTL'd population.
    pub fn expire_sweep(&mut self, now_ms: u64) -> (usize, usize) {
        if self.volatile == 0 {
            return (0, 0);
        }
        let before = self.table.len();
        let mut removed_volatile = 0;
        let log = log_expired();
        let expired_log = &mut self.expired_log;
        self.table.retain(|e| {
            if e.is_expired(now_ms) {
                removed_volatile += 1;
                if log {
                    expired_log.push(e.key().to_vec());
                }
                false
            } else {
                true
            }
        });
        self.volatile -= removed_volatile;
        self.expired += removed_volatile as u64;
        (before, removed_volatile)
    }

    /// A random live-or-not entry, for RANDOMKEY and eviction sampling.
    pub fn random_entry(&self, rng: &mut impl rand::Rng) -> Option<&Entry> {
        let n = self.table.len();
        if n == 0 {
            return None;
        }
        let i = rng.gen_range(0..n);
        self.table.iter().nth(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::entry::Str;

    fn s(v: &[u8]) -> Value {
        Value::Str(Str::from_bytes(v))
    }

    #[test]
    fn insert_get_remove_and_volatile_count() {
        let mut sh = Shard::default();
        assert!(sh.insert(b"a", s(b"1"), None).is_none());
        assert!(sh.insert(b"b", s(b"2"), Some(100)).is_none());
        assert_eq!(sh.volatile_len(), 1);
        assert!(sh.insert(b"b", s(b"3"), None).is_some());
        assert_eq!(sh.volatile_len(), 0);
        assert!(sh.set_expire(b"a", Some(50)));
        assert_eq!(sh.volatile_len(), 1);
        assert!(sh.get_mut(b"a", 49).is_some());
        assert!(sh.get_mut(b"a", 50).is_none());
        assert_eq!(sh.expired, 1);
        assert_eq!(sh.volatile_len(), 0);
        assert_eq!(sh.len(), 1);
        assert!(sh.remove(b"b").is_some());
        assert!(sh.is_empty());
    }

    #[test]
    fn sweep_deletes_only_expired() {
        let mut sh = Shard::default();
        for i in 0..100u32 {
            let k = i.to_string();
            sh.insert(
                k.as_bytes(),
                s(b"x"),
                if i % 2 == 0 {
                    Some(10 + i as u64)
                } else {
                    None
                },
            );
        }
        let (_, deleted) = sh.expire_sweep(60);
        assert_eq!(deleted, 26); // even i with 10 + i <= 60: i = 0, 2, ..., 50
        assert_eq!(sh.len(), 74);
        assert_eq!(sh.volatile_len(), 24);
    }
}
