//! The set value type: its encodings (Redis's names: see `encoding`),
//! conversions between them, and the operations the set commands need.
//!
//! Three encodings, with Redis 7.2's names and conversion rules:
//!
//! * `intset`: a sorted array of integers stored at the narrowest width
//!   (2, 4 or 8 bytes) that holds all of them, upgraded in place like
//!   Redis's intset. Used while every member is an integer and the set has
//!   at most `set-max-intset-entries` members.
//! * `listpack`: small sets of any members, a byte buffer of
//!   `[varint length][bytes]` entries scanned linearly (at most
//!   `set-max-listpack-entries` members of at most `set-max-listpack-value`
//!   bytes each).
//! * `hashtable`: everything else. Members are thin pointers to one
//!   allocation each (`[varint length][bytes]`), kept in an extendible hash:
//!   a directory indexed by the top bits of the member hash points at
//!   segments, each a small `hashbrown::HashTable` that splits in two when
//!   full. That costs about 8 bytes of slot + 1 control byte per member at
//!   hashbrown's load factor, plus the member allocation, where Redis's dict
//!   pays a bucket pointer, a dictEntry and an sds header. Since segment order
//!   is hash order, SSCAN's cursor is a position in hash space: every member
//!   present for the whole scan is returned whatever splits or rebuilds happen
//!   in between.
//!
//! Like Redis, sets never convert back to a smaller encoding on deletes;
//! only SINTERSTORE (all-integer results) and SPOP with a large count build
//! a fresh, smaller value.

use crate::keyspace::varint::{get_varint, put_varint, varint_len};
use hashbrown::HashTable;
use rand::Rng;
use std::alloc::{alloc, dealloc, Layout};
use std::hash::BuildHasher;
use std::ptr::NonNull;
use strutil::parse_i64;

/// The encoding thresholds (from `config::HOT` ids at the call site).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub intset_entries: usize,
    pub lp_entries: usize,
    pub lp_value: usize,
}

impl Limits {
    /// Redis caps intsets at 2^30 entries whatever the configuration says.
    fn intset_max(&self) -> usize {
        self.intset_entries.min(1 << 30)
    }
}

/// One member as an encoding yields it: integers from an intset, bytes
/// otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            Elem::Str(b) => f(b),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Whether the member is an integer (string2ll-canonical).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Elem::Int(n) => Some(*n),
            Elem::Str(b) => parse_int(b),
        }
    }
}

/// Redis's `string2ll` (what intsets and listpacks accept as integers).
#[inline]
fn parse_int(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 20 || !(b[0] == b'-' || b[0].is_ascii_digit()) {
        return None;
    }
    parse_i64(b)
}

fn digits(v: i64) -> usize {
    itoa::Buffer::new().format(v).len()
}

// ---------------------------------------------------------------------------
// varints

// ---------------------------------------------------------------------------
// intset

/// Sorted integers at a uniform width of 2, 4 or 8 bytes (little endian).
#[derive(Clone)]
pub struct IntSet {
    data: Vec<u8>,
    width: u8,
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet {
            data: Vec::new(),
            width: 2,
        }
    }
}

fn width_for(v: i64) -> u8 {
    if v >= i16::MIN as i64 && v <= i16::MAX as i64 {
        2
    } else if v >= i32::MIN as i64 && v <= i32::MAX as i64 {
        4
    } else {
        8
    }
}

impl IntSet {
    pub fn len(&self) -> usize {
        self.data.len() / self.width as usize
    }

