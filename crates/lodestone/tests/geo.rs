//! Integration tests of the geo family over TCP. Expected bytes were
//! captured from redis-server with the same commands.

mod common;

use common::{q, qerr, Server};
use redis::Value;

const SICILY: &[&str] = &[
    "GEOADD",
    "Sicily",
    "13.361389",
    "38.115556",
    "Palermo",
    "15.087269",
    "37.502669",
    "Catania",
];

#[test]
fn geoadd_options_and_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, SICILY), 2);
    assert_eq!(q::<i64>(&mut c, SICILY), 0);
    assert_eq!(q::<String>(&mut c, &["TYPE", "Sicily"]), "zset");
    assert_eq!(
        q::<String>(&mut c, &["ZSCORE", "Sicily", "Palermo"]),
        "3479099956230698"
    );
    // CH counts updates, NX never updates, XX never adds.
    assert_eq!(
        q::<i64>(
            &mut c,
            &["GEOADD", "Sicily", "CH", "13.5", "38", "Palermo", "1", "2", "x"]
        ),
        2
    );
    assert_eq!(
        q::<i64>(
            &mut c,
            &["GEOADD", "Sicily", "NX", "CH", "1", "1", "Palermo"]
        ),
        0
    );
    assert_eq!(
        q::<i64>(
            &mut c,
            &["GEOADD", "Sicily", "XX", "CH", "1", "1", "Palermo", "1", "1", "y"]
        ),
        1
    );
    assert_eq!(q::<Value>(&mut c, &["ZSCORE", "Sicily", "y"]), Value::Nil);
    // XX on a missing key creates nothing.
    assert_eq!(
        q::<i64>(&mut c, &["GEOADD", "nokey", "XX", "1", "1", "a"]),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nokey"]), 0);

    assert_eq!(
        qerr(&mut c, &["GEOADD", "k", "xx", "nx", "1", "2", "a"]),
        "ERR syntax error"
    );
    assert_eq!(
        qerr(&mut c, &["GEOADD", "k", "ch", "xx", "foo", "1", "2", "a"]),
        "ERR syntax error"
    );
    assert_eq!(
        qerr(&mut c, &["GEOADD", "k", "1", "2", "a", "foo", "bar", "b"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        qerr(&mut c, &["GEOADD", "k", "181", "2", "a"]),
        "ERR invalid longitude,latitude pair 181.000000,2.000000"
    );
    assert_eq!(
        qerr(&mut c, &["GEOADD", "k", "1", "85.06", "a"]),
        "ERR invalid longitude,latitude pair 1.000000,85.060000"
    );
    // Nothing was written by the failing commands.
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k"]), 0);
    q::<()>(&mut c, &["SET", "str", "x"]);
    assert!(qerr(&mut c, &["GEOADD", "str", "1", "2", "a"]).starts_with("WRONGTYPE"));
    // Coordinates are validated before the type check, as in Redis.
    assert!(qerr(&mut c, &["GEOADD", "str", "1", "200", "a"]).starts_with("ERR invalid"));
}

#[test]
fn encodings_follow_zset_limits() {
    let s = Server::start(&["--zset-max-listpack-entries", "3"]);
    let mut c = s.client();
    q::<i64>(
        &mut c,
        &["GEOADD", "g", "1", "1", "a", "2", "2", "b", "3", "3", "c"],
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "g"]),
        "listpack"
    );
    q::<i64>(&mut c, &["GEOADD", "g", "4", "4", "d"]);
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "g"]),
        "skiplist"
    );
    // Four at once convert on creation.
    q::<i64>(
        &mut c,
        &[
            "GEOADD", "h", "1", "1", "a", "2", "2", "b", "3", "3", "c", "4", "4", "d",
        ],
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "h"]),
        "skiplist"
    );
    // A small stored result goes back to listpack.
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "1",
                "1",
                "BYRADIUS",
                "200",
                "km"
            ]
        ),
        2
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "d"]),
        "listpack"
    );
    assert_eq!(q::<i64>(&mut c, &["ZREM", "g", "a", "b", "c", "d"]), 4);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "g"]), 0);
}

