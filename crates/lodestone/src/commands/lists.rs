//! The list family (Redis's `t_list.c`): pushes, pops, ranges, LINSERT,
//! LSET, LTRIM, LREM, LPOS, LMOVE/RPOPLPUSH and LMPOP.
//!
//! The blocking variants (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) come
//! with the blocking infrastructure; they are meant to call the cores here
//! ([`pop_core`], [`mpop_core`], [`lmove_core`]), which do the whole data
//! side of a pop (including deleting an emptied key and the shrinking
//! conversion) and leave replies to the caller.

use super::{err, Ctx, Handler, Registry};
use crate::config::HOT;
use crate::keyspace::types::list::{Elem, ListValue, Needle};
use crate::keyspace::{Locks, Shard, Value};
use resp::Reply;
use strutil::parse_i64;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
blpop|list|-3|2.0.0|write,blocking|list|1,-2,1|Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.
brpop|list|-3|2.0.0|write,blocking|list|1,-2,1|Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.
blmove|list|6|6.2.0|write,denyoom,blocking|list|1,2,1|Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.
brpoplpush|list|4|2.2.0|write,denyoom,blocking|list|1,2,1|Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.
blmpop|list|-5|7.0.0|write,blocking|list|-|Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.
lpush|list|-3|1.0.0|write,denyoom,fast|list|1,1,1|Prepends one or more elements to a list. Creates the key if it doesn't exist.
rpush|list|-3|1.0.0|write,denyoom,fast|list|1,1,1|Appends one or more elements to a list. Creates the key if it doesn't exist.
lpushx|list|-3|2.2.0|write,denyoom,fast|list|1,1,1|Prepends one or more elements to a list only when the list exists.
rpushx|list|-3|2.2.0|write,denyoom,fast|list|1,1,1|Appends an element to a list only when the list exists.
linsert|list|5|2.2.0|write,denyoom|list|1,1,1|Inserts an element before or after another element in a list.
llen|list|2|1.0.0|readonly,fast|list|1,1,1|Returns the length of a list.
lindex|list|3|1.0.0|readonly|list|1,1,1|Returns an element from a list by its index.
lset|list|4|1.0.0|write,denyoom|list|1,1,1|Sets the value of an element in a list by its index.
lrange|list|4|1.0.0|readonly|list|1,1,1|Returns a range of elements from a list.
ltrim|list|4|1.0.0|write|list|1,1,1|Removes elements from both ends a list. Deletes the list if all elements were trimmed.
lrem|list|4|1.0.0|write|list|1,1,1|Removes elements from a list. Deletes the list if the last element was removed.
lpos|list|-3|6.0.6|readonly|list|1,1,1|Returns the index of matching elements in a list.
lpop|list|-2|1.0.0|write,fast|list|1,1,1|Returns the first elements in a list after removing it. Deletes the list if the last element was popped.
rpop|list|-2|1.0.0|write,fast|list|1,1,1|Returns and removes the last elements of a list. Deletes the list if the last element was popped.
rpoplpush|list|3|1.2.0|write,denyoom|list|1,2,1|Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.
lmove|list|5|6.2.0|write,denyoom|list|1,2,1|Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.
lmpop|list|-4|7.0.0|write|list|-|Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("lpush", lpush as Handler),
        ("rpush", rpush),
        ("lpushx", lpushx),
        ("rpushx", rpushx),
        ("linsert", linsert),
        ("llen", llen),
        ("lindex", lindex),
        ("lset", lset),
        ("lrange", lrange),
        ("ltrim", ltrim),
        ("lrem", lrem),
        ("lpos", lpos),
        ("lpop", lpop),
        ("rpop", rpop),
        ("rpoplpush", rpoplpush),
        ("lmove", lmove),
        ("lmpop", lmpop),
        ("blpop", blpop),
        ("brpop", brpop),
        ("blmove", blmove),
        ("brpoplpush", brpoplpush),
        ("blmpop", blmpop),
    ]);
    r.keys.push(("lmpop", lmpop_keys));
    r.keys.push(("blmpop", |argv| mpop_keys_at(argv, 2)));
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT n]: keys are 2..2+numkeys.
pub fn lmpop_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    mpop_keys_at(argv, 1)
}

