//! The event loops: one worker thread per core, each with its own
//! `SO_REUSEPORT` listener, epoll instance (through mio) and connections.
//!
//! A worker reads whatever a connection has sent, parses every complete
//! request, executes them one after another to completion, and writes all
//! replies with one `write` call once every ready connection of the loop
//! pass has run (Redis's beforeSleep). Other threads reach a worker through its
//! mailbox and waker (CLIENT KILL, CLIENT UNPAUSE, later blocking and
//! pub/sub deliveries).

use super::client::{Client, ClientHandle};
use super::{now_ms, Mono, Server, UnixClock, WorkerHandle, WorkerMsg};
use crate::commands::{self, Ctx};
use crate::config::HOT;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use resp::{ArgSource, Limits, Parser};
/// Maps keyed by connection token or client id: a fast fixed hasher
/// (SipHash cost ~140 instructions per lookup, several per request).
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKER: Token = Token(usize::MAX - 1);
const FIRST_LISTENER: usize = usize::MAX - 1000;
const READ_CHUNK: usize = 16 * 1024;
/// Most bytes read from one connection before the worker serves the
/// others: a client streaming a huge pipeline must not stall the rest.
const READ_BUDGET: usize = 256 * 1024;
/// Longest a worker runs one connection's parsed requests in one loop
/// pass (checked every [`QUANTUM_EVERY`] commands): a client streaming a
/// deep pipeline must not add more than this to the latency of clients on
/// the same worker. The rest of its input waits for the next loop pass,
/// as input over the read budget does.
const QUANTUM: Duration = Duration::from_micros(250);
/// After this long on one connection the worker looks for other clients
/// with work (events not handled yet, input left over, a zero-timeout
/// poll) and ends the connection's turn if there are any: a client that
/// sends one request at a time waits for at most one slice of a
/// pipeliner's work, not a whole quantum. A pipeliner alone on its
/// worker keeps running for the whole quantum without a write or a pass.
const SLICE: Duration = Duration::from_micros(50);
const QUANTUM_EVERY: u32 = 8;

struct Conn {
    stream: TcpStream,
    client: Client,
    inbuf: Vec<u8>,
    in_pos: usize,
    outbuf: Vec<u8>,
    out_pos: usize,
    parser: Parser,
    /// Input is waiting because of CLIENT PAUSE.
    paused: bool,
    /// Registered for WRITABLE because a write would have blocked.
    want_write: bool,
    /// Since when pending output has been over the soft limit.
    soft_since: Option<Instant>,
    /// Queued in `Worker::to_flush` (output from the mailbox waits there).
    flush_queued: bool,
    /// The last pass stopped at the time quantum with complete requests
    /// left in `inbuf`.
    yielded: bool,
    /// The loop pass that last read and ran this connection's input.
    served_pass: u64,
    /// The worker's activity window in which this connection last sent
    /// input (`Activity`).
    seen_window: u32,
}

/// The connections of one worker, indexed by token. A token is a slot
/// index (low 32 bits) plus the slot's generation (high bits), so a stale
/// token (an event or list entry for a closed connection whose slot was
/// reused) finds nothing. Cheaper than a hash map: a lookup is an index
/// and a compare, and a request looks its connection up several times.
#[derive(Default)]
struct Conns {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

/// One entry of [`Conns`].
#[derive(Default)]
struct Slot {
    generation: u32,
    /// None while the slot is free or while its connection's commands run
    /// (taken out by `take`).
    conn: Option<Box<Conn>>,
}

impl Conns {
    fn split(token: usize) -> (usize, u32) {
        (token & 0xffff_ffff, (token >> 32) as u32)
    }

    fn slot(&self, token: usize) -> Option<&Slot> {
        let (i, g) = Self::split(token);
        self.slots.get(i).filter(|s| s.generation == g)
    }

    fn slot_mut(&mut self, token: usize) -> Option<&mut Slot> {
        let (i, g) = Self::split(token);
        self.slots.get_mut(i).filter(|s| s.generation == g)
    }

    /// Adds a connection and returns its token.
    fn insert(&mut self, conn: Box<Conn>) -> usize {
        let i = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        self.slots[i].conn = Some(conn);
        // Generations stay under 2^31: tokens never reach the waker's or
        // the listeners' tokens at the top of the range.
        ((self.slots[i].generation as usize) << 32) | i
    }

    fn get(&self, token: usize) -> Option<&Conn> {
        self.slot(token)?.conn.as_deref()
    }

    fn get_mut(&mut self, token: usize) -> Option<&mut Conn> {
        self.slot_mut(token)?.conn.as_deref_mut()
    }

    fn contains(&self, token: usize) -> bool {
        self.get(token).is_some()
    }

    /// The connection is out of the table while its commands run.
    fn is_taken(&self, token: usize) -> bool {
        // A freed slot's generation moved on: a matching empty slot is taken.
        self.slot(token).is_some_and(|s| s.conn.is_none())
    }

    /// Takes a connection out while its commands run; its slot stays
    /// reserved for [`Conns::put_back`].
    fn take(&mut self, token: usize) -> Option<Box<Conn>> {
        self.slot_mut(token)?.conn.take()
    }

    fn put_back(&mut self, token: usize, conn: Box<Conn>) {
        if let Some(s) = self.slot_mut(token) {
            s.conn = Some(conn);
        }
    }

    /// Removes a connection (none if it is taken out) and frees its slot.
    fn remove(&mut self, token: usize) -> Option<Box<Conn>> {
        let (i, _) = Self::split(token);
        let s = self.slot_mut(token)?;
        let c = s.conn.take()?;
        s.generation = s.generation.wrapping_add(1) & 0x7fff_ffff;
        self.free.push(i as u32);
        Some(c)
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Conn)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let c = s.conn.as_deref()?;
            Some((((s.generation as usize) << 32) | i, c))
        })
    }

    fn tokens(&self) -> Vec<usize> {
        self.iter().map(|(t, _)| t).collect()
    }
}

/// The addresses to listen on, from the `bind` and `port` parameters.
pub fn bind_addrs(srv: &Server) -> Vec<(SocketAddr, bool)> {
    addrs_for(&srv.config.get_str("bind"), srv.config.num(HOT.port) as u16)
}

/// The addresses for a `bind` value and a port, each with whether it is
/// optional (Redis's `-` prefix: skipped when the address is not
/// available on this machine).
pub fn addrs_for(bind: &str, port: u16) -> Vec<(SocketAddr, bool)> {
    let mut out = Vec::new();
    for word in bind.split_whitespace() {
        let optional = word.starts_with('-');
        let w = word.trim_start_matches('-');
        let ip = match w {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        match format!("{ip}:{port}")
            .parse::<SocketAddr>()
            .or_else(|_| format!("[{ip}]:{port}").parse())
        {
            Ok(a) => out.push((a, optional)),
            Err(_) => eprintln!("Invalid bind address '{word}'"),
        }
    }
    if out.is_empty() {
        out.push((SocketAddr::from(([127, 0, 0, 1], port)), false));
    }
    out
}

/// Binds one listening socket. Every worker watches a duplicate of it (no
/// SO_REUSEPORT: a second server on the same port must fail to start, as
/// Redis does, instead of silently sharing connections).
fn listener(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s.into())
}

/// Binds every address (none for port 0, which turns TCP off as in
/// Redis), failing as a whole if one cannot be bound.
pub fn bind_all(
    addrs: &[(SocketAddr, bool)],
    backlog: i32,
) -> io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::new();
    for &(a, optional) in addrs.iter().filter(|(a, _)| a.port() != 0) {
        match listener(a, backlog) {
            Ok(l) => out.push(l),
            Err(e)
                if optional
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::EADDRNOTAVAIL)
                            | Some(libc::EAFNOSUPPORT)
                            | Some(libc::EPROTONOSUPPORT)
                    ) =>
            {
                continue
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {a}: {e}"),
                ))
            }
        }
    }
    Ok(out)
}

