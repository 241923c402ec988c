//! Blocking commands across connections served by different threads:
//! wake-ups, FIFO order, timeouts, CLIENT UNBLOCK, MULTI and INFO.

mod common;

use common::{blocked_clients, wait_blocked, Server};
use redis::cmd;
use std::time::{Duration, Instant};

#[test]
fn blpop_is_served_by_a_push_from_another_thread() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    let mut waiters = Vec::new();
    for i in 0..4 {
        let mut w = s.raw();
        w.send(format!("BLPOP q{} q 0\r\n", i).as_bytes());
        wait_blocked(&mut c, i + 1);
        waiters.push(w);
    }
    // One push per waiter: served in the order they blocked (FIFO per key).
    for i in 0..4 {
        let _: i64 = cmd("RPUSH")
            .arg("q")
            .arg(format!("v{i}"))
            .query(&mut c)
            .unwrap();
    }
    for (i, w) in waiters.iter_mut().enumerate() {
        let expect = format!("*2\r\n$1\r\nq\r\n$2\r\nv{i}\r\n");
        assert_eq!(
            String::from_utf8_lossy(&w.read_exact_n(expect.len())),
            expect
        );
    }
    wait_blocked(&mut c, 0);
    assert_eq!(cmd("EXISTS").arg("q").query::<i64>(&mut c).unwrap(), 0);
}

#[test]
fn timeouts_unblock_and_multi() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut w = s.raw();
    let t = Instant::now();
    w.roundtrip(b"BRPOP nothing 0.2\r\n", b"*-1\r\n");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
    w.roundtrip(b"BLMOVE a b LEFT RIGHT 0.05\r\n", b"$-1\r\n");
    w.roundtrip(b"BLPOP x -1\r\n", b"-ERR timeout is negative\r\n");
    // CLIENT UNBLOCK with ERROR.
    let id: i64 = {
        w.send(b"CLIENT ID\r\n");
        let r = String::from_utf8(w.read_exact_n(4)).unwrap();
        r.trim_start_matches(':')
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                let more = String::from_utf8(w.read_exact_n(2)).unwrap();
                format!("{r}{more}")
                    .trim_start_matches(':')
                    .trim()
                    .parse()
                    .unwrap()
            })
    };
    w.send(b"BLPOP k 0\r\n");
    wait_blocked(&mut c, 1);
    let n: i64 = cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .arg("ERROR")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let expect = b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
    assert_eq!(w.read_exact_n(expect.len()), expect);
    // Inside MULTI a blocking pop does not block.
    let mut m = s.raw();
    m.roundtrip(
        b"MULTI\r\nBLPOP k 0\r\nEXEC\r\n",
        b"+OK\r\n+QUEUED\r\n*1\r\n*-1\r\n",
    );
}

#[test]
fn bzpopmin_and_blmpop() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    let mut w = s.raw();
    w.send(b"BZPOPMIN z1 z2 0\r\n");
    wait_blocked(&mut c, 1);
    let _: i64 = cmd("ZADD").arg("z2").arg(5).arg("m").query(&mut c).unwrap();
    let expect = b"*3\r\n$2\r\nz2\r\n$1\r\nm\r\n$1\r\n5\r\n";
    assert_eq!(w.read_exact_n(expect.len()), expect);
    w.send(b"BLMPOP 0 2 l1 l2 LEFT COUNT 2\r\n");
    wait_blocked(&mut c, 1);
    let _: i64 = cmd("RPUSH")
        .arg("l2")
        .arg("a")
        .arg("b")
        .arg("c")
        .query(&mut c)
        .unwrap();
    let expect = b"*2\r\n$2\r\nl2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n";
    assert_eq!(w.read_exact_n(expect.len()), expect);
    assert_eq!(cmd("LLEN").arg("l2").query::<i64>(&mut c).unwrap(), 1);
}

#[test]
fn a_disconnected_waiter_leaves_no_trace() {
    let s = Server::start(&[]);
    let mut c = s.client();
    {
        let mut w = s.raw();
        w.send(b"BLPOP gone 0\r\n");
        wait_blocked(&mut c, 1);
    }
    wait_blocked(&mut c, 0);
    let _: i64 = cmd("LPUSH").arg("gone").arg("x").query(&mut c).unwrap();
    assert_eq!(cmd("LLEN").arg("gone").query::<i64>(&mut c).unwrap(), 1);
}