    #[inline]
    fn read(data: &[u8], width: u8, i: usize) -> i64 {
        let w = width as usize;
        let b = &data[i * w..i * w + w];
        match width {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_le_bytes(b.try_into().unwrap()),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        Self::read(&self.data, self.width, i)
    }

    fn encode(v: i64, width: u8) -> [u8; 8] {
        let mut out = [0u8; 8];
        match width {
            2 => out[..2].copy_from_slice(&(v as i16).to_le_bytes()),
            4 => out[..4].copy_from_slice(&(v as i32).to_le_bytes()),
            _ => out = v.to_le_bytes(),
        }
        out
    }

    /// Ok(position) if present, Err(insert position) otherwise.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let n = self.len();
        if width_for(v) > self.width {
            return Err(if v < 0 { 0 } else { n });
        }
        let (mut lo, mut hi) = (0usize, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let x = self.get(mid);
            if x == v {
                return Ok(mid);
            } else if x < v {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Err(lo)
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Re-encodes every value at a wider width.
    fn upgrade(&mut self, width: u8) {
        let n = self.len();
        let mut data = Vec::with_capacity((n + 1) * width as usize);
        for i in 0..n {
            data.extend_from_slice(&Self::encode(self.get(i), width)[..width as usize]);
        }
        self.data = data;
        self.width = width;
    }

    pub fn insert(&mut self, v: i64) -> bool {
        let pos = match self.search(v) {
            Ok(_) => return false,
            Err(p) => p,
        };
        let w = width_for(v);
        if w > self.width {
            self.upgrade(w);
        }
        let w = self.width as usize;
        // Grow by exactly one element, as Redis's intsetResize does.
        self.data.reserve_exact(w);
        let enc = Self::encode(v, self.width);
        let at = pos * w;
        self.data.splice(at..at, enc[..w].iter().copied());
        true
    }

    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(p) => {
                let w = self.width as usize;
                self.data.drain(p * w..p * w + w);
                true
            }
            Err(_) => false,
        }
    }

    fn remove_at(&mut self, p: usize) {
        let w = self.width as usize;
        self.data.drain(p * w..p * w + w);
    }

    pub fn min(&self) -> Option<i64> {
        (self.len() > 0).then(|| self.get(0))
    }

    pub fn max(&self) -> Option<i64> {
        (self.len() > 0).then(|| self.get(self.len() - 1))
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

// ---------------------------------------------------------------------------
// listpack

/// Small sets: `[varint length][bytes]` entries in insertion order.
#[derive(Clone, Default)]
pub struct Pack {
    data: Vec<u8>,
    len: u32,
}

impl Pack {
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn iter(&self) -> PackIter<'_> {
        PackIter {
            data: &self.data,
            off: 0,
        }
    }

    /// The byte range of the entry holding `b`.
    fn find(&self, b: &[u8]) -> Option<(usize, usize)> {
        let mut off = 0;
        while off < self.data.len() {
            let (l, n) = get_varint(&self.data[off..]);
            let end = off + n + l;
            if l == b.len() && &self.data[off + n..end] == b {
                return Some((off, end));
            }
            off = end;
        }
        None
    }

    /// The byte range and bytes of entry `i`.
    fn nth(&self, i: usize) -> (usize, usize, &[u8]) {
        let mut off = 0;
        let mut k = 0;
        loop {
            let (l, n) = get_varint(&self.data[off..]);
            let end = off + n + l;
            if k == i {
                return (off, end, &self.data[off + n..end]);
            }
            off = end;
            k += 1;
        }
    }

    fn push(&mut self, b: &[u8]) {
        self.data.reserve_exact(varint_len(b.len()) + b.len());
        put_varint(&mut self.data, b.len());
        self.data.extend_from_slice(b);
        self.len += 1;
    }

    fn remove_range(&mut self, start: usize, end: usize) {
        self.data.drain(start..end);
        self.len -= 1;
    }

    fn contains(&self, b: &[u8]) -> bool {
        self.find(b).is_some()
    }
}

pub struct PackIter<'a> {
    data: &'a [u8],
    off: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.off >= self.data.len() {
            return None;
        }
        let (l, n) = get_varint(&self.data[self.off..]);
        let s = self.off + n;
        self.off = s + l;
        Some(&self.data[s..s + l])
    }
}

// ---------------------------------------------------------------------------
// hashtable

/// A member of a hashtable-encoded set: a thin pointer to one allocation
/// holding `[varint length][bytes]`.
struct Member(NonNull<u8>);

// SAFETY: a Member uniquely owns its allocation and is immutable.
unsafe impl Send for Member {}
unsafe impl Sync for Member {}

impl Member {
    fn new(b: &[u8]) -> Member {
        let h = varint_len(b.len());
        let size = h + b.len();
        let layout = Layout::from_size_align(size, 1).expect("member layout");
        // SAFETY: size >= 1; every byte is written before use.
        unsafe {
            let p = alloc(layout);
            let Some(ptr) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            let mut n = b.len();
            let mut i = 0;
            while n >= 0x80 {
                *p.add(i) = (n as u8) | 0x80;
                n >>= 7;
                i += 1;
            }
            *p.add(i) = n as u8;
            std::ptr::copy_nonoverlapping(b.as_ptr(), p.add(h), b.len());
            Member(ptr)
        }
    }

