//! Integration tests of the stream family over TCP: XADD IDs and trimming,
//! ranges, XREAD (blocking too), consumer groups, XCLAIM/XAUTOCLAIM, XINFO
//! and the RESP2/RESP3 reply shapes, as Redis 7.2 gives them.

mod common;

use common::{q, qerr, req, wait_blocked, Server};
use redis::Value;
use std::time::{Duration, Instant};

type Entries = Vec<(String, Vec<String>)>;

#[test]
fn xadd_ids_and_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["XADD", "s", "1-1", "a", "1"]), "1-1");
    assert_eq!(q::<String>(&mut c, &["XADD", "s", "1-*", "a", "2"]), "1-2");
    assert_eq!(q::<String>(&mut c, &["XADD", "s", "5", "a", "3"]), "5-0");
    assert_eq!(
        qerr(&mut c, &["XADD", "s", "5-0", "a", "3"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        qerr(&mut c, &["XADD", "s2", "0-0", "a", "3"]),
        "ERR The ID specified in XADD must be greater than 0-0"
    );
    assert_eq!(
        qerr(&mut c, &["XADD", "s", "abc", "a", "3"]),
        "ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        qerr(&mut c, &["XADD", "s", "*", "a"]),
        "ERR wrong number of arguments for 'xadd' command"
    );
    assert_eq!(
        qerr(
            &mut c,
            &["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "a", "b"]
        ),
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
    );
    assert_eq!(
        qerr(
            &mut c,
            &["XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "a", "b"]
        ),
        "ERR syntax error, LIMIT cannot be used without the special ~ option"
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["XADD", "nope", "NOMKSTREAM", "*", "a", "b"]),
        None
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nope"]), 0);
    let id: String = q(&mut c, &["XADD", "s", "*", "a", "4"]);
    assert!(id.ends_with("-0") && id.len() > 10);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 4);
    let _: () = q(&mut c, &["SET", "str", "x"]);
    assert_eq!(
        qerr(&mut c, &["XADD", "str", "*", "a", "b"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(q::<String>(&mut c, &["TYPE", "s"]), "stream");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "s"]), "stream");
}

#[test]
fn ranges_and_deletes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for i in 1..=10 {
        let _: String = q(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    let r: Entries = q(&mut c, &["XRANGE", "s", "-", "+", "COUNT", "2"]);
    assert_eq!(
        r,
        vec![
            ("1-0".into(), vec!["f".into(), "1".into()]),
            ("2-0".into(), vec!["f".into(), "2".into()])
        ]
    );
    let r: Entries = q(&mut c, &["XRANGE", "s", "(3", "5"]);
    assert_eq!(
        r.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["4-0", "5-0"]
    );
    let r: Entries = q(&mut c, &["XREVRANGE", "s", "+", "(8-0", "COUNT", "5"]);
    assert_eq!(
        r.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["10-0", "9-0"]
    );
    assert_eq!(q::<i64>(&mut c, &["XDEL", "s", "2-0", "3-0", "99-0"]), 2);
    let r: Entries = q(&mut c, &["XRANGE", "s", "-", "3"]);
    assert_eq!(r.len(), 1);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "5"]), 3);
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 5);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MINID", "8"]), 2);
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "0"]), 3);
    // An emptied stream stays.
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 1);
    assert_eq!(
        qerr(&mut c, &["XADD", "s", "9", "a", "b"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
    assert_eq!(
        qerr(
            &mut c,
            &[
                "XRANGE",
                "s",
                "(18446744073709551615-18446744073709551615",
                "+"
            ]
        ),
        "ERR invalid start ID for the interval"
    );
    assert_eq!(
        qerr(&mut c, &["XTRIM", "s", "FOO", "1"]),
        "ERR syntax error"
    );
    let mut r = s.raw();
    r.roundtrip(
        &req(&[b"XRANGE", b"s", b"-", b"+", b"COUNT", b"0"]),
        b"*-1\r\n",
    );
    r.roundtrip(&req(&[b"XRANGE", b"missing", b"-", b"+"]), b"*0\r\n");
}

#[test]
fn approximate_trimming_removes_whole_nodes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "stream-node-max-entries", "10"]);
    for i in 1..=102 {
        let _: String = q(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    assert_eq!(q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "~", "55"]), 40);
    assert_eq!(
        q::<i64>(&mut c, &["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "30"]),
        30
    );
    assert_eq!(q::<i64>(&mut c, &["XLEN", "s"]), 32);
}

#[test]
fn xread_and_blocking() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["XADD", "s", "1-0", "a", "1"]);
    let mut r = s.raw();
    r.roundtrip(
        &req(&[b"XREAD", b"STREAMS", b"s", b"0"]),
        b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n",
    );
    r.roundtrip(&req(&[b"XREAD", b"STREAMS", b"s", b"$"]), b"*-1\r\n");
    assert_eq!(
        qerr(&mut c, &["XREAD", "STREAMS", "s", "t", "0"]),
        "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be specified."
    );
    // BLOCK with '$' parks and is served by the next XADD.
    let mut w = s.raw();
    w.send(&req(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"]));
    wait_blocked(&mut c, 1);
    let _: String = q(&mut c, &["XADD", "s", "2-0", "b", "2"]);
    let want = b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
    assert_eq!(w.read_exact_n(want.len()), want.to_vec());
    // Timeout.
    let t = Instant::now();
    w.roundtrip(
        &req(&[b"XREAD", b"BLOCK", b"100", b"STREAMS", b"s", b"$"]),
        b"*-1\r\n",
    );
    assert!(t.elapsed() >= Duration::from_millis(90));
}

#[test]
fn consumer_groups() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        qerr(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."
    );
    assert_eq!(
        q::<String>(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]),
        "OK"
    );
    assert_eq!(
        qerr(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]),
        "BUSYGROUP Consumer Group name already exists"
    );
    for i in 1..=3 {
        let _: String = q(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "f", &i.to_string()],
        );
    }
    let r: Vec<(String, Entries)> = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(r[0].1.len(), 2);
    let r: Vec<(String, Entries)> = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
    );
    assert_eq!(r[0].1[0].0, "3-0");
    // History of alice.
    let r: Vec<(String, Entries)> = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
    );
    assert_eq!(
        r[0].1.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["1-0", "2-0"]
    );
    let p: Value = q(&mut c, &["XPENDING", "s", "g"]);
    assert_eq!(
        p,
        Value::Array(vec![
            Value::Int(3),
            Value::BulkString(b"1-0".to_vec()),
            Value::BulkString(b"3-0".to_vec()),
            Value::Array(vec![
                Value::Array(vec![
                    Value::BulkString(b"alice".to_vec()),
                    Value::BulkString(b"2".to_vec())
                ]),
                Value::Array(vec![
                    Value::BulkString(b"bob".to_vec()),
                    Value::BulkString(b"1".to_vec())
                ]),
            ]),
        ])
    );
    let p: Vec<(String, String, i64, i64)> =
        q(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "alice"]);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].3, 2); // delivered twice (history read)
    assert_eq!(q::<i64>(&mut c, &["XACK", "s", "g", "1-0", "9-0"]), 1);
    // XCLAIM moves 2-0 to bob.
    let r: Entries = q(&mut c, &["XCLAIM", "s", "g", "bob", "0", "2-0"]);
    assert_eq!(r[0].0, "2-0");
    let r: Vec<String> = q(&mut c, &["XCLAIM", "s", "g", "carol", "0", "2-0", "JUSTID"]);
    assert_eq!(r, ["2-0"]);
    assert_eq!(
        qerr(&mut c, &["XCLAIM", "s", "g", "bob", "0", "2-0", "BOGUS"]),
        "ERR Unrecognized XCLAIM option 'BOGUS'"
    );
    // XAUTOCLAIM gives everything to dave, reporting a deleted entry.
    assert_eq!(q::<i64>(&mut c, &["XDEL", "s", "3-0"]), 1);
    let r: (String, Entries, Vec<String>) = q(&mut c, &["XAUTOCLAIM", "s", "g", "dave", "0", "-"]);
    assert_eq!(r.0, "0-0");
    assert_eq!(r.1.len(), 1);
    assert_eq!(r.2, ["3-0"]);
    assert_eq!(
        q::<i64>(&mut c, &["XGROUP", "DELCONSUMER", "s", "g", "dave"]),
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "erin"]),
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "erin"]),
        0
    );
    assert_eq!(
        qerr(
            &mut c,
            &["XREADGROUP", "GROUP", "nog", "x", "STREAMS", "s", ">"]
        ),
        "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option"
    );
    assert_eq!(q::<i64>(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 1);
    assert_eq!(q::<i64>(&mut c, &["XGROUP", "DESTROY", "s", "g"]), 0);
}

