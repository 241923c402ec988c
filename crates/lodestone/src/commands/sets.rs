//! The set family (Redis's `t_set.c`): SADD, SREM, SCARD, SISMEMBER,
//! SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP, SMOVE, SINTER, SINTERCARD,
//! SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN.
//!
//! Encodings and their conversions live in `keyspace::types::set`; this
//! module follows Redis's command logic: argument validation order, reply
//! shapes (sets are `~` in RESP3), which encoding STORE results and SPOP
//! leave behind, and deleting keys whose set became empty.

use super::strings::lookup;
use super::{err, Ctx, Handler, KeysFn, Registry};
use crate::config::HOT;
use crate::keyspace::types::set::{Elem, Limits, Owned, SetValue};
use crate::keyspace::{Shard, Value};
use crate::server::lazyfree;
use rand::seq::SliceRandom;
use resp::reply::Aggregate;
use resp::Reply;
use strutil::{glob_match, parse_i64};

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
sadd|set|-3|1.0.0|write,denyoom,fast|set|1,1,1|Adds one or more members to a set. Creates the key if it doesn't exist.
srem|set|-3|1.0.0|write,fast|set|1,1,1|Removes one or more members from a set. Deletes the set if the last member was removed.
scard|set|2|1.0.0|readonly,fast|set|1,1,1|Returns the number of members in a set.
sismember|set|3|1.0.0|readonly,fast|set|1,1,1|Determines whether a member belongs to a set.
smismember|set|-3|6.2.0|readonly,fast|set|1,1,1|Determines whether multiple members belong to a set.
smembers|set|2|1.0.0|readonly|set|1,1,1|Returns all members of a set.
srandmember|set|-2|1.0.0|readonly|set|1,1,1|Get one or multiple random members from a set
spop|set|-2|1.0.0|write,fast|set|1,1,1|Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.
smove|set|4|1.0.0|write,fast|set|1,2,1|Moves a member from one set to another.
sinter|set|-2|1.0.0|readonly|set|1,-1,1|Returns the intersect of multiple sets.
sintercard|set|-3|7.0.0|readonly|set|-|Returns the number of members of the intersect of multiple sets.
sinterstore|set|-3|1.0.0|write,denyoom|set|1,-1,1|Stores the intersect of multiple sets in a key.
sunion|set|-2|1.0.0|readonly|set|1,-1,1|Returns the union of multiple sets.
sunionstore|set|-3|1.0.0|write,denyoom|set|1,-1,1|Stores the union of multiple sets in a key.
sdiff|set|-2|1.0.0|readonly|set|1,-1,1|Returns the difference of multiple sets.
sdiffstore|set|-3|1.0.0|write,denyoom|set|1,-1,1|Stores the difference of multiple sets in a key.
sscan|set|-3|2.8.0|readonly|set|1,1,1|Iterates over members of a set.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("sadd", sadd as Handler),
        ("srem", srem),
        ("scard", scard),
        ("sismember", sismember),
        ("smismember", smismember),
        ("smembers", smembers),
        ("srandmember", srandmember),
        ("spop", spop),
        ("smove", smove),
        ("sinter", sinter),
        ("sintercard", sintercard),
        ("sinterstore", sinterstore),
        ("sunion", sunion),
        ("sunionstore", sunionstore),
        ("sdiff", sdiff),
        ("sdiffstore", sdiffstore),
        ("sscan", sscan),
    ]);
    r.keys.push(("sintercard", sintercard_keys as KeysFn));
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: keys follow numkeys.
fn sintercard_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let n = parse_i64(argv.get(1)?)?;
    if n < 1 || n as usize > argv.len() - 2 {
        return None;
    }
    Some((2..2 + n as usize).collect())
}

fn limits(ctx: &Ctx) -> Limits {
    let c = &ctx.srv.config;
    Limits {
        intset_entries: c.num(HOT.set_max_intset_entries).max(0) as usize,
        lp_entries: c.num(HOT.set_max_listpack_entries).max(0) as usize,
        lp_value: c.num(HOT.set_max_listpack_value).max(0) as usize,
    }
}

