//! The RDB format: values, key entries, file header/trailer and DUMP
//! payloads, written the way Redis 7.2 writes them and read back from any
//! version 1-12.
//!
//! Writing appends to a `Vec<u8>` (one key, one shard or one payload at a
//! time; the file sink streams those blobs out). Reading goes through
//! [`Reader`], which bounds every length by the bytes actually left, so a
//! corrupt or hostile input is an [`RdbError`] and never a panic or a huge
//! allocation.

use super::packs::{self, Item, ListpackWriter};
use crate::keyspace::types::{hash, set, stream, zset};
use crate::keyspace::{Entry, HashValue, ListValue, SetValue, Str, StreamValue, Value, ZSetValue};
use std::io::Read;

/// The RDB version we write by default (Redis 7.2).
pub const RDB_VERSION: u16 = 11;
/// The newest version we read (Redis 7.4 writes 12 with the same layouts
/// for the types we know).
pub const RDB_MAX_READ_VERSION: u16 = 12;

/// CRC-64/Jones as Redis computes it (check value 0xe9c6d914c4b8d9ca),
/// slice-by-16 for speed.
pub static CRC64: crc::Crc<u64, crc::Table<16>> =
    crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

// Object types.
pub const T_STRING: u8 = 0;
pub const T_LIST: u8 = 1;
pub const T_SET: u8 = 2;
pub const T_ZSET: u8 = 3;
pub const T_HASH: u8 = 4;
pub const T_ZSET_2: u8 = 5;
pub const T_MODULE_PRE_GA: u8 = 6;
pub const T_MODULE_2: u8 = 7;
pub const T_HASH_ZIPMAP: u8 = 9;
pub const T_LIST_ZIPLIST: u8 = 10;
pub const T_SET_INTSET: u8 = 11;
pub const T_ZSET_ZIPLIST: u8 = 12;
pub const T_HASH_ZIPLIST: u8 = 13;
pub const T_LIST_QUICKLIST: u8 = 14;
pub const T_STREAM_LISTPACKS: u8 = 15;
pub const T_HASH_LISTPACK: u8 = 16;
pub const T_ZSET_LISTPACK: u8 = 17;
pub const T_LIST_QUICKLIST_2: u8 = 18;
pub const T_STREAM_LISTPACKS_2: u8 = 19;
pub const T_SET_LISTPACK: u8 = 20;
pub const T_STREAM_LISTPACKS_3: u8 = 21;

// Opcodes.
pub const OP_FUNCTION2: u8 = 245;
pub const OP_FUNCTION_PRE_GA: u8 = 246;
pub const OP_MODULE_AUX: u8 = 247;
pub const OP_IDLE: u8 = 248;
pub const OP_FREQ: u8 = 249;
pub const OP_AUX: u8 = 250;
pub const OP_RESIZEDB: u8 = 251;
pub const OP_EXPIRETIME_MS: u8 = 252;
pub const OP_EXPIRETIME: u8 = 253;
pub const OP_SELECTDB: u8 = 254;
pub const OP_EOF: u8 = 255;

const QUICKLIST_PLAIN: u64 = 1;
const QUICKLIST_PACKED: u64 = 2;

/// How values are written.
#[derive(Clone, Copy, Debug)]
pub struct SaveOpts {
    /// 11 (Redis 7.2) or 10 (Redis 7.0: no listpack sets, streams v2).
    pub version: u16,
    /// LZF-compress strings longer than 20 bytes when it pays off.
    pub compress: bool,
}

impl Default for SaveOpts {
    fn default() -> Self {
        SaveOpts {
            version: RDB_VERSION,
            compress: true,
        }
    }
}

/// Which eviction metadata is saved next to each key (Redis saves IDLE
/// under an LRU policy and FREQ under an LFU policy).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LruMode {
    None,
    Lru { clock: u32 },
    Lfu,
}

// ------------------------------------------------------------------ writing

