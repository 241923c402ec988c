//! Blocking commands (BLPOP, BZPOPMIN, XREAD BLOCK, ...): the shared
//! machinery, as in Redis's `blocked.c`.
//!
//! A blocking handler that finds nothing to serve calls [`block`]: the
//! client is parked (its worker stops reading its input) and queued FIFO
//! on each of its keys in the server's [`Waiters`], with its command. A
//! write that touches a key with waiters records it as ready while it
//! still holds its locks; once the command (or the whole EXEC) has released
//! them, [`signal_ready`] serves the waiters of each ready key in order,
//! right there on the writer's thread: it re-runs each parked command on
//! the waiter's behalf and hands the reply to the waiter's worker. Serving
//! synchronously is what keeps Redis's order: the first client to block is
//! the first served, and nothing runs between the write and the service.
//!
//! Who ends a wait (service, timeout, CLIENT UNBLOCK, disconnect) is decided
//! by one compare-and-swap on the client's `blocked` flag.

use super::Ctx;
use crate::server::client::{Client, ClientHandle};
use crate::server::{Server, WorkerMsg};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a parked client gets when its timeout passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// A null array (BLPOP, BZPOPMIN, BLMPOP, XREAD, ...).
    NullArray,
    /// A null bulk string (BLMOVE, BRPOPLPUSH).
    NullBulk,
    /// WAIT / WAITAOF: the acknowledgements counted at that moment
    /// (`Repl::wait_timed_out`).
    Wait,
}

/// A parked command, shared by the queues of all its keys.
pub struct Waiter {
    pub handle: Arc<ClientHandle>,
    pub db: usize,
    pub proto: resp::Proto,
    pub argv: Vec<Vec<u8>>,
    pub keys: Vec<Vec<u8>>,
}

/// A parked client's state, kept on its connection.
pub struct BlockState {
    pub waiter: Arc<Waiter>,
    pub deadline: Option<Instant>,
    pub on_timeout: TimeoutReply,
}

/// The FIFO of parked clients per (db, key), shared by all workers.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<(usize, Vec<u8>), VecDeque<Arc<Waiter>>>>,
    /// Number of registrations; writers skip everything when it is zero.
    count: AtomicUsize,
    /// Number of parked clients (INFO blocked_clients).
    pub blocked_clients: AtomicUsize,
}

