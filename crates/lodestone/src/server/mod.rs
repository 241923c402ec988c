//! Server-wide state shared by every worker thread: configuration, the
//! keyspace, the command table, the registry of connected clients and the
//! statistics INFO reports.

pub mod client;
pub mod evict;
pub mod latency;
pub mod lazyfree;
pub mod memory;
pub mod net;
pub mod signals;
pub mod stats;

use crate::commands::CommandTable;
use crate::config::{Config, HOT};
use crate::keyspace::Keyspace;
use client::ClientHandle;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Messages a worker thread accepts from other threads.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Close this client (CLIENT KILL from another thread).
    Kill(u64),
    /// Re-check paused clients (CLIENT UNPAUSE).
    Unpause,
    /// Pub/Sub messages for clients of this worker.
    Deliver(Vec<(u64, Arc<crate::commands::pubsub::Message>)>),
    /// A line for a MONITOR client.
    Monitor(u64, Arc<[u8]>),
    /// Bytes of a replica's full sync: `pending` drops by their length once
    /// they are in the client's output buffer (the sync paces itself on it).
    SyncBytes(u64, Arc<[u8]>, Arc<AtomicUsize>),
    /// A writer served this parked client: its reply.
    Served(u64, Vec<u8>),
    /// This server became a replica: a parked client gets Redis's
    /// UNBLOCKED error and is closed (its wait already ended).
    ForceUnblocked(u64),
    /// CLIENT UNBLOCK: end the parking with the timeout reply or an error.
    Unblock { client: u64, error: bool },
    /// CONFIG SET port / bind: listen on these sockets from now on (the
    /// old listeners are closed).
    Listeners(Vec<std::net::TcpListener>),
    /// A connection another worker accepted for this one (the worker
    /// serving the fewest connections): serve it from now on.
    Adopt(std::net::TcpStream, std::net::SocketAddr),
    /// A client-side caching invalidation for this client; `redirected`
    /// when it is another client's message sent here by REDIRECT.
    Track {
        client: u64,
        redirected: bool,
        msg: Arc<crate::commands::tracking::Invalidation>,
        /// Its share of `memory::TRACKING_IN_TRANSIT`, given back once the
        /// receiving worker has flushed its output.
        bytes: u64,
    },
}

/// How another thread reaches a worker: its mailbox and its waker.
pub struct WorkerHandle {
    pub tx: crossbeam_channel::Sender<WorkerMsg>,
    pub waker: Arc<mio::Waker>,
    /// Connections this worker serves, counting those handed to it and
    /// not adopted yet: new connections go to the worker with the fewest.
    pub conns: Arc<AtomicUsize>,
}

