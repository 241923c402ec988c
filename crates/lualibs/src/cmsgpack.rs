//! `cmsgpack`: lua-cmsgpack 0.4.0 as bundled with Redis
//! (`deps/lua/src/lua_cmsgpack.c`).
//!
//! `pack(...)` encodes each argument and returns the concatenation. Numbers
//! that are exactly an int64 use the smallest integer encoding, others a
//! float32 when that is exact, else a float64. A table whose keys are exactly
//! 1..n is an array (an empty table too), any other a map; tables nested 16
//! deep are encoded as nil, so circular references terminate. Unpacking
//! supports the formats the C library knows (no bin/ext types) and returns
//! the decoded values; `unpack_one`/`unpack_limit` also return the next
//! offset (-1 at the end).

use mlua::{Lua, Table, Value};

use crate::args::Spread;
use crate::args::{as_number, for_each_pair, MAX_C_STACK};
use crate::held::{Held, Parking};
use crate::num::f64_to_i64;
use crate::{make_fn, Args, Failure, Outcome};

/// Tables at this nesting level are encoded as nil.
const MAX_PACK_NESTING: usize = 16;

/// Creates the `cmsgpack` table.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("pack", make_fn(lua, pack)?)?;
    t.set(
        "unpack",
        make_fn(lua, |lua, a| unpack_full(lua, a, 0, 0, a.len()))?,
    )?;
    t.set(
        "unpack_one",
        make_fn(lua, |lua, a| {
            let offset = a.opt_integer(lua, 2, 0)?;
            unpack_full(lua, a, 1, offset, 1)
        })?,
    )?;
    t.set(
        "unpack_limit",
        make_fn(lua, |lua, a| {
            let limit = a.check_integer(lua, 2)?;
            let offset = a.opt_integer(lua, 3, 0)?;
            unpack_full(lua, a, limit, offset, 1)
        })?,
    )?;
    t.set("_NAME", "cmsgpack")?;
    t.set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ===== encoding =====

fn pack(lua: &Lua, args: &Args) -> Outcome {
    if args.len() == 0 {
        return Err(args.arg_error(0, "MessagePack pack needs input."));
    }
    // The C code asks for as many free stack slots as it has arguments.
    if 2 * args.len() > 8000 {
        return Err(args.arg_error(0, "Too many arguments for MessagePack pack."));
    }
    let mut out = Vec::new();
    for i in 1..=args.len() {
        encode_value(&mut out, &args.value(i), 0)?;
    }
    Ok(vec![Value::String(lua.create_string(&out)?)])
}

