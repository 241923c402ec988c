//! Lua 5.1 states (through mlua) and the conversions between Lua values and
//! RESP, as Redis's `script_lua.c` does them.
//!
//! Every worker thread owns two Lua states, created on first use: one for
//! EVAL scripts and one for function libraries. Both run `prelude.lua`,
//! which builds the sandbox (read-only tables, protected globals) and the
//! `redis` table on top of a few Rust primitives defined here.

use super::Run;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use resp::{Proto, Reply};
use std::cell::Cell;

/// The Lua side of a state: the sandboxed globals and the runner.
pub struct Engine {
    pub lua: Lua,
    /// `run(f, a, b)`: calls `f(a, b)` under Redis's error handler and
    /// returns `ok, value`.
    run: Function,
    /// The table behind the protected globals (KEYS and ARGV go here).
    pub real: Table,
    /// The protected globals (the environment of user code).
    pub globals: Table,
    /// Function engines only: runs a library's code with the load-time API.
    pub load: Option<Function>,
}

const PRELUDE: &str = include_str!("prelude.lua");
/// Instructions between two checks for SCRIPT KILL and the busy threshold.
const HOOK_EVERY: u32 = 1000;

thread_local! {
    /// The script running on this thread (null when none).
    pub static CURRENT: Cell<*mut Run> = const { Cell::new(std::ptr::null_mut()) };
    /// Redis's `math.random` generator state (48-bit rand48).
    static RAND48: Cell<u64> = const { Cell::new(0x1234_ABCD_330E) };
}

/// Builds Redis's error table `{err="CODE msg"}` from "-CODE msg" or "msg"
/// (luaPushErrorBuff).
pub fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let (code, text) = match msg.strip_prefix('-') {
        Some(rest) => match rest.split_once(' ') {
            Some((c, m)) => (c.to_string(), m.to_string()),
            None => ("ERR".to_string(), rest.to_string()),
        },
        None => ("ERR".to_string(), msg.to_string()),
    };
    let text = text.trim_matches(|c| c == '\r' || c == '\n');
    let t = lua.create_table()?;
    t.raw_set("err", format!("{code} {text}"))?;
    Ok(t)
}

fn rand48_next() -> i32 {
    RAND48.with(|s| {
        let x = (s.get().wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & ((1 << 48) - 1);
        s.set(x);
        (x >> 17) as i32
    })
}

fn num_arg(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => strutil::parse_f64(&s.as_bytes()),
        _ => None,
    }
}

/// Redis's `math.random` (Lua's algorithm over rand48, so a seed gives the
/// same sequence everywhere).
fn math_random(_: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let r = (rand48_next() % i32::MAX) as f64 / i32::MAX as f64;
    let args: Vec<Value> = args.into_iter().collect();
    let int_arg = |i: usize| -> mlua::Result<i64> {
        num_arg(args.get(i)).map(|n| n as i64).ok_or_else(|| {
            mlua::Error::runtime(format!(
                "bad argument #{} to 'random' (number expected)",
                i + 1
            ))
        })
    };
    match args.len() {
        0 => Ok(r),
        1 => {
            let u = int_arg(0)?;
            if u < 1 {
                return Err(mlua::Error::runtime(
                    "bad argument #1 to 'random' (interval is empty)",
                ));
            }
            Ok((r * u as f64).floor() + 1.0)
        }
        2 => {
            let (l, u) = (int_arg(0)?, int_arg(1)?);
            if l > u {
                return Err(mlua::Error::runtime(
                    "bad argument #2 to 'random' (interval is empty)",
                ));
            }
            Ok((r * (u - l + 1) as f64).floor() + l as f64)
        }
        _ => Err(mlua::Error::runtime("wrong number of arguments")),
    }
}

fn math_randomseed(_: &Lua, seed: Value) -> mlua::Result<()> {
    let s = num_arg(Some(&seed)).unwrap_or(0.0) as i64 as i32 as u32 as u64;
    RAND48.with(|r| r.set((s << 16) | 0x330E));
    Ok(())
}

