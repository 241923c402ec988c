//! `bit`: LuaBitOp 1.0.2 as bundled with Redis (`deps/lua/src/lua_bit.c`).
//! Operands are Lua doubles reduced to 32 bits the way LuaBitOp does it
//! (adding 2^52+2^51 and taking the low word, i.e. round-to-nearest modulo
//! 2^32); results are signed 32-bit values returned as doubles.

use mlua::{Lua, Table, Value};

use crate::{make_fn, Args, Failure, Outcome};

/// Creates the `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("tobit", make_fn(lua, |lua, a| ret(barg(lua, a, 1)?))?)?;
    t.set("bnot", make_fn(lua, |lua, a| ret(!barg(lua, a, 1)?))?)?;
    t.set("band", make_fn(lua, |lua, a| fold(lua, a, |x, y| x & y))?)?;
    t.set("bor", make_fn(lua, |lua, a| fold(lua, a, |x, y| x | y))?)?;
    t.set("bxor", make_fn(lua, |lua, a| fold(lua, a, |x, y| x ^ y))?)?;
    t.set(
        "lshift",
        make_fn(lua, |lua, a| shift(lua, a, |b, n| b << n))?,
    )?;
    t.set(
        "rshift",
        make_fn(lua, |lua, a| shift(lua, a, |b, n| b >> n))?,
    )?;
    t.set(
        "arshift",
        make_fn(lua, |lua, a| shift(lua, a, |b, n| ((b as i32) >> n) as u32))?,
    )?;
    t.set(
        "rol",
        make_fn(lua, |lua, a| shift(lua, a, u32::rotate_left))?,
    )?;
    t.set(
        "ror",
        make_fn(lua, |lua, a| shift(lua, a, u32::rotate_right))?,
    )?;
    t.set(
        "bswap",
        make_fn(lua, |lua, a| ret(barg(lua, a, 1)?.swap_bytes()))?,
    )?;
    t.set("tohex", make_fn(lua, tohex)?)?;
    Ok(t)
}

/// Converts argument `i` to 32 bits. As in LuaBitOp on Lua 5.1, a value that
/// is not a number fails only when its conversion gives 0, which it always
/// does (non-numbers read as 0).
fn barg(lua: &Lua, args: &Args, i: usize) -> Result<u32, Failure> {
    let n = args.to_number(lua, i)?;
    let b = tobit(n.unwrap_or(0.0));
    if b == 0 && n.is_none() {
        return Err(args.type_error(i, "number"));
    }
    Ok(b)
}

/// LuaBitOp's conversion of a double to 32 bits.
pub fn tobit(n: f64) -> u32 {
    (n + 6755399441055744.0).to_bits() as u32
}

/// Returns a 32-bit result as Lua sees it: a signed value in a double.
fn ret(b: u32) -> Outcome {
    Ok(vec![Value::Number(b as i32 as f64)])
}