/// Keys of an [B]LMPOP-style command whose numkeys is at `numkeys_idx`
/// (BLMPOP: 2). None when numkeys is invalid or the keys do not fit.
pub fn mpop_keys_at(argv: &[&[u8]], numkeys_idx: usize) -> Option<Vec<usize>> {
    let n = parse_i64(argv.get(numkeys_idx)?)?;
    if n < 1 {
        return None;
    }
    let first = numkeys_idx + 1;
    // The keys must be followed by at least the LEFT|RIGHT argument.
    if n as u64 >= (argv.len() - first) as u64 {
        return None;
    }
    Some((first..first + n as usize).collect())
}

/// The key held a value of another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

fn fill(ctx: &Ctx) -> i64 {
    ctx.srv.config.num(HOT.list_max_listpack_size)
}

/// The live list at `key`: Ok(None) when missing, Err when another type.
fn find<'s>(
    sh: &'s mut Shard,
    key: &[u8],
    now: u64,
    touch: bool,
) -> Result<Option<&'s mut ListValue>, WrongType> {
    match super::strings::lookup(sh, key, now, touch) {
        None => Ok(None),
        Some(e) => match e.heap_value_mut() {
            Some(Value::List(l)) => Ok(Some(l)),
            _ => Err(WrongType),
        },
    }
}

#[inline]
fn reply_elem(r: &mut Reply, e: Elem) {
    match e {
        Elem::Int(n) => r.bulk_int(n),
        Elem::Str(s) => r.bulk(s),
    }
}

/// A strictly parsed integer argument, or the standard error.
fn int_arg(r: &mut Reply, a: &[u8]) -> Option<i64> {
    let v = parse_i64(a);
    if v.is_none() {
        r.error(err::NOT_INT);
    }
    v
}

/// Redis's getRangeLongFromObjectOrReply with a custom message: any failure
/// (not an integer, or outside min..=max) gives `msg`.
fn range_arg(r: &mut Reply, a: &[u8], min: i64, max: i64, msg: &str) -> Option<i64> {
    match parse_i64(a) {
        Some(v) if (min..=max).contains(&v) => Some(v),
        _ => {
            r.error(msg);
            None
        }
    }
}

/// LEFT / RIGHT (true for the head).
fn side_arg(r: &mut Reply, a: &[u8]) -> Option<bool> {
    if a.eq_ignore_ascii_case(b"left") {
        Some(true)
    } else if a.eq_ignore_ascii_case(b"right") {
        Some(false)
    } else {
        r.error(err::SYNTAX);
        None
    }
}

/// After elements were removed from the list at `key`: deletes the key
/// if the list became empty, else applies the shrinking conversion.
fn after_removal(sh: &mut Shard, key: &[u8], now: u64, fill: i64) -> bool {
    let empty = match find(sh, key, now, false) {
        Ok(Some(l)) => {
            if l.is_empty() {
                true
            } else {
                l.try_shrink(fill);
                false
            }
        }
        _ => false,
    };
    if empty {
        sh.remove(key);
    }
    empty
}

// ---------------------------------------------------------------- pushes

fn push_generic(ctx: &mut Ctx, argv: &[&[u8]], head: bool, xx: bool) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let key = argv[1];
    let elems = &argv[2..];
    let add_bytes: usize = elems.iter().map(|e| e.len()).sum();
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let push_all = |l: &mut ListValue| {
        l.try_grow(fill, add_bytes, elems.len());
        for e in elems {
            l.push(e, head, fill);
        }
        l.len()
    };
    let len = match find(sh, key, now, true) {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(Some(l)) => push_all(l),
        Ok(None) => {
            if xx {
                return r.int(0);
            }
            let mut l = ListValue::default();
            let n = push_all(&mut l);
            sh.insert(key, Value::List(l), None);
            n
        }
    };
    ctx.srv.add_dirty(elems.len() as u64);
    r.int(len as i64);
}

fn lpush(ctx: &mut Ctx, argv: &[&[u8]]) {
    push_generic(ctx, argv, true, false)
}

fn rpush(ctx: &mut Ctx, argv: &[&[u8]]) {
    push_generic(ctx, argv, false, false)
}

fn lpushx(ctx: &mut Ctx, argv: &[&[u8]]) {
    push_generic(ctx, argv, true, true)
}

