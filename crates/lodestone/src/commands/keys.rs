//! Generic keyspace commands (Redis's `db.c` and `expire.c`): DEL, EXISTS,
//! TYPE, RENAME, COPY, MOVE, the EXPIRE family, KEYS, SCAN, RANDOMKEY,
//! TOUCH, OBJECT, DBSIZE, FLUSHDB/FLUSHALL, SWAPDB and SELECT.

use super::strings::lookup;
use super::{all_shards, err, Ctx, Handler, LockFn, LockSet, Registry, ShardList};
use crate::keyspace::{shard_of, ShardId, SHARDS};
use crate::server::lazyfree::{self, Reason};
use crate::server::Server;
use rand::Rng;
use strutil::{glob_match, parse_i64};

pub fn register(r: &mut Registry) {
    locksets(&mut r.locksets);
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("del", del as Handler),
        ("unlink", unlink),
        ("exists", exists),
        ("type", type_cmd),
        ("rename", rename),
        ("renamenx", renamenx),
        ("copy", copy),
        ("move", move_cmd),
        ("expire", expire),
        ("pexpire", pexpire),
        ("expireat", expireat),
        ("pexpireat", pexpireat),
        ("ttl", ttl),
        ("pttl", pttl),
        ("expiretime", expiretime),
        ("pexpiretime", pexpiretime),
        ("persist", persist),
        ("keys", keys),
        ("scan", scan),
        ("randomkey", randomkey),
        ("touch", touch),
        ("object|encoding", object_encoding),
        ("object|freq", object_freq),
        ("object|idletime", object_idletime),
        ("object|refcount", object_refcount),
        ("object|help", object_help),
        ("dbsize", dbsize),
        ("flushdb", flushdb),
        ("flushall", flushall),
        ("swapdb", swapdb),
        ("select", select),
    ]);
}

/// Commands whose shards do not follow from their key positions.
fn locksets(v: &mut Vec<(&'static str, LockFn)>) {
    v.extend_from_slice(&[
        ("keys", whole_db as LockFn),
        ("scan", whole_db),
        ("randomkey", whole_db),
        ("dbsize", whole_db),
        ("flushdb", whole_db),
        ("flushall", whole_db),
        ("move", move_locks),
        ("copy", copy_locks),
        ("swapdb", swapdb_locks),
    ]);
}

fn whole_db(_: &[&[u8]], _: usize, _: &Server) -> LockSet {
    LockSet::All
}

fn parse_db(arg: &[u8], srv: &Server) -> Option<usize> {
    parse_i64(arg)
        .filter(|&n| n >= 0 && (n as usize) < srv.keyspace.db_count())
        .map(|n| n as usize)
}

fn move_locks(argv: &[&[u8]], db: usize, srv: &Server) -> LockSet {
    let s = shard_of(argv[1]) as u32;
    let mut v: Vec<ShardId> = vec![(db as u32, s)];
    if let Some(dst) = parse_db(argv[2], srv) {
        v.push((dst as u32, s));
    }
    LockSet::Shards(v.into_iter().collect())
}

fn copy_locks(argv: &[&[u8]], db: usize, srv: &Server) -> LockSet {
    let mut dst_db = db;
    let mut i = 3;
    while i + 1 < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"db") {
            if let Some(d) = parse_db(argv[i + 1], srv) {
                dst_db = d;
            }
        }
        i += 1;
    }
    LockSet::Shards(smallvec::smallvec![
        (db as u32, shard_of(argv[1]) as u32),
        (dst_db as u32, shard_of(argv[2]) as u32),
    ])
}

fn swapdb_locks(argv: &[&[u8]], _: usize, srv: &Server) -> LockSet {
    match (parse_db(argv[1], srv), parse_db(argv[2], srv)) {
        (Some(a), Some(b)) => {
            let mut v = all_shards(a);
            v.extend(all_shards(b));
            LockSet::Shards(v.into_iter().collect())
        }
        _ => LockSet::Shards(ShardList::new()),
    }
}

