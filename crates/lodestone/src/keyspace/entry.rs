//! One key and its value: the unit a shard's table stores.
//!
//! An [`Entry`] is a thin pointer (8 bytes in the table) to one allocation
//! that holds everything about the key, so a lookup touches one cache line
//! or two and a small string key costs one allocation (brief D3):
//!
//! ```text
//! [tag: u8][lru: 3 bytes][key len: varint][key][expire_at: u64, if TTL][value]
//! value = i64 (tag INT) | varint len + bytes (tag BYTES) | *mut Value (tag HEAP)
//! ```
//!
//! Strings set by SET live inline; strings grown in place (APPEND, SETRANGE)
//! and collections live behind the HEAP pointer, so appends stay amortized
//! O(1). Everything outside this file goes through the accessors.

use super::types::{
    hash::HashValue, list::ListValue, set::SetValue, stream::StreamValue, zset::ZSetValue,
};
use super::varint::{read_varint, varint_len, write_varint};
use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

/// A string value and its Redis encoding.
#[derive(Clone, Debug, PartialEq)]
pub enum Str {
    /// A decimal integer stored as a number (`OBJECT ENCODING` = int).
    Int(i64),
    /// Bytes. `raw` is set once the value was modified in place (APPEND,
    /// SETRANGE), which Redis reports as `raw` even when short.
    Bytes { data: Vec<u8>, raw: bool },
}

/// Longest string Redis stores as `embstr`.
pub const EMBSTR_MAX: usize = 44;

impl Str {
    /// Builds a string value the way Redis's `tryObjectEncoding` would:
    /// integers that round-trip exactly become `Int`.
    pub fn from_bytes(b: &[u8]) -> Str {
        if b.len() <= 20 && !b.is_empty() && (b[0] == b'-' || b[0].is_ascii_digit()) {
            if let Some(n) = strutil::parse_i64(b) {
                return Str::Int(n);
            }
        }
        Str::Bytes {
            data: b.to_vec(),
            raw: false,
        }
    }

    /// A string that keeps its bytes as given and reports `raw`.
    pub fn raw(data: Vec<u8>) -> Str {
        Str::Bytes { data, raw: true }
    }

    pub fn len(&self) -> usize {
        match self {
            Str::Int(n) => itoa::Buffer::new().format(*n).len(),
            Str::Bytes { data, .. } => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with the value's bytes (formatting integers on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Str::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            Str::Bytes { data, .. } => f(data),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    /// Turns the value into mutable bytes (for APPEND/SETRANGE), marking it raw.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if let Str::Int(n) = *self {
            *self = Str::Bytes {
                data: itoa::Buffer::new().format(n).as_bytes().to_vec(),
                raw: true,
            };
        }
        match self {
            Str::Bytes { data, raw } => {
                *raw = true;
                data
            }
            Str::Int(_) => unreachable!(),
        }
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Str::Int(_) => "int",
            Str::Bytes { data, raw } => {
                if !*raw && data.len() <= EMBSTR_MAX {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }
}

/// A value of any Redis type. Each collection type lives in its own
/// module under `keyspace::types`.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Str),
    List(ListValue),
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
    /// Boxed: a stream's header is the largest of all (96 B) and would
    /// set the size of every collection's value allocation.
    Stream(Box<StreamValue>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
            Value::List(v) => v.encoding(),
            Value::Hash(v) => v.encoding(),
            Value::Set(v) => v.encoding(),
            Value::ZSet(v) => v.encoding(),
            Value::Stream(v) => v.encoding(),
        }
    }

    /// Feeds the value into a DEBUG DIGEST hasher (type tag first).
    pub fn digest(&self, h: &mut sha1_smol::Sha1) {
        h.update(self.type_name().as_bytes());
        match self {
            Value::Str(s) => s.with_bytes(|b| h.update(b)),
            Value::List(v) => v.digest(h),
            Value::Hash(v) => v.digest(h),
            Value::Set(v) => v.digest(h),
            Value::ZSet(v) => v.digest(h),
            Value::Stream(v) => v.digest(h),
        }
    }

