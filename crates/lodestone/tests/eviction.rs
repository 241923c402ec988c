//! maxmemory over TCP: the OOM error of noeviction, volatile policies that
//! spare persistent keys, allkeys policies that keep used_memory near the
//! limit, `evicted` events, LFU/LRU introspection, and client buffers
//! counted in used memory.

mod common;

use common::{q, qerr, Server};
use std::time::{Duration, Instant};

use common::info_i64 as info_field;

fn used(c: &mut redis::Connection) -> i64 {
    info_field(c, "memory", "used_memory")
}

/// Sets maxmemory to the current usage plus `extra` bytes.
fn limit_above_current(c: &mut redis::Connection, extra: i64) -> i64 {
    let limit = used(c) + extra;
    q::<()>(c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    limit
}

/// Writes `n` keys of `size` bytes with SET (pipelined in batches).
fn fill(c: &mut redis::Connection, prefix: &str, n: usize, size: usize, ttl: bool) {
    let v = "x".repeat(size);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut p = redis::pipe();
        for i in chunk {
            let k = format!("{prefix}{i}");
            if ttl {
                p.cmd("SET").arg(k).arg(&v).arg("EX").arg(100_000).ignore();
            } else {
                p.cmd("SET").arg(k).arg(&v).ignore();
            }
        }
        p.query::<()>(c).unwrap();
    }
}

#[test]
fn noeviction_refuses_writes_but_serves_reads() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "keep", "1"]);
    fill(&mut c, "a", 200, 1000, false);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(
        qerr(&mut c, &["SET", "x", "y"]),
        "OOM command not allowed when used memory > 'maxmemory'."
    );
    assert!(qerr(&mut c, &["LPUSH", "l", "y"]).starts_with("OOM"));
    // Reads and deletes still work.
    assert_eq!(q::<String>(&mut c, &["GET", "keep"]), "1");
    assert_eq!(q::<i64>(&mut c, &["DEL", "a1"]), 1);
    // Inside MULTI every queued command is refused and EXEC aborts.
    q::<()>(&mut c, &["MULTI"]);
    assert!(qerr(&mut c, &["GET", "keep"]).starts_with("OOM"));
    assert!(qerr(&mut c, &["EXEC"]).starts_with("EXECABORT"));
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    let errs: String = redis::cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(errs.contains("errorstat_OOM:count="), "{errs}");
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    q::<()>(&mut c, &["SET", "x", "y"]);
}

#[test]
fn volatile_policies_never_evict_persistent_keys() {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "volatile-s3fifo",
    ] {
        let s = Server::start(&[]);
        let mut c = s.client();
        q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", policy]);
        fill(&mut c, "p", 300, 500, false);
        // (volatile-s3fifo's queues cost a few hundred bytes per shard.)
        limit_above_current(&mut c, 1_000_000);
        // Volatile keys come and go; persistent ones must all stay.
        fill(&mut c, "v", 6000, 500, true);
        assert_eq!(
            q::<i64>(
                &mut c,
                &["EXISTS"]
                    .iter()
                    .copied()
                    .chain(["p0", "p150", "p299"])
                    .collect::<Vec<_>>()
            ),
            3,
            "{policy}"
        );
        let dbsize: i64 = q(&mut c, &["DBSIZE"]);
        assert!((300..6300).contains(&dbsize), "{policy}: {dbsize}");
        assert!(info_field(&mut c, "stats", "evicted_keys") > 0, "{policy}");
        // Once only persistent keys are left, writes fail with OOM.
        // (Each command evicts for at most the tenacity budget, so it may
        // take a few before nothing volatile is left.)
        q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
        let mut refused = false;
        for _ in 0..1000 {
            let r: redis::RedisResult<()> = redis::cmd("SET").arg("z").arg("1").query(&mut c);
            if let Err(e) = r {
                assert_eq!(e.code(), Some("OOM"), "{policy}");
                refused = true;
                break;
            }
            q::<()>(&mut c, &["DEL", "z"]);
        }
        assert!(refused, "{policy}");
        let left: i64 = q(&mut c, &["DBSIZE"]);
        assert_eq!(left, 300, "{policy}");
    }
}

/// Every policy that may evict any key.
const ALLKEYS_POLICIES: [&str; 4] = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "allkeys-s3fifo",
];

