//! FAILOVER (Redis 6.2's coordinated failover) between real servers: the
//! roles swap, the old master continues with a partial sync, TO / any
//! replica, TIMEOUT, FORCE, ABORT, a target that refuses PSYNC, the error
//! replies, and the handshake against a real redis-server both ways.

mod common;

use common::{attach, info_field, info_i64, q, qerr, wait_for, wait_synced, RealRedis, Server};
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

fn failover_state(c: &mut redis::Connection) -> String {
    info_field(c, "replication", "master_failover_state")
}

fn role(c: &mut redis::Connection) -> String {
    info_field(c, "replication", "role")
}

fn stat(c: &mut redis::Connection, name: &str) -> i64 {
    info_i64(c, "stats", name)
}

fn digest(c: &mut redis::Connection) -> String {
    q(c, &["DEBUG", "DIGEST"])
}

/// SIGSTOP / SIGCONT, as the Redis suite's pause_process: a stopped
/// replica never acknowledges.
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

fn fill(c: &mut redis::Connection, prefix: &str, n: usize) {
    for i in 0..n {
        let _: () = q(c, &["SET", &format!("{prefix}{i}"), &i.to_string()]);
    }
    let _: i64 = q(c, &["RPUSH", &format!("{prefix}list"), "a", "b"]);
}

