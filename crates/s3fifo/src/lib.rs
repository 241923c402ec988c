//! The adaptive S3-FIFO eviction engine's core, shared by the Lodestone
//! server (`keyspace/s3fifo.rs`, one queue pair per shard) and its
//! simulator (`replay::s3`), so both make the same decisions.
//!
//! S3-FIFO (Yang et al., SOSP '23) keeps a small FIFO where new keys land,
//! a main FIFO run as a CLOCK, and a ghost FIFO of recently evicted keys.
//! The small queue's head moves to main if it was read while queued, else
//! it leaves (remembered by the ghost); a key inserted while remembered
//! goes straight to main. Main re-queues a key with a nonzero frequency
//! (lowering it) and evicts one at zero. Lodestone's version adapts to
//! recency-heavy phases (a hot set that shifts):
//! - the ghost remembers keys evicted from main too, with their origin;
//! - the small queue's share moves like ARC's target: a ghost hit on a key
//!   the small queue dropped grows it, one on a key main dropped shrinks
//!   it, by [`STEP_PPM`] times the ratio of the other origin's ghosts to
//!   this one's, between one key and [`SMALL_MAX_PPM`];
//! - the frequency saturates at [`MAX_FREQ`] (2).
//!
//! Memory per key is what this crate is about:
//! - a queue slot is 8 bytes (a 32-bit key reference and the 32-bit global
//!   insertion number) ([`Queue`]): up to [`CHUNK`] slots in one ring sized
//!   to fit (4 to 32 slots, a jemalloc size class each, nothing while
//!   empty), beyond that in fixed chunks of [`CHUNK`]: no doubling, an
//!   emptied chunk is freed at once;
//! - the ghost is one table for the whole cache ([`Global`]): 64-byte
//!   buckets of 15 fingerprints (32 bits, the low bit the origin), each
//!   bucket a FIFO ring, sized to [`ghost_cap`] (0.75 x queued keys), so a
//!   ghost costs ~4.3 bytes and there is no separate set or ring.
//!
//! A fingerprint is looked up in its bucket only, so the ghost is FIFO per
//! bucket: a ghost lives for 15 insertions into its bucket, on average
//! the table's capacity, rather than exactly `ghost_cap` insertions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

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
/// Where the per-key frequency saturates: a key left alone survives at
/// most MAX_FREQ + 1 passes of the main CLOCK.
pub const MAX_FREQ: u8 = 2;
/// Slots per queue chunk (256 bytes of 8-byte slots), and the largest ring.
pub const CHUNK: usize = 32;
/// Fingerprints per ghost bucket (the 16th word is the bucket's cursor).
pub const WAYS: usize = 15;

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

/// The ghost's fingerprint of a 64-bit key hash: never 0 (an empty way),
/// the low bit left for the origin.
#[inline]
pub fn fingerprint(h: u64) -> u32 {
    match ((h >> 32) as u32 ^ h as u32) & !1 {
        0 => 2,
        f => f,
    }
}

/// One queue slot: the key's reference and its global insertion number.
#[derive(Clone, Copy, Default)]
pub struct Slot<K> {
    pub key: K,
    pub seq: u32,
}

/// Ring capacities, in slots, a queue goes through before it is split in
/// chunks of [`CHUNK`] (its last one): each ring of 8-byte slots is one
/// of jemalloc's size classes (32 ... 256 bytes), and each is at most 1.5x
/// the one before, so a small queue wastes at most a third of its ring.
pub const RING_CAPS: [usize; 7] = [4, 6, 8, 12, 16, 24, CHUNK];

/// Where a queue's slots live.
enum Store<K> {
    /// Up to [`CHUNK`] slots: one ring of a [`RING_CAPS`] capacity (none
    /// allocated while the queue is empty).
    Ring(Box<[Slot<K>]>),
    /// More: full-size chunks, the head's first (the list boxed so that
    /// the many small queues stay small: 24 bytes instead of 40).
    #[allow(clippy::box_collection)]
    Chunks(Box<VecDeque<Box<[Slot<K>; CHUNK]>>>),
}

