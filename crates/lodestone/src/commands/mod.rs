//! The command table and dispatch.
//!
//! [`table::TABLE`] holds every command's metadata; each family module
//! (`strings`, `keys`, `connection`, `admin`, ...) registers handlers by
//! name in [`CommandTable::build`]. Dispatch looks the command up, checks
//! arity and authentication, locks the shards of the command's keys in
//! ascending order, runs the handler to completion and records statistics.

pub mod acl;
pub mod admin;
pub mod bitops;
pub mod blocking;
pub mod cluster;
pub mod connection;
pub mod geo;
pub mod hashes;
pub mod hyperloglog;
pub mod introspect;
pub mod keys;
pub mod keyspecs;
pub mod latency;
pub mod lists;
pub mod migrate;
pub mod notify;
pub mod persistence;
pub mod propagate;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod sets;
pub mod sort;
pub mod streams;
pub mod strings;
pub mod table;
pub mod tracking;
pub mod transactions;
pub mod zsets;

use crate::keyspace::{shard_of, Locks, ShardId, SHARDS};
use crate::server::client::{Client, ReplyMode};
use crate::server::stats::CommandStats;
use crate::server::Server;
use hashbrown::HashMap;
use resp::Reply;
use std::sync::atomic::Ordering;

/// A command handler. `argv[0]` is the command name as the client sent it.
pub type Handler = fn(&mut Ctx, &[&[u8]]);

/// Overrides a command's lock set (see [`LockSet`]).
pub type LockFn = fn(&[&[u8]], usize, &Server) -> LockSet;

/// Finds the key positions of a command whose keys move (ZUNIONSTORE's
/// numkeys, LMPOP, SORT ... STORE). Returns None when the arguments are
/// malformed (the handler then replies with the proper error).
pub type KeysFn = fn(&[&[u8]]) -> Option<Vec<usize>>;

/// What a command family registers: its metadata rows (same columns as
/// [`table::TABLE`]), handlers, and any lock-set or key-finding overrides.
#[derive(Default)]
pub struct Registry {
    pub tables: Vec<&'static str>,
    pub handlers: Vec<(&'static str, Handler)>,
    pub locksets: Vec<(&'static str, LockFn)>,
    pub keys: Vec<(&'static str, KeysFn)>,
}

/// Command flags, as COMMAND INFO names them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const MAY_REPLICATE: u32 = 1 << 14;
    pub const SENTINEL: u32 = 1 << 15;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 16;
    pub const PROTECTED: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    pub const NO_MULTI: u32 = 1 << 19;
    pub const MOVABLE_KEYS: u32 = 1 << 20;
    pub const ALLOW_BUSY: u32 = 1 << 21;
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 22;

    /// (bit, name) in the order Redis lists them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (SENTINEL, "sentinel"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (PROTECTED, "protected"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories, in Redis's order.
pub const ACL_CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

fn acl_bit(name: &str) -> u32 {
    1 << ACL_CATEGORIES
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("unknown ACL category {name}"))
}

/// Key positions in the argument vector (Redis's legacy first/last/step).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyRange {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

/// A short list of shards, on the stack for the common cases.
pub type ShardList = smallvec::SmallVec<[ShardId; 4]>;

/// Which shards a command needs, computed before it runs.
pub enum LockSet {
    /// These shards (possibly none).
    Shards(ShardList),
    /// The command walks whole databases: outside a transaction it locks
    /// shards one at a time itself; inside one, everything is locked.
    All,
}

/// One command or subcommand.
pub struct Command {
    pub id: usize,
    /// Full name, `parent|sub` for subcommands.
    pub name: String,
    pub group: String,
    pub arity: i32,
    pub since: String,
    pub flags: u32,
    pub acl: u32,
    pub keys: Option<KeyRange>,
    pub summary: String,
    pub handler: Option<Handler>,
    /// Overrides the key-derived lock set (MOVE, SWAPDB, KEYS, ...).
    pub lockset: Option<LockFn>,
    /// Finds keys for commands with movable keys.
    pub keys_fn: Option<KeysFn>,
    pub subcommands: Vec<usize>,
    pub parent: Option<usize>,
    pub stats: CommandStats,
}

impl Command {
    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// The positions of this command's keys in `argv`.
    pub fn key_positions_of(&self, argv: &[&[u8]]) -> smallvec::SmallVec<[usize; 4]> {
        if let Some(f) = self.keys_fn {
            return f(argv)
                .unwrap_or_default()
                .into_iter()
                .filter(|&i| i < argv.len())
                .collect();
        }
        self.key_positions(argv.len()).collect()
    }

    /// Positions from the fixed first/last/step spec only.
    pub fn key_positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, last, step) = match self.keys {
            Some(k) => (
                k.first,
                if k.last < 0 {
                    argc as i32 + k.last
                } else {
                    k.last
                },
                k.step.max(1),
            ),
            None => (1, 0, 1),
        };
        (first..=last.min(argc as i32 - 1))
            .step_by(step as usize)
            .map(|i| i as usize)
    }

