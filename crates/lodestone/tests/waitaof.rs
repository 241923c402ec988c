//! WAITAOF (and WAIT, which shares its blocking path): argument errors,
//! the local fsync under each appendfsync policy, timeouts, MULTI and
//! scripts, CLIENT UNBLOCK, the AOF turned off under a waiter, replicas
//! acknowledging their fsyncs with REPLCONF ACK .. FACK, and a master
//! demoted under a waiter.

mod common;

use common::{info_field, q, qerr, req, wait_blocked, wait_for, Server};
use std::time::{Duration, Instant};

/// Waits until no AOF rewrite is running or scheduled.
fn wait_rewrite_done(c: &mut redis::Connection) {
    wait_for("the AOF rewrite", || {
        info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
    });
}

fn waitaof(c: &mut redis::Connection, local: &str, replicas: &str, ms: &str) -> Vec<i64> {
    q(c, &["WAITAOF", local, replicas, ms])
}

/// Reads one reply line (without its CRLF) from a raw connection.
fn read_line(raw: &mut common::Raw) -> String {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = raw.read_exact_n(1);
        assert!(!b.is_empty(), "connection closed after {line:?}");
        line.extend(b);
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).unwrap()
}

#[test]
fn argument_errors_and_where_waitaof_is_refused() {
    let s = Server::start(&["--appendonly", "no"]);
    let mut c = s.client();
    let e = qerr(&mut c, &["WAITAOF", "2", "0", "0"]);
    assert!(
        e.contains("value is out of range, value must between 0 and 1"),
        "{e}"
    );
    let e = qerr(&mut c, &["WAITAOF", "-1", "0", "0"]);
    assert!(e.contains("value must between 0 and 1"), "{e}");
    let e = qerr(&mut c, &["WAITAOF", "x", "0", "0"]);
    assert!(e.contains("value is not an integer or out of range"), "{e}");
    let e = qerr(&mut c, &["WAITAOF", "0", "-1", "0"]);
    assert!(e.contains("value is out of range, must be positive"), "{e}");
    let e = qerr(&mut c, &["WAITAOF", "0", "0", "-1"]);
    assert!(e.contains("timeout is negative"), "{e}");
    let e = qerr(&mut c, &["WAITAOF", "0", "0", "1.5"]);
    assert!(
        e.contains("timeout is not an integer or out of range"),
        "{e}"
    );
    let e = qerr(&mut c, &["WAITAOF", "0", "0", "9223372036854775807"]);
    assert!(e.contains("timeout is out of range"), "{e}");
    let e = qerr(&mut c, &["WAIT", "0", "9223372036854775807"]);
    assert!(e.contains("timeout is out of range"), "{e}");
    let e = qerr(&mut c, &["WAITAOF", "0", "0"]);
    assert!(e.contains("wrong number of arguments"), "{e}");
    // numlocal needs the AOF; numlocal 0 does not.
    let e = qerr(&mut c, &["WAITAOF", "1", "0", "0"]);
    assert_eq!(
        e,
        "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    );
    let _: i64 = q(&mut c, &["INCR", "k"]);
    assert_eq!(waitaof(&mut c, "0", "0", "0"), [0, 0]);
    // Scripts may not call it (noscript).
    let e = qerr(
        &mut c,
        &["EVAL", "return redis.call('waitaof', 0, 0, 0)", "0"],
    );
    assert!(e.contains("not allowed from script"), "{e}");
    // The command table row: arity 4, noscript, @connection.
    let info: redis::Value = q(&mut c, &["COMMAND", "INFO", "waitaof"]);
    let text = format!("{info:?}");
    assert!(text.contains("int(4)") || text.contains("Int(4)"), "{text}");
    assert!(text.contains("noscript"), "{text}");
    assert!(text.contains("@connection"), "{text}");
}

#[test]
fn local_fsync_under_each_policy() {
    let s = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.client();
    wait_rewrite_done(&mut c);
    // A client that never wrote has nothing to wait for.
    assert_eq!(waitaof(&mut c, "1", "0", "0"), [1, 0]);
    // always: the write was fsynced before its reply.
    let _: i64 = q(&mut c, &["INCR", "k"]);
    assert_eq!(waitaof(&mut c, "1", "0", "0"), [1, 0]);
    // everysec: the background fsync comes within about a second.
    let _: () = q(&mut c, &["CONFIG", "SET", "appendfsync", "everysec"]);
    let _: i64 = q(&mut c, &["INCR", "k"]);
    assert_eq!(waitaof(&mut c, "1", "0", "20000"), [1, 0]);
    // no: nothing fsyncs, so the wait ends with the timeout, as in Redis.
    let _: () = q(&mut c, &["CONFIG", "SET", "appendfsync", "no"]);
    let _: i64 = q(&mut c, &["INCR", "k"]);
    let t = Instant::now();
    assert_eq!(waitaof(&mut c, "1", "0", "200"), [0, 0]);
    assert!(t.elapsed() >= Duration::from_millis(150));
    // Inside MULTI it never blocks: it answers with what holds now.
    let r: redis::Value = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("k")
        .cmd("WAITAOF")
        .arg(1)
        .arg(0)
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert!(
        format!("{r:?}").contains("int(0), int(0)") || format!("{r:?}").contains("Int(0), Int(0)"),
        "{r:?}"
    );
    // A rewrite syncs the old incr file: the pending writes count then.
    let _: String = q(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    assert_eq!(waitaof(&mut c, "1", "0", "20000"), [1, 0]);
    // Back to always, with a replica asked for that never comes.
    let _: () = q(&mut c, &["CONFIG", "SET", "appendfsync", "always"]);
    let _: i64 = q(&mut c, &["INCR", "k"]);
    let t = Instant::now();
    assert_eq!(waitaof(&mut c, "1", "1", "300"), [1, 0]);
    assert!(t.elapsed() >= Duration::from_millis(250));
    // The offset moves with the AOF on even without replicas (Redis).
    let off: i64 = info_field(&mut c, "replication", "master_repl_offset")
        .parse()
        .unwrap();
    assert!(off > 0, "master_repl_offset {off}");
}

#[test]
fn blocked_waiters_unblocked_timed_out_and_refused() {
    let s = Server::start(&["--appendonly", "yes", "--appendfsync", "no"]);
    let mut c = s.client();
    wait_rewrite_done(&mut c);
    let mut raw = s.raw();
    raw.s
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    raw.send(&req(&[b"CLIENT", b"ID"]));
    let id = read_line(&mut raw)[1..].to_string();
    raw.roundtrip(&req(&[b"INCR", b"k"]), b":1\r\n");

    // CLIENT UNBLOCK: the counts at that moment.
    raw.send(&req(&[b"WAITAOF", b"1", b"0", b"0"]));
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["CLIENT", "UNBLOCK", &id]), 1);
    raw.roundtrip(b"", b"*2\r\n:0\r\n:0\r\n");
    wait_blocked(&mut c, 0);

    // CLIENT UNBLOCK ... ERROR.
    raw.send(&req(&[b"WAITAOF", b"1", b"0", b"0"]));
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["CLIENT", "UNBLOCK", &id, "ERROR"]), 1);
    raw.roundtrip(b"", b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");

    // WAIT parks the same way (no replicas: never satisfied).
    raw.send(&req(&[b"WAIT", b"1", b"0"]));
    wait_blocked(&mut c, 1);
    assert_eq!(q::<i64>(&mut c, &["CLIENT", "UNBLOCK", &id]), 1);
    raw.roundtrip(b"", b":0\r\n");

    // The AOF turned off under a waiter that needs it: Redis's error.
    raw.send(&req(&[b"WAITAOF", b"1", b"0", b"0"]));
    wait_blocked(&mut c, 1);
    let _: () = q(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    raw.roundtrip(
        b"",
        b"-ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.\r\n",
    );
    wait_blocked(&mut c, 0);
    raw.roundtrip(&req(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(
        info_field(&mut c, "commandstats", "cmdstat_waitaof")
            .split(',')
            .next(),
        Some("calls=3")
    );
}

#[test]
fn replicas_acknowledge_their_fsyncs() {
    let master = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let replica = Server::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let (mut m, mut r) = (master.client(), replica.client());
    wait_rewrite_done(&mut m);
    let _: String = q(
        &mut r,
        &["REPLICAOF", "127.0.0.1", &master.port.to_string()],
    );
    wait_for("link up", || {
        info_field(&mut r, "replication", "master_link_status") == "up"
    });
    wait_rewrite_done(&mut r);
    let e = qerr(&mut r, &["WAITAOF", "0", "0", "0"]);
    assert_eq!(e, "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.");

    // everysec on the replica: its FACK follows within about a second.
    let _: i64 = q(&mut m, &["INCR", "k"]);
    assert_eq!(waitaof(&mut m, "1", "1", "20000"), [1, 1]);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "20000"]), 1);

    // always on the replica.
    let _: () = q(&mut r, &["CONFIG", "SET", "appendfsync", "always"]);
    let _: i64 = q(&mut m, &["INCR", "k"]);
    assert_eq!(waitaof(&mut m, "1", "1", "20000"), [1, 1]);

    // appendfsync no on the replica: applied (WAIT counts it), never
    // fsynced (WAITAOF does not).
    let _: () = q(&mut r, &["CONFIG", "SET", "appendfsync", "no"]);
    let _: i64 = q(&mut m, &["INCR", "k"]);
    assert_eq!(q::<i64>(&mut m, &["WAIT", "1", "20000"]), 1);
    assert_eq!(waitaof(&mut m, "1", "1", "300"), [1, 0]);

    // appendonly no on the replica: it sends no FACK, so it never counts.
    let _: () = q(&mut r, &["CONFIG", "SET", "appendfsync", "always"]);
    let _: () = q(&mut r, &["CONFIG", "SET", "appendonly", "no"]);
    let _: i64 = q(&mut m, &["INCR", "k"]);
    assert_eq!(waitaof(&mut m, "1", "1", "300"), [1, 0]);
    assert_eq!(waitaof(&mut m, "1", "0", "0"), [1, 0]);

    // Turned on again: counted once its first base is written.
    let _: () = q(&mut r, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite_done(&mut r);
    let _: i64 = q(&mut m, &["INCR", "k"]);
    assert_eq!(waitaof(&mut m, "1", "1", "20000"), [1, 1]);

    // A blocked waiter on a master that becomes a replica gets Redis's
    // error.
    let mut raw = master.raw();
    raw.s
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    raw.send(&req(&[b"INCR", b"k"]));
    read_line(&mut raw);
    raw.send(&req(&[b"WAITAOF", b"0", b"2", b"0"]));
    wait_blocked(&mut m, 1);
    let nobody = common::free_port().to_string();
    let _: String = q(&mut m, &["REPLICAOF", "127.0.0.1", &nobody]);
    assert_eq!(
        read_line(&mut raw),
        "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)"
    );
    wait_blocked(&mut m, 0);
}
