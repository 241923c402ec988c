//! The append-only file, in Redis 7's multi-part layout.
//!
//! `appenddirname/` holds a base file (the image at the last rewrite), the
//! incremental files appended since, and `<appendfilename>.manifest`
//! listing them ([`manifest`]). The AOF is a sink of the propagation feed
//! ([`crate::commands::propagate`]): effects are encoded into a buffer
//! while the writer still holds its shard locks, so the file's order is
//! consistent with every key's order. Workers write the buffer out before
//! they send replies ([`Aof::before_reply`]); with `appendfsync always`
//! they also fsync first (group commit: one fsync covers every writer
//! waiting), with `everysec` a background thread fsyncs once a second.
//!
//! A rewrite ([`rewrite_now`]) holds every shard only for the switch to a
//! new incr file, which is also where a fork-less snapshot
//! (`persist::snapshot::run_at`) starts; the snapshot streams the base
//! (RDB preamble or commands) while writes go on, then the manifest is
//! committed (new base + the incr files from the switch on) and the old
//! files deleted. Loading ([`load_at_startup`]) replays base then incrs
//! ([`load`]).

pub mod load;
pub mod manifest;
pub mod rewrite;

use crate::commands::propagate::{encode_unit, Effect, Sink};
use crate::server::Server;
use manifest::{FileInfo, Kind, Manifest};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `appendfsync` policies.
pub const FSYNC_NO: u8 = 0;
pub const FSYNC_EVERYSEC: u8 = 1;
pub const FSYNC_ALWAYS: u8 = 2;

/// The AOF's runtime state and INFO persistence counters.
pub struct Aof {
    state: Mutex<State>,
    /// Bytes in the buffer not yet written (checked without the lock).
    pending: AtomicUsize,
    /// Bytes written to AOF files since start (monotonic), and the part of
    /// them known to be on disk.
    written: AtomicU64,
    synced: AtomicU64,
    fsync_lock: Mutex<()>,
    /// Effects are being appended (aof_enabled).
    pub on: AtomicBool,
    pub policy: AtomicU8,
    pub no_fsync_on_rewrite: AtomicBool,
    /// `aof-timestamp-enabled`: a `#TS:<unix time>` line before the first
    /// effect of each second.
    pub timestamps: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    rewrite_started: Mutex<Option<Instant>>,
    pub last_rewrite_secs: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub last_write_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub delayed_fsync: AtomicU64,
    fsync_thread: AtomicBool,
    /// The replication offset the last fsync covered (Redis's
    /// fsynced_reploff_pending): every unit counted in the stream offset
    /// up to it is on disk.
    fsynced_off: AtomicU64,
    /// The AOF was just turned on (or restarted after a replica's full
    /// sync): nothing counts as fsynced until its first base is committed
    /// (Redis's AOF_WAIT_REWRITE, fsynced_reploff 0).
    initial_rewrite: AtomicBool,
    /// A replica loaded a full sync while a rewrite ran: the cron starts
    /// another one (the running one's base predates the load).
    restart_pending: AtomicBool,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The database the file's stream is in (SELECT is emitted on change).
    db: Option<usize>,
    file: Option<Arc<File>>,
    manifest: Manifest,
    dir: PathBuf,
    prefix: String,
    /// The second of the last `#TS:` annotation.
    last_ts: u64,
    /// The replication offset covered by the bytes written to files so
    /// far (read under this lock when the buffer is written).
    written_off: u64,
    /// Bumped when the offsets restart (AOF off, a new base after a
    /// replica's full sync): an fsync begun before does not publish.
    epoch: u64,
}

impl Default for Aof {
    fn default() -> Aof {
        Aof {
            state: Mutex::new(State::default()),
            pending: AtomicUsize::new(0),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            fsync_lock: Mutex::new(()),
            on: AtomicBool::new(false),
            policy: AtomicU8::new(FSYNC_EVERYSEC),
            no_fsync_on_rewrite: AtomicBool::new(false),
            timestamps: AtomicBool::new(false),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started: Mutex::new(None),
            last_rewrite_secs: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            last_write_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            delayed_fsync: AtomicU64::new(0),
            fsync_thread: AtomicBool::new(false),
            fsynced_off: AtomicU64::new(0),
            initial_rewrite: AtomicBool::new(false),
            restart_pending: AtomicBool::new(false),
        }
    }
}

