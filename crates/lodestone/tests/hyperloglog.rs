//! Integration tests of the HyperLogLog family: PFADD, PFCOUNT, PFMERGE,
//! PFDEBUG, PFSELFTEST, and byte-for-byte agreement with a real
//! redis-server when one is installed.

mod common;

use common::{RealRedis, Server};
use redis::{cmd, Connection, RedisResult, Value};

fn run<T: redis::FromRedisValue>(c: &mut Connection, args: &[&[u8]]) -> T {
    let mut k = cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap()
}

fn i(c: &mut Connection, args: &[&str]) -> i64 {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    run(c, &v)
}

fn err(c: &mut Connection, args: &[&str]) -> String {
    let mut k = cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    let r: RedisResult<Value> = k.query(c);
    let e = r.expect_err("expected an error");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

fn get(c: &mut Connection, key: &str) -> Vec<u8> {
    run(c, &[b"GET", key.as_bytes()])
}

fn pfadd(c: &mut Connection, key: &str, elems: &[String]) -> i64 {
    let mut k = cmd("PFADD");
    k.arg(key);
    for e in elems {
        k.arg(e);
    }
    k.query(c).unwrap()
}

#[test]
fn add_count_and_cache() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(i(&mut c, &["PFADD", "h"]), 1);
    assert_eq!(i(&mut c, &["PFADD", "h"]), 0);
    assert_eq!(i(&mut c, &["PFCOUNT", "h"]), 0);
    assert_eq!(i(&mut c, &["PFADD", "h", "a", "b", "c"]), 1);
    assert_eq!(i(&mut c, &["PFADD", "h", "a", "b", "c"]), 0);
    assert_eq!(get(&mut c, "h")[15], 0x80, "cache invalidated by PFADD");
    assert_eq!(i(&mut c, &["PFCOUNT", "h"]), 3);
    let v = get(&mut c, "h");
    assert_eq!(&v[..4], b"HYLL");
    assert_eq!(v[4], 1, "sparse");
    assert_eq!(&v[8..16], &3u64.to_le_bytes(), "cached cardinality");
    assert_eq!(
        run::<String>(&mut c, &[b"OBJECT", b"ENCODING", b"h"]),
        "raw"
    );
    assert_eq!(i(&mut c, &["PFADD", "h", ""]), 1);
    assert_eq!(i(&mut c, &["PFCOUNT", "h"]), 4);
    assert_eq!(i(&mut c, &["PFCOUNT", "missing"]), 0);
    assert_eq!(i(&mut c, &["EXISTS", "missing"]), 0);
}

#[test]
fn errors_and_corruption() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let not_hll = "WRONGTYPE Key is not a valid HyperLogLog string value.";
    let _: () = run(&mut c, &[b"SET", b"foo", b"bar"]);
    assert_eq!(err(&mut c, &["PFADD", "foo", "x"]), not_hll);
    assert_eq!(err(&mut c, &["PFCOUNT", "foo"]), not_hll);
    assert_eq!(err(&mut c, &["PFCOUNT", "foo", "bar"]), not_hll);
    assert_eq!(err(&mut c, &["PFMERGE", "bar", "foo"]), not_hll);
    assert_eq!(err(&mut c, &["PFMERGE", "foo", "bar"]), not_hll);
    let _: () = run(&mut c, &[b"SET", b"num", b"12345"]);
    assert_eq!(err(&mut c, &["PFCOUNT", "num"]), not_hll);
    // Broken magic, unknown encoding, dense of the wrong length.
    for (pos, byte) in [(0usize, b'0'), (4, b'x'), (4, 0)] {
        i(&mut c, &["DEL", "h"]);
        i(&mut c, &["PFADD", "h", "a", "b", "c"]);
        let mut k = cmd("SETRANGE");
        k.arg("h").arg(pos).arg(&[byte][..]);
        let _: i64 = k.query(&mut c).unwrap();
        assert_eq!(err(&mut c, &["PFCOUNT", "h"]), not_hll);
    }
    // Extra opcodes at the tail of a sparse value.
    i(&mut c, &["DEL", "h"]);
    i(&mut c, &["PFADD", "h", "a", "b", "c"]);
    i(&mut c, &["APPEND", "h", "hello"]);
    let invalid = "INVALIDOBJ Corrupted HLL object detected";
    assert_eq!(err(&mut c, &["PFCOUNT", "h"]), invalid);
    assert_eq!(err(&mut c, &["PFCOUNT", "h", "other"]), invalid);
    assert_eq!(err(&mut c, &["PFMERGE", "d", "h"]), invalid);
    assert_eq!(err(&mut c, &["PFADD", "h", "zz"]), invalid);
    assert_eq!(err(&mut c, &["PFDEBUG", "GETREG", "h"]), invalid);
    // Random corruption never takes the server down.
    let mut x = 99u64;
    for round in 0..300 {
        i(&mut c, &["DEL", "h"]);
        let elems: Vec<String> = (0..(round * 7 % 2500))
            .map(|j| format!("{round}-{j}"))
            .collect();
        pfadd(&mut c, "h", &elems);
        let len = i(&mut c, &["STRLEN", "h"]) as u64;
        for _ in 0..3 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut k = cmd("SETRANGE");
            k.arg("h").arg((x >> 20) % len).arg(&[(x >> 50) as u8][..]);
            let _: i64 = k.query(&mut c).unwrap();
        }
        let _: RedisResult<Value> = cmd("PFCOUNT").arg("h").query(&mut c);
        let _: RedisResult<Value> = cmd("PFADD").arg("h").arg("q").query(&mut c);
        let _: RedisResult<Value> = cmd("PFMERGE").arg("h2").arg("h").query(&mut c);
        let _: RedisResult<Value> = cmd("PFDEBUG").arg("DECODE").arg("h").query(&mut c);
    }
    assert_eq!(run::<String>(&mut c, &[b"PING"]), "PONG");
}

