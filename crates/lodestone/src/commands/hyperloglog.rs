//! The hyperloglog family (Redis's `hyperloglog.c` commands): PFADD,
//! PFCOUNT, PFMERGE, PFDEBUG and PFSELFTEST. Values are ordinary strings in
//! Redis's exact HLL format (see [`crate::keyspace::types::hll`]).

use super::strings::{lookup, lru_clock};
use super::{err, Ctx, Handler, Registry};
use crate::keyspace::types::hll::{self, REGISTERS};
use crate::keyspace::{Entry, Shard, Str, StrRef, Value};
use resp::Reply;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
pfadd|hyperloglog|-2|2.8.9|write,denyoom,fast|hyperloglog|1,1,1|Adds elements to a HyperLogLog key. Creates the key if it doesn't exist.
pfcount|hyperloglog|-2|2.8.9|readonly,may_replicate|hyperloglog|1,-1,1|Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s).
pfmerge|hyperloglog|-2|2.8.9|write,denyoom|hyperloglog|1,-1,1|Merges one or more HyperLogLog values into a single key.
pfdebug|hyperloglog|3|2.8.9|write,denyoom,admin|hyperloglog|2,2,1|Internal commands for debugging HyperLogLog values.
pfselftest|hyperloglog|1|2.8.9|admin|hyperloglog|-|An internal command for testing HyperLogLog values.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("pfadd", pfadd as Handler),
        ("pfcount", pfcount),
        ("pfmerge", pfmerge),
        ("pfdebug", pfdebug),
        ("pfselftest", pfselftest),
    ]);
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.srv.config.get_num("hll-sparse-max-bytes").max(0) as usize
}

/// Checks that an entry holds an HLL string; replies with Redis's error
/// otherwise (the generic WRONGTYPE for other types).
fn check_hll(e: &Entry, r: &mut Reply) -> bool {
    match e.str() {
        None => {
            r.error(err::WRONGTYPE);
            false
        }
        Some(StrRef::Int(_)) => {
            r.error(hll::ERR_NOT_HLL);
            false
        }
        Some(StrRef::Bytes(b)) => {
            if hll::is_hll(b) {
                true
            } else {
                r.error(hll::ERR_NOT_HLL);
                false
            }
        }
    }
}

fn hll_bytes(e: &Entry) -> &[u8] {
    match e.str() {
        Some(StrRef::Bytes(b)) => b,
        _ => unreachable!("checked by check_hll"),
    }
}

fn insert_new(sh: &mut Shard, key: &[u8], v: Vec<u8>, now: u64) {
    sh.insert_entry(Entry::new_full(
        key,
        Value::Str(Str::raw(v)),
        None,
        lru_clock(now),
    ));
}

fn pfadd(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, max) = (ctx.client.db, ctx.now_ms, sparse_max(ctx));
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let mut updated = 0u64;
    let mut fresh = None;
    let v: &mut Vec<u8> = match lookup(sh, key, now, true) {
        None => {
            updated += 1;
            fresh.insert(hll::new_sparse())
        }
        Some(e) => {
            if !check_hll(e, &mut r) {
                return;
            }
            if argv.len() > 2 && !hll::valid(hll_bytes(e)) {
                return r.error(hll::ERR_INVALID);
            }
            e.str_bytes_mut().expect("checked string")
        }
    };
    for ele in &argv[2..] {
        match hll::add(v, ele, max) {
            Ok(true) => updated += 1,
            Ok(false) => {}
            Err(()) => return r.error(hll::ERR_INVALID),
        }
    }
    if updated > 0 {
        hll::invalidate(v);
    }
    if let Some(v) = fresh {
        insert_new(sh, key, v, now);
    }
    ctx.srv.add_dirty(updated);
    r.int((updated > 0) as i64);
}