/// Converts the arguments of redis.call into an argv, or the error Redis gives.
pub fn args_to_argv(args: &MultiValue) -> Result<Vec<Vec<u8>>, &'static str> {
    if args.is_empty() {
        return Err("Please specify at least one argument for this redis lib call");
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::Integer(i) => argv.push(i.to_string().into_bytes()),
            Value::Number(n) => {
                let n = *n;
                if n.fract() == 0.0 && n.abs() < 9.2e18 {
                    argv.push((n as i64).to_string().into_bytes());
                } else {
                    argv.push(strutil::format_double(n).into_bytes());
                }
            }
            Value::String(s) => argv.push(s.as_bytes().to_vec()),
            _ => return Err("Lua redis lib command arguments must be strings or integers"),
        }
    }
    Ok(argv)
}

/// Defines a C function that calls the Rust primitive stored in the
/// registry under `$key` (which returns `failed, value`) and raises
/// `value` when it failed. Being a C function keeps the caller's frame on
/// the stack even for `return redis.call(...)` (a tail call), so errors
/// point at the user's line as Redis's do.
macro_rules! raiser {
    ($name:ident, $key:literal) => {
        unsafe extern "C-unwind" fn $name(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
            use mlua::ffi;
            let n = ffi::lua_gettop(l);
            ffi::lua_getfield(
                l,
                ffi::LUA_REGISTRYINDEX,
                concat!($key, "\0").as_ptr() as *const std::os::raw::c_char,
            );
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, n, 2);
            if ffi::lua_toboolean(l, -2) != 0 {
                ffi::lua_error(l);
            }
            1
        }
    };
}

raiser!(c_call, "lodestone.call");
raiser!(c_acl, "lodestone.acl_check_cmd");
raiser!(c_sha1hex, "lodestone.sha1hex");
raiser!(c_log, "lodestone.log");
raiser!(c_setresp, "lodestone.setresp");
raiser!(c_set_repl, "lodestone.set_repl");
raiser!(c_register, "lodestone.register_function");

/// Registers a Rust primitive and the C raiser that calls it.
fn raising(
    lua: &Lua,
    raw: &Table,
    name: &str,
    f: Function,
    c: mlua::ffi::lua_CFunction,
) -> mlua::Result<()> {
    lua.set_named_registry_value(&format!("lodestone.{name}"), f)?;
    // SAFETY: the raiser only uses the Lua C API on its own stack.
    raw.set(name, unsafe { lua.create_c_function(c)? })
}

type Outcome = (bool, Value);

fn failed(lua: &Lua, msg: &str) -> mlua::Result<Outcome> {
    Ok((true, Value::Table(error_table(lua, msg)?)))
}

