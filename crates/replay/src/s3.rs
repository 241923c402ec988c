//! The adaptive S3-FIFO engine as lodestone runs it, for simulation.
//!
//! This mirrors `crates/lodestone/src/keyspace/s3fifo.rs` and
//! `Shard::s3_evict_one` decision for decision (the server's unit test
//! `s3fifo_matches_the_simulator` replays one trace through both and
//! requires the same hits), so the simulated numbers are the server's.
//!
//! S3-FIFO (Yang et al., SOSP '23): new keys enter a small FIFO; the small
//! queue's head moves to the main queue if it was read while queued, else it
//! leaves and is remembered in a ghost FIFO; a key inserted while remembered
//! goes straight to main. Main is a CLOCK over a 2-bit frequency (at most
//! [`MAX_FREQ`]). Two changes make it adapt to recency-heavy phases such as
//! a shifting hot set:
//! - the ghost also remembers keys evicted from main, with their origin;
//! - the small queue's share moves like ARC's target: a ghost hit on a key
//!   the small queue dropped grows it, one on a key main dropped shrinks it,
//!   each by [`STEP_PPM`] times the ratio of the other origin's ghosts to
//!   this origin's (so the rarer signal weighs more), between one key and
//!   [`SMALL_MAX_PPM`].

use crate::workload::Request;
use std::collections::{HashMap, VecDeque};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn new_map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x53))
}

/// Shares are in parts per million of the cache's object count.
pub const PPM: u64 = 1_000_000;
/// The small queue's initial share (10%, the paper's).
pub const SMALL_INIT_PPM: u64 = 100_000;
/// The small queue's largest share.
pub const SMALL_MAX_PPM: u64 = 900_000;
/// How far one ghost hit moves the small queue's share (before the ratio).
pub const STEP_PPM: u64 = 2_000;
/// Ghosts remembered, as a percentage of the cache's object count.
pub const GHOST_PCT: usize = 75;
/// The frequency saturates here: a key left alone survives at most
/// MAX_FREQ + 1 passes of the main CLOCK.
pub const MAX_FREQ: u8 = 2;

/// The small queue's target length for a cache of `len` objects.
pub fn small_target(len: usize, ppm: u64) -> usize {
    ((len as u64 * ppm / PPM) as usize).max(1)
}

/// The ghost queue's bound for a cache of `len` objects.
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

/// State shared by all shards of one cache (process-wide in the server):
/// queue slot counts, the small queue's share, ghost counts per origin and
/// the insertion clock that orders queue slots across shards.
#[derive(Debug)]
pub struct Global {
    /// Slots in all small queues / all main queues.
    pub small: usize,
    pub main: usize,
    /// The small queue's share of all slots, in ppm.
    pub ppm: u64,
    /// Ghosts remembered per origin [small, main], all shards.
    pub ghosts: [usize; 2],
    /// Next insertion number (queue slots carry theirs, 32 bits, wrapping).
    pub seq: u32,
}

impl Default for Global {
    fn default() -> Global {
        Global {
            small: 0,
            main: 0,
            ppm: SMALL_INIT_PPM,
            ghosts: [0, 0],
            seq: 0,
        }
    }
}

impl Global {
    /// Whether the next pop comes from the small queues.
    pub fn pop_small(&self) -> bool {
        self.small >= small_target(self.small + self.main, self.ppm) || self.main == 0
    }

    fn tick(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }
}

/// How long ago (in insertions) a slot stamped `seq` was queued.
pub fn age(now: u32, seq: u32) -> u32 {
    now.wrapping_sub(seq)
}

/// One shard's queues and objects.
pub struct Engine {
    small: VecDeque<(u64, u32)>,
    main: VecDeque<(u64, u32)>,
    /// id -> (frequency, in main)
    objs: Map<u64, (u8, bool)>,
    ghost: VecDeque<(u64, u64)>,
    /// id -> (sequence number in `ghost`, evicted from main)
    ghost_ids: Map<u64, (u64, bool)>,
    ghost_seq: u64,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            small: VecDeque::new(),
            main: VecDeque::new(),
            objs: new_map(),
            ghost: VecDeque::new(),
            ghost_ids: new_map(),
            ghost_seq: 0,
        }
    }
}

/// What one pop did.
#[derive(Debug, PartialEq)]
pub enum Pop {
    /// The queue was empty.
    Empty,
    /// The head was read while queued and moved (to main's tail).
    Moved,
    /// The head left the cache.
    Evicted(u64),
}

impl Engine {
    /// Objects held.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// A read: true (and the frequency counted) if `id` is held.
    pub fn hit(&mut self, id: u64) -> bool {
        match self.objs.get_mut(&id) {
            Some(e) => {
                e.0 = (e.0 + 1).min(MAX_FREQ);
                true
            }
            None => false,
        }
    }