/// band/bor/bxor: the operation folded over all arguments (at least one).
fn fold(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> Outcome {
    let mut b = barg(lua, args, 1)?;
    // The C code walks the arguments from the last one down.
    for i in (2..=args.len()).rev() {
        b = op(b, barg(lua, args, i)?);
    }
    ret(b)
}

/// Shifts and rotations: the count is taken modulo 32.
fn shift(lua: &Lua, args: &Args, op: fn(u32, u32) -> u32) -> Outcome {
    let b = barg(lua, args, 1)?;
    let n = barg(lua, args, 2)? & 31;
    ret(op(b, n))
}

/// `bit.tohex(x [, n])`: |n| hex digits (default 8, at most 8), upper case
/// when n is negative.
fn tohex(lua: &Lua, args: &Args) -> Outcome {
    let mut b = barg(lua, args, 1)?;
    let mut n = match args.get(2) {
        None => 8,
        Some(_) => barg(lua, args, 2)? as i32,
    };
    let mut digits = b"0123456789abcdef";
    if n == i32::MIN {
        n = i32::MIN + 1;
    }
    if n < 0 {
        n = -n;
        digits = b"0123456789ABCDEF";
    }
    let n = n.min(8) as usize;
    let mut buf = vec![0u8; n];
    for slot in buf.iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    Ok(vec![Value::String(lua.create_string(&buf)?)])
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use proptest::prelude::*;

    #[test]
    fn minimal_functionality_as_in_the_redis_suite() {
        let lua = state();
        assert_eq!(run(&lua, "return bit.tobit(1)"), "1");
        assert_eq!(run(&lua, "return bit.band(1)"), "1");
        assert_eq!(run(&lua, "return bit.bxor(1,2)"), "3");
        assert_eq!(run(&lua, "return bit.bor(1,2,4,8,16,32,64,128)"), "255");
    }

    #[test]
    fn tohex_bug_case_from_the_redis_suite() {
        // Redis's "lua bit.tohex bug": n = INT32_MIN must not overflow.
        assert_eq!(eval("return bit.tohex(65535, -2147483648)"), "0000FFFF");
    }

    #[test]
    fn tohex_widths_and_case() {
        let lua = state();
        assert_eq!(run(&lua, "return bit.tohex(1)"), "00000001");
        assert_eq!(run(&lua, "return bit.tohex(-1)"), "ffffffff");
        assert_eq!(run(&lua, "return bit.tohex(0x12345678, 4)"), "5678");
        assert_eq!(run(&lua, "return bit.tohex(0xabcd, -4)"), "ABCD");
        assert_eq!(run(&lua, "return bit.tohex(0xabcd, 20)"), "0000abcd");
        assert_eq!(run(&lua, "return '['..bit.tohex(0xabcd, 0)..']'"), "[]");
    }

    #[test]
    fn conversions_and_results() {
        let lua = state();
        assert_eq!(run(&lua, "return bit.tobit(0xffffffff)"), "-1");
        assert_eq!(run(&lua, "return bit.tobit(2^32 + 5)"), "5");
        assert_eq!(run(&lua, "return bit.tobit(1.5)"), "2");
        assert_eq!(run(&lua, "return bit.tobit(2.5)"), "2");
        assert_eq!(run(&lua, "return bit.tobit(-1.5)"), "-2");
        assert_eq!(run(&lua, "return bit.tobit('0x10')"), "16");
        assert_eq!(run(&lua, "return bit.bnot(0)"), "-1");
        assert_eq!(run(&lua, "return bit.lshift(1, 31)"), "-2147483648");
        assert_eq!(run(&lua, "return bit.lshift(1, 33)"), "2");
        assert_eq!(run(&lua, "return bit.rshift(-1, 28)"), "15");
        assert_eq!(run(&lua, "return bit.arshift(-256, 4)"), "-16");
        assert_eq!(run(&lua, "return bit.rol(0x12345678, 12)"), "1164411171");
        assert_eq!(run(&lua, "return bit.ror(0x12345678, 12)"), "1736516421");
        assert_eq!(run(&lua, "return bit.rol(7, 0)"), "7");
        assert_eq!(run(&lua, "return bit.bswap(0x12345678)"), "2018915346");
        assert_eq!(run(&lua, "return bit.band(0xff, 0x0f, 0x3)"), "3");
    }

    #[test]
    fn non_numbers_are_type_errors() {
        let lua = state();
        assert_eq!(
            run(&lua, "return bit.tobit()"),
            "ERR:user_script:1: bad argument #1 to 'tobit' (number expected, got no value)"
        );
        assert_eq!(
            run(&lua, "return bit.band(1, 'x')"),
            "ERR:user_script:1: bad argument #2 to 'band' (number expected, got string)"
        );
        assert_eq!(
            run(&lua, "return bit.tohex(1, nil)"),
            "ERR:user_script:1: bad argument #2 to 'tohex' (number expected, got nil)"
        );
        assert_eq!(
            run(&lua, "return bit.lshift({}, 1)"),
            "ERR:user_script:1: bad argument #1 to 'lshift' (number expected, got table)"
        );
    }

    proptest! {
        #[test]
        fn ops_match_i32_arithmetic(a in any::<i32>(), b in any::<i32>(), n in 0u32..64) {
            let lua = state();
            let code = format!(
                "return {{bit.band({a},{b}), bit.bor({a},{b}), bit.bxor({a},{b}), bit.bnot({a}),
                          bit.lshift({a},{n}), bit.rshift({a},{n}), bit.arshift({a},{n}),
                          bit.rol({a},{n}), bit.ror({a},{n}), bit.bswap({a}), bit.tobit({a} + 2^32)}}"
            );
            let s = n % 32;
            let want = [
                a & b, a | b, a ^ b, !a,
                a.wrapping_shl(s), ((a as u32) >> s) as i32, a >> s,
                a.rotate_left(s), a.rotate_right(s), a.swap_bytes(), a,
            ];
            let want: Vec<String> = want.iter().map(|v| v.to_string()).collect();
            prop_assert_eq!(run(&lua, &code), format!("{{{}}}", want.join(",")));
            prop_assert_eq!(run(&lua, &format!("return bit.tohex({a})")), format!("{:08x}", a));
        }
    }
}
