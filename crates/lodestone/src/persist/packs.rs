//! Redis's compact byte formats, as they appear inside RDB files and DUMP
//! payloads: listpack, ziplist (read only), intset and zipmap (read only).
//!
//! These are Redis's exact layouts (Redis loads what we write), independent
//! of our in-memory encodings. Every decoder is bounds-checked: a malformed
//! blob is an `Err`, never a panic, and never allocates more than the blob's
//! own size suggests.

/// A decoded listpack/ziplist element: an integer or a byte string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Int(i64),
    Str(Vec<u8>),
}

impl Item {
    /// The element as bytes (integers formatted in decimal).
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Item::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
            Item::Str(s) => s,
        }
    }

    /// The element as an integer, if it is one or a canonical decimal string.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Item::Int(n) => Some(*n),
            Item::Str(s) => strutil::parse_i64(s),
        }
    }
}

/// Why a blob was rejected.
pub type PackResult<T> = Result<T, &'static str>;

// ---------------------------------------------------------------- listpack

/// Builds a listpack exactly as Redis's `lpAppend` does.
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        ListpackWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }

    /// Appends a string, integer-encoded when it is a canonical integer
    /// (Redis's `lpStringToInt64`).
    pub fn push(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(n) = strutil::parse_i64(s) {
                return self.push_int(n);
            }
        }
        let start = self.buf.len();
        let l = s.len();
        if l < 64 {
            self.buf.push(0x80 | l as u8);
        } else if l < 4096 {
            self.buf.push(0xE0 | (l >> 8) as u8);
            self.buf.push(l as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(l as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        self.finish_entry(start);
    }

    /// Appends an integer in the smallest encoding.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u16;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8388608..=8388607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self.finish_entry(start);
    }

    fn finish_entry(&mut self, start: usize) {
        let l = self.buf.len() - start;
        encode_backlen(&mut self.buf, l);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// The finished listpack: header (total bytes, count) + entries + 0xFF.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xFF);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = if self.count < 65535 {
            self.count as u16
        } else {
            65535
        };
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

fn encode_backlen(buf: &mut Vec<u8>, l: usize) {
    if l <= 127 {
        buf.push(l as u8);
    } else if l < 16383 {
        buf.push((l >> 7) as u8);
        buf.push((l & 127) as u8 | 128);
    } else if l < 2097151 {
        buf.push((l >> 14) as u8);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    } else if l < 268435455 {
        buf.push((l >> 21) as u8);
        buf.push(((l >> 14) & 127) as u8 | 128);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    } else {
        buf.push((l >> 28) as u8);
        buf.push(((l >> 21) & 127) as u8 | 128);
        buf.push(((l >> 14) & 127) as u8 | 128);
        buf.push(((l >> 7) & 127) as u8 | 128);
        buf.push((l & 127) as u8 | 128);
    }
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn take(b: &[u8], pos: usize, n: usize) -> PackResult<&[u8]> {
    let end = pos.checked_add(n).ok_or("length overflow")?;
    b.get(pos..end).ok_or("entry past the end")
}

/// Decodes every element of a listpack. With `deep`, also checks the
/// back-lengths and the header count (sanitize-dump-payload yes); the
/// total-bytes header and the terminator are always checked.
pub fn listpack_decode(lp: &[u8], deep: bool) -> PackResult<Vec<Item>> {
    let mut out = Vec::new();
    listpack_each(lp, deep, |it| {
        out.push(it);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` on each element of a listpack (see [`listpack_decode`]).
pub fn listpack_each(
    lp: &[u8],
    deep: bool,
    mut f: impl FnMut(Item) -> PackResult<()>,
) -> PackResult<usize> {
    if lp.len() < 7 {
        return Err("listpack too short");
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().unwrap()) as usize;
    if total != lp.len() {
        return Err("listpack total bytes mismatch");
    }
    let hdr_count = u16::from_le_bytes(lp[4..6].try_into().unwrap()) as usize;
    if lp[lp.len() - 1] != 0xFF {
        return Err("listpack without terminator");
    }
    let end = lp.len() - 1;
    let mut pos = 6;
    let mut n = 0usize;
    while pos < end {
        let start = pos;
        let b = lp[pos];
        let item = if b & 0x80 == 0 {
            pos += 1;
            Item::Int((b & 0x7f) as i64)
        } else if b & 0xC0 == 0x80 {
            let l = (b & 0x3f) as usize;
            let s = take(lp, pos + 1, l)?;
            pos += 1 + l;
            Item::Str(s.to_vec())
        } else if b & 0xE0 == 0xC0 {
            let s = take(lp, pos, 2)?;
            let u = (((s[0] & 0x1f) as u16) << 8) | s[1] as u16;
            pos += 2;
            // 13-bit two's complement.
            let v = if u >= 1 << 12 {
                u as i64 - (1 << 13)
            } else {
                u as i64
            };
            Item::Int(v)
        } else if b & 0xF0 == 0xE0 {
            let s = take(lp, pos, 2)?;
            let l = (((s[0] & 0x0f) as usize) << 8) | s[1] as usize;
            let s = take(lp, pos + 2, l)?;
            pos += 2 + l;
            Item::Str(s.to_vec())
        } else {
            match b {
                0xF0 => {
                    let h = take(lp, pos + 1, 4)?;
                    let l = u32::from_le_bytes(h.try_into().unwrap()) as usize;
                    let s = take(lp, pos + 5, l)?;
                    pos += 5 + l;
                    Item::Str(s.to_vec())
                }
                0xF1 => {
                    let s = take(lp, pos + 1, 2)?;
                    pos += 3;
                    Item::Int(i16::from_le_bytes(s.try_into().unwrap()) as i64)
                }
                0xF2 => {
                    let s = take(lp, pos + 1, 3)?;
                    pos += 4;
                    let v = (s[0] as i32) | ((s[1] as i32) << 8) | ((s[2] as i8 as i32) << 16);
                    Item::Int(v as i64)
                }
                0xF3 => {
                    let s = take(lp, pos + 1, 4)?;
                    pos += 5;
                    Item::Int(i32::from_le_bytes(s.try_into().unwrap()) as i64)
                }
                0xF4 => {
                    let s = take(lp, pos + 1, 8)?;
                    pos += 9;
                    Item::Int(i64::from_le_bytes(s.try_into().unwrap()))
                }
                _ => return Err("invalid listpack encoding byte"),
            }
        };
        let l = pos - start;
        let bl = backlen_size(l);
        let back = take(lp, pos, bl)?;
        if deep {
            let mut want = Vec::with_capacity(5);
            encode_backlen(&mut want, l);
            if want != back {
                return Err("listpack back-length mismatch");
            }
        }
        pos += bl;
        if pos > end {
            return Err("listpack entry overruns the terminator");
        }
        f(item)?;
        n += 1;
    }
    if deep && hdr_count != 65535 && hdr_count != n {
        return Err("listpack count mismatch");
    }
    Ok(n)
}

// ----------------------------------------------------------------- ziplist

/// Decodes a ziplist (RDB types 10-13 and quicklist v1 nodes).
pub fn ziplist_decode(zl: &[u8], deep: bool) -> PackResult<Vec<Item>> {
    if zl.len() < 11 {
        return Err("ziplist too short");
    }
    let total = u32::from_le_bytes(zl[0..4].try_into().unwrap()) as usize;
    if total != zl.len() {
        return Err("ziplist total bytes mismatch");
    }
    let tail = u32::from_le_bytes(zl[4..8].try_into().unwrap()) as usize;
    let hdr_count = u16::from_le_bytes(zl[8..10].try_into().unwrap()) as usize;
    if zl[zl.len() - 1] != 0xFF {
        return Err("ziplist without terminator");
    }
    let end = zl.len() - 1;
    let mut pos = 10;
    let mut out = Vec::new();
    let mut prev_len = 0usize;
    let mut last_start = 10;
    while pos < end {
        let start = pos;
        // prevlen
        let p = zl[pos];
        let plen = if p < 254 {
            pos += 1;
            p as usize
        } else if p == 254 {
            let s = take(zl, pos + 1, 4)?;
            pos += 5;
            u32::from_le_bytes(s.try_into().unwrap()) as usize
        } else {
            return Err("invalid ziplist prevlen");
        };
        if deep && plen != prev_len {
            return Err("ziplist prevlen mismatch");
        }
        let e = *zl.get(pos).ok_or("ziplist entry past the end")?;
        let item = match e >> 6 {
            0 => {
                let l = (e & 0x3f) as usize;
                let s = take(zl, pos + 1, l)?;
                pos += 1 + l;
                Item::Str(s.to_vec())
            }
            1 => {
                let h = take(zl, pos, 2)?;
                let l = (((h[0] & 0x3f) as usize) << 8) | h[1] as usize;
                let s = take(zl, pos + 2, l)?;
                pos += 2 + l;
                Item::Str(s.to_vec())
            }
            2 => {
                if e != 0x80 {
                    return Err("invalid ziplist string encoding");
                }
                let h = take(zl, pos + 1, 4)?;
                let l = u32::from_be_bytes(h.try_into().unwrap()) as usize;
                let s = take(zl, pos + 5, l)?;
                pos += 5 + l;
                Item::Str(s.to_vec())
            }
            _ => match e {
                0xC0 => {
                    let s = take(zl, pos + 1, 2)?;
                    pos += 3;
                    Item::Int(i16::from_le_bytes(s.try_into().unwrap()) as i64)
                }
                0xD0 => {
                    let s = take(zl, pos + 1, 4)?;
                    pos += 5;
                    Item::Int(i32::from_le_bytes(s.try_into().unwrap()) as i64)
                }
                0xE0 => {
                    let s = take(zl, pos + 1, 8)?;
                    pos += 9;
                    Item::Int(i64::from_le_bytes(s.try_into().unwrap()))
                }
                0xF0 => {
                    let s = take(zl, pos + 1, 3)?;
                    pos += 4;
                    let v = (s[0] as i32) | ((s[1] as i32) << 8) | ((s[2] as i8 as i32) << 16);
                    Item::Int(v as i64)
                }
                0xFE => {
                    let s = take(zl, pos + 1, 1)?;
                    pos += 2;
                    Item::Int(s[0] as i8 as i64)
                }
                0xF1..=0xFD => {
                    pos += 1;
                    Item::Int((e & 0x0f) as i64 - 1)
                }
                _ => return Err("invalid ziplist encoding byte"),
            },
        };
        if pos > end {
            return Err("ziplist entry overruns the terminator");
        }
        prev_len = pos - start;
        last_start = start;
        out.push(item);
    }
    if deep {
        if hdr_count != 65535 && hdr_count != out.len() {
            return Err("ziplist count mismatch");
        }
        if !out.is_empty() && tail != last_start {
            return Err("ziplist tail offset mismatch");
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ intset

/// Encodes sorted distinct integers as an intset blob.
pub fn intset_encode(sorted: &[i64]) -> Vec<u8> {
    let (min, max) = (
        sorted.first().copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
    );
    let width: usize = if min >= i16::MIN as i64 && max <= i16::MAX as i64 {
        2
    } else if min >= i32::MIN as i64 && max <= i32::MAX as i64 {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * sorted.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &v in sorted {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

/// Decodes an intset blob, checking its encoding, length and (with `deep`)
/// that the values are strictly ascending.
pub fn intset_decode(b: &[u8], deep: bool) -> PackResult<Vec<i64>> {
    if b.len() < 8 {
        return Err("intset too short");
    }
    let width = u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize;
    let n = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err("invalid intset encoding");
    }
    if n.checked_mul(width).and_then(|x| x.checked_add(8)) != Some(b.len()) {
        return Err("intset length mismatch");
    }
    if n == 0 {
        return Err("empty intset");
    }
    let mut out = Vec::with_capacity(n);
    for c in b[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes(c.try_into().unwrap()) as i64,
            4 => i32::from_le_bytes(c.try_into().unwrap()) as i64,
            _ => i64::from_le_bytes(c.try_into().unwrap()),
        };
        if deep && out.last().is_some_and(|&p| p >= v) {
            return Err("intset not sorted");
        }
        out.push(v);
    }
    Ok(out)
}

// ------------------------------------------------------------------ zipmap

/// Decodes a zipmap (RDB type 9, Redis < 2.6) into (field, value) pairs.
pub fn zipmap_decode(b: &[u8]) -> PackResult<Vec<(Vec<u8>, Vec<u8>)>> {
    if b.len() < 2 {
        return Err("zipmap too short");
    }
    let mut pos = 1;
    let mut out = Vec::new();
    let read_len = |pos: &mut usize| -> PackResult<Option<usize>> {
        let f = *b.get(*pos).ok_or("zipmap past the end")?;
        match f {
            0xFF => Ok(None),
            254 => {
                let s = take(b, *pos + 1, 4)?;
                *pos += 5;
                Ok(Some(u32::from_le_bytes(s.try_into().unwrap()) as usize))
            }
            253 => Err("invalid zipmap length"),
            l => {
                *pos += 1;
                Ok(Some(l as usize))
            }
        }
    };
    while let Some(kl) = read_len(&mut pos)? {
        let k = take(b, pos, kl)?.to_vec();
        pos += kl;
        let vl = read_len(&mut pos)?.ok_or("zipmap field without value")?;
        let free = *b.get(pos).ok_or("zipmap past the end")? as usize;
        pos += 1;
        let v = take(b, pos, vl)?.to_vec();
        pos += vl + free;
        out.push((k, v));
    }
    if pos != b.len() - 1 {
        return Err("zipmap trailing bytes");
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a ziplist the way Redis 6 did (tests of the loader).
    pub fn ziplist_encode(items: &[Item]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut prev = 0usize;
        let mut last = 10usize;
        for it in items {
            let start = body.len();
            last = 10 + start;
            if prev < 254 {
                body.push(prev as u8);
            } else {
                body.push(254);
                body.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match it {
                Item::Int(v) => {
                    let v = *v;
                    if (0..=12).contains(&v) {
                        body.push(0xF1 + v as u8);
                    } else if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
                        body.push(0xFE);
                        body.push(v as i8 as u8);
                    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
                        body.push(0xC0);
                        body.extend_from_slice(&(v as i16).to_le_bytes());
                    } else if (-8388608..=8388607).contains(&v) {
                        body.push(0xF0);
                        body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                        body.push(0xD0);
                        body.extend_from_slice(&(v as i32).to_le_bytes());
                    } else {
                        body.push(0xE0);
                        body.extend_from_slice(&v.to_le_bytes());
                    }
                }
                Item::Str(s) => {
                    let l = s.len();
                    if l < 64 {
                        body.push(l as u8);
                    } else if l < 16384 {
                        body.push(0x40 | (l >> 8) as u8);
                        body.push(l as u8);
                    } else {
                        body.push(0x80);
                        body.extend_from_slice(&(l as u32).to_be_bytes());
                    }
                    body.extend_from_slice(s);
                }
            }
            prev = body.len() - start;
        }
        let mut out = Vec::new();
        let total = 10 + body.len() + 1;
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(last as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(0xFF);
        out
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            any::<i64>().prop_map(Item::Int),
            (-5000i64..5000).prop_map(Item::Int),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(|v| {
                match strutil::parse_i64(&v) {
                    Some(n) if v.len() <= 20 => Item::Int(n),
                    _ => Item::Str(v),
                }
            }),
        ]
    }

    #[test]
    fn listpack_matches_redis_bytes() {
        // The listpack layout (lpAppend) of a, 1, -1, 1000 and "".
        let mut w = ListpackWriter::new();
        for s in [&b"a"[..], b"1", b"-1", b"1000", b""] {
            w.push(s);
        }
        let lp = w.finish();
        assert_eq!(
            lp,
            vec![
                0x14, 0, 0, 0, 5, 0, 0x81, b'a', 2, 0x01, 1, 0xDF, 0xFF, 2, 0xC3, 0xE8, 2, 0x80, 1,
                0xFF
            ]
        );
        assert_eq!(
            listpack_decode(&lp, true).unwrap(),
            vec![
                Item::Str(b"a".to_vec()),
                Item::Int(1),
                Item::Int(-1),
                Item::Int(1000),
                Item::Str(vec![])
            ]
        );
    }

    proptest! {
        #[test]
        fn listpack_round_trip(items in proptest::collection::vec(item(), 0..40)) {
            let mut w = ListpackWriter::new();
            for it in &items {
                match it { Item::Int(n) => w.push_int(*n), Item::Str(s) => w.push(s) }
            }
            let lp = w.finish();
            prop_assert_eq!(listpack_decode(&lp, true).unwrap(), items);
        }

        #[test]
        fn ziplist_round_trip(items in proptest::collection::vec(item(), 0..40)) {
            let zl = ziplist_encode(&items);
            prop_assert_eq!(ziplist_decode(&zl, true).unwrap(), items);
        }

        #[test]
        fn intset_round_trip(mut v in proptest::collection::vec(any::<i64>(), 1..50)) {
            v.sort(); v.dedup();
            prop_assert_eq!(intset_decode(&intset_encode(&v), true).unwrap(), v);
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = listpack_decode(&b, true);
            let _ = ziplist_decode(&b, true);
            let _ = intset_decode(&b, true);
            let _ = zipmap_decode(&b);
        }
    }

    #[test]
    fn truncations_are_errors() {
        let mut w = ListpackWriter::new();
        for i in 0..20 {
            w.push(format!("element-{i}").as_bytes());
            w.push_int(i * 1000);
        }
        let lp = w.finish();
        for cut in 0..lp.len() {
            assert!(listpack_decode(&lp[..cut], false).is_err());
        }
        let zl = ziplist_encode(&[Item::Str(b"hello".to_vec()), Item::Int(70000)]);
        for cut in 0..zl.len() {
            assert!(ziplist_decode(&zl[..cut], false).is_err());
        }
    }

    #[test]
    fn zipmap_decodes() {
        // zmlen, "a" -> "bc" (1 free byte), "xy" -> "" ; end.
        let b = [2, 1, b'a', 2, 1, b'b', b'c', 0, 2, b'x', b'y', 0, 0, 0xFF];
        assert_eq!(
            zipmap_decode(&b).unwrap(),
            vec![
                (b"a".to_vec(), b"bc".to_vec()),
                (b"xy".to_vec(), b"".to_vec())
            ]
        );
    }
}