fn rpushx(ctx: &mut Ctx, argv: &[&[u8]]) {
    push_generic(ctx, argv, false, true)
}

fn linsert(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let after = if argv[2].eq_ignore_ascii_case(b"after") {
        true
    } else if argv[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return r.error(err::SYNTAX);
    };
    let sh = ctx.locks.shard(db, argv[1]);
    let l = match find(sh, argv[1], now, true) {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(l)) => l,
    };
    // Like Redis, convert before knowing whether the pivot exists.
    l.try_grow(fill, argv[4].len(), 1);
    if l.insert(argv[3], argv[4], after, fill) {
        let n = l.len();
        ctx.srv.add_dirty(1);
        r.int(n as i64);
    } else {
        r.int(-1);
    }
}

// ---------------------------------------------------------------- reads

fn llen(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match find(sh, argv[1], now, touch) {
        Err(WrongType) => {
            ctx.srv.stats.hit(true);
            r.error(err::WRONGTYPE)
        }
        Ok(None) => {
            ctx.srv.stats.hit(false);
            r.int(0)
        }
        Ok(Some(l)) => {
            ctx.srv.stats.hit(true);
            r.int(l.len() as i64)
        }
    }
}

fn lindex(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let found = find(sh, argv[1], now, touch);
    ctx.srv.stats.hit(!matches!(found, Ok(None)));
    let l = match found {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.null(),
        Ok(Some(l)) => l,
    };
    let Some(i) = int_arg(&mut r, argv[2]) else {
        return;
    };
    match l.get(i) {
        Some(e) => reply_elem(&mut r, e),
        None => r.null(),
    }
}

/// Replies with elements `start..=end` (Redis index rules) as an array,
/// from `end` backwards when `reverse`.
fn range_reply(r: &mut Reply, l: &ListValue, start: i64, end: i64) {
    let llen = l.len() as i64;
    let mut start = if start < 0 {
        start.saturating_add(llen)
    } else {
        start
    };
    let mut end = if end < 0 {
        end.saturating_add(llen)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return r.array(0);
    }
    if end >= llen {
        end = llen - 1;
    }
    let n = (end - start + 1) as usize;
    r.array(n);
    for e in l.iter_from(start as usize, false).take(n) {
        reply_elem(r, e);
    }
}

fn lrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(start) = int_arg(&mut r, argv[2]) else {
        return;
    };
    let Some(end) = int_arg(&mut r, argv[3]) else {
        return;
    };
    let sh = ctx.locks.shard(db, argv[1]);
    let found = find(sh, argv[1], now, touch);
    ctx.srv.stats.hit(!matches!(found, Ok(None)));
    match found {
        Err(WrongType) => r.error(err::WRONGTYPE),
        Ok(None) => r.array(0),
        Ok(Some(l)) => range_reply(&mut r, l, start, end),
    }
}

fn lpos(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let (mut rank, mut count, mut maxlen) = (1i64, -1i64, 0i64);
    let mut j = 3;
    while j < argv.len() {
        let opt = argv[j];
        let more = j + 1 < argv.len();
        if opt.eq_ignore_ascii_case(b"rank") && more {
            j += 1;
            let Some(v) = int_arg(&mut r, argv[j]) else {
                return;
            };
            if v == i64::MIN {
                return r.error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                );
            }
            if v == 0 {
                return r.error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                );
            }
            rank = v;
        } else if opt.eq_ignore_ascii_case(b"count") && more {
            j += 1;
            let Some(v) = range_arg(&mut r, argv[j], 0, i64::MAX, "ERR COUNT can't be negative")
            else {
                return;
            };
            count = v;
        } else if opt.eq_ignore_ascii_case(b"maxlen") && more {
            j += 1;
            let Some(v) = range_arg(&mut r, argv[j], 0, i64::MAX, "ERR MAXLEN can't be negative")
            else {
                return;
            };
            maxlen = v;
        } else {
            return r.error(err::SYNTAX);
        }
        j += 1;
    }
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let sh = ctx.locks.shard(db, argv[1]);
    let found = find(sh, argv[1], now, touch);
    ctx.srv.stats.hit(!matches!(found, Ok(None)));
    let l = match found {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => {
            return if count != -1 { r.array(0) } else { r.null() };
        }
        Ok(Some(l)) => l,
    };
    let needle = Needle::new(argv[2]);
    let llen = l.len();
    let iter = if from_tail {
        l.iter_from(llen.wrapping_sub(1), true)
    } else {
        l.iter_from(0, false)
    };
    let limit = if maxlen == 0 {
        usize::MAX
    } else {
        maxlen as usize
    };
    let mut matches = 0u64;
    let mut hits: Vec<usize> = Vec::new();
    for (index, e) in iter.take(limit).enumerate() {
        if !e.matches(&needle) {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        hits.push(if from_tail { llen - index - 1 } else { index });
        if count == -1 || (count != 0 && matches - rank + 1 >= count as u64) {
            break;
        }
    }
    if count != -1 {
        r.array(hits.len());
        for h in hits {
            r.int(h as i64);
        }
    } else {
        match hits.first() {
            Some(&h) => r.int(h as i64),
            None => r.null(),
        }
    }
}