/// The listening sockets (the workers watch duplicates of them).
static LISTENING: parking_lot::Mutex<Vec<std::net::TcpListener>> =
    parking_lot::Mutex::new(Vec::new());

/// Stops sockets listening at once, for every duplicate: `shutdown` on a
/// listening socket closes its accept queue and frees the address.
fn stop_listening(socks: &[std::net::TcpListener]) {
    for l in socks {
        let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Read);
    }
}

/// Makes `socks` the listening sockets: every worker gets duplicates.
fn install_listeners(
    srv: &Server,
    cur: &mut Vec<std::net::TcpListener>,
    socks: Vec<std::net::TcpListener>,
) {
    for w in srv.workers.lock().iter() {
        let dup = socks.iter().filter_map(|l| l.try_clone().ok()).collect();
        w.send(WorkerMsg::Listeners(dup));
    }
    *cur = socks;
}

/// CONFIG SET port / bind, as Redis's changeListener: the new addresses
/// are bound, then the old listeners stop. When the port stays the same
/// (only `bind` changed) the old listeners must stop first; if binding
/// then fails they are bound again. On error the server keeps its old
/// addresses.
pub fn rebind(srv: &Server, bind: &str, port: u16) -> io::Result<()> {
    let mut cur = LISTENING.lock();
    let backlog = srv.config.get_num("tcp-backlog") as i32;
    let addrs = addrs_for(bind, port);
    let socks = match bind_all(&addrs, backlog) {
        Ok(socks) => socks,
        Err(e) if port as usize != srv.tcp_port.load(Ordering::Relaxed) => return Err(e),
        Err(_) => {
            stop_listening(&cur);
            match bind_all(&addrs, backlog) {
                Ok(socks) => socks,
                Err(e) => {
                    let old = bind_all(&bind_addrs(srv), backlog).unwrap_or_else(|e2| {
                        eprintln!("Failed to restore the old listeners: {e2}");
                        Vec::new()
                    });
                    install_listeners(srv, &mut cur, old);
                    return Err(e);
                }
            }
        }
    };
    stop_listening(&cur);
    install_listeners(srv, &mut cur, socks);
    srv.tcp_port.store(port as usize, Ordering::Relaxed);
    Ok(())
}

/// Starts the workers and serves until SHUTDOWN. Binding errors are
/// returned before any thread starts. `load` (the startup load) runs on a
/// thread of its own once the listeners are bound, while workers answer.
pub fn serve(srv: Arc<Server>, load: Option<Box<dyn FnOnce() + Send>>) -> io::Result<()> {
    let threads = match srv.config.get_num("io-threads") {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n as usize,
    };
    srv.worker_count.store(threads, Ordering::Relaxed);
    let _ = srv.self_ref.set(Arc::downgrade(&srv));
    let addrs = bind_addrs(&srv);
    let backlog = srv.config.get_num("tcp-backlog") as i32;
    let mut setups = Vec::new();
    let bound = bind_all(&addrs, backlog)?;
    for i in 0..threads {
        let poll = Poll::new()?;
        let mut listeners = Vec::new();
        for (j, b) in bound.iter().enumerate() {
            let mut l = TcpListener::from_std(b.try_clone()?);
            poll.registry()
                .register(&mut l, Token(FIRST_LISTENER + j), Interest::READABLE)?;
            listeners.push(l);
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (tx, rx) = crossbeam_channel::unbounded();
        let conns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        srv.workers.lock().push(WorkerHandle {
            tx,
            waker,
            conns: conns.clone(),
        });
        setups.push((i, poll, listeners, rx, conns));
    }
    eprintln!(
        "Lodestone {} ready to accept connections on {} with {} worker thread(s)",
        env!("CARGO_PKG_VERSION"),
        addrs
            .iter()
            .map(|a| a.0.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        threads
    );
    *LISTENING.lock() = bound;
    if let Some(load) = load {
        std::thread::Builder::new()
            .name("lodestone-load".into())
            .spawn(load)?;
    }
    let mut handles = Vec::new();
    let mut first = None;
    for s in setups {
        if s.0 == 0 {
            first = Some(s);
            continue;
        }
        let srv = srv.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("lodestone-w{}", s.0))
                .spawn(move || Worker::new(srv, s.0, s.1, s.2, s.3, s.4).run())?,
        );
    }
    let s = first.expect("at least one worker");
    Worker::new(srv, s.0, s.1, s.2, s.3, s.4).run();
    Ok(())
}

struct Worker {
    srv: Arc<Server>,
    id: usize,
    poll: Poll,
    listeners: Vec<TcpListener>,
    rx: crossbeam_channel::Receiver<WorkerMsg>,
    /// Boxed: a connection is taken out of the table while its commands
    /// run, and moving a pointer is cheaper than moving the whole `Conn`.
    conns: Conns,
    by_client: FastMap<u64, usize>,
    any_paused: bool,
    /// Connections parked by a blocking command.
    blocked: std::collections::HashSet<usize>,
    /// Connections that stopped reading at the budget with data left in
    /// the socket (edge-triggered: no new event will say so).
    more_input: Vec<usize>,
    /// Connections that got output from the mailbox (pub/sub messages,
    /// MONITOR lines, invalidations). They are written once per loop pass,
    /// before polling, like Redis's handleClientsWithPendingWrites: a
    /// subscriber receiving many messages in one pass costs one write.
    to_flush: Vec<usize>,
    /// This worker's count of connections (its `WorkerHandle::conns`).
    load: Arc<std::sync::atomic::AtomicUsize>,
    /// Events of the current poll not handled yet.
    events_left: usize,
    /// Connections left with input by the last pass, not served yet in
    /// this one.
    again: Vec<usize>,
    /// Events found by `others_waiting`'s zero-timeout poll, handled
    /// later in the same pass: (token, readable, writable).
    stash: Vec<(usize, bool, bool)>,
    /// Connections whose peer hung up (EPOLLRDHUP) and whose EOF may not
    /// have been read yet: their next read must not stop at a short read,
    /// since edge-triggered epoll will not report the hang-up again.
    hups: Vec<usize>,
    /// The buffer of that poll.
    peek: Events,
    /// Counts loop passes (and busy-script pump rounds): a connection
    /// gets one turn per pass.
    pass_no: u64,
    /// How many connections sent input lately.
    activity: Activity,
    /// Bytes of `WorkerMsg::Track` received since the last flush.
    tracking_in_transit: u64,
    /// Unix time for this pass's monotonic readings (read once a pass).
    unix: UnixClock,
}

/// Counts the connections that sent input, and the reads they caused, in
/// each window of about a millisecond. Napping before a wait
/// (`Worker::nap_then_wait`) pays only when many clients are busy: a
/// client with few connections waits for its replies, and a nap would only
/// add to its latency. The two counts give the connections' cycle: how
/// long one connection takes to come back with its next request.
#[derive(Default)]
struct Activity {
    /// Window number, stamped on a connection (`Conn::seen_window`) when
    /// it is first seen in the window.
    window: u32,
    started: Option<Instant>,
    /// Connections seen in this window so far, and in the whole last one.
    now: u32,
    prev: u32,
    /// Reads of input in this window so far, and in the whole last one.
    reads_now: u32,
    reads_prev: u32,
}

impl Activity {
    const WINDOW: Duration = Duration::from_millis(1);
    /// Fewer busy connections than this never nap (with 4 busy clients a
    /// 10 µs nap cost ~15% of the requests per second).
    const NAP_MIN_CONNS: u32 = 16;

