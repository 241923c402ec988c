//! The string family (Redis's `t_string.c`): GET, SET and its variants,
//! counters, ranges, APPEND and LCS.

use super::propagate::num;
use super::{err, Ctx, Handler, Registry};
use crate::keyspace::{Entry, Shard, Str, StrRef, Value};
use crate::server::lazyfree;
use resp::Reply;
use strutil::{parse_i64, LongDouble};

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("get", get as Handler),
        ("set", set),
        ("setnx", setnx),
        ("setex", setex),
        ("psetex", psetex),
        ("mget", mget),
        ("mset", mset),
        ("msetnx", msetnx),
        ("getset", getset),
        ("getdel", getdel),
        ("getex", getex),
        ("append", append),
        ("strlen", strlen),
        ("incr", incr),
        ("decr", decr),
        ("incrby", incrby),
        ("decrby", decrby),
        ("incrbyfloat", incrbyfloat),
        ("getrange", getrange),
        ("substr", getrange),
        ("setrange", setrange),
        ("lcs", lcs),
    ]);
}

/// The LRU/LFU field of a key created now (the maxmemory policy decides
/// its meaning, see `keyspace::lru`).
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    crate::keyspace::lru::new_lru(now_ms)
}

/// Finds a live key and records the access for LRU (the lookupKey path).
#[inline]
pub fn lookup<'s>(
    sh: &'s mut Shard,
    key: &[u8],
    now_ms: u64,
    touch: bool,
) -> Option<&'s mut Entry> {
    let e = sh.get_mut(key, now_ms)?;
    if touch {
        crate::keyspace::lru::touch(e, now_ms);
    }
    Some(e)
}

/// A string value, or `Err(())` after replying WRONGTYPE.
fn as_str<'e>(e: &'e Entry, r: &mut Reply) -> Result<StrRef<'e>, ()> {
    e.str().ok_or_else(|| r.error(err::WRONGTYPE))
}

fn reply_str(r: &mut Reply, s: StrRef) {
    match s {
        StrRef::Int(n) => r.bulk_int(n),
        StrRef::Bytes(b) => r.bulk(b),
    }
}

fn get(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match lookup(sh, argv[1], now, touch) {
        None => {
            ctx.srv.stats.hit(false);
            r.null();
        }
        Some(e) => {
            ctx.srv.stats.hit(true);
            if let Ok(s) = as_str(e, &mut r) {
                reply_str(&mut r, s);
            }
        }
    }
}

/// Expiry given to SET/GETEX: relative or absolute, in seconds or ms.
#[derive(Clone, Copy, PartialEq)]
enum ExpireArg {
    None,
    Keep,
    Persist,
    At(u64),
}

/// Converts an expire argument to an absolute time in ms, as Redis's
/// `getExpireMillisecondsOrReply`: must be a positive integer, and the
/// conversion must not overflow.
fn expire_ms(arg: &[u8], unit_ms: i64, absolute: bool, now: u64) -> Result<u64, bool> {
    let Some(v) = parse_i64(arg) else {
        return Err(false);
    };
    if v <= 0 {
        return Err(true);
    }
    let ms = v.checked_mul(unit_ms).ok_or(true)?;
    let at = if absolute {
        ms
    } else {
        ms.checked_add(now as i64).ok_or(true)?
    };
    Ok(at as u64)
}

fn expire_error(r: &mut Reply, not_int: bool, cmd: &str) {
    if not_int {
        r.error(err::NOT_INT);
    } else {
        r.error(&format!("ERR invalid expire time in '{cmd}' command"));
    }
}

/// The absolute expiry a store should use, or None if the key must be
/// deleted instead (an expiry already in the past).
fn store_ttl(
    sh: &mut Shard,
    key: &[u8],
    expire: ExpireArgPub,
    now: u64,
) -> Result<Option<u64>, ()> {
    let at = match expire {
        ExpireArgPub::None => None,
        ExpireArgPub::Keep => sh
            .peek(key)
            .filter(|e| !e.is_expired(now))
            .and_then(|e| e.expire_at()),
        ExpireArgPub::At(t) => Some(t),
    };
    if at.is_some_and(|t| t <= now) {
        sh.remove(key);
        return Err(());
    }
    Ok(at)
}

