//! Point-in-time snapshots without fork (brief D5).
//!
//! [`run`] hands out a new epoch, installs a [`ShardSink`] and walks every
//! `(db, shard)` in order, capturing each shard under its lock. Writers
//! cooperate through `Keyspace::snap_check` (called by `Locks::acquire`
//! and every other path that locks a shard to change it): a shard the
//! walker has not reached yet is captured by the writer *before* it
//! changes it, and marked with the epoch so it is captured exactly once.
//! The result is the dataset as it was when the epoch was set, while
//! writes go on. Memory stays bounded: at most one serialized shard per
//! thread is in flight, the sink streams it out.
//!
//! Users: RDB (SAVE, BGSAVE, DEBUG RELOAD, SHUTDOWN) through
//! [`RdbSink`](super::RdbSink); BGREWRITEAOF and replica full sync can pass
//! their own sink (one callback per shard, which may iterate its entries).

use crate::keyspace::{Keyspace, Locks, ShardSink, SHARDS};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Takes a consistent snapshot of every database into `sink`. `locks`
/// are the caller's held locks (SAVE inside EXEC), used instead of
/// locking those shards again. `key_delay_us` slows the walker down per
/// key (the `rdb-key-save-delay` test knob, read again after every shard
/// so that lifting it speeds up a running snapshot); writers never wait
/// for it.
/// Returns the number of keys the walker itself captured (writers
/// capture the rest).
///
/// Only one snapshot runs at a time: this waits for a running one (use
/// [`is_running`] first to refuse instead).
pub fn run<'a>(
    ks: &'a Keyspace,
    locks: Option<&mut Locks<'a>>,
    sink: Arc<dyn ShardSink>,
    key_delay_us: &dyn Fn() -> i64,
) -> u64 {
    let _one = ks.snap.running.lock();
    let e = start_epoch(ks, sink.clone());
    let mut own;
    let locks = match locks {
        Some(l) => l,
        None => {
            own = Locks::new(ks);
            &mut own
        }
    };
    walk(ks, locks, e, key_delay_us, &*sink)
}

/// Like [`run`], but the snapshot's point in time is chosen by the caller:
/// every shard of every database is held while `at_start` runs and the
/// epoch begins, so nothing lands between `at_start` and the snapshot
/// point (the AOF rewrite switches to a new incr file there). The locks
/// are released before the walk; writers go on during it. Returns the
/// walker's keys and how long every shard was held. `on_turn` runs
/// once this snapshot's turn has come (after waiting for a running one).
pub fn run_at(
    ks: &Keyspace,
    sink: Arc<dyn ShardSink>,
    key_delay_us: &dyn Fn() -> i64,
    on_turn: impl FnOnce(),
    at_start: impl FnOnce(),
) -> (u64, Duration) {
    let _one = ks.snap.running.lock();
    on_turn();
    let t0 = std::time::Instant::now();
    let mut locks = Locks::new(ks);
    let all: Vec<usize> = (0..ks.db_count()).collect();
    locks.acquire_all(&all);
    at_start();
    let e = start_epoch(ks, sink.clone());
    locks.release();
    drop(locks);
    let held = t0.elapsed();
    (walk(ks, &mut Locks::new(ks), e, key_delay_us, &*sink), held)
}

/// Installs `sink` and hands out the new epoch (the snapshot point).
fn start_epoch(ks: &Keyspace, sink: Arc<dyn ShardSink>) -> u64 {
    *ks.snap.sink.write() = Some(sink);
    let e = ks.snap.last.fetch_add(1, Ordering::SeqCst) + 1;
    ks.snap.active.store(e, Ordering::SeqCst);
    e
}

/// The walker: captures every shard not captured yet, then ends the epoch.
fn walk<'a>(
    ks: &'a Keyspace,
    locks: &mut Locks<'a>,
    e: u64,
    key_delay_us: &dyn Fn() -> i64,
    sink: &dyn ShardSink,
) -> u64 {
    let mut keys = 0u64;
    for db in 0..ks.db_count() {
        for i in 0..SHARDS {
            let n =
                locks.with_shard_index_raw(db, i, |sh| ks.snap_visit((db as u32, i as u32), sh, e));
            keys += n as u64;
            if n > 0 {
                sink.pace();
            }
            if n > 0 {
                key_delay(key_delay_us, n as u64);
            }
        }
    }
    ks.snap.active.store(0, Ordering::SeqCst);
    *ks.snap.sink.write() = None;
    keys
}

