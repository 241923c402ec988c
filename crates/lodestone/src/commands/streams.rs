//! The stream family (Redis's `t_stream.c`): XADD, XRANGE/XREVRANGE,
//! XLEN, XDEL, XTRIM, XREAD (blocking too), consumer groups (XGROUP,
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO and XSETID. The
//! value type lives in `keyspace::types::stream`.

use super::blocking::{self, TimeoutReply};
use super::notify;
use super::strings::{lookup, lru_clock};
use super::{err, Ctx, Handler, Registry};
use crate::keyspace::types::stream::{
    Group, NodeLimits, StreamId, StreamValue, Trim, INVALID_ENTRIES_READ, MAX_ENTRY_BYTES,
};
use crate::keyspace::{Entry, Shard, Value};
use resp::reply::Aggregate;
use resp::Reply;
use strutil::parse_i64;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
xack|stream|-4|5.0.0|write,fast|stream|1,1,1|Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.
xadd|stream|-5|5.0.0|write,denyoom,fast|stream|1,1,1|Appends a new message to a stream. Creates the key if it doesn't exist.
xautoclaim|stream|-6|6.2.0|write,fast|stream|1,1,1|Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.
xclaim|stream|-6|5.0.0|write,fast|stream|1,1,1|Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.
xdel|stream|-3|5.0.0|write,fast|stream|1,1,1|Returns the number of messages after removing them from a stream.
xgroup|stream|-2|5.0.0|-|-|-|A container for consumer groups commands.
xgroup|create|stream|-5|5.0.0|write,denyoom|stream|2,2,1|Creates a consumer group.
xgroup|createconsumer|stream|5|6.2.0|write,denyoom|stream|2,2,1|Creates a consumer in a consumer group.
xgroup|delconsumer|stream|5|5.0.0|write|stream|2,2,1|Deletes a consumer from a consumer group.
xgroup|destroy|stream|4|5.0.0|write|stream|2,2,1|Destroys a consumer group.
xgroup|help|stream|2|5.0.0|loading,stale|stream|-|Returns helpful text about the different subcommands.
xgroup|setid|stream|-5|5.0.0|write|stream|2,2,1|Sets the last-delivered ID of a consumer group.
xinfo|stream|-2|5.0.0|-|-|-|A container for stream introspection commands.
xinfo|consumers|stream|4|5.0.0|readonly|stream|2,2,1|Returns a list of the consumers in a consumer group.
xinfo|groups|stream|3|5.0.0|readonly|stream|2,2,1|Returns a list of the consumer groups of a stream.
xinfo|help|stream|2|5.0.0|loading,stale|stream|-|Returns helpful text about the different subcommands.
xinfo|stream|stream|-3|5.0.0|readonly|stream|2,2,1|Returns information about a stream.
xlen|stream|2|5.0.0|readonly,fast|stream|1,1,1|Return the number of messages in a stream.
xpending|stream|-3|5.0.0|readonly|stream|1,1,1|Returns the information and entries from a stream consumer group's pending entries list.
xrange|stream|-4|5.0.0|readonly|stream|1,1,1|Returns the messages from a stream within a range of IDs.
xread|stream|-4|5.0.0|readonly,blocking|stream|-|Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.
xreadgroup|stream|-7|5.0.0|write,blocking|stream|-|Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.
xrevrange|stream|-4|5.0.0|readonly|stream|1,1,1|Returns the messages from a stream within a range of IDs in reverse order.
xsetid|stream|-3|5.0.0|write,denyoom,fast|stream|1,1,1|An internal command for replicating stream values.
xtrim|stream|-4|5.0.0|write|stream|1,1,1|Deletes messages from the beginning of a stream.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("xack", xack as Handler),
        ("xadd", xadd),
        ("xautoclaim", xautoclaim),
        ("xclaim", xclaim),
        ("xdel", xdel),
        ("xgroup|create", xgroup),
        ("xgroup|createconsumer", xgroup),
        ("xgroup|delconsumer", xgroup),
        ("xgroup|destroy", xgroup),
        ("xgroup|setid", xgroup),
        ("xgroup|help", xgroup_help),
        ("xinfo|consumers", xinfo),
        ("xinfo|groups", xinfo),
        ("xinfo|stream", xinfo),
        ("xinfo|help", xinfo_help),
        ("xlen", xlen),
        ("xpending", xpending),
        ("xrange", xrange),
        ("xrevrange", xrevrange),
        ("xread", xread),
        ("xreadgroup", xread),
        ("xsetid", xsetid),
        ("xtrim", xtrim),
    ]);
    r.keys.push(("xread", xread_keys));
    r.keys.push(("xreadgroup", xread_keys));
}

/// Key positions of XREAD/XREADGROUP: the first half of what follows
/// STREAMS (as Redis's xreadGetKeys).
pub fn xread_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"BLOCK") || a.eq_ignore_ascii_case(b"COUNT") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"GROUP") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"NOACK") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"STREAMS") {
            let n = argv.len() - i - 1;
            if n == 0 || !n.is_multiple_of(2) {
                return None;
            }
            return Some((i + 1..i + 1 + n / 2).collect());
        } else {
            return None;
        }
    }
    None
}

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

fn limits(ctx: &Ctx) -> NodeLimits {
    let c = &ctx.srv.config;
    NodeLimits {
        max_bytes: c.get_num("stream-node-max-bytes").max(0) as usize,
        max_entries: c.get_num("stream-node-max-entries").max(0) as usize,
    }
}

enum Found<'a> {
    Missing,
    WrongType,
    Stream(&'a mut StreamValue),
}

fn find<'s>(sh: &'s mut Shard, key: &[u8], now: u64, touch: bool) -> Found<'s> {
    match lookup(sh, key, now, touch) {
        None => Found::Missing,
        Some(e) => match e.heap_value_mut() {
            Some(Value::Stream(s)) => Found::Stream(s),
            _ => Found::WrongType,
        },
    }
}

fn new_entry(key: &[u8], s: StreamValue, now: u64) -> Entry {
    Entry::new_full(key, Value::Stream(Box::new(s)), None, lru_clock(now))
}