    /// Admits `id` (not held): to main if remembered by the ghost (adapting
    /// the small queue's share), else to small.
    pub fn insert(&mut self, id: u64, g: &mut Global) {
        let seq = g.tick();
        if let Some((_, from_main)) = self.ghost_ids.remove(&id) {
            g.ghosts[from_main as usize] -= 1;
            g.ppm = adapt(g.ppm, from_main, g.ghosts);
            self.objs.insert(id, (0, true));
            self.main.push_back((id, seq));
            g.main += 1;
        } else {
            self.objs.insert(id, (0, false));
            self.small.push_back((id, seq));
            g.small += 1;
        }
    }

    /// The insertion number of the head of the small or main queue.
    pub fn head(&self, small: bool) -> Option<u32> {
        let q = if small { &self.small } else { &self.main };
        q.front().map(|s| s.1)
    }

    fn ghost_add(&mut self, id: u64, from_main: bool, cap: usize, g: &mut Global) {
        self.ghost_seq += 1;
        self.ghost.push_back((id, self.ghost_seq));
        self.ghost_ids.insert(id, (self.ghost_seq, from_main));
        g.ghosts[from_main as usize] += 1;
        while self.ghost_ids.len() > cap {
            let Some((old, seq)) = self.ghost.pop_front() else {
                break;
            };
            if self.ghost_ids.get(&old).map(|x| x.0) == Some(seq) {
                let (_, m) = self.ghost_ids.remove(&old).expect("present");
                g.ghosts[m as usize] -= 1;
            }
        }
        // Readmitted ghosts leave stale queue slots; compact them.
        if self.ghost.len() > 2 * cap + 16 {
            let ids = &self.ghost_ids;
            self.ghost
                .retain(|(id, seq)| ids.get(id).map(|x| x.0) == Some(*seq));
        }
    }

    /// Pops the head of the small (`small`) or main queue: a key read while
    /// queued moves to main's tail (from small with its frequency reset,
    /// from main with it lowered by one); any other leaves the cache and
    /// is remembered in this shard's ghost (at most `ghost_cap` ghosts).
    pub fn pop(&mut self, small: bool, ghost_cap: usize, g: &mut Global) -> Pop {
        let q = if small {
            &mut self.small
        } else {
            &mut self.main
        };
        let Some((id, _)) = q.pop_front() else {
            return Pop::Empty;
        };
        if small {
            g.small -= 1;
        } else {
            g.main -= 1;
        }
        let e = self.objs.get_mut(&id).expect("queued object");
        if e.0 > 0 {
            *e = if small { (0, true) } else { (e.0 - 1, true) };
            let seq = g.tick();
            self.main.push_back((id, seq));
            g.main += 1;
            return Pop::Moved;
        }
        self.objs.remove(&id);
        self.ghost_add(id, !small, ghost_cap, g);
        Pop::Evicted(id)
    }

    #[cfg(test)]
    fn check(&self) {
        assert_eq!(self.small.len() + self.main.len(), self.objs.len());
        assert_eq!(self.main.len(), self.objs.values().filter(|e| e.1).count());
        assert!(self.objs.values().all(|e| e.0 <= MAX_FREQ));
        assert!(self.ghost_ids.keys().all(|g| !self.objs.contains_key(g)));
    }
}

/// Lodestone's engine: `shards` independent queues (a key's shard from a
/// hash of its id) under one [`Global`]. Each pop takes the head that was
/// queued longest ago among the next `samples` shards (round-robin) whose
/// chosen queue is not empty, so many small shards behave like one cache.
pub struct Sharded {
    cap: usize,
    shards: Vec<Engine>,
    g: Global,
    samples: usize,
    cursor: usize,
    evicted: u64,
}

impl Sharded {
    /// An empty cache of `cap` objects over `shards` shards.
    pub fn new(cap: usize, shards: usize, samples: usize) -> Sharded {
        Sharded {
            cap: cap.max(1),
            shards: (0..shards.max(1)).map(|_| Engine::default()).collect(),
            g: Global::default(),
            samples: samples.max(1),
            cursor: 0,
            evicted: 0,
        }
    }

