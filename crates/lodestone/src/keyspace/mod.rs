//! The keyspace: databases split into shards, and the lock discipline
//! every command goes through.
//!
//! A database holds `SHARDS` shards, each a contiguous range of the 16384
//! cluster hash slots behind its own mutex. A command declares the shards
//! it needs (from its keys, see `commands::lockset`), and [`Locks`] takes
//! them in ascending `(db, shard)` order, which is what makes multi-key
//! commands, MULTI/EXEC and scripts atomic without deadlocks.

pub mod entry;
pub mod evict;
pub mod expire;
pub mod lru;
pub mod s3fifo;
pub mod shard;
pub mod table;
pub mod types;
pub mod varint;

pub use entry::{Entry, Str, StrRef, Value};
pub use shard::Shard;
pub use types::{
    hash::HashValue, list::ListValue, set::SetValue, stream::StreamValue, zset::ZSetValue,
};

use parking_lot::{Mutex, MutexGuard, RwLock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// log2 of the number of shards per database.
pub const SHARD_BITS: u32 = 10;
/// Shards per database (each owns 16384 / SHARDS hash slots).
pub const SHARDS: usize = 1 << SHARD_BITS;
/// Redis Cluster's number of hash slots.
pub const SLOTS: usize = 16384;

/// Slice-by-16 tables: a whole short key per step (hashed on every command).
/// CRC16-XMODEM (polynomial 0x1021, no reflection) tables for eight
/// bytes at a time: `CRC16_T[0]` is the byte table, `CRC16_T[k][b]` the
/// CRC of byte `b` followed by `k` zero bytes. Every single-key command
/// hashes its key with it; the generic `crc` crate checked the
/// algorithm's options at run time on every call.
static CRC16_T: [[u16; 256]; 8] = crc16_tables();

const fn crc16_tables() -> [[u16; 256]; 8] {
    let mut t = [[0u16; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut c = (b as u16) << 8;
        let mut i = 0;
        while i < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
            i += 1;
        }
        t[0][b] = c;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = t[k - 1][b];
            t[k][b] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            b += 1;
        }
        k += 1;
    }
    t
}

