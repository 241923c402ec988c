//! A shard: one lock's worth of a database's keys.
//!
//! Each shard owns a hash table of entries and the count of keys with a
//! TTL. Tables are small (a database is split into many shards) and grow
//! incrementally (`table.rs`), so growing one never stalls.

use super::entry::{Entry, Value};
use super::lru::{self, Policy};
use super::s3fifo::S3Fifo;
use super::table::KeyTable;
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
    table: KeyTable,
    volatile: usize,
    /// Keys deleted by lazy or active expiry since the last read of the
    /// counter (folded into the server's `expired_keys`).
    pub expired: u64,
    /// Names of keys deleted by expiry, kept only while someone listens
    /// (keyspace notifications; later replication and AOF): drained by
    /// the command or cycle that expired them.
    pub expired_log: Vec<Vec<u8>>,
    /// S3-FIFO queues, present while that policy is active.
    pub s3: Option<Box<S3Fifo>>,
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

/// Set while this server is a replica: expired keys are not deleted
/// (lazily or actively); the master's DELs remove them.
pub static REPLICA_NO_EXPIRE: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

thread_local! {
    /// Set on the replica link's thread: the master's commands see keys
    /// whose TTL passed as present, as Redis's master client does.
    pub static OBEY_MASTER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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
        self.table.step();
        let s = self.table.locate(h, |e| e.key() == key)?;
        if self.table.at(s).is_expired(now_ms) {
            if REPLICA_NO_EXPIRE.load(std::sync::atomic::Ordering::Relaxed) {
                // A replica waits for its master's DEL: the master's own
                // commands still see the key, everybody else does not.
                if OBEY_MASTER.with(|m| m.get()) {
                    return Some(self.table.at_mut(s));
                }
                return None;
            }
            let e = self.table.take(s);
            self.volatile -= 1;
            self.expired += 1;
            if log_expired() {
                self.expired_log.push(e.key().to_vec());
            }
            return None;
        }
        Some(self.table.at_mut(s))
    }

    /// Whether a live key exists (expiring it if due).
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get_mut(key, now_ms).is_some()
    }

    /// Inserts or replaces a key with a value and TTL; returns the old entry.
    pub fn insert(&mut self, key: &[u8], value: Value, expire_at: Option<u64>) -> Option<Entry> {
        let lru = lru::new_lru(lru::coarse_now_ms());
        self.insert_entry(Entry::new_full(key, value, expire_at, lru))
    }

    /// Inserts a prepared entry, replacing any entry with the same key.
    /// New keys join the S3-FIFO queues when that policy is active; a
    /// replaced key keeps its queue position and frequency.
    pub fn insert_entry(&mut self, mut e: Entry) -> Option<Entry> {
        let h = key_hash(e.key());
        if e.expire_at().is_some() {
            self.volatile += 1;
        }
        let len = self.table.len();
        let s3 = &mut self.s3;
        match self.table.locate(h, |x| x.key() == e.key()) {
            Some(slot) => {
                let cur = self.table.at_mut(slot);
                e.copy_meta_bits(cur);
                let old = std::mem::replace(cur, e);
                if old.expire_at().is_some() {
                    self.volatile -= 1;
                }
                self.table.step();
                Some(old)
            }
            None => {
                if LOG_NEW.load(std::sync::atomic::Ordering::Relaxed) {
                    NEW_KEYS.with(|n| n.borrow_mut().push(e.key().to_vec()));
                }
                if lru::policy() == Policy::AllkeysS3Fifo {
                    let q = s3.get_or_insert_with(Default::default);
                    let main = q.take_ghost(h);
                    e.set_s3_in_main(main);
                    e.set_s3_freq(0);
                    if main {
                        q.main.push_back(h);
                    } else {
                        q.small.push_back(h);
                    }
                    if q.small.len() + q.main.len() > 2 * len + 64 {
                        self.table.insert_new(h, e);
                        self.s3_compact();
                        return None;
                    }
                }
                self.table.insert_new(h, e);
                None
            }
        }
    }

    /// Removes a key (live or not) and returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_hashed(key_hash(key), key)
    }

    fn remove_hashed(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        self.table.step();
        let e = self.table.remove(h, |e| e.key() == key)?;
        if e.expire_at().is_some() {
            self.volatile -= 1;
        }
        Some(e)
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
        self.table.clear();
        self.volatile = 0;
        self.s3 = None;
        n
    }

    /// Table memory (bucket array and control bytes), for INFO's overhead.
    pub fn table_bytes(&self) -> usize {
        self.table.table_bytes() + self.s3.as_ref().map_or(0, |q| q.heap_bytes())
    }

    /// Visits up to `n` entries (only keys with a TTL if `volatile_only`)
    /// starting at position `start` of the table and wrapping around: the
    /// eviction sampler's view of a shard (Redis's `dictGetSomeKeys`).
    pub fn sample(
        &self,
        start: usize,
        n: usize,
        volatile_only: bool,
        mut f: impl FnMut(&Entry),
    ) -> usize {
        let len = self.table.len();
        if len == 0 || (volatile_only && self.volatile == 0) {
            return 0;
        }
        let start = start % len;
        let mut seen = 0;
        for e in self
            .table
            .iter()
            .skip(start)
            .chain(self.table.iter().take(start))
        {
            if volatile_only && e.expire_at().is_none() {
                continue;
            }
            f(e);
            seen += 1;
            if seen >= n {
                break;
            }
        }
        seen
    }

    /// Removes a key chosen for eviction, if it is still there (and still
    /// has a TTL when `volatile_only`).
    pub fn evict_key(&mut self, key: &[u8], volatile_only: bool) -> Option<Entry> {
        let h = key_hash(key);
        if volatile_only
            && self
                .table
                .find(h, |e| e.key() == key)
                .is_none_or(|e| e.expire_at().is_none())
        {
            return None;
        }
        self.remove_hashed(h, key)
    }

    /// The entry whose key hashes to `h`, for S3-FIFO's queues.
    fn find_by_hash(&mut self, h: u64) -> Option<&mut Entry> {
        self.table.find_mut(h, |e| key_hash(e.key()) == h)
    }

    fn remove_by_hash(&mut self, h: u64) -> Option<Entry> {
        let e = self.table.remove(h, |e| key_hash(e.key()) == h)?;
        if e.expire_at().is_some() {
            self.volatile -= 1;
        }
        Some(e)
    }

    /// Evicts one key with S3-FIFO and returns it. Builds the queues from
    /// the table first if the policy was just switched on.
    pub fn s3_evict_one(&mut self) -> Option<Entry> {
        if self.table.is_empty() {
            return None;
        }
        let mut rebuilt = false;
        if self
            .s3
            .as_ref()
            .is_none_or(|q| q.small.is_empty() && q.main.is_empty())
        {
            self.s3_rebuild();
            rebuilt = true;
        }
        let len = self.table.len();
        let small_target = (len / 10).max(1);
        // Every live hash is popped at most 4 times (freq <= 3) before
        // one goes; stale ones once. Bound the walk anyway.
        let mut budget = 8 * (len + 64);
        loop {
            let q = self.s3.as_mut().expect("queues exist");
            let from_small = q.small.len() >= small_target || q.main.is_empty();
            let h = if from_small {
                q.small.pop_front()
            } else {
                q.main.pop_front()
            };
            let Some(h) = h else {
                if rebuilt {
                    return None;
                }
                self.s3_rebuild();
                rebuilt = true;
                continue;
            };
            budget -= 1;
            if budget == 0 {
                return None;
            }
            let Some(e) = self.find_by_hash(h) else {
                continue; // deleted since it was queued
            };
            if e.s3_in_main() == from_small {
                continue; // stale: the key moved to the other queue
            }
            let f = e.s3_freq();
            if from_small {
                if f > 0 {
                    e.set_s3_in_main(true);
                    e.set_s3_freq(0);
                    self.s3.as_mut().unwrap().main.push_back(h);
                    continue;
                }
                let cap = len;
                let out = self.remove_by_hash(h);
                self.s3.as_mut().unwrap().push_ghost(h, cap);
                return out;
            }
            if f > 0 {
                e.set_s3_freq(f - 1);
                self.s3.as_mut().unwrap().main.push_back(h);
                continue;
            }
            return self.remove_by_hash(h);
        }
    }

    /// Puts every key in the main queue (policy just switched on, or the
    /// queues lost track).
    fn s3_rebuild(&mut self) {
        let q = self.s3.get_or_insert_with(Default::default);
        q.small.clear();
        q.main.clear();
        for e in self.table.iter_mut() {
            e.set_s3_in_main(true);
            q.main.push_back(key_hash(e.key()));
        }
    }

    /// Drops hashes of deleted keys and duplicates from the queues.
    fn s3_compact(&mut self) {
        let Some(mut q) = self.s3.take() else { return };
        let mut seen = hashbrown::HashSet::with_capacity(self.table.len());
        for (queue, main) in [(&mut q.small, false), (&mut q.main, true)] {
            queue.retain(|&h| {
                self.table
                    .find(h, |e| key_hash(e.key()) == h)
                    .is_some_and(|e| e.s3_in_main() == main)
                    && seen.insert(h)
            });
            queue.shrink_to_fit();
        }
        self.s3 = Some(q);
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

    /// The policy is process-wide: tests that switch it run one at a time.
    static POLICY_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    #[test]
    fn s3fifo_keeps_accessed_keys_and_remembers_ghosts() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        configure(Policy::AllkeysS3Fifo, 10, 1);
        let mut sh = Shard::default();
        for i in 0..20 {
            sh.insert(format!("a{i}").as_bytes(), s(b"x"), None);
        }
        // a0..a4 are read while in the small queue.
        for i in 0..5 {
            sh.get_mut(format!("a{i}").as_bytes(), 0)
                .unwrap()
                .bump_s3_freq();
        }
        // Small holds everything (target 2): the accessed keys move to main,
        // the others leave in insertion order.
        let victim = sh.s3_evict_one().unwrap();
        assert_eq!(victim.key(), b"a5");
        assert_eq!(sh.s3_evict_one().unwrap().key(), b"a6");
        assert!(sh.peek(b"a0").unwrap().s3_in_main());
        // A key evicted recently comes back straight into main.
        sh.insert(b"a5", s(b"y"), None);
        assert!(sh.peek(b"a5").unwrap().s3_in_main());
        // Drain: one-hit keys go first; main's keys last.
        let mut order = Vec::new();
        while let Some(e) = sh.s3_evict_one() {
            order.push(String::from_utf8(e.key().to_vec()).unwrap());
        }
        assert_eq!(order.len(), 19);
        let last: std::collections::HashSet<&str> = order[order.len() - 6..]
            .iter()
            .map(|k| k.as_str())
            .collect();
        for k in ["a0", "a1", "a2", "a3", "a4", "a5"] {
            assert!(last.contains(k), "{k} evicted early: {order:?}");
        }
        assert!(sh.is_empty());
        configure(Policy::NoEviction, 10, 1);
    }

    #[test]
    fn s3fifo_rebuilds_and_compacts_its_queues() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        configure(Policy::AllkeysS3Fifo, 10, 1);
        let mut sh = Shard::default();
        // Churn: deleted keys leave stale hashes that compaction drops.
        for round in 0..50 {
            for i in 0..10 {
                sh.insert(format!("k{i}").as_bytes(), s(b"x"), None);
            }
            if round < 49 {
                for i in 0..10 {
                    sh.remove(format!("k{i}").as_bytes());
                }
            }
        }
        let q = sh.s3.as_ref().unwrap();
        assert!(q.small.len() + q.main.len() <= 2 * 10 + 64 + 1);
        // Queues lost (policy switched off and on): rebuilt from the table.
        sh.s3 = None;
        let mut n = 0;
        while sh.s3_evict_one().is_some() {
            n += 1;
        }
        assert_eq!(n, 10);
        configure(Policy::NoEviction, 10, 1);
    }
}