/// Sets a string key from argument bytes (integer-encoded when canonical),
/// replacing any value and TTL (unless `Keep`).
pub fn store_bytes(sh: &mut Shard, key: &[u8], value: &[u8], expire: ExpireArgPub, now: u64) {
    if let Ok(at) = store_ttl(sh, key, expire, now) {
        let old = sh.insert_entry(Entry::new_str_full(key, value, at, lru_clock(now)));
        lazyfree::drop_opt(old, lazyfree::Reason::ServerDel);
    }
}

/// Sets a key to a value, replacing any value and TTL (unless `Keep`).
pub fn store(sh: &mut Shard, key: &[u8], value: Str, expire: ExpireArgPub, now: u64) {
    if let Ok(at) = store_ttl(sh, key, expire, now) {
        let old = sh.insert_entry(Entry::new_full(key, Value::Str(value), at, lru_clock(now)));
        lazyfree::drop_opt(old, lazyfree::Reason::ServerDel);
    }
}

/// The public face of [`ExpireArg`] for other families (e.g. RESTORE).
#[derive(Clone, Copy)]
pub enum ExpireArgPub {
    None,
    Keep,
    At(u64),
}

fn set(ctx: &mut Ctx, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    let mut nx = false;
    let mut xx = false;
    let mut want_get = false;
    let mut expire = ExpireArg::None;
    // Already absolute in ms (PXAT): propagated verbatim, as Redis does.
    let mut pxat = false;
    let mut i = 3;
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    while i < argv.len() {
        let a = argv[i].to_ascii_uppercase();
        let next = argv.get(i + 1);
        match a.as_slice() {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => want_get = true,
            b"KEEPTTL" if expire == ExpireArg::None => expire = ExpireArg::Keep,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if expire == ExpireArg::None && next.is_some() => {
                let (unit, abs) = match a.as_slice() {
                    b"EX" => (1000, false),
                    b"PX" => (1, false),
                    b"EXAT" => (1000, true),
                    _ => (1, true),
                };
                pxat = a.as_slice() == b"PXAT";
                match expire_ms(next.unwrap(), unit, abs, now) {
                    Ok(at) => expire = ExpireArg::At(at),
                    Err(invalid) => return expire_error(&mut r, !invalid, "set"),
                }
                i += 1;
            }
            _ => return r.error(err::SYNTAX),
        }
        i += 1;
    }
    let db = ctx.client.db;
    let sh = ctx.locks.shard(db, argv[1]);
    let existing = sh.get_mut(argv[1], now);
    let exists = existing.is_some();
    if want_get {
        match existing {
            Some(e) => match as_str(e, &mut r) {
                Ok(s) => reply_str(&mut r, s),
                Err(()) => return,
            },
            None => r.null(),
        }
    }
    if (nx && exists) || (xx && !exists) {
        if !want_get {
            r.null();
        }
        return;
    }
    let exp = match expire {
        ExpireArg::None | ExpireArg::Persist => ExpireArgPub::None,
        ExpireArg::Keep => ExpireArgPub::Keep,
        ExpireArg::At(t) => ExpireArgPub::At(t),
    };
    store_bytes(sh, argv[1], argv[2], exp, now);
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "set",
        ctx.client.db,
        argv[1],
    );
    if matches!(expire, ExpireArg::At(_)) {
        super::notify::notify(
            ctx.srv,
            super::notify::GENERIC,
            "expire",
            ctx.client.db,
            argv[1],
        );
    }
    if !want_get {
        r.ok();
    }
    if let ExpireArg::At(t) = expire {
        // Relative and second TTLs propagate as an absolute PXAT.
        if !pxat {
            ctx.propagate_as(&[b"SET", argv[1], argv[2], b"PXAT", &num(t)]);
        }
    }
}

fn setnx(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    if sh.contains(argv[1], now) {
        return ctx.r().int(0);
    }
    store_bytes(sh, argv[1], argv[2], ExpireArgPub::None, now);
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "set",
        ctx.client.db,
        argv[1],
    );
    ctx.r().int(1);
}

