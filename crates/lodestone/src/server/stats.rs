//! Statistics: server-wide counters (INFO stats), per-command call
//! statistics (INFO commandstats), error statistics (INFO errorstats) and
//! the slow log.
//!
//! Counters are relaxed atomics: the hot ones are bumped once per command
//! by the thread that ran it, and INFO reads them without stopping anyone.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Stats {
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_commands: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub client_qbuf_limit_disconnections: AtomicU64,
    pub client_outbuf_limit_disconnections: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn hit(&self, found: bool) {
        if found {
            self.keyspace_hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.keyspace_misses.fetch_add(1, Ordering::Relaxed);
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
            &self.total_connections,
            &self.rejected_connections,
            &self.total_commands,
            &self.net_input_bytes,
            &self.net_output_bytes,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.expired_keys,
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

/// Per-command counters for INFO commandstats.
#[derive(Default)]
pub struct CommandStats {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected: AtomicU64,
    pub failed: AtomicU64,
}

impl CommandStats {
    pub fn reset(&self) {
        self.calls.store(0, Ordering::Relaxed);
        self.usec.store(0, Ordering::Relaxed);
        self.rejected.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
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
            if a.len() > 128 {
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
