//! The sorted set family (Redis's `t_zset.c`): ZADD and friends, ranges by
//! rank, score and lex, removals, pops, random members, the set algebra
//! commands and ZSCAN. The blocking variants (BZPOPMIN, BZPOPMAX, BZMPOP)
//! reuse [`pop_reply`] and [`zmpop_parse`] once blocking exists.

use super::{err, strings, Ctx, Handler, KeysFn, Registry};
use crate::config::HOT;
use crate::keyspace::types::set::SetValue;
use crate::keyspace::types::zset::{AddFlags, AddOutcome, LexBound, Limits, ScoreBound, ZSetValue};
use crate::keyspace::{Shard, Value};
use resp::Reply;
use smallvec::SmallVec;
use strutil::{format_double_inline, parse_f64, parse_i64};

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
bzpopmin|sorted_set|-3|5.0.0|write,fast,blocking|sortedset|1,-2,1|Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.
bzpopmax|sorted_set|-3|5.0.0|write,fast,blocking|sortedset|1,-2,1|Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise.  Deletes the sorted set if the last element was popped.
bzmpop|sorted_set|-5|7.0.0|write,blocking|sortedset|-|Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.
zadd|sorted_set|-4|1.2.0|write,denyoom,fast|sortedset|1,1,1|Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.
zcard|sorted_set|2|1.2.0|readonly,fast|sortedset|1,1,1|Returns the number of members in a sorted set.
zcount|sorted_set|4|2.0.0|readonly,fast|sortedset|1,1,1|Returns the count of members in a sorted set that have scores within a range.
zdiff|sorted_set|-3|6.2.0|readonly|sortedset|-|Returns the difference between multiple sorted sets.
zdiffstore|sorted_set|-4|6.2.0|write,denyoom|sortedset|1,1,1|Stores the difference of multiple sorted sets in a key.
zincrby|sorted_set|4|1.2.0|write,denyoom,fast|sortedset|1,1,1|Increments the score of a member in a sorted set.
zinter|sorted_set|-3|6.2.0|readonly|sortedset|-|Returns the intersect of multiple sorted sets.
zintercard|sorted_set|-3|7.0.0|readonly|sortedset|-|Returns the number of members of the intersect of multiple sorted sets.
zinterstore|sorted_set|-4|2.0.0|write,denyoom|sortedset|1,1,1|Stores the intersect of multiple sorted sets in a key.
zlexcount|sorted_set|4|2.8.9|readonly,fast|sortedset|1,1,1|Returns the number of members in a sorted set within a lexicographical range.
zmpop|sorted_set|-4|7.0.0|write|sortedset|-|Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.
zmscore|sorted_set|-3|6.2.0|readonly,fast|sortedset|1,1,1|Returns the score of one or more members in a sorted set.
zpopmax|sorted_set|-2|5.0.0|write,fast|sortedset|1,1,1|Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.
zpopmin|sorted_set|-2|5.0.0|write,fast|sortedset|1,1,1|Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.
zrandmember|sorted_set|-2|6.2.0|readonly|sortedset|1,1,1|Returns one or more random members from a sorted set.
zrange|sorted_set|-4|1.2.0|readonly|sortedset|1,1,1|Returns members in a sorted set within a range of indexes, scores or lexicographical order.
zrangebylex|sorted_set|-4|2.8.9|readonly|sortedset|1,1,1|Returns members in a sorted set within a lexicographical range.
zrangebyscore|sorted_set|-4|1.0.5|readonly|sortedset|1,1,1|Returns members in a sorted set within a range of scores.
zrangestore|sorted_set|-5|6.2.0|write,denyoom|sortedset|1,2,1|Stores a range of members from sorted set in a key.
zrank|sorted_set|-3|2.0.0|readonly,fast|sortedset|1,1,1|Returns the index of a member in a sorted set ordered by ascending scores.
zrem|sorted_set|-3|1.2.0|write,fast|sortedset|1,1,1|Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.
zremrangebylex|sorted_set|4|2.8.9|write|sortedset|1,1,1|Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.
zremrangebyrank|sorted_set|4|2.0.0|write|sortedset|1,1,1|Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.
zremrangebyscore|sorted_set|4|1.2.0|write|sortedset|1,1,1|Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.
zrevrange|sorted_set|-4|1.2.0|readonly|sortedset|1,1,1|Returns members in a sorted set within a range of indexes in reverse order.
zrevrangebylex|sorted_set|-4|2.8.9|readonly|sortedset|1,1,1|Returns members in a sorted set within a lexicographical range in reverse order.
zrevrangebyscore|sorted_set|-4|2.2.0|readonly|sortedset|1,1,1|Returns members in a sorted set within a range of scores in reverse order.
zrevrank|sorted_set|-3|2.0.0|readonly,fast|sortedset|1,1,1|Returns the index of a member in a sorted set ordered by descending scores.
zscan|sorted_set|-3|2.8.0|readonly|sortedset|1,1,1|Iterates over members and scores of a sorted set.
zscore|sorted_set|3|1.2.0|readonly,fast|sortedset|1,1,1|Returns the score of a member in a sorted set.
zunion|sorted_set|-3|6.2.0|readonly|sortedset|-|Returns the union of multiple sorted sets.
zunionstore|sorted_set|-4|2.0.0|write,denyoom|sortedset|1,1,1|Stores the union of multiple sorted sets in a key.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("zadd", zadd as Handler),
        ("zincrby", zincrby),
        ("zrem", zrem),
        ("zcard", zcard),
        ("zcount", zcount),
        ("zlexcount", zlexcount),
        ("zscore", zscore),
        ("zmscore", zmscore),
        ("zrank", zrank),
        ("zrevrank", zrevrank),
        ("zrange", zrange),
        ("zrangestore", zrangestore),
        ("zrevrange", zrevrange),
        ("zrangebyscore", zrangebyscore),
        ("zrevrangebyscore", zrevrangebyscore),
        ("zrangebylex", zrangebylex),
        ("zrevrangebylex", zrevrangebylex),
        ("zremrangebyrank", zremrangebyrank),
        ("zremrangebyscore", zremrangebyscore),
        ("zremrangebylex", zremrangebylex),
        ("zpopmin", zpopmin),
        ("zpopmax", zpopmax),
        ("zmpop", zmpop),
        ("zrandmember", zrandmember),
        ("zunion", zunion),
        ("zinter", zinter),
        ("zdiff", zdiff),
        ("zintercard", zintercard),
        ("zunionstore", zunionstore),
        ("zinterstore", zinterstore),
        ("zdiffstore", zdiffstore),
        ("zscan", zscan),
        ("bzpopmin", bzpopmin),
        ("bzpopmax", bzpopmax),
        ("bzmpop", bzmpop),
    ]);
    r.keys.extend_from_slice(&[
        ("zunionstore", keys_dest_numkeys as KeysFn),
        ("zinterstore", keys_dest_numkeys),
        ("zdiffstore", keys_dest_numkeys),
        ("zunion", keys_numkeys),
        ("zinter", keys_numkeys),
        ("zdiff", keys_numkeys),
        ("zintercard", keys_numkeys),
        ("zmpop", keys_numkeys),
        ("bzmpop", keys_bzmpop),
    ]);
}