    /// Starts a new window when this one is over; returns the connections
    /// seen in this window or the last one, whichever is more.
    fn tick(&mut self, now: Instant) -> u32 {
        match self.started {
            Some(t) if now.saturating_duration_since(t) < Self::WINDOW => {}
            Some(t) if now.saturating_duration_since(t) < Self::WINDOW * 2 => {
                self.prev = self.now;
                self.reads_prev = self.reads_now;
                self.next_window(now);
            }
            // Nothing was counted for a whole window.
            _ => {
                self.prev = 0;
                self.reads_prev = 0;
                self.next_window(now);
            }
        }
        self.prev.max(self.now)
    }

    /// How long to nap: `base`, or up to `pct` percent of the cycle when
    /// the same connections came back within the last window.
    ///
    /// That is a closed loop (each client sends its next request when its
    /// reply arrives). When the client is the bottleneck, the requests a
    /// nap of `pct` of the cycle (25% by default) holds back would have
    /// waited for the client anyway; a fast client loses at most that share
    /// of its rate. In return a pass serves about that share of the
    /// connections at once:
    /// fewer waits and wake-ups per request, for the worker and for the
    /// clients. Connections that come back more slowly than the window
    /// (many clients, each sending now and then) get only `base`: a longer
    /// nap would be latency with nothing to gain.
    fn nap(&self, base: Duration, pct: u32) -> Duration {
        if base.is_zero() || self.reads_prev <= self.prev {
            return base;
        }
        let cycle = Self::WINDOW * self.prev / self.reads_prev;
        (cycle * pct / 100).max(base)
    }

    fn next_window(&mut self, now: Instant) {
        self.now = 0;
        self.reads_now = 0;
        self.window = self.window.wrapping_add(1);
        self.started = Some(now);
    }
}

/// How a parked client's wait ends on its own worker.
enum Wake {
    /// Timeout: the command's timeout reply.
    Timeout,
    /// CLIENT UNBLOCK ... TIMEOUT, whose caller already ended the wait
    /// (`blocking::unblock_from`): the timeout reply.
    UnblockedTimeout,
    /// CLIENT UNBLOCK ... ERROR, likewise.
    Unblocked,
}

