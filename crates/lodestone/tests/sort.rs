//! Integration tests for SORT and SORT_RO against the real binary.

mod common;

use redis::{cmd, Connection, RedisResult, Value};

fn err_text<T: std::fmt::Debug>(r: RedisResult<T>) -> String {
    let e = r.expect_err("expected an error");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
        .trim()
        .to_string()
}

/// Runs a command given as one string of space-separated arguments.
fn q<T: redis::FromRedisValue>(c: &mut Connection, line: &str) -> RedisResult<T> {
    let mut k = redis::Cmd::new();
    for a in line.split(' ') {
        k.arg(a);
    }
    k.query(c)
}

fn strs(c: &mut Connection, line: &str) -> Vec<String> {
    q(c, line).unwrap()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn numeric_alpha_desc_and_limit() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "RPUSH l 3 1 2 10 -5 1.5").unwrap();
    assert_eq!(
        strs(&mut c, "SORT l"),
        v(&["-5", "1", "1.5", "2", "3", "10"])
    );
    assert_eq!(
        strs(&mut c, "SORT l DESC"),
        v(&["10", "3", "2", "1.5", "1", "-5"])
    );
    assert_eq!(
        strs(&mut c, "SORT l ALPHA"),
        v(&["-5", "1", "1.5", "10", "2", "3"])
    );
    assert_eq!(strs(&mut c, "SORT l LIMIT 1 2"), v(&["1", "1.5"]));
    assert_eq!(strs(&mut c, "SORT l LIMIT -1 2"), v(&["-5", "1"]));
    assert_eq!(
        strs(&mut c, "SORT l LIMIT 2 -1"),
        v(&["1.5", "2", "3", "10"])
    );
    assert!(strs(&mut c, "SORT l LIMIT 10 1").is_empty());
    assert!(strs(&mut c, "SORT l LIMIT 0 0").is_empty());
    assert_eq!(
        strs(&mut c, "SORT l LIMIT 5 9223372036854775807"),
        v(&["10"])
    );
    assert_eq!(strs(&mut c, "SORT_RO l DESC LIMIT 0 1"), v(&["10"]));
    assert_eq!(strs(&mut c, "SORT l ASC DESC ASC LIMIT 0 1"), v(&["-5"]));
    // Equal scores are ordered by the elements' bytes.
    q::<i64>(&mut c, "RPUSH t 1.0 1 01 1").unwrap();
    assert_eq!(strs(&mut c, "SORT t"), v(&["01", "1", "1", "1.0"]));
    assert_eq!(strs(&mut c, "SORT t DESC"), v(&["1.0", "1", "1", "01"]));
}

#[test]
fn argument_errors() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "RPUSH l 1").unwrap();
    let syntax = "ERR syntax error";
    let notint = "ERR value is not an integer or out of range";
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l LIMIT 1")), syntax);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l LIMIT a 1")), notint);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l LIMIT 1 a")), notint);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l foo LIMIT a 1")), syntax);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l LIMIT a 1 foo")), notint);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l STORE")), syntax);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l BY")), syntax);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT l GET")), syntax);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT_RO l STORE d")), syntax);
    assert_eq!(
        err_text(q::<Value>(&mut c, "SORT")),
        "ERR wrong number of arguments for 'sort' command"
    );
    // Options are checked before the key's type.
    q::<()>(&mut c, "SET str x").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT str LIMIT a b")), notint);
    assert_eq!(
        err_text(q::<Value>(&mut c, "SORT str")),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        err_text(q::<Value>(&mut c, "SORT str STORE d")),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    q::<i64>(&mut c, "HSET h f v").unwrap();
    assert!(err_text(q::<Value>(&mut c, "SORT_RO h")).starts_with("WRONGTYPE"));
}

#[test]
fn bad_doubles() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let e = "ERR One or more scores can't be converted into double";
    q::<i64>(&mut c, "SADD s 1 2 3 not-a-double").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT s")), e);
    assert_eq!(err_text(q::<Value>(&mut c, "SORT s STORE d")), e);
    assert_eq!(q::<i64>(&mut c, "EXISTS d").unwrap(), 0);
    assert_eq!(strs(&mut c, "SORT s ALPHA").len(), 4);
    q::<i64>(&mut c, "RPUSH n nan").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT n")), e);
    q::<i64>(&mut c, "RPUSH big 1e400").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT big")), e);
    q::<i64>(&mut c, "RPUSH ws 5_").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT ws")), e);
    // strtod's forms: hex, infinities, an empty string (0).
    q::<i64>(&mut c, "RPUSH f 0x10 inf -inf 1e10 2").unwrap();
    cmd("RPUSH").arg("f").arg("").query::<i64>(&mut c).unwrap();
    assert_eq!(
        strs(&mut c, "SORT f"),
        v(&["-inf", "", "2", "0x10", "1e10", "inf"])
    );
    q::<()>(&mut c, "MSET score:1 10 score:2 20 score:3 not-a-double").unwrap();
    q::<i64>(&mut c, "SADD ok 1 2 3").unwrap();
    assert_eq!(err_text(q::<Value>(&mut c, "SORT ok BY score:*")), e);
}

