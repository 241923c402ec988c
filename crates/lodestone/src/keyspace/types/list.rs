//! The list value type (Redis's `t_list.c` + `quicklist.c`): its two
//! encodings, the conversions between them and the operations the list
//! commands need.
//!
//! Encodings, with Redis 7.2's names and rules:
//! - `listpack`: one [`Pack`] holding every element. Used while the list is
//!   within `list-max-listpack-size` (entries when positive, bytes per node
//!   4k..64k when -1..-5).
//! - `quicklist`: a deque of [`Pack`] nodes, each honouring the same limit
//!   (Redis's node insert/split/merge rules are followed, so node shapes and
//!   hence conversions back to listpack happen exactly when Redis does them).
//!
//! A [`Pack`] stores its elements back to back in one byte buffer using the
//! listpack entry layout (integer encodings for canonical integers, length
//! prefixed strings, a back-length trailer so the buffer can be walked in
//! both directions). That keeps small elements at 2-12 bytes each with no
//! per-element allocation, and makes `bytes()` equal Redis's `lpBytes`, so
//! the byte-size conversion thresholds match Redis to the byte. Pushing or
//! popping at either end touches only the end node: O(1) up to the bounded
//! node size.

use std::collections::VecDeque;
use strutil::parse_i64;

/// Listpack header (total bytes + element count) and end marker bytes that
/// Redis counts in `lpBytes`; our buffers do not store them.
const LP_OVERHEAD: usize = 7;
/// Nodes limited by entry count are still kept under this many bytes.
const SIZE_SAFETY_LIMIT: usize = 8192;
/// Redis's over-estimate of one new entry's overhead when deciding whether
/// a node can take another element.
const SIZE_ESTIMATE_OVERHEAD: usize = 8;
/// Byte limits for list-max-listpack-size -1..-5.
const OPTIMIZATION_LEVEL: [usize; 5] = [4096, 8192, 16384, 32768, 65536];

/// (size limit, count limit) of one node for a `list-max-listpack-size`.
pub fn node_limit(fill: i64) -> (usize, usize) {
    if fill >= 0 {
        (usize::MAX, (fill as usize).max(1))
    } else {
        let offset = (-(fill + 1)) as u64;
        (OPTIMIZATION_LEVEL[offset.min(4) as usize], usize::MAX)
    }
}

/// Whether a node of `new_sz` bytes and `new_count` entries is over the limit.
pub fn exceeds_limit(fill: i64, new_sz: usize, new_count: usize) -> bool {
    let (sz, count) = node_limit(fill);
    if sz != usize::MAX {
        new_sz > sz
    } else {
        new_sz > SIZE_SAFETY_LIMIT || new_count > count
    }
}

/// One element as stored: canonical integers are kept as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Elem<'_> {
    /// How a client-supplied element is stored (Redis's `lpStringToInt64`).
    pub fn classify(b: &[u8]) -> Elem<'_> {
        if b.len() <= 20 {
            if let Some(n) = parse_i64(b) {
                return Elem::Int(n);
            }
        }
        Elem::Str(b)
    }

    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            Elem::Str(s) => f(s),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Whether this element equals the needle.
    #[inline]
    pub fn matches(&self, n: &Needle) -> bool {
        match self {
            Elem::Int(v) => n.int == Some(*v),
            Elem::Str(s) => *s == n.bytes,
        }
    }

    fn enc_len(&self) -> usize {
        match *self {
            Elem::Int(v) => {
                if (0..=127).contains(&v) {
                    1
                } else if (-4096..=4095).contains(&v) {
                    2
                } else if i16::try_from(v).is_ok() {
                    3
                } else if (-(1 << 23)..(1 << 23)).contains(&v) {
                    4
                } else if i32::try_from(v).is_ok() {
                    5
                } else {
                    9
                }
            }
            Elem::Str(s) => {
                s.len()
                    + if s.len() < 64 {
                        1
                    } else if s.len() < 4096 {
                        2
                    } else {
                        5
                    }
            }
        }
    }
}

/// A value to compare elements with (LREM, LPOS, LINSERT's pivot), parsed once.
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        let int = match Elem::classify(bytes) {
            Elem::Int(n) => Some(n),
            Elem::Str(_) => None,
        };
        Needle { bytes, int }
    }
}