/// Parses `ms-seq`, `ms` (seq = `missing_seq`), `-` and `+` (not when
/// strict). With `seq_star`, `ms-*` is accepted: returns seq_given false.
fn parse_id_ext(
    a: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Option<(StreamId, bool)> {
    if a.len() > 127 {
        return None;
    }
    if a == b"-" || a == b"+" {
        if strict {
            return None;
        }
        return Some((
            if a == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    let (ms_part, seq_part) = match a.iter().position(|&c| c == b'-') {
        Some(p) => (&a[..p], Some(&a[p + 1..])),
        None => (a, None),
    };
    let ms = parse_u64(ms_part)?;
    match seq_part {
        None => Some((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if seq_star => Some((StreamId::new(ms, 0), false)),
        Some(s) => Some((StreamId::new(ms, parse_u64(s)?), true)),
    }
}

/// Redis's string2ull: decimal digits only (no sign), no overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

fn parse_id(a: &[u8], missing_seq: u64) -> Option<StreamId> {
    parse_id_ext(a, missing_seq, false, false).map(|x| x.0)
}

fn parse_strict(a: &[u8]) -> Option<StreamId> {
    parse_id_ext(a, 0, true, false).map(|x| x.0)
}

/// An interval bound: `(id` excludes.
fn parse_interval(a: &[u8], missing_seq: u64) -> Option<(StreamId, bool)> {
    if a.len() > 1 && a[0] == b'(' {
        parse_id_ext(&a[1..], missing_seq, true, false).map(|x| (x.0, true))
    } else {
        parse_id(a, missing_seq).map(|x| (x, false))
    }
}

/// Parses start (and its exclusion) or replies the error.
fn range_start(r: &mut Reply, a: &[u8]) -> Option<StreamId> {
    let Some((id, ex)) = parse_interval(a, 0) else {
        r.error(INVALID_ID);
        return None;
    };
    if ex {
        match id.incr() {
            Some(x) => Some(x),
            None => {
                r.error("ERR invalid start ID for the interval");
                None
            }
        }
    } else {
        Some(id)
    }
}

fn range_end(r: &mut Reply, a: &[u8]) -> Option<StreamId> {
    let Some((id, ex)) = parse_interval(a, u64::MAX) else {
        r.error(INVALID_ID);
        return None;
    };
    if ex {
        match id.decr() {
            Some(x) => Some(x),
            None => {
                r.error("ERR invalid end ID for the interval");
                None
            }
        }
    } else {
        Some(id)
    }
}

fn reply_id(r: &mut Reply, id: StreamId) {
    r.bulk(&id.to_bytes());
}

fn reply_entry(r: &mut Reply, id: StreamId, fv: &[&[u8]]) {
    r.array(2);
    reply_id(r, id);
    r.array(fv.len());
    for x in fv {
        r.bulk(x);
    }
}

/// Replies entries in [start, end] (at most `count`, 0 = all); returns
/// the IDs emitted.
fn reply_range(
    r: &mut Reply,
    s: &StreamValue,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
) -> Vec<StreamId> {
    let d = r.begin_deferred();
    let mut ids = Vec::new();
    s.walk(start, end, rev, &mut |id, fv| {
        reply_entry(r, id, fv);
        ids.push(id);
        !(count != 0 && ids.len() >= count)
    });
    r.end_deferred(d, Aggregate::Array, ids.len());
    ids
}

/// Emits one entry if it exists; false otherwise.
fn reply_one(r: &mut Reply, s: &StreamValue, id: StreamId) -> bool {
    let mut found = false;
    s.walk(id, id, false, &mut |id, fv| {
        reply_entry(r, id, fv);
        found = true;
        false
    });
    found
}

fn int_arg(r: &mut Reply, a: &[u8]) -> Option<i64> {
    match parse_i64(a) {
        Some(v) => Some(v),
        None => {
            r.error(err::NOT_INT);
            None
        }
    }
}

fn int_arg_msg(r: &mut Reply, a: &[u8], msg: &str) -> Option<i64> {
    match parse_i64(a) {
        Some(v) => Some(v),
        None => {
            r.error(msg);
            None
        }
    }
}

// ---------------------------------------------------------------------------
// XADD / XTRIM
// ---------------------------------------------------------------------------

struct AddTrim {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    id: Option<(StreamId, bool)>,
    idpos: usize,
}

fn parse_add_trim(node_entries: i64, r: &mut Reply, argv: &[&[u8]], xadd: bool) -> Option<AddTrim> {
    let mut a = AddTrim {
        trim: None,
        approx: false,
        limit: 0,
        nomkstream: false,
        id: None,
        idpos: 0,
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    let argc = argv.len();
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < argc {
        let more = argc - 1 - i;
        let opt = argv[i];
        if xadd && opt == b"*" {
            break;
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more > 0 {
            if a.trim.is_some() {
                r.error(BOTH);
                return None;
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let n = int_arg(r, argv[i + 1])?;
            if n < 0 {
                r.error("ERR The MAXLEN argument must be >= 0.");
                return None;
            }
            i += 1;
            a.trim = Some(Trim::MaxLen(n as u64));
        } else if opt.eq_ignore_ascii_case(b"minid") && more > 0 {
            if a.trim.is_some() {
                r.error(BOTH);
                return None;
            }
            a.approx = false;
            let next = argv[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let Some(id) = parse_strict(argv[i + 1]) else {
                r.error(INVALID_ID);
                return None;
            };
            i += 1;
            a.trim = Some(Trim::MinId(id));
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            limit = int_arg(r, argv[i + 1])?;
            if limit < 0 {
                r.error("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            let Some(id) = parse_id_ext(opt, 0, true, true) else {
                r.error(INVALID_ID);
                return None;
            };
            a.id = Some(id);
            break;
        } else {
            r.error(err::SYNTAX);
            return None;
        }
        i += 1;
    }
    a.idpos = i;
    if limit != 0 && a.trim.is_none() {
        r.error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && a.trim.is_none() {
        r.error("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !a.approx {
            r.error("ERR syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
        a.limit = limit as u64;
    } else if a.approx {
        let mut l = 100i64.saturating_mul(node_entries);
        if l <= 0 {
            l = 10000;
        }
        a.limit = l.min(1_000_000) as u64;
    }
    Some(a)
}

fn xadd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, lim) = (ctx.client.db, ctx.now_ms, limits(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(a) = parse_add_trim(lim.max_entries as i64, &mut r, argv, true) else {
        return;
    };
    let field_pos = a.idpos + 1;
    if argv.len() < field_pos + 2 || (argv.len() - field_pos) % 2 == 1 {
        r.error("ERR wrong number of arguments for 'xadd' command");
        return;
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            r.error("ERR The ID specified in XADD must be greater than 0-0");
            return;
        }
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut created: Option<StreamValue> = None;
    let s: &mut StreamValue = match find(sh, key, now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Stream(s) => s,
        Found::Missing => {
            if a.nomkstream {
                return r.null();
            }
            created.insert(StreamValue::new())
        }
    };
    if s.last_id == StreamId::MAX {
        return r
            .error("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match a.id {
        Some((id, true)) => id,
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                if s.last_id.seq == u64::MAX {
                    return r.error(
                        "ERR The ID specified in XADD is equal or smaller than the target stream top item",
                    );
                }
                StreamId::new(id.ms, s.last_id.seq + 1)
            } else {
                id
            }
        }
        None => {
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                s.last_id.incr().unwrap()
            }
        }
    };
    if id <= s.last_id {
        return r.error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    }
    let fv = &argv[field_pos..];
    if fv.iter().map(|x| x.len()).sum::<usize>() > MAX_ENTRY_BYTES {
        return r.error("ERR Elements are too large to be stored");
    }
    s.append(id, fv, lim);
    reply_id(&mut r, id);
    let trimmed = match a.trim {
        Some(t) => s.trim(t, a.approx, a.limit),
        None => 0,
    };
    let len_after = s.len();
    if let Some(s) = created {
        sh.insert_entry(new_entry(key, s, now));
    }
    ctx.srv.add_dirty(1);
    ctx.notify(notify::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", key);
    }
    if ctx.propagating() {
        // The effect: the ID the entry got, and an exact trim to the length
        // the stream was left with (an approximate trim depends on node
        // layout, which a rewritten base does not reproduce).
        let idb = id.to_bytes();
        let lenb = len_after.to_string().into_bytes();
        let mut v: Vec<&[u8]> = vec![b"XADD", key];
        if trimmed > 0 {
            v.extend_from_slice(&[b"MAXLEN", b"=", &lenb]);
        }
        v.push(&idb);
        v.extend_from_slice(&argv[field_pos..]);
        ctx.propagate_as(&v);
    }
}

fn xtrim(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, lim) = (ctx.client.db, ctx.now_ms, limits(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(a) = parse_add_trim(lim.max_entries as i64, &mut r, argv, false) else {
        return;
    };
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let (n, len_after) = match find(sh, key, now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => return r.int(0),
        Found::Stream(s) => (s.trim(a.trim.unwrap(), a.approx, a.limit), s.len()),
    };
    r.int(n as i64);
    if n > 0 {
        ctx.srv.add_dirty(n);
        ctx.notify(notify::STREAM, "xtrim", key);
        // Exact, whatever the strategy: what remains is a suffix.
        let lenb = len_after.to_string().into_bytes();
        ctx.propagate_as(&[b"XTRIM", key, b"MAXLEN", b"=", &lenb]);
    }
}

// ---------------------------------------------------------------------------
// XRANGE / XREVRANGE / XLEN / XDEL
// ---------------------------------------------------------------------------

fn xrange_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let (sa, ea) = if rev {
        (argv[3], argv[2])
    } else {
        (argv[2], argv[3])
    };
    let Some(start) = range_start(&mut r, sa) else {
        return;
    };
    let Some(end) = range_end(&mut r, ea) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < argv.len() {
        if argv[j].eq_ignore_ascii_case(b"COUNT") && j + 1 < argv.len() {
            let Some(c) = int_arg(&mut r, argv[j + 1]) else {
                return;
            };
            count = c.max(0);
            j += 2;
        } else {
            return r.error(err::SYNTAX);
        }
    }
    let sh = ctx.locks.shard(db, argv[1]);
    match find(sh, argv[1], now, touch) {
        Found::Missing => {
            ctx.srv.stats.hit(false);
            r.array(0)
        }
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Stream(s) => {
            ctx.srv.stats.hit(true);
            if count == 0 {
                r.null_array();
            } else {
                reply_range(&mut r, s, start, end, count.max(0) as usize, rev);
            }
        }
    }
}

fn xrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    xrange_generic(ctx, argv, false)
}

fn xrevrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    xrange_generic(ctx, argv, true)
}

fn xlen(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let sh = ctx.locks.shard(db, argv[1]);
    match find(sh, argv[1], now, touch) {
        Found::Missing => {
            ctx.srv.stats.hit(false);
            r.int(0)
        }
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Stream(s) => {
            ctx.srv.stats.hit(true);
            r.int(s.len() as i64)
        }
    }
}

fn xdel(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let s = match find(sh, key, now, true) {
        Found::Missing => return r.int(0),
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Stream(s) => s,
    };
    let mut ids = Vec::with_capacity(argv.len() - 2);
    for a in &argv[2..] {
        match parse_strict(a) {
            Some(id) => ids.push(id),
            None => return r.error(INVALID_ID),
        }
    }
    let mut deleted = 0;
    for id in ids {
        if s.delete(id) {
            if id > s.max_deleted {
                s.max_deleted = id;
            }
            deleted += 1;
        }
    }
    r.int(deleted);
    if deleted > 0 {
        ctx.srv.add_dirty(deleted as u64);
        ctx.notify(notify::STREAM, "xdel", key);
    }
}

// ---------------------------------------------------------------------------
// XREAD / XREADGROUP
// ---------------------------------------------------------------------------

fn xread(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let rerun = ctx.no_monitor;
    let proto = ctx.client.proto;
    let xreadgroup = argv[0].len() == 10;
    let cmdname = if xreadgroup { "xreadgroup" } else { "xread" };
    let mut timeout: Option<i64> = None;
    let mut count: usize = 0;
    let mut streams_arg = 0;
    let mut nstreams = 0;
    let mut noack = false;
    let mut group: Option<(&[u8], &[u8])> = None;
    {
        let mut r = Reply::new(ctx.out, proto);
        let mut i = 1;
        while i < argv.len() {
            let more = argv.len() - i - 1;
            let o = argv[i];
            if o.eq_ignore_ascii_case(b"BLOCK") && more > 0 {
                i += 1;
                let Some(t) = int_arg_msg(
                    &mut r,
                    argv[i],
                    "ERR timeout is not an integer or out of range",
                ) else {
                    return;
                };
                if t < 0 {
                    return r.error("ERR timeout is negative");
                }
                if t > 0 && t > i64::MAX - now as i64 {
                    return r.error("ERR timeout is out of range");
                }
                timeout = Some(t);
            } else if o.eq_ignore_ascii_case(b"COUNT") && more > 0 {
                i += 1;
                let Some(c) = int_arg(&mut r, argv[i]) else {
                    return;
                };
                count = c.max(0) as usize;
            } else if o.eq_ignore_ascii_case(b"STREAMS") && more > 0 {
                streams_arg = i + 1;
                let n = argv.len() - streams_arg;
                if !n.is_multiple_of(2) {
                    let sym = if xreadgroup { '>' } else { '$' };
                    return r.error(&format!(
                        "ERR Unbalanced '{cmdname}' list of streams: for each stream key an ID or '{sym}' must be specified."
                    ));
                }
                nstreams = n / 2;
                break;
            } else if o.eq_ignore_ascii_case(b"GROUP") && more >= 2 {
                if !xreadgroup {
                    return r.error(
                        "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                    );
                }
                group = Some((argv[i + 1], argv[i + 2]));
                i += 2;
            } else if o.eq_ignore_ascii_case(b"NOACK") {
                if !xreadgroup {
                    return r.error(
                        "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                    );
                }
                noack = true;
            } else {
                return r.error(err::SYNTAX);
            }
            i += 1;
        }
        if streams_arg == 0 {
            return r.error(err::SYNTAX);
        }
        if xreadgroup && group.is_none() {
            return r.error("ERR Missing GROUP option for XREADGROUP");
        }
    }
    let keys = &argv[streams_arg..streams_arg + nstreams];
    let idargs = &argv[streams_arg + nstreams..];
    // Resolve the IDs (None = '>'), checking types and groups in order.
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(nstreams);
    let mut present = vec![true; nstreams];
    for k in 0..nstreams {
        let key = keys[k];
        let sh = ctx.locks.shard(db, key);
        let mut r = Reply::new(ctx.out, proto);
        let s = match find(sh, key, now, touch) {
            Found::WrongType => {
                if rerun && !xreadgroup {
                    present[k] = false;
                    None
                } else {
                    return r.error(err::WRONGTYPE);
                }
            }
            Found::Missing => {
                present[k] = false;
                None
            }
            Found::Stream(s) => Some(s),
        };
        if let Some((g, _)) = group {
            if s.as_ref().is_none_or(|s| !s.groups.contains_key(g)) {
                return r.error(&format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                ));
            }
        }
        let a = idargs[k];
        if a == b"$" {
            if xreadgroup {
                return r.error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            ids.push(Some(s.map_or(StreamId::MIN, |s| s.last_id)));
        } else if a == b">" {
            if !xreadgroup {
                return r.error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            ids.push(None);
        } else {
            match parse_strict(a) {
                Some(id) => ids.push(Some(id)),
                None => return r.error(INVALID_ID),
            }
        }
    }
    // Serve what is available.
    let mut out_buf: Vec<u8> = Vec::new();
    let mut served = 0usize;
    let mut dirty = 0u64;
    let mut created_consumers: Vec<&[u8]> = Vec::new();
    // Effects, as Redis propagates XREADGROUP: an XCLAIM per delivered
    // entry, XGROUP SETID for NOACK reads, XGROUP CREATECONSUMER for a
    // consumer a NOACK read created.
    let mut effects: Vec<Vec<Vec<u8>>> = Vec::new();
    let feed = ctx.propagating();
    for k in 0..nstreams {
        if !present[k] {
            continue;
        }
        let key = keys[k];
        let sh = ctx.locks.shard(db, key);
        let Found::Stream(s) = find(sh, key, now, false) else {
            continue;
        };
        let mut r = Reply::new(&mut out_buf, proto);
        match group {
            None => {
                let gt = ids[k].unwrap();
                if s.is_empty() || s.last_valid_id() <= gt {
                    continue;
                }
                served += 1;
                if proto == resp::Proto::Resp2 {
                    r.array(2);
                }
                r.bulk(key);
                let Some(start) = gt.incr() else {
                    r.array(0);
                    continue;
                };
                reply_range(&mut r, s, start, StreamId::MAX, count, false);
            }
            Some((gname, cname)) => {
                let mut g = s.groups.remove(gname).unwrap();
                let (serve, history) = match ids[k] {
                    Some(_) => (true, true),
                    None => (!s.is_empty() && s.last_valid_id() > g.last_id, false),
                };
                if g.create_consumer(cname, now as i64) {
                    created_consumers.push(key);
                    dirty += 1;
                    if feed && noack {
                        effects.push(vec![
                            b"XGROUP".to_vec(),
                            b"CREATECONSUMER".to_vec(),
                            key.to_vec(),
                            gname.to_vec(),
                            cname.to_vec(),
                        ]);
                    }
                }
                g.consumers.get_mut(cname).unwrap().seen_time = now as i64;
                if serve {
                    served += 1;
                    dirty += 1;
                    if proto == resp::Proto::Resp2 {
                        r.array(2);
                    }
                    r.bulk(key);
                    if history {
                        let start = ids[k].unwrap().incr();
                        let d = r.begin_deferred();
                        let mut n = 0;
                        if let Some(start) = start {
                            let pel: Vec<StreamId> = g.consumers[cname]
                                .pel
                                .range(start..)
                                .take(if count == 0 { usize::MAX } else { count })
                                .copied()
                                .collect();
                            for id in pel {
                                if reply_one(&mut r, s, id) {
                                    let nack = g.pel.get_mut(&id).unwrap();
                                    nack.delivery_time = now as i64;
                                    nack.delivery_count += 1;
                                } else {
                                    r.array(2);
                                    reply_id(&mut r, id);
                                    r.null_array();
                                }
                                n += 1;
                            }
                        }
                        r.end_deferred(d, Aggregate::Array, n);
                    } else {
                        let start = g.last_id.incr().unwrap_or(StreamId::MAX);
                        let got = reply_range(&mut r, s, start, StreamId::MAX, count, false);
                        let advanced = !got.is_empty();
                        for id in got {
                            s.group_advance(&mut g, id);
                            if !noack {
                                g.deliver(id, cname, now as i64);
                                g.consumers.get_mut(cname).unwrap().active_time = now as i64;
                                if feed {
                                    let n = &g.pel[&id];
                                    effects.push(vec![
                                        b"XCLAIM".to_vec(),
                                        key.to_vec(),
                                        gname.to_vec(),
                                        cname.to_vec(),
                                        b"0".to_vec(),
                                        id.to_bytes(),
                                        b"TIME".to_vec(),
                                        n.delivery_time.to_string().into_bytes(),
                                        b"RETRYCOUNT".to_vec(),
                                        n.delivery_count.to_string().into_bytes(),
                                        b"FORCE".to_vec(),
                                        b"JUSTID".to_vec(),
                                        b"LASTID".to_vec(),
                                        g.last_id.to_bytes(),
                                    ]);
                                }
                            }
                        }
                        if feed && noack && advanced {
                            effects.push(vec![
                                b"XGROUP".to_vec(),
                                b"SETID".to_vec(),
                                key.to_vec(),
                                gname.to_vec(),
                                g.last_id.to_bytes(),
                                b"ENTRIESREAD".to_vec(),
                                g.entries_read.to_string().into_bytes(),
                            ]);
                        }
                    }
                }
                s.groups.insert(gname.to_vec(), g);
            }
        }
    }
    for key in created_consumers {
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    ctx.srv.add_dirty(dirty);
    if feed && group.is_some() {
        if effects.is_empty() {
            ctx.propagate_nothing();
        }
        for e in &effects {
            let v: Vec<&[u8]> = e.iter().map(|a| a.as_slice()).collect();
            ctx.propagate_as(&v);
        }
    }
    let mut r = Reply::new(ctx.out, proto);
    if served > 0 {
        if proto == resp::Proto::Resp2 {
            r.array(served);
        } else {
            r.map(served);
        }
        r.raw(&out_buf);
        return;
    }
    let Some(t) = timeout else {
        return r.null_array();
    };
    if !blocking::can_block(ctx) {
        return ctx.r().null_array();
    }
    // Park with '$' replaced by the IDs it stood for.
    let idtexts: Vec<Vec<u8>> = ids
        .iter()
        .map(|x| x.map(|i| i.to_bytes()).unwrap_or_default())
        .collect();
    let mut nargv: Vec<&[u8]> = argv.to_vec();
    for k in 0..nstreams {
        if idargs[k] == b"$" {
            nargv[streams_arg + nstreams + k] = &idtexts[k];
        }
    }
    let dur = if t == 0 {
        None
    } else {
        Some(std::time::Duration::from_millis(t as u64))
    };
    blocking::block(ctx, &nargv, keys, dur, TimeoutReply::NullArray);
}

// ---------------------------------------------------------------------------
// XGROUP
// ---------------------------------------------------------------------------

fn subcommand_syntax(r: &mut Reply, sub: &[u8], parent: &str) {
    r.error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        super::sanitize_for_error(sub, 128),
        parent
    ));
}

fn xgroup_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

fn xgroup(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let sub = argv[1].to_ascii_lowercase();
    let sub = sub.as_slice();
    let key = argv[2];
    let gname = argv[3];
    let create = sub == b"create";
    let setid = sub == b"setid";
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    let mut i = 5;
    while i < argv.len() {
        if create && argv[i].eq_ignore_ascii_case(b"MKSTREAM") {
            mkstream = true;
            i += 1;
        } else if (create || setid)
            && argv[i].eq_ignore_ascii_case(b"ENTRIESREAD")
            && i + 1 < argv.len()
        {
            let Some(n) = int_arg(&mut r, argv[i + 1]) else {
                return;
            };
            if n < 0 && n != INVALID_ENTRIES_READ {
                return r.error("ERR value for ENTRIESREAD must be positive or -1");
            }
            entries_read = n;
            i += 2;
        } else {
            return subcommand_syntax(&mut r, argv[1], "XGROUP");
        }
    }
    let sh = ctx.locks.shard(db, key);
    let mut created: Option<StreamValue> = None;
    let s: &mut StreamValue = match find(sh, key, now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Stream(s) => s,
        Found::Missing => {
            if !mkstream {
                return r.error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
            }
            created.insert(StreamValue::new())
        }
    };
    if !s.groups.contains_key(gname) && (setid || sub == b"createconsumer" || sub == b"delconsumer")
    {
        return r.error(&format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(gname),
            String::from_utf8_lossy(key)
        ));
    }
    let mut event = None;
    match sub {
        b"create" => {
            if argv.len() > 8 {
                return subcommand_syntax(&mut r, argv[1], "XGROUP");
            }
            let id = if argv[4] == b"$" {
                s.last_id
            } else {
                match parse_strict(argv[4]) {
                    Some(id) => id,
                    None => return r.error(INVALID_ID),
                }
            };
            if s.groups.contains_key(gname) {
                return r.error("BUSYGROUP Consumer Group name already exists");
            }
            s.groups
                .insert(gname.to_vec(), Group::new(id, entries_read));
            r.ok();
            event = Some("xgroup-create");
        }
        b"setid" => {
            if argv.len() != 5 && argv.len() != 7 {
                return subcommand_syntax(&mut r, argv[1], "XGROUP");
            }
            let id = if argv[4] == b"$" {
                s.last_id
            } else {
                match parse_id(argv[4], 0) {
                    Some(id) => id,
                    None => return r.error(INVALID_ID),
                }
            };
            let g = s.groups.get_mut(gname).unwrap();
            g.last_id = id;
            g.entries_read = entries_read;
            r.ok();
            event = Some("xgroup-setid");
        }
        b"destroy" => {
            if s.groups.remove(gname).is_some() {
                r.int(1);
                event = Some("xgroup-destroy");
            } else {
                r.int(0);
            }
        }
        b"createconsumer" => {
            let g = s.groups.get_mut(gname).unwrap();
            let ok = g.create_consumer(argv[4], now as i64);
            r.int(ok as i64);
            if ok {
                event = Some("xgroup-createconsumer");
            }
        }
        b"delconsumer" => {
            let g = s.groups.get_mut(gname).unwrap();
            match g.delete_consumer(argv[4]) {
                Some(n) => {
                    r.int(n as i64);
                    event = Some("xgroup-delconsumer");
                }
                None => r.int(0),
            }
        }
        _ => return subcommand_syntax(&mut r, argv[1], "XGROUP"),
    }
    if let Some(s) = created {
        sh.insert_entry(new_entry(key, s, now));
    }
    if let Some(ev) = event {
        ctx.srv.add_dirty(1);
        ctx.notify(notify::STREAM, ev, key);
    }
}

// ---------------------------------------------------------------------------
// XSETID / XACK / XPENDING
// ---------------------------------------------------------------------------

fn xsetid(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(id) = parse_strict(argv[2]) else {
        return r.error(INVALID_ID);
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if argv[i].eq_ignore_ascii_case(b"ENTRIESADDED") && more > 0 {
            let Some(n) = int_arg(&mut r, argv[i + 1]) else {
                return;
            };
            if n < 0 {
                return r.error("ERR entries_added must be positive");
            }
            entries_added = n;
            i += 2;
        } else if argv[i].eq_ignore_ascii_case(b"MAXDELETEDID") && more > 0 {
            let Some(m) = parse_strict(argv[i + 1]) else {
                return r.error(INVALID_ID);
            };
            if id < m {
                return r.error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
            max_xdel = m;
            i += 2;
        } else {
            return r.error(err::SYNTAX);
        }
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let s = match find(sh, key, now, true) {
        Found::Missing => return r.error(err::NO_SUCH_KEY),
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Stream(s) => s,
    };
    if id < s.max_deleted {
        return r
            .error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
    }
    if !s.is_empty() {
        if id < s.last_valid_id() {
            return r.error(
                "ERR The ID specified in XSETID is smaller than the target stream top item",
            );
        }
        if entries_added != -1 && s.len() as i64 > entries_added {
            return r.error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_xdel.is_zero() {
        s.max_deleted = max_xdel;
    }
    r.ok();
    ctx.srv.add_dirty(1);
    ctx.notify(notify::STREAM, "xsetid", key);
}

fn xack(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let sh = ctx.locks.shard(db, argv[1]);
    let g = match find(sh, argv[1], now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => return r.int(0),
        Found::Stream(s) => match s.groups.get_mut(argv[2]) {
            None => return r.int(0),
            Some(g) => g,
        },
    };
    let mut ids = Vec::with_capacity(argv.len() - 3);
    for a in &argv[3..] {
        match parse_strict(a) {
            Some(id) => ids.push(id),
            None => return r.error(INVALID_ID),
        }
    }
    let mut n = 0;
    for id in ids {
        if g.ack(id) {
            n += 1;
        }
    }
    r.int(n);
    ctx.srv.add_dirty(n as u64);
}

fn nogroup(r: &mut Reply, key: &[u8], g: &[u8]) {
    r.error(&format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(g)
    ));
}

fn xpending(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let argc = argv.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return r.error(err::SYNTAX);
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut si = 3;
        if argv[3].eq_ignore_ascii_case(b"IDLE") {
            let Some(m) = int_arg(&mut r, argv[4]) else {
                return;
            };
            minidle = m;
            if argc < 8 {
                return r.error(err::SYNTAX);
            }
            si += 2;
        }
        let Some(c) = int_arg(&mut r, argv[si + 2]) else {
            return;
        };
        count = c.max(0);
        let Some(s) = range_start(&mut r, argv[si]) else {
            return;
        };
        let Some(e) = range_end(&mut r, argv[si + 1]) else {
            return;
        };
        start = s;
        end = e;
        if si + 3 < argc {
            consumer = Some(argv[si + 3]);
        }
    }
    let sh = ctx.locks.shard(db, argv[1]);
    let g = match find(sh, argv[1], now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => return nogroup(&mut r, argv[1], argv[2]),
        Found::Stream(s) => match s.groups.get(argv[2]) {
            None => return nogroup(&mut r, argv[1], argv[2]),
            Some(g) => g,
        },
    };
    if justinfo {
        r.array(4);
        r.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            r.null();
            r.null();
            r.null_array();
        } else {
            reply_id(&mut r, *g.pel.keys().next().unwrap());
            reply_id(&mut r, *g.pel.keys().next_back().unwrap());
            let cs: Vec<_> = g.consumers.values().filter(|c| !c.pel.is_empty()).collect();
            r.array(cs.len());
            for c in cs {
                r.array(2);
                r.bulk(&c.name);
                r.bulk_int(c.pel.len() as i64);
            }
        }
        return;
    }
    let ids: Vec<StreamId> = match consumer {
        Some(c) => match g.consumers.get(c) {
            None => return r.array(0),
            Some(c) => {
                if start > end {
                    Vec::new()
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|(k, _)| *k).collect()
            }
        }
    };
    let d = r.begin_deferred();
    let mut n = 0;
    let now = now as i64;
    for id in ids {
        if count == 0 {
            break;
        }
        let nack = &g.pel[&id];
        if minidle != 0 && now - nack.delivery_time < minidle {
            continue;
        }
        n += 1;
        count -= 1;
        r.array(4);
        reply_id(&mut r, id);
        r.bulk(&nack.consumer);
        r.int((now - nack.delivery_time).max(0));
        r.int(nack.delivery_count as i64);
    }
    r.end_deferred(d, Aggregate::Array, n);
}

// ---------------------------------------------------------------------------
// XCLAIM / XAUTOCLAIM
// ---------------------------------------------------------------------------

fn xclaim(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let nowi = now as i64;
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let key = argv[1];
    let gname = argv[2];
    let cname = argv[3];
    let sh = ctx.locks.shard(db, key);
    let s = match find(sh, key, now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => return nogroup(&mut r, key, gname),
        Found::Stream(s) => s,
    };
    if !s.groups.contains_key(gname) {
        return nogroup(&mut r, key, gname);
    }
    let Some(minidle) = int_arg_msg(
        &mut r,
        argv[4],
        "ERR Invalid min-idle-time argument for XCLAIM",
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < argv.len() {
        match parse_strict(argv[j]) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let mut force = false;
    let mut justid = false;
    let mut deliverytime: i64 = -1;
    let mut retrycount: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        if opt.eq_ignore_ascii_case(b"FORCE") {
            force = true;
        } else if opt.eq_ignore_ascii_case(b"JUSTID") {
            justid = true;
        } else if opt.eq_ignore_ascii_case(b"IDLE") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(
                &mut r,
                argv[j],
                "ERR Invalid IDLE option argument for XCLAIM",
            ) else {
                return;
            };
            deliverytime = nowi - v;
        } else if opt.eq_ignore_ascii_case(b"TIME") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(
                &mut r,
                argv[j],
                "ERR Invalid TIME option argument for XCLAIM",
            ) else {
                return;
            };
            deliverytime = v;
        } else if opt.eq_ignore_ascii_case(b"RETRYCOUNT") && more > 0 {
            j += 1;
            let Some(v) = int_arg_msg(
                &mut r,
                argv[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            ) else {
                return;
            };
            retrycount = v;
        } else if opt.eq_ignore_ascii_case(b"LASTID") && more > 0 {
            j += 1;
            let Some(v) = parse_strict(argv[j]) else {
                return r.error(INVALID_ID);
            };
            last_id = v;
        } else {
            return r.error(&format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            ));
        }
        j += 1;
    }
    let mut g = s.groups.remove(gname).unwrap();
    let mut dirty = 0u64;
    if last_id > g.last_id {
        g.last_id = last_id;
        dirty += 1;
    }
    if deliverytime != -1 {
        if deliverytime < 0 || deliverytime > nowi {
            deliverytime = nowi;
        }
    } else {
        deliverytime = nowi;
    }
    let created = g.create_consumer(cname, nowi);
    g.consumers.get_mut(cname).unwrap().seen_time = nowi;
    let d = r.begin_deferred();
    let mut n = 0;
    for id in ids {
        let exists = s.contains(id);
        if !exists {
            if g.ack(id) {
                dirty += 1;
            }
            continue;
        }
        let mut forced = false;
        if force && !g.pel.contains_key(&id) {
            g.pel.insert(
                id,
                crate::keyspace::types::stream::Nack {
                    delivery_time: nowi,
                    delivery_count: 1,
                    consumer: g.consumers[cname].name.clone(),
                },
            );
            forced = true;
        }
        let Some(nack) = g.pel.get_mut(&id) else {
            continue;
        };
        if !forced && minidle != 0 && nowi - nack.delivery_time < minidle {
            continue;
        }
        nack.delivery_time = deliverytime;
        if retrycount >= 0 {
            nack.delivery_count = retrycount as u64;
        } else if !justid {
            nack.delivery_count += 1;
        }
        g.reassign(id, cname);
        if justid {
            reply_id(&mut r, id);
        } else {
            reply_one(&mut r, s, id);
        }
        n += 1;
        g.consumers.get_mut(cname).unwrap().active_time = nowi;
        dirty += 1;
    }
    r.end_deferred(d, Aggregate::Array, n);
    s.groups.insert(gname.to_vec(), g);
    if created {
        dirty += 1;
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    ctx.srv.add_dirty(dirty);
}

fn xautoclaim(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let nowi = now as i64;
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let key = argv[1];
    let gname = argv[2];
    let cname = argv[3];
    let Some(minidle) = int_arg_msg(
        &mut r,
        argv[4],
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let Some(start) = range_start(&mut r, argv[5]) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if argv[j].eq_ignore_ascii_case(b"COUNT") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64(argv[j + 1]) {
                Some(c) if (1..=max).contains(&c) => count = c,
                Some(_) => return r.error("ERR COUNT must be > 0"),
                None => return r.error(err::NOT_INT),
            }
            j += 1;
        } else if argv[j].eq_ignore_ascii_case(b"JUSTID") {
            justid = true;
        } else {
            return r.error(err::SYNTAX);
        }
        j += 1;
    }
    let sh = ctx.locks.shard(db, key);
    let s = match find(sh, key, now, true) {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => return nogroup(&mut r, key, gname),
        Found::Stream(s) => s,
    };
    let Some(mut g) = s.groups.remove(gname) else {
        return nogroup(&mut r, key, gname);
    };
    let created = g.create_consumer(cname, nowi);
    g.consumers.get_mut(cname).unwrap().seen_time = nowi;
    let mut attempts = count.saturating_mul(10);
    let mut claimed: Vec<u8> = Vec::new();
    let mut deleted: Vec<StreamId> = Vec::new();
    let mut n = 0;
    let mut dirty = 0u64;
    let mut cursor = Some(start);
    {
        let mut cr = Reply::new(&mut claimed, r.proto);
        while attempts > 0 && count > 0 {
            attempts -= 1;
            let Some(c) = cursor else { break };
            let Some((&id, nack)) = g.pel.range(c..).next() else {
                cursor = None;
                break;
            };
            cursor = id.incr();
            if !s.contains(id) {
                g.ack(id);
                deleted.push(id);
                count -= 1;
                dirty += 1;
                continue;
            }
            if minidle != 0 && nowi - nack.delivery_time < minidle {
                continue;
            }
            let nack = g.pel.get_mut(&id).unwrap();
            nack.delivery_time = nowi;
            if !justid {
                nack.delivery_count += 1;
            }
            g.reassign(id, cname);
            if justid {
                reply_id(&mut cr, id);
            } else {
                reply_one(&mut cr, s, id);
            }
            n += 1;
            count -= 1;
            g.consumers.get_mut(cname).unwrap().active_time = nowi;
            dirty += 1;
        }
    }
    let endid = cursor
        .and_then(|c| g.pel.range(c..).next().map(|(k, _)| *k))
        .unwrap_or(StreamId::MIN);
    s.groups.insert(gname.to_vec(), g);
    r.array(3);
    reply_id(&mut r, endid);
    r.array(n);
    r.raw(&claimed);
    r.array(deleted.len());
    for id in deleted {
        reply_id(&mut r, id);
    }
    if created {
        dirty += 1;
        ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    ctx.srv.add_dirty(dirty);
}

// ---------------------------------------------------------------------------
// XINFO
// ---------------------------------------------------------------------------

fn xinfo_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    );
}

fn reply_lag(r: &mut Reply, s: &StreamValue, g: &Group) {
    match s.group_lag(g) {
        Some(l) => r.int(l),
        None => r.null(),
    }
}

fn reply_entries_read(r: &mut Reply, g: &Group) {
    if g.entries_read != INVALID_ENTRIES_READ {
        r.int(g.entries_read);
    } else {
        r.null();
    }
}

fn xinfo(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let sub = argv[1].to_ascii_lowercase();
    let key = argv[2];
    let sh = ctx.locks.shard(db, key);
    let s = match find(sh, key, now, touch) {
        Found::Missing => return r.error(err::NO_SUCH_KEY),
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Stream(s) => s,
    };
    match sub.as_slice() {
        b"consumers" => {
            let Some(g) = s.groups.get(argv[3]) else {
                return r.error(&format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(argv[3]),
                    String::from_utf8_lossy(key)
                ));
            };
            let now = now as i64;
            r.array(g.consumers.len());
            for c in g.consumers.values() {
                let inactive = if c.active_time != -1 {
                    now - c.active_time
                } else {
                    -1
                };
                r.map(4);
                r.bulk(b"name");
                r.bulk(&c.name);
                r.bulk(b"pending");
                r.int(c.pel.len() as i64);
                r.bulk(b"idle");
                r.int((now - c.seen_time).max(0));
                r.bulk(b"inactive");
                r.int(inactive);
            }
        }
        b"groups" => {
            r.array(s.groups.len());
            for (name, g) in &s.groups {
                r.map(6);
                r.bulk(b"name");
                r.bulk(name);
                r.bulk(b"consumers");
                r.int(g.consumers.len() as i64);
                r.bulk(b"pending");
                r.int(g.pel.len() as i64);
                r.bulk(b"last-delivered-id");
                reply_id(&mut r, g.last_id);
                r.bulk(b"entries-read");
                reply_entries_read(&mut r, g);
                r.bulk(b"lag");
                reply_lag(&mut r, s, g);
            }
        }
        _ => xinfo_stream(&mut r, s, argv),
    }
}

fn xinfo_stream(r: &mut Reply, s: &StreamValue, argv: &[&[u8]]) {
    let opts = &argv[3..];
    let mut full = true;
    let mut count: i64 = 10;
    if opts.is_empty() {
        full = false;
    } else {
        if (opts.len() != 1 && opts.len() != 3) || !opts[0].eq_ignore_ascii_case(b"full") {
            return subcommand_syntax(r, argv[1], "XINFO");
        }
        if opts.len() == 3 {
            if !opts[1].eq_ignore_ascii_case(b"count") {
                return subcommand_syntax(r, argv[1], "XINFO");
            }
            let Some(c) = int_arg(r, opts[2]) else {
                return;
            };
            count = if c < 0 { 10 } else { c };
        }
    }
    let count = count as usize;
    r.map(if full { 9 } else { 10 });
    r.bulk(b"length");
    r.int(s.len() as i64);
    r.bulk(b"radix-tree-keys");
    r.int(s.node_count() as i64);
    r.bulk(b"radix-tree-nodes");
    r.int((s.node_count() * 2).max(1) as i64);
    r.bulk(b"last-generated-id");
    reply_id(r, s.last_id);
    r.bulk(b"max-deleted-entry-id");
    reply_id(r, s.max_deleted);
    r.bulk(b"entries-added");
    r.int(s.entries_added as i64);
    r.bulk(b"recorded-first-entry-id");
    reply_id(r, s.first_id());
    if !full {
        r.bulk(b"groups");
        r.int(s.groups.len() as i64);
        r.bulk(b"first-entry");
        let mut any = false;
        s.walk(StreamId::MIN, StreamId::MAX, false, &mut |id, fv| {
            reply_entry(r, id, fv);
            any = true;
            false
        });
        if !any {
            r.null();
        }
        r.bulk(b"last-entry");
        let mut any = false;
        s.walk(StreamId::MIN, StreamId::MAX, true, &mut |id, fv| {
            reply_entry(r, id, fv);
            any = true;
            false
        });
        if !any {
            r.null();
        }
        return;
    }
    r.bulk(b"entries");
    reply_range(r, s, StreamId::MIN, StreamId::MAX, count, false);
    r.bulk(b"groups");
    r.array(s.groups.len());
    for (name, g) in &s.groups {
        r.map(7);
        r.bulk(b"name");
        r.bulk(name);
        r.bulk(b"last-delivered-id");
        reply_id(r, g.last_id);
        r.bulk(b"entries-read");
        reply_entries_read(r, g);
        r.bulk(b"lag");
        reply_lag(r, s, g);
        r.bulk(b"pel-count");
        r.int(g.pel.len() as i64);
        r.bulk(b"pending");
        let take = if count == 0 { usize::MAX } else { count };
        let pel: Vec<_> = g.pel.iter().take(take).collect();
        r.array(pel.len());
        for (id, nack) in pel {
            r.array(4);
            reply_id(r, *id);
            r.bulk(&nack.consumer);
            r.int(nack.delivery_time);
            r.int(nack.delivery_count as i64);
        }
        r.bulk(b"consumers");
        r.array(g.consumers.len());
        for c in g.consumers.values() {
            r.map(5);
            r.bulk(b"name");
            r.bulk(&c.name);
            r.bulk(b"seen-time");
            r.int(c.seen_time);
            r.bulk(b"active-time");
            r.int(c.active_time);
            r.bulk(b"pel-count");
            r.int(c.pel.len() as i64);
            r.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(take).collect();
            r.array(ids.len());
            for id in ids {
                let nack = &g.pel[id];
                r.array(3);
                reply_id(r, *id);
                r.int(nack.delivery_time);
                r.int(nack.delivery_count as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        assert_eq!(parse_id(b"5", 0), Some(StreamId::new(5, 0)));
        assert_eq!(parse_id(b"5", u64::MAX), Some(StreamId::new(5, u64::MAX)));
        assert_eq!(parse_id(b"5-3", 0), Some(StreamId::new(5, 3)));
        assert_eq!(parse_id(b"-", 0), Some(StreamId::MIN));
        assert_eq!(parse_strict(b"-"), None);
        assert_eq!(parse_id(b"5-", 0), None);
        assert_eq!(parse_id(b"-5", 0), None);
        assert_eq!(parse_id(b"18446744073709551616", 0), None);
        assert_eq!(
            parse_id_ext(b"5-*", 0, true, true),
            Some((StreamId::new(5, 0), false))
        );
        assert_eq!(
            parse_interval(b"(5-1", 0),
            Some((StreamId::new(5, 1), true))
        );
    }

    #[test]
    fn xread_key_positions() {
        let a: Vec<&[u8]> = vec![b"xread", b"COUNT", b"2", b"STREAMS", b"a", b"b", b"0", b"0"];
        assert_eq!(xread_keys(&a), Some(vec![4, 5]));
        let a: Vec<&[u8]> = vec![
            b"xreadgroup",
            b"GROUP",
            b"g",
            b"c",
            b"NOACK",
            b"STREAMS",
            b"a",
            b">",
        ];
        assert_eq!(xread_keys(&a), Some(vec![6]));
        let a: Vec<&[u8]> = vec![b"xread", b"STREAMS", b"a"];
        assert_eq!(xread_keys(&a), None);
    }
}
