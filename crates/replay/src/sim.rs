//! Eviction policies as pure simulations at a fixed object count: exact LRU,
//! Redis's sampled LRU and LFU (eviction pool of 16, log counter, decay),
//! random, S3-FIFO, and Belady's optimum (which reads the future) as the ceiling.
//!
//! Time: every request advances a logical clock by one. Redis keeps LRU
//! timestamps in seconds and LFU decay in minutes; `rate` (requests per second,
//! 0 = exact logical time) maps the clock onto those units so the simulation
//! can reproduce the coarseness a live server has at a given throughput.

use crate::rng::Rng;
use crate::workload::Request;
use std::collections::{BinaryHeap, HashMap, VecDeque};

type Map<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

fn new_map<K, V>() -> Map<K, V> {
    HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x10de))
}

/// Redis's eviction pool size (EVPOOL_SIZE).
const POOL: usize = 16;
/// Redis's initial LFU counter for a new key (LFU_INIT_VAL).
const LFU_INIT: u8 = 5;

/// A cache under simulation: one call per request, in trace order.
pub trait Policy {
    /// Looks `req` up at request index `t`; on a miss the object is admitted
    /// (evicting as needed) unless the policy decides to bypass it. True on a hit.
    fn access(&mut self, req: Request, t: u64) -> bool;
    /// Objects currently held.
    fn len(&self) -> usize;
    /// True when nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Objects evicted so far.
    fn evictions(&self) -> u64;
}

/// The policy names `sim --policy` accepts.
pub const POLICIES: &[&str] = &[
    "lru",
    "sampled-lru:5",
    "sampled-lru:10",
    "lfu:5",
    "lfu:10",
    "random",
    "s3fifo",
    "s3fifo-static",
    "s3fifo-sharded",
    "belady",
    "inf",
];

/// Builds a policy by name for `capacity` objects. Belady needs the whole
/// trace up front, so `trace` must be given for it.
pub fn build(
    name: &str,
    capacity: usize,
    seed: u64,
    rate: u64,
    trace: Option<&[Request]>,
) -> Result<Box<dyn Policy>, String> {
    let capacity = capacity.max(1);
    let samples = |s: &str| {
        s.parse::<usize>()
            .ok()
            .filter(|&n| (1..=64).contains(&n))
            .ok_or(format!("bad sample count in {name}"))
    };
    Ok(match name.split_once(':') {
        None if name == "lru" => Box::new(ExactLru::new(capacity)),
        None if name == "random" => Box::new(Sampled::new(capacity, Kind::Random, 1, seed, rate)),
        None if name == "s3fifo" => Box::new(crate::s3::Sharded::new(capacity, 1, 1)),
        None if name == "s3fifo-static" => Box::new(S3Fifo::new(capacity)),
        None if name == "s3fifo-sharded" => Box::new(crate::s3::Sharded::new(capacity, 1024, 5)),
        Some(("s3fifo-sharded", n)) => {
            Box::new(crate::s3::Sharded::new(capacity, 1024, samples(n)?))
        }
        None if name == "inf" => Box::new(Infinite::default()),
        None if name == "belady" => Box::new(Belady::new(
            capacity,
            trace.ok_or("belady needs the trace")?,
        )),
        Some(("sampled-lru", n)) => {
            Box::new(Sampled::new(capacity, Kind::Lru, samples(n)?, seed, rate))
        }
        Some(("lfu", n)) => Box::new(Sampled::new(capacity, Kind::Lfu, samples(n)?, seed, rate)),
        _ => {
            return Err(format!(
                "unknown policy '{name}' (one of {})",
                POLICIES.join(", ")
            ))
        }
    })
}

/// Unbounded capacity: only compulsory misses. Its `len` is the distinct key count.
#[derive(Default)]
pub struct Infinite {
    seen: Map<u64, ()>,
}

