//! The hash value type: its encodings (Redis's names: see `encoding`),
//! conversions between them, and the operations the hash commands need.
//!
//! Two encodings, converted exactly when Redis 7.2 converts (and never back):
//!
//! * `listpack`: small hashes. One byte buffer of pairs
//!   `[varint field len][field][varint value len][value]` in insertion order
//!   plus a count, like Redis's listpack: one allocation, linear lookups.
//!   Used while the hash has at most `hash-max-listpack-entries` pairs and
//!   no field or value longer than `hash-max-listpack-value` bytes.
//! * `hashtable`: a table of thin pointers, 8 bytes per slot, each to one
//!   allocation holding the field's 32-bit hash, the field and the value
//!   (Redis's dict spends a 24-byte entry, a bucket pointer and two sds
//!   headers per field). The table is an *ordered* linear-probing table:
//!   a field's home slot is given by the top bits of its hash, and occupied
//!   slots are kept sorted by hash (insertion shifts right to the next free
//!   slot, deletion shifts back). That gives expected O(1) lookups and lets
//!   HSCAN use the hash itself as the cursor: "every field with a hash below
//!   the cursor was returned". Growing or shrinking the table between calls
//!   changes slot positions but not hashes, so every field present for the
//!   whole scan is returned at least once (and, unlike Redis, exactly once).

use crate::keyspace::varint::{get_varint, put_varint, read_varint, varint_len};
use rand::Rng;
use std::alloc::{alloc, dealloc, Layout};
use std::hash::BuildHasher;
use std::ptr::NonNull;

/// The conversion thresholds (`hash-max-listpack-entries`, `-value`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

/// Redis refuses to let a listpack grow past 1 GB (`lpSafeToAdd`).
const LISTPACK_SAFETY: usize = 1 << 30;

/// The hash of a field, for the hashtable encoding. Seeded once per process
/// (so an attacker cannot choose colliding fields); stable for the life of
/// the process, which is what HSCAN cursors need.
#[inline]
pub fn field_hash(field: &[u8]) -> u32 {
    static STATE: std::sync::LazyLock<foldhash::quality::FixedState> =
        std::sync::LazyLock::new(|| foldhash::quality::FixedState::with_seed(rand::random()));
    (STATE.hash_one(field) >> 32) as u32
}

// ---------------------------------------------------------------------------
// listpack encoding

/// Pairs in one buffer, in insertion order.
#[derive(Clone, Default)]
struct Listpack {
    buf: Vec<u8>,
    len: u32,
}

/// Where one pair lives inside a listpack buffer.
struct LpPos {
    start: usize,
    value_at: usize,
    value_len: usize,
    end: usize,
}

impl Listpack {
    /// The pair starting at `start`.
    #[inline]
    fn pair_at(&self, start: usize) -> (LpPos, &[u8]) {
        let b = &self.buf;
        let (flen, n) = get_varint(&b[start..]);
        let fat = start + n;
        let vpos = fat + flen;
        let (vlen, m) = get_varint(&b[vpos..]);
        let value_at = vpos + m;
        (
            LpPos {
                start,
                value_at,
                value_len: vlen,
                end: value_at + vlen,
            },
            &b[fat..fat + flen],
        )
    }

    fn find(&self, field: &[u8]) -> Option<LpPos> {
        let mut at = 0;
        while at < self.buf.len() {
            let (pos, f) = self.pair_at(at);
            if f == field {
                return Some(pos);
            }
            at = pos.end;
        }
        None
    }

    fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.find(field)
            .map(|p| &self.buf[p.value_at..p.value_at + p.value_len])
    }

    /// Stores a pair; returns true if the field existed (an update).
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find(field) {
            Some(p) => {
                let vstart = p.value_at - varint_len(p.value_len);
                let mut enc = Vec::with_capacity(varint_len(value.len()) + value.len());
                put_varint(&mut enc, value.len());
                enc.extend_from_slice(value);
                if enc.len() > p.end - vstart {
                    self.buf.reserve_exact(enc.len() - (p.end - vstart));
                }
                self.buf.splice(vstart..p.end, enc);
                self.trim();
                true
            }
            None => {
                let add =
                    varint_len(field.len()) + field.len() + varint_len(value.len()) + value.len();
                self.buf.reserve_exact(add);
                put_varint(&mut self.buf, field.len());
                self.buf.extend_from_slice(field);
                put_varint(&mut self.buf, value.len());
                self.buf.extend_from_slice(value);
                self.len += 1;
                false
            }
        }
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        match self.find(field) {
            Some(p) => {
                self.buf.drain(p.start..p.end);
                self.len -= 1;
                self.trim();
                true
            }
            None => false,
        }
    }

    /// Gives back memory after shrinking, like a listpack realloc.
    fn trim(&mut self) {
        if self.buf.capacity() > self.buf.len() + 32 {
            self.buf.shrink_to_fit();
        }
    }

    fn iter(&self) -> LpIter<'_> {
        LpIter { lp: self, at: 0 }
    }
}

struct LpIter<'a> {
    lp: &'a Listpack,
    at: usize,
}

impl<'a> Iterator for LpIter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.lp.buf.len() {
            return None;
        }
        let (p, f) = self.lp.pair_at(self.at);
        self.at = p.end;
        Some((f, &self.lp.buf[p.value_at..p.end]))
    }
}

// ---------------------------------------------------------------------------
// hashtable encoding

/// One field and its value in a single allocation:
/// `[hash: u32][varint field len][field][varint value len][value]`.
struct Pair {
    ptr: NonNull<u8>,
}

// SAFETY: a Pair uniquely owns its allocation of plain bytes.
unsafe impl Send for Pair {}
unsafe impl Sync for Pair {}

impl Pair {
    fn new(hash: u32, field: &[u8], value: &[u8]) -> Pair {
        let size =
            4 + varint_len(field.len()) + field.len() + varint_len(value.len()) + value.len();
        let mut tmp = Vec::with_capacity(size);
        tmp.extend_from_slice(&hash.to_le_bytes());
        put_varint(&mut tmp, field.len());
        tmp.extend_from_slice(field);
        put_varint(&mut tmp, value.len());
        tmp.extend_from_slice(value);
        debug_assert_eq!(tmp.len(), size);
        let layout = Layout::from_size_align(size, 1).expect("pair layout");
        // SAFETY: size >= 6; the buffer is fully written from `tmp`.
        unsafe {
            let p = alloc(layout);
            let Some(ptr) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            std::ptr::copy_nonoverlapping(tmp.as_ptr(), p, size);
            Pair { ptr }
        }
    }

    #[inline]
    fn hash(&self) -> u32 {
        // SAFETY: the first 4 bytes hold the hash.
        unsafe { std::ptr::read_unaligned(self.ptr.as_ptr() as *const u32) }
    }

    /// The bytes after the hash, up to and including the value's varint
    /// (enough for `get_varint`, which stops at the last byte of a varint).
    #[inline]
    fn parts(&self) -> (usize, usize, usize, usize) {
        let p = self.ptr.as_ptr();
        // SAFETY: the varints were written by `new` and end before the data.
        unsafe {
            let (flen, n) = read_varint(p.add(4));
            let fat = 4 + n;
            let (vlen, m) = read_varint(p.add(fat + flen));
            (fat, flen, fat + flen + m, vlen)
        }
    }

    #[inline]
    fn field(&self) -> &[u8] {
        let (fat, flen, _, _) = self.parts();
        // SAFETY: in bounds of the allocation, see `new`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(fat), flen) }
    }

    #[inline]
    fn value(&self) -> &[u8] {
        let (_, _, vat, vlen) = self.parts();
        // SAFETY: in bounds of the allocation, see `new`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(vat), vlen) }
    }