    /// Name as Redis prints it in errors and stats: `config|get`.
    pub fn full_name(&self) -> &str {
        &self.name
    }
}

/// All commands, indexed by name.
pub struct CommandTable {
    pub cmds: Vec<Command>,
    by_name: HashMap<Vec<u8>, usize>,
}

/// Collects what every family registers.
fn registry() -> Registry {
    let mut r = Registry::default();
    r.tables.push(table::TABLE);
    strings::register(&mut r);
    keys::register(&mut r);
    connection::register(&mut r);
    admin::register(&mut r);
    introspect::register(&mut r);
    transactions::register(&mut r);
    scripting::register(&mut r);
    hashes::register(&mut r);
    lists::register(&mut r);
    sets::register(&mut r);
    zsets::register(&mut r);
    bitops::register(&mut r);
    hyperloglog::register(&mut r);
    pubsub::register(&mut r);
    geo::register(&mut r);
    sort::register(&mut r);
    streams::register(&mut r);
    persistence::register(&mut r);
    migrate::register(&mut r);
    tracking::register(&mut r);
    replication::register(&mut r);
    cluster::register(&mut r);
    acl::register(&mut r);
    latency::register(&mut r);
    r
}

impl CommandTable {
    pub fn build() -> CommandTable {
        let reg = registry();
        let mut cmds: Vec<Command> = Vec::new();
        for line in reg
            .tables
            .iter()
            .flat_map(|t| t.lines())
            .filter(|l| !l.trim().is_empty())
        {
            let mut f: Vec<&str> = line.split('|').collect();
            let name = if f.len() == 9 {
                let n = format!("{}|{}", f[0], f[1]);
                f.drain(..2);
                n
            } else {
                let n = f[0].to_string();
                f.remove(0);
                n
            };
            assert_eq!(f.len(), 7, "bad command table row: {line}");
            let mut fl = 0;
            for w in f[3].split(',').filter(|w| *w != "-") {
                fl |= match w {
                    "touches_arbitrary_keys" => flags::TOUCHES_ARBITRARY_KEYS,
                    _ => {
                        flags::NAMES
                            .iter()
                            .find(|(_, n)| *n == w)
                            .unwrap_or_else(|| panic!("flag {w}"))
                            .0
                    }
                };
            }
            let mut acl = 0;
            for w in f[4].split(',').filter(|w| *w != "-") {
                acl |= acl_bit(w);
            }
            // Redis's implicit categories (setImplicitACLCategories).
            if fl & flags::WRITE != 0 {
                acl |= acl_bit("write");
            }
            if fl & flags::READONLY != 0 && acl & acl_bit("scripting") == 0 {
                acl |= acl_bit("read");
            }
            if fl & flags::ADMIN != 0 {
                acl |= acl_bit("admin") | acl_bit("dangerous");
            }
            if fl & flags::PUBSUB != 0 {
                acl |= acl_bit("pubsub");
            }
            if fl & flags::FAST != 0 {
                acl |= acl_bit("fast");
            }
            if fl & flags::BLOCKING != 0 {
                acl |= acl_bit("blocking");
            }
            if acl & acl_bit("fast") == 0 {
                acl |= acl_bit("slow");
            }
            let keys = if f[5] == "-" {
                None
            } else {
                let k: Vec<i32> = f[5].split(',').map(|x| x.parse().unwrap()).collect();
                Some(KeyRange {
                    first: k[0],
                    last: k[1],
                    step: k[2],
                })
            };
            let id = cmds.len();
            cmds.push(Command {
                id,
                name,
                group: f[0].to_string(),
                arity: f[1].parse().unwrap(),
                since: f[2].to_string(),
                flags: fl,
                acl,
                keys,
                summary: f[6].to_string(),
                handler: None,
                lockset: None,
                keys_fn: None,
                subcommands: Vec::new(),
                parent: None,
                stats: CommandStats::default(),
            });
        }
        let mut by_name = HashMap::new();
        for c in &cmds {
            by_name.insert(c.name.as_bytes().to_vec(), c.id);
        }
        for i in 0..cmds.len() {
            if let Some((parent, _)) = cmds[i].name.split_once('|') {
                let p = by_name[parent.as_bytes()];
                cmds[p].subcommands.push(i);
                cmds[i].parent = Some(p);
            }
        }
        for (name, h) in reg.handlers {
            let id = *by_name
                .get(name.as_bytes())
                .unwrap_or_else(|| panic!("handler for unknown command {name}"));
            cmds[id].handler = Some(h);
        }
        for (name, l) in reg.locksets {
            cmds[by_name[name.as_bytes()]].lockset = Some(l);
        }
        for (name, k) in reg.keys {
            let c = &mut cmds[by_name[name.as_bytes()]];
            c.keys_fn = Some(k);
            c.flags |= flags::MOVABLE_KEYS;
        }
        CommandTable { cmds, by_name }
    }