#[test]
fn xinfo_and_lag() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for i in 1..=5 {
        let _: String = q(&mut c, &["XADD", "s", &format!("{i}-0"), "f", "v"]);
    }
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let _: Value = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let g: Vec<std::collections::HashMap<String, Value>> = q(&mut c, &["XINFO", "GROUPS", "s"]);
    assert_eq!(g[0]["entries-read"], Value::Int(2));
    assert_eq!(g[0]["lag"], Value::Int(3));
    assert_eq!(
        g[0]["last-delivered-id"],
        Value::BulkString(b"2-0".to_vec())
    );
    // A deletion after the group's position makes the lag unknown.
    let _: i64 = q(&mut c, &["XDEL", "s", "4-0"]);
    let g: Vec<std::collections::HashMap<String, Value>> = q(&mut c, &["XINFO", "GROUPS", "s"]);
    assert_eq!(g[0]["lag"], Value::Nil);
    let info: std::collections::HashMap<String, Value> = q(&mut c, &["XINFO", "STREAM", "s"]);
    assert_eq!(info["length"], Value::Int(4));
    assert_eq!(info["entries-added"], Value::Int(5));
    assert_eq!(
        info["max-deleted-entry-id"],
        Value::BulkString(b"4-0".to_vec())
    );
    assert_eq!(
        info["recorded-first-entry-id"],
        Value::BulkString(b"1-0".to_vec())
    );
    assert_eq!(info["groups"], Value::Int(1));
    let full: std::collections::HashMap<String, Value> =
        q(&mut c, &["XINFO", "STREAM", "s", "FULL"]);
    assert!(matches!(&full["entries"], Value::Array(v) if v.len() == 4));
    let cons: Vec<std::collections::HashMap<String, Value>> =
        q(&mut c, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(cons[0]["pending"], Value::Int(2));
    assert_eq!(
        qerr(&mut c, &["XINFO", "STREAM", "nokey"]),
        "ERR no such key"
    );
    // XSETID.
    assert_eq!(
        qerr(&mut c, &["XSETID", "s", "3-0"]),
        "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"
    );
    assert_eq!(
        q::<String>(&mut c, &["XSETID", "s", "100-0", "ENTRIESADDED", "50"]),
        "OK"
    );
    assert_eq!(
        qerr(&mut c, &["XADD", "s", "99-0", "a", "b"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
}

#[test]
fn blocking_xreadgroup_and_multi() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let mut w = s.raw();
    w.send(&req(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]));
    wait_blocked(&mut c, 1);
    let _: String = q(&mut c, &["XADD", "s", "5-0", "k", "v"]);
    let want = b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\nk\r\n$1\r\nv\r\n";
    assert_eq!(w.read_exact_n(want.len()), want.to_vec());
    assert_eq!(q::<i64>(&mut c, &["XACK", "s", "g", "5-0"]), 1);
    // Deleting the key wakes a group reader with NOGROUP.
    w.send(&req(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]));
    wait_blocked(&mut c, 1);
    let _: i64 = q(&mut c, &["DEL", "s"]);
    let got = w.read_exact_n(5);
    assert_eq!(&got, b"-NOGR");
    // Inside MULTI a blocking read answers at once.
    let mut r = s.raw();
    r.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    r.roundtrip(
        &req(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"x", b"$"]),
        b"+QUEUED\r\n",
    );
    r.roundtrip(b"EXEC\r\n", b"*1\r\n*-1\r\n");
}

