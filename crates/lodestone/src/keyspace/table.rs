//! A shard's key table: a `hashbrown` table that grows incrementally.
//!
//! All 1024 shards of a database fill at the same rate (CRC16 spreads
//! sequential keys almost perfectly), so with plain resizing every shard
//! doubled within one pipelined batch: about a second of rehashing at 8M
//! keys. Here a full table instead becomes the `old` half of a migration:
//! a table of twice the capacity takes new keys, and every write (and
//! lookup) moves at most [`MOVE_PER_STEP`] entries across, as Redis's
//! incremental rehash does. Lookups check both halves while a migration
//! runs; a key is always in exactly one of them.

use super::entry::Entry;
use super::shard::key_hash;
use hashbrown17::HashTable;

/// Entries moved from the old half per step. Big enough that a migration
/// ends soon after it starts (its old table's memory comes back), small
/// enough that one command never does more than a few µs of rehashing.
pub const MOVE_PER_STEP: usize = 64;
/// Buckets of the old half examined per step (empty ones are cheap).
const SCAN_PER_STEP: usize = 4 * MOVE_PER_STEP;

thread_local! {
    /// Migration steps taken on this thread since the event loop last
    /// asked: right after a growth point each step faults in fresh pages
    /// of the new half (all 1024 shards grow within one batch), so the
    /// worker checks its time quantum after every such command.
    static STEPS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Takes (and clears) this thread's count of migration steps.
#[inline]
pub fn take_steps() -> u32 {
    STEPS.with(|s| s.replace(0))
}

#[inline]
fn rehash(e: &Entry) -> u64 {
    key_hash(e.key())
}

/// The two halves of a shard's table; see the module documentation.
#[derive(Default)]
pub struct KeyTable {
    cur: HashTable<Entry>,
    /// The table being drained, empty when no migration runs.
    old: HashTable<Entry>,
    /// Next bucket of `old` to move.
    next: usize,
}

/// Where a key was found: which half, and its bucket there.
#[derive(Clone, Copy)]
pub struct Slot {
    old: bool,
    bucket: usize,
}

impl KeyTable {
    #[inline]
    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a migration is under way.
    #[inline]
    pub fn migrating(&self) -> bool {
        !self.old.is_empty()
    }

    /// Bytes of bucket arrays and control bytes (INFO's overhead).
    pub fn table_bytes(&self) -> usize {
        (self.cur.num_buckets() + self.old.num_buckets()) * (std::mem::size_of::<Entry>() + 1)
    }

    /// Finds the slot of the entry with hash `h` for which `eq` holds.
    #[inline]
    pub fn locate(&self, h: u64, mut eq: impl FnMut(&Entry) -> bool) -> Option<Slot> {
        if let Some(bucket) = self.cur.find_bucket_index(h, &mut eq) {
            return Some(Slot { old: false, bucket });
        }
        if self.migrating() {
            if let Some(bucket) = self.old.find_bucket_index(h, &mut eq) {
                return Some(Slot { old: true, bucket });
            }
        }
        None
    }

    #[inline]
    fn half(&self, s: Slot) -> &HashTable<Entry> {
        if s.old {
            &self.old
        } else {
            &self.cur
        }
    }

    #[inline]
    fn half_mut(&mut self, s: Slot) -> &mut HashTable<Entry> {
        if s.old {
            &mut self.old
        } else {
            &mut self.cur
        }
    }

    /// The entry in a slot returned by [`KeyTable::locate`].
    #[inline]
    pub fn at(&self, s: Slot) -> &Entry {
        self.half(s).get_bucket(s.bucket).expect("located slot")
    }

    /// The entry in a slot, mutably.
    #[inline]
    pub fn at_mut(&mut self, s: Slot) -> &mut Entry {
        self.half_mut(s)
            .get_bucket_mut(s.bucket)
            .expect("located slot")
    }

    /// Takes the entry out of a slot.
    pub fn take(&mut self, s: Slot) -> Entry {
        let o = self
            .half_mut(s)
            .get_bucket_entry(s.bucket)
            .unwrap_or_else(|_| unreachable!("located slot"));
        let (e, _) = o.remove();
        if s.old && self.old.is_empty() {
            self.finish();
        }
        e
    }

    #[inline]
    pub fn find(&self, h: u64, eq: impl FnMut(&Entry) -> bool) -> Option<&Entry> {
        let s = self.locate(h, eq)?;
        Some(self.at(s))
    }

    #[inline]
    pub fn find_mut(&mut self, h: u64, eq: impl FnMut(&Entry) -> bool) -> Option<&mut Entry> {
        let s = self.locate(h, eq)?;
        Some(self.at_mut(s))
    }

    /// Removes and returns the entry with hash `h` for which `eq` holds.
    pub fn remove(&mut self, h: u64, eq: impl FnMut(&Entry) -> bool) -> Option<Entry> {
        let s = self.locate(h, eq)?;
        Some(self.take(s))
    }

    /// Adds an entry whose key is known to be absent (hash `h`). Starts a
    /// migration instead of letting the table resize in one go.
    pub fn insert_new(&mut self, h: u64, e: Entry) {
        if !self.migrating() && self.cur.len() == self.cur.capacity() && !self.cur.is_empty() {
            let t = crate::server::latency::Timer::start();
            let n = self.cur.len();
            self.old = std::mem::replace(&mut self.cur, HashTable::with_capacity(2 * n));
            self.next = 0;
            t.end(crate::server::latency::Ev::TableGrowth);
        }
        self.cur.insert_unique(h, e, rehash);
        self.step();
    }

    /// Whether the next new key would start a migration: the current half
    /// has no growth room left (deletes leave tombstones that use it up).
    pub fn out_of_room(&self) -> bool {
        !self.migrating() && !self.cur.is_empty() && self.cur.len() == self.cur.capacity()
    }

    /// Re-inserts every entry into one table sized for them, dropping the
    /// tombstones of deleted keys; it only grows if the keys need it. Used
    /// under maxmemory churn instead of a doubling migration.
    pub fn rebuild(&mut self) {
        let old = std::mem::take(self);
        let n = old.len();
        let mut t = HashTable::with_capacity(n + 1 + n / 16);
        for e in old.cur.into_iter().chain(old.old) {
            t.insert_unique(rehash(&e), e, rehash);
        }
        self.cur = t;
    }

    /// Moves up to [`MOVE_PER_STEP`] entries from the old half to the new
    /// one; frees the old half when it is empty.
    #[inline]
    pub fn step(&mut self) {
        if self.migrating() {
            self.step_slow();
        }
    }

    #[cold]
    fn step_slow(&mut self) {
        STEPS.with(|s| s.set(s.get() + 1));
        let end = self.old.num_buckets().min(self.next + SCAN_PER_STEP);
        let mut moved = 0;
        while self.next < end && moved < MOVE_PER_STEP {
            if let Ok(o) = self.old.get_bucket_entry(self.next) {
                let (e, _) = o.remove();
                self.cur.insert_unique(rehash(&e), e, rehash);
                moved += 1;
            }
            self.next += 1;
        }
        if self.old.is_empty() {
            self.finish();
        }
    }

    /// Ends a migration: releases the old half's memory.
    fn finish(&mut self) {
        self.old = HashTable::new();
        self.next = 0;
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        *self = KeyTable::default();
    }

    /// Keeps only the entries for which `f` returns true.
    pub fn retain(&mut self, mut f: impl FnMut(&mut Entry) -> bool) {
        self.cur.retain(&mut f);
        if self.migrating() {
            self.old.retain(&mut f);
            if self.old.is_empty() {
                self.finish();
            }
        }
    }

    /// Removes the entries for which `pred` is true and hands each to
    /// `sink` (which may free it elsewhere, e.g. the lazyfree thread).
    pub fn remove_where(
        &mut self,
        mut pred: impl FnMut(&Entry) -> bool,
        mut sink: impl FnMut(Entry),
    ) {
        for e in self.cur.extract_if(|e| pred(e)) {
            sink(e);
        }
        if self.migrating() {
            for e in self.old.extract_if(|e| pred(e)) {
                sink(e);
            }
            if self.old.is_empty() {
                self.finish();
            }
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.cur.iter().chain(self.old.iter())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.cur.iter_mut().chain(self.old.iter_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::entry::{Str, Value};

    fn entry(k: &[u8]) -> Entry {
        Entry::new_full(k, Value::Str(Str::from_bytes(b"v")), None, 0)
    }

    fn find<'a>(t: &'a KeyTable, k: &[u8]) -> Option<&'a Entry> {
        t.find(key_hash(k), |e| e.key() == k)
    }

    #[test]
    fn grows_incrementally_and_keeps_every_key() {
        let mut t = KeyTable::default();
        let mut saw_migration = false;
        let mut max_old = 0;
        for i in 0..20_000u32 {
            let k = format!("key:{i}");
            t.insert_new(key_hash(k.as_bytes()), entry(k.as_bytes()));
            saw_migration |= t.migrating();
            max_old = max_old.max(t.old.len());
            if i % 997 == 0 {
                for j in (0..=i).step_by(37) {
                    let k = format!("key:{j}");
                    assert!(find(&t, k.as_bytes()).is_some(), "lost {k} at {i}");
                }
            }
        }
        assert!(saw_migration);
        assert_eq!(t.len(), 20_000);
        assert_eq!(t.iter().count(), 20_000);
        // The new half never needed a resize of its own: each migration
        // was over long before the new half filled.
        assert!(t.cur.capacity() >= t.cur.len());
        assert!(max_old > 1000);
    }

    #[test]
    fn remove_and_retain_during_a_migration() {
        let mut t = KeyTable::default();
        let mut i = 0u32;
        // Fill until a migration starts.
        while !t.migrating() || t.old.len() < 100 {
            let k = format!("k{i}");
            t.insert_new(key_hash(k.as_bytes()), entry(k.as_bytes()));
            i += 1;
            assert!(i < 100_000);
        }
        let n = i;
        // Remove keys from both halves.
        for j in (0..n).step_by(3) {
            let k = format!("k{j}");
            assert!(t
                .remove(key_hash(k.as_bytes()), |e| e.key() == k.as_bytes())
                .is_some());
        }
        for j in 0..n {
            let k = format!("k{j}");
            assert_eq!(find(&t, k.as_bytes()).is_some(), j % 3 != 0, "{k}");
        }
        t.retain(|e| e.key().len() % 2 == 0);
        assert!(t.iter().all(|e| e.key().len() % 2 == 0));
        let want = (0..n)
            .filter(|j| j % 3 != 0 && format!("k{j}").len() % 2 == 0)
            .count();
        assert_eq!(t.len(), want);
        while t.migrating() {
            t.step();
        }
        assert_eq!(t.iter().count(), want);
        t.clear();
        assert!(t.is_empty());
    }
}
