//! The SORT and SORT_RO commands (Redis's `sort.c`).
//!
//! SORT copies the elements of a list, set or sorted set into a vector,
//! computes each element's sort key (the element itself, or the value found
//! through a `BY` pattern: a string key or a hash field), sorts, and either
//! replies with the selected range (optionally replaced by `GET` pattern
//! lookups) or stores it as a list (`STORE`).
//!
//! Locking: the source key (and the STORE destination) are ordinary key
//! positions. `BY`/`GET` patterns read keys that only become known while the
//! command runs, so when they are present the lock set is [`LockSet::All`]:
//! outside a transaction the handler then locks every shard of the client's
//! database itself (in ascending order, like any lock set) and keeps them
//! until the command ends, which makes the whole SORT atomic as in Redis;
//! inside EXEC everything is already held.

use super::strings::lookup;
use super::{blocking, err, notify, Ctx, Handler, KeysFn, LockFn, LockSet, Registry, ShardList};
use crate::config::HOT;
use crate::keyspace::{shard_of, ListValue, Value};
use crate::server::Server;
use std::cmp::Ordering;
use strutil::{parse_f64, parse_i64};

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
sort|generic|-2|1.0.0|write,denyoom|set,sortedset,list,dangerous|1,1,1|Sorts the elements in a list, a set, or a sorted set, optionally storing the result.
sort_ro|generic|-2|7.0.0|readonly|set,sortedset,list,dangerous|1,1,1|Returns the sorted elements of a list, a set, or a sorted set.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers
        .extend_from_slice(&[("sort", sort as Handler), ("sort_ro", sort_ro)]);
    r.locksets
        .extend_from_slice(&[("sort", sort_locks as LockFn), ("sort_ro", sort_ro_locks)]);
    r.keys
        .extend_from_slice(&[("sort", sort_keys as KeysFn), ("sort_ro", sort_ro_keys)]);
}

/// The parsed options of one SORT call.
#[derive(Debug, Default, PartialEq)]
struct Opts<'a> {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    store: Option<&'a [u8]>,
    /// The last BY pattern given.
    by: Option<&'a [u8]>,
    /// A BY pattern without '*' was given: nothing to sort or look up.
    dontsort: bool,
    gets: Vec<&'a [u8]>,
}

impl Opts<'_> {
    /// Whether running the command reads keys other than the source.
    fn reads_other_keys(&self) -> bool {
        (self.by.is_some() && !self.dontsort) || self.gets.iter().any(|g| pattern_reads_key(g))
    }
}

/// A pattern other than `#` that contains `*` makes SORT look keys up.
fn pattern_reads_key(p: &[u8]) -> bool {
    !is_hash_sign(p) && cstr(p).contains(&b'*')
}

/// `#` (as C sees it: the pattern's text up to its first NUL byte).
fn is_hash_sign(p: &[u8]) -> bool {
    cstr(p) == b"#"
}