    /// Approximate heap bytes owned by the value (MEMORY USAGE).
    pub fn memory_usage(&self) -> usize {
        match self {
            Value::Str(Str::Int(_)) => 0,
            Value::Str(Str::Bytes { data, .. }) => data.capacity(),
            Value::List(v) => v.memory_usage(),
            Value::Hash(v) => v.memory_usage(),
            Value::Set(v) => v.memory_usage(),
            Value::ZSet(v) => v.memory_usage(),
            Value::Stream(v) => v.memory_usage(),
        }
    }
}

/// A borrowed view of an entry's string value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StrRef<'a> {
    Int(i64),
    Bytes(&'a [u8]),
}

impl StrRef<'_> {
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            StrRef::Int(n) => f(itoa::Buffer::new().format(*n).as_bytes()),
            StrRef::Bytes(b) => f(b),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrRef::Int(n) => itoa::Buffer::new().format(*n).len(),
            StrRef::Bytes(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }

    pub fn to_owned(&self) -> Str {
        match self {
            StrRef::Int(n) => Str::Int(*n),
            StrRef::Bytes(b) => Str::Bytes {
                data: b.to_vec(),
                raw: false,
            },
        }
    }
}

const TAG_INT: u8 = 0;
const TAG_BYTES: u8 = 1;
const TAG_HEAP: u8 = 2;
const TAG_MASK: u8 = 0b11;
const HAS_TTL: u8 = 0b100;
/// S3-FIFO metadata in the tag's spare bits (no extra bytes per key):
/// a 2-bit access frequency and whether the key sits in the main queue.
const S3_FREQ_SHIFT: u8 = 3;
const S3_FREQ: u8 = 0b11 << S3_FREQ_SHIFT;
const S3_MAIN: u8 = 0b10_0000;
const META: u8 = S3_FREQ | S3_MAIN;
const HEADER: usize = 4;

/// The value part of an entry before it is written.
enum Inline<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Heap(Box<Value>),
}

impl Inline<'_> {
    fn size(&self) -> usize {
        match self {
            Inline::Int(_) | Inline::Heap(_) => 8,
            Inline::Bytes(b) => varint_len(b.len()) + b.len(),
        }
    }
}

/// A key, its value, its absolute expiry time and its eviction metadata,
/// in one allocation.
pub struct Entry {
    ptr: NonNull<u8>,
}

// SAFETY: an Entry uniquely owns its allocation (and the boxed Value it may
// point to, which is Send + Sync); it is only reached through &/&mut.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

impl Entry {
    pub fn new(key: &[u8], value: Value) -> Entry {
        Self::new_full(key, value, None, 0)
    }

    /// An entry with a TTL and LRU field set from the start. Integers and
    /// strings set whole live inline; raw strings and collections on the heap.
    pub fn new_full(key: &[u8], value: Value, ttl: Option<u64>, lru: u32) -> Entry {
        match value {
            Value::Str(Str::Int(n)) => Self::build(key, ttl, lru, Inline::Int(n)),
            Value::Str(Str::Bytes { data, raw: false }) => {
                Self::build(key, ttl, lru, Inline::Bytes(&data))
            }
            v => Self::build(key, ttl, lru, Inline::Heap(Box::new(v))),
        }
    }

    /// An entry holding a string given by reference, integer-encoded when
    /// it is a canonical integer (the SET path: no intermediate copies).
    pub fn new_str_full(key: &[u8], value: &[u8], ttl: Option<u64>, lru: u32) -> Entry {
        if value.len() <= 20 && !value.is_empty() && (value[0] == b'-' || value[0].is_ascii_digit())
        {
            if let Some(n) = strutil::parse_i64(value) {
                return Self::build(key, ttl, lru, Inline::Int(n));
            }
        }
        Self::build(key, ttl, lru, Inline::Bytes(value))
    }

    /// Like [`Entry::new_str_full`] without TTL or LRU.
    pub fn new_str(key: &[u8], value: &[u8]) -> Entry {
        Self::new_str_full(key, value, None, 0)
    }