#[test]
fn pos_hash_dist() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, SICILY);
    let mut r = s.raw();
    r.roundtrip(
        b"GEOPOS Sicily Palermo nope\r\n",
        b"*2\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*-1\r\n",
    );
    r.roundtrip(
        b"GEOHASH Sicily Palermo Catania nope\r\n",
        b"*3\r\n$11\r\nsqc8b49rny0\r\n$11\r\nsqdtr74hyu0\r\n$-1\r\n",
    );
    r.roundtrip(b"GEOPOS nokey a b\r\n", b"*2\r\n*-1\r\n*-1\r\n");
    r.roundtrip(b"GEOHASH nokey a\r\n", b"*1\r\n$-1\r\n");
    r.roundtrip(b"GEOPOS Sicily\r\n", b"*0\r\n");
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania\r\n",
        b"$11\r\n166274.1516\r\n",
    );
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania km\r\n",
        b"$8\r\n166.2742\r\n",
    );
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania MI\r\n",
        b"$8\r\n103.3182\r\n",
    );
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania ft\r\n",
        b"$11\r\n545518.8700\r\n",
    );
    r.roundtrip(b"GEODIST Sicily Palermo nope\r\n", b"$-1\r\n");
    r.roundtrip(b"GEODIST nokey a b\r\n", b"$-1\r\n");
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania yd\r\n",
        b"-ERR unsupported unit provided. please use M, KM, FT, MI\r\n",
    );
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania km x\r\n",
        b"-ERR syntax error\r\n",
    );
    // Scores that were not written by GEOADD decode like Redis does.
    r.roundtrip(b"ZADD w -5 neg 0.5 half\r\n", b":2\r\n");
    r.roundtrip(
        b"GEOHASH w neg half\r\n",
        b"*2\r\n$11\r\nbp05b5048p0\r\n$11\r\n00bh0hbj200\r\n",
    );
}

#[test]
fn search_replies_resp2() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, SICILY);
    q::<i64>(
        &mut c,
        &[
            "GEOADD",
            "Sicily",
            "12.758489",
            "38.788135",
            "edge1",
            "17.241510",
            "38.788135",
            "edge2",
        ],
    );
    let mut r = s.raw();
    r.roundtrip(
        b"GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHCOORD WITHDIST WITHHASH\r\n",
        b"*4\r\n*4\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n:3479447370796909\r\n*2\r\n$20\r\n15.08726745843887329\r\n$20\r\n37.50266842333162032\r\n*4\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n:3479099956230698\r\n*2\r\n$20\r\n13.36138933897018433\r\n$20\r\n38.11555639549629859\r\n*4\r\n$5\r\nedge2\r\n$8\r\n279.7403\r\n:3481342659049484\r\n*2\r\n$20\r\n17.24151045083999634\r\n$20\r\n38.78813451624225195\r\n*4\r\n$5\r\nedge1\r\n$8\r\n279.7405\r\n:3479273021651468\r\n*2\r\n$19\r\n12.7584877610206604\r\n$20\r\n38.78813451624225195\r\n",
    );
    r.roundtrip(
        b"GEORADIUS Sicily 15 37 200 km WITHDIST DESC\r\n",
        b"*2\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n",
    );
    r.roundtrip(
        b"GEORADIUS_RO Sicily 15 37 200 km COUNT 1\r\n",
        b"*1\r\n$7\r\nCatania\r\n",
    );
    r.roundtrip(
        b"GEORADIUSBYMEMBER_RO Sicily Palermo 100 km\r\n",
        b"*2\r\n$7\r\nPalermo\r\n$5\r\nedge1\r\n",
    );
    r.roundtrip(
        b"GEOSEARCH Sicily FROMLONLAT 0 0 BYRADIUS 1 km\r\n",
        b"*0\r\n",
    );
    r.roundtrip(
        b"GEOSEARCH nokey FROMLONLAT 0 0 BYRADIUS 1 km\r\n",
        b"*0\r\n",
    );
}

#[test]
fn search_replies_resp3() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, SICILY);
    q::<i64>(
        &mut c,
        &["GEOADD", "Sicily", "12.758489", "38.788135", "edge1"],
    );
    let mut r = s.raw();
    r.send(b"HELLO 3\r\n");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut buf = [0u8; 4096];
    use std::io::Read;
    let n = r.s.read(&mut buf).unwrap();
    assert_eq!(buf[0], b'%', "{:?}", &buf[..n]);
    r.roundtrip(
        b"GEOPOS Sicily Palermo nope\r\n",
        b"*2\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n_\r\n",
    );
    r.roundtrip(
        b"GEOHASH Sicily Palermo nope\r\n",
        b"*2\r\n$11\r\nsqc8b49rny0\r\n_\r\n",
    );
    r.roundtrip(b"GEODIST Sicily Palermo nope\r\n", b"_\r\n");
    r.roundtrip(
        b"GEODIST Sicily Palermo Catania km\r\n",
        b"$8\r\n166.2742\r\n",
    );
    r.roundtrip(
        b"GEOSEARCH Sicily FROMMEMBER Palermo BYRADIUS 200 km WITHCOORD WITHDIST COUNT 2\r\n",
        b"*2\r\n*3\r\n$7\r\nPalermo\r\n$6\r\n0.0000\r\n*2\r\n,13.36138933897018433\r\n,38.11555639549629859\r\n*3\r\n$5\r\nedge1\r\n$7\r\n91.4007\r\n*2\r\n,12.7584877610206604\r\n,38.78813451624225195\r\n",
    );
}

