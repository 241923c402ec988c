//! The append-only file: effects logged, multi-part layout, rewrites,
//! reloads and crashes. Every server gets its own directory.

mod common;

use common::{q, RealRedis, Server, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.str(), "--appendonly", "yes", "--save", ""];
    args.extend_from_slice(extra);
    Server::start(&args)
}

fn digest(c: &mut redis::Connection) -> String {
    q(c, &["DEBUG", "DIGEST"])
}

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    let info: String = q(c, &["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in INFO"))
        .trim()
        .to_string()
}

fn wait_rewrite_done(c: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(c, "aof_rewrite_in_progress") != "0" {
        assert!(Instant::now() < deadline, "rewrite never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn aof_dir(dir: &TempDir) -> PathBuf {
    dir.path.join("appendonlydir")
}

fn manifest(dir: &TempDir) -> String {
    std::fs::read_to_string(aof_dir(dir).join("appendonly.aof.manifest")).unwrap()
}

/// The files the manifest lists, by type letter.
fn listed(dir: &TempDir, kind: &str) -> Vec<String> {
    manifest(dir)
        .lines()
        .filter(|l| l.ends_with(&format!("type {kind}")))
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect()
}

/// All incr files' text, in manifest order.
fn incr_text(dir: &TempDir) -> String {
    listed(dir, "i")
        .iter()
        .map(|f| {
            String::from_utf8_lossy(&std::fs::read(aof_dir(dir).join(f)).unwrap()).into_owned()
        })
        .collect()
}

/// The words of a RESP stream (bulk payloads and simple lines), in order.
fn words(text: &str) -> Vec<String> {
    text.split("\r\n")
        .filter(|w| !w.is_empty() && !w.starts_with('*') && !w.starts_with('$'))
        .map(|w| w.to_string())
        .collect()
}

/// Writes keys of every type and encoding, with and without TTLs.
fn write_dataset(c: &mut redis::Connection) {
    q::<()>(c, &["SET", "str", "hello"]);
    q::<()>(c, &["SET", "int", "12345"]);
    q::<()>(c, &["SET", "ttl-ex", "v", "EX", "1000"]);
    q::<()>(c, &["SETEX", "ttl-setex", "1000", "v"]);
    q::<()>(c, &["PSETEX", "ttl-psetex", "900000", "v"]);
    q::<()>(c, &["SET", "ttl-expire", "v"]);
    q::<()>(c, &["EXPIRE", "ttl-expire", "500"]);
    q::<()>(c, &["SET", "gone", "v"]);
    q::<()>(c, &["EXPIRE", "gone", "-1"]);
    q::<()>(c, &["INCRBYFLOAT", "float", "1.5"]);
    q::<()>(c, &["INCRBYFLOAT", "float", "0.1"]);
    q::<()>(c, &["APPEND", "str", " world"]);
    q::<()>(c, &["RPUSH", "list", "a", "b", "c", "1", "2"]);
    for i in 0..300 {
        q::<()>(c, &["RPUSH", "biglist", &format!("element-{i}")]);
    }
    q::<()>(c, &["LPUSH", "biglist", "head"]);
    q::<()>(c, &["HSET", "hash", "f1", "v1", "f2", "2"]);
    q::<()>(c, &["HINCRBYFLOAT", "hash", "f3", "2.25"]);
    for i in 0..200 {
        q::<()>(c, &["HSET", "bighash", &format!("f{i}"), &format!("v{i}")]);
    }
    q::<()>(c, &["SADD", "intset", "1", "2", "3", "100"]);
    q::<()>(c, &["SADD", "set", "a", "b", "c"]);
    for i in 0..300 {
        q::<()>(c, &["SADD", "bigset", &format!("m{i}")]);
    }
    q::<()>(c, &["SPOP", "bigset"]);
    q::<()>(c, &["SPOP", "bigset", "5"]);
    q::<()>(c, &["ZADD", "zset", "1", "a", "2.5", "b", "-inf", "c"]);
    for i in 0..200 {
        q::<()>(
            c,
            &[
                "ZADD",
                "bigzset",
                &format!("{}.{}", i, i % 7),
                &format!("m{i}"),
            ],
        );
    }
    q::<()>(c, &["ZPOPMIN", "bigzset", "3"]);
    q::<()>(c, &["PFADD", "hll", "a", "b", "c"]);
    q::<()>(c, &["XADD", "stream", "*", "f", "v"]);
    q::<()>(c, &["XADD", "stream", "*", "f2", "v2"]);
    q::<()>(c, &["XADD", "stream", "99999999999999-*", "f3", "v3"]);
    q::<()>(c, &["XGROUP", "CREATE", "stream", "g1", "0"]);
    q::<redis::Value>(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
    );
    q::<()>(c, &["XGROUP", "CREATECONSUMER", "stream", "g1", "bob"]);
    q::<()>(c, &["XADD", "emptystream", "1-1", "a", "b"]);
    q::<()>(c, &["XDEL", "emptystream", "1-1"]);
    q::<()>(c, &["GETEX", "str", "PX", "700000"]);
    q::<()>(c, &["SET", "del-me", "x"]);
    q::<()>(c, &["GETDEL", "del-me"]);
    q::<()>(c, &["SELECT", "3"]);
    q::<()>(c, &["SET", "in-db3", "x"]);
    q::<()>(c, &["LPUSH", "list3", "y"]);
    q::<()>(c, &["SELECT", "0"]);
    redis::cmd("MULTI").query::<()>(c).unwrap();
    redis::cmd("INCR").arg("tx1").query::<()>(c).unwrap();
    redis::cmd("INCR").arg("tx2").query::<()>(c).unwrap();
    redis::cmd("EXEC").query::<redis::Value>(c).unwrap();
}

/// The base file's name after the first rewrite for each
/// `aof-use-rdb-preamble` setting.
fn first_base(preamble: &str) -> &'static str {
    if preamble == "yes" {
        "appendonly.aof.1.base.rdb"
    } else {
        "appendonly.aof.1.base.aof"
    }
}

#[test]
fn every_type_survives_restart_and_rewrite_rdb_preamble() {
    every_type_survives_restart_and_rewrite("yes");
}

#[test]
fn every_type_survives_restart_and_rewrite_command_base() {
    every_type_survives_restart_and_rewrite("no");
}

fn every_type_survives_restart_and_rewrite(preamble: &str) {
    let dir = TempDir::new("aof-types");
    let pre = ["--aof-use-rdb-preamble", preamble];
    let start = |dir: &TempDir, _: &[&str]| start(dir, &pre);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    write_dataset(&mut c);
    let lib = "#!lua name=aoflib\nredis.register_function('aoff', function() return 7 end)";
    let _: String = q(&mut c, &["FUNCTION", "LOAD", lib]);
    let d1 = digest(&mut c);
    assert_ne!(d1, "0".repeat(40));
    assert_eq!(listed(&dir, "i"), ["appendonly.aof.1.incr.aof"]);
    drop(srv);

    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), d1, "after replaying the incr file");
    let ttl: i64 = q(&mut c, &["TTL", "ttl-ex"]);
    assert!(ttl > 990 && ttl <= 1000, "{ttl}");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "gone"]), 0);

    // A rewrite: base + new incr, old files gone; more writes after it.
    let r: String = q(&mut c, &["BGREWRITEAOF"]);
    assert_eq!(r, "Background append only file rewriting started");
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    assert_eq!(listed(&dir, "b"), [first_base(preamble)]);
    assert_eq!(listed(&dir, "i"), ["appendonly.aof.2.incr.aof"]);
    assert!(!aof_dir(&dir).join("appendonly.aof.1.incr.aof").exists());
    let base = std::fs::read(aof_dir(&dir).join(first_base(preamble))).unwrap();
    if preamble == "yes" {
        assert!(base.starts_with(b"REDIS0011"));
    } else {
        let base = String::from_utf8_lossy(&base);
        assert!(base.contains("PEXPIREAT") && base.contains("XSETID") && base.contains("XCLAIM"));
    }
    q::<()>(&mut c, &["RPUSH", "list", "after-rewrite"]);
    q::<()>(&mut c, &["SADD", "set", "d"]);
    let d2 = digest(&mut c);
    assert_ne!(d1, d2);
    drop(srv);

    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), d2, "after base + incr");
    // The function library was in the base (FUNCTION LOAD in a command
    // base, FUNCTION2 in the RDB preamble), not in the incr file.
    let incr = std::fs::read(aof_dir(&dir).join("appendonly.aof.2.incr.aof")).unwrap();
    assert!(!String::from_utf8_lossy(&incr).contains("aoflib"));
    let r: i64 = q(&mut c, &["FCALL", "aoff", "0"]);
    assert_eq!(r, 7);
    let pending: redis::Value = q(&mut c, &["XPENDING", "stream", "g1"]);
    assert!(format!("{pending:?}").contains("alice"), "{pending:?}");
    // DEBUG LOADAOF reloads the same state.
    q::<()>(&mut c, &["DEBUG", "LOADAOF"]);
    assert_eq!(digest(&mut c), d2);
}