impl Worker {
    fn new(
        srv: Arc<Server>,
        id: usize,
        poll: Poll,
        listeners: Vec<TcpListener>,
        rx: crossbeam_channel::Receiver<WorkerMsg>,
        load: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Worker {
        Worker {
            load,
            events_left: 0,
            again: Vec::new(),
            stash: Vec::new(),
            hups: Vec::new(),
            peek: Events::with_capacity(256),
            pass_no: 0,
            srv,
            id,
            poll,
            listeners,
            rx,
            conns: Conns::default(),
            by_client: FastMap::default(),
            any_paused: false,
            blocked: Default::default(),
            more_input: Vec::new(),
            to_flush: Vec::new(),
            activity: Activity::default(),
            tracking_in_transit: 0,
            unix: UnixClock::now(),
        }
    }

    fn run(mut self) {
        super::memory::register_thread();
        let mut events = Events::with_capacity(1024);
        let mut next_cron = Instant::now();
        crate::server::CURRENT_WORKER.with(|w| w.set(self.id));
        // How long the last wait for events lasted, and what it returned.
        let mut last_wait = Duration::MAX;
        // A nap's timer should end it when asked: the default slack (50 µs)
        // would make a 10 µs nap a 60 µs one.
        // SAFETY: prctl with PR_SET_TIMERSLACK only changes this thread's slack.
        let slack_ns: libc::c_ulong = 1000;
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns) };
        loop {
            // Messages this worker sent itself (no waker) and output queued
            // by the mailbox go out before sleeping.
            if !self.rx.is_empty() {
                self.drain_mailbox();
            }
            self.flush_queued();
            let hz = self.srv.config.num(HOT.hz).clamp(1, 500) as u64;
            let tick = Duration::from_millis(1000 / hz);
            let mut timeout = Duration::MAX;
            if self.any_paused {
                timeout = timeout.min(Duration::from_millis(5));
            }
            if let Some(d) = self.next_block_deadline() {
                timeout = timeout.min(d.saturating_duration_since(Instant::now()));
            }
            if !self.more_input.is_empty() || super::evict::own_pending() {
                timeout = Duration::ZERO;
            }
            let spin = Duration::from_micros(self.srv.config.num(HOT.busy_poll_us) as u64);
            let waited = Instant::now();
            timeout = timeout.min(next_cron.saturating_duration_since(waited));
            let busy_conns = self.activity.tick(waited);
            let nap = self.activity.nap(
                Duration::from_micros(self.srv.config.num(HOT.idle_nap_us) as u64),
                self.srv.config.num(HOT.idle_nap_cycle_pct) as u32,
            );
            // Events came within the spin time last time: poll without
            // sleeping first (see `spin_then_wait`).
            let res = if last_wait < spin && !timeout.is_zero() {
                self.spin_then_wait(&mut events, spin.min(timeout), timeout)
            } else if !nap.is_zero()
                && last_wait < nap * 2 + Duration::from_micros(100)
                && nap < timeout
                && busy_conns >= Activity::NAP_MIN_CONNS
            {
                // Many connections are busy and the last wait was short:
                // nap rather than be woken by the next request.
                self.nap_then_wait(&mut events, nap, timeout)
            } else {
                self.poll.poll(&mut events, Some(timeout))
            };
            let woke = Instant::now();
            last_wait = woke.saturating_duration_since(waited);
            if let Err(e) = res {
                if e.kind() != io::ErrorKind::Interrupted {
                    eprintln!("poll error: {e}");
                }
                continue;
            }
            let pass = super::latency::Timer::start_at(woke);
            self.unix = UnixClock::now();
            let work = |s: &Server| {
                (
                    s.stats.total_commands.local().load(Ordering::Relaxed),
                    s.stats.net_input_bytes.local().load(Ordering::Relaxed),
                )
            };
            let work0 = work(&self.srv);
            // Connections left with input by the last pass: served after
            // this pass's events, unless an event already served them.
            self.again = std::mem::take(&mut self.more_input);
            self.pass_no += 1;
            let n = events.iter().count();
            for (i, ev) in events.iter().enumerate() {
                self.events_left = n - i - 1;
                let rd = ev.is_readable() || ev.is_read_closed() || ev.is_error();
                self.note_hup(ev);
                self.on_event(ev.token().0, rd, ev.is_writable());
            }
            self.events_left = 0;
            while let Some(t) = self.again.pop() {
                if events.iter().any(|ev| ev.token() == Token(t)) {
                    continue;
                }
                self.on_readable(t);
            }
            while let Some((t, rd, wr)) = self.stash.pop() {
                self.on_event(t, rd, wr);
            }
            self.flush_queued();
            if self.srv.shutdown.load(Ordering::SeqCst) {
                self.shutdown();
            }
            if self.any_paused {
                self.retry_paused();
            }
            if !self.blocked.is_empty() {
                self.expire_blocked();
            }
            super::evict::continue_pending(&self.srv);
            let mut end = Instant::now();
            if end >= next_cron {
                let t = super::latency::Timer::start_at(end);
                self.cron();
                t.end(super::latency::Ev::Cron);
                end = Instant::now();
                next_cron = end + tick;
            }
            let work1 = work(&self.srv);
            pass.end_work_at(
                end,
                super::latency::Ev::WorkerPass,
                // CONFIG RESETSTAT may have zeroed the counters meanwhile.
                (
                    work1.0.saturating_sub(work0.0),
                    work1.1.saturating_sub(work0.1),
                ),
            );
        }
    }

    /// Handles one readiness event.
    /// Remembers a connection's hang-up for its next read (see `hups`).
    fn note_hup(&mut self, ev: &mio::event::Event) {
        if ev.is_read_closed() || ev.is_error() {
            self.hups.push(ev.token().0);
        }
    }

    fn on_event(&mut self, t: usize, readable: bool, writable: bool) {
        match Token(t) {
            WAKER => self.drain_mailbox(),
            Token(t) if t >= FIRST_LISTENER => self.accept(t - FIRST_LISTENER),
            Token(t) => {
                if readable {
                    self.on_readable(t);
                }
                if writable {
                    self.flush(t);
                }
            }
        }
    }

    /// Whether clients other than `me` have work waiting in this pass:
    /// events not handled yet, input left over, mailbox messages, or new
    /// events (a zero-timeout poll, whose events are kept for later in
    /// the pass).
    fn others_waiting(&mut self, me: usize) -> bool {
        if self.events_left > 0
            || !self.rx.is_empty()
            || self.again.iter().any(|&t| t != me)
            || self.more_input.iter().any(|&t| t != me)
            || self.stash.iter().any(|&(t, _, _)| t != me)
        {
            return true;
        }
        if self
            .poll
            .poll(&mut self.peek, Some(Duration::ZERO))
            .is_err()
        {
            return false;
        }
        let mut other = false;
        let mut mine = false;
        for ev in self.peek.iter() {
            let t = ev.token().0;
            let rd = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            if ev.is_read_closed() || ev.is_error() {
                self.hups.push(t);
            }
            if t == me && !ev.is_writable() {
                // Its new input is read in its next turn.
                mine |= rd;
                continue;
            }
            other |= t != me;
            self.stash.push((t, rd, ev.is_writable()));
        }
        if mine {
            self.want_more(me);
        }
        other
    }

    /// Waits for events, polling without sleeping for up to `spin` first.
    ///
    /// At pipeline 1 with many clients, requests arrive a few microseconds
    /// apart: a worker that sleeps between them makes every client write
    /// wake it (an IPI, a VM exit on a virtual machine) and sleeps again,
    /// which costs the clients more than the polls cost the worker. The
    /// loop only spins while the last wait was shorter than `spin`, so an
    /// idle or lightly used server sleeps as before.
    fn spin_then_wait(
        &mut self,
        events: &mut Events,
        spin: Duration,
        timeout: Duration,
    ) -> io::Result<()> {
        let start = Instant::now();
        loop {
            self.poll.poll(events, Some(Duration::ZERO))?;
            if !events.is_empty() {
                return Ok(());
            }
            let spent = start.elapsed();
            if spent >= spin {
                return self.poll.poll(events, Some(timeout.saturating_sub(spent)));
            }
        }
    }

    /// Waits for events, napping on a timer first when none are ready.
    ///
    /// A worker that waits in `epoll_wait` must be woken by the client
    /// write that ends the wait, and that client pays for the wake-up (an
    /// IPI, a VM exit on a virtual machine: ~10 µs of its CPU here). When
    /// several connections are busy, a worker that catches up sleeps and is
    /// woken between almost every pair of requests; a nap on its own timer
    /// instead lets the requests of that time collect without waking
    /// anyone, and then they are served in one pass. The worker still
    /// sleeps (no spinning); an idle worker naps once, then waits as usual.
    fn nap_then_wait(
        &mut self,
        events: &mut Events,
        nap: Duration,
        timeout: Duration,
    ) -> io::Result<()> {
        self.poll.poll(events, Some(Duration::ZERO))?;
        if !events.is_empty() {
            return Ok(());
        }
        std::thread::sleep(nap);
        // One wait after the nap: it returns at once with what collected
        // meanwhile (a zero-timeout poll first was one more syscall).
        self.poll.poll(events, Some(timeout.saturating_sub(nap)))
    }

    fn shutdown(&mut self) {
        let tokens = self.conns.tokens();
        for t in tokens {
            self.flush(t);
        }
        // The AOF gets everything appended so far, on disk.
        if self.srv.aof.on.load(Ordering::SeqCst) {
            self.srv.aof.write_pending(&self.srv);
            self.srv.aof.fsync_now(&self.srv);
        }
        eprintln!("Lodestone is now ready to exit, bye bye...");
        std::process::exit(0);
    }

    fn drain_mailbox(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                WorkerMsg::Kill(id) => {
                    if let Some(&t) = self.by_client.get(&id) {
                        self.close(t);
                    }
                }
                WorkerMsg::Unpause => self.any_paused = true,
                WorkerMsg::Deliver(msgs) => {
                    for (id, m) in msgs {
                        if let Some(&t) = self.by_client.get(&id) {
                            if let Some(c) = self.conns.get_mut(t) {
                                m.encode(&mut c.outbuf, c.client.proto);
                                self.queue_flush(t);
                            }
                        }
                    }
                }
                WorkerMsg::Monitor(id, line) => self.append_output(id, &line),
                WorkerMsg::SyncBytes(id, bytes, pending) => {
                    self.append_output(id, &bytes);
                    pending.fetch_sub(bytes.len(), Ordering::SeqCst);
                }
                WorkerMsg::Served(id, reply) => {
                    if let Some(&t) = self.by_client.get(&id) {
                        self.served(t, reply);
                    }
                }
                WorkerMsg::ForceUnblocked(id) => {
                    if let Some(&t) = self.by_client.get(&id) {
                        if let Some(c) = self.conns.get_mut(t) {
                            c.client.blocked = None;
                            c.client.close_after_reply = true;
                            c.outbuf
                                .extend_from_slice(commands::blocking::FORCE_UNBLOCKED);
                        }
                        self.blocked.remove(&t);
                        self.flush(t);
                    }
                }
                WorkerMsg::Track {
                    client,
                    redirected,
                    msg,
                    bytes,
                } => {
                    self.tracking_in_transit += bytes;
                    if let Some(&t) = self.by_client.get(&client) {
                        if let Some(c) = self.conns.get_mut(t) {
                            let sub = c.client.subs.is_subscribed();
                            msg.encode(&mut c.outbuf, c.client.proto, sub, redirected);
                            self.queue_flush(t);
                        }
                    }
                }
                WorkerMsg::Listeners(socks) => self.set_listeners(socks),
                WorkerMsg::Adopt(stream, peer) => self.adopt(TcpStream::from_std(stream), peer),
                WorkerMsg::Unblock { client, error } => {
                    if let Some(&t) = self.by_client.get(&client) {
                        self.wake(
                            t,
                            if error {
                                Wake::Unblocked
                            } else {
                                Wake::UnblockedTimeout
                            },
                        );
                    }
                }
            }
        }
    }

    /// Replaces the listening sockets (CONFIG SET port / bind).
    fn set_listeners(&mut self, socks: Vec<std::net::TcpListener>) {
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for (j, s) in socks.into_iter().enumerate() {
            let mut l = TcpListener::from_std(s);
            if self
                .poll
                .registry()
                .register(&mut l, Token(FIRST_LISTENER + j), Interest::READABLE)
                .is_ok()
            {
                self.listeners.push(l);
            }
        }
    }

    /// Appends bytes another thread sent to a client's output (MONITOR
    /// lines, the replication stream) and queues the client's flush.
    fn append_output(&mut self, id: u64, bytes: &[u8]) {
        if let Some(&t) = self.by_client.get(&id) {
            if let Some(c) = self.conns.get_mut(t) {
                c.outbuf.extend_from_slice(bytes);
                // At once, not at the flush: a full sync paces itself on
                // in-flight bytes plus this, which must not miss any.
                c.client
                    .handle
                    .omem
                    .store(c.outbuf.len() - c.out_pos, Ordering::Relaxed);
                self.queue_flush(t);
            }
        }
    }

    /// Marks a connection for the write at the end of this loop pass.
    fn queue_flush(&mut self, token: usize) {
        if let Some(c) = self.conns.get_mut(token) {
            if !c.flush_queued {
                c.flush_queued = true;
                self.to_flush.push(token);
            }
        }
    }

    /// Writes every connection queued by `queue_flush`. A connection taken
    /// out of the table (its busy script is pumping events) stays queued.
    fn flush_queued(&mut self) {
        if self.to_flush.is_empty() {
            self.end_tracking_transit();
            return;
        }
        let mut queued = std::mem::take(&mut self.to_flush);
        let mut kept = 0;
        for i in 0..queued.len() {
            let t = queued[i];
            if let Some(c) = self.conns.get_mut(t) {
                c.flush_queued = false;
                self.flush(t);
            } else if self.conns.is_taken(t) {
                queued[kept] = t;
                kept += 1;
            }
        }
        queued.truncate(kept);
        // Keep the allocation; anything queued meanwhile (a flush that
        // closed a connection may deliver to others) goes after.
        queued.append(&mut self.to_flush);
        self.to_flush = queued;
        self.end_tracking_transit();
    }

    /// Gives back the invalidations this worker received to
    /// `memory::TRACKING_IN_TRANSIT`: they are written out now (or wait in
    /// an output buffer, counted as such).
    fn end_tracking_transit(&mut self) {
        if self.tracking_in_transit > 0 {
            let n = std::mem::take(&mut self.tracking_in_transit);
            super::memory::TRACKING_IN_TRANSIT.fetch_sub(n, Ordering::Relaxed);
        }
    }

    fn next_block_deadline(&self) -> Option<Instant> {
        self.blocked
            .iter()
            .filter_map(|&t| self.conns.get(t)?.client.blocked.as_ref()?.deadline)
            .min()
    }

    fn expire_blocked(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .blocked
            .iter()
            .copied()
            .filter(|&t| {
                self.conns
                    .get(t)
                    .and_then(|c| c.client.blocked.as_ref()?.deadline)
                    .is_some_and(|d| d <= now)
            })
            .collect();
        for t in due {
            self.wake(t, Wake::Timeout);
        }
    }

    /// A writer served this parked client: deliver the reply and go on
    /// with its pending input.
    fn served(&mut self, token: usize, reply: Vec<u8>) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        c.client.blocked = None;
        c.outbuf.extend_from_slice(&reply);
        self.blocked.remove(&token);
        self.process(token);
    }

    /// Ends a parked client's wait with its timeout reply or CLIENT
    /// UNBLOCK's error, then serves the rest of its input.
    fn wake(&mut self, token: usize, how: Wake) {
        let srv: &Server = &self.srv;
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        let st = if matches!(how, Wake::Timeout) {
            let Some(st) = commands::blocking::unpark(srv, &mut c.client) else {
                return; // a writer is serving it; its reply is on the way
            };
            commands::blocking::count_call(srv, &st.waiter.argv[0], false);
            st
        } else {
            // CLIENT UNBLOCK ended the wait (and counted it) already.
            let Some(st) = commands::blocking::unregister(srv, &mut c.client) else {
                return;
            };
            st
        };
        self.blocked.remove(&token);
        if st.on_timeout == commands::blocking::TimeoutReply::Wait {
            // WAIT / WAITAOF: leave the acknowledgement waiters' list.
            match how {
                Wake::Timeout | Wake::UnblockedTimeout => {
                    let reply = srv.repl.wait_timed_out(srv, c.client.id());
                    c.outbuf.extend_from_slice(&reply);
                }
                Wake::Unblocked => srv.repl.forget_waiter(c.client.id()),
            }
        }
        let mut r = resp::Reply::new(&mut c.outbuf, c.client.proto);
        match how {
            Wake::Timeout | Wake::UnblockedTimeout => match st.on_timeout {
                commands::blocking::TimeoutReply::NullArray => r.null_array(),
                commands::blocking::TimeoutReply::NullBulk => r.null(),
                commands::blocking::TimeoutReply::Wait => {}
            },
            Wake::Unblocked => {
                const MSG: &str = "UNBLOCKED client unblocked via CLIENT UNBLOCK";
                srv.stats.error(MSG.as_bytes());
                r.error(MSG)
            }
        }
        self.process(token);
    }

    /// Accepts every pending connection. Each goes to the worker serving
    /// the fewest connections (this one on a tie): connections placed by
    /// whichever worker woke first could put a client that sends one
    /// request at a time on the same worker as a deep pipeliner, where it
    /// waits behind the pipeliner's quanta while another worker idles.
    fn accept(&mut self, which: usize) {
        loop {
            let (mut stream, peer) = match self.listeners[which].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A listener CONFIG SET port stopped; its replacement is
                // in the mailbox.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return,
                Err(e) => {
                    eprintln!("accept error: {e}");
                    return;
                }
            };
            let srv = &self.srv;
            srv.stats.total_connections.fetch_add(1, Ordering::Relaxed);
            let maxclients = srv.config.num(HOT.maxclients) as usize;
            if srv.connected.load(Ordering::Relaxed) >= maxclients {
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                srv.stats
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let to = srv.pick_worker(self.id);
            if to == self.id {
                self.adopt(stream, peer);
            } else {
                use std::os::fd::{FromRawFd, IntoRawFd};
                // SAFETY: the descriptor comes straight from the stream,
                // which gives up its ownership.
                let s = unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) };
                srv.send_to_worker(to, WorkerMsg::Adopt(s, peer));
            }
        }
    }

    /// Serves a new connection on this worker (already counted in its
    /// load by `Server::pick_worker`).
    fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        let srv = &self.srv;
        let _ = stream.set_nodelay(true);
        set_keepalive(&stream, srv.config.num(HOT.tcp_keepalive));
        let id = srv.next_client_id.fetch_add(1, Ordering::Relaxed);
        let laddr = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        use std::os::fd::AsRawFd;
        let handle = Arc::new(ClientHandle::new(
            id,
            peer.to_string(),
            laddr,
            stream.as_raw_fd(),
            self.id,
            now_ms(),
        ));
        srv.clients.lock().insert(id, handle.clone());
        srv.connected.fetch_add(1, Ordering::Relaxed);
        let mut client = Client::new(handle, false);
        crate::acl::set_default_auth(srv, &mut client);
        let token = self.conns.insert(Box::new(Conn {
            stream,
            client,
            inbuf: Vec::new(),
            in_pos: 0,
            // Redis's 16 KB per-client reply buffer: allocated up
            // front (and counted), so a burst of replies that is
            // written out returns used_memory to where it was.
            outbuf: Vec::with_capacity(READ_CHUNK),
            out_pos: 0,
            parser: Parser::new(),
            paused: false,
            want_write: false,
            soft_since: None,
            flush_queued: false,
            yielded: false,
            served_pass: 0,
            seen_window: 0,
        }));
        self.by_client.insert(id, token);
        let c = self.conns.get_mut(token).expect("just inserted");
        if self
            .poll
            .registry()
            .register(&mut c.stream, Token(token), Interest::READABLE)
            .is_err()
        {
            self.close(token);
        }
    }

    fn on_readable(&mut self, token: usize) {
        // Messages other threads sent before this input was written
        // (invalidations, Pub/Sub) go out before its replies.
        if !self.rx.is_empty() {
            self.drain_mailbox();
        }
        let window = self.activity.window;
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        if c.seen_window != window {
            c.seen_window = window;
            self.activity.now += 1;
        }
        self.activity.reads_now += 1;
        // One turn per pass: a connection whose new input was noticed
        // after its turn reads it in the next pass.
        if c.served_pass == self.pass_no {
            self.want_more(token);
            return;
        }
        c.served_pass = self.pass_no;
        let hup = !self.hups.is_empty() && {
            let before = self.hups.len();
            self.hups.retain(|&t| t != token);
            self.hups.len() != before
        };
        let mut eof = false;
        let mut got = 0;
        // Input left over from a pass cut short by the time quantum is
        // executed before more is read, so the buffer cannot grow without
        // bound while the client keeps sending.
        let mut budget_hit = c.yielded && c.inbuf.len() - c.in_pos >= READ_BUDGET;
        loop {
            if budget_hit || got >= READ_BUDGET {
                budget_hit = true;
                break;
            }
            if c.inbuf.capacity() - c.inbuf.len() < READ_CHUNK {
                c.inbuf.reserve(READ_CHUNK);
            }
            let len = c.inbuf.len();
            // One read takes at most what is left of the budget: a buffer
            // grown by an earlier burst would otherwise let a single read
            // copy in (and the pass then parse) megabytes at once.
            let want = (c.inbuf.capacity() - len).min((READ_BUDGET - got).max(READ_CHUNK));
            // SAFETY: the spare capacity is only exposed to read(), and the
            // length is set to exactly what read() initialised.
            let spare =
                unsafe { std::slice::from_raw_parts_mut(c.inbuf.as_mut_ptr().add(len), want) };
            match c.stream.read(spare) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    unsafe { c.inbuf.set_len(len + n) };
                    got += n;
                    // A short read drained the socket: skip the read that
                    // would only say EAGAIN (new data brings a new edge),
                    // unless the peer hung up: its EOF has no new edge.
                    if n < want && !hup {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
            let limit = self.srv.config.num(HOT.client_query_buffer_limit) as usize;
            if c.inbuf.len() - c.in_pos > limit {
                break;
            }
        }
        if got > 0 {
            self.srv.stats.net_input_bytes.add(got as u64);
            // (last_interaction_ms is stamped by execute_input, which
            // reads the clock anyway.)
        }
        // A client that closed its side still gets the replies to all it
        // sent (it may be reading them): no time quantum then.
        self.process_bounded(token, !eof);
        if eof {
            self.flush(token);
            self.close(token);
        } else if budget_hit && self.conns.contains(token) {
            self.want_more(token);
        }
    }

    /// Comes back to a connection's input in the next loop pass.
    fn want_more(&mut self, token: usize) {
        if !self.more_input.contains(&token) {
            self.more_input.push(token);
        }
    }

    /// Parses and executes every complete request in a connection's buffer.
    ///
    /// The connection is taken out of the table while its commands run, and
    /// the worker is reachable through [`PUMP`]: a busy script on this
    /// thread serves the other connections from its Lua hook.
    fn process(&mut self, token: usize) {
        self.process_bounded(token, true)
    }

    /// [`Worker::process`], optionally without the time quantum.
    fn process_bounded(&mut self, token: usize, bounded: bool) {
        let Some(mut c) = self.conns.take(token) else {
            return;
        };
        // SAFETY: the server outlives every worker; the reference is not
        // tied to `self`, which `pump_events` may use while this runs.
        let srv: &Server = unsafe { &*Arc::as_ptr(&self.srv) };
        // One clock read starts the turn and its first command.
        let start = Mono::now();
        let mut slice_start = start;
        let was_paused = c.paused;
        // Slices of work until the input is done or the quantum is used
        // up, ending early when other clients are waiting.
        let (paused, shutting, yielded) = loop {
            let me: *mut Worker = self;
            let prev = PUMP.with(|p| p.replace(me));
            let r = execute_input(srv, &mut c, bounded, slice_start, &self.unix);
            PUMP.with(|p| p.set(prev));
            let (paused, shutting, yielded) = r;
            if !yielded
                || paused
                || shutting
                || Mono::now().nanos_since(start) >= QUANTUM.as_nanos() as u64
                || self.others_waiting(token)
            {
                break r;
            }
            slice_start = Mono::now();
        };
        c.yielded = yielded;
        if paused != was_paused {
            set_postponed(srv, &c.client, paused);
        }
        // A pipeliner whose turn ended with input left gets its replies
        // once they fill a reply buffer or its input runs out, not after
        // every slice: a write per slice (and the wake-up of its reader)
        // would cost it more than its commands.
        let hold = yielded && c.outbuf.len() - c.out_pos < READ_CHUNK;
        let blocked = c.client.blocked.is_some();
        self.conns.put_back(token, c);
        if paused {
            self.any_paused = true;
        }
        if blocked {
            self.blocked.insert(token);
        }
        if yielded {
            self.want_more(token);
        }
        // Written at the end of the loop pass, with the other clients'
        // replies (Redis's beforeSleep): reads, commands and writes each run
        // as a batch, and one AOF write/fsync covers the whole pass.
        if !hold {
            self.queue_flush(token);
        }
        if shutting {
            self.shutdown();
        }
    }

    /// One round of event handling while a busy script runs on this thread
    /// (Redis's processEventsWhileBlocked): other clients get BUSY or run
    /// the commands allowed while busy (SCRIPT KILL, SHUTDOWN NOSAVE ...).
    fn pump(&mut self) {
        // Events already taken by the loop that started the script are not
        // reported again (edge-triggered): accept and read everything.
        self.pass_no += 1;
        self.unix = UnixClock::now();
        self.drain_mailbox();
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
        let tokens = self.conns.tokens();
        for t in tokens {
            self.on_readable(t);
        }
        let mut events = Events::with_capacity(256);
        if self.poll.poll(&mut events, Some(Duration::ZERO)).is_err() {
            return;
        }
        for ev in events.iter() {
            match ev.token() {
                WAKER => self.drain_mailbox(),
                Token(t) if t >= FIRST_LISTENER => self.accept(t - FIRST_LISTENER),
                Token(t) => {
                    if ev.is_read_closed() || ev.is_error() {
                        self.hups.push(t);
                    }
                    if !self.conns.contains(t) {
                        // The script's own connection: read it afterwards
                        // (edge-triggered events are not repeated).
                        self.more_input.push(t);
                        continue;
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.on_readable(t);
                    }
                    if ev.is_writable() {
                        self.flush(t);
                    }
                }
            }
        }
        self.flush_queued();
    }
}