/// A key looked up as a set.
enum Found<'a> {
    Missing,
    Set(&'a mut SetValue),
    WrongType,
}

fn find<'a>(sh: &'a mut Shard, key: &[u8], now: u64, touch: bool) -> Found<'a> {
    match lookup(sh, key, now, touch) {
        None => Found::Missing,
        Some(e) => match e.heap_value_mut() {
            Some(Value::Set(s)) => Found::Set(s),
            _ => Found::WrongType,
        },
    }
}

/// Looks `key` up in the client's db (LRU touched unless CLIENT NO-TOUCH).
fn find_key<'a>(ctx: &'a mut Ctx, key: &[u8]) -> Found<'a> {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    find(ctx.locks.shard(db, key), key, now, touch)
}

/// Reads several keys as sets at once and runs `f` on them (None for a
/// missing key). Replies WRONGTYPE and returns None at the first key that
/// is not a set, as Redis does.
///
/// `Locks` hands out one `&mut Shard` at a time, so the sets are held as
/// raw pointers while every shard stays locked. They stay valid: a set
/// lives in its entry's heap box, and the only mutation until `f` returns
/// is lazy expiry of a key being looked up, which cannot be a key already
/// found live at the same `now_ms`.
fn with_sets<R>(
    ctx: &mut Ctx,
    keys: &[&[u8]],
    f: impl FnOnce(&mut Reply, &[Option<&SetValue>]) -> R,
) -> Option<R> {
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let mut ptrs: Vec<Option<*const SetValue>> = Vec::with_capacity(keys.len());
    for key in keys {
        let sh = ctx.locks.shard(db, key);
        match find(sh, key, now, touch) {
            Found::Missing => {
                ctx.srv.stats.hit(false);
                ptrs.push(None);
            }
            Found::Set(s) => {
                ctx.srv.stats.hit(true);
                ptrs.push(Some(s as *const SetValue));
            }
            Found::WrongType => {
                ctx.srv.stats.hit(true);
                ctx.error(err::WRONGTYPE);
                return None;
            }
        }
    }
    // SAFETY: see above; the references do not outlive `f`.
    let sets: Vec<Option<&SetValue>> = ptrs.iter().map(|p| p.map(|p| unsafe { &*p })).collect();
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    Some(f(&mut r, &sets))
}

fn reply_elem(r: &mut Reply, e: Elem) {
    match e {
        Elem::Int(n) => r.bulk_int(n),
        Elem::Str(b) => r.bulk(b),
    }
}

/// Replies with the whole set as a RESP3 set (array in RESP2).
fn reply_set(r: &mut Reply, s: &SetValue) {
    r.set(s.len());
    for e in s.iter() {
        reply_elem(r, e);
    }
}

fn sadd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let lim = limits(ctx);
    let key = argv[1];
    let members = &argv[2..];
    let mut added = 0;
    match find_key(ctx, key) {
        Found::WrongType => return ctx.error(err::WRONGTYPE),
        Found::Set(s) => {
            s.maybe_convert(members.len(), &lim);
            for m in members {
                added += s.add(m, &lim) as i64;
            }
        }
        Found::Missing => {
            let mut s = SetValue::create(members[0], members.len(), &lim);
            for m in members {
                added += s.add(m, &lim) as i64;
            }
            ctx.shard(key).insert(key, Value::Set(s), None);
        }
    }
    ctx.srv.add_dirty(added as u64);
    ctx.r().int(added);
}

fn srem(ctx: &mut Ctx, argv: &[&[u8]]) {
    let key = argv[1];
    let mut deleted = 0;
    let mut emptied = false;
    match find_key(ctx, key) {
        Found::WrongType => return ctx.error(err::WRONGTYPE),
        Found::Missing => return ctx.r().int(0),
        Found::Set(s) => {
            for m in &argv[2..] {
                if s.remove(m) {
                    deleted += 1;
                    if s.is_empty() {
                        emptied = true;
                        break;
                    }
                }
            }
        }
    }
    if emptied {
        ctx.shard(key).remove(key);
    }
    ctx.srv.add_dirty(deleted as u64);
    ctx.r().int(deleted);
}