    /// Finds a top-level command by name, case-insensitively.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mut buf = [0u8; 64];
        if name.len() > buf.len() {
            return None;
        }
        for (i, c) in name.iter().enumerate() {
            buf[i] = c.to_ascii_lowercase();
        }
        self.by_name
            .get(&buf[..name.len()])
            .map(|&i| &self.cmds[i])
            .filter(|c| c.parent.is_none())
    }

    /// Finds `parent|sub`.
    pub fn lookup_sub(&self, parent: &Command, sub: &[u8]) -> Option<&Command> {
        let mut name = parent.name.as_bytes().to_vec();
        name.push(b'|');
        name.extend(sub.iter().map(|c| c.to_ascii_lowercase()));
        self.by_name.get(&name).map(|&i| &self.cmds[i])
    }

    /// Finds a command or subcommand by its full name (`config|get`).
    pub fn by_full_name(&self, name: &str) -> Option<&Command> {
        self.by_name
            .get(name.to_ascii_lowercase().as_bytes())
            .map(|&i| &self.cmds[i])
    }

    /// Top-level commands that have a handler (or subcommands with handlers).
    pub fn top_level(&self) -> impl Iterator<Item = &Command> {
        self.cmds.iter().filter(|c| c.parent.is_none())
    }

    /// Resolves argv to the command (or subcommand) that will run it,
    /// or the error reply Redis gives.
    pub fn resolve(&self, argv: &[&[u8]]) -> Result<&Command, String> {
        let Some(cmd) = self.lookup(argv[0]) else {
            return Err(unknown_command_error(argv));
        };
        if cmd.subcommands.is_empty() {
            return Ok(cmd);
        }
        if argv.len() < 2 {
            if cmd.handler.is_some() {
                return Ok(cmd);
            }
            return Err(format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.name
            ));
        }
        match self.lookup_sub(cmd, argv[1]) {
            Some(sub) => Ok(sub),
            None => Err(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                sanitize_for_error(argv[1], 128),
                cmd.name.to_ascii_uppercase()
            )),
        }
    }
}

/// Shortens and cleans a client argument for an error message (Redis
/// replaces newlines with spaces and truncates to 128 bytes).
pub fn sanitize_for_error(a: &[u8], max: usize) -> String {
    let s = &a[..a.len().min(max)];
    String::from_utf8_lossy(s).replace(['\r', '\n'], " ")
}

fn unknown_command_error(argv: &[&[u8]]) -> String {
    let mut args = String::new();
    for a in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let remaining = 128 - args.len();
        args.push_str(&format!("'{}' ", sanitize_for_error(a, remaining)));
    }
    format!(
        "ERR unknown command '{}', with args beginning with: {}",
        sanitize_for_error(argv[0], 128),
        args
    )
}

/// Common error replies.
pub mod err {
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const DB_RANGE: &str = "ERR DB index is out of range";
    pub const NOAUTH: &str = "NOAUTH Authentication required.";
    /// Commands without the `loading` flag while the dataset loads.
    pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
}

/// Everything a handler needs: the server, the calling client, its reply
/// buffer and the shard locks the dispatcher took for it.
pub struct Ctx<'a> {
    pub srv: &'a Server,
    pub client: &'a mut Client,
    pub out: &'a mut Vec<u8>,
    pub locks: Locks<'a>,
    /// The time the command started, in Unix milliseconds; all expiry
    /// decisions of one command use this one instant.
    pub now_ms: u64,
    /// True while EXEC runs its queue (some commands behave differently).
    pub in_exec: bool,
    /// When the current command started. `run_command` advances it to the
    /// command's end, which is the next command's start: one clock read
    /// per command.
    pub clock: std::time::Instant,
    /// Keys with parked clients that this command (or EXEC) wrote; their
    /// waiters are woken once the locks are released.
    pub ready: Vec<(usize, Vec<u8>)>,
    /// Set when re-running a parked command: MONITOR showed it when it
    /// first ran.
    pub no_monitor: bool,
    /// Invalidations for this client caused by its own command, written
    /// after the reply (client-side caching).
    pub track: tracking::Pending,
    /// Set by a handler whose command changed only some of its keys (SMOVE
    /// into a set that already had the member, a STORE that only read its
    /// sources): the key positions it really modified. WATCH touches and
    /// invalidations then skip the others.
    pub modified: Option<smallvec::SmallVec<[usize; 2]>>,
    /// Effects collected for the propagation feed (see [`propagate`]).
    pub prop: propagate::Pending,
}

