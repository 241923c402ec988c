//! Persistence: RDB files (SAVE, BGSAVE, DEBUG RELOAD, SHUTDOWN, startup
//! load, `save` points) on top of the fork-free snapshot in [`snapshot`].
//!
//! - [`packs`]: Redis's listpack / ziplist / intset / zipmap byte formats.
//! - [`rdb`]: values, entries, DUMP payloads and the file loader.
//! - [`snapshot`]: point-in-time capture while writes go on.
//!
//! Files are written to `temp-<pid>-<n>.rdb` in the working directory
//! (`dir`) and renamed over `dbfilename` once complete and synced.

pub mod packs;
pub mod rdb;
pub mod snapshot;

use crate::keyspace::{shard_of, Entry, Locks, Shard, ShardSink};
use crate::server::{now_ms, Server};
use parking_lot::{Mutex, RwLock};
use std::io::{BufReader, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION: RESTORE accepts payloads whose
/// CRC-64 does not match.
pub static SKIP_CHECKSUM: AtomicBool = AtomicBool::new(false);

/// Persistence status shared by all threads (INFO persistence, LASTSAVE,
/// MISCONF decisions).
pub struct State {
    pub bgsave_in_progress: AtomicBool,
    /// BGSAVE SCHEDULE while one ran: start another when it ends.
    pub bgsave_scheduled: AtomicBool,
    pub bgsave_start_ms: AtomicU64,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_secs: AtomicI64,
    /// When the last BGSAVE was attempted (failed ones retry after 5 s).
    pub last_bgsave_try_ms: AtomicU64,
    pub saves: AtomicU64,
    pub loading: AtomicBool,
    /// The startup load (RDB or AOF) is running while clients connect:
    /// commands without the `loading` flag get `-LOADING`.
    pub startup_loading: AtomicBool,
    pub loading_start: AtomicU64,
    pub loading_total: AtomicU64,
    pub loading_loaded: AtomicU64,
    pub loading_keys: AtomicU64,
    /// The `used-mem` AUX field of the file being loaded.
    pub loading_used_mem: AtomicU64,
    /// Keys captured by the running snapshot so far / in the last one.
    pub save_keys: AtomicU64,
    /// Function library code kept for the next save when no scripting
    /// engine has registered a [`FunctionHook`].
    pub kept_functions: Mutex<Vec<Vec<u8>>>,
    tmp_seq: AtomicU64,
}

impl Default for State {
    fn default() -> Self {
        State {
            bgsave_in_progress: AtomicBool::new(false),
            bgsave_scheduled: AtomicBool::new(false),
            bgsave_start_ms: AtomicU64::new(0),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            last_bgsave_try_ms: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            startup_loading: AtomicBool::new(false),
            loading_start: AtomicU64::new(0),
            loading_total: AtomicU64::new(0),
            loading_loaded: AtomicU64::new(0),
            loading_keys: AtomicU64::new(0),
            loading_used_mem: AtomicU64::new(0),
            save_keys: AtomicU64::new(0),
            kept_functions: Mutex::new(Vec::new()),
            tmp_seq: AtomicU64::new(0),
        }
    }
}

/// How the scripting engine takes part in RDB files: FUNCTION2 records
/// carry each library's code. Register with [`set_function_hook`]; until
/// then library code found in a file is kept verbatim and saved again.
pub trait FunctionHook: Send + Sync {
    /// The code of every loaded library, to save.
    fn libraries(&self, srv: &Server) -> Vec<Vec<u8>>;
    /// Loads one library from a file (the `FUNCTION LOAD` path; with
    /// `replace` a library of the same name is replaced, else an error).
    fn load(&self, srv: &Server, code: &[u8], replace: bool) -> Result<(), String>;
    /// Drops every library (before DEBUG RELOAD loads the file again).
    fn flush(&self, srv: &Server);
}

static FUNCTION_HOOK: RwLock<Option<Arc<dyn FunctionHook>>> = RwLock::new(None);

/// Installs the scripting engine's [`FunctionHook`].
pub fn set_function_hook(h: Arc<dyn FunctionHook>) {
    *FUNCTION_HOOK.write() = Some(h);
}

/// The code of every function library (from the scripting engine's
/// hook, else the code kept from the last load): what a save or an AOF
/// rewrite writes.
pub fn function_libraries(srv: &Server) -> Vec<Vec<u8>> {
    match FUNCTION_HOOK.read().clone() {
        Some(h) => h.libraries(srv),
        None => srv.persist.kept_functions.lock().clone(),
    }
}

fn function_load(srv: &Server, code: Vec<u8>, replace: bool) -> Result<(), String> {
    match FUNCTION_HOOK.read().clone() {
        Some(h) => h.load(srv, &code, replace),
        None => {
            srv.persist.kept_functions.lock().push(code);
            Ok(())
        }
    }
}

/// Drops every function library (Redis's emptyData does, before a
/// reload).
pub fn function_flush(srv: &Server) {
    match FUNCTION_HOOK.read().clone() {
        Some(h) => h.flush(srv),
        None => srv.persist.kept_functions.lock().clear(),
    }
}

/// The save options from the configuration.
pub fn save_opts(srv: &Server) -> rdb::SaveOpts {
    rdb::SaveOpts {
        version: srv.config.get_num("rdb-version").clamp(10, 11) as u16,
        compress: srv.config.get_bool("rdbcompression"),
    }
}

fn lru_mode(srv: &Server) -> rdb::LruMode {
    let p = srv.config.get_str("maxmemory-policy");
    if p.contains("lfu") {
        rdb::LruMode::Lfu
    } else if p.contains("lru") {
        rdb::LruMode::Lru {
            clock: crate::commands::strings::lru_clock(now_ms()),
        }
    } else {
        rdb::LruMode::None
    }
}

/// The encoding thresholds loaded values are rebuilt with.
pub fn build_limits(srv: &Server, deep: bool) -> rdb::BuildLimits {
    let c = &srv.config;
    let n = |name: &str| c.get_num(name).max(0) as usize;
    rdb::BuildLimits {
        hash: crate::keyspace::types::hash::Limits {
            max_entries: n("hash-max-listpack-entries"),
            max_value: n("hash-max-listpack-value"),
        },
        set: crate::keyspace::types::set::Limits {
            intset_entries: n("set-max-intset-entries"),
            lp_entries: n("set-max-listpack-entries"),
            lp_value: n("set-max-listpack-value"),
        },
        zset: crate::keyspace::types::zset::Limits {
            max_entries: n("zset-max-listpack-entries"),
            max_value: n("zset-max-listpack-value"),
        },
        list_fill: c.get_num("list-max-listpack-size"),
        stream: crate::keyspace::types::stream::NodeLimits {
            max_bytes: n("stream-node-max-bytes"),
            max_entries: n("stream-node-max-entries"),
        },
        deep,
    }
}

/// The `save` points: (seconds, changes).
pub fn save_points(srv: &Server) -> Vec<(u64, u64)> {
    let s = srv.config.get_str("save");
    let w: Vec<u64> = s
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    w.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

/// Streams captured shards into an RDB file (or any writer), computing the
/// CRC-64 as it goes.
pub struct RdbSink {
    opts: rdb::SaveOpts,
    lru: rdb::LruMode,
    out: Mutex<SinkOut>,
    srv_keys: Option<Arc<Server>>,
    /// Keys written, whoever captured them (walker or writers).
    keys: AtomicU64,
    /// What the walker waits on between shards ([`ShardSink::pace`]).
    pub pace: Option<Box<dyn Fn() + Send + Sync>>,
    /// AUX repl-* fields, set at the snapshot point and written before EOF
    /// (the header is written before the point is known; loaders take
    /// AUX records anywhere).
    repl_aux: Mutex<Vec<u8>>,
}

struct SinkOut {
    w: Box<dyn Write + Send>,
    crc: crc::Digest<'static, u64, crc::Table<16>>,
    db: Option<usize>,
    err: Option<String>,
    bytes: u64,
}

impl SinkOut {
    fn write(&mut self, b: &[u8]) {
        if self.err.is_some() {
            return;
        }
        self.crc.update(b);
        self.bytes += b.len() as u64;
        if let Err(e) = self.w.write_all(b) {
            self.err = Some(e.to_string());
        }
    }
}

impl RdbSink {
    /// A sink writing to `w`; writes the header, AUX fields and function
    /// libraries at once.
    pub fn new(srv: &Server, w: Box<dyn Write + Send>) -> RdbSink {
        Self::with_kind(srv, w, false)
    }

    /// Like [`RdbSink::new`]; `aof_base` marks the file as an AOF base
    /// (AUX `aof-base 1`, the RDB preamble of `aof-use-rdb-preamble`).
    pub fn with_kind(srv: &Server, w: Box<dyn Write + Send>, aof_base: bool) -> RdbSink {
        let opts = save_opts(srv);
        let sink = RdbSink {
            opts,
            lru: lru_mode(srv),
            out: Mutex::new(SinkOut {
                w,
                crc: rdb::CRC64.digest(),
                db: None,
                err: None,
                bytes: 0,
            }),
            srv_keys: None,
            keys: AtomicU64::new(0),
            pace: None,
            repl_aux: Mutex::new(Vec::new()),
        };
        let mut pre = rdb::header(opts.version);
        rdb::put_aux(&mut pre, "redis-ver", crate::REDIS_VERSION.as_bytes());
        rdb::put_aux(&mut pre, "redis-bits", b"64");
        rdb::put_aux(&mut pre, "ctime", (now_ms() / 1000).to_string().as_bytes());
        let used = crate::commands::admin::mem_info(srv).used;
        rdb::put_aux(&mut pre, "used-mem", used.to_string().as_bytes());
        rdb::put_aux(&mut pre, "aof-base", if aof_base { b"1" } else { b"0" });
        for code in function_libraries(srv) {
            pre.push(rdb::OP_FUNCTION2);
            rdb::put_string(&mut pre, &code, opts.compress);
        }
        sink.out.lock().write(&pre);
        sink
    }

    /// Records the replication history at the snapshot point (Redis's
    /// rdbSaveInfo); nothing for `None`.
    pub fn set_repl_info(&self, info: Option<crate::repl::SaveInfo>) {
        let mut aux = Vec::new();
        if let Some(i) = info {
            rdb::put_aux(
                &mut aux,
                "repl-stream-db",
                i.stream_db.to_string().as_bytes(),
            );
            rdb::put_aux(&mut aux, "repl-id", i.replid.as_bytes());
            rdb::put_aux(&mut aux, "repl-offset", i.offset.to_string().as_bytes());
        }
        *self.repl_aux.lock() = aux;
    }

    /// Keys written so far, whoever captured them.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }

    /// Writes EOF and the checksum (0 with `rdbchecksum no`) and flushes.
    /// Returns the bytes written, or the first I/O error.
    pub fn finish(&self, checksum: bool) -> Result<u64, String> {
        let aux = std::mem::take(&mut *self.repl_aux.lock());
        let mut o = self.out.lock();
        o.write(&aux);
        o.write(&[rdb::OP_EOF]);
        let crc = if checksum {
            o.crc.clone().finalize()
        } else {
            0
        };
        o.write(&crc.to_le_bytes());
        if let Err(e) = o.w.flush() {
            o.err.get_or_insert(e.to_string());
        }
        match o.err.take() {
            Some(e) => Err(e),
            None => Ok(o.bytes),
        }
    }
}

impl ShardSink for RdbSink {
    fn shard(&self, db: usize, _idx: usize, sh: &Shard) -> usize {
        if sh.is_empty() {
            return 0;
        }
        let mut buf = Vec::with_capacity(64 * sh.len());
        for e in sh.iter() {
            rdb::put_entry(&mut buf, e, &self.opts, self.lru);
        }
        let mut o = self.out.lock();
        if o.db != Some(db) {
            let mut sel = vec![rdb::OP_SELECTDB];
            rdb::put_len(&mut sel, db as u64);
            o.write(&sel);
            o.db = Some(db);
        }
        o.write(&buf);
        drop(o);
        self.keys.fetch_add(sh.len() as u64, Ordering::Relaxed);
        if let Some(s) = &self.srv_keys {
            s.persist
                .save_keys
                .fetch_add(sh.len() as u64, Ordering::Relaxed);
        }
        sh.len()
    }

    fn pace(&self) {
        if let Some(p) = &self.pace {
            p();
        }
    }
}

/// A buffered file whose flush also syncs it to disk.
pub struct FileOut(pub BufWriter<std::fs::File>);

impl Write for FileOut {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_all()
    }
}

/// Writes a snapshot to `dbfilename` (via a temp file and rename). `locks`
/// are the caller's held locks, if any. Returns the keys saved.
pub fn save<'a>(
    srv: &'a Server,
    locks: Option<&mut Locks<'a>>,
    arc: Option<Arc<Server>>,
) -> Result<u64, String> {
    let path = srv.config.get_str("dbfilename");
    let n = srv.persist.tmp_seq.fetch_add(1, Ordering::Relaxed);
    let tmp = format!("temp-{}-{n}.rdb", std::process::id());
    let f = std::fs::File::create(&tmp).map_err(|e| {
        format!(
            "Failed opening the temp RDB file {tmp} (in server root dir {}) for saving: {e}",
            cwd()
        )
    })?;
    let dirty_start = srv.dirty.load(Ordering::SeqCst);
    let start = std::time::Instant::now();
    let mut sink = RdbSink::new(srv, Box::new(FileOut(BufWriter::with_capacity(1 << 20, f))));
    sink.srv_keys = arc;
    let sink = Arc::new(sink);
    srv.persist.save_keys.store(0, Ordering::Relaxed);
    let delay = || srv.config.get_num("rdb-key-save-delay");
    match locks {
        // The caller's locks: its point is now.
        Some(l) => {
            sink.set_repl_info(crate::repl::save_info(srv));
            snapshot::run(&srv.keyspace, Some(l), sink.clone(), &delay);
        }
        // Every shard held (and the replica's stream paused) at the point,
        // so the recorded offset matches the data.
        None => {
            let apply = std::cell::RefCell::new(None);
            snapshot::run_at(
                &srv.keyspace,
                sink.clone(),
                &delay,
                || *apply.borrow_mut() = Some(crate::repl::hold_apply(srv)),
                || {
                    sink.set_repl_info(crate::repl::save_info(srv));
                    apply.borrow_mut().take();
                },
            );
        }
    }
    let keys = sink.keys.load(Ordering::Relaxed);
    let res = sink
        .finish(srv.config.get_bool("rdbchecksum"))
        .and_then(|bytes| {
            std::fs::rename(&tmp, &path)
                .map(|_| bytes)
                .map_err(|e| format!("Error moving temp DB file {tmp} on the final destination {path} (in server root dir {}): {e}", cwd()))
        });
    match res {
        Ok(bytes) => {
            srv.dirty.fetch_sub(
                dirty_start.min(srv.dirty.load(Ordering::SeqCst)),
                Ordering::SeqCst,
            );
            srv.lastsave.store(now_ms() / 1000, Ordering::SeqCst);
            srv.persist.saves.fetch_add(1, Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64();
            log(&format!(
                "DB saved on disk ({keys} keys, {bytes} bytes, {:.3} s)",
                secs
            ));
            Ok(keys)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            log(&format!("Write error saving DB on disk: {e}"));
            Err(e)
        }
    }
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// Writes a log line in Redis's format.
pub fn log(msg: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    eprintln!(
        "{}:M {}.{:03} * {msg}",
        std::process::id(),
        now.as_secs(),
        now.subsec_millis()
    );
}

/// Why BGSAVE could not start.
pub enum BgError {
    InProgress,
    NoServer,
}

/// Starts a background save on its own thread.
pub fn bgsave(srv: &Server) -> Result<(), BgError> {
    let Some(arc) = srv.arc() else {
        return Err(BgError::NoServer);
    };
    if srv
        .persist
        .bgsave_in_progress
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(BgError::InProgress);
    }
    let now = now_ms();
    srv.persist.bgsave_start_ms.store(now, Ordering::SeqCst);
    srv.persist.last_bgsave_try_ms.store(now, Ordering::SeqCst);
    log("Background saving started");
    // Redis's point in time is the fork, before the reply: wait until the
    // snapshot's epoch is handed out, so writes the client sends after
    // "Background saving started" are not in the file.
    let epoch_before = srv.keyspace.snap.last.load(Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || {
            let srv = &*arc;
            let r = save(srv, None, Some(arc.clone()));
            let secs = (now_ms() - srv.persist.bgsave_start_ms.load(Ordering::SeqCst)) / 1000;
            srv.persist
                .last_bgsave_secs
                .store(secs as i64, Ordering::SeqCst);
            srv.persist
                .last_bgsave_ok
                .store(r.is_ok(), Ordering::SeqCst);
            if r.is_ok() {
                log("Background saving terminated with success");
            } else {
                log("Background saving error");
            }
            srv.persist
                .bgsave_in_progress
                .store(false, Ordering::SeqCst);
        });
    if spawned.is_err() {
        srv.persist
            .bgsave_in_progress
            .store(false, Ordering::SeqCst);
        srv.persist.last_bgsave_ok.store(false, Ordering::SeqCst);
        return Ok(());
    }
    // Another snapshot running (a replica's sync) holds ours back: then the
    // point is when it ends, as a scheduled save's would be.
    if !snapshot::is_running(&srv.keyspace) {
        while srv.keyspace.snap.active.load(Ordering::SeqCst) <= epoch_before
            && srv.persist.bgsave_in_progress.load(Ordering::SeqCst)
        {
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    }
    Ok(())
}

/// Whether writes are refused with MISCONF (a failed BGSAVE while save
/// points are configured and stop-writes-on-bgsave-error is on).
pub fn writes_denied(srv: &Server) -> bool {
    !srv.persist.last_bgsave_ok.load(Ordering::Relaxed)
        && srv.config.get_bool("stop-writes-on-bgsave-error")
        && !save_points(srv).is_empty()
}

/// Redis's MISCONF error text.
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// serverCron's part: starts a BGSAVE when a save point is reached (or
/// one was scheduled). Called from one worker's timer.
pub fn cron(srv: &Server) {
    if srv.persist.bgsave_in_progress.load(Ordering::Relaxed)
        || srv.aof.rewrite_in_progress.load(Ordering::Relaxed)
    {
        return;
    }
    if srv.persist.bgsave_scheduled.swap(false, Ordering::SeqCst) {
        let _ = bgsave(srv);
        return;
    }
    let dirty = srv.dirty.load(Ordering::Relaxed);
    if dirty == 0 {
        return;
    }
    let now = now_ms();
    let since_save = now / 1000 - srv.lastsave.load(Ordering::Relaxed).min(now / 1000);
    let last_try = srv.persist.last_bgsave_try_ms.load(Ordering::Relaxed);
    let ok = srv.persist.last_bgsave_ok.load(Ordering::Relaxed);
    for (secs, changes) in save_points(srv) {
        if dirty >= changes && since_save >= secs && (ok || now - last_try > 5000) {
            log(&format!("{changes} changes in {secs} seconds. Saving..."));
            let _ = bgsave(srv);
            return;
        }
    }
}

/// What a load found.
#[derive(Debug, Default)]
pub struct LoadStats {
    pub keys: u64,
    pub expired: u64,
    pub version: u16,
    /// The replication history the file recorded (AUX repl-*), if whole.
    pub repl: Option<crate::repl::SaveInfo>,
}

/// Loads an RDB file into the keyspace (which the caller emptied).
/// `locks` hold every shard when the server is running (DEBUG RELOAD).
pub fn load_file<'a>(
    srv: &'a Server,
    path: &str,
    locks: Option<&mut Locks<'a>>,
) -> Result<LoadStats, String> {
    load_file_merging(srv, path, locks, false)
}

/// [`load_file`]; with `merge` (DEBUG RELOAD MERGE, Redis's
/// RDBFLAGS_ALLOW_DUP) keys and libraries already present are replaced
/// instead of failing the load.
pub fn load_file_merging<'a>(
    srv: &'a Server,
    path: &str,
    locks: Option<&mut Locks<'a>>,
    merge: bool,
) -> Result<LoadStats, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let f = BufReader::with_capacity(1 << 20, f);
    load_stream(srv, f, size, &format!("RDB file {path}"), locks, merge).map(|(st, _)| st)
}

