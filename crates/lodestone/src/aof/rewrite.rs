//! The AOF base written as commands (`aof-use-rdb-preamble no`).
//!
//! [`CommandSink`] is a `keyspace::ShardSink`: the fork-less snapshot
//! (`persist::snapshot::run_at`) hands it every shard as it was at the
//! rewrite's switch point, and it streams each entry out as the commands
//! that recreate it (SELECT when the database changes, batches of 64
//! items, PEXPIREAT for a TTL). With the preamble on, the RDB writer's
//! `persist::RdbSink` takes its place.

use super::super::commands::propagate::encode_argv;
use crate::keyspace::entry::Value;
use crate::keyspace::types::stream::StreamId;
use crate::keyspace::{Shard, ShardSink};
use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many elements one rewritten command carries (Redis's
/// AOF_REWRITE_ITEMS_PER_CMD).
const ITEMS_PER_CMD: usize = 64;

/// Streams captured shards into `w` as commands. Shards of different
/// databases may arrive interleaved (writers capture out of order), so
/// the current database is tracked per write.
pub struct CommandSink {
    out: Mutex<Out>,
    /// Entries already expired at the snapshot point are left out.
    now_ms: u64,
    keys: AtomicU64,
}

struct Out {
    w: Box<dyn Write + Send>,
    db: Option<usize>,
    err: Option<String>,
}

impl CommandSink {
    /// A sink writing to `w`; `now_ms` is the snapshot point's time.
    pub fn new(w: Box<dyn Write + Send>, now_ms: u64) -> CommandSink {
        CommandSink {
            out: Mutex::new(Out {
                w,
                db: None,
                err: None,
            }),
            now_ms,
            keys: AtomicU64::new(0),
        }
    }

    /// Writes `FUNCTION LOAD <code>` for each library, ahead of the keys
    /// (as Redis's rewriteFunctions does).
    pub fn write_functions(&self, libs: &[Vec<u8>]) {
        let mut o = self.out.lock();
        let mut buf = Vec::new();
        for code in libs {
            buf.clear();
            encode_argv(&mut buf, &[&b"FUNCTION"[..], b"LOAD", code]);
            if let Err(e) = o.w.write_all(&buf) {
                o.err.get_or_insert(e.to_string());
            }
        }
    }

    /// Keys written so far.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    /// Flushes the writer; returns the first I/O error met, if any.
    pub fn finish(&self) -> Result<(), String> {
        let mut o = self.out.lock();
        if let Err(e) = o.w.flush() {
            o.err.get_or_insert(e.to_string());
        }
        match o.err.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl ShardSink for CommandSink {
    fn shard(&self, db: usize, _idx: usize, sh: &Shard) -> usize {
        if sh.is_empty() {
            return 0;
        }
        // Encoded outside the output lock, so writers capturing shards in
        // parallel only serialize on the write itself.
        let mut buf = Vec::with_capacity(64 * sh.len());
        let mut n = 0;
        for e in sh.iter() {
            if e.is_expired(self.now_ms) {
                continue;
            }
            entry_commands(&mut buf, e.key(), &e.value(), e.expire_at());
            n += 1;
        }
        let mut o = self.out.lock();
        if o.err.is_none() {
            if o.db != Some(db) {
                let mut sel = Vec::new();
                encode_argv(&mut sel, &[b"SELECT".to_vec(), db.to_string().into_bytes()]);
                if let Err(e) = o.w.write_all(&sel) {
                    o.err = Some(e.to_string());
                }
                o.db = Some(db);
            }
            if let Err(e) = o.w.write_all(&buf) {
                o.err.get_or_insert(e.to_string());
            }
        }
        drop(o);
        self.keys.fetch_add(n, Ordering::Relaxed);
        sh.len()
    }
}

/// Appends the commands that recreate one key (value, then PEXPIREAT for
/// a TTL) to `buf`.
pub fn entry_commands(buf: &mut Vec<u8>, key: &[u8], value: &Value, expire: Option<u64>) {
    value_commands(key, value, &mut |argv| encode_argv(buf, argv));
    if let Some(t) = expire {
        encode_argv(
            buf,
            &[
                b"PEXPIREAT".to_vec(),
                key.to_vec(),
                t.to_string().into_bytes(),
            ],
        );
    }
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