fn del(ctx: &mut Ctx, argv: &[&[u8]]) {
    del_keys(ctx, argv, Reason::UserDel)
}

/// UNLINK: DEL whose big values are freed in the background.
fn unlink(ctx: &mut Ctx, argv: &[&[u8]]) {
    del_keys(ctx, argv, Reason::Async)
}

fn del_keys(ctx: &mut Ctx, argv: &[&[u8]], why: Reason) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut n = 0;
    for key in &argv[1..] {
        let sh = ctx.locks.shard(db, key);
        if sh.contains(key, now) {
            lazyfree::drop_opt(sh.remove(key), why);
            n += 1;
            super::notify::notify(ctx.srv, super::notify::GENERIC, "del", db, key);
        }
    }
    ctx.srv.add_dirty(n as u64);
    ctx.r().int(n);
}

fn exists(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut n = 0;
    for key in &argv[1..] {
        if ctx.locks.shard(db, key).contains(key, now) {
            n += 1;
        }
    }
    ctx.r().int(n);
}

fn type_cmd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let t = ctx
        .locks
        .shard(db, argv[1])
        .get_mut(argv[1], now)
        .map_or("none", |e| e.type_name());
    ctx.r().simple(t);
}

/// Moves `src` to `dst` keeping its TTL. Returns false if `src` is missing.
fn rename_generic(ctx: &mut Ctx, argv: &[&[u8]], nx: bool) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let (src, dst) = (argv[1], argv[2]);
    if !ctx.locks.shard(db, src).contains(src, now) {
        return ctx.error(err::NO_SUCH_KEY);
    }
    if src == dst {
        return if nx { ctx.r().int(0) } else { ctx.ok() };
    }
    if nx && ctx.locks.shard(db, dst).contains(dst, now) {
        return ctx.r().int(0);
    }
    let e = ctx.locks.shard(db, src).remove(src).expect("checked above");
    let old = ctx.locks.shard(db, dst).insert_entry(e.rekey(dst));
    lazyfree::drop_opt(old, Reason::ServerDel);
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::GENERIC,
        "rename_from",
        ctx.client.db,
        src,
    );
    super::notify::notify(
        ctx.srv,
        super::notify::GENERIC,
        "rename_to",
        ctx.client.db,
        dst,
    );
    if nx {
        ctx.r().int(1)
    } else {
        ctx.ok()
    }
}

fn rename(ctx: &mut Ctx, argv: &[&[u8]]) {
    rename_generic(ctx, argv, false)
}

fn renamenx(ctx: &mut Ctx, argv: &[&[u8]]) {
    rename_generic(ctx, argv, true)
}

fn copy(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut dst_db = db;
    let mut replace = false;
    let mut i = 3;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if argv[i].eq_ignore_ascii_case(b"db") && i + 1 < argv.len() {
            match parse_i64(argv[i + 1]) {
                Some(d) if d >= 0 && (d as usize) < ctx.srv.keyspace.db_count() => {
                    dst_db = d as usize
                }
                Some(_) => return ctx.error(err::DB_RANGE),
                None => return ctx.error(err::NOT_INT),
            }
            i += 1;
        } else {
            return ctx.error(err::SYNTAX);
        }
        i += 1;
    }
    let (src, dst) = (argv[1], argv[2]);
    if src == dst && db == dst_db {
        return ctx.error("ERR source and destination objects are the same");
    }
    let Some(e) = ctx.locks.shard(db, src).get_mut(src, now) else {
        return ctx.r().int(0);
    };
    let (value, ttl) = (e.value(), e.expire_at());
    let dsh = ctx.locks.shard(dst_db, dst);
    if dsh.contains(dst, now) && !replace {
        return ctx.r().int(0);
    }
    lazyfree::drop_opt(dsh.insert(dst, value, ttl), Reason::ServerDel);
    ctx.signal_modified(dst_db, dst);
    ctx.srv.add_dirty(1);
    super::notify::notify(ctx.srv, super::notify::GENERIC, "copy_to", dst_db, dst);
    ctx.r().int(1);
}

