//! Persistence commands (Redis's `rdb.c` and `cluster.c` parts): SAVE,
//! BGSAVE, DUMP and RESTORE. The file format and snapshots live in
//! `crate::persist`.

use super::strings::{lookup, lru_clock};
use super::{err, notify, Ctx, Handler, Registry};
use crate::keyspace::{Entry, Locks};
use crate::persist::{self, rdb};
use std::sync::atomic::Ordering;
use strutil::parse_i64;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
save|server|1|1.0.0|no_async_loading,admin,noscript,no_multi|-|-|Synchronously saves the database(s) to disk.
bgsave|server|-1|1.0.0|no_async_loading,admin,noscript|-|-|Asynchronously saves the database(s) to disk.
dump|generic|2|2.6.0|readonly|keyspace|1,1,1|Returns a serialized representation of the value stored at a key.
restore|generic|-4|2.6.0|write,denyoom|keyspace,dangerous|1,1,1|Creates a key from the serialized representation of a value.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("save", save as Handler),
        ("bgsave", bgsave),
        ("dump", dump),
        ("restore", restore),
    ]);
}

/// A foreground save from a command, using the command's held locks.
/// Refuses (rather than deadlocks) when locks are held while a background
/// snapshot runs.
pub fn save_now(ctx: &mut Ctx) -> Result<u64, String> {
    let srv = ctx.srv;
    if ctx.locks.holds_any() {
        if persist::snapshot::is_running(&srv.keyspace) {
            return Err("Background save already in progress".into());
        }
        persist::save(srv, Some(&mut ctx.locks), srv.arc())
    } else {
        persist::save(srv, None, srv.arc())
    }
}

fn save(ctx: &mut Ctx, _argv: &[&[u8]]) {
    if ctx.srv.persist.bgsave_in_progress.load(Ordering::SeqCst) {
        return ctx.error("ERR Background save already in progress");
    }
    match save_now(ctx) {
        Ok(_) => ctx.ok(),
        Err(_) => ctx.error("ERR"),
    }
}

fn bgsave(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut schedule = false;
    if argv.len() > 1 {
        if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"schedule") {
            schedule = true;
        } else {
            return ctx.error(err::SYNTAX);
        }
    }
    // One snapshot at a time: an AOF rewrite is Redis's "other child".
    if ctx.srv.aof.rewrite_in_progress.load(Ordering::SeqCst)
        && !ctx.srv.persist.bgsave_in_progress.load(Ordering::SeqCst)
    {
        if schedule {
            ctx.srv
                .persist
                .bgsave_scheduled
                .store(true, Ordering::SeqCst);
            return ctx.r().simple("Background saving scheduled");
        }
        return ctx.error("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.");
    }
    match persist::bgsave(ctx.srv) {
        Ok(()) => ctx.r().simple("Background saving started"),
        // As in Redis, SCHEDULE only waits for the other kind of snapshot
        // (an AOF rewrite): a save already running is an error either way.
        Err(persist::BgError::InProgress) => ctx.error("ERR Background save already in progress"),
        Err(persist::BgError::NoServer) => ctx.error("ERR"),
    }
}

fn dump(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let touch = ctx.touch_ok();
    let opts = persist::save_opts(ctx.srv);
    let sh = ctx.locks.shard(db, argv[1]);
    let payload = lookup(sh, argv[1], now, touch).map(|e| rdb::dump_payload(&e.value(), &opts));
    ctx.srv.stats.hit(payload.is_some());
    match payload {
        Some(p) => ctx.r().bulk(&p),
        None => ctx.r().null(),
    }
}

/// Whether RESTORE payloads get the deep (listpack-level) checks.
fn deep_sanitize(ctx: &Ctx) -> bool {
    matches!(
        ctx.srv.config.get_str("sanitize-dump-payload").as_str(),
        "yes" | "clients"
    )
}