/// Bytes the back-length trailer takes for an entry of `l` bytes.
fn backlen_len(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

/// Writes `e` (encoding, payload, back-length) into `dst`, which is exactly
/// `enc_len + backlen_len(enc_len)` bytes long.
fn write_entry(dst: &mut [u8], e: Elem, enc_len: usize) {
    match e {
        Elem::Int(v) => match enc_len {
            1 => dst[0] = v as u8,
            2 => {
                let u = (v as u16) & 0x1fff;
                dst[0] = 0xc0 | (u >> 8) as u8;
                dst[1] = u as u8;
            }
            3 => {
                dst[0] = 0xf1;
                dst[1..3].copy_from_slice(&(v as i16).to_le_bytes());
            }
            4 => {
                dst[0] = 0xf2;
                dst[1..4].copy_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            5 => {
                dst[0] = 0xf3;
                dst[1..5].copy_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                dst[0] = 0xf4;
                dst[1..9].copy_from_slice(&v.to_le_bytes());
            }
        },
        Elem::Str(s) => {
            let h = enc_len - s.len();
            match h {
                1 => dst[0] = 0x80 | s.len() as u8,
                2 => {
                    dst[0] = 0xe0 | (s.len() >> 8) as u8;
                    dst[1] = s.len() as u8;
                }
                _ => {
                    dst[0] = 0xf0;
                    dst[1..5].copy_from_slice(&(s.len() as u32).to_le_bytes());
                }
            }
            dst[h..enc_len].copy_from_slice(s);
        }
    }
    // Back-length: read right to left, 7 bits per byte, high bit = more.
    let n = backlen_len(enc_len);
    for i in 0..n {
        let mut b = ((enc_len >> (7 * i)) & 0x7f) as u8;
        if i + 1 < n {
            b |= 0x80;
        }
        dst[enc_len + n - 1 - i] = b;
    }
}

/// Decodes the entry at `off`: (element, total entry size).
#[inline]
fn read_entry(buf: &[u8], off: usize) -> (Elem<'_>, usize) {
    let b = buf[off];
    let (e, enc) = if b & 0x80 == 0 {
        (Elem::Int(b as i64), 1)
    } else if b & 0xc0 == 0x80 {
        let l = (b & 0x3f) as usize;
        (Elem::Str(&buf[off + 1..off + 1 + l]), 1 + l)
    } else if b & 0xe0 == 0xc0 {
        let u = (((b & 0x1f) as u16) << 8) | buf[off + 1] as u16;
        // Sign-extend 13 bits.
        let v = ((u << 3) as i16 >> 3) as i64;
        (Elem::Int(v), 2)
    } else if b & 0xf0 == 0xe0 {
        let l = (((b & 0x0f) as usize) << 8) | buf[off + 1] as usize;
        (Elem::Str(&buf[off + 2..off + 2 + l]), 2 + l)
    } else {
        let p = &buf[off + 1..];
        match b {
            0xf0 => {
                let l = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
                (Elem::Str(&buf[off + 5..off + 5 + l]), 5 + l)
            }
            0xf1 => (Elem::Int(i16::from_le_bytes([p[0], p[1]]) as i64), 3),
            0xf2 => {
                let v = i32::from_le_bytes([0, p[0], p[1], p[2]]) >> 8;
                (Elem::Int(v as i64), 4)
            }
            0xf3 => (
                Elem::Int(i32::from_le_bytes([p[0], p[1], p[2], p[3]]) as i64),
                5,
            ),
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(&p[..8]);
                (Elem::Int(i64::from_le_bytes(a)), 9)
            }
        }
    };
    (e, enc + backlen_len(enc))
}

/// The start of the entry that ends at `end`.
#[inline]
fn prev_start(buf: &[u8], end: usize) -> usize {
    let mut l = 0usize;
    let mut i = 0;
    loop {
        let b = buf[end - 1 - i];
        l |= ((b & 0x7f) as usize) << (7 * i);
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    end - i - l
}

/// One packed node: elements back to back in listpack entry layout.
///
/// The entries are `raw[head..]`: the bytes before `head` are free room, so
/// pushing at the front writes into that room and popping at the front
/// moves `head` on, without shifting the node (Redis moves the whole
/// listpack for each LPUSH and LPOP). Room runs out after about a quarter
/// of the node's size in pushes, and is then made again with one move.
#[derive(Clone, Debug, Default)]
pub struct Pack {
    raw: Vec<u8>,
    head: u32,
    count: u32,
}

impl Pack {
    /// What Redis's `lpBytes` would report for this node.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.buf().len() + LP_OVERHEAD
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.count as usize
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entries, back to back.
    #[inline]
    fn buf(&self) -> &[u8] {
        &self.raw[self.head as usize..]
    }

    /// Byte offset of entry `idx` (`idx == len` gives the end).
    fn offset_of(&self, idx: usize) -> usize {
        let n = self.len();
        let buf = self.buf();
        if idx <= n / 2 {
            let mut off = 0;
            for _ in 0..idx {
                off += read_entry(buf, off).1;
            }
            off
        } else {
            let mut off = buf.len();
            for _ in idx..n {
                off = prev_start(buf, off);
            }
            off
        }
    }

    /// Replaces `old_len` bytes at `off` with the encoding of `e`.
    fn splice_entry(&mut self, off: usize, old_len: usize, e: Elem) {
        let l = e.enc_len();
        let t = l + backlen_len(l);
        if off == 0 && old_len == 0 {
            return self.prepend_entry(e, l, t);
        }
        let off = self.head as usize + off;
        let total = self.raw.len();
        if t > old_len {
            let add = t - old_len;
            if self.raw.capacity() < total + add {
                // Grow by at least a quarter: amortized O(1) pushes with
                // little slack (nodes are bounded; full ones get shrunk).
                self.raw
                    .reserve_exact(add.max((total - self.head as usize) / 4));
            }
            self.raw.resize(total + add, 0);
            self.raw.copy_within(off + old_len..total, off + t);
        } else if t < old_len {
            self.raw.copy_within(off + old_len..total, off + t);
            self.raw.truncate(total - (old_len - t));
        }
        write_entry(&mut self.raw[off..off + t], e, l);
    }

    /// Writes `e` (`l` bytes of encoding, `t` in all) before the first
    /// entry, into the free room at the front, making room first if needed.
    fn prepend_entry(&mut self, e: Elem, l: usize, t: usize) {
        let h = self.head as usize;
        if h < t {
            let len = self.raw.len() - h;
            let new_head = t + len / 4;
            let need = new_head + len;
            if self.raw.capacity() >= need {
                self.raw.resize(need, 0);
                self.raw.copy_within(h..h + len, new_head);
            } else {
                let mut v = Vec::with_capacity(need);
                v.resize(new_head, 0);
                v.extend_from_slice(&self.raw[h..]);
                self.raw = v;
            }
            self.head = new_head as u32;
        }
        let h = self.head as usize - t;
        write_entry(&mut self.raw[h..h + t], e, l);
        self.head = h as u32;
    }

    fn insert_at(&mut self, off: usize, b: &[u8]) {
        self.splice_entry(off, 0, Elem::classify(b));
        self.count += 1;
    }

    pub fn push_front(&mut self, b: &[u8]) {
        self.insert_at(0, b);
    }

    pub fn push_back(&mut self, b: &[u8]) {
        self.insert_at(self.buf().len(), b);
    }

    fn replace_at(&mut self, off: usize, b: &[u8]) {
        let (_, old) = read_entry(self.buf(), off);
        self.splice_entry(off, old, Elem::classify(b));
    }

    /// Removes the bytes `start..end` holding `n` entries.
    fn cut(&mut self, start: usize, end: usize, n: usize) {
        self.count -= n as u32;
        let h = self.head as usize;
        if self.count == 0 {
            self.raw.clear();
            self.head = 0;
        } else if start == 0 {
            // Leading entries become free room, given back once it is
            // twice what is left (amortized O(1) like the pushes).
            self.head = (h + end) as u32;
            if h + end > 2 * (self.raw.len() - h - end) && self.raw.capacity() > 256 {
                self.shrink();
            }
        } else {
            self.raw.drain(h + start..h + end);
        }
    }

    /// Removes the first (`head`) or last entry, handing it to `f` first.
    fn pop_with<R>(&mut self, head: bool, f: impl FnOnce(Elem) -> R) -> Option<R> {
        if self.count == 0 {
            return None;
        }
        let buf = self.buf();
        let (start, end, out) = if head {
            let (e, t) = read_entry(buf, 0);
            (0, t, f(e))
        } else {
            let end = buf.len();
            let s = prev_start(buf, end);
            (s, end, f(read_entry(buf, s).0))
        };
        self.cut(start, end, 1);
        Some(out)
    }

    /// Removes `n` entries starting at entry `idx`.
    fn remove_range(&mut self, idx: usize, n: usize) {
        let start = self.offset_of(idx);
        let mut end = start;
        for _ in 0..n {
            end += read_entry(self.buf(), end).1;
        }
        self.cut(start, end, n);
    }

    /// Splits off entries `idx..` into a new node.
    fn split_off(&mut self, idx: usize) -> Pack {
        let off = self.offset_of(idx);
        let tail = self.buf()[off..].to_vec();
        self.raw.truncate(self.head as usize + off);
        self.shrink();
        let n = self.count - idx as u32;
        self.count = idx as u32;
        Pack {
            raw: tail,
            head: 0,
            count: n,
        }
    }

    /// Appends every entry of `other` (entries are self-delimiting).
    fn append(&mut self, other: Pack) {
        self.raw.extend_from_slice(other.buf());
        self.count += other.count;
    }

    /// Moves the entries to the start of the buffer (no free room).
    fn compact(&mut self) {
        if self.head > 0 {
            self.raw.drain(..self.head as usize);
            self.head = 0;
        }
    }

    /// Removes up to `max` (0 = all) entries matching `n`, scanning from the
    /// tail when `from_tail`. Returns how many were removed.
    fn remove_matching(&mut self, n: &Needle, max: usize, from_tail: bool) -> usize {
        self.compact();
        let mut hits: Vec<(usize, usize)> = Vec::new();
        if from_tail {
            let mut end = self.raw.len();
            while end > 0 && (max == 0 || hits.len() < max) {
                let s = prev_start(&self.raw, end);
                if read_entry(&self.raw, s).0.matches(n) {
                    hits.push((s, end));
                }
                end = s;
            }
            hits.reverse();
        } else {
            let mut off = 0;
            while off < self.raw.len() && (max == 0 || hits.len() < max) {
                let (e, t) = read_entry(&self.raw, off);
                if e.matches(n) {
                    hits.push((off, off + t));
                }
                off += t;
            }
        }
        if hits.is_empty() {
            return 0;
        }
        // Compact in place, keeping the bytes between the hits.
        let mut w = hits[0].0;
        for (i, &(_, end)) in hits.iter().enumerate() {
            let next = hits.get(i + 1).map_or(self.raw.len(), |h| h.0);
            self.raw.copy_within(end..next, w);
            w += next - end;
        }
        self.raw.truncate(w);
        self.count -= hits.len() as u32;
        hits.len()
    }

    /// Index of the first entry matching `n`.
    fn find(&self, n: &Needle) -> Option<usize> {
        self.iter().position(|e| e.matches(n))
    }

    pub fn iter(&self) -> PackIter<'_> {
        let buf = self.buf();
        PackIter {
            buf,
            front: 0,
            back: buf.len(),
        }
    }

    /// Drops the free room at both ends.
    fn shrink(&mut self) {
        self.compact();
        self.raw.shrink_to_fit();
    }

    /// Heap bytes held.
    fn capacity(&self) -> usize {
        self.raw.capacity()
    }
}

/// Iterates over a node's elements, from either end.
pub struct PackIter<'a> {
    buf: &'a [u8],
    front: usize,
    back: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Elem<'a>;
    fn next(&mut self) -> Option<Elem<'a>> {
        if self.front >= self.back {
            return None;
        }
        let (e, t) = read_entry(self.buf, self.front);
        self.front += t;
        Some(e)
    }
}