/// Sends one command on a raw connection and reads its one-line reply.
fn raw_line(port: u16, cmd: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(cmd).unwrap();
    let mut rd = BufReader::new(s);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn errors_pause_and_abort() {
    let master = Server::start(&[]);
    let replica = Server::start(&[]);
    let (mut m, mut r) = (master.client(), replica.client());
    let e = qerr(&mut m, &["FAILOVER"]);
    assert_eq!(e, "ERR FAILOVER requires connected replicas.");
    let e = qerr(
        &mut m,
        &["FAILOVER", "TO", "127.0.0.1", &replica.port.to_string()],
    );
    assert_eq!(e, "ERR FAILOVER requires connected replicas.");
    assert_eq!(
        qerr(&mut m, &["FAILOVER", "ABORT"]),
        "ERR No failover in progress."
    );
    // Syntax and argument errors come before the state checks.
    for args in [
        &["FAILOVER", "BOGUS"][..],
        &["FAILOVER", "ABORT", "TIMEOUT", "10"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "TO", "h", "1", "TO", "h", "2"],
        &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "6"],
        &["FAILOVER", "TO", "h"],
        &["FAILOVER", "TIMEOUT"],
    ] {
        assert!(
            qerr(&mut m, args).starts_with("ERR syntax error"),
            "{args:?}"
        );
    }
    for t in ["0", "-5"] {
        let e = qerr(&mut m, &["FAILOVER", "TIMEOUT", t]);
        assert_eq!(e, "ERR FAILOVER timeout must be greater than 0");
    }
    let e = qerr(&mut m, &["FAILOVER", "TIMEOUT", "x"]);
    assert_eq!(e, "ERR value is not an integer or out of range");
    let e = qerr(&mut m, &["FAILOVER", "TO", "127.0.0.1", "port"]);
    assert_eq!(e, "ERR value is not an integer or out of range");

    let _: () = q(&mut m, &["SET", "k", "v"]);
    attach(&mut r, master.port);
    wait_synced(&mut m, &mut r);
    let rport = replica.port.to_string();
    let e = qerr(&mut m, &["FAILOVER", "TO", "invalidhost", &rport]);
    assert_eq!(e, "ERR FAILOVER target HOST and PORT is not a replica.");
    let e = qerr(&mut m, &["FAILOVER", "TO", "127.0.0.1", "99999"]);
    assert_eq!(e, "ERR FAILOVER target HOST and PORT is not a replica.");
    let e = qerr(&mut m, &["FAILOVER", "FORCE", "TIMEOUT", "100"]);
    assert_eq!(
        e,
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    );
    let e = qerr(&mut m, &["FAILOVER", "TO", "127.0.0.1", &rport, "FORCE"]);
    assert!(e.starts_with("ERR FAILOVER with force option"), "{e}");
    let e = qerr(&mut r, &["FAILOVER", "TO", "127.0.0.1", &rport]);
    assert_eq!(e, "ERR FAILOVER is not valid when server is a replica.");
    // PSYNC ... FAILOVER to a master, or with another history.
    let e = raw_line(master.port, b"PSYNC abc 1 FAILOVER\r\n");
    assert_eq!(e, "-ERR PSYNC FAILOVER can't be sent to a master.");
    let e = raw_line(replica.port, b"PSYNC abc 1 FAILOVER\r\n");
    assert_eq!(e, "-ERR PSYNC FAILOVER replid must match my replid.");
    assert_eq!(role(&mut r), "slave");

    // A stopped replica never catches up: the failover waits, writes wait.
    let full = stat(&mut m, "sync_full");
    let partial = stat(&mut m, "sync_partial_ok");
    signal(replica.pid(), "-STOP");
    let _: () = q(&mut m, &["SET", "k", "v2"]);
    let ok: String = q(
        &mut m,
        &["FAILOVER", "TO", "127.0.0.1", &rport, "TIMEOUT", "60000"],
    );
    assert_eq!(ok, "OK");
    assert_eq!(failover_state(&mut m), "waiting-for-sync");
    let e = qerr(&mut m, &["FAILOVER"]);
    assert_eq!(e, "ERR FAILOVER already in progress.");
    let e = qerr(&mut m, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(e, "ERR REPLICAOF not allowed while failing over.");
    let e = raw_line(master.port, b"PSYNC ? -1\r\n");
    assert_eq!(e, "-NOMASTERLINK Can't SYNC while failing over");
    // Reads go on; a write is held (CLIENT UNPAUSE does not lift it).
    let mut writer = std::net::TcpStream::connect(("127.0.0.1", master.port)).unwrap();
    writer
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    writer.write_all(b"SET held yes\r\n").unwrap();
    let _: () = q(&mut m, &["CLIENT", "UNPAUSE"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(q::<String>(&mut m, &["GET", "k"]), "v2");
    assert_eq!(q::<Option<String>>(&mut m, &["GET", "held"]), None);
    let ok: String = q(&mut m, &["FAILOVER", "ABORT"]);
    assert_eq!(ok, "OK");
    assert_eq!(failover_state(&mut m), "no-failover");
    let mut rd = BufReader::new(writer);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line, "+OK\r\n");
    assert_eq!(q::<String>(&mut m, &["GET", "held"]), "yes");
    signal(replica.pid(), "-CONT");
    wait_synced(&mut m, &mut r);
    assert_eq!(role(&mut m), "master");
    assert_eq!(role(&mut r), "slave");
    assert_eq!(q::<String>(&mut r, &["GET", "held"]), "yes");
    // The link was never cut: no sync of either kind.
    assert_eq!(stat(&mut m, "sync_full"), full);
    assert_eq!(stat(&mut m, "sync_partial_ok"), partial);
    assert_eq!(digest(&mut m), digest(&mut r));
}

#[test]
fn failover_to_a_named_replica_then_to_any() {
    let (n0, n1, n2) = (Server::start(&[]), Server::start(&[]), Server::start(&[]));
    let (mut c0, mut c1, mut c2) = (n0.client(), n1.client(), n2.client());
    fill(&mut c0, "a", 50);
    attach(&mut c1, n0.port);
    attach(&mut c2, n0.port);
    wait_synced(&mut c0, &mut c1);
    wait_synced(&mut c0, &mut c2);
    let (full1, part1) = (stat(&mut c1, "sync_full"), stat(&mut c1, "sync_partial_ok"));

    // Writes keep coming while the failover runs: the ones accepted
    // before the pause reach the new master; later ones fail (READONLY).
    let port0 = n0.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port0}/"))
                .unwrap()
                .get_connection()
                .unwrap();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(format!("load{i}"))
                    .arg(i)
                    .query(&mut c);
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    fail_over_to(&mut c0, n1.port);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(role(&mut c0), "slave");
    assert_eq!(
        info_field(&mut c0, "replication", "master_port"),
        n1.port.to_string()
    );
    assert_eq!(role(&mut c1), "master");
    let e = qerr(&mut c0, &["SET", "x", "1"]);
    assert!(e.starts_with("READONLY"), "{e}");
    attach(&mut c2, n1.port);
    wait_synced(&mut c1, &mut c0);
    wait_synced(&mut c1, &mut c2);
    // Both followers continued: two partial syncs, no full one.
    assert_eq!(stat(&mut c1, "sync_partial_ok") - part1, 2);
    assert_eq!(stat(&mut c1, "sync_full") - full1, 0);
    assert_eq!(q::<String>(&mut c1, &["GET", "a49"]), "49");
    let _: () = q(&mut c1, &["SET", "after", "1"]);
    wait_synced(&mut c1, &mut c0);
    wait_synced(&mut c1, &mut c2);
    let d = digest(&mut c1);
    assert_eq!(digest(&mut c0), d);
    assert_eq!(digest(&mut c2), d);

    // FAILOVER without TO picks a replica that caught up: node 0 is
    // stopped, so node 2.
    let (full2, part2) = (stat(&mut c2, "sync_full"), stat(&mut c2, "sync_partial_ok"));
    signal(n0.pid(), "-STOP");
    let _: () = q(&mut c1, &["SET", "case", "1"]);
    let ok: String = q(&mut c1, &["FAILOVER"]);
    assert_eq!(ok, "OK");
    wait_for("the failover to end", || {
        failover_state(&mut c1) == "no-failover"
    });
    signal(n0.pid(), "-CONT");
    assert_eq!(role(&mut c1), "slave");
    assert_eq!(role(&mut c2), "master");
    attach(&mut c0, n2.port);
    wait_synced(&mut c2, &mut c0);
    wait_synced(&mut c2, &mut c1);
    assert_eq!(stat(&mut c2, "sync_partial_ok") - part2, 2);
    assert_eq!(stat(&mut c2, "sync_full") - full2, 0);
    assert_eq!(q::<String>(&mut c0, &["GET", "case"]), "1");
    let d = digest(&mut c2);
    assert_eq!(digest(&mut c0), d);
    assert_eq!(digest(&mut c1), d);
}

#[test]
fn force_fails_over_to_a_replica_that_never_caught_up() {
    let (n0, n1) = (Server::start(&[]), Server::start(&[]));
    let (mut c0, mut c1) = (n0.client(), n1.client());
    fill(&mut c0, "f", 20);
    attach(&mut c1, n0.port);
    wait_synced(&mut c0, &mut c1);
    signal(n1.pid(), "-STOP");
    let _: () = q(&mut c0, &["SET", "case", "2"]);
    let p1 = n1.port.to_string();
    let ok: String = q(
        &mut c0,
        &[
            "FAILOVER",
            "TO",
            "127.0.0.1",
            &p1,
            "TIMEOUT",
            "100",
            "FORCE",
        ],
    );
    assert_eq!(ok, "OK");
    wait_for("the forced failover", || {
        failover_state(&mut c0) == "failover-in-progress"
    });
    // Never two masters: node 0 is already a replica.
    assert_eq!(role(&mut c0), "slave");
    signal(n1.pid(), "-CONT");
    wait_for("the failover to end", || {
        failover_state(&mut c0) == "no-failover"
    });
    assert_eq!(role(&mut c1), "master");
    wait_synced(&mut c1, &mut c0);
    assert_eq!(q::<String>(&mut c1, &["GET", "case"]), "2");
    assert_eq!(digest(&mut c0), digest(&mut c1));
}

#[test]
fn timeout_aborts_and_writes_resume() {
    let (n0, n1) = (Server::start(&[]), Server::start(&[]));
    let (mut c0, mut c1) = (n0.client(), n1.client());
    attach(&mut c1, n0.port);
    wait_synced(&mut c0, &mut c1);
    let (full, part) = (stat(&mut c0, "sync_full"), stat(&mut c0, "sync_partial_ok"));
    signal(n1.pid(), "-STOP");
    let _: () = q(&mut c0, &["SET", "case", "1"]);
    let p1 = n1.port.to_string();
    let ok: String = q(
        &mut c0,
        &["FAILOVER", "TO", "127.0.0.1", &p1, "TIMEOUT", "300"],
    );
    assert_eq!(ok, "OK");
    wait_for("the timeout", || failover_state(&mut c0) == "no-failover");
    assert_eq!(role(&mut c0), "master");
    let _: () = q(&mut c0, &["SET", "after", "1"]);
    signal(n1.pid(), "-CONT");
    wait_synced(&mut c0, &mut c1);
    assert_eq!(role(&mut c1), "slave");
    assert_eq!(stat(&mut c0, "sync_full"), full);
    assert_eq!(stat(&mut c0, "sync_partial_ok"), part);
    assert_eq!(digest(&mut c0), digest(&mut c1));
}

#[test]
fn a_target_that_refuses_psync_aborts_the_failover() {
    let (n0, n1) = (Server::start(&[]), Server::start(&[]));
    let (mut c0, mut c1) = (n0.client(), n1.client());
    let _: () = q(&mut c0, &["SET", "k", "v"]);
    attach(&mut c1, n0.port);
    wait_synced(&mut c0, &mut c1);
    let (full, part) = (stat(&mut c0, "sync_full"), stat(&mut c0, "sync_partial_ok"));
    let _: () = q(&mut c1, &["ACL", "SETUSER", "default", "-psync"]);
    let ok: String = q(
        &mut c0,
        &["FAILOVER", "TO", "127.0.0.1", &n1.port.to_string()],
    );
    assert_eq!(ok, "OK");
    wait_for("the abort", || {
        failover_state(&mut c0) == "no-failover" && role(&mut c0) == "master"
    });
    assert_eq!(role(&mut c1), "slave");
    let _: () = q(&mut c0, &["SET", "after", "1"]);
    // Back to master under a new id: the replica was cut and continued.
    wait_synced(&mut c0, &mut c1);
    assert_eq!(stat(&mut c0, "sync_partial_ok") - part, 1);
    assert_eq!(stat(&mut c0, "sync_full"), full);
    assert_eq!(q::<String>(&mut c1, &["GET", "after"]), "1");
}

/// FAILOVER TO the replica on `port`, then waits for it to end.
fn fail_over_to(from: &mut redis::Connection, port: u16) {
    let ok: String = q(from, &["FAILOVER", "TO", "127.0.0.1", &port.to_string()]);
    assert_eq!(ok, "OK");
    wait_for("the failover to end", || {
        failover_state(from) == "no-failover"
    });
}

/// FAILOVER TO `to_port` on `from`: waits for it to end, checks that the
/// roles swapped and that the new replica caught up.
fn hand_over(from: &mut redis::Connection, to: &mut redis::Connection, to_port: u16) {
    fail_over_to(from, to_port);
    assert_eq!(role(to), "master");
    assert_eq!(role(from), "slave");
    wait_synced(to, from);
}

#[test]
fn failover_between_lodestone_and_redis_both_ways() {
    let dir = common::TempDir::new("failover-redis");
    let Some(redis) = RealRedis::start(&["--repl-diskless-sync-delay", "0", "--dir", dir.str()])
    else {
        return;
    };
    let lode = Server::start(&[]);
    let (mut rc, mut lc) = (redis.client(), lode.client());
    fill(&mut rc, "r", 20);
    attach(&mut lc, redis.port);
    wait_synced(&mut rc, &mut lc);
    // After a diskless sync Redis counts a replica online from its
    // first ACK.
    wait_for("Redis to see us online", || {
        info_field(&mut rc, "replication", "slave0").contains("state=online")
    });
    // Redis hands over to us: we take its history, it continues.
    hand_over(&mut rc, &mut lc, lode.port);
    assert_eq!(stat(&mut lc, "sync_partial_ok"), 1);
    assert_eq!(stat(&mut lc, "sync_full"), 0);
    let _: () = q(&mut lc, &["SET", "from-lodestone", "1"]);
    wait_synced(&mut lc, &mut rc);
    assert_eq!(q::<String>(&mut rc, &["GET", "from-lodestone"]), "1");
    // And back: we hand over to Redis and follow it partially.
    let redis_full = stat(&mut rc, "sync_full");
    hand_over(&mut lc, &mut rc, redis.port);
    assert_eq!(
        info_field(&mut lc, "replication", "master_link_status"),
        "up"
    );
    let _: () = q(&mut rc, &["SET", "from-redis", "1"]);
    wait_synced(&mut rc, &mut lc);
    assert_eq!(q::<String>(&mut lc, &["GET", "from-redis"]), "1");
    assert_eq!(q::<String>(&mut lc, &["GET", "r19"]), "19");
    assert_eq!(stat(&mut rc, "sync_full"), redis_full);
    assert_eq!(stat(&mut rc, "sync_partial_ok"), 1);
}

#[test]
fn the_stream_db_survives_reconnections_and_promotions() {
    let (n0, n1) = (Server::start(&[]), Server::start(&[]));
    let (mut c0, mut c1) = (n0.client(), n1.client());
    attach(&mut c1, n0.port);
    wait_synced(&mut c0, &mut c1);
    let _: () = q(&mut c0, &["SELECT", "5"]);
    let _: () = q(&mut c0, &["SET", "a", "1"]);
    wait_synced(&mut c0, &mut c1);
    // A partial resync continues the stream in db 5, without a SELECT.
    let part = stat(&mut c0, "sync_partial_ok");
    let killed: i64 = q(&mut c0, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    let _: () = q(&mut c0, &["SET", "b", "2"]);
    wait_for("a partial resync", || {
        stat(&mut c0, "sync_partial_ok") == part + 1
    });
    wait_synced(&mut c0, &mut c1);
    let _: () = q(&mut c1, &["SELECT", "5"]);
    assert_eq!(q::<String>(&mut c1, &["GET", "b"]), "2");
    // The promoted replica's stream starts with a SELECT for its follower.
    fail_over_to(&mut c0, n1.port);
    assert_eq!(role(&mut c1), "master");
    let _: () = q(&mut c1, &["SET", "c", "3"]);
    wait_synced(&mut c1, &mut c0);
    assert_eq!(q::<String>(&mut c0, &["GET", "c"]), "3");
    let _: () = q(&mut c0, &["SELECT", "0"]);
    assert_eq!(q::<i64>(&mut c0, &["DBSIZE"]), 0);
    assert_eq!(digest(&mut c0), digest(&mut c1));
}