// ---------------------------------------------------------------------------
// Key finders
// ---------------------------------------------------------------------------

/// Keys at `idx+1 ..= idx+numkeys`, numkeys read at `idx`.
fn numkeys_at(argv: &[&[u8]], idx: usize) -> Option<Vec<usize>> {
    let n = parse_i64(argv.get(idx)?)?;
    if n < 1 || n as u64 > (argv.len() - idx - 1) as u64 {
        return None;
    }
    Some((idx + 1..=idx + n as usize).collect())
}

/// `CMD numkeys key [key ...] ...`
pub fn keys_numkeys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    numkeys_at(argv, 1)
}

/// `BZMPOP timeout numkeys key [key ...] ...`
fn keys_bzmpop(argv: &[&[u8]]) -> Option<Vec<usize>> {
    numkeys_at(argv, 2)
}

/// `CMD destination numkeys key [key ...] ...`
pub fn keys_dest_numkeys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let mut v = vec![1];
    v.extend(numkeys_at(argv, 2)?);
    Some(v)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The listpack limits from the configuration.
pub(crate) fn limits(ctx: &Ctx) -> Limits {
    let c = &ctx.srv.config;
    Limits {
        max_entries: c.num(HOT.zset_max_listpack_entries).max(0) as usize,
        max_value: c.num(HOT.zset_max_listpack_value).max(0) as usize,
    }
}

/// Looks a key up: `Ok(None)` when missing, `Err(())` when it holds
/// another type.
pub(crate) fn zget<'s>(
    sh: &'s mut Shard,
    key: &[u8],
    now: u64,
    touch: bool,
) -> Result<Option<&'s mut ZSetValue>, ()> {
    match strings::lookup(sh, key, now, touch) {
        None => Ok(None),
        Some(e) => match e.heap_value_mut() {
            Some(Value::ZSet(z)) => Ok(Some(z)),
            _ => Err(()),
        },
    }
}

fn reply_double(r: &mut Reply, x: f64) {
    r.double_text(&format_double_inline(x));
}

/// A strict integer argument (`getLongFromObjectOrReply`).
fn arg_long(r: &mut Reply, a: &[u8]) -> Option<i64> {
    let v = parse_i64(a);
    if v.is_none() {
        r.error(err::NOT_INT);
    }
    v
}

/// A bound as C `strtod` reads it (leading spaces, overflow to infinity,
/// empty input = 0), rejecting NaN and trailing bytes.
fn strtod_full(a: &[u8]) -> Option<f64> {
    let start = a
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(a.len());
    let s = &a[start..];
    if s.is_empty() {
        return if start == 0 { Some(0.0) } else { None };
    }
    if let Some(v) = parse_f64(s) {
        return Some(v);
    }
    let t = std::str::from_utf8(s).ok()?;
    let lower = t.to_ascii_lowercase();
    if lower.contains("nan") {
        return None;
    }
    t.parse::<f64>().ok().filter(|v| !v.is_nan())
}

fn parse_score_bound(a: &[u8]) -> Option<ScoreBound> {
    match a.first() {
        Some(b'(') => Some(ScoreBound {
            value: strtod_full(&a[1..])?,
            excl: true,
        }),
        _ => Some(ScoreBound {
            value: strtod_full(a)?,
            excl: false,
        }),
    }
}

const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";

/// The members of a plain set, for the set algebra commands.
///
/// NOTE: the set type is built on another branch; until it exposes its
/// members this sees every set as empty (see the family report).
fn set_members(s: &SetValue) -> Vec<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY / ZREM / ZCARD / ZSCORE / ZMSCORE / ZRANK
// ---------------------------------------------------------------------------

fn zadd(ctx: &mut Ctx, argv: &[&[u8]]) {
    zadd_generic(ctx, argv, false)
}

fn zincrby(ctx: &mut Ctx, argv: &[&[u8]]) {
    zadd_generic(ctx, argv, true)
}