impl<'a> DoubleEndedIterator for PackIter<'a> {
    fn next_back(&mut self) -> Option<Elem<'a>> {
        if self.front >= self.back {
            return None;
        }
        let s = prev_start(self.buf, self.back);
        self.back = s;
        Some(read_entry(self.buf, s).0)
    }
}

fn allow_insert(node: &Pack, fill: i64, sz: usize) -> bool {
    !exceeds_limit(
        fill,
        node.bytes() + sz + SIZE_ESTIMATE_OVERHEAD,
        node.len() + 1,
    )
}

fn allow_merge(a: &Pack, b: &Pack, fill: i64) -> bool {
    // One header/trailer goes away when two listpacks become one.
    !exceeds_limit(fill, a.bytes() + b.bytes() - LP_OVERHEAD, a.len() + b.len())
}

/// The quicklist encoding: packed nodes in a deque.
#[derive(Clone, Debug, Default)]
pub struct Quick {
    nodes: VecDeque<Pack>,
    count: usize,
}

impl Quick {
    /// (node, index inside the node) of element `idx` (< count), walking
    /// from the nearer end.
    fn locate(&self, idx: usize) -> (usize, usize) {
        if idx < self.count / 2 {
            let mut acc = 0;
            for (i, n) in self.nodes.iter().enumerate() {
                if idx < acc + n.len() {
                    return (i, idx - acc);
                }
                acc += n.len();
            }
        } else {
            let mut acc = self.count;
            for (i, n) in self.nodes.iter().enumerate().rev() {
                acc -= n.len();
                if idx >= acc {
                    return (i, idx - acc);
                }
            }
        }
        unreachable!("index {idx} out of range");
    }

