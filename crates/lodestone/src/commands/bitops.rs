//! The bitmap family (Redis's `bitops.c`): SETBIT, GETBIT, BITCOUNT,
//! BITPOS, BITOP, BITFIELD and BITFIELD_RO. Bitmaps are plain strings; bit 0
//! is the most significant bit of byte 0. Counting, searching and BITOP
//! work a 64-bit word at a time.

use super::strings::{lookup, lru_clock};
use super::{err, Ctx, Handler, Registry};
use crate::keyspace::{Entry, Shard, Str, StrRef, Value};
use resp::Reply;
use strutil::parse_i64;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
setbit|bitmap|4|2.2.0|write,denyoom|bitmap|1,1,1|Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.
getbit|bitmap|3|2.2.0|readonly,fast|bitmap|1,1,1|Returns a bit value by offset.
bitcount|bitmap|-2|2.6.0|readonly|bitmap|1,1,1|Counts the number of set bits (population counting) in a string.
bitpos|bitmap|-3|2.8.7|readonly|bitmap|1,1,1|Finds the first set (1) or clear (0) bit in a string.
bitop|bitmap|-4|2.6.0|write,denyoom|bitmap|2,-1,1|Performs bitwise operations on multiple strings, and stores the result.
bitfield|bitmap|-2|3.2.0|write,denyoom|bitmap|1,1,1|Performs arbitrary bitfield integer operations on strings.
bitfield_ro|bitmap|-2|6.0.0|readonly,fast|bitmap|1,1,1|Performs arbitrary read-only bitfield integer operations on strings.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("setbit", setbit as Handler),
        ("getbit", getbit),
        ("bitcount", bitcount),
        ("bitpos", bitpos),
        ("bitop", bitop),
        ("bitfield", bitfield),
        ("bitfield_ro", bitfield_ro),
    ]);
}

const ERR_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT: &str = "ERR bit is not an integer or out of range";
const ERR_BF_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn max_bulk(ctx: &Ctx) -> u64 {
    ctx.srv
        .config
        .num(crate::config::HOT.proto_max_bulk_len)
        .max(0) as u64
}

/// Parses a bit offset; with `hash` (BITFIELD) `#N` means N * bits.
/// The byte it falls in must be below proto-max-bulk-len.
fn parse_offset(arg: &[u8], hash: bool, bits: u32, max_bulk: u64) -> Option<u64> {
    let (digits, mul) = if hash && bits > 0 && arg.first() == Some(&b'#') {
        (&arg[1..], bits as i64)
    } else {
        (arg, 1)
    };
    let off = parse_i64(digits)?.checked_mul(mul)?;
    if off < 0 || (off as u64 >> 3) >= max_bulk {
        return None;
    }
    Some(off as u64)
}

/// Grows a string with zero bytes to `len`, reserving like Redis's
/// `sdsMakeRoomFor` (double below 1MB, then +1MB) so bit-by-bit growth is
/// amortized without over-reserving more than Redis would.
fn grow_zero(v: &mut Vec<u8>, len: usize) {
    if v.len() >= len {
        return;
    }
    if v.capacity() < len {
        const MAX_PREALLOC: usize = 1024 * 1024;
        let target = if len < MAX_PREALLOC {
            len * 2
        } else {
            len + MAX_PREALLOC
        };
        v.reserve_exact(target - v.len());
    }
    v.resize(len, 0);
}

/// The writable bytes of `key` made long enough for bit `maxbit`, created
/// when missing (Redis's `lookupStringForBitCommand`). Returns the bytes and
/// whether the key was created or grew, or None after replying WRONGTYPE.
fn string_for_write<'s>(
    sh: &'s mut Shard,
    key: &[u8],
    maxbit: u64,
    now: u64,
    r: &mut Reply,
) -> Option<(&'s mut Vec<u8>, bool)> {
    let len = (maxbit >> 3) as usize + 1;
    let exists = match sh.get_mut(key, now) {
        Some(e) => {
            if e.str().is_none() {
                r.error(err::WRONGTYPE);
                return None;
            }
            true
        }
        None => false,
    };
    if !exists {
        sh.insert_entry(Entry::new_full(
            key,
            Value::Str(Str::raw(vec![0u8; len])),
            None,
            lru_clock(now),
        ));
    }
    let e = sh.get_mut(key, now).expect("present");
    crate::keyspace::lru::touch(e, now);
    let v = e.str_bytes_mut().expect("string");
    let old = v.len();
    grow_zero(v, len);
    let grew = v.len() != old;
    Some((v, !exists || grew))
}

