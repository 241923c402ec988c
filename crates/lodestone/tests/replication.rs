//! Replication: full sync of every type, the stream after it, expiry,
//! PSYNC continue after a dropped link, WAIT, READONLY, the raw SYNC
//! stream the Redis test suite reads, and both directions with a real
//! redis-server.

mod common;

use common::{attach, info_i64, q, qerr, wait_for, wait_synced, RealRedis, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use common::info_field;

/// A value of each type, in two databases, with and without TTLs.
fn fill(c: &mut redis::Connection) {
    let _: () = q(c, &["SET", "s", "hello"]);
    let _: () = q(c, &["SET", "n", "12345"]);
    let _: () = q(c, &["SET", "ttl", "v", "EX", "1000"]);
    let _: i64 = q(c, &["RPUSH", "l", "a", "b", "c"]);
    let _: i64 = q(c, &["HSET", "h", "f1", "v1", "f2", "v2"]);
    let _: i64 = q(c, &["SADD", "set", "1", "2", "3"]);
    let _: i64 = q(c, &["SADD", "sset", "x", "y"]);
    let _: i64 = q(c, &["ZADD", "z", "1", "a", "2.5", "b"]);
    let _: String = q(c, &["XADD", "x", "1-1", "f", "v"]);
    let _: i64 = q(c, &["PFADD", "hll", "a", "b", "c"]);
    let _: () = q(c, &["SELECT", "3"]);
    let _: () = q(c, &["SET", "in3", "three"]);
    let _: () = q(c, &["SELECT", "0"]);
}

fn check_filled(c: &mut redis::Connection) {
    assert_eq!(q::<String>(c, &["GET", "s"]), "hello");
    assert_eq!(q::<i64>(c, &["GET", "n"]), 12345);
    let ttl: i64 = q(c, &["TTL", "ttl"]);
    assert!(ttl > 990 && ttl <= 1000, "ttl {ttl}");
    assert_eq!(
        q::<Vec<String>>(c, &["LRANGE", "l", "0", "-1"]),
        ["a", "b", "c"]
    );
    assert_eq!(q::<String>(c, &["HGET", "h", "f2"]), "v2");
    assert_eq!(q::<i64>(c, &["SCARD", "set"]), 3);
    assert_eq!(q::<i64>(c, &["SISMEMBER", "sset", "y"]), 1);
    assert_eq!(q::<String>(c, &["ZSCORE", "z", "b"]), "2.5");
    assert_eq!(q::<i64>(c, &["XLEN", "x"]), 1);
    assert_eq!(q::<i64>(c, &["PFCOUNT", "hll"]), 3);
    let _: () = q(c, &["SELECT", "3"]);
    assert_eq!(q::<String>(c, &["GET", "in3"]), "three");
    let _: () = q(c, &["SELECT", "0"]);
}

#[test]
fn full_sync_then_stream_of_every_type() {
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    fill(&mut m);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    check_filled(&mut r);
    assert_sync_file_kept(&replica);
    assert_eq!(info_field(&mut r, "replication", "role"), "slave");
    assert_eq!(info_field(&mut m, "replication", "connected_slaves"), "1");
    let role: Vec<redis::Value> = q(&mut r, &["ROLE"]);
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));

    // Writes after the sync, including a transaction across databases.
    let _: i64 = q(&mut m, &["INCR", "n"]);
    let _: i64 = q(&mut m, &["LPUSH", "l", "z"]);
    let _: i64 = q(&mut m, &["DEL", "s"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("HSET")
        .arg("h")
        .arg("f3")
        .arg("v3")
        .cmd("SELECT")
        .arg("3")
        .cmd("SET")
        .arg("in3")
        .arg("changed")
        .query(&mut m)
        .unwrap();
    let _: i64 = q(&mut m, &["EXPIRE", "n", "500"]);
    let _: () = q(&mut m, &["SELECT", "0"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(q::<i64>(&mut r, &["GET", "n"]), 12346);
    assert_eq!(q::<String>(&mut r, &["LINDEX", "l", "0"]), "z");
    assert_eq!(q::<i64>(&mut r, &["EXISTS", "s"]), 0);
    assert_eq!(q::<String>(&mut r, &["HGET", "h", "f3"]), "v3");
    // The EXPIRE travelled as an absolute time: both agree.
    let (tm, tr): (i64, i64) = (
        q(&mut m, &["PEXPIRETIME", "n"]),
        q(&mut r, &["PEXPIRETIME", "n"]),
    );
    assert_eq!(tm, tr);
    let _: () = q(&mut r, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut r, &["GET", "in3"]), "changed");

    // The replica refuses writes, serves reads.
    let e = qerr(&mut r, &["SET", "x", "1"]);
    assert!(
        e.contains("READONLY You can't write against a read only replica"),
        "{e}"
    );
    let _: () = q(&mut r, &["SELECT", "0"]);
    let _: () = q(&mut r, &["MULTI"]);
    let e = qerr(&mut r, &["SET", "x", "1"]);
    assert!(e.contains("READONLY"), "{e}");
    let _: () = q(&mut r, &["DISCARD"]);

    // REPLICAOF NO ONE: a master again, with the data, and writable.
    let _: String = q(&mut r, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut r, "replication", "role"), "master");
    let _: () = q(&mut r, &["SET", "x", "1"]);
    assert_eq!(q::<i64>(&mut r, &["GET", "n"]), 12346);
}

#[test]
fn expiry_reaches_the_replica_as_dels() {
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let _: () = q(&mut m, &["SET", "short", "v", "PX", "300"]);
    let _: () = q(&mut m, &["SET", "keep", "v"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(q::<String>(&mut r, &["GET", "short"]), "v");
    std::thread::sleep(Duration::from_millis(350));
    // Logically expired on the replica at once, whatever the master did.
    assert_eq!(q::<Option<String>>(&mut r, &["GET", "short"]), None);
    // The master's active expiry deletes it and the DEL replicates.
    wait_for("the master's DEL", || q::<i64>(&mut r, &["DBSIZE"]) == 1);
    assert_eq!(q::<i64>(&mut m, &["DBSIZE"]), 1);
}

#[test]
fn replica_keeps_expired_keys_until_the_master_deletes_them() {
    // The master never expires actively here (DEBUG SET-ACTIVE-EXPIRE 0),
    // so the replica must keep the key (reads say nil) until a DEL.
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    let _: () = q(&mut m, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let _: () = q(&mut m, &["SET", "k", "v", "PX", "100"]);
    wait_synced(&mut m, &mut r);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(q::<Option<String>>(&mut r, &["GET", "k"]), None);
    assert_eq!(
        q::<i64>(&mut r, &["DBSIZE"]),
        1,
        "the replica does not delete"
    );
    // A read on the master expires it lazily: the DEL reaches the replica.
    assert_eq!(q::<Option<String>>(&mut m, &["GET", "k"]), None);
    wait_for("the lazy DEL", || q::<i64>(&mut r, &["DBSIZE"]) == 0);
}

#[test]
fn psync_continues_after_a_dropped_link() {
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    fill(&mut m);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    // The stream is in db 3 when the link drops; the continued stream
    // does not SELECT again, so the replica must remember it.
    let mut m3 = master.client();
    let _: () = q(&mut m3, &["SELECT", "3"]);
    let _: () = q(&mut m3, &["SET", "before3", "v"]);
    wait_synced(&mut m, &mut r);
    let killed: i64 = q(&mut m, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    let _: () = q(&mut m3, &["SET", "after3", "v"]);
    for i in 0..100 {
        let _: () = q(&mut m, &["SET", &format!("after{i}"), "v"]);
    }
    wait_for("a partial resync", || {
        info_field(&mut m, "stats", "sync_partial_ok") == "1"
    });
    wait_synced(&mut m, &mut r);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    assert_eq!(q::<String>(&mut r, &["GET", "after99"]), "v");
    check_filled(&mut r);
    let _: () = q(&mut r, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut r, &["GET", "after3"]), "v");
}

/// Stops a server with SHUTDOWN SAVE and waits for its exit.
fn shutdown_saving(s: &mut Server) {
    let mut c = s.client();
    let _ = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c);
    assert!(s.wait_exit(Duration::from_secs(20)), "server did not exit");
}

/// FLUSHALL saves when save points are set, as in Redis: on the master
/// while it holds every shard (it feeds a replica), and on the replica
/// from the link thread, which holds the stream's apply lock that a
/// snapshot point takes. Neither may wait for itself (the master's save
/// used to hang locking shards it held, for the RDB's used-mem).
#[test]
fn flushall_with_save_points_on_master_and_replica() {
    let master = Server::start(&[]);
    let replica = Server::start(&["--save", "3600 1"]);
    let (mut m, mut r) = (master.client(), replica.client());
    fill(&mut m);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let _: () = q(&mut m, &["FLUSHALL"]);
    let _: () = q(&mut m, &["SET", "after", "flush"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(q::<String>(&mut r, &["GET", "after"]), "flush");
    assert_eq!(q::<i64>(&mut r, &["DBSIZE"]), 1);
    assert!(replica.dir.join("dump.rdb").exists());
}

/// The RDB records where the replication stream stood (AUX repl-id,
/// repl-offset, repl-stream-db): a replica restarted from it continues
/// with a partial resync, in the stream's database.
#[test]
fn a_restarted_replica_continues_with_psync() {
    let master = Server::start(&[]);
    let mut m = master.client();
    let dir = common::TempDir::new("repl-restart-replica");
    let port = master.port.to_string();
    let args = ["--replicaof", "127.0.0.1", &port];
    let mut replica = Server::start_in(dir.path.clone(), &args);
    let mut r = replica.client();
    fill(&mut m);
    let mut m3 = master.client();
    let _: () = q(&mut m3, &["SELECT", "3"]);
    let _: () = q(&mut m3, &["SET", "before3", "v"]);
    wait_synced(&mut m, &mut r);
    shutdown_saving(&mut replica);
    // Writes while it is down, still in db 3 and then in db 0.
    let _: i64 = q(&mut m3, &["INCR", "n3"]);
    let _: i64 = q(&mut m, &["INCR", "n0"]);

    let replica = Server::start_in(dir.path.clone(), &args);
    let mut r = replica.client();
    wait_synced(&mut m, &mut r);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "1");
    assert_eq!(info_field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(q::<i64>(&mut r, &["GET", "n0"]), 1);
    check_filled(&mut r);
    let _: () = q(&mut r, &["SELECT", "3"]);
    assert_eq!(q::<i64>(&mut r, &["GET", "n3"]), 1);
    assert_eq!(q::<String>(&mut r, &["GET", "before3"]), "v");
}

/// A master restarted from its RDB keeps its old history as its secondary
/// id: its replica comes back with a partial resync, no full sync.
#[test]
fn a_restarted_master_takes_its_replica_back_with_psync() {
    let dir = common::TempDir::new("repl-restart-master");
    let mut master = Server::start_in(dir.path.clone(), &[]);
    let port = master.port.to_string();
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    fill(&mut m);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let old_id = info_field(&mut m, "replication", "master_replid");
    shutdown_saving(&mut master);

    let master = Server::start_in(dir.path.clone(), &["--port", &port]);
    let mut m = master.client();
    assert_eq!(info_field(&mut m, "replication", "master_replid2"), old_id);
    let _: i64 = q(&mut m, &["INCR", "n0"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(info_field(&mut m, "stats", "sync_full"), "0");
    assert_eq!(info_field(&mut m, "stats", "sync_partial_ok"), "1");
    assert_eq!(q::<i64>(&mut r, &["GET", "n0"]), 1);
    check_filled(&mut r);
}

#[test]
fn wait_counts_acknowledging_replicas() {
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    assert_eq!(q::<i64>(&mut m, &["WAIT", "0", "0"]), 0);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "50"]), 0);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let _: () = q(&mut m, &["SET", "k", "v"]);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "5000"]), 1);
    let t = Instant::now();
    assert_eq!(q::<i64>(&mut m, &["WAIT", "2", "300"]), 1);
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert!(qerr(&mut m, &["WAIT", "1", "-1"]).contains("timeout is negative"));
    let e = qerr(&mut r, &["WAIT", "1", "10"]);
    assert!(
        e.contains("WAIT cannot be used with replica instances"),
        "{e}"
    );
    // min-replicas-to-write counts replicas that acknowledged lately.
    let _: () = q(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    let e = qerr(&mut m, &["SET", "k", "w"]);
    assert!(
        e.contains("NOREPLICAS Not enough good replicas to write."),
        "{e}"
    );
    assert_eq!(q::<String>(&mut m, &["GET", "k"]), "v");
    let _: () = q(&mut m, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let _: () = q(&mut m, &["SET", "k", "w"]);
}

/// A WAIT during CLIENT PAUSE WRITE does not move the replication offset:
/// as in Redis, GETACK and the pings wait while replica traffic is paused
/// (FAILOVER waits for the replicas to reach a fixed offset), and go out
/// once the pause ends.
#[test]
fn a_pause_holds_back_getack_and_pings() {
    let master = Server::start(&["--repl-ping-replica-period", "1"]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let _: () = q(&mut m, &["SET", "k", "v"]);
    let offset = |m: &mut redis::Connection| info_i64(m, "replication", "master_repl_offset");
    let _: () = q(&mut m, &["CLIENT", "PAUSE", "3000", "WRITE"]);
    let before = offset(&mut m);
    // Two replicas wanted, one there: the WAIT parks and times out.
    let acked: i64 = q(&mut m, &["WAIT", "2", "200"]);
    assert!(acked <= 1);
    assert_eq!(offset(&mut m), before, "GETACK was sent during the pause");
    // Longer than repl-ping-replica-period.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(offset(&mut m), before, "a PING was sent during the pause");
    wait_for("GETACK and pings after the pause", || {
        offset(&mut m) > before
    });
    wait_synced(&mut m, &mut r);
}

/// Reads one RESP array of bulk strings.
fn read_command(rd: &mut BufReader<std::net::TcpStream>) -> Vec<String> {
    let mut line = String::new();
    loop {
        line.clear();
        rd.read_line(&mut line).unwrap();
        if !line.trim().is_empty() {
            break;
        }
    }
    let n: usize = line.trim()[1..].parse().unwrap();
    (0..n)
        .map(|_| {
            line.clear();
            rd.read_line(&mut line).unwrap();
            let len: usize = line.trim()[1..].parse().unwrap();
            let mut b = vec![0u8; len + 2];
            rd.read_exact(&mut b).unwrap();
            String::from_utf8_lossy(&b[..len]).into_owned()
        })
        .collect()
}

#[test]
fn raw_sync_gets_the_rdb_then_effects() {
    // What Redis's test helper attach_to_replication_stream does.
    let master = Server::start(&[]);
    let mut m = master.client();
    let _: () = q(&mut m, &["SET", "before", "1"]);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"SYNC\r\n").unwrap();
    let mut rd = BufReader::new(s);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    let len: usize = line.trim().strip_prefix('$').unwrap().parse().unwrap();
    let mut rdb = vec![0u8; len];
    rd.read_exact(&mut rdb).unwrap();
    assert!(rdb.starts_with(b"REDIS0011"));
    assert!(rdb.windows(6).any(|w| w == b"before"));
    let _: () = q(&mut m, &["SET", "foo", "bar", "EX", "100"]);
    let _: i64 = q(&mut m, &["INCR", "ctr"]);
    let _: () = q(&mut m, &["SELECT", "9"]);
    let _: i64 = q(&mut m, &["DEL", "nothing"]); // no effect: not propagated
    let _: i64 = q(&mut m, &["RPUSH", "l", "a"]);
    let _: i64 = q(&mut m, &["PUBLISH", "ch", "hi"]);
    assert_eq!(read_command(&mut rd), ["SELECT", "0"]);
    let set = read_command(&mut rd);
    assert_eq!(&set[..4], ["SET", "foo", "bar", "PXAT"]);
    assert_eq!(read_command(&mut rd), ["INCR", "ctr"]);
    assert_eq!(read_command(&mut rd), ["SELECT", "9"]);
    assert_eq!(read_command(&mut rd), ["RPUSH", "l", "a"]);
    // PUBLISH reaches replicas (not the AOF), as in Redis.
    assert_eq!(read_command(&mut rd), ["PUBLISH", "ch", "hi"]);
}

/// A disk-based full sync (the default `repl-diskless-load disabled`)
/// leaves the master's payload as the replica's dump.rdb, as Redis does,
/// and no temp file behind.
fn assert_sync_file_kept(replica: &Server) {
    let names: Vec<String> = std::fs::read_dir(&replica.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "dump.rdb"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("temp-")), "{names:?}");
}

/// The payload forms: a diskless Redis master sends `$EOF:<mark>`, a
/// disk-based one `$<len>`; our replica takes each to disk, or to memory
/// with `repl-diskless-load swapdb`.
#[test]
fn lodestone_replicates_from_redis_with_every_payload_form() {
    for (diskless_sync, load) in [("yes", "disabled"), ("no", "disabled"), ("no", "swapdb")] {
        let dir = common::TempDir::new("repl-redis-form");
        let Some(redis) = RealRedis::start(&[
            "--repl-diskless-sync",
            diskless_sync,
            "--repl-diskless-sync-delay",
            "0",
            "--dir",
            dir.str(),
        ]) else {
            return;
        };
        let replica = Server::start(&["--repl-diskless-load", load]);
        let (mut m, mut r) = (redis.client(), replica.client());
        fill(&mut m);
        attach(&mut r, redis.port);
        wait_synced(&mut m, &mut r);
        check_filled(&mut r);
        if load == "disabled" {
            assert_sync_file_kept(&replica);
        }
    }
}

/// With `repl-diskless-sync no` our master sends the `$<len>` form from a
/// temp file it removes afterwards.
#[test]
fn a_disk_based_sync_sends_the_length_form_from_a_spool_file() {
    let master = Server::start(&["--repl-diskless-sync", "no"]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    fill(&mut m);
    let big = "x".repeat(100_000);
    for i in 0..50 {
        let _: () = q(&mut m, &["SET", &format!("big{i}"), &big]);
    }
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    check_filled(&mut r);
    assert_eq!(q::<String>(&mut r, &["GET", "big49"]), big);
    let left: Vec<_> = std::fs::read_dir(&master.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn lodestone_replicates_from_redis() {
    let dir = common::TempDir::new("repl-redis-master");
    let Some(redis) = RealRedis::start(&["--repl-diskless-sync-delay", "0", "--dir", dir.str()])
    else {
        return;
    };
    let replica = Server::start(&[]);
    let (mut m, mut r) = (redis.client(), replica.client());
    fill(&mut m);
    attach(&mut r, redis.port);
    wait_synced(&mut m, &mut r);
    check_filled(&mut r);
    let _: i64 = q(&mut m, &["INCR", "n"]);
    let _: i64 = q(&mut m, &["SADD", "set", "4"]);
    let _: () = q(&mut m, &["SET", "e", "v", "EX", "100"]);
    wait_synced(&mut m, &mut r);
    assert_eq!(q::<i64>(&mut r, &["GET", "n"]), 12346);
    assert_eq!(q::<i64>(&mut r, &["SCARD", "set"]), 4);
    let ttl: i64 = q(&mut r, &["TTL", "e"]);
    assert!(ttl > 90, "ttl {ttl}");
    // Redis's WAIT counts our acknowledgements.
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "5000"]), 1);
}

#[test]
fn redis_replicates_from_lodestone() {
    let master = Server::start(&["--rdb-version", "10"]);
    let mut m = master.client();
    fill(&mut m);
    // The replica writes the RDB it receives: into a directory of its own.
    let dir = common::TempDir::new("repl-redis-replica");
    let port = master.port.to_string();
    let Some(redis) = RealRedis::start(&["--replicaof", "127.0.0.1", &port, "--dir", dir.str()])
    else {
        return;
    };
    let mut r = redis.client();
    wait_synced(&mut m, &mut r);
    check_filled(&mut r);
    let _: i64 = q(&mut m, &["INCR", "n"]);
    let _: i64 = q(&mut m, &["ZADD", "z", "7", "c"]);
    let _: () = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("l")
        .arg("first")
        .cmd("HDEL")
        .arg("h")
        .arg("f1")
        .query(&mut m)
        .unwrap();
    wait_synced(&mut m, &mut r);
    assert_eq!(q::<i64>(&mut r, &["GET", "n"]), 12346);
    assert_eq!(q::<String>(&mut r, &["ZSCORE", "z", "c"]), "7");
    assert_eq!(q::<String>(&mut r, &["LINDEX", "l", "0"]), "first");
    assert_eq!(q::<i64>(&mut r, &["HEXISTS", "h", "f1"]), 0);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "5000"]), 1);
    let slave0 = info_field(&mut m, "replication", "slave0");
    assert!(slave0.contains("state=online"), "{slave0}");
}

