//! Configuration: one table of parameters that serves the config file,
//! the command line (`--name value`) and CONFIG GET/SET/REWRITE.
//!
//! Each parameter has a type (bool, integer, memory size, enum, string or
//! one of a few structured kinds), a default, aliases and mutability. Values
//! live in per-parameter slots: numbers in atomics so hot paths read them
//! without locks, strings behind a read-write lock.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

/// How a parameter's text is parsed and printed.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// A byte count accepting units (1k, 1kb, 1mb, 2gb...).
    Memory {
        min: i64,
        max: i64,
    },
    /// One of a fixed set of words; stored as the index.
    Enum(&'static [&'static str]),
    /// Several words from a set (e.g. `oom-score-adj`); stored as text.
    Str,
    /// A space separated list of integers or memory values (`save`,
    /// `client-output-buffer-limit`, ...), validated by [`validate_special`].
    Special,
}

/// One parameter of the table.
pub struct Param {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
    /// Hidden parameters (test and debug knobs) are returned by CONFIG GET
    /// only when asked for by exact name, as in Redis.
    pub hidden: bool,
}

const fn p(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: true,
        hidden: false,
    }
}
const fn imm(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: false,
        hidden: false,
    }
}
const fn hid(name: &'static str, kind: Kind, default: &'static str) -> Param {
    Param {
        name,
        aliases: &[],
        kind,
        default,
        mutable: true,
        hidden: true,
    }
}
const fn al(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: &'static str,
) -> Param {
    Param {
        name,
        aliases,
        kind,
        default,
        mutable: true,
        hidden: false,
    }
}