// ---------------------------------------------------------------- writes

fn lset(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let l = match find(sh, argv[1], now, true) {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.error(err::NO_SUCH_KEY),
        Ok(Some(l)) => l,
    };
    let Some(i) = int_arg(&mut r, argv[2]) else {
        return;
    };
    l.try_grow(fill, argv[3].len(), 1);
    if l.set(i, argv[3]) {
        l.try_shrink(fill);
        ctx.srv.add_dirty(1);
        r.ok();
    } else {
        r.error("ERR index out of range");
    }
}

fn ltrim(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(start) = int_arg(&mut r, argv[2]) else {
        return;
    };
    let Some(end) = int_arg(&mut r, argv[3]) else {
        return;
    };
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let l = match find(sh, key, now, true) {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.ok(),
        Ok(Some(l)) => l,
    };
    let llen = l.len() as i64;
    let mut start = if start < 0 {
        start.saturating_add(llen)
    } else {
        start
    };
    let end = if end < 0 {
        end.saturating_add(llen)
    } else {
        end
    };
    if start < 0 {
        start = 0;
    }
    let (ltrim, rtrim) = if start > end || start >= llen {
        (llen, 0)
    } else {
        (start, llen - end.min(llen - 1) - 1)
    };
    l.del_range(0, ltrim as usize);
    let rest = l.len();
    l.del_range(rest - rtrim as usize, rtrim as usize);
    after_removal(sh, key, now, fill);
    ctx.srv.add_dirty((ltrim + rtrim) as u64);
    r.ok();
}

fn lrem(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(count) = int_arg(&mut r, argv[2]) else {
        return;
    };
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let removed = match find(sh, key, now, true) {
        Err(WrongType) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(l)) => l.remove(argv[3], count),
    };
    if removed > 0 {
        after_removal(sh, key, now, fill);
    }
    ctx.srv.add_dirty(removed as u64);
    r.int(removed as i64);
}

// ---------------------------------------------------------------- pops

/// Pops up to `count` elements from the head or tail of the list at `key`
/// (in pop order), deleting the key when it becomes empty and applying the
/// shrinking conversion otherwise. Ok(None) when the key does not exist.
/// The caller counts `dirty` (the number of elements returned).
pub fn pop_core(
    sh: &mut Shard,
    key: &[u8],
    now: u64,
    head: bool,
    count: usize,
    fill: i64,
) -> Result<Option<Vec<Vec<u8>>>, WrongType> {
    let Some(l) = find(sh, key, now, true)? else {
        return Ok(None);
    };
    let n = count.min(l.len());
    let out: Vec<Vec<u8>> = if n == 1 {
        l.pop(head).into_iter().collect()
    } else if head {
        let v = l.iter_from(0, false).take(n).map(|e| e.to_vec()).collect();
        l.del_range(0, n);
        v
    } else {
        let len = l.len();
        let v = l
            .iter_from(len.wrapping_sub(1), true)
            .take(n)
            .map(|e| e.to_vec())
            .collect();
        l.del_range(len - n, n);
        v
    };
    after_removal(sh, key, now, fill);
    Ok(Some(out))
}

