//! A shard: one lock's worth of a database's keys.
//!
//! Each shard owns a hash table of entries and the count of keys with a
//! TTL. Tables are small (a database is split into many shards) and grow
//! incrementally (`table.rs`), so growing one never stalls.

use super::entry::{Entry, Value};
use super::lru::{self, Policy};
use super::s3fifo::{probe_hash, slot_key, S3Fifo};
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

/// CLIENT PAUSE (WRITE or ALL) holds expiry and eviction until this time
/// (ms, 0 = no pause), as Redis's paused EXPIRE/EVICT actions do: a key
/// whose TTL passed reads as missing but stays, so that after the pause
/// it is deleted (and propagated) like any other, or a failover's new
/// master sends the DEL.
pub static EXPIRY_PAUSED_UNTIL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether expiry and eviction are held by a pause at `now_ms`.
pub fn expiry_paused(now_ms: u64) -> bool {
    EXPIRY_PAUSED_UNTIL.load(std::sync::atomic::Ordering::Relaxed) > now_ms
}

/// [`expiry_paused`] at the current time, reading the clock only while a
/// pause is set.
pub fn expiry_paused_now() -> bool {
    EXPIRY_PAUSED_UNTIL.load(std::sync::atomic::Ordering::Relaxed) != 0
        && expiry_paused(crate::server::now_ms())
}