impl Sink for Aof {
    fn append(&self, unit: &[Effect]) {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if self.timestamps.load(Ordering::Relaxed) {
            let now = crate::server::now_ms() / 1000;
            if now != st.last_ts {
                st.last_ts = now;
                st.buf
                    .extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        encode_unit(unit, &mut st.db, &mut st.buf);
        self.pending.store(st.buf.len(), Ordering::SeqCst);
    }

    fn target(&self) -> u8 {
        crate::commands::propagate::TO_AOF
    }
}

/// Logs a line the way the server logs (stderr).
fn log(msg: &str) {
    eprintln!("{} * {msg}", std::process::id());
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `m` as the manifest in `dir` atomically (temp file + rename).
fn persist_manifest(dir: &Path, prefix: &str, m: &Manifest) -> std::io::Result<()> {
    let tmp = dir.join(format!("temp-{prefix}.manifest"));
    let mut f = File::create(&tmp)?;
    f.write_all(m.render().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{prefix}.manifest")))?;
    fsync_dir(dir);
    Ok(())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

impl Aof {
    /// Reads the settings cached in atomics (called on CONFIG SET too).
    pub fn apply_config(&self, srv: &Server) {
        let p = match srv.config.get_str("appendfsync").as_str() {
            "always" => FSYNC_ALWAYS,
            "no" => FSYNC_NO,
            _ => FSYNC_EVERYSEC,
        };
        self.policy.store(p, Ordering::Relaxed);
        self.no_fsync_on_rewrite.store(
            srv.config.get_bool("no-appendfsync-on-rewrite"),
            Ordering::Relaxed,
        );
        self.timestamps.store(
            srv.config.get_bool("aof-timestamp-enabled"),
            Ordering::Relaxed,
        );
    }

    fn fsync_suspended(&self) -> bool {
        self.no_fsync_on_rewrite.load(Ordering::Relaxed)
            && self.rewrite_in_progress.load(Ordering::Relaxed)
    }

    /// Redis's fsynced_reploff: -1 with the AOF off, 0 until the first
    /// base after turning it on is committed, else the replication offset
    /// known to be on disk (WAITAOF's local ack, REPLCONF ACK's FACK).
    pub fn fsynced_reploff(&self) -> i64 {
        if !self.on.load(Ordering::SeqCst) {
            -1
        } else if self.initial_rewrite.load(Ordering::SeqCst) {
            0
        } else {
            self.fsynced_off.load(Ordering::SeqCst) as i64
        }
    }

    /// Starts the offsets over at the current replication offset (the
    /// point in time of a base being written).
    fn reset_offsets(&self, srv: &Server, st: &mut State) {
        st.epoch += 1;
        st.written_off = srv.repl.offset();
        self.fsynced_off.store(st.written_off, Ordering::SeqCst);
    }

    /// Writes the buffered effects to the current incr file.
    pub fn write_pending(&self, srv: &Server) {
        let mut st = self.state.lock();
        if st.buf.is_empty() {
            return;
        }
        // Read under the lock: every unit this offset counts is in the
        // buffer or written already (the AOF sink runs before the
        // replication sink counts a unit).
        let off = srv.repl.offset();
        let Some(f) = st.file.clone() else {
            st.buf.clear();
            self.pending.store(0, Ordering::SeqCst);
            return;
        };
        let t = crate::server::latency::Timer::start();
        let wrote = (&*f).write_all(&st.buf);
        t.end(crate::server::latency::Ev::AofWrite);
        match wrote {
            Ok(()) => {
                let n = st.buf.len() as u64;
                st.written_off = st.written_off.max(off);
                self.written.fetch_add(n, Ordering::SeqCst);
                self.current_size.fetch_add(n, Ordering::Relaxed);
                st.buf.clear();
                if st.buf.capacity() > 1 << 20 {
                    st.buf.shrink_to(64 * 1024);
                }
                self.pending.store(0, Ordering::SeqCst);
                self.last_write_ok.store(true, Ordering::Relaxed);
            }
            Err(e) => {
                if self.policy.load(Ordering::Relaxed) == FSYNC_ALWAYS {
                    // Replies would acknowledge writes that are not on
                    // disk: Redis exits here too.
                    log(&format!("Can't recover from AOF write error when the AOF fsync policy is 'always' ({e}). Exiting..."));
                    std::process::exit(1);
                }
                // The buffer is kept and retried on the next call.
                if self.last_write_ok.swap(false, Ordering::Relaxed) {
                    log(&format!("Error writing to the AOF file: {e}"));
                }
            }
        }
    }

    /// fsyncs the current incr file unless everything written is synced
    /// already; concurrent callers share one fsync. WAITAOF waiters the
    /// fsync satisfies are served.
    pub fn fsync_now(&self, srv: &Server) {
        let target = self.written.load(Ordering::SeqCst);
        if self.synced.load(Ordering::SeqCst) >= target {
            return;
        }
        let _g = self.fsync_lock.lock();
        if self.synced.load(Ordering::SeqCst) >= target {
            return;
        }
        let (file, upto, off, epoch) = {
            let st = self.state.lock();
            let upto = self.written.load(Ordering::SeqCst);
            (st.file.clone(), upto, st.written_off, st.epoch)
        };
        if let Some(f) = file {
            if f.sync_data().is_ok() {
                self.synced.fetch_max(upto, Ordering::SeqCst);
                self.publish_fsynced(srv, off, epoch);
            }
        }
    }

    /// Records that replication offset `off` is on disk (unless the
    /// offsets restarted since it was read) and serves WAITAOF waiters.
    fn publish_fsynced(&self, srv: &Server, off: u64, epoch: u64) {
        let moved = {
            let st = self.state.lock();
            st.epoch == epoch && self.fsynced_off.fetch_max(off, Ordering::SeqCst) < off
        };
        if moved {
            srv.repl.aof_progress(srv);
        }
    }

    /// Called by a worker before it writes replies to sockets: the effects
    /// of the commands it answers reach the file first (and the disk with
    /// `appendfsync always`). One relaxed load when the AOF is off.
    #[inline]
    pub fn before_reply(&self, srv: &Server) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        if self.pending.load(Ordering::SeqCst) > 0 {
            self.write_pending(srv);
        }
        if self.policy.load(Ordering::Relaxed) == FSYNC_ALWAYS && !self.fsync_suspended() {
            let t = crate::server::latency::Timer::start();
            self.fsync_now(srv);
            t.end(crate::server::latency::Ev::AofFsyncAlways);
        }
    }

    /// Starts the once-a-second writer/fsync thread (once per process).
    fn spawn_fsync_thread(srv: &Server) {
        let Some(arc) = srv.arc() else {
            return;
        };
        if srv.aof.fsync_thread.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&arc);
        std::thread::Builder::new()
            .name("aof-fsync".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                let Some(srv) = weak.upgrade() else {
                    return;
                };
                let aof = &srv.aof;
                if !aof.on.load(Ordering::Relaxed) {
                    continue;
                }
                aof.write_pending(&srv);
                if aof.policy.load(Ordering::Relaxed) == FSYNC_EVERYSEC {
                    if aof.fsync_suspended() {
                        aof.delayed_fsync.fetch_add(1, Ordering::Relaxed);
                    } else {
                        aof.fsync_now(&srv);
                    }
                }
            })
            .expect("spawn aof thread");
    }

    /// Opens `name` in the AOF directory for appending (creating it) and
    /// makes it the file effects go to; the old file is flushed and synced
    /// (which counts as an fsync for WAITAOF, as Redis's closing fsync).
    fn switch_file(&self, srv: &Server, st: &mut State, name: &str) -> std::io::Result<()> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(st.dir.join(name))?;
        if let Some(old) = st.file.take() {
            if !st.buf.is_empty() {
                let off = srv.repl.offset();
                (&*old).write_all(&st.buf)?;
                st.written_off = st.written_off.max(off);
                let n = st.buf.len() as u64;
                self.written.fetch_add(n, Ordering::SeqCst);
                self.current_size.fetch_add(n, Ordering::Relaxed);
                st.buf.clear();
                self.pending.store(0, Ordering::SeqCst);
            }
            if old.sync_data().is_ok() {
                self.synced
                    .fetch_max(self.written.load(Ordering::SeqCst), Ordering::SeqCst);
                self.fsynced_off.fetch_max(st.written_off, Ordering::SeqCst);
            }
        }
        st.file = Some(Arc::new(f));
        st.db = None;
        Ok(())
    }

    /// Stops appending: flushes, syncs and closes the file. WAITAOF
    /// waiters that need the local AOF get their error.
    pub fn stop(&self, srv: &Server) {
        srv.feed.unsubscribe("aof");
        self.write_pending(srv);
        self.fsync_now(srv);
        let mut st = self.state.lock();
        st.file = None;
        st.buf.clear();
        st.db = None;
        self.pending.store(0, Ordering::SeqCst);
        self.on.store(false, Ordering::SeqCst);
        self.initial_rewrite.store(false, Ordering::SeqCst);
        self.restart_pending.store(false, Ordering::SeqCst);
        st.epoch += 1;
        self.fsynced_off.store(0, Ordering::SeqCst);
        drop(st);
        log("AOF stopped");
        srv.repl.aof_stopped(srv);
        srv.repl.aof_progress(srv);
    }

    /// Seconds the running rewrite has taken so far (-1 if none).
    pub fn current_rewrite_secs(&self) -> i64 {
        self.rewrite_started
            .lock()
            .map_or(-1, |t| t.elapsed().as_secs() as i64)
    }
}

fn paths(srv: &Server) -> (PathBuf, String) {
    (
        PathBuf::from(srv.config.get_str("appenddirname")),
        srv.config.get_str("appendfilename"),
    )
}

/// Reads the manifest of `dir`, if there is one.
fn read_manifest(dir: &Path, prefix: &str) -> Result<Option<Manifest>, String> {
    let p = dir.join(format!("{prefix}.manifest"));
    match std::fs::read(&p) {
        Ok(b) => Manifest::parse(&String::from_utf8_lossy(&b)).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("Can't open the AOF manifest {}: {e}", p.display())),
    }
}