/// LMPOP's data side: pops up to `count` elements from the first non-empty
/// list among `keys`. Returns the index of that key in `keys` and the
/// elements; Ok(None) when every key is missing. A key of another type
/// before the first list stops the search with WrongType, as in Redis.
pub fn mpop_core(
    locks: &mut Locks,
    db: usize,
    keys: &[&[u8]],
    now: u64,
    head: bool,
    count: usize,
    fill: i64,
) -> Result<Option<(usize, Vec<Vec<u8>>)>, WrongType> {
    for (i, key) in keys.iter().enumerate() {
        let sh = locks.shard(db, key);
        match find(sh, key, now, true)? {
            None => continue,
            Some(l) if l.is_empty() => continue,
            Some(_) => {}
        }
        if let Some(v) = pop_core(sh, key, now, head, count, fill)? {
            return Ok(Some((i, v)));
        }
    }
    Ok(None)
}

/// LMOVE's data side: pops from `src` (head when `from_head`) and pushes to
/// `dst` (head when `to_head`), creating `dst` if needed and deleting an
/// emptied `src`. Ok(None) when `src` does not exist; WrongType (with no
/// change) when either key holds another type. The caller adds 1 to dirty.
#[allow(clippy::too_many_arguments)]
pub fn lmove_core(
    locks: &mut Locks,
    db: usize,
    src: &[u8],
    dst: &[u8],
    now: u64,
    from_head: bool,
    to_head: bool,
    fill: i64,
) -> Result<Option<Vec<u8>>, WrongType> {
    let sh = locks.shard(db, src);
    match find(sh, src, now, true)? {
        None => return Ok(None),
        Some(l) if l.is_empty() => return Ok(None),
        Some(_) => {}
    }
    let dst_exists = find(locks.shard(db, dst), dst, now, true)?.is_some();
    if src == dst {
        let sh = locks.shard(db, src);
        let l = find(sh, src, now, false)?.expect("source list");
        let v = l.pop(from_head).expect("non-empty list");
        l.try_grow(fill, v.len(), 1);
        l.push(&v, to_head, fill);
        l.try_shrink(fill);
        return Ok(Some(v));
    }
    let sh = locks.shard(db, src);
    let v = find(sh, src, now, false)?
        .expect("source list")
        .pop(from_head)
        .expect("non-empty list");
    after_removal(sh, src, now, fill);
    let dsh = locks.shard(db, dst);
    if dst_exists {
        let l = find(dsh, dst, now, false)?.expect("destination list");
        l.try_grow(fill, v.len(), 1);
        l.push(&v, to_head, fill);
    } else {
        let mut l = ListValue::default();
        l.try_grow(fill, v.len(), 1);
        l.push(&v, to_head, fill);
        dsh.insert(dst, Value::List(l), None);
    }
    Ok(Some(v))
}

fn pop_generic(ctx: &mut Ctx, argv: &[&[u8]], head: bool) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    if argv.len() > 3 {
        let name = if head { "lpop" } else { "rpop" };
        return r.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let count = if argv.len() == 3 {
        match range_arg(
            &mut r,
            argv[2],
            0,
            i64::MAX,
            "ERR value is out of range, must be positive",
        ) {
            Some(c) => Some(c as usize),
            None => return,
        }
    } else {
        None
    };
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    if count == Some(0) {
        // Redis looks the key up (and checks its type) before the fast exit.
        return match find(sh, key, now, true) {
            Err(WrongType) => r.error(err::WRONGTYPE),
            Ok(None) => r.null_array(),
            Ok(Some(_)) => r.array(0),
        };
    }
    if count.is_none() {
        // One element: the reply is written from the node as it goes, and
        // the emptied or shrinkable list is handled under the same lookup.
        let emptied = match find(sh, key, now, true) {
            Err(WrongType) => return r.error(err::WRONGTYPE),
            Ok(None) => return r.null(),
            Ok(Some(l)) => {
                if l.pop_with(head, |e| reply_elem(&mut r, e)).is_none() {
                    return r.null();
                }
                if l.is_empty() {
                    true
                } else {
                    l.try_shrink(fill);
                    false
                }
            }
        };
        if emptied {
            sh.remove(key);
        }
        ctx.srv.add_dirty(1);
        return;
    }
    match pop_core(sh, key, now, head, count.unwrap_or(1), fill) {
        Err(WrongType) => r.error(err::WRONGTYPE),
        Ok(None) => {
            if count.is_some() {
                r.null_array()
            } else {
                r.null()
            }
        }
        Ok(Some(v)) => {
            ctx.srv.add_dirty(v.len() as u64);
            if count.is_some() {
                r.array(v.len());
                for x in &v {
                    r.bulk(x);
                }
            } else {
                r.bulk(&v[0]);
            }
        }
    }
}

