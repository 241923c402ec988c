//! The adaptive S3-FIFO eviction engine: per-shard queues, one global state.
//!
//! S3-FIFO (Yang et al., SOSP '23) keeps a small FIFO where new keys land,
//! a main FIFO run as a CLOCK, and a ghost FIFO of recently evicted keys.
//! The small queue's head moves to main if it was read while queued, else
//! it leaves (remembered by the ghost); a key inserted while remembered
//! goes straight to main. Main re-queues a key with a nonzero frequency
//! (lowering it) and evicts one at zero. Scans and one-hit keys pass
//! through the small queue without disturbing main.
//!
//! Lodestone's version adapts to recency-heavy phases (a hot set that
//! shifts), where the paper's fixed 10% small queue loses to LRU:
//! - the ghost remembers keys evicted from main too, with their origin;
//! - the small queue's share moves like ARC's target: a ghost hit on a key
//!   the small queue dropped grows it, one on a key main dropped shrinks
//!   it, by [`STEP_PPM`] times the ratio of the other origin's ghosts to
//!   this one's, between one key and [`SMALL_MAX_PPM`];
//! - the frequency saturates at [`MAX_FREQ`] (2), so keys no longer read
//!   leave main after three CLOCK passes.
//!
//! The keyspace is split in shards, each with its own queues (pushing a
//! new key only touches its shard's lock). What makes the shards act as one
//! cache is [`Global`]: the queue sizes, the small share and the ghost
//! counts are global, and every queue slot carries a global insertion
//! number, so the evictor pops the head queued longest ago among a few
//! sampled shards (`Evictor::evict_s3`). The simulator's copy of this
//! engine (`crates/replay/src/s3.rs`) makes the same decisions; the test
//! `s3fifo_matches_the_simulator` in `keyspace/evict.rs` checks that both
//! reach the same hit ratio on one trace.
//!
//! Per key: the 2-bit frequency and the queue bit live in the entry's tag
//! byte; the queue slot is the table's 64-bit key hash plus the 32-bit
//! insertion number (12 B, no allocation per key); a ghost is a 32-bit
//! fingerprint (its low bit the origin) in a ring and a counted set.
//! A slot whose key was deleted or moved stays until popped (skipped then)
//! or until the shard compacts its queues.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Shares are in parts per million of the queued keys.
pub const PPM: u64 = 1_000_000;
/// The small queue's initial share (the paper's 10%).
pub const SMALL_INIT_PPM: u64 = 100_000;
/// The small queue's largest share.
pub const SMALL_MAX_PPM: u64 = 900_000;
/// How far one ghost hit moves the small queue's share (before the ratio).
pub const STEP_PPM: u64 = 2_000;
/// Ghosts remembered, as a percentage of the queued keys.
pub const GHOST_PCT: usize = 75;
/// Where the per-key frequency saturates.
pub const MAX_FREQ: u8 = 2;

/// The small queue's target length when `len` keys are queued.
pub fn small_target(len: usize, ppm: u64) -> usize {
    ((len as u64 * ppm / PPM) as usize).max(1)
}

/// The ghost bound when `len` keys are queued.
pub fn ghost_cap(len: usize) -> usize {
    (len * GHOST_PCT / 100).max(1)
}

/// The small queue's new share after a ghost hit. `from_main`: the key had
/// been evicted from main; `ghosts`: ghosts left per origin [small, main].
pub fn adapt(ppm: u64, from_main: bool, ghosts: [usize; 2]) -> u64 {
    let (gs, gm) = (ghosts[0].max(1) as u64, ghosts[1].max(1) as u64);
    if from_main {
        ppm.saturating_sub(STEP_PPM * (gs / gm).max(1))
    } else {
        (ppm + STEP_PPM * (gm / gs).max(1)).min(SMALL_MAX_PPM)
    }
}

/// How long ago, in insertions, a slot stamped `seq` was queued.
#[inline]
pub fn age(now: u32, seq: u32) -> u32 {
    now.wrapping_sub(seq)
}

/// The engine's process-wide state (maxmemory is process-wide too). Plain
/// relaxed atomics: the figures steer eviction, exactness is not needed.
pub struct Global {
    /// Slots in all small queues / all main queues (stale ones included).
    small: AtomicUsize,
    main: AtomicUsize,
    /// The small queue's share of all slots, in ppm.
    ppm: AtomicU64,
    /// Ghosts remembered per origin [small, main], all shards.
    ghosts: [AtomicUsize; 2],
    /// The insertion clock (wrapping).
    seq: AtomicU32,
}

/// The one [`Global`].
pub static GLOBAL: Global = Global {
    small: AtomicUsize::new(0),
    main: AtomicUsize::new(0),
    ppm: AtomicU64::new(SMALL_INIT_PPM),
    ghosts: [AtomicUsize::new(0), AtomicUsize::new(0)],
    seq: AtomicU32::new(0),
};

