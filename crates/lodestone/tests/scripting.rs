//! Integration tests for Lua scripting and functions against the real
//! binary: conversions, errors, the sandbox, the script cache, SCRIPT KILL
//! of a busy script, the function lifecycle and atomicity across threads.

mod common;

use common::{q, qerr, req, Server};
use redis::Value;
use std::time::{Duration, Instant};

fn raw_reply(s: &Server, args: &[&[u8]], expect_len: usize) -> String {
    let mut r = s.raw();
    r.send(&req(args));
    String::from_utf8_lossy(&r.read_exact_n(expect_len)).to_string()
}

#[test]
fn replies_and_conversions() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        raw_reply(&s, &[b"EVAL", b"return 100.5", b"0"], 6),
        ":100\r\n"
    );
    assert_eq!(raw_reply(&s, &[b"EVAL", b"return true", b"0"], 4), ":1\r\n");
    assert_eq!(
        raw_reply(&s, &[b"EVAL", b"return false", b"0"], 5),
        "$-1\r\n"
    );
    assert_eq!(
        raw_reply(&s, &[b"EVAL", b"return {ok='fine'}", b"0"], 7),
        "+fine\r\n"
    );
    assert_eq!(
        raw_reply(&s, &[b"EVAL", b"return {1,2,3,'ciao',{1,2}}", b"0"], 41),
        "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
    );
    assert_eq!(
        raw_reply(&s, &[b"EVAL", b"return {1,nil,3}", b"0"], 8),
        "*1\r\n:1\r\n"
    );
    assert_eq!(
        qerr(
            &mut c,
            &["EVAL", "return {err='ERR this is an error'}", "0"]
        ),
        "ERR this is an error"
    );
    // KEYS and ARGV, and redis.call replies converted back.
    q::<()>(&mut c, &["SET", "mykey", "myval"]);
    let v: Vec<String> = q(
        &mut c,
        &[
            "EVAL",
            "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
            "2",
            "a{t}",
            "b{t}",
            "c",
            "d",
        ],
    );
    assert_eq!(v, ["a{t}", "b{t}", "c", "d"]);
    let v: String = q(
        &mut c,
        &["EVAL", "return redis.call('get',KEYS[1])", "1", "mykey"],
    );
    assert_eq!(v, "myval");
    // Redis replies inside Lua: nil bulk -> false, status -> {ok=...}.
    let v: i64 = q(
        &mut c,
        &[
            "EVAL",
            "local r = redis.call('get','nokey'); if r == false then return 1 end return 0",
            "0",
        ],
    );
    assert_eq!(v, 1);
    let v: String = q(
        &mut c,
        &["EVAL", "return redis.call('set','x','1').ok", "0"],
    );
    assert_eq!(v, "OK");
    // RESP3 from a script that asked for it.
    let mut r = s.raw();
    r.send(&req(&[b"HELLO", b"3"]));
    std::thread::sleep(Duration::from_millis(100));
    let _ = r.s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let _ = std::io::Read::read(&mut r.s, &mut sink);
    let _ = r.s.set_read_timeout(Some(Duration::from_secs(5)));
    r.roundtrip(
        &req(&[b"EVAL", b"redis.setresp(3); return {double=3.5}", b"0"]),
        b",3.5\r\n",
    );
    r.roundtrip(
        &req(&[b"EVAL", b"redis.setresp(3); return true", b"0"]),
        b"#t\r\n",
    );
    r.roundtrip(
        &req(&[b"EVAL", b"redis.setresp(3); return {map={a=1}}", b"0"]),
        b"%1\r\n$1\r\na\r\n:1\r\n",
    );
}