/// Appends an RDB length.
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_int_enc(out: &mut Vec<u8>, v: i64) -> bool {
    if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
        out.push(0xC0);
        out.push(v as i8 as u8);
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        out.push(0xC1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        out.push(0xC2);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends a string the way `rdbSaveRawString` does: small canonical
/// integers int-encoded, long strings LZF-compressed when that saves
/// at least 4 bytes (with `compress`), otherwise length + bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 && !s.is_empty() {
        if let Some(n) = strutil::parse_i64(s) {
            if put_int_enc(out, n) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf_compress(s, s.len() - 4) {
            out.push(0xC3);
            put_len(out, c.len() as u64);
            put_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// LZF compression in liblzf's format (decoded by `lzf_rust`), or None
/// when the result would not be shorter than `max_out` bytes.
///
/// Our own encoder because `lzf_rust::compress` zeroes a 256 KB hash table
/// per call, which made saving many short strings 15x slower. Here the
/// table is per thread and never cleared: a stale slot is harmless because
/// every candidate match is checked against the input bytes.
pub fn lzf_compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    const HLOG: u32 = 14;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    thread_local! {
        static TABLE: std::cell::RefCell<Vec<u32>> = std::cell::RefCell::new(vec![0; 1 << HLOG]);
    }
    fn literals(out: &mut Vec<u8>, mut lit: &[u8]) {
        while !lit.is_empty() {
            let n = lit.len().min(32);
            out.push((n - 1) as u8);
            out.extend_from_slice(&lit[..n]);
            lit = &lit[n..];
        }
    }
    let n = input.len();
    if n < 4 || max_out == 0 {
        return None;
    }
    TABLE.with(|t| {
        let mut table = t.borrow_mut();
        let mut out = Vec::with_capacity(max_out + 40);
        let (mut i, mut lit_start) = (0usize, 0usize);
        while i + 2 < n {
            let v = (input[i] as u32) << 16 | (input[i + 1] as u32) << 8 | input[i + 2] as u32;
            let h = (v.wrapping_mul(2654435761) >> (32 - HLOG)) as usize;
            let cand = table[h] as usize;
            table[h] = i as u32 + 1;
            if cand > 0 {
                let c = cand - 1;
                if c < i && i - c - 1 < MAX_OFF && input[c..c + 3] == input[i..i + 3] {
                    literals(&mut out, &input[lit_start..i]);
                    let max_len = (n - i).min(MAX_REF);
                    let mut len = 3;
                    while len < max_len && input[c + len] == input[i + len] {
                        len += 1;
                    }
                    let (off, l) = (i - c - 1, len - 2);
                    if l < 7 {
                        out.push(((l << 5) | (off >> 8)) as u8);
                    } else {
                        out.push(((7 << 5) | (off >> 8)) as u8);
                        out.push((l - 7) as u8);
                    }
                    out.push(off as u8);
                    i += len;
                    lit_start = i;
                    if out.len() >= max_out {
                        return None;
                    }
                    continue;
                }
            }
            i += 1;
            if i - lit_start > max_out {
                return None;
            }
        }
        literals(&mut out, &input[lit_start..]);
        (out.len() < max_out).then_some(out)
    })
}

/// Appends an integer string value (`rdbSaveLongLongAsStringObject`).
pub fn put_int_string(out: &mut Vec<u8>, n: i64) {
    if !put_int_enc(out, n) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n).as_bytes();
        put_len(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

fn put_ms(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(&t.to_le_bytes());
}

fn put_stream_id_raw(out: &mut Vec<u8>, id: stream::StreamId) {
    out.extend_from_slice(&id.ms.to_be_bytes());
    out.extend_from_slice(&id.seq.to_be_bytes());
}

/// The object type byte for a value (depends on the version written).
pub fn object_type(v: &Value, opts: &SaveOpts) -> u8 {
    match v {
        Value::Str(_) => T_STRING,
        Value::List(_) => T_LIST_QUICKLIST_2,
        Value::Set(s) => {
            if s.is_intset() {
                T_SET_INTSET
            } else if s.is_listpack() && opts.version >= 11 {
                T_SET_LISTPACK
            } else {
                T_SET
            }
        }
        Value::ZSet(z) => {
            if z.is_listpack() {
                T_ZSET_LISTPACK
            } else {
                T_ZSET_2
            }
        }
        Value::Hash(h) => {
            if h.is_listpack() {
                T_HASH_LISTPACK
            } else {
                T_HASH
            }
        }
        Value::Stream(_) => {
            if opts.version >= 11 {
                T_STREAM_LISTPACKS_3
            } else {
                T_STREAM_LISTPACKS_2
            }
        }
    }
}

/// Appends a value's serialization (without its type byte).
pub fn put_value(out: &mut Vec<u8>, v: &Value, opts: &SaveOpts) {
    let c = opts.compress;
    match v {
        Value::Str(Str::Int(n)) => put_int_string(out, *n),
        Value::Str(Str::Bytes { data, .. }) => put_string(out, data, c),
        Value::List(l) => put_list(out, l, c),
        Value::Set(s) => match object_type(v, opts) {
            T_SET_INTSET => {
                let mut ints: Vec<i64> = s.iter().filter_map(|e| e.as_int()).collect();
                ints.sort_unstable();
                put_string(out, &packs::intset_encode(&ints), c);
            }
            T_SET_LISTPACK => {
                let mut w = ListpackWriter::new();
                for e in s.iter() {
                    e.with_bytes(|b| w.push(b));
                }
                put_string(out, &w.finish(), c);
            }
            _ => {
                put_len(out, s.len() as u64);
                for e in s.iter() {
                    e.with_bytes(|b| put_string(out, b, c));
                }
            }
        },
        Value::ZSet(z) => {
            if z.is_listpack() {
                let mut w = ListpackWriter::new();
                z.for_each(|m, s| {
                    w.push(m);
                    w.push(strutil::format_double(s).as_bytes());
                });
                put_string(out, &w.finish(), c);
            } else {
                // Greatest first, as Redis (its loader appends at the head).
                put_len(out, z.len() as u64);
                let n = z.len();
                z.range(n - 1, n, true, |m, s| {
                    put_string(out, m, c);
                    out.extend_from_slice(&s.to_le_bytes());
                });
            }
        }
        Value::Hash(h) => {
            if h.is_listpack() {
                let mut w = ListpackWriter::new();
                for (f, v) in h.iter() {
                    w.push(f);
                    w.push(v);
                }
                put_string(out, &w.finish(), c);
            } else {
                put_len(out, h.len() as u64);
                for (f, v) in h.iter() {
                    put_string(out, f, c);
                    put_string(out, v, c);
                }
            }
        }
        Value::Stream(s) => put_stream(out, s, opts),
    }
}

fn put_list(out: &mut Vec<u8>, l: &ListValue, c: bool) {
    let nodes: Vec<_> = l.nodes().filter(|p| !p.is_empty()).collect();
    put_len(out, nodes.len() as u64);
    for p in nodes {
        put_len(out, QUICKLIST_PACKED);
        let mut w = ListpackWriter::new();
        for e in p.iter() {
            match e {
                crate::keyspace::types::list::Elem::Int(n) => w.push_int(n),
                crate::keyspace::types::list::Elem::Str(b) => w.push(b),
            }
        }
        put_string(out, &w.finish(), c);
    }
}

/// Entries per stream listpack node we write (Redis's default
/// stream-node-max-entries).
const STREAM_NODE_ENTRIES: usize = 100;

fn put_stream(out: &mut Vec<u8>, s: &StreamValue, opts: &SaveOpts) {
    let c = opts.compress;
    // Re-pack live entries into Redis-layout listpack nodes.
    let mut nodes: Vec<(stream::StreamId, Vec<u8>)> = Vec::new();
    // Group entries first so each node's count is known when its master
    // entry is written.
    let mut entries: Vec<(stream::StreamId, Vec<Vec<u8>>)> = Vec::new();
    s.walk(
        stream::StreamId::MIN,
        stream::StreamId::MAX,
        false,
        &mut |id, fv| {
            entries.push((id, fv.iter().map(|x| x.to_vec()).collect()));
            true
        },
    );
    for chunk in entries.chunks(STREAM_NODE_ENTRIES) {
        let (master, mfv) = &chunk[0];
        let mfields: Vec<Vec<u8>> = mfv.iter().step_by(2).cloned().collect();
        let mut w = ListpackWriter::new();
        w.push_int(chunk.len() as i64); // count
        w.push_int(0); // deleted
        w.push_int(mfields.len() as i64);
        for f in &mfields {
            w.push(f);
        }
        w.push_int(0); // master terminator
        for (id, fv) in chunk {
            let nf = fv.len() / 2;
            let same = nf == mfields.len() && fv.iter().step_by(2).eq(mfields.iter());
            w.push_int(if same { 2 } else { 0 });
            w.push_int(id.ms.wrapping_sub(master.ms) as i64);
            w.push_int(id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for v in fv.iter().skip(1).step_by(2) {
                    w.push(v);
                }
                w.push_int(nf as i64 + 3);
            } else {
                w.push_int(nf as i64);
                for x in fv {
                    w.push(x);
                }
                w.push_int(2 * nf as i64 + 4);
            }
        }
        nodes.push((*master, w.finish()));
    }
    put_len(out, nodes.len() as u64);
    for (master, lp) in &nodes {
        let mut k = Vec::with_capacity(16);
        put_stream_id_raw(&mut k, *master);
        put_string(out, &k, c);
        put_string(out, lp, c);
    }
    put_len(out, s.len() as u64);
    put_len(out, s.last_id.ms);
    put_len(out, s.last_id.seq);
    let first = if s.is_empty() {
        stream::StreamId::MIN
    } else {
        s.first_id()
    };
    put_len(out, first.ms);
    put_len(out, first.seq);
    put_len(out, s.max_deleted.ms);
    put_len(out, s.max_deleted.seq);
    put_len(out, s.entries_added);
    put_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_string(out, name, c);
        put_len(out, g.last_id.ms);
        put_len(out, g.last_id.seq);
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            put_stream_id_raw(out, *id);
            put_ms(out, n.delivery_time);
            put_len(out, n.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, cons) in &g.consumers {
            put_string(out, cname, c);
            put_ms(out, cons.seen_time);
            if opts.version >= 11 {
                put_ms(out, cons.active_time);
            }
            put_len(out, cons.pel.len() as u64);
            for id in &cons.pel {
                put_stream_id_raw(out, *id);
            }
        }
    }
}

/// Appends one key as `rdbSaveKeyValuePair` does: expire, IDLE/FREQ,
/// type, key, value.
pub fn put_entry(out: &mut Vec<u8>, e: &Entry, opts: &SaveOpts, lru: LruMode) {
    if let Some(t) = e.expire_at() {
        out.push(OP_EXPIRETIME_MS);
        put_ms(out, t as i64);
    }
    match lru {
        LruMode::Lru { clock } => {
            let l = e.lru();
            let idle = if clock >= l {
                clock - l
            } else {
                clock + (0xff_ffff - l)
            };
            out.push(OP_IDLE);
            put_len(out, idle as u64);
        }
        LruMode::Lfu => {
            out.push(OP_FREQ);
            out.push((e.lru() & 0xff) as u8);
        }
        LruMode::None => {}
    }
    match e.str() {
        Some(crate::keyspace::StrRef::Int(n)) => {
            out.push(T_STRING);
            put_string(out, e.key(), opts.compress);
            put_int_string(out, n);
        }
        Some(crate::keyspace::StrRef::Bytes(b)) => {
            out.push(T_STRING);
            put_string(out, e.key(), opts.compress);
            put_string(out, b, opts.compress);
        }
        None => {
            let v = e.heap_value().expect("non-string values live on the heap");
            out.push(object_type(v, opts));
            put_string(out, e.key(), opts.compress);
            put_value(out, v, opts);
        }
    }
}

/// Appends an AUX field.
pub fn put_aux(out: &mut Vec<u8>, k: &str, v: &[u8]) {
    out.push(OP_AUX);
    put_string(out, k.as_bytes(), false);
    put_string(out, v, false);
}

/// The `REDISnnnn` magic.
pub fn header(version: u16) -> Vec<u8> {
    format!("REDIS{version:04}").into_bytes()
}

/// A DUMP payload: type, value, RDB version (2 bytes LE), CRC-64 (8 LE).
pub fn dump_payload(v: &Value, opts: &SaveOpts) -> Vec<u8> {
    let mut out = vec![object_type(v, opts)];
    put_value(&mut out, v, opts);
    seal_payload(&mut out, opts.version);
    out
}

/// Ends a DUMP-style payload (DUMP, FUNCTION DUMP): the RDB version (2
/// bytes LE) and the CRC-64 of everything before (8 bytes LE).
pub fn seal_payload(out: &mut Vec<u8>, version: u16) {
    out.extend_from_slice(&version.to_le_bytes());
    let crc = CRC64.checksum(out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Checks a DUMP payload's version and checksum (`verifyDumpPayload`).
pub fn verify_payload(p: &[u8], check_crc: bool) -> bool {
    if p.len() < 10 {
        return false;
    }
    let f = &p[p.len() - 10..];
    let ver = u16::from_le_bytes([f[0], f[1]]);
    if ver > RDB_MAX_READ_VERSION {
        return false;
    }
    if !check_crc {
        return true;
    }
    CRC64.checksum(&p[..p.len() - 8]).to_le_bytes() == f[2..10]
}

// ------------------------------------------------------------------ reading

/// Why an RDB file or payload could not be read, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbError {
    /// Byte offset in the input where the problem was found.
    pub offset: u64,
    pub msg: String,
    /// The value was an empty collection (the file loader skips such keys,
    /// RESTORE rejects them).
    pub empty: bool,
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.msg, self.offset)
    }
}

pub type RResult<T> = Result<T, RdbError>;

/// A bounds-checked reader over an RDB stream with a running CRC-64.
pub struct Reader<R: Read> {
    r: R,
    pos: u64,
    limit: u64,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
}

impl<R: Read> Reader<R> {
    /// `limit` is the total number of bytes the input holds: no length
    /// field may claim more than what is left.
    pub fn new(r: R, limit: u64) -> Reader<R> {
        Reader {
            r,
            pos: 0,
            limit,
            crc: CRC64.digest(),
        }
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.pos)
    }

    pub fn err<T>(&self, msg: impl Into<String>) -> RResult<T> {
        Err(RdbError {
            offset: self.pos,
            msg: msg.into(),
            empty: false,
        })
    }

    fn fill(&mut self, buf: &mut [u8]) -> RResult<()> {
        if buf.len() as u64 > self.remaining() {
            return self.err("unexpected end of input");
        }
        if let Err(e) = self.r.read_exact(buf) {
            return self.err(format!("unexpected end of input ({e})"));
        }
        self.crc.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// The CRC-64 of everything read so far.
    pub fn crc_so_far(&self) -> u64 {
        self.crc.clone().finalize()
    }

    pub fn u8(&mut self) -> RResult<u8> {
        let mut b = [0u8; 1];
        self.fill(&mut b)?;
        Ok(b[0])
    }

    pub fn array<const N: usize>(&mut self) -> RResult<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// `n` bytes, refusing lengths beyond the end of the input.
    pub fn bytes(&mut self, n: u64) -> RResult<Vec<u8>> {
        if n > self.remaining() {
            return self.err(format!("length {n} exceeds the remaining input"));
        }
        let mut v = vec![0u8; n as usize];
        self.fill(&mut v)?;
        Ok(v)
    }

    pub fn ms(&mut self) -> RResult<i64> {
        Ok(i64::from_le_bytes(self.array::<8>()?))
    }

    /// A length, or `Err` for encoded values.
    pub fn len(&mut self) -> RResult<u64> {
        match self.len_or_enc()? {
            (n, false) => Ok(n),
            (_, true) => self.err("encoded value where a length was expected"),
        }
    }

    /// A length that counts things each taking at least one byte: bounded
    /// by the input left.
    pub fn count(&mut self) -> RResult<u64> {
        let n = self.len()?;
        if n > self.remaining() {
            return self.err(format!("count {n} exceeds the remaining input"));
        }
        Ok(n)
    }

    fn len_or_enc(&mut self) -> RResult<(u64, bool)> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => ((b & 0x3f) as u64, false),
            1 => ((((b & 0x3f) as u64) << 8) | self.u8()? as u64, false),
            2 => match b {
                0x80 => (u32::from_be_bytes(self.array::<4>()?) as u64, false),
                0x81 => (u64::from_be_bytes(self.array::<8>()?), false),
                _ => return self.err(format!("unknown length encoding {b:#x}")),
            },
            _ => ((b & 0x3f) as u64, true),
        })
    }

    /// A string (raw, integer-encoded or LZF).
    pub fn string(&mut self) -> RResult<Vec<u8>> {
        match self.string_or_int()? {
            Ok(b) => Ok(b),
            Err(n) => Ok(itoa::Buffer::new().format(n).as_bytes().to_vec()),
        }
    }

    /// A string, keeping integer encodings as integers (`Err(n)`).
    pub fn string_or_int(&mut self) -> RResult<Result<Vec<u8>, i64>> {
        let (n, enc) = self.len_or_enc()?;
        if !enc {
            return Ok(Ok(self.bytes(n)?));
        }
        Ok(match n {
            0 => Err(self.u8()? as i8 as i64),
            1 => Err(i16::from_le_bytes(self.array::<2>()?) as i64),
            2 => Err(i32::from_le_bytes(self.array::<4>()?) as i64),
            3 => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let c = self.bytes(clen)?;
                // LZF expands at most ~ 256x... but a claimed length far
                // beyond that is corrupt: refuse before allocating.
                if ulen == 0 || ulen > clen.saturating_mul(1024).max(64) || ulen > 1 << 32 {
                    return self.err("invalid LZF lengths");
                }
                match lzf_rust::decompress_into_vec(&c, ulen as usize) {
                    Ok(v) if v.len() == ulen as usize => Ok(v),
                    _ => return self.err("invalid LZF compressed string"),
                }
            }
            _ => return self.err(format!("unknown string encoding {n}")),
        })
    }

    fn double_str(&mut self) -> RResult<f64> {
        let l = self.u8()?;
        match l {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.bytes(l as u64)?;
                std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .map_or_else(|| self.err("invalid double"), Ok)
            }
        }
    }

    fn binary_double(&mut self) -> RResult<f64> {
        Ok(f64::from_le_bytes(self.array::<8>()?))
    }

    fn stream_id_raw(&mut self) -> RResult<stream::StreamId> {
        let b = self.array::<16>()?;
        Ok(stream::StreamId::new(
            u64::from_be_bytes(b[..8].try_into().unwrap()),
            u64::from_be_bytes(b[8..].try_into().unwrap()),
        ))
    }
}