    fn build(key: &[u8], ttl: Option<u64>, lru: u32, v: Inline) -> Entry {
        let size = HEADER
            + varint_len(key.len())
            + key.len()
            + if ttl.is_some() { 8 } else { 0 }
            + v.size();
        let layout = Layout::from_size_align(size, 1).expect("entry layout");
        // SAFETY: size > 0; every byte of the allocation is written below.
        unsafe {
            let p = alloc(layout);
            let Some(ptr) = NonNull::new(p) else {
                std::alloc::handle_alloc_error(layout)
            };
            let tag = match v {
                Inline::Int(_) => TAG_INT,
                Inline::Bytes(_) => TAG_BYTES,
                Inline::Heap(_) => TAG_HEAP,
            } | if ttl.is_some() { HAS_TTL } else { 0 };
            *p = tag;
            let l = lru.to_le_bytes();
            std::ptr::copy_nonoverlapping(l.as_ptr(), p.add(1), 3);
            let mut off = HEADER;
            off += write_varint(p.add(off), key.len());
            std::ptr::copy_nonoverlapping(key.as_ptr(), p.add(off), key.len());
            off += key.len();
            if let Some(t) = ttl {
                std::ptr::write_unaligned(p.add(off) as *mut u64, t);
                off += 8;
            }
            match v {
                Inline::Int(n) => std::ptr::write_unaligned(p.add(off) as *mut i64, n),
                Inline::Bytes(b) => {
                    off += write_varint(p.add(off), b.len());
                    std::ptr::copy_nonoverlapping(b.as_ptr(), p.add(off), b.len());
                }
                Inline::Heap(b) => {
                    std::ptr::write_unaligned(p.add(off) as *mut *mut Value, Box::into_raw(b))
                }
            }
            Entry { ptr }
        }
    }

    #[inline]
    fn tag(&self) -> u8 {
        // SAFETY: the first byte is always written.
        unsafe { *self.ptr.as_ptr() }
    }

    /// (key offset, key length)
    #[inline]
    fn key_pos(&self) -> (usize, usize) {
        // SAFETY: the varint at HEADER is always written.
        let (len, n) = unsafe { read_varint(self.ptr.as_ptr().add(HEADER)) };
        (HEADER + n, len)
    }

    #[inline]
    fn value_offset(&self) -> usize {
        let (off, len) = self.key_pos();
        off + len + if self.tag() & HAS_TTL != 0 { 8 } else { 0 }
    }

    fn alloc_size(&self) -> usize {
        let off = self.value_offset();
        off + match self.tag() & TAG_MASK {
            TAG_BYTES => {
                // SAFETY: the value varint is written for BYTES entries.
                let (len, n) = unsafe { read_varint(self.ptr.as_ptr().add(off)) };
                n + len
            }
            _ => 8,
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        let (off, len) = self.key_pos();
        // SAFETY: the key bytes were copied there by build.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
    }

    /// The absolute expiry time in milliseconds, if the key has a TTL.
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        if self.tag() & HAS_TTL == 0 {
            return None;
        }
        let (off, len) = self.key_pos();
        // SAFETY: HAS_TTL means 8 bytes of TTL follow the key.
        Some(unsafe { std::ptr::read_unaligned(self.ptr.as_ptr().add(off + len) as *const u64) })
    }

    /// Sets or clears the TTL. Returns whether the key had one before.
    /// Call through [`super::Shard`] so the shard's volatile count stays right.
    pub(super) fn set_expire_raw(&mut self, at: Option<u64>) -> bool {
        let had = self.tag() & HAS_TTL != 0;
        match (had, at) {
            (true, Some(t)) => {
                let (off, len) = self.key_pos();
                // SAFETY: the TTL slot exists when HAS_TTL is set.
                unsafe {
                    std::ptr::write_unaligned(self.ptr.as_ptr().add(off + len) as *mut u64, t)
                };
            }
            (false, None) => {}
            _ => {
                // The layout changes: rebuild with the same key, value and LRU.
                let value = self.take_inline();
                let mut new = Self::build_from_taken(self.key(), at, self.lru(), value);
                new.copy_meta_bits(self);
                let old = std::mem::replace(self, new);
                old.free_without_value();
            }
        }
        had
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at().is_some_and(|t| t <= now_ms)
    }

    /// The 24-bit LRU clock (or LFU counter and decay time) field.
    #[inline]
    pub fn lru(&self) -> u32 {
        let mut b = [0u8; 4];
        // SAFETY: bytes 1..4 hold the LRU field.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(1), b.as_mut_ptr(), 3) };
        u32::from_le_bytes(b)
    }

