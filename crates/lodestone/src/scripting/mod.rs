//! Lua scripting and functions (Redis's `eval.c`, `script.c`,
//! `functions.c`): the server-wide script cache and function libraries,
//! and the machinery that runs one script atomically.
//!
//! A script runs on the caller's worker thread, in that thread's Lua state
//! ([`lua::Engine`]). It first locks the shards of its declared keys; a
//! `redis.call` on an undeclared key try-locks that key's shard. If the try
//! fails (or the command needs every shard) and the script has not written
//! yet, the run is abandoned, its output dropped, and it runs again holding
//! every shard; the script's SHA (or function name) is remembered so later
//! runs take every shard at once. Commands called by scripts go through
//! `commands::run_command` with the script's locks held, so statistics,
//! WATCH, keyspace events and blocking wake-ups apply to them.
//!
//! A script running longer than `busy-reply-threshold` registers itself as
//! busy: other clients then get `-BUSY`, and the Lua hook keeps the
//! script's own worker serving its other connections
//! (`net::pump_events`), so SCRIPT KILL and SHUTDOWN NOSAVE reach it.

pub mod functions;
pub mod lua;

use crate::commands::{self, flags, lockset_for, Ctx, LockSet};
use crate::keyspace::{shard_of, ShardId, SHARDS};
use crate::server::client::Client;
use crate::server::Server;
use mlua::{MultiValue, Value, VmState};
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Script flags (shebang `flags=` and function flags), Redis's order.
pub mod sflags {
    pub const NO_WRITES: u32 = 1;
    pub const ALLOW_OOM: u32 = 2;
    pub const ALLOW_STALE: u32 = 4;
    pub const NO_CLUSTER: u32 = 8;
    pub const ALLOW_CROSS_SLOT: u32 = 16;
    /// An EVAL script without a shebang (Redis's compatibility mode).
    pub const EVAL_COMPAT: u32 = 32;
    /// (bit, name) as FUNCTION LIST and shebangs spell them.
    pub const NAMES: &[(u32, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// A cached EVAL script.
pub struct Script {
    pub body: Vec<u8>,
    pub flags: u32,
}

/// What other threads see of a running script that went past the busy
/// threshold: enough for BUSY replies, SCRIPT/FUNCTION KILL and STATS.
pub struct RunCtl {
    pub eval: bool,
    /// The SHA (EVAL) or function name.
    pub name: String,
    pub argv: Vec<Vec<u8>>,
    pub start: Instant,
    pub written: AtomicBool,
    pub killed: AtomicBool,
}

/// Server-wide scripting state.
#[derive(Default)]
pub struct Scripting {
    /// SHA1 (lowercase hex) -> script.
    pub scripts: RwLock<HashMap<String, Arc<Script>>>,
    pub scripts_mem: AtomicUsize,
    /// Bumped by SCRIPT FLUSH: threads drop their compiled scripts.
    pub scripts_gen: AtomicU64,
    pub libs: RwLock<functions::Libraries>,
    /// Bumped whenever the libraries change: threads rebuild their state.
    pub libs_gen: AtomicU64,
    /// Scripts past the busy threshold.
    pub busy: Mutex<Vec<Arc<RunCtl>>>,
    pub busy_count: AtomicUsize,
    /// Scripts (by SHA, or "fn:name") that touched keys they did not
    /// declare and now run holding every shard.
    pub needs_all: RwLock<HashSet<String>>,
}

/// Redis's BUSY errors.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Scripting {
    /// The BUSY error for commands that are not allowed while a script is
    /// busy, or None when no script is.
    #[inline]
    pub fn busy_error(&self) -> Option<&'static str> {
        if self.busy_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let b = self.busy.lock();
        let first = b.first()?;
        Some(if first.eval { BUSY_EVAL } else { BUSY_FUNCTION })
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL: Ok or the error reply.
    pub fn kill(&self, eval: bool) -> Result<(), &'static str> {
        let b = self.busy.lock();
        let Some(run) = b.first() else {
            return Err("NOTBUSY No scripts in execution right now.");
        };
        if run.written.load(Ordering::SeqCst) {
            return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
        }
        if eval && !run.eval {
            return Err(BUSY_FUNCTION);
        }
        if !eval && run.eval {
            return Err(BUSY_EVAL);
        }
        run.killed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The first busy script, for FUNCTION STATS.
    pub fn running(&self) -> Option<Arc<RunCtl>> {
        self.busy.lock().first().cloned()
    }
}

/// Parses an EVAL shebang (`#!lua flags=a,b`): (flags, shebang length).
pub fn parse_shebang(body: &[u8]) -> Result<(u32, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((sflags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let mut out = Vec::new();
    let mut ranges = Vec::new();
    if !resp::split_args(&body[..end], &mut out, &mut ranges) || ranges.is_empty() {
        return Err("ERR Invalid engine in script shebang".into());
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| String::from_utf8_lossy(&out[r.clone()]).to_string())
        .collect();
    if parts[0] != "#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            parts[0]
        ));
    }
    let mut fl = 0;
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix("flags=") else {
            return Err(format!("ERR Unknown lua shebang option: {p}"));
        };
        for f in list.split(',') {
            match sflags::NAMES.iter().find(|(_, n)| *n == f) {
                Some((b, _)) => fl |= b,
                None if f.is_empty() && list.is_empty() => {}
                None => return Err(format!("ERR Unexpected flag in script shebang: {f}")),
            }
        }
    }
    Ok((fl, end))
}