impl Policy for Infinite {
    fn access(&mut self, req: Request, _t: u64) -> bool {
        self.seen.insert(req.id, ()).is_some()
    }
    fn len(&self) -> usize {
        self.seen.len()
    }
    fn evictions(&self) -> u64 {
        0
    }
}

const NIL: u32 = u32::MAX;

/// Exact LRU: a hash map into a doubly linked list kept in arrays.
pub struct ExactLru {
    cap: usize,
    index: Map<u64, u32>,
    ids: Vec<u64>,
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    evicted: u64,
}

impl ExactLru {
    /// An empty LRU cache of `cap` objects.
    pub fn new(cap: usize) -> ExactLru {
        ExactLru {
            cap,
            index: new_map(),
            ids: vec![],
            prev: vec![],
            next: vec![],
            head: NIL,
            tail: NIL,
            evicted: 0,
        }
    }

    fn unlink(&mut self, s: u32) {
        let (p, n) = (self.prev[s as usize], self.next[s as usize]);
        if p == NIL {
            self.head = n
        } else {
            self.next[p as usize] = n
        }
        if n == NIL {
            self.tail = p
        } else {
            self.prev[n as usize] = p
        }
    }

    fn push_front(&mut self, s: u32) {
        self.prev[s as usize] = NIL;
        self.next[s as usize] = self.head;
        if self.head != NIL {
            self.prev[self.head as usize] = s;
        }
        self.head = s;
        if self.tail == NIL {
            self.tail = s;
        }
    }
}

impl Policy for ExactLru {
    fn access(&mut self, req: Request, _t: u64) -> bool {
        if let Some(&s) = self.index.get(&req.id) {
            self.unlink(s);
            self.push_front(s);
            return true;
        }
        let s = if self.index.len() >= self.cap {
            let s = self.tail;
            self.unlink(s);
            self.index.remove(&self.ids[s as usize]);
            self.evicted += 1;
            s
        } else {
            self.ids.push(0);
            self.prev.push(NIL);
            self.next.push(NIL);
            (self.ids.len() - 1) as u32
        };
        self.ids[s as usize] = req.id;
        self.index.insert(req.id, s);
        self.push_front(s);
        false
    }
    fn len(&self) -> usize {
        self.index.len()
    }
    fn evictions(&self) -> u64 {
        self.evicted
    }
}

/// Which of Redis's sampled policies a [`Sampled`] cache runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// allkeys-lru: idle time from a per-key access clock.
    Lru,
    /// allkeys-lfu: 255 minus the decayed log counter.
    Lfu,
    /// allkeys-random: any key.
    Random,
}

/// Redis's approximate policies: keys in a dense array for sampling; LRU and
/// LFU go through the eviction pool of 16 candidates sorted by score, which
/// keeps scores from when they were sampled (as Redis does) and only checks
/// that a candidate still exists before evicting it.
pub struct Sampled {
    cap: usize,
    kind: Kind,
    samples: usize,
    rate: u64,
    rng: Rng,
    index: Map<u64, u32>,
    keys: Vec<u64>,
    /// LRU: last access clock. LFU: minutes << 8 | counter (Redis's layout).
    meta: Vec<u64>,
    pool: Vec<(u64, u64)>,
    evicted: u64,
}

impl Sampled {
    /// An empty cache of `cap` objects sampling `samples` keys per pool refill.
    pub fn new(cap: usize, kind: Kind, samples: usize, seed: u64, rate: u64) -> Sampled {
        Sampled {
            cap,
            kind,
            samples,
            rate,
            rng: Rng::new(seed ^ 0x6576_6963),
            index: new_map(),
            keys: vec![],
            meta: vec![],
            pool: Vec::with_capacity(POOL),
            evicted: 0,
        }
    }

    /// The LRU clock: request index, or whole seconds at `rate`.
    fn clock(&self, t: u64) -> u64 {
        t.checked_div(self.rate).unwrap_or(t)
    }

    /// Minutes for LFU decay (no decay without a rate).
    fn minutes(&self, t: u64) -> u64 {
        t.checked_div(self.rate).map_or(0, |s| s / 60)
    }

