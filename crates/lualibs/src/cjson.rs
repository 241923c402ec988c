//! `cjson`: Lua CJSON 2.1.0 as bundled with Redis (`deps/lua/src/lua_cjson.c`).
//!
//! Encoding: tables whose keys are all positive integers become arrays (unless
//! excessively sparse), every other table an object with string keys (numbers
//! formatted with `%.14g`); an empty table is `{}`. Strings are escaped as
//! cjson does ("/" becomes "\/", control bytes and DEL `\u00XX`), other bytes
//! pass through. Decoding accepts what cjson's tokenizer accepts (including
//! `inf`, `nan` and hex numbers while `decode_invalid_numbers` is on) and
//! reports errors with cjson's texts and 1-based character positions. JSON
//! `null` is `cjson.null`, a NULL light userdata. Each `cjson` table (and each
//! `cjson.new()`) has its own configuration.

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Table, Value};

use crate::args::{as_number, for_each_pair, type_name, MAX_C_STACK};
use crate::held::{Held, Parking};
use crate::num::{f64_to_i32, format_g, strtod};
use crate::{make_fn, Args, Failure, Outcome, Walker};

/// One cjson instance's settings (`json_config_t`).
#[derive(Clone, Debug)]
struct Config {
    encode_sparse_convert: i32,
    encode_sparse_ratio: i32,
    encode_sparse_safe: i32,
    encode_max_depth: i32,
    encode_invalid_numbers: i32,
    encode_number_precision: i32,
    encode_keep_buffer: i32,
    decode_invalid_numbers: i32,
    decode_max_depth: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            encode_sparse_convert: 0,
            encode_sparse_ratio: 2,
            encode_sparse_safe: 10,
            encode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_number_precision: 14,
            encode_keep_buffer: 1,
            decode_invalid_numbers: 1,
            decode_max_depth: 1000,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

/// Creates a `cjson` table with a fresh default configuration.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    let with = |f: fn(&Lua, &Args, &mut Config) -> Outcome| {
        let cfg = cfg.clone();
        move |lua: &Lua, args: &Args| {
            let mut guard = cfg.lock().unwrap_or_else(|p| p.into_inner());
            f(lua, args, &mut guard)
        }
    };
    t.set("encode", make_fn(lua, with(encode))?)?;
    t.set("decode", make_fn(lua, with(decode))?)?;
    t.set("encode_sparse_array", make_fn(lua, with(cfg_sparse))?)?;
    t.set("encode_max_depth", make_fn(lua, with(cfg_encode_depth))?)?;
    t.set("decode_max_depth", make_fn(lua, with(cfg_decode_depth))?)?;
    t.set(
        "encode_number_precision",
        make_fn(lua, with(cfg_precision))?,
    )?;
    t.set("encode_keep_buffer", make_fn(lua, with(cfg_keep_buffer))?)?;
    t.set(
        "encode_invalid_numbers",
        make_fn(lua, with(cfg_encode_invalid))?,
    )?;
    t.set(
        "decode_invalid_numbers",
        make_fn(lua, with(cfg_decode_invalid))?,
    )?;
    t.set(
        "new",
        make_fn(lua, |lua, _| Ok(vec![Value::Table(create(lua)?)]))?,
    )?;
    t.set("null", null())?;
    t.set("_NAME", "cjson")?;
    t.set("_VERSION", "2.1.0")?;
    Ok(t)
}

/// `cjson.null`.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

// ===== configuration functions =====

/// `json_arg_init`: at most `n` arguments.
fn arg_init(args: &Args, n: usize) -> Result<(), Failure> {
    if args.len() > n {
        return Err(args.arg_error(n + 1, "found too many arguments"));
    }
    Ok(())
}

/// `json_integer_option`: sets `setting` from argument `i` when given (as a C
/// int, range-checked; the error always names argument 1, as cjson's does)
/// and returns the current value.
fn integer_option(
    lua: &Lua,
    args: &Args,
    i: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, Failure> {
    if !args.is_none_or_nil(i) {
        let value = args.check_integer(lua, i)? as i32;
        if !(min <= value && value <= max) {
            return Err(args.arg_error(1, &format!("expected integer between {min} and {max}")));
        }
        *setting = value;
    }
    Ok(Value::Number(*setting as f64))
}

/// `json_enum_option` with `bool_true` = 1: a boolean or one of `options`
/// sets the value; returns a boolean for off/on, else the option's name.
fn enum_option(
    lua: &Lua,
    args: &Args,
    i: usize,
    setting: &mut i32,
    options: &[&str],
) -> Result<Value, Failure> {
    match args.get(i) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = *b as i32,
        Some(_) => {
            let name = args.check_bytes(lua, i)?;
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(pos) => *setting = pos as i32,
                None => {
                    let msg = format!("invalid option '{}'", String::from_utf8_lossy(&name));
                    return Err(args.arg_error(i, &msg));
                }
            }
        }
    }
    Ok(if *setting == 0 || *setting == 1 {
        Value::Boolean(*setting == 1)
    } else {
        Value::String(lua.create_string(options[*setting as usize])?)
    })
}

const OFF_ON: &[&str] = &["off", "on"];

fn cfg_sparse(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 3)?;
    Ok(vec![
        enum_option(lua, args, 1, &mut cfg.encode_sparse_convert, OFF_ON)?,
        integer_option(lua, args, 2, &mut cfg.encode_sparse_ratio, 0, i32::MAX)?,
        integer_option(lua, args, 3, &mut cfg.encode_sparse_safe, 0, i32::MAX)?,
    ])
}