fn zadd_generic(ctx: &mut Ctx, argv: &[&[u8]], zincrby: bool) {
    let mut f = AddFlags {
        incr: zincrby,
        ..Default::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < argv.len() {
        let a = argv[idx];
        // Scores come next and never spell a flag: compare in place, no
        // lowercased copy per argument.
        if a.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if a.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if a.eq_ignore_ascii_case(b"ch") {
            ch = true;
        } else if a.eq_ignore_ascii_case(b"incr") {
            f.incr = true;
        } else if a.eq_ignore_ascii_case(b"gt") {
            f.gt = true;
        } else if a.eq_ignore_ascii_case(b"lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let lim = limits(ctx);
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let elements = argv.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return r.error(err::SYNTAX);
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return r.error("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return r.error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && elements > 1 {
        return r.error("ERR INCR option supports a single increment-element pair");
    }
    // All scores are checked before anything is added (Redis does too).
    let mut scores: SmallVec<[f64; 4]> = SmallVec::with_capacity(elements);
    for j in 0..elements {
        match parse_f64(argv[idx + 2 * j]) {
            Some(s) => scores.push(s),
            None => return r.error(err::NOT_FLOAT),
        }
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut created = None;
    let z = match zget(sh, key, now, true) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(Some(z)) => {
            z.maybe_convert(elements, lim);
            z
        }
        Ok(None) => {
            if f.xx {
                return if f.incr { r.null() } else { r.int(0) };
            }
            created = Some(ZSetValue::with_hint(elements, argv[idx + 1].len(), lim));
            created.as_mut().unwrap()
        }
    };
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut score = 0.0;
    let mut nan = false;
    for (j, &s) in scores.iter().enumerate() {
        match z.add(s, argv[idx + 1 + 2 * j], f, lim) {
            Err(()) => {
                nan = true;
                break;
            }
            Ok(o) => match o {
                AddOutcome::Added(x) => {
                    added += 1;
                    processed += 1;
                    score = x;
                }
                AddOutcome::Updated(x) => {
                    updated += 1;
                    processed += 1;
                    score = x;
                }
                AddOutcome::Same(x) => {
                    processed += 1;
                    score = x;
                }
                AddOutcome::Nop => {}
            },
        }
    }
    if let Some(z) = created {
        if !z.is_empty() {
            sh.insert(key, Value::ZSet(z), None);
        }
    }
    if nan {
        ctx.srv.add_dirty((added + updated) as u64);
        return r.error("ERR resulting score is not a number (NaN)");
    }
    ctx.srv.add_dirty((added + updated) as u64);
    if f.incr {
        if processed > 0 {
            reply_double(&mut r, score);
        } else {
            r.null();
        }
    } else {
        r.int(if ch { added + updated } else { added });
    }
}

fn zrem(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let z = match zget(sh, argv[1], now, true) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(z)) => z,
    };
    let mut deleted = 0;
    for m in &argv[2..] {
        if z.remove(m).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if z.is_empty() {
        sh.remove(argv[1]);
    }
    ctx.srv.add_dirty(deleted as u64);
    r.int(deleted);
}

fn zcard(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match zget(sh, argv[1], now, touch) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => {
            ctx.srv.stats.hit(false);
            r.int(0)
        }
        Ok(Some(z)) => {
            ctx.srv.stats.hit(true);
            r.int(z.len() as i64)
        }
    }
}

fn zscore(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match zget(sh, argv[1], now, touch) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => {
            ctx.srv.stats.hit(false);
            r.null()
        }
        Ok(Some(z)) => {
            ctx.srv.stats.hit(true);
            match z.score(argv[2]) {
                Some(s) => reply_double(&mut r, s),
                None => r.null(),
            }
        }
    }
}

fn zmscore(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let z = match zget(sh, argv[1], now, touch) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    ctx.srv.stats.hit(z.is_some());
    r.array(argv.len() - 2);
    for m in &argv[2..] {
        match z.as_ref().and_then(|z| z.score(m)) {
            Some(s) => reply_double(&mut r, s),
            None => r.null(),
        }
    }
}

fn zrank(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrank_generic(ctx, argv, false)
}

fn zrevrank(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrank_generic(ctx, argv, true)
}

fn zrank_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    if argv.len() > 4 {
        return r.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            if rev { "zrevrank" } else { "zrank" }
        ));
    }
    let withscore = argv.len() == 4;
    if withscore && !argv[3].eq_ignore_ascii_case(b"withscore") {
        return r.error(err::SYNTAX);
    }
    let sh = ctx.locks.shard(db, argv[1]);
    let z = match zget(sh, argv[1], now, touch) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    ctx.srv.stats.hit(z.is_some());
    let found = z.and_then(|z| {
        z.rank(argv[2])
            .map(|(i, s)| (if rev { z.len() - 1 - i } else { i }, s))
    });
    match found {
        None if withscore => r.null_array(),
        None => r.null(),
        Some((i, s)) => {
            if withscore {
                r.array(2);
                r.int(i as i64);
                reply_double(&mut r, s);
            } else {
                r.int(i as i64);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Ranges
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

fn zrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Auto, Dir::Auto)
}

fn zrangestore(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 2, Some(argv[1]), RangeType::Auto, Dir::Auto)
}

fn zrevrange(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Rank, Dir::Rev)
}

fn zrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Score, Dir::Fwd)
}

fn zrevrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Score, Dir::Rev)
}

fn zrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Lex, Dir::Fwd)
}

fn zrevrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) {
    zrange_generic(ctx, argv, 1, None, RangeType::Lex, Dir::Rev)
}