fn setex_generic(ctx: &mut Ctx, argv: &[&[u8]], unit: i64, name: &str) {
    let now = ctx.now_ms;
    let at = match expire_ms(argv[2], unit, false, now) {
        Ok(at) => at,
        Err(invalid) => return expire_error(&mut ctx.r(), !invalid, name),
    };
    let db = ctx.client.db;
    let sh = ctx.locks.shard(db, argv[1]);
    store_bytes(sh, argv[1], argv[3], ExpireArgPub::At(at), now);
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "set",
        ctx.client.db,
        argv[1],
    );
    super::notify::notify(
        ctx.srv,
        super::notify::GENERIC,
        "expire",
        ctx.client.db,
        argv[1],
    );
    ctx.ok();
    ctx.propagate_as(&[b"SET", argv[1], argv[3], b"PXAT", &num(at)]);
}

fn setex(ctx: &mut Ctx, argv: &[&[u8]]) {
    setex_generic(ctx, argv, 1000, "setex")
}

fn psetex(ctx: &mut Ctx, argv: &[&[u8]]) {
    setex_generic(ctx, argv, 1, "psetex")
}

fn mget(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    r.array(argv.len() - 1);
    for key in &argv[1..] {
        let sh = ctx.locks.shard(db, key);
        match lookup(sh, key, now, touch) {
            Some(e) => {
                ctx.srv.stats.hit(true);
                match e.str() {
                    Some(s) => reply_str(&mut r, s),
                    None => r.null(),
                }
            }
            None => {
                ctx.srv.stats.hit(false);
                r.null()
            }
        }
    }
}

fn mset_generic(ctx: &mut Ctx, argv: &[&[u8]], nx: bool) {
    if argv.len().is_multiple_of(2) {
        let name = if nx { "msetnx" } else { "mset" };
        return ctx.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    if nx {
        for pair in argv[1..].chunks(2) {
            if ctx.locks.shard(db, pair[0]).contains(pair[0], now) {
                return ctx.r().int(0);
            }
        }
    }
    for pair in argv[1..].chunks(2) {
        let sh = ctx.locks.shard(db, pair[0]);
        store_bytes(sh, pair[0], pair[1], ExpireArgPub::None, now);
    }
    ctx.srv.add_dirty((argv.len() / 2) as u64);
    for pair in argv[1..].chunks(2) {
        super::notify::notify(
            ctx.srv,
            super::notify::STRING,
            "set",
            ctx.client.db,
            pair[0],
        );
    }
    if nx {
        ctx.r().int(1)
    } else {
        ctx.ok()
    }
}

fn mset(ctx: &mut Ctx, argv: &[&[u8]]) {
    mset_generic(ctx, argv, false)
}

fn msetnx(ctx: &mut Ctx, argv: &[&[u8]]) {
    mset_generic(ctx, argv, true)
}

fn getset(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match sh.get_mut(argv[1], now) {
        Some(e) => match as_str(e, &mut r) {
            Ok(s) => reply_str(&mut r, s),
            Err(()) => return,
        },
        None => r.null(),
    }
    store_bytes(sh, argv[1], argv[2], ExpireArgPub::None, now);
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "set",
        ctx.client.db,
        argv[1],
    );
}

fn getdel(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match sh.get_mut(argv[1], now) {
        Some(e) => {
            ctx.srv.stats.hit(true);
            match as_str(e, &mut r) {
                Ok(s) => reply_str(&mut r, s),
                Err(()) => return,
            }
            sh.remove(argv[1]);
            ctx.srv.add_dirty(1);
            super::notify::notify(
                ctx.srv,
                super::notify::GENERIC,
                "del",
                ctx.client.db,
                argv[1],
            );
            ctx.propagate_as(&[b"DEL", argv[1]]);
        }
        None => {
            ctx.srv.stats.hit(false);
            r.null();
        }
    }
}

