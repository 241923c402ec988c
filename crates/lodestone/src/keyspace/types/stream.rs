//! The stream value type (Redis's `t_stream.c` data side).
//!
//! Entries live in a B-tree of nodes keyed by the node's first ("master")
//! ID, like Redis's rax of listpacks. Each node is one packed byte buffer
//! holding up to `stream-node-max-entries` entries (or about
//! `stream-node-max-bytes` bytes): every entry is a flags byte, the ID as
//! varint deltas from the master ID, and its fields. An entry whose field
//! names equal the node's master fields (the first entry's) stores only its
//! values. Deletion marks the flags byte; a node whose entries are all
//! deleted is dropped. Consumer groups keep their PELs as ordered maps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A stream entry ID: milliseconds and sequence number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID, or None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    /// `ms-seq` text.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(24);
        v.extend_from_slice(itoa::Buffer::new().format(self.ms).as_bytes());
        v.push(b'-');
        v.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        v
    }
}

const F_DELETED: u8 = 1;
const F_SAME: u8 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// One packed node of entries.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    /// The master field names: varint count, then (varint len, bytes)*.
    fields: Box<[u8]>,
    buf: Vec<u8>,
    /// Entries not deleted.
    live: u32,
    /// Entries including deleted ones.
    total: u32,
}

/// A decoded entry: its flags, ID and position of the next entry.
struct Decoded<'a> {
    flags: u8,
    id: StreamId,
    /// Flattened field, value, field, value...
    fv: Vec<&'a [u8]>,
    next: usize,
}

fn master_fields(fields: &[u8]) -> Vec<&[u8]> {
    let mut pos = 0;
    let n = get_varint(fields, &mut pos) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let l = get_varint(fields, &mut pos) as usize;
        out.push(&fields[pos..pos + l]);
        pos += l;
    }
    out
}

impl Node {
    fn new(fv: &[&[u8]], cap: usize) -> Node {
        let mut f = Vec::new();
        put_varint(&mut f, (fv.len() / 2) as u64);
        for pair in fv.chunks(2) {
            put_varint(&mut f, pair[0].len() as u64);
            f.extend_from_slice(pair[0]);
        }
        Node {
            fields: f.into_boxed_slice(),
            buf: Vec::with_capacity(cap),
            live: 0,
            total: 0,
        }
    }

    fn bytes(&self) -> usize {
        self.buf.len() + self.fields.len()
    }

    fn same_fields(&self, fv: &[&[u8]]) -> bool {
        let mut pos = 0;
        let n = get_varint(&self.fields, &mut pos) as usize;
        if n != fv.len() / 2 {
            return false;
        }
        for pair in fv.chunks(2) {
            let l = get_varint(&self.fields, &mut pos) as usize;
            if &self.fields[pos..pos + l] != pair[0] {
                return false;
            }
            pos += l;
        }
        true
    }

    fn push(&mut self, master: StreamId, id: StreamId, fv: &[&[u8]]) {
        let same = self.same_fields(fv);
        self.buf.push(if same { F_SAME } else { 0 });
        let dms = id.ms - master.ms;
        put_varint(&mut self.buf, dms);
        put_varint(
            &mut self.buf,
            if dms == 0 {
                id.seq - master.seq
            } else {
                id.seq
            },
        );
        if same {
            for pair in fv.chunks(2) {
                put_varint(&mut self.buf, pair[1].len() as u64);
                self.buf.extend_from_slice(pair[1]);
            }
        } else {
            put_varint(&mut self.buf, (fv.len() / 2) as u64);
            for x in fv {
                put_varint(&mut self.buf, x.len() as u64);
                self.buf.extend_from_slice(x);
            }
        }
        self.live += 1;
        self.total += 1;
    }