/// Parsed range bounds.
enum Bounds {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// Which elements a range selects: `n` elements starting at ascending
/// index `start`, going down when `rev`.
fn select(z: &ZSetValue, b: &Bounds, rev: bool, offset: i64, limit: i64) -> (usize, usize) {
    let len = z.len() as i64;
    match b {
        Bounds::Rank(s, e) => {
            let (mut s, mut e) = (*s, *e);
            if s < 0 {
                s += len;
            }
            if e < 0 {
                e += len;
            }
            if s < 0 {
                s = 0;
            }
            if s > e || s >= len {
                return (0, 0);
            }
            if e >= len {
                e = len - 1;
            }
            let n = (e - s + 1) as usize;
            if rev {
                ((len - 1 - s) as usize, n)
            } else {
                (s as usize, n)
            }
        }
        Bounds::Score(..) | Bounds::Lex(..) => {
            if offset > 0 && offset >= len {
                return (0, 0);
            }
            let (lo, hi) = match b {
                Bounds::Score(min, max) => z.score_range(*min, *max),
                Bounds::Lex(min, max) => z.lex_range(min, max),
                Bounds::Rank(..) => unreachable!(),
            };
            let avail = (hi - lo) as i64;
            if offset < 0 || offset >= avail {
                return (0, 0);
            }
            let mut n = avail - offset;
            if limit >= 0 {
                n = n.min(limit);
            }
            if n == 0 {
                return (0, 0);
            }
            if rev {
                (hi - 1 - offset as usize, n as usize)
            } else {
                (lo + offset as usize, n as usize)
            }
        }
    }
}

fn zrange_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    start: usize,
    store: Option<&[u8]>,
    mut rtype: RangeType,
    mut dir: Dir,
) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let lim = limits(ctx);
    let proto = ctx.client.proto;
    let key = argv[start];
    let (mut minidx, mut maxidx) = (start + 1, start + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    {
        let mut r = Reply::new(ctx.out, proto);
        let mut j = start + 3;
        while j < argv.len() {
            let left = argv.len() - j - 1;
            let a = argv[j];
            if store.is_none() && a.eq_ignore_ascii_case(b"withscores") {
                withscores = true;
            } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
                let Some(o) = arg_long(&mut r, argv[j + 1]) else {
                    return;
                };
                let Some(l) = arg_long(&mut r, argv[j + 2]) else {
                    return;
                };
                (offset, limit) = (o, l);
                j += 2;
            } else if dir == Dir::Auto && a.eq_ignore_ascii_case(b"rev") {
                dir = Dir::Rev;
            } else if rtype == RangeType::Auto && a.eq_ignore_ascii_case(b"bylex") {
                rtype = RangeType::Lex;
            } else if rtype == RangeType::Auto && a.eq_ignore_ascii_case(b"byscore") {
                rtype = RangeType::Score;
            } else {
                return r.error(err::SYNTAX);
            }
            j += 1;
        }
        if dir == Dir::Auto {
            dir = Dir::Fwd;
        }
        if rtype == RangeType::Auto {
            rtype = RangeType::Rank;
        }
        if limit != -1 && rtype == RangeType::Rank {
            return r.error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            );
        }
        if withscores && rtype == RangeType::Lex {
            return r.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        }
        if dir == Dir::Rev && rtype != RangeType::Rank {
            std::mem::swap(&mut minidx, &mut maxidx);
        }
    }
    let mut r = Reply::new(ctx.out, proto);
    let bounds = match rtype {
        RangeType::Rank | RangeType::Auto => {
            let Some(s) = arg_long(&mut r, argv[minidx]) else {
                return;
            };
            let Some(e) = arg_long(&mut r, argv[maxidx]) else {
                return;
            };
            Bounds::Rank(s, e)
        }
        RangeType::Score => {
            match (
                parse_score_bound(argv[minidx]),
                parse_score_bound(argv[maxidx]),
            ) {
                (Some(a), Some(b)) => Bounds::Score(a, b),
                _ => return r.error(ERR_MINMAX_FLOAT),
            }
        }
        RangeType::Lex => match (LexBound::parse(argv[minidx]), LexBound::parse(argv[maxidx])) {
            (Some(a), Some(b)) => Bounds::Lex(a, b),
            _ => return r.error(ERR_MINMAX_LEX),
        },
    };
    let rev = dir == Dir::Rev;
    let sh = ctx.locks.shard(db, key);
    let z = match zget(sh, key, now, touch) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    if store.is_none() {
        ctx.srv.stats.hit(z.is_some());
    }
    let Some(dst) = store else {
        let Some(z) = z else {
            return r.array(0);
        };
        let (first, n) = select(z, &bounds, rev, offset, limit);
        let resp3 = r.is_resp3();
        r.array(if withscores && !resp3 { n * 2 } else { n });
        z.range(first, n, rev, |m, s| {
            if withscores && resp3 {
                r.array(2);
            }
            r.bulk(m);
            if withscores {
                reply_double(&mut r, s);
            }
        });
        return;
    };
    // ZRANGESTORE: collect, then write the destination.
    let mut out = match &z {
        Some(z) => {
            let (first, n) = select(z, &bounds, rev, offset, limit);
            let hint = if matches!(bounds, Bounds::Rank(..)) {
                n
            } else {
                0
            };
            let mut d = ZSetValue::with_hint(hint, 0, lim);
            let mut items = Vec::with_capacity(n);
            z.range(first, n, rev, |m, s| items.push((m.to_vec(), s)));
            for (m, s) in items {
                d.insert_new(&m, s, lim);
            }
            d
        }
        None => ZSetValue::default(),
    };
    store_result(ctx, dst, std::mem::take(&mut out));
}

