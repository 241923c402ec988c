//! Replication (brief D6): Redis's PSYNC2 protocol in both directions.
//!
//! Master side: the replication stream is the propagation feed
//! ([`crate::commands::propagate`]) encoded once by [`BacklogSink`] into
//! the backlog (a ring of `repl-backlog-size` bytes) and handed to every
//! online replica's worker as output bytes (a replica is an ordinary
//! client that the stream is written to). A full sync ([`sync`]) takes a
//! fork-less snapshot whose point in time is chosen with every shard held
//! (`persist::snapshot::run_at`), exactly where the replica is registered:
//! every unit before that point is in the RDB, every unit after it reaches
//! the replica's pending buffer, which is sent once the RDB has been.
//!
//! Replica side ([`link`]): one thread per master link does the handshake,
//! loads the RDB, then applies the stream through `commands::dispatch`
//! with a master client, acknowledging its offset every second.

pub mod failover;
pub mod link;
pub mod sync;

use crate::commands::propagate::{encode_argv, encode_unit, Effect, Sink};
use crate::server::{now_ms, Server, WorkerMsg};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// The READONLY error a read-only replica gives writers.
pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";

thread_local! {
    /// Set on the replica link's thread while it applies the master's
    /// stream: its effects are not re-encoded into our backlog (the raw
    /// stream is proxied instead, so offsets match the master's).
    pub static APPLYING_MASTER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Where a replica of ours is in its life.
pub enum ReplicaState {
    /// Waiting for its RDB: stream bytes after the snapshot point wait here.
    WaitRdb(Vec<u8>),
    /// Receiving the stream.
    Online,
}

/// One replica connected to us (a client that sent SYNC or PSYNC).
pub struct Replica {
    pub client: u64,
    pub worker: usize,
    pub ip: String,
    pub port: u16,
    pub state: ReplicaState,
    /// Last offset it acknowledged, and when (ms).
    pub ack_offset: u64,
    pub ack_ms: u64,
    /// Last offset it said its AOF has fsynced (REPLCONF ACK .. FACK).
    pub aof_offset: u64,
    /// Since when (ms) the stream held for it during its sync has been
    /// over the replica class's soft output limit.
    pub soft_since_ms: Option<u64>,
}

/// What a client said in REPLCONF before its PSYNC.
#[derive(Default, Clone)]
pub struct Hello {
    pub port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
}

/// What a client parked in WAIT or WAITAOF waits for: `replicas`
/// acknowledgements of `target` (applied for WAIT, fsynced to their AOF
/// for WAITAOF) and, for WAITAOF, the local AOF's fsync of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitFor {
    pub target: u64,
    pub replicas: usize,
    /// None for WAIT; Some(numlocal) for WAITAOF.
    pub local: Option<bool>,
}

/// The error WAITAOF numlocal gets without the AOF (also to a waiter
/// when the AOF is turned off).
pub const WAITAOF_NO_AOF: &str =
    "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.";

/// A WAIT / WAITAOF reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReply {
    /// WAIT: replicas that acknowledged.
    Replicas(usize),
    /// WAITAOF: [local fsync done (0/1), replicas that fsynced].
    Aof(u8, usize),
    /// WAITAOF numlocal 1 with the AOF off.
    NoAof,
}

impl WaitReply {
    /// The reply in RESP (the same in RESP2 and RESP3).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            WaitReply::Replicas(n) => format!(":{n}\r\n").into_bytes(),
            WaitReply::Aof(l, n) => format!("*2\r\n:{l}\r\n:{n}\r\n").into_bytes(),
            WaitReply::NoAof => format!("-{WAITAOF_NO_AOF}\r\n").into_bytes(),
        }
    }
}

/// A client parked in WAIT or WAITAOF.
struct Waiting {
    handle: Arc<crate::server::client::ClientHandle>,
    want: WaitFor,
}