#[test]
fn effects_are_rewritten_and_transactions_wrapped() {
    let dir = TempDir::new("aof-effects");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    q::<()>(&mut c, &["SET", "a", "1", "EX", "100"]);
    q::<()>(&mut c, &["EXPIRE", "a", "200"]);
    q::<()>(&mut c, &["INCRBYFLOAT", "f", "3.0e3"]);
    q::<()>(&mut c, &["HINCRBYFLOAT", "h", "x", "0.5"]);
    q::<()>(&mut c, &["SADD", "s", "only"]);
    q::<()>(&mut c, &["SPOP", "s"]);
    q::<()>(&mut c, &["SET", "b", "1"]);
    q::<()>(&mut c, &["PEXPIRE", "b", "-5"]);
    q::<()>(&mut c, &["SET", "c", "1"]);
    q::<()>(&mut c, &["GETDEL", "c"]);
    q::<()>(&mut c, &["XADD", "x", "*", "k", "v"]);
    q::<()>(&mut c, &["SET", "never-written", "1", "NX"]);
    q::<()>(&mut c, &["SET", "never-written", "2", "NX"]);
    q::<()>(&mut c, &["GET", "a"]);
    redis::cmd("MULTI").query::<()>(&mut c).unwrap();
    redis::cmd("INCR").arg("t").query::<()>(&mut c).unwrap();
    redis::cmd("SELECT").arg("1").query::<()>(&mut c).unwrap();
    redis::cmd("INCR").arg("t").query::<()>(&mut c).unwrap();
    redis::cmd("EXEC").query::<redis::Value>(&mut c).unwrap();
    let w = words(&incr_text(&dir));
    let joined = w.join(" ");
    assert!(joined.starts_with("SELECT 0 SET a 1 PXAT "), "{joined}");
    assert!(joined.contains("PEXPIREAT a "), "{joined}");
    assert!(joined.contains("SET f 3000 KEEPTTL"), "{joined}");
    assert!(joined.contains("HSET h x 0.5"), "{joined}");
    assert!(joined.contains("SREM s only"), "{joined}");
    assert!(joined.contains("DEL b"), "{joined}");
    assert!(joined.contains("DEL c"), "{joined}");
    assert!(!joined.contains("GETDEL") && !joined.contains("SPOP") && !joined.contains(" EX "));
    assert!(!joined.contains("XADD x *"), "{joined}");
    assert_eq!(joined.matches("never-written").count(), 1, "{joined}");
    assert!(!joined.contains("GET a"), "reads are not logged: {joined}");
    assert!(
        joined.ends_with("MULTI INCR t SELECT 1 INCR t EXEC"),
        "{joined}"
    );
    let d = digest(&mut c);
    drop(srv);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), d);
    assert_eq!(q::<String>(&mut c, &["GET", "f"]), "3000");
}