/// Stores a computed zset at `dst` (deleting `dst` when it is empty) and
/// replies with its size.
fn store_result(ctx: &mut Ctx, dst: &[u8], z: ZSetValue) {
    let db = ctx.client.db;
    let n = z.len();
    let sh = ctx.locks.shard(db, dst);
    if n > 0 {
        sh.insert(dst, Value::ZSet(z), None);
        ctx.srv.add_dirty(1);
    } else if sh.remove(dst).is_some() {
        ctx.srv.add_dirty(1);
    }
    ctx.r().int(n as i64);
}

fn zcount(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let (Some(min), Some(max)) = (parse_score_bound(argv[2]), parse_score_bound(argv[3])) else {
        return r.error(ERR_MINMAX_FLOAT);
    };
    let sh = ctx.locks.shard(db, argv[1]);
    match zget(sh, argv[1], now, touch) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => {
            ctx.srv.stats.hit(false);
            r.int(0)
        }
        Ok(Some(z)) => {
            ctx.srv.stats.hit(true);
            let (lo, hi) = z.score_range(min, max);
            r.int((hi - lo) as i64)
        }
    }
}

fn zlexcount(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let (Some(min), Some(max)) = (LexBound::parse(argv[2]), LexBound::parse(argv[3])) else {
        return r.error(ERR_MINMAX_LEX);
    };
    let sh = ctx.locks.shard(db, argv[1]);
    match zget(sh, argv[1], now, touch) {
        Err(()) => r.error(err::WRONGTYPE),
        Ok(None) => {
            ctx.srv.stats.hit(false);
            r.int(0)
        }
        Ok(Some(z)) => {
            ctx.srv.stats.hit(true);
            let (lo, hi) = z.lex_range(&min, &max);
            r.int((hi - lo) as i64)
        }
    }
}

fn zremrangebyrank(ctx: &mut Ctx, argv: &[&[u8]]) {
    zremrange_generic(ctx, argv, RangeType::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx, argv: &[&[u8]]) {
    zremrange_generic(ctx, argv, RangeType::Score)
}

fn zremrangebylex(ctx: &mut Ctx, argv: &[&[u8]]) {
    zremrange_generic(ctx, argv, RangeType::Lex)
}

fn zremrange_generic(ctx: &mut Ctx, argv: &[&[u8]], t: RangeType) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let bounds = match t {
        RangeType::Score => match (parse_score_bound(argv[2]), parse_score_bound(argv[3])) {
            (Some(a), Some(b)) => Bounds::Score(a, b),
            _ => return r.error(ERR_MINMAX_FLOAT),
        },
        RangeType::Lex => match (LexBound::parse(argv[2]), LexBound::parse(argv[3])) {
            (Some(a), Some(b)) => Bounds::Lex(a, b),
            _ => return r.error(ERR_MINMAX_LEX),
        },
        _ => {
            let Some(s) = arg_long(&mut r, argv[2]) else {
                return;
            };
            let Some(e) = arg_long(&mut r, argv[3]) else {
                return;
            };
            Bounds::Rank(s, e)
        }
    };
    let sh = ctx.locks.shard(db, argv[1]);
    let z = match zget(sh, argv[1], now, true) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => return r.int(0),
        Ok(Some(z)) => z,
    };
    let (first, n) = select(z, &bounds, false, 0, -1);
    let deleted = z.remove_range(first, first + n);
    if z.is_empty() {
        sh.remove(argv[1]);
    }
    ctx.srv.add_dirty(deleted as u64);
    r.int(deleted as i64);
}

// ---------------------------------------------------------------------------
// Pops
// ---------------------------------------------------------------------------

/// How a pop reply is shaped (Redis's `genericZpopCommand` flags).
#[derive(Clone, Copy)]
pub struct PopShape {
    /// Include the key name (BZPOP*, ZMPOP, BZMPOP).
    pub emit_key: bool,
    /// Pairs as nested arrays.
    pub nested: bool,
    /// Reply a null array when no key has elements (ZMPOP, BZMPOP).
    pub nil_when_empty: bool,
}

/// Outcome of [`pop_reply`].
#[derive(Debug, PartialEq)]
pub enum PopResult {
    /// Popped from the key at this index of `keys`.
    Popped(usize),
    /// No key held elements (the empty reply was written).
    Empty,
    /// WRONGTYPE was replied.
    WrongType,
}

/// The core of ZPOPMIN, ZPOPMAX, ZMPOP (and later BZPOPMIN, BZPOPMAX,
/// BZMPOP): pops up to `count` elements (`None` = a plain single pop) from
/// the first non-empty key among `keys`, writes the reply and deletes a
/// key left empty. The caller holds the keys' shards.
pub fn pop_reply(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    count: Option<usize>,
    shape: PopShape,
) -> PopResult {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    for (i, key) in keys.iter().enumerate() {
        let sh = ctx.locks.shard(db, key);
        let mut r = Reply::new(ctx.out, ctx.client.proto);
        let z = match zget(sh, key, now, true) {
            Err(()) => {
                r.error(err::WRONGTYPE);
                return PopResult::WrongType;
            }
            Ok(None) => continue,
            Ok(Some(z)) => z,
        };
        if count == Some(0) {
            r.array(0);
            return PopResult::Popped(i);
        }
        let items = z.pop(count.unwrap_or(1), max);
        if z.is_empty() {
            sh.remove(key);
        }
        ctx.srv.add_dirty(items.len() as u64);
        let n = items.len();
        match (shape.nested, shape.emit_key) {
            (false, false) => r.array(n * 2),
            (true, false) => r.array(n),
            (false, true) => {
                r.array(n * 2 + 1);
                r.bulk(key);
            }
            (true, true) => {
                r.array(2);
                r.bulk(key);
                r.array(n);
            }
        }
        for (m, s) in items {
            if shape.nested {
                r.array(2);
            }
            r.bulk(&m);
            reply_double(&mut r, s);
        }
        // ZMPOP and the blocking pops propagate as the plain pop.
        let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        ctx.propagate_as(&[name, key, &super::propagate::num(n)]);
        return PopResult::Popped(i);
    }
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    if shape.nil_when_empty {
        r.null_array();
    } else {
        r.array(0);
    }
    PopResult::Empty
}

