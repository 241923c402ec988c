//! HyperLogLog values (Redis's `hyperloglog.c` format), kept as plain
//! string bytes so GET/SET/APPEND/SETRANGE see exactly what Redis stores.
//!
//! Layout (all multi-byte fields little endian):
//!
//! ```text
//! "HYLL" | encoding (0 dense, 1 sparse) | 3 unused bytes | cached card (8 bytes)
//! | registers
//! ```
//!
//! The top bit of the last cardinality byte marks the cache as stale.
//! Dense: 16384 registers of 6 bits, packed from the least significant bit
//! of each byte upwards (12288 bytes). Sparse: a run-length sequence of
//! opcodes covering all 16384 registers:
//! - `00xxxxxx`          ZERO: xxxxxx+1 registers (1..64) at 0
//! - `01xxxxxx yyyyyyyy` XZERO: 14-bit length+1 (1..16384) registers at 0
//! - `1vvvvvxx`          VAL: xx+1 registers (1..4) at value vvvvv+1 (1..32)
//!
//! A sparse value is promoted to dense when a register needs a value above
//! 32 or when an update would make it longer than `hll-sparse-max-bytes`.
//! The update and merge rules follow Redis's so the bytes stay identical.

/// Header size: magic, encoding, 3 unused bytes, cached cardinality.
pub const HDR: usize = 16;
/// Register index bits.
pub const P: u32 = 14;
/// Hash bits used for the run of zeroes.
pub const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const BITS: usize = 6;
const REG_MAX: u32 = (1 << BITS) - 1;
/// Size of a dense value, header included.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;
/// 0.5 / ln(2)
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
/// Redis's seed for element hashing.
pub const SEED: u64 = 0xadc8_3b19;

/// Error text for a string that is not an HLL.
pub const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Error text for a corrupted sparse encoding.
pub const ERR_INVALID: &str = "INVALIDOBJ Corrupted HLL object detected";

/// 64-bit MurmurHash2 (MurmurHash64A), reading 8-byte blocks little endian
/// as Redis does on every architecture.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the length of its `0..01` pattern
/// (1..=Q+1).
#[inline]
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & P_MASK) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HLL in the sparse encoding (one XZERO covering everything).
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut v, n);
        left -= n;
    }
    v
}

/// Whether bytes look like an HLL (Redis's `isHLLObjectOrReply` checks:
/// magic, known encoding, exact dense length). Sparse opcodes are checked
/// separately by [`sparse_valid`].
pub fn is_hll(b: &[u8]) -> bool {
    b.len() >= HDR
        && &b[..4] == b"HYLL"
        && b[4] <= SPARSE
        && (b[4] != DENSE || b.len() == DENSE_SIZE)
}

pub fn encoding(b: &[u8]) -> u8 {
    b[4]
}

/// The cached cardinality, if it is valid.
pub fn cached(b: &[u8]) -> Option<u64> {
    if b[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes(b[8..16].try_into().unwrap()))
}

pub fn set_cached(b: &mut [u8], card: u64) {
    b[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(b: &mut [u8]) {
    b[15] |= 0x80;
}

/// Reads dense register `i` (`regs` starts after the header).
#[inline]
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX) as u8
}

/// Writes dense register `i` (`val` < 64).
#[inline]
pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = val as u32;
    regs[byte] &= !(REG_MAX << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if byte + 1 < regs.len() {
        let fb8 = 8 - fb;
        regs[byte + 1] &= !(REG_MAX >> fb8) as u8;
        regs[byte + 1] |= (v >> fb8) as u8;
    }
}

/// Raises dense register `i` to `count`; true if it changed.
#[inline]
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

/// Calls `f(register value)` for the 16384 dense registers, in order.
#[inline]
fn dense_for_each(regs: &[u8], mut f: impl FnMut(usize, u8)) {
    // Three bytes hold exactly four registers.
    for (k, c) in regs.chunks_exact(3).enumerate() {
        let (b0, b1, b2) = (c[0], c[1], c[2]);
        let i = k * 4;
        f(i, b0 & 63);
        f(i + 1, ((b0 >> 6) | (b1 << 2)) & 63);
        f(i + 2, ((b1 >> 4) | (b2 << 4)) & 63);
        f(i + 3, b2 >> 2);
    }
}