impl<'a> Ctx<'a> {
    /// A context for one client's commands starting now: no locks held,
    /// nothing pending. Callers set the odd field (`no_monitor`, ...).
    pub fn new(srv: &'a Server, client: &'a mut Client, out: &'a mut Vec<u8>) -> Ctx<'a> {
        Ctx {
            srv,
            client,
            out,
            locks: Locks::new(&srv.keyspace),
            now_ms: crate::server::now_ms(),
            in_exec: false,
            clock: std::time::Instant::now(),
            ready: Vec::new(),
            no_monitor: false,
            track: Default::default(),
            modified: None,
            prop: Default::default(),
        }
    }

    /// The reply writer for this client.
    #[inline]
    pub fn r(&mut self) -> Reply<'_> {
        Reply::new(self.out, self.client.proto)
    }

    pub fn error(&mut self, msg: &str) {
        self.r().error(msg);
    }

    pub fn ok(&mut self) {
        self.r().ok();
    }

    pub fn db(&self) -> usize {
        self.client.db
    }

    /// Whether this client's reads update keys' LRU/LFU (CLIENT NO-TOUCH off).
    #[inline]
    pub fn touch_ok(&self) -> bool {
        !self.client.handle.no_touch.load(Ordering::Relaxed)
    }

    /// Publishes a keyspace event for `key` in the client's database
    /// (after the `new` events of keys the command added so far, the order
    /// Redis raises them in: see [`notify::notify`]).
    #[inline]
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        notify::notify(self.srv, class, event, self.client.db, key);
    }

    /// A key this command changed outside the dispatcher's key positions
    /// (STORE destinations, MOVE, COPY ...): WATCH and client-side caching
    /// learn about it, like Redis's `signalModifiedKey`.
    pub fn signal_modified(&mut self, db: usize, key: &[u8]) {
        self.srv.touch_watched(Some(db), Some(key));
        if self.srv.tracking.active() {
            tracking::key_modified(self, key, true);
        }
    }

    /// The shard holding `key` in the client's database.
    #[inline]
    pub fn shard(&mut self, key: &[u8]) -> &mut crate::keyspace::Shard {
        let db = self.client.db;
        self.locks.shard(db, key)
    }
}

/// The shards a command needs in database `db`.
pub fn lockset_for(srv: &Server, cmd: &Command, argv: &[&[u8]], db: usize) -> LockSet {
    if let Some(f) = cmd.lockset {
        return f(argv, db, srv);
    }
    let pos = cmd.key_positions_of(argv);
    LockSet::Shards(
        pos.into_iter()
            .map(|i| (db as u32, shard_of(argv[i]) as u32))
            .collect(),
    )
}

/// The position of the only key of a command whose lock set is just that
/// key's shard (fixed key spec with first == last, no override).
#[inline]
fn single_key(cmd: &Command, argv: &[&[u8]]) -> Option<usize> {
    if cmd.lockset.is_some() || cmd.keys_fn.is_some() {
        return None;
    }
    let k = cmd.keys?;
    (k.first > 0 && k.first == k.last && (k.first as usize) < argv.len())
        .then_some(k.first as usize)
}

/// Checks arity the way Redis does: exact for positive, minimum for negative.
pub fn arity_ok(cmd: &Command, argc: usize) -> bool {
    let a = cmd.arity;
    (a > 0 && argc as i32 == a) || (a < 0 && argc as i32 >= -a)
}