fn zpopmin(ctx: &mut Ctx, argv: &[&[u8]]) {
    zpop_minmax(ctx, argv, false)
}

fn zpopmax(ctx: &mut Ctx, argv: &[&[u8]]) {
    zpop_minmax(ctx, argv, true)
}

fn zpop_minmax(ctx: &mut Ctx, argv: &[&[u8]], max: bool) {
    if argv.len() > 3 {
        return ctx.error(err::SYNTAX);
    }
    let mut count = None;
    if argv.len() == 3 {
        match parse_i64(argv[2]) {
            None => return ctx.error(err::NOT_INT),
            Some(n) if n < 0 => return ctx.error("ERR value is out of range, must be positive"),
            Some(n) => count = Some(n as usize),
        }
    }
    let nested = ctx.r().is_resp3() && count.is_some();
    let shape = PopShape {
        emit_key: false,
        nested,
        nil_when_empty: false,
    };
    pop_reply(ctx, &argv[1..2], max, count, shape);
}

/// Parses `numkeys key [key ...] MIN|MAX [COUNT count]` starting at
/// `numkeys_idx`: returns (first key index, number of keys, max, count) or
/// the error text.
pub fn zmpop_parse(
    argv: &[&[u8]],
    numkeys_idx: usize,
) -> Result<(usize, usize, bool, usize), &'static str> {
    let numkeys = match parse_i64(argv[numkeys_idx]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err("ERR numkeys should be greater than 0"),
    };
    let where_idx = numkeys_idx as u64 + numkeys + 1;
    if where_idx >= argv.len() as u64 {
        return Err(err::SYNTAX);
    }
    let where_idx = where_idx as usize;
    let max = match argv[where_idx].to_ascii_lowercase().as_slice() {
        b"min" => false,
        b"max" => true,
        _ => return Err(err::SYNTAX),
    };
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if count.is_none() && argv[j].eq_ignore_ascii_case(b"count") && more > 0 {
            j += 1;
            match parse_i64(argv[j]) {
                Some(n) if n >= 1 => count = Some(n as usize),
                _ => return Err("ERR count should be greater than 0"),
            }
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok((numkeys_idx + 1, numkeys as usize, max, count.unwrap_or(1)))
}

fn zmpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    match zmpop_parse(argv, 1) {
        Err(e) => ctx.error(e),
        Ok((first, n, max, count)) => {
            let shape = PopShape {
                emit_key: true,
                nested: true,
                nil_when_empty: true,
            };
            pop_reply(ctx, &argv[first..first + n], max, Some(count), shape);
        }
    }
}

// ---------------------------------------------------------------------------
// BZPOPMIN / BZPOPMAX / BZMPOP
// ---------------------------------------------------------------------------

/// Pops like the non-blocking form; when every key is empty, parks the
/// client (or, inside MULTI, replies as if the timeout had passed).
fn blocking_pop(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    keys: &[&[u8]],
    timeout: &[u8],
    max: bool,
    count: Option<usize>,
    shape: PopShape,
) {
    let timeout = match super::blocking::parse_timeout(timeout) {
        Ok(t) => t,
        Err(e) => return ctx.error(e),
    };
    let start = ctx.out.len();
    if pop_reply(ctx, keys, max, count, shape) != PopResult::Empty {
        return;
    }
    ctx.out.truncate(start);
    if super::blocking::can_block(ctx) {
        super::blocking::block(
            ctx,
            argv,
            keys,
            timeout,
            super::blocking::TimeoutReply::NullArray,
        );
    } else {
        ctx.r().null_array();
    }
}

fn bzpopmin(ctx: &mut Ctx, argv: &[&[u8]]) {
    bzpop(ctx, argv, false)
}

fn bzpopmax(ctx: &mut Ctx, argv: &[&[u8]]) {
    bzpop(ctx, argv, true)
}

fn bzpop(ctx: &mut Ctx, argv: &[&[u8]], max: bool) {
    let keys = &argv[1..argv.len() - 1];
    let shape = PopShape {
        emit_key: true,
        nested: false,
        nil_when_empty: true,
    };
    blocking_pop(ctx, argv, keys, argv[argv.len() - 1], max, None, shape);
}