    #[inline]
    fn header(&self) -> (usize, usize) {
        let p = self.0.as_ptr();
        // SAFETY: the varint is complete (written by new).
        unsafe {
            let b = *p;
            if b < 0x80 {
                return (b as usize, 1);
            }
            let mut n = 0usize;
            let mut shift = 0;
            let mut i = 0;
            loop {
                let b = *p.add(i);
                n |= ((b & 0x7f) as usize) << shift;
                i += 1;
                if b < 0x80 {
                    return (n, i);
                }
                shift += 7;
            }
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        let (len, h) = self.header();
        // SAFETY: `len` bytes follow the header.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().add(h), len) }
    }

    fn alloc_size(&self) -> usize {
        let (len, h) = self.header();
        len + h
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let size = self.alloc_size();
        // SAFETY: same layout as allocated in new.
        unsafe { dealloc(self.0.as_ptr(), Layout::from_size_align_unchecked(size, 1)) }
    }
}

impl Clone for Member {
    fn clone(&self) -> Member {
        Member::new(self.bytes())
    }
}

/// Hash of a member: a per-process random seed (hash flooding), fixed for
/// the process lifetime (SSCAN cursors are positions in this hash space).
#[inline]
fn mhash(b: &[u8]) -> u64 {
    static STATE: std::sync::LazyLock<foldhash::fast::FixedState> =
        std::sync::LazyLock::new(|| foldhash::fast::FixedState::with_seed(rand::random()));
    STATE.hash_one(b)
}

/// The hash a segment's hashbrown table sees. The directory consumes the
/// top bits of `mhash`, which all members of a segment share, so the table
/// gets the hash rotated: its control byte (top 7 bits) and bucket index
/// (low bits) come from bits the directory does not use.
#[inline]
fn thash(h: u64) -> u64 {
    h.rotate_left(32)
}

#[inline]
fn member_thash(m: &Member) -> u64 {
    thash(mhash(m.bytes()))
}

/// A segment splits when an insert would take it past this many members:
/// hashbrown's capacity at 128 buckets, so full segments never grow.
const SEG_MAX: usize = 112;
/// Depth past which segments grow instead of splitting (only reachable
/// with colliding hash prefixes).
const MAX_DEPTH: u32 = 40;

#[derive(Clone)]
struct Seg {
    /// Number of leading hash bits all members share (local depth).
    depth: u32,
    /// Those bits.
    prefix: u64,
    t: HashTable<Member>,
}

/// The hashtable encoding: an extendible hash of small hashbrown tables.
#[derive(Clone)]
pub struct Table {
    len: usize,
    /// Global depth: the directory has 2^depth entries.
    depth: u32,
    dir: Vec<u32>,
    segs: Vec<Seg>,
}

#[inline]
fn dir_index(h: u64, depth: u32) -> usize {
    if depth == 0 {
        0
    } else {
        (h >> (64 - depth)) as usize
    }
}

impl Table {
    /// A table presized for about `cap` members.
    pub fn with_capacity(cap: usize) -> Table {
        let mut depth = 0;
        while depth < 24 && (cap >> depth) > SEG_MAX * 5 / 8 {
            depth += 1;
        }
        let n = 1usize << depth;
        let per = (cap >> depth).min(SEG_MAX);
        let segs = (0..n)
            .map(|i| Seg {
                depth,
                prefix: i as u64,
                t: HashTable::with_capacity(per),
            })
            .collect();
        Table {
            len: 0,
            depth,
            dir: (0..n as u32).collect(),
            segs,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn seg_of(&self, h: u64) -> usize {
        self.dir[dir_index(h, self.depth)] as usize
    }

    pub fn contains(&self, b: &[u8]) -> bool {
        let h = mhash(b);
        self.segs[self.seg_of(h)]
            .t
            .find(thash(h), |m| m.bytes() == b)
            .is_some()
    }

    pub fn insert(&mut self, b: &[u8]) -> bool {
        let h = mhash(b);
        loop {
            let si = self.seg_of(h);
            let seg = &mut self.segs[si];
            if seg.t.find(thash(h), |m| m.bytes() == b).is_some() {
                return false;
            }
            if seg.t.len() >= SEG_MAX && seg.depth < MAX_DEPTH {
                self.split(si);
                continue;
            }
            seg.t.insert_unique(thash(h), Member::new(b), member_thash);
            self.len += 1;
            return true;
        }
    }

    /// Splits segment `si` on its next hash bit, doubling the directory
    /// first if the segment is as deep as the directory.
    fn split(&mut self, si: usize) {
        let d = self.segs[si].depth;
        if d == self.depth {
            let mut dir = Vec::with_capacity(self.dir.len() * 2);
            for &x in &self.dir {
                dir.push(x);
                dir.push(x);
            }
            self.dir = dir;
            self.depth += 1;
        }
        let old = std::mem::take(&mut self.segs[si].t);
        let half = old.len() / 2 + 8;
        let (mut lo, mut hi) = (
            HashTable::with_capacity(half),
            HashTable::with_capacity(half),
        );
        for m in old {
            let h = mhash(m.bytes());
            if (h >> (63 - d)) & 1 == 1 {
                hi.insert_unique(thash(h), m, member_thash);
            } else {
                lo.insert_unique(thash(h), m, member_thash);
            }
        }
        let prefix = self.segs[si].prefix;
        let new_si = self.segs.len() as u32;
        self.segs[si] = Seg {
            depth: d + 1,
            prefix: prefix << 1,
            t: lo,
        };
        self.segs.push(Seg {
            depth: d + 1,
            prefix: (prefix << 1) | 1,
            t: hi,
        });
        // The directory range of the old segment; its upper half moves.
        let span = 1usize << (self.depth - d);
        let start = (prefix as usize) << (self.depth - d);
        for x in &mut self.dir[start + span / 2..start + span] {
            *x = new_si;
        }
    }

    pub fn remove(&mut self, b: &[u8]) -> bool {
        let h = mhash(b);
        let si = self.seg_of(h);
        let seg = &mut self.segs[si];
        match seg.t.find_entry(thash(h), |m| m.bytes() == b) {
            Ok(o) => {
                o.remove();
            }
            Err(_) => return false,
        }
        self.len -= 1;
        if seg.t.capacity() >= 56 && seg.t.len() * 4 <= seg.t.capacity() {
            let keep = seg.t.len() * 2;
            seg.t.shrink_to(keep, member_thash);
        }
        if self.segs.len() > 1 && self.len * 16 < self.segs.len() * SEG_MAX {
            self.rebuild();
        }
        true
    }

    /// Rebuilds a table that lost most of its members, so segments (and
    /// random sampling) stay dense.
    fn rebuild(&mut self) {
        let mut t = Table::with_capacity(self.len);
        for seg in std::mem::take(&mut self.segs) {
            for m in seg.t {
                let h = mhash(m.bytes());
                loop {
                    let si = t.seg_of(h);
                    let s = &mut t.segs[si];
                    if s.t.len() >= SEG_MAX && s.depth < MAX_DEPTH {
                        t.split(si);
                        continue;
                    }
                    s.t.insert_unique(thash(h), m, member_thash);
                    t.len += 1;
                    break;
                }
            }
        }
        *self = t;
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.segs.iter().flat_map(|s| s.t.iter().map(|m| m.bytes()))
    }

    /// A uniformly random member (the table must not be empty). A random
    /// directory slot picks a segment with probability proportional to its
    /// share of the hash space; accepting it with probability proportional
    /// to its size divided by that share makes every member equally likely.
    pub fn random(&self, rng: &mut impl Rng) -> &[u8] {
        debug_assert!(self.len > 0);
        loop {
            let si = self.seg_of(rng.gen::<u64>());
            let seg = &self.segs[si];
            let n = seg.t.len();
            if n == 0 {
                continue;
            }
            let weight = (SEG_MAX.max(n) as u128) << (self.depth - seg.depth);
            if (rng.gen::<u64>() as u128 % weight) >= n as u128 {
                continue;
            }
            let k = rng.gen_range(0..n);
            return seg.t.iter().nth(k).expect("k < len").bytes();
        }
    }

    /// Visits the members of the segments from hash position `cursor` on,
    /// whole segments at a time, until at least `count` were visited.
    /// Returns the next cursor (0 when done).
    pub fn scan(&self, mut cursor: u64, count: usize, mut f: impl FnMut(&[u8])) -> u64 {
        let mut visited = 0;
        loop {
            let idx = dir_index(cursor, self.depth);
            let seg = &self.segs[self.dir[idx] as usize];
            for m in seg.t.iter() {
                f(m.bytes());
            }
            visited += seg.t.len();
            let span = 1usize << (self.depth - seg.depth);
            let next = (idx & !(span - 1)) + span;
            if next >= self.dir.len() {
                return 0;
            }
            cursor = (next as u64) << (64 - self.depth);
            if visited >= count {
                return cursor;
            }
        }
    }

    fn memory_usage(&self) -> usize {
        let mut n = std::mem::size_of::<Table>()
            + self.dir.capacity() * 4
            + self.segs.capacity() * std::mem::size_of::<Seg>();
        for s in &self.segs {
            n += s.t.allocation_size();
            for m in s.t.iter() {
                // jemalloc rounds small allocations to 8/16-byte classes.
                n += (m.alloc_size() + 7) & !7;
            }
        }
        n
    }
}

// ---------------------------------------------------------------------------
// the set value

/// A set value.
#[derive(Clone)]
pub enum SetValue {
    Ints(IntSet),
    Pack(Pack),
    Table(Box<Table>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue::Ints(IntSet::default())
    }
}

/// An owned member (what SPOP removes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owned {
    Int(i64),
    Bytes(Vec<u8>),
}

impl Owned {
    pub fn as_elem(&self) -> Elem<'_> {
        match self {
            Owned::Int(n) => Elem::Int(*n),
            Owned::Bytes(b) => Elem::Str(b),
        }
    }
}

/// Iterates a set's members in its encoding's order.
pub enum SetIter<'a> {
    Ints(&'a IntSet, usize),
    Pack(PackIter<'a>),
    Table(Box<dyn Iterator<Item = &'a [u8]> + 'a>),
}

impl<'a> Iterator for SetIter<'a> {
    type Item = Elem<'a>;
    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        match self {
            SetIter::Ints(s, i) => {
                if *i < s.len() {
                    *i += 1;
                    Some(Elem::Int(s.get(*i - 1)))
                } else {
                    None
                }
            }
            SetIter::Pack(p) => p.next().map(Elem::Str),
            SetIter::Table(t) => t.next().map(Elem::Str),
        }
    }
}

impl SetValue {
    /// Redis's `setTypeCreate`: a set that can hold `first`, sized for
    /// `size_hint` members.
    pub fn create(first: &[u8], size_hint: usize, lim: &Limits) -> SetValue {
        if parse_int(first).is_some() && size_hint <= lim.intset_max() {
            SetValue::Ints(IntSet::default())
        } else if size_hint <= lim.lp_entries {
            SetValue::Pack(Pack::default())
        } else {
            SetValue::Table(Box::new(Table::with_capacity(size_hint)))
        }
    }