/// Loads an RDB image held in memory (an AOF base written with the RDB
/// preamble) and returns how many bytes it took: commands may follow.
pub fn load_bytes(srv: &Server, data: &[u8]) -> Result<usize, String> {
    load_stream(
        srv,
        data,
        data.len() as u64,
        "RDB preamble of the AOF",
        None,
        false,
    )
    .map(|(_, used)| used as usize)
}

/// The loader behind [`load_file`] and [`load_bytes`]: `size` bounds every
/// length field, `what` names the source in errors. Returns the stats and
/// the bytes consumed.
fn load_stream<'a, R: std::io::Read>(
    srv: &'a Server,
    input: R,
    size: u64,
    what: &str,
    mut locks: Option<&mut Locks<'a>>,
    merge: bool,
) -> Result<(LoadStats, u64), String> {
    let st = &srv.persist;
    st.loading.store(true, Ordering::SeqCst);
    st.loading_start.store(now_ms() / 1000, Ordering::SeqCst);
    st.loading_total.store(size, Ordering::SeqCst);
    st.loading_loaded.store(0, Ordering::SeqCst);
    st.loading_keys.store(0, Ordering::SeqCst);
    st.loading_used_mem.store(0, Ordering::SeqCst);
    let input = Counted {
        inner: input,
        n: 0,
        out: &st.loading_loaded,
    };
    let mut rd = rdb::Reader::new(input, size);
    // The hidden `key-load-delay` (microseconds per key; negative: sleep
    // 1 us once every -N keys on average) makes loading slow for tests.
    let key_delay = srv.config.get_num("key-load-delay");
    let lim = build_limits(srv, false);
    let now = now_ms();
    let lfu = srv.config.get_str("maxmemory-policy").contains("lfu");
    let clock = crate::commands::strings::lru_clock(now);
    let mut stats = LoadStats::default();
    let mut last_log = std::time::Instant::now();
    let load_started = last_log;
    let dbs = srv.keyspace.db_count();
    let mut pos_probe = 0u64;
    let (mut repl_id, mut repl_offset, mut repl_db) = (None, None, None);
    let res = rdb::load(
        &mut rd,
        &lim,
        srv.config.get_bool("rdbchecksum"),
        dbs,
        &mut |ev| match ev {
            rdb::Event::Key {
                db,
                key,
                value,
                expire_ms,
                idle,
                freq,
            } => {
                if expire_ms.is_some_and(|t| t <= now) {
                    stats.expired += 1;
                    return Ok(());
                }
                let lru = if lfu {
                    let minutes = ((now / 60000) & 0xffff) as u32;
                    (minutes << 8) | freq.unwrap_or(5) as u32
                } else {
                    let idle = idle.unwrap_or(0).min(0xff_ffff) as u32;
                    clock.wrapping_sub(idle) & 0xff_ffff
                };
                let e = Entry::new_full(&key, value, expire_ms, lru);
                let idx = shard_of(&key);
                let old = match locks.as_deref_mut() {
                    Some(l) => l.shard_at((db as u32, idx as u32)).insert_entry(e),
                    None => srv.keyspace.lock_shard(db, idx).insert_entry(e),
                };
                if old.is_some() && !merge {
                    return Err(format!(
                        "Duplicate key '{}' found in RDB file",
                        String::from_utf8_lossy(&key)
                    ));
                }
                stats.keys += 1;
                pos_probe += 1;
                if key_delay != 0 {
                    debug_delay(key_delay);
                }
                if pos_probe.is_multiple_of(1024) {
                    st.loading_keys.store(stats.keys, Ordering::Relaxed);
                    if last_log.elapsed().as_secs() >= 2 {
                        last_log = std::time::Instant::now();
                        let done = st.loading_loaded.load(Ordering::Relaxed);
                        let secs = load_started.elapsed().as_secs_f64().max(1e-3);
                        log(&format!(
                            "Loading RDB: {} keys so far, {done} of {size} bytes ({:.1} MB/s)",
                            stats.keys,
                            done as f64 / secs / 1e6
                        ));
                    }
                }
                Ok(())
            }
            rdb::Event::Function(code) => function_load(srv, code, merge),
            rdb::Event::Aux(k, v) => {
                let num = || {
                    std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                };
                match k.as_slice() {
                    b"used-mem" => {
                        let n = num().unwrap_or(0).max(0) as u64;
                        st.loading_used_mem.store(n, Ordering::Relaxed);
                    }
                    b"repl-id" if v.len() == 40 => {
                        repl_id = Some(String::from_utf8_lossy(&v).into_owned())
                    }
                    b"repl-offset" => repl_offset = num(),
                    b"repl-stream-db" => repl_db = num(),
                    _ => {}
                }
                Ok(())
            }
            rdb::Event::Resize(..) => Ok(()),
        },
    );
    st.loading.store(false, Ordering::SeqCst);
    st.loading_keys.store(stats.keys, Ordering::Relaxed);
    st.loading_loaded.store(rd.pos(), Ordering::Relaxed);
    // Redis's test: an id, an offset other than -1, and a stream db
    // other than -1 (older servers could save -1 there by mistake).
    if let (Some(replid), Some(off), Some(db)) = (repl_id, repl_offset, repl_db) {
        if off >= 0 && db >= 0 && (db as usize) < dbs {
            stats.repl = Some(crate::repl::SaveInfo {
                stream_db: db as usize,
                replid,
                offset: off as u64,
            });
        }
    }
    match res {
        Ok(v) => {
            stats.version = v;
            Ok((stats, rd.pos()))
        }
        Err(e) => Err(format!(
            "Short read or corrupt {what}: {} at offset {} of {size} bytes",
            e.msg, e.offset
        )),
    }
}