#[test]
fn by_and_get_patterns() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "RPUSH l 3 1 2 10").unwrap();
    q::<()>(&mut c, "MSET w_3 30 w_1 10 w_2 -20").unwrap();
    q::<i64>(&mut c, "HSET h_3 f 3").unwrap();
    q::<i64>(&mut c, "HSET h_1 f c").unwrap();
    q::<i64>(&mut c, "HSET h_10 f b").unwrap();
    // A missing weight counts as 0, ties broken by the element.
    assert_eq!(strs(&mut c, "SORT l BY w_*"), v(&["2", "10", "1", "3"]));
    assert_eq!(
        strs(&mut c, "SORT l BY w_* DESC"),
        v(&["3", "1", "10", "2"])
    );
    assert_eq!(
        strs(&mut c, "SORT l BY w_* LIMIT 1 2 DESC"),
        v(&["1", "10"])
    );
    // ALPHA: missing values sort first.
    assert_eq!(
        strs(&mut c, "SORT l BY h_*->f ALPHA"),
        v(&["2", "3", "10", "1"])
    );
    let r: Vec<Option<String>> = q(
        &mut c,
        "SORT l BY w_* GET # GET w_* GET h_*->f GET const GET h_*->nofield GET w_*->f",
    )
    .unwrap();
    let want = |s: &[Option<&str>]| s.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
    let n = None;
    assert_eq!(
        r,
        want(&[
            Some("2"),
            Some("-20"),
            n,
            n,
            n,
            n,
            Some("10"),
            n,
            Some("b"),
            n,
            n,
            n,
            Some("1"),
            Some("10"),
            Some("c"),
            n,
            n,
            n,
            Some("3"),
            Some("30"),
            Some("3"),
            n,
            n,
            n,
        ])
    );
    // A pattern ending in "->" names a key, not a field.
    q::<i64>(&mut c, "RPUSH ml a").unwrap();
    q::<()>(&mut c, "SET x:a-> 100").unwrap();
    assert_eq!(strs(&mut c, "SORT ml BY num GET x:*->"), v(&["100"]));
    assert_eq!(strs(&mut c, "SORT_RO ml BY nosort GET x:*->"), v(&["100"]));
    // BY on a key of the wrong type counts as missing.
    q::<i64>(&mut c, "RPUSH w_10 x").unwrap();
    assert_eq!(strs(&mut c, "SORT l BY w_*"), v(&["2", "10", "1", "3"]));
    // Same weights: lexicographic sub-sort.
    q::<i64>(&mut c, "SADD myset a b aa c").unwrap();
    assert_eq!(
        strs(&mut c, "SORT myset BY score:*"),
        v(&["a", "aa", "b", "c"])
    );
}