/// The encoding thresholds values are rebuilt with when loaded.
#[derive(Clone, Copy, Debug)]
pub struct BuildLimits {
    pub hash: hash::Limits,
    pub set: set::Limits,
    pub zset: zset::Limits,
    pub list_fill: i64,
    pub stream: stream::NodeLimits,
    /// sanitize-dump-payload yes: deep checks of packed blobs.
    pub deep: bool,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            hash: hash::Limits {
                max_entries: 512,
                max_value: 64,
            },
            set: set::Limits {
                intset_entries: 512,
                lp_entries: 128,
                lp_value: 64,
            },
            zset: zset::Limits {
                max_entries: 128,
                max_value: 64,
            },
            list_fill: -2,
            stream: stream::NodeLimits::default(),
            deep: false,
        }
    }
}

fn empty_err<R: Read>(rd: &Reader<R>) -> RdbError {
    RdbError {
        offset: rd.pos(),
        msg: "empty collection".into(),
        empty: true,
    }
}

fn map_pack<T, R: Read>(rd: &Reader<R>, r: packs::PackResult<T>) -> RResult<T> {
    r.map_err(|m| RdbError {
        offset: rd.pos(),
        msg: m.into(),
        empty: false,
    })
}

fn build_hash<R: Read>(
    rd: &Reader<R>,
    pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    lim: &BuildLimits,
) -> RResult<Value> {
    let mut h = HashValue::new();
    for (f, v) in pairs {
        if !h.set(&f, &v, &lim.hash) {
            return rd.err("duplicate hash field");
        }
    }
    if h.is_empty() {
        return Err(empty_err(rd));
    }
    Ok(Value::Hash(h))
}

