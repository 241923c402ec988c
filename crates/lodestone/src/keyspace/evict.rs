//! Choosing eviction victims across shards (Redis's `evict.c`).
//!
//! LRU, LFU and volatile-ttl use Redis's approximation: each round samples
//! `maxmemory-samples` keys per database (from one shard at a time, taken
//! round-robin, starting at a random table position) into a pool of the 16
//! best candidates seen so far; the best one still present is evicted. The
//! random policies take a random key of the next non-empty shard. S3-FIFO
//! pops the queue heads of the shards in global insertion order, sampled
//! (see `keyspace::s3fifo`). Shards are locked one at
//! a time and only for the sampling or the delete, with `try_lock` while
//! sampling (a busy shard is skipped), so eviction never waits long and
//! never deadlocks: it runs before the command locks anything.

use super::lru::{self, Policy};
use super::{Entry, Keyspace, SHARDS};
use rand::{Rng, SeedableRng};

/// Candidates kept between rounds (Redis's EVPOOL_SIZE).
pub const POOL_SIZE: usize = 16;
/// A database with no evictable key is not searched again for this long
/// (it is anyway when no other database has a candidate): a full turn over
/// an empty database's shards costs 1024 try-locks.
const EMPTY_DB_SKIP: std::time::Duration = std::time::Duration::from_millis(100);

struct Candidate {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// Eviction state kept between calls: the candidate pool, per-database
/// shard cursors and the random source (seedable for tests).
pub struct Evictor {
    pool: Vec<Candidate>,
    cursors: Vec<usize>,
    /// Until when a database recently found empty is not searched.
    skip: Vec<Option<std::time::Instant>>,
    next_db: usize,
    rng: rand::rngs::SmallRng,
}

impl Evictor {
    pub fn new(seed: u64) -> Evictor {
        Evictor {
            pool: Vec::with_capacity(POOL_SIZE + 1),
            cursors: Vec::new(),
            skip: Vec::new(),
            next_db: 0,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
        }
    }

    /// Forgets pooled candidates (policy change, FLUSHALL).
    pub fn reset(&mut self) {
        self.pool.clear();
    }

    /// Evicts one key under `policy` and returns (db, removed entry), or
    /// None when nothing is evictable. `now_ms` drives LRU idle times and
    /// LFU decay. `removed` runs while the key's shard is still locked (the
    /// DEL must reach the AOF before any later write of the same key).
    pub fn evict_one(
        &mut self,
        ks: &Keyspace,
        policy: Policy,
        samples: usize,
        now_ms: u64,
        removed: &mut dyn FnMut(usize, &Entry),
    ) -> Option<(usize, Entry)> {
        if self.cursors.len() != ks.db_count() {
            self.cursors = (0..ks.db_count())
                .map(|_| self.rng.gen_range(0..SHARDS))
                .collect();
        }
        match policy {
            Policy::NoEviction => None,
            Policy::AllkeysRandom | Policy::VolatileRandom => {
                self.evict_random(ks, policy.is_volatile(), removed)
            }
            Policy::AllkeysS3Fifo | Policy::VolatileS3Fifo => {
                self.evict_s3(ks, policy.is_volatile(), samples.max(1), removed)
            }
            _ => self.evict_pooled(ks, policy, samples.max(1), now_ms, removed),
        }
    }

    /// Visits the shards of `db` round-robin from its cursor, calling `f`
    /// under the lock of each one that has keys (with a TTL if `volatile`),
    /// until `f` returns Some or `max` shards were looked at. A shard busy
    /// under another thread is skipped. Returns `f`'s result and whether
    /// any suitable shard was seen.
    fn visit<R>(
        &mut self,
        ks: &Keyspace,
        db: usize,
        volatile: bool,
        max: usize,
        mut f: impl FnMut(&mut super::Shard, &mut rand::rngs::SmallRng) -> Option<R>,
    ) -> (Option<R>, bool) {
        let mut seen = false;
        if !ks.allocated(db) {
            return (None, false);
        }
        for _ in 0..max {
            let i = self.cursors[db] % SHARDS;
            self.cursors[db] = i + 1;
            let Some(mut sh) = ks.try_lock_shard(db, i) else {
                continue;
            };
            if sh.is_empty() || (volatile && sh.volatile_len() == 0) {
                continue;
            }
            seen = true;
            if let Some(r) = f(&mut sh, &mut self.rng) {
                return (Some(r), true);
            }
        }
        (None, seen)
    }