/// A FIFO of slots. Up to [`CHUNK`] slots it is one ring that grows and
/// shrinks through [`RING_CAPS`] (a shard holding a few keys holds a few
/// slots, and an empty queue holds nothing); beyond, it is a list of
/// fixed chunks: pushing never copies slots, and the chunk emptied by a
/// pop is freed at once.
pub struct Queue<K> {
    store: Store<K>,
    /// The front slot's index in the ring, or in the first chunk.
    head: u32,
    len: u32,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Queue {
            store: Store::Ring(Box::new([])),
            head: 0,
            len: 0,
        }
    }
}

/// The smallest ring capacity above `n` slots.
fn ring_above(n: usize) -> usize {
    RING_CAPS.into_iter().find(|&c| c > n).unwrap_or(CHUNK)
}

impl<K: Copy + Default> Queue<K> {
    /// Slots queued.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when no slot is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a slot at the tail.
    #[inline]
    pub fn push(&mut self, key: K, seq: u32) {
        let s = Slot { key, seq };
        let (head, len) = (self.head as usize, self.len as usize);
        match &mut self.store {
            Store::Ring(r) if len < r.len() => {
                let at = head + len;
                let cap = r.len();
                r[if at >= cap { at - cap } else { at }] = s;
            }
            Store::Ring(_) => {
                self.grow();
                return self.push(key, seq);
            }
            Store::Chunks(c) => {
                let at = head + len;
                if at / CHUNK == c.len() {
                    c.push_back(Box::new([Slot::default(); CHUNK]));
                }
                c[at / CHUNK][at % CHUNK] = s;
            }
        }
        self.len += 1;
    }

    /// A full ring moves to the next capacity, or, at [`CHUNK`], becomes
    /// the first chunk of a chunk list.
    #[cold]
    fn grow(&mut self) {
        let Store::Ring(r) = &mut self.store else {
            return;
        };
        if r.len() < CHUNK {
            let cap = ring_above(r.len());
            self.resize(cap);
            return;
        }
        let mut r = std::mem::replace(r, Box::new([]));
        r.rotate_left(self.head as usize);
        let first: Box<[Slot<K>; CHUNK]> = r.try_into().ok().expect("a full ring is a chunk");
        let mut c = VecDeque::new();
        c.push_back(first);
        self.store = Store::Chunks(Box::new(c));
        self.head = 0;
    }

    /// Copies a ring's slots, head first, into a ring of `cap` slots.
    fn resize(&mut self, cap: usize) {
        let mut r = vec![Slot::default(); cap].into_boxed_slice();
        for (i, s) in self.iter().enumerate() {
            r[i] = s;
        }
        self.store = Store::Ring(r);
        self.head = 0;
    }

    /// The slot `i` places behind the head.
    #[inline]
    fn at(&self, i: usize) -> Slot<K> {
        let at = self.head as usize + i;
        match &self.store {
            Store::Ring(r) => r[if at >= r.len() { at - r.len() } else { at }],
            Store::Chunks(c) => c[at / CHUNK][at % CHUNK],
        }
    }

    /// The head slot.
    #[inline]
    pub fn front(&self) -> Option<Slot<K>> {
        (self.len > 0).then(|| self.at(0))
    }

    /// Takes the head slot. A ring at most half full shrinks to the
    /// smallest capacity above its length (so a queue that hovers around
    /// one size does not resize on every push and pop).
    #[inline]
    pub fn pop(&mut self) -> Option<Slot<K>> {
        let s = self.front()?;
        self.head += 1;
        self.len -= 1;
        let len = self.len as usize;
        match &mut self.store {
            Store::Ring(r) => {
                let cap = r.len();
                if len == 0 {
                    *self = Queue::default();
                } else if len * 2 <= cap && cap > RING_CAPS[0] {
                    self.resize(ring_above(len));
                } else if self.head as usize == cap {
                    self.head = 0;
                }
            }
            Store::Chunks(c) => {
                if self.head as usize == CHUNK {
                    c.pop_front();
                    self.head = 0;
                }
                // Down to one chunk: it is a ring of CHUNK slots.
                if c.len() == 1 {
                    let only: Box<[Slot<K>]> = c.pop_front().expect("one chunk");
                    self.store = Store::Ring(only);
                }
            }
        }
        Some(s)
    }