fn smove(ctx: &mut Ctx, argv: &[&[u8]]) {
    let lim = limits(ctx);
    let (src, dst, member) = (argv[1], argv[2], argv[3]);
    let src_state = match find_key(ctx, src) {
        Found::Missing => 0,
        Found::Set(_) => 1,
        Found::WrongType => 2,
    };
    let dst_state = match find_key(ctx, dst) {
        Found::Missing => 0,
        Found::Set(_) => 1,
        Found::WrongType => 2,
    };
    if src_state == 0 {
        return ctx.r().int(0);
    }
    if src_state == 2 || dst_state == 2 {
        return ctx.error(err::WRONGTYPE);
    }
    if src == dst {
        let is = matches!(find_key(ctx, src), Found::Set(s) if s.contains(member));
        return ctx.r().int(is as i64);
    }
    let Found::Set(s) = find_key(ctx, src) else {
        unreachable!("checked above")
    };
    if !s.remove(member) {
        return ctx.r().int(0);
    }
    if s.is_empty() {
        ctx.shard(src).remove(src);
    }
    let mut dirty = 1;
    let added = match find_key(ctx, dst) {
        Found::Set(d) => d.add(member, &lim),
        _ => {
            let mut d = SetValue::create(member, 1, &lim);
            d.add(member, &lim);
            ctx.shard(dst).insert(dst, Value::Set(d), None);
            true
        }
    };
    if added {
        dirty += 1;
    } else {
        // The destination already had the member: only the source changed.
        ctx.modified = Some(smallvec::smallvec![1]);
    }
    ctx.srv.add_dirty(dirty);
    ctx.r().int(1);
}

fn sismember(ctx: &mut Ctx, argv: &[&[u8]]) {
    let v = match find_key(ctx, argv[1]) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            return ctx.error(err::WRONGTYPE);
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            0
        }
        Found::Set(s) => {
            let v = s.contains(argv[2]) as i64;
            ctx.srv.stats.hit(true);
            v
        }
    };
    ctx.r().int(v);
}

fn smismember(ctx: &mut Ctx, argv: &[&[u8]]) {
    let members = &argv[2..];
    let out: Vec<bool> = match find_key(ctx, argv[1]) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            return ctx.error(err::WRONGTYPE);
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            vec![false; members.len()]
        }
        Found::Set(s) => {
            let v = members.iter().map(|m| s.contains(m)).collect();
            ctx.srv.stats.hit(true);
            v
        }
    };
    let mut r = ctx.r();
    r.array(out.len());
    for b in out {
        r.int(b as i64);
    }
}

fn scard(ctx: &mut Ctx, argv: &[&[u8]]) {
    let n = match find_key(ctx, argv[1]) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            return ctx.error(err::WRONGTYPE);
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            0
        }
        Found::Set(s) => {
            let n = s.len() as i64;
            ctx.srv.stats.hit(true);
            n
        }
    };
    ctx.r().int(n);
}

fn smembers(ctx: &mut Ctx, argv: &[&[u8]]) {
    inter_generic(ctx, &argv[1..2], None, false, 0);
}

fn sinter(ctx: &mut Ctx, argv: &[&[u8]]) {
    inter_generic(ctx, &argv[1..], None, false, 0);
}

fn sinterstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    inter_generic(ctx, &argv[2..], Some(argv[1]), false, 0);
}