fn setbit(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(offset) = parse_offset(argv[2], false, 0, max_bulk(ctx)) else {
        return ctx.error(ERR_OFFSET);
    };
    let on = match parse_i64(argv[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return ctx.error(ERR_BIT),
    };
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some((v, dirty)) = string_for_write(sh, argv[1], offset, now, &mut r) else {
        return;
    };
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u32;
    let old = (v[byte] >> shift) & 1;
    if dirty || old != on {
        v[byte] = (v[byte] & !(1 << shift)) | (on << shift);
        ctx.srv.add_dirty(1);
    }
    r.int(old as i64);
}

fn getbit(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(offset) = parse_offset(argv[2], false, 0, max_bulk(ctx)) else {
        return ctx.error(ERR_OFFSET);
    };
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = lookup(sh, argv[1], now, touch) else {
        ctx.srv.stats.hit(false);
        return r.int(0);
    };
    ctx.srv.stats.hit(true);
    let Some(s) = e.str() else {
        return r.error(err::WRONGTYPE);
    };
    let bit = s.with_bytes(|b| {
        let byte = (offset >> 3) as usize;
        b.get(byte).map_or(0, |x| (x >> (7 - (offset & 7))) & 1)
    });
    r.int(bit as i64);
}

/// Number of set bits in `b`, eight bytes at a time.
pub fn popcount(b: &[u8]) -> u64 {
    let mut chunks = b.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().unwrap()).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|x| x.count_ones() as u64)
        .sum::<u64>()
}

/// Set bits among bit positions `lo..=hi` (within `b`).
fn count_bits(b: &[u8], lo: u64, hi: u64) -> u64 {
    let (sb, eb) = ((lo >> 3) as usize, (hi >> 3) as usize);
    let mut n = popcount(&b[sb..=eb]);
    // Remove the bits of the edge bytes outside the range.
    let head_mask = !(0xffu8 >> (lo & 7));
    let tail_mask = if hi & 7 == 7 {
        0
    } else {
        0xffu8 >> ((hi & 7) + 1)
    };
    n -= (b[sb] & head_mask).count_ones() as u64;
    n -= (b[eb] & tail_mask).count_ones() as u64;
    n
}

