//! Lazy freeing (Redis's lazyfree.c): big values are freed by a background
//! thread instead of on the command path.
//!
//! UNLINK, FLUSHALL/FLUSHDB ASYNC, and the `lazyfree-lazy-*` parameters
//! (eviction, expire, server-del, user-del, user-flush) decide whether a
//! deletion may go to the background; the value's free effort decides
//! whether it does: like Redis, only values whose freeing means more than
//! [`THRESHOLD`] allocations (collections with more elements) are worth
//! the hand-off; strings are one allocation and always freed inline. The
//! thread registers with `memory` so its frees count (used_memory drops as
//! it works); `lazyfree_pending_objects` / `lazyfreed_objects` in INFO
//! come from [`pending`] and [`freed`].

use super::Server;
use crate::keyspace::{Entry, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

/// Redis's LAZYFREE_THRESHOLD: a value costing more allocations than this
/// to free goes to the background thread.
pub const THRESHOLD: usize = 64;

/// Why a value is being deleted: each reason has its own parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// UNLINK, FLUSH* ASYNC: always lazy.
    Async,
    /// DEL, FLUSH* without a mode (`lazyfree-lazy-user-del` / `-user-flush`).
    UserDel,
    UserFlush,
    /// Keys evicted under maxmemory (`lazyfree-lazy-eviction`).
    Eviction,
    /// Expired keys (`lazyfree-lazy-expire`).
    Expire,
    /// Values the server deletes as a side effect, e.g. SET over a key or
    /// RENAME onto one (`lazyfree-lazy-server-del`).
    ServerDel,
}

/// The parameters as flags, refreshed by `Server::apply_config` (read on
/// hot paths without the config lock). Bit i is `Reason` i (Async is
/// always set).
static FLAGS: AtomicU64 = AtomicU64::new(1);
static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

fn bit(r: Reason) -> u64 {
    1 << (r as u64)
}

/// Stores the `lazyfree-lazy-*` parameters.
pub fn configure(srv: &Server) {
    let mut f = bit(Reason::Async);
    for (name, r) in [
        ("lazyfree-lazy-eviction", Reason::Eviction),
        ("lazyfree-lazy-expire", Reason::Expire),
        ("lazyfree-lazy-server-del", Reason::ServerDel),
        ("lazyfree-lazy-user-del", Reason::UserDel),
        ("lazyfree-lazy-user-flush", Reason::UserFlush),
    ] {
        if srv.config.get_str(name) == "yes" {
            f |= bit(r);
        }
    }
    FLAGS.store(f, Relaxed);
}

/// Whether deletions for `r` may be lazy.
pub fn lazy(r: Reason) -> bool {
    FLAGS.load(Relaxed) & bit(r) != 0
}

/// Objects handed to the background thread and not freed yet.
pub fn pending() -> u64 {
    PENDING.load(Relaxed)
}

/// Objects the background thread has freed (CONFIG RESETSTAT zeroes it).
pub fn freed() -> u64 {
    FREED.load(Relaxed)
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Relaxed);
}

/// Allocations freeing this value takes (Redis's lazyfreeGetFreeEffort,
/// by element count).
pub fn effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Stream(s) => s.len(),
    }
}

type Job = (Box<dyn Send>, u64);

fn sender() -> &'static Mutex<Sender<Job>> {
    static TX: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("lazyfree".into())
            .spawn(move || {
                super::memory::register_thread();
                for (obj, n) in rx {
                    drop(obj);
                    PENDING.fetch_sub(n, Relaxed);
                    FREED.fetch_add(n, Relaxed);
                }
            })
            .expect("spawn the lazyfree thread");
        Mutex::new(tx)
    })
}

/// Hands `obj` (standing for `n` objects) to the background thread.
pub fn free_later(obj: Box<dyn Send>, n: u64) {
    PENDING.fetch_add(n, Relaxed);
    if let Err(e) = sender()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((obj, n))
    {
        // The thread is gone (cannot happen while the process lives).
        PENDING.fetch_sub(n, Relaxed);
        drop(e);
    }
}

/// Frees a deleted entry: in the background if `r` allows lazy freeing and
/// the value is big enough to be worth it, else here and now.
pub fn drop_entry(e: Entry, r: Reason) {
    if lazy(r) && e.heap_value().is_some_and(|v| effort(v) > THRESHOLD) {
        free_later(Box::new(e), 1);
    }
}

/// [`drop_entry`] for an optional entry (a replaced or removed one).
pub fn drop_opt(e: Option<Entry>, r: Reason) {
    if let Some(e) = e {
        drop_entry(e, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Str;

    #[test]
    fn only_big_collections_go_to_the_background() {
        assert_eq!(effort(&Value::Str(Str::Int(1))), 1);
        assert!(lazy(Reason::Async));
        let before = freed();
        let big = Entry::new(b"s", Value::Str(Str::from_bytes(&[b'x'; 100_000])));
        drop_entry(big, Reason::Async);
        assert_eq!(freed(), before, "strings are freed inline");
    }
}