impl WorkerHandle {
    pub fn send(&self, m: WorkerMsg) {
        if self.tx.send(m).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Queues a message for the calling thread's own worker: no wake-up
    /// syscall, the worker drains its mailbox before it polls again.
    fn send_local(&self, m: WorkerMsg) {
        let _ = self.tx.send(m);
    }
}

thread_local! {
    /// The index of the worker running on this thread (usize::MAX on
    /// other threads), so messages to oneself skip the waker.
    pub static CURRENT_WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
}

fn is_current_worker(i: usize) -> bool {
    CURRENT_WORKER.with(|w| w.get()) == i
}

/// CLIENT PAUSE state: until when, and whether only writes are paused;
/// plus FAILOVER's write pause, which lasts until the failover ends and
/// which CLIENT UNPAUSE leaves alone (Redis's pause purposes).
#[derive(Default, Clone, Copy)]
pub struct Pause {
    pub until_ms: u64,
    pub write_only: bool,
    pub failover: bool,
}

impl Pause {
    /// Until when some command may be held back (`Server::pause_until`).
    pub fn until(&self) -> u64 {
        if self.failover {
            u64::MAX
        } else {
            self.until_ms
        }
    }
}

pub struct Server {
    pub config: Config,
    pub keyspace: Keyspace,
    pub commands: CommandTable,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    pub next_client_id: AtomicU64,
    pub connected: AtomicUsize,
    pub stats: stats::Stats,
    pub workers: Mutex<Vec<WorkerHandle>>,
    pub worker_count: AtomicUsize,
    pub started: Instant,
    pub started_unix: u64,
    pub run_id: String,
    pub shutdown: AtomicBool,
    pub pause: Mutex<Pause>,
    /// `pause.until_ms`, readable without the lock on every command.
    pub pause_until: AtomicU64,
    pub executable: String,
    pub config_file: Option<String>,
    pub tcp_port: AtomicUsize,
    /// Unix time of the last successful save (LASTSAVE).
    pub lastsave: AtomicU64,
    /// Changes since the last save (INFO persistence).
    pub dirty: AtomicU64,
    pub slowlog: Mutex<stats::SlowLog>,
    /// WATCHed keys: (db, key) -> clients watching it. `watch_count` lets
    /// writers skip the lookup when nobody watches anything.
    pub watches: Mutex<HashMap<(usize, Vec<u8>), Vec<Arc<ClientHandle>>>>,
    pub watch_count: AtomicUsize,
    /// Clients parked by blocking commands, per key.
    pub waiters: crate::commands::blocking::Waiters,
    /// MONITOR clients: (client id, worker); `monitor_count` is read on
    /// every command.
    pub monitors: Mutex<Vec<(u64, usize)>>,
    pub monitor_count: AtomicUsize,
    /// MIGRATE's cached connections to target servers.
    pub migrate_sockets: crate::commands::migrate::SocketCache,
    /// Every Pub/Sub subscription.
    pub pubsub: crate::commands::pubsub::Registry,
    /// Parsed `notify-keyspace-events` (kept in sync by CONFIG SET).
    pub notify_flags: std::sync::atomic::AtomicU32,
    /// Script cache, function libraries and running-script state.
    pub scripting: crate::scripting::Scripting,
    /// RDB persistence status (INFO persistence, BGSAVE, MISCONF).
    pub persist: crate::persist::State,
    /// The server's own `Arc`, set by `net::serve`, for work that outlives
    /// a command (BGSAVE's thread).
    pub self_ref: std::sync::OnceLock<std::sync::Weak<Server>>,
    /// Client-side caching: tracked keys, prefixes, tracking clients.
    pub tracking: crate::commands::tracking::Tracking,
    /// The propagation feed (effects of writes, for the AOF).
    pub feed: crate::commands::propagate::Feed,
    /// The append-only file.
    pub aof: Arc<crate::aof::Aof>,
    /// Replication: backlog, replicas, the link to our master.
    pub repl: crate::repl::Repl,
    /// Users and permissions (ACL).
    pub acl: crate::acl::Acl,
}

/// A monotonic clock reading in nanoseconds (CLOCK_MONOTONIC, the clock
/// of `Instant`). The request path times every command: with a plain
/// integer a duration is one subtraction, where `Instant`'s is a
/// normalisation of two timespecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mono(pub u64);

impl Mono {
    #[inline]
    pub fn now() -> Mono {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        Mono(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
    }

    /// Nanoseconds from `earlier` to this reading (0 if it is later).
    #[inline]
    pub fn nanos_since(self, earlier: Mono) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The `Instant` of this reading (for code that keeps `Instant`s).
    pub fn to_instant(self) -> std::time::Instant {
        let now = Mono::now();
        std::time::Instant::now() - std::time::Duration::from_nanos(now.nanos_since(self))
    }
}

/// Unix time for monotonic readings: the two clocks read together once,
/// then a reading's Unix time is an addition (a worker refreshes it every
/// loop pass, so a step of the wall clock shows from the next pass on).
#[derive(Clone, Copy, Debug)]
pub struct UnixClock {
    mono: Mono,
    unix_ns: u64,
}

impl UnixClock {
    pub fn now() -> UnixClock {
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        UnixClock {
            mono: Mono::now(),
            unix_ns,
        }
    }

    /// Milliseconds since the Unix epoch at `t`.
    #[inline]
    pub fn ms_at(&self, t: Mono) -> u64 {
        (self.unix_ns + t.0.wrapping_sub(self.mono.0)) / 1_000_000
    }
}

/// Milliseconds since the Unix epoch.
#[inline]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Redis's NOREPLICAS error (min-replicas-to-write not met).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

impl Server {
    /// Redis's `checkGoodReplicasStatus`: false when min-replicas-to-write
    /// and min-replicas-max-lag are set and fewer replicas are good.
    #[inline]
    pub fn good_replicas_ok(&self) -> bool {
        self.repl.enough_good_replicas()
    }