#[test]
fn stale_replicas_and_refused_transactions() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = q(&mut c, &["SET", "xx", "1"]);
    // EXEC of a queued write after min-replicas-to-write went up.
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["INCR", "xx"]);
    let mut admin = server.client();
    let _: () = q(&mut admin, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    let e = qerr(&mut c, &["EXEC"]);
    assert!(e.contains("EXECABORT") && e.contains("NOREPLICAS"), "{e}");
    assert_eq!(q::<i64>(&mut c, &["GET", "xx"]), 1);
    let _: () = q(&mut admin, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    // A replica whose master is unreachable, told not to serve stale data.
    let _: () = q(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    let dead = common::free_port().to_string();
    let _: String = q(&mut admin, &["REPLICAOF", "127.0.0.1", &dead]);
    let e = qerr(&mut c, &["GET", "xx"]);
    assert!(e.starts_with("MASTERDOWN"), "{e}");
    assert_eq!(
        info_field(&mut c, "replication", "master_link_status"),
        "down"
    );
    let _: String = q(&mut admin, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(q::<i64>(&mut c, &["GET", "xx"]), 1);
}

/// Opens a raw replica connection: REPLCONF capa eof, then PSYNC ? -1;
/// returns the reader positioned after the `+FULLRESYNC` line.
fn raw_replica(port: u16) -> BufReader<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"REPLCONF capa eof capa psync2\r\n").unwrap();
    let mut rd = BufReader::new(s);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    rd.get_mut().write_all(b"PSYNC ? -1\r\n").unwrap();
    line.clear();
    rd.read_line(&mut line).unwrap();
    assert!(line.starts_with("+FULLRESYNC "), "{line}");
    rd
}

/// Reads a diskless sync's `$EOF:<mark>` payload to its end mark;
/// returns its length.
fn read_eof_payload(rd: &mut BufReader<std::net::TcpStream>) -> usize {
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    let mark = line
        .trim()
        .strip_prefix("$EOF:")
        .unwrap()
        .as_bytes()
        .to_vec();
    assert_eq!(mark.len(), 40);
    let (mut tail, mut total) = (Vec::new(), 0usize);
    let mut buf = vec![0u8; 1 << 16];
    while !tail.ends_with(&mark) {
        let n = rd.read(&mut buf).unwrap();
        assert!(n > 0, "the master closed the sync after {total} bytes");
        total += n;
        tail.extend_from_slice(&buf[..n]);
        let keep = tail.len().saturating_sub(40);
        tail.drain(..keep);
    }
    total
}

/// The `state=` of INFO replication's slave0 line ("" when none).
fn replica_state(m: &mut redis::Connection) -> String {
    let s = info_field(m, "replication", "slave0");
    s.split(',')
        .find_map(|f| f.strip_prefix("state="))
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_replica_that_does_not_read_holds_back_its_sync_not_the_masters_memory() {
    let master = Server::start(&["--repl-diskless-sync", "yes", "--rdbcompression", "no"]);
    let mut m = master.client();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "40000", "k", "1000"]);
    let before = common::info_i64(&mut m, "memory", "used_memory");
    let mut rd = raw_replica(master.port);
    wait_for("the sync to start", || {
        replica_state(&mut m) == "wait_bgsave"
    });
    let list: String = q(&mut m, &["CLIENT", "LIST"]);
    assert!(list.lines().any(|l| l.contains(" flags=S ")), "{list}");
    // The replica reads nothing: the snapshot waits for its socket
    // instead of queueing the 40 MB payload in the master's memory.
    std::thread::sleep(Duration::from_millis(1500));
    let grown = common::info_i64(&mut m, "memory", "used_memory") - before;
    assert!(grown < 20 << 20, "the master grew by {grown} bytes");
    assert_eq!(replica_state(&mut m), "wait_bgsave");
    // Reading it all completes the sync.
    let total = read_eof_payload(&mut rd);
    assert!(total > 40_000_000, "{total}");
    wait_for("the replica to be online", || {
        replica_state(&mut m) == "online"
    });
}

