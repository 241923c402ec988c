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
use crate::server::Mono;
use crate::server::Server;
use mlua::{Value, VmState};
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashSet;
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
    /// SHA1 (lowercase hex) -> script (foldhash: EVALSHA looks it up on
    /// every call).
    pub scripts: RwLock<hashbrown::HashMap<String, Arc<Script>>>,
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
    /// DEBUG set-disable-deny-scripts: scripts may call noscript commands.
    pub disable_deny_scripts: AtomicBool,
}

/// Redis's MISCONF error for a script that may write.
pub const MISCONF_SCRIPT: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.";

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
/// [`lua::CURRENT`]. It lives on the runner's stack and borrows the call's
/// name and argv: a run allocates nothing of its own until it goes busy.
pub struct Run {
    ctx: *mut Ctx<'static>,
    /// The script's own client: the caller's database at the start, RESP2
    /// unless redis.setresp(3).
    pub client: Client,
    /// What other threads see, created when the run goes past the busy
    /// threshold.
    ctl: Option<Arc<RunCtl>>,
    eval: bool,
    /// The SHA or function name, and the calling command (borrowed from
    /// the caller of `execute`, which outlives the run).
    name: *const str,
    argv: *const [&'static [u8]],
    start: Mono,
    /// The script ran a write command.
    written: bool,
    pub read_only: bool,
    /// Every shard of every database is locked.
    pub all_locked: bool,
    /// The script needs every shard: abandon this run and start over.
    pub escalate: bool,
    /// redis.set_repl: which consumers get the effects of the script's
    /// next commands (`propagate::TO_AOF` | `TO_REPLICA`).
    pub repl_flags: u8,
    /// Memory was over `maxmemory` when the script started (and it has no
    /// allow-oom flag): commands that may grow memory are refused.
    pub oom: bool,
    threshold: Duration,
    last_pump: Mono,
    /// The end of the script's last command (the next one's start).
    clock: Mono,
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

    /// SCRIPT KILL / FUNCTION KILL reached this run.
    fn killed(&self) -> bool {
        self.ctl
            .as_ref()
            .is_some_and(|c| c.killed.load(Ordering::SeqCst))
    }

    fn mark_written(&mut self) {
        self.written = true;
        if let Some(c) = &self.ctl {
            c.written.store(true, Ordering::SeqCst);
        }
    }

    /// Refuses a command the way Redis's `scriptCall` does: the error and
    /// the command's rejected calls are counted here.
    fn reject(&self, cmd: Option<&commands::Command>, msg: &str) -> lua::CallError {
        let text = lua::error_text(msg.as_bytes());
        self.srv().stats.error(&text);
        if let Some(c) = cmd {
            c.stats.local().rejected.fetch_add(1, Ordering::Relaxed);
        }
        lua::CallError::Rejected(String::from_utf8_lossy(&text).into_owned())
    }

    /// redis.call / redis.pcall: runs `argv` as the script's client and
    /// writes its RESP reply to `out`, or says why it did not run.
    pub fn exec(&mut self, argv: &[&[u8]], out: &mut Vec<u8>) -> Result<(), lua::CallError> {
        if self.killed() {
            return Err(lua::CallError::Plain(
                "Script killed by user with SCRIPT KILL...",
            ));
        }
        if self.escalate {
            return Err(lua::CallError::Plain("Script needs every shard"));
        }
        let srv: &'static Server = self.ctx().srv;
        let Some(top) = srv.commands.lookup(argv[0]) else {
            return Err(self.reject(None, "Unknown Redis command called from script"));
        };
        let cmd = if !top.subcommands.is_empty() && argv.len() >= 2 {
            match srv.commands.lookup_sub(top, argv[1]) {
                Some(c) => c,
                None => return Err(self.reject(None, "Unknown Redis command called from script")),
            }
        } else {
            top
        };
        if (cmd.handler.is_none() && argv.len() < 2) || !commands::arity_ok(cmd, argv.len()) {
            return Err(self.reject(
                Some(cmd),
                "Wrong number of args calling Redis command from script",
            ));
        }
        if cmd.has(flags::NOSCRIPT) && !srv.scripting.disable_deny_scripts.load(Ordering::Relaxed) {
            return Err(self.reject(Some(cmd), "This Redis command is not allowed from script"));
        }
        if (cmd.name == "xread" || cmd.name == "xreadgroup")
            && argv.iter().any(|a| a.eq_ignore_ascii_case(b"block"))
        {
            let m = format!(
                "{} command is not allowed with BLOCK option from scripts",
                cmd.name
            );
            return Err(self.reject(Some(cmd), &m));
        }
        if let Err(e) = commands::acl::script_check(self.ctx(), cmd, argv) {
            return Err(self.reject(Some(cmd), &e));
        }
        if self.read_only && cmd.has(flags::WRITE | flags::MAY_REPLICATE) {
            return Err(self.reject(
                Some(cmd),
                "Write commands are not allowed from read-only scripts.",
            ));
        }
        // A read-only replica refuses every write a script tries, unless
        // the script came from the master's stream.
        if cmd.has(flags::WRITE)
            && srv.repl.is_replica()
            && srv.config.get_bool("replica-read-only")
            && !self
                .ctx()
                .client
                .handle
                .is_master
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(self.reject(Some(cmd), &format!("-{}", crate::repl::READONLY_ERR)));
        }
        // Server-state checks for the first write (scriptVerifyWriteCommandAllow);
        // once the script wrote, it is not failed half-way.
        if cmd.has(flags::WRITE) && !self.written {
            if crate::persist::writes_denied(srv) {
                return Err(self.reject(Some(cmd), &format!("-{}", crate::persist::MISCONF)));
            }
            if !srv.good_replicas_ok() {
                return Err(self.reject(Some(cmd), &format!("-{}", crate::server::NOREPLICAS)));
            }
        }
        if self.oom && cmd.has(flags::DENYOOM) {
            return Err(self.reject(Some(cmd), &format!("-{}", crate::server::evict::OOM_ERROR)));
        }
        if !self.lock_for(cmd, argv) {
            if self.escalate {
                return Err(lua::CallError::Plain("Script needs every shard"));
            }
            return Err(lua::CallError::Plain(
                "ERR script could not lock a key it did not declare (held by another script)",
            ));
        }
        if cmd.has(flags::WRITE) {
            self.mark_written();
        }
        let client: *mut Client = &mut self.client;
        let (repl, clock) = (self.repl_flags, self.clock);
        let outer = self.ctx();
        let locks = std::mem::replace(&mut outer.locks, crate::keyspace::Locks::new(&srv.keyspace));
        let mut inner = Ctx {
            srv,
            // SAFETY: the script's client lives in this Run for the whole
            // call; the inner Ctx does not escape it.
            client: unsafe { &mut *client },
            out: unsafe { &mut *(out as *mut Vec<u8>) },
            locks,
            now_ms: outer.now_ms,
            in_exec: true,
            // One clock read per command: the previous one's end.
            clock,
            ready: std::mem::take(&mut outer.ready),
            no_monitor: false,
            track: Default::default(),
            modified: None,
            // The script's effects gather in the caller's unit, emitted
            // (wrapped in MULTI/EXEC) when the script's locks go.
            prop: std::mem::take(&mut outer.prop),
        };
        let before = inner.prop.unit.len();
        commands::run_command(&mut inner, cmd, argv, 0);
        // redis.set_repl: this command's effects go only where it says.
        inner.prop.restrict_from(before, repl);
        self.clock = inner.clock;
        let (locks, ready, track) = (inner.locks, inner.ready, inner.track);
        let outer = self.ctx();
        outer.locks = locks;
        outer.ready = ready;
        outer.prop = inner.prop;
        // The caller's own invalidations go out after the script's reply.
        if !track.keys.is_empty() {
            outer.track.keys.extend(track.keys);
        }
        Ok(())
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
        let srv: &'static Server = self.ctx().srv;
        match lockset_for(srv, cmd, argv, db) {
            LockSet::Shards(v) => v.into_iter().all(|id| self.lock_one(id)),
            LockSet::All => {
                if !self.written {
                    self.escalate = true;
                    return false;
                }
                let dbs = srv.keyspace.db_count() as u32;
                (0..dbs).all(|d| (0..SHARDS as u32).all(|s| self.lock_one((d, s))))
            }
        }
    }

