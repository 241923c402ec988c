//! The AOF base: a point-in-time image of the dataset written as commands
//! (`aof-use-rdb-preamble no` form).
//!
//! First version: [`take_image`] holds every shard of every database at
//! once (the caller does, while it also switches the AOF to a new incr
//! file) and copies the live entries, so the image is exactly the state
//! at which the new incr file starts; the copy is then written out on a
//! background thread by [`write_base`]. The pause is one copy of the
//! dataset. This is the seam where the fork-less snapshot (serialize a
//! shard before a writer changes it) and the RDB preamble plug in:
//! `take_image` + `write_base` become "start a snapshot at this point and
//! stream it as RDB".

use super::super::commands::propagate::encode_argv;
use crate::keyspace::entry::Value;
use crate::keyspace::types::stream::StreamId;
use crate::keyspace::{Locks, SHARDS};
use std::io::{self, Write};

/// One key of the image: (db, key, value, absolute expiry in ms).
pub type ImageEntry = (usize, Vec<u8>, Value, Option<u64>);

/// How many elements one rewritten command carries (Redis's
/// AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

/// Copies every live entry of the databases whose shards `locks` holds
/// (all of them). Expired entries are left out.
pub fn take_image(locks: &mut Locks, dbs: usize, now_ms: u64) -> Vec<ImageEntry> {
    let mut out = Vec::new();
    for db in 0..dbs {
        for i in 0..SHARDS {
            let sh = locks.shard_at((db as u32, i as u32));
            for e in sh.iter() {
                if e.is_expired(now_ms) {
                    continue;
                }
                out.push((db, e.key().to_vec(), e.value(), e.expire_at()));
            }
        }
    }
    out
}

/// Writes the image as commands: SELECT per db, one or more commands per
/// key (batches of 64 items), PEXPIREAT for keys with a TTL.
pub fn write_base(w: &mut impl Write, image: &[ImageEntry]) -> io::Result<()> {
    let mut cur_db = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    for (db, key, value, expire) in image {
        if cur_db != Some(*db) {
            encode_argv(&mut buf, &[b"SELECT".to_vec(), db.to_string().into_bytes()]);
            cur_db = Some(*db);
        }
        value_commands(key, value, &mut |argv| encode_argv(&mut buf, argv));
        if let Some(t) = expire {
            encode_argv(
                &mut buf,
                &[
                    b"PEXPIREAT".to_vec(),
                    key.clone(),
                    t.to_string().into_bytes(),
                ],
            );
        }
        if buf.len() >= 32 * 1024 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)
}

/// Calls `emit` with the commands that recreate `value` at `key`.
pub fn value_commands(key: &[u8], value: &Value, emit: &mut dyn FnMut(&[Vec<u8>])) {
    let batched = |name: &[u8],
                   items: &mut dyn Iterator<Item = Vec<Vec<u8>>>,
                   emit: &mut dyn FnMut(&[Vec<u8>])| {
        let mut argv = vec![name.to_vec(), key.to_vec()];
        let mut n = 0;
        for it in items {
            argv.extend(it);
            n += 1;
            if n == ITEMS_PER_CMD {
                emit(&argv);
                argv.truncate(2);
                n = 0;
            }
        }
        if n > 0 {
            emit(&argv);
        }
    };
    match value {
        Value::Str(s) => s.with_bytes(|b| emit(&[b"SET".to_vec(), key.to_vec(), b.to_vec()])),
        Value::List(l) => batched(b"RPUSH", &mut l.iter().map(|e| vec![e.to_vec()]), emit),
        Value::Set(s) => batched(b"SADD", &mut s.iter().map(|e| vec![e.to_vec()]), emit),
        Value::Hash(h) => batched(
            b"HSET",
            &mut h.iter().map(|(f, v)| vec![f.to_vec(), v.to_vec()]),
            emit,
        ),
        Value::ZSet(z) => {
            let items = z.to_vec();
            batched(
                b"ZADD",
                &mut items
                    .into_iter()
                    .map(|(m, s)| vec![strutil::format_double(s).into_bytes(), m]),
                emit,
            )
        }
        Value::Stream(s) => stream_commands(key, s, emit),
    }
}

fn id(i: StreamId) -> Vec<u8> {
    i.to_bytes()
}

/// A stream: its entries, its ID counters, then groups with their
/// pending entries (as forced XCLAIMs) and idle consumers.
fn stream_commands(
    key: &[u8],
    s: &crate::keyspace::types::stream::StreamValue,
    emit: &mut dyn FnMut(&[Vec<u8>]),
) {
    let k = || key.to_vec();
    if s.is_empty() {
        // XADD creates the key, MAXLEN 0 leaves it empty (0-1 is valid even
        // when the stream's last ID is 0-0); XSETID below sets the IDs.
        emit(&[
            b"XADD".to_vec(),
            k(),
            b"MAXLEN".to_vec(),
            b"0".to_vec(),
            b"0-1".to_vec(),
            b"x".to_vec(),
            b"y".to_vec(),
        ]);
    } else {
        s.walk(StreamId::MIN, StreamId::MAX, false, &mut |eid, fv| {
            let mut argv = vec![b"XADD".to_vec(), k(), id(eid)];
            argv.extend(fv.iter().map(|x| x.to_vec()));
            emit(&argv);
            true
        });
    }
    emit(&[
        b"XSETID".to_vec(),
        k(),
        id(s.last_id),
        b"ENTRIESADDED".to_vec(),
        s.entries_added.to_string().into_bytes(),
        b"MAXDELETEDID".to_vec(),
        id(s.max_deleted),
    ]);
    for (gname, g) in &s.groups {
        emit(&[
            b"XGROUP".to_vec(),
            b"CREATE".to_vec(),
            k(),
            gname.clone(),
            id(g.last_id),
            b"ENTRIESREAD".to_vec(),
            g.entries_read.to_string().into_bytes(),
        ]);
        for (pid, nack) in &g.pel {
            emit(&[
                b"XCLAIM".to_vec(),
                k(),
                gname.clone(),
                nack.consumer.to_vec(),
                b"0".to_vec(),
                id(*pid),
                b"TIME".to_vec(),
                nack.delivery_time.to_string().into_bytes(),
                b"RETRYCOUNT".to_vec(),
                nack.delivery_count.to_string().into_bytes(),
                b"JUSTID".to_vec(),
                b"FORCE".to_vec(),
            ]);
        }
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                emit(&[
                    b"XGROUP".to_vec(),
                    b"CREATECONSUMER".to_vec(),
                    k(),
                    gname.clone(),
                    cname.clone(),
                ]);
            }
        }
    }
}