impl Global {
    /// Whether the next pop should come from the small queues.
    pub fn pop_small(&self) -> bool {
        let (s, m) = (self.small.load(Relaxed), self.main.load(Relaxed));
        s >= small_target(s + m, self.ppm.load(Relaxed)) || m == 0
    }

    /// Slots queued in all shards.
    pub fn len(&self) -> usize {
        self.small.load(Relaxed) + self.main.load(Relaxed)
    }

    /// The current insertion number.
    pub fn now(&self) -> u32 {
        self.seq.load(Relaxed)
    }

    /// (small slots, main slots, small share ppm, small ghosts, main ghosts)
    /// for INFO and tests.
    pub fn stats(&self) -> (usize, usize, u64, usize, usize) {
        (
            self.small.load(Relaxed),
            self.main.load(Relaxed),
            self.ppm.load(Relaxed),
            self.ghosts[0].load(Relaxed),
            self.ghosts[1].load(Relaxed),
        )
    }

    /// Back to the initial share (policy switched on, FLUSHALL of everything).
    pub fn reset_share(&self) {
        self.ppm.store(SMALL_INIT_PPM, Relaxed);
    }

    fn tick(&self) -> u32 {
        self.seq.fetch_add(1, Relaxed).wrapping_add(1)
    }

    fn count(&self, main: bool) -> &AtomicUsize {
        if main {
            &self.main
        } else {
            &self.small
        }
    }
}

/// The ghost queue's fingerprint of a key hash, the low bit left for the
/// origin.
#[inline]
pub fn fingerprint(h: u64) -> u32 {
    ((h >> 32) as u32 ^ h as u32) & !1
}

/// One FIFO of slots: key hashes and their insertion numbers.
#[derive(Default)]
struct Fifo {
    h: VecDeque<u64>,
    seq: VecDeque<u32>,
}

/// One shard's queues. Created when an S3-FIFO policy is active; dropping
/// it takes its slots and ghosts out of [`GLOBAL`].
#[derive(Default)]
pub struct S3Fifo {
    small: Fifo,
    main: Fifo,
    ghost: VecDeque<u32>,
    /// Fingerprint (with origin bit) -> copies remembered.
    ghost_set: hashbrown::HashMap<u32, u16>,
    /// Ghosts remembered (the sum of `ghost_set`'s counts).
    ghost_live: usize,
}

impl S3Fifo {
    fn fifo(&mut self, main: bool) -> &mut Fifo {
        if main {
            &mut self.main
        } else {
            &mut self.small
        }
    }

    /// Queues a key hash at the tail of main or small.
    pub fn push(&mut self, main: bool, h: u64) {
        let seq = GLOBAL.tick();
        let q = self.fifo(main);
        q.h.push_back(h);
        q.seq.push_back(seq);
        GLOBAL.count(main).fetch_add(1, Relaxed);
    }

    /// Takes the head slot of main or small.
    pub fn pop(&mut self, main: bool) -> Option<u64> {
        let q = self.fifo(main);
        let h = q.h.pop_front()?;
        q.seq.pop_front();
        GLOBAL.count(main).fetch_sub(1, Relaxed);
        Some(h)
    }

    /// The head slot of main or small: (hash, insertion number).
    pub fn head(&self, main: bool) -> Option<(u64, u32)> {
        let q = if main { &self.main } else { &self.small };
        Some((*q.h.front()?, *q.seq.front()?))
    }

    /// Slots in (small, main).
    pub fn slots(&self) -> (usize, usize) {
        (self.small.h.len(), self.main.h.len())
    }

    /// Keeps only the slots of one queue for which `keep` holds.
    pub fn retain(&mut self, main: bool, mut keep: impl FnMut(u64) -> bool) {
        let q = self.fifo(main);
        let before = q.h.len();
        let (mut h, mut seq) = (VecDeque::new(), VecDeque::new());
        for (x, s) in q.h.drain(..).zip(q.seq.drain(..)) {
            if keep(x) {
                h.push_back(x);
                seq.push_back(s);
            }
        }
        let gone = before - h.len();
        *q = Fifo { h, seq };
        GLOBAL.count(main).fetch_sub(gone, Relaxed);
    }

    /// If a key with this hash was evicted recently, forgets it, moves the
    /// global small share accordingly and returns true (the key belongs
    /// in main).
    pub fn take_ghost(&mut self, h: u64) -> bool {
        let f = fingerprint(h);
        for origin in [0, 1] {
            let fo = f | origin;
            if let Some(n) = self.ghost_set.get_mut(&fo) {
                *n -= 1;
                if *n == 0 {
                    self.ghost_set.remove(&fo);
                }
                self.ghost_live -= 1;
                GLOBAL.ghosts[origin as usize].fetch_sub(1, Relaxed);
                let ghosts = [
                    GLOBAL.ghosts[0].load(Relaxed),
                    GLOBAL.ghosts[1].load(Relaxed),
                ];
                let ppm = GLOBAL.ppm.load(Relaxed);
                GLOBAL.ppm.store(adapt(ppm, origin == 1, ghosts), Relaxed);
                return true;
            }
        }
        false
    }