thread_local! {
    /// The worker running on this thread, while it executes commands.
    static PUMP: std::cell::Cell<*mut Worker> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Serves this thread's other connections once; called by a busy script's
/// Lua hook. Does nothing outside a worker or when already pumping.
pub fn pump_events() {
    let w = PUMP.with(|p| p.replace(std::ptr::null_mut()));
    if w.is_null() {
        return;
    }
    // SAFETY: PUMP is set by `Worker::process` for the duration of command
    // execution; the executing connection is out of the table, and nothing
    // else on this thread uses the worker until the script returns.
    unsafe { (*w).pump() };
    PUMP.with(|p| p.set(w));
}

/// The body of [`Worker::process`]; returns (paused, shutting down,
/// stopped at the time quantum with input left).
fn execute_input(
    srv: &Server,
    c: &mut Conn,
    bounded: bool,
    start: Mono,
    unix: &UnixClock,
) -> (bool, bool, bool) {
    let mut yielded = false;
    {
        let Conn {
            client,
            inbuf,
            in_pos,
            outbuf,
            parser,
            paused,
            ..
        } = c;
        let limit = srv.config.num(HOT.client_query_buffer_limit) as usize;
        if inbuf.len() - *in_pos > limit {
            srv.stats
                .client_qbuf_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "Closing client that reached max query buffer length (qbuf={})",
                inbuf.len() - *in_pos
            );
            client.close_after_reply = true;
            outbuf.clear();
            inbuf.clear();
            *in_pos = 0;
        }
        let mut ctx = Ctx::new_at(srv, client, outbuf, start, unix.ms_at(start));
        let (base_ms, clock_base) = (ctx.now_ms, ctx.clock);
        ctx.client
            .handle
            .last_interaction_ms
            .store(base_ms, Ordering::Relaxed);
        let max_bulk = srv.config.num(HOT.proto_max_bulk_len);
        *paused = false;
        let mut ran = 0u32;
        while !ctx.client.close_after_reply && ctx.client.blocked.is_none() {
            let limits = Limits {
                max_bulk_len: max_bulk,
                authenticated: ctx.client.authenticated,
            };
            let buf = &inbuf[*in_pos..];
            if buf.is_empty() {
                break;
            }
            match parser.parse(buf, &limits) {
                Ok(None) => break,
                Ok(Some(req)) => {
                    let base: &[u8] = match req.source {
                        ArgSource::Input => buf,
                        ArgSource::Scratch => &parser.scratch,
                    };
                    // Up to 8 arguments on the stack (no SmallVec pushes).
                    let mut small: [&[u8]; 8] = [&[]; 8];
                    let heap: Vec<&[u8]>;
                    let argv: &[&[u8]] = if parser.args.len() <= small.len() {
                        for (a, r) in small.iter_mut().zip(&parser.args) {
                            *a = &base[r.start..r.end];
                        }
                        &small[..parser.args.len()]
                    } else {
                        heap = parser.args.iter().map(|r| &base[r.clone()]).collect();
                        &heap
                    };
                    if argv.is_empty() {
                        *in_pos += req.consumed;
                        continue;
                    }
                    if ctx.clock != clock_base {
                        ctx.now_ms = unix.ms_at(ctx.clock);
                    }
                    if srv.pause_until.load(Ordering::Relaxed) > ctx.now_ms
                        && must_wait_for_pause(srv, ctx.client, argv, ctx.now_ms)
                    {
                        *paused = true;
                        break;
                    }
                    ctx.client.handle.qbuf.store(buf.len(), Ordering::Relaxed);
                    let timer = super::latency::cpu_clock_on().then(super::latency::Timer::start);
                    commands::dispatch(&mut ctx, argv);
                    *in_pos += req.consumed;
                    ran += 1;
                    // Every QUANTUM_EVERY commands, or after any command
                    // that moved table entries (it may have faulted in
                    // new pages: the costly commands of a growth burst).
                    let steps = crate::keyspace::table::take_steps();
                    if let Some(t) = timer {
                        t.end_work(super::latency::Ev::Request, (steps as u64, 0));
                    }
                    let costly = steps > 0;
                    if bounded
                        && (costly || ran.is_multiple_of(QUANTUM_EVERY))
                        && Mono::now().nanos_since(clock_base) >= SLICE.as_nanos() as u64
                    {
                        yielded = *in_pos < inbuf.len();
                        break;
                    }
                }
                Err(e) => {
                    ctx.r().error(&e.message());
                    srv.stats.error(e.message().as_bytes());
                    ctx.client.close_after_reply = true;
                    break;
                }
            }
        }
        if *in_pos == inbuf.len() {
            inbuf.clear();
            *in_pos = 0;
            if inbuf.capacity() > 64 * 1024 {
                inbuf.shrink_to(READ_CHUNK);
            }
        } else if *in_pos > 0 && (*in_pos > inbuf.len() / 2 || *in_pos > 1 << 20) {
            inbuf.drain(..*in_pos);
            *in_pos = 0;
        }
        // A huge request (SADD with 100K members) leaves big argument
        // vectors behind: give them back, they count in used_memory.
        if parser.args.capacity() > 4096 {
            parser.args = Vec::new();
        }
        if parser.scratch.capacity() > 64 * 1024 {
            parser.scratch = Vec::new();
        }
        let pending = inbuf.len() - *in_pos;
        ctx.client.handle.qbuf.store(pending, Ordering::Relaxed);
        ctx.client
            .handle
            .qbuf_mem
            .store(inbuf.capacity(), Ordering::Relaxed);
        (*paused, srv.shutdown.load(Ordering::SeqCst), yielded)
    }
}