/// One decoded sparse opcode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// `n` registers at zero (ZERO or XZERO).
    Zero { n: usize, x: bool },
    /// `n` registers at `v`.
    Val { v: u8, n: usize },
}

impl Op {
    fn span(&self) -> usize {
        match *self {
            Op::Zero { n, .. } | Op::Val { n, .. } => n,
        }
    }
}

/// Decodes the opcode at `ops[i]`; returns it and its byte length, or
/// None for a truncated XZERO.
#[inline]
fn decode_op(ops: &[u8], i: usize) -> Option<(Op, usize)> {
    let b = ops[i];
    Some(if b & 0xc0 == 0 {
        (
            Op::Zero {
                n: (b & 0x3f) as usize + 1,
                x: false,
            },
            1,
        )
    } else if b & 0xc0 == 0x40 {
        let lo = *ops.get(i + 1)? as usize;
        (
            Op::Zero {
                n: ((((b & 0x3f) as usize) << 8) | lo) + 1,
                x: true,
            },
            2,
        )
    } else {
        (
            Op::Val {
                v: ((b >> 2) & 0x1f) + 1,
                n: (b & 3) as usize + 1,
            },
            1,
        )
    })
}

#[inline]
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

#[inline]
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}

fn val_byte(v: u8, n: usize) -> u8 {
    0x80 | ((v - 1) << 2) | (n as u8 - 1)
}

fn push_xzero(out: &mut Vec<u8>, n: usize) {
    let l = n - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// Appends the shortest zero-run opcode for `n` registers (n <= 16384).
fn push_zero_run(out: &mut Vec<u8>, n: usize) {
    if n > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, n);
    } else {
        out.push((n - 1) as u8);
    }
}

/// Decodes every opcode of a sparse value (`b` includes the header), or
/// None when the opcodes do not cover exactly 16384 registers.
pub fn sparse_ops(b: &[u8]) -> Option<Vec<Op>> {
    let ops = &b[HDR..];
    let mut out = Vec::new();
    let mut idx = 0usize;
    let mut i = 0;
    while i < ops.len() {
        let (op, len) = decode_op(ops, i)?;
        idx += op.span();
        if idx > REGISTERS {
            return None;
        }
        out.push(op);
        i += len;
    }
    (idx == REGISTERS).then_some(out)
}

/// Whether the sparse opcodes cover exactly the 16384 registers.
pub fn sparse_valid(b: &[u8]) -> bool {
    let ops = &b[HDR..];
    let mut idx = 0usize;
    let mut i = 0;
    while i < ops.len() {
        let Some((op, len)) = decode_op(ops, i) else {
            return false;
        };
        idx += op.span();
        if idx > REGISTERS {
            return false;
        }
        i += len;
    }
    idx == REGISTERS
}

/// Whether an HLL (already accepted by [`is_hll`]) can be used.
pub fn valid(b: &[u8]) -> bool {
    encoding(b) == DENSE || sparse_valid(b)
}

/// The dense form of a sparse value (header copied, encoding changed), or
/// None if the sparse opcodes are invalid.
pub fn sparse_to_dense(b: &[u8]) -> Option<Vec<u8>> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&b[..HDR]);
    d[4] = DENSE;
    let regs = &mut d[HDR..];
    let ops = &b[HDR..];
    let mut idx = 0usize;
    let mut i = 0;
    while i < ops.len() {
        let (op, len) = decode_op(ops, i)?;
        match op {
            Op::Zero { n, .. } => idx += n,
            Op::Val { v, n } => {
                if idx + n > REGISTERS {
                    return None;
                }
                for r in idx..idx + n {
                    dense_set(regs, r, v);
                }
                idx += n;
            }
        }
        i += len;
    }
    (idx == REGISTERS).then_some(d)
}