fn lpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    pop_generic(ctx, argv, true)
}

fn rpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    pop_generic(ctx, argv, false)
}

fn lmove_generic(ctx: &mut Ctx, argv: &[&[u8]], from_head: bool, to_head: bool) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let res = lmove_core(
        &mut ctx.locks,
        db,
        argv[1],
        argv[2],
        now,
        from_head,
        to_head,
        fill,
    );
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match res {
        Err(WrongType) => r.error(err::WRONGTYPE),
        Ok(None) => r.null(),
        Ok(Some(v)) => {
            ctx.srv.add_dirty(1);
            r.bulk(&v);
        }
    }
}

fn rpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) {
    lmove_generic(ctx, argv, false, true)
}

fn lmove(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(from) = side_arg(&mut r, argv[3]) else {
        return;
    };
    let Some(to) = side_arg(&mut r, argv[4]) else {
        return;
    };
    lmove_generic(ctx, argv, from, to)
}

/// Parsed [B]LMPOP arguments after numkeys: (keys, head, count).
pub struct MpopArgs<'a> {
    pub keys: Vec<&'a [u8]>,
    pub head: bool,
    pub count: usize,
}

/// Parses `numkeys key... LEFT|RIGHT [COUNT n]` starting at `numkeys_idx`
/// with Redis's checks and errors (replied through `r`).
pub fn parse_mpop<'a>(
    r: &mut Reply,
    argv: &[&'a [u8]],
    numkeys_idx: usize,
) -> Option<MpopArgs<'a>> {
    let numkeys = range_arg(
        r,
        argv[numkeys_idx],
        1,
        i64::MAX,
        "ERR numkeys should be greater than 0",
    )?;
    let where_idx = (numkeys_idx as u64)
        .saturating_add(numkeys as u64)
        .saturating_add(1);
    if where_idx >= argv.len() as u64 {
        r.error(err::SYNTAX);
        return None;
    }
    let where_idx = where_idx as usize;
    let head = side_arg(r, argv[where_idx])?;
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        if count == -1 && argv[j].eq_ignore_ascii_case(b"count") && more {
            j += 1;
            count = range_arg(
                r,
                argv[j],
                1,
                i64::MAX,
                "ERR count should be greater than 0",
            )?;
        } else {
            r.error(err::SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(MpopArgs {
        keys: argv[numkeys_idx + 1..where_idx].to_vec(),
        head,
        count: if count == -1 { 1 } else { count as usize },
    })
}

fn lmpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let a = {
        let mut r = Reply::new(ctx.out, ctx.client.proto);
        match parse_mpop(&mut r, argv, 1) {
            Some(a) => a,
            None => return,
        }
    };
    let res = mpop_core(&mut ctx.locks, db, &a.keys, now, a.head, a.count, fill);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match res {
        Err(WrongType) => r.error(err::WRONGTYPE),
        Ok(None) => r.null_array(),
        Ok(Some((i, v))) => {
            ctx.srv.add_dirty(v.len() as u64);
            r.array(2);
            r.bulk(a.keys[i]);
            r.array(v.len());
            for x in &v {
                r.bulk(x);
            }
            // The effect is a pop with count from the key that served.
            let name: &[u8] = if a.head { b"LPOP" } else { b"RPOP" };
            ctx.propagate_as(&[name, a.keys[i], &super::propagate::num(v.len())]);
        }
    }
}

// ---------------------------------------------------------------------------
// Blocking variants: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP
// ---------------------------------------------------------------------------

use super::blocking::{self, TimeoutReply};

/// Parses the timeout, or replies its error.
fn timeout_arg(ctx: &mut Ctx, a: &[u8]) -> Option<Option<std::time::Duration>> {
    match blocking::parse_timeout(a) {
        Ok(t) => Some(t),
        Err(e) => {
            ctx.error(e);
            None
        }
    }
}