    /// Decodes the entry at `pos`; with `want_fields` false only the ID.
    fn decode<'a>(
        &'a self,
        master: StreamId,
        mf: &[&'a [u8]],
        pos: usize,
        want_fields: bool,
    ) -> Decoded<'a> {
        let b = &self.buf;
        let mut p = pos;
        let flags = b[p];
        p += 1;
        let dms = get_varint(b, &mut p);
        let s = get_varint(b, &mut p);
        let id = if dms == 0 {
            StreamId::new(master.ms, master.seq + s)
        } else {
            StreamId::new(master.ms + dms, s)
        };
        let mut fv = Vec::new();
        if flags & F_SAME != 0 {
            if want_fields {
                fv.reserve(mf.len() * 2);
            }
            for f in mf {
                let l = get_varint(b, &mut p) as usize;
                if want_fields {
                    fv.push(*f);
                    fv.push(&b[p..p + l]);
                }
                p += l;
            }
        } else {
            let n = get_varint(b, &mut p) as usize;
            for _ in 0..2 * n {
                let l = get_varint(b, &mut p) as usize;
                if want_fields {
                    fv.push(&b[p..p + l]);
                }
                p += l;
            }
        }
        Decoded {
            flags,
            id,
            fv,
            next: p,
        }
    }

    /// Positions and IDs of every entry (deleted ones too).
    fn index(&self, master: StreamId) -> Vec<(usize, StreamId, u8)> {
        let mf = master_fields(&self.fields);
        let mut out = Vec::with_capacity(self.total as usize);
        let mut pos = 0;
        while pos < self.buf.len() {
            let d = self.decode(master, &mf, pos, false);
            out.push((pos, d.id, d.flags));
            pos = d.next;
        }
        out
    }
}

/// A pending entry of a consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    pub delivery_time: i64,
    pub delivery_count: u64,
    pub consumer: Arc<[u8]>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    pub name: Arc<[u8]>,
    pub seen_time: i64,
    pub active_time: i64,
    pub pel: BTreeSet<StreamId>,
}

/// Redis's SCG_INVALID_ENTRIES_READ.
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Creates a consumer; false if it exists.
    pub fn create_consumer(&mut self, name: &[u8], now: i64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.to_vec(),
            Consumer {
                name: Arc::from(name),
                seen_time: now,
                active_time: -1,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Deletes a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pel {
            self.pel.remove(id);
        }
        Some(c.pel.len())
    }

    /// Removes a pending entry from the group and its consumer.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&*n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives pending entry `id` to `consumer` (creating it when absent),
    /// with Redis's XREADGROUP semantics (delivery count reset to 1 when
    /// it changes hands).
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now: i64) {
        let name: Arc<[u8]> = self.consumers[consumer].name.clone();
        match self.pel.get_mut(&id) {
            Some(n) => {
                let old = n.consumer.clone();
                n.consumer = name;
                n.delivery_time = now;
                n.delivery_count = 1;
                if let Some(c) = self.consumers.get_mut(&*old) {
                    c.pel.remove(&id);
                }
            }
            None => {
                self.pel.insert(
                    id,
                    Nack {
                        delivery_time: now,
                        delivery_count: 1,
                        consumer: name,
                    },
                );
            }
        }
        self.consumers.get_mut(consumer).unwrap().pel.insert(id);
    }

    /// Moves pending entry `id` to `consumer` (which must exist).
    pub fn reassign(&mut self, id: StreamId, consumer: &[u8]) {
        let name = self.consumers[consumer].name.clone();
        let n = self.pel.get_mut(&id).expect("pending entry");
        if &*n.consumer != consumer {
            let old = std::mem::replace(&mut n.consumer, name);
            if let Some(c) = self.consumers.get_mut(&*old) {
                c.pel.remove(&id);
            }
        }
        self.consumers.get_mut(consumer).unwrap().pel.insert(id);
    }
}

/// A stream value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamValue {
    nodes: BTreeMap<StreamId, Node>,
    len: u64,
    pub last_id: StreamId,
    pub entries_added: u64,
    pub max_deleted: StreamId,
    pub groups: BTreeMap<Vec<u8>, Group>,
}

/// Node size limits (stream-node-max-bytes / stream-node-max-entries).
#[derive(Clone, Copy, Debug)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_bytes: 4096,
            max_entries: 100,
        }
    }
}

/// How to trim.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Largest total field/value size of one entry (Redis's listpack limit).
pub const MAX_ENTRY_BYTES: usize = 1 << 30;