#[test]
fn allkeys_policies_keep_memory_near_the_limit() {
    for policy in ALLKEYS_POLICIES {
        let s = Server::start(&[]);
        let mut c = s.client();
        q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", policy]);
        let limit = limit_above_current(&mut c, 2_000_000);
        // Write ~10x the headroom.
        fill(&mut c, "k", 20_000, 1000, false);
        let u = used(&mut c);
        assert!(u <= limit + 200_000, "{policy}: used {u} limit {limit}");
        let dbsize: i64 = q(&mut c, &["DBSIZE"]);
        assert!(dbsize > 200 && dbsize < 20_000, "{policy}: {dbsize}");
        assert!(info_field(&mut c, "stats", "evicted_keys") > 0, "{policy}");
        // S3-FIFO evicts from the head of the small FIFO: the last key
        // written is still there. (LRU's clock has 1 s resolution, so keys
        // written within the same second tie: no such promise there.)
        if policy == "allkeys-s3fifo" {
            assert_eq!(q::<i64>(&mut c, &["EXISTS", "k19999"]), 1, "{policy}");
        }
    }
}

/// A burst that leaves memory far over the limit (DEBUG POPULATE is one
/// command, and eviction runs before commands) is evicted back under
/// maxmemory while a client only polls INFO, for every allkeys policy:
/// an eviction that runs out of its time budget carries on from the event
/// loop after every pass (Redis's evictionTimeProc), not once per `hz`
/// tick. The bound is generous; it used to take minutes.
#[test]
fn memory_comes_back_under_the_limit_after_a_burst() {
    for policy in ALLKEYS_POLICIES {
        let s = Server::start(&[]);
        let mut c = s.client();
        q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-policy", policy]);
        let limit = limit_above_current(&mut c, 4_000_000);
        // ~30 MB over the limit in one command.
        q::<()>(&mut c, &["DEBUG", "POPULATE", "200000", "key", "100"]);
        assert!(used(&mut c) > limit + 10_000_000, "{policy}");
        let start = Instant::now();
        // INFO's own buffers count while it reads used_memory (eviction
        // ran before it): a few hundred bytes over is "under".
        while used(&mut c) > limit + 32_768 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{policy}: still {} over after 60 s",
                used(&mut c) - limit
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let keys: i64 = q(&mut c, &["DBSIZE"]);
        assert!(keys > 1000 && keys < 200_000, "{policy}: {keys}");
        assert!(
            info_field(&mut c, "stats", "evicted_keys") >= 200_000 - keys,
            "{policy}"
        );
    }
}

#[test]
fn evicted_keys_raise_events_and_touch_watch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Ee"]);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"],
    );
    fill(&mut c, "w", 50, 1000, false);
    let mut sub = s.raw();
    sub.send(b"SUBSCRIBE __keyevent@0__:evicted\r\n");
    let head =
        sub.read_exact_n(b"*3\r\n$9\r\nsubscribe\r\n$24\r\n__keyevent@0__:evicted\r\n:1\r\n".len());
    assert!(head.ends_with(b":1\r\n"));
    let mut w = s.client();
    q::<()>(
        &mut w,
        &["WATCH", "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"],
    );
    // Lowering the limit evicts at once, before any other command (Redis
    // starts its eviction timer in CONFIG SET): everything goes.
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    let msg = sub.read_exact_n(30);
    assert!(
        String::from_utf8_lossy(&msg).contains("message"),
        "{:?}",
        String::from_utf8_lossy(&msg)
    );
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    assert!(info_field(&mut c, "stats", "evicted_keys") >= 50);
    q::<()>(&mut w, &["MULTI"]);
    q::<()>(&mut w, &["SET", "w0", "again"]);
    let r: redis::Value = redis::cmd("EXEC").query(&mut w).unwrap();
    assert_eq!(
        r,
        redis::Value::Nil,
        "WATCHed keys were evicted: EXEC fails"
    );
}

#[test]
fn object_freq_and_idletime_follow_the_policy() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "k", "v"]);
    assert!(
        qerr(&mut c, &["OBJECT", "FREQ", "k"]).contains("An LFU maxmemory policy is not selected")
    );
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]), 0);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    assert!(
        qerr(&mut c, &["OBJECT", "IDLETIME", "k"]).contains("An LFU maxmemory policy is selected")
    );
    q::<()>(&mut c, &["SET", "f", "v"]);
    assert_eq!(
        q::<i64>(&mut c, &["OBJECT", "FREQ", "f"]),
        5,
        "LFU_INIT_VAL"
    );
    for _ in 0..200 {
        q::<String>(&mut c, &["GET", "f"]);
    }
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "f"]);
    assert!((8..=20).contains(&f), "log counter after 200 hits: {f}");
    // OBJECT FREQ itself does not count as an access.
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "f"]), f);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert!(q::<i64>(&mut c, &["OBJECT", "IDLETIME", "k"]) >= 2);
}

