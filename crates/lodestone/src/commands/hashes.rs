//! The hash family (Redis's `t_hash.c`): HSET and friends, counters,
//! whole-hash reads, HRANDFIELD and HSCAN. The value type and its
//! encodings live in `keyspace::types::hash`.

use super::strings::{lookup, lru_clock};
use super::{err, Ctx, Handler, Registry};
use crate::config::HOT;
use crate::keyspace::types::hash::Limits;
use crate::keyspace::{Entry, HashValue, Shard, Value};
use resp::Reply;
use strutil::{parse_i64, GlobPattern, LongDouble};

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
hset|hash|-4|2.0.0|write,denyoom,fast|hash|1,1,1|Creates or modifies the value of a field in a hash.
hsetnx|hash|4|2.0.0|write,denyoom,fast|hash|1,1,1|Sets the value of a field in a hash only when the field doesn't exist.
hmset|hash|-4|2.0.0|write,denyoom,fast|hash|1,1,1|Sets the values of multiple fields.
hget|hash|3|2.0.0|readonly,fast|hash|1,1,1|Returns the value of a field in a hash.
hmget|hash|-3|2.0.0|readonly,fast|hash|1,1,1|Returns the values of all fields in a hash.
hdel|hash|-3|2.0.0|write,fast|hash|1,1,1|Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.
hlen|hash|2|2.0.0|readonly,fast|hash|1,1,1|Returns the number of fields in a hash.
hstrlen|hash|3|3.2.0|readonly,fast|hash|1,1,1|Returns the length of the value of a field.
hexists|hash|3|2.0.0|readonly,fast|hash|1,1,1|Determines whether a field exists in a hash.
hkeys|hash|2|2.0.0|readonly|hash|1,1,1|Returns all fields in a hash.
hvals|hash|2|2.0.0|readonly|hash|1,1,1|Returns all values in a hash.
hgetall|hash|2|2.0.0|readonly|hash|1,1,1|Returns all fields and values in a hash.
hincrby|hash|4|2.0.0|write,denyoom,fast|hash|1,1,1|Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.
hincrbyfloat|hash|4|2.6.0|write,denyoom,fast|hash|1,1,1|Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.
hrandfield|hash|-2|6.2.0|readonly|hash|1,1,1|Returns one or more random fields from a hash.
hscan|hash|-3|2.8.0|readonly|hash|1,1,1|Iterates over fields and values of a hash.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("hset", hset as Handler),
        ("hmset", hset),
        ("hsetnx", hsetnx),
        ("hget", hget),
        ("hmget", hmget),
        ("hdel", hdel),
        ("hlen", hlen),
        ("hstrlen", hstrlen),
        ("hexists", hexists),
        ("hkeys", hkeys),
        ("hvals", hvals),
        ("hgetall", hgetall),
        ("hincrby", hincrby),
        ("hincrbyfloat", hincrbyfloat),
        ("hrandfield", hrandfield),
        ("hscan", hscan),
    ]);
}

fn limits(ctx: &Ctx) -> Limits {
    let c = &ctx.srv.config;
    Limits {
        max_entries: c.num(HOT.hash_max_listpack_entries).max(0) as usize,
        max_value: c.num(HOT.hash_max_listpack_value).max(0) as usize,
    }
}

/// What a key holds, from a hash command's point of view.
enum Found<'a> {
    Missing,
    WrongType,
    Hash(&'a mut HashValue),
}

fn find<'s>(sh: &'s mut Shard, key: &[u8], now: u64, touch: bool) -> Found<'s> {
    match lookup(sh, key, now, touch) {
        None => Found::Missing,
        Some(e) => match e.heap_value_mut() {
            Some(Value::Hash(h)) => Found::Hash(h),
            _ => Found::WrongType,
        },
    }
}

/// Runs `f` on the hash at `key`, creating an empty one if the key is
/// missing (Redis's `hashTypeLookupWriteOrCreate`); the new key is stored
/// only if `f` leaves it non-empty. Replies WRONGTYPE for other types.
fn write_or_create<R>(
    ctx: &mut Ctx,
    key: &[u8],
    f: impl FnOnce(&mut HashValue, &mut Reply) -> R,
) -> Option<R> {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    match find(sh, key, now, true) {
        Found::WrongType => {
            r.error(err::WRONGTYPE);
            None
        }
        Found::Hash(h) => Some(f(h, &mut r)),
        Found::Missing => {
            let mut h = HashValue::new();
            let out = f(&mut h, &mut r);
            if !h.is_empty() {
                sh.insert_entry(Entry::new_full(key, Value::Hash(h), None, lru_clock(now)));
            }
            Some(out)
        }
    }
}

/// Looks a hash up for reading, counting a keyspace hit or miss. Replies
/// WRONGTYPE itself; `Err(())` then.
macro_rules! read_hash {
    ($ctx:ident, $key:expr) => {{
        let (db, now, touch) = ($ctx.client.db, $ctx.now_ms, $ctx.touch_ok());
        let sh = $ctx.locks.shard(db, $key);
        let found = find(sh, $key, now, touch);
        $ctx.srv.stats.hit(!matches!(found, Found::Missing));
        let r = Reply::new($ctx.out, $ctx.client.proto);
        (found, r)
    }};
}