fn move_cmd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let dst_db = match parse_i64(argv[2]) {
        Some(d) if d >= 0 && (d as usize) < ctx.srv.keyspace.db_count() => d as usize,
        Some(_) => return ctx.error(err::DB_RANGE),
        None => return ctx.error(err::NOT_INT),
    };
    if dst_db == db {
        return ctx.error("ERR source and destination objects are the same");
    }
    let key = argv[1];
    if !ctx.locks.shard(db, key).contains(key, now)
        || ctx.locks.shard(dst_db, key).contains(key, now)
    {
        return ctx.r().int(0);
    }
    let e = ctx.locks.shard(db, key).remove(key).expect("checked");
    ctx.locks.shard(dst_db, key).insert_entry(e);
    ctx.srv.touch_watched(Some(db), Some(key));
    ctx.signal_modified(dst_db, key);
    ctx.srv.add_dirty(1);
    // The key is new in the destination database.
    super::notify::notify_new(ctx.srv, dst_db);
    super::notify::notify(
        ctx.srv,
        super::notify::GENERIC,
        "move_from",
        ctx.client.db,
        key,
    );
    super::notify::notify(ctx.srv, super::notify::GENERIC, "move_to", dst_db, key);
    ctx.r().int(1);
}

/// The EXPIRE family: `unit_ms` converts the argument, `absolute` says
/// whether it is a timestamp.
fn expire_generic(ctx: &mut Ctx, argv: &[&[u8]], unit_ms: i64, absolute: bool) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &argv[3..] {
        match a.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return ctx.error(&format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(a)
                ))
            }
        }
    }
    if nx && (xx || gt || lt) {
        return ctx.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return ctx.error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(v) = parse_i64(argv[2]) else {
        return ctx.error(err::NOT_INT);
    };
    let cmd_name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
    let invalid = format!("ERR invalid expire time in '{cmd_name}' command");
    let Some(mut when) = v.checked_mul(unit_ms) else {
        return ctx.error(&invalid);
    };
    if !absolute {
        match when.checked_add(now as i64) {
            Some(w) => when = w,
            None => return ctx.error(&invalid),
        }
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let Some(e) = sh.get_mut(key, now) else {
        return ctx.r().int(0);
    };
    let current = e.expire_at().map(|t| t as i64);
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refuse {
        return ctx.r().int(0);
    }
    let event = if when <= now as i64 {
        sh.remove(key);
        "del"
    } else {
        sh.set_expire(key, Some(when as u64));
        "expire"
    };
    ctx.srv.add_dirty(1);
    ctx.notify(super::notify::GENERIC, event, key);
    ctx.r().int(1);
    // Effects: an absolute time, or the DEL a time in the past amounts to.
    if event == "del" {
        ctx.propagate_as(&[b"DEL", key]);
    } else {
        ctx.propagate_as(&[b"PEXPIREAT", key, &super::propagate::num(when)]);
    }
}

fn expire(ctx: &mut Ctx, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1000, false)
}

fn pexpire(ctx: &mut Ctx, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1, false)
}

fn expireat(ctx: &mut Ctx, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1000, true)
}

fn pexpireat(ctx: &mut Ctx, argv: &[&[u8]]) {
    expire_generic(ctx, argv, 1, true)
}

/// TTL-style replies: -2 for a missing key, -1 without TTL, else `f(at)`.
fn ttl_generic(ctx: &mut Ctx, key: &[u8], f: impl Fn(u64, u64) -> i64) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    // TTL and friends do not count as an access (LOOKUP_NOTOUCH).
    let v = match lookup(ctx.locks.shard(db, key), key, now, false) {
        None => -2,
        Some(e) => e.expire_at().map_or(-1, |at| f(at, now)),
    };
    ctx.r().int(v);
}