impl Waiters {
    /// Every client parked on keys, once each.
    pub fn all(&self) -> Vec<Arc<Waiter>> {
        let m = self.map.lock();
        let mut out: Vec<Arc<Waiter>> = Vec::new();
        for w in m.values().flatten() {
            if !out.iter().any(|o| o.handle.id == w.handle.id) {
                out.push(w.clone());
            }
        }
        out
    }

    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    fn add(&self, w: &Arc<Waiter>, front: bool) {
        let mut m = self.map.lock();
        for k in &w.keys {
            let q = m.entry((w.db, k.clone())).or_default();
            if front {
                q.push_front(w.clone());
            } else {
                q.push_back(w.clone());
            }
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Removes a client from the queues of its keys.
    fn remove(&self, w: &Waiter) {
        let mut m = self.map.lock();
        let id = w.handle.id;
        for k in &w.keys {
            let key = (w.db, k.clone());
            if let Some(q) = m.get_mut(&key) {
                let before = q.len();
                q.retain(|x| x.handle.id != id);
                self.count.fetch_sub(before - q.len(), Ordering::SeqCst);
                if q.is_empty() {
                    m.remove(&key);
                }
            }
        }
    }

    /// Number of distinct keys with parked clients (INFO total_blocking_keys).
    pub fn key_count(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether a key has parked clients.
    pub fn has(&self, db: usize, key: &[u8]) -> bool {
        self.any() && self.map.lock().contains_key(&(db, key.to_vec()))
    }

    /// The keys with waiters in `db` (or every db), for commands that may
    /// have changed many keys at once (FLUSHDB, SWAPDB, MOVE ...).
    pub fn keys_of(&self, db: Option<usize>) -> Vec<(usize, Vec<u8>)> {
        self.map
            .lock()
            .keys()
            .filter(|(d, _)| db.is_none_or(|x| x == *d))
            .cloned()
            .collect()
    }

    /// The first waiter of a key.
    fn first(&self, db: usize, key: &[u8]) -> Option<Arc<Waiter>> {
        self.map
            .lock()
            .get(&(db, key.to_vec()))
            .and_then(|q| q.front().cloned())
    }
}

/// Parses a blocking timeout in seconds (a double, as Redis 6+ accepts).
/// `Ok(None)` means block forever.
pub fn parse_timeout(arg: &[u8]) -> Result<Option<Duration>, &'static str> {
    let Some(secs) = strutil::parse_f64(arg) else {
        return Err("ERR timeout is not a float or out of range");
    };
    if secs < 0.0 {
        return Err("ERR timeout is negative");
    }
    if !secs.is_finite() || secs > 1e12 {
        return Err("ERR timeout is out of range");
    }
    if secs == 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// Parses a blocking timeout in milliseconds (WAIT, WAITAOF), with
/// Redis's errors (getTimeoutFromObjectOrReply). `Ok(None)` means block
/// forever.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<Option<Duration>, &'static str> {
    match strutil::parse_i64(arg) {
        None => Err("ERR timeout is not an integer or out of range"),
        Some(t) if t < 0 => Err("ERR timeout is negative"),
        Some(0) => Ok(None),
        Some(t) if t > i64::MAX - crate::server::now_ms() as i64 => {
            Err("ERR timeout is out of range")
        }
        Some(t) => Ok(Some(Duration::from_millis(t as u64))),
    }
}

/// Whether the current command may block (not inside MULTI/EXEC, where
/// blocking commands behave as if they timed out at once).
pub fn can_block(ctx: &Ctx) -> bool {
    !ctx.in_exec && !ctx.prop.loading
}

/// Parks the client on `keys` until one is ready or `timeout` passes.
/// The handler must not write a reply after calling this.
pub fn block(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    keys: &[&[u8]],
    timeout: Option<Duration>,
    on_timeout: TimeoutReply,
) {
    let mut uniq: Vec<Vec<u8>> = Vec::new();
    for k in keys {
        if !uniq.iter().any(|u| u == k) {
            uniq.push(k.to_vec());
        }
    }
    let w = Arc::new(Waiter {
        handle: ctx.client.handle.clone(),
        db: ctx.client.db,
        proto: ctx.client.proto,
        argv: argv.iter().map(|a| a.to_vec()).collect(),
        keys: uniq,
    });
    ctx.client.handle.blocked.store(true, Ordering::SeqCst);
    ctx.srv
        .waiters
        .blocked_clients
        .fetch_add(1, Ordering::SeqCst);
    ctx.srv.waiters.add(&w, false);
    ctx.client.blocked = Some(BlockState {
        waiter: w,
        // A deadline past what an Instant holds is no deadline.
        deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        on_timeout,
    });
}

/// Claims the right to end a wait: true for exactly one caller.
fn claim(h: &ClientHandle) -> bool {
    h.blocked
        .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}

/// Ends a client's parking from its own worker (timeout, CLIENT UNBLOCK,
/// close). Returns the state if this caller won the wait's end; None if
/// the client is being served by a writer (its reply is on the way).
pub fn unpark(srv: &Server, client: &mut crate::server::client::Client) -> Option<BlockState> {
    let st = client.blocked.as_ref()?;
    if !claim(&st.waiter.handle) {
        return None;
    }
    let st = client.blocked.take()?;
    srv.waiters.remove(&st.waiter);
    srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
    Some(st)
}

/// Drops a wait another thread already ended (CLIENT UNBLOCK) from the
/// key queues, on the client's own worker; returns its state for the reply.
pub fn unregister(srv: &Server, client: &mut crate::server::client::Client) -> Option<BlockState> {
    let st = client.blocked.take()?;
    srv.waiters.remove(&st.waiter);
    Some(st)
}

/// CLIENT UNBLOCK from any thread: ends the wait at once, as Redis does,
/// so INFO blocked_clients and commandstats are right when it returns;
/// the client's worker then sends the reply (`WorkerMsg::Unblock`).
/// False when the client is not parked or a writer is serving it.
pub fn unblock_from(srv: &Server, h: &ClientHandle, error: bool) -> bool {
    if !claim(h) {
        return false;
    }
    srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
    // The parked command is the client's last one.
    let last = h.last_cmd.load(Ordering::Relaxed);
    if let Some(cmd) = srv.commands.cmds.get(last) {
        count_call(srv, cmd.name.as_bytes(), error);
    }
    true
}

/// A master that becomes a replica ends every wait on keys (BLPOP and
/// the like) with Redis's error and closes those clients after it, as
/// Redis's disconnectAllBlockedClients does (WAIT / WAITAOF waiters are
/// `Repl::drop_waiters`).
pub fn force_unblock_all(srv: &Server) {
    if !srv.waiters.any() {
        return;
    }
    for w in srv.waiters.all() {
        if end_external(srv, &w.handle, &w.argv[0], Some(FORCE_UNBLOCKED)) {
            srv.waiters.remove(&w);
            srv.send_to_worker(
                w.handle.worker,
                crate::server::WorkerMsg::ForceUnblocked(w.handle.id),
            );
        }
    }
}

/// The error a wait ends with when its master turns replica (Redis's
/// disconnectAllBlockedClients).
pub const FORCE_UNBLOCKED: &[u8] =
    b"-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";

/// Ends a wait from another thread (WAIT / WAITAOF served by an ACK or
/// an fsync, or any wait ended with `error`; `name` is the command,
/// counted now, as failed with the error in errorstats when there is
/// one): true if this caller won it; the caller then sends the reply.
pub fn end_external(srv: &Server, h: &ClientHandle, name: &[u8], error: Option<&[u8]>) -> bool {
    if !claim(h) {
        return false;
    }
    srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
    count_call(srv, name, error.is_some());
    if let Some(e) = error {
        srv.stats.error(e);
    }
    true
}

/// Counts a parked command in the command statistics when its wait ends
/// without a service (timeout, CLIENT UNBLOCK, WAIT's acknowledgements):
/// Redis's updateStatsOnUnblock. `failed` for CLIENT UNBLOCK ... ERROR.
pub fn count_call(srv: &Server, name: &[u8], failed: bool) {
    if let Some(cmd) = srv.commands.lookup(name) {
        let counters = cmd.stats.local();
        counters.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Records that a write touched `key`, if anyone waits for it. Called
/// while the writer still holds its locks.
pub fn note_write(ctx: &mut Ctx, db: usize, key: &[u8]) {
    if ctx.srv.waiters.has(db, key) {
        ctx.ready.push((db, key.to_vec()));
    }
}

/// Records every key with waiters (in `db`, or everywhere) as ready.
pub fn note_all(ctx: &mut Ctx, db: Option<usize>) {
    if ctx.srv.waiters.any() {
        let keys = ctx.srv.waiters.keys_of(db);
        ctx.ready.extend(keys);
    }
}

thread_local! {
    /// Keys made ready by the commands a service runs (BLMOVE's push to its
    /// destination ...), while this thread serves waiters: the outer
    /// [`signal_ready`] takes them after the keys already in its list.
    static DEFERRED: RefCell<Option<Vec<(usize, Vec<u8>)>>> = const { RefCell::new(None) };
}

/// Ends a service round: the thread serves nothing any more.
struct Serving;

impl Drop for Serving {
    fn drop(&mut self) {
        DEFERRED.with(|d| *d.borrow_mut() = None);
    }
}

/// Serves the waiters of each ready key, first come first served, until
/// one finds nothing. Called after the writer released its locks.
///
/// Keys are served in the order they became ready, as Redis's
/// handleClientsBlockedOnKeys does: a key readied by a service (a BLMOVE
/// pushing to its destination) joins the end of the list instead of being
/// served on the spot, so a waiter on several keys cannot take an element
/// that a client which blocked before it is about to be served.
pub fn signal_ready(ctx: &mut Ctx) {
    let ready = std::mem::take(&mut ctx.ready);
    let nested = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
        Some(v) => {
            v.extend(ready.iter().cloned());
            true
        }
        None => false,
    });
    if nested {
        return;
    }
    DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
    let _round = Serving;
    let mut queue: VecDeque<(usize, Vec<u8>)> = VecDeque::new();
    let push = |q: &mut VecDeque<(usize, Vec<u8>)>, k: (usize, Vec<u8>)| {
        if !q.contains(&k) {
            q.push_back(k);
        }
    };
    for k in ready {
        push(&mut queue, k);
    }
    let srv = ctx.srv;
    while let Some((db, key)) = queue.pop_front() {
        serve_key(srv, db, &key);
        for k in DEFERRED.with(|d| {
            d.borrow_mut()
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default()
        }) {
            push(&mut queue, k);
        }
    }
}

/// Serves the waiters of one ready key in order, until one finds nothing.
fn serve_key(srv: &Server, db: usize, key: &[u8]) {
    while let Some(w) = srv.waiters.first(db, key) {
        // Only a key of the type the waiters want can serve them (a key
        // replaced by a string in one EXEC leaves them waiting). Looked
        // up again for every waiter: the one served before may have
        // emptied the key, and its client may already have parked anew
        // on it; claiming that client for a service that cannot happen
        // would race with its connection closing.
        // XREADGROUP is the exception: a deleted or replaced key ends
        // its wait with NOGROUP/WRONGTYPE, as in Redis.
        let group_read = w.argv[0].eq_ignore_ascii_case(b"xreadgroup");
        if !group_read && key_type(srv, db, key) != Some(wanted_type(&w.argv[0])) {
            break;
        }
        srv.waiters.remove(&w);
        if !claim(&w.handle) {
            continue; // timed out or unblocked meanwhile
        }
        match serve(srv, &w) {
            Some(reply) => {
                srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
                srv.send_to_worker(w.handle.worker, WorkerMsg::Served(w.handle.id, reply));
            }
            None => {
                // Still nothing for it (a stream read whose IDs are not
                // there yet): back to the head of its queues, queued
                // before it can be claimed again so that whoever ends
                // its wait next finds it there.
                srv.waiters.add(&w, true);
                w.handle.blocked.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
}

/// The type of a live key, if any.
fn key_type(srv: &Server, db: usize, key: &[u8]) -> Option<&'static str> {
    let mut g = srv
        .keyspace
        .db(db)
        .shard(crate::keyspace::shard_of(key))
        .lock();
    g.get_mut(key, crate::server::now_ms())
        .map(|e| e.type_name())
}

/// The type of key a blocking command pops from.
fn wanted_type(cmd: &[u8]) -> &'static str {
    match cmd.to_ascii_lowercase().as_slice() {
        b"bzpopmin" | b"bzpopmax" | b"bzmpop" => "zset",
        b"xread" | b"xreadgroup" => "stream",
        _ => "list",
    }
}

/// Runs a parked command for its client; the reply, or None if it would
/// block again.
fn serve(srv: &Server, w: &Waiter) -> Option<Vec<u8>> {
    let mut client = Client::new(w.handle.clone(), true);
    // Rules may have changed while it waited: checked again, as Redis.
    client.acl = crate::acl::ClientAcl::for_handle(srv, &w.handle);
    client.db = w.db;
    client.proto = w.proto;
    let mut out = Vec::new();
    let mut ctx = Ctx::new(srv, &mut client, &mut out);
    ctx.no_monitor = true;
    let argv: Vec<&[u8]> = w.argv.iter().map(|a| a.as_slice()).collect();
    super::dispatch(&mut ctx, &argv);
    let parked = ctx.client.blocked.take();
    drop(ctx);
    match parked {
        Some(st) => {
            // The re-run parked a proxy: undo its registration.
            srv.waiters.remove(&st.waiter);
            srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
            None
        }
        None => Some(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_like_redis() {
        assert_eq!(parse_timeout(b"0"), Ok(None));
        assert_eq!(parse_timeout(b"0.5"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(parse_timeout(b"-1"), Err("ERR timeout is negative"));
        assert_eq!(parse_timeout_ms(b"0"), Ok(None));
        assert_eq!(
            parse_timeout_ms(b"1500"),
            Ok(Some(Duration::from_millis(1500)))
        );
        assert_eq!(parse_timeout_ms(b"-1"), Err("ERR timeout is negative"));
        assert_eq!(
            parse_timeout_ms(b"9223372036854775807"),
            Err("ERR timeout is out of range")
        );
        assert_eq!(
            parse_timeout_ms(b"9223372036854775808"),
            Err("ERR timeout is not an integer or out of range")
        );
        assert_eq!(
            parse_timeout(b"abc"),
            Err("ERR timeout is not a float or out of range")
        );
    }

    #[test]
    fn waiters_are_fifo_per_key() {
        let w = Waiters::default();
        let mk = |id: u64, keys: &[&[u8]]| {
            Arc::new(Waiter {
                handle: Arc::new(ClientHandle::new(id, String::new(), String::new(), 0, 0, 0)),
                db: 0,
                proto: resp::Proto::Resp2,
                argv: Vec::new(),
                keys: keys.iter().map(|k| k.to_vec()).collect(),
            })
        };
        let (a, b) = (mk(1, &[b"k"]), mk(2, &[b"k", b"j"]));
        w.add(&a, false);
        w.add(&b, false);
        assert!(w.has(0, b"k") && w.has(0, b"j") && !w.has(1, b"k"));
        assert_eq!(w.first(0, b"k").unwrap().handle.id, 1);
        w.remove(&a);
        assert_eq!(w.first(0, b"k").unwrap().handle.id, 2);
        w.remove(&b);
        assert!(!w.any());
    }
}
