//! A connected client: the state its commands read and change (database,
//! protocol, authentication, reply mode), and the handle other threads use
//! to list or kill it.

use parking_lot::Mutex;
use resp::Proto;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// What CLIENT LIST and CLIENT KILL see of a client, shared across threads.
pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub worker: usize,
    pub created_ms: u64,
    pub name: Mutex<String>,
    pub lib_name: Mutex<String>,
    pub lib_ver: Mutex<String>,
    pub db: AtomicUsize,
    pub last_interaction_ms: AtomicU64,
    /// Id of the last command run (usize::MAX before the first).
    pub last_cmd: AtomicUsize,
    pub qbuf: AtomicUsize,
    pub omem: AtomicUsize,
    /// Bytes allocated for the query buffer and the reply buffer (their
    /// capacities): the client's share of used_memory (mem_clients_normal).
    pub qbuf_mem: AtomicUsize,
    pub obuf_mem: AtomicUsize,
    /// Set by client eviction: the bytes it counted as freed.
    pub evicted_mem: AtomicU64,
    pub resp: AtomicUsize,
    /// -1 outside MULTI, else the number of queued commands.
    pub multi: AtomicI64,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    pub killed: AtomicBool,
    /// A WATCHed key was modified: the next EXEC fails.
    pub watch_dirty: AtomicBool,
    /// Subscription counts (CLIENT LIST sub=, psub=, ssub=).
    pub sub: AtomicUsize,
    pub psub: AtomicUsize,
    pub ssub: AtomicUsize,
    /// Parked by a blocking command (CLIENT UNBLOCK, INFO).
    pub blocked: AtomicBool,
    /// Held back by CLIENT PAUSE (CLIENT LIST shows it as blocked).
    pub postponed: AtomicBool,
    pub is_master: AtomicBool,
    /// A replica syncing from us (CLIENT LIST flag S, the `replica`
    /// class of client-output-buffer-limit, never client-evicted).
    pub is_replica: AtomicBool,
    /// Client-side caching flags other threads see (tracking ON, BCAST,
    /// BROKEN redirect) and the redirect id (-1 when off), for CLIENT LIST.
    pub track_flags: AtomicU8,
    pub track_redir: AtomicI64,
    /// The ACL user the connection is authenticated as (CLIENT LIST
    /// `user=`, ACL DELUSER closing its connections).
    pub user: Mutex<std::sync::Arc<str>>,
}