fn ttl(ctx: &mut Ctx, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], |at, now| {
        ((at.saturating_sub(now) + 500) / 1000) as i64
    })
}

fn pttl(ctx: &mut Ctx, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], |at, now| at.saturating_sub(now) as i64)
}

fn expiretime(ctx: &mut Ctx, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], |at, _| (at / 1000) as i64)
}

fn pexpiretime(ctx: &mut Ctx, argv: &[&[u8]]) {
    ttl_generic(ctx, argv[1], |at, _| at as i64)
}

fn persist(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let had = sh
        .get_mut(argv[1], now)
        .and_then(|e| e.expire_at())
        .is_some();
    if had {
        sh.set_expire(argv[1], None);
        ctx.srv.add_dirty(1);
        super::notify::notify(
            ctx.srv,
            super::notify::GENERIC,
            "persist",
            ctx.client.db,
            argv[1],
        );
    }
    ctx.r().int(had as i64);
}

fn keys(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let pattern = argv[1];
    let all = pattern == b"*";
    let mut out: Vec<Vec<u8>> = Vec::new();
    ctx.locks.for_each_shard_to_look(db, |_, sh| {
        for e in sh.iter() {
            if !e.is_expired(now) && (all || glob_match(pattern, e.key(), false)) {
                out.push(e.key().to_vec());
            }
        }
        true
    });
    let mut r = ctx.r();
    r.array(out.len());
    for k in &out {
        r.bulk(k);
    }
}

/// SCAN's cursor is the index of the next shard to visit; each call
/// returns whole shards, so every key present for the whole iteration is
/// returned at least once whatever happens to the tables meanwhile.
fn scan(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let Some(cursor) = strutil::parse_u64(argv[1]) else {
        return ctx.error("ERR invalid cursor");
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut type_filter: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < argv.len() {
        let has_next = i + 1 < argv.len();
        match argv[i].to_ascii_lowercase().as_slice() {
            b"count" if has_next => match parse_i64(argv[i + 1]) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return ctx.error(err::SYNTAX),
                None => return ctx.error(err::NOT_INT),
            },
            b"match" if has_next => pattern = Some(argv[i + 1]),
            b"type" if has_next => type_filter = Some(argv[i + 1].to_ascii_lowercase()),
            _ => return ctx.error(err::SYNTAX),
        }
        i += 2;
    }
    let pattern = pattern.filter(|p| *p != b"*");
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut next = cursor as usize;
    while next < SHARDS && keys.len() < count {
        ctx.locks.with_shard_index(db, next, |sh| {
            let mut expired: Vec<Vec<u8>> = Vec::new();
            for e in sh.iter() {
                if e.is_expired(now) {
                    expired.push(e.key().to_vec());
                    continue;
                }
                if pattern.is_some_and(|p| !glob_match(p, e.key(), false)) {
                    continue;
                }
                if type_filter
                    .as_ref()
                    .is_some_and(|t| t.as_slice() != e.type_name().as_bytes())
                {
                    continue;
                }
                keys.push(e.key().to_vec());
            }
            for k in expired {
                sh.get_mut(&k, now);
            }
        });
        next += 1;
    }
    if next >= SHARDS {
        next = 0;
    }
    let mut r = ctx.r();
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(keys.len());
    for k in &keys {
        r.bulk(k);
    }
}

fn randomkey(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut rng = rand::thread_rng();
    let start = rng.gen_range(0..SHARDS);
    let mut found: Option<Vec<u8>> = None;
    // Walk shards from a random start; retry a few times past expired keys.
    for step in 0..SHARDS {
        let i = (start + step) % SHARDS;
        let got = ctx.locks.with_shard_index(db, i, |sh| {
            for _ in 0..8 {
                let k = sh
                    .random_entry(&mut rng)
                    .map(|e| (e.key().to_vec(), e.is_expired(now)))?;
                if k.1 {
                    sh.get_mut(&k.0, now);
                    continue;
                }
                return Some(k.0);
            }
            None
        });
        if got.is_some() {
            found = got;
            break;
        }
    }
    match found {
        Some(k) => ctx.r().bulk(&k),
        None => ctx.r().null(),
    }
}