fn raw_api(lua: &Lua, mode: &str) -> mlua::Result<Table> {
    let raw = lua.create_table()?;
    raw.set(
        "rawcall",
        lua.create_function(|lua, args: MultiValue| {
            let p = CURRENT.with(|c| c.get());
            if p.is_null() {
                return Ok((
                    true,
                    Value::Table(error_table(
                        lua,
                        "redis.call can only be called inside a script invocation",
                    )?),
                ));
            }
            // SAFETY: CURRENT points at the Run that the script's caller
            // keeps alive (and does not touch) while Lua runs.
            let run = unsafe { &mut *p };
            run.call(lua, args)
        })?,
    )?;
    raising(lua, &raw, "call", raw.get("rawcall")?, c_call)?;
    let acl = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Outcome> {
        let argv = match args_to_argv(&args) {
            Ok(a) => a,
            Err(e) => return Ok((true, Value::Table(error_table(lua, e)?))),
        };
        let p = CURRENT.with(|c| c.get());
        if p.is_null() {
            return Ok((true, Value::Nil));
        }
        let run = unsafe { &mut *p };
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        match run.acl_allows(&argv) {
            Some(ok) => Ok((false, Value::Boolean(ok))),
            None => failed(lua, "Invalid command passed to redis.acl_check_cmd()"),
        }
    })?;
    raising(lua, &raw, "acl_check_cmd", acl, c_acl)?;
    raw.set(
        "error_reply",
        lua.create_function(|lua, args: MultiValue| {
            let msg = match (args.len(), args.front()) {
                (1, Some(Value::String(s))) => s.to_string_lossy().to_string(),
                _ => return error_table(lua, "wrong number or type of arguments"),
            };
            let msg = if msg.starts_with('-') {
                msg
            } else {
                format!("-{msg}")
            };
            error_table(lua, &msg)
        })?,
    )?;
    let sha = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Outcome> {
        if args.len() != 1 {
            return failed(lua, "wrong number of arguments");
        }
        let bytes = match &args[0] {
            Value::String(s) => s.as_bytes().to_vec(),
            Value::Integer(i) => i.to_string().into_bytes(),
            Value::Number(n) => strutil::format_double(*n).into_bytes(),
            _ => Vec::new(),
        };
        let hex = sha1_smol::Sha1::from(&bytes).digest().to_string();
        Ok((false, Value::String(lua.create_string(hex)?)))
    })?;
    raising(lua, &raw, "sha1hex", sha, c_sha1hex)?;
    let f = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Option<Table>> {
        if args.len() < 2 {
            return Ok(Some(error_table(
                lua,
                "redis.log() requires two arguments or more.",
            )?));
        }
        let Some(level) = num_arg(args.front()) else {
            return Ok(Some(error_table(
                lua,
                "First argument must be a number (log level).",
            )?));
        };
        let level = level as i64;
        if !(0..=3).contains(&level) {
            return Ok(Some(error_table(lua, "Invalid debug level.")?));
        }
        let parts: Vec<String> = args
            .iter()
            .skip(1)
            .filter_map(|v| match v {
                Value::String(s) => Some(s.to_string_lossy().to_string()),
                Value::Integer(i) => Some(i.to_string()),
                Value::Number(n) => Some(strutil::format_double(*n)),
                _ => None,
            })
            .collect();
        if level >= 2 {
            eprintln!("{}", parts.join(" "));
        }
        Ok(None)
    })?;
    raising(lua, &raw, "log", outcome(lua, f)?, c_log)?;
    let f = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Option<Table>> {
        if args.len() != 1 {
            return Ok(Some(error_table(
                lua,
                "redis.setresp() requires one argument.",
            )?));
        }
        let v = num_arg(args.front()).unwrap_or(0.0) as i64;
        if v != 2 && v != 3 {
            return Ok(Some(error_table(lua, "RESP version must be 2 or 3.")?));
        }
        let p = CURRENT.with(|c| c.get());
        if !p.is_null() {
            let run = unsafe { &mut *p };
            run.client.proto = if v == 3 { Proto::Resp3 } else { Proto::Resp2 };
        }
        Ok(None)
    })?;
    raising(lua, &raw, "setresp", outcome(lua, f)?, c_setresp)?;
    let f = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Option<Table>> {
        if args.len() != 1 {
            return Ok(Some(error_table(
                lua,
                "redis.set_repl() requires one argument.",
            )?));
        }
        let v = num_arg(args.front()).unwrap_or(-1.0) as i64;
        if !(0..=3).contains(&v) {
            return Ok(Some(error_table(
                lua,
                "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
            )?));
        }
        let p = CURRENT.with(|c| c.get());
        if !p.is_null() {
            unsafe { (*p).repl_flags = v as u8 };
        }
        Ok(None)
    })?;
    raising(lua, &raw, "set_repl", outcome(lua, f)?, c_set_repl)?;
    raw.set("random", lua.create_function(math_random)?)?;
    raw.set("randomseed", lua.create_function(math_randomseed)?)?;
    raw.set("version", crate::REDIS_VERSION)?;
    let num: f64 = crate::REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0))
        .fold(0u32, |acc, p| (acc << 8) | p) as f64;
    raw.set("version_num", num)?;
    if mode == "function" {
        let f = lua.create_function(super::functions::register_function)?;
        raising(lua, &raw, "register_function", outcome(lua, f)?, c_register)?;
    }
    Ok(raw)
}

