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
    /// The error handler that turns errors into Redis's error tables.
    handler: Function,
    /// The table behind the protected globals (KEYS and ARGV go here).
    pub real: Table,
    /// The protected globals (the environment of user code).
    pub globals: Table,
    /// Function engines only: runs a library's code with the load-time API.
    pub load: Option<Function>,
    /// Runs since the last explicit GC step.
    runs: Cell<u32>,
}

/// Redis's LUA_GC_CYCLE_PERIOD: every this many runs the collector does
/// that many KB worth of steps, so garbage from KEYS/ARGV tables never
/// piles up between its own (allocation-driven) steps.
const GC_CYCLE_PERIOD: u32 = 50;

const PRELUDE: &str = include_str!("prelude.lua");
/// Instructions between two checks for SCRIPT KILL and the busy threshold.
const HOOK_EVERY: u32 = 1000;

thread_local! {
    /// The script running on this thread (null when none).
    pub static CURRENT: Cell<*mut Run> = const { Cell::new(std::ptr::null_mut()) };
    /// The script's reply is an error that was already counted in the
    /// error statistics (the error of a command the script called).
    static ERROR_COUNTED: Cell<bool> = const { Cell::new(false) };
    /// Redis's `math.random` generator state (48-bit rand48).
    static RAND48: Cell<u64> = const { Cell::new(0x1234_ABCD_330E) };
}

/// Builds Redis's error table `{err="CODE msg"}` from "-CODE msg" or "msg"
/// (luaPushErrorBuff).
pub fn error_table(lua: &Lua, msg: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(msg.as_bytes()))?)?;
    Ok(t)
}

/// Whether the reply just written is an error already counted in the
/// error statistics (and clears the mark): `run_command` then counts the
/// command as failed without counting the error twice.
pub fn take_error_counted() -> bool {
    ERROR_COUNTED.with(|c| c.replace(false))
}