impl Worker {
    /// Writes pending replies; closes the connection if it asked to be.
    fn flush(&mut self, token: usize) {
        let Some(c) = self.conns.get_mut(token) else {
            return;
        };
        if c.out_pos < c.outbuf.len() {
            // Effects reach the AOF (and the disk, with appendfsync
            // always) before the replies that acknowledge them.
            self.srv.aof.before_reply(&self.srv);
        }
        while c.out_pos < c.outbuf.len() {
            match c.stream.write(&c.outbuf[c.out_pos..]) {
                Ok(0) => break,
                Ok(n) => {
                    c.out_pos += n;
                    self.srv.stats.net_output_bytes.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(token);
                    return;
                }
            }
        }
        let pending = c.out_pos < c.outbuf.len();
        if pending && output_over_limit(&self.srv, c) {
            self.srv
                .stats
                .client_outbuf_limit_disconnections
                .fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "Client id={} addr={} closed for overcoming of output buffer limits.",
                c.client.id(),
                c.client.handle.addr
            );
            self.close(token);
            return;
        }
        if pending != c.want_write {
            // Ask for WRITABLE only while replies are waiting: edge-triggered
            // writable events would otherwise fire on every ACK.
            let interest = if pending {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(token), interest);
            c.want_write = pending;
        }
        if c.out_pos == c.outbuf.len() {
            c.outbuf.clear();
            c.out_pos = 0;
            // Like Redis's 16 KB reply buffer plus freed reply nodes: a
            // written buffer does not keep its peak size, which used_memory
            // (and so eviction) would count for as long as the client lives
            // (tracking invalidations fanned out to many clients otherwise
            // feed the eviction they come from).
            if c.outbuf.capacity() > READ_CHUNK {
                c.outbuf.shrink_to(READ_CHUNK);
            }
            if c.client.close_after_reply {
                self.close(token);
                return;
            }
        }
        c.client
            .handle
            .omem
            .store(c.outbuf.len() - c.out_pos, Ordering::Relaxed);
        c.client
            .handle
            .obuf_mem
            .store(c.outbuf.capacity(), Ordering::Relaxed);
    }

    fn close(&mut self, token: usize) {
        let Some(mut c) = self.conns.remove(token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        let id = c.client.id();
        if commands::blocking::unpark(&self.srv, &mut c.client).is_none() {
            // Claimed by CLIENT UNBLOCK or a writer: leave no waiter behind.
            commands::blocking::unregister(&self.srv, &mut c.client);
        }
        commands::pubsub::unsubscribe_all(&self.srv, &mut c.client);
        commands::tracking::disable(&self.srv, &mut c.client);
        self.blocked.remove(&token);
        self.hups.retain(|&t| t != token);
        if c.paused {
            set_postponed(&self.srv, &c.client, false);
        }
        if self.srv.monitor_count.load(Ordering::Relaxed) > 0 {
            self.srv.monitor_remove(id);
        }
        for (db, key, _) in std::mem::take(&mut c.client.watched) {
            self.srv.watch_remove(db, &key, id);
        }
        self.by_client.remove(&id);
        let evicted = c.client.handle.evicted_mem.swap(0, Ordering::Relaxed);
        drop(c);
        if evicted > 0 {
            super::evict::CLIENTS_PENDING_FREE.fetch_sub(evicted, Ordering::Relaxed);
        }
        // The counts drop before the client leaves CLIENT LIST: whoever
        // sees it gone also sees its worker's load without it.
        self.srv.connected.fetch_sub(1, Ordering::Relaxed);
        self.load.fetch_sub(1, Ordering::Relaxed);
        self.srv.clients.lock().remove(&id);
        self.srv.repl.client_closed(id);
    }

    fn retry_paused(&mut self) {
        self.any_paused = false;
        let tokens: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.paused)
            .map(|(t, _)| t)
            .collect();
        for t in tokens {
            self.process(t);
        }
    }

    /// Periodic work: active expiry, idle client timeouts, killed clients.
    fn cron(&mut self) {
        let srv = self.srv.clone();
        if self.id == 0 {
            if let Some(sig) = super::signals::take_pending() {
                if super::signals::shutdown_on_signal(&srv, sig) {
                    srv.shutdown.store(true, Ordering::SeqCst);
                    self.shutdown();
                }
            }
        }
        // Like Redis: no expiry, eviction or save points until the
        // dataset is in memory.
        if srv.persist.startup_loading.load(Ordering::Relaxed) {
            return;
        }
        let now = now_ms();
        let hz = srv.config.num(HOT.hz).max(1) as u32;
        let workers = srv.worker_count.load(Ordering::Relaxed);
        // A replica waits for its master's DELs (Redis semantics).
        let replica = srv.repl.is_replica();
        if !replica {
            let t = super::latency::Timer::start();
            crate::keyspace::expire::active_expire_cycle(
                &srv.keyspace,
                now,
                hz,
                workers,
                &mut |db, key| {
                    // Called with the key's shard still locked: the DEL
                    // reaches the feed in order with writes to that shard.
                    if srv.feed.active() {
                        srv.feed.emit(&[commands::propagate::Effect {
                            db,
                            argv: vec![b"DEL".to_vec(), key.clone()],
                        }]);
                    }
                    commands::notify::notify(&srv, commands::notify::EXPIRED, "expired", db, &key);
                    if srv.tracking.active() {
                        srv.tracking.modified(&srv, &key, None, None, None);
                    }
                },
            );
            t.end(super::latency::Ev::ExpireCycle);
        }
        super::evict::cron(&srv);
        if self.id == 0 {
            super::memory::note_peak(super::memory::used());
            srv.migrate_sockets.close_idle();
        }
        if srv.tracking.active() {
            srv.tracking.broadcast_pending(&srv);
            srv.tracking.enforce_limit(&srv, None);
        }
        let timeout = srv.config.num(HOT.timeout) as u64;
        let mut to_close = Vec::new();
        for (t, c) in self.conns.iter() {
            let h = &c.client.handle;
            // Idle timeout spares transactions, parked and subscribed
            // clients, as in Redis.
            let idle = timeout > 0
                && c.client.multi.is_none()
                && c.client.blocked.is_none()
                && !c.client.subs.is_subscribed()
                && now.saturating_sub(h.last_interaction_ms.load(Ordering::Relaxed)) / 1000
                    >= timeout;
            if h.killed.load(Ordering::Relaxed) || idle {
                to_close.push(t);
            }
        }
        for t in to_close {
            self.close(t);
        }
        if self.id == 0 {
            crate::aof::cron(&srv);
            crate::persist::cron(&srv);
            srv.repl.cron(&srv);
        }
    }
}

