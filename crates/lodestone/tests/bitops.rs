//! Integration tests of the bitmap family: SETBIT, GETBIT, BITCOUNT,
//! BITPOS, BITOP, BITFIELD and BITFIELD_RO, over TCP.

mod common;

use common::Server;
use redis::{cmd, Connection, RedisResult, Value};

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&[u8]]) -> T {
    let mut k = cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c).unwrap()
}

fn e(c: &mut Connection, args: &[&str]) -> String {
    let mut k = cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    let r: RedisResult<Value> = k.query(c);
    let err = r.expect_err("expected an error");
    format!(
        "{} {}",
        err.code().unwrap_or(""),
        err.detail().unwrap_or("")
    )
}

fn i(c: &mut Connection, args: &[&str]) -> i64 {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    q(c, &v)
}

#[test]
fn setbit_getbit_and_encoding() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(i(&mut c, &["SETBIT", "k", "7", "1"]), 0);
    assert_eq!(i(&mut c, &["SETBIT", "k", "7", "1"]), 1);
    assert_eq!(i(&mut c, &["SETBIT", "k", "0", "1"]), 0);
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", b"k"]), vec![0x81]);
    assert_eq!(i(&mut c, &["GETBIT", "k", "0"]), 1);
    assert_eq!(i(&mut c, &["GETBIT", "k", "1"]), 0);
    assert_eq!(i(&mut c, &["GETBIT", "k", "100000"]), 0);
    assert_eq!(i(&mut c, &["GETBIT", "nokey", "3"]), 0);
    assert_eq!(q::<String>(&mut c, &[b"OBJECT", b"ENCODING", b"k"]), "raw");
    assert_eq!(i(&mut c, &["SETBIT", "k", "20", "0"]), 0);
    assert_eq!(i(&mut c, &["STRLEN", "k"]), 3);
    // Integer-encoded strings are read as their decimal text ('1' = 0x31).
    let _: () = q(&mut c, &[b"SET", b"n", b"1"]);
    assert_eq!(i(&mut c, &["GETBIT", "n", "2"]), 1);
    assert_eq!(i(&mut c, &["GETBIT", "n", "7"]), 1);
    assert_eq!(i(&mut c, &["GETBIT", "n", "1"]), 0);
    assert_eq!(i(&mut c, &["SETBIT", "n", "6", "1"]), 0);
    assert_eq!(q::<String>(&mut c, &[b"GET", b"n"]), "3");
    // Argument errors.
    let off = "ERR bit offset is not an integer or out of range";
    let bit = "ERR bit is not an integer or out of range";
    assert_eq!(e(&mut c, &["SETBIT", "k", "-1", "1"]), off);
    assert_eq!(e(&mut c, &["SETBIT", "k", "x", "1"]), off);
    assert_eq!(e(&mut c, &["SETBIT", "k", "4294967296", "1"]), off);
    assert_eq!(e(&mut c, &["SETBIT", "k", "0", "2"]), bit);
    assert_eq!(e(&mut c, &["SETBIT", "k", "0", "-1"]), bit);
    assert_eq!(e(&mut c, &["SETBIT", "k", "x", "5"]), off);
    assert_eq!(e(&mut c, &["GETBIT", "k", "-1"]), off);
    // The offset limit follows proto-max-bulk-len.
    let _: () = q(
        &mut c,
        &[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1048576"],
    );
    assert_eq!(e(&mut c, &["SETBIT", "k", "8388608", "1"]), off);
    assert_eq!(i(&mut c, &["SETBIT", "k", "8388607", "1"]), 0);
    assert_eq!(i(&mut c, &["STRLEN", "k"]), 1048576);
}

