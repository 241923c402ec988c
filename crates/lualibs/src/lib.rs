//! The Lua libraries Redis 7.2 exposes to scripts, written in Rust on top of
//! `mlua` (Lua 5.1): `cjson`, `cmsgpack`, `bit` and `struct`.
//!
//! Each library lives in its own module and mirrors the C library Redis bundles
//! in `deps/lua`, down to error texts and corner cases. [`install`] registers
//! all four as global tables in a Lua state; making them read-only is the
//! sandbox's job, not this crate's.
//!
//! Errors: a C library function fails with `luaL_error` (a string prefixed
//! by the *caller's* position, `user_script:1: ...`) or `luaL_argerror`
//! ("bad argument #n to 'name' (...)", the name taken from the call site).
//! A Rust callback in mlua would raise a userdata instead, and a Lua wrapper
//! would lose the caller's position on `return f(x)` (a tail call). So the
//! `bit` functions are plain C functions written over `mlua::ffi`, and every
//! other function is a small C closure (`dispatch`) around a Rust callback
//! that *returns* its outcome; `dispatch` raises failures from C exactly as
//! the C libraries do, and scripts see the same strings Redis's scripts see.

mod args;
pub mod bit;
pub mod cjson;
pub mod cmsgpack;
mod held;
mod num;
pub mod structlib;

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua, MultiValue, Value};

pub(crate) use args::{Args, Failure, Outcome};

/// Registers the globals `cjson`, `cmsgpack`, `bit` and `struct` in `lua`, each
/// a table of functions behaving as in Redis 7.2 scripts. The tables are plain
/// (writable); the caller's sandbox decides whether to freeze them.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    globals.set("cjson", cjson::create(lua)?)?;
    globals.set("cmsgpack", cmsgpack::create(lua)?)?;
    globals.set("bit", bit::create(lua)?)?;
    globals.set("struct", structlib::create(lua)?)?;
    Ok(())
}

/// The C side of every library function. Upvalue 1 is the Rust callback; it
/// returns `true, results...` on success, `false, msg` for a `luaL_error`
/// (the caller's position is prepended), `n, msg` for `luaL_argerror` on
/// argument n, or `nil, msg` for an error raised as is. Being a C function,
/// this frame survives a script's tail call, so level 1 is the script line.
unsafe extern "C-unwind" fn dispatch(state: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
    let nresults = ffi::lua_gettop(state);
    match ffi::lua_type(state, 1) {
        ffi::LUA_TBOOLEAN if ffi::lua_toboolean(state, 1) != 0 => {
            ffi::lua_remove(state, 1);
            if std::ptr::eq(
                ffi::lua_touserdata(state, 1) as *const u8,
                &args::SPREAD_MARK,
            ) {
                return spread(state);
            }
            nresults - 1
        }
        ffi::LUA_TBOOLEAN => {
            ffi::luaL_where(state, 1);
            ffi::lua_pushvalue(state, 2);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        }
        ffi::LUA_TNUMBER => {
            let narg = ffi::lua_tointeger(state, 1) as c_int;
            ffi::luaL_argerror(state, narg, ffi::lua_tostring(state, 2))
        }
        _ => {
            ffi::lua_pushvalue(state, 2);
            ffi::lua_error(state)
        }
    }
}

/// Returns the values of a [`args::Spread`]: the stack holds the marker,
/// the table and the count; the values are pushed from the table (the
/// counts were checked against LUAI_MAXCSTACK by the library code).
unsafe fn spread(state: *mut ffi::lua_State) -> c_int {
    let n = ffi::lua_tointeger(state, 3) as c_int;
    ffi::lua_pushvalue(state, 2);
    ffi::lua_replace(state, 1);
    ffi::lua_settop(state, 1);
    if ffi::lua_checkstack(state, n) == 0 {
        ffi::lua_pushstring(state, c"stack overflow (too many results)".as_ptr());
        ffi::lua_error(state);
    }
    for i in 1..=n {
        ffi::lua_rawgeti(state, 1, i as _);
    }
    n
}

/// `next(t, k)` as a C function (raw, like the base library's): the key
/// after `k` and its value, or nil at the end.
unsafe extern "C-unwind" fn raw_next(state: *mut ffi::lua_State) -> c_int {
    ffi::lua_settop(state, 2);
    if ffi::lua_next(state, 1) != 0 {
        2
    } else {
        ffi::lua_pushnil(state);
        1
    }
}