/// CRC16-XMODEM of `data` (Redis Cluster's key hash).
#[inline]
pub fn crc16(data: &[u8]) -> u16 {
    let t = &CRC16_T;
    let mut crc: u16 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        crc = t[7][(c[0] ^ (crc >> 8) as u8) as usize]
            ^ t[6][(c[1] ^ crc as u8) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc << 8) ^ t[0][((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

/// The part of a key that is hashed: the content of the first `{...}`
/// when it is non-empty, else the whole key (Redis Cluster's hash tags).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&c| c == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&c| c == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The cluster hash slot of a key (CRC16-XMODEM of its hash tag, mod 16384).
#[inline]
pub fn key_slot(key: &[u8]) -> usize {
    (crc16(hash_tag(key)) as usize) & (SLOTS - 1)
}

/// The shard that holds a key.
#[inline]
pub fn shard_of(key: &[u8]) -> usize {
    key_slot(key) >> (14 - SHARD_BITS)
}

/// One logical database (SELECT n).
///
/// Its shards are allocated by the first command that locks one of them
/// (`Keyspace::lock_shard`, `Locks::acquire`): 16 databases x 1024 shards
/// up front cost ~2 MB of an empty server. Walks that only look (DBSIZE,
/// INFO, expiry, eviction, KEYS/SCAN, snapshots' walkers) see a database
/// that was never allocated as empty and leave it so.
#[derive(Default)]
pub struct Db {
    shards: std::sync::OnceLock<Box<[Mutex<Shard>]>>,
}

impl Db {
    /// The shards, allocated on first use.
    #[inline]
    pub fn shards(&self) -> &[Mutex<Shard>] {
        self.shards
            .get_or_init(|| (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect())
    }

    /// The shards if something ever locked one (else the database is empty).
    #[inline]
    pub fn allocated(&self) -> Option<&[Mutex<Shard>]> {
        self.shards.get().map(|s| &**s)
    }

    /// Number of keys, expired-but-not-yet-deleted ones included (as
    /// Redis's DBSIZE). Locks each shard briefly.
    pub fn len(&self) -> usize {
        self.allocated()
            .map_or(0, |sh| sh.iter().map(|s| s.lock().len()).sum())
    }

    /// (keys, keys with a TTL), for INFO keyspace.
    pub fn counts(&self) -> (usize, usize) {
        self.allocated().map_or((0, 0), |sh| {
            sh.iter().fold((0, 0), |(k, v), s| {
                let s = s.lock();
                (k + s.len(), v + s.volatile_len())
            })
        })
    }

    /// One shard, allocating the database's shards if needed.
    pub fn shard(&self, i: usize) -> &Mutex<Shard> {
        &self.shards()[i]
    }
}

/// Receives each shard once per snapshot, exactly as it was when the
/// snapshot started (see `persist::snapshot`). Called with the shard
/// locked, by the snapshot's walker or by a writer about to change it.
pub trait ShardSink: Send + Sync {
    /// Serializes one shard of database `db`; returns how many keys it held.
    fn shard(&self, db: usize, idx: usize, sh: &Shard) -> usize;

    /// Called by the walker between shards, holding no lock: a sink whose
    /// consumer is slower than the walk (a replica's socket) waits here,
    /// so the snapshot's memory stays bounded without stalling writers.
    fn pace(&self) {}
}

/// The running snapshot, if any: its epoch and where shards go.
#[derive(Default)]
pub struct SnapState {
    /// Epoch of the running snapshot, 0 when none runs.
    pub active: AtomicU64,
    /// Last epoch handed out.
    pub last: AtomicU64,
    pub sink: RwLock<Option<Arc<dyn ShardSink>>>,
    /// Held by the snapshot that runs (one at a time).
    pub running: Mutex<()>,
}

/// All databases of the server.
pub struct Keyspace {
    dbs: Vec<Db>,
    pub snap: SnapState,
    /// Taken for writing while [`Locks::acquire_all`] collects every
    /// shard, and for reading by a script that try-locks shards it did not
    /// declare for the whole run: an all-shards locker then never holds
    /// half the shards while such a script waits for one of them.
    pub all_gate: parking_lot::RwLock<()>,
}

impl Keyspace {
    pub fn new(databases: usize) -> Keyspace {
        Keyspace {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            snap: SnapState::default(),
            all_gate: parking_lot::RwLock::new(()),
        }
    }

    /// Serialize-before-mutate: whoever locks a shard calls this before
    /// changing it. If a snapshot runs and has not captured the shard yet,
    /// the shard goes to the snapshot first, so the snapshot sees every
    /// shard as it was at its start. One atomic load when none runs.
    #[inline]
    pub fn snap_check(&self, id: ShardId, sh: &mut Shard) {
        let e = self.snap.active.load(Ordering::SeqCst);
        if e != 0 && sh.snap_epoch < e {
            self.snap_capture(id, sh, e);
        }
    }

    #[cold]
    fn snap_capture(&self, id: ShardId, sh: &mut Shard, e: u64) -> usize {
        let sink = self.snap.sink.read().clone();
        sh.snap_epoch = e;
        match sink {
            Some(s) => s.shard(id.0 as usize, id.1 as usize, sh),
            None => 0,
        }
    }

    /// The walker's step: captures a shard unless a writer already did;
    /// returns the keys it serialized.
    pub fn snap_visit(&self, id: ShardId, sh: &mut Shard, e: u64) -> usize {
        if sh.snap_epoch < e {
            self.snap_capture(id, sh, e)
        } else {
            0
        }
    }

    /// Locks one shard for a change (serializing it first for a running
    /// snapshot).
    pub fn lock_shard(&self, db: usize, i: usize) -> MutexGuard<'_, Shard> {
        let mut g = self.dbs[db].shards()[i].lock();
        self.snap_check((db as u32, i as u32), &mut g);
        g
    }

    /// Like [`Keyspace::lock_shard`] without waiting; None also for a
    /// database never allocated (it is empty: walkers skip it).
    pub fn try_lock_shard(&self, db: usize, i: usize) -> Option<MutexGuard<'_, Shard>> {
        let mut g = self.try_lock_shard_to_look(db, i)?;
        self.snap_check((db as u32, i as u32), &mut g);
        Some(g)
    }

    /// Like [`Keyspace::try_lock_shard`] for a caller that only looks (or
    /// calls [`Keyspace::snap_check`] itself before it changes anything):
    /// a running snapshot's shards are left for its walker, which paces
    /// them to a slow consumer (a replica's socket).
    pub fn try_lock_shard_to_look(&self, db: usize, i: usize) -> Option<MutexGuard<'_, Shard>> {
        self.dbs[db].allocated()?[i].try_lock()
    }

    pub fn db_count(&self) -> usize {
        self.dbs.len()
    }

    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i]
    }

    /// Whether database `db` has its shards (a database without them is empty).
    #[inline]
    pub fn allocated(&self, db: usize) -> bool {
        self.dbs[db].allocated().is_some()
    }
}