    #[inline]
    pub fn set_lru(&mut self, v: u32) {
        let b = v.to_le_bytes();
        // SAFETY: bytes 1..4 hold the LRU field.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.ptr.as_ptr().add(1), 3) };
    }

    /// The S3-FIFO access frequency (0..=3).
    #[inline]
    pub fn s3_freq(&self) -> u8 {
        (self.tag() & S3_FREQ) >> S3_FREQ_SHIFT
    }

    /// Sets the S3-FIFO frequency (saturating at 3).
    #[inline]
    pub fn set_s3_freq(&mut self, f: u8) {
        let t = (self.tag() & !S3_FREQ) | (f.min(3) << S3_FREQ_SHIFT);
        self.set_tag(t);
    }

    /// Counts one access for S3-FIFO (saturating at the engine's
    /// `MAX_FREQ`).
    #[inline]
    pub fn bump_s3_freq(&mut self) {
        let f = self.s3_freq();
        if f < super::s3fifo::MAX_FREQ {
            self.set_s3_freq(f + 1);
        }
    }

    /// Whether S3-FIFO keeps this key in its main queue (else the small one).
    #[inline]
    pub fn s3_in_main(&self) -> bool {
        self.tag() & S3_MAIN != 0
    }

    #[inline]
    pub fn set_s3_in_main(&mut self, main: bool) {
        let t = if main {
            self.tag() | S3_MAIN
        } else {
            self.tag() & !S3_MAIN
        };
        self.set_tag(t);
    }

    /// Copies the eviction metadata (LRU field and S3-FIFO bits) of `other`.
    pub fn copy_meta_bits(&mut self, other: &Entry) {
        let t = (self.tag() & !META) | (other.tag() & META);
        self.set_tag(t);
    }

    #[inline]
    fn set_tag(&mut self, t: u8) {
        // SAFETY: the first byte is always written; &mut self is exclusive.
        unsafe { *self.ptr.as_ptr() = t };
    }