/// Loads one file; `last` allows a truncated tail (cut off and logged when
/// `aof-load-truncated` is on).
fn load_file(srv: &Server, path: &Path, last: bool) -> Result<u64, String> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            return Err(format!(
                "Can't open the append-only file {}: {e}",
                path.display()
            ))
        }
    };
    let r = load::replay(srv, &data)?;
    if r.truncated {
        if !last || !srv.config.get_bool("aof-load-truncated") {
            return Err(format!(
                "Unexpected end of file reading the append only file {}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                path.display()
            ));
        }
        log(&format!(
            "!!! Warning: short read while loading the AOF file {}!!! AOF loaded anyway because aof-load-truncated is enabled; truncating to {} bytes",
            path.display(),
            r.valid_len
        ));
        if let Ok(f) = OpenOptions::new().write(true).open(path) {
            let _ = f.set_len(r.valid_len as u64);
            let _ = f.sync_all();
        }
    }
    Ok(r.commands)
}

/// Replays the files a manifest lists (base, then incrs in order).
fn load_manifest_files(srv: &Server, dir: &Path, m: &Manifest) -> Result<u64, String> {
    let mut files: Vec<&FileInfo> = m.base.iter().collect();
    files.extend(&m.incrs);
    let mut n = 0;
    for (i, f) in files.iter().enumerate() {
        let p = dir.join(&f.name);
        if !p.exists() {
            if f.kind == Kind::Incr && i == files.len() - 1 && file_len(&p) == 0 {
                continue; // an incr file created but never written
            }
            return Err(format!("The AOF file {} doesn't exist", f.name));
        }
        n += load_file(srv, &p, i == files.len() - 1)?;
    }
    Ok(n)
}

