//! Integration tests of the list family over TCP: replies, errors and edge
//! cases as Redis 7.2 gives them, RESP2/RESP3 null shapes, encodings.

mod common;

use common::Server;
use redis::{cmd, Connection, Value};
use std::time::Duration;

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    let mut k = cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap()
}

fn err(c: &mut Connection, args: &[&str]) -> String {
    let mut k = cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    let r: redis::RedisResult<Value> = k.query(c);
    let e = r.expect_err("expected an error");
    // "ERR msg" / "WRONGTYPE msg" as the server sent it.
    match (e.code(), e.detail()) {
        (Some(code), Some(d)) => format!("{code} {d}"),
        _ => e.to_string(),
    }
}

fn strs(c: &mut Connection, args: &[&str]) -> Vec<String> {
    q(c, args)
}

fn enc(c: &mut Connection, key: &str) -> String {
    q(c, &["OBJECT", "ENCODING", key])
}

/// A raw connection switched to RESP3 with the HELLO reply drained.
fn resp3(s: &Server) -> common::Raw {
    let mut r = s.raw();
    r.send(b"HELLO 3\r\n");
    let _ = r.read_exact_n(4);
    std::thread::sleep(Duration::from_millis(50));
    let _ = r.s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = r.read_to_close();
    let _ = r.s.set_read_timeout(Some(Duration::from_secs(5)));
    r
}