/// Marks the error reply just written as already counted (see
/// [`take_error_counted`]).
pub fn mark_error_counted() {
    ERROR_COUNTED.with(|c| c.set(true));
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
    // SAFETY: both only use the Lua C API on their own stack.
    raw.set("call", unsafe { lua.create_c_function(c_call)? })?;
    raw.set("pcall", unsafe { lua.create_c_function(c_pcall)? })?;
    let acl = lua.create_function(|lua, args: MultiValue| -> mlua::Result<Outcome> {
        let mut argv = Vec::with_capacity(args.len());
        for a in args.iter() {
            match a {
                Value::Integer(i) => argv.push(i.to_string().into_bytes()),
                Value::Number(n) => argv.push(number_arg(*n)),
                Value::String(s) => argv.push(s.as_bytes().to_vec()),
                _ => return failed(lua, ARG_TYPE_ERROR),
            }
        }
        if argv.is_empty() {
            return failed(lua, NO_ARGS_ERROR);
        }
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
        let e = Engine {
            run: api.get("run")?,
            handler: api.get("handler")?,
            load: api.get("load")?,
            real,
            globals,
            lua,
            runs: Cell::new(0),
        };
        e.install_hook();
        Ok(e)
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

    /// Installs the hook that checks SCRIPT KILL and the busy threshold
    /// every `HOOK_EVERY` instructions while a script runs (installed once:
    /// outside a script it returns at once).
    pub fn install_hook(&self) {
        let _ = self.lua.set_hook(
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
        );
    }

    /// Runs `f(a, b)` under the error handler.
    pub fn call(&self, f: &Function, a: Value, b: Value) -> mlua::Result<(bool, Value)> {
        let r = self.run.call::<(bool, Value)>((f.clone(), a, b));
        self.after_run();
        r
    }

    /// Redis's periodic GC step after a script call (luaCallFunction).
    fn after_run(&self) {
        let n = self.runs.get() + 1;
        if n >= GC_CYCLE_PERIOD {
            self.runs.set(0);
            let _ = self.lua.gc_step_kbytes(GC_CYCLE_PERIOD as i32);
        } else {
            self.runs.set(n);
        }
    }

    /// Runs an EVAL script: sets the globals KEYS and ARGV and calls `f`
    /// under the error handler, building the tables through the C API
    /// (the per-call cost of EVALSHA). Returns `ok, value`.
    pub fn call_eval(
        &self,
        f: &Function,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> mlua::Result<(bool, Value)> {
        use mlua::ffi;
        // SAFETY: the closure runs protected (a Lua error cannot unwind
        // through it unnoticed) and leaves exactly two values on the stack.
        let r = unsafe {
            self.lua
                .exec_raw::<(bool, Value)>((f, &self.handler, &self.real), |l| {
                    // Stack: 1 = f, 2 = handler, 3 = real globals.
                    ffi::lua_checkstack(l, 4);
                    for (name, items) in [(c"KEYS", keys), (c"ARGV", args)] {
                        ffi::lua_pushstring(l, name.as_ptr());
                        ffi::lua_createtable(l, items.len() as i32, 0);
                        for (i, a) in items.iter().enumerate() {
                            ffi::lua_pushlstring(l, a.as_ptr() as *const _, a.len());
                            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                        }
                        ffi::lua_rawset(l, 3);
                    }
                    ffi::lua_pushvalue(l, 1);
                    let ok = ffi::lua_pcall(l, 0, 1, 2) == 0;
                    // Stack: f, handler, real, result -> ok, result.
                    ffi::lua_pushboolean(l, ok as i32);
                    ffi::lua_replace(l, 1);
                    ffi::lua_replace(l, 2);
                    ffi::lua_settop(l, 2);
                })
        };
        self.after_run();
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

const NO_ARGS_ERROR: &str = "Please specify at least one argument for this redis lib call";
const ARG_TYPE_ERROR: &str = "Lua redis lib command arguments must be strings or integers";

/// A Lua number as a command argument, as Redis converts it: integers
/// print as integers (never `1e+09`), others with Redis's double format.
fn number_arg(n: f64) -> Vec<u8> {
    if n.fract() == 0.0 && n.abs() < 9.2e18 {
        (n as i64).to_string().into_bytes()
    } else {
        strutil::format_double(n).into_bytes()
    }
}

/// What redis.call reports back to Lua when it did not run the command.
pub enum CallError {
    /// An error of the call itself (bad arguments): not counted anywhere.
    Plain(&'static str),
    /// The script engine refused the command (unknown, not allowed, OOM,
    /// read-only script ...): already counted in the error statistics,
    /// as Redis's `scriptCall` does, so its table carries
    /// `ignore_error_stats_update`. The text is "CODE message".
    Rejected(String),
}

/// Per-thread scratch space of redis.call: the argv being built (bytes and
/// end offsets) and the command's reply. Reused by every call, so a call
/// allocates nothing once the buffers have grown.
struct CallBuf {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    out: Vec<u8>,
}

thread_local! {
    static CALLBUF: std::cell::UnsafeCell<CallBuf> = const {
        std::cell::UnsafeCell::new(CallBuf { bytes: Vec::new(), ends: Vec::new(), out: Vec::new() })
    };
}

/// `redis.call`: a C function, so the user's frame stays on the stack for
/// error positions and no Rust callback machinery runs per call.
unsafe extern "C-unwind" fn c_call(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    if call_and_push(l) {
        mlua::ffi::lua_error(l);
    }
    1
}

/// `redis.pcall`: as `redis.call`, but errors are returned as tables.
unsafe extern "C-unwind" fn c_pcall(l: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    call_and_push(l);
    1
}

/// Runs the command given by the Lua arguments in the current script and
/// pushes its reply (or an error table). True when the pushed value is an
/// error. Owns nothing across Lua API calls that may raise: its buffers
/// are thread-local.
unsafe fn call_and_push(l: *mut mlua::ffi::lua_State) -> bool {
    use mlua::ffi;
    // SAFETY: only this function uses the buffer, and it does not re-enter.
    let buf = &mut *CALLBUF.with(|b| b.get());
    buf.bytes.clear();
    buf.ends.clear();
    buf.out.clear();
    let n = ffi::lua_gettop(l);
    if n == 0 {
        push_error(l, NO_ARGS_ERROR.as_bytes(), false);
        return true;
    }
    for i in 1..=n {
        match ffi::lua_type(l, i) {
            ffi::LUA_TNUMBER => {
                let v = number_arg(ffi::lua_tonumber(l, i));
                buf.bytes.extend_from_slice(&v);
            }
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, i, &mut len);
                buf.bytes
                    .extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
            }
            _ => {
                push_error(l, ARG_TYPE_ERROR.as_bytes(), false);
                return true;
            }
        }
        buf.ends.push(buf.bytes.len());
    }
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        push_error(
            l,
            b"redis.call can only be called inside a script invocation",
            false,
        );
        return true;
    }
    // SAFETY: CURRENT points at the Run that the script's caller keeps
    // alive (and does not touch) while Lua runs.
    let run = &mut *p;
    let outcome = {
        let mut argv: smallvec::SmallVec<[&[u8]; 8]> = smallvec::SmallVec::new();
        let mut from = 0;
        for &e in &buf.ends {
            argv.push(&buf.bytes[from..e]);
            from = e;
        }
        match run.exec(&argv, &mut buf.out) {
            Ok(()) => None,
            Err(CallError::Plain(m)) => Some((m.as_bytes().to_vec(), false)),
            Err(CallError::Rejected(m)) => Some((m.into_bytes(), true)),
        }
    };
    if let Some((msg, counted)) = outcome {
        buf.out.clear();
        buf.out.extend_from_slice(&msg);
        drop(msg);
        push_error(l, &buf.out, counted);
        return true;
    }
    let mut pos = 0;
    push_resp(l, &buf.out, &mut pos)
}

/// "CODE text" of an error message given as "-CODE text" or "text"
/// (luaPushErrorBuff: a message without a code gets ERR).
pub fn error_text(msg: &[u8]) -> Vec<u8> {
    let (code, text): (&[u8], &[u8]) = match msg.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&c| c == b' ') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", msg),
    };
    let mut text = text;
    while let [b'\r' | b'\n', rest @ ..] = text {
        text = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = text {
        text = rest;
    }
    let mut out = Vec::with_capacity(code.len() + 1 + text.len());
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(text);
    out
}

/// Pushes Redis's error table `{err = "CODE text"}`. A `counted` message
/// is already in that form and gets `ignore_error_stats_update = true`.
unsafe fn push_error(l: *mut mlua::ffi::lua_State, msg: &[u8], counted: bool) {
    use mlua::ffi;
    let text = if counted {
        msg.to_vec()
    } else {
        error_text(msg)
    };
    ffi::lua_createtable(l, 0, 2);
    ffi::lua_pushlstring(l, text.as_ptr() as *const _, text.len());
    drop(text);
    ffi::lua_setfield(l, -2, c"err".as_ptr());
    if counted {
        ffi::lua_pushboolean(l, 1);
        ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
    }
}

/// Pushes one RESP reply at `buf[*pos..]` as a Lua value, as Redis's
/// `redisProtocolToLuaType` does. True when it is an error.
unsafe fn push_resp(l: *mut mlua::ffi::lua_State, buf: &[u8], pos: &mut usize) -> bool {
    use mlua::ffi;
    ffi::lua_checkstack(l, 4);
    if *pos >= buf.len() {
        ffi::lua_pushnil(l);
        return false;
    }
    let kind = buf[*pos];
    let end = buf[*pos + 1..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(buf.len(), |i| *pos + 1 + i);
    let line = &buf[*pos + 1..end];
    *pos = (end + 2).min(buf.len());
    let n = strutil::parse_i64(line).unwrap_or(0);
    let push_str = |s: &[u8]| ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
    // `{name = <value on top>}`
    let wrap = |name: &std::ffi::CStr| {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_insert(l, -2);
        ffi::lua_setfield(l, -2, name.as_ptr());
    };
    let bulk = |pos: &mut usize, len: usize| -> &[u8] {
        let s = &buf[(*pos).min(buf.len())..(*pos + len).min(buf.len())];
        *pos = (*pos + len + 2).min(buf.len());
        s
    };
    match kind {
        b'+' => {
            push_str(line);
            wrap(c"ok");
        }
        b'-' => {
            ffi::lua_createtable(l, 0, 2);
            push_str(line);
            ffi::lua_setfield(l, -2, c"err".as_ptr());
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
            return true;
        }
        b':' => ffi::lua_pushnumber(l, n as f64),
        b'$' => {
            if n < 0 {
                ffi::lua_pushboolean(l, 0);
            } else {
                push_str(bulk(pos, n as usize));
            }
        }
        b'*' | b'>' => {
            if n < 0 {
                ffi::lua_pushboolean(l, 0);
            } else {
                ffi::lua_createtable(l, n.min(1 << 20) as i32, 0);
                for i in 0..n {
                    push_resp(l, buf, pos);
                    ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
                }
            }
        }
        b'%' | b'~' => {
            ffi::lua_createtable(l, 0, 0);
            for _ in 0..n {
                push_resp(l, buf, pos);
                if kind == b'%' {
                    push_resp(l, buf, pos);
                } else {
                    ffi::lua_pushboolean(l, 1);
                }
                if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 2);
                } else {
                    ffi::lua_rawset(l, -3);
                }
            }
            wrap(if kind == b'%' { c"map" } else { c"set" });
        }
        b'_' => ffi::lua_pushnil(l),
        b'#' => ffi::lua_pushboolean(l, (line == b"t") as i32),
        b',' => {
            ffi::lua_pushnumber(l, strutil::parse_f64(line).unwrap_or(f64::NAN));
            wrap(c"double");
        }
        b'(' => {
            push_str(line);
            wrap(c"big_number");
        }
        b'=' => {
            let s = bulk(pos, n.max(0) as usize);
            let (fmt, text) = if s.len() >= 4 {
                (&s[..3], &s[4..])
            } else {
                (&b"txt"[..], s)
            };
            ffi::lua_createtable(l, 0, 2);
            push_str(text);
            ffi::lua_setfield(l, -2, c"string".as_ptr());
            push_str(fmt);
            ffi::lua_setfield(l, -2, c"format".as_ptr());
            wrap(c"verbatim_string");
        }
        b'|' => {
            // Attributes are skipped; the value follows.
            for _ in 0..2 * n {
                push_resp(l, buf, pos);
                ffi::lua_pop(l, 1);
            }
            return push_resp(l, buf, pos);
        }
        _ => ffi::lua_pushnil(l),
    }
    false
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
        if depth == 0 && get("ignore_error_stats_update") == Value::Boolean(true) {
            ERROR_COUNTED.with(|c| c.set(true));
        }
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

    /// Parses `buf` with `push_resp`: (value, whether it is an error,
    /// bytes consumed).
    fn parse(lua: &Lua, buf: &'static [u8]) -> (Value, bool, usize) {
        let mut out = (false, 0);
        let v: Value = unsafe {
            lua.exec_raw((), |l| {
                let mut p = 0;
                out.0 = push_resp(l, buf, &mut p);
                out.1 = p;
            })
        }
        .unwrap();
        (v, out.0, out.1)
    }

    #[test]
    fn resp_parsing() {
        let lua = Lua::new();
        let buf = b"*3\r\n$1\r\na\r\n:5\r\n$-1\r\n";
        let (v, err, used) = parse(&lua, buf);
        let t = v.as_table().unwrap();
        assert_eq!(t.raw_len(), 3);
        assert!(!err);
        assert_eq!(used, buf.len());
        assert_eq!(t.raw_get::<String>(1).unwrap(), "a");
        assert_eq!(t.raw_get::<f64>(2).unwrap(), 5.0);
        assert!(!t.raw_get::<bool>(3).unwrap());
        let (v, err, _) = parse(&lua, b"-ERR bad\r\n");
        assert!(err);
        let t = v.as_table().unwrap();
        assert_eq!(t.raw_get::<String>("err").unwrap(), "ERR bad");
        assert!(t.raw_get::<bool>("ignore_error_stats_update").unwrap());
        let (v, _, _) = parse(&lua, b"%1\r\n$1\r\nk\r\n,1.5\r\n");
        let m: Table = v.as_table().unwrap().raw_get("map").unwrap();
        let d: Table = m.raw_get("k").unwrap();
        assert_eq!(d.raw_get::<f64>("double").unwrap(), 1.5);
        assert_eq!(error_text(b"-OOM no room"), b"OOM no room");
        assert_eq!(error_text(b"plain\r\n"), b"ERR plain");
    }
}
