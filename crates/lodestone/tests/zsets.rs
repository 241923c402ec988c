//! Integration tests of the sorted set family over TCP.

mod common;

use common::{q, qerr, Server};
use redis::{cmd, Value};

#[test]
fn zadd_options_and_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "1", "a", "2", "b"]), 2);
    assert_eq!(
        q::<i64>(&mut c, &["ZADD", "z", "CH", "5", "a", "3", "c"]),
        2
    );
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "XX", "9", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "GT", "CH", "1", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZADD", "z", "LT", "CH", "1", "a"]), 1);
    assert_eq!(
        q::<String>(&mut c, &["ZADD", "z", "INCR", "1.5", "a"]),
        "2.5"
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["ZADD", "z", "NX", "INCR", "1", "a"]),
        None
    );
    assert_eq!(
        qerr(&mut c, &["ZADD", "z", "NX", "XX", "1", "a"]),
        "ERR XX and NX options at the same time are not compatible"
    );
    assert_eq!(
        qerr(&mut c, &["ZADD", "z", "GT", "LT", "1", "a"]),
        "ERR GT, LT, and/or NX options at the same time are not compatible"
    );
    assert_eq!(
        qerr(&mut c, &["ZADD", "z", "INCR", "1", "a", "2", "b"]),
        "ERR INCR option supports a single increment-element pair"
    );
    assert_eq!(
        qerr(&mut c, &["ZADD", "z", "1", "a", "2"]),
        "ERR syntax error"
    );
    assert_eq!(
        qerr(&mut c, &["ZADD", "z", "nan", "a"]),
        "ERR value is not a valid float"
    );
    assert_eq!(q::<i64>(&mut c, &["ZADD", "inf", "inf", "a"]), 1);
    assert_eq!(
        qerr(&mut c, &["ZINCRBY", "inf", "-inf", "a"]),
        "ERR resulting score is not a number (NaN)"
    );
    assert_eq!(q::<String>(&mut c, &["ZINCRBY", "n", "0.1", "m"]), "0.1");
    assert_eq!(
        q::<String>(&mut c, &["ZINCRBY", "n", "0.2", "m"]),
        "0.30000000000000004"
    );
    let _: () = q(&mut c, &["SET", "s", "x"]);
    assert!(qerr(&mut c, &["ZADD", "s", "1", "a"]).starts_with("WRONGTYPE"));
    assert!(qerr(&mut c, &["ZSCORE", "s", "a"]).starts_with("WRONGTYPE"));
}

#[test]
fn ranges_ranks_and_scores() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: i64 = q(
        &mut c,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "z", "1", "-2"]),
        ["b", "c"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["ZRANGE", "z", "(1", "+inf", "BYSCORE", "REV", "LIMIT", "1", "2"]
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["ZRANGE", "z", "+inf", "(1", "BYSCORE", "REV", "LIMIT", "1", "2"]
        ),
        ["c", "b"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGEBYSCORE", "z", "-inf", "2", "WITHSCORES"]),
        ["a", "1", "b", "2"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZREVRANGEBYLEX", "z", "[c", "-"]),
        ["c", "b", "a"]
    );
    assert_eq!(q::<i64>(&mut c, &["ZCOUNT", "z", "(1", "3"]), 2);
    assert_eq!(q::<i64>(&mut c, &["ZLEXCOUNT", "z", "[b", "(d"]), 2);
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "c"]), Some(2));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZREVRANK", "z", "c"]), Some(1));
    assert_eq!(q::<Option<i64>>(&mut c, &["ZRANK", "z", "zz"]), None);
    assert_eq!(
        q::<Vec<Value>>(&mut c, &["ZRANK", "z", "d", "WITHSCORE"]),
        vec![Value::Int(3), Value::BulkString(b"4".to_vec())]
    );
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["ZMSCORE", "z", "a", "x", "d"]),
        [Some("1".into()), None, Some("4".into())]
    );
    assert_eq!(
        qerr(&mut c, &["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(
        qerr(&mut c, &["ZRANGE", "z", "[a", "[b", "BYLEX", "WITHSCORES"]),
        "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(
        qerr(&mut c, &["ZRANGEBYSCORE", "z", "x", "1"]),
        "ERR min or max is not a float"
    );
    assert_eq!(
        qerr(&mut c, &["ZRANGEBYLEX", "z", "a", "[b"]),
        "ERR min or max not valid string range item"
    );
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "d", "z", "0", "1"]), 2);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "d", "0", "-1"]),
        ["a", "b"]
    );
    assert_eq!(q::<i64>(&mut c, &["ZRANGESTORE", "d", "z", "5", "6"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "d"]), 0);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYSCORE", "z", "(1", "2"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYRANK", "z", "0", "0"]), 1);
    assert_eq!(q::<i64>(&mut c, &["ZREMRANGEBYLEX", "z", "-", "+"]), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
}