#[test]
fn nosort_keeps_native_order() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "LPUSH testa 2 1 4 3 5").unwrap();
    assert_eq!(
        strs(&mut c, "SORT testa BY nosort"),
        v(&["5", "3", "4", "1", "2"])
    );
    assert_eq!(
        strs(&mut c, "SORT testa BY nosort DESC LIMIT 1 2"),
        v(&["1", "4"])
    );
    assert_eq!(
        q::<i64>(&mut c, "SORT testa BY nosort LIMIT 0 3 STORE testb").unwrap(),
        3
    );
    assert_eq!(strs(&mut c, "LRANGE testb 0 -1"), v(&["5", "3", "4"]));
    q::<i64>(&mut c, "ZADD z 1 a 5 b 2 c 10 d 3 e").unwrap();
    assert_eq!(
        strs(&mut c, "SORT z BY nosort"),
        v(&["a", "c", "e", "b", "d"])
    );
    assert_eq!(
        strs(&mut c, "SORT z BY nosort DESC"),
        v(&["d", "b", "e", "c", "a"])
    );
    assert_eq!(
        strs(&mut c, "SORT z BY nosort DESC LIMIT 0 2"),
        v(&["d", "b"])
    );
    assert!(strs(&mut c, "SORT z BY nosort LIMIT 5 10").is_empty());
    assert_eq!(
        strs(&mut c, "SORT z BY nosort LIMIT -10 100"),
        v(&["a", "c", "e", "b", "d"])
    );
    assert_eq!(
        strs(&mut c, "SORT z ALPHA DESC"),
        v(&["e", "d", "c", "b", "a"])
    );
    // Redis converts a sorted set it sorts to the skiplist encoding.
    let enc: String = q(&mut c, "OBJECT ENCODING z").unwrap();
    assert_eq!(enc, "skiplist");
    // The last BY wins, but a constant BY anywhere disables sorting.
    assert_eq!(
        strs(&mut c, "SORT testa BY nosort BY w_*"),
        v(&["5", "3", "4", "1", "2"])
    );
    // A set has no order: with STORE it is sorted ALPHA.
    q::<i64>(&mut c, "SADD myset b a c 1 aa").unwrap();
    assert_eq!(q::<i64>(&mut c, "SORT myset BY _ STORE out").unwrap(), 5);
    assert_eq!(
        strs(&mut c, "LRANGE out 0 -1"),
        v(&["1", "a", "aa", "b", "c"])
    );
    assert_eq!(
        q::<i64>(&mut c, "SORT myset BY _ DESC STORE out").unwrap(),
        5
    );
    assert_eq!(
        strs(&mut c, "LRANGE out 0 -1"),
        v(&["c", "b", "aa", "a", "1"])
    );
    q::<i64>(&mut c, "SADD ints 5 3 9 1").unwrap();
    assert_eq!(
        strs(&mut c, "SORT ints BY nosort"),
        v(&["1", "3", "5", "9"])
    );
}

#[test]
fn store() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    // Missing source: 0, and the destination is deleted.
    assert_eq!(q::<i64>(&mut c, "SORT foo{t} STORE bar{t}").unwrap(), 0);
    q::<i64>(&mut c, "LPUSH foo{t} bar").unwrap();
    assert_eq!(
        q::<i64>(&mut c, "SORT foo{t} ALPHA LIMIT 10 10 STORE zap{t}").unwrap(),
        0
    );
    assert_eq!(q::<i64>(&mut c, "EXISTS zap{t}").unwrap(), 0);
    assert_eq!(q::<i64>(&mut c, "SORT empty{t} STORE foo{t}").unwrap(), 0);
    assert_eq!(q::<i64>(&mut c, "EXISTS foo{t}").unwrap(), 0);
    // Overwrites any type and drops the TTL.
    q::<i64>(&mut c, "RPUSH l 3 1 2").unwrap();
    q::<()>(&mut c, "SET dst v EX 100").unwrap();
    assert_eq!(q::<i64>(&mut c, "SORT l STORE dst").unwrap(), 3);
    assert_eq!(strs(&mut c, "LRANGE dst 0 -1"), v(&["1", "2", "3"]));
    assert_eq!(q::<i64>(&mut c, "TTL dst").unwrap(), -1);
    // Sorting into the source itself.
    assert_eq!(q::<i64>(&mut c, "SORT l DESC STORE l").unwrap(), 3);
    assert_eq!(strs(&mut c, "LRANGE l 0 -1"), v(&["3", "2", "1"]));
    // GET results: missing values are stored as empty strings.
    q::<()>(&mut c, "SET w_1 one").unwrap();
    assert_eq!(
        q::<i64>(&mut c, "SORT l GET # GET w_* STORE dst").unwrap(),
        6
    );
    assert_eq!(
        strs(&mut c, "LRANGE dst 0 -1"),
        v(&["1", "one", "2", "", "3", ""])
    );
    // Encoding: listpack when small, quicklist past the limits.
    let enc: String = q(&mut c, "OBJECT ENCODING dst").unwrap();
    assert_eq!(enc, "listpack");
    let many: Vec<String> = (0..1000).map(|i| format!("element-{i:05}")).collect();
    cmd("RPUSH")
        .arg("big")
        .arg(&many)
        .query::<i64>(&mut c)
        .unwrap();
    assert_eq!(
        q::<i64>(&mut c, "SORT big ALPHA STORE bigsorted").unwrap(),
        1000
    );
    let enc: String = q(&mut c, "OBJECT ENCODING bigsorted").unwrap();
    assert_eq!(enc, "quicklist");
    let got = strs(&mut c, "LRANGE bigsorted 0 -1");
    assert_eq!(got, many);
    q::<()>(&mut c, "CONFIG SET list-max-listpack-size 4").unwrap();
    assert_eq!(q::<i64>(&mut c, "SORT l STORE small").unwrap(), 3);
    let enc: String = q(&mut c, "OBJECT ENCODING small").unwrap();
    assert_eq!(enc, "listpack");
    assert_eq!(
        q::<i64>(&mut c, "SORT big ALPHA LIMIT 0 5 STORE small").unwrap(),
        5
    );
    let enc: String = q(&mut c, "OBJECT ENCODING small").unwrap();
    assert_eq!(enc, "quicklist");
}