fn build_set<R: Read>(rd: &Reader<R>, members: Vec<Vec<u8>>, lim: &BuildLimits) -> RResult<Value> {
    let Some(first) = members.first() else {
        return Err(empty_err(rd));
    };
    let mut s = SetValue::create(first, members.len(), &lim.set);
    for m in &members {
        if !s.add(m, &lim.set) {
            return rd.err("duplicate set member");
        }
    }
    Ok(Value::Set(s))
}

fn build_zset<R: Read>(
    rd: &Reader<R>,
    pairs: Vec<(Vec<u8>, f64)>,
    lim: &BuildLimits,
) -> RResult<Value> {
    if pairs.is_empty() {
        return Err(empty_err(rd));
    }
    let maxlen = pairs.iter().map(|p| p.0.len()).max().unwrap_or(0);
    let mut z = ZSetValue::with_hint(pairs.len(), maxlen, lim.zset);
    for (m, s) in pairs {
        if s.is_nan() {
            return rd.err("NaN score in sorted set");
        }
        if z.score(&m).is_some() {
            return rd.err("duplicate sorted set member");
        }
        z.insert_new(&m, s, lim.zset);
    }
    Ok(Value::ZSet(z))
}

fn build_list<R: Read>(rd: &Reader<R>, items: Vec<Vec<u8>>, lim: &BuildLimits) -> RResult<Value> {
    if items.is_empty() {
        return Err(empty_err(rd));
    }
    Ok(Value::List(ListValue::from_elements(
        items.iter().map(|v| v.as_slice()),
        lim.list_fill,
    )))
}