impl StreamValue {
    pub fn new() -> StreamValue {
        StreamValue::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes (XINFO's radix-tree-keys).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    /// Appends an entry whose ID is greater than `last_id`.
    pub fn append(&mut self, id: StreamId, fv: &[&[u8]], lim: NodeLimits) {
        debug_assert!(id > self.last_id || (self.last_id.is_zero() && self.len == 0));
        let elen: usize = fv.iter().map(|x| x.len()).sum();
        let max_bytes = if lim.max_bytes == 0 || lim.max_bytes > MAX_ENTRY_BYTES {
            MAX_ENTRY_BYTES
        } else {
            lim.max_bytes
        };
        let need_new = match self.nodes.last_key_value() {
            None => true,
            Some((_, n)) => {
                n.bytes() + elen >= max_bytes
                    || (lim.max_entries > 0 && n.total as usize >= lim.max_entries)
            }
        };
        if need_new {
            if let Some((_, n)) = self.nodes.iter_mut().next_back() {
                n.buf.shrink_to_fit();
            }
            let per = 4 + fv.len() + elen;
            let cap = if lim.max_entries > 0 {
                (per * lim.max_entries).min(max_bytes.max(per))
            } else {
                per * 16
            };
            self.nodes.insert(id, Node::new(fv, cap.min(1 << 16)));
        }
        let (&master, node) = self.nodes.iter_mut().next_back().unwrap();
        node.push(master, id, fv);
        self.len += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// Visits the live entries with start <= id <= end, ascending (or
    /// descending with `rev`), until `f` returns false.
    pub fn walk(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        f: &mut dyn FnMut(StreamId, &[&[u8]]) -> bool,
    ) {
        if start > end {
            return;
        }
        if !rev {
            let first_key = self
                .nodes
                .range(..=start)
                .next_back()
                .map(|(k, _)| *k)
                .unwrap_or(start);
            for (&master, node) in self.nodes.range(first_key..=end) {
                let mf = master_fields(&node.fields);
                let mut pos = 0;
                while pos < node.buf.len() {
                    let at = pos;
                    let d = node.decode(master, &mf, pos, false);
                    pos = d.next;
                    if d.id > end {
                        return;
                    }
                    if d.flags & F_DELETED != 0 || d.id < start {
                        continue;
                    }
                    let d = node.decode(master, &mf, at, true);
                    if !f(d.id, &d.fv) {
                        return;
                    }
                }
            }
        } else {
            for (&master, node) in self.nodes.range(..=end).rev() {
                let mf = master_fields(&node.fields);
                let idx = node.index(master);
                for &(pos, id, flags) in idx.iter().rev() {
                    if id < start {
                        return;
                    }
                    if flags & F_DELETED != 0 || id > end {
                        continue;
                    }
                    let d = node.decode(master, &mf, pos, true);
                    if !f(d.id, &d.fv) {
                        return;
                    }
                }
            }
        }
    }

    /// The fields of entry `id`, if it exists.
    pub fn get(&self, id: StreamId) -> Option<Vec<Vec<u8>>> {
        let mut out = None;
        self.walk(id, id, false, &mut |_, fv| {
            out = Some(fv.iter().map(|x| x.to_vec()).collect());
            false
        });
        out
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let mut found = false;
        self.walk(id, id, false, &mut |_, _| {
            found = true;
            false
        });
        found
    }

    /// First live entry's ID (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        let mut out = StreamId::MIN;
        self.walk(StreamId::MIN, StreamId::MAX, false, &mut |id, _| {
            out = id;
            false
        });
        out
    }

    /// Last live entry's ID (0-0 when empty).
    pub fn last_valid_id(&self) -> StreamId {
        let mut out = StreamId::MIN;
        self.walk(StreamId::MIN, StreamId::MAX, true, &mut |id, _| {
            out = id;
            false
        });
        out
    }

    /// Deletes one entry; true if it existed. Does not touch max_deleted.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let mf_owned = node.fields.clone();
        let mf = master_fields(&mf_owned);
        let mut pos = 0;
        while pos < node.buf.len() {
            let d = node.decode(master, &mf, pos, false);
            if d.id == id {
                if d.flags & F_DELETED != 0 {
                    return false;
                }
                node.buf[pos] |= F_DELETED;
                node.live -= 1;
                self.len -= 1;
                if node.live == 0 {
                    self.nodes.remove(&master);
                }
                return true;
            }
            if d.id > id {
                return false;
            }
            pos = d.next;
        }
        false
    }

    /// Trims like Redis's streamTrim; returns the number of entries removed.
    /// `limit` 0 means no limit.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(m) = how {
                if self.len <= m {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.first_key_value() else {
                break;
            };
            let entries = node.live as u64;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match how {
                Trim::MaxLen(m) => self.len - entries >= m,
                Trim::MinId(min) => {
                    let idx = node.index(master);
                    idx.last().map(|x| x.1).unwrap_or(master) < min
                }
            };
            if remove_node {
                self.nodes.remove(&master);
                self.len -= entries;
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            let node = self.nodes.get_mut(&master).unwrap();
            let idx = node.index(master);
            for (pos, id, flags) in idx {
                let stop = match how {
                    Trim::MaxLen(m) => self.len <= m,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                if flags & F_DELETED == 0 {
                    node.buf[pos] |= F_DELETED;
                    node.live -= 1;
                    self.len -= 1;
                    deleted += 1;
                }
            }
            if node.live == 0 {
                self.nodes.remove(&master);
            }
            break;
        }
        deleted
    }

    /// Redis's streamRangeHasTombstones with an open end.
    pub fn range_has_tombstones(&self, start: StreamId) -> bool {
        if self.len == 0 || self.max_deleted.is_zero() {
            return false;
        }
        if self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.len == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        } else if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            if id < first {
                return (self.entries_added - self.len) as i64;
            } else if id == first {
                return (self.entries_added - self.len + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag, or None when it cannot be computed.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(g.last_id) {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let er = self.estimate_distance(g.last_id);
        if er != INVALID_ENTRIES_READ {
            Some(self.entries_added as i64 - er)
        } else {
            None
        }
    }

    /// Advances a group past delivered entry `id` (XREADGROUP '>').
    pub fn group_advance(&self, g: &mut Group, id: StreamId) {
        if id > g.last_id {
            if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(id) {
                g.entries_read += 1;
            } else if self.entries_added != 0 {
                g.entries_read = self.estimate_distance(id);
            }
            g.last_id = id;
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher.
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        self.walk(StreamId::MIN, StreamId::MAX, false, &mut |id, fv| {
            h.update(&id.ms.to_be_bytes());
            h.update(&id.seq.to_be_bytes());
            for x in fv {
                h.update(&(x.len() as u64).to_be_bytes());
                h.update(x);
            }
            true
        });
        h.update(&self.last_id.ms.to_be_bytes());
        h.update(&self.last_id.seq.to_be_bytes());
        for (name, g) in &self.groups {
            h.update(name);
            h.update(&g.last_id.ms.to_be_bytes());
            h.update(&g.last_id.seq.to_be_bytes());
            for (id, n) in &g.pel {
                h.update(&id.ms.to_be_bytes());
                h.update(&id.seq.to_be_bytes());
                h.update(&n.consumer);
            }
            for c in g.consumers.keys() {
                h.update(c);
            }
        }
    }

    /// Approximate heap bytes used, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        let mut n = std::mem::size_of::<StreamValue>();
        for node in self.nodes.values() {
            n += node.buf.capacity() + node.fields.len() + std::mem::size_of::<Node>() + 16;
        }
        for (name, g) in &self.groups {
            n += name.len() + std::mem::size_of::<Group>() + g.pel.len() * 64;
            for (c, cons) in &g.consumers {
                n += c.len() * 2 + 64 + cons.pel.len() * 24;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lim(e: usize) -> NodeLimits {
        NodeLimits {
            max_bytes: 4096,
            max_entries: e,
        }
    }

    fn all(s: &StreamValue) -> Vec<(StreamId, Vec<Vec<u8>>)> {
        let mut v = Vec::new();
        s.walk(StreamId::MIN, StreamId::MAX, false, &mut |id, fv| {
            v.push((id, fv.iter().map(|x| x.to_vec()).collect()));
            true
        });
        v
    }

    #[test]
    fn append_walk_delete() {
        let mut s = StreamValue::new();
        for i in 1..=25u64 {
            let v = i.to_string();
            if i % 3 == 0 {
                s.append(StreamId::new(i, 0), &[b"other", v.as_bytes()], lim(10));
            } else {
                s.append(
                    StreamId::new(i, 0),
                    &[b"f", v.as_bytes(), b"g", b"x"],
                    lim(10),
                );
            }
        }
        assert_eq!(s.len(), 25);
        assert_eq!(s.node_count(), 3);
        let a = all(&s);
        assert_eq!(a[2].1, vec![b"other".to_vec(), b"3".to_vec()]);
        assert_eq!(a[3].1[1], b"4".to_vec());
        assert!(s.delete(StreamId::new(5, 0)));
        assert!(!s.delete(StreamId::new(5, 0)));
        assert_eq!(s.len(), 24);
        let mut rev = Vec::new();
        s.walk(
            StreamId::new(3, 0),
            StreamId::new(7, 0),
            true,
            &mut |id, _| {
                rev.push(id.ms);
                true
            },
        );
        assert_eq!(rev, vec![7, 6, 4, 3]);
        assert_eq!(s.first_id(), StreamId::new(1, 0));
        assert_eq!(s.last_valid_id(), StreamId::new(25, 0));
    }

    #[test]
    fn trims_like_redis() {
        let mut s = StreamValue::new();
        for i in 1..=102u64 {
            s.append(StreamId::new(i, 0), &[b"f", b"v"], lim(10));
        }
        // Approximate trimming removes whole nodes only.
        assert_eq!(s.trim(Trim::MaxLen(55), true, 0), 40);
        assert_eq!(s.len(), 62);
        assert_eq!(s.trim(Trim::MaxLen(55), false, 0), 7);
        assert_eq!(s.len(), 55);
        assert_eq!(s.trim(Trim::MinId(StreamId::new(90, 0)), false, 0), 42);
        assert_eq!(s.first_id(), StreamId::new(90, 0));
        // LIMIT stops before a node that would exceed it.
        let mut s = StreamValue::new();
        for i in 1..=102u64 {
            s.append(StreamId::new(i, 0), &[b"f", b"v"], lim(10));
        }
        assert_eq!(s.trim(Trim::MaxLen(0), true, 30), 30);
    }

    #[test]
    fn lag_and_entries_read_follow_redis() {
        let mut s = StreamValue::new();
        let mut g = Group::new(StreamId::MIN, INVALID_ENTRIES_READ);
        assert_eq!(s.group_lag(&g), Some(0));
        for i in 1..=5u64 {
            s.append(StreamId::new(i, 0), &[b"f", b"v"], lim(100));
        }
        // Before the first entry with no tombstones: estimated.
        assert_eq!(s.estimate_distance(StreamId::MIN), 0);
        assert_eq!(s.group_lag(&g), Some(5));
        g.create_consumer(b"c", 0);
        for i in 1..=2u64 {
            s.group_advance(&mut g, StreamId::new(i, 0));
            g.deliver(StreamId::new(i, 0), b"c", 0);
        }
        assert_eq!(g.entries_read, 2);
        assert_eq!(s.group_lag(&g), Some(3));
        // A tombstone ahead of the group makes the lag unknown...
        assert!(s.delete(StreamId::new(4, 0)));
        s.max_deleted = StreamId::new(4, 0);
        assert_eq!(s.group_lag(&g), None);
        // ...until the group reaches the last ID.
        s.group_advance(&mut g, StreamId::new(3, 0));
        assert_eq!(g.entries_read, INVALID_ENTRIES_READ);
        s.group_advance(&mut g, StreamId::new(5, 0));
        assert_eq!(g.entries_read, 5);
        assert_eq!(s.group_lag(&g), Some(0));
        // PEL bookkeeping.
        assert_eq!(g.pel.len(), 2);
        g.create_consumer(b"d", 0);
        g.reassign(StreamId::new(1, 0), b"d");
        assert_eq!(g.consumers[&b"c"[..]].pel.len(), 1);
        assert_eq!(g.delete_consumer(b"d"), Some(1));
        assert!(g.ack(StreamId::new(2, 0)));
        assert!(g.pel.is_empty());
        assert!(s.memory_usage() > 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u8, u8, Vec<u8>),
        Del(u8),
        TrimLen(u8, bool),
        TrimId(u8, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..3, 1u8..4, proptest::collection::vec(any::<u8>(), 0..20))
                .prop_map(|(a, b, c)| Op::Add(a, b, c)),
            2 => any::<u8>().prop_map(Op::Del),
            1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::TrimLen(a, b)),
            1 => (any::<u8>(), any::<bool>()).prop_map(|(a, b)| Op::TrimId(a, b)),
        ]
    }

    proptest! {
        #[test]
        fn matches_model(ops in proptest::collection::vec(op(), 1..200), per in 1usize..8) {
            let mut s = StreamValue::new();
            let mut m: BTreeMap<StreamId, Vec<Vec<u8>>> = BTreeMap::new();
            let mut next = 1u64;
            for o in ops {
                match o {
                    Op::Add(gap, nf, val) => {
                        next += gap as u64;
                        let id = StreamId::new(next / 2, next % 2 * 7);
                        next += 1;
                        let mut fv: Vec<Vec<u8>> = Vec::new();
                        for i in 0..nf {
                            fv.push(if val.len() % 2 == 0 { vec![b'a' + i] } else { vec![b'z'; i as usize] });
                            fv.push(val.clone());
                        }
                        let r: Vec<&[u8]> = fv.iter().map(|x| x.as_slice()).collect();
                        s.append(id, &r, NodeLimits { max_bytes: 200, max_entries: per });
                        m.insert(id, fv);
                    }
                    Op::Del(i) => {
                        let k = m.keys().nth(i as usize % (m.len() + 1)).copied();
                        if let Some(k) = k {
                            prop_assert!(s.delete(k));
                            m.remove(&k);
                        } else {
                            prop_assert!(!s.delete(StreamId::new(u64::MAX, 0)));
                        }
                    }
                    Op::TrimLen(n, approx) => {
                        let n = n as u64 % 40;
                        let d = s.trim(Trim::MaxLen(n), approx, 0);
                        if !approx {
                            let want = m.len().saturating_sub(n as usize);
                            prop_assert_eq!(d as usize, want);
                        }
                        for _ in 0..d { let k = *m.keys().next().unwrap(); m.remove(&k); }
                    }
                    Op::TrimId(n, approx) => {
                        let min = StreamId::new(n as u64, 0);
                        let d = s.trim(Trim::MinId(min), approx, 0);
                        let below = m.range(..min).count();
                        if !approx { prop_assert_eq!(d as usize, below); }
                        prop_assert!(d as usize <= below);
                        for _ in 0..d { let k = *m.keys().next().unwrap(); m.remove(&k); }
                    }
                }
                prop_assert_eq!(s.len(), m.len());
            }
            let got = all(&s);
            let want: Vec<_> = m.clone().into_iter().collect();
            prop_assert_eq!(&got, &want);
            let mut rev = Vec::new();
            s.walk(StreamId::MIN, StreamId::MAX, true, &mut |id, _| { rev.push(id); true });
            let mut wk: Vec<_> = m.keys().copied().collect();
            wk.reverse();
            prop_assert_eq!(rev, wk);
            if let (Some(a), Some(b)) = (m.keys().nth(m.len() / 3), m.keys().nth(m.len() * 2 / 3)) {
                let mut r = Vec::new();
                s.walk(*a, *b, false, &mut |id, _| { r.push(id); true });
                let w: Vec<_> = m.range(*a..=*b).map(|(k, _)| *k).collect();
                prop_assert_eq!(r, w);
            }
            // Equal content gives an equal digest.
            let mut s2 = StreamValue::new();
            for (id, fv) in &m {
                let r: Vec<&[u8]> = fv.iter().map(|x| x.as_slice()).collect();
                s2.append(*id, &r, NodeLimits::default());
            }
            s2.last_id = s.last_id;
            let (mut h1, mut h2) = (sha1_smol::Sha1::new(), sha1_smol::Sha1::new());
            s.digest(&mut h1);
            s2.digest(&mut h2);
            prop_assert_eq!(h1.digest().to_string(), h2.digest().to_string());
        }
    }
}
