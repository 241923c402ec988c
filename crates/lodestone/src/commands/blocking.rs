//! Blocking commands (BLPOP, BZPOPMIN, XREAD BLOCK, ...): the shared
//! machinery, as in Redis's `blocked.c`.
//!
//! A blocking handler that finds nothing to serve calls [`block`]: the
//! client is parked (its worker stops reading its input), queued FIFO on
//! each of its keys in the server's [`Waiters`], and the command's
//! arguments are kept. A write command that touches a key with waiters
//! records it as ready while it still holds its locks; once the command (or
//! the whole EXEC) has released them, [`signal_ready`] wakes the first
//! waiter of each ready key through its worker's mailbox. The woken worker
//! re-runs the parked command: it either succeeds (and, being a write,
//! makes the key ready for the next waiter if anything is left) or parks
//! again. Timeouts are handled by each worker's event loop.

use super::Ctx;
use crate::server::{Server, WorkerMsg};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What a parked client gets when its timeout passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// A null array (BLPOP, BZPOPMIN, BLMPOP, XREAD, ...).
    NullArray,
    /// A null bulk string (BLMOVE, BRPOPLPUSH).
    NullBulk,
}

/// A parked client's state, kept on its connection.
pub struct BlockState {
    pub argv: Vec<Vec<u8>>,
    pub db: usize,
    pub keys: Vec<Vec<u8>>,
    pub deadline: Option<Instant>,
    pub on_timeout: TimeoutReply,
}

/// The FIFO of parked clients per (db, key), shared by all workers.
#[derive(Default)]
pub struct Waiters {
    map: Mutex<HashMap<(usize, Vec<u8>), VecDeque<(u64, usize)>>>,
    /// Number of registrations; writers skip everything when it is zero.
    count: AtomicUsize,
    /// Number of parked clients (INFO blocked_clients).
    pub blocked_clients: AtomicUsize,
}

impl Waiters {
    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    fn add(&self, db: usize, key: &[u8], client: u64, worker: usize) {
        self.map
            .lock()
            .entry((db, key.to_vec()))
            .or_default()
            .push_back((client, worker));
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes a client from the queues of its keys.
    pub fn remove(&self, db: usize, keys: &[Vec<u8>], client: u64) {
        let mut m = self.map.lock();
        for k in keys {
            let id = (db, k.clone());
            if let Some(q) = m.get_mut(&id) {
                let before = q.len();
                q.retain(|(c, _)| *c != client);
                self.count.fetch_sub(before - q.len(), Ordering::SeqCst);
                if q.is_empty() {
                    m.remove(&id);
                }
            }
        }
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

    /// Takes the first waiter of a key: (client, worker).
    fn pop_first(&self, db: usize, key: &[u8]) -> Option<(u64, usize)> {
        let mut m = self.map.lock();
        let id = (db, key.to_vec());
        let q = m.get_mut(&id)?;
        let w = q.pop_front();
        if w.is_some() {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
        if q.is_empty() {
            m.remove(&id);
        }
        w
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

/// Whether the current command may block (not inside MULTI/EXEC, where
/// blocking commands behave as if they timed out at once).
pub fn can_block(ctx: &Ctx) -> bool {
    !ctx.in_exec
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
    let db = ctx.client.db;
    let id = ctx.client.id();
    let worker = ctx.client.handle.worker;
    for k in keys {
        ctx.srv.waiters.add(db, k, id, worker);
    }
    ctx.srv
        .waiters
        .blocked_clients
        .fetch_add(1, Ordering::SeqCst);
    ctx.client.handle.blocked.store(true, Ordering::SeqCst);
    ctx.client.blocked = Some(BlockState {
        argv: argv.iter().map(|a| a.to_vec()).collect(),
        db,
        keys: keys.iter().map(|k| k.to_vec()).collect(),
        deadline: timeout.map(|t| Instant::now() + t),
        on_timeout,
    });
}

/// Ends a client's parking (served, timed out, unblocked or closed) and
/// removes it from every queue.
pub fn unpark(srv: &Server, client: &mut crate::server::client::Client) -> Option<BlockState> {
    let st = client.blocked.take()?;
    srv.waiters.remove(st.db, &st.keys, client.id());
    srv.waiters.blocked_clients.fetch_sub(1, Ordering::SeqCst);
    client.handle.blocked.store(false, Ordering::SeqCst);
    Some(st)
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

/// Wakes the first waiter of each ready key. Called after the writer has
/// released its locks, so waiters run after the command (or EXEC).
pub fn signal_ready(ctx: &mut Ctx) {
    let ready = std::mem::take(&mut ctx.ready);
    let mut woken: Vec<u64> = Vec::new();
    for (db, key) in ready {
        if let Some((client, worker)) = ctx.srv.waiters.pop_first(db, &key) {
            if !woken.contains(&client) {
                woken.push(client);
                ctx.srv.send_to_worker(worker, WorkerMsg::Ready(client));
            }
        }
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
        assert_eq!(
            parse_timeout(b"abc"),
            Err("ERR timeout is not a float or out of range")
        );
    }

    #[test]
    fn waiters_are_fifo_per_key() {
        let w = Waiters::default();
        w.add(0, b"k", 1, 0);
        w.add(0, b"k", 2, 1);
        w.add(0, b"j", 2, 1);
        assert!(w.has(0, b"k") && !w.has(1, b"k"));
        assert_eq!(w.pop_first(0, b"k"), Some((1, 0)));
        w.remove(0, &[b"k".to_vec(), b"j".to_vec()], 2);
        assert!(!w.any());
    }
}