fn hset(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() % 2 == 1 {
        let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
        return ctx.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let lim = limits(ctx);
    let is_hset = matches!(argv[0].get(1), Some(b's' | b'S'));
    let created = write_or_create(ctx, argv[1], |h, r| {
        h.prepare(&argv[2..], &lim);
        let mut created = 0;
        for p in argv[2..].chunks(2) {
            created += h.set(p[0], p[1], &lim) as i64;
        }
        if is_hset {
            r.int(created);
        } else {
            r.ok();
        }
    });
    if created.is_some() {
        ctx.srv.add_dirty(((argv.len() - 2) / 2) as u64);
    }
}

fn hsetnx(ctx: &mut Ctx, argv: &[&[u8]]) {
    let lim = limits(ctx);
    let done = write_or_create(ctx, argv[1], |h, r| {
        if h.contains(argv[2]) {
            r.int(0);
            false
        } else {
            h.prepare(&argv[2..4], &lim);
            h.set(argv[2], argv[3], &lim);
            r.int(1);
            true
        }
    });
    if done == Some(true) {
        ctx.srv.add_dirty(1);
    }
}

fn hget(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    match found {
        Found::Missing => r.null(),
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Hash(h) => match h.get(argv[2]) {
            Some(v) => r.bulk(v),
            None => r.null(),
        },
    }
}

fn hmget(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    let h = match found {
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Missing => None,
        Found::Hash(h) => Some(h),
    };
    r.array(argv.len() - 2);
    for f in &argv[2..] {
        match h.as_ref().and_then(|h| h.get(f)) {
            Some(v) => r.bulk(v),
            None => r.null(),
        }
    }
}

fn hdel(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, argv[1]);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let (deleted, empty) = match find(sh, argv[1], now, true) {
        Found::Missing => return r.int(0),
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Hash(h) => {
            let mut deleted = 0;
            for f in &argv[2..] {
                if h.remove(f) {
                    deleted += 1;
                    if h.is_empty() {
                        break;
                    }
                }
            }
            (deleted, h.is_empty())
        }
    };
    if empty {
        sh.remove(argv[1]);
    }
    r.int(deleted);
    ctx.srv.add_dirty(deleted as u64);
}

fn hlen(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    match found {
        Found::Missing => r.int(0),
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Hash(h) => r.int(h.len() as i64),
    }
}

fn hstrlen(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    match found {
        Found::Missing => r.int(0),
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Hash(h) => r.int(h.get(argv[2]).map_or(0, |v| v.len()) as i64),
    }
}

fn hexists(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    match found {
        Found::Missing => r.int(0),
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Hash(h) => r.int(h.contains(argv[2]) as i64),
    }
}

/// HKEYS, HVALS and HGETALL (`genericHgetallCommand`).
fn getall(ctx: &mut Ctx, argv: &[&[u8]], keys: bool, vals: bool) {
    let (found, mut r) = read_hash!(ctx, argv[1]);
    let map = keys && vals;
    match found {
        Found::WrongType => r.error(err::WRONGTYPE),
        Found::Missing if map => r.map(0),
        Found::Missing => r.array(0),
        Found::Hash(h) => {
            if map {
                r.map(h.len());
            } else {
                r.array(h.len());
            }
            for (f, v) in h.iter() {
                if keys {
                    r.bulk(f);
                }
                if vals {
                    r.bulk(v);
                }
            }
        }
    }
}

fn hkeys(ctx: &mut Ctx, argv: &[&[u8]]) {
    getall(ctx, argv, true, false)
}

fn hvals(ctx: &mut Ctx, argv: &[&[u8]]) {
    getall(ctx, argv, false, true)
}

fn hgetall(ctx: &mut Ctx, argv: &[&[u8]]) {
    getall(ctx, argv, true, true)
}

fn hincrby(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(incr) = parse_i64(argv[3]) else {
        return ctx.error(err::NOT_INT);
    };
    let lim = limits(ctx);
    let done = write_or_create(ctx, argv[1], |h, r| {
        let old = match h.get(argv[2]) {
            None => 0,
            Some(v) => match parse_i64(v) {
                Some(n) => n,
                None => {
                    r.error("ERR hash value is not an integer");
                    return false;
                }
            },
        };
        let Some(new) = old.checked_add(incr) else {
            r.error("ERR increment or decrement would overflow");
            return false;
        };
        h.set(argv[2], itoa::Buffer::new().format(new).as_bytes(), &lim);
        r.int(new);
        true
    });
    if done == Some(true) {
        ctx.srv.add_dirty(1);
    }
}