fn sintercard(ctx: &mut Ctx, argv: &[&[u8]]) {
    let numkeys = match parse_i64(argv[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => return ctx.error("ERR numkeys should be greater than 0"),
    };
    if numkeys > argv.len() - 2 {
        return ctx.error("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if argv[j].eq_ignore_ascii_case(b"limit") && more > 0 {
            j += 1;
            match parse_i64(argv[j]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return ctx.error("ERR LIMIT can't be negative"),
            }
        } else {
            return ctx.error(err::SYNTAX);
        }
        j += 1;
    }
    inter_generic(ctx, &argv[2..2 + numkeys], None, true, limit);
}

/// Deletes `dst` for a STORE command whose result is empty; replies 0.
fn store_empty(ctx: &mut Ctx, dst: &[u8]) {
    let now = ctx.now_ms;
    let sh = ctx.shard(dst);
    if sh.contains(dst, now) {
        sh.remove(dst);
        ctx.srv.add_dirty(1);
    }
    ctx.r().int(0);
}

/// Stores a non-empty result in `dst` (replacing any value and TTL).
fn store_result(ctx: &mut Ctx, dst: &[u8], s: SetValue) {
    let n = s.len();
    ctx.shard(dst).insert(dst, Value::Set(s), None);
    ctx.srv.add_dirty(1);
    ctx.r().int(n as i64);
}

/// SINTER, SMEMBERS, SINTERSTORE and SINTERCARD (Redis's
/// `sinterGenericCommand`).
fn inter_generic(ctx: &mut Ctx, keys: &[&[u8]], dst: Option<&[u8]>, card_only: bool, limit: usize) {
    let lim = limits(ctx);
    enum Out {
        Done,
        Empty,
        Store(SetValue),
    }
    let out = with_sets(ctx, keys, |r, sets| {
        if sets.iter().any(|s| s.is_none()) {
            return Out::Empty;
        }
        let mut sets: Vec<&SetValue> = sets.iter().map(|s| s.unwrap()).collect();
        sets.sort_by_key(|s| s.len());
        let first = sets[0];
        let others = || sets[1..].iter().filter(|s| !std::ptr::eq(**s, first));
        if card_only {
            let mut n = 0usize;
            for e in first.iter() {
                if others().all(|s| s.contains_elem(e)) {
                    n += 1;
                    if limit > 0 && n >= limit {
                        break;
                    }
                }
            }
            r.int(n as i64);
            Out::Done
        } else if dst.is_none() {
            let d = r.begin_deferred();
            let mut n = 0;
            for e in first.iter() {
                if others().all(|s| s.contains_elem(e)) {
                    reply_elem(r, e);
                    n += 1;
                }
            }
            r.end_deferred(d, Aggregate::Set, n);
            Out::Done
        } else {
            let mut res = if first.is_intset() {
                SetValue::new_intset()
            } else {
                SetValue::new_listpack()
            };
            let mut only_integers = true;
            for e in first.iter() {
                if others().all(|s| s.contains_elem(e)) {
                    only_integers &= e.as_int().is_some();
                    res.add_elem(e, &lim);
                }
            }
            if res.is_empty() {
                return Out::Empty;
            }
            if only_integers {
                res.convert_to_intset_if_fits(&lim);
            }
            Out::Store(res)
        }
    });
    match out {
        None | Some(Out::Done) => {}
        Some(Out::Empty) => match dst {
            Some(d) => store_empty(ctx, d),
            None if card_only => ctx.r().int(0),
            None => ctx.r().set(0),
        },
        Some(Out::Store(s)) => store_result(ctx, dst.expect("store"), s),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Diff,
}

fn sunion(ctx: &mut Ctx, argv: &[&[u8]]) {
    union_diff_generic(ctx, &argv[1..], None, SetOp::Union);
}

fn sunionstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    union_diff_generic(ctx, &argv[2..], Some(argv[1]), SetOp::Union);
}

fn sdiff(ctx: &mut Ctx, argv: &[&[u8]]) {
    union_diff_generic(ctx, &argv[1..], None, SetOp::Diff);
}

fn sdiffstore(ctx: &mut Ctx, argv: &[&[u8]]) {
    union_diff_generic(ctx, &argv[2..], Some(argv[1]), SetOp::Diff);
}

/// Computes a union or difference the way Redis's
/// `sunionDiffGenericCommand` does, so the result's encoding matches: it
/// starts as an intset and grows through the usual conversions.
fn union_diff(sets: &[Option<&SetValue>], op: SetOp, lim: &Limits) -> SetValue {
    let mut res = SetValue::new_intset();
    let first = sets[0];
    let same = |a: Option<&SetValue>, b: Option<&SetValue>| match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        _ => false,
    };
    let sameset = sets[1..].iter().any(|s| same(first, *s));
    match op {
        SetOp::Union => {
            for s in sets.iter().flatten() {
                for e in s.iter() {
                    res.add_elem(e, lim);
                }
            }
        }
        SetOp::Diff => {
            let Some(first) = first else { return res };
            if sameset {
                return res;
            }
            let algo_one: u64 = sets
                .iter()
                .flatten()
                .map(|_| first.len() as u64)
                .sum::<u64>()
                / 2;
            let algo_two: u64 = sets.iter().flatten().map(|s| s.len() as u64).sum();
            if algo_one <= algo_two {
                // Algorithm 1: each member of the first set against the others.
                let mut rest: Vec<&SetValue> = sets[1..].iter().flatten().copied().collect();
                rest.sort_by_key(|s| std::cmp::Reverse(s.len()));
                for e in first.iter() {
                    if !rest.iter().any(|s| s.contains_elem(e)) {
                        res.add_elem(e, lim);
                    }
                }
            } else {
                // Algorithm 2: add the first set, remove all the others.
                for e in first.iter() {
                    res.add_elem(e, lim);
                }
                for s in sets[1..].iter().flatten() {
                    if res.is_empty() {
                        break;
                    }
                    for e in s.iter() {
                        res.remove_elem(e);
                    }
                }
            }
        }
    }
    res
}