#[test]
fn errors_and_sandbox() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        qerr(&mut c, &["EVAL", "return 1", "2", "a"]),
        "ERR Number of keys can't be greater than number of args"
    );
    assert_eq!(
        qerr(&mut c, &["EVAL", "return 1", "-1"]),
        "ERR Number of keys can't be negative"
    );
    let e = qerr(&mut c, &["EVAL", "return a", "0"]);
    assert!(
        e.starts_with("ERR Script attempted to access nonexistent global variable 'a' script: "),
        "{e}"
    );
    assert!(e.ends_with("on @user_script:1."), "{e}");
    let e = qerr(&mut c, &["EVAL", "a = 10", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = qerr(&mut c, &["EVAL", "redis.call = function() end", "0"]);
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = qerr(&mut c, &["EVAL", "os.exit()", "0"]);
    assert!(e.contains("nonexistent global variable 'os'"), "{e}");
    let e = qerr(&mut c, &["EVAL", "loadfile('x')", "0"]);
    assert!(e.contains("nonexistent global variable 'loadfile'"), "{e}");
    let e = qerr(
        &mut c,
        &[
            "EVAL",
            "return loadstring(string.dump(function() return 1 end))()",
            "0",
        ],
    );
    assert!(e.contains("attempt to call a nil value"), "{e}");
    let e = qerr(&mut c, &["EVAL", "return redis.call('nosuchcommand')", "0"]);
    assert!(
        e.starts_with("ERR Unknown Redis command called from script"),
        "{e}"
    );
    let e = qerr(&mut c, &["EVAL", "redis.call('set','x')", "0"]);
    assert!(
        e.starts_with("ERR Wrong number of args calling Redis command from script"),
        "{e}"
    );
    let e = qerr(
        &mut c,
        &["EVAL", "return redis.call('eval','return 1','0')", "0"],
    );
    assert!(
        e.starts_with("ERR This Redis command is not allowed from script"),
        "{e}"
    );
    // The error of a failing command, with the user's line.
    q::<()>(&mut c, &["SET", "str", "abc"]);
    let e = qerr(&mut c, &["EVAL", "\nreturn redis.call('incr','str')", "0"]);
    assert!(
        e.starts_with("ERR value is not an integer or out of range script: "),
        "{e}"
    );
    assert!(e.ends_with("on @user_script:2."), "{e}");
    // pcall returns it as a table instead.
    let v: String = q(
        &mut c,
        &[
            "EVAL",
            "local r = redis.pcall('incr','str'); return r.err",
            "0",
        ],
    );
    assert_eq!(v, "ERR value is not an integer or out of range");
    let e = qerr(&mut c, &["EVAL", "return x x", "0"]);
    assert!(
        e.starts_with("ERR Error compiling script (new function): user_script:1:"),
        "{e}"
    );
    // Read-only scripts.
    let e = qerr(
        &mut c,
        &["EVAL_RO", "redis.call('del', KEYS[1])", "1", "str"],
    );
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    let e = qerr(
        &mut c,
        &[
            "EVAL",
            "#!lua flags=no-writes\nredis.call('del','str')",
            "0",
        ],
    );
    assert!(
        e.starts_with("ERR Write commands are not allowed from read-only scripts."),
        "{e}"
    );
    assert_eq!(
        qerr(&mut c, &["EVAL_RO", "#!lua\nreturn 1", "0"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(
        qerr(&mut c, &["EVAL", "#!lua flags=bad\nreturn 1", "0"]),
        "ERR Unexpected flag in script shebang: bad"
    );
    assert_eq!(
        qerr(&mut c, &["EVAL", "#!python\nreturn 1", "0"]),
        "ERR Unexpected engine in script shebang: #!python"
    );
    let v: String = q(&mut c, &["EVAL", "return redis.sha1hex('')", "0"]);
    assert_eq!(v, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    // The server is still fine.
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
}

#[test]
fn script_cache() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "mykey", "myval"]);
    let sha: String = q(
        &mut c,
        &["SCRIPT", "LOAD", "return redis.call('get',KEYS[1])"],
    );
    assert_eq!(sha, "fd758d1589d044dd850a6f05d52f2eefd27f033f");
    let v: String = q(&mut c, &["EVALSHA", &sha.to_uppercase(), "1", "mykey"]);
    assert_eq!(v, "myval");
    let v: String = q(&mut c, &["EVALSHA_RO", &sha, "1", "mykey"]);
    assert_eq!(v, "myval");
    let ex: Vec<i64> = q(
        &mut c,
        &[
            "SCRIPT",
            "EXISTS",
            &sha,
            "ffd632c7d33e571e9f24556ebed26c3479a87130",
        ],
    );
    assert_eq!(ex, [1, 0]);
    assert_eq!(
        qerr(
            &mut c,
            &["EVALSHA", "ffd632c7d33e571e9f24556ebed26c3479a87130", "0"]
        ),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    let info: String = q(&mut c, &["INFO", "memory"]);
    assert!(info.contains("number_of_cached_scripts:1\r\n"), "{info}");
    q::<()>(&mut c, &["SCRIPT", "FLUSH"]);
    assert!(qerr(&mut c, &["EVALSHA", &sha, "1", "mykey"]).starts_with("NOSCRIPT"));
    assert_eq!(
        qerr(&mut c, &["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    // EVAL inside MULTI/EXEC.
    q::<()>(&mut c, &["MULTI"]);
    q::<()>(
        &mut c,
        &["EVAL", "return redis.call('incr', KEYS[1])", "1", "n"],
    );
    q::<()>(
        &mut c,
        &["EVAL", "return redis.call('incr', 'undeclared')", "0"],
    );
    let r: Vec<i64> = q(&mut c, &["EXEC"]);
    assert_eq!(r, [1, 1]);
}

#[test]
fn script_kill_stops_a_busy_script() {
    // Several workers, so the killer may or may not share the script's thread.
    let s = Server::start(&["--io-threads", "2", "--busy-reply-threshold", "50"]);
    for _ in 0..3 {
        let mut runner = s.raw();
        runner.send(&req(&[
            b"EVAL",
            b"local i = 0 while true do i = i + 1 end",
            b"0",
        ]));
        let mut c = s.client();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
            match r {
                Err(e) if e.code() == Some("BUSY") => break,
                _ => assert!(Instant::now() < deadline, "script never became busy"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        q::<()>(&mut c, &["SCRIPT", "KILL"]);
        let reply = String::from_utf8_lossy(&runner.read_exact_n(44)).to_string();
        assert!(
            reply.starts_with("-ERR Script killed by user with SCRIPT KILL"),
            "{reply}"
        );
        assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    }
    // A script that wrote cannot be killed.
    let mut runner = s.raw();
    runner.send(&req(&[
        b"EVAL",
        b"redis.call('set','w','1') local i = 0 while i < 30000000 do i = i + 1 end return 1",
        b"0",
    ]));
    let mut c = s.client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
        if r.is_err() {
            break;
        }
        assert!(Instant::now() < deadline, "script never became busy");
        std::thread::sleep(Duration::from_millis(5));
    }
    let e = qerr(&mut c, &["SCRIPT", "KILL"]);
    assert!(e.starts_with("UNKILLABLE"), "{e}");
    assert_eq!(String::from_utf8_lossy(&runner.read_exact_n(4)), ":1\r\n");
}

#[test]
fn functions_lifecycle() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let lib = "#!lua name=mylib\nredis.register_function('incr_it', function(keys, args) return redis.call('incr', keys[1]) end)\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    assert_eq!(q::<String>(&mut c, &["FUNCTION", "LOAD", lib]), "mylib");
    assert_eq!(
        qerr(&mut c, &["FUNCTION", "LOAD", lib]),
        "ERR Library 'mylib' already exists"
    );
    assert_eq!(
        q::<String>(&mut c, &["FUNCTION", "LOAD", "REPLACE", lib]),
        "mylib"
    );
    assert_eq!(q::<i64>(&mut c, &["FCALL", "incr_it", "1", "k"]), 1);
    assert_eq!(q::<i64>(&mut c, &["FCALL", "incr_it", "1", "k"]), 2);
    assert_eq!(q::<String>(&mut c, &["FCALL_RO", "ro", "1", "k"]), "2");
    assert_eq!(
        qerr(&mut c, &["FCALL_RO", "incr_it", "1", "k"]),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(
        qerr(&mut c, &["FCALL", "nope", "0"]),
        "ERR Function not found"
    );
    let e = qerr(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('incr_it', function() end)",
        ],
    );
    assert_eq!(e, "ERR Function incr_it already exists");
    let e = qerr(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=bad\nlocal x = math.floor(1)",
        ],
    );
    assert!(e.contains("nonexistent global variable 'math'"), "{e}");
    assert_eq!(
        qerr(
            &mut c,
            &["FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"]
        ),
        "ERR No functions registered"
    );
    assert_eq!(
        qerr(&mut c, &["FUNCTION", "LOAD", "#!bad_engine name=x\n"]),
        "ERR Engine 'bad_engine' not found"
    );
    let list: Value = q(&mut c, &["FUNCTION", "LIST", "WITHCODE"]);
    let text = format!("{list:?}");
    assert!(
        text.contains("mylib") && text.contains("reads") && text.contains("no-writes"),
        "{text}"
    );
    let stats: Value = q(&mut c, &["FUNCTION", "STATS"]);
    assert!(format!("{stats:?}").contains("functions_count"));
    // DUMP / FLUSH / RESTORE round trip.
    let dump: Vec<u8> = q(&mut c, &["FUNCTION", "DUMP"]);
    q::<()>(&mut c, &["FUNCTION", "FLUSH"]);
    assert_eq!(
        qerr(&mut c, &["FCALL", "incr_it", "1", "k"]),
        "ERR Function not found"
    );
    let ok: String = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(q::<i64>(&mut c, &["FCALL", "incr_it", "1", "k"]), 3);
    let e: redis::RedisResult<String> = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query(&mut c);
    assert_eq!(
        e.unwrap_err().detail(),
        Some("Library mylib already exists")
    );
    let mut bad = dump.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let e: redis::RedisResult<String> = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&bad)
        .query(&mut c);
    assert_eq!(
        e.unwrap_err().detail(),
        Some("DUMP payload version or checksum are wrong")
    );
    q::<()>(&mut c, &["FUNCTION", "DELETE", "mylib"]);
    assert_eq!(
        qerr(&mut c, &["FUNCTION", "DELETE", "mylib"]),
        "ERR Library not found"
    );
}

/// Scripts read and write keys they did not declare while other clients
/// INCR the same keys on other threads: every increment must survive, and
/// a script's read-modify-write must never interleave with another write.
#[test]
fn scripts_are_atomic_across_threads() {
    let s = Server::start(&["--io-threads", "4"]);
    let mut c = s.client();
    q::<()>(&mut c, &["MSET", "a", "0", "b", "0"]);
    let script = "local v = tonumber(redis.call('GET', 'a')) redis.call('SET', 'a', v + 1) redis.call('INCR', 'b') return v";
    let mut handles = Vec::new();
    const N: i64 = 300;
    for t in 0..6 {
        let url = s.url();
        handles.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            for _ in 0..N {
                if t % 2 == 0 {
                    let _: i64 = redis::cmd("EVAL").arg(script).arg(0).query(&mut c).unwrap();
                } else {
                    let _: i64 = redis::cmd("INCR").arg("a").query(&mut c).unwrap();
                    let _: i64 = redis::cmd("INCR").arg("b").query(&mut c).unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let a: i64 = q(&mut c, &["GET", "a"]);
    let b: i64 = q(&mut c, &["GET", "b"]);
    assert_eq!(a, 6 * N, "lost updates: a={a}");
    assert_eq!(b, 6 * N);
}

use common::info_field;

#[test]
fn error_stats_of_script_calls() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["CONFIG", "RESETSTAT"]);
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "1"]);
    // A command the script engine refuses counts once, as the command's
    // rejection; the script counts as failed without a second error.
    let e = qerr(
        &mut c,
        &["EVAL", "return redis.call('set','x','y')", "1", "x"],
    );
    assert!(e.starts_with("OOM command not allowed"), "{e}");
    assert_eq!(info_field(&mut c, "errorstats", "errorstat_OOM"), "count=1");
    assert_eq!(info_field(&mut c, "stats", "total_error_replies"), "1");
    let set = info_field(&mut c, "commandstats", "cmdstat_set");
    assert!(
        set.contains("calls=0,") && set.contains("rejected_calls=1,failed_calls=0"),
        "{set}"
    );
    let eval = info_field(&mut c, "commandstats", "cmdstat_eval");
    assert!(eval.contains("rejected_calls=0,failed_calls=1"), "{eval}");
    // redis.pcall hands the error to the script: the script did not fail.
    q::<()>(&mut c, &["CONFIG", "RESETSTAT"]);
    let r: i64 = q(
        &mut c,
        &[
            "EVAL",
            "local t = redis.pcall('set','x','y') if t['err'] == \"OOM command not allowed when used memory > 'maxmemory'.\" then return 1 end return 0",
            "1",
            "x",
        ],
    );
    assert_eq!(r, 1);
    assert_eq!(info_field(&mut c, "stats", "total_error_replies"), "1");
    let eval = info_field(&mut c, "commandstats", "cmdstat_eval");
    assert!(eval.contains("failed_calls=0"), "{eval}");
    q::<()>(&mut c, &["CONFIG", "SET", "maxmemory", "0"]);
    // An error reply of a command the script ran is counted once.
    q::<()>(&mut c, &["CONFIG", "RESETSTAT"]);
    let e = qerr(&mut c, &["EVAL", "return redis.call('select',99)", "0"]);
    assert!(e.starts_with("ERR DB index is out of range"), "{e}");
    assert_eq!(info_field(&mut c, "errorstats", "errorstat_ERR"), "count=1");
    assert_eq!(info_field(&mut c, "stats", "total_error_replies"), "1");
    let sel = info_field(&mut c, "commandstats", "cmdstat_select");
    assert!(
        sel.contains("calls=1,") && sel.contains("failed_calls=1"),
        "{sel}"
    );
}

#[test]
fn script_call_limits_and_noscript_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // 7999 arguments fit Lua's C stack as in Redis.
    let n: i64 = q(
        &mut c,
        &[
            "EVAL",
            "local a = {} for i=1,7999 do a[i] = 1 end return redis.call('lpush', KEYS[1], unpack(a))",
            "1",
            "l",
        ],
    );
    assert_eq!(n, 7999);
    let e = qerr(
        &mut c,
        &["EVAL", "redis.call('cluster', 'reset', 'hard')", "0"],
    );
    assert!(
        e.contains("This Redis command is not allowed from script"),
        "{e}"
    );
    let e = qerr(&mut c, &["EVAL", "return redis.call('nosuchcmd')", "0"]);
    assert!(
        e.starts_with("ERR Unknown Redis command called from script"),
        "{e}"
    );
    let e = qerr(&mut c, &["EVAL", "return redis.call({})", "0"]);
    assert!(
        e.starts_with("ERR Lua redis lib command arguments must be strings or integers"),
        "{e}"
    );
    // The test hook lets scripts call noscript commands.
    q::<()>(&mut c, &["DEBUG", "set-disable-deny-scripts", "1"]);
    let e = qerr(
        &mut c,
        &["EVAL", "return redis.call('cluster', 'info')", "0"],
    );
    assert!(e.contains("cluster support disabled"), "{e}");
    q::<()>(&mut c, &["DEBUG", "set-disable-deny-scripts", "0"]);
    assert_eq!(
        qerr(&mut c, &["CLUSTER", "INFO"]),
        "ERR This instance has cluster support disabled"
    );
}

#[test]
fn scripts_see_frozen_time_and_sorted_sets() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // DEBUG is a noscript command: the test hook lets the script sleep.
    q::<()>(&mut c, &["DEBUG", "set-disable-deny-scripts", "1"]);
    let r: Vec<Vec<String>> = q(
        &mut c,
        &[
            "EVAL",
            "local a = redis.call('TIME') redis.call('DEBUG', 'SLEEP', 0.01) return {a, redis.call('TIME')}",
            "0",
        ],
    );
    assert_eq!(r[0], r[1]);
    q::<()>(&mut c, &["SADD", "myset", "c", "aa", "b", "a", "z"]);
    let r: Vec<String> = q(
        &mut c,
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', '_')",
            "1",
            "myset",
        ],
    );
    assert_eq!(r, ["a", "aa", "b", "c", "z"]);
}