    #[inline]
    fn field_value(&self) -> (&[u8], &[u8]) {
        let (fat, flen, vat, vlen) = self.parts();
        let p = self.ptr.as_ptr();
        // SAFETY: in bounds of the allocation, see `new`.
        unsafe {
            (
                std::slice::from_raw_parts(p.add(fat), flen),
                std::slice::from_raw_parts(p.add(vat), vlen),
            )
        }
    }

    fn size(&self) -> usize {
        let (_, _, vat, vlen) = self.parts();
        vat + vlen
    }

    fn set_value(&mut self, value: &[u8]) {
        let (_, _, vat, vlen) = self.parts();
        if vlen == value.len() {
            // SAFETY: same length, same place.
            unsafe {
                std::ptr::copy_nonoverlapping(value.as_ptr(), self.ptr.as_ptr().add(vat), vlen)
            };
        } else {
            *self = Pair::new(self.hash(), self.field(), value);
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let size = self.size();
        // SAFETY: same layout as allocated in `new`.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(size, 1),
            )
        };
    }
}

/// The ordered linear-probing table (see the module docs).
///
/// Invariants: `slots.len() == (1 << bits) + slack(bits)`; a pair sits at or
/// after its home slot `home(hash)`, every slot between its home and itself
/// is occupied, and occupied slots are in non-decreasing hash order.
struct Table {
    slots: Box<[Option<Pair>]>,
    len: usize,
    bits: u32,
}

const MIN_BITS: u32 = 2;

/// Slots past the last home slot, so a run near the end never wraps around
/// (wrapping would break the sorted order HSCAN relies on).
fn slack(bits: u32) -> usize {
    ((1usize << bits) / 4).clamp(4, 256)
}

#[inline]
fn home_of(bits: u32, h: u32) -> usize {
    (((h as u64) << bits) >> 32) as usize
}

/// The smallest table size (in bits) that keeps `n` pairs under 3/4 load.
fn bits_for(n: usize) -> u32 {
    let mut bits = MIN_BITS;
    while n * 4 > (3usize << bits) {
        bits += 1;
    }
    bits
}

impl Table {
    fn with_bits(bits: u32) -> Table {
        let n = (1usize << bits) + slack(bits);
        Table {
            slots: (0..n).map(|_| None).collect(),
            len: 0,
            bits,
        }
    }

    #[inline]
    fn home(&self, h: u32) -> usize {
        home_of(self.bits, h)
    }

    fn find(&self, h: u32, field: &[u8]) -> Option<usize> {
        let mut p = self.home(h);
        while p < self.slots.len() {
            let x = self.slots[p].as_ref()?;
            let xh = x.hash();
            if xh > h {
                return None;
            }
            if xh == h && x.field() == field {
                return Some(p);
            }
            p += 1;
        }
        None
    }

    fn get(&self, field: &[u8]) -> Option<&[u8]> {
        let i = self.find(field_hash(field), field)?;
        self.slots[i].as_ref().map(|p| p.value())
    }