/// Runs one command from a client, with all of Redis's checks in order.
pub fn dispatch(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    let reply_start = ctx.out.len();
    let cmd = match srv.commands.resolve(argv) {
        Ok(c) => c,
        Err(e) => {
            // Unknown commands inside MULTI abort the transaction.
            if ctx.client.multi.is_some() {
                ctx.client.multi_error = true;
            }
            ctx.error(&e);
            srv.stats.error(e.as_bytes());
            return;
        }
    };
    if cmd.handler.is_none() {
        let e = unknown_command_error(argv);
        ctx.error(&e);
        srv.stats.error(e.as_bytes());
        return;
    }
    // Redis's rejectCommand: a refused command inside MULTI dooms the
    // transaction, and a refused EXEC discards it with EXECABORT.
    let reject = |ctx: &mut Ctx, msg: &str| {
        if ctx.client.multi.is_some() {
            ctx.client.multi_error = true;
        }
        cmd.stats.local().rejected.fetch_add(1, Ordering::Relaxed);
        if cmd.name == "exec" {
            // Redis's rejectCommand: a refused EXEC discards the
            // transaction and says why (execCommandAbort).
            transactions::end_transaction(ctx);
            let m = format!("EXECABORT Transaction discarded because of: {msg}");
            ctx.error(&m);
            srv.stats.error(m.as_bytes());
            return;
        }
        ctx.error(msg);
        srv.stats.error(msg.as_bytes());
    };
    if !arity_ok(cmd, argv.len()) {
        reject(
            ctx,
            &format!("ERR wrong number of arguments for '{}' command", cmd.name),
        );
        return;
    }
    if !ctx.client.authenticated && !srv.acl.default_open() && !cmd.has(flags::NO_AUTH) {
        reject(ctx, err::NOAUTH);
        return;
    }
    // ACL: a user that may run anything costs one atomic load here.
    if !ctx.client.acl.unrestricted() {
        if ctx.client.multi.is_some() && cmd.has(flags::NO_MULTI) {
            reject(ctx, "ERR Command not allowed inside a transaction");
            return;
        }
        ctx.client.handle.last_cmd.store(cmd.id, Ordering::Relaxed);
        let context = if ctx.client.multi.is_some() {
            crate::acl::LogCtx::Multi
        } else {
            crate::acl::LogCtx::Toplevel
        };
        if let Err(d) = crate::acl::check_client(ctx, cmd, argv, context) {
            let msg = crate::acl::noperm(ctx, d, cmd, argv);
            reject(ctx, &msg);
            return;
        }
    }
    if !cmd.has(flags::LOADING)
        && !ctx.prop.loading
        && srv.persist.startup_loading.load(Ordering::Relaxed)
    {
        reject(ctx, err::LOADING);
        return;
    }
    if !cmd.has(flags::ALLOW_BUSY) {
        if let Some(e) = srv.scripting.busy_error() {
            reject(ctx, e);
            return;
        }
    }
    if ctx.client.proto == resp::Proto::Resp2
        && ctx.client.subs.is_subscribed()
        && !pubsub::allowed_while_subscribed(
            cmd.parent.map_or(&cmd.name, |p| &srv.commands.cmds[p].name),
        )
    {
        let name = cmd
            .parent
            .map_or(cmd.name.as_str(), |p| srv.commands.cmds[p].name.as_str());
        reject(ctx, &pubsub::subscribed_error(name));
        return;
    }
    if srv.config.num(crate::config::HOT.maxmemory) > 0 && !oom_check(ctx, cmd) {
        reject(ctx, crate::server::evict::OOM_ERROR);
        return;
    }
    if let Some(e) = replication_refusal(ctx, cmd) {
        reject(ctx, e);
        return;
    }
    if srv.tracking.active() {
        tracking::before_command(ctx);
    }
    if ctx.client.multi.is_some() && !is_multi_control(cmd) {
        if cmd.has(flags::NO_MULTI) {
            reject(ctx, "ERR Command not allowed inside a transaction");
            return;
        }
        let q = ctx.client.multi.as_mut().unwrap();
        q.push(crate::server::client::Queued {
            argv: argv.iter().map(|a| a.to_vec()).collect(),
        });
        ctx.client
            .handle
            .multi
            .store(q.len() as i64, Ordering::Relaxed);
        ctx.r().simple("QUEUED");
        return;
    }
    if (cmd.has(flags::WRITE) || cmd.name == "ping")
        && !ctx.in_exec
        && crate::persist::writes_denied(srv)
    {
        reject(ctx, crate::persist::MISCONF);
        return;
    }
    run_command(ctx, cmd, argv, reply_start);
    if srv.tracking.active() || !ctx.track.keys.is_empty() {
        tracking::after_command(ctx);
    }
    // CLIENT CACHING applies to the next command or transaction only.
    if ctx.client.tracking.flags & tracking::CACHING != 0
        && ctx.client.multi.is_none()
        && cmd
            .parent
            .is_none_or(|p| srv.commands.cmds[p].name != "client")
    {
        ctx.client.tracking.flags &= !tracking::CACHING;
    }
}

/// Whether the MULTI queue holds a command for which `pred` is true
/// (EXEC is refused or accepted as a whole by what it would run).
fn queued_any(ctx: &Ctx, pred: impl Fn(&Command) -> bool) -> bool {
    ctx.client.multi.as_ref().is_some_and(|q| {
        q.iter().any(|c| {
            let argv: smallvec::SmallVec<[&[u8]; 8]> =
                c.argv.iter().map(|a| a.as_slice()).collect();
            ctx.srv.commands.resolve(&argv).is_ok_and(&pred)
        })
    })
}

/// The flags `argv` runs with, as Redis's `getCommandFlags` plus EXEC's
/// union: a script command gets its script's declared flags, and EXEC
/// those of every queued command. For checks before a command runs
/// (CLIENT PAUSE); it resolves queued commands again, so keep it off the
/// common path.
pub fn effective_flags(srv: &Server, client: &Client, cmd: &Command, argv: &[&[u8]]) -> u32 {
    let own = scripting::script_command_flags(srv, cmd, argv);
    if cmd.name != "exec" {
        return own;
    }
    client.multi.iter().flatten().fold(own, |acc, q| {
        let argv: smallvec::SmallVec<[&[u8]; 8]> = q.argv.iter().map(|a| a.as_slice()).collect();
        match srv.commands.resolve(&argv) {
            Ok(c) => acc | scripting::script_command_flags(srv, c, &argv),
            Err(_) => acc,
        }
    })
}