#[test]
fn encodings_convert_on_limits() {
    let s = Server::start(&[
        "--zset-max-listpack-entries",
        "4",
        "--zset-max-listpack-value",
        "8",
    ]);
    let mut c = s.client();
    let _: i64 = q(&mut c, &["ZADD", "z", "1", "a", "2", "b"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]),
        "listpack"
    );
    let _: i64 = q(&mut c, &["ZADD", "z", "3", "c", "4", "d", "5", "e"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]),
        "skiplist"
    );
    let _: i64 = q(&mut c, &["ZREM", "z", "a", "b", "c"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "z"]),
        "skiplist"
    );
    let _: i64 = q(&mut c, &["ZADD", "v", "1", "a-long-member"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "v"]),
        "skiplist"
    );
    // Digests do not depend on the encoding.
    let _: i64 = q(&mut c, &["ZADD", "l", "4", "d", "5", "e"]);
    let d: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", "z", "l"]);
    assert_eq!(d[0], d[1]);
    // Large set: rank queries, scan covers everything.
    let mut k = cmd("ZADD");
    k.arg("big");
    for i in 0..2000 {
        k.arg(i % 37).arg(format!("m{i}"));
    }
    let _: i64 = k.query(&mut c).unwrap();
    let all: Vec<String> = q(&mut c, &["ZRANGE", "big", "0", "-1"]);
    for (i, m) in all.iter().enumerate().step_by(111) {
        assert_eq!(q::<i64>(&mut c, &["ZRANK", "big", m]), i as i64);
    }
    let mut seen = std::collections::HashSet::new();
    let mut cur = "0".to_string();
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["ZSCAN", "big", &cur, "COUNT", "50"]);
        for p in items.chunks(2) {
            seen.insert(p[0].clone());
        }
        if next == "0" {
            break;
        }
        cur = next;
    }
    assert_eq!(seen.len(), 2000);
}

#[test]
fn pops_and_random_members() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: i64 = q(&mut c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["ZPOPMIN", "z"]), ["a", "1"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZPOPMAX", "z", "5"]),
        ["c", "3", "b", "2"]
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
    assert_eq!(
        qerr(&mut c, &["ZPOPMIN", "z", "-1"]),
        "ERR value is out of range, must be positive"
    );
    let _: i64 = q(&mut c, &["ZADD", "z2", "1", "a", "2", "b"]);
    let v: Value = q(&mut c, &["ZMPOP", "2", "z", "z2", "MAX", "COUNT", "1"]);
    assert_eq!(
        v,
        Value::Array(vec![
            Value::BulkString(b"z2".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"b".to_vec()),
                Value::BulkString(b"2".to_vec())
            ])])
        ])
    );
    assert_eq!(
        q::<Value>(&mut c, &["ZMPOP", "1", "nokey", "MIN"]),
        Value::Nil
    );
    assert_eq!(
        qerr(&mut c, &["ZMPOP", "0", "z", "MIN"]),
        "ERR numkeys should be greater than 0"
    );
    assert_eq!(
        qerr(&mut c, &["ZMPOP", "1", "z", "MIN", "COUNT", "0"]),
        "ERR count should be greater than 0"
    );
    let _: i64 = q(&mut c, &["ZADD", "r", "1", "a", "2", "b", "3", "c"]);
    let v: Vec<String> = q(&mut c, &["ZRANDMEMBER", "r", "-10"]);
    assert_eq!(v.len(), 10);
    let mut v: Vec<String> = q(&mut c, &["ZRANDMEMBER", "r", "2"]);
    v.dedup();
    assert_eq!(v.len(), 2);
    let v: Vec<String> = q(&mut c, &["ZRANDMEMBER", "r", "10", "WITHSCORES"]);
    assert_eq!(v, ["a", "1", "b", "2", "c", "3"]);
    assert_eq!(q::<Option<String>>(&mut c, &["ZRANDMEMBER", "nokey"]), None);
}

