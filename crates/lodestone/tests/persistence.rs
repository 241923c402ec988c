//! RDB persistence against the real binary: DEBUG RELOAD and restarts keep
//! every type and encoding, BGSAVE is a point-in-time snapshot while writes
//! go on, DUMP/RESTORE, corrupt files, MISCONF, and interop with
//! /usr/bin/redis-server (Redis 7.0 loads RDB <= 10) when it is installed.

mod common;
use common::{free_port, info_i64, q, qerr, temp_dir, RealRedis, Server};
use std::path::Path;
use std::time::{Duration, Instant};

/// Keys of every type in each of its encodings.
fn fill(c: &mut redis::Connection) {
    let _: () = q(c, &["SET", "str", "hello"]);
    let _: () = q(c, &["SET", "int", "12345"]);
    let _: () = q(c, &["SET", "big", &"x".repeat(5000)]);
    let _: () = q(c, &["SET", "ttl", "v", "EX", "1000"]);
    let _: () = q(c, &["SET", "long", &"ab".repeat(30)]);
    let _: () = q(c, &["RPUSH", "list", "a", "1", "-7", "bb"]);
    let _: () = q(c, &["SADD", "ints", "1", "2", "-100000"]);
    let _: () = q(c, &["SADD", "lpset", "a", "b", "3"]);
    let _: () = q(c, &["ZADD", "zs", "1", "a", "2.5", "b", "-inf", "c"]);
    let _: () = q(c, &["HSET", "hs", "f", "v", "g", "12"]);
    let _: () = q(c, &["XADD", "st", "1-1", "f", "v"]);
    let _: () = q(c, &["XADD", "st", "2-1", "f", "w", "g", "x"]);
    let _: () = q(c, &["XGROUP", "CREATE", "st", "grp", "0"]);
    let _: redis::Value = q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "grp",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "st",
            ">",
        ],
    );
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        let s = i.to_string();
        pipe.cmd("RPUSH")
            .arg("qlist")
            .arg(format!("element-{i}"))
            .ignore();
        pipe.cmd("SADD").arg("bigset").arg(format!("m{i}")).ignore();
        pipe.cmd("SADD").arg("bigints").arg(&s).ignore();
        pipe.cmd("ZADD")
            .arg("skip")
            .arg(i)
            .arg(format!("m{i}"))
            .ignore();
        pipe.cmd("HSET")
            .arg("bighash")
            .arg(format!("f{i}"))
            .arg(&s)
            .ignore();
        pipe.cmd("XADD")
            .arg("bigst")
            .arg("*")
            .arg("i")
            .arg(&s)
            .ignore();
    }
    let _: () = pipe.query(c).unwrap();
    let _: () = q(c, &["SELECT", "3"]);
    let _: () = q(c, &["SET", "other-db", "1"]);
    let _: () = q(c, &["SELECT", "0"]);
}

fn encodings(c: &mut redis::Connection) -> Vec<String> {
    let keys = [
        "str", "int", "big", "list", "qlist", "ints", "lpset", "bigset", "bigints", "zs", "skip",
        "hs", "bighash", "st",
    ];
    keys.iter()
        .map(|k| q::<String>(c, &["OBJECT", "ENCODING", k]))
        .collect()
}

fn info_field(c: &mut redis::Connection, f: &str) -> String {
    common::info_field(c, "persistence", f)
}