#[test]
fn replicas_over_their_output_limit_are_dropped() {
    // While it syncs: the stream held for it counts.
    let master = Server::start(&["--rdb-key-save-delay", "100000"]);
    let mut m = master.client();
    let _: () = q(&mut m, &["DEBUG", "POPULATE", "100"]);
    let _: () = q(
        &mut m,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0",
        ],
    );
    let mut rd = raw_replica(master.port);
    wait_for("the sync to start", || {
        replica_state(&mut m) == "wait_bgsave"
    });
    let big = "x".repeat(600_000);
    let _: () = q(&mut m, &["SET", "a", &big]);
    assert_eq!(
        common::info_i64(&mut m, "replication", "connected_slaves"),
        1
    );
    let _: () = q(&mut m, &["SET", "b", &big]);
    wait_for("the replica to be dropped", || {
        common::info_i64(&mut m, "replication", "connected_slaves") == 0
    });
    let mut rest = Vec::new();
    let _ = rd.read_to_end(&mut rest);

    // Online: its output buffer counts, under the replica class.
    let _: () = q(&mut m, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let _: () = q(&mut m, &["FLUSHALL"]);
    let mut rd = raw_replica(master.port);
    read_eof_payload(&mut rd);
    wait_for("the replica to be online", || {
        replica_state(&mut m) == "online"
    });
    // It stops reading; the stream fills the socket, then its buffer.
    for i in 0..60 {
        let _: () = q(&mut m, &["SET", &format!("k{i}"), &big]);
        if common::info_i64(&mut m, "replication", "connected_slaves") == 0 {
            return;
        }
    }
    wait_for("the online replica to be dropped", || {
        common::info_i64(&mut m, "replication", "connected_slaves") == 0
    });
}

/// A master that becomes a replica ends every BLPOP-style wait with
/// Redis's UNBLOCKED error and closes those clients (Redis's
/// disconnectAllBlockedClients).
#[test]
fn blocked_clients_are_released_when_a_master_turns_replica() {
    let other = Server::start(&[]);
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.raw();
    w.send(b"BLPOP q 0\r\n");
    common::wait_blocked(&mut c, 1);
    attach(&mut c, other.port);
    let got = w.read_to_close();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
    );
    assert_eq!(common::blocked_clients(&mut c), 0);
    // The ended call counts as failed, and its error in errorstats.
    let stats: String = q(&mut c, &["INFO", "commandstats"]);
    assert!(
        stats.contains("cmdstat_blpop:calls=1,") && stats.contains("failed_calls=1"),
        "{stats}"
    );
    assert_eq!(
        common::info_field(&mut c, "errorstats", "errorstat_UNBLOCKED"),
        "count=1"
    );
}