    /// LFUDecrAndReturn with lfu-decay-time 1: one step down per idle minute.
    fn lfu_decayed(&self, meta: u64, t: u64) -> u64 {
        let (ldt, counter) = (meta >> 8, meta & 255);
        let now = self.minutes(t) & 0xffff;
        let elapsed = if now >= ldt {
            now - ldt
        } else {
            65535 - ldt + now
        };
        counter.saturating_sub(elapsed)
    }

    /// LFULogIncr with lfu-log-factor 10.
    fn lfu_incr(&mut self, counter: u64) -> u64 {
        if counter == 255 {
            return 255;
        }
        let base = counter.saturating_sub(LFU_INIT as u64) as f64;
        if self.rng.next_f64() < 1.0 / (base * 10.0 + 1.0) {
            counter + 1
        } else {
            counter
        }
    }

    fn score(&self, slot: usize, t: u64) -> u64 {
        match self.kind {
            Kind::Lru => self.clock(t).saturating_sub(self.meta[slot]),
            Kind::Lfu => 255 - self.lfu_decayed(self.meta[slot], t),
            Kind::Random => 0,
        }
    }

    /// evictionPoolPopulate: sample keys and keep the best 16 by score, the
    /// pool sorted ascending so the best candidate is last.
    fn populate(&mut self, t: u64) {
        for _ in 0..self.samples {
            let slot = self.rng.below(self.keys.len() as u64) as usize;
            let (score, id) = (self.score(slot, t), self.keys[slot]);
            let k = self
                .pool
                .iter()
                .position(|&(s, _)| s >= score)
                .unwrap_or(self.pool.len());
            if self.pool.len() < POOL {
                self.pool.insert(k, (score, id));
            } else if k > 0 {
                // Full: drop the worst (first) candidate to make room.
                self.pool.remove(0);
                self.pool.insert(k - 1, (score, id));
            }
        }
    }

    fn remove_slot(&mut self, slot: usize) {
        let id = self.keys.swap_remove(slot);
        self.meta.swap_remove(slot);
        self.index.remove(&id);
        if slot < self.keys.len() {
            self.index.insert(self.keys[slot], slot as u32);
        }
        self.evicted += 1;
    }

    fn evict(&mut self, t: u64) {
        if self.kind == Kind::Random {
            let slot = self.rng.below(self.keys.len() as u64) as usize;
            return self.remove_slot(slot);
        }
        loop {
            self.populate(t);
            while let Some((_, id)) = self.pool.pop() {
                if let Some(&slot) = self.index.get(&id) {
                    return self.remove_slot(slot as usize);
                }
            }
        }
    }
}

impl Policy for Sampled {
    fn access(&mut self, req: Request, t: u64) -> bool {
        if let Some(&slot) = self.index.get(&req.id) {
            let slot = slot as usize;
            self.meta[slot] = match self.kind {
                Kind::Lru => self.clock(t),
                Kind::Lfu => {
                    let c = self.lfu_decayed(self.meta[slot], t);
                    let c = self.lfu_incr(c);
                    ((self.minutes(t) & 0xffff) << 8) | c
                }
                Kind::Random => 0,
            };
            return true;
        }
        if self.keys.len() >= self.cap {
            self.evict(t);
        }
        self.index.insert(req.id, self.keys.len() as u32);
        self.keys.push(req.id);
        self.meta.push(match self.kind {
            Kind::Lru => self.clock(t),
            Kind::Lfu => ((self.minutes(t) & 0xffff) << 8) | LFU_INIT as u64,
            Kind::Random => 0,
        });
        false
    }
    fn len(&self) -> usize {
        self.keys.len()
    }
    fn evictions(&self) -> u64 {
        self.evicted
    }
}

