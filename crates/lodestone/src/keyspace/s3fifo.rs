//! The adaptive S3-FIFO eviction engine in the keyspace: per-shard queues,
//! one global state.
//!
//! The engine itself (queues, ghost, the adaptive small share) is the
//! `s3fifo` crate, which the simulator (`crates/replay/src/s3.rs`) runs
//! too; the test `s3fifo_matches_the_simulator` in `keyspace/evict.rs`
//! checks that both reach the same hit ratio on one trace.
//!
//! The keyspace is split in shards, each with its own queue pair (pushing
//! a new key only touches its shard's lock). What makes the shards act as
//! one cache is [`GLOBAL`]: the queue sizes, the small share and the ghost
//! are process-wide, and every queue slot carries a global insertion
//! number, so the evictor pops the head queued longest ago among a few
//! sampled shards (`Evictor::evict_s3`).
//!
//! Per key: the 2-bit frequency and the queue bit live in the entry's tag
//! byte; the queue slot is 8 bytes (in a ring sized to fit, or 256-byte
//! chunks past 32 slots, see `s3fifo::Queue`): the insertion
//! number and a 32-bit reference to the key ([`slot_key`]: the low 25 bits
//! and the top 7 bits of its table hash, enough to find it in the shard's
//! table, whose buckets are found by the low bits and tagged with the top
//! 7); a ghost is a 32-bit fingerprint in the global ghost table (~4.3 B
//! each, 0.75 per key). The ghost is not per database: a key evicted from
//! one database is remembered for a key of the same name in another.
//! A slot whose key was deleted or moved stays until popped (skipped then)
//! or until the shard compacts its queues.

pub use s3fifo::{age, ghost_cap, Global, MAX_FREQ};

/// The one [`Global`].
pub static GLOBAL: Global = Global::new();

/// Back to an empty engine state (the policy switched on or off): the
/// initial small share, no ghosts (their table freed).
pub fn reset() {
    GLOBAL.reset_share();
    GLOBAL.clear_ghosts();
}

/// Low key-hash bits kept in a slot (tables of up to 2^25 buckets per
/// shard: ~30 million keys in one shard).
const LOW_BITS: u32 = 25;

/// A queue slot's reference to a key of table hash `h`: its low
/// [`LOW_BITS`] bits and its top 7 bits.
#[inline]
pub fn slot_key(h: u64) -> u32 {
    (h as u32 & ((1 << LOW_BITS) - 1)) | ((h >> 57) as u32) << LOW_BITS
}

/// A hash that probes the table like the key's own: the low bits choose
/// the bucket, the top 7 bits its tag.
#[inline]
pub fn probe_hash(k: u32) -> u64 {
    (k & ((1 << LOW_BITS) - 1)) as u64 | ((k >> LOW_BITS) as u64) << 57
}

/// One shard's queues. Created when an S3-FIFO policy is active; dropping
/// it takes its slots out of [`GLOBAL`].
#[derive(Default)]
pub struct S3Fifo {
    q: s3fifo::Queues<u32>,
}

impl S3Fifo {
    /// Queues a key of table hash `h` at the tail of main or small.
    #[inline]
    pub fn push(&mut self, main: bool, h: u64) {
        self.q.push(&GLOBAL, main, slot_key(h));
    }

    /// Queues slot key `k` (popped from a queue) again at main's tail.
    #[inline]
    pub fn requeue(&mut self, k: u32) {
        self.q.push(&GLOBAL, true, k);
    }

    /// Takes the head slot of main or small (its [`slot_key`]).
    pub fn pop(&mut self, main: bool) -> Option<u32> {
        self.q.pop(&GLOBAL, main)
    }

    /// The head slot of main or small: (slot key, insertion number).
    pub fn head(&self, main: bool) -> Option<(u32, u32)> {
        self.q.head(main)
    }

    /// Slots in (small, main).
    pub fn slots(&self) -> (usize, usize) {
        self.q.slots()
    }

    /// Keeps only the slots of one queue for which `keep` holds.
    pub fn retain(&mut self, main: bool, keep: impl FnMut(u32) -> bool) {
        self.q.retain(&GLOBAL, main, keep)
    }

    /// If a key with this table hash was evicted recently, forgets it and
    /// returns true (the key belongs in main). The ghost remembers slot
    /// keys (so evicting needs no hash of the key).
    #[inline]
    pub fn take_ghost(&mut self, h: u64) -> bool {
        GLOBAL.take_ghost(probe_hash(slot_key(h)))
    }

    /// Remembers the key of slot `k` evicted from main (`from_main`) or
    /// small.
    pub fn push_ghost(k: u32, from_main: bool) {
        GLOBAL.push_ghost(probe_hash(k), from_main)
    }

    /// Heap bytes held by the queues (the ghost is counted once, see
    /// [`Global::ghost_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<S3Fifo>() + self.q.heap_bytes()
    }
}

impl Drop for S3Fifo {
    fn drop(&mut self) {
        self.q.release(&GLOBAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_keys_probe_like_the_hash() {
        for h in [0u64, u64::MAX, 0x9e37_79b9_7f4a_7c15, 1 << 57 | 5] {
            let p = probe_hash(slot_key(h));
            assert_eq!(p >> 57, h >> 57, "same tag");
            assert_eq!(p & ((1 << LOW_BITS) - 1), h & ((1 << LOW_BITS) - 1));
            assert_eq!(slot_key(p), slot_key(h));
        }
    }

    #[test]
    fn queues_count_in_global() {
        // No other test queues keys while the policy is not S3-FIFO.
        let _g = crate::keyspace::shard::POLICY_LOCK.lock();
        crate::keyspace::lru::configure(crate::keyspace::lru::Policy::NoEviction, 10, 1);
        let before = GLOBAL.stats();
        let mut q = S3Fifo::default();
        q.push(false, 7);
        q.push(true, 8);
        assert_eq!(q.head(false).map(|s| s.0), Some(slot_key(7)));
        let after = GLOBAL.stats();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
        // The queue pair and a ring of 4 slots each.
        assert_eq!(q.heap_bytes(), 48 + 2 * 32);
        drop(q);
        let end = GLOBAL.stats();
        assert_eq!((end.0, end.1), (before.0, before.1));
    }
}