fn bzmpop(ctx: &mut Ctx, argv: &[&[u8]]) {
    match zmpop_parse(argv, 2) {
        Err(e) => ctx.error(e),
        Ok((first, n, max, count)) => {
            let shape = PopShape {
                emit_key: true,
                nested: true,
                nil_when_empty: true,
            };
            blocking_pop(
                ctx,
                argv,
                &argv[first..first + n],
                argv[1],
                max,
                Some(count),
                shape,
            );
        }
    }
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let mut count = None;
    let mut withscores = false;
    if argv.len() >= 3 {
        let l = match parse_i64(argv[2]) {
            None => return r.error(err::NOT_INT),
            Some(i64::MIN) => {
                return r.error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Some(l) => l,
        };
        if argv.len() > 4 || (argv.len() == 4 && !argv[3].eq_ignore_ascii_case(b"withscores")) {
            return r.error(err::SYNTAX);
        }
        if argv.len() == 4 {
            withscores = true;
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                return r.error("ERR value is out of range");
            }
        }
        count = Some(l);
    }
    let sh = ctx.locks.shard(db, argv[1]);
    let z = match zget(sh, argv[1], now, touch) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(z) => z,
    };
    ctx.srv.stats.hit(z.is_some());
    let mut rng = rand::thread_rng();
    let Some(count) = count else {
        match z {
            None => r.null(),
            Some(z) => r.bulk(z.random(&mut rng).0),
        }
        return;
    };
    let Some(z) = z else {
        return r.array(0);
    };
    let resp3 = r.is_resp3();
    let emit = |r: &mut Reply, m: &[u8], s: f64| {
        if withscores && resp3 {
            r.array(2);
        }
        r.bulk(m);
        if withscores {
            reply_double(r, s);
        }
    };
    let size = z.len();
    let header = |r: &mut Reply, n: usize| r.array(if withscores && !resp3 { n * 2 } else { n });
    if count == 0 {
        return r.array(0);
    }
    if count < 0 {
        // Repetitions allowed.
        let n = count.unsigned_abs() as usize;
        header(&mut r, n);
        for _ in 0..n {
            let (m, s) = z.random(&mut rng);
            emit(&mut r, m, s);
        }
        return;
    }
    let count = count as usize;
    if count >= size {
        header(&mut r, size);
        z.for_each(|m, s| emit(&mut r, m, s));
        return;
    }
    // Distinct random indexes.
    use rand::seq::index;
    let picks = index::sample(&mut rng, size, count);
    header(&mut r, count);
    for i in picks.iter() {
        let (m, s) = z.get(i);
        emit(&mut r, m, s);
    }
}

// ---------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF (+STORE) / ZINTERCARD
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq)]
enum Aggr {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, v: f64, a: Aggr) {
    match a {
        Aggr::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggr::Min => {
            if v < *target {
                *target = v
            }
        }
        Aggr::Max => {
            if v > *target {
                *target = v
            }
        }
    }
}

fn zunion(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, None, 1, SetOp::Union, false)
}
fn zinter(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, None, 1, SetOp::Inter, false)
}
fn zdiff(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, None, 1, SetOp::Diff, false)
}
fn zintercard(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, None, 1, SetOp::Inter, true)
}
fn zunionstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, Some(argv[1]), 2, SetOp::Union, false)
}
fn zinterstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, Some(argv[1]), 2, SetOp::Inter, false)
}
fn zdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    setop_generic(ctx, argv, Some(argv[1]), 2, SetOp::Diff, false)
}

/// What a source key holds, for the set algebra.
#[derive(Clone, Copy, PartialEq)]
enum SrcKind {
    Missing,
    ZSet,
    Set,
}

/// Looks a member up in a source: Some(score) when present (plain set
/// members score 1).
fn src_score(
    ctx: &mut Ctx,
    key: &[u8],
    kind: SrcKind,
    m: &[u8],
    set_cache: &mut Option<hashbrown::HashSet<Vec<u8>>>,
) -> Option<f64> {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    match kind {
        SrcKind::Missing => None,
        SrcKind::ZSet => {
            let sh = ctx.locks.shard(db, key);
            match zget(sh, key, now, false) {
                Ok(Some(z)) => z.score(m),
                _ => None,
            }
        }
        SrcKind::Set => {
            if set_cache.is_none() {
                let members = read_source(ctx, key, kind);
                *set_cache = Some(members.into_iter().map(|(m, _)| m).collect());
            }
            set_cache.as_ref().unwrap().contains(m).then_some(1.0)
        }
    }
}

/// Reads a whole source as (member, score) pairs.
fn read_source(ctx: &mut Ctx, key: &[u8], kind: SrcKind) -> Vec<(Vec<u8>, f64)> {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, key);
    match (kind, sh.get_mut(key, now).and_then(|e| e.heap_value_mut())) {
        (SrcKind::ZSet, Some(Value::ZSet(z))) => z.to_vec(),
        (SrcKind::Set, Some(Value::Set(s))) => {
            set_members(s).into_iter().map(|m| (m, 1.0)).collect()
        }
        _ => Vec::new(),
    }
}