    /// The string value, if the entry holds a string.
    #[inline]
    pub fn str(&self) -> Option<StrRef<'_>> {
        let off = self.value_offset();
        let p = self.ptr.as_ptr();
        // SAFETY: the tag says which value representation was written.
        unsafe {
            match self.tag() & TAG_MASK {
                TAG_INT => Some(StrRef::Int(std::ptr::read_unaligned(
                    p.add(off) as *const i64
                ))),
                TAG_BYTES => {
                    let (len, n) = read_varint(p.add(off));
                    Some(StrRef::Bytes(std::slice::from_raw_parts(
                        p.add(off + n),
                        len,
                    )))
                }
                _ => match self.heap() {
                    Value::Str(Str::Int(n)) => Some(StrRef::Int(*n)),
                    Value::Str(Str::Bytes { data, .. }) => Some(StrRef::Bytes(data)),
                    _ => None,
                },
            }
        }
    }

    fn heap_ptr(&self) -> *mut Value {
        let off = self.value_offset();
        // SAFETY: only called for TAG_HEAP entries, which store the pointer there.
        unsafe { std::ptr::read_unaligned(self.ptr.as_ptr().add(off) as *const *mut Value) }
    }

    fn heap(&self) -> &Value {
        // SAFETY: the pointer came from Box::into_raw and is owned by self.
        unsafe { &*self.heap_ptr() }
    }

    /// The heap value by reference, when the entry keeps one (raw
    /// strings, collections): serializers read it without cloning.
    pub fn heap_value(&self) -> Option<&Value> {
        if self.tag() & TAG_MASK == TAG_HEAP {
            Some(self.heap())
        } else {
            None
        }
    }

    /// The heap value, when the entry keeps one (raw strings, collections).
    pub fn heap_value_mut(&mut self) -> Option<&mut Value> {
        if self.tag() & TAG_MASK == TAG_HEAP {
            // SAFETY: as in heap(); &mut self gives exclusive access.
            Some(unsafe { &mut *self.heap_ptr() })
        } else {
            None
        }
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self.tag() & TAG_MASK {
            TAG_HEAP => self.heap().type_name(),
            _ => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self.tag() & TAG_MASK {
            TAG_INT => "int",
            TAG_BYTES => {
                if self.str().map_or(0, |s| s.len()) <= EMBSTR_MAX {
                    "embstr"
                } else {
                    "raw"
                }
            }
            _ => self.heap().encoding(),
        }
    }

    /// An owned copy of the value.
    pub fn value(&self) -> Value {
        match self.tag() & TAG_MASK {
            TAG_HEAP => self.heap().clone(),
            _ => Value::Str(self.str().expect("inline values are strings").to_owned()),
        }
    }

    /// Replaces the value, keeping key, TTL and LRU.
    pub fn set_value(&mut self, value: Value) {
        let mut new = Self::new_full(self.key(), value, self.expire_at(), self.lru());
        new.copy_meta_bits(self);
        *self = new;
    }

    /// Sets an integer value; in place when the entry already holds one.
    pub fn set_int(&mut self, n: i64) {
        if self.tag() & TAG_MASK == TAG_INT {
            let off = self.value_offset();
            // SAFETY: INT entries have 8 value bytes at `off`.
            unsafe { std::ptr::write_unaligned(self.ptr.as_ptr().add(off) as *mut i64, n) };
        } else {
            self.set_value(Value::Str(Str::Int(n)));
        }
    }

    /// Mutable bytes of a string value, moving it to the heap (raw) first,
    /// so repeated appends are amortized O(1). None if not a string.
    pub fn str_bytes_mut(&mut self) -> Option<&mut Vec<u8>> {
        if self.tag() & TAG_MASK != TAG_HEAP {
            let s = self.str()?.to_owned();
            let mut s = s;
            s.make_raw();
            self.set_value(Value::Str(s));
        }
        match self.heap_value_mut()? {
            Value::Str(s) => Some(s.make_raw()),
            _ => None,
        }
    }

    /// Moves the value out (the entry is left holding an empty string).
    pub fn take_value(&mut self) -> Value {
        let v = self.value();
        self.set_value(Value::Str(Str::Int(0)));
        v
    }

    /// The same entry under another key (RENAME), moving the value.
    pub fn rekey(mut self, key: &[u8]) -> Entry {
        let (ttl, lru) = (self.expire_at(), self.lru());
        let value = self.take_inline();
        let new = Self::build_from_taken(key, ttl, lru, value);
        self.free_without_value();
        new
    }

    /// Rough memory used by this entry, for MEMORY USAGE.
    pub fn memory_usage(&self) -> usize {
        let heap = match self.tag() & TAG_MASK {
            TAG_HEAP => std::mem::size_of::<Value>() + self.heap().memory_usage(),
            _ => 0,
        };
        self.alloc_size() + heap + 8
    }

    /// Detaches the value representation for a rebuild.
    fn take_inline(&mut self) -> Taken {
        let off = self.value_offset();
        match self.tag() & TAG_MASK {
            TAG_INT => Taken::Int(unsafe {
                std::ptr::read_unaligned(self.ptr.as_ptr().add(off) as *const i64)
            }),
            TAG_BYTES => Taken::Bytes(self.str().expect("bytes").to_vec()),
            _ => Taken::Heap(self.heap_ptr()),
        }
    }

    fn build_from_taken(key: &[u8], ttl: Option<u64>, lru: u32, t: Taken) -> Entry {
        match t {
            Taken::Int(n) => Self::build(key, ttl, lru, Inline::Int(n)),
            Taken::Bytes(b) => Self::build(key, ttl, lru, Inline::Bytes(&b)),
            // SAFETY: the pointer is moved from the old entry, which is then
            // freed without dropping its value (free_without_value).
            Taken::Heap(p) => Self::build(key, ttl, lru, Inline::Heap(unsafe { Box::from_raw(p) })),
        }
    }

    /// Frees the allocation but not the heap value (it was moved out).
    fn free_without_value(self) {
        let size = self.alloc_size();
        let p = self.ptr.as_ptr();
        std::mem::forget(self);
        // SAFETY: same layout as allocated in build.
        unsafe { dealloc(p, Layout::from_size_align_unchecked(size, 1)) };
    }
}

enum Taken {
    Int(i64),
    Bytes(Vec<u8>),
    Heap(*mut Value),
}

