//! Integration tests for the set family against the real binary.

mod common;

use redis::{cmd, Connection, RedisResult, Value};
use std::collections::BTreeSet;

fn enc(c: &mut Connection, key: &str) -> String {
    cmd("OBJECT").arg("ENCODING").arg(key).query(c).unwrap()
}

fn members(c: &mut Connection, key: &str) -> BTreeSet<String> {
    cmd("SMEMBERS").arg(key).query(c).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn err_text<T: std::fmt::Debug>(r: RedisResult<T>) -> String {
    let e = r.expect_err("expected an error");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
        .trim()
        .to_string()
}

#[test]
fn basics_and_encodings() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let n: i64 = cmd("SADD")
        .arg("s")
        .arg(&["1", "2", "3", "2"])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(enc(&mut c, "s"), "intset");
    let n: i64 = cmd("SADD").arg("s").arg("a").query(&mut c).unwrap();
    assert_eq!(n, 1);
    assert_eq!(enc(&mut c, "s"), "listpack");
    assert_eq!(members(&mut c, "s"), set(&["1", "2", "3", "a"]));
    let v: i64 = cmd("SISMEMBER").arg("s").arg("a").query(&mut c).unwrap();
    assert_eq!(v, 1);
    let v: Vec<i64> = cmd("SMISMEMBER")
        .arg("s")
        .arg(&["x", "1", "a"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![0, 1, 1]);
    let v: i64 = cmd("SCARD").arg("s").query(&mut c).unwrap();
    assert_eq!(v, 4);
    // Removing the last member deletes the key.
    let v: i64 = cmd("SREM")
        .arg("s")
        .arg(&["1", "2", "3", "a", "zz"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 4);
    let v: i64 = cmd("EXISTS").arg("s").query(&mut c).unwrap();
    assert_eq!(v, 0);

    // listpack -> hashtable past 128 entries; never back on deletes.
    for i in 0..128 {
        let _: i64 = cmd("SADD")
            .arg("big")
            .arg(format!("m{i}"))
            .query(&mut c)
            .unwrap();
    }
    assert_eq!(enc(&mut c, "big"), "listpack");
    let _: i64 = cmd("SADD").arg("big").arg("m128").query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "big"), "hashtable");
    let _: i64 = cmd("SREM").arg("big").arg("m128").query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "big"), "hashtable");
    // long values go straight to a hashtable
    let _: i64 = cmd("SADD")
        .arg("long")
        .arg("x".repeat(65))
        .query(&mut c)
        .unwrap();
    assert_eq!(enc(&mut c, "long"), "hashtable");
    // a SADD with more members than the listpack limit converts up front
    let args: Vec<String> = (0..129).map(|i| format!("k{i}")).collect();
    let _: i64 = cmd("SADD").arg("pre").arg(&args).query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "pre"), "hashtable");
    // thresholds follow CONFIG SET
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("set-max-intset-entries")
        .arg("2")
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SADD")
        .arg("few")
        .arg(&["1", "2", "3"])
        .query(&mut c)
        .unwrap();
    assert_eq!(enc(&mut c, "few"), "listpack"); // hint 3 > 2: not an intset
    for m in ["1", "2"] {
        let _: i64 = cmd("SADD").arg("few2").arg(m).query(&mut c).unwrap();
    }
    assert_eq!(enc(&mut c, "few2"), "intset");
    let _: i64 = cmd("SADD").arg("few2").arg("3").query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "few2"), "hashtable"); // intset overflow
}

