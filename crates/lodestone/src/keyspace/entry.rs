//! One key and its value: the unit a shard's table stores.
//!
//! An entry keeps the TTL inside itself (no second table for expiry, brief
//! D3) and the 24-bit LRU clock or LFU counter that eviction and
//! `OBJECT IDLETIME|FREQ` read. Everything outside this file goes through
//! the accessors, so the layout can be packed further without touching
//! the commands.

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
        if b.len() <= 20 {
            if let Some(n) = strutil::parse_i64(b) {
                return Str::Int(n);
            }
        }
        Str::Bytes {
            data: b.to_vec(),
            raw: false,
        }
    }

    /// A string that keeps its bytes as given (used where Redis does not
    /// try integer encoding, e.g. after APPEND).
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

/// A value of any Redis type. Collections are added by their own modules.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(Str),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding(),
        }
    }

    /// Rough heap size in bytes, for MEMORY USAGE and lazy-free decisions.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(Str::Int(_)) => 0,
            Value::Str(Str::Bytes { data, .. }) => data.capacity(),
        }
    }
}

/// Entry flags live in the low byte of `meta`; the LRU/LFU field in the
/// upper 24 bits, as in Redis's `robj.lru`.
const LRU_SHIFT: u32 = 8;

/// A key, its value, its absolute expiry time and its eviction metadata.
#[derive(Debug)]
pub struct Entry {
    key: Box<[u8]>,
    /// Absolute expiry in Unix milliseconds; 0 means no TTL.
    expire_at: u64,
    meta: u32,
    pub value: Value,
}

impl Entry {
    pub fn new(key: &[u8], value: Value) -> Entry {
        Entry {
            key: key.into(),
            expire_at: 0,
            meta: 0,
            value,
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The absolute expiry time in milliseconds, if the key has a TTL.
    #[inline]
    pub fn expire_at(&self) -> Option<u64> {
        if self.expire_at == 0 {
            None
        } else {
            Some(self.expire_at)
        }
    }

    /// Sets or clears the TTL. Returns whether the key had one before.
    /// Call through [`super::Shard`] so the shard's volatile count stays right.
    pub(super) fn set_expire_raw(&mut self, at: Option<u64>) -> bool {
        let had = self.expire_at != 0;
        // 0 is reserved for "none"; an expiry at the epoch is already past.
        self.expire_at = at.map(|t| t.max(1)).unwrap_or(0);
        had
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }

    /// The 24-bit LRU clock (or LFU counter and decay time) field.
    pub fn lru(&self) -> u32 {
        self.meta >> LRU_SHIFT
    }

    pub fn set_lru(&mut self, v: u32) {
        self.meta = (self.meta & 0xff) | (v << LRU_SHIFT);
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
        let mut s = Str::from_bytes(b"7");
        s.make_raw().push(b'1');
        assert_eq!(s.encoding(), "raw");
        assert_eq!(s.to_vec(), b"71");
    }

    #[test]
    fn lru_bits_do_not_touch_flags() {
        let mut e = Entry::new(b"k", Value::Str(Str::Int(1)));
        e.meta = 0x5a;
        e.set_lru(0xabcdef);
        assert_eq!(e.lru(), 0xabcdef);
        assert_eq!(e.meta & 0xff, 0x5a);
        assert!(!e.set_expire_raw(Some(10)));
        assert!(e.is_expired(10) && !e.is_expired(9));
    }
}