fn item_score<R: Read>(rd: &Reader<R>, it: Item) -> RResult<f64> {
    match it {
        Item::Int(n) => Ok(n as f64),
        Item::Str(s) => match strutil::parse_f64(&s) {
            Some(v) => Ok(v),
            None => rd.err("invalid score in sorted set listpack"),
        },
    }
}

fn pairs_of<R: Read>(rd: &Reader<R>, items: Vec<Item>) -> RResult<Vec<(Item, Item)>> {
    if !items.len().is_multiple_of(2) {
        return rd.err("odd number of elements in a paired encoding");
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

/// Reads one value of object type `t`.
pub fn read_value<R: Read>(rd: &mut Reader<R>, t: u8, lim: &BuildLimits) -> RResult<Value> {
    let deep = lim.deep;
    match t {
        T_STRING => Ok(Value::Str(match rd.string_or_int()? {
            Ok(b) => Str::from_bytes(&b),
            Err(n) => Str::Int(n),
        })),
        T_LIST => {
            let n = rd.count()?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(rd.string()?);
            }
            build_list(rd, items, lim)
        }
        T_LIST_ZIPLIST => {
            let b = rd.string()?;
            let items = map_pack(rd, packs::ziplist_decode(&b, deep))?;
            build_list(rd, items.into_iter().map(Item::into_bytes).collect(), lim)
        }
        T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
            let n = rd.count()?;
            let mut items = Vec::new();
            for _ in 0..n {
                let container = if t == T_LIST_QUICKLIST_2 {
                    rd.len()?
                } else {
                    QUICKLIST_PACKED
                };
                let b = rd.string()?;
                match container {
                    QUICKLIST_PLAIN => items.push(b),
                    QUICKLIST_PACKED => {
                        let dec = if t == T_LIST_QUICKLIST_2 {
                            packs::listpack_decode(&b, deep)
                        } else {
                            packs::ziplist_decode(&b, deep)
                        };
                        let dec = map_pack(rd, dec)?;
                        // Redis skips empty nodes rather than failing.
                        items.extend(dec.into_iter().map(Item::into_bytes));
                    }
                    _ => return rd.err("unknown quicklist node container"),
                }
            }
            build_list(rd, items, lim)
        }
        T_SET => {
            let n = rd.count()?;
            let mut m = Vec::new();
            for _ in 0..n {
                m.push(rd.string()?);
            }
            build_set(rd, m, lim)
        }
        T_SET_INTSET => {
            let b = rd.string()?;
            let ints = map_pack(rd, packs::intset_decode(&b, deep))?;
            build_set(
                rd,
                ints.into_iter()
                    .map(|n| itoa::Buffer::new().format(n).as_bytes().to_vec())
                    .collect(),
                lim,
            )
        }
        T_SET_LISTPACK => {
            let b = rd.string()?;
            let items = map_pack(rd, packs::listpack_decode(&b, deep))?;
            build_set(rd, items.into_iter().map(Item::into_bytes).collect(), lim)
        }
        T_ZSET | T_ZSET_2 => {
            let n = rd.count()?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let m = rd.string()?;
                let s = if t == T_ZSET_2 {
                    rd.binary_double()?
                } else {
                    rd.double_str()?
                };
                pairs.push((m, s));
            }
            build_zset(rd, pairs, lim)
        }
        T_ZSET_ZIPLIST | T_ZSET_LISTPACK => {
            let b = rd.string()?;
            let items = if t == T_ZSET_LISTPACK {
                packs::listpack_decode(&b, deep)
            } else {
                packs::ziplist_decode(&b, deep)
            };
            let items = map_pack(rd, items)?;
            let mut pairs = Vec::new();
            for (m, s) in pairs_of(rd, items)? {
                let s = item_score(rd, s)?;
                pairs.push((m.into_bytes(), s));
            }
            build_zset(rd, pairs, lim)
        }
        T_HASH => {
            let n = rd.count()?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                let f = rd.string()?;
                let v = rd.string()?;
                pairs.push((f, v));
            }
            build_hash(rd, pairs, lim)
        }
        T_HASH_ZIPMAP => {
            let b = rd.string()?;
            let pairs = map_pack(rd, packs::zipmap_decode(&b))?;
            build_hash(rd, pairs, lim)
        }
        T_HASH_ZIPLIST | T_HASH_LISTPACK => {
            let b = rd.string()?;
            let items = if t == T_HASH_LISTPACK {
                packs::listpack_decode(&b, deep)
            } else {
                packs::ziplist_decode(&b, deep)
            };
            let items = map_pack(rd, items)?;
            let pairs = pairs_of(rd, items)?;
            build_hash(
                rd,
                pairs
                    .into_iter()
                    .map(|(f, v)| (f.into_bytes(), v.into_bytes())),
                lim,
            )
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => read_stream(rd, t, lim),
        T_MODULE_PRE_GA | T_MODULE_2 => {
            rd.err("module data types are not supported (RDB type MODULE)")
        }
        _ => rd.err(format!("unknown RDB object type {t}")),
    }
}

fn lp_int<R: Read>(rd: &Reader<R>, it: Option<Item>) -> RResult<i64> {
    match it.as_ref().and_then(Item::as_int) {
        Some(n) => Ok(n),
        None => rd.err("stream listpack: integer expected"),
    }
}