#[test]
fn errors_and_argument_validation() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let _: () = cmd("SET").arg("str").arg("x").query(&mut c).unwrap();
    for name in ["SCARD", "SMEMBERS"] {
        let e = err_text(cmd(name).arg("str").query::<Value>(&mut c));
        assert!(e.starts_with("WRONGTYPE"), "{name}: {e}");
    }
    let e = err_text(cmd("SADD").arg("str").arg("a").query::<Value>(&mut c));
    assert!(e.starts_with("WRONGTYPE"));
    let e = err_text(cmd("SINTERCARD").arg("0").arg("a").query::<Value>(&mut c));
    assert_eq!(e, "ERR numkeys should be greater than 0");
    let e = err_text(cmd("SINTERCARD").arg("2").arg("a").query::<Value>(&mut c));
    assert_eq!(e, "ERR Number of keys can't be greater than number of args");
    let e = err_text(
        cmd("SINTERCARD")
            .arg("1")
            .arg("a")
            .arg("LIMIT")
            .arg("-1")
            .query::<Value>(&mut c),
    );
    assert_eq!(e, "ERR LIMIT can't be negative");
    let e = err_text(
        cmd("SINTERCARD")
            .arg("1")
            .arg("a")
            .arg("b")
            .query::<Value>(&mut c),
    );
    assert_eq!(e, "ERR syntax error");
    let e = err_text(cmd("SPOP").arg("k").arg("-1").query::<Value>(&mut c));
    assert_eq!(e, "ERR value is out of range, must be positive");
    let e = err_text(
        cmd("SPOP")
            .arg("k")
            .arg("1")
            .arg("2")
            .query::<Value>(&mut c),
    );
    assert_eq!(e, "ERR syntax error");
    let e = err_text(cmd("SRANDMEMBER").arg("k").arg("x").query::<Value>(&mut c));
    assert_eq!(e, "ERR value is not an integer or out of range");
    let e = err_text(
        cmd("SRANDMEMBER")
            .arg("k")
            .arg("-9223372036854775808")
            .query::<Value>(&mut c),
    );
    assert!(e.contains("value is out of range"), "{e}");
    let e = err_text(cmd("SSCAN").arg("k").arg("x").query::<Value>(&mut c));
    assert_eq!(e, "ERR invalid cursor");
    let _: i64 = cmd("SADD").arg("k").arg("a").query(&mut c).unwrap();
    let e = err_text(
        cmd("SSCAN")
            .arg("k")
            .arg("0")
            .arg("COUNT")
            .arg("0")
            .query::<Value>(&mut c),
    );
    assert_eq!(e, "ERR syntax error");
    let e = err_text(
        cmd("SSCAN")
            .arg("k")
            .arg("0")
            .arg("TYPE")
            .arg("set")
            .query::<Value>(&mut c),
    );
    assert_eq!(e, "ERR syntax error");
    // SMOVE: a missing source wins over a wrong-type destination.
    let v: i64 = cmd("SMOVE")
        .arg("nosuch")
        .arg("str")
        .arg("a")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 0);
    let e = err_text(
        cmd("SMOVE")
            .arg("k")
            .arg("str")
            .arg("a")
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with("WRONGTYPE"));
    let e = err_text(
        cmd("SDIFFSTORE")
            .arg("d")
            .arg("str")
            .arg("k")
            .query::<Value>(&mut c),
    );
    assert!(e.starts_with("WRONGTYPE"));
    let v: i64 = cmd("EXISTS").arg("d").query(&mut c).unwrap();
    assert_eq!(v, 0);
}

#[test]
fn algebra_and_store_encodings() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let _: i64 = cmd("SADD")
        .arg("{t}a")
        .arg(&["a", "b", "c", "1", "3", "6"])
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SADD")
        .arg("{t}b")
        .arg(&["e", "f", "1", "2", "3"])
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SADD")
        .arg("{t}i")
        .arg(&["1", "2", "7"])
        .query(&mut c)
        .unwrap();
    let inter: BTreeSet<String> = cmd("SINTER").arg("{t}a").arg("{t}b").query(&mut c).unwrap();
    assert_eq!(inter, set(&["1", "3"]));
    let n: i64 = cmd("SINTERSTORE")
        .arg("{t}r")
        .arg("{t}a")
        .arg("{t}b")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(enc(&mut c, "{t}r"), "intset");
    let n: i64 = cmd("SINTERCARD")
        .arg("2")
        .arg("{t}a")
        .arg("{t}b")
        .arg("LIMIT")
        .arg("1")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let u: BTreeSet<String> = cmd("SUNION")
        .arg("{t}a")
        .arg("{t}b")
        .arg("{t}nosuch")
        .query(&mut c)
        .unwrap();
    assert_eq!(u, set(&["a", "b", "c", "1", "2", "3", "6", "e", "f"]));
    let n: i64 = cmd("SUNIONSTORE")
        .arg("{t}u")
        .arg("{t}i")
        .arg("{t}r")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(enc(&mut c, "{t}u"), "intset");
    let d: BTreeSet<String> = cmd("SDIFF")
        .arg("{t}a")
        .arg("{t}b")
        .arg("{t}i")
        .query(&mut c)
        .unwrap();
    assert_eq!(d, set(&["a", "b", "c", "6"]));
    let d: Vec<String> = cmd("SDIFF").arg("{t}a").arg("{t}a").query(&mut c).unwrap();
    assert!(d.is_empty());
    // An empty result deletes the destination, even of another type.
    let _: () = cmd("SET").arg("{t}x").arg("v").query(&mut c).unwrap();
    let n: i64 = cmd("SINTERSTORE")
        .arg("{t}x")
        .arg("{t}a")
        .arg("{t}nosuch")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let v: i64 = cmd("EXISTS").arg("{t}x").query(&mut c).unwrap();
    assert_eq!(v, 0);
    // STORE into one of the sources, and TTL is dropped.
    let _: i64 = cmd("EXPIRE").arg("{t}a").arg("100").query(&mut c).unwrap();
    let n: i64 = cmd("SUNIONSTORE")
        .arg("{t}a")
        .arg("{t}a")
        .arg("{t}i")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 8);
    let ttl: i64 = cmd("TTL").arg("{t}a").query(&mut c).unwrap();
    assert_eq!(ttl, -1);
    // SMOVE between encodings
    let v: i64 = cmd("SMOVE")
        .arg("{t}b")
        .arg("{t}i")
        .arg("e")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(enc(&mut c, "{t}i"), "listpack");
    let v: i64 = cmd("SMOVE")
        .arg("{t}i")
        .arg("{t}new")
        .arg("7")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 1);
    assert_eq!(enc(&mut c, "{t}new"), "intset");
}