    /// Stores a pair; returns true if the field existed (an update).
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let h = field_hash(field);
        if let Some(i) = self.find(h, field) {
            self.slots[i].as_mut().unwrap().set_value(value);
            return true;
        }
        self.insert_new(Pair::new(h, field, value));
        false
    }

    fn insert_new(&mut self, pair: Pair) {
        if (self.len + 1) * 4 > (3usize << self.bits) {
            self.resize(self.bits + 1);
        }
        let mut pair = pair;
        loop {
            match self.try_place(pair) {
                Ok(()) => break,
                Err(p) => {
                    pair = p;
                    self.resize(self.bits + 1);
                }
            }
        }
        self.len += 1;
    }

    /// Puts a pair in its sorted place, shifting the run after it right by
    /// one; fails (returning the pair) when the run reaches the table's end.
    fn try_place(&mut self, pair: Pair) -> Result<(), Pair> {
        let h = pair.hash();
        let n = self.slots.len();
        let mut p = self.home(h);
        while p < n && self.slots[p].as_ref().is_some_and(|x| x.hash() <= h) {
            p += 1;
        }
        let mut e = p;
        while e < n && self.slots[e].is_some() {
            e += 1;
        }
        if e == n {
            return Err(pair);
        }
        self.slots[p..=e].rotate_right(1);
        self.slots[p] = Some(pair);
        Ok(())
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some(i) = self.find(field_hash(field), field) else {
            return false;
        };
        self.slots[i] = None;
        let mut hole = i;
        let mut q = i + 1;
        while q < self.slots.len() {
            match &self.slots[q] {
                Some(x) if self.home(x.hash()) <= hole => {
                    self.slots.swap(hole, q);
                    hole = q;
                    q += 1;
                }
                _ => break,
            }
        }
        self.len -= 1;
        // Shrink when under 10% full, as Redis's htNeedsResize.
        if self.bits > MIN_BITS && self.len * 10 < (1usize << self.bits) {
            self.resize(bits_for(self.len));
        }
        true
    }

    /// Whether all pairs (taken in order) fit a table of `bits`.
    fn fits(&self, bits: u32) -> bool {
        let n = (1usize << bits) + slack(bits);
        let mut next = 0usize;
        for x in self.slots.iter().flatten() {
            let p = home_of(bits, x.hash()).max(next);
            if p >= n {
                return false;
            }
            next = p + 1;
        }
        true
    }

    /// Rebuilds with `bits` (or more, if a run would not fit). Pairs move
    /// in sorted order, so each lands at max(home, previous + 1).
    fn resize(&mut self, mut bits: u32) {
        while !self.fits(bits) {
            bits += 1;
        }
        let mut new = Table::with_bits(bits);
        let mut next = 0usize;
        for slot in self.slots.iter_mut() {
            if let Some(x) = slot.take() {
                let p = new.home(x.hash()).max(next);
                new.slots[p] = Some(x);
                next = p + 1;
            }
        }
        new.len = self.len;
        *self = new;
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.slots.iter().flatten().map(|p| p.field_value())
    }

    fn random(&self, rng: &mut impl Rng) -> (&[u8], &[u8]) {
        loop {
            let i = rng.gen_range(0..self.slots.len());
            if let Some(p) = &self.slots[i] {
                return p.field_value();
            }
        }
    }

    /// See [`HashValue::scan`].
    fn scan<'a>(
        &'a self,
        cursor: u64,
        count: usize,
        mut keep: impl FnMut(&[u8]) -> bool,
        out: &mut Vec<(&'a [u8], &'a [u8])>,
    ) -> u64 {
        if cursor > u32::MAX as u64 + 1 {
            return 0;
        }
        let start = cursor.saturating_sub(1) as u32;
        let mut sampled = 0usize;
        let mut last = 0u32;
        for x in self.slots[self.home(start)..].iter().flatten() {
            let h = x.hash();
            if h < start {
                continue;
            }
            if sampled >= count && h != last {
                return h as u64 + 1;
            }
            sampled += 1;
            last = h;
            let (f, v) = x.field_value();
            if keep(f) {
                out.push((f, v));
            }
        }
        0
    }

    fn memory_usage(&self) -> usize {
        std::mem::size_of::<Table>()
            + self.slots.len() * std::mem::size_of::<Option<Pair>>()
            + self.slots.iter().flatten().map(|p| p.size()).sum::<usize>()
    }
}

impl Clone for Table {
    fn clone(&self) -> Table {
        let slots = self
            .slots
            .iter()
            .map(|s| {
                s.as_ref().map(|p| {
                    let (f, v) = p.field_value();
                    Pair::new(p.hash(), f, v)
                })
            })
            .collect();
        Table {
            slots,
            len: self.len,
            bits: self.bits,
        }
    }
}

// ---------------------------------------------------------------------------
// the value