#[test]
fn push_pop_range_basics() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "l", "x", "y"]), 5);
    assert_eq!(
        strs(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["y", "x", "a", "b", "c"]
    );
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 5);
    assert_eq!(q::<String>(&mut c, &["LINDEX", "l", "-1"]), "c");
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "5"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-6"]), None);
    assert_eq!(q::<String>(&mut c, &["LPOP", "l"]), "y");
    assert_eq!(q::<String>(&mut c, &["RPOP", "l"]), "c");
    assert_eq!(strs(&mut c, &["LPOP", "l", "2"]), ["x", "a"]);
    assert_eq!(strs(&mut c, &["RPOP", "l", "10"]), ["b"]);
    assert_eq!(
        q::<i64>(&mut c, &["EXISTS", "l"]),
        0,
        "emptied list is deleted"
    );
    // Ranges.
    q::<i64>(&mut c, &["RPUSH", "r", "1", "2", "3", "4", "5"]);
    assert_eq!(strs(&mut c, &["LRANGE", "r", "1", "-2"]), ["2", "3", "4"]);
    assert_eq!(strs(&mut c, &["LRANGE", "r", "-100", "1"]), ["1", "2"]);
    assert_eq!(
        strs(&mut c, &["LRANGE", "r", "3", "1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        strs(&mut c, &["LRANGE", "r", "5", "10"]),
        Vec::<String>::new()
    );
    assert_eq!(
        strs(&mut c, &["LRANGE", "r", "0", "-10"]),
        Vec::<String>::new()
    );
    assert_eq!(
        strs(&mut c, &["LRANGE", "nokey", "0", "-1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        err(&mut c, &["LRANGE", "r", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
    // Integers of every listpack width come back verbatim.
    let vals = [
        "0",
        "127",
        "128",
        "-1",
        "4095",
        "-4096",
        "32767",
        "-32768",
        "8388607",
        "2147483647",
        "-2147483648",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "007",
        "-0",
        " 1",
        "",
    ];
    let mut args = vec!["RPUSH", "ints"];
    args.extend(vals);
    q::<i64>(&mut c, &args);
    assert_eq!(strs(&mut c, &["LRANGE", "ints", "0", "-1"]), vals);
}

#[test]
fn pushx_insert_set_trim_rem() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "nx", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "nx", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nx"]), 0);
    q::<i64>(&mut c, &["RPUSH", "l", "b"]);
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "l", "a"]), 2);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "l", "c", "d"]), 4);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "BEFORE", "c", "zz"]), 5);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "after", "d", "e"]), 6);
    assert_eq!(
        q::<i64>(&mut c, &["LINSERT", "l", "after", "nope", "e"]),
        -1
    );
    assert_eq!(
        q::<i64>(&mut c, &["LINSERT", "nokey", "after", "a", "e"]),
        0
    );
    assert_eq!(
        err(&mut c, &["LINSERT", "l", "middle", "a", "e"]),
        "ERR syntax error"
    );
    assert_eq!(
        strs(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["a", "b", "zz", "c", "d", "e"]
    );
    assert_eq!(q::<String>(&mut c, &["LSET", "l", "-1", "E"]), "OK");
    assert_eq!(
        err(&mut c, &["LSET", "l", "6", "x"]),
        "ERR index out of range"
    );
    assert_eq!(err(&mut c, &["LSET", "nokey", "0", "x"]), "ERR no such key");
    assert_eq!(
        err(&mut c, &["LSET", "l", "x", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<String>(&mut c, &["LTRIM", "l", "1", "-2"]), "OK");
    assert_eq!(
        strs(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["b", "zz", "c", "d"]
    );
    assert_eq!(q::<String>(&mut c, &["LTRIM", "nokey", "0", "1"]), "OK");
    assert_eq!(q::<String>(&mut c, &["LTRIM", "l", "3", "1"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "l"]), 0);
    // LREM from the head, the tail, everything; int-encoded elements match.
    q::<i64>(&mut c, &["RPUSH", "r", "1", "x", "1", "y", "1", "01"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "-1", "1"]), 1);
    assert_eq!(
        strs(&mut c, &["LRANGE", "r", "0", "-1"]),
        ["1", "x", "1", "y", "01"]
    );
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "1", "1"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "0", "01"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "0", "nope"]), 0);
    assert_eq!(strs(&mut c, &["LRANGE", "r", "0", "-1"]), ["x", "1", "y"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "nokey", "0", "a"]), 0);
    assert_eq!(
        err(&mut c, &["LREM", "r", "z", "a"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn wrongtype_everywhere() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["SET", "s", "v"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a"]);
    let wt = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["LPUSH", "s", "a"][..],
        &["RPUSHX", "s", "a"],
        &["LINSERT", "s", "before", "a", "b"],
        &["LLEN", "s"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LRANGE", "s", "0", "1"],
        &["LTRIM", "s", "0", "1"],
        &["LREM", "s", "0", "a"],
        &["LPOS", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "0"],
        &["RPOPLPUSH", "s", "l"],
        &["RPOPLPUSH", "l", "s"],
        &["LMOVE", "l", "s", "left", "right"],
        &["LMPOP", "2", "nokey", "s", "left"],
    ] {
        assert_eq!(err(&mut c, args), wt, "{args:?}");
    }
    // A failed move changes nothing.
    assert_eq!(strs(&mut c, &["LRANGE", "l", "0", "-1"]), ["a"]);
    assert_eq!(q::<String>(&mut c, &["GET", "s"]), "v");
}

#[test]
fn pop_count_and_null_shapes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        err(&mut c, &["LPOP", "l", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        err(&mut c, &["LPOP", "l", "x"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        err(&mut c, &["LPOP", "l", "1", "2"]),
        "ERR wrong number of arguments for 'lpop' command"
    );
    let mut r = s.raw();
    r.roundtrip(b"LPOP nokey\r\n", b"$-1\r\n");
    r.roundtrip(b"LPOP nokey 1\r\n", b"*-1\r\n");
    r.roundtrip(b"RPOP nokey 0\r\n", b"*-1\r\n");
    r.roundtrip(b"LMPOP 1 nokey left\r\n", b"*-1\r\n");
    r.roundtrip(b"LPOS nokey a\r\n", b"$-1\r\n");
    r.roundtrip(b"LPOS nokey a COUNT 0\r\n", b"*0\r\n");
    r.roundtrip(b"RPOPLPUSH nokey other\r\n", b"$-1\r\n");
    r.roundtrip(b"RPUSH l a b 3\r\n", b":3\r\n");
    r.roundtrip(b"LPOP l 0\r\n", b"*0\r\n");
    r.roundtrip(b"RPOP l 2\r\n", b"*2\r\n$1\r\n3\r\n$1\r\nb\r\n");
    r.roundtrip(b"LINDEX l 0\r\n", b"$1\r\na\r\n");
    let mut r3 = resp3(&s);
    r3.roundtrip(b"LPOP nokey\r\n", b"_\r\n");
    r3.roundtrip(b"LPOP nokey 2\r\n", b"_\r\n");
    r3.roundtrip(b"LMPOP 1 nokey left\r\n", b"_\r\n");
    r3.roundtrip(b"LINDEX l 5\r\n", b"_\r\n");
    r3.roundtrip(b"LPOS l zz\r\n", b"_\r\n");
    r3.roundtrip(b"RPOPLPUSH nokey x\r\n", b"_\r\n");
}

#[test]
fn lpos_options_and_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(
        &mut c,
        &["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"],
    );
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "c"]), 2);
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "c", "RANK", "2"]), 6);
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "c", "RANK", "-1"]), 7);
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "c", "RANK", "-3"]), 2);
    assert_eq!(
        q::<Option<i64>>(&mut c, &["LPOS", "l", "c", "RANK", "4"]),
        None
    );
    assert_eq!(q::<i64>(&mut c, &["LPOS", "l", "2"]), 4);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "c", "COUNT", "0"]),
        [2, 6, 7]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "c", "COUNT", "2"]),
        [2, 6]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "c", "COUNT", "0", "RANK", "-2"]),
        [6, 2]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"]),
        [2, 6]
    );
    assert_eq!(
        q::<Option<i64>>(&mut c, &["LPOS", "l", "c", "MAXLEN", "2"]),
        None
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "x", "COUNT", "5"]),
        Vec::<i64>::new()
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "RANK", "0"]),
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "RANK", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "RANK", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "COUNT", "-1"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "COUNT", "x"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "MAXLEN", "-1"]),
        "ERR MAXLEN can't be negative"
    );
    assert_eq!(err(&mut c, &["LPOS", "l", "c", "RANK"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["LPOS", "l", "c", "FOO", "1"]),
        "ERR syntax error"
    );
    // Options are checked before the key.
    assert!(err(&mut c, &["LPOS", "nokey", "c", "RANK", "0"]).starts_with("ERR RANK"));
}