    fn push(&mut self, b: &[u8], head: bool, fill: i64) {
        let sz = b.len();
        if head {
            match self.nodes.front_mut() {
                Some(n) if allow_insert(n, fill, sz) => n.push_front(b),
                old => {
                    if let Some(o) = old {
                        o.shrink();
                    }
                    let mut n = Pack::default();
                    n.push_front(b);
                    self.nodes.push_front(n);
                }
            }
        } else {
            match self.nodes.back_mut() {
                Some(n) if allow_insert(n, fill, sz) => n.push_back(b),
                old => {
                    if let Some(o) = old {
                        o.shrink();
                    }
                    let mut n = Pack::default();
                    n.push_back(b);
                    self.nodes.push_back(n);
                }
            }
        }
        self.count += 1;
    }

    fn pop_with<R>(&mut self, head: bool, f: impl FnOnce(Elem) -> R) -> Option<R> {
        let v = if head {
            let n = self.nodes.front_mut()?;
            let v = n.pop_with(true, f);
            if n.is_empty() {
                self.nodes.pop_front();
            }
            v
        } else {
            let n = self.nodes.back_mut()?;
            let v = n.pop_with(false, f);
            if n.is_empty() {
                self.nodes.pop_back();
            }
            v
        };
        self.count -= 1;
        v
    }

    /// Deletes `n` elements from `start` (both within range).
    fn del_range(&mut self, start: usize, n: usize) {
        if n == 0 {
            return;
        }
        let (mut ni, mut off) = self.locate(start);
        let mut extent = n;
        while extent > 0 {
            let c = self.nodes[ni].len();
            if off == 0 && extent >= c {
                self.nodes.remove(ni);
                self.count -= c;
                extent -= c;
                continue;
            }
            let del = (c - off).min(extent);
            self.nodes[ni].remove_range(off, del);
            self.count -= del;
            extent -= del;
            ni += 1;
            off = 0;
        }
    }

    /// Inserts next to element `eo` of node `ni`, with Redis's choice of
    /// node: the same one if it has room, else a neighbour at a node edge,
    /// else a new node, else a split followed by merges.
    fn insert(&mut self, ni: usize, eo: usize, b: &[u8], after: bool, fill: i64) {
        let sz = b.len();
        let node_count = self.nodes[ni].len();
        let full = !allow_insert(&self.nodes[ni], fill, sz);
        let at_tail = after && eo == node_count - 1;
        let at_head = !after && eo == 0;
        let avail_next =
            at_tail && ni + 1 < self.nodes.len() && allow_insert(&self.nodes[ni + 1], fill, sz);
        let avail_prev = at_head && ni > 0 && allow_insert(&self.nodes[ni - 1], fill, sz);
        self.count += 1;
        if !full {
            let node = &mut self.nodes[ni];
            let off = node.offset_of(if after { eo + 1 } else { eo });
            node.insert_at(off, b);
        } else if avail_next {
            self.nodes[ni + 1].push_front(b);
        } else if avail_prev {
            self.nodes[ni - 1].push_back(b);
        } else if at_tail || at_head {
            let mut n = Pack::default();
            n.push_back(b);
            self.nodes.insert(if after { ni + 1 } else { ni }, n);
        } else {
            let mut center = ni;
            if after {
                let mut n = self.nodes[ni].split_off(eo + 1);
                n.push_front(b);
                self.nodes.insert(ni + 1, n);
            } else {
                let rest = self.nodes[ni].split_off(eo);
                let mut n = std::mem::replace(&mut self.nodes[ni], rest);
                n.push_back(b);
                self.nodes.insert(ni, n);
                center += 1;
            }
            self.merge_around(center, fill);
        }
    }

    /// Merges node `i + 1` into node `i`.
    fn merge(&mut self, i: usize) {
        let b = self.nodes.remove(i + 1).expect("merge neighbour");
        self.nodes[i].append(b);
    }

    fn can_merge(&self, a: usize, b: usize, fill: i64) -> bool {
        allow_merge(&self.nodes[a], &self.nodes[b], fill)
    }

    /// Redis's `_quicklistMergeNodes` around node `c`.
    fn merge_around(&mut self, mut c: usize, fill: i64) {
        if c >= 2 && self.can_merge(c - 2, c - 1, fill) {
            self.merge(c - 2);
            c -= 1;
        }
        if c + 2 < self.nodes.len() && self.can_merge(c + 1, c + 2, fill) {
            self.merge(c + 1);
        }
        let mut t = c;
        if c >= 1 && self.can_merge(c - 1, c, fill) {
            self.merge(c - 1);
            t = c - 1;
        }
        if t + 1 < self.nodes.len() && self.can_merge(t, t + 1, fill) {
            self.merge(t);
        }
    }

    fn remove_matching(&mut self, n: &Needle, max: usize, from_tail: bool) -> usize {
        let mut removed = 0;
        let nodes = self.nodes.len();
        for k in 0..nodes {
            let i = if from_tail { nodes - 1 - k } else { k };
            let left = if max == 0 { 0 } else { max - removed };
            removed += self.nodes[i].remove_matching(n, left, from_tail);
            if max != 0 && removed >= max {
                break;
            }
        }
        self.nodes.retain(|p| !p.is_empty());
        self.count -= removed;
        removed
    }
}

/// A list value.
#[derive(Clone, Debug)]
pub enum ListValue {
    Listpack(Pack),
    Quicklist(Quick),
}

impl Default for ListValue {
    fn default() -> Self {
        ListValue::Listpack(Pack::default())
    }
}