fn union_diff_generic(ctx: &mut Ctx, keys: &[&[u8]], dst: Option<&[u8]>, op: SetOp) {
    let lim = limits(ctx);
    let store = dst.is_some();
    let res = with_sets(ctx, keys, |r, sets| {
        let res = union_diff(sets, op, &lim);
        if !store {
            reply_set(r, &res);
        }
        res
    });
    let (Some(res), Some(dst)) = (res, dst) else {
        return;
    };
    if res.is_empty() {
        store_empty(ctx, dst);
    } else {
        store_result(ctx, dst, res);
    }
}

/// Parses SRANDMEMBER's count: any long but LONG_MIN.
fn parse_rand_count(ctx: &mut Ctx, arg: &[u8]) -> Option<i64> {
    match parse_i64(arg) {
        None => {
            ctx.error(err::NOT_INT);
            None
        }
        Some(i64::MIN) => {
            ctx.error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
            None
        }
        Some(n) => Some(n),
    }
}

fn srandmember(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 3 {
        return ctx.error(err::SYNTAX);
    }
    if argv.len() == 3 {
        return srandmember_count(ctx, argv);
    }
    let mut rng = rand::thread_rng();
    let key = argv[1];
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match find(sh, key, now, touch) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            r.error(err::WRONGTYPE)
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            r.null()
        }
        Found::Set(s) => {
            ctx.srv.stats.hit(true);
            reply_elem(&mut r, s.random(&mut rng))
        }
    }
}