fn cfg_encode_depth(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    Ok(vec![integer_option(
        lua,
        args,
        1,
        &mut cfg.encode_max_depth,
        1,
        i32::MAX,
    )?])
}

fn cfg_decode_depth(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    Ok(vec![integer_option(
        lua,
        args,
        1,
        &mut cfg.decode_max_depth,
        1,
        i32::MAX,
    )?])
}

fn cfg_precision(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    Ok(vec![integer_option(
        lua,
        args,
        1,
        &mut cfg.encode_number_precision,
        1,
        14,
    )?])
}

/// The buffer is an implementation detail here; only the setting is kept.
fn cfg_keep_buffer(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    Ok(vec![enum_option(
        lua,
        args,
        1,
        &mut cfg.encode_keep_buffer,
        OFF_ON,
    )?])
}

fn cfg_encode_invalid(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    let opts = &["off", "on", "null"];
    Ok(vec![enum_option(
        lua,
        args,
        1,
        &mut cfg.encode_invalid_numbers,
        opts,
    )?])
}

fn cfg_decode_invalid(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    arg_init(args, 1)?;
    Ok(vec![enum_option(
        lua,
        args,
        1,
        &mut cfg.decode_invalid_numbers,
        OFF_ON,
    )?])
}

// ===== encoding =====

fn encode(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    if args.len() != 1 {
        return Err(args.arg_error(1, "expected 1 argument"));
    }
    let mut enc = Encoder {
        lua,
        cfg,
        out: Vec::new(),
        walker: None,
    };
    enc.encode(args.value(1))?;
    Ok(vec![Value::String(lua.create_string(&enc.out)?)])
}

struct Encoder<'a> {
    lua: &'a Lua,
    cfg: &'a Config,
    out: Vec<u8>,
    /// Made on the first object: most calls encode none.
    walker: Option<Walker>,
}

/// A table being written. The walk keeps its own stack (not Rust
/// recursion), so deep nesting cannot overflow a thread's stack. `slots` is
/// the Lua stack the C encoder would be using for this table's children.
enum Frame {
    Array {
        table: Held,
        next: i32,
        len: i32,
        slots: i64,
    },
    Object {
        table: Held,
        key: Held,
        first: bool,
        slots: i64,
    },
}

/// `json_encode_exception`: "Cannot serialise <type>: <reason>".
fn cannot(v: &Value, reason: &str) -> Failure {
    Failure::Raise(format!("Cannot serialise {}: {}", type_name(v), reason))
}