fn getex(ctx: &mut Ctx, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    let mut expire = ExpireArg::None;
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i].to_ascii_uppercase();
        match a.as_slice() {
            b"PERSIST" if expire == ExpireArg::None => expire = ExpireArg::Persist,
            b"EX" | b"PX" | b"EXAT" | b"PXAT"
                if expire == ExpireArg::None && i + 1 < argv.len() =>
            {
                let (unit, abs) = match a.as_slice() {
                    b"EX" => (1000, false),
                    b"PX" => (1, false),
                    b"EXAT" => (1000, true),
                    _ => (1, true),
                };
                match expire_ms(argv[i + 1], unit, abs, now) {
                    Ok(at) => expire = ExpireArg::At(at),
                    Err(invalid) => return expire_error(&mut r, !invalid, "getex"),
                }
                i += 1;
            }
            _ => return r.error(err::SYNTAX),
        }
        i += 1;
    }
    let db = ctx.client.db;
    let touch = !ctx
        .client
        .handle
        .no_touch
        .load(std::sync::atomic::Ordering::Relaxed);
    let sh = ctx.locks.shard(db, argv[1]);
    let Some(e) = lookup(sh, argv[1], now, touch) else {
        ctx.srv.stats.hit(false);
        return r.null();
    };
    ctx.srv.stats.hit(true);
    match as_str(e, &mut r) {
        Ok(s) => reply_str(&mut r, s),
        Err(()) => return,
    }
    match expire {
        ExpireArg::At(t) if t <= now => {
            sh.remove(argv[1]);
            ctx.srv.add_dirty(1);
            super::notify::notify(
                ctx.srv,
                super::notify::GENERIC,
                "del",
                ctx.client.db,
                argv[1],
            );
            ctx.propagate_as(&[b"DEL", argv[1]]);
        }
        ExpireArg::At(t) => {
            sh.set_expire(argv[1], Some(t));
            ctx.srv.add_dirty(1);
            super::notify::notify(
                ctx.srv,
                super::notify::GENERIC,
                "expire",
                ctx.client.db,
                argv[1],
            );
            ctx.propagate_as(&[b"PEXPIREAT", argv[1], &num(t)]);
        }
        ExpireArg::Persist if sh.peek(argv[1]).and_then(|e| e.expire_at()).is_some() => {
            sh.set_expire(argv[1], None);
            ctx.srv.add_dirty(1);
            super::notify::notify(
                ctx.srv,
                super::notify::GENERIC,
                "persist",
                ctx.client.db,
                argv[1],
            );
            ctx.propagate_as(&[b"PERSIST", argv[1]]);
        }
        _ => {}
    }
}

fn max_size(ctx: &Ctx) -> usize {
    ctx.srv.config.num(crate::config::HOT.proto_max_bulk_len) as usize
}

const ERR_TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

fn append(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, max) = (ctx.client.db, ctx.now_ms, max_size(ctx));
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match sh.get_mut(argv[1], now) {
        Some(e) => {
            let Ok(s) = as_str(e, &mut r) else { return };
            if s.len() + argv[2].len() > max {
                return r.error(ERR_TOO_BIG);
            }
            let data = e.str_bytes_mut().expect("checked string");
            data.extend_from_slice(argv[2]);
            r.int(data.len() as i64);
        }
        None => {
            store_bytes(sh, argv[1], argv[2], ExpireArgPub::None, now);
            r.int(argv[2].len() as i64);
        }
    }
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "append",
        ctx.client.db,
        argv[1],
    );
}

fn strlen(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match lookup(sh, argv[1], now, true) {
        Some(e) => {
            if let Ok(s) = as_str(e, &mut r) {
                r.int(s.len() as i64)
            }
        }
        None => r.int(0),
    }
}

/// Adds `by` to the integer at `key`, creating it at 0 (INCR family).
fn incr_generic(ctx: &mut Ctx, key: &[u8], by: i64) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let cur = match sh.get_mut(key, now) {
        Some(e) => {
            let Ok(s) = as_str(e, &mut r) else { return };
            let v = match s {
                StrRef::Int(n) => Some(n),
                StrRef::Bytes(b) => parse_i64(b),
            };
            match v {
                Some(n) => Some(n),
                None => return r.error(err::NOT_INT),
            }
        }
        None => None,
    };
    let Some(new) = cur.unwrap_or(0).checked_add(by) else {
        return r.error(err::OVERFLOW);
    };
    match sh.get_mut(key, now) {
        Some(e) => e.set_int(new),
        None => store(sh, key, Str::Int(new), ExpireArgPub::None, now),
    }
    ctx.srv.add_dirty(1);
    super::notify::notify(ctx.srv, super::notify::STRING, "incrby", ctx.client.db, key);
    r.int(new);
}

