//! The adaptive S3-FIFO engine as lodestone runs it, for simulation.
//!
//! The queues, the ghost and the adaptive small share are the `s3fifo`
//! crate, the same code the server runs (`keyspace/s3fifo.rs`); this file
//! adds the object table and `Evictor::evict_s3`'s sampling of shard
//! heads (the server's unit test `s3fifo_matches_the_simulator` replays
//! one trace through both and requires the same hits), so the simulated
//! numbers are the server's. Ghost fingerprints come from a mix of the
//! object id (the server's from the key's table hash).
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

use crate::rng::mix64;
use crate::workload::Request;
use s3fifo::{age, Global, Queues, MAX_FREQ};
use std::collections::HashMap;

pub use s3fifo::{adapt, small_target, GHOST_PCT, PPM, SMALL_INIT_PPM, SMALL_MAX_PPM, STEP_PPM};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn new_map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x53))
}

/// The 64-bit hash an object's ghost fingerprint comes from (the server
/// uses the key's table hash).
fn ghost_hash(id: u64) -> u64 {
    mix64(id)
}

/// One shard's queues and objects.
pub struct Engine {
    q: Queues<u64>,
    /// id -> (frequency, in main)
    objs: Map<u64, (u8, bool)>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            q: Queues::default(),
            objs: new_map(),
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
    pub fn insert(&mut self, id: u64, g: &Global) {
        let main = g.take_ghost(ghost_hash(id));
        self.objs.insert(id, (0, main));
        self.q.push(g, main, id);
    }

    /// The insertion number of the head of the small or main queue.
    pub fn head(&self, small: bool) -> Option<u32> {
        self.q.head(!small).map(|s| s.1)
    }

    /// Pops the head of the small (`small`) or main queue: a key read while
    /// queued moves to main's tail (from small with its frequency reset,
    /// from main with it lowered by one); any other leaves the cache and
    /// is remembered in the ghost.
    pub fn pop(&mut self, small: bool, g: &Global) -> Pop {
        let Some(id) = self.q.pop(g, !small) else {
            return Pop::Empty;
        };
        let e = self.objs.get_mut(&id).expect("queued object");
        if e.0 > 0 {
            *e = if small { (0, true) } else { (e.0 - 1, true) };
            self.q.push(g, true, id);
            return Pop::Moved;
        }
        self.objs.remove(&id);
        g.push_ghost(ghost_hash(id), !small);
        Pop::Evicted(id)
    }

    #[cfg(test)]
    fn check(&self) {
        let (s, m) = self.q.slots();
        assert_eq!(s + m, self.objs.len());
        assert_eq!(m, self.objs.values().filter(|e| e.1).count());
        assert!(self.objs.values().all(|e| e.0 <= MAX_FREQ));
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
        self.g.len()
    }

    /// Evicts one object (None when empty).
    pub fn evict_one(&mut self) -> Option<u64> {
        let n = self.shards.len();
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
                    let a = age(self.g.now(), seq);
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
            if let Pop::Evicted(id) = self.shards[i].pop(small, &self.g) {
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
        self.shards[s].insert(req.id, &self.g);
        false
    }
    fn len(&self) -> usize {
        self.g.len()
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
    fn victims_by_hand() {
        // One shard of 10: small target 1. 1 is read; room for 11 moves 1
        // to main and evicts 2 (not read), remembered as a small ghost.
        let mut c = Sharded::new(10, 1, 1);
        for id in 1..=10 {
            c.access(Request { id, size: 1 }, id);
        }
        assert!(c.shards[0].hit(1));
        assert_eq!(c.evict_one(), Some(2));
        assert_eq!(c.g.ghosts(), [1, 0]);
        // 2 comes back: straight to main, and the small share grows.
        c.shards[0].insert(2, &c.g);
        assert!(c.g.ppm() > SMALL_INIT_PPM);
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
        assert_eq!(c.g.ghosts(), [1, 1], "one bucket of 15 holds both");
        // A main ghost coming back shrinks the small share.
        c.shards[0].insert(2, &c.g);
        assert!(c.g.ppm() < SMALL_INIT_PPM);
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
                for sh in &c.shards {
                    sh.check();
                }
                let [gs, gm] = c.g.ghosts();
                prop_assert!(gs + gm <= c.g.ghost_bytes() / 64 * s3fifo::WAYS);
                prop_assert_eq!(c.g.len(), c.shards.iter().map(|s| s.len()).sum::<usize>());
                prop_assert!(c.g.ppm() <= SMALL_MAX_PPM);
            }
        }

    }
}