impl ClientHandle {
    pub fn new(
        id: u64,
        addr: String,
        laddr: String,
        fd: i32,
        worker: usize,
        now_ms: u64,
    ) -> ClientHandle {
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            worker,
            created_ms: now_ms,
            name: Mutex::new(String::new()),
            lib_name: Mutex::new(String::new()),
            lib_ver: Mutex::new(String::new()),
            db: AtomicUsize::new(0),
            last_interaction_ms: AtomicU64::new(now_ms),
            last_cmd: AtomicUsize::new(usize::MAX),
            qbuf: AtomicUsize::new(0),
            omem: AtomicUsize::new(0),
            qbuf_mem: AtomicUsize::new(0),
            obuf_mem: AtomicUsize::new(0),
            evicted_mem: AtomicU64::new(0),
            resp: AtomicUsize::new(2),
            multi: AtomicI64::new(-1),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            watch_dirty: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            postponed: AtomicBool::new(false),
            sub: AtomicUsize::new(0),
            psub: AtomicUsize::new(0),
            ssub: AtomicUsize::new(0),
            is_master: AtomicBool::new(false),
            is_replica: AtomicBool::new(false),
            track_flags: AtomicU8::new(0),
            track_redir: AtomicI64::new(-1),
            user: Mutex::new(std::sync::Arc::from("default")),
        }
    }

    /// Bytes this client holds: buffers plus a fixed share for its state
    /// (CLIENT LIST tot-mem, INFO mem_clients_normal).
    pub fn memory(&self) -> usize {
        self.qbuf_mem.load(Ordering::Relaxed)
            + self.obuf_mem.load(Ordering::Relaxed)
            + std::mem::size_of::<ClientHandle>()
            + std::mem::size_of::<Client>()
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis 7.2's field order.
    pub fn info_line(&self, now_ms: u64, cmds: &crate::commands::CommandTable) -> String {
        let last = self.last_cmd.load(Ordering::Relaxed);
        let cmd = cmds.cmds.get(last).map_or("NULL", |c| c.name.as_str());
        let flags = {
            let mut f = String::new();
            if self.is_replica.load(Ordering::Relaxed) {
                f.push('S');
            }
            if self.is_master.load(Ordering::Relaxed) {
                f.push('M');
            }
            if self.multi.load(Ordering::Relaxed) >= 0 {
                f.push('x');
            }
            if self.no_evict.load(Ordering::Relaxed) {
                f.push('e');
            }
            if self.no_touch.load(Ordering::Relaxed) {
                f.push('T');
            }
            if self.blocked.load(Ordering::Relaxed) || self.postponed.load(Ordering::Relaxed) {
                f.push('b');
            }
            let t = self.track_flags.load(Ordering::Relaxed);
            use crate::commands::tracking::{BCAST, BROKEN, ON};
            for (bit, c) in [(ON, 't'), (BROKEN, 'R'), (BCAST, 'B')] {
                if t & bit != 0 {
                    f.push(c);
                }
            }
            if self.sub.load(Ordering::Relaxed)
                + self.psub.load(Ordering::Relaxed)
                + self.ssub.load(Ordering::Relaxed)
                > 0
            {
                f.push('P');
            }
            if f.is_empty() {
                f.push('N');
            }
            f
        };
        let qbuf = self.qbuf.load(Ordering::Relaxed);
        let omem = self.omem.load(Ordering::Relaxed);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name.lock(),
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000,
            flags,
            self.db.load(Ordering::Relaxed),
            self.sub.load(Ordering::Relaxed),
            self.psub.load(Ordering::Relaxed),
            self.ssub.load(Ordering::Relaxed),
            self.multi.load(Ordering::Relaxed),
            qbuf,
            16384usize.saturating_sub(qbuf),
            omem,
            self.memory(),
            cmd,
            self.user.lock(),
            if self.track_flags.load(Ordering::Relaxed) & crate::commands::tracking::ON != 0 {
                self.track_redir.load(Ordering::Relaxed)
            } else {
                -1
            },
            self.resp.load(Ordering::Relaxed),
            self.lib_name.lock(),
            self.lib_ver.lock(),
        )
    }
}

/// CLIENT REPLY mode.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    SkipNext,
    Skip,
}

/// A command queued inside MULTI.
pub struct Queued {
    pub argv: Vec<Vec<u8>>,
}

/// State of one connection, owned by the worker thread that serves it.
pub struct Client {
    pub handle: std::sync::Arc<ClientHandle>,
    pub db: usize,
    pub proto: Proto,
    pub authenticated: bool,
    pub reply_mode: ReplyMode,
    /// Set by QUIT or a protocol error: close after flushing replies.
    pub close_after_reply: bool,
    /// Commands queued by MULTI (None outside a transaction).
    pub multi: Option<Vec<Queued>>,
    /// A command inside MULTI was rejected: EXEC must fail with EXECABORT.
    pub multi_error: bool,
    /// Keys this client WATCHes, with whether each existed when watched.
    pub watched: Vec<(usize, Vec<u8>, u64)>,
    /// Set while a blocking command has parked this client.
    pub blocked: Option<crate::commands::blocking::BlockState>,
    /// Pub/Sub subscriptions.
    pub subs: crate::commands::pubsub::ClientSubs,
    /// Client-side caching settings (CLIENT TRACKING).
    pub tracking: crate::commands::tracking::ClientTracking,
    /// The ACL user and its cached permissions (internal clients have
    /// none and may run anything).
    pub acl: crate::acl::ClientAcl,
}

impl Client {
    pub fn new(handle: std::sync::Arc<ClientHandle>, authenticated: bool) -> Client {
        Client {
            handle,
            db: 0,
            proto: Proto::Resp2,
            authenticated,
            reply_mode: ReplyMode::On,
            close_after_reply: false,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            blocked: None,
            subs: Default::default(),
            tracking: Default::default(),
            acl: Default::default(),
        }
    }

    pub fn id(&self) -> u64 {
        self.handle.id
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.handle.db.store(db, Ordering::Relaxed);
    }
}