/// Lets the libraries walk a table one pair at a time from Rust without
/// holding the walk on the Rust stack (`Walker::next_pair`).
pub(crate) struct Walker(Function);

impl Walker {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<Walker> {
        // SAFETY: `raw_next` follows the C API contract of a lua_CFunction.
        Ok(Walker(unsafe { lua.create_c_function(raw_next)? }))
    }

    /// The pair after `key` in `t` (`lua_next` order); `None` at the end.
    pub(crate) fn next_pair(
        &self,
        t: &mlua::Table,
        key: Value,
    ) -> mlua::Result<Option<(Value, Value)>> {
        let (k, v): (Value, Value) = self.0.call((t.clone(), key))?;
        Ok(if k.is_nil() { None } else { Some((k, v)) })
    }
}

/// Builds a library function from a Rust body that receives the call's
/// arguments and returns its results or a [`Failure`].
pub(crate) fn make_fn<F>(lua: &Lua, body: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, &Args) -> Outcome + mlua::MaybeSend + 'static,
{
    let raw = lua.create_function(move |lua, mv: MultiValue| {
        let args = Args::new(mv.into_iter().collect());
        let mut out = MultiValue::new();
        let (status, msg) = match body(lua, &args) {
            Ok(values) => {
                out.push_back(Value::Boolean(true));
                out.extend(values);
                return Ok(out);
            }
            Err(Failure::Raise(msg)) => (Value::Boolean(false), msg),
            Err(Failure::Arg(n, msg)) => (Value::Number(n as f64), msg),
            Err(Failure::Plain(msg)) => (Value::Nil, msg),
            Err(Failure::Lua(e)) => return Err(e),
        };
        out.push_back(status);
        out.push_back(Value::String(lua.create_string(msg)?));
        Ok(out)
    })?;
    // SAFETY: the closure takes its single argument (the callback) as
    // upvalue; `dispatch` only uses documented stack operations.
    unsafe {
        lua.exec_raw(raw, |state| {
            ffi::lua_pushcclosure(state, dispatch, 1);
        })
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use mlua::{Lua, Value};

    /// A fresh Lua state with the four libraries installed.
    pub fn state() -> Lua {
        let lua = Lua::new();
        super::install(&lua).unwrap();
        lua
    }

    /// Runs `code` as a chunk named `user_script` (as Redis names scripts)
    /// and returns its first result rendered as a string; errors become
    /// `ERR:<message>`.
    pub fn run(lua: &Lua, code: &str) -> String {
        match lua.load(code).set_name("@user_script").eval::<Value>() {
            Ok(v) => render(&v),
            Err(mlua::Error::RuntimeError(m)) => {
                // mlua appends a traceback; the error value is the first part.
                format!("ERR:{}", m.split("\nstack traceback:").next().unwrap_or(""))
            }
            Err(e) => format!("OTHER:{e}"),
        }
    }

    /// Renders a value: strings raw, numbers with Lua's `%.14g`, tables as
    /// `{...}` of their array part.
    pub fn render(v: &Value) -> String {
        match v {
            Value::Nil => "nil".into(),
            Value::Boolean(b) => b.to_string(),
            Value::Integer(i) => crate::num::format_g(*i as f64, 14),
            Value::Number(n) => crate::num::format_g(*n, 14),
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            Value::Table(t) => {
                let parts: Vec<String> = t
                    .sequence_values::<Value>()
                    .map(|v| render(&v.unwrap()))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            other => format!("<{}>", other.type_name()),
        }
    }

    /// Runs `code` in a fresh state and returns the rendered result.
    pub fn eval(code: &str) -> String {
        run(&state(), code)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use proptest::prelude::*;

    /// Lua source for a string holding `bytes`.
    fn lua_bytes(bytes: &[u8]) -> String {
        let esc: String = bytes.iter().map(|b| format!("\\{b}")).collect();
        format!("'{esc}'")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Arbitrary input never panics or escapes as anything but the
        /// library's own string error.
        #[test]
        fn garbage_in_gives_a_result_or_a_string_error(
            data in proptest::collection::vec(any::<u8>(), 0..48),
            json in "[\\[\\]{}\":,0-9a-z.eE+\\- \\\\]{0,40}",
            fmt in "[<>!0-9 xbBhHlLTiIcsfdz#]{0,12}",
            n in -3i64..70,
        ) {
            let lua = state();
            let d = lua_bytes(&data);
            let j = lua_bytes(json.as_bytes());
            let f = lua_bytes(fmt.as_bytes());
            // `first` keeps a function's many results (struct.unpack can
            // return dozens) off pcall's C frame: Lua 5.1's pcall pushes
            // its status past a MULTRET top, which its API check (on in
            // debug builds only) refuses; Redis's Lua behaves the same.
            let code = format!(
                "local out = {{}}
                 local function first(f, ...) local t = {{f(...)}} return t[1] end
                 local function try(...) local r = {{pcall(first, ...)}} if not r[1] and type(r[2]) ~= 'string' then error('non-string error') end out[#out+1] = tostring(r[2]) end
                 try(cjson.decode, {d}) try(cjson.decode, {j}) try(cmsgpack.unpack, {d})
                 try(cmsgpack.unpack_one, {d}, {n}) try(cmsgpack.unpack_limit, {d}, {n}, 1)
                 try(struct.unpack, {f}, {d}) try(struct.unpack, {f}, {d}, {n}) try(struct.size, {f})
                 try(struct.pack, {f}, 1, 2, 'abc', 4.5, 5, 'x', 7)
                 try(bit.tohex, {n}, {n}) try(cjson.encode, {{cjson.decode, {d}}})
                 return 'done'"
            );
            prop_assert_eq!(run(&lua, &code), "done");
        }
    }

    #[test]
    fn globals_are_tables_of_functions() {
        let lua = state();
        for lib in ["cjson", "cmsgpack", "bit", "struct"] {
            assert_eq!(run(&lua, &format!("return type({lib})")), "table");
        }
        assert_eq!(run(&lua, "return type(cjson.encode)"), "function");
        assert_eq!(run(&lua, "return type(struct.pack)"), "function");
    }

    /// Nested input is walked with explicit stacks, not recursion, and deep
    /// levels park their handles in Lua: the deepest structures the
    /// libraries accept fit a small thread stack and mlua's handle stack.
    #[test]
    fn deep_nesting_needs_little_thread_stack() {
        let worker = std::thread::Builder::new().stack_size(256 * 1024).spawn(|| {
            let lua = state();
            lua.load("cjson.encode_max_depth(100000) cjson.decode_max_depth(100000)")
                .exec()
                .unwrap();
            let cases = [
                "local t = {} for i = 1, 3997 do t = {a = t} end return #cjson.encode(t)",
                "local t = {} for i = 1, 7996 do t = {t} end return #cjson.encode(t)",
                "return #cjson.decode(string.rep('[', 7998) .. string.rep(']', 7998))",
                "return type(cjson.decode(string.rep('{\"a\":', 3998) .. '1' .. string.rep('}', 3998)))",
                "return #cmsgpack.unpack(string.rep('\\145', 3999) .. '\\1')",
                "return type(cmsgpack.unpack(string.rep('\\129\\161a', 3998) .. '\\1'))",
                "return select('#', cmsgpack.unpack(string.rep('\\129', 7997) .. '\\1' .. string.rep('\\1', 7997)))",
            ];
            cases.iter().map(|c| run(&lua, c)).collect::<Vec<_>>()
        });
        let got = worker.unwrap().join().unwrap();
        assert_eq!(got, ["23984", "15994", "1", "table", "1", "table", "1"]);
    }

    #[test]
    fn errors_carry_the_callers_position_like_lual_error() {
        let lua = state();
        assert_eq!(
            run(&lua, "\nreturn cjson.decode('x')"),
            "ERR:user_script:2: Expected value but found invalid token at character 1"
        );
        // Called from pcall (C), luaL_error adds no position.
        assert_eq!(
            run(&lua, "local ok, e = pcall(cjson.decode, 'x') return e"),
            "Expected value but found invalid token at character 1"
        );
        // Called from a Lua function, the position is that function's line.
        assert_eq!(
            run(&lua, "local function f()\n return cjson.decode('x') end\nlocal ok, e = pcall(f) return e"),
            "user_script:2: Expected value but found invalid token at character 1"
        );
        assert_eq!(
            run(
                &lua,
                "local ok, e = pcall(cjson.decode, 'x') return type(e)"
            ),
            "string"
        );
    }
}