impl Drop for Entry {
    fn drop(&mut self) {
        let size = self.alloc_size();
        if self.tag() & TAG_MASK == TAG_HEAP {
            // SAFETY: the heap pointer is owned by this entry.
            drop(unsafe { Box::from_raw(self.heap_ptr()) });
        }
        // SAFETY: same layout as allocated in build.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(size, 1),
            )
        };
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("expire_at", &self.expire_at())
            .field("value", &self.value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_encodings() {
        assert_eq!(Str::from_bytes(b"12345").encoding(), "int");
        assert_eq!(Str::from_bytes(b"012").encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 44]).encoding(), "embstr");
        assert_eq!(Str::from_bytes(&[b'a'; 45]).encoding(), "raw");
        assert_eq!(Entry::new_str(b"k", b"12345").encoding(), "int");
        assert_eq!(Entry::new_str(b"k", b"hello").encoding(), "embstr");
        assert_eq!(Entry::new_str(b"k", &[b'x'; 45]).encoding(), "raw");
        let mut e = Entry::new_str(b"k", b"7");
        e.str_bytes_mut().unwrap().push(b'1');
        assert_eq!(e.encoding(), "raw");
        assert_eq!(e.str().unwrap().to_vec(), b"71");
    }

    #[test]
    fn lru_ttl_and_rebuilds_keep_everything() {
        let long_key = vec![b'k'; 300]; // two-byte varint
        for key in [&b"k"[..], &long_key[..]] {
            for v in [
                Value::Str(Str::Int(-5)),
                Value::Str(Str::from_bytes(b"abc")),
                Value::Str(Str::raw(b"r".to_vec())),
            ] {
                let mut e = Entry::new(key, v.clone());
                e.set_lru(0xabcdef);
                assert_eq!(e.lru(), 0xabcdef);
                assert!(!e.set_expire_raw(Some(10)));
                assert!(e.is_expired(10) && !e.is_expired(9));
                assert_eq!(e.key(), key);
                assert_eq!(e.value(), v);
                assert_eq!(e.lru(), 0xabcdef);
                assert!(e.set_expire_raw(Some(20)));
                assert_eq!(e.expire_at(), Some(20));
                assert!(e.set_expire_raw(None));
                assert_eq!(e.expire_at(), None);
                assert_eq!(e.value(), v);
                assert_eq!(e.key(), key);
            }
        }
    }

    #[test]
    fn ints_update_in_place_and_values_replace() {
        let mut e = Entry::new_str(b"n", b"41");
        e.set_int(42);
        assert_eq!(e.str(), Some(StrRef::Int(42)));
        e.set_value(Value::Str(Str::from_bytes(b"hello world")));
        assert_eq!(e.str(), Some(StrRef::Bytes(b"hello world")));
        e.set_int(1);
        assert_eq!(e.str(), Some(StrRef::Int(1)));
        let v = e.take_value();
        assert_eq!(v, Value::Str(Str::Int(1)));
    }

    #[test]
    fn s3_bits_survive_rebuilds() {
        let mut e = Entry::new_str(b"k", b"v");
        assert_eq!((e.s3_freq(), e.s3_in_main()), (0, false));
        for _ in 0..5 {
            e.bump_s3_freq();
        }
        e.set_s3_in_main(true);
        e.set_expire_raw(Some(5));
        e.set_value(Value::Str(Str::raw(b"x".to_vec())));
        assert_eq!(
            (e.s3_freq(), e.s3_in_main()),
            (super::super::s3fifo::MAX_FREQ, true)
        );
        assert_eq!(e.expire_at(), Some(5));
        assert_eq!(e.type_name(), "string");
        e.set_s3_freq(1);
        assert_eq!(e.s3_freq(), 1);
        assert_eq!(e.str(), Some(StrRef::Bytes(b"x")));
    }

    #[test]
    fn compact_size_for_small_strings() {
        let e = Entry::new_str(b"key:000000012345", &[b'x'; 32]);
        assert_eq!(e.alloc_size(), 4 + 1 + 16 + 1 + 32);
        assert!(e.memory_usage() < 70);
    }
}

#[cfg(test)]
mod value_size {
    /// Every collection key pays for one `Value` allocation, so its size is
    /// memory per key (a 10-field hash is about 250 B in all): a variant that
    /// grows past the others must be boxed, as streams are.
    #[test]
    fn value_stays_small() {
        assert!(std::mem::size_of::<super::Value>() <= 48);
    }
}
