//! Function libraries (Redis 7's `functions.c` and `function_lua.c`):
//! parsing `#!lua name=...` metadata, loading a library's code to collect
//! the functions it registers, the server-wide library registry, and the
//! FUNCTION DUMP/RESTORE payload.
//!
//! Libraries are kept as source. Each worker thread compiles them into its
//! own function Lua state when it first runs a function after the
//! libraries changed (`Scripting::libs_gen`).

use super::lua::{self, Engine};
use super::sflags;
use crate::server::Server;
use mlua::{Function, MultiValue, Table, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// One registered function.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub desc: Option<String>,
    pub flags: u32,
}

/// A loaded library: its full code (shebang included) and functions.
#[derive(Debug)]
pub struct Library {
    pub name: String,
    pub code: Vec<u8>,
    pub functions: BTreeMap<String, FunctionInfo>,
}

/// Every library, and an index from function name to library.
#[derive(Default)]
pub struct Libraries {
    pub libs: BTreeMap<String, Arc<Library>>,
    pub funcs: HashMap<String, String>,
}

impl Libraries {
    /// A function's metadata.
    pub fn function(&self, name: &str) -> Option<FunctionInfo> {
        let lib = self.funcs.get(&name.to_ascii_lowercase())?;
        self.libs
            .get(lib)?
            .functions
            .values()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    pub fn function_count(&self) -> usize {
        self.funcs.len()
    }

    fn link(&mut self, lib: Arc<Library>) {
        for f in lib.functions.keys() {
            self.funcs.insert(f.to_ascii_lowercase(), lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    /// Removes a library; returns it.
    pub fn unlink(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libs.remove(name)?;
        for f in lib.functions.keys() {
            self.funcs.remove(&f.to_ascii_lowercase());
        }
        Some(lib)
    }
}

struct Registered {
    info: FunctionInfo,
    func: Function,
}

thread_local! {
    /// Functions registered by the library being loaded on this thread.
    static LOADING: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
    static FUNCS: RefCell<Option<FnState>> = const { RefCell::new(None) };
}

struct FnState {
    engine: Engine,
    gen: u64,
    funcs: HashMap<String, Function>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn str_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy().to_string()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(strutil::format_double(*n)),
        _ => None,
    }
}

/// `redis.register_function` (positional or named arguments). Returns an
/// error table to raise, or nil.
pub fn register_function(l: &mlua::Lua, args: MultiValue) -> mlua::Result<Option<Table>> {
    let loading = LOADING.with(|c| c.borrow().is_some());
    if !loading {
        return Ok(Some(lua::error_table(
            l,
            "redis.register_function can only be called on FUNCTION LOAD command",
        )?));
    }
    let err = |m: &str| -> mlua::Result<Option<Table>> { Ok(Some(lua::error_table(l, m)?)) };
    let args: Vec<Value> = args.into_iter().collect();
    let (name, desc, func, fl) = match args.len() {
        1 => {
            let Value::Table(t) = &args[0] else {
                return err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let (mut name, mut desc, mut func, mut fl) = (None, None, None, 0u32);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let Some(k) = str_value(&k) else {
                    return err(
                        "named argument key given to redis.register_function is not a string",
                    );
                };
                match k.to_ascii_lowercase().as_str() {
                    "function_name" => match str_value(&v) {
                        Some(s) => name = Some(s),
                        None => return err("function_name argument given to redis.register_function must be a string"),
                    },
                    "description" => match str_value(&v) {
                        Some(s) => desc = Some(s),
                        None => return err("description argument given to redis.register_function must be a string"),
                    },
                    "callback" => match v {
                        Value::Function(f) => func = Some(f),
                        _ => return err("callback argument given to redis.register_function must be a function"),
                    },
                    "flags" => {
                        let Value::Table(ft) = v else {
                            return err("flags argument to redis.register_function must be a table representing function flags");
                        };
                        for fv in ft.sequence_values::<Value>() {
                            let s = fv.ok().as_ref().and_then(str_value);
                            match s.and_then(|s| sflags::NAMES.iter().find(|(_, n)| *n == s)) {
                                Some((b, _)) => fl |= b,
                                None => return err("unknown flag given"),
                            }
                        }
                    }
                    _ => return err("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return err("redis.register_function must get a function name argument");
            };
            let Some(func) = func else {
                return err("redis.register_function must get a callback argument");
            };
            (name, desc, func, fl)
        }
        2 => {
            let Some(name) = str_value(&args[0]) else {
                return err("first argument to redis.register_function must be a string");
            };
            let Value::Function(f) = &args[1] else {
                return err("second argument to redis.register_function must be a function");
            };
            (name, None, f.clone(), 0)
        }
        _ => return err("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return err("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    let dup = LOADING.with(|c| {
        let mut c = c.borrow_mut();
        let v = c.as_mut().unwrap();
        if v.iter().any(|r| r.info.name == name) {
            return true;
        }
        v.push(Registered {
            info: FunctionInfo {
                name,
                desc,
                flags: fl,
            },
            func,
        });
        false
    });
    if dup {
        return err("Function already exists in the library");
    }
    Ok(None)
}

/// Parses the metadata line: (library name, engine, code after the line).
fn metadata(code: &[u8]) -> Result<(String, String, &[u8]), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    if !resp::split_args(&code[..end], &mut out, &mut ranges) || ranges.is_empty() {
        return Err("ERR Invalid library metadata".into());
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| String::from_utf8_lossy(&out[r.clone()]).to_string())
        .collect();
    let engine = parts[0][2..].to_string();
    let mut name = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_string());
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {p}"));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    Ok((name, engine, &code[end..]))
}

/// Runs a library's code in `engine`, returning what it registered.
fn run_library(engine: &Engine, body: &[u8]) -> Result<Vec<Registered>, String> {
    let load = engine.load.as_ref().expect("function engine");
    LOADING.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let code = engine.lua.create_string(body).map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    let _ = engine.lua.set_hook(
        mlua::HookTriggers::new().every_nth_instruction(10000),
        move |_, _| {
            if start.elapsed() > std::time::Duration::from_millis(500) {
                return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
            }
            Ok(mlua::VmState::Continue)
        },
    );
    let r = load.call::<(bool, Value)>(code);
    engine.install_hook();
    let got = LOADING.with(|c| c.borrow_mut().take()).unwrap_or_default();
    match r {
        Ok((true, _)) => Ok(got),
        Ok((false, Value::String(s))) => Err(format!(
            "ERR Error compiling function: {}",
            s.to_string_lossy()
        )),
        Ok((false, Value::Table(t))) => {
            let msg = match t.raw_get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy().to_string(),
                _ => "ERR unknown error".into(),
            };
            let msg = if msg.contains("FUNCTION LOAD timeout") {
                "ERR FUNCTION LOAD timeout".to_string()
            } else {
                msg
            };
            Err(format!("ERR Error registering functions: {msg}"))
        }
        Ok((false, _)) => Err("ERR Error registering functions".into()),
        Err(e) => Err(format!(
            "ERR Error registering functions: {}",
            lua::lua_error_text(&e)
        )),
    }
}

/// Checks and compiles a library (in a scratch state): the library to link.
pub fn build_library(code: &[u8]) -> Result<Library, String> {
    let (name, engine, body) = metadata(code)?;
    if !valid_name(&name) {
        return Err("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long".into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    let e = Engine::new("function").map_err(|e| e.to_string())?;
    let got = run_library(&e, body)?;
    if got.is_empty() {
        return Err("ERR No functions registered".into());
    }
    Ok(Library {
        name,
        code: code.to_vec(),
        functions: got
            .into_iter()
            .map(|r| (r.info.name.clone(), r.info))
            .collect(),
    })
}

/// FUNCTION LOAD: links a library; Ok(name) or the error reply.
pub fn load(srv: &Server, code: &[u8], replace: bool) -> Result<String, String> {
    // Cheap checks first, so the common errors need no Lua state.
    let (name, engine, _) = metadata(code)?;
    if !replace
        && valid_name(&name)
        && engine.eq_ignore_ascii_case("lua")
        && srv.scripting.libs.read().libs.contains_key(&name)
    {
        return Err(format!("ERR Library '{name}' already exists"));
    }
    let lib = build_library(code)?;
    let mut libs = srv.scripting.libs.write();
    if libs.libs.contains_key(&lib.name) && !replace {
        return Err(format!("ERR Library '{}' already exists", lib.name));
    }
    for f in lib.functions.keys() {
        if libs
            .funcs
            .get(&f.to_ascii_lowercase())
            .is_some_and(|l| *l != lib.name)
        {
            return Err(format!("ERR Function {f} already exists"));
        }
    }
    libs.unlink(&lib.name);
    let name = lib.name.clone();
    libs.link(Arc::new(lib));
    srv.scripting.libs_gen.fetch_add(1, Ordering::SeqCst);
    Ok(name)
}

/// Runs `f` with this thread's compiled function `name`.
pub fn with_function<R>(
    srv: &Server,
    name: &str,
    f: impl FnOnce(&Engine, &Function) -> Result<R, String>,
) -> Result<R, String> {
    FUNCS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let gen = srv.scripting.libs_gen.load(Ordering::SeqCst);
        if slot.as_ref().is_none_or(|s| s.gen != gen) {
            let engine = Engine::new("function").map_err(|e| e.to_string())?;
            let mut funcs = HashMap::new();
            let libs: Vec<Arc<Library>> =
                srv.scripting.libs.read().libs.values().cloned().collect();
            for lib in libs {
                if let Ok((_, _, body)) = metadata(&lib.code) {
                    if let Ok(got) = run_library(&engine, body) {
                        for r in got {
                            funcs.insert(r.info.name.to_ascii_lowercase(), r.func);
                        }
                    }
                }
            }
            *slot = Some(FnState { engine, gen, funcs });
        }
        let st = slot.as_ref().unwrap();
        let Some(func) = st.funcs.get(&name.to_ascii_lowercase()) else {
            return Err("ERR Function not found".into());
        };
        f(&st.engine, func)
    })
}

/// Lua memory of this thread's function state.
pub fn functions_memory() -> usize {
    FUNCS
        .with(|c| {
            c.try_borrow()
                .ok()
                .and_then(|s| s.as_ref().map(|s| s.engine.used_memory()))
        })
        .unwrap_or(0)
}

const RDB_OPCODE_FUNCTION_PRE_GA: u8 = 246;
const RDB_OPCODE_FUNCTION2: u8 = 245;

/// FUNCTION DUMP: Redis's payload (one RDB_OPCODE_FUNCTION2 string per
/// library, RDB version, CRC-64).
pub fn dump(srv: &Server) -> Vec<u8> {
    use crate::persist::rdb;
    let mut out = Vec::new();
    for lib in srv.scripting.libs.read().libs.values() {
        out.push(RDB_OPCODE_FUNCTION2);
        rdb::put_string(&mut out, &lib.code, false);
    }
    rdb::seal_payload(&mut out, rdb::RDB_VERSION);
    out
}

/// How FUNCTION RESTORE merges libraries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

/// FUNCTION RESTORE: Ok or the error reply.
pub fn restore(srv: &Server, data: &[u8], policy: RestorePolicy) -> Result<(), String> {
    use crate::persist::rdb;
    if !rdb::verify_payload(data, true) {
        return Err("ERR DUMP payload version or checksum are wrong".into());
    }
    let body = &data[..data.len() - 10];
    let mut rd = rdb::Reader::new(body, body.len() as u64);
    let mut new_libs = Vec::new();
    while rd.pos() < body.len() as u64 {
        let t = rd
            .u8()
            .map_err(|_| "ERR failed loading the given functions payload")?;
        if t == RDB_OPCODE_FUNCTION_PRE_GA {
            return Err("ERR Pre-GA function format not supported".into());
        }
        if t != RDB_OPCODE_FUNCTION2 {
            return Err("ERR given type is not a function".into());
        }
        // Read as any RDB string: Redis may have LZF-compressed the code.
        let code = rd
            .string()
            .map_err(|_| "ERR failed loading the given functions payload")?;
        new_libs.push(build_library(&code)?);
    }
    let mut libs = srv.scripting.libs.write();
    match policy {
        RestorePolicy::Flush => {
            *libs = Libraries::default();
        }
        RestorePolicy::Append => {
            for l in &new_libs {
                if libs.libs.contains_key(&l.name) {
                    return Err(format!("ERR Library {} already exists", l.name));
                }
            }
        }
        RestorePolicy::Replace => {}
    }
    // Function names must stay unique across the libraries that remain.
    let replaced: Vec<&str> = if policy == RestorePolicy::Replace {
        new_libs.iter().map(|l| l.name.as_str()).collect()
    } else {
        Vec::new()
    };
    for l in &new_libs {
        for f in l.functions.keys() {
            if let Some(owner) = libs.funcs.get(&f.to_ascii_lowercase()) {
                if !replaced.contains(&owner.as_str()) {
                    return Err(format!("ERR Function {f} already exists"));
                }
            }
        }
    }
    for l in new_libs {
        libs.unlink(&l.name);
        libs.link(Arc::new(l));
    }
    srv.scripting.libs_gen.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Function libraries in RDB files (FUNCTION2 records): saved with the
/// dataset, loaded back through the FUNCTION LOAD path.
pub struct RdbFunctions;

impl crate::persist::FunctionHook for RdbFunctions {
    fn libraries(&self, srv: &Server) -> Vec<Vec<u8>> {
        srv.scripting
            .libs
            .read()
            .libs
            .values()
            .map(|l| l.code.clone())
            .collect()
    }

    fn load(&self, srv: &Server, code: &[u8], replace: bool) -> Result<(), String> {
        load(srv, code, replace).map(|_| ())
    }

    fn flush(&self, srv: &Server) {
        *srv.scripting.libs.write() = Libraries::default();
        srv.scripting.libs_gen.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors() {
        assert_eq!(
            metadata(b"return 1").unwrap_err(),
            "ERR Missing library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=a foo=bar\n").unwrap_err(),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            metadata(b"#!lua name=a name=b\n").unwrap_err(),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(metadata(b"#!lua name=lib\nx").unwrap().0, "lib");
    }

    #[test]
    fn builds_a_library() {
        let lib = build_library(
            b"#!lua name=mylib\nredis.register_function('f1', function() return 1 end)\nredis.register_function{function_name='f2', callback=function() return 2 end, flags={'no-writes'}, description='d'}",
        )
        .unwrap();
        assert_eq!(lib.functions.len(), 2);
        assert_eq!(lib.functions["f2"].flags, sflags::NO_WRITES);
        let e = build_library(b"#!lua name=x\nlocal a = math.floor(1)").unwrap_err();
        assert!(e.contains("nonexistent global variable 'math'"), "{e}");
        let e = build_library(b"#!lua name=x\nreturn 1").unwrap_err();
        assert_eq!(e, "ERR No functions registered");
    }
}