/// The original S3-FIFO (`s3fifo-static`): a small FIFO (10% of the objects) that new keys enter, a main FIFO
/// with reinsertion, a ghost FIFO of keys recently evicted from the small queue
/// (as many as the main queue holds), and a 2-bit access count per object.
/// A key found in the ghost goes straight to main; the small queue's tail moves
/// to main if it was read while queued, else it is evicted into the ghost; the
/// main queue's tail is reinserted with its count lowered while the count is > 0.
pub struct S3Fifo {
    cap: usize,
    small_cap: usize,
    main_cap: usize,
    small: VecDeque<u64>,
    main: VecDeque<u64>,
    /// id -> (access count 0..=3, in main)
    objs: Map<u64, (u8, bool)>,
    ghost: VecDeque<(u64, u64)>,
    ghost_ids: Map<u64, u64>,
    ghost_seq: u64,
    evicted: u64,
}

impl S3Fifo {
    /// An empty S3-FIFO cache of `cap` objects.
    pub fn new(cap: usize) -> S3Fifo {
        let small_cap = (cap / 10).max(1);
        let main_cap = cap.saturating_sub(small_cap).max(1);
        S3Fifo {
            cap,
            small_cap,
            main_cap,
            small: VecDeque::new(),
            main: VecDeque::new(),
            objs: new_map(),
            ghost: VecDeque::new(),
            ghost_ids: new_map(),
            ghost_seq: 0,
            evicted: 0,
        }
    }

    fn ghost_add(&mut self, id: u64) {
        self.ghost_seq += 1;
        self.ghost.push_back((id, self.ghost_seq));
        self.ghost_ids.insert(id, self.ghost_seq);
        while self.ghost_ids.len() > self.main_cap {
            let Some((old, seq)) = self.ghost.pop_front() else {
                break;
            };
            if self.ghost_ids.get(&old) == Some(&seq) {
                self.ghost_ids.remove(&old);
            }
        }
        // Entries removed on readmission leave stale queue slots; compact them.
        if self.ghost.len() > 2 * self.main_cap + 16 {
            let ids = &self.ghost_ids;
            self.ghost.retain(|(id, seq)| ids.get(id) == Some(seq));
        }
    }

    fn evict_main(&mut self) {
        while let Some(id) = self.main.pop_front() {
            let e = self.objs.get_mut(&id).expect("main entry");
            if e.0 > 0 {
                e.0 -= 1;
                self.main.push_back(id);
            } else {
                self.objs.remove(&id);
                self.evicted += 1;
                return;
            }
        }
    }

    fn evict_small(&mut self) {
        while let Some(id) = self.small.pop_front() {
            let e = self.objs.get_mut(&id).expect("small entry");
            if e.0 >= 1 {
                *e = (0, true);
                self.main.push_back(id);
                if self.main.len() > self.main_cap {
                    return self.evict_main();
                }
            } else {
                self.objs.remove(&id);
                self.evicted += 1;
                return self.ghost_add(id);
            }
        }
        self.evict_main()
    }
}

impl Policy for S3Fifo {
    fn access(&mut self, req: Request, _t: u64) -> bool {
        if let Some(e) = self.objs.get_mut(&req.id) {
            e.0 = (e.0 + 1).min(3);
            return true;
        }
        while self.objs.len() >= self.cap {
            if self.small.len() >= self.small_cap || self.main.is_empty() {
                self.evict_small();
            } else {
                self.evict_main();
            }
        }
        if self.ghost_ids.remove(&req.id).is_some() {
            self.objs.insert(req.id, (0, true));
            self.main.push_back(req.id);
        } else {
            self.objs.insert(req.id, (0, false));
            self.small.push_back(req.id);
        }
        false
    }
    fn len(&self) -> usize {
        self.objs.len()
    }
    fn evictions(&self) -> u64 {
        self.evicted
    }
}

/// Belady's MIN with bypass: on a miss with the cache full, the object whose
/// next use is farthest away (the newcomer included) is the one left out.
/// No policy, admitting or not, gets more hits at the same object count.
pub struct Belady {
    cap: usize,
    next_use: Vec<u64>,
    cached: Map<u64, u64>,
    heap: BinaryHeap<(u64, u64)>,
    evicted: u64,
}