#[test]
fn spop_srandmember() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let all: Vec<String> = (0..300).map(|i| format!("m{i}")).collect();
    let _: i64 = cmd("SADD").arg("h").arg(&all).query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "h"), "hashtable");
    let r: Vec<String> = cmd("SRANDMEMBER")
        .arg("h")
        .arg("-1000")
        .query(&mut c)
        .unwrap();
    assert_eq!(r.len(), 1000);
    let r: Vec<String> = cmd("SRANDMEMBER")
        .arg("h")
        .arg("250")
        .query(&mut c)
        .unwrap();
    assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 250);
    let r: Vec<String> = cmd("SRANDMEMBER").arg("h").arg("20").query(&mut c).unwrap();
    assert_eq!(r.iter().collect::<BTreeSet<_>>().len(), 20);
    // Popping most of a hashtable rebuilds the survivors as a listpack.
    let p: Vec<String> = cmd("SPOP").arg("h").arg("290").query(&mut c).unwrap();
    assert_eq!(p.iter().collect::<BTreeSet<_>>().len(), 290);
    assert_eq!(enc(&mut c, "h"), "listpack");
    let rest = members(&mut c, "h");
    assert_eq!(rest.len(), 10);
    assert!(p.iter().all(|m| !rest.contains(m)));
    let p: Vec<String> = cmd("SPOP").arg("h").arg("100").query(&mut c).unwrap();
    assert_eq!(p.len(), 10);
    let v: i64 = cmd("EXISTS").arg("h").query(&mut c).unwrap();
    assert_eq!(v, 0);
    let _: i64 = cmd("SADD")
        .arg("i")
        .arg(&["1", "2", "3"])
        .query(&mut c)
        .unwrap();
    let x: String = cmd("SPOP").arg("i").query(&mut c).unwrap();
    assert!(["1", "2", "3"].contains(&x.as_str()));
    let n: Option<String> = cmd("SPOP").arg("nosuch").query(&mut c).unwrap();
    assert_eq!(n, None);
}

#[test]
fn reply_shapes_resp2_and_resp3() {
    let s = common::Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(b"SADD s 5\r\n", b":1\r\n");
    r.roundtrip(b"SMEMBERS s\r\n", b"*1\r\n$1\r\n5\r\n");
    r.roundtrip(b"SMEMBERS nosuch\r\n", b"*0\r\n");
    r.roundtrip(b"SRANDMEMBER nosuch\r\n", b"$-1\r\n");
    r.roundtrip(b"SRANDMEMBER nosuch 5\r\n", b"*0\r\n");
    r.roundtrip(b"SRANDMEMBER s 0\r\n", b"*0\r\n");
    r.roundtrip(b"SPOP nosuch 3\r\n", b"*0\r\n");
    r.roundtrip(b"SSCAN nosuch 0\r\n", b"*2\r\n$1\r\n0\r\n*0\r\n");
    r.roundtrip(
        b"SSCAN s 0 MATCH 5*\r\n",
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\n5\r\n",
    );
    r.roundtrip(b"SMISMEMBER s 5 6\r\n", b"*2\r\n:1\r\n:0\r\n");
    r.send(b"HELLO 3\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut buf = [0u8; 8192];
    let n = std::io::Read::read(&mut r.s, &mut buf).unwrap();
    assert_eq!(buf[0], b'%', "{}", n);
    r.roundtrip(b"SMEMBERS s\r\n", b"~1\r\n$1\r\n5\r\n");
    r.roundtrip(b"SINTER s nosuch\r\n", b"~0\r\n");
    r.roundtrip(b"SUNION s\r\n", b"~1\r\n$1\r\n5\r\n");
    r.roundtrip(b"SRANDMEMBER s 1\r\n", b"*1\r\n$1\r\n5\r\n");
    r.roundtrip(b"SRANDMEMBER nosuch\r\n", b"_\r\n");
    r.roundtrip(b"SPOP s 0\r\n", b"~0\r\n");
    r.roundtrip(b"SPOP s 5\r\n", b"~1\r\n$1\r\n5\r\n");
}

#[test]
fn sscan_returns_every_member_of_a_large_set() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let all: Vec<String> = (0..5000).map(|i| format!("member:{i}")).collect();
    for chunk in all.chunks(500) {
        let _: i64 = cmd("SADD").arg("big").arg(chunk).query(&mut c).unwrap();
    }
    let mut seen = BTreeSet::new();
    let mut cursor = 0u64;
    let mut calls = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(20)
            .query(&mut c)
            .unwrap();
        // writes between calls must not hide members present all along
        let _: i64 = cmd("SADD")
            .arg("big")
            .arg(format!("extra:{calls}"))
            .query(&mut c)
            .unwrap();
        seen.extend(batch);
        calls += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(calls > 10, "scan should take many calls, took {calls}");
    assert!(all.iter().all(|m| seen.contains(m)));
    let (_, batch): (u64, Vec<String>) = cmd("SSCAN")
        .arg("big")
        .arg(0)
        .arg("MATCH")
        .arg("member:1?")
        .arg("COUNT")
        .arg(100000)
        .query(&mut c)
        .unwrap();
    assert_eq!(batch.len(), 10);
}