fn wait_bgsave(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(c, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "bgsave never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn debug_reload_and_restart_keep_every_type_and_encoding() {
    let dir = temp_dir();
    let digest;
    let enc;
    {
        let mut s = Server::start_in(dir.clone(), &[]);
        let mut c = s.client();
        fill(&mut c);
        digest = q::<String>(&mut c, &["DEBUG", "DIGEST"]);
        enc = encodings(&mut c);
        assert_eq!(
            enc,
            [
                "embstr",
                "int",
                "raw",
                "listpack",
                "quicklist",
                "intset",
                "listpack",
                "hashtable",
                "hashtable",
                "listpack",
                "skiplist",
                "listpack",
                "hashtable",
                "stream"
            ]
        );
        let _: () = q(&mut c, &["DEBUG", "RELOAD"]);
        assert_eq!(q::<String>(&mut c, &["DEBUG", "DIGEST"]), digest);
        assert_eq!(encodings(&mut c), enc);
        let pel: redis::Value = q(&mut c, &["XPENDING", "st", "grp"]);
        assert!(format!("{pel:?}").contains("alice"));
        // Plain SHUTDOWN saves (default save points), then a new server
        // in the same directory loads the file.
        let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
        assert!(s.wait_exit(Duration::from_secs(10)));
    }
    assert!(dir.join("dump.rdb").exists());
    let s = Server::start_in(dir.clone(), &[]);
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["DEBUG", "DIGEST"]), digest);
    assert_eq!(encodings(&mut c), enc);
    let ttl: i64 = q(&mut c, &["TTL", "ttl"]);
    assert!(ttl > 990 && ttl <= 1000);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_is_a_point_in_time_snapshot() {
    let dir = temp_dir();
    let s = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg("old").ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    // 1 ms per key: the walker crawls for ~2 s while we overwrite.
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    let r: String = q(&mut c, &["BGSAVE"]);
    assert_eq!(r, "Background saving started");
    assert_eq!(
        qerr(&mut c, &["BGSAVE"]),
        "ERR Background save already in progress"
    );
    // Redis schedules only behind an AOF rewrite, not behind a save.
    assert_eq!(
        qerr(&mut c, &["BGSAVE", "SCHEDULE"]),
        "ERR Background save already in progress"
    );
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg("new").ignore();
    }
    pipe.cmd("SET").arg("added-later").arg("1").ignore();
    let _: () = pipe.query(&mut c).unwrap();
    let _: () = q(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let snap = temp_dir();
    std::fs::copy(dir.join("dump.rdb"), snap.join("dump.rdb")).unwrap();
    let s2 = Server::start_in(snap.clone(), &["--save", ""]);
    let mut c2 = s2.client();
    assert_eq!(q::<i64>(&mut c2, &["DBSIZE"]), 2000);
    for i in (0..2000).step_by(97) {
        assert_eq!(q::<String>(&mut c2, &["GET", &format!("k{i}")]), "old");
    }
    assert_eq!(q::<String>(&mut c, &["GET", "k5"]), "new");
    drop((s, s2));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&snap);
}

#[test]
fn dump_and_restore() {
    let s = Server::start(&[]);
    let mut c = s.client();
    fill(&mut c);
    for k in [
        "str", "int", "big", "list", "qlist", "lpset", "bigints", "skip", "bighash", "st",
    ] {
        let d1: Vec<String> = q(&mut c, &["DEBUG", "DIGEST-VALUE", k]);
        let enc: String = q(&mut c, &["OBJECT", "ENCODING", k]);
        let p: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut c).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg("copy")
            .arg(0)
            .arg(&p)
            .query(&mut c)
            .unwrap();
        assert_eq!(
            q::<Vec<String>>(&mut c, &["DEBUG", "DIGEST-VALUE", "copy"]),
            d1
        );
        assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "copy"]), enc);
        let e = redis::cmd("RESTORE")
            .arg("copy")
            .arg(0)
            .arg(&p)
            .query::<()>(&mut c)
            .unwrap_err();
        assert_eq!(e.code(), Some("BUSYKEY"));
        let _: () = redis::cmd("RESTORE")
            .arg("copy")
            .arg(5000)
            .arg(&p)
            .arg("REPLACE")
            .query(&mut c)
            .unwrap();
        let pttl: i64 = q(&mut c, &["PTTL", "copy"]);
        assert!(pttl > 4000 && pttl <= 5000);
        let _: () = q(&mut c, &["DEL", "copy"]);
        // Any flipped byte fails the checksum; truncations are refused.
        let mut bad = p.clone();
        bad[1] ^= 1;
        let e = redis::cmd("RESTORE")
            .arg("copy")
            .arg(0)
            .arg(&bad)
            .query::<()>(&mut c);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("DUMP payload version or checksum are wrong"));
        for cut in [0, 1, p.len() / 2, p.len() - 1] {
            let e = redis::cmd("RESTORE")
                .arg("copy")
                .arg(0)
                .arg(&p[..cut])
                .query::<()>(&mut c);
            assert!(e.is_err());
        }
    }
    assert!(q::<redis::Value>(&mut c, &["DUMP", "nokey"]) == redis::Value::Nil);
    // Checksum skipped: a payload that parses wrong is "Bad data format".
    let _: () = q(&mut c, &["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]);
    let bad = [0x0eu8, 0x05, 1, 2, 3, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let e = redis::cmd("RESTORE")
        .arg("x")
        .arg(0)
        .arg(&bad[..])
        .query::<()>(&mut c);
    assert!(e.unwrap_err().to_string().contains("Bad data format"));
    let _: () = q(&mut c, &["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"]);
    // Options.
    let p: Vec<u8> = redis::cmd("DUMP").arg("str").query(&mut c).unwrap();
    assert_eq!(
        redis::cmd("RESTORE")
            .arg("y")
            .arg(-1)
            .arg(&p)
            .query::<()>(&mut c)
            .unwrap_err()
            .to_string(),
        "An error was signalled by the server - ResponseError: Invalid TTL value, must be >= 0"
    );
    let past = redis::cmd("RESTORE")
        .arg("y")
        .arg(1)
        .arg(&p)
        .arg("ABSTTL")
        .query::<String>(&mut c)
        .unwrap();
    assert_eq!(past, "OK");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "y"]), 0);
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    let _: () = redis::cmd("RESTORE")
        .arg("y")
        .arg(0)
        .arg(&p)
        .arg("IDLETIME")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "y"]);
    assert!((1000..1010).contains(&idle));
    // IDLE survives a reload under an LRU policy.
    let _: () = q(&mut c, &["DEBUG", "RELOAD"]);
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "y"]);
    assert!((1000..1010).contains(&idle), "{idle}");
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    let _: () = redis::cmd("RESTORE")
        .arg("z")
        .arg(0)
        .arg(&p)
        .arg("FREQ")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "z"]), 100);
    let _: () = q(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "z"]), 100);
    assert_eq!(
        qerr(&mut c, &["RESTORE", "z", "0", "x", "FREQ", "300"]),
        "ERR Invalid FREQ value, must be >= 0 and <= 255"
    );
}