impl Belady {
    /// Precomputes every request's next use of the same key in `trace`.
    pub fn new(cap: usize, trace: &[Request]) -> Belady {
        let mut next_use = vec![u64::MAX; trace.len()];
        let mut last: Map<u64, u64> = new_map();
        for (i, r) in trace.iter().enumerate().rev() {
            if let Some(&j) = last.get(&r.id) {
                next_use[i] = j;
            }
            last.insert(r.id, i as u64);
        }
        Belady {
            cap,
            next_use,
            cached: new_map(),
            heap: BinaryHeap::new(),
            evicted: 0,
        }
    }
}

impl Policy for Belady {
    fn access(&mut self, req: Request, t: u64) -> bool {
        let next = self.next_use[t as usize];
        let hit = self.cached.contains_key(&req.id);
        if !hit && self.cached.len() >= self.cap {
            // Drop heap entries made stale by later uses of their key.
            while let Some(&(n, id)) = self.heap.peek() {
                if self.cached.get(&id) == Some(&n) {
                    break;
                }
                self.heap.pop();
            }
            let &(far, victim) = self.heap.peek().expect("full cache has a live heap entry");
            if far <= next {
                return false; // bypass: the newcomer is needed last
            }
            self.heap.pop();
            self.cached.remove(&victim);
            self.evicted += 1;
        }
        self.cached.insert(req.id, next);
        self.heap.push((next, req.id));
        if self.heap.len() > 4 * self.cap + 1024 {
            self.heap = self.cached.iter().map(|(&id, &n)| (n, id)).collect();
        }
        hit
    }
    fn len(&self) -> usize {
        self.cached.len()
    }
    fn evictions(&self) -> u64 {
        self.evicted
    }
}

/// Totals of one simulation run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimResult {
    /// Requests counted (after warm-up).
    pub requests: u64,
    /// Hits counted.
    pub hits: u64,
    /// Bytes requested (value sizes) after warm-up.
    pub bytes: u64,
    /// Bytes of the requests that hit.
    pub hit_bytes: u64,
    /// Evictions over the whole run.
    pub evictions: u64,
    /// Objects held at the end.
    pub objects_end: usize,
}

