//! Statistics: server-wide counters (INFO stats), per-command call
//! statistics (INFO commandstats), error statistics (INFO errorstats) and
//! the slow log.
//!
//! Counters are relaxed atomics: the hot ones are bumped once per command
//! by the thread that ran it, and INFO reads them without stopping anyone.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

/// Number of stripes of a [`Striped`] value. Threads beyond this share.
const STRIPES: usize = 16;

thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES
    };
}

/// A value kept once per thread stripe, each on its own cache line, so
/// that threads bumping hot counters never share a line. Readers sum.
pub struct Striped<T> {
    stripes: Box<[Padded<T>]>,
}

#[repr(align(64))]
#[derive(Default)]
struct Padded<T>(T);

impl<T: Default> Default for Striped<T> {
    fn default() -> Self {
        Striped {
            stripes: (0..STRIPES).map(|_| Padded::default()).collect(),
        }
    }
}

impl<T> Striped<T> {
    /// This thread's stripe.
    #[inline]
    pub fn local(&self) -> &T {
        &self.stripes[STRIPE.with(|s| *s)].0
    }

    pub fn all(&self) -> impl Iterator<Item = &T> {
        self.stripes.iter().map(|p| &p.0)
    }
}

/// A striped event counter.
pub type Counter = Striped<AtomicU64>;

impl Striped<AtomicU64> {
    #[inline]
    pub fn add(&self, n: u64) {
        self.local().fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.all().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    pub fn reset(&self) {
        self.all().for_each(|c| c.store(0, Ordering::Relaxed));
    }
}

/// Keys deleted by lazy or active expiry (INFO `expired_keys`), counted
/// by the shards as they delete: summing per-shard counters on the timer
/// visited all 16 x 1024 shards, a 0.6 ms stall every cron pass.
pub static EXPIRED_KEYS: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);

#[derive(Default)]
pub struct Stats {
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_commands: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub evicted_keys: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub client_qbuf_limit_disconnections: AtomicU64,
    pub client_outbuf_limit_disconnections: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    #[inline]
    pub fn hit(&self, found: bool) {
        if found {
            self.keyspace_hits.add(1);
        } else {
            self.keyspace_misses.add(1);
        }
    }

    /// Counts an error reply under its prefix (the first word), as
    /// Redis's errorstats does (at most 128 distinct prefixes).
    pub fn error(&self, msg: &[u8]) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let body = msg.strip_prefix(b"-").unwrap_or(msg);
        let end = body
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(body.len());
        let prefix = String::from_utf8_lossy(&body[..end]).into_owned();
        let mut m = self.errors.lock();
        if m.len() >= 128 && !m.contains_key(&prefix) {
            return;
        }
        *m.entry(prefix).or_insert(0) += 1;
    }

    pub fn reset(&self) {
        for c in [
            &self.total_commands,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &EXPIRED_KEYS,
        ] {
            c.reset();
        }
        for c in [
            &self.total_connections,
            &self.rejected_connections,
            &self.evicted_keys,
            &self.total_error_replies,
            &self.unexpected_error_replies,
            &self.client_qbuf_limit_disconnections,
            &self.client_outbuf_limit_disconnections,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.errors.lock().clear();
    }
}

/// One stripe of a command's counters for INFO commandstats.
#[derive(Default)]
pub struct CommandCounters {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
    /// Durations for LATENCY HISTOGRAM and INFO latencystats, allocated
    /// by the first call this stripe counts.
    pub hist: std::sync::OnceLock<super::latency::Histogram>,
}

/// Per-command counters, striped by thread.
pub type CommandStats = Striped<CommandCounters>;

impl Striped<CommandCounters> {
    /// (calls, usec, rejected, failed) summed over stripes.
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        self.all().fold((0, 0, 0, 0), |t, c| {
            (
                t.0 + c.calls.load(Ordering::Relaxed),
                t.1 + c.usec.load(Ordering::Relaxed),
                t.2 + c.rejected.load(Ordering::Relaxed),
                t.3 + c.failed.load(Ordering::Relaxed),
            )
        })
    }

    pub fn reset(&self) {
        for c in self.all() {
            c.calls.store(0, Ordering::Relaxed);
            c.usec.store(0, Ordering::Relaxed);
            c.rejected.store(0, Ordering::Relaxed);
            c.failed.store(0, Ordering::Relaxed);
            if let Some(h) = c.hist.get() {
                h.reset();
            }
        }
    }
}

/// One slow log record.
pub struct SlowEntry {
    pub id: u64,
    pub time: u64,
    pub duration_us: u64,
    pub args: Vec<Vec<u8>>,
    pub peer: String,
    pub name: String,
}

/// The slow log: newest first, bounded by `slowlog-max-len`.
#[derive(Default)]
pub struct SlowLog {
    pub next_id: u64,
    pub entries: VecDeque<SlowEntry>,
}

impl SlowLog {
    /// Records a command, trimming arguments as Redis does (at most 32
    /// arguments, each at most 128 bytes).
    pub fn push(
        &mut self,
        argv: &[&[u8]],
        duration_us: u64,
        peer: String,
        name: String,
        max_len: usize,
    ) {
        let mut args: Vec<Vec<u8>> = Vec::new();
        let shown = argv.len().min(32);
        for (i, a) in argv.iter().take(shown).enumerate() {
            if i == 31 && argv.len() > 32 {
                args.push(format!("... ({} more arguments)", argv.len() - 31).into_bytes());
                break;
            }
            if crate::commands::admin::redacted(argv, i) {
                args.push(b"(redacted)".to_vec());
            } else if a.len() > 128 {
                let mut v = a[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
                args.push(v);
            } else {
                args.push(a.to_vec());
            }
        }
        self.entries.push_front(SlowEntry {
            id: self.next_id,
            time: super::now_ms() / 1000,
            duration_us,
            args,
            peer,
            name,
        });
        self.next_id += 1;
        while self.entries.len() > max_len {
            self.entries.pop_back();
        }
    }
}