#[derive(Clone)]
enum Repr {
    Listpack(Listpack),
    Table(Box<Table>),
}

/// Borrowed (field, value) pairs.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// A hash value.
#[derive(Clone)]
pub struct HashValue {
    repr: Repr,
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::new()
    }
}

/// Iterates over (field, value) pairs: listpack in insertion order,
/// hashtable in hash order.
pub enum Iter<'a> {
    Listpack(LpIterPub<'a>),
    Table(TableIter<'a>),
}

/// The listpack iterator, opaque.
pub struct LpIterPub<'a>(LpIter<'a>);

/// The hashtable iterator, opaque.
pub struct TableIter<'a>(std::slice::Iter<'a, Option<Pair>>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Listpack(i) => i.0.next(),
            Iter::Table(i) => i.0.by_ref().flatten().next().map(|p| p.field_value()),
        }
    }
}

impl HashValue {
    /// An empty hash, listpack-encoded (as Redis's `createHashObject`).
    pub fn new() -> HashValue {
        HashValue {
            repr: Repr::Listpack(Listpack::default()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.len as usize,
            Repr::Table(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Listpack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Listpack(_))
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Listpack(lp) => lp.get(field),
            Repr::Table(t) => t.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Converts to the hashtable encoding, sized for `extra` more pairs.
    pub fn convert_to_table(&mut self, extra: usize) {
        let Repr::Listpack(lp) = &self.repr else {
            return;
        };
        let mut t = Table::with_bits(bits_for(lp.len as usize + extra));
        for (f, v) in lp.iter() {
            t.insert_new(Pair::new(field_hash(f), f, v));
        }
        self.repr = Repr::Table(Box::new(t));
    }

    /// Redis's `hashTypeTryConversion`: called with the field/value
    /// arguments of HSET/HMSET/HSETNX before they are stored. Converts a
    /// listpack when the pairs are too many or any argument too long.
    pub fn prepare(&mut self, args: &[&[u8]], lim: &Limits) {
        let Repr::Listpack(lp) = &self.repr else {
            return;
        };
        let new_fields = args.len() / 2;
        if new_fields > lim.max_entries {
            return self.convert_to_table(new_fields);
        }
        let mut sum = 0usize;
        for a in args {
            if a.len() > lim.max_value {
                return self.convert_to_table(0);
            }
            sum += a.len();
        }
        if lp.buf.len() + sum > LISTPACK_SAFETY {
            self.convert_to_table(0);
        }
    }

    /// Redis's `hashTypeSet`: stores a pair, converting a listpack first if
    /// the field or value is too long for it, and after the insert if it
    /// holds too many pairs. Returns true if the field was new.
    pub fn set(&mut self, field: &[u8], value: &[u8], lim: &Limits) -> bool {
        if self.is_listpack() && (field.len() > lim.max_value || value.len() > lim.max_value) {
            self.convert_to_table(0);
        }
        match &mut self.repr {
            Repr::Listpack(lp) => {
                let updated = lp.set(field, value);
                if lp.len as usize > lim.max_entries {
                    self.convert_to_table(0);
                }
                !updated
            }
            Repr::Table(t) => !t.set(field, value),
        }
    }

    /// Deletes a field; true if it was there. Never converts back.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Listpack(lp) => lp.remove(field),
            Repr::Table(t) => t.remove(field),
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Listpack(lp) => Iter::Listpack(LpIterPub(lp.iter())),
            Repr::Table(t) => Iter::Table(TableIter(t.slots.iter())),
        }
    }

    /// One uniformly random pair. The hash must not be empty.
    pub fn random(&self, rng: &mut impl Rng) -> (&[u8], &[u8]) {
        match &self.repr {
            Repr::Listpack(lp) => {
                let i = rng.gen_range(0..lp.len as usize);
                lp.iter().nth(i).expect("non-empty listpack")
            }
            Repr::Table(t) => t.random(rng),
        }
    }

    /// `n` uniformly random pairs, with repetitions (HRANDFIELD with a
    /// negative count).
    pub fn random_many(&self, n: usize, rng: &mut impl Rng) -> Pairs<'_> {
        match &self.repr {
            Repr::Listpack(lp) => {
                let all: Vec<_> = lp.iter().collect();
                (0..n).map(|_| all[rng.gen_range(0..all.len())]).collect()
            }
            Repr::Table(t) => (0..n).map(|_| t.random(rng)).collect(),
        }
    }

