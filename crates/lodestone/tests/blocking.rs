//! Blocking commands across connections served by different threads:
//! wake-ups, FIFO order, timeouts, CLIENT UNBLOCK, MULTI and INFO.

mod common;

use common::{wait_blocked, Server};
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