impl PartialEq for ListValue {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl ListValue {
    /// A list built from elements the way SORT ... STORE and RDB loading do
    /// (a quicklist, then the automatic conversion).
    pub fn from_elements<'a>(items: impl IntoIterator<Item = &'a [u8]>, fill: i64) -> Self {
        let mut q = Quick::default();
        for b in items {
            q.push(b, false, fill);
        }
        let mut l = ListValue::Quicklist(q);
        l.try_convert_quicklist(fill, false);
        l
    }

    /// The packed nodes in order (one for the listpack encoding): RDB
    /// saves each as one quicklist node.
    pub fn nodes(&self) -> Box<dyn Iterator<Item = &Pack> + '_> {
        match self {
            ListValue::Listpack(p) => Box::new(std::iter::once(p)),
            ListValue::Quicklist(q) => Box::new(q.nodes.iter()),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ListValue::Listpack(p) => p.len(),
            ListValue::Quicklist(q) => q.count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            ListValue::Listpack(_) => "listpack",
            ListValue::Quicklist(_) => "quicklist",
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher. Equal values give equal
    /// digests whatever their encoding (each element length-prefixed).
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        for e in self.iter() {
            e.with_bytes(|b| {
                h.update(&(b.len() as u64).to_le_bytes());
                h.update(b);
            });
        }
    }

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        match self {
            ListValue::Listpack(p) => p.capacity(),
            ListValue::Quicklist(q) => {
                q.nodes.capacity() * std::mem::size_of::<Pack>()
                    + q.nodes.iter().map(|p| p.capacity()).sum::<usize>()
            }
        }
    }

    /// Number of nodes (1 for a listpack).
    pub fn node_count(&self) -> usize {
        match self {
            ListValue::Listpack(_) => 1,
            ListValue::Quicklist(q) => q.nodes.len(),
        }
    }

    fn node(&self, i: usize) -> &Pack {
        match self {
            ListValue::Listpack(p) => p,
            ListValue::Quicklist(q) => &q.nodes[i],
        }
    }

    /// Converts a listpack to a quicklist if adding `add_count` elements
    /// of `add_bytes` bytes in total could take it over the limit (Redis
    /// checks before it knows the element will really be added).
    pub fn try_grow(&mut self, fill: i64, add_bytes: usize, add_count: usize) {
        if let ListValue::Listpack(p) = self {
            if exceeds_limit(fill, p.bytes() + add_bytes, p.len() + add_count) {
                let p = std::mem::take(p);
                let mut q = Quick {
                    count: p.len(),
                    ..Default::default()
                };
                if !p.is_empty() {
                    q.nodes.push_back(p);
                }
                *self = ListValue::Quicklist(q);
            }
        }
    }

    /// After elements were removed: a quicklist of one node under half
    /// the limits becomes a listpack again.
    pub fn try_shrink(&mut self, fill: i64) {
        self.try_convert_quicklist(fill, true);
    }

    fn try_convert_quicklist(&mut self, fill: i64, shrinking: bool) {
        let ListValue::Quicklist(q) = self else {
            return;
        };
        if q.nodes.len() != 1 {
            return;
        }
        let (mut sz, mut count) = node_limit(fill);
        if shrinking {
            sz /= 2;
            count /= 2;
        }
        if q.nodes[0].bytes() > sz || q.count > count {
            return;
        }
        let mut p = q.nodes.pop_front().expect("one node");
        p.shrink();
        *self = ListValue::Listpack(p);
    }

    /// Adds an element at the head or the tail.
    pub fn push(&mut self, b: &[u8], head: bool, fill: i64) {
        match self {
            ListValue::Listpack(p) => {
                if head {
                    p.push_front(b)
                } else {
                    p.push_back(b)
                }
            }
            ListValue::Quicklist(q) => q.push(b, head, fill),
        }
    }

    /// Removes and returns the head or tail element.
    pub fn pop(&mut self, head: bool) -> Option<Vec<u8>> {
        self.pop_with(head, |e| e.to_vec())
    }

    /// Removes the head or tail element, handing it to `f` before it goes
    /// (a reply can be written from the node, without a copy).
    pub fn pop_with<R>(&mut self, head: bool, f: impl FnOnce(Elem) -> R) -> Option<R> {
        match self {
            ListValue::Listpack(p) => p.pop_with(head, f),
            ListValue::Quicklist(q) => q.pop_with(head, f),
        }
    }

    /// A Redis index (negative counts from the tail) as a position.
    pub fn normalize(&self, idx: i64) -> Option<usize> {
        let len = self.len() as i64;
        let i = if idx < 0 { idx.checked_add(len)? } else { idx };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The element at a (possibly negative) index.
    pub fn get(&self, idx: i64) -> Option<Elem<'_>> {
        let i = self.normalize(idx)?;
        self.iter_from(i, false).next()
    }

    /// Replaces the element at a (possibly negative) index; false when out
    /// of range. The node is rewritten in place (Redis 7.2 never splits a
    /// packed node on LSET).
    pub fn set(&mut self, idx: i64, b: &[u8]) -> bool {
        let Some(i) = self.normalize(idx) else {
            return false;
        };
        match self {
            ListValue::Listpack(p) => {
                let off = p.offset_of(i);
                p.replace_at(off, b);
            }
            ListValue::Quicklist(q) => {
                let (ni, eo) = q.locate(i);
                let node = &mut q.nodes[ni];
                let off = node.offset_of(eo);
                node.replace_at(off, b);
            }
        }
        true
    }

    /// Deletes `n` elements starting at position `start` (clipped to the list).
    pub fn del_range(&mut self, start: usize, n: usize) {
        let n = n.min(self.len().saturating_sub(start));
        if n == 0 {
            return;
        }
        match self {
            ListValue::Listpack(p) => p.remove_range(start, n),
            ListValue::Quicklist(q) => q.del_range(start, n),
        }
    }

    /// Inserts `b` before or after the first element equal to `pivot`.
    /// Returns false (and changes nothing) if there is no such element.
    pub fn insert(&mut self, pivot: &[u8], b: &[u8], after: bool, fill: i64) -> bool {
        let n = Needle::new(pivot);
        match self {
            ListValue::Listpack(p) => {
                let Some(i) = p.find(&n) else {
                    return false;
                };
                let off = p.offset_of(if after { i + 1 } else { i });
                p.insert_at(off, b);
            }
            ListValue::Quicklist(q) => {
                let Some((ni, eo)) = q
                    .nodes
                    .iter()
                    .enumerate()
                    .find_map(|(ni, p)| p.find(&n).map(|eo| (ni, eo)))
                else {
                    return false;
                };
                q.insert(ni, eo, b, after, fill);
            }
        }
        true
    }

    /// LREM: removes up to |count| elements equal to `elem` (all when 0),
    /// from the tail when count is negative. Returns how many went.
    pub fn remove(&mut self, elem: &[u8], count: i64) -> usize {
        let n = Needle::new(elem);
        let max = count.unsigned_abs().min(usize::MAX as u64) as usize;
        let from_tail = count < 0;
        match self {
            ListValue::Listpack(p) => p.remove_matching(&n, max, from_tail),
            ListValue::Quicklist(q) => q.remove_matching(&n, max, from_tail),
        }
    }

    /// Elements from head to tail.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    /// Elements starting at position `i` (< len, or anything for an empty
    /// list), towards the tail or, when `reverse`, towards the head.
    pub fn iter_from(&self, i: usize, reverse: bool) -> Iter<'_> {
        if i >= self.len() {
            return Iter {
                list: self,
                node: 0,
                off: 0,
                reverse,
                done: true,
            };
        }
        let (node, eo) = match self {
            ListValue::Listpack(_) => (0, i),
            ListValue::Quicklist(q) => q.locate(i),
        };
        let p = self.node(node);
        let off = if reverse {
            p.offset_of(eo + 1)
        } else {
            p.offset_of(eo)
        };
        Iter {
            list: self,
            node,
            off,
            reverse,
            done: false,
        }
    }
}