/// Nothing to pop: park the client on `keys`, or inside MULTI reply as if
/// the timeout had passed.
fn park(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    keys: &[&[u8]],
    timeout: Option<std::time::Duration>,
    on_timeout: TimeoutReply,
) {
    if blocking::can_block(ctx) {
        blocking::block(ctx, argv, keys, timeout, on_timeout);
    } else if on_timeout == TimeoutReply::NullBulk {
        ctx.r().null();
    } else {
        ctx.r().null_array();
    }
}

fn bpop(ctx: &mut Ctx, argv: &[&[u8]], head: bool) {
    let Some(timeout) = timeout_arg(ctx, argv[argv.len() - 1]) else {
        return;
    };
    let keys = &argv[1..argv.len() - 1];
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    match mpop_core(&mut ctx.locks, db, keys, now, head, 1, fill) {
        Err(WrongType) => ctx.error(err::WRONGTYPE),
        Ok(None) => park(ctx, argv, keys, timeout, TimeoutReply::NullArray),
        Ok(Some((i, v))) => {
            ctx.srv.add_dirty(1);
            let mut r = ctx.r();
            r.array(2);
            r.bulk(keys[i]);
            r.bulk(&v[0]);
            // Served now or later, a blocking pop propagates as the plain pop.
            ctx.propagate_as(&[if head { b"LPOP" } else { b"RPOP" }, keys[i]]);
        }
    }
}

fn blpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    bpop(ctx, argv, true)
}

fn brpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    bpop(ctx, argv, false)
}

fn blmove_generic(ctx: &mut Ctx, argv: &[&[u8]], from_head: bool, to_head: bool, timeout: &[u8]) {
    let Some(timeout) = timeout_arg(ctx, timeout) else {
        return;
    };
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    match lmove_core(
        &mut ctx.locks,
        db,
        argv[1],
        argv[2],
        now,
        from_head,
        to_head,
        fill,
    ) {
        Err(WrongType) => ctx.error(err::WRONGTYPE),
        Ok(None) => park(ctx, argv, &argv[1..2], timeout, TimeoutReply::NullBulk),
        Ok(Some(v)) => {
            ctx.srv.add_dirty(1);
            ctx.r().bulk(&v);
            // As Redis rewrites the command: BLMOVE as LMOVE with the
            // client's own LEFT/RIGHT words, BRPOPLPUSH as RPOPLPUSH.
            if argv.len() == 6 {
                ctx.propagate_as(&[b"LMOVE", argv[1], argv[2], argv[3], argv[4]]);
            } else {
                ctx.propagate_as(&[b"RPOPLPUSH", argv[1], argv[2]]);
            }
        }
    }
}

fn blmove(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(from) = side_arg(&mut r, argv[3]) else {
        return;
    };
    let Some(to) = side_arg(&mut r, argv[4]) else {
        return;
    };
    blmove_generic(ctx, argv, from, to, argv[5])
}

fn brpoplpush(ctx: &mut Ctx, argv: &[&[u8]]) {
    blmove_generic(ctx, argv, false, true, argv[3])
}

fn blmpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(timeout) = timeout_arg(ctx, argv[1]) else {
        return;
    };
    let (db, now, fill) = (ctx.client.db, ctx.now_ms, fill(ctx));
    let a = {
        let mut r = Reply::new(ctx.out, ctx.client.proto);
        match parse_mpop(&mut r, argv, 2) {
            Some(a) => a,
            None => return,
        }
    };
    match mpop_core(&mut ctx.locks, db, &a.keys, now, a.head, a.count, fill) {
        Err(WrongType) => ctx.error(err::WRONGTYPE),
        Ok(None) => park(ctx, argv, &a.keys, timeout, TimeoutReply::NullArray),
        Ok(Some((i, v))) => {
            ctx.srv.add_dirty(v.len() as u64);
            let mut r = ctx.r();
            r.array(2);
            r.bulk(a.keys[i]);
            r.array(v.len());
            for x in &v {
                r.bulk(x);
            }
            let name: &[u8] = if a.head { b"LPOP" } else { b"RPOP" };
            ctx.propagate_as(&[name, a.keys[i], &super::propagate::num(v.len())]);
        }
    }
}