/// First bit equal to `bit` among positions `lo..=hi` of `b`.
fn find_bit(b: &[u8], bit: u8, lo: u64, hi: u64) -> Option<u64> {
    let test = |pos: u64| (b[(pos >> 3) as usize] >> (7 - (pos & 7))) & 1 == bit;
    let mut pos = lo;
    // Leading bits up to a byte boundary.
    while pos <= hi && pos & 7 != 0 {
        if test(pos) {
            return Some(pos);
        }
        pos += 1;
    }
    // Bytes wholly inside the range: 64-bit words first, then bytes.
    let mut byte = (pos >> 3) as usize;
    let full_end = ((hi + 1) >> 3) as usize;
    while byte + 8 <= full_end {
        let w = u64::from_be_bytes(b[byte..byte + 8].try_into().unwrap());
        let w = if bit == 1 { w } else { !w };
        if w != 0 {
            return Some(byte as u64 * 8 + w.leading_zeros() as u64);
        }
        byte += 8;
    }
    while byte < full_end {
        let x = if bit == 1 { b[byte] } else { !b[byte] };
        if x != 0 {
            return Some(byte as u64 * 8 + x.leading_zeros() as u64);
        }
        byte += 1;
    }
    // Trailing bits of a partial last byte.
    let mut pos = pos.max(byte as u64 * 8);
    while pos <= hi {
        if test(pos) {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

/// Normalizes a start/end pair against `total` units (bytes or bits) the
/// way BITCOUNT/BITPOS do; None for an empty range.
fn clamp_range(mut start: i64, mut end: i64, total: i64) -> Option<(u64, u64)> {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start as u64, end as u64))
}

/// Parses BYTE|BIT; None is a syntax error.
fn parse_unit(a: &[u8]) -> Option<bool> {
    if a.eq_ignore_ascii_case(b"bit") {
        Some(true)
    } else if a.eq_ignore_ascii_case(b"byte") {
        Some(false)
    } else {
        None
    }
}

fn bitcount(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = lookup(sh, argv[1], now, touch) else {
        ctx.srv.stats.hit(false);
        return r.int(0);
    };
    ctx.srv.stats.hit(true);
    let Some(s) = e.str() else {
        return r.error(err::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        let (lo, hi) = match argv.len() {
            2 => {
                if b.is_empty() {
                    return r.int(0);
                }
                (0, len as u64 * 8 - 1)
            }
            4 | 5 => {
                let (Some(start), Some(end)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
                    return r.error(err::NOT_INT);
                };
                if start < 0 && end < 0 && start > end {
                    return r.int(0);
                }
                let isbit = if argv.len() == 5 {
                    match parse_unit(argv[4]) {
                        Some(x) => x,
                        None => return r.error(err::SYNTAX),
                    }
                } else {
                    false
                };
                let total = if isbit { len * 8 } else { len };
                match clamp_range(start, end, total) {
                    None => return r.int(0),
                    Some((s, e)) if isbit => (s, e),
                    Some((s, e)) => (s * 8, e * 8 + 7),
                }
            }
            _ => return r.error(err::SYNTAX),
        };
        r.int(count_bits(b, lo, hi) as i64);
    });
}

fn bitpos(ctx: &mut Ctx, argv: &[&[u8]]) {
    let bit = match parse_i64(argv[2]) {
        None => return ctx.error(err::NOT_INT),
        Some(b @ (0 | 1)) => b as u8,
        Some(_) => return ctx.error("ERR The bit argument must be 1 or 0."),
    };
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = lookup(sh, argv[1], now, touch) else {
        ctx.srv.stats.hit(false);
        return r.int(if bit == 1 { -1 } else { 0 });
    };
    ctx.srv.stats.hit(true);
    let Some(s) = e.str() else {
        return r.error(err::WRONGTYPE);
    };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        let mut end_given = false;
        let range = match argv.len() {
            3 => clamp_range(0, len - 1, len).map(|(s, e)| (s * 8, e * 8 + 7)),
            4..=6 => {
                let Some(start) = parse_i64(argv[3]) else {
                    return r.error(err::NOT_INT);
                };
                let isbit = if argv.len() == 6 {
                    match parse_unit(argv[5]) {
                        Some(x) => x,
                        None => return r.error(err::SYNTAX),
                    }
                } else {
                    false
                };
                let end = if argv.len() >= 5 {
                    let Some(end) = parse_i64(argv[4]) else {
                        return r.error(err::NOT_INT);
                    };
                    end_given = true;
                    end
                } else if isbit {
                    len * 8 + 7
                } else {
                    len - 1
                };
                let total = if isbit { len * 8 } else { len };
                match clamp_range(start, end, total) {
                    Some((s, e)) if isbit => Some((s, e)),
                    Some((s, e)) => Some((s * 8, e * 8 + 7)),
                    None => None,
                }
            }
            _ => return r.error(err::SYNTAX),
        };
        let Some((lo, hi)) = range else {
            return r.int(-1);
        };
        match find_bit(b, bit, lo, hi) {
            Some(p) => r.int(p as i64),
            // No clear bit in range: without an explicit end the string
            // counts as zero-padded on the right.
            None if bit == 0 && !end_given => r.int(hi as i64 + 1),
            None => r.int(-1),
        }
    });
}

#[derive(Clone, Copy, PartialEq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// Combines `src` into `res` word-wise (`res` is at least as long).
fn combine(res: &mut [u8], src: &[u8], op: BitOp) {
    let n = src.len();
    let (rw, rt) = res[..n].split_at_mut(n - n % 8);
    let (sw, st) = src.split_at(n - n % 8);
    for (r, s) in rw.chunks_exact_mut(8).zip(sw.chunks_exact(8)) {
        let a = u64::from_ne_bytes((&*r).try_into().unwrap());
        let b = u64::from_ne_bytes(s.try_into().unwrap());
        let c = match op {
            BitOp::And => a & b,
            BitOp::Or => a | b,
            _ => a ^ b,
        };
        r.copy_from_slice(&c.to_ne_bytes());
    }
    for (r, &s) in rt.iter_mut().zip(st) {
        match op {
            BitOp::And => *r &= s,
            BitOp::Or => *r |= s,
            _ => *r ^= s,
        }
    }
    if op == BitOp::And {
        // Shorter inputs count as zero-padded.
        res[n..].fill(0);
    }
}