/// At startup with `appendonly yes`: loads the AOF (manifest, or an old
/// single `appendonly.aof`, which is then moved into the directory as the
/// base), opens the last incr file for appending and subscribes to the
/// feed. Errors are fatal to the caller.
pub fn load_at_startup(srv: &Arc<Server>) -> Result<(), String> {
    let aof = &srv.aof;
    aof.apply_config(srv);
    if !srv.config.get_bool("appendonly") {
        return Ok(());
    }
    let (dir, prefix) = paths(srv);
    std::fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "Can't create the append-only directory {}: {e}",
            dir.display()
        )
    })?;
    let started = Instant::now();
    let mut m = match read_manifest(&dir, &prefix)? {
        Some(m) => {
            let n = load_manifest_files(srv, &dir, &m)?;
            log(&format!(
                "DB loaded from append only file: {:.3} seconds ({n} commands)",
                started.elapsed().as_secs_f64()
            ));
            m
        }
        None => {
            let legacy = PathBuf::from(&prefix);
            let mut m = Manifest::default();
            if legacy.is_file() {
                let n = load_file(srv, &legacy, true)?;
                log(&format!(
                    "DB loaded from old-style append only file ({n} commands)"
                ));
                // Redis's upgrade: the old file becomes the base, as is.
                std::fs::rename(&legacy, dir.join(&prefix))
                    .map_err(|e| format!("Can't move the old AOF into {}: {e}", dir.display()))?;
                m.base_seq = 1;
                m.base = Some(FileInfo {
                    name: prefix.clone(),
                    seq: 1,
                    kind: Kind::Base,
                });
            }
            m
        }
    };
    let mut guard = aof.state.lock();
    let st = &mut *guard;
    st.dir = dir.clone();
    st.prefix = prefix.clone();
    let incr = match m.incrs.last() {
        Some(f) => f.clone(),
        None => m.next_incr(&prefix),
    };
    aof.switch_file(srv, st, &incr.name)
        .map_err(|e| format!("Can't open the append-only file {}: {e}", incr.name))?;
    persist_manifest(&dir, &prefix, &m)
        .map_err(|e| format!("Can't write the AOF manifest: {e}"))?;
    let base_size = m.base.as_ref().map_or(0, |b| file_len(&dir.join(&b.name)));
    let total: u64 = base_size
        + m.incrs
            .iter()
            .map(|f| file_len(&dir.join(&f.name)))
            .sum::<u64>();
    aof.base_size.store(total, Ordering::Relaxed);
    aof.current_size.store(total, Ordering::Relaxed);
    st.manifest = m;
    drop(guard);
    srv.feed.subscribe("aof", srv.aof.clone());
    srv.repl.install_sink(srv);
    aof.on.store(true, Ordering::SeqCst);
    Aof::spawn_fsync_thread(srv);
    Ok(())
}