#[test]
fn getkeys_and_command_info() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        strs(&mut c, "COMMAND GETKEYS sort abc store def"),
        v(&["abc", "def"])
    );
    assert_eq!(
        strs(
            &mut c,
            "COMMAND GETKEYS sort abc store invalid store stillbad store def"
        ),
        v(&["abc", "def"])
    );
    assert_eq!(strs(&mut c, "COMMAND GETKEYS sort_ro abc"), v(&["abc"]));
    assert_eq!(
        strs(&mut c, "COMMAND GETKEYS sort abc limit store x store y"),
        v(&["abc", "y"])
    );
    assert_eq!(
        strs(&mut c, "COMMAND GETKEYS sort abc get store"),
        v(&["abc"])
    );
    let info: Value = q(&mut c, "COMMAND INFO sort").unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("movablekeys"), "{text}");
}

#[test]
fn resp_shapes() {
    let s = common::Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(b"RPUSH l b a\r\n", b":2\r\n");
    r.roundtrip(
        b"SORT l ALPHA GET # GET nokey_*\r\n",
        b"*4\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n$-1\r\n",
    );
    r.roundtrip(b"SORT nokey\r\n", b"*0\r\n");
    r.roundtrip(b"SORT nokey STORE d\r\n", b":0\r\n");
    r.roundtrip(b"SORT l BY nosort GET const\r\n", b"*2\r\n$-1\r\n$-1\r\n");
    r.send(b"HELLO 3\r\n");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let _ = r.s.read(&mut buf);
    r.roundtrip(
        b"SORT l ALPHA DESC GET # GET nokey_*\r\n",
        b"*4\r\n$1\r\nb\r\n_\r\n$1\r\na\r\n_\r\n",
    );
}

#[test]
fn inside_multi_and_concurrently() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "RPUSH l 3 1 2").unwrap();
    q::<()>(&mut c, "MSET w_1 3 w_2 2 w_3 1").unwrap();
    let r: (Vec<String>, i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("SORT")
        .arg(&["l", "BY", "w_*"])
        .cmd("SORT")
        .arg(&["l", "BY", "w_*", "STORE", "out"])
        .cmd("LRANGE")
        .arg(&["out", "0", "-1"])
        .query(&mut c)
        .unwrap();
    assert_eq!(r.0, v(&["3", "2", "1"]));
    assert_eq!(r.1, 3);
    assert_eq!(r.2, v(&["3", "2", "1"]));
    // SORT with patterns locks the whole database; other clients writing
    // keys meanwhile must neither deadlock nor see a torn result.
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let mut c = s.client();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let k = format!("k{t}_{}", i % 7);
                    cmd("SET").arg(&k).arg(i).query::<()>(&mut c).unwrap();
                    cmd("RPUSH").arg("l2").arg(i).query::<i64>(&mut c).unwrap();
                    cmd("SORT")
                        .arg(&["l", "BY", "w_*", "GET", "w_*", "STORE", &k])
                        .query::<i64>(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    for _ in 0..300 {
        assert_eq!(strs(&mut c, "SORT l BY w_* GET #"), v(&["3", "2", "1"]));
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(q::<i64>(&mut c, "LLEN l2").unwrap(), 900);
}

#[test]
fn blocked_pop_is_served_by_store() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, "RPUSH src 2 1").unwrap();
    let mut b = s.client();
    let h = std::thread::spawn(move || {
        let r: (String, String) = q(&mut b, "BLPOP dst 5").unwrap();
        r
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(q::<i64>(&mut c, "SORT src STORE dst").unwrap(), 2);
    assert_eq!(h.join().unwrap(), ("dst".to_string(), "1".to_string()));
}