    /// `n` distinct random pairs, `n < len` (HRANDFIELD with a positive
    /// count). Listpacks answer in their own order, as Redis's
    /// `lpRandomPairsUnique`; hashtables in random order.
    pub fn random_unique(&self, n: usize, rng: &mut impl Rng) -> Pairs<'_> {
        let len = self.len();
        debug_assert!(n < len);
        match &self.repr {
            Repr::Listpack(lp) => {
                // Selection sampling: keeps order, each subset equally likely.
                let mut out = Vec::with_capacity(n);
                let mut need = n;
                for (i, pair) in lp.iter().enumerate() {
                    if need == 0 {
                        break;
                    }
                    if rng.gen_range(0..len - i) < need {
                        out.push(pair);
                        need -= 1;
                    }
                }
                out
            }
            Repr::Table(t) => {
                if n * 3 > len {
                    // Many of them: shuffle a list of all and keep a prefix.
                    let mut all: Vec<_> = t.iter().collect();
                    for i in 0..n {
                        let j = rng.gen_range(i..all.len());
                        all.swap(i, j);
                    }
                    all.truncate(n);
                    all
                } else {
                    // Few of them: draw random slots until enough distinct.
                    let mut seen = hashbrown::HashSet::with_capacity(n);
                    let mut out = Vec::with_capacity(n);
                    while out.len() < n {
                        let i = rng.gen_range(0..t.slots.len());
                        if let Some(p) = &t.slots[i] {
                            if seen.insert(i) {
                                out.push(p.field_value());
                            }
                        }
                    }
                    out
                }
            }
        }
    }

    /// One HSCAN step. Listpacks return every pair (filtered by `keep`,
    /// which sees the field) and cursor 0. Hashtables return the pairs whose
    /// hash is at or after the cursor, about `count` of them (never
    /// splitting fields of equal hash), and the next cursor: 0 at the end.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        mut keep: impl FnMut(&[u8]) -> bool,
    ) -> (u64, Pairs<'_>) {
        let mut out = Vec::new();
        match &self.repr {
            Repr::Listpack(lp) => {
                out.extend(lp.iter().filter(|(f, _)| keep(f)));
                (0, out)
            }
            Repr::Table(t) => {
                let next = t.scan(cursor, count, keep, &mut out);
                (next, out)
            }
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher. Equal values must give
    /// equal digests whatever their encoding: each pair is digested alone
    /// and the results are XORed, so order does not matter.
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        let mut acc = [0u8; 20];
        for (f, v) in self.iter() {
            let mut p = sha1_smol::Sha1::new();
            p.update(&(f.len() as u64).to_le_bytes());
            p.update(f);
            p.update(v);
            for (a, b) in acc.iter_mut().zip(p.digest().bytes()) {
                *a ^= b;
            }
        }
        h.update(&(self.len() as u64).to_le_bytes());
        h.update(&acc);
    }

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        match &self.repr {
            Repr::Listpack(lp) => lp.buf.capacity(),
            Repr::Table(t) => t.memory_usage(),
        }
    }
}

impl PartialEq for HashValue {
    /// Equal contents, whatever the encodings.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
    }
}