#[test]
fn set_algebra() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: i64 = q(&mut c, &["ZADD", "a{t}", "1", "x", "2", "y", "3", "z"]);
    let _: i64 = q(&mut c, &["ZADD", "b{t}", "10", "y", "20", "z", "30", "w"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZUNION", "2", "a{t}", "b{t}", "WITHSCORES"]),
        ["x", "1", "y", "12", "z", "23", "w", "30"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "ZINTER",
                "2",
                "a{t}",
                "b{t}",
                "WEIGHTS",
                "2",
                "1",
                "AGGREGATE",
                "MAX",
                "WITHSCORES"
            ]
        ),
        ["y", "10", "z", "20"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZDIFF", "2", "a{t}", "b{t}"]),
        ["x"]
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZINTERCARD", "2", "a{t}", "b{t}", "LIMIT", "1"]),
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZUNIONSTORE", "d{t}", "2", "a{t}", "b{t}"]),
        4
    );
    assert_eq!(
        q::<i64>(&mut c, &["ZINTERSTORE", "d{t}", "2", "a{t}", "nokey{t}"]),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "d{t}"]), 0);
    assert_eq!(
        qerr(&mut c, &["ZUNIONSTORE", "d{t}", "0", "a{t}"]),
        "ERR at least 1 input key is needed for 'zunionstore' command"
    );
    assert_eq!(
        qerr(&mut c, &["ZUNION", "3", "a{t}", "b{t}"]),
        "ERR syntax error"
    );
    assert_eq!(
        qerr(
            &mut c,
            &["ZUNION", "2", "a{t}", "b{t}", "WEIGHTS", "1", "x"]
        ),
        "ERR weight value is not a float"
    );
    let keys: Vec<String> = q(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "ZUNIONSTORE",
            "d{t}",
            "2",
            "a{t}",
            "b{t}",
            "WEIGHTS",
            "1",
            "2",
        ],
    );
    assert_eq!(keys, ["d{t}", "a{t}", "b{t}"]);
}

#[test]
fn resp3_shapes() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"HELLO 3\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let n = r.s.read(&mut buf).unwrap();
    assert_eq!(buf[0], b'%', "{:?}", &buf[..n]);
    r.roundtrip(b"ZADD z 1.5 a 2 b\r\n", b":2\r\n");
    r.roundtrip(b"ZSCORE z a\r\n", b",1.5\r\n");
    r.roundtrip(
        b"ZRANGE z 0 -1 WITHSCORES\r\n",
        b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,2\r\n",
    );
    r.roundtrip(b"ZPOPMIN z\r\n", b"*2\r\n$1\r\na\r\n,1.5\r\n");
    r.roundtrip(b"ZPOPMIN z 1\r\n", b"*1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    r.roundtrip(b"ZRANK z a\r\n", b"_\r\n");
    r.roundtrip(b"ZSCAN nokey 0\r\n", b"*2\r\n$1\r\n0\r\n*0\r\n");
}