/// Checks `client-output-buffer-limit` for the client's class (normal,
/// replica or pubsub): the hard limit closes at once, the soft limit after it has
/// been exceeded for its number of seconds.
fn output_over_limit(srv: &Server, c: &mut Conn) -> bool {
    let pending = c.outbuf.len() - c.out_pos;
    let text = srv.config.get_str("client-output-buffer-limit");
    let words: Vec<&str> = text.split_whitespace().collect();
    let class = if c.client.handle.is_replica.load(Ordering::Relaxed) {
        "slave"
    } else if c.client.subs.is_subscribed() {
        "pubsub"
    } else {
        "normal"
    };
    let Some(i) = words.iter().position(|w| *w == class) else {
        return false;
    };
    let num = |k: usize| {
        words
            .get(i + k)
            .and_then(|w| w.parse::<u64>().ok())
            .unwrap_or(0) as usize
    };
    let (hard, soft, secs) = (num(1), num(2), num(3));
    if hard > 0 && pending >= hard {
        return true;
    }
    if soft > 0 && pending >= soft {
        let since = *c.soft_since.get_or_insert_with(Instant::now);
        return since.elapsed() >= Duration::from_secs(secs as u64);
    }
    c.soft_since = None;
    false
}

/// Whether CLIENT PAUSE holds this command back.
fn must_wait_for_pause(srv: &Server, client: &Client, argv: &[&[u8]], now: u64) -> bool {
    let Ok(cmd) = srv.commands.resolve(argv) else {
        return false;
    };
    // Replicas are never paused, and a call that will fail its arity
    // check gets its error at once, as in Redis.
    if client.handle.is_replica.load(Ordering::Relaxed) || !commands::arity_ok(cmd, argv.len()) {
        return false;
    }
    use commands::flags::{MAY_REPLICATE, WRITE};
    let is_write = commands::effective_flags(srv, client, cmd, argv) & (WRITE | MAY_REPLICATE) != 0;
    srv.paused_for(is_write, now)
}