    /// The slots, head first.
    pub fn iter(&self) -> impl Iterator<Item = Slot<K>> + '_ {
        (0..self.len as usize).map(|i| self.at(i))
    }

    /// Keeps only the slots whose key `keep` accepts (in order); returns
    /// how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(K) -> bool) -> usize {
        let mut q = Queue::default();
        for s in self.iter() {
            if keep(s.key) {
                q.push(s.key, s.seq);
            }
        }
        let gone = self.len() - q.len();
        *self = q;
        gone
    }

    /// Heap bytes held: the ring, or the chunks and the chunk list.
    pub fn heap_bytes(&self) -> usize {
        match &self.store {
            Store::Ring(r) => std::mem::size_of_val::<[Slot<K>]>(r),
            Store::Chunks(c) => {
                std::mem::size_of::<VecDeque<Box<[Slot<K>; CHUNK]>>>()
                    + c.capacity() * std::mem::size_of::<usize>()
                    + c.len() * std::mem::size_of::<[Slot<K>; CHUNK]>()
            }
        }
    }
}

/// One ghost bucket: a FIFO ring of fingerprints (0 = empty) and the next
/// way to overwrite; one cache line.
#[repr(align(64))]
struct Bucket {
    ways: [AtomicU32; WAYS],
    next: AtomicU32,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            ways: std::array::from_fn(|_| AtomicU32::new(0)),
            next: AtomicU32::new(0),
        }
    }
}

/// Ghost buckets to allocate for `want`: enough to fill the allocator's
/// size class of `want` buckets (jemalloc's classes from 256 bytes up are
/// four per doubling), so the table's bytes are what it reports.
pub fn ghost_buckets(want: usize) -> usize {
    let b = want.max(1) * std::mem::size_of::<Bucket>();
    if b <= 256 {
        return want.max(1);
    }
    let step = 1usize << (usize::BITS - 1 - b.leading_zeros() - 2);
    b.next_multiple_of(step) / std::mem::size_of::<Bucket>()
}

/// A fingerprint's bucket among `n` (from its high bits).
#[inline]
fn bucket_of(f: u32, n: usize) -> usize {
    ((f as u64 * n as u64) >> 32) as usize
}

/// The engine's state for one cache (process-wide in the server, where
/// maxmemory is process-wide too): the queue sizes, the small share, the
/// insertion clock and the ghost. Plain relaxed atomics and a lock taken
/// for writing only when the ghost is resized: the figures steer
/// eviction, exactness is not needed.
pub struct Global {
    /// Slots in all small queues / all main queues (stale ones included).
    small: AtomicUsize,
    main: AtomicUsize,
    /// The small queue's share of all slots, in ppm.
    ppm: AtomicU64,
    /// Ghosts remembered per origin [small, main].
    ghosts: [AtomicUsize; 2],
    /// The insertion clock (wrapping).
    seq: AtomicU32,
    ghost: RwLock<Vec<Bucket>>,
}

impl Default for Global {
    fn default() -> Self {
        Global::new()
    }
}

impl Global {
    /// An empty cache's state.
    pub const fn new() -> Global {
        Global {
            small: AtomicUsize::new(0),
            main: AtomicUsize::new(0),
            ppm: AtomicU64::new(SMALL_INIT_PPM),
            ghosts: [AtomicUsize::new(0), AtomicUsize::new(0)],
            seq: AtomicU32::new(0),
            ghost: RwLock::new(Vec::new()),
        }
    }

    /// Whether the next pop should come from the small queues.
    pub fn pop_small(&self) -> bool {
        let (s, m) = (self.small.load(Relaxed), self.main.load(Relaxed));
        s >= small_target(s + m, self.ppm.load(Relaxed)) || m == 0
    }

    /// Slots queued in all shards.
    pub fn len(&self) -> usize {
        self.small.load(Relaxed) + self.main.load(Relaxed)
    }

    /// True when no slot is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current insertion number.
    pub fn now(&self) -> u32 {
        self.seq.load(Relaxed)
    }

    /// The small queue's share, in ppm.
    pub fn ppm(&self) -> u64 {
        self.ppm.load(Relaxed)
    }

    /// Ghosts remembered per origin [small, main].
    pub fn ghosts(&self) -> [usize; 2] {
        [self.ghosts[0].load(Relaxed), self.ghosts[1].load(Relaxed)]
    }