#[test]
fn bitcount_ranges() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &[b"SET", b"s", b"foobar"]);
    assert_eq!(i(&mut c, &["BITCOUNT", "s"]), 26);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "0", "0"]), 4);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "1", "1"]), 6);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "1", "1", "BYTE"]), 6);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "5", "30", "BIT"]), 17);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "-2", "-1"]), 7);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "-1", "-2"]), 0);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "100", "200"]), 0);
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "0", "-1", "bit"]), 26);
    assert_eq!(i(&mut c, &["BITCOUNT", "nokey"]), 0);
    assert_eq!(i(&mut c, &["BITCOUNT", "nokey", "0"]), 0);
    assert_eq!(e(&mut c, &["BITCOUNT", "s", "0"]), "ERR syntax error");
    assert_eq!(
        e(&mut c, &["BITCOUNT", "s", "0", "1", "bits"]),
        "ERR syntax error"
    );
    assert_eq!(
        e(&mut c, &["BITCOUNT", "s", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
    // A reversed negative range answers 0 before the unit is checked.
    assert_eq!(i(&mut c, &["BITCOUNT", "s", "-1", "-2", "nope"]), 0);
    let _: () = q(&mut c, &[b"SET", b"e", b""]);
    assert_eq!(i(&mut c, &["BITCOUNT", "e"]), 0);
    assert_eq!(i(&mut c, &["BITCOUNT", "e", "0", "-1"]), 0);
}

#[test]
fn bitpos_rules() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let set = |c: &mut Connection, v: &[u8]| {
        let _: () = q(c, &[b"SET", b"p", v]);
    };
    set(&mut c, b"\xff\xf0\x00");
    assert_eq!(i(&mut c, &["BITPOS", "p", "0"]), 12);
    set(&mut c, b"\x00\xff\xf0");
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "0"]), 8);
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "2"]), 16);
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "2", "-1", "BYTE"]), 16);
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "7", "15", "BIT"]), 8);
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "7", "-3", "bit"]), 8);
    set(&mut c, b"\x00\x00\x00");
    assert_eq!(i(&mut c, &["BITPOS", "p", "1"]), -1);
    // All ones: without an end the string is zero padded on the right,
    // with an end no clear bit is found.
    set(&mut c, b"\xff\xff\xff");
    assert_eq!(i(&mut c, &["BITPOS", "p", "0"]), 24);
    assert_eq!(i(&mut c, &["BITPOS", "p", "0", "0"]), 24);
    assert_eq!(i(&mut c, &["BITPOS", "p", "0", "0", "-1"]), -1);
    assert_eq!(i(&mut c, &["BITPOS", "p", "0", "0", "-1", "bit"]), -1);
    assert_eq!(i(&mut c, &["BITPOS", "nokey", "0"]), 0);
    assert_eq!(i(&mut c, &["BITPOS", "nokey", "1"]), -1);
    assert_eq!(i(&mut c, &["BITPOS", "p", "1", "5", "2"]), -1);
    set(&mut c, b"");
    assert_eq!(i(&mut c, &["BITPOS", "p", "0"]), -1);
    assert_eq!(
        e(&mut c, &["BITPOS", "p", "2"]),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(
        e(&mut c, &["BITPOS", "p", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        e(&mut c, &["BITPOS", "p", "1", "0", "1", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        e(&mut c, &["BITPOS", "p", "1", "0", "1", "bit", "x"]),
        "ERR syntax error"
    );
}

#[test]
fn bitop_operations() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &[b"SET", b"a{t}", b"\xff\x0f\x55"]);
    let _: () = q(&mut c, &[b"SET", b"b{t}", b"\x0f\xff"]);
    assert_eq!(i(&mut c, &["BITOP", "AND", "d{t}", "a{t}", "b{t}"]), 3);
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GET", b"d{t}"]),
        vec![0x0f, 0x0f, 0x00]
    );
    assert_eq!(i(&mut c, &["BITOP", "or", "d{t}", "a{t}", "b{t}"]), 3);
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GET", b"d{t}"]),
        vec![0xff, 0xff, 0x55]
    );
    assert_eq!(
        i(&mut c, &["BITOP", "XOR", "d{t}", "a{t}", "b{t}", "none{t}"]),
        3
    );
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GET", b"d{t}"]),
        vec![0xf0, 0xf0, 0x55]
    );
    assert_eq!(i(&mut c, &["BITOP", "NOT", "d{t}", "a{t}"]), 3);
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GET", b"d{t}"]),
        vec![0x00, 0xf0, 0xaa]
    );
    assert_eq!(
        q::<String>(&mut c, &[b"OBJECT", b"ENCODING", b"d{t}"]),
        "raw"
    );
    // Long inputs take the word-at-a-time path.
    let x: Vec<u8> = (0..1000u32).map(|v| (v * 7) as u8).collect();
    let y: Vec<u8> = (0..777u32).map(|v| (v * 13 + 1) as u8).collect();
    let _: () = q(&mut c, &[b"SET", b"x{t}", &x]);
    let _: () = q(&mut c, &[b"SET", b"y{t}", &y]);
    for (op, f) in [
        ("AND", (|a: u8, b: u8| a & b) as fn(u8, u8) -> u8),
        ("OR", |a, b| a | b),
        ("XOR", |a, b| a ^ b),
    ] {
        assert_eq!(i(&mut c, &["BITOP", op, "z{t}", "x{t}", "y{t}"]), 1000);
        let want: Vec<u8> = (0..1000)
            .map(|k| f(x[k], y.get(k).copied().unwrap_or(0)))
            .collect();
        assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", b"z{t}"]), want);
    }
    // An empty result deletes the destination.
    let _: () = q(&mut c, &[b"SET", b"d{t}", b"x"]);
    assert_eq!(
        i(&mut c, &["BITOP", "OR", "d{t}", "none{t}", "none2{t}"]),
        0
    );
    assert_eq!(i(&mut c, &["EXISTS", "d{t}"]), 0);
    // Destination also a source.
    let _: () = q(&mut c, &[b"SET", b"s{t}", b"\x01"]);
    assert_eq!(i(&mut c, &["BITOP", "NOT", "s{t}", "s{t}"]), 1);
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", b"s{t}"]), vec![0xfe]);
    // TTL is dropped by the store.
    let _: () = q(&mut c, &[b"SET", b"t{t}", b"a", b"EX", b"100"]);
    i(&mut c, &["BITOP", "AND", "t{t}", "a{t}"]);
    assert_eq!(i(&mut c, &["TTL", "t{t}"]), -1);
    assert_eq!(
        e(&mut c, &["BITOP", "NOT", "d{t}", "a{t}", "b{t}"]),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(
        e(&mut c, &["BITOP", "NAND", "d{t}", "a{t}"]),
        "ERR syntax error"
    );
    // Integer-encoded sources use their text.
    let _: () = q(&mut c, &[b"SET", b"i{t}", b"12"]);
    assert_eq!(i(&mut c, &["BITOP", "OR", "d{t}", "i{t}"]), 2);
    assert_eq!(q::<String>(&mut c, &[b"GET", b"d{t}"]), "12");
}