fn pfcount(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    if argv.len() > 2 {
        // The union's cardinality; the keys are not modified.
        let mut max = Box::new([0u8; REGISTERS]);
        for key in &argv[1..] {
            let sh = ctx.locks.shard(db, key);
            let mut r = Reply::new(ctx.out, ctx.client.proto);
            let Some(e) = lookup(sh, key, now, true) else {
                ctx.srv.stats.hit(false);
                continue;
            };
            ctx.srv.stats.hit(true);
            if !check_hll(e, &mut r) {
                return;
            }
            if hll::merge_into(&mut max, hll_bytes(e)).is_err() {
                return r.error(hll::ERR_INVALID);
            }
        }
        let n = hll::estimate(&hll::raw_histogram(&max));
        return ctx.r().int(n as i64);
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = lookup(sh, key, now, true) else {
        ctx.srv.stats.hit(false);
        return r.int(0);
    };
    ctx.srv.stats.hit(true);
    if !check_hll(e, &mut r) {
        return;
    }
    let v = e.str_bytes_mut().expect("checked string");
    if let Some(n) = hll::cached(v) {
        return r.int(n as i64);
    }
    let Some(n) = hll::count(v) else {
        return r.error(hll::ERR_INVALID);
    };
    // Caching modifies the value: it counts as a change, as in Redis.
    hll::set_cached(v, n);
    ctx.srv.add_dirty(1);
    ctx.srv.touch_watched(Some(db), Some(key));
    r.int(n as i64);
}

fn pfmerge(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now, maxb) = (ctx.client.db, ctx.now_ms, sparse_max(ctx));
    let mut max = Box::new([0u8; REGISTERS]);
    let mut use_dense = false;
    for key in &argv[1..] {
        let sh = ctx.locks.shard(db, key);
        let mut r = Reply::new(ctx.out, ctx.client.proto);
        let Some(e) = lookup(sh, key, now, true) else {
            continue;
        };
        if !check_hll(e, &mut r) {
            return;
        }
        let b = hll_bytes(e);
        if hll::encoding(b) == hll::DENSE {
            use_dense = true;
        }
        if hll::merge_into(&mut max, b).is_err() {
            return r.error(hll::ERR_INVALID);
        }
    }
    let key = argv[1];
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let mut fresh = None;
    let v: &mut Vec<u8> = match sh.get_mut(key, now) {
        None => fresh.insert(hll::new_sparse()),
        Some(e) => e.str_bytes_mut().expect("checked string"),
    };
    if use_dense && !hll::promote(v) {
        return r.error(hll::ERR_INVALID);
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            let _ = hll::set_register(v, i, m, maxb);
        }
    }
    hll::invalidate(v);
    if let Some(v) = fresh {
        insert_new(sh, key, v, now);
    }
    ctx.srv.add_dirty(1);
    r.ok();
}

fn pfdebug(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let key = argv[2];
    let sh = ctx.locks.shard(db, key);
    let mut r = Reply::new(ctx.out, ctx.client.proto);
    let Some(e) = sh.get_mut(key, now) else {
        return r.error("ERR The specified key does not exist");
    };
    if !check_hll(e, &mut r) {
        return;
    }
    let v = e.str_bytes_mut().expect("checked string");
    let sub = argv[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"getreg" => {
            if hll::encoding(v) == hll::SPARSE {
                if !hll::promote(v) {
                    return r.error(hll::ERR_INVALID);
                }
                ctx.srv.add_dirty(1);
            }
            r.array(REGISTERS);
            for i in 0..REGISTERS {
                r.int(hll::dense_get(&v[hll::HDR..], i) as i64);
            }
        }
        b"decode" => {
            if hll::encoding(v) != hll::SPARSE {
                return r.error("ERR HLL encoding is not sparse");
            }
            r.bulk(hll::decode_text(v).as_bytes());
        }
        b"encoding" => r.simple(if hll::encoding(v) == hll::DENSE {
            "dense"
        } else {
            "sparse"
        }),
        b"todense" => {
            let mut conv = false;
            if hll::encoding(v) == hll::SPARSE {
                if !hll::promote(v) {
                    return r.error(hll::ERR_INVALID);
                }
                conv = true;
                ctx.srv.add_dirty(1);
            }
            r.int(conv as i64);
        }
        _ => r.error(&format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(argv[1])
        )),
    }
}

fn pfselftest(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let maxb = sparse_max(ctx);
    match selftest(maxb) {
        Ok(()) => ctx.ok(),
        Err(e) => ctx.error(&e),
    }
}

/// PFSELFTEST: dense register access, then dense and sparse estimates that
/// agree with each other and stay within the expected error.
fn selftest(maxb: usize) -> Result<(), String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::from_entropy();
    let mut dense = hll::sparse_to_dense(&hll::new_sparse()).expect("valid");
    let mut model = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, m) in model.iter_mut().enumerate() {
            let v: u8 = rng.gen::<u8>() & 63;
            *m = v;
            hll::dense_set(&mut dense[hll::HDR..], i, v);
        }
        for (i, &m) in model.iter().enumerate() {
            let got = hll::dense_get(&dense[hll::HDR..], i);
            if got != m {
                return Err(format!(
                    "TESTFAILED Register {i} should be {m} but is {got}"
                ));
            }
        }
    }
    dense[hll::HDR..].fill(0);
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed: u64 = rng.gen();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_ne_bytes();
        let _ = hll::add(&mut dense, &ele, maxb);
        let _ = hll::add(&mut sparse, &ele, maxb);
        if j != checkpoint {
            continue;
        }
        if (j as usize) < maxb / 2 && hll::encoding(&sparse) != hll::SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let cd = hll::count(&dense).unwrap_or(0);
        if Some(cd) != hll::count(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = (checkpoint as i64 - cd as i64).unsigned_abs();
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}
