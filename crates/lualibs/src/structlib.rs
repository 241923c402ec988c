//! `struct`: Roberto Ierusalimschy's struct library (v1.7, 2018) as bundled
//! with Redis (`deps/lua/src/lua_struct.c`), with x86-64 Linux sizes.
//!
//! Format language: `>` big endian, `<` little endian (the default, native),
//! `![n]` maximum alignment (default 8, a power of 2), `x` one byte of
//! padding, `b/B` signed/unsigned char, `h/H` short (2), `l/L` long (8),
//! `T` size_t (8), `i/I[n]` int of n bytes (default 4, at most 32), `f`
//! float, `d` double, `c[n]` n chars (pack: `c0` = whole string; unpack:
//! `c0` = length taken from the previous result), `s` zero-terminated
//! string, ' ' ignored. Items are aligned to min(size, alignment).

use mlua::{Lua, Table, Value};

use crate::args::{to_number, Spread, MAX_C_STACK};
use crate::num::f64_to_i64;
use crate::{make_fn, Args, Failure, Outcome};

/// Largest integer item, in bytes.
const MAX_INT_SIZE: i32 = 32;
/// Default and largest useful alignment (that of a double on x86-64).
const MAX_ALIGN: i32 = 8;

/// Creates the `struct` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", make_fn(lua, pack)?)?;
    t.set("unpack", make_fn(lua, unpack)?)?;
    t.set("size", make_fn(lua, size)?)?;
    Ok(t)
}

/// Endianness and alignment in force while walking a format.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// The format string as C sees it: up to the first NUL, read one option at a
/// time.
struct Format {
    bytes: Vec<u8>,
    pos: usize,
}

impl Format {
    fn new(mut bytes: Vec<u8>) -> Format {
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            bytes.truncate(nul);
        }
        Format { bytes, pos: 0 }
    }

    fn next_option(&mut self) -> Option<u8> {
        let c = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    /// `getnum`: a decimal number at the cursor, or `default` when none.
    fn number(&mut self, default: i32) -> Result<i32, Failure> {
        let mut digits = false;
        let mut a: i32 = 0;
        while let Some(&c) = self.bytes.get(self.pos).filter(|c| c.is_ascii_digit()) {
            let d = (c - b'0') as i32;
            if a > i32::MAX / 10 || a * 10 > i32::MAX - d {
                return Err(Failure::Raise("integral size overflow".into()));
            }
            a = a * 10 + d;
            self.pos += 1;
            digits = true;
        }
        Ok(if digits { a } else { default })
    }

    /// `optsize`: the size of option `opt`, reading its count if it has one.
    fn size(&mut self, opt: u8) -> Result<usize, Failure> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)? as usize,
            b'i' | b'I' => {
                let sz = self.number(4)?;
                if sz > MAX_INT_SIZE {
                    return Err(Failure::Raise(format!(
                        "integral size {sz} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                sz as usize
            }
            _ => 0,
        })
    }

    /// `controloptions`: endianness, alignment and spaces; anything else is
    /// an invalid option (argument 1).
    fn control(&mut self, args: &Args, opt: u8, h: &mut Header) -> Result<(), Failure> {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(MAX_ALIGN)?;
                if !(a > 0 && a & (a - 1) == 0) {
                    return Err(Failure::Raise(format!("alignment {a} is not a power of 2")));
                }
                h.align = a as usize;
            }
            _ => {
                let msg = format!(
                    "invalid format option '{}'",
                    String::from_utf8_lossy(&[opt])
                );
                return Err(args.arg_error(1, &msg));
            }
        }
        Ok(())
    }
}

/// `gettoalign`: padding needed before an item of `size` at offset `len`.
/// The arithmetic is the C code's, also for sizes that are not powers of 2.
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// `(unsigned long)n` for n >= 0 as compiled for x86-64 (NaN compares as
/// "below" and takes the signed conversion).
fn f64_to_u64(n: f64) -> u64 {
    const TWO63: f64 = 9223372036854775808.0;
    if n.is_nan() || n < TWO63 {
        f64_to_i64(n) as u64
    } else {
        f64_to_i64(n - TWO63) as u64 ^ (1 << 63)
    }
}