/// The backlog and the replication ids, under one lock with the replica
/// list (the order of bytes in the stream is decided under it).
pub struct Master {
    pub replid: String,
    pub replid2: String,
    /// The last offset of `replid2`'s history (-1 when none).
    pub second_offset: i64,
    /// master_repl_offset: bytes ever fed to the stream.
    pub offset: u64,
    /// The last `repl-backlog-size` bytes of the stream (None until the
    /// first replica asks for it).
    pub backlog: Option<VecDeque<u8>>,
    pub backlog_size: usize,
    /// The database the stream is in (None: the next unit emits SELECT).
    pub cur_db: Option<usize>,
    pub replicas: Vec<Replica>,
    pub last_ping_ms: u64,
    waiting: Vec<Waiting>,
    /// A WAIT or WAITAOF asked for acknowledgements while replica traffic
    /// was paused: REPLCONF GETACK goes out when the pause ends.
    getack_pending: bool,
}

impl Master {
    /// The offset of the first byte the backlog holds.
    pub fn first_offset(&self) -> u64 {
        let len = self.backlog.as_ref().map_or(0, |b| b.len()) as u64;
        self.offset + 1 - len
    }

    /// Sets master_repl_offset (and its lock-free copy).
    pub fn set_offset(&mut self, srv: &Server, off: u64) {
        self.offset = off;
        srv.repl.offset_now.store(off, Ordering::Release);
    }

    /// Appends bytes to the stream: the backlog, then every replica.
    pub fn feed(&mut self, srv: &Server, bytes: &[u8]) {
        let Some(b) = self.backlog.as_mut() else {
            return;
        };
        self.offset += bytes.len() as u64;
        srv.repl.offset_now.store(self.offset, Ordering::Release);
        b.extend(bytes.iter().copied());
        if b.len() > self.backlog_size {
            let extra = b.len() - self.backlog_size;
            b.drain(..extra);
        }
        let mut shared: Option<Arc<[u8]>> = None;
        let mut over = Vec::new();
        for r in &mut self.replicas {
            match &mut r.state {
                ReplicaState::WaitRdb(buf) => {
                    buf.extend_from_slice(bytes);
                    if srv.repl.held_over_limit(buf.len(), &mut r.soft_since_ms) {
                        over.push((r.client, r.worker));
                    }
                }
                ReplicaState::Online => {
                    let s = shared.get_or_insert_with(|| Arc::from(bytes)).clone();
                    srv.send_to_worker(r.worker, WorkerMsg::Monitor(r.client, s));
                }
            }
        }
        // The stream held for a syncing replica counts as its output
        // buffer (as in Redis): past the replica class's limit the replica
        // is dropped rather than the master's memory growing without end.
        for (client, worker) in over {
            crate::persist::log(&format!(
                "Client id={client} scheduled to be closed ASAP for overcoming of output buffer limits."
            ));
            self.replicas.retain(|r| r.client != client);
            srv.send_to_worker(worker, WorkerMsg::Kill(client));
        }
        srv.repl
            .replica_count
            .store(self.replicas.len(), Ordering::Relaxed);
    }

    /// The backlog bytes from offset `from` (1-based) to the end.
    pub fn backlog_from(&self, from: u64) -> Vec<u8> {
        let skip = (from - self.first_offset()) as usize;
        self.backlog
            .as_ref()
            .map(|b| b.iter().skip(skip).copied().collect())
            .unwrap_or_default()
    }

    /// Starts a new history: a fresh replication id, the old one kept as
    /// replid2 up to the current offset (PSYNC2 after a promotion).
    pub fn shift_replid(&mut self) {
        self.replid2 = std::mem::replace(&mut self.replid, random_id());
        self.second_offset = self.offset as i64 + 1;
        // Our stream's next unit selects its db: what the proxied stream
        // (or our own older stream) left selected is not known here
        // (Redis's slaveseldb = -1 on promotion).
        self.cur_db = None;
    }
}

/// The replica side's state (INFO replication, ROLE, the link thread).
#[derive(Default)]
pub struct LinkInfo {
    pub host: String,
    pub port: u16,
    /// "connect", "connecting", "sync", "connected" (ROLE's words).
    pub state: &'static str,
    pub last_io_ms: u64,
    pub sync_in_progress: bool,
    pub down_since_ms: u64,
    /// The database the master's stream is in: kept across links, since
    /// a partial resync continues the stream without a new SELECT.
    pub stream_db: usize,
}