    /// Databases to look at this round, starting after the last one used;
    /// databases found empty recently are skipped unless `all`.
    fn dbs(&mut self, ks: &Keyspace, all: bool) -> Vec<usize> {
        let n = ks.db_count();
        if self.skip.len() != n {
            self.skip = vec![None; n];
        }
        let first = self.next_db % n;
        let now = std::time::Instant::now();
        (0..n)
            .map(|i| (first + i) % n)
            .filter(|&db| all || self.skip[db].is_none_or(|t| t <= now))
            .collect()
    }

    /// Runs `per_db` over the databases; a database that had no suitable
    /// shard in a full turn is skipped for the next calls. If nothing was
    /// found, tries once more with every database.
    fn over_dbs<R>(
        &mut self,
        ks: &Keyspace,
        mut per_db: impl FnMut(&mut Self, usize) -> (Option<R>, bool),
    ) -> Option<(usize, R)> {
        for all in [false, true] {
            for db in self.dbs(ks, all) {
                let (r, seen) = per_db(self, db);
                if !seen {
                    self.skip[db] = Some(std::time::Instant::now() + EMPTY_DB_SKIP);
                }
                if let Some(r) = r {
                    self.next_db = db;
                    return Some((db, r));
                }
            }
        }
        None
    }

    fn evict_random(
        &mut self,
        ks: &Keyspace,
        volatile: bool,
        removed: &mut dyn FnMut(usize, &Entry),
    ) -> Option<(usize, Entry)> {
        let r = self.over_dbs(ks, |ev, db| {
            ev.visit(ks, db, volatile, SHARDS, |sh, rng| {
                let start = rng.gen_range(0..sh.len());
                let mut key = None;
                sh.sample(start, 1, volatile, |e| key = Some(e.key().to_vec()));
                let e = sh.evict_key(&key?, volatile)?;
                removed(db, &e);
                Some(e)
            })
        });
        // Spread random evictions over the databases like Redis's next_db.
        self.next_db += 1;
        r
    }

    fn evict_s3(
        &mut self,
        ks: &Keyspace,
        volatile: bool,
        samples: usize,
        removed: &mut dyn FnMut(usize, &Entry),
    ) -> Option<(usize, Entry)> {
        self.over_dbs(ks, |ev, db| {
            ev.evict_s3_db(ks, db, volatile, samples, removed)
        })
    }

    /// S3-FIFO over one database's shards as one cache: the global state
    /// says which queue to pop (small or main); each pop takes the head
    /// queued longest ago among the next `samples` shards (round-robin,
    /// `try_lock`) whose queue is not empty, like the simulator's
    /// `s3::Sharded`. Pops that move a key (read while queued) go on to
    /// the next pop, until one evicts.
    fn evict_s3_db(
        &mut self,
        ks: &Keyspace,
        db: usize,
        volatile: bool,
        samples: usize,
        removed: &mut dyn FnMut(usize, &Entry),
    ) -> (Option<Entry>, bool) {
        use super::s3fifo::{age, ghost_cap, GLOBAL};
        if !ks.allocated(db) {
            return (None, false);
        }
        let gcap = ghost_cap(GLOBAL.len()).div_ceil(SHARDS).max(1);
        let mut seen_any = false;
        // A key is popped at most MAX_FREQ + 2 times before it leaves
        // (when every key is hot, one eviction may take a pass over all of
        // them); bound the work anyway.
        for _ in 0..3 * (GLOBAL.len() + 64) {
            let want_main = !GLOBAL.pop_small();
            let mut best: Option<(u32, usize, bool)> = None;
            for main in [want_main, !want_main] {
                let now = GLOBAL.now();
                let mut seen = 0;
                for _ in 0..SHARDS {
                    let i = self.cursors[db] % SHARDS;
                    self.cursors[db] = i + 1;
                    let Some(mut sh) = ks.try_lock_shard(db, i) else {
                        continue;
                    };
                    if sh.is_empty() || (volatile && sh.volatile_len() == 0) {
                        continue;
                    }
                    seen_any = true;
                    if let Some(seq) = sh.s3_head(main, volatile) {
                        let a = age(now, seq);
                        if best.is_none_or(|b| a > b.0) {
                            best = Some((a, i, main));
                        }
                        seen += 1;
                        if seen >= samples {
                            break;
                        }
                    }
                }
                if best.is_some() {
                    break;
                }
            }
            let Some((_, i, main)) = best else {
                return (None, seen_any);
            };
            let Some(mut sh) = ks.try_lock_shard(db, i) else {
                continue;
            };
            if let Some(e) = sh.s3_pop(main, volatile, gcap) {
                removed(db, &e);
                return (Some(e), true);
            }
        }
        (None, seen_any)
    }