/// A reader that publishes how many bytes went through it (INFO's
/// `loading_loaded_bytes` while a load runs).
struct Counted<'a, R> {
    inner: R,
    n: u64,
    out: &'a AtomicU64,
}

impl<R: std::io::Read> std::io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let got = self.inner.read(buf)?;
        self.n += got as u64;
        self.out.store(self.n, Ordering::Relaxed);
        Ok(got)
    }
}

/// Redis's debugDelay: sleeps `usec` microseconds; a negative value sleeps
/// one microsecond with probability 1/-usec.
fn debug_delay(usec: i64) {
    let us = if usec < 0 {
        u64::from(rand::random::<u64>().is_multiple_of(usec.unsigned_abs()))
    } else {
        usec as u64
    };
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

/// At startup: loads `dbfilename` (in `dir`) when it exists. A corrupt or
/// truncated file is fatal, as in Redis.
pub fn load_at_startup(srv: &Server) -> Result<(), String> {
    let path = srv.config.get_str("dbfilename");
    if !std::path::Path::new(&path).exists() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    let st = load_file(srv, &path, None)?;
    log(&format!(
        "DB loaded from disk: {:.3} seconds ({} keys, {} expired skipped, RDB version {})",
        start.elapsed().as_secs_f64(),
        st.keys,
        st.expired,
        st.version
    ));
    if let Some(info) = st.repl {
        crate::repl::restore_save_info(srv, info);
    }
    Ok(())
}

/// DEBUG RELOAD: save, empty everything, load the file back, holding every
/// shard so no command sees the empty state.
pub fn debug_reload<'a>(
    srv: &'a Server,
    outer: &mut Locks<'a>,
    save_first: bool,
    flush: bool,
    merge: bool,
) -> Result<(), String> {
    if save_first {
        let held = outer.holds_any();
        save(srv, if held { Some(outer) } else { None }, srv.arc())?;
    }
    let mut own = Locks::new(&srv.keyspace);
    let locks = if outer.holds_any() { outer } else { &mut own };
    let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
    if !locks.holds_any() {
        locks.acquire_all(&dbs);
    }
    if flush {
        for db in dbs {
            locks.for_each_shard(db, |_, sh| {
                sh.clear();
                true
            });
        }
        function_flush(srv);
    }
    let path = srv.config.get_str("dbfilename");
    load_file_merging(srv, &path, Some(locks), merge).map(|_| ())
}