/// All replication state of the server.
pub struct Repl {
    pub master: Mutex<Master>,
    /// `master.offset`, readable without the lock (a client's write
    /// offset, the AOF's fsynced offset). Written under the lock, except
    /// before the first backlog, when [`BacklogSink`] counts units here
    /// alone (`master.offset` catches up when the backlog is created).
    offset_now: Arc<AtomicU64>,
    /// Set (under the lock) when the backlog is created; never cleared.
    has_backlog: Arc<AtomicBool>,
    /// Clients parked in WAIT / WAITAOF (fsyncs check it before locking).
    waiting_count: AtomicUsize,
    /// Number of replicas (read without the lock on hot paths).
    pub replica_count: AtomicUsize,
    /// REPLCONF settings of clients that have not synced yet.
    pub hellos: Mutex<HashMap<u64, Hello>>,
    /// We replicate from a master (REPLICAOF host port).
    pub is_replica: Arc<AtomicBool>,
    /// Bumped by every REPLICAOF: a link thread of an older generation exits.
    pub generation: AtomicU64,
    pub link: Mutex<LinkInfo>,
    /// Held by the replica link while it applies one command of the
    /// master's stream (offset and effects together), and taken by a
    /// snapshot before its point: the offset it records (`save_info`)
    /// matches the data it holds.
    pub apply: Mutex<()>,
    /// Full and partial syncs served (INFO stats).
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    sink_installed: AtomicBool,
    /// `min-replicas-to-write` / `min-replicas-max-lag`, cached by
    /// `apply_config`, and the replicas within that lag.
    min_to_write: AtomicUsize,
    min_max_lag: AtomicU64,
    good: AtomicUsize,
    /// The replica class of client-output-buffer-limit (hard, soft,
    /// seconds), cached by `apply_config`.
    replica_limit: [AtomicU64; 3],
    /// FAILOVER's state (`failover::NONE` ...), readable without a lock,
    /// and its request (lock order: `failover` before `master`).
    pub failover_state: AtomicU8,
    pub failover: Mutex<failover::Failover>,
}

impl Default for Repl {
    fn default() -> Self {
        Repl {
            master: Mutex::new(Master {
                replid: random_id(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                backlog: None,
                backlog_size: 1 << 20,
                cur_db: None,
                replicas: Vec::new(),
                last_ping_ms: 0,
                getack_pending: false,
                waiting: Vec::new(),
            }),
            offset_now: Default::default(),
            has_backlog: Default::default(),
            waiting_count: AtomicUsize::new(0),
            replica_count: AtomicUsize::new(0),
            hellos: Mutex::new(HashMap::new()),
            is_replica: Default::default(),
            generation: AtomicU64::new(0),
            link: Mutex::new(LinkInfo::default()),
            apply: Mutex::new(()),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            sink_installed: AtomicBool::new(false),
            min_to_write: AtomicUsize::new(0),
            min_max_lag: AtomicU64::new(10),
            good: AtomicUsize::new(0),
            replica_limit: Default::default(),
            failover_state: AtomicU8::new(failover::NONE),
            failover: Mutex::new(failover::Failover::default()),
        }
    }
}

/// Where the replication stream stood at a snapshot's point, saved in the
/// RDB as AUX `repl-stream-db`, `repl-id` and `repl-offset` (Redis's
/// `rdbSaveInfo`), so that a restarted replica continues with PSYNC and a
/// restarted master accepts its replicas' PSYNCs.
#[derive(Clone, Debug, PartialEq)]
pub struct SaveInfo {
    pub stream_db: usize,
    pub replid: String,
    pub offset: u64,
}

/// Redis's `rdbPopulateSaveInfo`: a replica records its master's history
/// (id, offset, the stream's database); a master with a backlog its own;
/// a master that never fed replicas records nothing. Call it at the
/// snapshot point, with every shard held and `Repl::apply` taken (unless
/// on the link thread itself), so offset and data agree.
pub fn save_info(srv: &Server) -> Option<SaveInfo> {
    let r = &srv.repl;
    let m = r.master.lock();
    if r.is_replica.load(Ordering::SeqCst) {
        let stream_db = r.link.lock().stream_db;
        return Some(SaveInfo {
            stream_db,
            replid: m.replid.clone(),
            offset: m.offset,
        });
    }
    m.backlog.as_ref()?;
    Some(SaveInfo {
        stream_db: m.cur_db.unwrap_or(0),
        replid: m.replid.clone(),
        offset: m.offset,
    })
}

/// Takes `Repl::apply` for a snapshot point, except on the replica link's
/// own thread (a FLUSHALL from the master saving with save points), which
/// already holds it for the command being applied.
pub fn hold_apply(srv: &Server) -> Option<parking_lot::MutexGuard<'_, ()>> {
    (!APPLYING_MASTER.with(|a| a.get())).then(|| srv.repl.apply.lock())
}