#[test]
fn merge_and_union() {
    let s = Server::start(&[]);
    let mut c = s.client();
    i(&mut c, &["PFADD", "h1{t}", "a", "b", "c"]);
    i(&mut c, &["PFADD", "h2{t}", "b", "c", "d"]);
    i(&mut c, &["PFADD", "h3{t}", "c", "d", "e"]);
    let before = get(&mut c, "h1{t}");
    assert_eq!(
        i(&mut c, &["PFCOUNT", "h1{t}", "h2{t}", "h3{t}", "nope{t}"]),
        5
    );
    assert_eq!(
        get(&mut c, "h1{t}"),
        before,
        "multi-key PFCOUNT leaves keys alone"
    );
    let _: () = run(&mut c, &[b"PFMERGE", b"h{t}", b"h1{t}", b"h2{t}", b"h3{t}"]);
    assert_eq!(i(&mut c, &["PFCOUNT", "h{t}"]), 5);
    let _: () = run(&mut c, &[b"PFMERGE", b"empty{t}", b"nope{t}"]);
    assert_eq!(i(&mut c, &["EXISTS", "empty{t}"]), 1);
    assert_eq!(i(&mut c, &["PFCOUNT", "empty{t}"]), 0);
    let _: () = run(&mut c, &[b"PFMERGE", b"h1{t}"]);
    assert_eq!(i(&mut c, &["PFCOUNT", "h1{t}"]), 3);
    // A dense input makes the destination dense.
    i(&mut c, &["PFDEBUG", "TODENSE", "h3{t}"]);
    let _: () = run(&mut c, &[b"PFMERGE", b"m{t}", b"h1{t}", b"h3{t}"]);
    assert_eq!(
        run::<String>(&mut c, &[b"PFDEBUG", b"ENCODING", b"m{t}"]),
        "dense"
    );
    assert_eq!(i(&mut c, &["PFCOUNT", "m{t}"]), 5);
}

#[test]
fn pfdebug_subcommands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        err(&mut c, &["PFDEBUG", "GETREG", "nokey"]),
        "ERR The specified key does not exist"
    );
    i(&mut c, &["PFADD", "h"]);
    assert_eq!(
        run::<String>(&mut c, &[b"PFDEBUG", b"DECODE", b"h"]),
        "Z:16384"
    );
    assert_eq!(
        run::<String>(&mut c, &[b"PFDEBUG", b"ENCODING", b"h"]),
        "sparse"
    );
    i(&mut c, &["PFADD", "h", "1", "2", "3"]);
    let regs: Vec<i64> = run(&mut c, &[b"PFDEBUG", b"GETREG", b"h"]);
    assert_eq!(regs.len(), 16384);
    assert_eq!(regs.iter().filter(|&&r| r > 0).count(), 3);
    assert_eq!(
        run::<String>(&mut c, &[b"PFDEBUG", b"ENCODING", b"h"]),
        "dense"
    );
    assert_eq!(i(&mut c, &["PFDEBUG", "TODENSE", "h"]), 0);
    assert_eq!(
        err(&mut c, &["PFDEBUG", "DECODE", "h"]),
        "ERR HLL encoding is not sparse"
    );
    assert_eq!(
        err(&mut c, &["PFDEBUG", "NOPE", "h"]),
        "ERR Unknown PFDEBUG subcommand 'NOPE'"
    );
    assert_eq!(i(&mut c, &["PFCOUNT", "h"]), 3);
}