fn srandmember_count(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(l) = parse_rand_count(ctx, argv[2]) else {
        return;
    };
    let (count, uniq) = if l >= 0 {
        (l as u64, true)
    } else {
        (l.unsigned_abs(), false)
    };
    let mut rng = rand::thread_rng();
    let key = argv[1];
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let s = match find(sh, key, now, touch) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            return r.error(err::WRONGTYPE);
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            return r.array(0);
        }
        Found::Set(s) => {
            ctx.srv.stats.hit(true);
            &*s
        }
    };
    let size = s.len() as u64;
    if count == 0 {
        return r.array(0);
    }
    // CASE 1: negative count (repeats allowed) or a single member.
    if !uniq || count == 1 {
        r.array(count as usize);
        for _ in 0..count {
            reply_elem(&mut r, s.random(&mut rng));
        }
        return;
    }
    // CASE 2: the whole set.
    if count >= size {
        r.array(size as usize);
        for e in s.iter() {
            reply_elem(&mut r, e);
        }
        return;
    }
    let count = count as usize;
    r.array(count);
    if s.is_listpack() {
        // Distinct members in listpack order.
        for e in s.sample_in_order(count, &mut rng) {
            reply_elem(&mut r, e);
        }
    } else if count * 3 > size as usize {
        // CASE 3: copy everything, keep a random `count` of it.
        let mut all: Vec<Elem> = s.iter().collect();
        let (picked, _) = all.partial_shuffle(&mut rng, count);
        for e in picked.iter() {
            reply_elem(&mut r, *e);
        }
    } else {
        // CASE 4: random picks until `count` distinct ones.
        let mut seen = hashbrown::HashSet::with_capacity(count);
        while seen.len() < count {
            let e = s.random(&mut rng);
            if seen.insert(e) {
                reply_elem(&mut r, e);
            }
        }
    }
}

/// How much bigger than what remains the popped part must be for SPOP to
/// rebuild the set from the survivors (Redis's SPOP_MOVE_STRATEGY_MUL).
const SPOP_MOVE_STRATEGY_MUL: u64 = 5;

fn spop(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 3 {
        return ctx.error(err::SYNTAX);
    }
    if argv.len() == 3 {
        return spop_count(ctx, argv);
    }
    let key = argv[1];
    let mut rng = rand::thread_rng();
    let (popped, emptied) = match find_key(ctx, key) {
        Found::WrongType => return ctx.error(err::WRONGTYPE),
        Found::Missing => return ctx.r().null(),
        Found::Set(s) => (s.pop_random(&mut rng), s.is_empty()),
    };
    if emptied {
        ctx.shard(key).remove(key);
    }
    ctx.srv.add_dirty(1);
    let mut r = ctx.r();
    reply_elem(&mut r, popped.as_elem());
    // A random choice is propagated as what it removed.
    ctx.propagate_as(&[b"SREM", key, &popped.as_elem().to_vec()]);
}

/// SPOP with a count propagates SREMs of the popped members (in batches).
fn propagate_srem(ctx: &mut Ctx, key: &[u8], out: &[Owned]) {
    if !ctx.propagating() {
        return;
    }
    for chunk in out.chunks(1024) {
        let members: Vec<Vec<u8>> = chunk.iter().map(|o| o.as_elem().to_vec()).collect();
        let mut argv: Vec<&[u8]> = vec![b"SREM", key];
        argv.extend(members.iter().map(|m| m.as_slice()));
        ctx.propagate_as(&argv);
    }
}