/// Adapts a primitive returning `nil | error table` to `failed, value`.
fn outcome(lua: &Lua, f: Function) -> mlua::Result<Function> {
    lua.create_function(move |_, args: MultiValue| -> mlua::Result<Outcome> {
        match f.call::<Option<Table>>(args)? {
            Some(t) => Ok((true, Value::Table(t))),
            None => Ok((false, Value::Nil)),
        }
    })
}

impl Engine {
    /// Creates a Lua state with the sandbox and the `redis` API. `mode` is
    /// "eval" or "function" (function states also get the load-time API).
    pub fn new(mode: &str) -> mlua::Result<Engine> {
        // SAFETY: the debug library is needed by the error handler; the
        // prelude keeps it private (scripts cannot reach it).
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::default(),
            )
        };
        // cjson, cmsgpack, bit and struct, frozen by the prelude with the rest.
        lualibs::install(&lua)?;
        let raw = raw_api(&lua, mode)?;
        let dbg: Value = lua.globals().get("debug")?;
        let api: Table = lua
            .load(PRELUDE)
            .set_name("=lodestone")
            .call((raw, dbg, mode))?;
        let globals: Table = api.get("globals")?;
        let real: Table = api.get("real")?;
        lua.set_globals(globals.clone())?;
        Ok(Engine {
            run: api.get("run")?,
            load: api.get("load")?,
            real,
            globals,
            lua,
        })
    }

    /// Compiles a chunk of user code with the protected globals.
    pub fn compile(&self, code: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(name)
            .set_environment(self.globals.clone())
            .into_function()
            .map_err(|e| lua_error_text(&e))
    }

    /// Runs `f(a, b)` under the error handler, with the kill/busy hook.
    pub fn call(&self, f: &Function, a: Value, b: Value) -> mlua::Result<(bool, Value)> {
        self.lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            |_, _| {
                let p = CURRENT.with(|c| c.get());
                if p.is_null() {
                    return Ok(VmState::Continue);
                }
                // SAFETY: as in redis.call.
                let run = unsafe { &mut *p };
                run.tick()
            },
        )?;
        let r = self.run.call::<(bool, Value)>((f.clone(), a, b));
        self.lua.remove_hook();
        r
    }

    /// An array of strings as a Lua table.
    pub fn array(&self, items: &[&[u8]]) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, a) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(a)?)?;
        }
        Ok(t)
    }

    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