fn touch(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut n = 0;
    for key in &argv[1..] {
        if lookup(ctx.locks.shard(db, key), key, now, true).is_some() {
            n += 1;
        }
    }
    ctx.r().int(n);
}

fn is_lfu(_ctx: &Ctx) -> bool {
    crate::keyspace::lru::policy().is_lfu()
}

/// Runs `f` on a key's entry for OBJECT subcommands (null if missing).
fn object_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    f: impl FnOnce(&crate::keyspace::Entry, u64, &mut resp::Reply),
) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let key = argv[2];
    let sh = ctx.locks.shard(db, key);
    let mut r = resp::Reply::new(ctx.out, ctx.client.proto);
    match sh.get_mut(key, now) {
        Some(e) => f(e, now, &mut r),
        None => r.null(),
    }
}

fn object_encoding(ctx: &mut Ctx, argv: &[&[u8]]) {
    object_generic(ctx, argv, |e, _, r| r.bulk(e.encoding().as_bytes()));
}

fn object_refcount(ctx: &mut Ctx, argv: &[&[u8]]) {
    use crate::keyspace::lru::Policy;
    let maxmemory = ctx.srv.config.num(crate::config::HOT.maxmemory) > 0;
    object_generic(ctx, argv, |e, _, r| {
        // Redis shares small integers and reports them as immortal, except
        // under an LRU/LFU maxmemory policy (each key needs its own field).
        let p = crate::keyspace::lru::policy();
        let no_sharing = maxmemory
            && matches!(
                p,
                Policy::AllkeysLru | Policy::VolatileLru | Policy::AllkeysLfu | Policy::VolatileLfu
            );
        let shared = !no_sharing
            && matches!(e.str(), Some(crate::keyspace::StrRef::Int(n)) if (0..10000).contains(&n));
        r.int(if shared { i32::MAX as i64 } else { 1 })
    });
}

fn object_idletime(ctx: &mut Ctx, argv: &[&[u8]]) {
    if is_lfu(ctx) {
        return ctx.error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    object_generic(ctx, argv, |e, now, r| {
        r.int((crate::keyspace::lru::idle_ms(e.lru(), now) / 1000) as i64)
    });
}

fn object_freq(ctx: &mut Ctx, argv: &[&[u8]]) {
    if !is_lfu(ctx) {
        return ctx.error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    object_generic(ctx, argv, |e, now, r| {
        r.int(crate::keyspace::lru::lfu_freq(e.lru(), now) as i64)
    });
}

fn object_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "OBJECT",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    );
}

fn dbsize(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let db = ctx.client.db;
    let mut n = 0;
    ctx.locks.for_each_shard_to_look(db, |_, sh| {
        n += sh.len();
        true
    });
    ctx.r().int(n as i64);
}

/// Parses the optional ASYNC|SYNC argument of FLUSHDB/FLUSHALL: None on a
/// syntax error, else whether to free in the background (ASYNC, or no
/// mode with `lazyfree-lazy-user-flush yes`).
fn flush_mode(argv: &[&[u8]]) -> Option<bool> {
    match argv.len() {
        1 => Some(lazyfree::lazy(Reason::UserFlush)),
        2 if argv[1].eq_ignore_ascii_case(b"async") => Some(true),
        2 if argv[1].eq_ignore_ascii_case(b"sync") => Some(false),
        _ => None,
    }
}