/// Turns on TCP keepalive as Redis's `tcp-keepalive` does: probes start after
/// `secs` idle seconds, repeat every third of that, and three unanswered
/// probes drop the peer. Zero leaves the socket alone.
fn set_keepalive(stream: &TcpStream, secs: i64) {
    if secs <= 0 {
        return;
    }
    let idle = std::time::Duration::from_secs(secs as u64);
    let ka = socket2::TcpKeepalive::new()
        .with_time(idle)
        .with_interval((idle / 3).max(std::time::Duration::from_secs(1)))
        .with_retries(3);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
}

/// A client held by CLIENT PAUSE counts as blocked, as Redis's postponed
/// clients do: INFO blocked_clients includes it and CLIENT LIST shows `b`.
fn set_postponed(srv: &Server, client: &Client, on: bool) {
    client.handle.postponed.store(on, Ordering::Relaxed);
    if on {
        srv.waiters.blocked_clients.fetch_add(1, Ordering::SeqCst);
    } else {
        srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(conns: u32, reads: u32) -> Activity {
        Activity {
            prev: conns,
            reads_prev: reads,
            ..Activity::default()
        }
    }

    #[test]
    fn a_nap_grows_with_the_cycle_of_connections_that_come_back() {
        let base = Duration::from_micros(10);
        // 50 connections, 70 reads in a millisecond: each comes back every
        // ~714 µs, and a quarter of that is the nap.
        assert_eq!(window(50, 70).nap(base, 25), Duration::from_nanos(178_571));
        // 16 connections at 64 reads: a 250 µs cycle.
        assert_eq!(
            window(16, 64).nap(base, 25),
            Duration::from_micros(62) + Duration::from_nanos(500)
        );
        // A very fast loop still naps the base.
        assert_eq!(window(16, 1600).nap(base, 25), base);
        // Off: the base only.
        assert_eq!(window(50, 70).nap(base, 0), base);
    }

    #[test]
    fn connections_that_do_not_come_back_nap_only_the_base() {
        let base = Duration::from_micros(10);
        // Many clients, each sending once in the window: an open loop.
        assert_eq!(window(60, 60).nap(base, 25), base);
        assert_eq!(window(0, 0).nap(base, 25), base);
        // Naps switched off stay off.
        assert_eq!(window(50, 70).nap(Duration::ZERO, 25), Duration::ZERO);
    }
}