/// The message of a Lua compile or runtime error, without mlua's decoration.
pub fn lua_error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// Parses one RESP reply at `buf[*pos..]` into a Lua value, as Redis's
/// `redisProtocolToLuaType` does.
pub fn resp_to_lua(lua: &Lua, buf: &[u8], pos: &mut usize) -> mlua::Result<Value> {
    let line_end = |p: usize| -> usize {
        buf[p..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(buf.len(), |i| p + i)
    };
    if *pos >= buf.len() {
        return Ok(Value::Nil);
    }
    let kind = buf[*pos];
    let end = line_end(*pos + 1);
    let line = &buf[*pos + 1..end];
    *pos = (end + 2).min(buf.len());
    let n = || strutil::parse_i64(line).unwrap_or(0);
    let field = |name: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(name, v)?;
        Ok(Value::Table(t))
    };
    Ok(match kind {
        b'+' => field("ok", Value::String(lua.create_string(line)?))?,
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(line)?)?;
            t.raw_set("ignore_error_stats_update", true)?;
            Value::Table(t)
        }
        b':' => Value::Number(n() as f64),
        b'$' => {
            let len = n();
            if len < 0 {
                Value::Boolean(false)
            } else {
                let s = &buf[*pos..(*pos + len as usize).min(buf.len())];
                *pos = (*pos + len as usize + 2).min(buf.len());
                Value::String(lua.create_string(s)?)
            }
        }
        b'*' | b'>' => {
            let len = n();
            if len < 0 {
                Value::Boolean(false)
            } else {
                let t = lua.create_table_with_capacity(len as usize, 0)?;
                for i in 0..len {
                    let v = resp_to_lua(lua, buf, pos)?;
                    t.raw_set(i + 1, v)?;
                }
                Value::Table(t)
            }
        }
        b'%' => {
            let t = lua.create_table()?;
            for _ in 0..n() {
                let k = resp_to_lua(lua, buf, pos)?;
                let v = resp_to_lua(lua, buf, pos)?;
                if !k.is_nil() {
                    t.raw_set(k, v)?;
                }
            }
            field("map", Value::Table(t))?
        }
        b'~' => {
            let t = lua.create_table()?;
            for _ in 0..n() {
                let k = resp_to_lua(lua, buf, pos)?;
                if !k.is_nil() {
                    t.raw_set(k, true)?;
                }
            }
            field("set", Value::Table(t))?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(line == b"t"),
        b',' => field(
            "double",
            Value::Number(strutil::parse_f64(line).unwrap_or(f64::NAN)),
        )?,
        b'(' => field("big_number", Value::String(lua.create_string(line)?))?,
        b'=' => {
            let len = n().max(0) as usize;
            let s = &buf[*pos..(*pos + len).min(buf.len())];
            *pos = (*pos + len + 2).min(buf.len());
            let (fmt, text) = if s.len() >= 4 {
                (&s[..3], &s[4..])
            } else {
                (&b"txt"[..], s)
            };
            let v = lua.create_table()?;
            v.raw_set("string", lua.create_string(text)?)?;
            v.raw_set("format", lua.create_string(fmt)?)?;
            field("verbatim_string", Value::Table(v))?
        }
        b'|' => {
            // Attributes are skipped; the value follows.
            for _ in 0..2 * n() {
                resp_to_lua(lua, buf, pos)?;
            }
            resp_to_lua(lua, buf, pos)?
        }
        _ => Value::Nil,
    })
}

/// Writes a script's return value as the reply to its caller
/// (luaReplyToRedisReply). `script_resp3` is the protocol the script chose
/// with redis.setresp.
pub fn lua_to_reply(r: &mut Reply, v: &Value, script_resp3: bool, depth: usize) {
    if depth > 1000 {
        r.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => r.bulk(&s.as_bytes()),
        Value::Boolean(b) => {
            if script_resp3 {
                r.boolean(*b)
            } else if *b {
                r.int(1)
            } else {
                r.null()
            }
        }
        Value::Integer(i) => r.int(*i),
        Value::Number(n) => r.int(*n as i64),
        Value::Table(t) => table_to_reply(r, t, script_resp3, depth),
        _ => r.null(),
    }
}