/// Watched keys of `db` that hold a live value now: the ones a flush or a
/// swap really changes (stale and missing keys do not count, as in Redis).
fn live_watched(ctx: &mut Ctx, db: usize) -> Vec<Vec<u8>> {
    let now = ctx.now_ms;
    let mut out = Vec::new();
    for k in ctx.srv.watched_keys(db) {
        let live = ctx.locks.with_shard_index(db, shard_of(&k), |sh| {
            sh.peek(&k).is_some_and(|e| !e.is_expired(now))
        });
        if live {
            out.push(k);
        }
    }
    out
}

/// Empties database `db`; with `lazy` the old tables are freed by the
/// background thread. Returns the keys deleted.
pub fn flush_db(ctx: &mut Ctx, db: usize, lazy: bool) -> usize {
    for k in live_watched(ctx, db) {
        ctx.srv.touch_watched(Some(db), Some(&k));
    }
    let mut n = 0;
    let mut old = Vec::new();
    ctx.locks.for_each_shard(db, |_, sh| {
        if lazy {
            let (t, len) = sh.take_all();
            n += len;
            if len > 0 {
                old.push(t);
            }
        } else {
            n += sh.clear();
        }
        true
    });
    if !old.is_empty() {
        lazyfree::free_later(Box::new(old), n as u64);
    }
    n
}

fn flushdb(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(lazy) = flush_mode(argv) else {
        return ctx.error(err::SYNTAX);
    };
    let db = ctx.client.db;
    let n = flush_db(ctx, db, lazy);
    super::tracking::flushed(ctx);
    ctx.srv.add_dirty(n as u64);
    ctx.ok();
}

fn flushall(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(lazy) = flush_mode(argv) else {
        return ctx.error(err::SYNTAX);
    };
    let mut n = 0;
    for db in 0..ctx.srv.keyspace.db_count() {
        n += flush_db(ctx, db, lazy);
    }
    super::tracking::flushed(ctx);
    ctx.srv.add_dirty(n as u64 + 1);
    // Redis saves the empty dataset when save points are configured (which
    // also resets the dirty counter).
    if !crate::persist::save_points(ctx.srv).is_empty() {
        let _ = super::persistence::save_now(ctx);
    }
    ctx.ok();
}

fn swapdb(ctx: &mut Ctx, argv: &[&[u8]]) {
    let count = ctx.srv.keyspace.db_count();
    let (Some(a), Some(b)) = (parse_i64(argv[1]), parse_i64(argv[2])) else {
        return ctx.error("ERR invalid first DB index");
    };
    if a < 0 || a as usize >= count || b < 0 || b as usize >= count {
        return ctx.error(err::DB_RANGE);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        // A watched key changes if it lives in either database.
        let mut touched: Vec<(usize, Vec<u8>)> = Vec::new();
        for (d, other) in [(a, b), (b, a)] {
            let mut keys = live_watched(ctx, d);
            for k in ctx.srv.watched_keys(d) {
                let now = ctx.now_ms;
                if !keys.contains(&k)
                    && ctx
                        .locks
                        .shard(other, &k)
                        .peek(&k)
                        .is_some_and(|e| !e.is_expired(now))
                {
                    keys.push(k);
                }
            }
            touched.extend(keys.into_iter().map(|k| (d, k)));
        }
        for (d, k) in touched {
            ctx.srv.touch_watched(Some(d), Some(&k));
        }
        for i in 0..SHARDS {
            let sa = std::mem::take(ctx.locks.shard_at((a as u32, i as u32)));
            let sb = std::mem::replace(ctx.locks.shard_at((b as u32, i as u32)), sa);
            *ctx.locks.shard_at((a as u32, i as u32)) = sb;
        }
    }
    ctx.srv.add_dirty(1);
    ctx.ok();
}

fn select(ctx: &mut Ctx, argv: &[&[u8]]) {
    match parse_i64(argv[1]) {
        Some(n) if n >= 0 && (n as usize) < ctx.srv.keyspace.db_count() => {
            ctx.client.set_db(n as usize);
            ctx.ok()
        }
        Some(_) => ctx.error(err::DB_RANGE),
        None => ctx.error(err::NOT_INT),
    }
}