fn spop_count(ctx: &mut Ctx, argv: &[&[u8]]) {
    let count = match parse_i64(argv[2]) {
        None => return ctx.error(err::NOT_INT),
        Some(n) if n < 0 => return ctx.error("ERR value is out of range, must be positive"),
        Some(n) => n as u64,
    };
    let lim = limits(ctx);
    let key = argv[1];
    let mut rng = rand::thread_rng();
    let s = match find_key(ctx, key) {
        Found::WrongType => return ctx.error(err::WRONGTYPE),
        Found::Missing => return ctx.r().set(0),
        Found::Set(s) => s,
    };
    if count == 0 {
        return ctx.r().set(0);
    }
    let size = s.len() as u64;
    // CASE 1: everything goes; the key is deleted.
    if count >= size {
        let all = std::mem::take(s);
        ctx.shard(key).remove(key);
        ctx.srv.add_dirty(size);
        let mut r = ctx.r();
        // Redis replies through its union code: an intset-started copy.
        let copy = union_diff(&[Some(&all)], SetOp::Union, &lim);
        reply_set(&mut r, &copy);
        // As Redis: the deletion travels as UNLINK when server-side
        // deletions are lazy.
        let del: &[u8] = if lazyfree::lazy(lazyfree::Reason::ServerDel) {
            b"UNLINK"
        } else {
            b"DEL"
        };
        ctx.propagate_as(&[del, key]);
        return;
    }
    let remaining = size - count;
    let mut out: Vec<Owned> = Vec::with_capacity(count as usize);
    if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        // CASE 2: pop `count` random members.
        if s.is_listpack() {
            let picked: Vec<Owned> = s
                .sample_in_order(count as usize, &mut rng)
                .into_iter()
                .map(|e| Owned::Bytes(e.to_vec()))
                .collect();
            for o in &picked {
                s.remove_elem(o.as_elem());
            }
            out = picked;
        } else {
            for _ in 0..count {
                out.push(s.pop_random(&mut rng));
            }
        }
    } else {
        // CASE 3: keep `remaining` random members in a new set (which gets
        // its own, possibly smaller, encoding); pop the rest.
        let mut newset: Option<SetValue> = None;
        if s.is_listpack() {
            let keep: Vec<Vec<u8>> = s
                .sample_in_order(remaining as usize, &mut rng)
                .into_iter()
                .map(|e| e.to_vec())
                .collect();
            let mut n = SetValue::new_listpack();
            for k in &keep {
                n.add(k, &lim);
                s.remove(k);
            }
            newset = Some(n);
        } else {
            for _ in 0..remaining {
                let o = s.pop_random(&mut rng);
                let n = newset.get_or_insert_with(|| match o {
                    Owned::Int(_) => SetValue::new_intset(),
                    Owned::Bytes(_) => SetValue::new_listpack(),
                });
                n.add_elem(o.as_elem(), &lim);
            }
        }
        let newset = newset.expect("remaining > 0");
        let old = std::mem::replace(s, newset);
        out.extend(old.iter().map(|e| match e {
            Elem::Int(n) => Owned::Int(n),
            Elem::Str(b) => Owned::Bytes(b.to_vec()),
        }));
    }
    ctx.srv.add_dirty(count);
    let mut r = ctx.r();
    r.set(out.len());
    for o in &out {
        reply_elem(&mut r, o.as_elem());
    }
    propagate_srem(ctx, key, &out);
}

/// Redis's `parseScanCursorOrReply` (strtoul: a leading '-' wraps).
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    if let Some(v) = strutil::parse_u64(arg) {
        return Some(v);
    }
    match arg {
        [b'-', rest @ ..] => strutil::parse_u64(rest).map(|v| v.wrapping_neg()),
        [b'+', rest @ ..] => strutil::parse_u64(rest),
        _ => None,
    }
}

fn sscan(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(cursor) = parse_cursor(argv[2]) else {
        return ctx.error("ERR invalid cursor");
    };
    let key = argv[1];
    let (db, now, touch) = (ctx.client.db, ctx.now_ms, ctx.touch_ok());
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let s = match find(sh, key, now, touch) {
        Found::WrongType => {
            ctx.srv.stats.hit(true);
            return r.error(err::WRONGTYPE);
        }
        Found::Missing => {
            ctx.srv.stats.hit(false);
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Found::Set(s) => {
            ctx.srv.stats.hit(true);
            &*s
        }
    };
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - i >= 2;
        if argv[i].eq_ignore_ascii_case(b"count") && more {
            match parse_i64(argv[i + 1]) {
                None => return r.error(err::NOT_INT),
                Some(n) if n < 1 => return r.error(err::SYNTAX),
                Some(n) => count = n as usize,
            }
        } else if argv[i].eq_ignore_ascii_case(b"match") && more {
            pattern = Some(argv[i + 1]).filter(|p| *p != b"*");
        } else {
            return r.error(err::SYNTAX);
        }
        i += 2;
    }
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = s.scan(cursor, count, |e| {
        e.with_bytes(|b| {
            if pattern.is_none_or(|p| glob_match(p, b, false)) {
                found.push(b.to_vec());
            }
        })
    });
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(found.len());
    for m in &found {
        r.bulk(m);
    }
}