/// Converts `v` to dense in place; false if its sparse form is invalid.
pub fn promote(v: &mut Vec<u8>) -> bool {
    if encoding(v) == DENSE {
        return true;
    }
    match sparse_to_dense(v) {
        Some(d) => {
            *v = d;
            true
        }
        None => false,
    }
}

/// Raises register `index` of a sparse value to `count`, promoting to
/// dense when needed. Ok(true) if the value changed; Err on a corrupted
/// encoding.
pub fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, ()> {
    if count > SPARSE_VAL_MAX_VALUE {
        return promote_and_set(v, index, count);
    }
    // Step 1: find the opcode covering `index`.
    let end = v.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let (op, oplen) = loop {
        if p >= end {
            return Err(());
        }
        let (op, len) = decode_op(v, p).ok_or(())?;
        if index < first + op.span() {
            break (op, len);
        }
        prev = Some(p);
        p += len;
        first += op.span();
    };
    let span = op.span();
    let mut changed_in_place = false;
    // Step 2: trivial in-place cases.
    match op {
        Op::Val { v: old, n } => {
            if old >= count {
                return Ok(false);
            }
            if n == 1 {
                v[p] = val_byte(count, 1);
                changed_in_place = true;
            }
        }
        Op::Zero { n: 1, x: false } => {
            v[p] = val_byte(count, 1);
            changed_in_place = true;
        }
        _ => {}
    }
    if !changed_in_place {
        // Step 3: split the opcode into up to three.
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        match op {
            Op::Zero { .. } => {
                if index != first {
                    push_zero_run(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zero_run(&mut seq, last - index);
                }
            }
            Op::Val { v: cur, .. } => {
                if index != first {
                    seq.push(val_byte(cur, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(cur, last - index));
                }
            }
        }
        if seq.len() > oplen && v.len() + seq.len() - oplen > max_bytes {
            return promote_and_set(v, index, count);
        }
        if seq.len() > oplen && v.capacity() < v.len() + 3 {
            // Grow greedily, like Redis, but never past the sparse limit.
            let want = v.len() + 3;
            let target = (want + want.min(300)).min(max_bytes.max(want));
            v.reserve_exact(target - v.len());
        }
        v.splice(p..p + oplen, seq);
    }
    // Step 4: merge adjacent VAL opcodes with equal values, scanning at
    // most five opcodes from the one before the change.
    let mut q = prev.unwrap_or(HDR);
    let mut scan = 5;
    while q < v.len() && scan > 0 {
        scan -= 1;
        let b = v[q];
        if is_xzero(b) {
            q += 2;
            continue;
        }
        if !is_val(b) {
            q += 1;
            continue;
        }
        if q + 1 < v.len() && is_val(v[q + 1]) {
            let v1 = ((b >> 2) & 0x1f) + 1;
            let v2 = ((v[q + 1] >> 2) & 0x1f) + 1;
            if v1 == v2 {
                let len = (b & 3) as usize + 1 + (v[q + 1] & 3) as usize + 1;
                if len <= SPARSE_VAL_MAX_LEN {
                    v[q + 1] = val_byte(v1, len);
                    v.remove(q);
                    continue;
                }
            }
        }
        q += 1;
    }
    invalidate(v);
    Ok(true)
}

fn promote_and_set(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, ()> {
    if !promote(v) {
        return Err(());
    }
    dense_raise(&mut v[HDR..], index, count);
    Ok(true)
}

/// Raises register `index` to at least `count` in either encoding.
pub fn set_register(
    v: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, ()> {
    match encoding(v) {
        DENSE => Ok(dense_raise(&mut v[HDR..], index, count)),
        _ => sparse_set(v, index, count, max_bytes),
    }
}

/// Adds an element; Ok(true) if a register changed (the caller
/// invalidates the cache once for the whole command).
pub fn add(v: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, ()> {
    let (index, count) = pat_len(ele);
    set_register(v, index, count, max_bytes)
}

/// The register-value histogram of a value, or None if corrupted.
pub fn histogram(b: &[u8]) -> Option<[u32; 64]> {
    let mut h = [0u32; 64];
    if encoding(b) == DENSE {
        dense_for_each(&b[HDR..], |_, r| h[r as usize] += 1);
    } else {
        let ops = &b[HDR..];
        let mut idx = 0usize;
        let mut i = 0;
        while i < ops.len() {
            let (op, len) = decode_op(ops, i)?;
            match op {
                Op::Zero { n, .. } => h[0] += n as u32,
                Op::Val { v, n } => h[v as usize] += n as u32,
            }
            idx += op.span();
            i += len;
        }
        if idx != REGISTERS {
            return None;
        }
    }
    Some(h)
}

/// Histogram of plain one-byte registers (multi-key PFCOUNT).
pub fn raw_histogram(regs: &[u8; REGISTERS]) -> [u32; 64] {
    let mut h = [0u32; 64];
    for w in regs.chunks_exact(8) {
        if u64::from_ne_bytes(w.try_into().unwrap()) == 0 {
            h[0] += 8;
        } else {
            for &r in w {
                h[(r & 63) as usize] += 1;
            }
        }
    }
    h
}

/// Ertl's sigma function.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

/// Ertl's tau function.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        // powf (libm's pow), as Redis computes it.
        z -= (1.0 - x).powf(2.0) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// Ertl's improved estimator over a register histogram (as Redis 7.2).
pub fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - h[q + 1] as f64) / m);
    for j in (1..=q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimated cardinality of a value, or None if corrupted.
pub fn count(b: &[u8]) -> Option<u64> {
    histogram(b).map(|h| estimate(&h))
}

/// `max[i] = max(max[i], register i)`; Err if the sparse form is corrupted.
pub fn merge_into(max: &mut [u8; REGISTERS], b: &[u8]) -> Result<(), ()> {
    if encoding(b) == DENSE {
        dense_for_each(&b[HDR..], |i, r| {
            if r > max[i] {
                max[i] = r;
            }
        });
        return Ok(());
    }
    let ops = &b[HDR..];
    let mut idx = 0usize;
    let mut i = 0;
    while i < ops.len() {
        let (op, len) = decode_op(ops, i).ok_or(())?;
        match op {
            Op::Zero { n, .. } => idx += n,
            Op::Val { v, n } => {
                if idx + n > REGISTERS {
                    return Err(());
                }
                for m in &mut max[idx..idx + n] {
                    if v > *m {
                        *m = v;
                    }
                }
                idx += n;
            }
        }
        i += len;
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(())
    }
}

/// All 16384 register values of a valid value.
pub fn registers(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = [0u8; REGISTERS];
    if encoding(b) == DENSE {
        dense_for_each(&b[HDR..], |i, r| out[i] = r);
    } else {
        merge_into(&mut out, b).ok()?;
    }
    Some(out.to_vec())
}

/// PFDEBUG DECODE's text for a sparse value: `z:N`, `Z:N`, `v:V,N`.
pub fn decode_text(b: &[u8]) -> String {
    let ops = &b[HDR..];
    let mut out = String::new();
    let mut i = 0;
    while i < ops.len() {
        let byte = ops[i];
        if byte & 0xc0 == 0 {
            out.push_str(&format!("z:{} ", (byte & 0x3f) as usize + 1));
            i += 1;
        } else if byte & 0xc0 == 0x40 {
            let lo = ops.get(i + 1).copied().unwrap_or(0) as usize;
            out.push_str(&format!(
                "Z:{} ",
                ((((byte & 0x3f) as usize) << 8) | lo) + 1
            ));
            i += 2;
        } else {
            out.push_str(&format!(
                "v:{},{} ",
                ((byte >> 2) & 0x1f) + 1,
                (byte & 3) + 1
            ));
            i += 1;
        }
    }
    out.trim_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn murmur_known_values() {
        // Stable across runs and architectures; tail and block paths.
        assert_eq!(murmur64a(b"", SEED), murmur64a(b"", SEED));
        assert_ne!(murmur64a(b"a", SEED), murmur64a(b"b", SEED));
        assert_ne!(murmur64a(b"abcdefgh", SEED), murmur64a(b"abcdefgi", SEED));
        let (i, c) = pat_len(b"hello");
        assert!(i < REGISTERS && (1..=51).contains(&c));
    }

    #[test]
    fn same_registers_as_redis() {
        // Decoded from redis-server 7.x after the same PFADDs.
        let mut v = new_sparse();
        for e in [&b"a"[..], b"b", b"c"] {
            add(&mut v, e, 3000).unwrap();
        }
        assert_eq!(
            decode_text(&v),
            "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
        );
        let mut v = new_sparse();
        for e in [&b"hello"[..], b"world", b"0123456789abcdef"] {
            add(&mut v, e, 3000).unwrap();
        }
        assert_eq!(
            decode_text(&v),
            "Z:2742 v:3,1 Z:3206 v:1,1 Z:3266 v:1,1 Z:7167"
        );
        assert_eq!(count(&v), Some(3));
    }

    #[test]
    fn empty_sparse_layout() {
        let v = new_sparse();
        assert_eq!(v.len(), 18);
        assert_eq!(&v[..5], b"HYLL\x01");
        assert_eq!(&v[16..], &[0x7f, 0xff]);
        assert!(is_hll(&v) && sparse_valid(&v));
        assert_eq!(count(&v), Some(0));
        assert_eq!(decode_text(&v), "Z:16384");
    }

    #[test]
    fn sparse_example_from_the_format_description() {
        // Registers 1000 = 2, 1020 = 3, 1021 = 3.
        let mut v = new_sparse();
        sparse_set(&mut v, 1000, 2, 3000).unwrap();
        sparse_set(&mut v, 1020, 3, 3000).unwrap();
        sparse_set(&mut v, 1021, 3, 3000).unwrap();
        assert_eq!(decode_text(&v), "Z:1000 v:2,1 z:19 v:3,2 Z:15362");
        assert_eq!(v.len(), HDR + 7);
        assert!(cached(&v).is_none());
    }

    #[test]
    fn dense_registers_roundtrip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        let mut model = vec![0u8; REGISTERS];
        let mut x = 12345u64;
        for _ in 0..3 {
            for i in 0..REGISTERS {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = (x >> 58) as u8;
                model[i] = r;
                dense_set(&mut regs, i, r);
            }
            for i in 0..REGISTERS {
                assert_eq!(dense_get(&regs, i), model[i]);
            }
            let mut seen = vec![0u8; REGISTERS];
            dense_for_each(&regs, |i, r| seen[i] = r);
            assert_eq!(seen, model);
        }
    }

    #[test]
    fn promotion_on_big_value_and_length() {
        let mut v = new_sparse();
        sparse_set(&mut v, 5, 33, 3000).unwrap();
        assert_eq!(encoding(&v), DENSE);
        assert_eq!(v.len(), DENSE_SIZE);
        assert_eq!(dense_get(&v[HDR..], 5), 33);
        let mut v = new_sparse();
        let mut i = 0;
        while encoding(&v) == SPARSE {
            sparse_set(&mut v, i, 1 + (i % 7) as u8, 100).unwrap();
            assert!(encoding(&v) == DENSE || v.len() <= 100);
            i += 3;
        }
        for j in (0..i).step_by(3) {
            assert_eq!(dense_get(&v[HDR..], j), 1 + (j % 7) as u8);
        }
    }

    #[test]
    fn corrupted_values_are_detected() {
        let mut v = new_sparse();
        for e in [&b"a"[..], b"b", b"c"] {
            add(&mut v, e, 3000).unwrap();
        }
        let mut bad = v.clone();
        bad.extend_from_slice(b"hello");
        assert!(is_hll(&bad) && !sparse_valid(&bad));
        assert!(count(&bad).is_none());
        assert!(sparse_to_dense(&bad).is_none());
        let mut m = [0u8; REGISTERS];
        assert!(merge_into(&mut m, &bad).is_err());
        let mut short = v.clone();
        short.pop();
        assert!(!sparse_valid(&short));
        let mut bad_magic = v.clone();
        bad_magic[0] = b'0';
        assert!(!is_hll(&bad_magic));
        let mut dense_len = v.clone();
        dense_len[4] = DENSE;
        assert!(!is_hll(&dense_len));
        // Every single-byte corruption either validates or is rejected,
        // never panics.
        for pos in HDR..v.len() {
            for b in 0..=255u8 {
                let mut c = v.clone();
                c[pos] = b;
                if sparse_valid(&c) {
                    let n = count(&c).unwrap();
                    let d = sparse_to_dense(&c).unwrap();
                    assert_eq!(count(&d), Some(n));
                    add(&mut c, b"x", 3000).unwrap();
                } else {
                    assert!(count(&c).is_none());
                }
            }
        }
    }

    #[test]
    fn estimates_are_close() {
        let mut s = new_sparse();
        let mut d = sparse_to_dense(&s).unwrap();
        let mut checkpoint = 1u64;
        for j in 1..=200_000u64 {
            let ele = j.to_le_bytes();
            add(&mut s, &ele, 3000).unwrap();
            add(&mut d, &ele, 3000).unwrap();
            if j == checkpoint {
                let (cs, cd) = (count(&s).unwrap(), count(&d).unwrap());
                assert_eq!(cs, cd);
                let err = (cd as f64 - j as f64).abs();
                assert!(
                    err <= (1.04 / 128.0 * 6.0 * j as f64).ceil().max(1.0),
                    "{j} {cd}"
                );
                checkpoint *= 10;
            }
        }
        assert_eq!(encoding(&s), DENSE);
        assert_eq!(s[HDR..], d[HDR..]);
    }

    proptest! {
        /// Sparse updates (with promotions at various limits) always agree
        /// with a plain register array, stay valid and canonical enough.
        #[test]
        fn sparse_matches_model(
            sets in proptest::collection::vec((0usize..REGISTERS, 1u8..=40), 0..300),
            local in proptest::collection::vec((0usize..64, 1u8..=8), 0..60),
            max_bytes in prop_oneof![Just(40usize), Just(300), Just(3000)],
        ) {
            let mut v = new_sparse();
            let mut model = vec![0u8; REGISTERS];
            let all = sets.iter().copied().chain(local.iter().copied());
            for (i, c) in all {
                let before = model[i];
                let changed = set_register(&mut v, i, c, max_bytes).unwrap();
                model[i] = model[i].max(c);
                prop_assert_eq!(changed, model[i] != before);
                prop_assert!(is_hll(&v) && valid(&v));
                if encoding(&v) == SPARSE {
                    prop_assert!(v.len() <= max_bytes.max(HDR + 2));
                    prop_assert!(model.iter().all(|&r| r <= 32));
                }
                prop_assert_eq!(registers(&v).unwrap(), model.clone());
            }
            let mut h = [0u32; 64];
            for &r in &model { h[r as usize] += 1; }
            prop_assert_eq!(count(&v), Some(estimate(&h)));
            if encoding(&v) == SPARSE {
                let d = sparse_to_dense(&v).unwrap();
                prop_assert_eq!(registers(&d).unwrap(), model.clone());
                prop_assert_eq!(count(&d), count(&v));
            }
        }

        /// Merging gives register-wise maxima whatever the encodings.
        #[test]
        fn merge_matches_model(
            a in proptest::collection::vec((0usize..REGISTERS, 1u8..=51), 0..200),
            b in proptest::collection::vec((0usize..REGISTERS, 1u8..=51), 0..200),
        ) {
            let mut x = new_sparse();
            let mut y = new_sparse();
            let mut model = [0u8; REGISTERS];
            for &(i, c) in &a { set_register(&mut x, i, c, 3000).unwrap(); model[i] = model[i].max(c); }
            for &(i, c) in &b { set_register(&mut y, i, c, 3000).unwrap(); model[i] = model[i].max(c); }
            let mut m = [0u8; REGISTERS];
            merge_into(&mut m, &x).unwrap();
            merge_into(&mut m, &y).unwrap();
            prop_assert_eq!(&m[..], &model[..]);
            prop_assert_eq!(estimate(&raw_histogram(&m)), {
                let mut h = [0u32; 64];
                for &r in model.iter() { h[r as usize] += 1; }
                estimate(&h)
            });
        }
    }
}