/// The maxmemory step of Redis's `processCommand`: evicts if memory is over
/// the limit (before any shard is locked) and returns false when the
/// command must be refused with the OOM error: it may grow memory
/// (`denyoom`, or EXEC of a queue holding such a command, or anything
/// but EXEC/DISCARD/QUIT/RESET queued inside MULTI) and nothing more
/// could be evicted.
fn oom_check(ctx: &mut Ctx, cmd: &Command) -> bool {
    use crate::server::evict::{perform_evictions, EvictResult};
    let srv = ctx.srv;
    let in_multi = ctx.client.multi.is_some();
    let is_exec = cmd.name == "exec";
    let mut reject_on_oom = cmd.has(flags::DENYOOM)
        || (in_multi && !matches!(cmd.name.as_str(), "exec" | "discard" | "quit" | "reset"));
    if is_exec && !reject_on_oom {
        reject_on_oom = queued_any(ctx, |c| c.has(flags::DENYOOM));
    }
    if ctx.locks.holds_any() {
        // Called with shards locked (a script running a command): evicting
        // now could wait for a shard this thread holds. Use the state the
        // check before the script found.
        return !(reject_on_oom && crate::server::evict::last_check_oom());
    }
    let (r, evicted) =
        crate::server::evict::with_deferred_tracking(|| perform_evictions(srv, reject_on_oom));
    if !evicted.is_empty() {
        tracking::evicted_before_reply(ctx, &evicted);
    }
    r != EvictResult::Fail || !reject_on_oom
}

/// Executes a resolved, checked command: locks, runs, unlocks, counts.
pub fn run_command(ctx: &mut Ctx, cmd: &Command, argv: &[&[u8]], reply_start: usize) {
    let srv = ctx.srv;
    let start = ctx.clock;
    let handler = cmd.handler.expect("resolved commands have handlers");
    ctx.client.handle.last_cmd.store(cmd.id, Ordering::Relaxed);
    let owner = !ctx.locks.holds_any();
    if owner {
        if let Some(i) = single_key(cmd, argv) {
            // The common case (GET, SET, INCR, HSET ...): one shard, and
            // the handler's own lookup of that key skips the CRC16.
            let id = (
                ctx.client.db as u32,
                crate::keyspace::shard_of(argv[i]) as u32,
            );
            ctx.locks.acquire(&mut [id]);
            ctx.locks.remember(argv[i], id);
        } else {
            match lockset_for(srv, cmd, argv, ctx.client.db) {
                LockSet::Shards(mut ids) => ctx.locks.acquire(&mut ids),
                // A whole-database write (FLUSHALL, FLUSHDB) that is fed to
                // consumers holds everything, so that no write to a shard it
                // already passed can reach the feed before it does.
                LockSet::All if cmd.has(flags::WRITE) && ctx.propagating() => {
                    let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
                    ctx.locks.acquire_all(&dbs);
                }
                LockSet::All => {}
            }
        }
    }
    // The feed check: one relaxed load when nobody consumes effects.
    let feed = ctx.propagating();
    let saved_rewrite = if feed { ctx.prop.rewrite.take() } else { None };
    let dirty = crate::server::LOCAL_DIRTY.with(|d| d.get());
    let before = notify::family_before(ctx, cmd, argv);
    // MONITOR sees a command after it ran (EXEC after its queue), except
    // one that may park its client: that one is fed first, so a command
    // on another worker that sees it blocked (INFO blocked_clients) and
    // serves it always comes after it.
    let monitored = !cmd.has(flags::ADMIN | flags::SKIP_MONITOR);
    let feed_first = monitored && cmd.has(flags::BLOCKING);
    if feed_first {
        admin::feed_monitors(ctx, argv);
    }
    handler(ctx, argv);
    notify::family_after(ctx, cmd, argv, before);
    after_write(ctx, cmd, argv, dirty);
    let expired = notify_expired(ctx, feed);
    if feed {
        let rewrite = std::mem::replace(&mut ctx.prop.rewrite, saved_rewrite);
        propagate::after_command(ctx, cmd, argv, dirty, rewrite, &expired);
    }
    // Read-only scripts are not tracked themselves, only the commands
    // they run (Redis's call()).
    if ctx.client.tracking.flags & tracking::ON != 0
        && cmd.has(flags::READONLY)
        && cmd.group != "scripting"
    {
        tracking::remember_keys(ctx, cmd, argv);
    }
    if owner {
        // Effects reach the feed before the locks go: per-key order holds.
        ctx.release_locks();
        if !ctx.ready.is_empty() {
            blocking::signal_ready(ctx);
        }
    }
    if monitored && !feed_first {
        admin::feed_monitors(ctx, argv);
    }
    let end = std::time::Instant::now();
    ctx.clock = end;
    let took = end.duration_since(start);
    let us = took.as_micros() as u64;
    let counters = cmd.stats.local();
    // A command that parked its client is counted when its wait ends (when
    // it is served, times out or is unblocked), as in Redis.
    if ctx.client.blocked.is_none() {
        counters.calls.fetch_add(1, Ordering::Relaxed);
        if crate::server::latency::TRACKING.load(Ordering::Relaxed) {
            counters
                .hist
                .get_or_init(Default::default)
                .record(took.as_nanos() as i64);
        }
        counters.usec.fetch_add(us, Ordering::Relaxed);
    }
    let event = if cmd.has(flags::FAST) {
        "fast-command"
    } else {
        "command"
    };
    crate::server::latency::add_sample_if_needed(event, us / 1000);
    srv.stats.total_commands.add(1);
    if ctx.out.len() > reply_start && ctx.out[reply_start] == b'-' {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        // A script returning the error of a command it called: that error
        // was counted when the command failed (Redis's NO_STATS_UPDATE).
        if !crate::scripting::lua::take_error_counted() {
            let end = ctx.out[reply_start..]
                .iter()
                .position(|&c| c == b'\r')
                .map_or(ctx.out.len(), |p| reply_start + p);
            srv.stats.error(&ctx.out[reply_start..end]);
        }
    }
    let slower = srv.config.num(crate::config::HOT.slowlog_slower_than);
    if slower >= 0 && us >= slower as u64 && !cmd.has(flags::SKIP_SLOWLOG) {
        let max = srv.config.num(crate::config::HOT.slowlog_max_len) as usize;
        let name = ctx.client.handle.name.lock().clone();
        srv.slowlog
            .lock()
            .push(argv, us, ctx.client.handle.addr.clone(), name, max);
    }
    if ctx.client.reply_mode != ReplyMode::On {
        // CLIENT REPLY OFF/SKIP: drop what this command wrote.
        if ctx.client.reply_mode == ReplyMode::Skip {
            ctx.client.reply_mode = ReplyMode::On;
        } else if ctx.client.reply_mode == ReplyMode::SkipNext {
            ctx.client.reply_mode = ReplyMode::Skip;
            return;
        }
        // (Un)subscribe confirmations are pushes (Redis sends them with
        // CLIENT_PUSHING even in RESP2): CLIENT REPLY does not silence them.
        let pushes = cmd.has(flags::PUBSUB) && cmd.name.contains("subscribe");
        if !pushes {
            ctx.out.truncate(reply_start);
        }
    }
}