#[test]
fn lmove_rpoplpush_and_lmpop() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "{t}a", "1", "2", "3"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "{t}a", "{t}b"]), "3");
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "{t}a", "{t}b", "LEFT", "RIGHT"]),
        "1"
    );
    assert_eq!(strs(&mut c, &["LRANGE", "{t}b", "0", "-1"]), ["3", "1"]);
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "{t}a", "{t}b", "right", "left"]),
        "2"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "{t}a"]), 0);
    // Same list: a rotation; a single element list survives.
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "{t}b", "{t}b", "left", "right"]),
        "2"
    );
    assert_eq!(
        strs(&mut c, &["LRANGE", "{t}b", "0", "-1"]),
        ["3", "1", "2"]
    );
    q::<i64>(&mut c, &["RPUSH", "one", "x"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "one", "one"]), "x");
    assert_eq!(strs(&mut c, &["LRANGE", "one", "0", "-1"]), ["x"]);
    assert_eq!(
        err(&mut c, &["LMOVE", "{t}b", "{t}c", "up", "left"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["LMOVE", "{t}b", "{t}c", "left", "down"]),
        "ERR syntax error"
    );
    // Keys in different shards work too.
    q::<i64>(&mut c, &["RPUSH", "src-x", "p", "q"]);
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "src-x", "dst-y", "left", "left"]),
        "p"
    );
    assert_eq!(strs(&mut c, &["LRANGE", "dst-y", "0", "-1"]), ["p"]);

    // LMPOP.
    q::<i64>(&mut c, &["RPUSH", "m2", "a", "b", "c"]);
    let v: Value = q(
        &mut c,
        &["LMPOP", "3", "m0", "m1", "m2", "RIGHT", "COUNT", "2"],
    );
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"m2".to_vec()),
            Value::Array(vec![
                Value::BulkString(b"c".to_vec()),
                Value::BulkString(b"b".to_vec())
            ])
        ])
    );
    let v: Value = q(&mut c, &["LMPOP", "1", "m2", "left", "count", "10"]);
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"m2".to_vec()),
            Value::Array(vec![Value::BulkString(b"a".to_vec())])
        ])
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "m2"]), 0);
    for (args, e) in [
        (
            &["LMPOP", "0", "k", "left"][..],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["LMPOP", "x", "k", "left"],
            "ERR numkeys should be greater than 0",
        ),
        (&["LMPOP", "2", "k", "left"], "ERR syntax error"),
        (&["LMPOP", "1", "k", "up"], "ERR syntax error"),
        (&["LMPOP", "1", "k", "left", "count"], "ERR syntax error"),
        (
            &["LMPOP", "1", "k", "left", "count", "0"],
            "ERR count should be greater than 0",
        ),
        (
            &["LMPOP", "1", "k", "left", "count", "-1"],
            "ERR count should be greater than 0",
        ),
        (
            &["LMPOP", "1", "k", "left", "count", "1", "count", "1"],
            "ERR syntax error",
        ),
        (&["LMPOP", "1", "k", "left", "foo"], "ERR syntax error"),
    ] {
        assert_eq!(err(&mut c, args), e, "{args:?}");
    }
    // COMMAND GETKEYS finds LMPOP's movable keys.
    let keys: Vec<String> = q(
        &mut c,
        &["COMMAND", "GETKEYS", "LMPOP", "2", "k1", "k2", "LEFT"],
    );
    assert_eq!(keys, ["k1", "k2"]);
}

