//! LEB128 varints, the length prefix every packed representation here
//! uses (entries, listpack-style hashes and sets, sorted set elements).

/// Bytes needed to encode `n`.
#[inline]
pub fn varint_len(mut n: usize) -> usize {
    let mut l = 1;
    while n >= 0x80 {
        n >>= 7;
        l += 1;
    }
    l
}

/// Appends `n` to `out`.
pub fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint at the start of `b`: (value, bytes used). Panics on a
/// truncated varint: callers only read what they wrote.
#[inline]
pub fn get_varint(b: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    for (i, &c) in b.iter().enumerate() {
        n |= ((c & 0x7f) as usize) << shift;
        if c < 0x80 {
            return (n, i + 1);
        }
        shift += 7;
    }
    unreachable!("truncated varint")
}

/// Writes `n` at `p`; returns bytes written.
///
/// # Safety
/// `p` must be valid for `varint_len(n)` bytes of writes.
#[inline]
pub unsafe fn write_varint(p: *mut u8, mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        *p.add(i) = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    *p.add(i) = n as u8;
    i + 1
}

/// Reads a varint at `p`: (value, bytes read).
///
/// # Safety
/// `p` must point to a complete varint written by this module.
#[inline]
pub unsafe fn read_varint(p: *const u8) -> (usize, usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all_forms() {
        for n in [0usize, 1, 127, 128, 300, 16383, 16384, usize::MAX >> 1] {
            let mut v = Vec::new();
            put_varint(&mut v, n);
            assert_eq!(v.len(), varint_len(n));
            assert_eq!(get_varint(&v), (n, v.len()));
            assert_eq!(unsafe { read_varint(v.as_ptr()) }, (n, v.len()));
            let mut w = vec![0u8; 10];
            assert_eq!(unsafe { write_varint(w.as_mut_ptr(), n) }, v.len());
            assert_eq!(&w[..v.len()], &v[..]);
        }
    }
}