fn bitop(ctx: &mut Ctx, argv: &[&[u8]]) {
    let name = argv[1];
    let op = if name.eq_ignore_ascii_case(b"and") {
        BitOp::And
    } else if name.eq_ignore_ascii_case(b"or") {
        BitOp::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        BitOp::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        BitOp::Not
    } else {
        return ctx.error(err::SYNTAX);
    };
    if op == BitOp::Not && argv.len() != 4 {
        return ctx.error("ERR BITOP NOT must be called with a single source key.");
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    // First pass: types and the longest input.
    let mut maxlen = 0usize;
    for key in &argv[3..] {
        let sh = ctx.locks.shard(db, key);
        if let Some(e) = lookup(sh, key, now, true) {
            match e.str() {
                Some(s) => maxlen = maxlen.max(s.len()),
                None => return ctx.error(err::WRONGTYPE),
            }
        }
    }
    let dest = argv[2];
    if maxlen == 0 {
        let sh = ctx.locks.shard(db, dest);
        if sh.get_mut(dest, now).is_some() {
            sh.remove(dest);
            ctx.srv.add_dirty(1);
        }
        return ctx.r().int(0);
    }
    // Second pass: the first input seeds the result, the rest combine in.
    let mut res = vec![0u8; maxlen];
    for (i, key) in argv[3..].iter().enumerate() {
        let sh = ctx.locks.shard(db, key);
        let src = sh.get_mut(key, now).and_then(|e| e.str());
        let apply = |b: &[u8], res: &mut Vec<u8>| {
            if i == 0 {
                res[..b.len()].copy_from_slice(b);
                if op == BitOp::Not {
                    for x in res.iter_mut() {
                        *x = !*x;
                    }
                }
            } else {
                combine(res, b, op);
            }
        };
        match src {
            Some(StrRef::Bytes(b)) => apply(b, &mut res),
            Some(StrRef::Int(n)) => apply(itoa::Buffer::new().format(n).as_bytes(), &mut res),
            None => apply(&[], &mut res),
        }
    }
    let sh = ctx.locks.shard(db, dest);
    sh.insert_entry(Entry::new_full(
        dest,
        Value::Str(Str::raw(res)),
        None,
        lru_clock(now),
    ));
    ctx.srv.add_dirty(1);
    ctx.r().int(maxlen as i64);
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    Incr,
}

struct Field {
    op: FieldOp,
    offset: u64,
    value: i64,
    signed: bool,
    bits: u32,
    overflow: Overflow,
}

/// Parses `i1..i64` / `u1..u63`.
fn parse_type(a: &[u8]) -> Option<(bool, u32)> {
    let signed = match a.first()? {
        b'i' => true,
        b'u' => false,
        _ => return None,
    };
    let bits = parse_i64(&a[1..])?;
    let max = if signed { 64 } else { 63 };
    (1..=max).contains(&bits).then_some((signed, bits as u32))
}

/// Reads `bits` bits at bit `offset`, treating bytes past the end as zero.
fn get_field(b: &[u8], offset: u64, bits: u32) -> u64 {
    let byte = (offset >> 3) as usize;
    let mut w = [0u8; 16];
    if byte < b.len() {
        let n = (b.len() - byte).min(9);
        w[..n].copy_from_slice(&b[byte..byte + n]);
    }
    let window = u128::from_be_bytes(w);
    let shift = 128 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    (window >> shift) as u64 & mask
}

/// Writes the low `bits` bits of `value` at bit `offset` (in range).
fn set_field(b: &mut [u8], offset: u64, bits: u32, value: u64) {
    let byte = (offset >> 3) as usize;
    let n = (b.len() - byte).min(9);
    let mut w = [0u8; 16];
    w[..n].copy_from_slice(&b[byte..byte + n]);
    let mut window = u128::from_be_bytes(w);
    let shift = 128 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    } as u128;
    window = (window & !(mask << shift)) | (((value as u128) & mask) << shift);
    b[byte..byte + n].copy_from_slice(&window.to_be_bytes()[..n]);
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Unsigned overflow check as Redis: (overflowed, value to store for WRAP/SAT).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if incr < 0 && incr < minincr {
        (true, if ow == Overflow::Sat { 0 } else { wrap() })
    } else {
        (false, 0)
    }
}

/// Signed overflow check as Redis: (overflowed, value to store for WRAP/SAT).
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            sign_extend(c & !(u64::MAX << bits), bits)
        } else {
            c as i64
        }
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (true, if ow == Overflow::Sat { max } else { wrap() })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        (true, if ow == Overflow::Sat { min } else { wrap() })
    } else {
        (false, 0)
    }
}