fn setop_generic(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let lim = limits(ctx);
    let proto = ctx.client.proto;
    let mut r = Reply::new(ctx.out, proto);
    let Some(setnum) = arg_long(&mut r, argv[numkeys_idx]) else {
        return;
    };
    if setnum < 1 {
        let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
        return r.error(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
    }
    if setnum as u64 > (argv.len() - numkeys_idx - 1) as u64 {
        return r.error(err::SYNTAX);
    }
    let setnum = setnum as usize;
    let keys = &argv[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    // Types and sizes first (WRONGTYPE before option errors, like Redis).
    let mut srcs: Vec<(usize, SrcKind, usize, f64)> = Vec::with_capacity(setnum);
    for (i, key) in keys.iter().enumerate() {
        let sh = ctx.locks.shard(db, key);
        let (kind, len) = match strings::lookup(sh, key, now, true).map(|e| e.heap_value_mut()) {
            None => (SrcKind::Missing, 0),
            Some(Some(Value::ZSet(z))) => (SrcKind::ZSet, z.len()),
            Some(Some(Value::Set(s))) => (SrcKind::Set, s.len()),
            Some(_) => {
                return ctx.error(err::WRONGTYPE);
            }
        };
        srcs.push((i, kind, len, 1.0));
    }
    let mut r = Reply::new(ctx.out, proto);
    let mut aggr = Aggr::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_idx + 1 + setnum;
    while j < argv.len() {
        let remaining = argv.len() - j;
        let a = argv[j].to_ascii_lowercase();
        if op != SetOp::Diff && !card_only && remaining > setnum && a == b"weights" {
            j += 1;
            for s in srcs.iter_mut() {
                match parse_f64(argv[j]) {
                    Some(w) => s.3 = w,
                    None => return r.error("ERR weight value is not a float"),
                }
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && a == b"aggregate" {
            aggr = match argv[j + 1].to_ascii_lowercase().as_slice() {
                b"sum" => Aggr::Sum,
                b"min" => Aggr::Min,
                b"max" => Aggr::Max,
                _ => return r.error(err::SYNTAX),
            };
            j += 2;
        } else if dst.is_none() && !card_only && a == b"withscores" {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && a == b"limit" {
            match parse_i64(argv[j + 1]) {
                None => return r.error("ERR LIMIT can't be negative"),
                Some(n) if n < 0 => return r.error("ERR LIMIT can't be negative"),
                Some(n) => limit = n as usize,
            }
            j += 2;
        } else {
            return r.error(err::SYNTAX);
        }
    }
    if op != SetOp::Diff {
        srcs.sort_by_key(|s| s.2);
    }
    let mut result: Vec<(Vec<u8>, f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            if srcs[0].2 > 0 {
                let first = read_source(ctx, keys[srcs[0].0], srcs[0].1);
                let mut caches: Vec<Option<hashbrown::HashSet<Vec<u8>>>> =
                    (0..srcs.len()).map(|_| None).collect();
                'outer: for (m, s0) in first {
                    let mut score = srcs[0].3 * s0;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for k in 1..srcs.len() {
                        let (ki, kind, _, w) = srcs[k];
                        match src_score(ctx, keys[ki], kind, &m, &mut caches[k]) {
                            Some(v) => aggregate(&mut score, v * w, aggr),
                            None => continue 'outer,
                        }
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((m, score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: hashbrown::HashMap<Vec<u8>, f64> = hashbrown::HashMap::new();
            for &(ki, kind, len, w) in &srcs {
                if len == 0 {
                    continue;
                }
                for (m, s) in read_source(ctx, keys[ki], kind) {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.entry(m) {
                        hashbrown::hash_map::Entry::Occupied(mut o) => {
                            aggregate(o.get_mut(), score, aggr)
                        }
                        hashbrown::hash_map::Entry::Vacant(v) => {
                            v.insert(score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            if srcs[0].2 > 0 {
                let first = read_source(ctx, keys[0], srcs[0].1);
                let mut caches: Vec<Option<hashbrown::HashSet<Vec<u8>>>> =
                    (0..srcs.len()).map(|_| None).collect();
                'next: for (m, s) in first {
                    for k in 1..srcs.len() {
                        let (ki, kind, len, _) = srcs[k];
                        if len == 0 {
                            continue;
                        }
                        if src_score(ctx, keys[ki], kind, &m, &mut caches[k]).is_some() {
                            continue 'next;
                        }
                    }
                    result.push((m, s));
                }
            }
        }
    }
    if card_only {
        return ctx.r().int(cardinality as i64);
    }
    // Sort like the skiplist would.
    result.sort_by(|a, b| match a.1.partial_cmp(&b.1) {
        Some(std::cmp::Ordering::Equal) | None => a.0.cmp(&b.0),
        Some(o) => o,
    });
    match dst {
        Some(dst) => {
            // Redis builds a skiplist and converts it back when it fits:
            // the same as inserting under the limits.
            let mut z = ZSetValue::default();
            for (m, s) in &result {
                z.insert_new(m, *s, lim);
            }
            store_result(ctx, dst, z);
        }
        None => {
            let mut r = ctx.r();
            let resp3 = r.is_resp3();
            r.array(if withscores && !resp3 {
                result.len() * 2
            } else {
                result.len()
            });
            for (m, s) in &result {
                if withscores && resp3 {
                    r.array(2);
                }
                r.bulk(m);
                if withscores {
                    reply_double(&mut r, *s);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------

fn zscan(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(cursor) = strutil::parse_u64(argv[2]) else {
        return r.error("ERR invalid cursor");
    };
    let sh = ctx.locks.shard(db, argv[1]);
    let z = match zget(sh, argv[1], now, touch) {
        Err(()) => return r.error(err::WRONGTYPE),
        Ok(None) => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Ok(Some(z)) => z,
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < argv.len() {
        let has_next = i + 1 < argv.len();
        match argv[i].to_ascii_lowercase().as_slice() {
            b"count" if has_next => match parse_i64(argv[i + 1]) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return r.error(err::SYNTAX),
                None => return r.error(err::NOT_INT),
            },
            b"match" if has_next => pattern = Some(argv[i + 1]).filter(|p| *p != b"*"),
            _ => return r.error(err::SYNTAX),
        }
        i += 2;
    }
    let mut items: Vec<(Vec<u8>, f64)> = Vec::new();
    let next = z.scan(cursor, count, |m, s| {
        if pattern.is_none_or(|p| strutil::glob_match(p, m, false)) {
            items.push((m.to_vec(), s));
        }
    });
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(items.len() * 2);
    for (m, s) in &items {
        r.bulk(m);
        r.bulk(&format_double_inline(*s));
    }
}