#[test]
fn expiry_and_blocking_pops_propagate_as_effects() {
    let dir = TempDir::new("aof-expiry");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    q::<()>(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    q::<()>(&mut c, &["SET", "lazy", "v", "PX", "30"]);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "lazy"]), None);
    q::<()>(&mut c, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    q::<()>(&mut c, &["SET", "active", "v", "PX", "30"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !words(&incr_text(&dir)).join(" ").contains("DEL active") {
        assert!(Instant::now() < deadline, "active expiry never logged DEL");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut waiter = srv.client();
    let h = std::thread::spawn(move || {
        let v: Vec<String> = q(&mut waiter, &["BLPOP", "q", "0"]);
        v
    });
    common::wait_blocked(&mut c, 1);
    q::<()>(&mut c, &["RPUSH", "q", "x", "y"]);
    assert_eq!(h.join().unwrap(), ["q", "x"]);
    let joined = words(&incr_text(&dir)).join(" ");
    assert!(joined.contains("DEL lazy"), "{joined}");
    assert!(joined.contains("RPUSH q x y LPOP q"), "{joined}");
    assert!(!joined.contains("BLPOP"), "{joined}");
    let d = digest(&mut c);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), d);
}

#[test]
fn rewrite_during_writes_keeps_every_write_rdb_preamble() {
    rewrite_during_writes_keeps_every_write("yes");
}

#[test]
fn rewrite_during_writes_keeps_every_write_command_base() {
    rewrite_during_writes_keeps_every_write("no");
}

fn rewrite_during_writes_keeps_every_write(preamble: &str) {
    let dir = TempDir::new("aof-bgrewrite");
    let pre = ["--aof-use-rdb-preamble", preamble];
    let start = |dir: &TempDir, _: &[&str]| start(dir, &pre);
    let srv = start(&dir, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for t in 0..3 {
        let mut w = srv.client();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                q::<()>(&mut w, &["INCR", &format!("counter-{t}")]);
                q::<()>(
                    &mut w,
                    &["RPUSH", &format!("list-{}", n % 10), &n.to_string()],
                );
                q::<()>(
                    &mut w,
                    &["HSET", "h", &format!("{t}-{}", n % 50), &n.to_string()],
                );
                n += 1;
            }
            n
        }));
    }
    let mut c = srv.client();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(100));
        q::<()>(&mut c, &["BGREWRITEAOF"]);
        wait_rewrite_done(&mut c);
    }
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, n) in counts.iter().enumerate() {
        let v: u64 = q(&mut c, &["GET", &format!("counter-{t}")]);
        assert_eq!(v, *n);
    }
    assert_eq!(info_field(&mut c, "aof_rewrites"), "4");
    let d = digest(&mut c);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), d);
}