pub(super) fn restore(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (mut replace, mut absttl) = (false, false);
    let (mut freq, mut idle): (i64, i64) = (-1, -1);
    let mut j = 4;
    while j < argv.len() {
        let more = argv.len() - j - 1;
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"absttl") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"idletime") && more >= 1 && freq == -1 {
            let Some(v) = parse_i64(argv[j + 1]) else {
                return ctx.error(err::NOT_INT);
            };
            if v < 0 {
                return ctx.error("ERR Invalid IDLETIME value, must be >= 0");
            }
            idle = v;
            j += 1;
        } else if a.eq_ignore_ascii_case(b"freq") && more >= 1 && idle == -1 {
            let Some(v) = parse_i64(argv[j + 1]) else {
                return ctx.error(err::NOT_INT);
            };
            if !(0..=255).contains(&v) {
                return ctx.error("ERR Invalid FREQ value, must be >= 0 and <= 255");
            }
            freq = v;
            j += 1;
        } else {
            return ctx.error(err::SYNTAX);
        }
        j += 1;
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let key = argv[1];
    if !replace && ctx.locks.shard(db, key).contains(key, now) {
        return ctx.error("BUSYKEY Target key name already exists.");
    }
    let Some(ttl) = parse_i64(argv[2]) else {
        return ctx.error(err::NOT_INT);
    };
    if ttl < 0 {
        return ctx.error("ERR Invalid TTL value, must be >= 0");
    }
    let payload = argv[3];
    let check_crc = !persist::SKIP_CHECKSUM.load(Ordering::Relaxed);
    if !rdb::verify_payload(payload, check_crc) {
        return ctx.error("ERR DUMP payload version or checksum are wrong");
    }
    let lim = persist::build_limits(ctx.srv, deep_sanitize(ctx));
    let value = match rdb::read_payload(payload, &lim) {
        Ok(v) => v,
        Err(_) => return ctx.error("ERR Bad data format"),
    };
    let sh = ctx.locks.shard(db, key);
    let deleted = replace && sh.remove(key).is_some();
    let at = if ttl > 0 && !absttl {
        Some(now as i64 + ttl)
    } else if ttl > 0 {
        Some(ttl)
    } else {
        None
    };
    if let Some(t) = at {
        if t <= now as i64 {
            if deleted {
                ctx.notify(notify::GENERIC, "del", key);
                ctx.srv.add_dirty(1);
                // The replaced key is gone: that is the effect.
                let del: &[u8] = if ctx.srv.config.get_bool("lazyfree-lazy-server-del") {
                    b"UNLINK"
                } else {
                    b"DEL"
                };
                ctx.propagate_as(&[del, key]);
            }
            return ctx.ok();
        }
    }
    let lfu = ctx.srv.config.get_str("maxmemory-policy").contains("lfu");
    let clock = lru_clock(now);
    let lru = if lfu {
        let minutes = ((now / 60000) & 0xffff) as u32;
        (minutes << 8) | if freq >= 0 { freq as u32 } else { 5 }
    } else if idle >= 0 {
        clock.wrapping_sub(idle.min(0xff_ffff) as u32) & 0xff_ffff
    } else {
        clock
    };
    let sh = ctx.locks.shard(db, key);
    sh.insert_entry(Entry::new_full(key, value, at.map(|t| t as u64), lru));
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.srv.add_dirty(1);
    if let (Some(t), false) = (at, absttl) {
        // A relative TTL travels as an absolute time (Redis appends ABSTTL).
        if ctx.propagating() {
            let abs = t.to_string();
            let mut v: Vec<&[u8]> = argv.to_vec();
            v[2] = abs.as_bytes();
            v.push(b"ABSTTL");
            ctx.propagate_as(&v);
        }
    }
    ctx.ok();
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: save, empty, load back
/// (NOFLUSH keeps the dataset, MERGE lets the file replace what exists).
pub fn debug_reload(ctx: &mut Ctx, argv: &[&[u8]]) {
    let (mut save_first, mut flush, mut merge) = (true, true, false);
    for a in &argv[2..] {
        match a.to_ascii_lowercase().as_slice() {
            b"nosave" => save_first = false,
            b"noflush" => flush = false,
            b"merge" => merge = true,
            _ => {
                return ctx
                    .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
            }
        }
    }
    if ctx.locks.holds_any() && persist::snapshot::is_running(&ctx.srv.keyspace) {
        return ctx.error("ERR Background save already in progress");
    }
    let srv = ctx.srv;
    let locks: &mut Locks = &mut ctx.locks;
    match persist::debug_reload(srv, locks, save_first, flush, merge) {
        Ok(()) => {
            persist::log("DB reloaded by DEBUG RELOAD");
            ctx.ok()
        }
        Err(e) => {
            persist::log(&format!("DEBUG RELOAD failed: {e}"));
            ctx.error("ERR Error trying to load the RDB dump, check server logs.")
        }
    }
}

/// The size of a value's RDB serialization (DEBUG OBJECT's
/// serializedlength).
pub fn serialized_length(ctx: &Ctx, v: &crate::keyspace::Value) -> usize {
    let mut out = Vec::new();
    rdb::put_value(&mut out, v, &persist::save_opts(ctx.srv));
    out.len()
}