fn hincrbyfloat(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(incr) = LongDouble::parse(argv[3]) else {
        return ctx.error(err::NOT_FLOAT);
    };
    if !incr.is_finite() {
        return ctx.error("ERR value is NaN or Infinity");
    }
    let lim = limits(ctx);
    let mut result: Option<String> = None;
    let done = write_or_create(ctx, argv[1], |h, r| {
        let old = match h.get(argv[2]) {
            None => LongDouble::ZERO,
            Some(v) => match LongDouble::parse(v) {
                Some(n) => n,
                None => {
                    r.error("ERR hash value is not a float");
                    return false;
                }
            },
        };
        let sum = old.add(incr);
        if !sum.is_finite() {
            r.error("ERR increment would produce NaN or Infinity");
            return false;
        }
        let text = sum.to_human_string();
        h.set(argv[2], text.as_bytes(), &lim);
        r.bulk(text.as_bytes());
        result = Some(text);
        true
    });
    if done == Some(true) {
        ctx.srv.add_dirty(1);
        // The result, not the float arithmetic, is propagated.
        if let Some(t) = result {
            ctx.propagate_as(&[b"HSET", argv[1], argv[2], t.as_bytes()]);
        }
    }
}

fn hrandfield(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() == 2 {
        let (found, mut r) = read_hash!(ctx, argv[1]);
        return match found {
            Found::Missing => r.null(),
            Found::WrongType => r.error(err::WRONGTYPE),
            Found::Hash(h) => r.bulk(h.random(&mut rand::thread_rng()).0),
        };
    }
    let Some(l) = parse_i64(argv[2]) else {
        return ctx.error(err::NOT_INT);
    };
    if l == i64::MIN {
        return ctx.error(&format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        ));
    }
    let withvalues = match argv.len() {
        3 => false,
        4 if argv[3].eq_ignore_ascii_case(b"withvalues") => true,
        _ => return ctx.error(err::SYNTAX),
    };
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return ctx.error("ERR value is out of range");
    }
    let (found, mut r) = read_hash!(ctx, argv[1]);
    let h = match found {
        Found::Missing => return r.array(0),
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Hash(h) => h,
    };
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        return r.array(0);
    }
    let resp3 = r.is_resp3();
    let emit = |r: &mut Reply, pairs: &[(&[u8], &[u8])]| {
        for (f, v) in pairs {
            if withvalues && resp3 {
                r.array(2);
            }
            r.bulk(f);
            if withvalues {
                r.bulk(v);
            }
        }
    };
    let header = |r: &mut Reply, n: usize| {
        r.array(if withvalues && !resp3 { n * 2 } else { n });
    };
    let mut rng = rand::thread_rng();
    if l < 0 || count == 1 {
        // Repetitions allowed, random order; sampled in batches.
        header(&mut r, count);
        let mut left = count;
        while left > 0 {
            let n = left.min(1000);
            left -= n;
            emit(&mut r, &h.random_many(n, &mut rng));
        }
        return;
    }
    let size = h.len();
    if count >= size {
        header(&mut r, size);
        let all: Vec<_> = h.iter().collect();
        return emit(&mut r, &all);
    }
    header(&mut r, count);
    emit(&mut r, &h.random_unique(count, &mut rng));
}

/// Parses a SCAN cursor like Redis's `parseScanCursorOrReply` (C `strtoul`:
/// an optional sign, digits; no leading space, nothing after).
pub fn parse_cursor(s: &[u8]) -> Option<u64> {
    let s = match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    };
    if s.first()
        .is_some_and(|c| c.is_ascii_whitespace() || *c == 0x0b)
    {
        return None;
    }
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        // strtoul parses nothing and leaves the end pointer at the start.
        return if s.is_empty() { Some(0) } else { None };
    }
    let mut v = 0u64;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

fn hscan(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(cursor) = parse_cursor(argv[2]) else {
        return ctx.error("ERR invalid cursor");
    };
    let (found, mut r) = read_hash!(ctx, argv[1]);
    let h = match found {
        Found::Missing => {
            r.array(2);
            r.bulk(b"0");
            return r.array(0);
        }
        Found::WrongType => return r.error(err::WRONGTYPE),
        Found::Hash(h) => h,
    };
    let mut count = 10usize;
    let mut pattern: Option<GlobPattern> = None;
    let mut i = 3;
    while i < argv.len() {
        let has_next = i + 1 < argv.len();
        if has_next && argv[i].eq_ignore_ascii_case(b"count") {
            match parse_i64(argv[i + 1]) {
                Some(n) if n >= 1 => count = n as usize,
                Some(_) => return r.error(err::SYNTAX),
                None => return r.error(err::NOT_INT),
            }
        } else if has_next && argv[i].eq_ignore_ascii_case(b"match") {
            let p = argv[i + 1];
            pattern = (p != b"*").then(|| GlobPattern::new(p, false));
        } else {
            return r.error(err::SYNTAX);
        }
        i += 2;
    }
    let (next, pairs) = h.scan(cursor, count, |f| {
        pattern.as_ref().is_none_or(|p| p.matches(f))
    });
    r.array(2);
    r.bulk(itoa::Buffer::new().format(next).as_bytes());
    r.array(pairs.len() * 2);
    for (f, v) in pairs {
        r.bulk(f);
        r.bulk(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_parsing_is_strtoul() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b" 1"), None);
        assert_eq!(parse_cursor(b"1 "), None);
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
    }
}