    /// An empty intset (the start of SUNION/SDIFF results).
    pub fn new_intset() -> SetValue {
        SetValue::Ints(IntSet::default())
    }

    /// An empty listpack.
    pub fn new_listpack() -> SetValue {
        SetValue::Pack(Pack::default())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            SetValue::Ints(s) => s.len(),
            SetValue::Pack(p) => p.len(),
            SetValue::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            SetValue::Ints(_) => "intset",
            SetValue::Pack(_) => "listpack",
            SetValue::Table(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self, SetValue::Ints(_))
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self, SetValue::Pack(_))
    }

    pub fn is_hashtable(&self) -> bool {
        matches!(self, SetValue::Table(_))
    }

    pub fn iter(&self) -> SetIter<'_> {
        match self {
            SetValue::Ints(s) => SetIter::Ints(s, 0),
            SetValue::Pack(p) => SetIter::Pack(p.iter()),
            SetValue::Table(t) => SetIter::Table(Box::new(t.iter())),
        }
    }

    /// Converts to the hashtable encoding, presized for `cap` members.
    fn to_table(&mut self, cap: usize) {
        let mut t = Table::with_capacity(cap);
        for e in self.iter() {
            e.with_bytes(|b| t.insert(b));
        }
        *self = SetValue::Table(Box::new(t));
    }

    /// Redis's `setTypeMaybeConvert`: goes straight to a hashtable when
    /// `size_hint` new members cannot fit the current encoding.
    pub fn maybe_convert(&mut self, size_hint: usize, lim: &Limits) {
        let convert = match self {
            SetValue::Pack(_) => size_hint > lim.lp_entries,
            SetValue::Ints(_) => size_hint > lim.intset_max(),
            SetValue::Table(_) => false,
        };
        if convert {
            let cap = size_hint.max(self.len());
            self.to_table(cap);
        }
    }

    /// Adds a member given as bytes; true if it was not there.
    pub fn add(&mut self, b: &[u8], lim: &Limits) -> bool {
        match self {
            SetValue::Table(t) => t.insert(b),
            SetValue::Pack(p) => {
                if p.contains(b) {
                    return false;
                }
                if p.len() < lim.lp_entries && b.len() <= lim.lp_value {
                    p.push(b);
                } else {
                    let n = p.len() + 1;
                    self.to_table(n);
                    self.add(b, lim);
                }
                true
            }
            SetValue::Ints(s) => {
                if let Some(v) = parse_int(b) {
                    return self.add_int(v, lim);
                }
                // Not an integer: listpack if everything fits, else hashtable.
                let n = s.len();
                let maxelelen = match (s.min(), s.max()) {
                    (Some(a), Some(z)) => digits(a).max(digits(z)),
                    _ => 0,
                };
                if n < lim.lp_entries && b.len() <= lim.lp_value && maxelelen <= lim.lp_value {
                    let mut p = Pack::default();
                    for v in s.iter() {
                        p.push(itoa::Buffer::new().format(v).as_bytes());
                    }
                    p.push(b);
                    *self = SetValue::Pack(p);
                } else {
                    self.to_table(n + 1);
                    self.add(b, lim);
                }
                true
            }
        }
    }

    /// Adds an integer member.
    pub fn add_int(&mut self, v: i64, lim: &Limits) -> bool {
        match self {
            SetValue::Ints(s) => {
                if !s.insert(v) {
                    return false;
                }
                if s.len() > lim.intset_max() {
                    let n = s.len();
                    self.to_table(n);
                }
                true
            }
            _ => self.add(itoa::Buffer::new().format(v).as_bytes(), lim),
        }
    }

    pub fn add_elem(&mut self, e: Elem, lim: &Limits) -> bool {
        match e {
            Elem::Int(v) => self.add_int(v, lim),
            Elem::Str(b) => self.add(b, lim),
        }
    }

    /// Removes a member; true if it was there. Never changes the encoding.
    pub fn remove(&mut self, b: &[u8]) -> bool {
        match self {
            SetValue::Table(t) => t.remove(b),
            SetValue::Pack(p) => match p.find(b) {
                Some((s, e)) => {
                    p.remove_range(s, e);
                    true
                }
                None => false,
            },
            SetValue::Ints(s) => parse_int(b).is_some_and(|v| s.remove(v)),
        }
    }

    pub fn remove_elem(&mut self, e: Elem) -> bool {
        match (self, e) {
            (SetValue::Ints(s), Elem::Int(v)) => s.remove(v),
            (me, e) => e.with_bytes(|b| me.remove(b)),
        }
    }

    pub fn contains(&self, b: &[u8]) -> bool {
        match self {
            SetValue::Table(t) => t.contains(b),
            SetValue::Pack(p) => p.contains(b),
            SetValue::Ints(s) => parse_int(b).is_some_and(|v| s.contains(v)),
        }
    }

    pub fn contains_elem(&self, e: Elem) -> bool {
        match (self, e) {
            (SetValue::Ints(s), Elem::Int(v)) => s.contains(v),
            (me, e) => e.with_bytes(|b| me.contains(b)),
        }
    }

    /// A uniformly random member (the set must not be empty).
    pub fn random(&self, rng: &mut impl Rng) -> Elem<'_> {
        match self {
            SetValue::Ints(s) => Elem::Int(s.get(rng.gen_range(0..s.len()))),
            SetValue::Pack(p) => Elem::Str(p.nth(rng.gen_range(0..p.len())).2),
            SetValue::Table(t) => Elem::Str(t.random(rng)),
        }
    }

    /// Removes and returns a uniformly random member (set not empty).
    pub fn pop_random(&mut self, rng: &mut impl Rng) -> Owned {
        match self {
            SetValue::Ints(s) => {
                let i = rng.gen_range(0..s.len());
                let v = s.get(i);
                s.remove_at(i);
                Owned::Int(v)
            }
            SetValue::Pack(p) => {
                let (s, e, b) = p.nth(rng.gen_range(0..p.len()));
                let out = Owned::Bytes(b.to_vec());
                p.remove_range(s, e);
                out
            }
            SetValue::Table(t) => {
                let b = t.random(rng).to_vec();
                t.remove(&b);
                Owned::Bytes(b)
            }
        }
    }

    /// `count` distinct random members in set order (selection sampling),
    /// as Redis samples listpacks; `count` must be below the size.
    pub fn sample_in_order(&self, count: usize, rng: &mut impl Rng) -> Vec<Elem<'_>> {
        let mut left = self.len();
        let mut need = count;
        let mut out = Vec::with_capacity(count);
        for e in self.iter() {
            if need == 0 {
                break;
            }
            if rng.gen_range(0..left) < need {
                out.push(e);
                need -= 1;
            }
            left -= 1;
        }
        out
    }

    /// Redis's `maybeConvertToIntset`: for a set known to hold only
    /// integers, switches to an intset if it is small enough.
    pub fn convert_to_intset_if_fits(&mut self, lim: &Limits) {
        if self.is_intset() || self.len() > lim.intset_max() {
            return;
        }
        let mut s = IntSet::default();
        for e in self.iter() {
            let v = e.as_int().expect("only integers");
            s.insert(v);
        }
        *self = SetValue::Ints(s);
    }

    /// SSCAN over this set: small encodings return everything with cursor
    /// 0; hashtables continue from `cursor` (see [`Table::scan`]).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(Elem)) -> u64 {
        match self {
            SetValue::Table(t) => t.scan(cursor, count, |b| f(Elem::Str(b))),
            _ => {
                for e in self.iter() {
                    f(e);
                }
                0
            }
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher. Equal values must give
    /// equal digests whatever their encoding: the SHA1 of every member
    /// (as its string form) is XORed, which ignores order.
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        let mut acc = [0u8; 20];
        for e in self.iter() {
            let d = e.with_bytes(|b| sha1_smol::Sha1::from(b).digest().bytes());
            for (a, x) in acc.iter_mut().zip(d.iter()) {
                *a ^= x;
            }
        }
        h.update(&acc);
    }

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        match self {
            SetValue::Ints(s) => s.data.capacity(),
            SetValue::Pack(p) => p.data.capacity(),
            SetValue::Table(t) => t.memory_usage(),
        }
    }
}