    /// Redis's `evictionPoolPopulate` + best-candidate loop: every round
    /// adds `samples` keys per database to the pool, then the best pooled
    /// key still present is evicted.
    fn evict_pooled(
        &mut self,
        ks: &Keyspace,
        policy: Policy,
        samples: usize,
        now_ms: u64,
        removed: &mut dyn FnMut(usize, &Entry),
    ) -> Option<(usize, Entry)> {
        let volatile = policy.is_volatile();
        // A few rounds: a pooled key may be gone by the time it is picked.
        for _ in 0..8 {
            let mut any = false;
            for all in [false, true] {
                for db in self.dbs(ks, all) {
                    let mut found: Vec<(u64, Vec<u8>)> = Vec::with_capacity(samples);
                    let mut seen_db = false;
                    let mut visits = 0;
                    // Consecutive keys from a random position in as many
                    // shards as it takes to gather `samples`.
                    while found.len() < samples && visits < SHARDS && ks.allocated(db) {
                        let want = samples - found.len();
                        let (_, seen) = self.visit(ks, db, volatile, 1, |sh, rng| {
                            let start = rng.gen_range(0..sh.len());
                            sh.sample(start, want, volatile, |e| {
                                found.push((score(policy, e, now_ms), e.key().to_vec()))
                            });
                            Some(())
                        });
                        visits += 1;
                        seen_db |= seen;
                    }
                    if !seen_db {
                        self.skip[db] = Some(std::time::Instant::now() + EMPTY_DB_SKIP);
                    }
                    any |= seen_db;
                    for (s, k) in found {
                        self.pool_insert(s, db, k);
                    }
                }
                if any || !self.pool.is_empty() {
                    break;
                }
            }
            if !any && self.pool.is_empty() {
                return None;
            }
            // Best candidates are at the end; take the first still present.
            while let Some(c) = self.pool.pop() {
                let shard = super::shard_of(&c.key);
                let mut sh = ks.lock_shard(c.db, shard);
                if let Some(e) = sh.evict_key(&c.key, volatile) {
                    removed(c.db, &e);
                    return Some((c.db, e));
                }
            }
        }
        None
    }