#[test]
fn config_set_appendonly_starts_with_a_rewrite() {
    let dir = TempDir::new("aof-config");
    let srv = Server::start(&["--dir", dir.str(), "--appendonly", "no", "--save", ""]);
    let mut c = srv.client();
    q::<()>(&mut c, &["SET", "before", "1"]);
    q::<()>(&mut c, &["RPUSH", "l", "a", "b"]);
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    q::<()>(&mut c, &["CONFIG", "SET", "appendonly", "yes"]);
    wait_rewrite_done(&mut c);
    assert_eq!(info_field(&mut c, "aof_enabled"), "1");
    q::<()>(&mut c, &["SET", "after", "2"]);
    assert_eq!(listed(&dir, "b").len(), 1);
    let d = digest(&mut c);
    q::<()>(&mut c, &["CONFIG", "SET", "appendonly", "no"]);
    q::<()>(&mut c, &["SET", "not-logged", "3"]);
    assert_eq!(info_field(&mut c, "aof_enabled"), "0");
    drop(srv);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), d);
    assert!(info_field(&mut c, "aof_base_size").parse::<u64>().unwrap() > 0);
}

#[test]
fn automatic_rewrite_on_growth() {
    let dir = TempDir::new("aof-auto");
    let srv = start(
        &dir,
        &[
            "--auto-aof-rewrite-min-size",
            "10000",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    );
    let mut c = srv.client();
    for i in 0..400 {
        q::<()>(&mut c, &["SET", "k", &format!("value-{i}")]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "aof_rewrites") == "0" {
        assert!(Instant::now() < deadline, "no automatic rewrite");
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_rewrite_done(&mut c);
    let size: u64 = info_field(&mut c, "aof_current_size").parse().unwrap();
    assert!(size < 10000, "{size}");
}

/// Kills the server (SIGKILL) under a write load several times; every
/// acknowledged write must be there after each restart.
fn crash_loop(policy: &str) {
    let dir = TempDir::new(&format!("aof-crash-{policy}"));
    let mut acked = [0u64; 4];
    for round in 0..3 {
        let srv = start(&dir, &["--appendfsync", policy]);
        {
            let mut c = srv.client();
            for (t, a) in acked.iter().enumerate() {
                let v: Option<u64> = q(&mut c, &["GET", &format!("n{t}")]);
                assert!(
                    v.unwrap_or(0) >= *a,
                    "round {round}: key n{t} is {v:?}, acknowledged {a}"
                );
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for t in 0..acked.len() {
            let mut w = srv.client();
            let stop = stop.clone();
            writers.push(std::thread::spawn(move || {
                let mut last = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match redis::cmd("INCR").arg(format!("n{t}")).query::<u64>(&mut w) {
                        Ok(v) => last = v,
                        Err(_) => break,
                    }
                }
                last
            }));
        }
        std::thread::sleep(Duration::from_millis(300));
        drop(srv); // SIGKILL while the writers run
        stop.store(true, Ordering::Relaxed);
        for (t, h) in writers.into_iter().enumerate() {
            let last = h.join().unwrap();
            acked[t] = acked[t].max(last);
        }
    }
    let srv = start(&dir, &["--appendfsync", policy]);
    let mut c = srv.client();
    for (t, a) in acked.iter().enumerate() {
        let v: u64 = q(&mut c, &["GET", &format!("n{t}")]);
        assert!(v >= *a && *a > 0, "key n{t} is {v}, acknowledged {a}");
    }
}

#[test]
fn crash_with_appendfsync_always_loses_no_acknowledged_write() {
    crash_loop("always");
}

#[test]
fn crash_with_appendfsync_everysec_keeps_acknowledged_writes() {
    // Replies go out after the write() to the file, so a killed process
    // (not a lost machine) loses nothing even between fsyncs.
    crash_loop("everysec");
}

/// Starts the binary expecting it to exit; returns its stderr+stdout.
fn start_failing(dir: &TempDir, extra: &[&str]) -> String {
    let port = common::free_port().to_string();
    let mut args = vec![
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--dir",
        dir.str(),
        "--appendonly",
        "yes",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lodestone"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(!st.success());
            let out = child.wait_with_output().unwrap();
            return String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("server started despite a broken AOF");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn append_to(p: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn truncated_tail_is_loaded_and_cut() {
    let dir = TempDir::new("aof-trunc");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    q::<()>(&mut c, &["SET", "a", "1"]);
    drop(srv);
    let incr = aof_dir(&dir).join("appendonly.aof.1.incr.aof");
    let good_len = std::fs::metadata(&incr).unwrap().len();
    append_to(&incr, b"*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$5\r\nab");
    // With aof-load-truncated no the server refuses to start.
    let err = start_failing(&dir, &["--aof-load-truncated", "no"]);
    assert!(err.contains("Unexpected end of file"), "{err}");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(q::<String>(&mut c, &["GET", "a"]), "1");
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "z"]), 0);
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good_len);
    q::<()>(&mut c, &["SET", "b", "2"]);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(q::<String>(&mut srv.client(), &["GET", "b"]), "2");
}

#[test]
fn garbage_and_truncated_rdb_bases_are_refused() {
    let dir = TempDir::new("aof-garbage");
    let srv = start(&dir, &[]);
    q::<()>(&mut srv.client(), &["SET", "a", "1"]);
    drop(srv);
    let incr = aof_dir(&dir).join("appendonly.aof.1.incr.aof");
    append_to(&incr, b"this is not a command\r\n*1\r\n$4\r\nPING\r\n");
    let err = start_failing(&dir, &[]);
    assert!(err.contains("Bad file format"), "{err}");

    let dir = TempDir::new("aof-rdbbase");
    std::fs::create_dir_all(aof_dir(&dir)).unwrap();
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.1.base.rdb"),
        b"REDIS0011\xfa",
    )
    .unwrap();
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.rdb seq 1 type b\n",
    )
    .unwrap();
    let err = start_failing(&dir, &[]);
    assert!(err.contains("RDB"), "{err}");

    let dir = TempDir::new("aof-badmanifest");
    std::fs::create_dir_all(aof_dir(&dir)).unwrap();
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.manifest"),
        "file x seq\n",
    )
    .unwrap();
    let err = start_failing(&dir, &[]);
    assert!(err.contains("Invalid AOF manifest"), "{err}");
}