/// Walks a list's elements in either direction from a starting position.
pub struct Iter<'a> {
    list: &'a ListValue,
    node: usize,
    /// Forward: offset of the next entry. Reverse: end of the next entry.
    off: usize,
    reverse: bool,
    done: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        if self.done {
            return None;
        }
        let list = self.list;
        loop {
            let p = list.node(self.node);
            if self.reverse {
                if self.off > 0 {
                    let s = prev_start(p.buf(), self.off);
                    self.off = s;
                    return Some(read_entry(p.buf(), s).0);
                }
                if self.node == 0 {
                    self.done = true;
                    return None;
                }
                self.node -= 1;
                self.off = list.node(self.node).buf().len();
            } else {
                if self.off < p.buf().len() {
                    let (e, t) = read_entry(p.buf(), self.off);
                    self.off += t;
                    return Some(e);
                }
                if self.node + 1 >= list.node_count() {
                    self.done = true;
                    return None;
                }
                self.node += 1;
                self.off = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn items(l: &ListValue) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    /// Node-level invariants: counts add up, no empty nodes, every node
    /// decodes to its count in both directions.
    fn check(l: &ListValue) {
        let mut total = 0;
        for i in 0..l.node_count() {
            let p = l.node(i);
            let f = p.iter().count();
            let b = p.iter().rev().count();
            assert_eq!(f, p.len());
            assert_eq!(b, p.len());
            if let ListValue::Quicklist(_) = l {
                assert!(!p.is_empty(), "empty quicklist node");
            }
            total += f;
        }
        assert_eq!(total, l.len());
    }

    #[test]
    fn entry_encodings_round_trip_with_redis_sizes() {
        let cases: Vec<(Vec<u8>, usize)> = vec![
            (b"0".to_vec(), 2),
            (b"127".to_vec(), 2),
            (b"128".to_vec(), 3),
            (b"-4096".to_vec(), 3),
            (b"4095".to_vec(), 3),
            (b"4096".to_vec(), 4),
            (b"-32768".to_vec(), 4),
            (b"32768".to_vec(), 5),
            (b"-8388608".to_vec(), 5),
            (b"8388608".to_vec(), 6),
            (b"2147483647".to_vec(), 6),
            (b"2147483648".to_vec(), 10),
            (b"-9223372036854775808".to_vec(), 10),
            (b"9223372036854775808".to_vec(), 21), // not an i64: a string
            (b"007".to_vec(), 5),
            (b"".to_vec(), 2),
            (vec![b'x'; 63], 65),
            (vec![b'x'; 64], 67),
            (vec![b'x'; 125], 128), // encoded 127 bytes: 1 byte backlen
            (vec![b'x'; 126], 130), // encoded 128 bytes: 2 byte backlen
            (vec![b'x'; 4095], 4099),
            (vec![b'x'; 4096], 4103),
            (vec![b'x'; 65535], 65543),
        ];
        for (v, size) in cases {
            let mut p = Pack::default();
            p.push_back(b"a");
            p.push_back(&v);
            p.push_back(b"z");
            assert_eq!(
                p.bytes(),
                LP_OVERHEAD + 3 + size + 3,
                "size of {:?}",
                v.len()
            );
            let got: Vec<Vec<u8>> = p.iter().map(|e| e.to_vec()).collect();
            assert_eq!(got, vec![b"a".to_vec(), v.clone(), b"z".to_vec()]);
            let back: Vec<Vec<u8>> = p.iter().rev().map(|e| e.to_vec()).collect();
            assert_eq!(back, vec![b"z".to_vec(), v.clone(), b"a".to_vec()]);
        }
    }

    #[test]
    fn every_small_int_round_trips() {
        let mut p = Pack::default();
        for v in -70000i64..70000 {
            p.push_back(v.to_string().as_bytes());
        }
        for (i, e) in p.iter().enumerate() {
            assert_eq!(e, Elem::Int(i as i64 - 70000));
        }
        for big in [
            i64::MIN,
            i64::MAX,
            1 << 40,
            -(1 << 40),
            (1 << 23) - 1,
            -(1 << 23),
        ] {
            let mut p = Pack::default();
            p.push_back(big.to_string().as_bytes());
            assert_eq!(p.iter().next(), Some(Elem::Int(big)));
        }
    }

    #[test]
    fn conversions_follow_redis() {
        // Count limit 3: listpack up to 3 entries, then quicklist.
        let mut l = ListValue::default();
        for x in [b"a", b"b", b"c"] {
            l.try_grow(3, 1, 1);
            l.push(x, false, 3);
        }
        assert_eq!(l.encoding(), "listpack");
        l.try_grow(3, 1, 1);
        l.push(b"d", false, 3);
        assert_eq!(l.encoding(), "quicklist");
        assert_eq!(l.node_count(), 2);
        // RPOP 3 leaves one node of one entry (<= 3/2): listpack again.
        l.del_range(1, 3);
        l.try_shrink(3);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(items(&l), vec![b"a".to_vec()]);

        // Size limit -1 (4096 bytes).
        let big = vec![b'x'; 8192];
        let mut l = ListValue::default();
        for x in [&b"a"[..], b"b", b"c"] {
            l.try_grow(-1, 1, 1);
            l.push(x, false, -1);
        }
        l.try_grow(-1, big.len(), 1);
        assert_eq!(l.encoding(), "quicklist");
        l.push(&big, false, -1);
        assert_eq!(l.node_count(), 2);
        l.pop(false);
        l.try_shrink(-1);
        assert_eq!(l.encoding(), "listpack");

        // list-max-listpack-size 0 behaves as 1; < -5 as -5.
        assert_eq!(node_limit(0), (usize::MAX, 1));
        assert_eq!(node_limit(-6), (65536, usize::MAX));
        let mut l = ListValue::default();
        l.try_grow(-6, 60000, 1);
        l.push(&vec![b'x'; 60000], false, -6);
        assert_eq!(l.encoding(), "listpack");
        l.try_grow(-6, 5536, 1);
        assert_eq!(l.encoding(), "quicklist");
    }

    #[test]
    fn head_pushes_and_pops_use_the_front_room() {
        let mut p = Pack::default();
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for i in 0..500 {
            let v = format!("element-{i}").into_bytes();
            p.push_front(&v);
            model.push_front(v);
            if i % 7 == 0 {
                p.push_back(b"tail");
                model.push_back(b"tail".to_vec());
            }
        }
        let all = |p: &Pack| p.iter().map(|e| e.to_vec()).collect::<Vec<_>>();
        assert_eq!(all(&p), Vec::from(model.clone()));
        // The room in front stays a fraction of the entries.
        assert!(
            p.capacity() < 2 * p.bytes(),
            "{} {}",
            p.capacity(),
            p.bytes()
        );
        while model.len() > 3 {
            assert_eq!(p.pop_with(true, |e| e.to_vec()), model.pop_front());
            assert!(
                p.capacity() <= 4 * p.bytes() + 256,
                "{} {}",
                p.capacity(),
                p.bytes()
            );
        }
        p.push_back(b"x");
        model.push_back(b"x".to_vec());
        assert_eq!(all(&p), Vec::from(model.clone()));
        assert_eq!(p.pop_with(false, |e| e.to_vec()), model.pop_back());
        while let Some(v) = model.pop_front() {
            assert_eq!(p.pop_with(true, |e| e.to_vec()), Some(v));
        }
        assert!(p.is_empty() && p.capacity() == 0 || p.buf().is_empty());
    }

    #[test]
    fn lset_shrinks_a_big_single_node_back() {
        let big = vec![b'x'; 8192];
        let mut l = ListValue::default();
        l.try_grow(-1, big.len(), 1);
        l.push(&big, false, -1);
        l.push(b"a", false, -1);
        l.push(b"b", false, -1);
        assert_eq!(l.node_count(), 2);
        l.del_range(1, 2);
        l.try_shrink(-1);
        assert_eq!(l.encoding(), "quicklist");
        assert!(l.set(-1, b"c"));
        l.try_shrink(-1);
        assert_eq!(l.encoding(), "listpack");
        assert_eq!(items(&l), vec![b"c".to_vec()]);
    }

    #[test]
    fn insert_splits_full_nodes_and_merges() {
        let mut l = ListValue::default();
        l.try_grow(4, 0, 100);
        for i in 0..12 {
            l.push(i.to_string().as_bytes(), false, 4);
        }
        assert_eq!(l.node_count(), 3);
        assert!(l.insert(b"5", b"x", true, 4));
        assert!(l.insert(b"0", b"y", false, 4));
        assert!(l.insert(b"11", b"z", true, 4));
        assert!(!l.insert(b"nope", b"z", true, 4));
        check(&l);
        let want: Vec<Vec<u8>> = [
            "y", "0", "1", "2", "3", "4", "5", "x", "6", "7", "8", "9", "10", "11", "z",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        assert_eq!(items(&l), want);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push(bool, Vec<u8>),
        Pop(bool),
        Set(i64, Vec<u8>),
        Insert(Vec<u8>, Vec<u8>, bool),
        Remove(Vec<u8>, i64),
        DelRange(usize, usize),
        Trim(i64, i64),
    }

    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            (-300i64..300).prop_map(|n| n.to_string().into_bytes()),
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            proptest::collection::vec(b'a'..b'e', 0..4),
            proptest::collection::vec(any::<u8>(), 0..200),
            (1usize..3000).prop_map(|n| vec![b'L'; n]),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), elem()).prop_map(|(h, e)| Op::Push(h, e)),
            2 => any::<bool>().prop_map(Op::Pop),
            1 => (-20i64..20, elem()).prop_map(|(i, e)| Op::Set(i, e)),
            1 => (elem(), elem(), any::<bool>()).prop_map(|(p, e, a)| Op::Insert(p, e, a)),
            1 => (elem(), -3i64..3).prop_map(|(e, c)| Op::Remove(e, c)),
            1 => (0usize..30, 0usize..30).prop_map(|(s, n)| Op::DelRange(s, n)),
            1 => (-30i64..30, -30i64..30).prop_map(|(s, e)| Op::Trim(s, e)),
        ]
    }

    fn model_index(m: &[Vec<u8>], i: i64) -> Option<usize> {
        let len = m.len() as i64;
        let i = if i < 0 { i + len } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// Runs the ops as the commands do (grow before, shrink after) against
    /// the list and a Vec model; contents must always agree.
    fn run(ops: Vec<Op>, fill: i64) {
        let mut l = ListValue::default();
        let mut m: Vec<Vec<u8>> = Vec::new();
        for op in ops {
            match op {
                Op::Push(head, e) => {
                    l.try_grow(fill, e.len(), 1);
                    l.push(&e, head, fill);
                    if head {
                        m.insert(0, e)
                    } else {
                        m.push(e)
                    }
                }
                Op::Pop(head) => {
                    let want = if m.is_empty() {
                        None
                    } else if head {
                        Some(m.remove(0))
                    } else {
                        m.pop()
                    };
                    assert_eq!(l.pop(head), want);
                    l.try_shrink(fill);
                }
                Op::Set(i, e) => {
                    l.try_grow(fill, e.len(), 1);
                    let ok = l.set(i, &e);
                    match model_index(&m, i) {
                        Some(j) => {
                            assert!(ok);
                            m[j] = e;
                            l.try_shrink(fill);
                        }
                        None => assert!(!ok),
                    }
                }
                Op::Insert(p, e, after) => {
                    // Insert next to an existing element half the time.
                    let p = if !m.is_empty() && p.len() % 2 == 0 {
                        m[p.len() % m.len()].clone()
                    } else {
                        p
                    };
                    l.try_grow(fill, e.len(), 1);
                    let ok = l.insert(&p, &e, after, fill);
                    match m.iter().position(|x| *x == p) {
                        Some(j) => {
                            assert!(ok);
                            m.insert(if after { j + 1 } else { j }, e);
                        }
                        None => assert!(!ok),
                    }
                }
                Op::Remove(e, c) => {
                    let e = if !m.is_empty() && e.len() % 2 == 0 {
                        m[e.len() % m.len()].clone()
                    } else {
                        e
                    };
                    let n = l.remove(&e, c);
                    let mut removed = 0;
                    let max = c.unsigned_abs() as usize;
                    if c < 0 {
                        let mut j = m.len();
                        while j > 0 && (max == 0 || removed < max) {
                            j -= 1;
                            if m[j] == e {
                                m.remove(j);
                                removed += 1;
                            }
                        }
                    } else {
                        let mut j = 0;
                        while j < m.len() && (max == 0 || removed < max) {
                            if m[j] == e {
                                m.remove(j);
                                removed += 1;
                            } else {
                                j += 1;
                            }
                        }
                    }
                    assert_eq!(n, removed);
                    l.try_shrink(fill);
                }
                Op::DelRange(s, n) => {
                    l.del_range(s, n);
                    let s = s.min(m.len());
                    let e = (s + n).min(m.len());
                    m.drain(s..e);
                    l.try_shrink(fill);
                }
                Op::Trim(s, e) => {
                    let len = m.len() as i64;
                    let (mut s2, mut e2) = (s, e);
                    if s2 < 0 {
                        s2 += len;
                    }
                    if e2 < 0 {
                        e2 += len;
                    }
                    s2 = s2.max(0);
                    let (lt, rt) = if s2 > e2 || s2 >= len {
                        (len, 0)
                    } else {
                        (s2, len - e2.min(len - 1) - 1)
                    };
                    l.del_range(0, lt as usize);
                    let now = l.len();
                    l.del_range(now - rt as usize, rt as usize);
                    m.drain(..lt as usize);
                    let k = m.len();
                    m.truncate(k - rt as usize);
                    l.try_shrink(fill);
                }
            }
            if m.is_empty() {
                // Commands delete empty lists; start over like a new key.
                assert_eq!(l.len(), 0);
                l = ListValue::default();
            }
            check(&l);
            assert_eq!(l.len(), m.len());
            assert_eq!(items(&l), m);
            let rev: Vec<Vec<u8>> = l
                .iter_from(l.len().saturating_sub(1), true)
                .map(|e| e.to_vec())
                .collect();
            let mut mr = m.clone();
            mr.reverse();
            assert_eq!(rev, mr);
        }
        // Random access, both ways, from every position.
        for i in 0..m.len() {
            assert_eq!(l.get(i as i64).unwrap().to_vec(), m[i]);
            assert_eq!(l.get(i as i64 - m.len() as i64).unwrap().to_vec(), m[i]);
            assert_eq!(l.iter_from(i, false).next().unwrap().to_vec(), m[i]);
            assert_eq!(l.iter_from(i, true).count(), i + 1);
        }
        assert!(l.get(m.len() as i64).is_none());
        // Digest and equality do not depend on the encoding.
        let other = ListValue::from_elements(m.iter().map(|v| &v[..]), 1);
        assert_eq!(other, l);
        let (mut h1, mut h2) = (sha1_smol::Sha1::new(), sha1_smol::Sha1::new());
        l.digest(&mut h1);
        other.digest(&mut h2);
        assert_eq!(h1.digest(), h2.digest());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn matches_model_count_limits(ops in proptest::collection::vec(op(), 0..120), fill in prop_oneof![Just(0i64), Just(1), Just(3), Just(5), Just(16), Just(128)]) {
            run(ops, fill);
        }

        #[test]
        fn matches_model_size_limits(ops in proptest::collection::vec(op(), 0..120), fill in -6i64..0) {
            run(ops, fill);
        }
    }
}