/// At startup, after the RDB loaded: restores the replication history it
/// recorded (Redis's `loadDataFromDisk`). A replica (replicaof set) takes
/// it as its master's history and will PSYNC from there; a master keeps it
/// as its secondary id, so replicas of the server before the restart can
/// continue.
pub fn restore_save_info(srv: &Server, info: SaveInfo) {
    let mut m = srv.repl.master.lock();
    if !srv.config.get_str("replicaof").trim().is_empty() {
        m.replid = info.replid;
        m.set_offset(srv, info.offset);
        srv.repl.link.lock().stream_db = info.stream_db;
    } else {
        m.replid2 = info.replid;
        m.second_offset = info.offset as i64 + 1;
        m.set_offset(srv, info.offset);
        drop(m);
        srv.repl.ensure_backlog(srv);
    }
}

/// A random 40-hex-digit replication id.
pub fn random_id() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..40)
        .map(|_| format!("{:x}", r.gen_range(0..16u8)))
        .collect()
}

/// The feed consumer that encodes units into the replication stream.
/// It holds the few flags its hot path reads, so that a unit counted
/// without a backlog costs one atomic add (no upgrade, no lock).
pub struct BacklogSink {
    srv: std::sync::Weak<Server>,
    is_replica: Arc<AtomicBool>,
    has_backlog: Arc<AtomicBool>,
    offset: Arc<AtomicU64>,
}

impl Sink for BacklogSink {
    fn append(&self, unit: &[Effect]) {
        if APPLYING_MASTER.with(|a| a.get()) || self.is_replica.load(Ordering::Relaxed) {
            // A replica's stream is its master's, proxied by the link.
            return;
        }
        if !self.has_backlog.load(Ordering::Acquire) {
            // As Redis: without a backlog the offset still counts units
            // (the sink is subscribed then only while the AOF is on), so
            // WAITAOF can tell writes apart.
            self.offset.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let Some(srv) = self.srv.upgrade() else {
            return;
        };
        let mut m = srv.repl.master.lock();
        let mut out = Vec::new();
        encode_unit(unit, &mut m.cur_db, &mut out);
        m.feed(&srv, &out);
    }
}

impl Repl {
    /// Whether a command could be refused for replication reasons at
    /// all (min-replicas-to-write set, or this server is a replica).
    #[inline]
    pub fn may_refuse(&self) -> bool {
        self.min_to_write.load(Ordering::Relaxed) != 0 || self.is_replica()
    }