#[test]
fn memory_introspection_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "k", "v"]);
    let stats: Vec<redis::Value> = q(&mut c, &["MEMORY", "STATS"]);
    let text = format!("{stats:?}");
    for k in [
        "peak.allocated",
        "total.allocated",
        "keys.count",
        "dataset.bytes",
    ] {
        assert!(text.contains(k), "{k} in {text}");
    }
    let malloc: String = q(&mut c, &["MEMORY", "MALLOC-STATS"]);
    assert!(
        malloc.contains("jemalloc"),
        "{}",
        &malloc[..malloc.len().min(300)]
    );
    q::<()>(&mut c, &["MEMORY", "PURGE"]);
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    for f in [
        "used_memory_peak_perc:",
        "used_memory_overhead:",
        "used_memory_startup:",
        "total_system_memory:",
        "mem_clients_normal:",
        "mem_not_counted_for_evict:0",
        "allocator_active:",
        "maxmemory_policy:noeviction",
    ] {
        assert!(info.contains(f), "{f} in {info}");
    }
    let startup = info_field(&mut c, "memory", "used_memory_startup");
    assert!(startup > 0 && startup <= used(&mut c));
}

#[test]
fn reply_buffers_count_in_used_memory_and_hit_the_output_limit() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let big = "x".repeat(1 << 20);
    q::<()>(&mut c, &["SET", "big", &big]);
    let before = used(&mut c);
    // A client that pipelines GETs of a 1 MB value and never reads.
    let mut slow = s.raw();
    let reqs = b"GET big\r\n".repeat(64);
    slow.send(&reqs);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut peak_used, mut peak_out) = (0, 0);
    while Instant::now() < deadline {
        peak_used = peak_used.max(used(&mut c));
        peak_out = peak_out.max(info_field(
            &mut c,
            "clients",
            "client_recent_max_output_buffer",
        ));
        if peak_used > before + (16 << 20) && peak_out > 16 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        peak_used > before + (16 << 20),
        "used {before} -> {peak_used}"
    );
    assert!(peak_out > 16 << 20, "max output buffer {peak_out}");
    assert!(info_field(&mut c, "memory", "mem_clients_normal") > 16 << 20);
    // With a hard limit on normal clients the next overflowing write closes it.
    q::<()>(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 1mb 0 0",
        ],
    );
    slow.send(b"GET big\r\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "stats", "client_output_buffer_limit_disconnections") == 0 {
        assert!(
            Instant::now() < deadline,
            "slow client was never disconnected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The counter moves just before the connection is closed: poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = used(&mut c);
        if after < peak_used - (16 << 20) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "buffers never freed: {peak_used} -> {after}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn maxmemory_clients_evicts_the_biggest_client_not_keys() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["CLIENT", "NO-EVICT", "on"]);
    let big = "x".repeat(1 << 20);
    q::<()>(&mut c, &["SET", "big", &big]);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory-clients", "4mb"]);
    let mut slow = s.raw();
    slow.send(&b"GET big\r\n".repeat(32));
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "stats", "evicted_clients") == 0 {
        assert!(Instant::now() < deadline, "no client was evicted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The connection is closed; the key and the protected client remain.
    slow.s
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let got = slow.read_to_close();
    assert!(got.len() < 32 << 20);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "big"]), 1);
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
    q::<()>(&mut c, &["CONFIG", "RESETSTAT"]);
    assert_eq!(info_field(&mut c, "stats", "evicted_clients"), 0);
}

/// S3-FIFO over TCP: keys read after they were written survive a flood of
/// keys written once (a scan), which LRU would let push them out.
#[test]
fn s3fifo_keeps_reread_keys_through_a_scan() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-s3fifo"],
    );
    fill(&mut c, "hot", 200, 1000, false);
    for _ in 0..2 {
        let mut p = redis::pipe();
        for i in 0..200 {
            p.cmd("GET").arg(format!("hot{i}")).ignore();
        }
        p.query::<()>(&mut c).unwrap();
    }
    limit_above_current(&mut c, 1_000_000);
    // ~10x the headroom of keys read never again.
    fill(&mut c, "scan", 10_000, 1000, false);
    assert!(info_field(&mut c, "stats", "evicted_keys") > 5_000);
    let keys: Vec<String> = (0..200).map(|i| format!("hot{i}")).collect();
    let mut args = vec!["EXISTS"];
    args.extend(keys.iter().map(String::as_str));
    let hot: i64 = q(&mut c, &args);
    assert!(
        hot >= 190,
        "only {hot} of 200 re-read keys survived the scan"
    );
}