fn bitfield(ctx: &mut Ctx, argv: &[&[u8]]) {
    bitfield_generic(ctx, argv, false)
}

fn bitfield_ro(ctx: &mut Ctx, argv: &[&[u8]]) {
    bitfield_generic(ctx, argv, true)
}

fn bitfield_generic(ctx: &mut Ctx, argv: &[&[u8]], ro: bool) {
    let max_bulk = max_bulk(ctx);
    let mut ops: Vec<Field> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    let mut j = 2;
    while j < argv.len() {
        let rem = argv.len() - j - 1;
        let sub = argv[j];
        let op = if sub.eq_ignore_ascii_case(b"get") && rem >= 2 {
            FieldOp::Get
        } else if sub.eq_ignore_ascii_case(b"set") && rem >= 3 {
            FieldOp::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && rem >= 3 {
            FieldOp::Incr
        } else if sub.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            let t = argv[j + 1];
            overflow = if t.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if t.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if t.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return ctx.error("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return ctx.error(err::SYNTAX);
        };
        let Some((signed, bits)) = parse_type(argv[j + 1]) else {
            return ctx.error(ERR_BF_TYPE);
        };
        let Some(offset) = parse_offset(argv[j + 2], true, bits, max_bulk) else {
            return ctx.error(ERR_OFFSET);
        };
        let mut value = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits as u64 - 1);
            match parse_i64(argv[j + 3]) {
                Some(v) => value = v,
                None => return ctx.error(err::NOT_INT),
            }
        }
        ops.push(Field {
            op,
            offset,
            value,
            signed,
            bits,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    if readonly {
        // Only GETs: read, never create.
        let e = lookup(sh, key, now, true);
        ctx.srv.stats.hit(e.is_some());
        let s = match e {
            Some(e) => match e.str() {
                Some(s) => Some(s),
                None => return r.error(err::WRONGTYPE),
            },
            None => None,
        };
        r.array(ops.len());
        let read = |b: &[u8], r: &mut Reply| {
            for f in &ops {
                let v = get_field(b, f.offset, f.bits);
                r.int(if f.signed {
                    sign_extend(v, f.bits)
                } else {
                    v as i64
                });
            }
        };
        match s {
            Some(s) => s.with_bytes(|b| read(b, &mut r)),
            None => read(&[], &mut r),
        }
        return;
    }
    if ro {
        return r.error("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let Some((b, dirty)) = string_for_write(sh, key, highest, now, &mut r) else {
        return;
    };
    r.array(ops.len());
    let mut changes = 0u64;
    for f in &ops {
        match f.op {
            FieldOp::Get => {
                let v = get_field(b, f.offset, f.bits);
                r.int(if f.signed {
                    sign_extend(v, f.bits)
                } else {
                    v as i64
                });
            }
            FieldOp::Set | FieldOp::Incr if f.signed => {
                let old = sign_extend(get_field(b, f.offset, f.bits), f.bits);
                let (of, new, ret) = if f.op == FieldOp::Incr {
                    let (of, w) = signed_overflow(old, f.value, f.bits, f.overflow);
                    let new = if of { w } else { old.wrapping_add(f.value) };
                    (of, new, new)
                } else {
                    let (of, w) = signed_overflow(f.value, 0, f.bits, f.overflow);
                    (of, if of { w } else { f.value }, old)
                };
                if of && f.overflow == Overflow::Fail {
                    r.null();
                } else {
                    r.int(ret);
                    set_field(b, f.offset, f.bits, new as u64);
                    if dirty || old != new {
                        changes += 1;
                    }
                }
            }
            FieldOp::Set | FieldOp::Incr => {
                let old = get_field(b, f.offset, f.bits);
                let (of, new, ret) = if f.op == FieldOp::Incr {
                    let (of, w) = unsigned_overflow(old, f.value, f.bits, f.overflow);
                    let new = if of {
                        w
                    } else {
                        old.wrapping_add(f.value as u64)
                    };
                    (of, new, new)
                } else {
                    let v = f.value as u64;
                    let (of, w) = unsigned_overflow(v, 0, f.bits, f.overflow);
                    (of, if of { w } else { v }, old)
                };
                if of && f.overflow == Overflow::Fail {
                    r.null();
                } else {
                    r.int(ret as i64);
                    set_field(b, f.offset, f.bits, new);
                    if dirty || old != new {
                        changes += 1;
                    }
                }
            }
        }
    }
    ctx.srv.add_dirty(changes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bit(b: &[u8], i: u64) -> u8 {
        (b[(i >> 3) as usize] >> (7 - (i & 7))) & 1
    }

    #[test]
    fn counting_and_searching_match_a_bit_loop() {
        let mut x = 7u64;
        for len in [0usize, 1, 2, 7, 8, 9, 15, 16, 17, 33, 70] {
            for density in [0u64, 1, 4, 8] {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (0..8).fold(0u8, |a, k| {
                            a | ((((x >> (k * 3 + 20)) & 7) < density) as u8) << k
                        })
                    })
                    .collect();
                let nbits = len as u64 * 8;
                assert_eq!(popcount(&b), (0..nbits).map(|i| bit(&b, i) as u64).sum());
                for lo in 0..nbits.min(40) {
                    for hi in lo..nbits {
                        let want: u64 = (lo..=hi).map(|i| bit(&b, i) as u64).sum();
                        assert_eq!(count_bits(&b, lo, hi), want, "{lo} {hi}");
                        for v in 0..2u8 {
                            let want = (lo..=hi).find(|&i| bit(&b, i) == v);
                            assert_eq!(find_bit(&b, v, lo, hi), want, "{b:?} {v} {lo} {hi}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fields_roundtrip() {
        let mut b = vec![0u8; 20];
        for bits in 1..=64u32 {
            for off in [0u64, 1, 7, 8, 13, 63, 64, 90] {
                let v = 0x9e37_79b9_7f4a_7c15u64
                    & if bits == 64 {
                        u64::MAX
                    } else {
                        (1 << bits) - 1
                    };
                let before = b.clone();
                set_field(&mut b, off, bits, v);
                assert_eq!(get_field(&b, off, bits), v);
                for i in 0..160u64 {
                    if i < off || i >= off + bits as u64 {
                        assert_eq!(bit(&b, i), bit(&before, i));
                    }
                }
            }
        }
        assert_eq!(get_field(&[0xff], 4, 8), 0xf0);
        assert_eq!(sign_extend(0xff, 8), -1);
    }

    proptest::proptest! {
        /// Ranges, searches and fields agree with a Vec<bool> model.
        #[test]
        fn bit_helpers_match_model(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..80),
            a in 0u64..640, b in 0u64..640,
            writes in proptest::collection::vec((0u64..600, 1u32..=64, proptest::prelude::any::<u64>()), 0..8),
        ) {
            let mut bytes = bytes;
            let nbits = bytes.len() as u64 * 8;
            let (lo, hi) = (a.min(b) % nbits, a.max(b) % nbits);
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let model: Vec<u8> = (0..nbits).map(|i| bit(&bytes, i)).collect();
            let want: u64 = model[lo as usize..=hi as usize].iter().map(|&x| x as u64).sum();
            proptest::prop_assert_eq!(count_bits(&bytes, lo, hi), want);
            for v in 0..2u8 {
                let want = (lo..=hi).find(|&i| model[i as usize] == v);
                proptest::prop_assert_eq!(find_bit(&bytes, v, lo, hi), want);
            }
            let mut model = model;
            for (off, bits, val) in writes {
                if off + bits as u64 > nbits {
                    continue;
                }
                set_field(&mut bytes, off, bits, val);
                for k in 0..bits as u64 {
                    model[(off + k) as usize] = ((val >> (bits as u64 - 1 - k)) & 1) as u8;
                }
                let got: Vec<u8> = (0..nbits).map(|i| bit(&bytes, i)).collect();
                proptest::prop_assert_eq!(&got, &model);
                let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
                proptest::prop_assert_eq!(get_field(&bytes, off, bits), val & mask);
            }
        }
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(unsigned_overflow(100, 257, 8, Overflow::Wrap), (true, 101));
        assert_eq!(unsigned_overflow(100, 257, 8, Overflow::Sat), (true, 255));
        assert_eq!(unsigned_overflow(100, -255, 8, Overflow::Sat), (true, 0));
        assert_eq!(unsigned_overflow(100, 10, 8, Overflow::Sat), (false, 0));
        assert_eq!(signed_overflow(100, 257, 8, Overflow::Wrap), (true, 101));
        assert_eq!(signed_overflow(100, 257, 8, Overflow::Sat), (true, 127));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), (true, -128));
        assert_eq!(signed_overflow(255, 0, 8, Overflow::Wrap), (true, -1));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            (true, i64::MIN)
        );
    }
}