#[test]
fn promotion_follows_sparse_max_bytes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for max in [100usize, 500, 3000] {
        let _: () = run(
            &mut c,
            &[
                b"CONFIG",
                b"SET",
                b"hll-sparse-max-bytes",
                max.to_string().as_bytes(),
            ],
        );
        i(&mut c, &["DEL", "h"]);
        i(&mut c, &["PFADD", "h"]);
        let mut n = 0;
        loop {
            let len = i(&mut c, &["STRLEN", "h"]) as usize;
            let enc: String = run(&mut c, &[b"PFDEBUG", b"ENCODING", b"h"]);
            if len > max {
                assert_eq!(enc, "dense");
                break;
            }
            assert_eq!(enc, "sparse");
            let elems: Vec<String> = (0..10).map(|j| format!("{max}:{n}:{j}")).collect();
            n += 1;
            pfadd(&mut c, "h", &elems);
        }
    }
}

#[test]
fn selftest_passes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(run::<String>(&mut c, &[b"PFSELFTEST"]), "OK");
}

#[test]
fn byte_identical_to_redis() {
    let Some(real) = RealRedis::start(&["--appendonly", "no"]) else {
        return;
    };
    let mut r = real.client();
    let s = Server::start(&[]);
    let mut c = s.client();
    // The same adds produce the same bytes, sparse and dense, and the same
    // answers to PFADD; counts agree on values moved either way.
    for (round, total) in [0usize, 1, 3, 20, 150, 700, 2500, 6000, 40000]
        .into_iter()
        .enumerate()
    {
        let key = format!("h{round}");
        let mut added = 0;
        let mut batch = 1;
        while added < total {
            let n = batch.min(total - added);
            let elems: Vec<String> = (added..added + n)
                .map(|j| format!("e{round}:{j}"))
                .collect();
            assert_eq!(pfadd(&mut r, &key, &elems), pfadd(&mut c, &key, &elems));
            added += n;
            batch = batch * 2 + 1;
        }
        pfadd(&mut r, &key, &[]);
        pfadd(&mut c, &key, &[]);
        assert_eq!(get(&mut r, &key), get(&mut c, &key), "{total} elements");
        let cr = i(&mut r, &["PFCOUNT", &key]);
        assert_eq!(cr, i(&mut c, &["PFCOUNT", &key]), "{total} elements");
        assert_eq!(get(&mut r, &key), get(&mut c, &key), "cached {total}");
        // Redis's bytes loaded into Lodestone.
        let bytes = get(&mut r, &key);
        let _: () = run(&mut c, &[b"SET", b"copy", &bytes]);
        i(&mut c, &["PFADD", "copy", "x"]);
        i(&mut r, &["PFADD", &key, "x"]);
        i(&mut c, &["PFADD", &key, "x"]);
        assert_eq!(
            i(&mut c, &["PFCOUNT", "copy"]),
            i(&mut r, &["PFCOUNT", &key])
        );
        assert_eq!(get(&mut r, &key), get(&mut c, "copy"));
    }
    // Merges and unions.
    let keys: Vec<String> = (0..9).map(|k| format!("h{k}")).collect();
    let mut args: Vec<&str> = vec!["PFCOUNT"];
    args.extend(keys.iter().map(|k| k.as_str()));
    assert_eq!(i(&mut r, &args), i(&mut c, &args));
    for sources in [&keys[1..4], &keys[2..6], &keys[..]] {
        for conn in [&mut r, &mut c] {
            i(conn, &["DEL", "dest"]);
            let mut k = cmd("PFMERGE");
            k.arg("dest").arg(sources);
            let _: () = k.query(conn).unwrap();
        }
        assert_eq!(get(&mut r, "dest"), get(&mut c, "dest"));
        assert_eq!(
            i(&mut r, &["PFCOUNT", "dest"]),
            i(&mut c, &["PFCOUNT", "dest"])
        );
    }
    // Different sparse limits.
    for max in ["40", "300"] {
        for conn in [&mut r, &mut c] {
            let _: () = run(
                conn,
                &[b"CONFIG", b"SET", b"hll-sparse-max-bytes", max.as_bytes()],
            );
            i(conn, &["DEL", "lim"]);
        }
        for step in 0..40 {
            let elems: Vec<String> = (0..5).map(|j| format!("{max}/{step}/{j}")).collect();
            assert_eq!(pfadd(&mut r, "lim", &elems), pfadd(&mut c, "lim", &elems));
            assert_eq!(
                get(&mut r, "lim"),
                get(&mut c, "lim"),
                "max {max} step {step}"
            );
        }
    }
}