fn read_stream<R: Read>(rd: &mut Reader<R>, t: u8, lim: &BuildLimits) -> RResult<Value> {
    let mut s = StreamValue::new();
    let nodes = rd.count()?;
    let mut prev: Option<stream::StreamId> = None;
    for _ in 0..nodes {
        let key = rd.string()?;
        if key.len() != 16 {
            return rd.err("stream node key is not a stream ID");
        }
        let master = stream::StreamId::new(
            u64::from_be_bytes(key[..8].try_into().unwrap()),
            u64::from_be_bytes(key[8..].try_into().unwrap()),
        );
        let lp = rd.string()?;
        let items = map_pack(rd, packs::listpack_decode(&lp, lim.deep))?;
        if items.is_empty() {
            return rd.err("empty stream listpack node");
        }
        let mut it = items.into_iter();
        let count = lp_int(rd, it.next())?;
        let deleted = lp_int(rd, it.next())?;
        let nmf = lp_int(rd, it.next())?;
        if count < 0 || deleted < 0 || nmf < 0 || nmf as u64 > lp.len() as u64 {
            return rd.err("stream listpack: bad master entry");
        }
        let mut mfields = Vec::with_capacity(nmf as usize);
        for _ in 0..nmf {
            mfields.push(it.next().ok_or_else(|| empty_err(rd))?.into_bytes());
        }
        if lp_int(rd, it.next())? != 0 {
            return rd.err("stream listpack: bad master terminator");
        }
        let total = count + deleted;
        for _ in 0..total {
            let flags = lp_int(rd, it.next())?;
            let msd = lp_int(rd, it.next())? as u64;
            let ssd = lp_int(rd, it.next())? as u64;
            let id =
                stream::StreamId::new(master.ms.wrapping_add(msd), master.seq.wrapping_add(ssd));
            let mut fv: Vec<Vec<u8>> = Vec::new();
            if flags & 2 != 0 {
                for f in &mfields {
                    fv.push(f.clone());
                    fv.push(it.next().ok_or_else(|| empty_err(rd))?.into_bytes());
                }
            } else {
                let nf = lp_int(rd, it.next())?;
                if nf < 0 || nf as u64 > lp.len() as u64 {
                    return rd.err("stream listpack: bad field count");
                }
                for _ in 0..2 * nf {
                    fv.push(it.next().ok_or_else(|| empty_err(rd))?.into_bytes());
                }
            }
            let _lp_count = lp_int(rd, it.next())?;
            if flags & 1 != 0 {
                continue;
            }
            if prev.is_some_and(|p| id <= p) {
                return rd.err("stream entries out of order");
            }
            prev = Some(id);
            let refs: Vec<&[u8]> = fv.iter().map(|v| v.as_slice()).collect();
            s.append(id, &refs, lim.stream);
        }
        if it.next().is_some() {
            return rd.err("stream listpack: trailing elements");
        }
    }
    let length = rd.len()?;
    let last_id = stream::StreamId::new(rd.len()?, rd.len()?);
    if length != s.len() as u64 {
        return rd.err("stream length does not match its entries");
    }
    if prev.is_some_and(|p| p > last_id) {
        return rd.err("stream last ID smaller than an entry");
    }
    s.last_id = last_id;
    if t >= T_STREAM_LISTPACKS_2 {
        let _first = stream::StreamId::new(rd.len()?, rd.len()?);
        s.max_deleted = stream::StreamId::new(rd.len()?, rd.len()?);
        s.entries_added = rd.len()?;
    } else {
        s.max_deleted = stream::StreamId::MIN;
        s.entries_added = length;
    }
    let groups = rd.count()?;
    for _ in 0..groups {
        let name = rd.string()?;
        let gid = stream::StreamId::new(rd.len()?, rd.len()?);
        let offset = if t >= T_STREAM_LISTPACKS_2 {
            rd.len()? as i64
        } else {
            stream::INVALID_ENTRIES_READ
        };
        let mut g = stream::Group::new(gid, offset);
        if t < T_STREAM_LISTPACKS_2 {
            g.entries_read = s.estimate_distance(gid);
        }
        let pel = rd.count()?;
        let mut pending: std::collections::BTreeMap<stream::StreamId, (i64, u64)> =
            Default::default();
        for _ in 0..pel {
            let id = rd.stream_id_raw()?;
            let dt = rd.ms()?;
            let dc = rd.len()?;
            if pending.insert(id, (dt, dc)).is_some() {
                return rd.err("duplicate ID in a consumer group PEL");
            }
        }
        let consumers = rd.count()?;
        for _ in 0..consumers {
            let cname = rd.string()?;
            let seen = rd.ms()?;
            let active = if t >= T_STREAM_LISTPACKS_3 {
                rd.ms()?
            } else {
                seen
            };
            if !g.create_consumer(&cname, seen) {
                return rd.err("duplicate consumer name in a group");
            }
            {
                let c = g.consumers.get_mut(&cname[..]).unwrap();
                c.seen_time = seen;
                c.active_time = active;
            }
            let np = rd.count()?;
            for _ in 0..np {
                let id = rd.stream_id_raw()?;
                let Some(&(dt, dc)) = pending.get(&id) else {
                    return rd.err("consumer PEL entry missing from the group PEL");
                };
                if g.pel.contains_key(&id) {
                    return rd.err("PEL entry owned by two consumers");
                }
                let owner = g.consumers[&cname[..]].name.clone();
                g.pel.insert(
                    id,
                    stream::Nack {
                        delivery_time: dt,
                        delivery_count: dc,
                        consumer: owner,
                    },
                );
                g.consumers.get_mut(&cname[..]).unwrap().pel.insert(id);
            }
        }
        // Redis leaves PEL entries without a consumer ownerless; we cannot
        // represent that, so they are dropped (or refused by deep checks).
        if g.pel.len() != pending.len() && lim.deep {
            return rd.err("group PEL entry without a consumer");
        }
        if s.groups.insert(name, g).is_some() {
            return rd.err("duplicate consumer group name");
        }
    }
    Ok(Value::Stream(Box::new(s)))
}

/// Reads a DUMP payload (already verified) into a value.
pub fn read_payload(p: &[u8], lim: &BuildLimits) -> RResult<Value> {
    if p.len() < 10 {
        return Err(RdbError {
            offset: 0,
            msg: "payload too short".into(),
            empty: false,
        });
    }
    let body = &p[..p.len() - 10];
    let mut rd = Reader::new(body, body.len() as u64);
    let t = rd.u8()?;
    let v = read_value(&mut rd, t, lim)?;
    if lim.deep && rd.remaining() != 0 {
        return rd.err("trailing bytes after the value");
    }
    Ok(v)
}

/// An expire time from a file as the unsigned ms the keyspace uses. A
/// negative time (Redis writes signed ones) is long past: it becomes 1 ms
/// after the epoch, so the key counts as expired instead of wrapping into
/// the far future (or overflowing).
fn expire_at(ms: i64) -> u64 {
    ms.max(1) as u64
}