/// A replica's full sync: empties every database and loads the RDB
/// payload the master sent, holding every shard so that no client sees
/// a half-loaded dataset.
pub fn replace_dataset(srv: &Server, data: &[u8]) -> Result<LoadStats, String> {
    replace_dataset_from(srv, data, data.len() as u64)
}

/// [`replace_dataset`] from an RDB file (a disk-based full sync).
pub fn replace_dataset_from_file(srv: &Server, path: &str) -> Result<LoadStats, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    replace_dataset_from(srv, std::io::BufReader::with_capacity(256 * 1024, f), size)
}

fn replace_dataset_from<R: std::io::Read>(
    srv: &Server,
    input: R,
    size: u64,
) -> Result<LoadStats, String> {
    let mut locks = Locks::new(&srv.keyspace);
    let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
    locks.acquire_all(&dbs);
    for &db in &dbs {
        locks.for_each_shard(db, |_, sh| {
            sh.clear();
            true
        });
    }
    srv.touch_watched(None, None);
    function_flush(srv);
    let r = load_stream(
        srv,
        input,
        size,
        "RDB payload from the master",
        Some(&mut locks),
        false,
    )
    .map(|(st, _)| st);
    locks.release();
    r
}

/// INFO persistence lines (after `loading`/`async_loading`).
pub fn info_lines(srv: &Server, line: &mut dyn FnMut(String)) {
    let st = &srv.persist;
    let loading = st.loading.load(Ordering::Relaxed) || st.startup_loading.load(Ordering::Relaxed);
    line(format!("loading:{}", loading as u8));
    line("async_loading:0".into());
    if loading {
        // Redis's figures: progress by bytes, ETA from the rate so far.
        let start = st.loading_start.load(Ordering::Relaxed);
        let total = st.loading_total.load(Ordering::Relaxed);
        let used_mem = st.loading_used_mem.load(Ordering::Relaxed);
        let loaded = st.loading_loaded.load(Ordering::Relaxed);
        let (mut perc, mut remaining) = (0.0, 1i64);
        if total > 0 {
            perc = loaded as f64 / total as f64 * 100.0;
            remaining = total as i64 - loaded as i64;
        } else if used_mem > 0 {
            perc = (loaded as f64 / used_mem as f64 * 100.0).min(99.99);
            remaining = (used_mem as i64 - loaded as i64).max(1);
        }
        let elapsed = (now_ms() / 1000).saturating_sub(start) as i64;
        let eta = if elapsed == 0 {
            1
        } else {
            elapsed * remaining / (loaded as i64 + 1)
        };
        line(format!("loading_start_time:{start}"));
        line(format!("loading_total_bytes:{total}"));
        line(format!("loading_rdb_used_mem:{used_mem}"));
        line(format!("loading_loaded_bytes:{loaded}"));
        line(format!("loading_loaded_perc:{perc:.2}"));
        line(format!("loading_eta_seconds:{eta}"));
    }
    line("current_cow_peak:0".into());
    line("current_cow_size:0".into());
    line("current_cow_size_age:0".into());
    line("current_fork_perc:0.00".into());
    let running = st.bgsave_in_progress.load(Ordering::Relaxed);
    line(format!(
        "current_save_keys_processed:{}",
        if running {
            st.save_keys.load(Ordering::Relaxed)
        } else {
            0
        }
    ));
    line(format!(
        "current_save_keys_total:{}",
        if running {
            (0..srv.keyspace.db_count())
                .map(|d| srv.keyspace.db(d).len())
                .sum::<usize>()
        } else {
            0
        }
    ));
    line(format!(
        "rdb_changes_since_last_save:{}",
        srv.dirty.load(Ordering::Relaxed)
    ));
    line(format!("rdb_bgsave_in_progress:{}", running as u8));
    line(format!(
        "rdb_last_save_time:{}",
        srv.lastsave.load(Ordering::Relaxed)
    ));
    line(format!(
        "rdb_last_bgsave_status:{}",
        if st.last_bgsave_ok.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    ));
    line(format!(
        "rdb_last_bgsave_time_sec:{}",
        st.last_bgsave_secs.load(Ordering::Relaxed)
    ));
    line(format!(
        "rdb_current_bgsave_time_sec:{}",
        if running {
            ((now_ms() - st.bgsave_start_ms.load(Ordering::Relaxed)) / 1000) as i64
        } else {
            -1
        }
    ));
    line(format!("rdb_saves:{}", st.saves.load(Ordering::Relaxed)));
    line("rdb_last_cow_size:0".into());
    line("rdb_last_load_keys_expired:0".to_string());
    line(format!(
        "rdb_last_load_keys_loaded:{}",
        st.loading_keys.load(Ordering::Relaxed)
    ));
}