    pub fn new(config: Config, executable: String, config_file: Option<String>) -> Server {
        let dbs = config.num(HOT.databases) as usize;
        let run_id: String = {
            use rand::Rng;
            let mut r = rand::thread_rng();
            (0..40)
                .map(|_| format!("{:x}", r.gen_range(0..16u8)))
                .collect()
        };
        let port = config.num(HOT.port) as usize;
        let commands = CommandTable::build();
        Server {
            acl: crate::acl::Acl::new(&commands),
            config,
            keyspace: Keyspace::new(dbs),
            commands,
            clients: Mutex::new(BTreeMap::new()),
            next_client_id: AtomicU64::new(1),
            connected: AtomicUsize::new(0),
            stats: stats::Stats::default(),
            workers: Mutex::new(Vec::new()),
            worker_count: AtomicUsize::new(1),
            started: Instant::now(),
            started_unix: now_ms() / 1000,
            run_id,
            shutdown: AtomicBool::new(false),
            pause: Mutex::new(Pause::default()),
            pause_until: AtomicU64::new(0),
            executable,
            config_file,
            tcp_port: AtomicUsize::new(port),
            lastsave: AtomicU64::new(now_ms() / 1000),
            dirty: AtomicU64::new(0),
            slowlog: Mutex::new(stats::SlowLog::default()),
            watches: Mutex::new(HashMap::new()),
            watch_count: AtomicUsize::new(0),
            waiters: Default::default(),
            monitors: Mutex::new(Vec::new()),
            monitor_count: AtomicUsize::new(0),
            migrate_sockets: Default::default(),
            pubsub: Default::default(),
            notify_flags: Default::default(),
            scripting: Default::default(),
            persist: Default::default(),
            self_ref: std::sync::OnceLock::new(),
            tracking: Default::default(),
            feed: Default::default(),
            aof: Arc::new(Default::default()),
            repl: Default::default(),
        }
    }

    /// The server's `Arc` (None before `net::serve` ran).
    pub fn arc(&self) -> Option<Arc<Server>> {
        self.self_ref.get().and_then(|w| w.upgrade())
    }

    /// Sends a message to the worker that owns a client.
    pub fn send_to_worker(&self, worker: usize, m: WorkerMsg) {
        if let Some(w) = self.workers.lock().get(worker) {
            if is_current_worker(worker) {
                w.send_local(m);
            } else {
                w.send(m);
            }
        }
    }

    /// The worker a new connection accepted by worker `me` should go to:
    /// the one serving the fewest connections (`me` on a tie, which saves
    /// the hand-over). Counts it there at once, so that connections
    /// accepted at the same time by several workers spread too.
    pub fn pick_worker(&self, me: usize) -> usize {
        let workers = self.workers.lock();
        let load = |i: usize| {
            workers
                .get(i)
                .map_or(usize::MAX, |w| w.conns.load(Ordering::Relaxed))
        };
        let mut best = me;
        for i in 0..workers.len() {
            if load(i) < load(best) {
                best = i;
            }
        }
        if let Some(w) = workers.get(best) {
            w.conns.fetch_add(1, Ordering::Relaxed);
        }
        best
    }

    /// How many connections each worker serves (DEBUG WORKERS).
    pub fn worker_loads(&self) -> Vec<usize> {
        self.workers
            .lock()
            .iter()
            .map(|w| w.conns.load(Ordering::Relaxed))
            .collect()
    }

    pub fn broadcast(&self, mk: impl Fn() -> WorkerMsg) {
        for (i, w) in self.workers.lock().iter().enumerate() {
            if is_current_worker(i) {
                w.send_local(mk());
            } else {
                w.send(mk());
            }
        }
    }

    /// Whether commands of this kind must wait because of CLIENT PAUSE.
    pub fn paused_for(&self, is_write: bool, now: u64) -> bool {
        let p = *self.pause.lock();
        (p.until_ms > now && (!p.write_only || is_write)) || (p.failover && is_write)
    }

    /// Publishes a pause state: the lock-free `pause_until` every command
    /// checks, and the hold on expiry and eviction (Redis pauses those
    /// with writes, so the dataset and the stream stay still).
    pub fn store_pause(&self, p: &Pause) {
        self.pause_until.store(p.until(), Ordering::SeqCst);
        crate::keyspace::shard::EXPIRY_PAUSED_UNTIL.store(p.until(), Ordering::SeqCst);
    }

    /// Starts or ends FAILOVER's write pause; ending it lets paused
    /// clients run (unless CLIENT PAUSE still holds them).
    pub fn set_failover_pause(&self, on: bool) {
        let mut p = self.pause.lock();
        p.failover = on;
        self.store_pause(&p);
        drop(p);
        if !on {
            self.broadcast(|| WorkerMsg::Unpause);
        }
    }

    pub fn watch_add(&self, db: usize, key: &[u8], h: &Arc<ClientHandle>) {
        let mut w = self.watches.lock();
        w.entry((db, key.to_vec())).or_default().push(h.clone());
        self.watch_count.fetch_add(1, Ordering::SeqCst);
    }

    pub fn watch_remove(&self, db: usize, key: &[u8], client: u64) {
        let mut w = self.watches.lock();
        if let Some(v) = w.get_mut(&(db, key.to_vec())) {
            let before = v.len();
            v.retain(|h| h.id != client);
            self.watch_count
                .fetch_sub(before - v.len(), Ordering::SeqCst);
            if v.is_empty() {
                w.remove(&(db, key.to_vec()));
            }
        }
    }

