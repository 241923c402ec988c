//! Keyspace notifications (`notify-keyspace-events`), as Redis's
//! `notify.c`: commands report what they did to a key with [`notify`], and
//! when the event's class is enabled the server publishes it on
//! `__keyspace@<db>__:<key>` (message: the event) and/or
//! `__keyevent@<db>__:<event>` (message: the key).

use super::pubsub::Kind;
use crate::server::Server;
use std::sync::atomic::Ordering;

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 12;
pub const NEW: u32 = 1 << 13;
/// The `A` alias: every class except key-miss and new.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses the flag string; None on an unknown character.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return None,
        };
    }
    Some(f)
}

/// The canonical flag string CONFIG GET shows.
pub fn flags_to_string(f: u32) -> String {
    let mut s = String::new();
    if f & ALL == ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    for (bit, c) in [
        (KEYSPACE, 'K'),
        (KEYEVENT, 'E'),
        (KEY_MISS, 'm'),
        (NEW, 'n'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Publishes a keyspace event if its class is enabled, after the `new`
/// events of keys the command added so far (Redis raises `new` when the
/// key is added, before the command's own event). Cheap when
/// notifications are off (one atomic load each).
pub fn notify(srv: &Server, class: u32, event: &str, db: usize, key: &[u8]) {
    notify_new(srv, db);
    publish(srv, class, event, db, key);
}

/// Publishes one event if its class is enabled.
fn publish(srv: &Server, class: u32, event: &str, db: usize, key: &[u8]) {
    let flags = srv.notify_flags.load(Ordering::Relaxed);
    if flags & class == 0 || flags & (KEYSPACE | KEYEVENT) == 0 {
        return;
    }
    if flags & KEYSPACE != 0 {
        let mut ch = format!("__keyspace@{db}__:").into_bytes();
        ch.extend_from_slice(key);
        srv.pubsub
            .publish(srv, Kind::Channel, &ch, event.as_bytes());
    }
    if flags & KEYEVENT != 0 {
        let ch = format!("__keyevent@{db}__:{event}").into_bytes();
        srv.pubsub.publish(srv, Kind::Channel, &ch, key);
    }
}

/// Publishes `new` events (in database `db`) for the keys the running
/// command added so far; one atomic load when `new` events are off.
#[inline]
pub fn notify_new(srv: &Server, db: usize) {
    if crate::keyspace::shard::LOG_NEW.load(Ordering::Relaxed) {
        publish_new(srv, db);
    }
}

#[cold]
fn publish_new(srv: &Server, db: usize) {
    let keys = crate::keyspace::shard::NEW_KEYS.with(|n| std::mem::take(&mut *n.borrow_mut()));
    for key in keys {
        publish(srv, NEW, "new", db, &key);
    }
}

/// The events of the hash, list, set and sorted set families, raised by
/// the dispatcher for commands that changed something (the same names as
/// Redis's `t_*.c`): (command, class, event for the first key, event for
/// the second key of two-key commands).
fn family_event(cmd: &str, argv: &[&[u8]]) -> Option<(u32, &'static str, Option<&'static str>)> {
    let arg_is = |i: usize, w: &[u8]| argv.get(i).is_some_and(|a| a.eq_ignore_ascii_case(w));
    let side = |i: usize| if arg_is(i, b"left") { "lpop" } else { "rpop" };
    let push = |i: usize| if arg_is(i, b"left") { "lpush" } else { "rpush" };
    Some(match cmd {
        "lpush" | "lpushx" => (LIST, "lpush", None),
        "rpush" | "rpushx" => (LIST, "rpush", None),
        "lpop" => (LIST, "lpop", None),
        "rpop" => (LIST, "rpop", None),
        "linsert" => (LIST, "linsert", None),
        "lset" => (LIST, "lset", None),
        "lrem" => (LIST, "lrem", None),
        "ltrim" => (LIST, "ltrim", None),
        "rpoplpush" | "brpoplpush" => (LIST, "rpop", Some("lpush")),
        "lmove" | "blmove" => (LIST, side(3), Some(push(4))),
        "sadd" => (SET, "sadd", None),
        "srem" => (SET, "srem", None),
        "spop" => (SET, "spop", None),
        "smove" => (SET, "srem", Some("sadd")),
        "sinterstore" => (SET, "sinterstore", None),
        "sunionstore" => (SET, "sunionstore", None),
        "sdiffstore" => (SET, "sdiffstore", None),
        "hset" | "hsetnx" | "hmset" => (HASH, "hset", None),
        "hdel" => (HASH, "hdel", None),
        "hincrby" => (HASH, "hincrby", None),
        "hincrbyfloat" => (HASH, "hincrbyfloat", None),
        "zadd" if argv.iter().any(|a| a.eq_ignore_ascii_case(b"incr")) => (ZSET, "zincr", None),
        "zadd" => (ZSET, "zadd", None),
        "zincrby" => (ZSET, "zincr", None),
        "zrem" => (ZSET, "zrem", None),
        "zremrangebyrank" => (ZSET, "zremrangebyrank", None),
        "zremrangebyscore" => (ZSET, "zremrangebyscore", None),
        "zremrangebylex" => (ZSET, "zremrangebylex", None),
        "zpopmin" => (ZSET, "zpopmin", None),
        "zpopmax" => (ZSET, "zpopmax", None),
        "zunionstore" => (ZSET, "zunionstore", None),
        "zinterstore" => (ZSET, "zinterstore", None),
        "zdiffstore" => (ZSET, "zdiffstore", None),
        "zrangestore" => (ZSET, "zrangestore", None),
        _ => return None,
    })
}

/// What a family write command's keys looked like before it ran: the
/// thread's change counter and whether each of its (up to two) keys existed.
pub struct Before {
    dirty: u64,
    existed: [bool; 2],
}

/// Called by the dispatcher before a command runs; cheap when
/// notifications are off.
#[inline]
pub fn family_before(ctx: &mut super::Ctx, cmd: &super::Command, argv: &[&[u8]]) -> Option<Before> {
    if ctx.srv.notify_flags.load(Ordering::Relaxed) & (KEYSPACE | KEYEVENT) == 0
        || !cmd.has(super::flags::WRITE)
    {
        return None;
    }
    family_before_slow(ctx, cmd, argv)
}

#[cold]
fn family_before_slow(
    ctx: &mut super::Ctx,
    cmd: &super::Command,
    argv: &[&[u8]],
) -> Option<Before> {
    let (_, _, second) = family_event(&cmd.name, argv)?;
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut existed = [false; 2];
    // argv[1] is always a key here, argv[2] only for two-key commands.
    let keys = if second.is_some() { 2 } else { 1 };
    for (i, k) in argv.iter().skip(1).take(keys).enumerate() {
        if ctx.locks.holds_any() {
            existed[i] = ctx
                .locks
                .shard(db, k)
                .peek(k)
                .is_some_and(|e| !e.is_expired(now));
        }
    }
    Some(Before {
        dirty: crate::server::LOCAL_DIRTY.with(|d| d.get()),
        existed,
    })
}

/// Called after the command: raises its events if it changed something,
/// and `del` for a key it emptied.
#[inline]
pub fn family_after(
    ctx: &mut super::Ctx,
    cmd: &super::Command,
    argv: &[&[u8]],
    before: Option<Before>,
) {
    if let Some(b) = before {
        family_after_slow(ctx, cmd, argv, b);
    }
}

#[cold]
fn family_after_slow(ctx: &mut super::Ctx, cmd: &super::Command, argv: &[&[u8]], b: Before) {
    if crate::server::LOCAL_DIRTY.with(|d| d.get()) == b.dirty {
        return;
    }
    let Some((class, first, second)) = family_event(&cmd.name, argv) else {
        return;
    };
    let (db, now) = (ctx.client.db, ctx.now_ms);
    // A STORE whose result was empty deleted its destination: Redis raises
    // only `del` then (and nothing when there was nothing to delete).
    let store = cmd.name.ends_with("store");
    for (i, event) in [Some(first), second].into_iter().enumerate() {
        let (Some(event), Some(key)) = (event, argv.get(i + 1)) else {
            continue;
        };
        // The handler said which keys it really changed (SMOVE).
        if ctx.modified.as_ref().is_some_and(|m| !m.contains(&(i + 1))) {
            continue;
        }
        let exists = ctx
            .locks
            .shard(db, key)
            .peek(key)
            .is_some_and(|e| !e.is_expired(now));
        if !store || exists {
            notify(ctx.srv, class, event, db, key);
        }
        if b.existed[i] && !exists {
            notify(ctx.srv, GENERIC, "del", db, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_roundtrip_like_redis() {
        assert_eq!(flags_to_string(parse_flags("KEA").unwrap()), "AKE");
        assert_eq!(flags_to_string(parse_flags("Egx").unwrap()), "gxE");
        assert_eq!(parse_flags(""), Some(0));
        assert_eq!(parse_flags("KEQ"), None);
    }
}