fn encode_value(out: &mut Vec<u8>, v: &Value, level: usize) -> Result<(), Failure> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(_) | Value::Number(_) => encode_number(out, as_number(v).unwrap_or(0.0)),
        Value::Table(t) if level < MAX_PACK_NESTING => encode_table(out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Integers when the double is exactly an int64 (as the C cast sees it),
/// else float32 when exact, else float64.
fn encode_number(out: &mut Vec<u8>, n: f64) {
    let i = f64_to_i64(n);
    if !n.is_infinite() && i as f64 == n {
        encode_int(out, i);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_header(out: &mut Vec<u8>, n: usize, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> Result<(), Failure> {
    let (count, array) = shape(t)?;
    if array {
        encode_header(out, count, 0x90, 0xdc, 0xdd);
        for i in 1..=count {
            let item: Value = t.raw_get(i)?;
            encode_value(out, &item, level + 1)?;
        }
    } else {
        encode_header(out, count, 0x80, 0xde, 0xdf);
        for_each_pair(t, |k, v| {
            encode_value(out, &k, level + 1)?;
            encode_value(out, &v, level + 1)
        })?;
    }
    Ok(())
}

/// The number of keys, and `table_is_an_array`: every key a positive number
/// equal to a C int, the largest equal to the count (so the keys are exactly
/// 1..n; an empty table qualifies).
fn shape(t: &Table) -> Result<(usize, bool), Failure> {
    let mut count = 0;
    let mut max: f64 = 0.0;
    let mut array = true;
    for_each_pair(t, |k, _| {
        count += 1;
        match as_number(&k) {
            Some(n) if n > 0.0 && n <= i32::MAX as f64 && n.trunc() == n => max = max.max(n),
            _ => array = false,
        }
        Ok(())
    })?;
    Ok((count, array && max == count as f64))
}

// ===== decoding =====

/// Why decoding stopped early: input ended, or an unknown type byte.
enum DecodeError {
    Eof,
    BadFormat,
    Fail(Failure),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Fail(Failure::Lua(e))
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The next `n` bytes after consuming them, or `Eof`.
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.left() < n {
            return Err(DecodeError::Eof);
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | b as u64))
    }
}

/// `mp_unpack_full`: decodes up to `limit` values from `offset` (both 0:
/// everything, without an offset result). `base_slots` is how many stack
/// slots the call's arguments occupy (the C code counts them against
/// LUAI_MAXCSTACK too).
fn unpack_full(lua: &Lua, args: &Args, limit: i64, offset: i64, base_slots: usize) -> Outcome {
    let data = args.check_bytes(lua, 1)?;
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The C code prints the input length where it means the limit.
        return Err(Failure::Raise(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    if offset as u64 > len as u64 {
        return Err(Failure::Raise(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut cur = Cursor {
        data: &data,
        pos: offset as usize,
    };
    let mut values = Spread::new(lua)?;
    if !decode_all {
        // Room for the next offset, which comes first.
        values.push(Value::Nil)?;
    }
    let mut count: usize = 0;
    while cur.left() > 0 && (count as i64) < limit {
        match decode_value(lua, &mut cur, base_slots + count) {
            Ok(v) => {
                values.push(v)?;
                count += 1;
            }
            Err(DecodeError::Eof) => return Err(Failure::Raise("Missing bytes in input.".into())),
            Err(DecodeError::BadFormat) => {
                return Err(Failure::Raise("Bad data format in input.".into()))
            }
            Err(DecodeError::Fail(f)) => return Err(f),
        }
    }
    if !decode_all {
        // The C code needs one more slot for the offset.
        if base_slots + count + 1 > MAX_C_STACK {
            return Err(Failure::Raise(
                "stack overflow (in function mp_unpack_full)".into(),
            ));
        }
        let next = if cur.left() == 0 {
            -1.0
        } else {
            cur.pos as f64
        };
        values.table.raw_set(1, next)?;
    }
    values.into_outcome()
}

fn stack_overflow(what: &str) -> DecodeError {
    DecodeError::Fail(Failure::Raise(format!("stack overflow ({what})")))
}

/// What one step of decoding read.
enum Item {
    Scalar(Value),
    Array(usize),
    Map(usize),
}

/// A table being filled: elements left, and for an array the next index,
/// for a map the key read but not yet stored.
enum Open {
    Array {
        table: Held,
        left: usize,
        index: usize,
    },
    Map {
        table: Held,
        left: usize,
        key: Option<Held>,
    },
}

/// Decodes one complete value. Open tables are kept on an explicit stack
/// (not Rust recursion, and parked in Lua when deep), so nesting is bounded
/// only by the C decoder's own stack limit. The C stack use is tracked as
/// the C decoder's: an array holds its table and index while an element is
/// decoded, a map its table, plus the key while the value is decoded.
fn decode_value(lua: &Lua, c: &mut Cursor, base_slots: usize) -> Result<Value, DecodeError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut parking = Parking::default();
    let mut slots = base_slots;
    loop {
        let depth = stack.len() + 1;
        let mut value = match decode_item(lua, c, slots)? {
            Item::Scalar(v) => v,
            Item::Array(len) => {
                let table = lua.create_table()?;
                // The new table is on the stack; the C code checks for one more slot.
                if slots + 2 > MAX_C_STACK {
                    return Err(stack_overflow("in function mp_decode_to_lua_array"));
                }
                if len > 0 {
                    let table = parking.hold(lua, depth, Value::Table(table))?;
                    stack.push(Open::Array {
                        table,
                        left: len,
                        index: 1,
                    });
                    slots += 2;
                    continue;
                }
                Value::Table(table)
            }
            Item::Map(len) => {
                let table = lua.create_table()?;
                if len > 0 {
                    let table = parking.hold(lua, depth, Value::Table(table))?;
                    stack.push(Open::Map {
                        table,
                        left: len,
                        key: None,
                    });
                    slots += 1;
                    continue;
                }
                Value::Table(table)
            }
        };
        // Store the value; close the tables it completes.
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                return Ok(value);
            };
            let left = match top {
                Open::Array { table, left, index } => {
                    parking.table(table)?.raw_set(*index as f64, value)?;
                    *index += 1;
                    *left -= 1;
                    *left
                }
                Open::Map { table, left, key } => match key.take() {
                    None => {
                        *key = Some(parking.hold(lua, depth, value)?);
                        slots += 1;
                        break;
                    }
                    Some(k) => {
                        let k_value = parking.get(&k)?;
                        parking.release(k)?;
                        store_pair(&parking.table(table)?, k_value, value)?;
                        slots -= 1;
                        *left -= 1;
                        *left
                    }
                },
            };
            if left > 0 {
                break;
            }
            let (table, width) = match stack.pop().expect("top") {
                Open::Array { table, .. } => (table, 2),
                Open::Map { table, .. } => (table, 1),
            };
            slots -= width;
            value = parking.get(&table)?;
            parking.release(table)?;
        }
    }
}

/// `lua_settable` of a decoded pair, with the core's own errors (raised
/// without a position) for the keys Lua refuses.
fn store_pair(table: &Table, k: Value, v: Value) -> Result<(), DecodeError> {
    match &k {
        Value::Nil => Err(DecodeError::Fail(Failure::Plain(
            "table index is nil".into(),
        ))),
        Value::Number(n) if n.is_nan() => Err(DecodeError::Fail(Failure::Plain(
            "table index is NaN".into(),
        ))),
        _ => Ok(table.raw_set(k, v)?),
    }
}

/// One item of `mp_decode_to_lua_type`: a complete scalar, or the header
/// of an array or map whose elements follow. `slots` is the C stack use
/// before the value is pushed.
fn decode_item(lua: &Lua, c: &mut Cursor, slots: usize) -> Result<Item, DecodeError> {
    if c.left() < 1 {
        return Err(DecodeError::Eof);
    }
    if slots + 1 > MAX_C_STACK {
        return Err(stack_overflow(
            "too many return values at once; use unpack_one or unpack_limit instead.",
        ));
    }
    let tag = c.data[c.pos];
    let num = |v: f64| Ok(Item::Scalar(Value::Number(v)));
    // Each arm checks the whole item's length before consuming its header,
    // as the C code does, so "Missing bytes" leaves nothing half-read.
    let need = |c: &Cursor, n: usize| {
        if c.left() < n {
            Err(DecodeError::Eof)
        } else {
            Ok(())
        }
    };
    match tag {
        0xcc => {
            need(c, 2)?;
            c.pos += 1;
            num(c.be(1)? as f64)
        }
        0xcd => {
            need(c, 3)?;
            c.pos += 1;
            num(c.be(2)? as f64)
        }
        0xce => {
            need(c, 5)?;
            c.pos += 1;
            num(c.be(4)? as f64)
        }
        // Pushed through lua_Integer (signed): values past 2^63 wrap negative.
        0xcf => {
            need(c, 9)?;
            c.pos += 1;
            num(c.be(8)? as i64 as f64)
        }
        0xd0 => {
            need(c, 2)?;
            c.pos += 1;
            num(c.be(1)? as u8 as i8 as f64)
        }
        0xd1 => {
            need(c, 3)?;
            c.pos += 1;
            num(c.be(2)? as u16 as i16 as f64)
        }
        0xd2 => {
            need(c, 5)?;
            c.pos += 1;
            num(c.be(4)? as u32 as i32 as f64)
        }
        0xd3 => {
            need(c, 9)?;
            c.pos += 1;
            num(c.be(8)? as i64 as f64)
        }
        0xc0 => {
            c.pos += 1;
            Ok(Item::Scalar(Value::Nil))
        }
        0xc2 | 0xc3 => {
            c.pos += 1;
            Ok(Item::Scalar(Value::Boolean(tag == 0xc3)))
        }
        0xca => {
            need(c, 5)?;
            c.pos += 1;
            num(f32::from_bits(c.be(4)? as u32) as f64)
        }
        0xcb => {
            need(c, 9)?;
            c.pos += 1;
            num(f64::from_bits(c.be(8)?))
        }
        0xd9 | 0xda => {
            let width = if tag == 0xd9 { 1 } else { 2 };
            need(c, 1 + width)?;
            let l = Cursor {
                data: c.data,
                pos: c.pos + 1,
            }
            .be(width)? as usize;
            need(c, 1 + width + l)?;
            c.pos += 1 + width;
            Ok(Item::Scalar(Value::String(lua.create_string(c.take(l)?)?)))
        }
        0xdb => {
            need(c, 5)?;
            c.pos += 1;
            let l = c.be(4)? as usize;
            Ok(Item::Scalar(Value::String(lua.create_string(c.take(l)?)?)))
        }
        0xdc..=0xdf => {
            let width = if tag == 0xdc || tag == 0xde { 2 } else { 4 };
            need(c, 1 + width)?;
            c.pos += 1;
            let l = c.be(width)? as usize;
            Ok(if tag <= 0xdd {
                Item::Array(l)
            } else {
                Item::Map(l)
            })
        }
        _ if tag & 0x80 == 0 => {
            c.pos += 1;
            num(tag as f64)
        }
        _ if tag & 0xe0 == 0xe0 => {
            c.pos += 1;
            num(tag as i8 as f64)
        }
        _ if tag & 0xe0 == 0xa0 => {
            let l = (tag & 0x1f) as usize;
            need(c, 1 + l)?;
            c.pos += 1;
            Ok(Item::Scalar(Value::String(lua.create_string(c.take(l)?)?)))
        }
        _ if tag & 0xf0 == 0x90 => {
            c.pos += 1;
            Ok(Item::Array((tag & 0xf) as usize))
        }
        _ if tag & 0xf0 == 0x80 => {
            c.pos += 1;
            Ok(Item::Map((tag & 0xf) as usize))
        }
        _ => Err(DecodeError::BadFormat),
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use proptest::prelude::*;

    /// Lua snippet: hex of `cmsgpack.pack(<args>)`.
    fn hex_of(args: &str) -> String {
        format!(
            "local e = cmsgpack.pack({args}) local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h"
        )
    }

    #[test]
    fn packs_double_as_in_the_redis_suite() {
        assert_eq!(eval(&hex_of("0.1")), "cb3fb999999999999a");
    }

    #[test]
    fn packs_negative_int64_as_in_the_redis_suite() {
        assert_eq!(eval(&hex_of("-1099511627776")), "d3ffffff0000000000");
    }

    #[test]
    fn smoke_test_as_in_the_redis_suite() {
        let code = r#"
            local str_lt_32 = string.rep("x", 30)
            local str_lt_255 = string.rep("x", 250)
            local str_lt_65535 = string.rep("x", 65530)
            local str_long = string.rep("x", 100000)
            local array_lt_15 = {1, 2, 3, 4, 5}
            local array_lt_65535 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
            local array_big = {}
            for i=1, 100000 do array_big[i] = i end
            local map_lt_15 = {a=1, b=2}
            local map_big = {}
            for i=1, 100000 do map_big[tostring(i)] = i end
            local some_map = {
                s1=str_lt_32, s2=str_lt_255, s3=str_lt_65535, s4=str_long,
                d1=0.1, i1=1, i2=250, i3=65530, i4=100000, i5=2^40, i6=-1, i7=-120,
                i8=-32000, i9=-100000, i10=-3147483648,
                a1=array_lt_15, a2=array_lt_65535, a3=array_big, m1=map_lt_15, m2=map_big,
                b1=false, b2=true, n=nil
            }
            local encoded = cmsgpack.pack(some_map)
            local decoded = cmsgpack.unpack(encoded)
            assert(table.concat(some_map) == table.concat(decoded))
            local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
            assert(table.concat(some_map) == table.concat(decoded_one))
            assert(offset == -1)
            local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
            local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
            assert(obj == str_lt_32)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_lt_255)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_lt_65535)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_long)
            assert(offset == -1)
            -- Beyond the suite: every value survives the trip.
            for k, v in pairs(some_map) do
                if type(v) ~= "table" then assert(decoded[k] == v, k) end
            end
            assert(#decoded.a3 == 100000 and decoded.a3[99999] == 99999)
            assert(decoded.m2["77"] == 77)
            return "done"
        "#;
        assert_eq!(eval(code), "done");
    }

    #[test]
    fn circular_references_as_in_the_redis_suite() {
        let code = r#"
            local a = {x=nil,y=5}
            local b = {x=a}
            a['x'] = b
            local encoded = cmsgpack.pack(a)
            local h = ""
            for i = 1, #encoded do h = h .. string.format("%02x",string.byte(encoded,i)) end
            local re = cmsgpack.unpack(encoded)
            assert(re)
            assert(re.x)
            assert(re.x.x.y == re.y)
            assert(re.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x)
            assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil)
            return {h, tostring(re.x.x.x.x.x.x.x.x.y == re.y), tostring(re.y == 5)}
        "#;
        // Key order inside each map follows Lua's table iteration, as in Redis.
        let want = "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0";
        assert_eq!(eval(code), format!("{{{want},true,true}}"));
    }

    #[test]
    fn number_encodings() {
        let lua = state();
        let cases = [
            ("0", "00"),
            ("127", "7f"),
            ("128", "cc80"),
            ("255", "ccff"),
            ("256", "cd0100"),
            ("65536", "ce00010000"),
            ("2^32", "cf0000000100000000"),
            ("-1", "ff"),
            ("-32", "e0"),
            ("-33", "d0df"),
            ("-129", "d1ff7f"),
            ("-32769", "d2ffff7fff"),
            ("-2^31", "d280000000"),
            ("-2^31-1", "d3ffffffff7fffffff"),
            ("-2^63", "d38000000000000000"),
            ("2^63", "ca5f000000"),
            ("0.5", "ca3f000000"),
            ("-0.0", "00"),
            ("1/0", "ca7f800000"),
            ("1e300", "cb7e37e43c8800759c"),
        ];
        for (expr, hex) in cases {
            assert_eq!(run(&lua, &hex_of(expr)), hex, "{expr}");
        }
        assert!(run(&lua, &hex_of("0/0")).starts_with("cb"));
    }

    #[test]
    fn other_encodings() {
        let lua = state();
        assert_eq!(run(&lua, &hex_of("true, false, nil")), "c3c2c0");
        assert_eq!(run(&lua, &hex_of("'abc'")), "a3616263");
        assert_eq!(
            run(&lua, &hex_of("string.rep('a', 32)")).get(..4).unwrap(),
            "d920"
        );
        assert_eq!(
            run(&lua, &hex_of("string.rep('a', 256)")).get(..6).unwrap(),
            "da0100"
        );
        assert_eq!(
            run(&lua, &hex_of("string.rep('a', 65536)"))
                .get(..10)
                .unwrap(),
            "db00010000"
        );
        assert_eq!(run(&lua, &hex_of("{}")), "90");
        assert_eq!(run(&lua, &hex_of("{1, 2}")), "920102");
        assert_eq!(run(&lua, &hex_of("{[2]=1}")), "810201");
        assert_eq!(run(&lua, &hex_of("{[1]=1, [3]=3}")).get(..2).unwrap(), "82");
        assert_eq!(run(&lua, &hex_of("{a=1}")), "81a16101");
        assert_eq!(run(&lua, &hex_of("print")), "c0");
        let big = "local t = {} for i = 1, 16 do t[i] = i end";
        assert_eq!(
            run(&lua, &format!("{big} {}", hex_of("t"))),
            "dc0010".to_string() + &(1..=16).map(|i| format!("{i:02x}")).collect::<String>()
        );
        assert_eq!(
            run(&lua, "return cmsgpack.pack()"),
            "ERR:user_script:1: bad argument #0 to 'pack' (MessagePack pack needs input.)"
        );
    }

    #[test]
    fn nesting_limit_turns_deep_tables_into_nil() {
        let lua = state();
        let code =
            "local t = {} for i = 1, 20 do t = {t} end local r = cmsgpack.unpack(cmsgpack.pack(t))
                    local d = 0 while type(r) == 'table' do d = d + 1 r = r[1] end return d";
        assert_eq!(run(&lua, code), "16");
    }

    #[test]
    fn unpack_variants() {
        let lua = state();
        assert_eq!(
            run(
                &lua,
                "return select('#', cmsgpack.unpack(cmsgpack.pack(1, 2, 3)))"
            ),
            "3"
        );
        assert_eq!(
            run(
                &lua,
                "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', true))}"
            ),
            "{1,a,true}"
        );
        assert_eq!(run(&lua, "return select('#', cmsgpack.unpack(''))"), "0");
        assert_eq!(run(&lua, "return {cmsgpack.unpack_one('')}"), "{-1}");
        assert_eq!(
            run(&lua, "return {cmsgpack.unpack_one(cmsgpack.pack(7, 8))}"),
            "{1,7}"
        );
        assert_eq!(
            run(&lua, "return {cmsgpack.unpack_one(cmsgpack.pack(7, 8), 1)}"),
            "{-1,8}"
        );
        assert_eq!(
            run(
                &lua,
                "return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 2)}"
            ),
            "{2,7,8}"
        );
        // limit 0 and offset 0 means "everything", without an offset.
        assert_eq!(
            run(
                &lua,
                "return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 0)}"
            ),
            "{7,8,9}"
        );
        assert_eq!(
            run(
                &lua,
                "return {cmsgpack.unpack_limit(cmsgpack.pack(7, 8, 9), 0, 1)}"
            ),
            "{1}"
        );
        assert_eq!(
            run(&lua, "return cmsgpack.unpack_one('abc', 4)"),
            "ERR:user_script:1: Start offset 4 greater than input length 3."
        );
        assert_eq!(
            run(&lua, "return cmsgpack.unpack_limit('abc', -1, 1)"),
            "ERR:user_script:1: Invalid request to unpack with offset of 1 and limit of 3."
        );
        assert_eq!(
            run(&lua, "return cmsgpack.unpack_limit('abc')"),
            "ERR:user_script:1: bad argument #2 to 'unpack_limit' (number expected, got no value)"
        );
        assert_eq!(
            run(&lua, "return cmsgpack.unpack()"),
            "ERR:user_script:1: bad argument #1 to 'unpack' (string expected, got no value)"
        );
    }

    #[test]
    fn decodes_foreign_encodings() {
        let lua = state();
        let dec = |bytes: &str| run(&lua, &format!("return cmsgpack.unpack('{bytes}')"));
        assert_eq!(dec("\\204\\128"), "128"); // cc 80
        assert_eq!(dec("\\208\\128"), "-128"); // d0 80
        assert_eq!(dec("\\209\\128\\0"), "-32768"); // d1 8000
        assert_eq!(dec("\\210\\255\\255\\255\\254"), "-2"); // d2
        assert_eq!(dec("\\206\\255\\255\\255\\255"), "4294967295"); // ce
        assert_eq!(dec("\\207\\255\\255\\255\\255\\255\\255\\255\\255"), "-1"); // cf wraps
        assert_eq!(dec("\\211\\255\\255\\255\\255\\255\\255\\255\\255"), "-1"); // d3
        assert_eq!(dec("\\202\\63\\192\\0\\0"), "1.5"); // ca
        assert_eq!(dec("\\145\\1"), "{1}"); // fixarray
        assert_eq!(dec("\\220\\0\\2\\1\\2"), "{1,2}"); // array16
        assert_eq!(run(&lua, "return cmsgpack.unpack('\\129\\161a\\1').a"), "1");
        assert_eq!(run(&lua, "return cmsgpack.unpack('\\146\\192\\1')[2]"), "1");
    }

    #[test]
    fn decode_errors() {
        let lua = state();
        let err = |bytes: &str| {
            run(
                &lua,
                &format!("local ok, e = pcall(cmsgpack.unpack, '{bytes}') return e"),
            )
        };
        assert_eq!(err("\\204"), "Missing bytes in input.");
        assert_eq!(err("\\163ab"), "Missing bytes in input.");
        assert_eq!(err("\\146\\1"), "Missing bytes in input.");
        assert_eq!(err("\\219\\0\\0\\1\\0ab"), "Missing bytes in input.");
        assert_eq!(err("\\193"), "Bad data format in input.");
        assert_eq!(err("\\196\\1a"), "Bad data format in input.");
        assert_eq!(err("\\129\\192\\1"), "table index is nil");
        assert_eq!(
            err("\\129\\203\\127\\248\\0\\0\\0\\0\\0\\0\\1"),
            "table index is NaN"
        );
        assert_eq!(
            run(&lua, "return cmsgpack.unpack('\\204')"),
            "ERR:user_script:1: Missing bytes in input."
        );
    }

    #[test]
    fn too_many_values_at_once() {
        let lua = state();
        let many =
            |n: usize| format!("return select('#', cmsgpack.unpack(string.rep('\\1', {n})))");
        assert_eq!(run(&lua, &many(7999)), "7999");
        let limited = |n: usize| {
            format!("return select('#', cmsgpack.unpack_limit(string.rep('\\1', 7999), {n}))")
        };
        assert_eq!(run(&lua, &limited(7998)), "7999");
        assert_eq!(
            run(&lua, &limited(7999)),
            "ERR:user_script:1: stack overflow (in function mp_unpack_full)"
        );
        // Strings too: the results never sit in mlua handles all at once.
        assert_eq!(
            run(
                &lua,
                "return select('#', cmsgpack.unpack(string.rep('\\161a', 7999)))"
            ),
            "7999"
        );
        assert_eq!(
            run(&lua, &many(8000)),
            "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        assert_eq!(
            run(&lua, "return #cmsgpack.pack(string.rep('x', 4001):byte(1, -1))"),
            "ERR:user_script:1: bad argument #0 to 'pack' (Too many arguments for MessagePack pack.)"
        );
        assert_eq!(
            run(
                &lua,
                "return #cmsgpack.pack(string.rep('x', 4000):byte(1, -1))"
            ),
            "4000"
        );
    }

    #[test]
    fn nesting_limited_by_the_c_stack_as_in_redis() {
        let lua = state();
        let deep = |n: usize| {
            format!("local v = cmsgpack.unpack(string.rep('\\145', {n}) .. '\\1') local d = 0 while type(v) == 'table' do d = d + 1 v = v[1] end return d")
        };
        // Values from Redis 7: two C stack slots per array level.
        assert_eq!(run(&lua, &deep(3999)), "3999");
        assert_eq!(
            run(&lua, &deep(4000)),
            "ERR:user_script:1: stack overflow (in function mp_decode_to_lua_array)"
        );
        // A map nested in key position takes one slot per level.
        let keys = |n: usize| {
            format!("return select('#', cmsgpack.unpack(string.rep('\\129', {n}) .. '\\1' .. string.rep('\\1', {n})))")
        };
        assert_eq!(run(&lua, &keys(7997)), "1");
        assert_eq!(
            run(&lua, &keys(7998)),
            "ERR:user_script:1: stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
        );
        let maps = "return cmsgpack.unpack(string.rep('\\129\\161a', 5000) .. '\\1')";
        assert!(run(&lua, maps).starts_with("ERR:user_script:1: stack overflow"));
    }

    /// A random Lua value: scalars, arrays and string-keyed maps, nested.
    fn lua_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(|i| format!("{i}")),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            any::<bool>().prop_map(|b| b.to_string()),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| {
                let esc: String = b.iter().map(|c| format!("\\{c}")).collect();
                format!("'{esc}'")
            }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8)
                    .prop_map(|v| format!("{{{}}}", v.join(","))),
                proptest::collection::vec(("[a-z]{1,5}", inner), 0..8).prop_map(|v| {
                    let fields: Vec<String> = v
                        .into_iter()
                        .map(|(k, x)| format!("[\"{k}\"]={x}"))
                        .collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip_of_nested_values(v in lua_value()) {
            let lua = state();
            let code = format!(r#"
                local function same(a, b)
                    if type(a) ~= type(b) then return false end
                    if type(a) ~= "table" then return a == b end
                    for k, x in pairs(a) do if not same(x, b[k]) then return false end end
                    for k in pairs(b) do if a[k] == nil then return false end end
                    return true
                end
                local v = {v}
                local s = cmsgpack.pack(v, v)
                local a, b = cmsgpack.unpack(s)
                local off, c = cmsgpack.unpack_one(s)
                return same(v, a) and same(v, b) and same(v, c) and off == #s / 2
            "#);
            prop_assert_eq!(run(&lua, &code), "true");
        }
    }
}