fn incr(ctx: &mut Ctx, argv: &[&[u8]]) {
    incr_generic(ctx, argv[1], 1)
}

fn decr(ctx: &mut Ctx, argv: &[&[u8]]) {
    incr_generic(ctx, argv[1], -1)
}

fn incrby(ctx: &mut Ctx, argv: &[&[u8]]) {
    match parse_i64(argv[2]) {
        Some(by) => incr_generic(ctx, argv[1], by),
        None => ctx.error(err::NOT_INT),
    }
}

fn decrby(ctx: &mut Ctx, argv: &[&[u8]]) {
    match parse_i64(argv[2]) {
        Some(i64::MIN) => ctx.error("ERR decrement would overflow"),
        Some(by) => incr_generic(ctx, argv[1], -by),
        None => ctx.error(err::NOT_INT),
    }
}

fn incrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let Some(by) = LongDouble::parse(argv[2]) else {
        return ctx.error(err::NOT_FLOAT);
    };
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let cur = match sh.get_mut(argv[1], now) {
        Some(e) => {
            let Ok(s) = as_str(e, &mut r) else { return };
            match s.with_bytes(LongDouble::parse) {
                Some(v) => v,
                None => return r.error(err::NOT_FLOAT),
            }
        }
        None => LongDouble::from_i64(0),
    };
    let sum = cur.add(by);
    if !sum.is_finite() {
        return r.error("ERR increment would produce NaN or Infinity");
    }
    let text = sum.to_human_string();
    match sh.get_mut(argv[1], now) {
        Some(e) => e.set_value(Value::Str(Str::Bytes {
            data: text.as_bytes().to_vec(),
            raw: false,
        })),
        None => store(
            sh,
            argv[1],
            Str::Bytes {
                data: text.as_bytes().to_vec(),
                raw: false,
            },
            ExpireArgPub::None,
            now,
        ),
    }
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "incrbyfloat",
        ctx.client.db,
        argv[1],
    );
    r.bulk(text.as_bytes());
    // Replicas and reloads must not redo float arithmetic: SET the result.
    ctx.propagate_as(&[b"SET", argv[1], text.as_bytes(), b"KEEPTTL"]);
}

fn getrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (Some(mut start), Some(mut end)) = (parse_i64(argv[2]), parse_i64(argv[3])) else {
        return ctx.error(err::NOT_INT);
    };
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = lookup(sh, argv[1], now, true) else {
        return r.bulk(b"");
    };
    let Ok(s) = as_str(e, &mut r) else { return };
    s.with_bytes(|b| {
        let len = b.len() as i64;
        if start < 0 && end < 0 && start > end {
            return r.bulk(b"");
        }
        if start < 0 {
            start += len;
        }
        if end < 0 {
            end += len;
        }
        start = start.max(0);
        end = end.max(0);
        if end >= len {
            end = len - 1;
        }
        if start > end || len == 0 {
            r.bulk(b"")
        } else {
            r.bulk(&b[start as usize..=end as usize])
        }
    });
}

fn setrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(offset) = parse_i64(argv[2]) else {
        return ctx.error(err::NOT_INT);
    };
    if offset < 0 {
        return ctx.error("ERR offset is out of range");
    }
    let (db, now, max) = (ctx.client.db, ctx.now_ms, max_size(ctx));
    let value = argv[3];
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let too_big = |len: usize| (offset as u128 + len as u128) > max as u128;
    match sh.get_mut(argv[1], now) {
        None => {
            if value.is_empty() {
                return r.int(0);
            }
            if too_big(value.len()) {
                return r.error(ERR_TOO_BIG);
            }
            let mut data = vec![0u8; offset as usize + value.len()];
            data[offset as usize..].copy_from_slice(value);
            let n = data.len();
            store(sh, argv[1], Str::raw(data), ExpireArgPub::None, now);
            r.int(n as i64);
        }
        Some(e) => {
            let Ok(s) = as_str(e, &mut r) else { return };
            if value.is_empty() {
                return r.int(s.len() as i64);
            }
            if too_big(value.len()) {
                return r.error(ERR_TOO_BIG);
            }
            let data = e.str_bytes_mut().expect("checked string");
            let end = offset as usize + value.len();
            if data.len() < end {
                data.resize(end, 0);
            }
            data[offset as usize..end].copy_from_slice(value);
            r.int(data.len() as i64);
        }
    }
    ctx.srv.add_dirty(1);
    super::notify::notify(
        ctx.srv,
        super::notify::STRING,
        "setrange",
        ctx.client.db,
        argv[1],
    );
}