#[test]
fn bitfield_operations() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let bf = |c: &mut Connection, args: &[&str]| -> Vec<Option<i64>> {
        let mut k = cmd("BITFIELD");
        for a in args {
            k.arg(*a);
        }
        k.query(c).unwrap()
    };
    assert_eq!(
        bf(&mut c, &["b", "SET", "i8", "0", "-100", "GET", "i8", "0"]),
        vec![Some(0), Some(-100)]
    );
    assert_eq!(
        bf(&mut c, &["b", "set", "u8", "#1", "200", "get", "u8", "8"]),
        vec![Some(0), Some(200)]
    );
    assert_eq!(
        bf(&mut c, &["b", "INCRBY", "u8", "#1", "100"]),
        vec![Some(44)]
    );
    assert_eq!(
        bf(
            &mut c,
            &["b", "OVERFLOW", "SAT", "INCRBY", "u8", "#1", "1000", "INCRBY", "i8", "0", "-100"]
        ),
        vec![Some(255), Some(-128)]
    );
    assert_eq!(
        bf(
            &mut c,
            &["b", "OVERFLOW", "FAIL", "INCRBY", "u8", "#1", "1", "GET", "u8", "#1"]
        ),
        vec![None, Some(255)]
    );
    assert_eq!(
        bf(
            &mut c,
            &["b", "SET", "i64", "64", "-1", "GET", "i64", "64", "GET", "u63", "65"]
        ),
        vec![Some(0), Some(-1), Some(i64::MAX)]
    );
    assert_eq!(
        bf(
            &mut c,
            &[
                "b",
                "OVERFLOW",
                "WRAP",
                "INCRBY",
                "i64",
                "64",
                "-9223372036854775807",
                "INCRBY",
                "i64",
                "64",
                "-2"
            ]
        ),
        vec![Some(i64::MIN), Some(i64::MAX - 1)]
    );
    assert_eq!(bf(&mut c, &["b"]), Vec::<Option<i64>>::new());
    assert_eq!(bf(&mut c, &["nokey", "GET", "u4", "0"]), vec![Some(0)]);
    assert_eq!(i(&mut c, &["EXISTS", "nokey"]), 0);
    // BITFIELD_RO.
    let mut k = cmd("BITFIELD_RO");
    k.arg("b").arg("GET").arg("u8").arg("#1");
    assert_eq!(k.query::<Vec<i64>>(&mut c).unwrap(), vec![255]);
    assert_eq!(
        e(&mut c, &["BITFIELD_RO", "b", "SET", "u8", "0", "1"]),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
    // Errors, in Redis's parse order.
    let ty = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    assert_eq!(e(&mut c, &["BITFIELD", "b", "GET", "u64", "0"]), ty);
    assert_eq!(e(&mut c, &["BITFIELD", "b", "GET", "i65", "0"]), ty);
    assert_eq!(e(&mut c, &["BITFIELD", "b", "GET", "x8", "0"]), ty);
    assert_eq!(e(&mut c, &["BITFIELD", "b", "GET", "u0", "0"]), ty);
    assert_eq!(
        e(&mut c, &["BITFIELD", "b", "GET", "u8", "-1"]),
        "ERR bit offset is not an integer or out of range"
    );
    assert_eq!(
        e(&mut c, &["BITFIELD", "b", "GET", "u8", "#-1"]),
        "ERR bit offset is not an integer or out of range"
    );
    assert_eq!(
        e(&mut c, &["BITFIELD", "b", "SET", "u8", "0", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        e(&mut c, &["BITFIELD", "b", "OVERFLOW", "MAYBE"]),
        "ERR Invalid OVERFLOW type specified"
    );
    assert_eq!(
        e(&mut c, &["BITFIELD", "b", "GET", "u8"]),
        "ERR syntax error"
    );
    assert_eq!(e(&mut c, &["BITFIELD", "b", "FOO"]), "ERR syntax error");
    // A failed write still creates the key, sized for the write.
    assert_eq!(
        bf(
            &mut c,
            &["new", "OVERFLOW", "FAIL", "SET", "u2", "100", "7"]
        ),
        vec![None]
    );
    assert_eq!(i(&mut c, &["STRLEN", "new"]), 13);
}

#[test]
fn bitfield_fail_is_resp3_null() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    raw.send(b"HELLO 3\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    raw.s
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let hello = raw.read_exact_n(1 << 16);
    assert!(hello.starts_with(b"%"));
    raw.s
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    raw.roundtrip(b"BITFIELD k OVERFLOW FAIL SET u1 0 5\r\n", b"*1\r\n_\r\n");
}

#[test]
fn dirty_counts_only_changes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let dirty = |c: &mut Connection| -> i64 {
        let info: String = q(c, &[b"INFO", b"persistence"]);
        info.lines()
            .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let d0 = dirty(&mut c);
    i(&mut c, &["SETBIT", "f", "0", "0"]);
    assert_eq!(dirty(&mut c), d0 + 1);
    i(&mut c, &["SETBIT", "f", "0", "0"]);
    assert_eq!(dirty(&mut c), d0 + 1);
    i(&mut c, &["SETBIT", "f", "0", "1"]);
    assert_eq!(dirty(&mut c), d0 + 2);
    i(&mut c, &["SETBIT", "f", "90", "0"]);
    assert_eq!(dirty(&mut c), d0 + 3);
}