    /// (small slots, main slots, small share ppm, small ghosts, main ghosts)
    /// for INFO and tests.
    pub fn stats(&self) -> (usize, usize, u64, usize, usize) {
        let g = self.ghosts();
        (
            self.small.load(Relaxed),
            self.main.load(Relaxed),
            self.ppm(),
            g[0],
            g[1],
        )
    }

    /// Back to the initial share (policy switched on, FLUSHALL).
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

    fn read(&self) -> RwLockReadGuard<'_, Vec<Bucket>> {
        self.ghost.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Vec<Bucket>> {
        self.ghost.write().unwrap_or_else(|e| e.into_inner())
    }

    /// If a key with this hash was evicted recently, forgets it, moves the
    /// small share accordingly and returns true (the key belongs in main).
    #[inline]
    pub fn take_ghost(&self, h: u64) -> bool {
        if self.ghosts[0].load(Relaxed) == 0 && self.ghosts[1].load(Relaxed) == 0 {
            return false;
        }
        let f = fingerprint(h);
        let t = self.read();
        if t.is_empty() {
            return false;
        }
        for w in &t[bucket_of(f, t.len())].ways {
            let v = w.load(Relaxed);
            if v & !1 == f && w.compare_exchange(v, 0, Relaxed, Relaxed).is_ok() {
                let from_main = v & 1 == 1;
                self.ghosts[from_main as usize].fetch_sub(1, Relaxed);
                let ppm = adapt(self.ppm(), from_main, self.ghosts());
                self.ppm.store(ppm, Relaxed);
                return true;
            }
        }
        false
    }

    /// Remembers a key evicted from main (`from_main`) or small. The ghost
    /// is resized first when [`ghost_cap`] of the queued keys moved more
    /// than an eighth away from its capacity.
    pub fn push_ghost(&self, h: u64, from_main: bool) {
        let f = fingerprint(h) | from_main as u32;
        let want = ghost_cap(self.len()).div_ceil(WAYS);
        // Tables are rounded up to their size class (up to 25%), so the
        // band below them is wider than the one above.
        let keep = |n: usize| n > 0 && want * 8 <= n * 9 && want * 8 >= n * 5;
        {
            let t = self.read();
            if keep(t.len()) {
                self.put(&t, f);
                return;
            }
        }
        let mut t = self.write();
        if !keep(t.len()) {
            self.resize(&mut t, ghost_buckets(want));
        }
        self.put(&t, f);
    }

    /// Writes `f` into its bucket's next way, forgetting what was there.
    fn put(&self, t: &[Bucket], f: u32) {
        // Counted first: a racing take never drives a count below zero.
        self.ghosts[(f & 1) as usize].fetch_add(1, Relaxed);
        let b = &t[bucket_of(f, t.len())];
        let i = b.next.load(Relaxed) as usize % WAYS;
        b.next.store(((i + 1) % WAYS) as u32, Relaxed);
        let old = b.ways[i].swap(f, Relaxed);
        if old != 0 {
            self.ghosts[(old & 1) as usize].fetch_sub(1, Relaxed);
        }
    }

    /// Rebuilds the ghost with `n` buckets, re-inserting the old buckets'
    /// fingerprints oldest first across all of them (so each new bucket
    /// stays roughly in eviction order).
    fn resize(&self, t: &mut Vec<Bucket>, n: usize) {
        let old = std::mem::take(t);
        t.reserve_exact(n);
        t.extend((0..n).map(|_| Bucket::new()));
        for k in 0..WAYS {
            for b in &old {
                let i = (b.next.load(Relaxed) as usize + k) % WAYS;
                let v = b.ways[i].load(Relaxed);
                if v != 0 {
                    self.ghosts[(v & 1) as usize].fetch_sub(1, Relaxed);
                    self.put(t, v);
                }
            }
        }
    }

    /// Forgets every ghost and frees the table (policy switched off,
    /// FLUSHALL).
    pub fn clear_ghosts(&self) {
        let mut t = self.write();
        *t = Vec::new();
        self.ghosts[0].store(0, Relaxed);
        self.ghosts[1].store(0, Relaxed);
    }

    /// Heap bytes held by the ghost.
    pub fn ghost_bytes(&self) -> usize {
        self.read().capacity() * std::mem::size_of::<Bucket>()
    }
}

/// One shard's small and main queues; their slot counts are kept in a
/// [`Global`], every push stamped with its insertion clock.
pub struct Queues<K> {
    small: Queue<K>,
    main: Queue<K>,
}