impl std::fmt::Debug for SetValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetValue::{}", self.encoding())?;
        f.debug_set()
            .entries(
                self.iter()
                    .map(|e| String::from_utf8_lossy(&e.to_vec()).into_owned()),
            )
            .finish()
    }
}

/// Equal members, whatever the encodings.
impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|e| other.contains_elem(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const LIM: Limits = Limits {
        intset_entries: 512,
        lp_entries: 128,
        lp_value: 64,
    };

    fn members(s: &SetValue) -> BTreeSet<Vec<u8>> {
        let v: Vec<Vec<u8>> = s.iter().map(|e| e.to_vec()).collect();
        let set: BTreeSet<Vec<u8>> = v.iter().cloned().collect();
        assert_eq!(set.len(), v.len(), "duplicate members in iteration");
        set
    }

    fn build(items: &[&[u8]], lim: &Limits) -> SetValue {
        let mut s = SetValue::create(items[0], items.len(), lim);
        for i in items {
            s.add(i, lim);
        }
        s
    }

    #[test]
    fn create_picks_encoding() {
        assert_eq!(SetValue::create(b"1", 1, &LIM).encoding(), "intset");
        assert_eq!(SetValue::create(b"01", 1, &LIM).encoding(), "listpack");
        assert_eq!(SetValue::create(b"a", 128, &LIM).encoding(), "listpack");
        assert_eq!(SetValue::create(b"a", 129, &LIM).encoding(), "hashtable");
        assert_eq!(SetValue::create(b"1", 512, &LIM).encoding(), "intset");
        assert_eq!(SetValue::create(b"1", 513, &LIM).encoding(), "hashtable");
    }

    #[test]
    fn intset_widths_and_order() {
        let mut s = IntSet::default();
        for v in [5, -3, 70000, i64::MIN, i64::MAX, 0, 32767, -32768] {
            assert!(s.insert(v));
            assert!(!s.insert(v));
        }
        assert_eq!(s.width, 8);
        let got: Vec<i64> = s.iter().collect();
        let mut want = vec![5, -3, 70000, i64::MIN, i64::MAX, 0, 32767, -32768];
        want.sort();
        assert_eq!(got, want);
        assert!(s.remove(70000));
        assert!(!s.contains(70000));
        assert!(s.contains(i64::MIN));
    }

    #[test]
    fn conversions_follow_redis() {
        // intset + non-integer -> listpack when small
        let mut s = build(&[b"1", b"2", b"3"], &LIM);
        assert!(s.is_intset());
        assert!(s.add(b"a", &LIM));
        assert!(s.is_listpack());
        // large intset + non-integer -> hashtable
        let mut s = SetValue::create(b"0", 1, &LIM);
        for i in 0..130 {
            s.add_int(i, &LIM);
        }
        assert!(s.is_intset());
        s.add(b"a", &LIM);
        assert!(s.is_hashtable());
        assert_eq!(s.len(), 131);
        // intset past its limit -> hashtable
        let mut s = SetValue::create(b"0", 1, &LIM);
        for i in 0..512 {
            s.add_int(i, &LIM);
        }
        assert!(s.is_intset());
        s.add(b"512", &LIM);
        assert!(s.is_hashtable());
        // listpack past entries or value limits -> hashtable
        let mut s = SetValue::create(b"a", 1, &LIM);
        for i in 0..127 {
            s.add(format!("x{i}").as_bytes(), &LIM);
        }
        assert!(s.is_listpack() && s.len() == 127);
        s.add(b"y", &LIM);
        assert!(s.is_listpack());
        s.add(b"z", &LIM);
        assert!(s.is_hashtable());
        let mut s = SetValue::create(b"a", 1, &LIM);
        s.add(&[b'v'; 65], &LIM);
        assert!(s.is_hashtable());
        // an intset whose integers are too long for the listpack value limit
        let small = Limits { lp_value: 3, ..LIM };
        let mut s = SetValue::create(b"1", 1, &small);
        s.add(b"12345", &small);
        s.add(b"ab", &small);
        assert!(s.is_hashtable());
        // never converts back on deletes
        let mut s = build(&[b"1", b"a"], &LIM);
        s.remove(b"a");
        assert!(s.is_listpack());
        s.convert_to_intset_if_fits(&LIM);
        assert!(s.is_intset());
        assert!(s.contains(b"1"));
    }

    #[test]
    fn table_splits_and_scans_everything() {
        let mut t = Table::with_capacity(0);
        for i in 0..20000 {
            assert!(t.insert(format!("member:{i}").as_bytes()));
        }
        assert!(!t.insert(b"member:7"));
        assert_eq!(t.len(), 20000);
        assert!(t.segs.len() > 100);
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = t.scan(cursor, 10, |b| {
                seen.insert(b.to_vec());
            });
            calls += 1;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 20000);
        assert!(calls > 100);
        for i in 0..19990 {
            assert!(t.remove(format!("member:{i}").as_bytes()));
        }
        assert_eq!(t.len(), 10);
        assert!(t.segs.len() < 4, "rebuilt after shrinking");
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            assert!(t.random(&mut rng).starts_with(b"member:1999"));
        }
    }

    #[test]
    fn scan_guarantee_across_growth() {
        // Members present for the whole scan are returned even when the
        // table splits (and rebuilds) between calls.
        let mut s = SetValue::create(b"a", 200, &LIM);
        for i in 0..200 {
            s.add(format!("keep{i}").as_bytes(), &LIM);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = s.scan(cursor, 5, |e| {
                seen.insert(e.to_vec());
            });
            for j in 0..300 {
                s.add(format!("tmp{round}_{j}").as_bytes(), &LIM);
            }
            if round % 3 == 2 {
                for j in 0..300 {
                    s.remove(format!("tmp{}_{j}", round - 1).as_bytes());
                }
            }
            round += 1;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..200 {
            assert!(
                seen.contains(format!("keep{i}").as_bytes()),
                "keep{i} missed"
            );
        }
    }

    #[test]
    fn random_is_roughly_uniform() {
        let mut rng = rand::thread_rng();
        for n in [10usize, 300, 3000] {
            let mut s = SetValue::Table(Box::new(Table::with_capacity(0)));
            for i in 0..n {
                s.add(format!("m{i}").as_bytes(), &LIM);
            }
            let draws = n * 200;
            let mut counts = std::collections::HashMap::new();
            for _ in 0..draws {
                *counts.entry(s.random(&mut rng).to_vec()).or_insert(0usize) += 1;
            }
            assert_eq!(counts.len(), n);
            for (_, c) in counts {
                assert!(c > 100 && c < 320, "count {c} for n {n}");
            }
        }
    }

    #[test]
    fn digest_ignores_encoding_and_order() {
        let a = build(&[b"1", b"2", b"3"], &LIM);
        let mut b = SetValue::Table(Box::new(Table::with_capacity(0)));
        for m in [b"3", b"1", b"2"] {
            b.add(m, &LIM);
        }
        let mut c = SetValue::new_listpack();
        for m in [b"2", b"3", b"1"] {
            c.add(m, &LIM);
        }
        let d = |s: &SetValue| {
            let mut h = sha1_smol::Sha1::new();
            s.digest(&mut h);
            h.digest().bytes()
        };
        assert_eq!(d(&a), d(&b));
        assert_eq!(d(&a), d(&c));
        assert_eq!(a, b);
        let e = build(&[b"1", b"2", b"4"], &LIM);
        assert_ne!(d(&a), d(&e));
        assert!(b.memory_usage() > 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>),
        AddInt(i64),
        Remove(Vec<u8>),
        Pop,
        ToIntset,
        Convert(usize),
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-40i64..40).prop_map(|v| v.to_string().into_bytes()),
            any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            "[a-d]{0,3}".prop_map(|s| s.into_bytes()),
            "[a-z]{5,12}".prop_map(|s| s.into_bytes()),
            Just(b"007".to_vec()),
            Just(b"-0".to_vec()),
            Just(b"99999999999999999999".to_vec()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => member().prop_map(Op::Add),
            2 => (-100i64..100).prop_map(Op::AddInt),
            3 => member().prop_map(Op::Remove),
            1 => Just(Op::Pop),
            1 => Just(Op::ToIntset),
            1 => (0usize..40).prop_map(Op::Convert),
        ]
    }

    /// The encoding Redis would have after the same operations.
    fn check_encoding(s: &SetValue, prev: &str, model: &BTreeSet<Vec<u8>>, lim: &Limits) {
        let enc = s.encoding();
        let all_int = model.iter().all(|m| parse_int(m).is_some());
        match prev {
            "hashtable" => assert_eq!(enc, "hashtable"),
            "listpack" => assert!(enc != "intset"),
            _ => {}
        }
        if enc == "intset" {
            assert!(all_int && model.len() <= lim.intset_max());
        }
        if enc == "listpack" {
            assert!(model.len() <= lim.lp_entries);
            assert!(model.iter().all(|m| m.len() <= lim.lp_value));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn matches_model(
            first in member(),
            ops in proptest::collection::vec(op(), 0..300),
            ie in 1usize..20, le in 1usize..20, lv in 1usize..12,
        ) {
            let lim = Limits { intset_entries: ie, lp_entries: le, lp_value: lv };
            let mut rng = rand::thread_rng();
            let mut s = SetValue::create(&first, 1, &lim);
            let mut model = BTreeSet::new();
            prop_assert_eq!(s.add(&first, &lim), true);
            model.insert(first.clone());
            for op in ops {
                let prev = s.encoding();
                match op {
                    Op::Add(m) => {
                        prop_assert_eq!(s.add(&m, &lim), model.insert(m.clone()));
                    }
                    Op::AddInt(v) => {
                        let m = v.to_string().into_bytes();
                        prop_assert_eq!(s.add_int(v, &lim), model.insert(m));
                    }
                    Op::Remove(m) => {
                        prop_assert_eq!(s.remove(&m), model.remove(&m));
                        prop_assert_eq!(s.encoding(), prev);
                    }
                    Op::Pop => {
                        if !model.is_empty() {
                            let o = s.pop_random(&mut rng);
                            let b = o.as_elem().to_vec();
                            prop_assert!(model.remove(&b));
                        }
                    }
                    Op::ToIntset => {
                        if model.iter().all(|m| parse_int(m).is_some()) {
                            s.convert_to_intset_if_fits(&lim);
                            if model.len() <= lim.intset_max() {
                                prop_assert_eq!(s.encoding(), "intset");
                            }
                            continue;
                        }
                    }
                    Op::Convert(n) => s.maybe_convert(n, &lim),
                }
                check_encoding(&s, prev, &model, &lim);
                prop_assert_eq!(s.len(), model.len());
                prop_assert_eq!(&members(&s), &model);
                for m in model.iter().take(5) {
                    prop_assert!(s.contains(m));
                }
                if !model.is_empty() {
                    let r = s.random(&mut rng).to_vec();
                    prop_assert!(model.contains(&r));
                }
            }
            let mut got = BTreeSet::new();
            let mut cursor = 0;
            loop {
                cursor = s.scan(cursor, 3, |e| { got.insert(e.to_vec()); });
                if cursor == 0 { break; }
            }
            prop_assert_eq!(got, model);
        }

        #[test]
        fn table_matches_model(ops in proptest::collection::vec((any::<bool>(), 0u32..3000), 0..3000)) {
            let mut t = Table::with_capacity(0);
            let mut model = BTreeSet::new();
            for (add, k) in ops {
                let m = format!("k{k}").into_bytes();
                if add {
                    prop_assert_eq!(t.insert(&m), model.insert(m));
                } else {
                    prop_assert_eq!(t.remove(&m), model.remove(&m));
                }
                prop_assert_eq!(t.len(), model.len());
            }
            let got: BTreeSet<Vec<u8>> = t.iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(got, model);
        }
    }
}