#[test]
fn resp3_shapes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["XADD", "s", "1-0", "a", "1"]);
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let mut r = s.raw();
    r.send(&req(&[b"HELLO", b"3"]));
    let mut buf = [0u8; 1];
    let mut got = Vec::new();
    while !got.ends_with(b"modules\r\n*0\r\n") {
        let n = std::io::Read::read(&mut r.s, &mut buf).unwrap();
        assert_eq!(n, 1);
        got.push(buf[0]);
    }
    r.roundtrip(
        &req(&[b"XREAD", b"STREAMS", b"s", b"0"]),
        b"%1\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n",
    );
    r.roundtrip(&req(&[b"XREAD", b"STREAMS", b"s", b"$"]), b"_\r\n");
    r.roundtrip(
        &req(&[b"XINFO", b"GROUPS", b"s"]),
        b"*1\r\n%6\r\n$4\r\nname\r\n$1\r\ng\r\n$9\r\nconsumers\r\n:0\r\n$7\r\npending\r\n:0\r\n$17\r\nlast-delivered-id\r\n$3\r\n0-0\r\n$12\r\nentries-read\r\n_\r\n$3\r\nlag\r\n:1\r\n",
    );
    r.roundtrip(
        &req(&[b"XPENDING", b"s", b"g"]),
        b"*4\r\n:0\r\n_\r\n_\r\n_\r\n",
    );
}