/// Redis's "bug 593" chain: a served client whose next pipelined command
/// parks again on the key it was just served from, then disconnects. The
/// writer still walking that key's queue must not claim the new wait for a
/// service that cannot happen (the key is empty): the disconnect has to
/// leave no parked client behind.
#[test]
fn a_client_that_parks_again_and_disconnects_leaves_no_trace() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    for _ in 0..30 {
        let _: i64 = cmd("DEL").arg("a").arg("b").arg("c").query(&mut c).unwrap();
        let mut w1 = s.raw();
        let mut w2 = s.raw();
        w1.send(b"BRPOPLPUSH a b 0\r\nBRPOPLPUSH a b 0\r\n");
        wait_blocked(&mut c, 1);
        w2.send(b"BRPOPLPUSH b c 0\r\n");
        wait_blocked(&mut c, 2);
        let _: i64 = cmd("LPUSH").arg("a").arg("data").query(&mut c).unwrap();
        drop(w1);
        drop(w2);
        wait_blocked(&mut c, 0);
        assert_eq!(
            cmd("LRANGE")
                .arg("c")
                .arg(0)
                .arg(-1)
                .query::<Vec<String>>(&mut c)
                .unwrap(),
            ["data"]
        );
    }
}

/// Keys made ready while waiters are served (BRPOPLPUSH pushing to its
/// destination) are served after the keys already ready, as in Redis: the
/// client waiting on two keys must not take l2's element from the client
/// that blocked on l2 before it.
#[test]
fn keys_readied_by_a_service_wait_their_turn() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    let mut rd1 = s.raw();
    let mut rd2 = s.raw();
    let mut rd3 = s.raw();
    rd1.send(b"BRPOPLPUSH l1 l3 0\r\n");
    wait_blocked(&mut c, 1);
    rd2.send(b"BLPOP l2 0\r\n");
    wait_blocked(&mut c, 2);
    rd3.send(b"BLMPOP 0 2 l2 l3 LEFT COUNT 1\r\n");
    wait_blocked(&mut c, 3);
    let _: () = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("l1")
        .arg("1")
        .ignore()
        .cmd("LPUSH")
        .arg("l2")
        .arg("2")
        .ignore()
        .query(&mut c)
        .unwrap();
    wait_blocked(&mut c, 0);
    let want1 = b"$1\r\n1\r\n";
    assert_eq!(rd1.read_exact_n(want1.len()), want1);
    let want2 = b"*2\r\n$2\r\nl2\r\n$1\r\n2\r\n";
    assert_eq!(rd2.read_exact_n(want2.len()), want2);
    let want3 = b"*2\r\n$2\r\nl3\r\n*1\r\n$1\r\n1\r\n";
    assert_eq!(rd3.read_exact_n(want3.len()), want3);
}

/// A blocking command is counted once in INFO commandstats, when its wait
/// ends (served, timed out or unblocked), not when its client parks.
#[test]
fn blocking_commands_are_counted_when_the_wait_ends() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let calls = |c: &mut redis::Connection, name: &str| -> String {
        let info: String = cmd("INFO").arg("commandstats").query(c).unwrap();
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .map(|l| {
                l.split(',')
                    .filter(|f| f.contains("calls=") && !f.contains("usec"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let _: () = cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let mut w = s.raw();
    w.send(b"BLPOP q 0\r\n");
    wait_blocked(&mut c, 1);
    assert_eq!(calls(&mut c, "blpop"), "");
    let _: i64 = cmd("LPUSH").arg("q").arg("x").query(&mut c).unwrap();
    wait_blocked(&mut c, 0);
    let want = b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n";
    assert_eq!(w.read_exact_n(want.len()), want);
    assert_eq!(
        calls(&mut c, "blpop"),
        "cmdstat_blpop:calls=1,rejected_calls=0,failed_calls=0"
    );
    // CLIENT UNBLOCK: TIMEOUT counts a call, ERROR a failed one too.
    w.send(b"CLIENT ID\r\n");
    let id: i64 = String::from_utf8(read_line(&mut w))
        .unwrap()
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap();
    for (how, failed) in [("TIMEOUT", 0), ("ERROR", 1)] {
        let _: () = cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
        w.send(b"BLPOP q 0\r\n");
        wait_blocked(&mut c, 1);
        let n: i64 = cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(how)
            .query(&mut c)
            .unwrap();
        assert_eq!(n, 1);
        // As in Redis the wait has ended when UNBLOCK returns, even with
        // the client on another worker that has not replied yet.
        assert_eq!(blocked_clients(&mut c), 0);
        assert_eq!(
            calls(&mut c, "blpop"),
            format!("cmdstat_blpop:calls=1,rejected_calls=0,failed_calls={failed}")
        );
        // The error reply counts in errorstats, as any error does.
        assert_eq!(
            common::info_i64(&mut c, "stats", "total_error_replies"),
            failed
        );
        let unblocked = common::info_field(&mut c, "errorstats", "errorstat_UNBLOCKED");
        assert_eq!(unblocked, if failed == 1 { "count=1" } else { "" });
        let _ = read_line(&mut w);
    }
}

/// One reply line (through its CRLF), byte by byte.
fn read_line(w: &mut common::Raw) -> Vec<u8> {
    let mut line = Vec::new();
    while !line.ends_with(b"\r\n") {
        let b = w.read_exact_n(1);
        assert_eq!(b.len(), 1, "connection closed mid-line");
        line.extend_from_slice(&b);
    }
    line
}
