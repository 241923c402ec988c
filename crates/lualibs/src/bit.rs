//! `bit`: LuaBitOp 1.0.2 as bundled with Redis (`deps/lua/src/lua_bit.c`).
//! Operands are Lua doubles reduced to 32 bits the way LuaBitOp does it
//! (adding 2^52+2^51 and taking the low word, i.e. round-to-nearest modulo
//! 2^32); results are signed 32-bit values returned as doubles.

use std::os::raw::c_int;

use mlua::{ffi, Lua, Table};

/// Creates the `bit` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let funcs: [(&str, ffi::lua_CFunction); 12] = [
        ("tobit", tobit_fn),
        ("bnot", bnot),
        ("band", band),
        ("bor", bor),
        ("bxor", bxor),
        ("lshift", lshift),
        ("rshift", rshift),
        ("arshift", arshift),
        ("rol", rol),
        ("ror", ror),
        ("bswap", bswap),
        ("tohex", tohex),
    ];
    for (name, f) in funcs {
        // SAFETY: each function follows the lua_CFunction contract; errors
        // are raised by the Lua auxiliary library with no Rust value alive
        // that needs dropping.
        t.set(name, unsafe { lua.create_c_function(f)? })?;
    }
    Ok(t)
}

/// LuaBitOp's conversion of a double to 32 bits: add 2^52+2^51 and keep the
/// low word (round to nearest, modulo 2^32).
pub fn tobit(n: f64) -> u32 {
    (n + 6755399441055744.0).to_bits() as u32
}

/// Argument `i` as 32 bits. As in LuaBitOp on Lua 5.1, a value that is not
/// a number fails only when its conversion gives 0, which it always does
/// (non-numbers read as 0); the error is `luaL_typerror`'s.
unsafe fn barg(state: *mut ffi::lua_State, i: c_int) -> u32 {
    let b = tobit(ffi::lua_tonumber(state, i));
    if b == 0 && ffi::lua_isnumber(state, i) == 0 {
        ffi::luaL_typerror(state, i, c"number".as_ptr());
    }
    b
}

/// Returns a 32-bit result as Lua sees it: a signed value in a double.
unsafe fn ret(state: *mut ffi::lua_State, b: u32) -> c_int {
    ffi::lua_pushnumber(state, b as i32 as f64);
    1
}

unsafe extern "C-unwind" fn tobit_fn(state: *mut ffi::lua_State) -> c_int {
    ret(state, barg(state, 1))
}

unsafe extern "C-unwind" fn bnot(state: *mut ffi::lua_State) -> c_int {
    ret(state, !barg(state, 1))
}

/// band/bor/bxor: the operation folded over all arguments, walked from the
/// last one down as the C code does (at least one is required).
unsafe fn fold(state: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> c_int {
    let mut b = barg(state, 1);
    let mut i = ffi::lua_gettop(state);
    while i > 1 {
        b = op(b, barg(state, i));
        i -= 1;
    }
    ret(state, b)
}

unsafe extern "C-unwind" fn band(state: *mut ffi::lua_State) -> c_int {
    fold(state, |x, y| x & y)
}

unsafe extern "C-unwind" fn bor(state: *mut ffi::lua_State) -> c_int {
    fold(state, |x, y| x | y)
}

unsafe extern "C-unwind" fn bxor(state: *mut ffi::lua_State) -> c_int {
    fold(state, |x, y| x ^ y)
}

/// Shifts and rotations: the count is taken modulo 32.
unsafe fn shift(state: *mut ffi::lua_State, op: fn(u32, u32) -> u32) -> c_int {
    let b = barg(state, 1);
    let n = barg(state, 2) & 31;
    ret(state, op(b, n))
}

unsafe extern "C-unwind" fn lshift(state: *mut ffi::lua_State) -> c_int {
    shift(state, |b, n| b << n)
}

unsafe extern "C-unwind" fn rshift(state: *mut ffi::lua_State) -> c_int {
    shift(state, |b, n| b >> n)
}

unsafe extern "C-unwind" fn arshift(state: *mut ffi::lua_State) -> c_int {
    shift(state, |b, n| ((b as i32) >> n) as u32)
}

unsafe extern "C-unwind" fn rol(state: *mut ffi::lua_State) -> c_int {
    shift(state, u32::rotate_left)
}

unsafe extern "C-unwind" fn ror(state: *mut ffi::lua_State) -> c_int {
    shift(state, u32::rotate_right)
}

unsafe extern "C-unwind" fn bswap(state: *mut ffi::lua_State) -> c_int {
    ret(state, barg(state, 1).swap_bytes())
}

/// `bit.tohex(x [, n])`: |n| hex digits (default 8, at most 8), upper case
/// when n is negative.
unsafe extern "C-unwind" fn tohex(state: *mut ffi::lua_State) -> c_int {
    let mut b = barg(state, 1);
    let mut n = if ffi::lua_isnone(state, 2) != 0 {
        8
    } else {
        barg(state, 2) as i32
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
    let mut buf = [0u8; 8];
    for slot in buf[..n].iter_mut().rev() {
        *slot = digits[(b & 15) as usize];
        b >>= 4;
    }
    ffi::lua_pushlstring(state, buf.as_ptr() as *const _, n);
    1
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