/// Applies `appendonly` changed by CONFIG SET: turning it on starts a
/// rewrite (the new base is the current dataset), off stops appending.
pub fn config_changed(srv: &Server) {
    srv.aof.apply_config(srv);
    let want = srv.config.get_bool("appendonly");
    let on = srv.aof.on.load(Ordering::SeqCst);
    if want && !on {
        if let Err(e) = rewrite_now(srv, true) {
            log(&format!("Can't turn on the AOF: {e}"));
        }
    } else if !want && on {
        srv.aof.stop(srv);
    }
}

/// Why a rewrite could not start.
pub const REWRITE_IN_PROGRESS: &str =
    "ERR Background append only file rewriting already in progress";

/// Starts a rewrite on a background thread and returns whether it had to
/// wait for a running snapshot (BGSAVE): Redis's "scheduled". The thread
/// holds every shard only for the switch (a new incr file, and the
/// snapshot epoch starting at that same point), then the fork-less
/// snapshot writes the base while writes go on: an RDB file
/// (`.base.rdb`, AUX `aof-base 1`) with `aof-use-rdb-preamble yes`,
/// commands (`.base.aof`) otherwise; finally the manifest is committed.
/// With `enable` the AOF is being turned on: the sink subscribes at the
/// switch point.
pub fn rewrite_now(srv: &Server, enable: bool) -> Result<bool, String> {
    let aof: &Arc<Aof> = &srv.aof;
    let Some(arc) = srv.arc() else {
        return Err("no server handle".into());
    };
    if aof.rewrite_in_progress.swap(true, Ordering::SeqCst) {
        if aof.rewrite_scheduled.load(Ordering::SeqCst) {
            return Ok(true);
        }
        return Err(REWRITE_IN_PROGRESS.into());
    }
    let (dir, prefix) = paths(srv);
    let fail = |e: String| {
        aof.rewrite_in_progress.store(false, Ordering::SeqCst);
        aof.rewrite_scheduled.store(false, Ordering::SeqCst);
        *aof.rewrite_started.lock() = None;
        aof.last_rewrite_ok.store(false, Ordering::Relaxed);
        e
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Err(fail(format!("Can't create the append-only directory: {e}")));
    }
    // One snapshot at a time: a running BGSAVE makes this one wait.
    let scheduled = crate::persist::snapshot::is_running(&srv.keyspace)
        || srv.persist.bgsave_in_progress.load(Ordering::SeqCst);
    aof.rewrite_scheduled.store(scheduled, Ordering::SeqCst);
    if !scheduled {
        *aof.rewrite_started.lock() = Some(Instant::now());
    }
    let preamble = srv.config.get_bool("aof-use-rdb-preamble");
    std::thread::Builder::new()
        .name("aof-rewrite".into())
        .spawn(move || {
            let srv = &*arc;
            let ok = rewrite_in_background(srv, &dir, &prefix, enable, preamble);
            let aof = &srv.aof;
            if let Err(e) = &ok {
                log(&format!("Background AOF rewrite failed: {e}"));
            } else {
                log("Background AOF rewrite finished successfully");
            }
            aof.last_rewrite_ok.store(ok.is_ok(), Ordering::Relaxed);
            let secs = aof.current_rewrite_secs();
            aof.last_rewrite_secs.store(secs, Ordering::Relaxed);
            *aof.rewrite_started.lock() = None;
            aof.rewrites.fetch_add(1, Ordering::Relaxed);
            aof.rewrite_scheduled.store(false, Ordering::SeqCst);
            aof.rewrite_in_progress.store(false, Ordering::SeqCst);
        })
        .map_err(|e| fail(e.to_string()))?;
    if scheduled {
        log("Background append only file rewriting scheduled");
    } else {
        log("Background append only file rewriting started");
    }
    Ok(scheduled)
}