#[test]
fn writes_refused_without_good_replicas() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "x", "v"]);
    let mut c2 = s.client();
    q::<()>(&mut c, &["MULTI"]);
    q::<()>(&mut c, &["INCR", "n"]);
    q::<()>(&mut c2, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
    let e = qerr(&mut c, &["EXEC"]);
    assert!(
        e.starts_with("EXECABORT") && e.contains("NOREPLICAS"),
        "{e}"
    );
    assert!(qerr(&mut c, &["SET", "x", "w"]).starts_with("NOREPLICAS"));
    assert_eq!(q::<String>(&mut c, &["GET", "x"]), "v");
    let ro = "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])";
    assert_eq!(q::<String>(&mut c, &["EVAL", ro, "1", "x"]), "v");
    let compat = "return redis.call('get', KEYS[1])";
    assert_eq!(q::<String>(&mut c, &["EVAL", compat, "1", "x"]), "v");
    let flagged = "#!lua\nreturn redis.call('get', KEYS[1])";
    assert!(qerr(&mut c, &["EVAL", flagged, "1", "x"]).starts_with("NOREPLICAS"));
    let writes = "return redis.call('set', KEYS[1], 1)";
    assert!(qerr(&mut c, &["EVAL", writes, "1", "x"]).starts_with("NOREPLICAS"));
    q::<()>(&mut c2, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
    assert_eq!(q::<i64>(&mut c, &["INCR", "n"]), 1);
}

#[test]
fn exec_during_a_busy_script_is_aborted() {
    let s = Server::start(&["--busy-reply-threshold", "10"]);
    let mut c = s.client();
    q::<()>(&mut c, &["SET", "xx", "1"]);
    let mut tx = s.client();
    q::<()>(&mut tx, &["MULTI"]);
    q::<()>(&mut tx, &["INCR", "xx"]);
    let mut runner = s.raw();
    runner.send(&req(&[b"EVAL", b"while true do end", b"0"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut c);
        if matches!(&r, Err(e) if e.code() == Some("BUSY")) {
            break;
        }
        assert!(Instant::now() < deadline, "script never became busy");
        std::thread::sleep(Duration::from_millis(5));
    }
    let e = qerr(&mut tx, &["EXEC"]);
    assert!(
        e.starts_with("EXECABORT Transaction discarded because of: BUSY"),
        "{e}"
    );
    q::<()>(&mut c, &["SCRIPT", "KILL"]);
    let _ = runner.read_exact_n(10);
    // Nothing ran and the client left MULTI.
    assert_eq!(q::<String>(&mut c, &["GET", "xx"]), "1");
    assert_eq!(q::<String>(&mut tx, &["PING", "asdf"]), "asdf");
}

#[test]
fn set_repl_and_functions_reach_the_aof() {
    let dir = common::TempDir::new("setrepl");
    let s = Server::start(&["--dir", dir.str(), "--appendonly", "yes", "--save", ""]);
    let mut c = s.client();
    let lib = "#!lua name=mylib\nredis.register_function('f1', function(keys) return redis.call('set', keys[1], 'v') end)";
    assert_eq!(q::<String>(&mut c, &["FUNCTION", "LOAD", lib]), "mylib");
    q::<()>(
        &mut c,
        &[
            "EVAL",
            "redis.call('set','a','1') redis.set_repl(redis.REPL_NONE) redis.call('set','b','2') \
             redis.set_repl(redis.REPL_AOF) redis.call('set','c','3') \
             redis.set_repl(redis.REPL_REPLICA) redis.call('set','e','5') \
             redis.set_repl(redis.REPL_ALL) redis.call('set','d','4')",
            "0",
        ],
    );
    q::<()>(&mut c, &["DEBUG", "LOADAOF"]);
    let v: Vec<Option<String>> = q(&mut c, &["MGET", "a", "b", "c", "d", "e"]);
    assert_eq!(
        v,
        [
            Some("1".into()),
            None,
            Some("3".into()),
            Some("4".into()),
            None
        ]
    );
    // The library came back from the AOF, and so does its deletion.
    assert_eq!(q::<String>(&mut c, &["FCALL", "f1", "1", "k"]), "OK");
    q::<()>(&mut c, &["FUNCTION", "DELETE", "mylib"]);
    q::<()>(&mut c, &["DEBUG", "LOADAOF"]);
    assert!(qerr(&mut c, &["FCALL", "f1", "1", "k"]).contains("Function not found"));
    // A command-form base carries the libraries too.
    q::<()>(&mut c, &["FUNCTION", "LOAD", lib]);
    q::<()>(&mut c, &["CONFIG", "SET", "aof-use-rdb-preamble", "no"]);
    q::<()>(&mut c, &["BGREWRITEAOF"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut c, "persistence", "aof_rewrite_in_progress") != "0"
        || info_field(&mut c, "persistence", "aof_rewrite_scheduled") != "0"
    {
        assert!(Instant::now() < deadline, "rewrite never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    q::<()>(&mut c, &["FUNCTION", "FLUSH"]);
    let base = std::fs::read_dir(dir.path.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".base.aof"))
        .expect("a command base");
    let text = String::from_utf8_lossy(&std::fs::read(base).unwrap()).to_string();
    assert!(text.contains("FUNCTION\r\n$4\r\nLOAD\r\n"), "{text}");
}

#[test]
fn function_load_sees_only_the_redis_table_and_reload_merges() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let e = qerr(
        &mut c,
        &["FUNCTION", "LOAD", "#!lua name=t\nmt = getmetatable(_G)"],
    );
    assert!(
        e.contains("Script attempted to access nonexistent global variable 'getmetatable'"),
        "{e}"
    );
    let lib = "#!lua name=t1\nredis.register_function('t1', function() return 'hello' end)";
    q::<()>(&mut c, &["FUNCTION", "LOAD", lib]);
    q::<()>(&mut c, &["SET", "x", "1"]);
    q::<()>(&mut c, &["DEBUG", "RELOAD"]);
    // Without MERGE the file's library clashes with the loaded one.
    let e = qerr(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH"]);
    assert!(e.contains("Error trying to load the RDB"), "{e}");
    let lib2 = "#!lua name=t2\nredis.register_function('t2', function() return 'hello' end)";
    q::<()>(&mut c, &["FUNCTION", "LOAD", lib2]);
    q::<()>(&mut c, &["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"]);
    assert_eq!(q::<String>(&mut c, &["FCALL", "t1", "0"]), "hello");
    assert_eq!(q::<String>(&mut c, &["FCALL", "t2", "0"]), "hello");
    assert_eq!(q::<String>(&mut c, &["GET", "x"]), "1");
}