const B: Kind = Kind::Bool;
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn mem(min: i64, max: i64) -> Kind {
    Kind::Memory { min, max }
}
const S: Kind = Kind::Str;
const LL: i64 = i64::MAX;
const IM: i64 = i32::MAX as i64;

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
    "allkeys-s3fifo",
    "volatile-s3fifo",
];
const FSYNC: &[&str] = &["always", "everysec", "no"];
const YES_NO_LOCAL: &[&str] = &["no", "yes", "local"];
const SUPERVISED: &[&str] = &["upstart", "systemd", "auto", "no"];
const SANITIZE: &[&str] = &["no", "yes", "clients"];
const OOMADJ: &[&str] = &["no", "yes", "relative", "absolute"];
const REPL_DISKLESS_LOAD: &[&str] = &["disabled", "on-empty-db", "swapdb"];
const PROPAGATION_ERR: &[&str] = &["ignore", "panic", "panic-on-replicas"];
const SYSLOG_FACILITY: &[&str] = &[
    "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
const CLUSTER_PREFERRED: &[&str] = &["tls", "tcp", "unknown-endpoint", "hostname", "ip"];
const ENDPOINT_TYPE: &[&str] = &["ip", "hostname", "unknown-endpoint"];
const TLS_AUTH: &[&str] = &["no", "yes", "optional"];

/// Every parameter Lodestone knows. Parameters of features that land in
/// later issues are accepted and stored so that existing configuration
/// files and tools keep working.
pub static PARAMS: &[Param] = &[
    // Networking and clients.
    Param {
        name: "bind",
        aliases: &[],
        kind: S,
        default: "127.0.0.1",
        mutable: true,
        hidden: false,
    },
    p("port", int(0, 65535), "6379"),
    imm("tcp-backlog", int(0, IM), "511"),
    p("timeout", int(0, IM), "0"),
    p("tcp-keepalive", int(0, IM), "300"),
    p("protected-mode", B, "yes"),
    p("maxclients", int(1, IM), "10000"),
    p("proto-max-bulk-len", mem(1024 * 1024, LL), "536870912"),
    p(
        "client-query-buffer-limit",
        mem(1024 * 1024, LL),
        "1073741824",
    ),
    p(
        "client-output-buffer-limit",
        Kind::Special,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    imm("unixsocket", S, ""),
    imm("unixsocketperm", int(0, 0o777), "0"),
    // Worker threads (0: one per core). Redis's name for its I/O threads.
    imm("io-threads", int(0, 256), "0"),
    imm("io-threads-do-reads", B, "no"),
    // Lodestone knob (not in Redis): how long a worker polls for events
    // before sleeping, while events keep arriving that fast (net.rs).
    hid("busy-poll-us", int(0, 1_000_000), "0"),
    // Lodestone knob (not in Redis): how long a busy worker naps on a timer
    // before it waits for events, so clients' writes need not wake it (net.rs).
    hid("idle-nap-us", int(0, 1_000), "10"),
    // Lodestone knob: how long a nap may last when the same connections keep
    // coming back, in percent of their cycle (net.rs, `Activity::nap`).
    hid("idle-nap-cycle-pct", int(0, 100), "25"),
    imm("databases", int(1, IM), "16"),
    p("hz", int(0, IM), "10"),
    p("dynamic-hz", B, "yes"),
    al(
        "busy-reply-threshold",
        &["lua-time-limit"],
        int(0, LL),
        "5000",
    ),
    // Security.
    Param {
        name: "requirepass",
        aliases: &[],
        kind: S,
        default: "",
        mutable: true,
        hidden: false,
    },
    p("acllog-max-len", int(0, LL), "128"),
    imm("aclfile", S, ""),
    p(
        "acl-pubsub-default",
        Kind::Enum(&["resetchannels", "allchannels"]),
        "resetchannels",
    ),
    imm("enable-protected-configs", Kind::Enum(YES_NO_LOCAL), "no"),
    imm("enable-debug-command", Kind::Enum(YES_NO_LOCAL), "no"),
    imm("enable-module-command", Kind::Enum(YES_NO_LOCAL), "no"),
    // General.
    imm("daemonize", B, "no"),
    imm("supervised", Kind::Enum(SUPERVISED), "no"),
    p("pidfile", S, ""),
    p("loglevel", Kind::Enum(LOGLEVELS), "notice"),
    imm("logfile", S, ""),
    imm("syslog-enabled", B, "no"),
    imm("syslog-ident", S, "redis"),
    imm("syslog-facility", Kind::Enum(SYSLOG_FACILITY), "local0"),
    p("crash-log-enabled", B, "yes"),
    p("crash-memcheck-enabled", B, "yes"),
    imm("always-show-logo", B, "no"),
    p("set-proc-title", B, "yes"),
    p(
        "proc-title-template",
        S,
        "{title} {listen-addr} {server-mode}",
    ),
    p("locale-collate", S, ""),
    p("oom-score-adj", Kind::Enum(OOMADJ), "no"),
    p("oom-score-adj-values", Kind::Special, "0 200 800"),
    p("disable-thp", B, "yes"),
    p("shutdown-timeout", int(0, IM), "10"),
    p("shutdown-on-sigint", Kind::Str, "default"),
    p("shutdown-on-sigterm", Kind::Str, "default"),
    p("latency-tracking", B, "yes"),
    p(
        "latency-tracking-info-percentiles",
        Kind::Special,
        "50 99 99.9",
    ),
    p("latency-monitor-threshold", int(0, LL), "0"),
    p("slowlog-log-slower-than", int(-1, LL), "10000"),
    p("slowlog-max-len", int(0, LL), "128"),
    p("notify-keyspace-events", Kind::Special, ""),
    hid("watchdog-period", int(0, IM), "0"),
    // Persistence.
    p("save", Kind::Special, "3600 1 300 100 60 10000"),
    p("stop-writes-on-bgsave-error", B, "yes"),
    p("rdbcompression", B, "yes"),
    p("rdbchecksum", B, "yes"),
    p("sanitize-dump-payload", Kind::Enum(SANITIZE), "no"),
    p("dbfilename", S, "dump.rdb"),
    p("rdb-del-sync-files", B, "no"),
    p("dir", S, ""),
    hid("rdb-key-save-delay", int(i32::MIN as i64, IM), "0"),
    // Lodestone test knob: the RDB version written (10 = loadable by Redis 7.0).
    hid("rdb-version", int(10, 11), "11"),
    hid("key-load-delay", int(i32::MIN as i64, IM), "0"),
    p("appendonly", B, "no"),
    imm("appendfilename", S, "appendonly.aof"),
    imm("appenddirname", S, "appendonlydir"),
    p("appendfsync", Kind::Enum(FSYNC), "everysec"),
    p("no-appendfsync-on-rewrite", B, "no"),
    p("auto-aof-rewrite-percentage", int(0, IM), "100"),
    p("auto-aof-rewrite-min-size", mem(0, LL), "67108864"),
    p("aof-load-truncated", B, "yes"),
    p("aof-use-rdb-preamble", B, "yes"),
    p("aof-timestamp-enabled", B, "no"),
    p("aof-rewrite-incremental-fsync", B, "yes"),
    p("rdb-save-incremental-fsync", B, "yes"),
    // Memory and eviction.
    p("maxmemory", mem(0, LL), "0"),
    p("maxmemory-policy", Kind::Enum(POLICIES), "noeviction"),
    p("maxmemory-samples", int(1, 64), "5"),
    p("maxmemory-eviction-tenacity", int(0, 100), "10"),
    p("maxmemory-clients", Kind::Special, "0"),
    p("lfu-log-factor", int(0, IM), "10"),
    p("lfu-decay-time", int(0, IM), "1"),
    p("lazyfree-lazy-eviction", B, "no"),
    p("lazyfree-lazy-expire", B, "no"),
    p("lazyfree-lazy-server-del", B, "no"),
    p("lazyfree-lazy-user-del", B, "no"),
    p("lazyfree-lazy-user-flush", B, "no"),
    p("replica-lazy-flush", B, "no"),
    p("activedefrag", B, "no"),
    p("active-defrag-ignore-bytes", mem(1, LL), "104857600"),
    p("active-defrag-threshold-lower", int(0, 1000), "10"),
    p("active-defrag-threshold-upper", int(0, 1000), "100"),
    p("active-defrag-cycle-min", int(1, 99), "1"),
    p("active-defrag-cycle-max", int(1, 99), "25"),
    p("active-defrag-max-scan-fields", int(1, LL), "1000"),
    p("jemalloc-bg-thread", B, "yes"),
    p("activerehashing", B, "yes"),
    p("active-expire-effort", int(1, 10), "1"),
    // Data structure encodings.
    al(
        "hash-max-listpack-entries",
        &["hash-max-ziplist-entries"],
        mem(0, LL),
        "128",
    ),
    al(
        "hash-max-listpack-value",
        &["hash-max-ziplist-value"],
        mem(0, LL),
        "64",
    ),
    al(
        "list-max-listpack-size",
        &["list-max-ziplist-size"],
        int(i32::MIN as i64, IM),
        "-2",
    ),
    p("list-compress-depth", int(0, IM), "0"),
    p("set-max-intset-entries", mem(0, LL), "512"),
    p("set-max-listpack-entries", mem(0, LL), "128"),
    p("set-max-listpack-value", mem(0, LL), "64"),
    al(
        "zset-max-listpack-entries",
        &["zset-max-ziplist-entries"],
        mem(0, LL),
        "128",
    ),
    al(
        "zset-max-listpack-value",
        &["zset-max-ziplist-value"],
        mem(0, LL),
        "64",
    ),
    p("hll-sparse-max-bytes", mem(0, LL), "3000"),
    p("stream-node-max-bytes", mem(0, LL), "4096"),
    p("stream-node-max-entries", int(0, LL), "100"),
    // Client-side caching, pub/sub.
    al("tracking-table-max-keys", &[], int(0, LL), "1000000"),
    // Replication.
    al("replicaof", &["slaveof"], Kind::Special, ""),
    al("masterauth", &[], S, ""),
    al("masteruser", &[], S, ""),
    al(
        "replica-serve-stale-data",
        &["slave-serve-stale-data"],
        B,
        "yes",
    ),
    al("replica-read-only", &["slave-read-only"], B, "yes"),
    p("repl-diskless-sync", B, "yes"),
    p("repl-diskless-sync-delay", int(0, IM), "5"),
    p("repl-diskless-sync-max-replicas", int(0, IM), "0"),
    p(
        "repl-diskless-load",
        Kind::Enum(REPL_DISKLESS_LOAD),
        "disabled",
    ),
    al(
        "repl-ping-replica-period",
        &["repl-ping-slave-period"],
        int(1, IM),
        "10",
    ),
    p("repl-timeout", int(1, IM), "60"),
    p("repl-disable-tcp-nodelay", B, "no"),
    p("repl-backlog-size", mem(1, LL), "1048576"),
    p("repl-backlog-ttl", int(0, IM), "3600"),
    al("replica-priority", &["slave-priority"], int(0, IM), "100"),
    p("replica-announced", B, "yes"),
    al(
        "min-replicas-to-write",
        &["min-slaves-to-write"],
        int(0, IM),
        "0",
    ),
    al(
        "min-replicas-max-lag",
        &["min-slaves-max-lag"],
        int(0, IM),
        "10",
    ),
    al("replica-announce-ip", &["slave-announce-ip"], S, ""),
    al(
        "replica-announce-port",
        &["slave-announce-port"],
        int(0, 65535),
        "0",
    ),
    al(
        "replica-ignore-maxmemory",
        &["slave-ignore-maxmemory"],
        B,
        "yes",
    ),
    p("replica-ignore-disk-write-errors", B, "no"),
    p(
        "propagation-error-behavior",
        Kind::Enum(PROPAGATION_ERR),
        "ignore",
    ),
    // Cluster.
    imm("cluster-enabled", B, "no"),
    imm("cluster-config-file", S, "nodes.conf"),
    p("cluster-node-timeout", int(0, LL), "15000"),
    imm("cluster-port", int(0, 65535), "0"),
    al(
        "cluster-replica-validity-factor",
        &["cluster-slave-validity-factor"],
        int(0, IM),
        "10",
    ),
    p("cluster-migration-barrier", int(0, IM), "1"),
    p("cluster-allow-replica-migration", B, "yes"),
    p("cluster-require-full-coverage", B, "yes"),
    al(
        "cluster-replica-no-failover",
        &["cluster-slave-no-failover"],
        B,
        "no",
    ),
    p("cluster-allow-reads-when-down", B, "no"),
    p("cluster-allow-pubsubshard-when-down", B, "yes"),
    p("cluster-link-sendbuf-limit", mem(0, LL), "0"),
    p("cluster-announce-ip", S, ""),
    p("cluster-announce-port", int(0, 65535), "0"),
    p("cluster-announce-bus-port", int(0, 65535), "0"),
    p("cluster-announce-tls-port", int(0, 65535), "0"),
    p("cluster-announce-hostname", S, ""),
    p("cluster-announce-human-nodename", S, ""),
    p(
        "cluster-preferred-endpoint-type",
        Kind::Enum(CLUSTER_PREFERRED),
        "ip",
    ),
    p("cluster-endpoint-type", Kind::Enum(ENDPOINT_TYPE), "ip"),
    // TLS.
    p("tls-port", int(0, 65535), "0"),
    p("tls-cert-file", S, ""),
    p("tls-key-file", S, ""),
    p("tls-key-file-pass", S, ""),
    p("tls-client-cert-file", S, ""),
    p("tls-client-key-file", S, ""),
    p("tls-client-key-file-pass", S, ""),
    p("tls-dh-params-file", S, ""),
    p("tls-ca-cert-file", S, ""),
    p("tls-ca-cert-dir", S, ""),
    p("tls-auth-clients", Kind::Enum(TLS_AUTH), "yes"),
    p("tls-replication", B, "no"),
    p("tls-cluster", B, "no"),
    p("tls-protocols", S, ""),
    p("tls-ciphers", S, ""),
    p("tls-ciphersuites", S, ""),
    p("tls-prefer-server-ciphers", B, "no"),
    p("tls-session-caching", B, "yes"),
    p("tls-session-cache-size", int(0, IM), "20480"),
    p("tls-session-cache-timeout", int(0, IM), "300"),
];

/// Index of a parameter in [`PARAMS`], resolved once.
#[derive(Clone, Copy)]
pub struct Id(usize);

/// Looks a parameter up by name or alias (case-insensitive).
pub fn lookup(name: &str) -> Option<(usize, &'static Param)> {
    PARAMS.iter().enumerate().find(|(_, p)| {
        p.name.eq_ignore_ascii_case(name) || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

fn id(name: &str) -> Id {
    Id(lookup(name)
        .unwrap_or_else(|| panic!("unknown config parameter {name}"))
        .0)
}

/// Parses a memory value with Redis's units (`memtoull`): b, k, kb, m, mb, g, gb.
pub fn parse_memory(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let (num, mul): (&str, i64) = [
        ("gb", 1i64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find(|(u, _)| lower.ends_with(u))
    .map(|(u, m)| (&lower[..lower.len() - u.len()], *m))
    .unwrap_or((&lower, 1));
    if num.is_empty() {
        return None;
    }
    let n = strutil::parse_i64(num.as_bytes())?;
    n.checked_mul(mul)
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// Checks the structured parameters' syntax.
fn validate_special(name: &str, v: &str) -> Result<String, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match name {
        "notify-keyspace-events" => match crate::commands::notify::parse_flags(v) {
            Some(f) => Ok(crate::commands::notify::flags_to_string(f)),
            None => Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        },
        "save" => {
            if !words.len().is_multiple_of(2) {
                return Err("Invalid save parameters".into());
            }
            for w in &words {
                if strutil::parse_i64(w.as_bytes()).is_none_or(|n| n < 0) {
                    return Err("Invalid save parameters".into());
                }
            }
            Ok(words.join(" "))
        }
        "client-output-buffer-limit" => {
            if !words.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut cur = parse_obl(PARAMS_DEFAULT_OBL)?;
            for c in words.chunks(4) {
                let class = match c[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => {
                        return Err(
                            "Invalid client class specified in buffer limit configuration.".into(),
                        )
                    }
                };
                let hard = parse_memory(c[1]);
                let soft = parse_memory(c[2]);
                let secs = strutil::parse_i64(c[3].as_bytes());
                match (hard, soft, secs) {
                    (Some(h), Some(s), Some(t)) if h >= 0 && s >= 0 && t >= 0 => cur[class] = (h, s, t),
                    _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
                }
            }
            Ok(format!(
                "normal {} {} {} slave {} {} {} pubsub {} {} {}",
                cur[0].0,
                cur[0].1,
                cur[0].2,
                cur[1].0,
                cur[1].1,
                cur[1].2,
                cur[2].0,
                cur[2].1,
                cur[2].2
            ))
        }
        "oom-score-adj-values" => {
            if words.len() != 3
                || words.iter().any(|w| {
                    strutil::parse_i64(w.as_bytes()).is_none_or(|n| !(-2000..=2000).contains(&n))
                })
            {
                return Err("Invalid oom-score-adj-values".into());
            }
            Ok(words.join(" "))
        }
        "latency-tracking-info-percentiles" => {
            for w in &words {
                match strutil::parse_f64(w.as_bytes()) {
                    Some(f) if (0.0..=100.0).contains(&f) => {}
                    _ => return Err("latency-tracking-info-percentiles parameter should be between 0.0 and 100.0".into()),
                }
            }
            Ok(words.join(" "))
        }
        "maxmemory-clients" => {
            let w = v.trim();
            if let Some(pct) = w.strip_suffix('%') {
                match strutil::parse_i64(pct.as_bytes()) {
                    Some(n) if (0..=100).contains(&n) => Ok(w.to_string()),
                    Some(n) if n > 100 => {
                        Err("percentage argument must be less or equal to 100".into())
                    }
                    _ => Err("argument must be a memory or percent value".into()),
                }
            } else {
                match parse_memory(w) {
                    Some(n) if n >= 0 => Ok(n.to_string()),
                    _ => Err("argument must be a memory or percent value".into()),
                }
            }
        }
        "replicaof" => {
            if words.is_empty()
                || (words.len() == 2
                    && words[0].eq_ignore_ascii_case("no")
                    && words[1].eq_ignore_ascii_case("one"))
            {
                return Ok(String::new());
            }
            if words.len() != 2 || strutil::parse_i64(words[1].as_bytes()).is_none() {
                return Err("wrong number of arguments".into());
            }
            Ok(words.join(" "))
        }
        _ => Ok(v.to_string()),
    }
}

const PARAMS_DEFAULT_OBL: &str =
    "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

fn parse_obl(s: &str) -> Result<[(i64, i64, i64); 3], String> {
    let w: Vec<i64> = s.split_whitespace().filter_map(parse_memory).collect();
    if w.len() != 9 {
        return Err("bad".into());
    }
    Ok([(w[0], w[1], w[2]), (w[3], w[4], w[5]), (w[6], w[7], w[8])])
}

/// Why a value was refused.
#[derive(Debug)]
pub enum SetError {
    Unknown,
    Immutable,
    Invalid(String),
}

/// The live configuration.
pub struct Config {
    nums: Vec<AtomicI64>,
    strs: Vec<RwLock<String>>,
    /// The config file the server started from, for CONFIG REWRITE.
    pub file: RwLock<Option<std::path::PathBuf>>,
    /// `user <name> <rules...>` directives, in order: loaded into the ACL
    /// at startup (`acl::Acl::load_at_startup`) and kept for CONFIG REWRITE.
    pub user_lines: parking_lot::Mutex<Vec<Vec<String>>>,
}

/// Ids of the parameters read on hot paths.
pub struct Hot {
    pub port: Id,
    pub timeout: Id,
    pub tcp_keepalive: Id,
    pub maxclients: Id,
    pub proto_max_bulk_len: Id,
    pub client_query_buffer_limit: Id,
    pub hz: Id,
    pub requirepass: Id,
    pub databases: Id,
    pub slowlog_slower_than: Id,
    pub slowlog_max_len: Id,
    pub maxmemory: Id,
    pub hash_max_listpack_entries: Id,
    pub hash_max_listpack_value: Id,
    pub set_max_intset_entries: Id,
    pub set_max_listpack_entries: Id,
    pub set_max_listpack_value: Id,
    pub zset_max_listpack_entries: Id,
    pub zset_max_listpack_value: Id,
    pub list_max_listpack_size: Id,
    pub list_compress_depth: Id,
    pub tracking_table_max_keys: Id,
    pub busy_reply_threshold: Id,
    pub busy_poll_us: Id,
    pub idle_nap_us: Id,
    pub idle_nap_cycle_pct: Id,
    pub min_replicas_to_write: Id,
    pub min_replicas_max_lag: Id,
}

pub static HOT: std::sync::LazyLock<Hot> = std::sync::LazyLock::new(|| Hot {
    port: id("port"),
    timeout: id("timeout"),
    tcp_keepalive: id("tcp-keepalive"),
    maxclients: id("maxclients"),
    proto_max_bulk_len: id("proto-max-bulk-len"),
    client_query_buffer_limit: id("client-query-buffer-limit"),
    hz: id("hz"),
    requirepass: id("requirepass"),
    databases: id("databases"),
    slowlog_slower_than: id("slowlog-log-slower-than"),
    slowlog_max_len: id("slowlog-max-len"),
    maxmemory: id("maxmemory"),
    hash_max_listpack_entries: id("hash-max-listpack-entries"),
    hash_max_listpack_value: id("hash-max-listpack-value"),
    set_max_intset_entries: id("set-max-intset-entries"),
    set_max_listpack_entries: id("set-max-listpack-entries"),
    set_max_listpack_value: id("set-max-listpack-value"),
    zset_max_listpack_entries: id("zset-max-listpack-entries"),
    zset_max_listpack_value: id("zset-max-listpack-value"),
    list_max_listpack_size: id("list-max-listpack-size"),
    list_compress_depth: id("list-compress-depth"),
    tracking_table_max_keys: id("tracking-table-max-keys"),
    busy_reply_threshold: id("busy-reply-threshold"),
    busy_poll_us: id("busy-poll-us"),
    idle_nap_us: id("idle-nap-us"),
    idle_nap_cycle_pct: id("idle-nap-cycle-pct"),
    min_replicas_to_write: id("min-replicas-to-write"),
    min_replicas_max_lag: id("min-replicas-max-lag"),
});

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    pub fn new() -> Config {
        let c = Config {
            nums: PARAMS.iter().map(|_| AtomicI64::new(0)).collect(),
            strs: PARAMS.iter().map(|_| RwLock::new(String::new())).collect(),
            file: RwLock::new(None),
            user_lines: Default::default(),
        };
        for (i, p) in PARAMS.iter().enumerate() {
            c.set_index(i, p.default, true)
                .unwrap_or_else(|e| panic!("bad default for {}: {e:?}", p.name));
        }
        if let Ok(d) = std::env::current_dir() {
            *c.strs[lookup("dir").unwrap().0].write() = d.display().to_string();
        }
        c
    }

    /// A numeric (int, memory, bool, enum index) parameter.
    #[inline]
    pub fn num(&self, id: Id) -> i64 {
        self.nums[id.0].load(Ordering::Relaxed)
    }

    pub fn get_num(&self, name: &str) -> i64 {
        self.num(id(name))
    }

    pub fn get_bool(&self, name: &str) -> bool {
        self.get_num(name) != 0
    }

    pub fn get_str(&self, name: &str) -> String {
        self.text(lookup(name).expect("known parameter").0)
    }

    pub fn str_of(&self, id: Id) -> String {
        self.strs[id.0].read().clone()
    }

    /// The value as CONFIG GET prints it.
    pub fn text(&self, i: usize) -> String {
        let p = &PARAMS[i];
        let n = self.nums[i].load(Ordering::Relaxed);
        match p.kind {
            Kind::Bool => if n != 0 { "yes" } else { "no" }.to_string(),
            Kind::Int { .. } | Kind::Memory { .. } => n.to_string(),
            Kind::Enum(words) => words[n as usize].to_string(),
            Kind::Str | Kind::Special => self.strs[i].read().clone(),
        }
    }

    /// Sets a parameter by name from its text form.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SetError> {
        let (i, _) = lookup(name).ok_or(SetError::Unknown)?;
        self.set_index(i, value, false)
    }

    /// Sets a parameter at startup (immutable ones allowed).
    pub fn set_startup(&self, name: &str, value: &str) -> Result<(), SetError> {
        let (i, _) = lookup(name).ok_or(SetError::Unknown)?;
        self.set_index(i, value, true)
    }

    /// Validates a value without storing it.
    pub fn check(&self, name: &str, value: &str, startup: bool) -> Result<(), SetError> {
        let (i, p) = lookup(name).ok_or(SetError::Unknown)?;
        if !p.mutable && !startup {
            return Err(SetError::Immutable);
        }
        Self::parse(i, value).map(|_| ())
    }

    fn parse(i: usize, value: &str) -> Result<(i64, Option<String>), SetError> {
        let p = &PARAMS[i];
        let inv = |s: &str| SetError::Invalid(s.to_string());
        match p.kind {
            Kind::Bool => parse_bool(value)
                .map(|b| (b as i64, None))
                .ok_or_else(|| inv("argument must be 'yes' or 'no'")),
            Kind::Int { min, max } => {
                let n = strutil::parse_i64(value.as_bytes())
                    .ok_or_else(|| inv("argument couldn't be parsed into an integer"))?;
                if n < min || n > max {
                    return Err(SetError::Invalid(format!(
                        "argument must be between {min} and {max} inclusive"
                    )));
                }
                Ok((n, None))
            }
            Kind::Memory { min, max } => {
                let n =
                    parse_memory(value).ok_or_else(|| inv("argument must be a memory value"))?;
                if n < min || n > max {
                    return Err(SetError::Invalid(format!(
                        "argument must be between {min} and {max} inclusive"
                    )));
                }
                Ok((n, None))
            }
            Kind::Enum(words) => words
                .iter()
                .position(|w| w.eq_ignore_ascii_case(value))
                .map(|k| (k as i64, None))
                .ok_or_else(|| {
                    SetError::Invalid(format!(
                        "argument(s) must be one of the following: {}",
                        words.join(", ")
                    ))
                }),
            Kind::Str => Ok((0, Some(value.to_string()))),
            Kind::Special => validate_special(p.name, value)
                .map(|s| (0, Some(s)))
                .map_err(SetError::Invalid),
        }
    }

    fn set_index(&self, i: usize, value: &str, startup: bool) -> Result<(), SetError> {
        let p = &PARAMS[i];
        if !p.mutable && !startup {
            return Err(SetError::Immutable);
        }
        let (n, s) = Self::parse(i, value)?;
        if p.name == "dir" && !startup {
            std::env::set_current_dir(value).map_err(|e| SetError::Invalid(e.to_string()))?;
        }
        self.nums[i].store(n, Ordering::Relaxed);
        if let Some(s) = s {
            // At startup `dir` is stored as given (main changes into it
            // and stores the absolute path); at runtime we are already there.
            let s = if p.name == "dir" && !startup {
                std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or(s)
            } else {
                s
            };
            *self.strs[i].write() = s;
        }
        Ok(())
    }

    /// All parameters whose name or alias matches a glob, with their
    /// values, as CONFIG GET returns them (each name once).
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            // An exact name finds hidden parameters and aliases too.
            let name = String::from_utf8_lossy(pattern).to_ascii_lowercase();
            if let Some((i, p)) = lookup(&name) {
                let shown = std::iter::once(p.name)
                    .chain(p.aliases.iter().copied())
                    .find(|n| *n == name);
                out.push((shown.unwrap_or(p.name), self.text(i)));
            }
            return out;
        }
        for (i, p) in PARAMS.iter().enumerate() {
            if p.hidden {
                continue;
            }
            if strutil::glob_match(pattern, p.name.as_bytes(), true) {
                out.push((p.name, self.text(i)));
            }
            for a in p.aliases {
                if strutil::glob_match(pattern, a.as_bytes(), true) {
                    out.push((*a, self.text(i)));
                }
            }
        }
        out
    }
}

/// Reads config text (file contents followed by command line options) and
/// applies it. Errors carry the line number and text, for Redis's fatal
/// config error report.
pub fn load_text(cfg: &Config, text: &str) -> Result<(), (usize, String, String)> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut scratch = Vec::new();
        let mut ranges = Vec::new();
        if !resp::split_args(line.as_bytes(), &mut scratch, &mut ranges) {
            return Err((
                n + 1,
                line.to_string(),
                "Unbalanced quotes in configuration line".into(),
            ));
        }
        let words: Vec<String> = ranges
            .iter()
            .map(|r| String::from_utf8_lossy(&scratch[r.clone()]).into_owned())
            .collect();
        if words.is_empty() {
            continue;
        }
        let name = words[0].to_ascii_lowercase();
        let value = words[1..].join(" ");
        if name == "user" && words.len() >= 2 {
            cfg.user_lines.lock().push(words[1..].to_vec());
            continue;
        }
        // Directives that are not parameters but are harmless to accept.
        if matches!(name.as_str(), "include" | "loadmodule" | "sentinel") {
            continue;
        }
        if words.len() < 2 && !matches!(name.as_str(), "save" | "bind") {
            return Err((
                n + 1,
                line.to_string(),
                "Bad directive or wrong number of arguments".into(),
            ));
        }
        match cfg.set_startup(&name, &value) {
            Ok(()) => {}
            Err(SetError::Unknown) => {
                return Err((
                    n + 1,
                    line.to_string(),
                    "Bad directive or wrong number of arguments".into(),
                ))
            }
            Err(SetError::Immutable) => unreachable!(),
            Err(SetError::Invalid(why)) => return Err((n + 1, line.to_string(), why)),
        }
    }
    Ok(())
}

/// Rewrites the config file with the current values of every parameter
/// that differs from its default, keeping comments and unknown lines.
pub fn rewrite(cfg: &Config) -> Result<(), String> {
    let path = cfg
        .file
        .read()
        .clone()
        .ok_or("The server is running without a config file")?;
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut out = Vec::new();
    let mut written = std::collections::HashSet::new();
    let value_line = |i: usize| -> String {
        let v = cfg.text(i);
        let quoted = matches!(PARAMS[i].kind, Kind::Str | Kind::Special)
            && (v.is_empty() || v.contains(' '));
        if quoted && PARAMS[i].name != "save" && PARAMS[i].name != "client-output-buffer-limit" {
            format!("{} \"{}\"", PARAMS[i].name, v)
        } else if v.is_empty() {
            format!("{} \"\"", PARAMS[i].name)
        } else {
            format!("{} {}", PARAMS[i].name, v)
        }
    };
    for line in old.lines() {
        let t = line.trim();
        let name = t
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if t.starts_with('#') || name.is_empty() {
            out.push(line.to_string());
            continue;
        }
        if name == "user" {
            continue; // rewritten from `user_lines` below
        }
        match lookup(&name) {
            Some((i, _)) if !written.contains(&i) => {
                written.insert(i);
                out.push(value_line(i));
            }
            Some(_) => {}
            None => out.push(line.to_string()),
        }
    }
    for (i, p) in PARAMS.iter().enumerate() {
        if written.contains(&i) || p.name == "dir" {
            continue;
        }
        let fresh = Config::parse(i, p.default).ok();
        let current = (
            cfg.nums[i].load(Ordering::Relaxed),
            cfg.strs[i].read().clone(),
        );
        let differs = match fresh {
            Some((n, s)) => n != current.0 || s.is_some_and(|s| s != current.1),
            None => true,
        };
        if differs {
            out.push(value_line(i));
        }
    }
    // Users, as Redis's rewriteConfigUserOption: none with an ACL file.
    if cfg.get_str("aclfile").is_empty() {
        for words in cfg.user_lines.lock().iter() {
            out.push(format!("user {}", words.join(" ")));
        }
    }
    let tmp = path.with_extension("tmp-rewrite");
    std::fs::write(&tmp, out.join("\n") + "\n")
        .map_err(|e| format!("Rewriting config file: {e}"))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("Rewriting config file: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_types() {
        let c = Config::new();
        assert_eq!(c.get_num("port"), 6379);
        assert_eq!(c.text(lookup("appendonly").unwrap().0), "no");
        assert_eq!(c.get_num("proto-max-bulk-len"), 512 * 1024 * 1024);
        c.set("maxmemory", "100mb").unwrap();
        assert_eq!(c.get_num("maxmemory"), 100 << 20);
        c.set("maxmemory", "1k").unwrap();
        assert_eq!(c.get_num("maxmemory"), 1000);
        assert!(matches!(
            c.set("maxmemory", "lots"),
            Err(SetError::Invalid(_))
        ));
        assert!(matches!(c.set("databases", "3"), Err(SetError::Immutable)));
        assert!(matches!(c.set("nope", "3"), Err(SetError::Unknown)));
        c.set("hash-max-ziplist-entries", "7").unwrap();
        assert_eq!(c.get_num("hash-max-listpack-entries"), 7);
        c.set("maxmemory-policy", "ALLKEYS-LRU").unwrap();
        assert_eq!(c.get_str("maxmemory-policy"), "allkeys-lru");
    }

    #[test]
    fn glob_get_includes_aliases() {
        let c = Config::new();
        let m = c.matching(b"hash-max-*-entries");
        let names: Vec<_> = m.iter().map(|x| x.0).collect();
        assert_eq!(
            names,
            vec!["hash-max-listpack-entries", "hash-max-ziplist-entries"]
        );
    }

    #[test]
    fn special_values() {
        let c = Config::new();
        c.set("save", "100 10 20 5").unwrap();
        assert_eq!(c.get_str("save"), "100 10 20 5");
        c.set("save", "").unwrap();
        assert_eq!(c.get_str("save"), "");
        assert!(c.set("save", "100").is_err());
        c.set("client-output-buffer-limit", "pubsub 1mb 2mb 3")
            .unwrap();
        assert_eq!(
            c.get_str("client-output-buffer-limit"),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 2097152 3"
        );
    }

    #[test]
    fn config_text_loads() {
        let c = Config::new();
        load_text(&c, "# comment\nport 7000\nsave ''\nappendonly yes\n").unwrap();
        assert_eq!(c.get_num("port"), 7000);
        assert_eq!(c.get_str("save"), "");
        assert!(c.get_bool("appendonly"));
        let e = load_text(&c, "port 1\nfoo bar\n").unwrap_err();
        assert_eq!(e.0, 2);
    }
}