impl Encoder<'_> {
    /// Appends the JSON text of `root`: scalars directly, tables through
    /// the frame stack, in the order cjson writes them.
    fn encode(&mut self, root: Value) -> Result<(), Failure> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut parking = Parking::default();
        // The argument itself occupies one stack slot.
        let mut pending = Some((root, 1i64));
        loop {
            if let Some((v, slots)) = pending.take() {
                if let Value::Table(t) = &v {
                    let depth = stack.len() + 1;
                    let len = self.open(&v, t, depth as i64, slots)?;
                    let table = parking.hold(self.lua, depth, v)?;
                    stack.push(if len > 0 {
                        Frame::Array {
                            table,
                            next: 1,
                            len,
                            slots,
                        }
                    } else {
                        let key = Held::Here(Value::Nil);
                        Frame::Object {
                            table,
                            key,
                            first: true,
                            slots,
                        }
                    });
                } else {
                    self.scalar(&v)?;
                }
            }
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            let done = match top {
                Frame::Array {
                    table,
                    next,
                    len,
                    slots,
                } => {
                    if *next > *len {
                        self.out.push(b']');
                        true
                    } else {
                        if *next > 1 {
                            self.out.push(b',');
                        }
                        let item: Value = parking.table(table)?.raw_get(*next)?;
                        *next += 1;
                        pending = Some((item, *slots + 1));
                        false
                    }
                }
                Frame::Object {
                    table,
                    key,
                    first,
                    slots,
                } => {
                    let after = parking.get(key)?;
                    if self.walker.is_none() {
                        self.walker = Some(Walker::new(self.lua)?);
                    }
                    let walker = self.walker.as_ref().expect("made");
                    match walker.next_pair(&parking.table(table)?, after)? {
                        None => {
                            self.out.push(b'}');
                            true
                        }
                        Some((k, v)) => {
                            if !*first {
                                self.out.push(b',');
                            }
                            *first = false;
                            self.key(&k)?;
                            let old = std::mem::replace(key, Held::Here(Value::Nil));
                            parking.release(old)?;
                            *key = parking.hold(self.lua, depth, k)?;
                            // Key and value are on the C stack while the value is written.
                            pending = Some((v, *slots + 2));
                            false
                        }
                    }
                }
            };
            if done {
                match stack.pop().expect("top") {
                    Frame::Array { table, .. } => parking.release(table)?,
                    Frame::Object { table, key, .. } => {
                        parking.release(key)?;
                        parking.release(table)?;
                    }
                }
            }
        }
    }

    /// An object key: numbers as quoted `%.14g`, strings escaped.
    fn key(&mut self, k: &Value) -> Result<(), Failure> {
        match k {
            Value::Integer(_) | Value::Number(_) => {
                self.out.push(b'"');
                self.number(k)?;
                self.out.extend_from_slice(b"\":");
            }
            Value::String(s) => {
                self.string(&s.as_bytes());
                self.out.push(b':');
            }
            other => return Err(cannot(other, "table key must be a number or string")),
        }
        Ok(())
    }

    fn scalar(&mut self, v: &Value) -> Result<(), Failure> {
        match v {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => self.number(v)?,
            Value::Boolean(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            other => return Err(cannot(other, "type not supported")),
        }
        Ok(())
    }

    /// Starts table `t` at nesting `depth`: checks the depth (cjson also
    /// fails, with the same message, when its C stack is exhausted), decides
    /// array (its length) or object (0 or less) and writes the opening
    /// bracket.
    fn open(&mut self, v: &Value, t: &Table, depth: i64, slots: i64) -> Result<i32, Failure> {
        if depth > self.cfg.encode_max_depth as i64 || slots + 3 > MAX_C_STACK as i64 {
            return Err(Failure::Raise(format!(
                "Cannot serialise, excessive nesting ({depth})"
            )));
        }
        let len = self.array_length(v, t)?;
        self.out.push(if len > 0 { b'[' } else { b'{' });
        Ok(len)
    }

    /// `lua_array_length`: the array size when every key is an integer >= 1
    /// (and the table is not excessively sparse), else -1 (object). The
    /// maximum is kept in a C int, as cjson does.
    fn array_length(&self, table: &Value, t: &Table) -> Result<i32, Failure> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        let mut object = false;
        // A flat walk: for_each is faster than stepping with `next`.
        for_each_pair(t, |k, _| {
            match as_number(&k) {
                _ if object => {}
                Some(n) if n != 0.0 && n.floor() == n && n >= 1.0 => {
                    if n > max as f64 {
                        max = f64_to_i32(n);
                    }
                    items = items.wrapping_add(1);
                }
                _ => object = true,
            }
            Ok(())
        })?;
        if object {
            return Ok(-1);
        }
        let cfg = self.cfg;
        if cfg.encode_sparse_ratio > 0
            && max > items.wrapping_mul(cfg.encode_sparse_ratio)
            && max > cfg.encode_sparse_safe
        {
            if cfg.encode_sparse_convert == 0 {
                return Err(cannot(table, "excessively sparse array"));
            }
            return Ok(-1);
        }
        Ok(max)
    }

    /// `json_append_number`: `%.14g` (or the configured precision), with
    /// NaN/Inf refused, written as "nan"/"inf", or as null per
    /// `encode_invalid_numbers`.
    fn number(&mut self, v: &Value) -> Result<(), Failure> {
        let n = as_number(v).unwrap_or(0.0);
        let invalid = n.is_nan() || n.is_infinite();
        match self.cfg.encode_invalid_numbers {
            0 if invalid => return Err(cannot(v, "must not be NaN or Inf")),
            1 if n.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            0 | 1 => {}
            _ if invalid => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let prec = self.cfg.encode_number_precision as usize;
        self.out.extend_from_slice(format_g(n, prec).as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.reserve(s.len() + 2);
        self.out.push(b'"');
        for &c in s {
            match c {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                0..=0x1f | 0x7f => {
                    self.out
                        .extend_from_slice(format!("\\u{:04x}", c).as_bytes());
                }
                _ => self.out.push(c),
            }
        }
        self.out.push(b'"');
    }
}

// ===== decoding =====

/// Token kinds; the names are the ones cjson prints in its errors.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ObjBegin => "T_OBJ_BEGIN",
            Kind::ObjEnd => "T_OBJ_END",
            Kind::ArrBegin => "T_ARR_BEGIN",
            Kind::ArrEnd => "T_ARR_END",
            Kind::Str => "T_STRING",
            Kind::Number => "T_NUMBER",
            Kind::Boolean => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error => "T_ERROR",
        }
    }
}

struct Token {
    kind: Kind,
    /// 0-based position reported (+1) in errors.
    index: usize,
    string: Vec<u8>,
    number: f64,
    boolean: bool,
    /// For `Kind::Error`: what went wrong ("invalid token", ...).
    error: &'static str,
}

struct Parser<'a> {
    cfg: &'a Config,
    data: &'a [u8],
    ptr: usize,
    depth: i64,
}

fn decode(lua: &Lua, args: &Args, cfg: &mut Config) -> Outcome {
    if args.len() != 1 {
        return Err(args.arg_error(1, "expected 1 argument"));
    }
    let data = args.check_bytes(lua, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(Failure::Raise(
            "JSON parser does not support UTF-16 or UTF-32".into(),
        ));
    }
    let mut p = Parser {
        cfg,
        data: &data,
        ptr: 0,
        depth: 0,
    };
    let value = p.parse(lua)?;
    let token = p.next_token();
    if token.kind != Kind::End {
        return Err(parse_error("the end", &token));
    }
    Ok(vec![value])
}

/// `json_throw_parse_error`: "Expected <what> but found <token> at character <n>".
fn parse_error(expected: &str, token: &Token) -> Failure {
    let found = if token.kind == Kind::Error {
        token.error
    } else {
        token.kind.name()
    };
    Failure::Raise(format!(
        "Expected {} but found {} at character {}",
        expected,
        found,
        token.index + 1
    ))
}