impl<K> Default for Queues<K> {
    fn default() -> Self {
        Queues {
            small: Queue::default(),
            main: Queue::default(),
        }
    }
}

impl<K: Copy + Default> Queues<K> {
    fn q(&mut self, main: bool) -> &mut Queue<K> {
        if main {
            &mut self.main
        } else {
            &mut self.small
        }
    }

    /// Queues a key at the tail of main or small.
    #[inline]
    pub fn push(&mut self, g: &Global, main: bool, key: K) {
        let seq = g.tick();
        self.q(main).push(key, seq);
        g.count(main).fetch_add(1, Relaxed);
    }

    /// Takes the head slot's key of main or small.
    #[inline]
    pub fn pop(&mut self, g: &Global, main: bool) -> Option<K> {
        let s = self.q(main).pop()?;
        g.count(main).fetch_sub(1, Relaxed);
        Some(s.key)
    }

    /// The head slot of main or small: (key, insertion number).
    #[inline]
    pub fn head(&self, main: bool) -> Option<(K, u32)> {
        let q = if main { &self.main } else { &self.small };
        q.front().map(|s| (s.key, s.seq))
    }

    /// Slots in (small, main).
    pub fn slots(&self) -> (usize, usize) {
        (self.small.len(), self.main.len())
    }

    /// Keeps only the slots of one queue whose key `keep` accepts.
    pub fn retain(&mut self, g: &Global, main: bool, keep: impl FnMut(K) -> bool) {
        let gone = self.q(main).retain(keep);
        g.count(main).fetch_sub(gone, Relaxed);
    }

    /// Heap bytes held by both queues.
    pub fn heap_bytes(&self) -> usize {
        self.small.heap_bytes() + self.main.heap_bytes()
    }

    /// Empties both queues, taking their slots out of `g`'s counts.
    pub fn release(&mut self, g: &Global) {
        g.small.fetch_sub(self.small.len(), Relaxed);
        g.main.fetch_sub(self.main.len(), Relaxed);
        *self = Queues::default();
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
        assert_eq!(fingerprint(0), 2);
        assert_eq!(fingerprint(1 << 32 | 1), 2, "never 0");
    }

    /// Chunks held (0 while the queue is a ring).
    fn chunks<K>(q: &Queue<K>) -> usize {
        match &q.store {
            Store::Ring(_) => 0,
            Store::Chunks(c) => c.len(),
        }
    }

    #[test]
    fn queue_is_a_fifo_in_chunks() {
        let mut q = Queue::<u32>::default();
        assert_eq!(q.heap_bytes(), 0);
        for i in 0..100 {
            q.push(i, i + 1000);
        }
        assert_eq!(q.len(), 100);
        assert_eq!(chunks(&q), 4);
        for i in 0..40 {
            let s = q.pop().unwrap();
            assert_eq!((s.key, s.seq), (i, i + 1000));
        }
        assert_eq!(chunks(&q), 3, "the first chunk was freed");
        assert_eq!(q.retain(|k| k % 2 == 0), 30);
        assert_eq!(
            q.iter().map(|s| s.key).collect::<Vec<_>>(),
            (40..100).step_by(2).collect::<Vec<_>>()
        );
        assert_eq!((chunks(&q), q.heap_bytes()), (0, 256), "30 slots: a ring");
        while q.pop().is_some() {}
        assert_eq!((q.len(), q.heap_bytes()), (0, 0));
        q.push(7, 1);
        assert_eq!(q.front().map(|s| s.key), Some(7));
    }