/// What the file loader reports, in order.
pub enum Event {
    Aux(Vec<u8>, Vec<u8>),
    /// A key: database, key, value, absolute expiry, IDLE seconds, FREQ.
    Key {
        db: usize,
        key: Vec<u8>,
        value: Value,
        expire_ms: Option<u64>,
        idle: Option<u64>,
        freq: Option<u8>,
    },
    /// A FUNCTION2 library (its code).
    Function(Vec<u8>),
    /// RESIZEDB hint for the current database.
    Resize(usize, u64, u64),
}

/// Reads a whole RDB stream: header, opcodes, keys, EOF and checksum.
/// `f` gets every event; `Err` from it aborts the load. Returns the
/// version read.
pub fn load<R: Read>(
    rd: &mut Reader<R>,
    lim: &BuildLimits,
    check_crc: bool,
    dbs: usize,
    f: &mut dyn FnMut(Event) -> Result<(), String>,
) -> RResult<u16> {
    let magic = rd.array::<9>()?;
    if &magic[..5] != b"REDIS" {
        return Err(RdbError {
            offset: 0,
            msg: "wrong signature trying to load DB from file".into(),
            empty: false,
        });
    }
    let ver: u16 = std::str::from_utf8(&magic[5..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !(1..=RDB_MAX_READ_VERSION).contains(&ver) {
        return rd.err(format!("can't handle RDB format version {ver}"));
    }
    let mut db = 0usize;
    let mut expire: Option<u64> = None;
    let mut idle = None;
    let mut freq = None;
    loop {
        let op = rd.u8()?;
        match op {
            OP_EXPIRETIME => {
                let secs = i32::from_le_bytes(rd.array::<4>()?) as i64;
                expire = Some(expire_at(secs * 1000));
                continue;
            }
            OP_EXPIRETIME_MS => {
                expire = Some(expire_at(rd.ms()?));
                continue;
            }
            OP_FREQ => {
                freq = Some(rd.u8()?);
                continue;
            }
            OP_IDLE => {
                idle = Some(rd.len()?);
                continue;
            }
            OP_EOF => break,
            OP_SELECTDB => {
                let n = rd.len()?;
                if n >= dbs as u64 {
                    return rd.err(format!(
                        "FATAL: Data file was created with a Redis server configured to handle more than {dbs} databases"
                    ));
                }
                db = n as usize;
                continue;
            }
            OP_RESIZEDB => {
                let a = rd.len()?;
                let b = rd.len()?;
                f(Event::Resize(db, a, b)).map_err(|m| RdbError {
                    offset: rd.pos(),
                    msg: m,
                    empty: false,
                })?;
                continue;
            }
            OP_AUX => {
                let k = rd.string()?;
                let v = rd.string()?;
                f(Event::Aux(k, v)).map_err(|m| RdbError {
                    offset: rd.pos(),
                    msg: m,
                    empty: false,
                })?;
                continue;
            }
            OP_MODULE_AUX => {
                return rd
                    .err("module auxiliary data (MODULE_AUX) found, but modules are not supported")
            }
            OP_FUNCTION_PRE_GA => {
                return rd.err("pre-release function format (FUNCTION_PRE_GA) is not supported")
            }
            OP_FUNCTION2 => {
                let code = rd.string()?;
                f(Event::Function(code)).map_err(|m| RdbError {
                    offset: rd.pos(),
                    msg: m,
                    empty: false,
                })?;
                continue;
            }
            _ => {}
        }
        let key = rd.string()?;
        let value = match read_value(rd, op, lim) {
            Ok(v) => Some(v),
            Err(e) if e.empty => None,
            Err(e) => return Err(e),
        };
        if let Some(value) = value {
            f(Event::Key {
                db,
                key,
                value,
                expire_ms: expire,
                idle,
                freq,
            })
            .map_err(|m| RdbError {
                offset: rd.pos(),
                msg: m,
                empty: false,
            })?;
        }
        expire = None;
        idle = None;
        freq = None;
    }
    if ver >= 5 {
        let expected = rd.crc_so_far();
        let stored = u64::from_le_bytes(rd.array::<8>()?);
        if check_crc && stored != 0 && stored != expected {
            return rd.err("RDB CRC error: wrong checksum");
        }
    }
    Ok(ver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fuzzer find: a negative EXPIRETIME (seconds) overflowed when
    /// scaled to ms, and a negative EXPIRETIME_MS wrapped to "never". Both
    /// are long past, as Redis reads them.
    #[test]
    fn negative_expire_times_are_in_the_past() {
        let mut f = header(11);
        f.push(OP_EXPIRETIME);
        f.extend_from_slice(&(-5i32).to_le_bytes());
        f.push(0);
        put_string(&mut f, b"a", false);
        put_string(&mut f, b"1", false);
        f.push(OP_EXPIRETIME_MS);
        f.extend_from_slice(&i64::MIN.to_le_bytes());
        f.push(0);
        put_string(&mut f, b"b", false);
        put_string(&mut f, b"2", false);
        f.push(OP_EOF);
        f.extend_from_slice(&0u64.to_le_bytes());
        let mut got = Vec::new();
        let mut rd = Reader::new(&f[..], f.len() as u64);
        load(&mut rd, &lim(), false, 16, &mut |ev| {
            if let Event::Key { key, expire_ms, .. } = ev {
                got.push((key, expire_ms));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![(b"a".to_vec(), Some(1)), (b"b".to_vec(), Some(1))]
        );
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    fn lim() -> BuildLimits {
        BuildLimits {
            deep: true,
            ..Default::default()
        }
    }

    fn round_trip(v: &Value, opts: SaveOpts) -> Value {
        let p = dump_payload(v, &opts);
        assert!(verify_payload(&p, true));
        read_payload(&p, &lim()).unwrap()
    }

    fn all_values() -> Vec<Value> {
        let l = lim();
        let mut out = vec![
            Value::Str(Str::Int(12)),
            Value::Str(Str::Int(i64::MIN)),
            Value::Str(Str::from_bytes(b"hello")),
            Value::Str(Str::from_bytes(&b"abc".repeat(100))),
        ];
        let items: Vec<Vec<u8>> = (0..300).map(|i| format!("e{i}").into_bytes()).collect();
        out.push(Value::List(ListValue::from_elements(
            items[..5].iter().map(|v| v.as_slice()),
            -2,
        )));
        out.push(Value::List(ListValue::from_elements(
            items
                .iter()
                .map(|v| v.as_slice())
                .chain([&b"77"[..], b"-5"]),
            -2,
        )));
        for members in [
            vec![b"1".to_vec(), b"2".to_vec(), b"-70000".to_vec()],
            vec![b"a".to_vec(), b"3".to_vec()],
            items.clone(),
        ] {
            out.push(build_set(&Reader::new(&b""[..], 0), members, &l).unwrap());
        }
        for n in [3usize, 200] {
            let pairs: Vec<_> = (0..n)
                .map(|i| (format!("m{i}").into_bytes(), i as f64 * 1.5 - 7.0))
                .collect();
            out.push(build_zset(&Reader::new(&b""[..], 0), pairs, &l).unwrap());
            let pairs: Vec<_> = (0..n * 3)
                .map(|i| (format!("f{i}").into_bytes(), format!("{i}").into_bytes()))
                .collect();
            out.push(build_hash(&Reader::new(&b""[..], 0), pairs, &l).unwrap());
        }
        let mut s = StreamValue::new();
        for i in 1..250u64 {
            let v = i.to_string();
            let fv: Vec<&[u8]> = if i % 7 == 0 {
                vec![b"other", v.as_bytes()]
            } else {
                vec![b"f", v.as_bytes(), b"g", b"x"]
            };
            s.append(stream::StreamId::new(i, 0), &fv, Default::default());
        }
        s.delete(stream::StreamId::new(5, 0));
        let mut g = stream::Group::new(stream::StreamId::new(10, 0), 9);
        g.create_consumer(b"alice", 1000);
        g.deliver(stream::StreamId::new(3, 0), b"alice", 2000);
        g.deliver(stream::StreamId::new(4, 0), b"alice", 2001);
        s.groups.insert(b"grp".to_vec(), g);
        s.groups.insert(
            b"empty".to_vec(),
            stream::Group::new(stream::StreamId::MIN, 0),
        );
        out.push(Value::Stream(Box::new(s)));
        out
    }

    /// Values compared by content (stream node boundaries may differ).
    fn canonical(v: &Value) -> String {
        match v {
            Value::Stream(s) => {
                let mut out = Vec::new();
                s.walk(
                    stream::StreamId::MIN,
                    stream::StreamId::MAX,
                    false,
                    &mut |id, fv| {
                        out.push(format!("{id:?}{fv:?}"));
                        true
                    },
                );
                format!(
                    "{out:?} {:?} {} {:?} {:?} {}",
                    s.last_id,
                    s.entries_added,
                    s.max_deleted,
                    s.groups,
                    s.len()
                )
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_type_round_trips_with_its_encoding() {
        for opts in [
            SaveOpts::default(),
            SaveOpts {
                version: 10,
                compress: false,
            },
        ] {
            for v in all_values() {
                let back = round_trip(&v, opts);
                if let Value::Stream(st) = &v {
                    // Version 10 has no consumer active time: Redis loads
                    // it as the seen time.
                    let mut want = st.clone();
                    if opts.version < 11 {
                        for g in want.groups.values_mut() {
                            for c in g.consumers.values_mut() {
                                c.active_time = c.seen_time;
                            }
                        }
                    }
                    assert_eq!(canonical(&back), canonical(&Value::Stream(want)));
                } else {
                    assert_eq!(back, v, "{}", v.type_name());
                }
                assert_eq!(back.encoding(), v.encoding(), "{}", v.type_name());
            }
        }
    }

    #[test]
    fn truncated_or_flipped_payloads_are_errors() {
        for v in all_values() {
            let p = dump_payload(&v, &SaveOpts::default());
            let body = &p[..p.len() - 10];
            for cut in 0..body.len() {
                let mut rd = Reader::new(&body[..cut], cut as u64);
                let r = rd.u8().and_then(|t| read_value(&mut rd, t, &lim()));
                assert!(r.is_err(), "cut at {cut} of {}", v.type_name());
            }
            let mut bad = p.clone();
            bad[1] ^= 0x55;
            assert!(!verify_payload(&bad, true));
        }
    }

    #[test]
    fn lzf_used_when_it_pays() {
        let mut out = Vec::new();
        put_string(&mut out, &b"a".repeat(1000), true);
        assert_eq!(out[0], 0xC3);
        assert!(out.len() < 100);
        let mut rd = Reader::new(&out[..], out.len() as u64);
        assert_eq!(rd.string().unwrap(), b"a".repeat(1000));
        // Incompressible data stays raw.
        let mut out = Vec::new();
        let data: Vec<u8> = (0..=255u8).collect();
        put_string(&mut out, &data, true);
        assert_ne!(out[0], 0xC3);
    }

    #[test]
    fn string_encodings() {
        for (s, first) in [
            (&b"12"[..], 0xC0u8),
            (b"-300", 0xC1),
            (b"100000", 0xC2),
            (b"012", 3),
            (b"12345678901", 11),
        ] {
            let mut out = Vec::new();
            put_string(&mut out, s, true);
            assert_eq!(out[0], first, "{s:?}");
            let mut rd = Reader::new(&out[..], out.len() as u64);
            assert_eq!(rd.string().unwrap(), s);
        }
    }

    proptest! {
        #[test]
        fn lzf_output_decodes_with_lzf_rust(
            s in proptest::collection::vec(0u8..4, 0..3000),
            t in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            for input in [&s, &t] {
                if let Some(c) = lzf_compress(input, input.len() + 64) {
                    let back = lzf_rust::decompress_into_vec(&c, input.len()).unwrap();
                    prop_assert_eq!(&back, input);
                }
            }
        }

        #[test]
        fn lengths_round_trip(n in any::<u64>()) {
            let mut out = Vec::new();
            put_len(&mut out, n);
            let mut rd = Reader::new(&out[..], out.len() as u64);
            prop_assert_eq!(rd.len().unwrap(), n);
        }

        #[test]
        fn strings_round_trip(s in proptest::collection::vec(any::<u8>(), 0..200), rep in 1usize..5) {
            let s = s.repeat(rep);
            let mut out = Vec::new();
            put_string(&mut out, &s, true);
            let mut rd = Reader::new(&out[..], out.len() as u64);
            prop_assert_eq!(rd.string().unwrap(), s);
        }

        #[test]
        fn garbage_payloads_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_payload(&b, &lim());
            let mut rd = Reader::new(&b[..], b.len() as u64);
            let _ = load(&mut rd, &lim(), true, 16, &mut |_| Ok(()));
        }
    }
}
