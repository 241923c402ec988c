//! Active expiry: a background sweep that deletes keys whose TTL passed
//! even if nobody reads them again.
//!
//! Every worker runs [`active_expire_cycle`] from its timer `hz` times a
//! second. Workers share one cursor over all `(db, shard)` pairs and each
//! sweeps shards that hold keys with a TTL, under a time budget of 25% of
//! the tick divided among the workers (Redis's slow cycle budget). A shard
//! that is busy is skipped rather than waited for.

use super::{Keyspace, SHARDS};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether the active cycle runs (DEBUG SET-ACTIVE-EXPIRE).
pub static ACTIVE_EXPIRE_ENABLED: AtomicBool = AtomicBool::new(true);

static CURSOR: AtomicUsize = AtomicUsize::new(0);

/// Shards one call may visit.
const MAX_VISITS: usize = 2048;

/// Runs one slice of the active expiry sweep. Returns keys deleted.
pub fn active_expire_cycle(
    ks: &Keyspace,
    now_ms: u64,
    hz: u32,
    workers: usize,
    on_expired: &mut dyn FnMut(usize, Vec<u8>),
) -> usize {
    if !ACTIVE_EXPIRE_ENABLED.load(Ordering::Relaxed) || super::shard::expiry_paused(now_ms) {
        return 0;
    }
    let tick = Duration::from_micros(1_000_000 / hz.max(1) as u64);
    let budget = tick / 4 / workers.max(1) as u32;
    let total = ks.db_count() * SHARDS;
    let start = Instant::now();
    let mut deleted = 0;
    // Visiting a shard costs a try-lock even when it holds no TTL'd key:
    // bound the visits per call so idle servers stay idle.
    for visited in 0..total.min(MAX_VISITS) {
        let pos = CURSOR.fetch_add(1, Ordering::Relaxed) % total;
        let (db, sh) = (pos / SHARDS, pos % SHARDS);
        if let Some(mut shard) = ks.try_lock_shard_to_look(db, sh) {
            if shard.volatile_len() > 0 {
                // Only a shard that may change is captured for a snapshot.
                ks.snap_check((db as u32, sh as u32), &mut shard);
                deleted += shard.expire_sweep(now_ms).1;
                for k in shard.expired_log.drain(..) {
                    on_expired(db, k);
                }
            }
        }
        // Checking the clock costs more than skipping an empty shard.
        if visited % 64 == 63 && start.elapsed() >= budget {
            break;
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{shard_of, Str, Value};

    #[test]
    fn cycle_deletes_expired_keys() {
        let ks = Keyspace::new(1);
        for i in 0..1000 {
            let k = format!("k{i}");
            ks.db(0).shard(shard_of(k.as_bytes())).lock().insert(
                k.as_bytes(),
                Value::Str(Str::Int(i)),
                if i % 2 == 0 { Some(100) } else { None },
            );
        }
        let mut deleted = 0;
        for _ in 0..100 {
            deleted += active_expire_cycle(&ks, 200, 1, 1, &mut |_, _| {});
        }
        assert_eq!(deleted, 500);
        assert_eq!(ks.db(0).len(), 500);
    }
}