fn hex_digit(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

impl Parser<'_> {
    /// The byte at `i`; the C parser reads a NUL-terminated string, so the end
    /// (and any embedded NUL) reads as 0.
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn token(&self, kind: Kind, index: usize) -> Token {
        Token {
            kind,
            index,
            string: Vec::new(),
            number: 0.0,
            boolean: false,
            error: "",
        }
    }

    fn error_token(&self, what: &'static str) -> Token {
        let mut t = self.token(Kind::Error, self.ptr);
        t.error = what;
        t
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        let start = self.ptr;
        let ch = self.at(start);
        let simple = match ch {
            b'{' => Some(Kind::ObjBegin),
            b'}' => Some(Kind::ObjEnd),
            b'[' => Some(Kind::ArrBegin),
            b']' => Some(Kind::ArrEnd),
            b',' => Some(Kind::Comma),
            b':' => Some(Kind::Colon),
            _ => None,
        };
        if let Some(kind) = simple {
            self.ptr += 1;
            return self.token(kind, start);
        }
        match ch {
            0 => return self.token(Kind::End, start),
            b'"' => return self.string_token(),
            b'-' | b'0'..=b'9' => {
                if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                    return self.error_token("invalid number");
                }
                return self.number_token();
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {}
            _ => return self.error_token("invalid token"),
        }
        let rest = &self.data[start..];
        if rest.starts_with(b"true") || rest.starts_with(b"false") {
            let truth = rest.starts_with(b"true");
            self.ptr += if truth { 4 } else { 5 };
            let mut t = self.token(Kind::Boolean, start);
            t.boolean = truth;
            return t;
        }
        if rest.starts_with(b"null") {
            self.ptr += 4;
            return self.token(Kind::Null, start);
        }
        if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            return self.number_token();
        }
        self.error_token("invalid token")
    }

    /// `json_is_invalid_number`: forms strtod takes but JSON does not (leading
    /// '+', hex, leading zeros, inf, nan).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let rest = &self.data[p.min(self.data.len())..];
        let starts = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        starts(b"inf") || starts(b"nan")
    }

    fn number_token(&mut self) -> Token {
        // A NUL (the end of the C string) stops strtod like any other byte
        // that cannot continue a number.
        let (value, used) = strtod(&self.data[self.ptr..]);
        if used == 0 {
            return self.error_token("invalid number");
        }
        let mut t = self.token(Kind::Number, self.ptr);
        t.number = value;
        self.ptr += used;
        t
    }

    fn string_token(&mut self) -> Token {
        let start = self.ptr;
        self.ptr += 1;
        let mut out = Vec::new();
        loop {
            let ch = self.at(self.ptr);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                return self.error_token("unexpected end of string");
            }
            if ch == b'\\' {
                let esc = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(&mut out) {
                            continue;
                        }
                        return self.error_token("invalid unicode escape code");
                    }
                    _ => return self.error_token("invalid escape code"),
                };
                out.push(esc);
                self.ptr += 2;
                continue;
            }
            out.push(ch);
            self.ptr += 1;
        }
        self.ptr += 1;
        let mut t = self.token(Kind::Str, start);
        t.string = out;
        t
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, i| Some(acc << 4 | hex_digit(self.at(at + i))?))
    }

    /// `\uXXXX` (or a surrogate pair of them) at `ptr`, appended as UTF-8.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.ptr + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.ptr + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        match cp {
            0..=0x7F => out.push(cp as u8),
            0x80..=0x7FF => {
                out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8])
            }
            0x800..=0xFFFF => out.extend_from_slice(&[
                0xE0 | (cp >> 12) as u8,
                0x80 | ((cp >> 6) & 0x3F) as u8,
                0x80 | (cp & 0x3F) as u8,
            ]),
            _ => out.extend_from_slice(&[
                0xF0 | (cp >> 18) as u8,
                0x80 | ((cp >> 12) & 0x3F) as u8,
                0x80 | ((cp >> 6) & 0x3F) as u8,
                0x80 | (cp & 0x3F) as u8,
            ]),
        }
        self.ptr += len;
        true
    }

    /// `json_decode_descend`: one level deeper, within `decode_max_depth` and
    /// the C stack (`needed` more slots on top of `slots`).
    fn descend(&mut self, slots: i64, needed: i64) -> Result<(), Failure> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth as i64 && slots + needed <= MAX_C_STACK as i64 {
            return Ok(());
        }
        Err(Failure::Raise(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr
        )))
    }

    /// Parses one JSON value into a Lua value. Open arrays and objects are
    /// kept on an explicit stack (not Rust recursion, parked in Lua when
    /// deep), so nesting is bounded only by cjson's own limits.
    fn parse(&mut self, lua: &Lua) -> Result<Value, Failure> {
        let mut stack: Vec<Open> = Vec::new();
        let mut parking = Parking::default();
        // The C stack in use: the argument, then per open object its table
        // and pending key, per open array its table.
        let mut slots: i64 = 1;
        let mut token = self.next_token();
        loop {
            let depth = stack.len() + 1;
            // `json_process_value` for `token`.
            let mut value = match token.kind {
                Kind::Str => Value::String(lua.create_string(&token.string)?),
                Kind::Number => Value::Number(token.number),
                Kind::Boolean => Value::Boolean(token.boolean),
                Kind::Null => null(),
                Kind::ObjBegin => {
                    self.descend(slots, 3)?;
                    let table = lua.create_table()?;
                    token = self.next_token();
                    if token.kind == Kind::ObjEnd {
                        self.depth -= 1;
                        Value::Table(table)
                    } else {
                        let table = parking.hold(lua, depth, Value::Table(table))?;
                        let key = self.object_key(lua, &token)?;
                        let key = parking.hold(lua, depth, Value::String(key))?;
                        stack.push(Open::Object { table, key });
                        slots += 2;
                        token = self.next_token();
                        continue;
                    }
                }
                Kind::ArrBegin => {
                    self.descend(slots, 2)?;
                    let table = lua.create_table()?;
                    token = self.next_token();
                    if token.kind == Kind::ArrEnd {
                        self.depth -= 1;
                        Value::Table(table)
                    } else {
                        let table = parking.hold(lua, depth, Value::Table(table))?;
                        stack.push(Open::Array { table, index: 1 });
                        slots += 1;
                        continue;
                    }
                }
                _ => return Err(parse_error("value", &token)),
            };
            // Store the finished value in its container; close containers
            // that end here, until one expects another value.
            loop {
                let depth = stack.len();
                let Some(top) = stack.last_mut() else {
                    return Ok(value);
                };
                let (end, what) = match top {
                    Open::Object { table, key } => {
                        parking.table(table)?.raw_set(parking.get(key)?, value)?;
                        (Kind::ObjEnd, "comma or object end")
                    }
                    Open::Array { table, index } => {
                        parking.table(table)?.raw_set(*index, value)?;
                        *index += 1;
                        (Kind::ArrEnd, "comma or array end")
                    }
                };
                token = self.next_token();
                if token.kind == end {
                    self.depth -= 1;
                    let table = match stack.pop().expect("top") {
                        Open::Object { table, key } => {
                            parking.release(key)?;
                            slots -= 2;
                            table
                        }
                        Open::Array { table, .. } => {
                            slots -= 1;
                            table
                        }
                    };
                    value = parking.get(&table)?;
                    parking.release(table)?;
                    continue;
                }
                if token.kind != Kind::Comma {
                    return Err(parse_error(what, &token));
                }
                token = self.next_token();
                if let Some(Open::Object { key, .. }) = stack.last_mut() {
                    let new_key = self.object_key(lua, &token)?;
                    let old = std::mem::replace(key, Held::Here(Value::Nil));
                    parking.release(old)?;
                    *key = parking.hold(lua, depth, Value::String(new_key))?;
                    token = self.next_token();
                }
                break;
            }
        }
    }

    /// An object member's key and its colon; the value's token follows.
    fn object_key(&mut self, lua: &Lua, token: &Token) -> Result<mlua::String, Failure> {
        if token.kind != Kind::Str {
            return Err(parse_error("object key string", token));
        }
        let key = lua.create_string(&token.string)?;
        let colon = self.next_token();
        if colon.kind != Kind::Colon {
            return Err(parse_error("colon", &colon));
        }
        Ok(key)
    }
}