#[test]
fn sintercard_movable_keys() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    let keys: Vec<String> = cmd("COMMAND")
        .arg("GETKEYS")
        .arg("SINTERCARD")
        .arg("2")
        .arg("a")
        .arg("b")
        .arg("LIMIT")
        .arg("1")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    let _: i64 = cmd("SADD")
        .arg("a")
        .arg(&["1", "2", "3"])
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SADD")
        .arg("b")
        .arg(&["2", "3", "4"])
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("SINTERCARD")
        .arg("2")
        .arg("a")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn digest_and_memory_usage() {
    let s = common::Server::start(&[]);
    let mut c = s.client();
    // same members, different encodings -> same digest
    let _: i64 = cmd("SADD")
        .arg("a")
        .arg(&["1", "2", "3"])
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SADD")
        .arg("b")
        .arg(&["3", "2", "1", "x"])
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("SREM").arg("b").arg("x").query(&mut c).unwrap();
    assert_eq!(enc(&mut c, "a"), "intset");
    assert_eq!(enc(&mut c, "b"), "listpack");
    let d: Vec<String> = cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("a")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!(d[0], d[1]);
    let m: i64 = cmd("MEMORY").arg("USAGE").arg("a").query(&mut c).unwrap();
    assert!(m > 0);
}

#[test]
fn watch_ignores_writes_that_change_nothing() {
    let s = common::Server::start(&["--io-threads", "2"]);
    let mut c = s.client();
    let mut other = s.client();
    let _: i64 = redis::cmd("SADD")
        .arg("src")
        .arg("a")
        .arg("b")
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("SADD")
        .arg("dst")
        .arg("a")
        .query(&mut c)
        .unwrap();
    // SMOVE of a member the destination already has changes only the source;
    // SADD of an existing member changes nothing.
    let _: () = redis::cmd("WATCH").arg("dst").query(&mut c).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: String = redis::cmd("SADD")
        .arg("dst")
        .arg("c")
        .query(&mut c)
        .unwrap();
    let moved: i64 = redis::cmd("SMOVE")
        .arg("src")
        .arg("dst")
        .arg("a")
        .query(&mut other)
        .unwrap();
    assert_eq!(moved, 1);
    let _: i64 = redis::cmd("SADD")
        .arg("dst")
        .arg("a")
        .query(&mut other)
        .unwrap();
    let _: i64 = redis::cmd("SREM")
        .arg("dst")
        .arg("zz")
        .query(&mut other)
        .unwrap();
    let r: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(r, Some(vec![1]));
    // A real change still aborts the transaction.
    let _: () = redis::cmd("WATCH").arg("dst").query(&mut c).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: String = redis::cmd("SCARD").arg("dst").query(&mut c).unwrap();
    let _: i64 = redis::cmd("SMOVE")
        .arg("src")
        .arg("dst")
        .arg("b")
        .query(&mut other)
        .unwrap();
    let r: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(r, None);
    // A STORE touches only its destination, not its sources.
    let _: () = redis::cmd("WATCH").arg("src").query(&mut c).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: String = redis::cmd("SCARD").arg("dst").query(&mut c).unwrap();
    let _: i64 = redis::cmd("SUNIONSTORE")
        .arg("out")
        .arg("src")
        .arg("dst")
        .query(&mut other)
        .unwrap();
    let r: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(r, Some(vec![3]));
}