fn is_integer_option(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// Appends `bytes` (given little-endian) in the header's byte order.
fn put_ordered(out: &mut Vec<u8>, mut bytes: Vec<u8>, little: bool) {
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn pack(lua: &Lua, args: &Args) -> Outcome {
    let mut fmt = Format::new(args.check_bytes(lua, 1)?);
    let args = &args.with_nil_pushed();
    let mut h = Header::new();
    let mut arg = 2;
    let mut total: usize = 0;
    let mut out = Vec::new();
    while let Some(opt) = fmt.next_option() {
        let mut size = fmt.size(opt)?;
        let pad = padding(total, &h, opt, size);
        total += pad;
        out.resize(out.len() + pad, 0);
        match opt {
            _ if is_integer_option(opt) => {
                let n = args.check_number(lua, arg)?;
                arg += 1;
                let mut value = if n < 0.0 {
                    f64_to_i64(n) as u64
                } else {
                    f64_to_u64(n)
                };
                let mut bytes = vec![0u8; size];
                for b in bytes.iter_mut() {
                    *b = value as u8;
                    value >>= 8;
                }
                put_ordered(&mut out, bytes, h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = args.check_number(lua, arg)? as f32;
                arg += 1;
                put_ordered(&mut out, f.to_le_bytes().to_vec(), h.little);
            }
            b'd' => {
                let d = args.check_number(lua, arg)?;
                arg += 1;
                put_ordered(&mut out, d.to_le_bytes().to_vec(), h.little);
            }
            b'c' | b's' => {
                let s = args.check_bytes(lua, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // The C code names the argument after the string.
                    return Err(args.arg_error(arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => fmt.control(args, opt, &mut h)?,
        }
        total += size;
    }
    Ok(vec![Value::String(lua.create_string(&out)?)])
}

/// `getinteger`: an integer of `bytes.len()` bytes; only the last 8 bytes
/// read survive in the 64-bit accumulator, as in C.
fn get_integer(bytes: &[u8], little: bool, signed: bool) -> f64 {
    let fold = |l: u64, b: &u8| (l << 8) | *b as u64;
    let l = if little {
        bytes.iter().rev().fold(0, fold)
    } else {
        bytes.iter().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    // The C shift count is taken modulo 64, as x86 does.
    let mask = u64::MAX.wrapping_shl((bytes.len() as u32 * 8).wrapping_sub(1));
    let l = if l & mask != 0 { l | mask } else { l };
    l as i64 as f64
}

fn unpack(lua: &Lua, args: &Args) -> Outcome {
    let mut fmt = Format::new(args.check_bytes(lua, 1)?);
    let data = args.check_bytes(lua, 2)?;
    let ld = data.len();
    // size_t arithmetic: a negative offset wraps to a huge one.
    let mut pos = args.opt_integer(lua, 3, 1)? as u64 as usize;
    if pos == 0 {
        return Err(args.arg_error(3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut h = Header::new();
    let mut results = Spread::new(lua)?;
    let fits = |pos: usize, size: usize| size <= ld && pos <= ld - size;
    while let Some(opt) = fmt.next_option() {
        let mut size = fmt.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if !fits(pos, size) {
            return Err(args.arg_error(2, "data string too short"));
        }
        if args.len() + results.len + 2 > MAX_C_STACK {
            return Err(Failure::Raise("stack overflow (too many results)".into()));
        }
        match opt {
            _ if is_integer_option(opt) => {
                let v = get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase());
                results.push(Value::Number(v))?;
            }
            b'x' => {}
            b'f' => {
                let mut b: [u8; 4] = data[pos..pos + 4].try_into().expect("4 bytes");
                if !h.little {
                    b.reverse();
                }
                results.push(Value::Number(f32::from_le_bytes(b) as f64))?;
            }
            b'd' => {
                let mut b: [u8; 8] = data[pos..pos + 8].try_into().expect("8 bytes");
                if !h.little {
                    b.reverse();
                }
                results.push(Value::Number(f64::from_le_bytes(b)))?;
            }
            b'c' => {
                if size == 0 {
                    let previous = match results.last()? {
                        Some(v) => to_number(lua, &v)?,
                        None => None,
                    };
                    let Some(n) = previous else {
                        return Err(Failure::Raise("format 'c0' needs a previous size".into()));
                    };
                    size = f64_to_u64(n) as usize;
                    results.pop()?;
                    if !fits(pos, size) {
                        return Err(args.arg_error(2, "data string too short"));
                    }
                }
                results.push(Value::String(lua.create_string(&data[pos..pos + size])?))?;
            }
            b's' => {
                let Some(len) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(Failure::Raise("unfinished string in data".into()));
                };
                results.push(Value::String(lua.create_string(&data[pos..pos + len])?))?;
                size = len + 1;
            }
            _ => fmt.control(args, opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    results.push(Value::Number(pos.wrapping_add(1) as i64 as f64))?;
    results.into_outcome()
}

fn size(lua: &Lua, args: &Args) -> Outcome {
    let mut fmt = Format::new(args.check_bytes(lua, 1)?);
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next_option() {
        let size = fmt.size(opt)?;
        pos = pos.wrapping_add(padding(pos, &h, opt, size));
        if opt == b's' {
            return Err(args.arg_error(1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(args.arg_error(1, "option 'c0' has no fixed size"));
        }
        // Unknown letters and digits are silently skipped here.
        if !opt.is_ascii_alphanumeric() {
            fmt.control(args, opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(vec![Value::Number(pos as i64 as f64)])
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use proptest::prelude::*;

    /// Lua snippet: hex of `struct.pack(<args>)`.
    fn hex_of(args: &str) -> String {
        format!(
            "local e = struct.pack({args}) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h"
        )
    }

    #[test]
    fn packs_integers() {
        let lua = state();
        let cases = [
            ("'b', -1", "ff"),
            ("'B', 255", "ff"),
            ("'B', 256", "00"),
            ("'<h', 1", "0100"),
            ("'>h', 1", "0001"),
            ("'>H', 65535", "ffff"),
            ("'>i', -2", "fffffffe"),
            ("'<i', 0x01020304", "04030201"),
            ("'>l', 1", "0000000000000001"),
            ("'>L', 2^63", "8000000000000000"),
            ("'>L', 2^64", "0000000000000000"),
            ("'>L', 0/0", "8000000000000000"),
            ("'<T', 5", "0500000000000000"),
            ("'>i3', 0x010203", "010203"),
            ("'>I1', 300", "2c"),
            ("'>i10', -1", "0000ffffffffffffffff"),
            ("'<i10', -1", "ffffffffffffffff0000"),
            ("'>i', 1.9", "00000001"),
            ("'>i', -1.9", "ffffffff"),
            ("'>i', '12'", "0000000c"),
        ];
        for (args, hex) in cases {
            assert_eq!(run(&lua, &hex_of(args)), hex, "{args}");
        }
    }

    #[test]
    fn packs_floats_strings_and_padding() {
        let lua = state();
        let cases = [
            ("'>f', 1.5", "3fc00000"),
            ("'<f', 1.5", "0000c03f"),
            ("'>d', -2", "c000000000000000"),
            ("'c3', 'abcdef'", "616263"),
            ("'c0', 'abc'", "616263"),
            ("'c0', 12", "3132"),
            ("'s', 'ab'", "616200"),
            ("'bxb', 1, 2", "010002"),
            ("'> b i', 1, 2", "0100000002"),
            ("'!4 b i', 1, 2", "0100000002000000"),
            ("'!2 b i', 1, 2", "010002000000"),
            ("'! b d', 1, 2", "01000000000000000000000000000040"),
            ("'!8 b c2 h', 1, 'xy', 3", "017879000300"),
            ("'', 1", ""),
        ];
        for (args, hex) in cases {
            assert_eq!(run(&lua, &hex_of(args)), hex, "{args}");
        }
    }

    #[test]
    fn pack_errors() {
        let lua = state();
        let err = |args: &str| {
            run(&lua, &format!("return struct.pack({args})")).replace("ERR:user_script:1: ", "")
        };
        // The C code pushes a nil after the arguments before reading them.
        assert_eq!(
            err("'i'"),
            "bad argument #2 to 'pack' (number expected, got nil)"
        );
        assert_eq!(
            err("'ii', 1"),
            "bad argument #3 to 'pack' (number expected, got nil)"
        );
        assert_eq!(
            err("'b', {}"),
            "bad argument #2 to 'pack' (number expected, got table)"
        );
        assert_eq!(
            err("'c5', 'ab'"),
            "bad argument #3 to 'pack' (string too short)"
        );
        assert_eq!(
            err("'s', nil"),
            "bad argument #2 to 'pack' (string expected, got nil)"
        );
        assert_eq!(
            err("'z', 1"),
            "bad argument #1 to 'pack' (invalid format option 'z')"
        );
        assert_eq!(
            err("'b2', 1"),
            "bad argument #1 to 'pack' (invalid format option '2')"
        );
        assert_eq!(
            err("'i33', 1"),
            "integral size 33 is larger than limit of 32"
        );
        assert_eq!(err("'c99999999999', 'a'"), "integral size overflow");
        assert_eq!(err("'!3'"), "alignment 3 is not a power of 2");
        assert_eq!(err("'!0'"), "alignment 0 is not a power of 2");
        assert_eq!(
            err("nil"),
            "bad argument #1 to 'pack' (string expected, got nil)"
        );
        assert_eq!(
            run(&lua, "return struct.pack('q')"),
            "ERR:user_script:1: bad argument #1 to 'pack' (invalid format option 'q')"
        );
    }

    #[test]
    fn unpacks() {
        let lua = state();
        assert_eq!(
            run(&lua, "return {struct.unpack('>h', '\\255\\254')}"),
            "{-2,3}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('>H', '\\255\\254')}"),
            "{65534,3}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('<i', '\\1\\0\\0\\128')}"),
            "{-2147483647,5}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('<I', '\\1\\0\\0\\128')}"),
            "{2147483649,5}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('>i3', '\\255\\255\\255')}"),
            "{-1,4}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('bxB', '\\255\\0\\255')}"),
            "{-1,255,4}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('>f', '\\63\\192\\0\\0')}"),
            "{1.5,5}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('c2', 'abcd', 2)}"),
            "{bc,4}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('s s', 'ab\\0c\\0')}"),
            "{ab,c,6}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('b c0', '\\3abcd')}"),
            "{abc,5}"
        );
        assert_eq!(
            run(&lua, "return {struct.unpack('c1 c0', '2abcd')}"),
            "{ab,4}"
        );
        assert_eq!(
            run(
                &lua,
                "return {struct.unpack('!4 b i', '\\1\\0\\0\\0\\2\\0\\0\\0')}"
            ),
            "{1,2,9}"
        );
        assert_eq!(run(&lua, "return {struct.unpack('', 'abc', 3)}"), "{3}");
        assert_eq!(run(&lua, "return {struct.unpack('', 'abc', -5)}"), "{-5}");
        assert_eq!(
            run(
                &lua,
                "return {struct.unpack('>L', struct.pack('>L', 2^53))}"
            ),
            "{9.007199254741e+15,9}"
        );
        assert_eq!(
            run(
                &lua,
                "return {struct.unpack('<i16', string.rep('\\255', 16))}"
            ),
            "{-1,17}"
        );
        assert_eq!(
            run(
                &lua,
                "return {struct.unpack('<I16', string.rep('\\255', 8) .. string.rep('\\0', 8))}"
            ),
            "{1.844674407371e+19,17}"
        );
    }

    #[test]
    fn unpack_errors() {
        let lua = state();
        let err = |args: &str| {
            run(&lua, &format!("return struct.unpack({args})")).replace("ERR:user_script:1: ", "")
        };
        assert_eq!(
            err("'i', 'abc'"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            err("'b', 'abc', 4"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            err("'b', 'abc', -1"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            err("'b', 'abc', 0"),
            "bad argument #3 to 'unpack' (offset must be 1 or greater)"
        );
        assert_eq!(err("'c0', 'abc'"), "format 'c0' needs a previous size");
        assert_eq!(err("'c1 c0', 'abc'"), "format 'c0' needs a previous size");
        assert_eq!(
            err("'b c0', '\\9abc'"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(err("'s', 'abc'"), "unfinished string in data");
        assert_eq!(
            err("'y', 'abc'"),
            "bad argument #1 to 'unpack' (invalid format option 'y')"
        );
        assert_eq!(
            err("'b'"),
            "bad argument #2 to 'unpack' (string expected, got no value)"
        );
        assert_eq!(
            err("'b', 'a', 'x'"),
            "bad argument #3 to 'unpack' (number expected, got string)"
        );
        assert_eq!(
            run(
                &lua,
                "return select('#', struct.unpack(string.rep('b', 7997), string.rep('a', 7997)))"
            ),
            "7998"
        );
        assert_eq!(
            run(
                &lua,
                "return struct.unpack(string.rep('b', 7998), string.rep('a', 7998))"
            ),
            "ERR:user_script:1: stack overflow (too many results)"
        );
    }

    #[test]
    fn sizes() {
        let lua = state();
        let cases = [
            ("''", "0"),
            ("'b'", "1"),
            ("'bhilTfd'", "35"),
            ("'!bhilTfd'", "40"),
            ("'!4 b d'", "12"),
            ("'b i3 c7 x'", "12"),
            ("'zq'", "0"),
            ("'i32'", "32"),
        ];
        for (fmt, n) in cases {
            assert_eq!(run(&lua, &format!("return struct.size({fmt})")), n, "{fmt}");
        }
        let err = |fmt: &str| {
            run(&lua, &format!("return struct.size({fmt})")).replace("ERR:user_script:1: ", "")
        };
        assert_eq!(
            err("'bs'"),
            "bad argument #1 to 'size' (option 's' has no fixed size)"
        );
        assert_eq!(
            err("'c0'"),
            "bad argument #1 to 'size' (option 'c0' has no fixed size)"
        );
        assert_eq!(
            err("'#'"),
            "bad argument #1 to 'size' (invalid format option '#')"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn pack_unpack_round_trip(
            b in any::<i8>(), big_h in any::<u16>(), i in any::<i32>(), l in -(1i64 << 52)..(1i64 << 52),
            d in any::<f64>().prop_filter("finite", |d| d.is_finite()),
            s in "[a-z]{1,12}", little in any::<bool>(), align in 0u32..4,
        ) {
            let lua = state();
            let base = format!("{}!{} b H i l d s", if little { "<" } else { ">" }, 1 << align);
            let code = format!(
                "local p = struct.pack('{base} c0', {b}, {big_h}, {i}, {l}, {d:e}, '{s}', '{s}')
                 local r = {{struct.unpack('{base} c{}', p)}}
                 assert(#p + 1 == r[#r])
                 return table.concat({{r[1], r[2], r[3], r[4], r[5] == {d:e} and 'd' or 'x', r[6], r[7]}}, ' ')",
                s.len()
            );
            prop_assert_eq!(run(&lua, &code), format!("{b} {big_h} {i} {} d {s} {s}", crate::num::format_g(l as f64, 14)));
        }
    }
}