    fn shard(&self, id: u64) -> usize {
        ((id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % self.shards.len() as u64) as usize
    }

    fn len(&self) -> usize {
        self.g.small + self.g.main
    }

    /// Evicts one object (None when empty).
    pub fn evict_one(&mut self) -> Option<u64> {
        let n = self.shards.len();
        let gcap = ghost_cap(self.len()).div_ceil(n).max(1);
        loop {
            if self.len() == 0 {
                return None;
            }
            let small = self.g.pop_small();
            let mut best: Option<(u32, usize)> = None;
            let mut seen = 0;
            for _ in 0..n {
                let i = self.cursor % n;
                self.cursor = i + 1;
                if let Some(seq) = self.shards[i].head(small) {
                    let a = age(self.g.seq, seq);
                    if best.is_none_or(|b| a > b.0) {
                        best = Some((a, i));
                    }
                    seen += 1;
                    if seen >= self.samples {
                        break;
                    }
                }
            }
            let (_, i) = best.expect("a non-empty queue");
            if let Pop::Evicted(id) = self.shards[i].pop(small, gcap, &mut self.g) {
                self.evicted += 1;
                return Some(id);
            }
        }
    }
}

impl crate::sim::Policy for Sharded {
    fn access(&mut self, req: Request, _t: u64) -> bool {
        let s = self.shard(req.id);
        if self.shards[s].hit(req.id) {
            return true;
        }
        while self.len() >= self.cap {
            self.evict_one();
        }
        self.shards[s].insert(req.id, &mut self.g);
        false
    }
    fn len(&self) -> usize {
        self.g.small + self.g.main
    }
    fn evictions(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Policy;
    use proptest::prelude::*;

    #[test]
    fn adapt_moves_the_share_by_the_ghost_ratio() {
        // Equal ghosts: one step either way.
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
        // Bounds.
        assert_eq!(adapt(1, true, [1, 1]), 0);
        assert_eq!(adapt(SMALL_MAX_PPM, false, [0, 9]), SMALL_MAX_PPM);
        assert_eq!(small_target(10, 0), 1);
        assert_eq!(small_target(1000, SMALL_INIT_PPM), 100);
    }

    #[test]
    fn victims_by_hand() {
        // One shard of 10: small target 1. 1 is read; room for 11 moves 1
        // to main and evicts 2 (not read), remembered as a small ghost.
        let mut c = Sharded::new(10, 1, 1);
        for id in 1..=10 {
            c.access(Request { id, size: 1 }, id);
        }
        assert!(c.shards[0].hit(1));
        assert_eq!(c.evict_one(), Some(2));
        assert_eq!(c.g.ghosts, [1, 0]);
        // 2 comes back: straight to main, and the small share grows.
        c.shards[0].insert(2, &mut c.g);
        assert!(c.g.ppm > SMALL_INIT_PPM);
        assert!(c.shards[0].objs[&2].1 && c.shards[0].objs[&1].1);
        c.shards[0].check();

        // Main is a CLOCK: 1 and 2 were read in small (promoted, frequency
        // reset), then 1 is read three times (saturating), 2 once.
        let mut c = Sharded::new(3, 1, 1);
        for id in 1..=3 {
            c.access(Request { id, size: 1 }, id);
        }
        c.shards[0].hit(1);
        c.shards[0].hit(2);
        assert_eq!(c.evict_one(), Some(3));
        for _ in 0..3 {
            c.shards[0].hit(1);
        }
        c.shards[0].hit(2);
        assert_eq!(c.shards[0].objs[&1], (MAX_FREQ, true));
        // 1: 2 -> 1, 2: 1 -> 0, 1: 1 -> 0, then 2 goes.
        assert_eq!(c.evict_one(), Some(2));
        assert_eq!(c.g.ghosts, [0, 1], "3's ghost made room (75% of 2 keys)");
        // A main ghost coming back shrinks the small share.
        c.shards[0].insert(2, &mut c.g);
        assert!(c.g.ppm < SMALL_INIT_PPM);
        assert_eq!(c.evict_one(), Some(1));
        assert_eq!(c.evict_one(), Some(2));
        assert_eq!(c.evict_one(), None);
    }

    #[test]
    fn the_oldest_head_goes_first_across_shards() {
        // Four shards, all sampled: keys leave in insertion order (none read).
        let mut c = Sharded::new(100, 4, 4);
        for id in 0..50 {
            c.access(Request { id, size: 1 }, id);
        }
        for id in 0..50 {
            assert_eq!(c.evict_one(), Some(id));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn invariants(ids in prop::collection::vec(0u64..80, 1..800), cap in 1usize..50) {
            let mut c = Sharded::new(cap, 3, 2);
            for (t, &id) in ids.iter().enumerate() {
                c.access(Request { id, size: 1 }, t as u64);
                prop_assert!(Policy::len(&c) <= cap);
                let mut ghosts = 0;
                for sh in &c.shards {
                    sh.check();
                    ghosts += sh.ghost_ids.len();
                }
                prop_assert_eq!(c.g.ghosts[0] + c.g.ghosts[1], ghosts);
                prop_assert_eq!(c.g.small + c.g.main, c.shards.iter().map(|s| s.len()).sum::<usize>());
                prop_assert!(c.g.ppm <= SMALL_MAX_PPM);
            }
        }

    }
}