    /// The keys some client WATCHes in `db`.
    pub fn watched_keys(&self, db: usize) -> Vec<Vec<u8>> {
        if self.watch_count.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.watches
            .lock()
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Marks clients watching `key` in `db` (or every key of `db` when
    /// `key` is None, or of every db when `db` is None) as dirty.
    pub fn touch_watched(&self, db: Option<usize>, key: Option<&[u8]>) {
        if self.watch_count.load(Ordering::SeqCst) == 0 {
            return;
        }
        let w = self.watches.lock();
        match (db, key) {
            (Some(d), Some(k)) => {
                if let Some(v) = w.get(&(d, k.to_vec())) {
                    v.iter()
                        .for_each(|h| h.watch_dirty.store(true, Ordering::SeqCst));
                }
            }
            _ => {
                for ((d, _), v) in w.iter() {
                    if db.is_none_or(|x| x == *d) {
                        v.iter()
                            .for_each(|h| h.watch_dirty.store(true, Ordering::SeqCst));
                    }
                }
            }
        }
    }

    /// Removes a client from the MONITOR list (on close).
    pub fn monitor_remove(&self, client: u64) {
        let mut m = self.monitors.lock();
        m.retain(|(c, _)| *c != client);
        self.monitor_count.store(m.len(), Ordering::SeqCst);
    }

    /// Re-reads configuration that is cached outside the config table.
    pub fn apply_config(&self) {
        crate::keyspace::shard::COMPACT_ON_CHURN
            .store(self.config.num(HOT.maxmemory) > 0, Ordering::Relaxed);
        lazyfree::configure(self);
        memory::set_background_thread(self.config.get_bool("jemalloc-bg-thread"));
        latency::configure(
            self.config.get_num("latency-monitor-threshold"),
            self.config.get_bool("latency-tracking"),
        );
        self.acl.sync_config(self, &self.commands);
        let f =
            crate::commands::notify::parse_flags(&self.config.get_str("notify-keyspace-events"))
                .unwrap_or(0);
        self.notify_flags.store(f, Ordering::Relaxed);
        self.update_expired_log();
        self.repl.apply_config(self);
        use crate::keyspace::lru::{self, Policy};
        let before = lru::policy();
        let policy = Policy::from_name(&self.config.get_str("maxmemory-policy"));
        lru::configure(
            policy,
            self.config.get_num("lfu-log-factor").max(0) as u32,
            self.config.get_num("lfu-decay-time").max(0) as u32,
        );
        evict::CLIENTS_LIMIT.store(
            evict::clients_limit_of(
                &self.config.get_str("maxmemory-clients"),
                self.config.num(HOT.maxmemory) as u64,
            ),
            Ordering::Relaxed,
        );
        if policy != before {
            evict::reset();
            if policy.is_s3() || before.is_s3() {
                crate::keyspace::s3fifo::reset();
            }
            if before.is_s3() {
                // The queues are rebuilt from the table if it comes back
                // (volatile-s3fifo queues only keys with a TTL).
                for db in 0..self.keyspace.db_count() {
                    for sh in self.keyspace.db(db).allocated().unwrap_or_default() {
                        sh.lock().s3 = None;
                    }
                }
            }
        }
    }

    /// Shards log expired keys' names while expired events are enabled or
    /// some client tracks keys (expiry invalidates cached copies).
    pub fn update_expired_log(&self) {
        use crate::commands::notify::{EXPIRED, KEYEVENT, KEYSPACE};
        let f = self.notify_flags.load(Ordering::Relaxed);
        let log = (f & EXPIRED != 0 && f & (KEYSPACE | KEYEVENT) != 0)
            || self.tracking.active()
            || self.feed.active();
        crate::keyspace::shard::LOG_EXPIRED.store(log, Ordering::Relaxed);
        let new = f & crate::commands::notify::NEW != 0 && f & (KEYSPACE | KEYEVENT) != 0;
        crate::keyspace::shard::LOG_NEW.store(new, Ordering::Relaxed);
        self.aof.apply_config(self);
    }

    pub fn add_dirty(&self, n: u64) {
        if n > 0 {
            self.dirty.fetch_add(n, Ordering::Relaxed);
            LOCAL_DIRTY.with(|d| d.set(d.get() + n));
        }
    }
}

thread_local! {
    /// Changes made by commands run on this thread: lets the dispatcher
    /// tell whether one command changed anything (other threads' writes
    /// do not show up here).
    pub static LOCAL_DIRTY: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