    /// Remembers a key evicted from main (`from_main`) or small, keeping at
    /// most `cap` ghosts in this shard.
    pub fn push_ghost(&mut self, h: u64, from_main: bool, cap: usize) {
        let f = fingerprint(h) | from_main as u32;
        self.ghost.push_back(f);
        *self.ghost_set.entry(f).or_insert(0) += 1;
        self.ghost_live += 1;
        GLOBAL.ghosts[from_main as usize].fetch_add(1, Relaxed);
        while self.ghost_live > cap.max(1) {
            let Some(old) = self.ghost.pop_front() else {
                break;
            };
            // A fingerprint may already have been taken by an insert.
            if let Some(n) = self.ghost_set.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.ghost_set.remove(&old);
                }
                self.ghost_live -= 1;
                GLOBAL.ghosts[(old & 1) as usize].fetch_sub(1, Relaxed);
            }
        }
        // Taken ghosts leave stale ring slots; drop them now and then.
        if self.ghost.len() > 2 * cap + 16 {
            let set = &self.ghost_set;
            self.ghost.retain(|f| set.contains_key(f));
        }
    }

    /// Ghosts remembered by this shard.
    pub fn ghost_len(&self) -> usize {
        self.ghost_live
    }

    /// Heap bytes held by the queues (for the per-key overhead figure).
    pub fn heap_bytes(&self) -> usize {
        (self.small.h.capacity() + self.main.h.capacity()) * 8
            + (self.small.seq.capacity() + self.main.seq.capacity()) * 4
            + self.ghost.capacity() * 4
            + self.ghost_set.capacity() * 7
    }
}

impl Drop for S3Fifo {
    fn drop(&mut self) {
        GLOBAL.small.fetch_sub(self.small.h.len(), Relaxed);
        GLOBAL.main.fetch_sub(self.main.h.len(), Relaxed);
        for (f, n) in self.ghost_set.drain() {
            GLOBAL.ghosts[(f & 1) as usize].fetch_sub(n as usize, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapt_moves_the_share_by_the_ghost_ratio() {
        assert_eq!(
            adapt(SMALL_INIT_PPM, false, [5, 5]),
            SMALL_INIT_PPM + STEP_PPM
        );
        assert_eq!(
            adapt(SMALL_INIT_PPM, true, [5, 5]),
            SMALL_INIT_PPM - STEP_PPM
        );
        // Ten small ghosts per main ghost: a main-ghost hit weighs ten steps.
        assert_eq!(
            adapt(SMALL_INIT_PPM, true, [10, 1]),
            SMALL_INIT_PPM - 10 * STEP_PPM
        );
        assert_eq!(
            adapt(SMALL_INIT_PPM, false, [10, 1]),
            SMALL_INIT_PPM + STEP_PPM
        );
        assert_eq!(adapt(1, true, [1, 1]), 0);
        assert_eq!(adapt(SMALL_MAX_PPM, false, [0, 9]), SMALL_MAX_PPM);
        assert_eq!(small_target(10, 0), 1);
        assert_eq!(small_target(1000, SMALL_INIT_PPM), 100);
        assert_eq!(age(5, u32::MAX), 6, "the clock wraps");
    }

    #[test]
    fn ghost_is_a_bounded_fifo_with_origin() {
        // No other test queues keys while the policy is not S3-FIFO.
        let _g = crate::keyspace::shard::POLICY_LOCK.lock();
        crate::keyspace::lru::configure(crate::keyspace::lru::Policy::NoEviction, 10, 1);
        let mut q = S3Fifo::default();
        for h in 1..=5u64 {
            q.push_ghost(h << 40 | h << 1, h == 4, 3);
        }
        assert_eq!(q.ghost_len(), 3);
        assert!(!q.take_ghost(1 << 40 | 2));
        assert!(!q.take_ghost(2 << 40 | 4));
        let ppm = GLOBAL.ppm.load(Relaxed);
        assert!(q.take_ghost(3 << 40 | 6));
        assert!(GLOBAL.ppm.load(Relaxed) > ppm, "a small ghost grows small");
        assert!(!q.take_ghost(3 << 40 | 6), "taking forgets");
        let ppm = GLOBAL.ppm.load(Relaxed);
        assert!(q.take_ghost(4 << 40 | 8));
        assert!(GLOBAL.ppm.load(Relaxed) < ppm, "a main ghost shrinks it");
        let before = GLOBAL.stats();
        q.push(false, 7);
        q.push(true, 8);
        assert_eq!(q.head(false).map(|s| s.0), Some(7));
        let after = GLOBAL.stats();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));
        assert_eq!(after.3 + after.4, before.3 + before.4);
        drop(q);
        let end = GLOBAL.stats();
        assert_eq!((end.0, end.1), (before.0, before.1));
        assert_eq!(end.3 + end.4 + 1, before.3 + before.4, "5's ghost left");
    }
}