/// Publishes `expired` events for keys the command found expired and
/// invalidates them for clients that may cache them; returns them when
/// the feed wants them (as DELs).
fn notify_expired(ctx: &mut Ctx, feed: bool) -> Vec<(usize, Vec<u8>)> {
    notify::notify_new(ctx.srv, ctx.client.db);
    if !crate::keyspace::shard::LOG_EXPIRED.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let keys = ctx.locks.drain_expired();
    for (db, key) in &keys {
        notify::notify(ctx.srv, notify::EXPIRED, "expired", *db, key);
        if ctx.srv.tracking.active() {
            tracking::key_modified(ctx, key, false);
        }
    }
    if feed {
        keys
    } else {
        Vec::new()
    }
}

/// After a write, while the command still holds its shard locks: marks
/// clients that WATCH the written keys dirty (so EXEC's check cannot miss
/// it), invalidates them for clients that may cache them, and notes keys
/// that parked clients wait for. A command that changed nothing (the
/// thread's change counter did not move since `dirty`) touches no watcher
/// and invalidates nothing, as Redis only signals real modifications.
fn after_write(ctx: &mut Ctx, cmd: &Command, argv: &[&[u8]], dirty: u64) {
    let srv = ctx.srv;
    let only = ctx.modified.take();
    // A blocking command that parked its client wrote nothing.
    if !cmd.has(flags::WRITE) || ctx.client.blocked.is_some() {
        return;
    }
    let watched = srv.watch_count.load(Ordering::SeqCst) > 0;
    let waiting = srv.waiters.any();
    let tracking = srv.tracking.active();
    if !watched && !waiting && !tracking {
        return;
    }
    if cmd.name == "sort" {
        // SORT signals its STORE destination itself (sort::signal_modified).
        return;
    }
    if cmd.lockset.is_some() {
        // FLUSH*, SWAPDB, MOVE, COPY touch watched keys themselves (only
        // the ones they really change); any key may now be ready.
        if waiting {
            blocking::note_all(ctx, None);
        }
        return;
    }
    let changed = crate::server::LOCAL_DIRTY.with(|d| d.get()) != dirty;
    // STORE commands (SINTERSTORE, ZRANGESTORE, GEOSEARCHSTORE ...) write
    // only their destination, the first key; their sources are read.
    let store = cmd.name.ends_with("store");
    let db = ctx.client.db;
    for (i, p) in cmd.key_positions_of(argv).into_iter().enumerate() {
        if changed && only.as_ref().is_none_or(|o| o.contains(&p)) && (!store || i == 0) {
            if watched {
                srv.touch_watched(Some(db), Some(argv[p]));
            }
            if tracking {
                tracking::key_modified(ctx, argv[p], true);
            }
        }
        if waiting {
            blocking::note_write(ctx, db, argv[p]);
        }
    }
}