    #[test]
    fn small_queues_are_rings_of_size_classes() {
        assert_eq!(std::mem::size_of::<Queue<u32>>(), 24);
        assert_eq!(std::mem::size_of::<Queues<u32>>(), 48);
        let mut q = Queue::<u32>::default();
        // Bytes held after each push: the ring grows through RING_CAPS.
        let mut held = Vec::new();
        for i in 0..40 {
            q.push(i, i);
            held.push(q.heap_bytes());
        }
        let ring = |n: usize| ring_above(n - 1) * 8;
        for n in 1..=32 {
            assert_eq!(held[n - 1], ring(n), "{n} slots");
        }
        // 33 slots: two chunks and their list (a VecDeque of 4 pointers).
        let list = std::mem::size_of::<VecDeque<Box<[Slot<u32>; CHUNK]>>>() + 4 * 8;
        assert_eq!(held[32], list + 2 * 256);
        assert_eq!(chunks(&q), 2);
        // Popping: back to one chunk is back to a ring, which then shrinks
        // once at most half full, to the capacity just above its length.
        for _ in 0..32 {
            q.pop();
        }
        assert_eq!((chunks(&q), q.len(), q.heap_bytes()), (0, 8, 256));
        let mut sizes = vec![];
        while let Some(s) = q.pop() {
            assert_eq!(s.key as usize, 40 - q.len() - 1, "FIFO order kept");
            sizes.push(q.heap_bytes() / 8);
        }
        assert_eq!(
            sizes,
            [8, 8, 8, 6, 4, 4, 4, 0],
            "an empty queue holds nothing"
        );
        for i in 0..24 {
            q.push(i, i);
        }
        let mut sizes = vec![];
        while q.pop().is_some() {
            sizes.push((q.len(), q.heap_bytes() / 8));
        }
        assert_eq!(&sizes[10..14], [(13, 24), (12, 16), (11, 16), (10, 16)]);
    }

    #[test]
    fn queue_matches_a_model_through_wraps_and_resizes() {
        let mut q = Queue::<u32>::default();
        let mut model = VecDeque::new();
        let mut x = 12345u64;
        for step in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Phases that grow and drain, so every shape is crossed.
            let grow = (step / 500) % 2 == 0;
            if x >> 60 < if grow { 10 } else { 6 } {
                q.push(step, step ^ 7);
                model.push_back(step);
            } else {
                assert_eq!(
                    q.pop().map(|s| (s.key, s.seq)),
                    model.pop_front().map(|k| (k, k ^ 7))
                );
            }
            assert_eq!(q.len(), model.len());
            assert_eq!(q.front().map(|s| s.key), model.front().copied());
            if step % 97 == 0 {
                assert!(q.iter().map(|s| s.key).eq(model.iter().copied()));
                let (n, b) = (q.len(), q.heap_bytes());
                if chunks(&q) == 0 {
                    // A ring: at least the slots, at most 2x (or 4 slots).
                    assert!(
                        b >= n * 8 && b <= (2 * n).max(4) * 8,
                        "{n} slots in {b} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn ghost_is_a_bounded_fifo_with_origin() {
        let g = Global::new();
        let mut q = Queues::<u64>::default();
        for k in 0..200 {
            q.push(&g, true, k);
        }
        assert_eq!(g.stats().1, 200);
        // 150 ghosts at most: 10 buckets of 15.
        let h = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for i in 1..=1000u64 {
            g.push_ghost(h(i), i % 2 == 0);
        }
        assert_eq!(
            [1, 4, 10, 16, 17, 49_936].map(ghost_buckets),
            [1, 4, 10, 16, 20, 57_344],
            "64-byte buckets filling 64, 256, 640, 1 KiB, 1.25 KiB, 3.5 MiB"
        );
        let [gs, gm] = g.ghosts();
        assert!(gs + gm <= 150 && gs + gm > 100, "{gs} {gm}");
        assert_eq!(g.ghost_bytes(), 10 * 64);
        assert!(!g.take_ghost(h(1)), "the oldest are forgotten");
        let ppm = g.ppm();
        assert!(g.take_ghost(h(999)));
        assert!(g.ppm() > ppm, "a small ghost grows small");
        assert!(!g.take_ghost(h(999)), "taking forgets");
        let ppm = g.ppm();
        assert!(g.take_ghost(h(1000)));
        assert!(g.ppm() < ppm, "a main ghost shrinks it");
        assert_eq!(g.ghosts()[0] + g.ghosts()[1], gs + gm - 2);
        // Fewer keys: the ghost shrinks, keeping the newest.
        q.retain(&g, true, |k| k < 20);
        g.push_ghost(h(5000), false);
        assert_eq!(g.ghost_bytes(), 64);
        assert!(g.ghosts()[0] + g.ghosts()[1] <= WAYS);
        assert!(g.take_ghost(h(5000)));
        q.release(&g);
        assert_eq!(g.len(), 0);
        g.clear_ghosts();
        assert_eq!((g.ghosts(), g.ghost_bytes()), ([0, 0], 0));
    }
}