thread_local! {
    /// Set on the replica link's thread: the master's commands see keys
    /// whose TTL passed as present, as Redis's master client does.
    pub static OBEY_MASTER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a table out of growth room is rebuilt at the size its keys need
/// instead of letting hashbrown double it (set while maxmemory is on). Under
/// eviction churn every delete can leave a tombstone that uses up growth
/// room, and hashbrown doubles any table more than half full when the room
/// runs out: at 100mb of 100-byte values ~2/3 of the tables doubled with
/// no more keys, used_memory rose by their size, and the keys evicted to
/// pay for it left holes in the allocator (RSS 1.24x maxmemory).
pub static COMPACT_ON_CHURN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

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
            if expiry_paused(now_ms) {
                return None;
            }
            let e = self.table.take(s);
            self.volatile -= 1;
            crate::server::stats::EXPIRED_KEYS.add(1);
            if log_expired() {
                self.expired_log.push(e.key().to_vec());
            }
            crate::server::lazyfree::drop_entry(e, crate::server::lazyfree::Reason::Expire);
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
        if self.table.out_of_room()
            && self.table.len() >= 16
            && COMPACT_ON_CHURN.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.table.rebuild();
        }
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
                let p = lru::policy();
                if p.is_s3() && (p == Policy::AllkeysS3Fifo || e.expire_at().is_some()) {
                    let q = s3.get_or_insert_with(Default::default);
                    let main = q.take_ghost(h);
                    e.set_s3_in_main(main);
                    e.set_s3_freq(0);
                    q.push(main, h);
                    let (a, b) = q.slots();
                    if a + b > 2 * len + 16 {
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
            (false, true) => {
                self.volatile += 1;
                // volatile-s3fifo queues keys once they have a TTL.
                if lru::policy() == Policy::VolatileS3Fifo {
                    e.set_s3_in_main(false);
                    e.set_s3_freq(0);
                    self.s3.get_or_insert_with(Default::default).push(false, h);
                }
            }
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

    /// Deletes every key and returns the old table (for the lazyfree
    /// thread) and how many keys it held.
    pub fn take_all(&mut self) -> (KeyTable, usize) {
        let t = std::mem::take(&mut self.table);
        let n = t.len();
        self.volatile = 0;
        self.s3 = None;
        (t, n)
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

    /// The entry an S3-FIFO queue slot refers to (see `s3fifo::slot_key`).
    fn find_by_slot(&mut self, k: u32) -> Option<&mut Entry> {
        self.table
            .find_mut(probe_hash(k), |e| slot_key(key_hash(e.key())) == k)
    }

    fn remove_by_slot(&mut self, k: u32) -> Option<Entry> {
        let e = self
            .table
            .remove(probe_hash(k), |e| slot_key(key_hash(e.key())) == k)?;
        if e.expire_at().is_some() {
            self.volatile -= 1;
        }
        Some(e)
    }

    /// Whether the slot `k` popped from main (`main`) or small still
    /// stands for a key there (else it is skipped): the key exists, sits
    /// in that queue, and has a TTL if `volatile`.
    fn s3_live(&self, k: u32, main: bool, volatile: bool) -> bool {
        self.table
            .find(probe_hash(k), |e| slot_key(key_hash(e.key())) == k)
            .is_some_and(|e| e.s3_in_main() == main && (!volatile || e.expire_at().is_some()))
    }

    /// The insertion number of the head of this shard's main (`main`) or
    /// small queue, dropping stale slots first; None if that queue is
    /// empty. Builds the queues from the table first if an S3-FIFO policy
    /// was just switched on (or the queues lost every key).
    pub fn s3_head(&mut self, main: bool, volatile: bool) -> Option<u32> {
        let empty = self.s3.as_ref().is_none_or(|q| q.slots() == (0, 0));
        if empty
            && (if volatile {
                self.volatile > 0
            } else {
                !self.table.is_empty()
            })
        {
            self.s3_rebuild(volatile);
        }
        loop {
            let (k, seq) = self.s3.as_ref()?.head(main)?;
            if self.s3_live(k, main, volatile) {
                return Some(seq);
            }
            self.s3_pop_slot(main);
        }
    }

    /// Pops a slot of main or small; queues left empty are freed (a shard
    /// whose keys were all evicted holds nothing for S3-FIFO).
    fn s3_pop_slot(&mut self, main: bool) -> Option<u32> {
        let q = self.s3.as_mut()?;
        let k = q.pop(main);
        if q.slots() == (0, 0) {
            self.s3 = None;
        }
        k
    }

    /// Pops the head of this shard's main (`main`) or small queue: a key
    /// read while queued moves to main's tail (from small with its
    /// frequency reset, from main with it lowered by one) and None is
    /// returned; any other is evicted, remembered in the global ghost and
    /// returned. Stale slots are dropped.
    pub fn s3_pop(&mut self, main: bool, volatile: bool) -> Option<Entry> {
        let k = self.s3_pop_slot(main)?;
        if !self.s3_live(k, main, volatile) {
            return None;
        }
        let e = self.find_by_slot(k).expect("live slot");
        let f = e.s3_freq();
        if f > 0 {
            e.set_s3_in_main(true);
            e.set_s3_freq(if main { f - 1 } else { 0 });
            self.s3.get_or_insert_with(Default::default).requeue(k);
            return None;
        }
        let out = self.remove_by_slot(k);
        S3Fifo::push_ghost(k, main);
        out
    }

    /// Puts every key (with a TTL if `volatile`) in the main queue: the
    /// policy was just switched on, or the queues lost track.
    fn s3_rebuild(&mut self, volatile: bool) {
        let mut q = self.s3.take().unwrap_or_default();
        q.retain(false, |_| false);
        q.retain(true, |_| false);
        for e in self.table.iter_mut() {
            if volatile && e.expire_at().is_none() {
                continue;
            }
            e.set_s3_in_main(true);
            q.push(true, key_hash(e.key()));
        }
        self.s3 = Some(q);
    }

    /// Drops slots of deleted or moved keys, and duplicates, from the queues.
    fn s3_compact(&mut self) {
        let Some(mut q) = self.s3.take() else { return };
        let mut seen = hashbrown::HashSet::with_capacity(self.table.len());
        for main in [false, true] {
            q.retain(main, |k| {
                self.table
                    .find(probe_hash(k), |e| slot_key(key_hash(e.key())) == k)
                    .is_some_and(|e| e.s3_in_main() == main)
                    && seen.insert(k)
            });
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
        self.table.remove_where(
            |e| e.is_expired(now_ms),
            |e| {
                removed_volatile += 1;
                if log {
                    expired_log.push(e.key().to_vec());
                }
                crate::server::lazyfree::drop_entry(e, crate::server::lazyfree::Reason::Expire);
            },
        );
        self.volatile -= removed_volatile;
        crate::server::stats::EXPIRED_KEYS.add(removed_volatile as u64);
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

/// The policy and the S3-FIFO state are process-wide: tests that switch
/// the policy run one at a time.
#[cfg(test)]
pub(crate) static POLICY_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

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

    /// The evictor's S3-FIFO loop on one shard: pop from the queue the
    /// global state asks for (the other one if that is empty) until a key
    /// leaves.
    fn evict1(sh: &mut Shard, volatile: bool) -> Option<Entry> {
        use super::super::s3fifo::GLOBAL;
        for _ in 0..10_000 {
            let mut main = !GLOBAL.pop_small();
            if sh.s3_head(main, volatile).is_none() {
                main = !main;
                sh.s3_head(main, volatile)?;
            }
            if let Some(e) = sh.s3_pop(main, volatile) {
                return Some(e);
            }
        }
        None
    }

    fn drain(sh: &mut Shard, volatile: bool) -> Vec<String> {
        let mut order = Vec::new();
        while let Some(e) = evict1(sh, volatile) {
            order.push(String::from_utf8(e.key().to_vec()).unwrap());
        }
        order
    }

    #[test]
    fn s3fifo_keeps_accessed_keys_and_remembers_ghosts() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        configure(Policy::AllkeysS3Fifo, 10, 1);
        super::super::s3fifo::reset();
        let mut sh = Shard::default();
        for i in 0..20 {
            sh.insert(format!("a{i}").as_bytes(), s(b"x"), None);
        }
        // a0..a4 are read while in the small queue.
        for i in 0..5 {
            crate::keyspace::lru::touch(sh.get_mut(format!("a{i}").as_bytes(), 0).unwrap(), 0);
        }
        // Small holds everything (target 2): the accessed keys move to main,
        // the others leave in insertion order.
        assert_eq!(evict1(&mut sh, false).unwrap().key(), b"a5");
        assert_eq!(evict1(&mut sh, false).unwrap().key(), b"a6");
        assert!(sh.peek(b"a0").unwrap().s3_in_main());
        // A key evicted recently comes back straight into main.
        sh.insert(b"a5", s(b"y"), None);
        assert!(sh.peek(b"a5").unwrap().s3_in_main());
        // Drain: the small queue's one-hit keys first, in order; main's last.
        let order = drain(&mut sh, false);
        assert_eq!(order.len(), 19);
        let small: Vec<String> = (7..20).map(|i| format!("a{i}")).collect();
        assert_eq!(order[..13], small[..]);
        let mut last = order[13..].to_vec();
        last.sort();
        assert_eq!(last, ["a0", "a1", "a2", "a3", "a4", "a5"]);
        assert!(sh.is_empty());
        configure(Policy::NoEviction, 10, 1);
    }

    #[test]
    fn s3fifo_main_is_a_clock_with_two_bits() {
        use crate::keyspace::lru::{configure, touch, Policy};
        let _g = POLICY_LOCK.lock();
        configure(Policy::AllkeysS3Fifo, 10, 1);
        super::super::s3fifo::reset();
        let mut sh = Shard::default();
        for k in ["a", "b", "c"] {
            sh.insert(k.as_bytes(), s(b"x"), None);
        }
        // a and b read in small: promoted (frequency reset); c leaves.
        touch(sh.get_mut(b"a", 0).unwrap(), 0);
        touch(sh.get_mut(b"b", 0).unwrap(), 0);
        assert_eq!(evict1(&mut sh, false).unwrap().key(), b"c");
        // a read three times (saturates at 2), b once: the CLOCK lowers
        // a 2 -> 1, b 1 -> 0, a 1 -> 0, then evicts b, then a.
        for _ in 0..3 {
            touch(sh.get_mut(b"a", 0).unwrap(), 0);
        }
        touch(sh.get_mut(b"b", 0).unwrap(), 0);
        assert_eq!(sh.peek(b"a").unwrap().s3_freq(), 2);
        assert_eq!(drain(&mut sh, false), ["b", "a"]);
        configure(Policy::NoEviction, 10, 1);
    }

    #[test]
    fn volatile_s3fifo_never_evicts_keys_without_ttl() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        super::super::s3fifo::reset();
        configure(Policy::VolatileS3Fifo, 10, 1);
        let mut sh = Shard::default();
        for i in 0..30 {
            let ttl = (i % 3 == 0).then_some(u64::MAX / 2);
            sh.insert(format!("k{i}").as_bytes(), s(b"x"), ttl);
        }
        // A key that gets its TTL later is queued then.
        assert!(sh.set_expire(b"k1", Some(u64::MAX / 2)));
        // One that loses it is skipped.
        sh.set_expire(b"k0", None);
        let mut order = drain(&mut sh, true);
        order.sort();
        let mut want: Vec<String> = (3..30).step_by(3).map(|i| format!("k{i}")).collect();
        want.push("k1".into());
        want.sort();
        assert_eq!(order, want);
        assert_eq!(sh.len(), 20);
        assert!(sh.peek(b"k0").is_some());
        // Policy switched on with keys already there: rebuilt from the TTL'd ones.
        configure(Policy::NoEviction, 10, 1);
        sh.s3 = None;
        sh.set_expire(b"k2", Some(u64::MAX / 2));
        configure(Policy::VolatileS3Fifo, 10, 1);
        assert_eq!(drain(&mut sh, true), ["k2"]);
        configure(Policy::NoEviction, 10, 1);
    }

    #[test]
    fn s3fifo_rebuilds_and_compacts_its_queues() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        super::super::s3fifo::reset();
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
        let (a, b) = sh.s3.as_ref().unwrap().slots();
        assert!(a + b <= 2 * 10 + 16 + 1);
        // Queues lost (policy switched off and on): rebuilt from the table.
        sh.s3 = None;
        assert_eq!(drain(&mut sh, false).len(), 10);
        configure(Policy::NoEviction, 10, 1);
    }

    #[test]
    fn s3fifo_queues_of_an_emptied_shard_are_freed() {
        use crate::keyspace::lru::{configure, Policy};
        let _g = POLICY_LOCK.lock();
        super::super::s3fifo::reset();
        configure(Policy::AllkeysS3Fifo, 10, 1);
        let mut sh = Shard::default();
        for i in 0..5 {
            sh.insert(format!("k{i}").as_bytes(), s(b"x"), None);
        }
        // Five slots: a ring of six in one queue, the pair's own 48 bytes.
        assert_eq!(sh.s3.as_ref().unwrap().heap_bytes(), 48 + 6 * 8);
        assert_eq!(drain(&mut sh, false).len(), 5);
        assert!(sh.s3.is_none(), "nothing held once every key is evicted");
        configure(Policy::NoEviction, 10, 1);
    }
}