fn lcs(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut get_len = false;
    let mut get_idx = false;
    let mut with_match_len = false;
    let mut min_match_len: i64 = 0;
    let mut i = 3;
    while i < argv.len() {
        let a = argv[i].to_ascii_uppercase();
        match a.as_slice() {
            b"IDX" => get_idx = true,
            b"LEN" => get_len = true,
            b"WITHMATCHLEN" => with_match_len = true,
            b"MINMATCHLEN" if i + 1 < argv.len() => {
                match parse_i64(argv[i + 1]) {
                    Some(n) => min_match_len = n.max(0),
                    None => return ctx.error(err::NOT_INT),
                }
                i += 1;
            }
            _ => return ctx.error(err::SYNTAX),
        }
        i += 1;
    }
    let mut vals: Vec<Vec<u8>> = Vec::with_capacity(2);
    for key in &argv[1..3] {
        let sh = ctx.locks.shard(db, key);
        match lookup(sh, key, now, true) {
            None => vals.push(Vec::new()),
            Some(e) if e.str().is_some() => vals.push(e.str().unwrap().to_vec()),
            Some(_) => return ctx.error("ERR The specified keys must contain string values"),
        }
    }
    if get_idx && get_len {
        return ctx.error("ERR If you want both the length and indexes, please just use IDX.");
    }
    let (a, b) = (&vals[0], &vals[1]);
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    if cells * 4 >= u32::MAX as u128 || cells * 4 > max_size(ctx) as u128 {
        return ctx
            .error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    // Dynamic programming table of LCS lengths of prefixes.
    let w = b.len() + 1;
    let mut dp = vec![0u32; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            dp[i * w + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * w + j - 1] + 1
            } else {
                dp[(i - 1) * w + j].max(dp[i * w + j - 1])
            };
        }
    }
    let total = dp[a.len() * w + b.len()] as usize;
    // Walk back from the end, collecting the LCS and its matching ranges.
    let mut out = vec![0u8; total];
    let mut idx = total;
    let (mut i, mut j) = (a.len(), b.len());
    let mut ranges: Vec<((usize, usize), (usize, usize), usize)> = Vec::new();
    let mut cur: Option<((usize, usize), (usize, usize))> = None;
    let flush = |cur: &mut Option<((usize, usize), (usize, usize))>, ranges: &mut Vec<_>| {
        if let Some((ra, rb)) = cur.take() {
            let len = ra.1 - ra.0 + 1;
            if len as i64 >= min_match_len {
                ranges.push((ra, rb, len));
            }
        }
    };
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            idx -= 1;
            out[idx] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            match &mut cur {
                Some((ra, rb)) if ra.0 == ai + 1 && rb.0 == bj + 1 => {
                    ra.0 = ai;
                    rb.0 = bj;
                }
                _ => {
                    flush(&mut cur, &mut ranges);
                    cur = Some(((ai, ai), (bj, bj)));
                }
            }
            i -= 1;
            j -= 1;
        } else if dp[(i - 1) * w + j] > dp[i * w + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    flush(&mut cur, &mut ranges);
    let mut r = ctx.r();
    if get_len {
        return r.int(total as i64);
    }
    if !get_idx {
        return r.bulk(&out);
    }
    r.map(2);
    r.bulk(b"matches");
    r.array(ranges.len());
    for (ra, rb, len) in &ranges {
        r.array(if with_match_len { 3 } else { 2 });
        r.array(2);
        r.int(ra.0 as i64);
        r.int(ra.1 as i64);
        r.array(2);
        r.int(rb.0 as i64);
        r.int(rb.1 as i64);
        if with_match_len {
            r.int(*len as i64);
        }
    }
    r.bulk(b"len");
    r.int(total as i64);
}