    /// Whether we are a replica (REPLICAOF host port).
    #[inline]
    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Ordering::Relaxed)
    }

    /// master_repl_offset, without the lock.
    #[inline]
    pub fn offset(&self) -> u64 {
        self.offset_now.load(Ordering::Acquire)
    }

    /// Creates the backlog (and subscribes to the feed) if there is none.
    pub fn ensure_backlog(&self, srv: &Server) {
        let mut m = self.master.lock();
        if m.backlog.is_none() {
            m.backlog = Some(VecDeque::new());
            m.backlog_size = srv.config.get_num("repl-backlog-size").max(16 * 1024) as usize;
            m.cur_db = None;
            // Units counted without a backlog (the AOF on) carry on.
            let off = m.offset.max(self.offset());
            m.set_offset(srv, off);
            self.has_backlog.store(true, Ordering::Release);
        }
        drop(m);
        if let Some(arc) = srv.arc() {
            self.install_sink(&arc);
        }
    }

    /// Records that the master state has a backlog (set under the master
    /// lock by whoever created it): the sink then feeds it.
    pub fn mark_backlog(&self) {
        self.has_backlog.store(true, Ordering::Release);
    }

    /// Subscribes the replication sink to the feed (once): with a backlog
    /// it encodes the stream, without one it counts units for WAITAOF
    /// while the AOF is on (Redis's master_repl_offset moves then too).
    pub fn install_sink(&self, srv: &Arc<Server>) {
        if !self.sink_installed.swap(true, Ordering::SeqCst) {
            let sink = BacklogSink {
                srv: Arc::downgrade(srv),
                is_replica: self.is_replica.clone(),
                has_backlog: self.has_backlog.clone(),
                offset: self.offset_now.clone(),
            };
            srv.feed.subscribe("replication", Arc::new(sink));
            srv.update_expired_log();
        }
    }

    /// The AOF stopped: without a backlog the sink has nothing left to
    /// do (Redis counts units only while something consumes them).
    pub fn aof_stopped(&self, srv: &Server) {
        let _m = self.master.lock();
        if !self.has_backlog.load(Ordering::Acquire)
            && self.sink_installed.swap(false, Ordering::SeqCst)
        {
            srv.feed.unsubscribe("replication");
            srv.update_expired_log();
        }
    }

    /// A client closed: forget it as a replica or a WAITer.
    pub fn client_closed(&self, id: u64) {
        if !self.hellos.lock().is_empty() {
            self.hellos.lock().remove(&id);
        }
        if self.replica_count.load(Ordering::Relaxed) == 0
            && self.waiting_count.load(Ordering::Relaxed) == 0
        {
            return;
        }
        let mut m = self.master.lock();
        m.replicas.retain(|r| r.client != id);
        Self::remove_waiting(self, &mut m, id);
        self.replica_count
            .store(m.replicas.len(), Ordering::Relaxed);
        self.refresh_good(&m);
    }

    /// Feeds a command to replicas only, not the AOF (PUBLISH: Redis's
    /// PROPAGATE_REPL). It goes out at once, outside any MULTI/EXEC unit.
    pub fn propagate_only(&self, srv: &Server, db: usize, argv: &[&[u8]]) -> bool {
        // A replica's stream is its master's (a replica that was a master
        // keeps the sink and a backlog).
        if !self.sink_installed.load(Ordering::Relaxed)
            || APPLYING_MASTER.with(|a| a.get())
            || self.is_replica()
        {
            return false;
        }
        let mut m = self.master.lock();
        if m.backlog.is_none() {
            return false;
        }
        let unit = [Effect {
            db,
            argv: argv.iter().map(|a| a.to_vec()).collect(),
        }];
        let mut out = Vec::new();
        encode_unit(&unit, &mut m.cur_db, &mut out);
        m.feed(srv, &out);
        true
    }

    /// Re-reads the cached settings (after CONFIG SET and at startup).
    /// The replica class of client-output-buffer-limit: hard, soft, secs.
    pub fn replica_limits(&self) -> [u64; 3] {
        self.replica_limit
            .each_ref()
            .map(|a| a.load(Ordering::Relaxed))
    }

    /// Whether `held` bytes are over the replica class of
    /// `client-output-buffer-limit`: the hard limit at once, the soft one
    /// once exceeded for its seconds (`since` tracks when it started).
    fn held_over_limit(&self, held: usize, since: &mut Option<u64>) -> bool {
        let [hard, soft, secs] = self.replica_limits();
        let held = held as u64;
        if hard > 0 && held >= hard {
            return true;
        }
        if soft > 0 && held >= soft {
            let now = now_ms();
            let t = *since.get_or_insert(now);
            return now - t >= secs * 1000;
        }
        *since = None;
        false
    }

    pub fn apply_config(&self, srv: &Server) {
        self.min_to_write.store(
            srv.config.get_num("min-replicas-to-write").max(0) as usize,
            Ordering::Relaxed,
        );
        self.min_max_lag.store(
            srv.config.get_num("min-replicas-max-lag").max(0) as u64,
            Ordering::Relaxed,
        );
        // "normal h s t slave h s t pubsub h s t" (validated by CONFIG).
        let obl = srv.config.get_str("client-output-buffer-limit");
        let words: Vec<&str> = obl.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "slave") {
            for (k, a) in self.replica_limit.iter().enumerate() {
                let v = words.get(i + 1 + k).and_then(|w| w.parse().ok());
                a.store(v.unwrap_or(0), Ordering::Relaxed);
            }
        }
        self.refresh_good(&self.master.lock());
    }

    /// Recounts the online replicas that acknowledged within the lag.
    fn refresh_good(&self, m: &Master) {
        let lag = self.min_max_lag.load(Ordering::Relaxed) * 1000;
        let now = now_ms();
        let n = m
            .replicas
            .iter()
            .filter(|r| {
                matches!(r.state, ReplicaState::Online) && now.saturating_sub(r.ack_ms) <= lag
            })
            .count();
        self.good.store(n, Ordering::Relaxed);
    }

    /// Redis's checkGoodReplicasStatus: false when `min-replicas-to-write`
    /// asks for more replicas within `min-replicas-max-lag` than we have
    /// (writes then get NOREPLICAS).
    #[inline]
    pub fn enough_good_replicas(&self) -> bool {
        let want = self.min_to_write.load(Ordering::Relaxed);
        want == 0
            || self.is_replica()
            || self.min_max_lag.load(Ordering::Relaxed) == 0
            || self.good.load(Ordering::Relaxed) >= want
    }

    /// The client ids of our replicas (CLIENT KILL TYPE replica).
    pub fn replica_ids(&self) -> Vec<u64> {
        if self.replica_count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        self.master
            .lock()
            .replicas
            .iter()
            .map(|r| r.client)
            .collect()
    }

    /// Number of online replicas that acknowledged at least `offset`
    /// (applied, or with `aof` fsynced to their AOF).
    fn acked(m: &Master, offset: u64, aof: bool) -> usize {
        m.replicas
            .iter()
            .filter(|r| {
                matches!(r.state, ReplicaState::Online)
                    && if aof { r.aof_offset } else { r.ack_offset } >= offset
            })
            .count()
    }

    /// REPLCONF ACK from a replica (with FACK, Redis 7.2's form, the
    /// offset its AOF has fsynced): records it and serves waiters.
    pub fn ack(&self, srv: &Server, client: u64, offset: u64, fack: Option<u64>) {
        let mut m = self.master.lock();
        let now = now_ms();
        if let Some(r) = m.replicas.iter_mut().find(|r| r.client == client) {
            r.ack_offset = r.ack_offset.max(offset);
            if let Some(f) = fack {
                r.aof_offset = r.aof_offset.max(f);
            }
            r.ack_ms = now;
        }
        self.refresh_good(&m);
        Self::serve_waiting(srv, &mut m);
    }

    /// The reply a WAIT / WAITAOF waiter would get now, and whether its
    /// wait is over: Redis's processClientsWaitingReplicas.
    fn answer(srv: &Server, m: &Master, w: &WaitFor) -> (bool, WaitReply) {
        let Some(local) = w.local else {
            let n = Self::acked(m, w.target, false);
            return (n >= w.replicas, WaitReply::Replicas(n));
        };
        if local && !srv.config.get_bool("appendonly") {
            return (true, WaitReply::NoAof);
        }
        let n = Self::acked(m, w.target, true);
        let l = (srv.aof.fsynced_reploff() >= w.target as i64) as u8;
        let done = n >= w.replicas && l >= local as u8;
        (done, WaitReply::Aof(l, n))
    }

    fn serve_waiting(srv: &Server, m: &mut Master) {
        if m.waiting.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        for w in std::mem::take(&mut m.waiting) {
            let (done, reply) = Self::answer(srv, m, &w.want);
            if done {
                let name: &[u8] = if w.want.local.is_some() {
                    b"waitaof"
                } else {
                    b"wait"
                };
                if crate::commands::blocking::end_external(srv, &w.handle, name, None) {
                    let reply = reply.encode();
                    srv.send_to_worker(w.handle.worker, WorkerMsg::Served(w.handle.id, reply));
                }
            } else {
                keep.push(w);
            }
        }
        m.waiting = keep;
        srv.repl
            .waiting_count
            .store(m.waiting.len(), Ordering::Relaxed);
    }

    /// The local AOF's fsynced offset moved (or the AOF was turned off):
    /// serves the WAITAOF waiters it satisfies.
    pub fn aof_progress(&self, srv: &Server) {
        if self.waiting_count.load(Ordering::Relaxed) > 0 {
            Self::serve_waiting(srv, &mut self.master.lock());
        }
    }

    /// WAIT and WAITAOF: the reply if `want` is met already (or the client
    /// may not block: inside MULTI it answers with the current counts);
    /// else `park` is called, the client is remembered and replicas are
    /// asked for acknowledgements (the reply then comes from an ACK, an
    /// fsync or the timeout).
    pub fn wait(
        &self,
        srv: &Server,
        handle: &Arc<crate::server::client::ClientHandle>,
        want: WaitFor,
        may_block: bool,
        park: impl FnOnce(),
    ) -> Option<WaitReply> {
        let mut m = self.master.lock();
        let (done, reply) = Self::answer(srv, &m, &want);
        if done || !may_block {
            return Some(reply);
        }
        park();
        m.waiting.push(Waiting {
            handle: handle.clone(),
            want,
        });
        self.waiting_count.store(m.waiting.len(), Ordering::Relaxed);
        // Ask for acknowledgements now rather than at the next second;
        // during a pause, once it ends (see `cron`).
        if replica_traffic_paused(srv) {
            m.getack_pending = true;
        } else {
            Self::send_getack(srv, &mut m);
        }
        None
    }

    /// Asks the replicas for their offsets (REPLCONF GETACK *).
    fn send_getack(srv: &Server, m: &mut Master) {
        let mut getack = Vec::new();
        encode_argv(&mut getack, &[&b"REPLCONF"[..], b"GETACK", b"*"]);
        if m.backlog.is_some() && !m.replicas.is_empty() {
            m.feed(srv, &getack);
        }
    }

    fn remove_waiting(&self, m: &mut Master, client: u64) -> Option<WaitFor> {
        let i = m.waiting.iter().position(|w| w.handle.id == client)?;
        let w = m.waiting.remove(i);
        self.waiting_count.store(m.waiting.len(), Ordering::Relaxed);
        Some(w.want)
    }

    /// A WAIT / WAITAOF timed out (or CLIENT UNBLOCK ... TIMEOUT): its
    /// reply, the counts at this moment.
    pub fn wait_timed_out(&self, srv: &Server, client: u64) -> Vec<u8> {
        let mut m = self.master.lock();
        match self.remove_waiting(&mut m, client) {
            Some(w) => {
                let mut w = w;
                // The timeout answers with counts, never the no-AOF error.
                if w.local == Some(true) && !srv.config.get_bool("appendonly") {
                    w.local = Some(false);
                }
                Self::answer(srv, &m, &w).1.encode()
            }
            None => b":0\r\n".to_vec(),
        }
    }

    /// A waiter's wait ended another way (CLIENT UNBLOCK ... ERROR).
    pub fn forget_waiter(&self, client: u64) {
        if self.waiting_count.load(Ordering::Relaxed) > 0 {
            let mut m = self.master.lock();
            self.remove_waiting(&mut m, client);
        }
    }

    /// This master became a replica: every WAIT / WAITAOF waiter gets
    /// Redis's error (disconnectAllBlockedClients).
    pub fn drop_waiters(&self, srv: &Server) {
        if self.waiting_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut m = self.master.lock();
        for w in std::mem::take(&mut m.waiting) {
            let name: &[u8] = if w.want.local.is_some() {
                b"waitaof"
            } else {
                b"wait"
            };
            let error = crate::commands::blocking::FORCE_UNBLOCKED;
            if crate::commands::blocking::end_external(srv, &w.handle, name, Some(error)) {
                srv.send_to_worker(
                    w.handle.worker,
                    WorkerMsg::Served(w.handle.id, error.to_vec()),
                );
            }
        }
        self.waiting_count.store(0, Ordering::Relaxed);
    }

    /// From worker 0's timer (`hz`): FAILOVER's progress, PING the
    /// replicas every `repl-ping-replica-period` seconds and send a GETACK
    /// held back by a pause (neither while clients are paused: it would
    /// move the offset a failover waits for the replicas to match), refresh
    /// the backlog size.
    pub fn cron(&self, srv: &Server) {
        failover::update(srv);
        if self.replica_count.load(Ordering::Relaxed) == 0 {
            self.good.store(0, Ordering::Relaxed);
            return;
        }
        let now = now_ms();
        let period = srv.config.get_num("repl-ping-replica-period").max(1) as u64 * 1000;
        let mut m = self.master.lock();
        self.refresh_good(&m);
        m.backlog_size = srv.config.get_num("repl-backlog-size").max(16 * 1024) as usize;
        let paused = replica_traffic_paused(srv);
        if m.getack_pending && !paused {
            m.getack_pending = false;
            Self::send_getack(srv, &mut m);
        }
        if now.saturating_sub(m.last_ping_ms) >= period
            && !paused
            && m.replicas
                .iter()
                .any(|r| matches!(r.state, ReplicaState::Online))
            && !self.is_replica()
            && !failover::active(srv)
        {
            m.last_ping_ms = now;
            let mut ping = Vec::new();
            encode_argv(&mut ping, &[&b"PING"[..]]);
            m.feed(srv, &ping);
        }
    }
}