/// The base's writer: RDB or commands.
enum BaseSink {
    Rdb(Arc<crate::persist::RdbSink>),
    Commands(Arc<rewrite::CommandSink>),
}

/// The rewrite thread: waits for its snapshot turn, switches to a new
/// incr file with every shard held, streams the snapshot into a temp
/// base file, then commits it.
fn rewrite_in_background(
    srv: &Server,
    dir: &Path,
    prefix: &str,
    enable: bool,
    preamble: bool,
) -> Result<(), String> {
    let aof = &srv.aof;
    let tmp = dir.join(format!("temp-rewriteaof-bg-{}.aof", std::process::id()));
    let io = |e: std::io::Error| e.to_string();
    let f = File::create(&tmp).map_err(io)?;
    let w = Box::new(crate::persist::FileOut(std::io::BufWriter::with_capacity(
        1 << 20,
        f,
    )));
    let base = if preamble {
        BaseSink::Rdb(Arc::new(crate::persist::RdbSink::with_kind(srv, w, true)))
    } else {
        let cs = rewrite::CommandSink::new(w, crate::server::now_ms());
        cs.put_functions(&crate::persist::function_libraries(srv));
        BaseSink::Commands(Arc::new(cs))
    };
    let sink: Arc<dyn crate::keyspace::ShardSink> = match &base {
        BaseSink::Rdb(s) => s.clone(),
        BaseSink::Commands(s) => s.clone(),
    };
    let mut switched: Result<u64, String> = Err("the rewrite did not start".into());
    let delay = || srv.config.get_num("rdb-key-save-delay");
    let (_, held) = crate::persist::snapshot::run_at(
        &srv.keyspace,
        sink,
        &delay,
        || {
            if aof.rewrite_scheduled.swap(false, Ordering::SeqCst) {
                *aof.rewrite_started.lock() = Some(Instant::now());
            }
        },
        || switched = switch_for_rewrite(srv, dir, prefix, enable),
    );
    let keep_from = match switched {
        Ok(seq) => seq,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if enable {
        Aof::spawn_fsync_thread(srv);
    }
    // The old incr file was synced at the switch.
    srv.repl.aof_progress(srv);
    let written = match &base {
        BaseSink::Rdb(s) => s
            .finish(srv.config.get_bool("rdbchecksum"))
            .map(|_| s.keys()),
        BaseSink::Commands(s) => s.finish().map(|_| s.keys()),
    };
    let keys = match written {
        Ok(k) => k,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let total = aof
        .rewrite_started
        .lock()
        .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
    log(&format!(
        "AOF rewrite: image of {keys} keys taken in {:.1} ms (all shards held), base written in {total:.1} ms",
        held.as_secs_f64() * 1000.0
    ));
    commit_base(aof, dir, prefix, &tmp, preamble, keep_from)?;
    // A first base is on disk: the offset taken at the switch (or a later
    // fsync's) counts now, unless a replica's full sync since asks for
    // another base.
    if !aof.restart_pending.load(Ordering::SeqCst) {
        aof.initial_rewrite.store(false, Ordering::SeqCst);
    }
    srv.repl.aof_progress(srv);
    Ok(())
}

/// A replica loaded its master's dataset (full sync): with the AOF on,
/// the files are rewritten from the new data (Redis's
/// restartAOFAfterSYNC) and nothing counts as fsynced until that base is
/// committed. A running rewrite is left to finish and the cron starts
/// the new one.
pub fn restart_after_sync(srv: &Server) {
    let aof = &srv.aof;
    if !aof.on.load(Ordering::SeqCst) {
        return;
    }
    aof.restart_pending.store(true, Ordering::SeqCst);
    aof.initial_rewrite.store(true, Ordering::SeqCst);
    if rewrite_now(srv, false).is_err() {
        log("AOF rewrite after the full sync postponed: a rewrite is in progress");
    }
}

/// The switch, run with every shard held: effects go to a new incr file
/// from here on (the base's point in time). Returns the new incr's seq.
fn switch_for_rewrite(srv: &Server, dir: &Path, prefix: &str, enable: bool) -> Result<u64, String> {
    let aof = &srv.aof;
    let mut st = aof.state.lock();
    let on = aof.on.load(Ordering::SeqCst);
    if !on {
        // Not appending yet: continue the numbering of what is on disk.
        st.manifest = read_manifest(dir, prefix)
            .ok()
            .flatten()
            .unwrap_or_default();
        st.dir = dir.to_path_buf();
        st.prefix = prefix.to_string();
    }
    let incr = st.manifest.next_incr(prefix);
    if let Err(e) = aof.switch_file(srv, &mut st, &incr.name) {
        st.manifest.incrs.pop();
        return Err(format!("Can't open a new AOF incr file: {e}"));
    }
    // With the AOF already on, the new incr file is listed at once so
    // nothing appended from now on can be lost before the commit.
    if on {
        let _ = persist_manifest(&st.dir, &st.prefix, &st.manifest);
    }
    if enable || aof.restart_pending.swap(false, Ordering::SeqCst) {
        // A first base: until it is committed nothing counts as fsynced;
        // then everything up to here is in it.
        aof.initial_rewrite.store(true, Ordering::SeqCst);
        aof.reset_offsets(srv, &mut st);
    }
    if enable {
        srv.feed.subscribe("aof", aof.clone());
        if let Some(arc) = srv.arc() {
            srv.repl.install_sink(&arc);
        }
        aof.on.store(true, Ordering::SeqCst);
    }
    Ok(incr.seq)
}

/// The rewrite's last step (under the AOF lock): renames the written base
/// into place, commits the manifest (new base + the incr files from the
/// switch on) and deletes the files it replaced.
fn commit_base(
    aof: &Aof,
    dir: &Path,
    prefix: &str,
    tmp: &Path,
    rdb: bool,
    keep_from: u64,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut st = aof.state.lock();
    let base = st.manifest.next_base(prefix, rdb);
    std::fs::rename(tmp, dir.join(&base.name)).map_err(io)?;
    let mut old: Vec<FileInfo> = st.manifest.base.take().into_iter().collect();
    let (keep, gone): (Vec<FileInfo>, Vec<FileInfo>) = std::mem::take(&mut st.manifest.incrs)
        .into_iter()
        .partition(|f| f.seq >= keep_from);
    old.extend(gone);
    st.manifest.base = Some(base.clone());
    st.manifest.incrs = keep;
    st.manifest.history = old
        .iter()
        .map(|f| FileInfo {
            kind: Kind::History,
            ..f.clone()
        })
        .collect();
    persist_manifest(dir, prefix, &st.manifest).map_err(io)?;
    for f in std::mem::take(&mut st.manifest.history) {
        let _ = std::fs::remove_file(dir.join(&f.name));
    }
    let _ = persist_manifest(dir, prefix, &st.manifest);
    let base_size = file_len(&dir.join(&base.name));
    let incr_size: u64 = st
        .manifest
        .incrs
        .iter()
        .map(|f| file_len(&dir.join(&f.name)))
        .sum::<u64>()
        + st.buf.len() as u64;
    aof.base_size.store(base_size, Ordering::Relaxed);
    aof.current_size
        .store(base_size + incr_size, Ordering::Relaxed);
    if !aof.on.load(Ordering::SeqCst) {
        // BGREWRITEAOF with the AOF off: nothing appends to the new incr.
        st.file = None;
    }
    Ok(())
}

/// Cron: starts an automatic rewrite when the AOF
/// grew by `auto-aof-rewrite-percentage` over its size after the last
/// rewrite and is at least `auto-aof-rewrite-min-size`.
pub fn cron(srv: &Server) {
    let aof = &srv.aof;
    if aof.rewrite_in_progress.load(Ordering::Relaxed) {
        return;
    }
    if !aof.on.load(Ordering::Relaxed) {
        return;
    }
    if aof.restart_pending.load(Ordering::SeqCst) {
        let _ = rewrite_now(srv, false);
        return;
    }
    let perc = srv.config.get_num("auto-aof-rewrite-percentage");
    let min = srv.config.get_num("auto-aof-rewrite-min-size") as u64;
    let cur = aof.current_size.load(Ordering::Relaxed);
    if perc > 0 && cur > min {
        let base = aof.base_size.load(Ordering::Relaxed).max(1);
        let growth = cur.saturating_sub(base) * 100 / base;
        if growth >= perc as u64 {
            log(&format!(
                "Starting automatic rewriting of AOF on {growth}% growth"
            ));
            let _ = rewrite_now(srv, false);
        }
    }
}

/// DEBUG LOADAOF: flushes the AOF, empties the dataset and loads it back
/// from the files.
pub fn debug_loadaof(srv: &Server) -> Result<(), String> {
    let aof = &srv.aof;
    if aof.on.load(Ordering::SeqCst) {
        aof.write_pending(srv);
        aof.fsync_now(srv);
    }
    empty_all(srv);
    // Redis's emptyData drops the function libraries too: the base
    // loads them again.
    crate::persist::function_flush(srv);
    let (dir, prefix) = paths(srv);
    match read_manifest(&dir, &prefix)? {
        Some(m) => load_manifest_files(srv, &dir, &m).map(|_| ()),
        None => Ok(()),
    }
}

/// Deletes every key of every database.
fn empty_all(srv: &Server) {
    for db in (0..srv.keyspace.db_count()).filter(|&db| srv.keyspace.allocated(db)) {
        for i in 0..crate::keyspace::SHARDS {
            srv.keyspace.lock_shard(db, i).clear();
        }
    }
}

/// The aof_* lines of INFO persistence.
pub fn info(srv: &Server, o: &mut String) {
    let aof = &srv.aof;
    let on = aof.on.load(Ordering::Relaxed);
    let b = |x: &AtomicBool| x.load(Ordering::Relaxed) as u8;
    let st = |x: &AtomicBool| {
        if x.load(Ordering::Relaxed) {
            "ok"
        } else {
            "err"
        }
    };
    o.push_str(&format!("aof_enabled:{}\r\n", on as u8));
    // A rewrite waiting for a BGSAVE to end is only scheduled, as in Redis.
    o.push_str(&format!(
        "aof_rewrite_in_progress:{}\r\n",
        (aof.rewrite_in_progress.load(Ordering::Relaxed)
            && !aof.rewrite_scheduled.load(Ordering::Relaxed)) as u8
    ));
    o.push_str(&format!(
        "aof_rewrite_scheduled:{}\r\n",
        b(&aof.rewrite_scheduled)
    ));
    o.push_str(&format!(
        "aof_last_rewrite_time_sec:{}\r\n",
        aof.last_rewrite_secs.load(Ordering::Relaxed)
    ));
    o.push_str(&format!(
        "aof_current_rewrite_time_sec:{}\r\n",
        aof.current_rewrite_secs()
    ));
    o.push_str(&format!(
        "aof_last_bgrewrite_status:{}\r\n",
        st(&aof.last_rewrite_ok)
    ));
    o.push_str(&format!(
        "aof_rewrites:{}\r\n",
        aof.rewrites.load(Ordering::Relaxed)
    ));
    o.push_str("aof_rewrites_consecutive_failures:0\r\n");
    o.push_str(&format!(
        "aof_last_write_status:{}\r\n",
        st(&aof.last_write_ok)
    ));
    o.push_str("aof_last_cow_size:0\r\n");
    if on {
        let pending = aof.pending.load(Ordering::Relaxed);
        o.push_str(&format!(
            "aof_current_size:{}\r\n",
            aof.current_size.load(Ordering::Relaxed)
        ));
        o.push_str(&format!(
            "aof_base_size:{}\r\n",
            aof.base_size.load(Ordering::Relaxed)
        ));
        o.push_str("aof_pending_rewrite:0\r\n");
        o.push_str(&format!("aof_buffer_length:{pending}\r\n"));
        o.push_str("aof_pending_bio_fsync:0\r\n");
        o.push_str(&format!(
            "aof_delayed_fsync:{}\r\n",
            aof.delayed_fsync.load(Ordering::Relaxed)
        ));
    }
}