impl std::fmt::Debug for HashValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.iter() {
            m.entry(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
        m.finish()?;
        write!(f, " ({})", self.encoding())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const LIM: Limits = Limits {
        max_entries: 128,
        max_value: 64,
    };

    fn check_table(t: &Table) {
        let n = t.slots.len();
        assert_eq!(n, (1 << t.bits) + slack(t.bits));
        let mut prev: Option<u32> = None;
        let mut count = 0;
        for (i, s) in t.slots.iter().enumerate() {
            if let Some(p) = s {
                count += 1;
                let h = p.hash();
                assert_eq!(h, field_hash(p.field()));
                let home = t.home(h);
                assert!(home <= i, "pair before its home");
                assert!(t.slots[home..i].iter().all(|s| s.is_some()), "gap in run");
                if let Some(ph) = prev {
                    assert!(ph <= h, "unsorted");
                }
                prev = Some(h);
            }
        }
        assert_eq!(count, t.len);
    }

    fn check(h: &HashValue) {
        if let Repr::Table(t) = &h.repr {
            check_table(t);
        }
    }

    #[test]
    fn sizes_stay_small() {
        assert_eq!(std::mem::size_of::<Option<Pair>>(), 8);
        assert!(std::mem::size_of::<HashValue>() <= 32);
    }

    #[test]
    fn listpack_basics_and_conversion_on_entries() {
        let mut h = HashValue::new();
        let lim = Limits {
            max_entries: 4,
            max_value: 10,
        };
        for i in 0..4 {
            assert!(h.set(format!("f{i}").as_bytes(), b"v", &lim));
        }
        assert_eq!(h.encoding(), "listpack");
        assert!(!h.set(b"f0", b"longer value", &lim));
        assert_eq!(h.encoding(), "hashtable"); // value longer than 10
        let mut h = HashValue::new();
        for i in 0..5 {
            h.set(format!("f{i}").as_bytes(), b"v", &lim);
        }
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        for i in 0..5 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert_eq!(h.encoding(), "hashtable"); // never converts back
        assert!(h.is_empty());
    }

    #[test]
    fn prepare_converts_like_redis() {
        let lim = Limits {
            max_entries: 2,
            max_value: 5,
        };
        let mut h = HashValue::new();
        h.prepare(&[b"a", b"1", b"a", b"2", b"a", b"3"], &lim);
        assert_eq!(h.encoding(), "hashtable"); // 3 pairs > 2, even if duplicates
        let mut h = HashValue::new();
        h.prepare(&[b"a", b"123456"], &lim);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = HashValue::new();
        h.prepare(&[b"a", b"12345"], &lim);
        assert_eq!(h.encoding(), "listpack");
    }

    #[test]
    fn table_grows_shrinks_and_stays_sorted() {
        let mut h = HashValue::new();
        h.convert_to_table(0);
        for i in 0..5000 {
            h.set(
                format!("field:{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                &LIM,
            );
        }
        check(&h);
        assert_eq!(h.len(), 5000);
        for i in 0..5000 {
            assert_eq!(
                h.get(format!("field:{i}").as_bytes()),
                Some(format!("v{i}").as_bytes())
            );
        }
        for i in 0..4990 {
            assert!(h.remove(format!("field:{i}").as_bytes()));
        }
        check(&h);
        let Repr::Table(t) = &h.repr else { panic!() };
        assert!(t.bits <= 5);
    }

    #[test]
    fn scan_survives_resizes() {
        let mut h = HashValue::new();
        h.convert_to_table(0);
        for i in 0..1000 {
            h.set(format!("k{i}").as_bytes(), b"v", &LIM);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut step = 0;
        loop {
            let (next, got) = h.scan(cursor, 10, |_| true);
            let got: Vec<Vec<u8>> = got.iter().map(|(f, _)| f.to_vec()).collect();
            for f in got {
                seen.insert(f);
            }
            // Grow and shrink the table between calls.
            step += 1;
            if step % 3 == 0 {
                for j in 0..200 {
                    h.set(format!("tmp{step}:{j}").as_bytes(), b"x", &LIM);
                }
            } else if step % 3 == 1 {
                let tmp: Vec<Vec<u8>> = h
                    .iter()
                    .filter(|(f, _)| f.starts_with(b"tmp"))
                    .map(|(f, _)| f.to_vec())
                    .collect();
                for f in tmp {
                    h.remove(&f);
                }
            }
            check(&h);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }

    #[test]
    fn digest_ignores_encoding_and_order() {
        let mut a = HashValue::new();
        let mut b = HashValue::new();
        b.convert_to_table(0);
        for i in 0..10 {
            a.set(format!("f{i}").as_bytes(), b"x", &LIM);
            b.set(format!("f{}", 9 - i).as_bytes(), b"x", &LIM);
        }
        let d = |h: &HashValue| {
            let mut s = sha1_smol::Sha1::new();
            h.digest(&mut s);
            s.digest().bytes()
        };
        assert_eq!(d(&a), d(&b));
        assert_eq!(a, b);
        b.set(b"f0", b"y", &LIM);
        assert_ne!(d(&a), d(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn random_unique_is_distinct() {
        let mut rng = rand::thread_rng();
        for table in [false, true] {
            let mut h = HashValue::new();
            if table {
                h.convert_to_table(0);
            }
            for i in 0..50 {
                h.set(format!("f{i}").as_bytes(), b"v", &LIM);
            }
            for n in [1, 5, 20, 49] {
                let got = h.random_unique(n, &mut rng);
                let set: std::collections::HashSet<_> = got.iter().map(|p| p.0).collect();
                assert_eq!(set.len(), n);
            }
            assert_eq!(h.random_many(100, &mut rng).len(), 100);
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, Vec<u8>),
        Del(u8),
        Convert,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(f, v)| Op::Set(f, v)),
            3 => any::<u8>().prop_map(Op::Del),
            1 => Just(Op::Convert),
        ]
    }

    fn field(f: u8) -> Vec<u8> {
        // Varied lengths, including long fields that force a conversion.
        let mut v = format!("f{f}").into_bytes();
        if f.is_multiple_of(37) {
            v.extend(std::iter::repeat_n(b'x', f as usize));
        }
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 0..300), max_entries in 0usize..40) {
            let lim = Limits { max_entries, max_value: 20 };
            let mut h = HashValue::new();
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut converted = false;
            for op in ops {
                match op {
                    Op::Set(f, v) => {
                        let f = field(f);
                        let was_lp = h.is_listpack();
                        let new = h.set(&f, &v, &lim);
                        prop_assert_eq!(new, model.insert(f.clone(), v.clone()).is_none());
                        if was_lp {
                            let should = f.len() > 20 || v.len() > 20 || model.len() > max_entries;
                            prop_assert_eq!(h.is_listpack(), !should);
                        }
                    }
                    Op::Del(f) => {
                        let f = field(f);
                        prop_assert_eq!(h.remove(&f), model.remove(&f).is_some());
                    }
                    Op::Convert => {
                        h.convert_to_table(0);
                    }
                }
                if !h.is_listpack() {
                    converted = true;
                }
                prop_assert_eq!(h.is_listpack(), !converted);
                prop_assert_eq!(h.len(), model.len());
            }
            check(&h);
            let mut got: Vec<(Vec<u8>, Vec<u8>)> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            got.sort();
            let want: Vec<(Vec<u8>, Vec<u8>)> = model.clone().into_iter().collect();
            prop_assert_eq!(got, want);
            for (f, v) in &model {
                prop_assert_eq!(h.get(f), Some(&v[..]));
            }
            // A full scan returns everything exactly once.
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, got) = h.scan(cursor, 3, |_| true);
                seen.extend(got.iter().map(|(f, _)| f.to_vec()));
                cursor = next;
                if cursor == 0 { break; }
            }
            seen.sort();
            prop_assert_eq!(seen, model.keys().cloned().collect::<Vec<_>>());
            // Clones and the other encoding compare equal.
            let mut other = h.clone();
            other.convert_to_table(0);
            prop_assert_eq!(&other, &h);
        }
    }
}