/// Whether CLIENT PAUSE (WRITE or ALL) or FAILOVER holds the master's own
/// traffic to its replicas (pings, GETACK), as Redis's PAUSE_ACTION_REPLICA
/// does: that traffic moves the replication offset.
fn replica_traffic_paused(srv: &Server) -> bool {
    srv.pause_until.load(Ordering::SeqCst) > now_ms()
}

/// The `# Replication` section of INFO.
pub fn info(srv: &Server) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    macro_rules! line {
        ($($arg:tt)*) => {{ let _ = write!(o, $($arg)*); o.push_str("\r\n"); }};
    }
    let r = &srv.repl;
    let now = now_ms();
    o.push_str("# Replication\r\n");
    let m = r.master.lock();
    if r.is_replica() {
        let l = r.link.lock();
        line!("role:slave");
        line!("master_host:{}", l.host);
        line!("master_port:{}", l.port);
        let up = l.state == "connected";
        line!("master_link_status:{}", if up { "up" } else { "down" });
        line!(
            "master_last_io_seconds_ago:{}",
            if l.last_io_ms > 0 {
                (now.saturating_sub(l.last_io_ms) / 1000) as i64
            } else {
                -1
            }
        );
        line!("master_sync_in_progress:{}", l.sync_in_progress as u8);
        line!("slave_read_repl_offset:{}", m.offset);
        line!("slave_repl_offset:{}", m.offset);
        if !up {
            line!(
                "master_link_down_since_seconds:{}",
                if l.down_since_ms > 0 {
                    (now.saturating_sub(l.down_since_ms) / 1000) as i64
                } else {
                    -1
                }
            );
        }
        line!("slave_priority:{}", srv.config.get_num("replica-priority"));
        line!(
            "slave_read_only:{}",
            srv.config.get_bool("replica-read-only") as u8
        );
        line!(
            "replica_announced:{}",
            srv.config.get_bool("replica-announced") as u8
        );
    } else {
        line!("role:master");
    }
    let online: Vec<&Replica> = m.replicas.iter().collect();
    line!("connected_slaves:{}", online.len());
    for (i, rep) in online.iter().enumerate() {
        let state = match rep.state {
            ReplicaState::WaitRdb(_) => "wait_bgsave",
            ReplicaState::Online => "online",
        };
        line!(
            "slave{i}:ip={},port={},state={state},offset={},lag={}",
            rep.ip,
            rep.port,
            rep.ack_offset,
            now.saturating_sub(rep.ack_ms) / 1000
        );
    }
    line!("master_failover_state:{}", failover::state_name(srv));
    line!("master_replid:{}", m.replid);
    line!("master_replid2:{}", m.replid2);
    // Without a backlog the units counted lock-free are in `offset()`.
    line!("master_repl_offset:{}", m.offset.max(r.offset()));
    line!("second_repl_offset:{}", m.second_offset);
    let active = m.backlog.is_some();
    line!("repl_backlog_active:{}", active as u8);
    line!(
        "repl_backlog_size:{}",
        srv.config.get_num("repl-backlog-size")
    );
    line!(
        "repl_backlog_first_byte_offset:{}",
        if active { m.first_offset() } else { 0 }
    );
    line!(
        "repl_backlog_histlen:{}",
        m.backlog.as_ref().map_or(0, |b| b.len())
    );
    o
}

/// Bytes the backlog holds (INFO memory's mem_replication_backlog).
pub fn backlog_bytes(srv: &Server) -> usize {
    srv.repl
        .master
        .lock()
        .backlog
        .as_ref()
        .map_or(0, |b| b.len())
}

/// At startup: a `replicaof` line in the config starts the link.
pub fn start_from_config(srv: &Arc<Server>) {
    let v = srv.config.get_str("replicaof");
    let w: Vec<&str> = v.split_whitespace().collect();
    if w.len() == 2 {
        if let Ok(port) = w[1].parse::<u16>() {
            link::replicate_from(srv, w[0], port);
        }
    }
}