#[test]
fn search_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, SICILY);
    q::<()>(&mut c, &["SET", "str", "x"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "FROMMEMBER", "Palermo"],
            "ERR syntax error",
        ),
        (
            &["GEOSEARCH", "Sicily", "BYRADIUS", "200", "km", "ASC", "WITHDIST"],
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH",
        ),
        (
            &["geosearch", "Sicily", "FROMLONLAT", "15", "37", "WITHDIST", "ASC"],
            "ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"],
            "ERR syntax error",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "-1", "km"],
            "ERR radius cannot be negative",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "x", "km"],
            "ERR need numeric radius",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "x", "km"],
            "ERR need numeric height",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYBOX", "1", "-1", "km"],
            "ERR height or width cannot be negative",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "ANY"],
            "ERR the ANY argument requires COUNT argument",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "COUNT", "0"],
            "ERR COUNT must be > 0",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "COUNT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "STOREDIST"],
            "ERR syntax error",
        ),
        (
            &["GEOSEARCHSTORE", "d", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "WITHDIST"],
            "ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "d", "WITHHASH"],
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
        ),
        (
            &["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "d"],
            "ERR syntax error",
        ),
        (
            &["GEORADIUS", "Sicily", "15", "99", "200", "km"],
            "ERR invalid longitude,latitude pair 15.000000,99.000000",
        ),
        (
            &["GEORADIUSBYMEMBER", "Sicily", "nope", "200", "km"],
            "ERR could not decode requested zset member",
        ),
        (
            &["GEORADIUS", "str", "15", "99", "200", "km"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["GEOSEARCH", "str", "FROMLONLAT", "15", "37", "x", "y"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["GEOPOS", "str", "a"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
        (
            &["GEODIST", "str", "a", "b"],
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(&qerr(&mut c, args), want, "{args:?}");
    }
    // A missing source skips the member and shape checks once parsing is done.
    assert_eq!(
        q::<Value>(
            &mut c,
            &["GEORADIUSBYMEMBER", "nokey", "m", "x", "y", "WITHDIST"]
        ),
        Value::Array(vec![])
    );
}

#[test]
fn store_variants() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, SICILY);
    // Destinations in other hash slots than the source (movable keys).
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "dst1"
            ]
        ),
        2
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "dst1", "0", "-1", "WITHSCORES"]),
        ["Palermo", "3479099956230698", "Catania", "3479447370796909"]
    );
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEORADIUSBYMEMBER",
                "Sicily",
                "Palermo",
                "200",
                "km",
                "STOREDIST",
                "dst2",
                "DESC",
                "COUNT",
                "1"
            ]
        ),
        1
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "dst2", "0", "-1", "WITHSCORES"]),
        ["Catania", "166.27415156960032"]
    );
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "dst3",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "STOREDIST"
            ]
        ),
        2
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "dst3", "0", "-1"]),
        ["Catania", "Palermo"]
    );
    assert_eq!(
        q::<String>(&mut c, &["ZSCORE", "dst3", "Catania"]),
        "56.4412578701582"
    );
    // An empty result deletes the destination.
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "dst3",
                "Sicily",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km"
            ]
        ),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst3"]), 0);
    // So does a missing source.
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEORADIUS",
                "nokey",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "dst1"
            ]
        ),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst1"]), 0);
    // STORE replaces any type and clears the TTL.
    q::<()>(&mut c, &["SET", "dst4", "x", "EX", "100"]);
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "dst4"
            ]
        ),
        2
    );
    assert_eq!(q::<i64>(&mut c, &["TTL", "dst4"]), -1);
    // Same key as source and destination.
    assert_eq!(
        q::<i64>(
            &mut c,
            &[
                "GEOSEARCHSTORE",
                "Sicily",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "100",
                "km"
            ]
        ),
        1
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "Sicily", "0", "-1"]),
        ["Catania"]
    );
    // Inside MULTI the movable destination is locked too.
    q::<i64>(&mut c, SICILY);
    q::<()>(&mut c, &["MULTI"]);
    q::<()>(
        &mut c,
        &[
            "GEORADIUS",
            "Sicily",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "x1",
            "STOREDIST",
            "x2",
        ],
    );
    q::<()>(&mut c, &["EXISTS", "x1", "x2"]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["EXEC"]), [2, 1]);
}

#[test]
fn command_metadata() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEORADIUS",
                "src",
                "1",
                "2",
                "3",
                "km",
                "STORE",
                "dst"
            ]
        ),
        ["src", "dst"]
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "COMMAND",
                "GETKEYS",
                "GEOSEARCHSTORE",
                "dst",
                "src",
                "FROMLONLAT",
                "1",
                "2",
                "BYRADIUS",
                "1",
                "m"
            ]
        ),
        ["dst", "src"]
    );
    let info: Vec<Value> = q(&mut c, &["COMMAND", "INFO", "georadius"]);
    let Value::Array(row) = &info[0] else {
        panic!("{info:?}")
    };
    assert_eq!(row[1], Value::Int(-6));
    let Value::Array(flags) = &row[2] else {
        panic!()
    };
    let flags: Vec<String> = flags
        .iter()
        .map(|f| redis::from_redis_value(f).unwrap())
        .collect();
    assert_eq!(flags, ["write", "denyoom", "movablekeys"]);
}