#[test]
fn encodings_convert_like_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // Count limit: 3 entries.
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "3"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    q::<i64>(&mut c, &["RPUSH", "l", "d"]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    q::<Vec<String>>(&mut c, &["RPOP", "l", "3"]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    // LSET with a full listpack converts even though the length stays.
    q::<i64>(&mut c, &["RPUSH", "l", "b", "c"]);
    q::<String>(&mut c, &["LSET", "l", "0", "x"]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    // LINSERT converts before looking for the pivot.
    q::<i64>(&mut c, &["DEL", "l"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(
        q::<i64>(&mut c, &["LINSERT", "l", "before", "nope", "x"]),
        -1
    );
    assert_eq!(enc(&mut c, "l"), "quicklist");
    // Size limit: -1 = 4096 bytes per node.
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "-1"]);
    let big = "x".repeat(8192);
    q::<i64>(&mut c, &["DEL", "l"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    q::<i64>(&mut c, &["RPUSH", "l", &big]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    q::<String>(&mut c, &["RPOP", "l"]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    q::<i64>(&mut c, &["DEL", "l"]);
    q::<i64>(&mut c, &["RPUSH", "l", &big, "a", "b"]);
    q::<Vec<String>>(&mut c, &["RPOP", "l", "2"]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    q::<String>(&mut c, &["LSET", "l", "-1", "c"]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    // < -5 acts as -5 (64k bytes).
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "-6"]);
    q::<i64>(&mut c, &["DEL", "l"]);
    q::<i64>(&mut c, &["RPUSH", "l", &"x".repeat(60000)]);
    assert_eq!(enc(&mut c, "l"), "listpack");
    q::<i64>(&mut c, &["RPUSH", "l", &"x".repeat(5536)]);
    assert_eq!(enc(&mut c, "l"), "quicklist");
    // A long quicklist keeps every element in order.
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "-2"]);
    q::<i64>(&mut c, &["DEL", "l"]);
    let items: Vec<String> = (0..5000).map(|i| format!("item:{i}")).collect();
    for chunk in items.chunks(500) {
        let mut k = cmd("RPUSH");
        k.arg("l");
        for x in chunk {
            k.arg(x);
        }
        let _: i64 = k.query(&mut c).unwrap();
    }
    assert_eq!(enc(&mut c, "l"), "quicklist");
    assert_eq!(strs(&mut c, &["LRANGE", "l", "0", "-1"]), items);
    assert_eq!(q::<String>(&mut c, &["LINDEX", "l", "2500"]), "item:2500");
    assert_eq!(
        q::<i64>(&mut c, &["LPOS", "l", "item:4999", "RANK", "-1"]),
        4999
    );
    let mem: i64 = q(&mut c, &["MEMORY", "USAGE", "l"]);
    assert!(mem > 0);
}

#[test]
fn digest_ignores_encoding_and_dirty_counts() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "2"]);
    q::<i64>(&mut c, &["RPUSH", "a", "x", "y", "z"]);
    q::<String>(&mut c, &["CONFIG", "SET", "list-max-listpack-size", "128"]);
    q::<i64>(&mut c, &["RPUSH", "b", "x", "y", "z"]);
    assert_eq!(enc(&mut c, "a"), "quicklist");
    assert_eq!(enc(&mut c, "b"), "listpack");
    let da: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", "a"]);
    let db: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", "b"]);
    assert_eq!(da, db);
    q::<String>(&mut c, &["LSET", "b", "0", "w"]);
    let db2: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", "b"]);
    assert_ne!(da, db2);
}