    /// Inserts a candidate, keeping the pool sorted by score (ascending)
    /// and at most POOL_SIZE long; a key already pooled is not repeated.
    fn pool_insert(&mut self, score: u64, db: usize, key: Vec<u8>) {
        if self.pool.iter().any(|c| c.db == db && c.key == key) {
            return;
        }
        if self.pool.len() >= POOL_SIZE && score <= self.pool[0].score {
            return;
        }
        let at = self.pool.partition_point(|c| c.score < score);
        self.pool.insert(at, Candidate { score, db, key });
        if self.pool.len() > POOL_SIZE {
            self.pool.remove(0);
        }
    }
}

/// How good a victim `e` is: higher is evicted first (Redis's `idle`).
pub fn score(policy: Policy, e: &Entry, now_ms: u64) -> u64 {
    match policy {
        Policy::AllkeysLfu | Policy::VolatileLfu => 255 - lru::lfu_freq(e.lru(), now_ms) as u64,
        Policy::VolatileTtl => u64::MAX - e.expire_at().unwrap_or(u64::MAX),
        _ => lru::idle_ms(e.lru(), now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{shard_of, Str, Value};

    fn put(ks: &Keyspace, key: &str, ttl: Option<u64>, lru: u32) {
        let e = Entry::new_full(key.as_bytes(), Value::Str(Str::Int(1)), ttl, lru);
        ks.db(0)
            .shard(shard_of(key.as_bytes()))
            .lock()
            .insert_entry(e);
    }

    fn evict_all(ev: &mut Evictor, ks: &Keyspace, p: Policy, now: u64) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((_, e)) = ev.evict_one(ks, p, 64, now, &mut |_, _| {}) {
            out.push(String::from_utf8(e.key().to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn lru_evicts_oldest_first_when_samples_cover_everything() {
        let ks = Keyspace::new(1);
        let now = 1_700_000_000_000u64;
        let clock = lru::lru_clock(now);
        for i in 0..10u32 {
            put(&ks, &format!("k{i}"), None, clock - 100 + i * 10);
        }
        let mut ev = Evictor::new(1);
        // Ten keys in up to ten shards: the pool sees them all over a few
        // rounds; the idlest go first.
        let order = evict_all(&mut ev, &ks, Policy::AllkeysLru, now);
        assert_eq!(order.len(), 10);
        assert_eq!(order[0], "k0");
        assert_eq!(order[1], "k1");
    }

    #[test]
    fn volatile_policies_never_touch_persistent_keys() {
        let now = 1_700_000_000_000u64;
        for p in [
            Policy::VolatileLru,
            Policy::VolatileLfu,
            Policy::VolatileRandom,
            Policy::VolatileTtl,
        ] {
            let ks = Keyspace::new(2);
            for i in 0..50 {
                put(&ks, &format!("p{i}"), None, 0);
                put(&ks, &format!("v{i}"), Some(now + 1000 * i), 0);
            }
            let mut ev = Evictor::new(7);
            let order = evict_all(&mut ev, &ks, p, now);
            assert_eq!(order.len(), 50, "{p:?}");
            assert!(order.iter().all(|k| k.starts_with('v')), "{p:?}");
            assert_eq!(ks.db(0).len(), 50);
        }
    }

    #[test]
    fn volatile_ttl_picks_soonest_expiry() {
        let ks = Keyspace::new(1);
        let now = 1_700_000_000_000u64;
        for i in 0..20u64 {
            put(&ks, &format!("t{i}"), Some(now + 1000 * (20 - i)), 0);
        }
        let mut ev = Evictor::new(3);
        let first = ev
            .evict_one(&ks, Policy::VolatileTtl, 64, now, &mut |_, _| {})
            .unwrap()
            .1;
        assert_eq!(first.key(), b"t19");
    }

    #[test]
    fn lfu_prefers_low_counters() {
        let ks = Keyspace::new(1);
        let now = 1_700_000_000_000u64;
        let m = lru::lfu_minutes(now) << 8;
        for i in 0..10u32 {
            put(&ks, &format!("f{i}"), None, m | (10 + i * 20));
        }
        let mut ev = Evictor::new(5);
        let order = evict_all(&mut ev, &ks, Policy::AllkeysLfu, now);
        assert_eq!(order[0], "f0");
        assert_eq!(order[1], "f1");
    }

    #[test]
    fn random_and_noeviction() {
        let ks = Keyspace::new(3);
        for i in 0..30 {
            put(&ks, &format!("r{i}"), None, 0);
        }
        let mut ev = Evictor::new(9);
        assert!(ev
            .evict_one(&ks, Policy::NoEviction, 5, 0, &mut |_, _| {})
            .is_none());
        assert_eq!(evict_all(&mut ev, &ks, Policy::AllkeysRandom, 0).len(), 30);
        assert!(ev
            .evict_one(&ks, Policy::VolatileRandom, 5, 0, &mut |_, _| {})
            .is_none());
    }

    /// The server's engine and the simulator's copy (`replay::s3`) reach
    /// the same hit ratio on one trace: a Zipf 0.9 workload whose hot set
    /// shifts, replayed cache-aside through the keyspace with a fixed key
    /// budget, against `s3fifo-sharded` (1024 shards, 5 samples) and the
    /// unsharded `s3fifo` at the same object count.
    #[test]
    fn s3fifo_matches_the_simulator() {
        use replay::workload::{Generator, Params, Spec};
        let _g = crate::keyspace::shard::POLICY_LOCK.lock();
        lru::configure(Policy::AllkeysS3Fifo, 10, 1);
        super::super::s3fifo::GLOBAL.reset_share();
        let params = Params {
            keys: 20_000,
            requests: 200_000,
            seed: 3,
            size_min: 1,
            size_max: 1,
        };
        let spec = Spec::parse("zipf:0.9+shift:50000").unwrap();
        let trace: Vec<_> = Generator::new(&spec, &params).unwrap().collect();
        let (cap, warmup) = (2_000usize, 40_000usize);
        let sim = |name: &str| {
            let mut p = replay::sim::build(name, cap, 1, 0, None).unwrap();
            replay::sim::run(p.as_mut(), &trace, warmup as u64).hits as f64
                / (trace.len() - warmup) as f64
        };
        let ks = Keyspace::new(1);
        let mut ev = Evictor::new(11);
        let (mut held, mut hits) = (0usize, 0u64);
        for (t, r) in trace.iter().enumerate() {
            let key = format!("key:{}", r.id);
            let sh = shard_of(key.as_bytes());
            if let Some(e) = ks.db(0).shard(sh).lock().get_mut(key.as_bytes(), 0) {
                lru::touch(e, 0);
                hits += (t >= warmup) as u64;
                continue;
            }
            while held >= cap {
                ev.evict_one(&ks, Policy::AllkeysS3Fifo, 5, 0, &mut |_, _| {})
                    .expect("a victim");
                held -= 1;
            }
            ks.db(0)
                .shard(sh)
                .lock()
                .insert(key.as_bytes(), Value::Str(Str::Int(1)), None);
            held += 1;
        }
        let server = hits as f64 / (trace.len() - warmup) as f64;
        let (sharded, global, lru_sim) = (sim("s3fifo-sharded"), sim("s3fifo"), sim("lru"));
        lru::configure(Policy::NoEviction, 10, 1);
        eprintln!(
            "server {server:.4} sim sharded {sharded:.4} global {global:.4} lru {lru_sim:.4}"
        );
        assert!(
            (server - sharded).abs() < 0.01 && (server - global).abs() < 0.015,
            "server {server:.4} sim sharded {sharded:.4} global {global:.4}"
        );
        assert!(
            server > lru_sim,
            "server {server:.4} exact LRU {lru_sim:.4}"
        );
    }

    /// When every key is hot, one eviction takes a CLOCK pass over all of
    /// them; it must still find a victim rather than report OOM.
    #[test]
    fn s3fifo_evicts_when_every_key_is_hot() {
        let _g = crate::keyspace::shard::POLICY_LOCK.lock();
        lru::configure(Policy::AllkeysS3Fifo, 10, 1);
        let ks = Keyspace::new(1);
        for i in 0..6000 {
            put(&ks, &format!("h{i}"), None, 0);
        }
        for _ in 0..2 {
            for i in 0..6000 {
                let k = format!("h{i}");
                let mut sh = ks.db(0).shard(shard_of(k.as_bytes())).lock();
                lru::touch(sh.get_mut(k.as_bytes(), 0).unwrap(), 0);
            }
        }
        let mut ev = Evictor::new(2);
        let got = ev.evict_one(&ks, Policy::AllkeysS3Fifo, 5, 0, &mut |_, _| {});
        let n = evict_all(&mut ev, &ks, Policy::AllkeysS3Fifo, 0).len();
        lru::configure(Policy::NoEviction, 10, 1);
        assert!(got.is_some());
        assert_eq!(n, 5999);
    }
}