/// The lazyfree-lazy-* parameters are accepted, and UNLINK, FLUSHALL ASYNC
/// and DEL under lazyfree-lazy-user-del free big values in the background
/// (INFO's lazyfreed_objects counts them); small values stay inline.
#[test]
fn lazy_freeing_moves_big_values_off_the_command_path() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for p in [
        "lazyfree-lazy-eviction",
        "lazyfree-lazy-expire",
        "lazyfree-lazy-server-del",
        "lazyfree-lazy-user-del",
        "lazyfree-lazy-user-flush",
    ] {
        q::<()>(&mut c, &["CONFIG", "SET", p, "yes"]);
        let v: Vec<String> = q(&mut c, &["CONFIG", "GET", p]);
        assert_eq!(v, [p, "yes"]);
        q::<()>(&mut c, &["CONFIG", "SET", p, "no"]);
    }
    let big = |c: &mut redis::Connection, key: &str| {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(key);
        for i in 0..1000 {
            cmd.arg(i);
        }
        cmd.query::<i64>(c).unwrap();
    };
    let freed = |c: &mut redis::Connection| {
        // The background thread may still be at it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if info_field(c, "memory", "lazyfree_pending_objects") == 0 || Instant::now() > deadline
            {
                return info_field(c, "memory", "lazyfreed_objects");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    big(&mut c, "l1");
    q::<()>(&mut c, &["SET", "s1", "small"]);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", "l1", "s1"]), 2);
    assert_eq!(freed(&mut c), 1, "the list, not the string");
    // DEL frees inline unless lazyfree-lazy-user-del is on.
    big(&mut c, "l2");
    q::<()>(&mut c, &["DEL", "l2"]);
    assert_eq!(freed(&mut c), 1);
    q::<()>(&mut c, &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]);
    big(&mut c, "l3");
    q::<()>(&mut c, &["DEL", "l3"]);
    assert_eq!(freed(&mut c), 2);
    // FLUSHALL ASYNC hands over the whole keyspace (3 keys); SYNC does not.
    for k in ["a", "b", "c"] {
        q::<()>(&mut c, &["SET", k, "1"]);
    }
    q::<()>(&mut c, &["FLUSHALL", "ASYNC"]);
    assert_eq!(freed(&mut c), 5);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"],
    );
    q::<()>(&mut c, &["SET", "a", "1"]);
    q::<()>(&mut c, &["FLUSHALL", "SYNC"]);
    assert_eq!(freed(&mut c), 5);
    q::<()>(&mut c, &["SET", "a", "1"]);
    q::<()>(&mut c, &["FLUSHDB"]);
    assert_eq!(
        freed(&mut c),
        6,
        "lazyfree-lazy-user-flush makes FLUSHDB async"
    );
    // SET over a big value under lazyfree-lazy-server-del.
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"],
    );
    big(&mut c, "l4");
    q::<()>(&mut c, &["SET", "l4", "x"]);
    assert_eq!(freed(&mut c), 7);
    // Expired big values under lazyfree-lazy-expire.
    q::<()>(&mut c, &["CONFIG", "SET", "lazyfree-lazy-expire", "yes"]);
    big(&mut c, "l5");
    q::<()>(&mut c, &["PEXPIRE", "l5", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "l5"]), 0);
    assert_eq!(freed(&mut c), 8);
    q::<()>(&mut c, &["CONFIG", "RESETSTAT"]);
    assert_eq!(info_field(&mut c, "memory", "lazyfreed_objects"), 0);
}

/// Redis's guard against the tracking feedback loop: evicting keys sends
/// invalidations to tracking clients, which takes memory; the eviction must
/// stop at the bytes it set out to free instead of chasing its own tail
/// (unit/maxmemory "client tracking don't cause eviction feedback loop").
/// Two workers: invalidations for trackers on the other worker that are
/// still queued there when the next command checks memory must not count
/// (`memory::TRACKING_IN_TRANSIT`); before that, ~1 run in 5 evicted again.
#[test]
fn tracking_invalidations_do_not_feed_eviction() {
    use std::io::Read;
    let s = Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"],
    );
    let mut trackers = Vec::new();
    for _ in 0..10 {
        let mut r = s.raw();
        r.send(b"HELLO 3\r\n");
        let _ = r.read_exact_n(1);
        std::thread::sleep(Duration::from_millis(20));
        trackers.push(r);
    }
    // Each tracker sends CLIENT TRACKING on and GETs every key; their
    // replies are drained as they come.
    let keys: Vec<String> = (0..300)
        .map(|j| format!("{j}{}", "x".repeat(1000)))
        .collect();
    for k in &keys {
        q::<()>(&mut c, &["SET", k, "x"]);
    }
    for t in trackers.iter_mut() {
        let mut buf = common::req(&[b"CLIENT", b"TRACKING", b"on"]);
        for k in &keys {
            buf.extend(common::req(&[b"GET", k.as_bytes()]));
        }
        t.send(&buf);
    }
    std::thread::sleep(Duration::from_millis(500));
    for t in trackers.iter_mut() {
        let s = &mut t.s;
        s.set_nonblocking(true).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        while let Ok(n) = s.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        s.set_nonblocking(false).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let limit = used(&mut c) - 40_000;
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    let dbsize: i64 = q(&mut c, &["DBSIZE"]);
    assert!((200..=300).contains(&dbsize), "dbsize {dbsize}");
    assert!((10..=50).contains(&evicted), "evicted {evicted}");
    drop(trackers);
}