/// Sleeps `rdb-key-save-delay` µs per key for `n` keys, in slices that
/// read the knob again: lowering it ends the wait early (Redis's tests
/// lower it, then kill the slow child; here there is none to kill).
fn key_delay(key_delay_us: &dyn Fn() -> i64, n: u64) {
    let start = std::time::Instant::now();
    loop {
        let total = Duration::from_micros(key_delay_us().max(0) as u64 * n);
        let Some(left) = total.checked_sub(start.elapsed()) else {
            return;
        };
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Whether a snapshot is running now.
pub fn is_running(ks: &Keyspace) -> bool {
    ks.snap.active.load(Ordering::SeqCst) != 0 || ks.snap.running.is_locked()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{shard_of, Shard, Str, Value};
    use parking_lot::Mutex;

    /// Records each key's value as captured.
    struct Collect(Mutex<Vec<(Vec<u8>, i64)>>);

    impl ShardSink for Collect {
        fn shard(&self, _db: usize, _idx: usize, sh: &Shard) -> usize {
            let mut v = self.0.lock();
            for e in sh.iter() {
                if let Some(crate::keyspace::StrRef::Int(n)) = e.str() {
                    v.push((e.key().to_vec(), n));
                }
            }
            sh.len()
        }
    }

    #[test]
    fn writers_during_a_snapshot_do_not_leak_into_it() {
        let ks = Arc::new(Keyspace::new(1));
        let keys: Vec<Vec<u8>> = (0..2000).map(|i| format!("k{i}").into_bytes()).collect();
        for k in &keys {
            ks.lock_shard(0, shard_of(k))
                .insert(k, Value::Str(Str::Int(1)), None);
        }
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (ks, keys, stop) = (ks.clone(), keys.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut round = 2;
                while !stop.load(Ordering::SeqCst) {
                    for k in &keys {
                        let mut l = Locks::new(&ks);
                        l.acquire(&mut [(0, shard_of(k) as u32)]);
                        l.shard(0, k).insert(k, Value::Str(Str::Int(round)), None);
                    }
                    round += 1;
                }
            })
        };
        // Let the writer get going, then snapshot slowly.
        std::thread::sleep(Duration::from_millis(5));
        let n = run(&ks, None, sink.clone(), &|| 1);
        stop.store(true, Ordering::SeqCst);
        writer.join().unwrap();
        let got = sink.0.lock();
        assert!(
            n <= keys.len() as u64,
            "the walker counts only what it captured"
        );
        assert_eq!(got.len(), keys.len(), "each key captured exactly once");
        let mut seen: Vec<_> = got.iter().map(|(k, _)| k.clone()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), keys.len());
    }

    #[test]
    fn snapshot_sees_the_state_at_its_start() {
        let ks = Arc::new(Keyspace::new(1));
        let keys: Vec<Vec<u8>> = (0..500).map(|i| format!("x{i}").into_bytes()).collect();
        for k in &keys {
            ks.lock_shard(0, shard_of(k))
                .insert(k, Value::Str(Str::Int(1)), None);
        }
        let sink = Arc::new(Collect(Mutex::new(Vec::new())));
        let snap = {
            let (ks, sink) = (ks.clone(), sink.clone());
            // Slow walker: 2 ms per key.
            std::thread::spawn(move || run(&ks, None, sink, &|| 2000))
        };
        while ks.snap.active.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Overwrite every key while the walker crawls.
        for k in &keys {
            let mut l = Locks::new(&ks);
            l.acquire(&mut [(0, shard_of(k) as u32)]);
            l.shard(0, k).insert(k, Value::Str(Str::Int(2)), None);
        }
        snap.join().unwrap();
        let got = sink.0.lock();
        assert_eq!(got.len(), keys.len());
        assert!(got.iter().all(|(_, v)| *v == 1), "old values only");
        // The keyspace has the new values.
        for k in &keys {
            let g = ks.lock_shard(0, shard_of(k));
            assert_eq!(
                g.peek(k).unwrap().str(),
                Some(crate::keyspace::StrRef::Int(2))
            );
        }
    }
}