    /// Holds shard `id`, waiting (a while) only if the script already
    /// wrote; otherwise a busy shard means starting over with every shard.
    fn lock_one(&mut self, id: ShardId) -> bool {
        let mut deadline = None;
        loop {
            if self.ctx().locks.try_add(id) {
                return true;
            }
            if !self.written {
                self.escalate = true;
                return false;
            }
            let d = *deadline.get_or_insert_with(|| Instant::now() + LOCK_WAIT);
            if Instant::now() >= d {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// The Lua hook: busy registration, serving other clients while busy,
    /// SCRIPT KILL and restarts.
    pub fn tick(&mut self) -> mlua::Result<VmState> {
        if self.escalate {
            return Err(mlua::Error::runtime("Script needs every shard"));
        }
        if self.ctl.is_none()
            && !self.threshold.is_zero()
            && Mono::now().nanos_since(self.start) >= self.threshold.as_nanos() as u64
        {
            // SAFETY: name and argv outlive the run (see the fields).
            let (name, argv) = unsafe { (&*self.name, &*self.argv) };
            let ctl = Arc::new(RunCtl {
                eval: self.eval,
                name: name.to_string(),
                argv: argv.iter().map(|a| a.to_vec()).collect(),
                start: self.start.to_instant(),
                written: AtomicBool::new(self.written),
                killed: AtomicBool::new(false),
            });
            self.ctl = Some(ctl.clone());
            let s = &self.srv().scripting;
            s.busy.lock().push(ctl);
            s.busy_count.fetch_add(1, Ordering::SeqCst);
            self.last_pump = Mono::now();
        }
        if self.ctl.is_some()
            && Mono::now().nanos_since(self.last_pump) >= PUMP_EVERY.as_nanos() as u64
        {
            self.last_pump = Mono::now();
            crate::server::net::pump_events();
        }
        if self.killed() {
            return Err(mlua::Error::runtime(
                "Script killed by user with SCRIPT KILL...",
            ));
        }
        Ok(VmState::Continue)
    }

    fn unregister(&mut self) {
        if let Some(ctl) = &self.ctl {
            let s = &self.srv().scripting;
            s.busy.lock().retain(|r| !Arc::ptr_eq(r, ctl));
            s.busy_count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

thread_local! {
    /// The time of the script running on this thread, in Unix µs (0: no
    /// script; MAX: a script whose time nobody asked for yet).
    static FROZEN_US: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a script is running on this thread (commands it calls behave
/// as for Redis's CLIENT_SCRIPT).
pub fn in_script() -> bool {
    FROZEN_US.with(|c| c.get()) != 0
}

/// The time commands see while a script runs on this thread (Redis
/// freezes its cached time for the whole script), or None outside one.
pub fn frozen_time_us() -> Option<u64> {
    FROZEN_US.with(|c| match c.get() {
        0 => None,
        // Running, not read yet: the first reading is kept.
        u64::MAX => {
            let t = crate::server::now_us();
            c.set(t);
            Some(t)
        }
        t => Some(t),
    })
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
    compiled: hashbrown::HashMap<String, mlua::Function>,
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
                compiled: hashbrown::HashMap::new(),
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
    let (eval, name): (bool, &str) = match &target {
        Target::Eval { sha, .. } => (true, sha),
        Target::Function { name } => (false, name),
    };
    // The needs_all key: the SHA, or "fn:" and the function name.
    let all_key: std::borrow::Cow<str> = if eval {
        name.into()
    } else {
        format!("fn:{name}").into()
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
    // A script declaring flags that may write is refused as a whole when
    // the server cannot take writes (scriptPrepareForRun).
    if !compat && flags & sflags::NO_WRITES == 0 {
        if crate::persist::writes_denied(srv) {
            return ctx.error(MISCONF_SCRIPT);
        }
        if !srv.good_replicas_ok() {
            return ctx.error(crate::server::NOREPLICAS);
        }
        if oom {
            return ctx.error(crate::server::evict::OOM_ERROR);
        }
    }
    let mut all = outer_held || {
        let na = srv.scripting.needs_all.read();
        !na.is_empty() && na.contains(all_key.as_ref())
    };
    let db = ctx.client.db;
    loop {
        // A script that may try-lock undeclared shards keeps whole-keyspace
        // lockers out while it runs (see `Keyspace::all_gate`).
        let _gate = (!outer_held && !all).then(|| srv.keyspace.all_gate.read());
        if !outer_held {
            if all {
                let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
                ctx.locks.acquire_all(&dbs);
            } else {
                let mut ids: smallvec::SmallVec<[ShardId; 4]> = keys
                    .iter()
                    .map(|k| (db as u32, shard_of(k) as u32))
                    .collect();
                ctx.locks.acquire(&mut ids);
            }
        }
        let start = ctx.out.len();
        match attempt(
            ctx, &target, keys, args, flags, ro, argv, all, eval, name, oom,
        ) {
            Attempt::Done => return,
            Attempt::Escalate => {
                ctx.out.truncate(start);
                if outer_held {
                    // Cannot happen (everything is held); answer anyway.
                    return ctx.error("ERR script needs every shard");
                }
                ctx.locks.release();
                srv.scripting.needs_all.write().insert(all_key.to_string());
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
    // Keys the script reads are tracked for its caller (Redis's
    // script_caller in call()); the client shares the caller's id.
    client.tracking.flags = ctx.client.tracking.flags;
    let threshold = srv
        .config
        .num(crate::config::HOT.busy_reply_threshold)
        .max(0) as u64;
    // The calling command's start (one clock read per command).
    let start = ctx.clock;
    let mut run = Run {
        ctx: (ctx as *mut Ctx).cast::<Ctx<'static>>(),
        client,
        ctl: None,
        eval,
        name: name as *const str,
        // SAFETY (lifetime erased): argv outlives the run, see the field.
        // The second cast changes only the lifetime, which clippy misreads.
        #[allow(clippy::unnecessary_cast)]
        argv: argv as *const [&[u8]] as *const [&'static [u8]],
        start,
        written: false,
        read_only: ro || (!compat && flags & sflags::NO_WRITES != 0),
        all_locked: all,
        escalate: false,
        repl_flags: crate::commands::propagate::TO_ALL,
        oom,
        threshold: Duration::from_millis(threshold),
        last_pump: start,
        clock: start,
    };
    let run_ptr: *mut Run = &mut run;
    FROZEN_US.with(|c| c.set(u64::MAX));
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
            let e = &st.engine;
            let f = &st.compiled[*sha];
            lua::CURRENT.with(|c| c.set(run_ptr));
            let r = e.call_eval(f, keys, args);
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
    FROZEN_US.with(|c| c.set(0));
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
    let killed = run.killed();
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
            if !killed
                && matches!(
                    t.raw_get::<Value>("ignore_error_stats_update"),
                    Ok(Value::Boolean(true))
                )
            {
                lua::mark_error_counted();
            }
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