/// A shard address: (database, shard index).
pub type ShardId = (u32, u32);

/// The shard locks a command (or a whole transaction) holds while it runs.
///
/// Locks are taken once, in ascending order, by [`Locks::acquire`]. Commands
/// then reach shards through [`Locks::shard`], which finds the held guard.
/// Commands that walk a whole database (KEYS, SCAN, FLUSHDB) use
/// [`Locks::for_each_shard`], which uses held guards where it has them and
/// otherwise locks one shard at a time.
pub struct Locks<'a> {
    ks: &'a Keyspace,
    /// Inline for the usual one to four shards: a context is made per
    /// batch of requests (per request at pipeline 1), and a heap vector
    /// here was one allocation and free per request.
    held: smallvec::SmallVec<[(ShardId, MutexGuard<'a, Shard>); 4]>,
    /// Keys lazily expired in shards locked only for a moment (SCAN,
    /// RANDOMKEY, KEYS walks): handed out by `drain_expired` with the
    /// held shards' (their DELs and events follow the command).
    expired_elsewhere: Vec<(usize, Vec<u8>)>,
    /// The key a single-key command was locked for (address and length of
    /// its argument) and its shard: `shard()` for that same slice skips
    /// the second CRC16. Reset when the locks go.
    memo: (usize, usize, ShardId),
}

impl<'a> Locks<'a> {
    pub fn new(ks: &'a Keyspace) -> Locks<'a> {
        Locks {
            ks,
            held: smallvec::SmallVec::new(),
            expired_elsewhere: Vec::new(),
            memo: (0, 0, (0, 0)),
        }
    }

    pub fn keyspace(&self) -> &'a Keyspace {
        self.ks
    }

    /// Locks the given shards in ascending order. Must be called while
    /// holding nothing (once per command or transaction).
    pub fn acquire(&mut self, ids: &mut [ShardId]) {
        debug_assert!(self.held.is_empty());
        ids.sort_unstable();
        self.held.reserve(ids.len());
        for (i, &(db, sh)) in ids.iter().enumerate() {
            if i > 0 && ids[i - 1] == (db, sh) {
                continue;
            }
            let g = self.ks.dbs[db as usize].shards()[sh as usize].lock();
            self.held.push(((db, sh), g));
        }
        // Checked once every lock is held and before anything changes, so
        // a command lands wholly before or wholly after a snapshot's start.
        let ks = self.ks;
        if ks.snap.active.load(Ordering::SeqCst) != 0 {
            for (id, g) in self.held.iter_mut() {
                ks.snap_check(*id, g);
            }
        }
    }

    /// [`Locks::acquire`] of a single shard (the common single-key
    /// command): no sorting or deduplication.
    #[inline]
    pub fn acquire_one(&mut self, id: ShardId) {
        debug_assert!(self.held.is_empty());
        let g = self.ks.dbs[id.0 as usize].shards()[id.1 as usize].lock();
        self.held.push((id, g));
        let ks = self.ks;
        if ks.snap.active.load(Ordering::SeqCst) != 0 {
            for (id, g) in self.held.iter_mut() {
                ks.snap_check(*id, g);
            }
        }
    }

    /// Locks every shard of the given databases (FLUSHALL/SWAPDB inside a
    /// transaction, scripts that must see everything).
    pub fn acquire_all(&mut self, dbs: &[usize]) {
        let mut ids: Vec<ShardId> = dbs
            .iter()
            .flat_map(|&d| (0..SHARDS as u32).map(move |s| (d as u32, s)))
            .collect();
        let ks = self.ks;
        let _gate = ks.all_gate.write();
        self.acquire(&mut ids);
    }

    /// Adds one shard without waiting: true if it is (now) held, false if
    /// another thread holds it. Scripts use this for keys they did not
    /// declare; never blocking keeps the ascending-order rule deadlock-free.
    pub fn try_add(&mut self, id: ShardId) -> bool {
        let pos = match self.held.binary_search_by(|(h, _)| h.cmp(&id)) {
            Ok(_) => return true,
            Err(p) => p,
        };
        match self.ks.dbs[id.0 as usize].shards()[id.1 as usize].try_lock() {
            Some(mut g) => {
                // A running snapshot captures the shard before it changes.
                self.ks.snap_check(id, &mut g);
                self.held.insert(pos, (id, g));
                true
            }
            None => false,
        }
    }

    pub fn holds_any(&self) -> bool {
        !self.held.is_empty()
    }

    /// Releases every lock.
    pub fn release(&mut self) {
        self.held.clear();
        self.memo.0 = 0;
    }

    /// Remembers that `key` (this very slice, which lives as long as the
    /// command) maps to shard `id`, already locked.
    #[inline]
    pub fn remember(&mut self, key: &[u8], id: ShardId) {
        self.memo = (key.as_ptr() as usize, key.len(), id);
    }

    fn position(&self, id: ShardId) -> Result<usize, usize> {
        // Most commands hold one or two shards: a linear scan beats bisection.
        if self.held.len() <= 8 {
            for (i, (h, _)) in self.held.iter().enumerate() {
                if *h == id {
                    return Ok(i);
                }
            }
            return Err(0);
        }
        self.held.binary_search_by(|(h, _)| h.cmp(&id))
    }

    /// The shard of `key` in database `db`. The command's lock set must
    /// have included it; if it did not, the shard is locked now (a bug in a
    /// key spec, caught in debug builds).
    pub fn shard(&mut self, db: usize, key: &[u8]) -> &mut Shard {
        let (p, n, id) = self.memo;
        if p == key.as_ptr() as usize && n == key.len() && id.0 == db as u32 {
            debug_assert_eq!(id.1 as usize, shard_of(key));
            // A single-key command holds just that shard.
            if self.held.len() == 1 && self.held[0].0 == id {
                return &mut self.held[0].1;
            }
            return self.shard_at(id);
        }
        self.shard_at((db as u32, shard_of(key) as u32))
    }

    pub fn shard_at(&mut self, id: ShardId) -> &mut Shard {
        match self.position(id) {
            Ok(i) => &mut self.held[i].1,
            Err(_) => {
                debug_assert!(false, "shard {id:?} used without being locked");
                let g = self.ks.lock_shard(id.0 as usize, id.1 as usize);
                self.held.push((id, g));
                self.held.sort_by_key(|(h, _)| *h);
                let i = self.position(id).ok().unwrap();
                &mut self.held[i].1
            }
        }
    }

    /// Visits every shard of a database in order; `f` returns false to stop.
    pub fn for_each_shard(&mut self, db: usize, f: impl FnMut(usize, &mut Shard) -> bool) {
        self.walk_shards(db, true, f)
    }

    /// [`Locks::for_each_shard`] for a walk that only looks (DBSIZE, KEYS,
    /// digests): shards a running snapshot has not reached are left to
    /// its walker instead of being captured all at once. Keys such a walk
    /// expires lazily may then be missing from the snapshot; they were
    /// expired, and their DELs follow in the stream.
    pub fn for_each_shard_to_look(&mut self, db: usize, f: impl FnMut(usize, &mut Shard) -> bool) {
        self.walk_shards(db, false, f)
    }

    /// Locks a shard this context does not hold, capturing it for a
    /// running snapshot first when `capture`.
    fn lock_unheld(&self, db: usize, i: usize, capture: bool) -> MutexGuard<'a, Shard> {
        if capture {
            self.ks.lock_shard(db, i)
        } else {
            self.ks.dbs[db].shards()[i].lock()
        }
    }

    fn walk_shards(
        &mut self,
        db: usize,
        capture: bool,
        mut f: impl FnMut(usize, &mut Shard) -> bool,
    ) {
        for i in 0..SHARDS {
            let id = (db as u32, i as u32);
            let go_on = match self.position(id) {
                Ok(p) => f(i, &mut self.held[p].1),
                // Nothing to see in a database never allocated.
                Err(_) if !self.ks.allocated(db) => f(i, &mut Shard::default()),
                Err(_) => {
                    let mut g = self.lock_unheld(db, i, capture);
                    let r = f(i, &mut g);
                    if !g.expired_log.is_empty() {
                        let log = g.expired_log.drain(..).map(|k| (db, k));
                        self.expired_elsewhere.extend(log);
                    }
                    r
                }
            };
            if !go_on {
                break;
            }
        }
    }

    /// Takes the names of keys that expired in the held shards: (db, key).
    pub fn drain_expired(&mut self) -> Vec<(usize, Vec<u8>)> {
        let mut out = std::mem::take(&mut self.expired_elsewhere);
        for ((db, _), g) in self.held.iter_mut() {
            if !g.expired_log.is_empty() {
                out.extend(g.expired_log.drain(..).map(|k| (*db as usize, k)));
            }
        }
        out
    }

    /// Like [`Locks::with_shard_index`] but locking without the snapshot
    /// check (the snapshot walker does its own).
    pub fn with_shard_index_raw<R>(
        &mut self,
        db: usize,
        i: usize,
        f: impl FnOnce(&mut Shard) -> R,
    ) -> R {
        let id = (db as u32, i as u32);
        match self.position(id) {
            Ok(p) => f(&mut self.held[p].1),
            Err(_) => match self.ks.dbs[db].allocated() {
                Some(sh) => f(&mut sh[i].lock()),
                None => f(&mut Shard::default()),
            },
        }
    }

    /// Runs `f` on one shard by index (SCAN's cursor), locking it if needed.
    /// A database never allocated is seen as empty: for looking only.
    pub fn with_shard_index<R>(
        &mut self,
        db: usize,
        i: usize,
        f: impl FnOnce(&mut Shard) -> R,
    ) -> R {
        if !self.ks.allocated(db) && self.position((db as u32, i as u32)).is_err() {
            return f(&mut Shard::default());
        }
        self.visit_shard(db, i, false, f)
    }

    /// Like [`Locks::with_shard_index`] for a change: allocates the
    /// database's shards if needed.
    pub fn with_shard_mut<R>(&mut self, db: usize, i: usize, f: impl FnOnce(&mut Shard) -> R) -> R {
        self.visit_shard(db, i, true, f)
    }

    fn visit_shard<R>(
        &mut self,
        db: usize,
        i: usize,
        capture: bool,
        f: impl FnOnce(&mut Shard) -> R,
    ) -> R {
        let id = (db as u32, i as u32);
        match self.position(id) {
            Ok(p) => f(&mut self.held[p].1),
            Err(_) => {
                let mut g = self.lock_unheld(db, i, capture);
                let r = f(&mut g);
                if !g.expired_log.is_empty() {
                    let log = g.expired_log.drain(..).map(|k| (db, k));
                    self.expired_elsewhere.extend(log);
                }
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from Redis's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(crc16(b"123456789"), 0x31c3);
        // The table-driven CRC against the generic implementation, for
        // every length around the 8-byte chunks and all byte values.
        let reference = crc::Crc::<u16>::new(&crc::CRC_16_XMODEM);
        let mut data: Vec<u8> = Vec::new();
        let mut x: u32 = 12345;
        for len in 0..100 {
            assert_eq!(crc16(&data), reference.checksum(&data), "length {len}");
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            data.push((x >> 16) as u8);
        }
        for b in 0..=255u8 {
            let d = [b, b ^ 0x5a, 0xff, b, 0, 1, 2, b, 0x80];
            assert_eq!(crc16(&d), reference.checksum(&d));
        }
    }

    #[test]
    fn locks_in_order_and_find_shards() {
        let ks = Keyspace::new(2);
        let mut l = Locks::new(&ks);
        let mut ids = vec![
            (1, shard_of(b"b") as u32),
            (0, shard_of(b"a") as u32),
            (0, shard_of(b"a") as u32),
        ];
        l.acquire(&mut ids);
        l.shard(0, b"a").insert(b"a", Value::Str(Str::Int(1)), None);
        l.shard(1, b"b").insert(b"b", Value::Str(Str::Int(2)), None);
        l.release();
        assert_eq!(ks.db(0).len(), 1);
        assert_eq!(ks.db(1).len(), 1);
        let mut n = 0;
        Locks::new(&ks).for_each_shard(0, |_, s| {
            n += s.len();
            true
        });
        assert_eq!(n, 1);
    }
}