/// Runs `policy` over `trace`, counting hits only from index `warmup` on.
pub fn run(policy: &mut dyn Policy, trace: &[Request], warmup: u64) -> SimResult {
    let mut r = SimResult::default();
    for (t, &req) in trace.iter().enumerate() {
        let hit = policy.access(req, t as u64);
        if t as u64 >= warmup {
            r.requests += 1;
            r.bytes += req.size as u64;
            if hit {
                r.hits += 1;
                r.hit_bytes += req.size as u64;
            }
        }
    }
    r.evictions = policy.evictions();
    r.objects_end = policy.len();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trace(ids: &[u64]) -> Vec<Request> {
        ids.iter().map(|&id| Request { id, size: 1 }).collect()
    }

    fn hits(name: &str, cap: usize, ids: &[u64]) -> u64 {
        let t = trace(ids);
        let mut p = build(name, cap, 1, 0, Some(&t)).unwrap();
        run(p.as_mut(), &t, 0).hits
    }

    #[test]
    fn exact_lru_by_hand() {
        // cap 2: a b a c b a -> a b miss, a hit, c evicts b, b evicts a, a evicts c.
        assert_eq!(hits("lru", 2, &[1, 2, 1, 3, 2, 1]), 1);
        // cap 3 holds all three keys: only the first touches miss.
        assert_eq!(hits("lru", 3, &[1, 2, 1, 3, 2, 1]), 3);
        // The cyclic pattern defeats LRU completely.
        assert_eq!(hits("lru", 3, &[1, 2, 3, 4, 1, 2, 3, 4]), 0);
    }

    #[test]
    fn belady_by_hand() {
        // cap 3 on 1 2 3 4 1 2 3 4: 4 is needed last, so it is bypassed; 1 2 3 hit.
        assert_eq!(hits("belady", 3, &[1, 2, 3, 4, 1, 2, 3, 4]), 3);
        // cap 2 on 1 2 3 1 4 1 2: 3 and 4 are never reused and bypassed; 1 1 2 hit.
        assert_eq!(hits("belady", 2, &[1, 2, 3, 1, 4, 1, 2]), 3);
    }

    #[test]
    fn s3fifo_by_hand() {
        // cap 10: small 1, main 9 (the queues share the 10 slots until the cache is full).
        // 1 is read twice, then 2..=10 fill the cache; 11 evicts from the small queue:
        // 1 (read while queued) moves to main, 2 goes to the ghost. 12..=20 push 3..=11
        // out of the small queue; 1 hits in main and 20 in the small queue.
        let mut ids = vec![1, 1];
        ids.extend(2..=20);
        ids.extend([1, 20]);
        assert_eq!(hits("s3fifo-static", 10, &ids), 3);
        // A ghost hit is admitted to main: 1..=10 fill, 11 sends 1 to the ghost, 1 comes
        // back into main (2 goes to the ghost), 12..=21 cycle through the small queue,
        // and 1 still hits. Without the ghost it would have been pushed out by 21.
        let mut ids: Vec<u64> = (1..=11).collect();
        ids.push(1);
        ids.extend(12..=21);
        ids.push(1);
        assert_eq!(hits("s3fifo-static", 10, &ids), 1);
        assert_eq!(hits("lru", 10, &ids), 0);
    }

    #[test]
    fn sampled_policies_by_hand() {
        // With room for everything no policy evicts.
        for p in [
            "sampled-lru:5",
            "lfu:5",
            "random",
            "s3fifo",
            "lru",
            "belady",
        ] {
            assert_eq!(hits(p, 4, &[1, 2, 3, 4, 1, 2, 3, 4]), 4, "{p}");
        }
        // cap 1: every new key evicts the only one, whatever the policy.
        for p in ["sampled-lru:5", "lfu:10", "random", "lru"] {
            assert_eq!(hits(p, 1, &[1, 1, 2, 2, 1]), 2, "{p}");
        }
        // Sampled LRU with many samples on 2 keys finds the true LRU key: cap 2,
        // 1 2 1 3 -> evicts 2 (idle longer), so 1 hits afterwards and 2 misses.
        let t = trace(&[1, 2, 1, 3, 1, 2]);
        let mut p = build("sampled-lru:10", 2, 1, 0, None).unwrap();
        assert_eq!(run(p.as_mut(), &t, 0).hits, 2);
        // LFU keeps the key read many times against a newcomer read once.
        // 3 arrives: 2 (counter 5) goes, not 1 (counter above 5), so both later 1s hit.
        let mut ids = vec![1; 20];
        ids.extend([2, 3, 1, 1]);
        assert_eq!(hits("lfu:10", 2, &ids), 21);
    }

    #[test]
    fn lfu_counter_and_decay_follow_redis() {
        let mut s = Sampled::new(10, Kind::Lfu, 5, 1, 1);
        // At counter 5 (the initial value) the increment is certain.
        assert_eq!(s.lfu_incr(5), 6);
        assert_eq!(s.lfu_incr(255), 255);
        // 1 request per second: 120 requests = 2 minutes idle, two steps of decay.
        let meta = 7; // last decrement at minute 0, counter 7
        assert_eq!(s.lfu_decayed(meta, 120), 5);
        assert_eq!(s.lfu_decayed(meta, 59), 7);
    }

    #[test]
    fn warmup_is_not_counted_and_inf_counts_distinct() {
        let t = trace(&[1, 2, 1, 2, 3]);
        let mut p = build("inf", 1, 0, 0, None).unwrap();
        let r = run(p.as_mut(), &t, 2);
        assert_eq!((r.requests, r.hits, r.objects_end), (3, 2, 3));
    }

    #[test]
    fn eviction_pool_stays_sorted_and_bounded() {
        let mut s = Sampled::new(100, Kind::Lru, 10, 5, 0);
        for id in 0..100u64 {
            s.access(Request { id, size: 1 }, id);
        }
        for round in 0..20 {
            s.populate(100 + round);
            assert!(s.pool.len() <= POOL);
            assert!(s.pool.windows(2).all(|w| w[0].0 <= w[1].0), "{:?}", s.pool);
        }
        // After many samples the best candidate is among the oldest keys.
        let (idle, id) = *s.pool.last().unwrap();
        assert!(idle >= 100 && id < 20, "{idle} {id}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Belady's MIN is a ceiling: no other policy gets more hits.
        #[test]
        fn belady_beats_everyone(ids in prop::collection::vec(0u64..40, 1..600), cap in 1usize..30) {
            let t = trace(&ids);
            let best = hits("belady", cap, &ids);
            for name in ["lru", "sampled-lru:5", "sampled-lru:10", "lfu:5", "lfu:10", "random", "s3fifo"] {
                let mut p = build(name, cap, 7, 0, Some(&t)).unwrap();
                let h = run(p.as_mut(), &t, 0).hits;
                prop_assert!(h <= best, "{} got {} > belady {}", name, h, best);
            }
            prop_assert!(best <= hits("inf", 1, &ids));
        }

        /// LRU's stack property: a larger LRU cache holds a superset, so it never hits less;
        /// and each request hits exactly when its reuse distance is below the capacity.
        #[test]
        fn lru_stack_property(ids in prop::collection::vec(0u64..30, 1..500), cap in 1usize..25) {
            prop_assert!(hits("lru", cap, &ids) <= hits("lru", cap + 1, &ids));
            let mut expected = 0;
            for (i, id) in ids.iter().enumerate() {
                if let Some(j) = ids[..i].iter().rposition(|x| x == id) {
                    let distinct: std::collections::HashSet<_> = ids[j + 1..i].iter().collect();
                    if distinct.len() < cap { expected += 1; }
                }
            }
            prop_assert_eq!(hits("lru", cap, &ids), expected);
        }

        /// Every policy respects its capacity and never evicts while there is room.
        #[test]
        fn capacity_is_respected(ids in prop::collection::vec(0u64..50, 1..400), cap in 1usize..40) {
            let t = trace(&ids);
            let distinct = ids.iter().collect::<std::collections::HashSet<_>>().len();
            for name in POLICIES {
                let mut p = build(name, cap, 3, 0, Some(&t)).unwrap();
                let r = run(p.as_mut(), &t, 0);
                if *name != "inf" {
                    prop_assert!(r.objects_end <= cap, "{}", name);
                }
                if distinct <= cap {
                    prop_assert_eq!(r.evictions, 0, "{}", name);
                    prop_assert_eq!(r.hits as usize, ids.len() - distinct, "{}", name);
                }
            }
        }

        /// S3-FIFO's queues account for every object, stay within their shares once
        /// full, and the ghost never outgrows the main queue.
        #[test]
        fn s3fifo_invariants(ids in prop::collection::vec(0u64..80, 1..800), cap in 2usize..50) {
            let mut c = S3Fifo::new(cap);
            for (t, &id) in ids.iter().enumerate() {
                c.access(Request { id, size: 1 }, t as u64);
                prop_assert_eq!(c.small.len() + c.main.len(), c.objs.len());
                prop_assert!(c.objs.len() <= cap);
                prop_assert!(c.ghost_ids.len() <= c.main_cap);
                prop_assert!(c.ghost_ids.keys().all(|g| !c.objs.contains_key(g)));
                prop_assert!(c.objs.values().all(|&(f, _)| f <= 3));
                prop_assert_eq!(c.main.len(), c.objs.values().filter(|e| e.1).count());
            }
        }
    }
}