/// An array or object being decoded.
enum Open {
    Object { table: Held, key: Held },
    Array { table: Held, index: i64 },
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use proptest::prelude::*;

    /// A random Lua value JSON can carry exactly: integers, strings of any
    /// bytes, booleans, arrays and string-keyed objects, nested.
    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            (-(1i64 << 40)..(1i64 << 40)).prop_map(|i| i.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            Just("cjson.null".to_string()),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| {
                let esc: String = b.iter().map(|c| format!("\\{c}")).collect();
                format!("'{esc}'")
            }),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..6)
                    .prop_map(|v| format!("{{{}}}", v.join(","))),
                proptest::collection::vec(("[a-z/\"]{1,4}", inner), 1..6).prop_map(|v| {
                    let fields: Vec<String> =
                        v.into_iter().map(|(k, x)| format!("[{k:?}]={x}")).collect();
                    format!("{{{}}}", fields.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn decode_inverts_encode(v in json_value()) {
            let code = format!(r#"
                local function same(a, b)
                    if type(a) ~= type(b) then return false end
                    if type(a) ~= "table" then return a == b end
                    for k, x in pairs(a) do if not same(x, b[k]) then return false end end
                    for k in pairs(b) do if a[k] == nil then return false end end
                    return true
                end
                local v = {v}
                local text = cjson.encode(v)
                return same(v, cjson.decode(text))
            "#);
            prop_assert_eq!(eval(&code), "true");
        }
    }

    #[test]
    fn numeric_decoding_as_in_the_redis_suite() {
        assert_eq!(
            eval(
                r#"return table.concat(cjson.decode("[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]"), " ")"#
            ),
            "0 -5000 -1 0.0003 1023.2 0"
        );
    }

    #[test]
    fn string_decoding_as_in_the_redis_suite() {
        assert_eq!(
            eval(r#"local d = cjson.decode('{"keya": "a", "keyb": "b"}') return {d.keya, d.keyb}"#),
            "{a,b}"
        );
    }

    /// The body of the Redis suite's "JSON smoke test", with its assertions.
    #[test]
    fn smoke_test_as_in_the_redis_suite() {
        let lua = state();
        let code = r#"
            local some_map = {
                s1="Some string", n1=100, a1={"Some","String","Array"},
                nil1=nil, b1=true, b2=false}
            local encoded = cjson.encode(some_map)
            local decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))
            cjson.encode_keep_buffer(false)
            encoded = cjson.encode(some_map)
            decoded = cjson.decode(encoded)
            assert(table.concat(some_map) == table.concat(decoded))
            local table1 = {one="one", [1]="one"}
            encoded = cjson.encode(table1)
            decoded = cjson.decode(encoded)
            assert(decoded["one"] == table1["one"])
            assert(decoded["1"] == table1[1])
            local array1 = {[1]="one", [2]="two"}
            encoded = cjson.encode(array1)
            decoded = cjson.decode(encoded)
            assert(table.concat(array1) == table.concat(decoded))
            local invalid_map = {}
            invalid_map[false] = "false"
            local ok, encoded = pcall(cjson.encode, invalid_map)
            assert(ok == false)
            cjson.encode_max_depth(1)
            ok, encoded = pcall(cjson.encode, some_map)
            assert(ok == false)
            cjson.decode_max_depth(1)
            ok, decoded = pcall(cjson.decode, '{"obj": {"array": [1,2,3,4]}}')
            assert(ok == false)
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == false)
            cjson.encode_invalid_numbers(true)
            ok, encoded = pcall(cjson.encode, {num1=0/0})
            assert(ok == true)
            cjson.decode_max_depth(1000)
            cjson.encode_max_depth(1000)
            cjson.encode_invalid_numbers(false)
            return "done"
        "#;
        assert_eq!(run(&lua, code), "done");
    }

    #[test]
    fn encodes_scalars() {
        let lua = state();
        let cases = [
            ("1", "1"),
            ("-0.0", "-0"),
            ("0.1", "0.1"),
            ("1/3", "0.33333333333333"),
            ("2^53", "9.007199254741e+15"),
            ("1e-5", "1e-05"),
            ("true", "true"),
            ("false", "false"),
            ("nil", "null"),
            ("cjson.null", "null"),
            ("'a/b\"c\\\\d'", r#""a\/b\"c\\d""#),
            (
                "'\\1\\8\\9\\10\\12\\13\\31\\127\\128'",
                "\"\\u0001\\b\\t\\n\\f\\r\\u001f\\u007f\u{fffd}\"",
            ),
            ("'héllo'", "\"héllo\""),
        ];
        for (lua_expr, json) in cases {
            assert_eq!(
                run(&lua, &format!("return cjson.encode({lua_expr})")),
                json,
                "{lua_expr}"
            );
        }
    }

    #[test]
    fn encodes_tables() {
        let lua = state();
        assert_eq!(run(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(run(&lua, "return cjson.encode({1,2,3})"), "[1,2,3]");
        assert_eq!(run(&lua, "return cjson.encode({1,nil,3})"), "[1,null,3]");
        assert_eq!(
            run(&lua, "return cjson.encode({a={b={}}})"),
            r#"{"a":{"b":{}}}"#
        );
        assert_eq!(
            run(&lua, "return cjson.encode({[1]='one', one='one'})").len(),
            r#"{"1":"one","one":"one"}"#.len()
        );
        assert_eq!(run(&lua, "return cjson.encode({[0]=1})"), r#"{"0":1}"#);
        assert_eq!(run(&lua, "return cjson.encode({[1.5]=1})"), r#"{"1.5":1}"#);
        assert_eq!(run(&lua, "return cjson.encode({[-1]=1})"), r#"{"-1":1}"#);
        assert_eq!(
            run(&lua, "return cjson.encode({[2^40]=1})"),
            r#"{"1099511627776":1}"#
        );
        // Both parts: an object whose integer keys become strings.
        let mixed = run(&lua, "return cjson.encode({[1]=1, [2]=2, x=3})");
        assert!(
            mixed.starts_with('{') && mixed.contains(r#""1":1"#) && mixed.contains(r#""x":3"#),
            "{mixed}"
        );
    }

    #[test]
    fn sparse_arrays() {
        let lua = state();
        // Up to the safe limit of 10, holes are filled with null.
        assert_eq!(
            run(&lua, "return cjson.encode({[10]=1})"),
            "[null,null,null,null,null,null,null,null,null,1]"
        );
        // Ratio 2: max index 11 with 6 items (11 <= 12) stays an array.
        assert_eq!(
            run(&lua, "return cjson.encode({1,2,3,4,5,[11]=11})"),
            "[1,2,3,4,5,null,null,null,null,null,11]"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({[11]=1})"),
            "ERR:user_script:1: Cannot serialise table: excessively sparse array"
        );
        assert_eq!(
            run(
                &lua,
                "local ok, e = pcall(cjson.encode, {[1]=1, [100]=2}) return e"
            ),
            "Cannot serialise table: excessively sparse array"
        );
        // convert: encode as an object instead.
        assert_eq!(
            run(&lua, "return {cjson.encode_sparse_array(true)}"),
            "{true,2,10}"
        );
        assert_eq!(run(&lua, "return cjson.encode({[11]=1})"), r#"{"11":1}"#);
        // ratio 0: always allow sparse arrays.
        assert_eq!(
            run(&lua, "return {cjson.encode_sparse_array(false, 0, 3)}"),
            "{false,0,3}"
        );
        assert_eq!(run(&lua, "return #cjson.encode({[1000]=1})"), "4998");
        assert_eq!(
            run(&lua, "return cjson.encode_sparse_array(nil, -1)"),
            "ERR:user_script:1: bad argument #1 to 'encode_sparse_array' (expected integer between 0 and 2147483647)"
        );
    }

    #[test]
    fn encode_errors() {
        let lua = state();
        assert_eq!(
            run(&lua, "return cjson.encode({[true]=1})"),
            "ERR:user_script:1: Cannot serialise boolean: table key must be a number or string"
        );
        assert_eq!(
            run(&lua, "return cjson.encode(print)"),
            "ERR:user_script:1: Cannot serialise function: type not supported"
        );
        assert_eq!(
            run(
                &lua,
                "return cjson.encode({a=coroutine.create(function() end)})"
            ),
            "ERR:user_script:1: Cannot serialise thread: type not supported"
        );
        assert_eq!(
            run(&lua, "return cjson.encode(0/0)"),
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({[1/0]=1})"),
            "ERR:user_script:1: Cannot serialise number: must not be NaN or Inf"
        );
        assert_eq!(
            run(&lua, "return cjson.encode()"),
            "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)"
        );
        assert_eq!(
            run(&lua, "return cjson.encode(1, 2)"),
            "ERR:user_script:1: bad argument #1 to 'encode' (expected 1 argument)"
        );
    }

    #[test]
    fn invalid_numbers_setting() {
        let lua = state();
        assert_eq!(run(&lua, "return cjson.encode_invalid_numbers()"), "false");
        assert_eq!(
            run(&lua, "return cjson.encode_invalid_numbers(true)"),
            "true"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({0/0, 1/0, -1/0})"),
            "[nan,inf,-inf]"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_invalid_numbers('null')"),
            "null"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({0/0, 1/0, 2})"),
            "[null,null,2]"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_invalid_numbers('off')"),
            "false"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_invalid_numbers('maybe')"),
            "ERR:user_script:1: bad argument #1 to 'encode_invalid_numbers' (invalid option 'maybe')"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_invalid_numbers(1, 2)"),
            "ERR:user_script:1: bad argument #2 to 'encode_invalid_numbers' (found too many arguments)"
        );
    }

    #[test]
    fn encode_depth() {
        let lua = state();
        assert_eq!(run(&lua, "return cjson.encode_max_depth()"), "1000");
        let nest = |n: usize| {
            format!("local t = {{}} for i = 1, {n} do t = {{t}} end return cjson.encode(t)")
        };
        // 1000 levels of arrays around an empty table = 1001 tables.
        assert_eq!(
            run(&lua, &nest(1000)),
            "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"
        );
        assert_eq!(run(&lua, &nest(999)).len(), 999 * 2 + 2);
        assert_eq!(
            run(&lua, "cjson.encode_max_depth(2) return cjson.encode({{1}})"),
            "[[1]]"
        );
        assert_eq!(
            run(&lua, "return cjson.encode({{{1}}})"),
            "ERR:user_script:1: Cannot serialise, excessive nesting (3)"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_max_depth(0)"),
            "ERR:user_script:1: bad argument #1 to 'encode_max_depth' (expected integer between 1 and 2147483647)"
        );
        // Beyond the configured depth the C stack limit takes over.
        assert_eq!(
            run(
                &lua,
                &format!("cjson.encode_max_depth(100000) {}", nest(9000))
            ),
            "ERR:user_script:1: Cannot serialise, excessive nesting (7998)"
        );
    }

    #[test]
    fn nesting_limited_by_the_c_stack_as_in_redis() {
        let lua = state();
        lua.load("cjson.encode_max_depth(100000) cjson.decode_max_depth(100000)")
            .exec()
            .unwrap();
        let nest = |n: usize| {
            format!("local t = {{}} for i = 1, {n} do t = {{a = t}} end return cjson.encode(t)")
        };
        // Values from Redis 7: two C stack slots per object level.
        assert_eq!(run(&lua, &nest(3997)).len(), 3997 * 6 + 2);
        assert_eq!(
            run(&lua, &nest(5000)),
            "ERR:user_script:1: Cannot serialise, excessive nesting (4000)"
        );
        let deep = |n: usize| {
            format!(
                "return cjson.decode(string.rep('{{\"a\":', {n}) .. '1' .. string.rep('}}', {n}))"
            )
        };
        assert_eq!(
            run(
                &lua,
                &format!(
                    "local t = (function() {} end)() return type(t.a.a)",
                    deep(3998)
                )
            ),
            "table"
        );
        assert_eq!(
            run(&lua, &deep(5000)),
            "ERR:user_script:1: Found too many nested data structures (4000) at character 19996"
        );
    }

    #[test]
    fn circular_reference_hits_the_depth_limit() {
        assert_eq!(
            eval("local a = {} a[1] = a return cjson.encode(a)"),
            "ERR:user_script:1: Cannot serialise, excessive nesting (1001)"
        );
    }

    #[test]
    fn decodes_values() {
        let lua = state();
        assert_eq!(
            run(&lua, r#"return cjson.decode('"a\\u00e9\\n\\/"')"#),
            "aé\n/"
        );
        assert_eq!(
            run(&lua, r#"return cjson.decode('"\\ud83d\\ude00"')"#),
            "😀"
        );
        assert_eq!(
            run(
                &lua,
                "return cjson.decode('[true,false,null]')[3] == cjson.null"
            ),
            "true"
        );
        assert_eq!(run(&lua, "return #cjson.decode('[1,2,3]')"), "3");
        assert_eq!(run(&lua, "return cjson.decode(' \\t\\r\\n 12 ')"), "12");
        assert_eq!(run(&lua, "return cjson.decode(123)"), "123");
        assert_eq!(run(&lua, "return type(cjson.decode('{}'))"), "table");
        assert_eq!(
            run(
                &lua,
                r#"return cjson.decode('{"a":{"b":[1,{"c":"d"}]}}').a.b[2].c"#
            ),
            "d"
        );
        assert_eq!(run(&lua, r#"return cjson.decode('{"a":1,"a":2}').a"#), "2");
        // Forms cjson's strtod-based number parser accepts by default.
        assert_eq!(run(&lua, "return cjson.decode('0x10')"), "16");
        assert_eq!(run(&lua, "return cjson.decode('+5')"), "5");
        assert_eq!(run(&lua, "return cjson.decode('012')"), "12");
        assert_eq!(run(&lua, "return cjson.decode('-Infinity')"), "-inf");
        assert_eq!(
            run(
                &lua,
                "return tostring(cjson.decode('nan') ~= cjson.decode('nan'))"
            ),
            "true"
        );
        assert_eq!(run(&lua, "return cjson.decode('1e400')"), "inf");
        // NUL ends the input like the C string it is.
        assert_eq!(run(&lua, "return cjson.decode('12\\0garbage')"), "12");
    }

    #[test]
    fn decode_errors() {
        let lua = state();
        let err = |json: &str| {
            run(
                &lua,
                &format!("local ok, e = pcall(cjson.decode, {json}) return e"),
            )
        };
        assert_eq!(
            err("'x'"),
            "Expected value but found invalid token at character 1"
        );
        assert_eq!(err("''"), "Expected value but found T_END at character 1");
        assert_eq!(
            err("'[1,2'"),
            "Expected comma or array end but found T_END at character 5"
        );
        assert_eq!(
            err("'[1,]'"),
            "Expected value but found T_ARR_END at character 4"
        );
        assert_eq!(
            err("'{\"a\" 1}'"),
            "Expected colon but found T_NUMBER at character 6"
        );
        assert_eq!(
            err("'{1:2}'"),
            "Expected object key string but found T_NUMBER at character 2"
        );
        assert_eq!(
            err("'{\"a\":1 \"b\"}'"),
            "Expected comma or object end but found T_STRING at character 8"
        );
        assert_eq!(
            err("'[] x'"),
            "Expected the end but found invalid token at character 4"
        );
        assert_eq!(
            err("'truex'"),
            "Expected the end but found invalid token at character 5"
        );
        assert_eq!(
            err("'nul'"),
            "Expected value but found invalid token at character 1"
        );
        assert_eq!(
            err("'\"abc'"),
            "Expected value but found unexpected end of string at character 5"
        );
        assert_eq!(
            err("'\"a\\\\qb\"'"),
            "Expected value but found invalid escape code at character 3"
        );
        assert_eq!(
            err("'\"\\\\u12g4\"'"),
            "Expected value but found invalid unicode escape code at character 2"
        );
        assert_eq!(
            err("'\"\\\\udc00\"'"),
            "Expected value but found invalid unicode escape code at character 2"
        );
        assert_eq!(
            err("'-'"),
            "Expected value but found invalid number at character 1"
        );
        assert_eq!(
            err("'\\0\\0'"),
            "JSON parser does not support UTF-16 or UTF-32"
        );
        // Through pcall the function has no name, as with luaL_argerror in C.
        assert_eq!(
            err("'[1,2]', 3"),
            "bad argument #1 to '?' (expected 1 argument)"
        );
        assert_eq!(
            run(&lua, "return cjson.decode({})"),
            "ERR:user_script:1: bad argument #1 to 'decode' (string expected, got table)"
        );
        assert_eq!(
            run(&lua, "return cjson.decode('[')"),
            "ERR:user_script:1: Expected value but found T_END at character 2"
        );
    }

    #[test]
    fn decode_invalid_numbers_off() {
        let lua = state();
        assert_eq!(
            run(&lua, "return cjson.decode_invalid_numbers(false)"),
            "false"
        );
        let err = |json: &str| {
            run(
                &lua,
                &format!("local ok, e = pcall(cjson.decode, '{json}') return e"),
            )
        };
        assert_eq!(
            err("0x10"),
            "Expected value but found invalid number at character 1"
        );
        assert_eq!(
            err("[1, 012]"),
            "Expected value but found invalid number at character 5"
        );
        assert_eq!(
            err("-inf"),
            "Expected value but found invalid number at character 1"
        );
        assert_eq!(
            err("inf"),
            "Expected value but found invalid token at character 1"
        );
        assert_eq!(
            err("+1"),
            "Expected value but found invalid token at character 1"
        );
        assert_eq!(run(&lua, "return cjson.decode('-0.5e1')"), "-5");
    }

    #[test]
    fn decode_depth() {
        let lua = state();
        assert_eq!(
            run(&lua, "cjson.decode_max_depth(1) local ok, e = pcall(cjson.decode, '{\"obj\": {\"array\": [1,2,3,4]}}') return e"),
            "Found too many nested data structures (2) at character 9"
        );
        assert_eq!(run(&lua, "return cjson.decode('[1]')[1]"), "1");
        assert_eq!(run(&lua, "return cjson.decode_max_depth(1000)"), "1000");
        let deep =
            |n: usize| format!("return cjson.decode(string.rep('[', {n}) .. string.rep(']', {n}))");
        assert_eq!(
            run(
                &lua,
                &format!("local t = {} return type(t[1][1])", &deep(1000)[7..])
            ),
            "table"
        );
        assert_eq!(
            run(&lua, &deep(1001)),
            "ERR:user_script:1: Found too many nested data structures (1001) at character 1001"
        );
    }

    #[test]
    fn configuration_functions() {
        let lua = state();
        assert_eq!(run(&lua, "return cjson.encode_keep_buffer()"), "true");
        assert_eq!(run(&lua, "return cjson.encode_keep_buffer('off')"), "false");
        assert_eq!(run(&lua, "return cjson.encode_number_precision()"), "14");
        assert_eq!(
            run(
                &lua,
                "cjson.encode_number_precision(3) return cjson.encode(3.14159)"
            ),
            "3.14"
        );
        assert_eq!(
            run(&lua, "return cjson.encode_number_precision(15)"),
            "ERR:user_script:1: bad argument #1 to 'encode_number_precision' (expected integer between 1 and 14)"
        );
        assert_eq!(run(&lua, "return cjson.decode_invalid_numbers()"), "true");
        assert_eq!(
            run(&lua, "return cjson._NAME .. ' ' .. cjson._VERSION"),
            "cjson 2.1.0"
        );
        // new() makes an instance with its own, default configuration.
        assert_eq!(
            run(
                &lua,
                "local c = cjson.new() return c.encode_number_precision()"
            ),
            "14"
        );
        assert_eq!(run(&lua, "return cjson.encode_number_precision()"), "3");
    }

    #[test]
    fn round_trip_keeps_values() {
        let lua = state();
        let code = r#"
            local t = {s = "x\0y", n = -1.25e-10, a = {1, "two", {three = 3}}, b = false}
            local d = cjson.decode(cjson.encode(t))
            return d.s == t.s and d.n == t.n and d.a[2] == "two" and d.a[3].three == 3 and d.b == false
        "#;
        assert_eq!(run(&lua, code), "true");
    }
}