/// One script invocation's state, reached from Lua callbacks through
/// [`lua::CURRENT`].
pub struct Run {
    ctx: *mut Ctx<'static>,
    /// The script's own client: the caller's database at the start, RESP2
    /// unless redis.setresp(3).
    pub client: Client,
    pub ctl: Arc<RunCtl>,
    pub read_only: bool,
    /// Every shard of every database is locked.
    pub all_locked: bool,
    /// The script needs every shard: abandon this run and start over.
    pub escalate: bool,
    pub repl_flags: u8,
    /// Memory was over `maxmemory` when the script started (and it has no
    /// allow-oom flag): commands that may grow memory are refused.
    pub oom: bool,
    busy_registered: bool,
    threshold: Duration,
    last_pump: Instant,
}

/// How often a busy script serves the other clients of its thread.
const PUMP_EVERY: Duration = Duration::from_millis(2);

/// How long a script that wrote already waits for an undeclared key's
/// shard before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(2);

impl Run {
    pub fn srv(&self) -> &Server {
        // SAFETY: the caller's Ctx outlives the run.
        unsafe { (*self.ctx).srv }
    }

    fn ctx(&mut self) -> &mut Ctx<'static> {
        // SAFETY: the caller does not touch its Ctx while the script runs.
        unsafe { &mut *self.ctx }
    }

    /// redis.call / redis.pcall: (failed, value).
    pub fn call(&mut self, lua: &mlua::Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
        let fail = |msg: &str| -> mlua::Result<(bool, Value)> {
            Ok((true, Value::Table(lua::error_table(lua, msg)?)))
        };
        let argv = match lua::args_to_argv(&args) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        drop(args);
        if self.ctl.killed.load(Ordering::Relaxed) {
            return fail("Script killed by user with SCRIPT KILL...");
        }
        if self.escalate {
            return fail("Script needs every shard");
        }
        let srv: &'static Server = self.ctx().srv;
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        let Some(top) = srv.commands.lookup(argv[0]) else {
            return fail("Unknown Redis command called from script");
        };
        let cmd = if !top.subcommands.is_empty() && argv.len() >= 2 {
            match srv.commands.lookup_sub(top, argv[1]) {
                Some(c) => c,
                None => return fail("Unknown Redis command called from script"),
            }
        } else {
            top
        };
        if cmd.handler.is_none() && argv.len() < 2 {
            return fail("Wrong number of args calling Redis command from script");
        }
        if !commands::arity_ok(cmd, argv.len()) {
            return fail("Wrong number of args calling Redis command from script");
        }
        if cmd.has(flags::NOSCRIPT) {
            return fail("This Redis command is not allowed from script");
        }
        if (cmd.name == "xread" || cmd.name == "xreadgroup")
            && argv.iter().any(|a| a.eq_ignore_ascii_case(b"block"))
        {
            return fail(&format!(
                "{} command is not allowed with BLOCK option from scripts",
                cmd.name
            ));
        }
        if let Err(e) = commands::acl::script_check(self.ctx(), cmd, &argv) {
            return fail(&e);
        }
        if self.read_only && cmd.has(flags::WRITE | flags::MAY_REPLICATE) {
            return fail("Write commands are not allowed from read-only scripts.");
        }
        if !self.lock_for(cmd, &argv) {
            if self.escalate {
                return fail("Script needs every shard");
            }
            return fail(
                "ERR script could not lock a key it did not declare (held by another script)",
            );
        }
        if self.oom && cmd.has(flags::DENYOOM) {
            return fail(&format!("-{}", crate::server::evict::OOM_ERROR));
        }
        if cmd.has(flags::WRITE) {
            self.ctl.written.store(true, Ordering::SeqCst);
        }
        let mut out = Vec::new();
        {
            let client: *mut Client = &mut self.client;
            let outer = self.ctx();
            let locks =
                std::mem::replace(&mut outer.locks, crate::keyspace::Locks::new(&srv.keyspace));
            let mut inner = Ctx {
                srv,
                // SAFETY: the script's client lives in this Run for the
                // whole call; the inner Ctx does not escape it.
                client: unsafe { &mut *client },
                out: unsafe { &mut *(&mut out as *mut Vec<u8>) },
                locks,
                now_ms: outer.now_ms,
                in_exec: true,
                clock: Instant::now(),
                ready: std::mem::take(&mut outer.ready),
                no_monitor: false,
                track: Default::default(),
                modified: None,
                // The script's effects gather in the caller's unit, emitted
                // (wrapped in MULTI/EXEC) when the script's locks go.
                prop: std::mem::take(&mut outer.prop),
            };
            commands::run_command(&mut inner, cmd, &argv, 0);
            let (locks, ready, track) = (inner.locks, inner.ready, inner.track);
            let outer = self.ctx();
            outer.locks = locks;
            outer.ready = ready;
            outer.prop = inner.prop;
            // The caller's own invalidations go out after the script's reply.
            outer.track.keys.extend(track.keys);
        }
        let failed = out.first() == Some(&b'-');
        let mut pos = 0;
        let v = lua::resp_to_lua(lua, &out, &mut pos)?;
        Ok((failed, v))
    }

    /// `redis.acl_check_cmd`: whether the script's user may run `argv`
    /// (None: no such command).
    pub fn acl_allows(&mut self, argv: &[&[u8]]) -> Option<bool> {
        commands::acl::script_allows(self.ctx(), argv)
    }

    /// Makes sure the shards `cmd` needs are held. False when they cannot
    /// be (and `escalate` is set when starting over with every shard helps).
    fn lock_for(&mut self, cmd: &commands::Command, argv: &[&[u8]]) -> bool {
        if self.all_locked {
            return true;
        }
        let db = self.client.db;
        let srv = self.srv();
        let ids: Vec<ShardId> = match lockset_for(srv, cmd, argv, db) {
            LockSet::Shards(v) => v.into_iter().collect(),
            LockSet::All => {
                let dbs = srv.keyspace.db_count();
                if !self.ctl.written.load(Ordering::SeqCst) {
                    self.escalate = true;
                    return false;
                }
                (0..dbs as u32)
                    .flat_map(|d| (0..SHARDS as u32).map(move |s| (d, s)))
                    .collect()
            }
        };
        let deadline = Instant::now() + LOCK_WAIT;
        for id in ids {
            loop {
                if self.ctx().locks.try_add(id) {
                    break;
                }
                if !self.ctl.written.load(Ordering::SeqCst) {
                    self.escalate = true;
                    return false;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::yield_now();
            }
        }
        true
    }

    /// The Lua hook: busy registration, serving other clients while busy,
    /// SCRIPT KILL and restarts.
    pub fn tick(&mut self) -> mlua::Result<VmState> {
        if self.escalate {
            return Err(mlua::Error::runtime("Script needs every shard"));
        }
        if !self.busy_registered
            && !self.threshold.is_zero()
            && self.ctl.start.elapsed() >= self.threshold
        {
            self.busy_registered = true;
            let s = &self.srv().scripting;
            s.busy.lock().push(self.ctl.clone());
            s.busy_count.fetch_add(1, Ordering::SeqCst);
        }
        if self.busy_registered && self.last_pump.elapsed() >= PUMP_EVERY {
            self.last_pump = Instant::now();
            crate::server::net::pump_events();
        }
        if self.ctl.killed.load(Ordering::SeqCst) {
            return Err(mlua::Error::runtime(
                "Script killed by user with SCRIPT KILL...",
            ));
        }
        Ok(VmState::Continue)
    }

    fn unregister(&mut self) {
        if self.busy_registered {
            self.busy_registered = false;
            let s = &self.srv().scripting;
            s.busy.lock().retain(|r| !Arc::ptr_eq(r, &self.ctl));
            s.busy_count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Which thread-local engine a script runs in, and how to find its code.
pub enum Target<'x> {
    /// An EVAL script: its SHA and cached body.
    Eval { sha: &'x str, script: Arc<Script> },
    /// A library function.
    Function { name: &'x str },
}

struct EvalState {
    engine: lua::Engine,
    gen: u64,
    compiled: HashMap<String, mlua::Function>,
}

thread_local! {
    static EVAL: RefCell<Option<EvalState>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's EVAL engine (created or reset as needed).
fn with_eval<R>(srv: &Server, f: impl FnOnce(&mut EvalState) -> R) -> R {
    EVAL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let gen = srv.scripting.scripts_gen.load(Ordering::SeqCst);
        if slot.as_ref().is_none_or(|s| s.gen != gen) {
            *slot = Some(EvalState {
                engine: lua::Engine::new("eval").expect("Lua state"),
                gen,
                compiled: HashMap::new(),
            });
        }
        f(slot.as_mut().unwrap())
    })
}

/// Bytes of Lua memory used by this thread's EVAL state (INFO).
pub fn eval_memory() -> usize {
    EVAL.with(|c| {
        c.try_borrow()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.engine.used_memory()))
    })
    .unwrap_or(0)
}

/// Compiles an EVAL body in this thread's state (checking it before it is
/// cached). Err is the reply text.
pub fn compile_eval(
    srv: &Server,
    sha: &str,
    body: &[u8],
    shebang_len: usize,
) -> Result<(), String> {
    with_eval(srv, |st| {
        if st.compiled.contains_key(sha) {
            return Ok(());
        }
        // The shebang is dropped but its newline kept, so line numbers hold.
        let f = st
            .engine
            .compile(&body[shebang_len..], "@user_script")
            .map_err(|e| format!("ERR Error compiling script (new function): {e}"))?;
        st.compiled.insert(sha.to_string(), f);
        Ok(())
    })
}

/// Outcome of one attempt.
enum Attempt {
    Done,
    /// Start over holding every shard.
    Escalate,
}

/// Runs a script or function for the client in `ctx`, writing its reply.
/// `flags` are the script's flags, `ro` whether it came through a *_RO
/// command, `argv` the calling command (for FUNCTION STATS).
pub fn execute(
    ctx: &mut Ctx,
    target: Target,
    keys: &[&[u8]],
    args: &[&[u8]],
    flags: u32,
    ro: bool,
    argv: &[&[u8]],
) {
    let srv = ctx.srv;
    // Scripts propagate their effects (the commands they ran), not themselves.
    ctx.propagate_nothing();
    let compat = flags & sflags::EVAL_COMPAT != 0;
    if !compat && flags & sflags::NO_WRITES == 0 && ro {
        return ctx.error("ERR Can not execute a script with write flag using *_ro command.");
    }
    let (eval, name) = match &target {
        Target::Eval { sha, .. } => (true, sha.to_string()),
        Target::Function { name } => (false, name.to_string()),
    };
    let all_key = if eval {
        name.clone()
    } else {
        format!("fn:{name}")
    };
    let outer_held = ctx.locks.holds_any();
    // Redis's pre-command OOM state: evict first (never while holding
    // locks: inside EXEC the transaction's own check stands).
    let oom = srv.config.num(crate::config::HOT.maxmemory) > 0
        && flags & sflags::ALLOW_OOM == 0
        && if outer_held {
            crate::server::evict::last_check_oom()
        } else {
            crate::server::evict::perform_evictions(srv, true)
                == crate::server::evict::EvictResult::Fail
        };
    // A script declaring flags that may write is refused as a whole.
    if oom && !compat && flags & sflags::NO_WRITES == 0 {
        return ctx.error(crate::server::evict::OOM_ERROR);
    }
    let mut all = outer_held || srv.scripting.needs_all.read().contains(&all_key);
    let db = ctx.client.db;
    loop {
        if !outer_held {
            if all {
                let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
                ctx.locks.acquire_all(&dbs);
            } else {
                let mut ids: Vec<ShardId> = keys
                    .iter()
                    .map(|k| (db as u32, shard_of(k) as u32))
                    .collect();
                ctx.locks.acquire(&mut ids);
            }
        }
        let start = ctx.out.len();
        match attempt(
            ctx, &target, keys, args, flags, ro, argv, all, eval, &name, oom,
        ) {
            Attempt::Done => return,
            Attempt::Escalate => {
                ctx.out.truncate(start);
                if outer_held {
                    // Cannot happen (everything is held); answer anyway.
                    return ctx.error("ERR script needs every shard");
                }
                ctx.locks.release();
                srv.scripting.needs_all.write().insert(all_key.clone());
                all = true;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn attempt(
    ctx: &mut Ctx,
    target: &Target,
    keys: &[&[u8]],
    args: &[&[u8]],
    flags: u32,
    ro: bool,
    argv: &[&[u8]],
    all: bool,
    eval: bool,
    name: &str,
    oom: bool,
) -> Attempt {
    let srv = ctx.srv;
    let compat = flags & sflags::EVAL_COMPAT != 0;
    let mut client = Client::new(ctx.client.handle.clone(), true);
    client.db = ctx.client.db;
    let threshold = srv.config.get_num("busy-reply-threshold").max(0) as u64;
    let mut run = Box::new(Run {
        ctx: (ctx as *mut Ctx).cast::<Ctx<'static>>(),
        client,
        ctl: Arc::new(RunCtl {
            eval,
            name: name.to_string(),
            argv: argv.iter().map(|a| a.to_vec()).collect(),
            start: Instant::now(),
            written: AtomicBool::new(false),
            killed: AtomicBool::new(false),
        }),
        read_only: ro || (!compat && flags & sflags::NO_WRITES != 0),
        all_locked: all,
        escalate: false,
        repl_flags: 3,
        oom,
        busy_registered: false,
        threshold: Duration::from_millis(threshold),
        last_pump: Instant::now(),
    });
    let run_ptr: *mut Run = &mut *run;
    let result = match target {
        Target::Eval { sha, script } => with_eval(srv, |st| {
            if !st.compiled.contains_key(*sha) {
                let (_, sb) = parse_shebang(&script.body).unwrap_or((0, 0));
                match st.engine.compile(&script.body[sb..], "@user_script") {
                    Ok(f) => {
                        st.compiled.insert(sha.to_string(), f);
                    }
                    Err(e) => {
                        return Err(format!("ERR Error compiling script (new function): {e}"))
                    }
                }
            }
            let f = st.compiled[*sha].clone();
            let e = &st.engine;
            let k = e.array(keys).map_err(|x| x.to_string())?;
            let a = e.array(args).map_err(|x| x.to_string())?;
            let _ = e.real.raw_set("KEYS", k);
            let _ = e.real.raw_set("ARGV", a);
            lua::CURRENT.with(|c| c.set(run_ptr));
            let r = e.call(&f, Value::Nil, Value::Nil);
            lua::CURRENT.with(|c| c.set(std::ptr::null_mut()));
            Ok((r, e.lua.clone()))
        }),
        Target::Function { name } => functions::with_function(srv, name, |e, f| {
            let k = e.array(keys).map_err(|x| x.to_string())?;
            let a = e.array(args).map_err(|x| x.to_string())?;
            lua::CURRENT.with(|c| c.set(run_ptr));
            let r = e.call(f, Value::Table(k), Value::Table(a));
            lua::CURRENT.with(|c| c.set(std::ptr::null_mut()));
            Ok((r, e.lua.clone()))
        }),
    };
    run.unregister();
    if run.escalate {
        return Attempt::Escalate;
    }
    let (r, _lua) = match result {
        Ok(x) => x,
        Err(e) => {
            ctx.error(&e);
            return Attempt::Done;
        }
    };
    let killed = run.ctl.killed.load(Ordering::SeqCst);
    let resp3 = run.client.proto == resp::Proto::Resp3;
    let mut reply = resp::Reply::new(ctx.out, ctx.client.proto);
    match r {
        Ok((true, v)) => lua::lua_to_reply(&mut reply, &v, resp3, 0),
        Ok((false, Value::Table(t))) => {
            let mut msg = match t.raw_get::<Value>("err") {
                Ok(Value::String(s)) => s.to_string_lossy().to_string(),
                _ => "ERR unknown error".to_string(),
            };
            if killed {
                msg = "ERR Script killed by user with SCRIPT KILL...".to_string();
            }
            let src = t.raw_get::<Value>("source").ok();
            let line = t.raw_get::<Value>("line").ok();
            if let (Some(Value::String(s)), Some(l)) = (src, line) {
                let l = match l {
                    Value::Integer(i) => i.to_string(),
                    Value::Number(n) => (n as i64).to_string(),
                    Value::String(s) => s.to_string_lossy().to_string(),
                    _ => String::new(),
                };
                if !l.is_empty() {
                    msg = format!("{msg} script: {name}, on {}:{l}.", s.to_string_lossy());
                }
            }
            reply.error(&msg);
        }
        Ok((false, v)) => {
            let m = match v {
                Value::String(s) => s.to_string_lossy().to_string(),
                _ => "execution failure".to_string(),
            };
            let m: String = m.chars().take(100).collect();
            reply.error(&format!("ERR Error running script {name}, {m}"));
        }
        Err(e) => {
            let m = if killed {
                "ERR Script killed by user with SCRIPT KILL...".to_string()
            } else {
                format!(
                    "ERR Error running script {name}, {}",
                    lua::lua_error_text(&e)
                )
            };
            reply.error(&m);
        }
    }
    Attempt::Done
}