#[test]
fn old_single_file_aof_is_loaded_and_upgraded() {
    let dir = TempDir::new("aof-legacy");
    std::fs::write(
        dir.path.join("appendonly.aof"),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$3\r\nold\r\n$3\r\nyes\r\n",
    )
    .unwrap();
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(q::<String>(&mut c, &["GET", "old"]), "yes");
    assert!(!dir.path.join("appendonly.aof").exists());
    assert_eq!(listed(&dir, "b"), ["appendonly.aof"]);
    q::<()>(&mut c, &["SET", "new", "1"]);
    drop(srv);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(q::<String>(&mut c, &["GET", "old"]), "yes");
    assert_eq!(q::<String>(&mut c, &["GET", "new"]), "1");
}

#[test]
fn timestamp_annotations_are_written_and_skipped_on_load() {
    let dir = TempDir::new("aof-ts");
    let srv = start(&dir, &["--aof-timestamp-enabled", "yes"]);
    q::<()>(&mut srv.client(), &["SET", "a", "1"]);
    assert!(incr_text(&dir).starts_with("#TS:"), "{}", incr_text(&dir));
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(q::<String>(&mut srv.client(), &["GET", "a"]), "1");
}

#[test]
fn base_format_follows_aof_use_rdb_preamble() {
    for (preamble, name) in [
        (None, "appendonly.aof.1.base.rdb"),
        (Some("no"), "appendonly.aof.1.base.aof"),
    ] {
        let dir = TempDir::new("aof-preamble");
        let extra: Vec<&str> = preamble
            .map(|p| vec!["--aof-use-rdb-preamble", p])
            .unwrap_or_default();
        let srv = start(&dir, &extra);
        let mut c = srv.client();
        q::<()>(&mut c, &["SET", "k", "v"]);
        q::<()>(&mut c, &["SELECT", "3"]);
        q::<()>(&mut c, &["RPUSH", "l", "a", "b"]);
        q::<()>(&mut c, &["BGREWRITEAOF"]);
        wait_rewrite_done(&mut c);
        assert_eq!(listed(&dir, "b"), [name]);
        let base = std::fs::read(aof_dir(&dir).join(name)).unwrap();
        if preamble.is_none() {
            assert!(base.starts_with(b"REDIS"), "{:?}", &base[..9]);
            // Marked as an AOF base (AUX aof-base 1).
            let at = base.windows(8).position(|w| w == b"aof-base").unwrap();
            assert_eq!(&base[at + 8..at + 10], [0xc0, 1]);
        } else {
            assert!(base.starts_with(b"*2\r\n$6\r\nSELECT"), "{:?}", &base[..9]);
        }
        let d = digest(&mut c);
        drop(srv);
        let srv = start(&dir, &extra);
        assert_eq!(digest(&mut srv.client()), d);
    }
}