/// The replication checks of Redis's processCommand: NOREPLICAS
/// (`min-replicas-to-write`), READONLY (a read-only replica), MASTERDOWN
/// (a stale replica with `replica-serve-stale-data no`). The script runner
/// should ask it for `redis.call`s too (Redis's scriptVerifyWriteCommandAllow).
pub fn replication_refusal(ctx: &Ctx, cmd: &Command) -> Option<&'static str> {
    let srv = ctx.srv;
    if !srv.repl.enough_good_replicas() && is_write(ctx, cmd) {
        return Some(crate::server::NOREPLICAS);
    }
    if !srv.repl.is_replica() || ctx.client.handle.is_master.load(Ordering::Relaxed) {
        return None;
    }
    if !replica_may_run(ctx, cmd) {
        return Some(crate::repl::READONLY_ERR);
    }
    if srv.repl.link.lock().state != "connected"
        && !srv.config.get_bool("replica-serve-stale-data")
        && denied_when_stale(ctx, cmd)
    {
        return Some(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    None
}

/// Commands without the `stale` flag (or EXEC of a queue holding one).
fn denied_when_stale(ctx: &Ctx, cmd: &Command) -> bool {
    !cmd.has(flags::STALE) || (cmd.name == "exec" && queued_any(ctx, |c| !c.has(flags::STALE)))
}

/// On a replica: whether a command may run (`replica-read-only` refuses
/// writes from anybody but the master, EXEC of a queue holding one too).
fn replica_may_run(ctx: &Ctx, cmd: &Command) -> bool {
    ctx.client.handle.is_master.load(Ordering::Relaxed)
        || !ctx.srv.config.get_bool("replica-read-only")
        || !is_write(ctx, cmd)
}

/// Redis's is_write_command: a write, or EXEC of a queue holding one.
fn is_write(ctx: &Ctx, cmd: &Command) -> bool {
    cmd.has(flags::WRITE) || (cmd.name == "exec" && queued_any(ctx, |c| c.has(flags::WRITE)))
}

fn is_multi_control(cmd: &Command) -> bool {
    matches!(
        cmd.name.as_str(),
        "exec" | "discard" | "multi" | "watch" | "unwatch" | "quit" | "reset"
    )
}

/// Locks every shard of `db` one at a time, for whole-database walks.
pub fn all_shards(db: usize) -> Vec<ShardId> {
    (0..SHARDS as u32).map(|s| (db as u32, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let t = CommandTable::build();
        for c in &t.cmds {
            assert!(
                c.handler.is_some() || !c.subcommands.is_empty(),
                "command {} has no handler",
                c.name
            );
        }
        let get = t.lookup(b"GeT").unwrap();
        assert_eq!(get.arity, 2);
        assert!(get.has(flags::READONLY | flags::FAST));
        assert_eq!(get.key_positions(2).collect::<Vec<_>>(), vec![1]);
        let mset = t.lookup(b"mset").unwrap();
        assert_eq!(mset.key_positions(5).collect::<Vec<_>>(), vec![1, 3]);
        assert!(t.resolve(&[b"config", b"get", b"x"]).unwrap().name == "config|get");
        assert_eq!(
            t.resolve(&[b"config", b"nope"]).err().unwrap(),
            "ERR unknown subcommand 'nope'. Try CONFIG HELP."
        );
        assert_eq!(
            t.resolve(&[b"foo", b"a", b"b"]).err().unwrap(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
    }

    /// Compares the table with the shared Redis 7.2 command list when it is
    /// present beside the project (it is in CI and on developer machines).
    #[test]
    fn table_matches_redis_metadata() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/redis-7.2-commands.tsv"
        );
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let t = CommandTable::build();
        let mut checked = 0;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let Some(c) = t.by_full_name(f[0]) else {
                continue;
            };
            assert_eq!(c.arity.to_string(), f[2], "arity of {}", f[0]);
            assert_eq!(c.group, f[1], "group of {}", f[0]);
            let mut want: Vec<&str> = f[4].split(',').filter(|x| *x != "-").collect();
            want.sort();
            want.dedup();
            let mut have: Vec<&str> = flags::NAMES
                .iter()
                .filter(|(b, _)| c.flags & b != 0 && *b != flags::MOVABLE_KEYS)
                .map(|(_, n)| *n)
                .chain(
                    (c.flags & flags::TOUCHES_ARBITRARY_KEYS != 0)
                        .then_some("touches_arbitrary_keys"),
                )
                .collect();
            have.sort();
            assert_eq!(have, want, "flags of {}", f[0]);
            checked += 1;
        }
        assert!(checked > 50);
    }
}