fn table_to_reply(r: &mut Reply, t: &Table, resp3: bool, depth: usize) {
    let get = |k: &str| t.raw_get::<Value>(k).unwrap_or(Value::Nil);
    if let Value::String(e) = get("err") {
        let msg = e.to_string_lossy().to_string();
        r.error(&msg);
        return;
    }
    if let Value::String(s) = get("ok") {
        r.simple_bytes(&s.as_bytes());
        return;
    }
    match get("double") {
        Value::Number(n) => return r.double_text(strutil::format_double(n).as_bytes()),
        Value::Integer(i) => return r.double_text(strutil::format_double(i as f64).as_bytes()),
        _ => {}
    }
    if let Value::String(s) = get("big_number") {
        let text: Vec<u8> = s
            .as_bytes()
            .iter()
            .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c })
            .collect();
        r.big_number(&text);
        return;
    }
    if let Value::Table(v) = get("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            let f = f.to_string_lossy().to_string();
            let f = if f.len() >= 3 {
                f[..3].to_string()
            } else {
                format!("{f:<3}")
            };
            r.verbatim(&s.as_bytes(), &f);
            return;
        }
    }
    if let Value::Table(m) = get("map") {
        let d = r.begin_deferred();
        let mut n = 0;
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            lua_to_reply(r, &k, resp3, depth + 1);
            lua_to_reply(r, &v, resp3, depth + 1);
            n += 1;
        }
        r.end_deferred(d, resp::Aggregate::Map, n);
        return;
    }
    if let Value::Table(s) = get("set") {
        let d = r.begin_deferred();
        let mut n = 0;
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            lua_to_reply(r, &k, resp3, depth + 1);
            n += 1;
        }
        r.end_deferred(d, resp::Aggregate::Set, n);
        return;
    }
    let d = r.begin_deferred();
    let mut n = 0;
    loop {
        let v: Value = t.raw_get(n + 1).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        lua_to_reply(r, &v, resp3, depth + 1);
        n += 1;
    }
    r.end_deferred(d, resp::Aggregate::Array, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(e: &Engine, code: &str) -> Vec<u8> {
        let f = e.compile(code.as_bytes(), "@user_script").unwrap();
        let (ok, v) = e.call(&f, Value::Nil, Value::Nil).unwrap();
        let mut out = Vec::new();
        let mut r = Reply::new(&mut out, Proto::Resp2);
        if ok {
            lua_to_reply(&mut r, &v, false, 0);
        } else {
            let t = v.as_table().unwrap();
            let m: String = t.get("err").unwrap();
            r.error(&m);
        }
        out
    }

    #[test]
    fn conversions_and_sandbox() {
        let e = Engine::new("eval").unwrap();
        assert_eq!(eval(&e, "return 100.5"), b":100\r\n");
        assert_eq!(
            eval(&e, "return {1,2,3,'ciao',{1,2}}"),
            b"*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
        );
        assert_eq!(eval(&e, "return {1,nil,3}"), b"*1\r\n:1\r\n");
        assert_eq!(eval(&e, "return true"), b":1\r\n");
        assert_eq!(eval(&e, "return false"), b"$-1\r\n");
        assert_eq!(eval(&e, "return {ok='fine'}"), b"+fine\r\n");
        assert_eq!(
            eval(&e, "return {err='ERR this is an error'}"),
            b"-ERR this is an error\r\n"
        );
        assert_eq!(
            eval(&e, "return redis.sha1hex('Pizza & Mandolino')"),
            b"$40\r\n74822d82031af7493c20eefa13bd07ec4fada82f\r\n"
        );
        let g = String::from_utf8(eval(&e, "return a")).unwrap();
        assert!(
            g.contains("Script attempted to access nonexistent global variable 'a'"),
            "{g}"
        );
        let w = String::from_utf8(eval(&e, "a = 10")).unwrap();
        assert!(w.contains("Attempt to modify a readonly table"), "{w}");
        let w = String::from_utf8(eval(&e, "setmetatable(_G, {})")).unwrap();
        assert!(w.contains("Attempt to modify a readonly table"), "{w}");
        let w = String::from_utf8(eval(&e, "local g = getmetatable(_G); g.__index = {}")).unwrap();
        assert!(w.contains("Attempt to modify a readonly table"), "{w}");
        let w = String::from_utf8(eval(&e, "redis.call = function() return 1 end")).unwrap();
        assert!(w.contains("Attempt to modify a readonly table"), "{w}");
        let w = String::from_utf8(eval(
            &e,
            "return loadstring(string.dump(function() return 1 end))()",
        ))
        .unwrap();
        assert!(w.contains("attempt to call a nil value"), "{w}");
        let w = String::from_utf8(eval(&e, "print('x')")).unwrap();
        assert!(w.contains("nonexistent global variable 'print'"), "{w}");
        assert_eq!(
            eval(&e, "return redis.error_reply('My Error')"),
            b"-My Error\r\n"
        );
        assert_eq!(eval(&e, "return redis.status_reply('x')"), b"+x\r\n");
        assert_eq!(
            eval(&e, "return pcall(function() error({err='E x'}) end)"),
            b"$-1\r\n"
        );
    }

    #[test]
    fn resp_parsing() {
        let lua = Lua::new();
        let buf = b"*3\r\n$1\r\na\r\n:5\r\n$-1\r\n";
        let mut p = 0;
        let v = resp_to_lua(&lua, buf, &mut p).unwrap();
        let t = v.as_table().unwrap();
        assert_eq!(t.raw_len(), 3);
        assert_eq!(p, buf.len());
    }
}