/// The part of `b` a C string function sees (up to the first NUL).
fn cstr(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Parses the options after the key the way `sortCommandGeneric` does:
/// left to right, stopping at the first error.
fn parse<'a>(argv: &[&'a [u8]], readonly: bool) -> Result<Opts<'a>, &'static str> {
    let mut o = Opts {
        limit_count: -1,
        ..Opts::default()
    };
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if a.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if a.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            o.limit_start = parse_i64(argv[j + 1]).ok_or(err::NOT_INT)?;
            o.limit_count = parse_i64(argv[j + 2]).ok_or(err::NOT_INT)?;
            j += 2;
        } else if !readonly && a.eq_ignore_ascii_case(b"store") && left >= 1 {
            o.store = Some(argv[j + 1]);
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            o.by = Some(argv[j + 1]);
            if !cstr(argv[j + 1]).contains(&b'*') {
                o.dontsort = true;
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            o.gets.push(argv[j + 1]);
            j += 1;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Key positions of SORT (Redis's `sortGetKeys`): the source, plus the
/// last `STORE` destination found by a light scan of the options.
fn sort_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let a = argv[i];
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < argv.len() {
            // The destination itself is scanned next, as Redis does.
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    Some(keys)
}

/// SORT_RO has exactly one key.
fn sort_ro_keys(_argv: &[&[u8]]) -> Option<Vec<usize>> {
    Some(vec![1])
}

fn locks_for(argv: &[&[u8]], db: usize, readonly: bool) -> LockSet {
    let mut v = ShardList::new();
    v.push((db as u32, shard_of(argv[1]) as u32));
    if let Ok(o) = parse(argv, readonly) {
        if o.reads_other_keys() {
            return LockSet::All;
        }
        if let Some(dst) = o.store {
            v.push((db as u32, shard_of(dst) as u32));
        }
    }
    LockSet::Shards(v)
}

fn sort_locks(argv: &[&[u8]], db: usize, _: &Server) -> LockSet {
    locks_for(argv, db, false)
}

fn sort_ro_locks(argv: &[&[u8]], db: usize, _: &Server) -> LockSet {
    locks_for(argv, db, true)
}

fn sort(ctx: &mut Ctx, argv: &[&[u8]]) {
    sort_generic(ctx, argv, false);
}

fn sort_ro(ctx: &mut Ctx, argv: &[&[u8]]) {
    sort_generic(ctx, argv, true);
}

/// Splits a pattern into the key to read for `elem` and the hash field, if
/// any (Redis's `lookupKeyByPattern` substitution). None when the pattern
/// has no '*' (a constant pattern names no key). The field starts after the
/// first "->" following the '*', when something follows it. As in Redis,
/// '*' and "->" are searched in the pattern's C string (up to a NUL byte),
/// while the element, the key suffix and the field are binary-safe.
fn substitute<'p>(pat: &'p [u8], elem: &[u8]) -> Option<(Vec<u8>, Option<&'p [u8]>)> {
    let c = cstr(pat);
    let star = c.iter().position(|&b| b == b'*')?;
    let rest_c = &c[star + 1..];
    let rest = &pat[star + 1..];
    let (post, field) = match rest_c.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < rest_c.len() => (&rest[..i], Some(&rest[i + 2..])),
        _ => (rest, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + post.len());
    key.extend_from_slice(&pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(post);
    Some((key, field))
}

/// The value a BY/GET pattern designates for `elem`: the element itself for
/// `#`, a string key's value, or a hash field's value; None when the key is
/// missing or of the wrong type, or the pattern is constant.
fn lookup_pattern(ctx: &mut Ctx, pat: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if is_hash_sign(pat) {
        return Some(elem.to_vec());
    }
    let (key, field) = substitute(pat, elem)?;
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let sh = ctx.locks.shard(db, &key);
    let found = lookup(sh, &key, now, true);
    ctx.srv.stats.hit(found.is_some());
    let e = found?;
    match field {
        None => e.str().map(|s| s.to_vec()),
        Some(f) => match e.heap_value_mut() {
            Some(Value::Hash(h)) => h.get(f).map(|v| v.to_vec()),
            _ => None,
        },
    }
}

/// The score of a sort key in numeric mode, like Redis's use of `strtod`:
/// the C string must be one number (leading white space allowed), an empty
/// string is 0, and NaN or out-of-range values are errors (None).
fn sort_score(b: &[u8]) -> Option<f64> {
    let s = cstr(b);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let t = &s[start..];
    let v = parse_f64(t)?;
    // glibc's strtod also reports ERANGE for an inexact subnormal result.
    if v.is_subnormal() && !exact_hex(t) {
        return None;
    }
    Some(v)
}

/// Whether `t`, a hexadecimal float literal, has no bit below 2^-1074 (so a
/// subnormal result is exact). Decimal literals are treated as inexact: an
/// exact decimal subnormal needs hundreds of digits.
fn exact_hex(t: &[u8]) -> bool {
    let t = t.strip_prefix(b"-").or(t.strip_prefix(b"+")).unwrap_or(t);
    let Some(t) = t.strip_prefix(b"0x").or(t.strip_prefix(b"0X")) else {
        return false;
    };
    let (mant, exp) = match t.iter().position(|&c| c == b'p' || c == b'P') {
        Some(i) => (&t[..i], parse_i64(&t[i + 1..]).unwrap_or(0)),
        None => (t, 0),
    };
    let frac = mant
        .iter()
        .position(|&c| c == b'.')
        .map_or(0, |i| mant.len() - i - 1) as i64;
    let mut tz = 0i64;
    for &c in mant.iter().rev().filter(|&&c| c != b'.') {
        let d = (c as char).to_digit(16).unwrap_or(0);
        if d != 0 {
            tz += d.trailing_zeros() as i64;
            return exp.saturating_sub(4 * frac).saturating_add(tz) >= -1074;
        }
        tz += 4;
    }
    true
}

/// One element being sorted, with its precomputed sort key.
struct Item {
    elem: Vec<u8>,
    score: f64,
    /// The BY value in ALPHA mode (None: missing, sorts first).
    by: Option<Vec<u8>>,
}

/// Redis's `sortCompare` (before DESC is applied). ALPHA comparisons use
/// `strcoll` in the C locale (C strings, byte order) except with STORE,
/// where they are binary-safe.
fn compare(a: &Item, b: &Item, alpha: bool, by_pattern: bool, store: bool) -> Ordering {
    let text = |x: &[u8], y: &[u8]| {
        if store {
            x.cmp(y)
        } else {
            cstr(x).cmp(cstr(y))
        }
    };
    if !alpha {
        match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.elem.cmp(&b.elem),
            Some(o) => o,
        }
    } else if by_pattern {
        match (&a.by, &b.by) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => text(x, y),
        }
    } else {
        text(&a.elem, &b.elem)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The inclusive output range `[start, end]` over `len` elements, as
/// Redis clamps LIMIT (empty when `end < start`).
fn limit_range(limit_start: i64, limit_count: i64, len: usize) -> (i64, i64) {
    let len = len as i64;
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    (start, end)
}

/// Redis's `signalModifiedKey` for the STORE destination: WATCHers of it
/// fail their EXEC and clients blocked on it get a chance to pop. (The
/// dispatcher also does this conservatively for every key, because SORT
/// has a lock-set override.)
fn signal_modified(ctx: &mut Ctx, db: usize, key: &[u8]) {
    ctx.signal_modified(db, key);
    blocking::note_write(ctx, db, key);
}

fn sort_generic(ctx: &mut Ctx, argv: &[&[u8]], readonly: bool) {
    let mut o = match parse(argv, readonly) {
        Ok(o) => o,
        Err(e) => return ctx.error(e),
    };
    if let Some(e) = super::acl::sort_option_denied(ctx, argv, readonly) {
        return ctx.error(e);
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    if o.reads_other_keys() && !ctx.locks.holds_any() {
        // LockSet::All outside a transaction: lock the database ourselves
        // (released by the dispatcher when the command ends).
        ctx.locks.acquire_all(&[db]);
    }

    // Load the elements in their native order.
    let src = argv[1];
    let sh = ctx.locks.shard(db, src);
    let found = lookup(sh, src, now, true);
    ctx.srv.stats.hit(found.is_some());
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) = match found {
        None => (Kind::List, Vec::new()),
        Some(e) => match e.heap_value_mut() {
            Some(Value::List(l)) => (Kind::List, l.iter().map(|x| x.to_vec()).collect()),
            Some(Value::Set(s)) => (Kind::Set, s.iter().map(|x| x.to_vec()).collect()),
            Some(Value::ZSet(z)) => {
                // Redis converts a listpack sorted set for SORT, for good.
                z.convert_to_skiplist(z.len());
                let mut v = Vec::with_capacity(z.len());
                z.for_each(|m, _| v.push(m.to_vec()));
                (Kind::ZSet, v)
            }
            _ => return ctx.error(err::WRONGTYPE),
        },
    };

    // A set has no native order: with STORE its output must still be
    // deterministic, so it is sorted lexicographically.
    if o.dontsort && kind == Kind::Set && o.store.is_some() {
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    if o.dontsort && kind != Kind::Set && o.desc {
        elems.reverse();
    }

    let (start, end) = limit_range(o.limit_start, o.limit_count, elems.len());
    let mut items: Vec<Item> = elems
        .into_iter()
        .map(|elem| Item {
            elem,
            score: 0.0,
            by: None,
        })
        .collect();

    let mut conversion_error = false;
    if !o.dontsort {
        for it in items.iter_mut() {
            let byval = match o.by {
                Some(p) => match lookup_pattern(ctx, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => {
                    if !o.alpha {
                        match sort_score(&it.elem) {
                            Some(s) => it.score = s,
                            None => conversion_error = true,
                        }
                    }
                    continue;
                }
            };
            if o.alpha {
                it.by = Some(byval);
            } else {
                match sort_score(&byval) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        if !conversion_error {
            let (alpha, by, store, desc) = (o.alpha, o.by.is_some(), o.store.is_some(), o.desc);
            items.sort_by(|a, b| {
                let c = compare(a, b, alpha, by, store);
                if desc {
                    c.reverse()
                } else {
                    c
                }
            });
        }
    }

    if conversion_error {
        return ctx.error("ERR One or more scores can't be converted into double");
    }
    let selected: &[Item] = if end >= start {
        &items[start as usize..=end as usize]
    } else {
        &[]
    };
    let n = selected.len();
    let output_len = if o.gets.is_empty() {
        n
    } else {
        o.gets.len() * n
    };

    match o.store {
        None => {
            let mut vals: Vec<Option<Vec<u8>>> = Vec::new();
            if o.gets.is_empty() {
                let mut r = ctx.r();
                r.array(output_len);
                for it in selected {
                    r.bulk(&it.elem);
                }
                return;
            }
            vals.reserve(output_len);
            for it in selected {
                for g in &o.gets {
                    vals.push(lookup_pattern(ctx, g, &it.elem));
                }
            }
            let mut r = ctx.r();
            r.array(output_len);
            for v in vals {
                match v {
                    Some(b) => r.bulk(&b),
                    None => r.null(),
                }
            }
        }
        Some(dst) => {
            let mut out: Vec<Vec<u8>> = Vec::with_capacity(output_len);
            for it in selected {
                if o.gets.is_empty() {
                    out.push(it.elem.clone());
                } else {
                    for g in &o.gets {
                        out.push(lookup_pattern(ctx, g, &it.elem).unwrap_or_default());
                    }
                }
            }
            let fill = ctx.srv.config.num(HOT.list_max_listpack_size);
            let sh = ctx.locks.shard(db, dst);
            if output_len > 0 {
                let l = ListValue::from_elements(out.iter().map(|v| v.as_slice()), fill);
                sh.insert(dst, Value::List(l), None);
                signal_modified(ctx, db, dst);
                ctx.notify(notify::LIST, "sortstore", dst);
                ctx.srv.add_dirty(output_len as u64);
            } else if sh.contains(dst, now) {
                sh.remove(dst);
                signal_modified(ctx, db, dst);
                ctx.notify(notify::GENERIC, "del", dst);
                ctx.srv.add_dirty(1);
            }
            ctx.r().int(output_len as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(|a| a.as_bytes()).collect()
    }

    #[test]
    fn parses_options_like_redis() {
        let a = args("sort k desc alpha limit 1 2 by w_* get # get h_*->f store d");
        let o = parse(&a, false).unwrap();
        assert!(o.desc && o.alpha && !o.dontsort);
        assert_eq!((o.limit_start, o.limit_count), (1, 2));
        assert_eq!(o.by, Some(&b"w_*"[..]));
        assert_eq!(o.gets, vec![&b"#"[..], &b"h_*->f"[..]]);
        assert_eq!(o.store, Some(&b"d"[..]));
        assert!(o.reads_other_keys());
        assert_eq!(parse(&args("sort k store d"), true), Err(err::SYNTAX));
        assert_eq!(parse(&args("sort k limit 1"), false), Err(err::SYNTAX));
        assert_eq!(
            parse(&args("sort k limit x 1 foo"), false),
            Err(err::NOT_INT)
        );
        assert_eq!(
            parse(&args("sort k foo limit x 1"), false),
            Err(err::SYNTAX)
        );
        let o = parse(&args("sort k by nosort by w_*"), false).unwrap();
        assert!(o.dontsort && !o.reads_other_keys());
        let o = parse(&args("sort k get # get const"), false).unwrap();
        assert!(!o.reads_other_keys());
    }

    #[test]
    fn keys_like_sort_get_keys() {
        assert_eq!(sort_keys(&args("sort abc store def")), Some(vec![1, 3]));
        assert_eq!(
            sort_keys(&args("sort abc store invalid store stillbad store def")),
            Some(vec![1, 7])
        );
        assert_eq!(sort_keys(&args("sort abc get store by x")), Some(vec![1]));
        assert_eq!(sort_keys(&args("sort abc store")), Some(vec![1]));
        assert_eq!(
            sort_keys(&args("sort abc limit store x store y")),
            Some(vec![1, 6])
        );
        assert_eq!(sort_ro_keys(&args("sort_ro abc store x")), Some(vec![1]));
    }

    #[test]
    fn substitutes_patterns() {
        assert_eq!(substitute(b"w_*", b"3"), Some((b"w_3".to_vec(), None)));
        assert_eq!(
            substitute(b"h_*->f", b"3"),
            Some((b"h_3".to_vec(), Some(&b"f"[..])))
        );
        assert_eq!(substitute(b"x:*->", b"a"), Some((b"x:a->".to_vec(), None)));
        assert_eq!(
            substitute(b"a->b*c->d->e", b"Z"),
            Some((b"a->bZc".to_vec(), Some(&b"d->e"[..])))
        );
        assert_eq!(substitute(b"nostar", b"a"), None);
        assert_eq!(substitute(b"*_*", b"a"), Some((b"a_*".to_vec(), None)));
        // Binary-safe element and suffix; '*' and "->" found before a NUL.
        assert_eq!(
            substitute(b"k*\0x", b"a\0b"),
            Some((b"ka\0b\0x".to_vec(), None))
        );
        assert_eq!(
            substitute(b"k*->f\0g", b"a"),
            Some((b"ka".to_vec(), Some(&b"f\0g"[..])))
        );
        assert_eq!(
            substitute(b"k*\0->f", b"a"),
            Some((b"ka\0->f".to_vec(), None))
        );
        assert_eq!(substitute(b"k\0*", b"a"), None);
    }

    #[test]
    fn scores_like_strtod() {
        assert_eq!(sort_score(b"1.5"), Some(1.5));
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"  7"), Some(7.0));
        assert_eq!(sort_score(b"7 "), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"abc"), None);
        assert_eq!(sort_score(b"3\0junk"), Some(3.0));
        // Inexact subnormals are ERANGE for glibc's strtod; exact ones not.
        assert_eq!(sort_score(b"1e-310"), None);
        assert_eq!(sort_score(b"2.2250738585072011e-308"), None);
        assert!(sort_score(b"2.2250738585072014e-308").is_some());
        assert!(sort_score(b"0x1p-1074").is_some());
        assert!(sort_score(b"-0x0.8p-1073").is_some());
        assert!(sort_score(b"0x1.8p-1023").is_some());
        assert_eq!(sort_score(b"0x1.1p-1074"), None);
    }

    #[test]
    fn limit_clamps_like_redis() {
        assert_eq!(limit_range(0, -1, 5), (0, 4));
        assert_eq!(limit_range(-10, 100, 5), (0, 4));
        assert_eq!(limit_range(5, 10, 5), (4, 3));
        assert_eq!(limit_range(1, 0, 5), (1, 0));
        assert_eq!(limit_range(2, i64::MAX, 3), (2, 2));
        assert_eq!(limit_range(0, -1, 0), (-1, -2));
        assert_eq!(limit_range(i64::MIN, i64::MIN, 3), (0, 2));
    }

    fn item(e: &[u8], score: f64, by: Option<&[u8]>) -> Item {
        Item {
            elem: e.to_vec(),
            score,
            by: by.map(|b| b.to_vec()),
        }
    }

    #[test]
    fn compares_like_sort_compare() {
        let a = item(b"b", 1.0, None);
        let b = item(b"a", 1.0, Some(b"x"));
        assert_eq!(compare(&a, &b, false, false, false), Ordering::Greater);
        assert_eq!(compare(&a, &b, true, true, false), Ordering::Less);
        assert_eq!(compare(&a, &b, true, false, false), Ordering::Greater);
        let c = item(b"a\0z", 0.0, None);
        let d = item(b"a\0b", 0.0, None);
        assert_eq!(compare(&c, &d, true, false, false), Ordering::Equal);
        assert_eq!(compare(&c, &d, true, false, true), Ordering::Greater);
        let z = item(b"z", -0.0, None);
        let y = item(b"y", 0.0, None);
        assert_eq!(compare(&z, &y, false, false, false), Ordering::Greater);
    }

    proptest! {
        /// Numeric sorting of integers matches a model sort of (value,
        /// text) pairs, and ALPHA matches byte order.
        #[test]
        fn numeric_and_alpha_match_model(v in proptest::collection::vec(-1000i64..1000, 0..40), desc: bool) {
            let mut items: Vec<Item> = v.iter().map(|n| item(n.to_string().as_bytes(), sort_score(n.to_string().as_bytes()).unwrap(), None)).collect();
            items.sort_by(|a, b| { let c = compare(a, b, false, false, false); if desc { c.reverse() } else { c } });
            let got: Vec<i64> = items.iter().map(|i| std::str::from_utf8(&i.elem).unwrap().parse().unwrap()).collect();
            let mut want = v.clone();
            want.sort();
            if desc { want.reverse(); }
            prop_assert_eq!(got, want);
            items.sort_by(|a, b| compare(a, b, true, false, false));
            let got: Vec<String> = items.iter().map(|i| String::from_utf8(i.elem.clone()).unwrap()).collect();
            let mut want: Vec<String> = v.iter().map(|n| n.to_string()).collect();
            want.sort();
            prop_assert_eq!(got, want);
        }

        /// LIMIT always selects a valid (possibly empty) window.
        #[test]
        fn limit_window_is_valid(s: i64, c: i64, len in 0usize..50) {
            let (start, end) = limit_range(s, c, len);
            if end >= start {
                prop_assert!(start >= 0 && (end as usize) < len);
                let want_start = s.clamp(0, len as i64);
                prop_assert_eq!(start, want_start);
                let want_n = if c < 0 { len as i64 - want_start } else { c.min(len as i64 - want_start) };
                prop_assert_eq!(end - start + 1, want_n);
            } else {
                prop_assert!(c == 0 || s >= len as i64 || len == 0);
            }
        }
    }
}