/// MIGRATE's arguments to `port` with the given key, db and options.
fn migrate(c: &mut redis::Connection, port: u16, key: &str, db: &str, opts: &[&str]) -> String {
    let p = port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &p, key, db, "5000"];
    args.extend_from_slice(opts);
    match redis::cmd(args[0]).arg(&args[1..]).query::<String>(c) {
        Ok(s) => s,
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
    }
}

#[test]
fn migrate_moves_copies_and_replaces_keys() {
    let a = Server::start(&["--appendonly", "yes"]);
    let b = Server::start(&[]);
    let (mut ca, mut cb) = (a.client(), b.client());
    let _: () = q(&mut ca, &["SET", "key", "v", "PX", "100000"]);
    let _: () = q(&mut ca, &["RPUSH", "list", "a", "b", "c"]);
    let _: () = q(&mut ca, &["HSET", "h", "f", "v"]);
    let _: () = q(&mut ca, &["SET", "other", "1"]);
    assert_eq!(info_i64(&mut ca, "stats", "migrate_cached_sockets"), 0);

    // A move: gone here, there with its TTL.
    assert_eq!(migrate(&mut ca, b.port, "key", "0", &[]), "OK");
    assert_eq!(q::<i64>(&mut ca, &["EXISTS", "key"]), 0);
    assert_eq!(q::<String>(&mut cb, &["GET", "key"]), "v");
    let pttl: i64 = q(&mut cb, &["PTTL", "key"]);
    assert!(pttl > 90_000 && pttl <= 100_000, "{pttl}");
    assert_eq!(info_i64(&mut ca, "stats", "migrate_cached_sockets"), 1);

    // COPY keeps the source; the target refuses to overwrite without REPLACE.
    assert_eq!(migrate(&mut ca, b.port, "list", "0", &["COPY"]), "OK");
    assert_eq!(q::<i64>(&mut ca, &["LLEN", "list"]), 3);
    assert_eq!(
        migrate(&mut ca, b.port, "list", "0", &["COPY"]),
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    let _: () = q(&mut ca, &["RPUSH", "list", "d"]);
    assert_eq!(
        migrate(&mut ca, b.port, "list", "0", &["COPY", "REPLACE"]),
        "OK"
    );
    assert_eq!(
        q::<Vec<String>>(&mut cb, &["LRANGE", "list", "0", "-1"]),
        ["a", "b", "c", "d"]
    );

    // KEYS form into another database; missing keys are skipped.
    assert_eq!(
        migrate(&mut ca, b.port, "key", "3", &["KEYS", "h"]),
        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
    );
    assert_eq!(
        migrate(&mut ca, b.port, "", "3", &["KEYS", "h", "nosuch", "other"]),
        "OK"
    );
    assert_eq!(q::<i64>(&mut ca, &["EXISTS", "h", "other"]), 0);
    let _: () = q(&mut cb, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut cb, &["HGET", "h", "f"]), "v");
    assert_eq!(q::<String>(&mut cb, &["GET", "other"]), "1");

    assert_eq!(migrate(&mut ca, b.port, "nosuch", "0", &[]), "NOKEY");
    assert_eq!(
        migrate(&mut ca, b.port, "list", "0", &["BOGUS"]),
        "ERR syntax error"
    );
    assert_eq!(
        migrate(&mut ca, b.port, "list", "x", &[]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        migrate(&mut ca, free_port(), "list", "0", &[]),
        "IOERR error or timeout connecting to the client"
    );
    // The source stays whole after the failures.
    assert_eq!(q::<i64>(&mut ca, &["LLEN", "list"]), 4);

    // The moves reached the AOF as DELs, never as MIGRATE.
    let _: () = q(&mut ca, &["CONFIG", "SET", "appendfsync", "always"]);
    let _: () = q(&mut ca, &["SET", "flush", "1"]);
    let mut aof = Vec::new();
    for e in std::fs::read_dir(a.dir.join("appendonlydir")).unwrap() {
        aof.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let aof = String::from_utf8_lossy(&aof);
    assert!(aof.contains("$3\r\nDEL\r\n$3\r\nkey\r\n"), "{aof}");
    assert!(
        aof.contains("$3\r\nDEL\r\n$1\r\nh\r\n$5\r\nother\r\n"),
        "{aof}"
    );
    assert!(!aof.to_ascii_uppercase().contains("MIGRATE"), "{aof}");
}

#[test]
fn migrate_authenticates_to_the_target() {
    let a = Server::start(&[]);
    let b = Server::start(&["--requirepass", "pw"]);
    let mut ca = a.client();
    let _: () = q(&mut ca, &["SET", "k", "v"]);
    assert_eq!(
        migrate(&mut ca, b.port, "k", "0", &[]),
        "ERR Target instance replied with error: NOAUTH Authentication required."
    );
    assert_eq!(q::<i64>(&mut ca, &["EXISTS", "k"]), 1);
    assert_eq!(migrate(&mut ca, b.port, "k", "0", &["AUTH", "pw"]), "OK");
    let mut cb = redis::Client::open(format!("redis://:pw@127.0.0.1:{}/", b.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(q::<String>(&mut cb, &["GET", "k"]), "v");
    let _: () = q(&mut ca, &["SET", "k", "w"]);
    assert_eq!(
        migrate(
            &mut ca,
            b.port,
            "k",
            "0",
            &["REPLACE", "AUTH2", "default", "pw"]
        ),
        "OK"
    );
    assert_eq!(q::<String>(&mut cb, &["GET", "k"]), "w");
}

#[test]
fn migrate_between_lodestone_and_redis_both_ways() {
    // Debian's Redis 7.0 reads DUMP payloads up to RDB version 10.
    let s = Server::start(&["--rdb-version", "10"]);
    let Some(r) = RealRedis::start(&[]) else {
        return;
    };
    let (mut c, mut rc) = (s.client(), r.client());
    let _: () = q(&mut c, &["ZADD", "z", "1", "a", "2", "b"]);
    let _: () = q(&mut c, &["SET", "s", "x", "EX", "1000"]);
    assert_eq!(migrate(&mut c, r.port, "", "0", &["KEYS", "z", "s"]), "OK");
    assert_eq!(
        q::<Vec<String>>(&mut rc, &["ZRANGE", "z", "0", "-1"]),
        ["a", "b"]
    );
    assert!(q::<i64>(&mut rc, &["TTL", "s"]) > 900);
    // And Redis's MIGRATE into Lodestone.
    assert_eq!(migrate(&mut rc, s.port, "z", "0", &[]), "OK");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "z", "0", "-1"]),
        ["a", "b"]
    );
    assert_eq!(q::<i64>(&mut rc, &["EXISTS", "z"]), 0);
}

#[test]
fn corrupt_or_truncated_file_refuses_to_start() {
    let dir = temp_dir();
    {
        let s = Server::start_in(dir.clone(), &[]);
        let mut c = s.client();
        fill(&mut c);
        let _: () = q(&mut c, &["SAVE"]);
    }
    let good = std::fs::read(dir.join("dump.rdb")).unwrap();
    for (name, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        ("bad magic", {
            let mut b = good.clone();
            b[0] = b'X';
            b
        }),
        ("bad checksum", {
            let mut b = good.clone();
            let n = b.len();
            b[n - 1] ^= 0xff;
            b
        }),
    ] {
        std::fs::write(dir.join("dump.rdb"), &bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lodestone"))
            .args([
                "--port",
                &common::free_port().to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--dir", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}: started anyway");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("offset"), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_bgsave_denies_writes_with_misconf() {
    let s = Server::start(&["--save", "3600 1"]);
    let mut c = s.client();
    // A directory where the file should go makes the final rename fail.
    std::fs::create_dir_all(s.dir.join("dump.rdb").join("blocker")).unwrap();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: String = q(&mut c, &["BGSAVE"]);
    wait_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    assert!(qerr(&mut c, &["SET", "a", "2"]).starts_with("MISCONF"));
    assert_eq!(q::<String>(&mut c, &["GET", "a"]), "1");
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"],
    );
    let _: () = q(&mut c, &["SET", "a", "2"]);
    std::fs::remove_dir_all(s.dir.join("dump.rdb")).unwrap();
    let _: () = q(&mut c, &["SAVE"]);
    assert!(q::<i64>(&mut c, &["LASTSAVE"]) > 0);
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
}

// ------------------------------------------------------------- interop

const REDIS: &str = "/usr/bin/redis-server";

struct Redis {
    child: std::process::Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Option<Redis> {
        if !Path::new(REDIS).exists() {
            eprintln!("skipping: {REDIS} not installed");
            return None;
        }
        let port = common::free_port();
        let child = std::process::Command::new(REDIS)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", dir.to_str().unwrap(), "--save", ""])
            .args(["--enable-debug-command", "yes"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = r.client_try() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Some(r);
                }
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!("redis-server did not start");
    }

    fn client_try(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server-independent view of a key's contents.
fn contents(c: &mut redis::Connection, key: &str) -> String {
    let t: String = q(c, &["TYPE", key]);
    let mut v: Vec<String> = match t.as_str() {
        "string" => vec![q(c, &["GET", key])],
        "list" => q(c, &["LRANGE", key, "0", "-1"]),
        "set" => q(c, &["SMEMBERS", key]),
        "zset" => q(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "hash" => q(c, &["HGETALL", key]),
        "stream" => {
            let r: redis::Value = q(c, &["XRANGE", key, "-", "+"]);
            let g: redis::Value = q(c, &["XINFO", "GROUPS", key]);
            let p: redis::Value = q(c, &["XPENDING", key, "grp"]);
            vec![format!("{r:?} {g:?} {p:?}")]
        }
        _ => vec![],
    };
    if t == "set" || t == "hash" {
        v.sort();
    }
    format!("{t} {v:?}")
}

const INTEROP_KEYS: [&str; 14] = [
    "str", "int", "big", "ttl", "list", "qlist", "ints", "lpset", "bigset", "zs", "skip", "hs",
    "bighash", "st",
];

#[test]
fn our_rdb_v10_loads_in_redis_and_dump_payloads_move_both_ways() {
    let dir = temp_dir();
    let s = Server::start_in(dir.clone(), &["--rdb-version", "10", "--save", ""]);
    let mut c = s.client();
    fill(&mut c);
    let _: () = q(&mut c, &["SAVE"]);
    let Some(r) = Redis::start(&dir) else {
        return;
    };
    let mut rc = r.client_try().unwrap();
    assert_eq!(
        q::<i64>(&mut rc, &["DBSIZE"]),
        q::<i64>(&mut c, &["DBSIZE"])
    );
    for k in INTEROP_KEYS {
        assert_eq!(contents(&mut rc, k), contents(&mut c, k), "{k}");
    }
    let ttl: i64 = q(&mut rc, &["TTL", "ttl"]);
    assert!(ttl > 900);
    // DUMP here, RESTORE in Redis; and back.
    for k in INTEROP_KEYS {
        let p: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut c).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg("moved")
            .arg(0)
            .arg(&p)
            .query(&mut rc)
            .unwrap();
        assert_eq!(contents(&mut rc, "moved"), contents(&mut c, k), "{k}");
        let p: Vec<u8> = redis::cmd("DUMP").arg("moved").query(&mut rc).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg("back")
            .arg(0)
            .arg(&p)
            .query(&mut c)
            .unwrap();
        assert_eq!(contents(&mut c, "back"), contents(&mut c, k), "{k}");
        let _: () = q(&mut rc, &["DEL", "moved"]);
        let _: () = q(&mut c, &["DEL", "back"]);
    }
    drop(r);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_dump_rdb_loads_here() {
    let dir = temp_dir();
    let Some(r) = Redis::start(&dir) else {
        return;
    };
    let mut rc = r.client_try().unwrap();
    fill(&mut rc);
    let _: () = q(&mut rc, &["SAVE"]);
    let s = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = s.client();
    assert_eq!(
        q::<i64>(&mut c, &["DBSIZE"]),
        q::<i64>(&mut rc, &["DBSIZE"])
    );
    for k in INTEROP_KEYS {
        assert_eq!(contents(&mut c, k), contents(&mut rc, k), "{k}");
    }
    let _: () = q(&mut c, &["SELECT", "3"]);
    assert_eq!(q::<String>(&mut c, &["GET", "other-db"]), "1");
    drop(r);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn function_libraries_survive_reload_and_restart() {
    let dir = temp_dir();
    let srv = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = srv.client();
    let code = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)";
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(code)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    let r: String = redis::cmd("FCALL")
        .arg("myfunc")
        .arg(0)
        .arg("hi")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, "hi");
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(srv);
    let srv = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = srv.client();
    let r: String = redis::cmd("FCALL")
        .arg("myfunc")
        .arg(0)
        .arg("again")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, "again");
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
}

/// The server's process id, from INFO.
fn server_pid(c: &mut redis::Connection) -> String {
    let info: String = q(c, &["INFO", "server"]);
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .unwrap()
        .trim()
        .to_string()
}

fn send_signal(pid: &str, sig: &str) {
    let st = std::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigterm_saves_when_save_points_exist_then_exits() {
    let dir = temp_dir();
    {
        let mut s = Server::start_in(dir.clone(), &["--save", "3600 1"]);
        let mut c = s.client();
        for i in 0..100 {
            let _: () = q(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")]);
        }
        let _: () = q(&mut c, &["RPUSH", "list", "a", "b"]);
        assert!(!dir.join("dump.rdb").exists());
        send_signal(&server_pid(&mut c), "-TERM");
        assert!(s.wait_exit(Duration::from_secs(20)), "still running");
    }
    assert!(dir.join("dump.rdb").exists(), "no dump.rdb after SIGTERM");
    let s = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = s.client();
    let n: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(n, 101);
    let v: String = q(&mut c, &["GET", "k42"]);
    assert_eq!(v, "v42");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigint_without_save_points_exits_without_saving() {
    let dir = temp_dir();
    let mut s = Server::start_in(dir.clone(), &["--save", ""]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    send_signal(&server_pid(&mut c), "-INT");
    assert!(s.wait_exit(Duration::from_secs(20)), "still running");
    assert!(!dir.join("dump.rdb").exists());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn clients_get_loading_while_the_dataset_loads() {
    let dir = temp_dir();
    let keys = 3000;
    {
        let s = Server::start_in(dir.clone(), &["--save", ""]);
        let mut c = s.client();
        let mut p = redis::pipe();
        for i in 0..keys {
            p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        }
        let _: () = p.query(&mut c).unwrap();
        let _: () = q(&mut c, &["SAVE"]);
    }
    // One millisecond per key: the load takes seconds, and the port is
    // open (and INFO answers) meanwhile.
    let s = Server::start_in_loading(dir.clone(), &["--save", "", "--key-load-delay", "1000"]);
    let mut c = s.client();
    assert_eq!(info_field(&mut c, "loading"), "1");
    let perc: f64 = info_field(&mut c, "loading_loaded_perc").parse().unwrap();
    assert!((0.0..=100.0).contains(&perc), "{perc}");
    let total: u64 = info_field(&mut c, "loading_total_bytes").parse().unwrap();
    assert!(total > 0);
    info_field(&mut c, "loading_eta_seconds");
    assert_eq!(
        qerr(&mut c, &["GET", "k1"]),
        "LOADING Redis is loading the dataset in memory"
    );
    assert_eq!(
        qerr(&mut c, &["PING"]),
        "LOADING Redis is loading the dataset in memory"
    );
    // Commands flagged `loading` still run.
    let echo: String = q(&mut c, &["ECHO", "hi"]);
    assert_eq!(echo, "hi");
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut c, "loading") != "0" {
        assert!(Instant::now() < deadline, "loading never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let n: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(n, keys);
    let v: i64 = q(&mut c, &["GET", "k1234"]);
    assert_eq!(v, 1234);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