#[test]
fn bgrewriteaof_waits_for_a_running_bgsave() {
    let dir = TempDir::new("aof-sched");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    for i in 0..20 {
        q::<()>(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    // A slow BGSAVE (rdb-key-save-delay is per key, in microseconds): half
    // a second a key keeps it running however loaded the machine is; the
    // delay is lifted once the scheduled state has been seen.
    q::<()>(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "500000"]);
    let r: String = q(&mut c, &["BGSAVE"]);
    assert_eq!(r, "Background saving started");
    let r: String = q(&mut c, &["BGREWRITEAOF"]);
    assert_eq!(r, "Background append only file rewriting scheduled");
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "1");
    assert_eq!(info_field(&mut c, "aof_rewrite_in_progress"), "0");
    q::<()>(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut c, "aof_rewrites") != "1" {
        assert!(Instant::now() < deadline, "scheduled rewrite never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&mut c, "aof_rewrite_scheduled"), "0");
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    // And BGSAVE is refused while a rewrite runs (slowed down the same way).
    q::<()>(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "50000"]);
    let r: String = q(&mut c, &["BGREWRITEAOF"]);
    assert_eq!(r, "Background append only file rewriting started");
    let e = redis::cmd("BGSAVE").query::<String>(&mut c).unwrap_err();
    assert!(
        e.to_string().contains("Another child process is active"),
        "{e}"
    );
    let r: String = q(&mut c, &["BGSAVE", "SCHEDULE"]);
    assert_eq!(r, "Background saving scheduled");
    q::<()>(&mut c, &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    wait_rewrite_done(&mut c);
}

#[test]
fn bgrewriteaof_with_aof_off_writes_a_base() {
    let dir = TempDir::new("aof-off-rewrite");
    let srv = Server::start(&["--dir", dir.str(), "--appendonly", "no", "--save", ""]);
    let mut c = srv.client();
    q::<()>(&mut c, &["SET", "k", "v"]);
    q::<()>(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    assert_eq!(listed(&dir, "b").len(), 1);
    let d = digest(&mut c);
    drop(srv);
    let srv = start(&dir, &[]);
    assert_eq!(digest(&mut srv.client()), d);
}

/// Every key's type, contents and TTL class, in a canonical order.
fn canonical(c: &mut redis::Connection) -> Vec<String> {
    let mut out = Vec::new();
    for db in ["0", "2"] {
        q::<()>(c, &["SELECT", db]);
        let mut keys: Vec<String> = q(c, &["KEYS", "*"]);
        keys.sort();
        for k in keys {
            let t: String = q(c, &["TYPE", &k]);
            let v: Vec<String> = match t.as_str() {
                "string" => vec![format!("{:?}", q::<Vec<u8>>(c, &["GET", &k]))],
                "list" => q(c, &["LRANGE", &k, "0", "-1"]),
                "set" | "hash" => {
                    let mut v: Vec<String> = if t == "set" {
                        q(c, &["SMEMBERS", &k])
                    } else {
                        q(c, &["HGETALL", &k])
                    };
                    v.sort();
                    v
                }
                "zset" => q(c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"]),
                _ => {
                    let r: redis::Value = q(c, &["XRANGE", &k, "-", "+"]);
                    let p: redis::Value = q(c, &["XPENDING", &k, "g"]);
                    vec![format!("{r:?} {p:?}")]
                }
            };
            let ttl: i64 = q(c, &["TTL", &k]);
            out.push(format!("{db} {k} {t} {} {v:?}", ttl > 900));
        }
    }
    q::<()>(c, &["SELECT", "0"]);
    out
}

#[test]
fn aof_directories_move_between_redis_and_lodestone() {
    let dir = TempDir::new("aof-interop");
    // appendfsync always: with everysec a loaded machine makes Redis
    // postpone AOF writes (an fsync still running) while it already
    // replies, and the kill below would lose the tail.
    let Some(redis) = RealRedis::start(&[
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--aof-use-rdb-preamble",
        "no",
        "--dir",
        dir.str(),
    ]) else {
        return;
    };
    let mut c = redis.client();
    for args in [
        &["SET", "s", "hello"][..],
        &["SET", "n", "42", "EX", "1000"],
        &["RPUSH", "l", "a", "b", "c"],
        &["HSET", "h", "f", "v", "g", "2"],
        &["SADD", "st", "1", "2", "3"],
        &["SADD", "st2", "a", "b"],
        &["ZADD", "z", "1.5", "a", "2", "b"],
        &["XADD", "x", "1-1", "f", "v"],
        &["XGROUP", "CREATE", "x", "g", "0"],
        &["PFADD", "hl", "a", "b", "c"],
    ] {
        q::<redis::Value>(&mut c, args);
    }
    q::<redis::Value>(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "x", ">"],
    );
    q::<()>(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    q::<()>(&mut c, &["INCRBYFLOAT", "fl", "1.5"]);
    q::<()>(&mut c, &["SPOP", "st2"]);
    q::<()>(&mut c, &["SELECT", "2"]);
    q::<()>(&mut c, &["SET", "other", "1"]);
    let want = canonical(&mut c);
    drop(redis);

    // Redis's directory (its base and incr) loads here. Our base is an RDB
    // preamble in the format of the installed Redis (7.0: RDB 10).
    let srv = start(&dir, &["--rdb-version", "10"]);
    let mut c = srv.client();
    assert_eq!(canonical(&mut c), want);
    q::<()>(&mut c, &["BGREWRITEAOF"]);
    wait_rewrite_done(&mut c);
    q::<()>(&mut c, &["RPUSH", "l", "d"]);
    let want = canonical(&mut c);
    drop(srv);

    // And ours loads in Redis.
    let redis = RealRedis::start(&[
        "--appendonly",
        "yes",
        "--aof-use-rdb-preamble",
        "no",
        "--dir",
        dir.str(),
    ])
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        let mut c = redis.client();
        if redis::cmd("PING").query::<String>(&mut c).is_ok() {
            break c;
        }
        assert!(Instant::now() < deadline, "redis never loaded our AOF");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(canonical(&mut c), want);
}

#[test]
fn scripts_are_logged_as_their_effects() {
    let dir = TempDir::new("aof-scripts");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    // Two writes: one unit wrapped in MULTI/EXEC, with the script's random
    // effect (SPOP) logged as what it removed; EVAL itself is not logged.
    q::<()>(&mut c, &["SADD", "s", "m"]);
    let body = "redis.call('INCR', KEYS[1]); return redis.call('SPOP', KEYS[2])";
    let popped: String = q(&mut c, &["EVAL", body, "2", "n", "s"]);
    assert_eq!(popped, "m");
    // A read-only script logs nothing.
    let _: Option<String> = q(&mut c, &["EVAL", "return redis.call('GET', 'n')", "0"]);
    let joined = words(&incr_text(&dir)).join(" ");
    assert!(joined.contains("MULTI INCR n SREM s m EXEC"), "{joined}");
    assert!(!joined.contains("EVAL"), "{joined}");
    let d = digest(&mut c);
    drop(srv);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(digest(&mut c), d);
    assert_eq!(q::<String>(&mut c, &["GET", "n"]), "1");
}

#[test]
fn evictions_are_logged_as_dels() {
    let dir = TempDir::new("aof-evict");
    // Tenacity 100: every eviction finishes inside the command whose
    // check started it, none goes on in the workers' timers.
    let srv = start(
        &dir,
        &[
            "--maxmemory-policy",
            "allkeys-random",
            "--maxmemory-eviction-tenacity",
            "100",
        ],
    );
    let mut c = srv.client();
    let used: u64 = {
        let info: String = q(&mut c, &["INFO", "memory"]);
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    q::<()>(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            &(used + 2_000_000).to_string(),
        ],
    );
    let value = "v".repeat(1000);
    for i in 0..10_000 {
        q::<()>(&mut c, &["SET", &format!("k{i}"), &value]);
    }
    // The limit goes before anything is read: a command's first call
    // allocates its latency histogram (24 KB, counted in used_memory as
    // in Redis), and the next command's check would evict for it.
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    let info: String = q(&mut c, &["INFO", "stats"]);
    let evicted: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("evicted_keys:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(evicted > 0, "nothing was evicted");
    let w = words(&incr_text(&dir));
    let dels = w.windows(2).filter(|p| p[0] == "DEL").count() as u64;
    assert_eq!(dels, evicted, "one DEL per evicted key");
    // The reloaded AOF holds exactly the keys that survived.
    let keys: u64 = q(&mut c, &["DBSIZE"]);
    drop(srv);
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(q::<u64>(&mut c, &["DBSIZE"]), keys);
}

#[test]
fn rdb_base_then_incr_commands_load() {
    // An RDB image (as Redis writes with aof-use-rdb-preamble) as the base,
    // commands after it in the incr file.
    let src = TempDir::new("aof-rdbsrc");
    let srv = Server::start(&["--dir", src.str(), "--save", ""]);
    let mut c = srv.client();
    write_dataset(&mut c);
    let d = digest(&mut c);
    q::<()>(&mut c, &["SAVE"]);
    drop(srv);
    let dir = TempDir::new("aof-rdbbase-ok");
    std::fs::create_dir_all(aof_dir(&dir)).unwrap();
    std::fs::copy(
        src.path.join("dump.rdb"),
        aof_dir(&dir).join("appendonly.aof.1.base.rdb"),
    )
    .unwrap();
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.1.incr.aof"),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n",
    )
    .unwrap();
    std::fs::write(
        aof_dir(&dir).join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )
    .unwrap();
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    assert_eq!(q::<String>(&mut c, &["GET", "after"]), "1");
    q::<()>(&mut c, &["DEL", "after"]);
    assert_eq!(digest(&mut c), d);
}

/// SPOP with a count that takes the whole set deletes the key, and the
/// deletion is logged as DEL, or as UNLINK when lazyfree-lazy-server-del is
/// on (Redis's "SPOP ... propagate as DEL or UNLINK").
#[test]
fn spop_of_a_whole_set_logs_del_or_unlink() {
    let dir = TempDir::new("aof-spop");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    q::<()>(&mut c, &["SADD", "s1", "1", "2", "3", "4", "5"]);
    q::<()>(&mut c, &["SADD", "s2", "a", "b", "c"]);
    q::<()>(&mut c, &["CONFIG", "SET", "lazyfree-lazy-server-del", "no"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["SPOP", "s1", "5"]).len(), 5);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"],
    );
    assert_eq!(q::<Vec<String>>(&mut c, &["SPOP", "s2", "10"]).len(), 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s1", "s2"]), 0);
    let joined = words(&incr_text(&dir)).join(" ");
    assert!(joined.ends_with("DEL s1 UNLINK s2"), "{joined}");
}

/// A served BLMOVE is logged as LMOVE with the client's own LEFT/RIGHT
/// words, and BRPOPLPUSH as RPOPLPUSH, as Redis rewrites them.
#[test]
fn blocking_moves_log_as_their_plain_commands() {
    let dir = TempDir::new("aof-blmove");
    let srv = start(&dir, &[]);
    let mut c = srv.client();
    q::<()>(&mut c, &["RPUSH", "a", "1", "2"]);
    assert_eq!(
        q::<String>(&mut c, &["BLMOVE", "a", "b", "left", "Right", "0"]),
        "1"
    );
    assert_eq!(q::<String>(&mut c, &["BRPOPLPUSH", "a", "b", "0"]), "2");
    let joined = words(&incr_text(&dir)).join(" ");
    assert!(
        joined.ends_with("LMOVE a b left Right RPOPLPUSH a b"),
        "{joined}"
    );
}
