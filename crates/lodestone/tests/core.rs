//! Integration tests of the server core over TCP: strings, keys, expiry,
//! protocol handling, configuration and connection commands.

mod common;

use common::Server;
use redis::{cmd, Commands, Value};
use std::time::Duration;

#[test]
fn strings_roundtrip() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = c.set("k", "v").unwrap();
    assert_eq!(c.get::<_, String>("k").unwrap(), "v");
    assert_eq!(c.append::<_, _, i64>("k", "w").unwrap(), 2);
    assert_eq!(c.strlen::<_, i64>("k").unwrap(), 2);
    assert_eq!(c.incr::<_, _, i64>("n", 5).unwrap(), 5);
    assert_eq!(c.decr::<_, _, i64>("n", 7).unwrap(), -2);
    let e: redis::RedisResult<i64> = c.incr("k", 1);
    assert_eq!(
        e.unwrap_err().detail(),
        Some("value is not an integer or out of range")
    );
    let _: () = c.set("big", i64::MAX).unwrap();
    let e: redis::RedisResult<i64> = c.incr("big", 1);
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("increment or decrement would overflow"));
    assert_eq!(
        cmd("GETRANGE")
            .arg("k")
            .arg(0)
            .arg(-1)
            .query::<String>(&mut c)
            .unwrap(),
        "vw"
    );
    assert_eq!(
        cmd("SETRANGE")
            .arg("r")
            .arg(3)
            .arg("x")
            .query::<i64>(&mut c)
            .unwrap(),
        4
    );
    assert_eq!(c.get::<_, Vec<u8>>("r").unwrap(), b"\0\0\0x");
    let _: () = c.mset(&[("a", "1"), ("b", "2")]).unwrap();
    assert_eq!(
        c.mget::<_, Vec<Option<String>>>(&["a", "b", "zz"]).unwrap(),
        vec![Some("1".into()), Some("2".into()), None]
    );
    assert_eq!(
        cmd("MSETNX")
            .arg("a")
            .arg("x")
            .arg("c")
            .arg("y")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );
    assert_eq!(c.exists::<_, i64>("c").unwrap(), 0);
    assert_eq!(cmd("GETDEL").arg("a").query::<String>(&mut c).unwrap(), "1");
    assert_eq!(c.exists::<_, i64>("a").unwrap(), 0);
    assert_eq!(
        cmd("LCS")
            .arg("x1")
            .arg("x2")
            .query::<String>(&mut c)
            .unwrap(),
        ""
    );
    let _: () = c.set("x1", "ohmytext").unwrap();
    let _: () = c.set("x2", "mynewtext").unwrap();
    assert_eq!(
        cmd("LCS")
            .arg("x1")
            .arg("x2")
            .query::<String>(&mut c)
            .unwrap(),
        "mytext"
    );
    assert_eq!(
        cmd("LCS")
            .arg("x1")
            .arg("x2")
            .arg("LEN")
            .query::<i64>(&mut c)
            .unwrap(),
        6
    );
}

#[test]
fn object_encodings_follow_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let enc = |c: &mut redis::Connection, k: &str| {
        cmd("OBJECT")
            .arg("ENCODING")
            .arg(k)
            .query::<String>(c)
            .unwrap()
    };
    let _: () = c.set("i", "12345").unwrap();
    let _: () = c.set("e", "hello").unwrap();
    let _: () = c.set("r", "x".repeat(45)).unwrap();
    assert_eq!(enc(&mut c, "i"), "int");
    assert_eq!(enc(&mut c, "e"), "embstr");
    assert_eq!(enc(&mut c, "r"), "raw");
    let _: i64 = c.append("e", "!").unwrap();
    assert_eq!(enc(&mut c, "e"), "raw");
}

#[test]
fn set_options_and_expiry() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        cmd("SET")
            .arg("k")
            .arg("v")
            .arg("NX")
            .query::<Option<String>>(&mut c)
            .unwrap(),
        Some("OK".into())
    );
    assert_eq!(
        cmd("SET")
            .arg("k")
            .arg("v2")
            .arg("NX")
            .query::<Option<String>>(&mut c)
            .unwrap(),
        None
    );
    assert_eq!(
        cmd("SET")
            .arg("k")
            .arg("v3")
            .arg("XX")
            .arg("GET")
            .query::<Option<String>>(&mut c)
            .unwrap(),
        Some("v".into())
    );
    let e = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("NX")
        .arg("XX")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("syntax error"));
    let e = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(0)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("invalid expire time in 'set' command"));
    let _: () = cmd("SET")
        .arg("t")
        .arg("v")
        .arg("PX")
        .arg(150)
        .query(&mut c)
        .unwrap();
    let pttl: i64 = c.pttl("t").unwrap();
    assert!(pttl > 0 && pttl <= 150);
    assert_eq!(c.ttl::<_, i64>("k").unwrap(), -1);
    assert_eq!(c.ttl::<_, i64>("nokey").unwrap(), -2);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.get::<_, Option<String>>("t").unwrap(), None);
    // KEEPTTL keeps, a plain SET clears.
    let _: () = cmd("SET")
        .arg("t")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SET")
        .arg("t")
        .arg("w")
        .arg("KEEPTTL")
        .query(&mut c)
        .unwrap();
    assert!(c.ttl::<_, i64>("t").unwrap() > 90);
    let _: () = c.set("t", "x").unwrap();
    assert_eq!(c.ttl::<_, i64>("t").unwrap(), -1);
    // EXPIRE options.
    assert_eq!(
        cmd("EXPIRE")
            .arg("t")
            .arg(100)
            .arg("XX")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );
    assert_eq!(
        cmd("EXPIRE")
            .arg("t")
            .arg(100)
            .arg("NX")
            .query::<i64>(&mut c)
            .unwrap(),
        1
    );
    assert_eq!(
        cmd("EXPIRE")
            .arg("t")
            .arg(50)
            .arg("GT")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );
    assert_eq!(
        cmd("EXPIRE")
            .arg("t")
            .arg(50)
            .arg("LT")
            .query::<i64>(&mut c)
            .unwrap(),
        1
    );
    let e = cmd("EXPIRE")
        .arg("t")
        .arg(50)
        .arg("NX")
        .arg("XX")
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("NX and XX, GT or LT options at the same time are not compatible"));
    assert_eq!(c.persist::<_, i64>("t").unwrap(), 1);
    assert_eq!(
        cmd("EXPIRE").arg("t").arg(-1).query::<i64>(&mut c).unwrap(),
        1
    );
    assert_eq!(c.exists::<_, i64>("t").unwrap(), 0);
}

#[test]
fn active_expiry_deletes_unread_keys() {
    let s = Server::start(&["--hz", "100"]);
    let mut c = s.client();
    for i in 0..200 {
        let _: () = cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .query(&mut c)
            .unwrap();
    }
    let _: () = c.set("keep", "v").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = cmd("DBSIZE").query(&mut c).unwrap();
        if n == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "active expiry left {n} keys"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The shards' expired counts reach INFO's total on worker 0's next
    // cron pass, a moment after the keys are gone.
    loop {
        let info: String = cmd("INFO").arg("stats").query(&mut c).unwrap();
        if info.contains("expired_keys:200\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keyspace_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    for k in ["foo", "foobar", "bar", "a{x}b"] {
        let _: () = c.set(k, 1).unwrap();
    }
    let mut keys: Vec<String> = c.keys("foo*").unwrap();
    keys.sort();
    assert_eq!(keys, vec!["foo", "foobar"]);
    // SCAN visits every key exactly once here.
    let mut cursor = 0u64;
    let mut seen = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(2)
            .query(&mut c)
            .unwrap();
        seen.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, vec!["a{x}b", "bar", "foo", "foobar"]);
    let _: () = c.rename("foo", "baz").unwrap();
    assert_eq!(c.exists::<_, i64>("foo").unwrap(), 0);
    assert!(c
        .rename::<_, _, ()>("nope", "x")
        .unwrap_err()
        .to_string()
        .contains("no such key"));
    assert_eq!(
        cmd("RENAMENX")
            .arg("baz")
            .arg("bar")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );
    assert_eq!(
        cmd("COPY")
            .arg("bar")
            .arg("bar2")
            .query::<i64>(&mut c)
            .unwrap(),
        1
    );
    assert_eq!(
        cmd("MOVE").arg("bar2").arg(3).query::<i64>(&mut c).unwrap(),
        1
    );
    assert_eq!(
        cmd("TYPE").arg("bar").query::<String>(&mut c).unwrap(),
        "string"
    );
    assert_eq!(
        cmd("TYPE").arg("bar2").query::<String>(&mut c).unwrap(),
        "none"
    );
    let _: () = cmd("SELECT").arg(3).query(&mut c).unwrap();
    assert_eq!(c.get::<_, i64>("bar2").unwrap(), 1);
    let _: () = cmd("SWAPDB").arg(0).arg(3).query(&mut c).unwrap();
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 4);
    let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    assert_eq!(
        cmd("RANDOMKEY").query::<Option<String>>(&mut c).unwrap(),
        None
    );
    let e = cmd("SELECT").arg(16).query::<()>(&mut c).unwrap_err();
    assert!(e.to_string().contains("DB index is out of range"));
}

#[test]
fn protocol_errors_and_inline_commands() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(b"PING\r\n", b"+PONG\r\n");
    r.roundtrip(b"set a \"b c\"\r\nget a\r\n", b"+OK\r\n$3\r\nb c\r\n");
    r.roundtrip(
        b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
        b"+PONG\r\n$2\r\nhi\r\n",
    );
    let mut r = s.raw();
    r.send(b"*1\r\nfoo\r\n");
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    let mut r = s.raw();
    r.send(b"*3000000000\r\n");
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
    let mut r = s.raw();
    r.send(b"*1\r\n$-10\r\n");
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    let mut r = s.raw();
    r.send(b"set a \"unbalanced\r\n");
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    let mut r = s.raw();
    r.send(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    // The server is still fine.
    let mut c = s.client();
    assert_eq!(cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

#[test]
fn deep_pipeline_is_answered_in_order() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let n = 20000;
    let mut req = Vec::new();
    for i in 0..n {
        req.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$6\r\nk{:05}\r\n$1\r\nv\r\n*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n",
                i
            )
            .as_bytes(),
        );
    }
    let reader = {
        let mut rr = common::Raw {
            s: r.s.try_clone().unwrap(),
        };
        std::thread::spawn(move || {
            let mut expected = Vec::new();
            for i in 1..=n {
                expected.extend_from_slice(b"+OK\r\n");
                expected.extend_from_slice(format!(":{i}\r\n").as_bytes());
            }
            let got = rr.read_exact_n(expected.len());
            assert!(got == expected, "pipelined replies differ");
        })
    };
    r.send(&req);
    reader.join().unwrap();
}

#[test]
fn pipeline_then_half_close_gets_every_reply() {
    // A worker stops a long pipeline at its time quantum and comes back to
    // it; a client that already closed its sending side still gets every
    // reply before the connection closes.
    let s = Server::start(&[]);
    let mut r = s.raw();
    let n = 30000;
    let mut req = Vec::new();
    for _ in 0..n {
        req.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n");
    }
    let mut rr = common::Raw {
        s: r.s.try_clone().unwrap(),
    };
    let reader = std::thread::spawn(move || rr.read_to_close());
    r.send(&req);
    r.s.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reader.join().unwrap();
    let mut expected = Vec::new();
    for i in 1..=n {
        expected.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    assert!(
        got == expected,
        "got {} bytes, want {}",
        got.len(),
        expected.len()
    );
    let mut c = s.client();
    assert_eq!(cmd("GET").arg("ctr").query::<i64>(&mut c).unwrap(), n);
}

#[test]
fn bulk_arguments_split_across_reads() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let big = vec![b'x'; 300_000];
    let mut req = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n");
    for chunk in req.chunks(7000) {
        r.send(chunk);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(r.read_exact_n(5), b"+OK\r\n");
    let mut c = s.client();
    assert_eq!(c.strlen::<_, i64>("big").unwrap(), 300_000);
}

#[test]
fn query_buffer_limit_closes_client() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut r = s.raw();
    // A bulk that is declared but never completed grows the query buffer.
    let mut req = b"*2\r\n$3\r\nGET\r\n$100000000\r\n".to_vec();
    req.extend(vec![b'a'; 2 * 1024 * 1024]);
    let _ = r.s.write_all_ignoring_errors(&req);
    let _ = r.read_to_close();
    let mut c = s.client();
    let info: String = cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(
        info.contains("client_query_buffer_limit_disconnections:1"),
        "{info}"
    );
}

trait WriteAll {
    fn write_all_ignoring_errors(&mut self, b: &[u8]) -> std::io::Result<()>;
}

impl WriteAll for std::net::TcpStream {
    fn write_all_ignoring_errors(&mut self, b: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        for chunk in b.chunks(64 * 1024) {
            self.write_all(chunk)?;
        }
        Ok(())
    }
}

#[test]
fn config_get_set_and_errors() {
    let s = Server::start(&["--maxmemory", "10mb"]);
    let mut c = s.client();
    let v: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec!["maxmemory", &(10 * 1024 * 1024).to_string()]);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1gb")
        .arg("hz")
        .arg(20)
        .query(&mut c)
        .unwrap();
    let v: Vec<String> = cmd("CONFIG").arg("GET").arg("hz").query(&mut c).unwrap();
    assert_eq!(v, vec!["hz", "20"]);
    let e = cmd("CONFIG")
        .arg("SET")
        .arg("nope")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("Unknown option or number of arguments for CONFIG SET - 'nope'"));
    let e = cmd("CONFIG")
        .arg("SET")
        .arg("hz")
        .arg(5)
        .arg("maxmemory")
        .arg("lots")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("argument must be a memory value"));
    let v: Vec<String> = cmd("CONFIG").arg("GET").arg("hz").query(&mut c).unwrap();
    assert_eq!(v, vec!["hz", "20"], "a failed CONFIG SET changes nothing");
    let v: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("*max-*-entries*")
        .query(&mut c)
        .unwrap();
    assert!(v.contains(&"hash-max-ziplist-entries".to_string()));
}

#[test]
fn unknown_commands_and_arity() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(
        b"foo bar baz\r\n",
        b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n",
    );
    r.roundtrip(
        b"get\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    );
    r.roundtrip(
        b"config nope\r\n",
        b"-ERR unknown subcommand 'nope'. Try CONFIG HELP.\r\n",
    );
    let mut c = s.client();
    let stats: String = cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(stats.contains("errorstat_ERR:count=3"), "{stats}");
}

#[test]
fn auth_and_hello() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut r = s.raw();
    r.roundtrip(b"GET x\r\n", b"-NOAUTH Authentication required.\r\n");
    r.roundtrip(
        b"AUTH wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    r.roundtrip(b"AUTH secret\r\n", b"+OK\r\n");
    r.roundtrip(b"GET x\r\n", b"$-1\r\n");
    let mut r = s.raw();
    r.send(b"HELLO 3 AUTH default secret\r\n");
    let got = r.read_exact_n(4);
    assert_eq!(got, b"%7\r\n");
    let mut r = s.raw();
    r.roundtrip(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n");
}

#[test]
fn resp3_null_and_map() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"HELLO 3\r\n");
    let _ = r.read_exact_n(4);
    std::thread::sleep(Duration::from_millis(50));
    let _ = r.s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = r.read_to_close();
    let _ = r.s.set_read_timeout(Some(Duration::from_secs(5)));
    r.roundtrip(b"GET nokey\r\n", b"_\r\n");
    r.roundtrip(b"CONFIG GET hz\r\n", b"%1\r\n$2\r\nhz\r\n$2\r\n10\r\n");
}

#[test]
fn client_commands() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let _: () = cmd("CLIENT")
        .arg("SETNAME")
        .arg("alpha")
        .query(&mut a)
        .unwrap();
    assert_eq!(
        cmd("CLIENT")
            .arg("GETNAME")
            .query::<String>(&mut a)
            .unwrap(),
        "alpha"
    );
    let e = cmd("CLIENT")
        .arg("SETNAME")
        .arg("a b")
        .query::<()>(&mut a)
        .unwrap_err();
    assert!(e.to_string().contains("Client names cannot contain spaces"));
    let list: String = cmd("CLIENT").arg("LIST").query(&mut b).unwrap();
    assert!(list.contains("name=alpha"), "{list}");
    let id: i64 = cmd("CLIENT").arg("ID").query(&mut a).unwrap();
    let killed: i64 = cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut b)
        .unwrap();
    assert_eq!(killed, 1);
    std::thread::sleep(Duration::from_millis(100));
    assert!(cmd("PING").query::<String>(&mut a).is_err());
    // CLIENT REPLY OFF silences replies until ON.
    let mut r = s.raw();
    r.roundtrip(
        b"CLIENT REPLY OFF\r\nSET x 1\r\nCLIENT REPLY ON\r\nGET x\r\n",
        b"+OK\r\n$1\r\n1\r\n",
    );
}

/// DEBUG WORKERS: connections per worker thread.
fn worker_loads(c: &mut redis::Connection) -> Vec<i64> {
    cmd("DEBUG").arg("WORKERS").query(c).unwrap()
}

#[test]
fn new_connections_go_to_the_least_loaded_worker() {
    let s = Server::start(&["--io-threads", "4", "--enable-debug-command", "yes"]);
    let spread = |l: &[i64]| l.iter().max().unwrap() - l.iter().min().unwrap();
    // The harness's startup connections close asynchronously: start
    // counting once only this one is left.
    let mut first = s.client();
    while worker_loads(&mut first).iter().sum::<i64>() > 1 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Opened one after another, each answered before the next: whichever
    // worker accepts, they are dealt out evenly.
    let mut conns: Vec<redis::Connection> = vec![first];
    conns.extend((1..12).map(|_| s.client()));
    for c in conns.iter_mut() {
        assert_eq!(common::q::<String>(c, &["PING"]), "PONG");
    }
    let loads = worker_loads(&mut conns[0]);
    assert_eq!(loads, vec![3, 3, 3, 3]);
    // Every worker's clients are served: keys written through each
    // connection are visible through the others.
    for (i, c) in conns.iter_mut().enumerate() {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    let mut all: Vec<String> = conns[5].keys("k*").unwrap();
    all.sort();
    assert_eq!(all.len(), 12);
    // Closing connections leaves holes that the next ones fill.
    let ids: Vec<i64> = conns
        .iter_mut()
        .take(3)
        .map(|c| common::q(c, &["CLIENT", "ID"]))
        .collect();
    drop(conns.drain(..3));
    // Wait through a connection that stays, so that no new connection is
    // placed before the closes are counted.
    loop {
        let clients: String = common::q(&mut conns[0], &["CLIENT", "LIST"]);
        if !ids.iter().any(|id| clients.contains(&format!("id={id} "))) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for _ in 0..3 {
        let mut c = s.client();
        assert_eq!(common::q::<String>(&mut c, &["PING"]), "PONG");
        conns.push(c);
    }
    let loads = worker_loads(&mut conns[0]);
    assert_eq!(loads.iter().sum::<i64>(), 12, "{loads:?}");
    assert!(spread(&loads) <= 1, "{loads:?}");
    // Many clients connecting at once spread as well.
    let url = s.url();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                assert_eq!(common::q::<String>(&mut c, &["PING"]), "PONG");
                c
            })
        })
        .collect();
    let more: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let loads = worker_loads(&mut conns[0]);
    assert_eq!(loads.iter().sum::<i64>(), 20, "{loads:?}");
    assert!(spread(&loads) <= 1, "{loads:?}");
    drop(more);
}

#[test]
fn multi_threaded_counters_are_exact() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut handles = Vec::new();
    for _ in 0..4 {
        let url = s.url();
        handles.push(std::thread::spawn(move || {
            let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
            for _ in 0..2000 {
                let _: i64 = c.incr("ctr", 1).unwrap();
                let _: () = cmd("MSET")
                    .arg("a")
                    .arg(1)
                    .arg("b")
                    .arg(1)
                    .query(&mut c)
                    .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let mut c = s.client();
    assert_eq!(c.get::<_, i64>("ctr").unwrap(), 8000);
    let clients: String = cmd("INFO").arg("server").query(&mut c).unwrap();
    assert!(clients.contains("threads:2"));
}

#[test]
fn command_introspection() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let n: i64 = cmd("COMMAND").arg("COUNT").query(&mut c).unwrap();
    assert!(n > 50);
    let keys: Vec<String> = cmd("COMMAND")
        .arg("GETKEYS")
        .arg("MSET")
        .arg("a")
        .arg("1")
        .arg("b")
        .arg("2")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    let info: Value = cmd("COMMAND").arg("INFO").arg("get").query(&mut c).unwrap();
    match info {
        Value::Array(items) => match &items[0] {
            Value::Array(f) => {
                assert_eq!(f[0], Value::BulkString(b"get".to_vec()));
                assert_eq!(f[1], Value::Int(2));
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn shutdown_stops_the_server() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    let _ = cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    assert!(s.wait_exit(Duration::from_secs(5)));
    assert!(!s.alive());
}

#[test]
fn redis_cli_works_against_the_server() {
    let Ok(out) = std::process::Command::new("redis-cli")
        .arg("--version")
        .output()
    else {
        if std::env::var("CI").is_ok() {
            panic!("redis-cli is required in CI (scripts/test installs it)");
        }
        return;
    };
    assert!(out.status.success());
    let s = Server::start(&[]);
    let run = |args: &[&str]| {
        let o = std::process::Command::new("redis-cli")
            .arg("-p")
            .arg(s.port.to_string())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(run(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(run(&["GET", "greeting"]), "hello world");
    assert_eq!(run(&["INCRBY", "n", "41"]), "41");
    assert!(run(&["INFO", "server"]).contains("redis_version:7.2"));
}

/// `clients` connections at once, each SETting and reading back `n` keys
/// of its own: every client must get its own replies.
fn each_client_reads_its_writes(s: &Server, clients: usize, n: i64, prefix: &str) {
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let mut c = s.client();
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                for i in 0..n {
                    let k = format!("{prefix}:{t}:{i}");
                    let _: () = c.set(&k, i).unwrap();
                    assert_eq!(c.get::<_, i64>(&k).unwrap(), i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn monitor_streams_executed_commands() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut m = s.raw();
    m.roundtrip(b"MONITOR\r\n", b"+OK\r\n");
    let mut c = s.client();
    let _: () = c.set("foo", "b\"ar").unwrap();
    let _ = cmd("AUTH").arg("secret").query::<()>(&mut c);
    let _: () = cmd("CONFIG")
        .arg("SET")
        .arg("hz")
        .arg(10)
        .query(&mut c)
        .unwrap();
    let _: Option<String> = c.get("foo").unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"GET\"") && std::time::Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        use std::io::Read;
        let n = m.s.read(&mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains(r#""SET" "foo" "b\"ar""#), "{seen}");
    assert!(seen.contains(r#""AUTH" "(redacted)""#), "{seen}");
    assert!(
        !seen.contains("CONFIG"),
        "admin commands are not shown: {seen}"
    );
    assert!(
        seen.starts_with('+') && seen.contains(" [0 127.0.0.1:"),
        "{seen}"
    );
}

#[test]
fn monitor_shows_scripts_before_the_commands_they_run() {
    let s = Server::start(&[]);
    let mut m = s.raw();
    m.roundtrip(b"MONITOR\r\n", b"+OK\r\n");
    let mut c = s.client();
    let _: () = cmd("EVAL")
        .arg("redis.call('set', KEYS[1], ARGV[1])")
        .arg(1)
        .arg("foo")
        .arg("bar")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=lib\nredis.register_function('f', function() return redis.call('del', 'foo') end)")
        .query::<String>(&mut c)
        .map(|_| ())
        .unwrap();
    let _: i64 = cmd("FCALL").arg("f").arg(0).query(&mut c).unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("\"del\"") && std::time::Instant::now() < deadline {
        let mut buf = [0u8; 4096];
        use std::io::Read;
        let n = m.s.read(&mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let lines: Vec<&str> = seen.lines().collect();
    let at = |pat: &str| {
        lines
            .iter()
            .position(|l| l.contains(pat))
            .unwrap_or_else(|| panic!("{pat} not in {seen}"))
    };
    assert!(
        at("\"EVAL\"") < at("[0 lua] \"set\" \"foo\" \"bar\""),
        "{seen}"
    );
    assert!(
        at("\"FCALL\" \"f\"") < at("[0 lua] \"del\" \"foo\""),
        "{seen}"
    );
    assert!(lines[at("\"EVAL\"")].contains(" [0 127.0.0.1:"), "{seen}");
}

#[test]
fn debug_populate_follows_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = c.set("key:1", "mine").unwrap();
    let ok: String = cmd("DEBUG").arg("POPULATE").arg(3).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    // Existing keys are left alone; the others get value:N (embstr).
    assert_eq!(c.get::<_, String>("key:0").unwrap(), "value:0");
    assert_eq!(c.get::<_, String>("key:1").unwrap(), "mine");
    assert_eq!(c.get::<_, String>("key:2").unwrap(), "value:2");
    assert!(!c.exists::<_, bool>("key:3").unwrap());
    let enc: String = cmd("OBJECT")
        .arg("ENCODING")
        .arg("key:2")
        .query(&mut c)
        .unwrap();
    assert_eq!(enc, "embstr");
    // A prefix, and a size: values cut or zero-padded to it.
    let _: () = cmd("DEBUG")
        .arg("POPULATE")
        .arg(12)
        .arg("p")
        .arg(7)
        .query(&mut c)
        .unwrap();
    assert_eq!(c.get::<_, Vec<u8>>("p:3").unwrap(), b"value:3");
    assert_eq!(c.get::<_, Vec<u8>>("p:11").unwrap(), b"value:1");
    let _: () = cmd("DEBUG")
        .arg("POPULATE")
        .arg(2)
        .arg("z")
        .arg(10)
        .query(&mut c)
        .unwrap();
    assert_eq!(c.get::<_, Vec<u8>>("z:1").unwrap(), b"value:1\0\0\0");
    // Size 0 is the default form; count 0 does nothing.
    let _: () = cmd("DEBUG")
        .arg("POPULATE")
        .arg(1)
        .arg("y")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(c.get::<_, String>("y:0").unwrap(), "value:0");
    let _: () = cmd("DEBUG").arg("POPULATE").arg(0).query(&mut c).unwrap();
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 3 + 12 + 2 + 1);
    // In another database (its first write).
    let _: () = cmd("SELECT").arg(7).query(&mut c).unwrap();
    let _: () = cmd("DEBUG")
        .arg("POPULATE")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 1000);
    for bad in ["-1", "x"] {
        // A bad count, then a bad size.
        for args in [vec![bad], vec!["1", "k", bad]] {
            let e = cmd("DEBUG")
                .arg("POPULATE")
                .arg(&args)
                .query::<String>(&mut c);
            assert_eq!(
                e.unwrap_err().detail(),
                Some("value is out of range, must be positive")
            );
        }
    }
    let e = cmd("DEBUG")
        .arg("POPULATE")
        .arg(1)
        .arg("k")
        .arg(1)
        .arg(1)
        .query::<String>(&mut c);
    assert!(e.is_err());
}

/// Databases get their shards on first use: an empty server is small, and
/// databases never written behave as empty everywhere (DBSIZE, KEYS, SCAN,
/// RANDOMKEY, INFO keyspace, SWAPDB, MOVE, FLUSHALL, DEBUG RELOAD).
#[test]
fn databases_are_allocated_on_first_use() {
    let s = Server::start(&["--save", ""]);
    let mut c = s.client();
    let used = |c: &mut redis::Connection| common::info_i64(c, "memory", "used_memory");
    // 16 x 1024 shards allocated up front took ~2.2 MB.
    let empty = used(&mut c);
    assert!(empty < 1_500_000, "empty server used_memory {empty}");
    let sel = |c: &mut redis::Connection, db: i64| {
        let _: () = cmd("SELECT").arg(db).query(c).unwrap();
    };
    sel(&mut c, 3);
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    assert!(c.keys::<_, Vec<String>>("*").unwrap().is_empty());
    let (cur, keys): (u64, Vec<String>) = cmd("SCAN").arg(0).query(&mut c).unwrap();
    assert_eq!((cur, keys.len()), (0, 0));
    assert_eq!(
        cmd("RANDOMKEY").query::<Option<String>>(&mut c).unwrap(),
        None
    );
    assert_eq!(c.get::<_, Option<String>>("nothing").unwrap(), None);
    // MOVE into a database never used, SWAPDB with another one.
    sel(&mut c, 0);
    let _: () = c.set("a", "1").unwrap();
    assert!(cmd("MOVE").arg("a").arg(9).query::<bool>(&mut c).unwrap());
    let _: () = cmd("SWAPDB").arg(9).arg(12).query(&mut c).unwrap();
    sel(&mut c, 12);
    assert_eq!(c.get::<_, String>("a").unwrap(), "1");
    sel(&mut c, 9);
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    let _: () = cmd("SWAPDB").arg(13).arg(14).query(&mut c).unwrap();
    let info: String = cmd("INFO").arg("keyspace").query(&mut c).unwrap();
    assert!(info.contains("db12:keys=1,expires=0"), "{info}");
    assert!(!info.contains("db13") && !info.contains("db14"), "{info}");
    // A reload brings back exactly what was there.
    let _: () = c.set_ex("t", "x", 1000).unwrap();
    let _: () = cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert!(c.ttl::<_, i64>("t").unwrap() > 0);
    sel(&mut c, 12);
    assert_eq!(c.get::<_, String>("a").unwrap(), "1");
    let _: () = cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
    sel(&mut c, 9);
    assert_eq!(cmd("DBSIZE").query::<i64>(&mut c).unwrap(), 0);
}

/// `busy-poll-us` (Lodestone's knob for polling before sleeping) is hidden
/// from CONFIG GET * and settable; with it off, on, or very long, many
/// clients sending one request at a time all get their own replies.
#[test]
fn busy_poll_keeps_replies_per_client() {
    let s = Server::start(&["--io-threads", "1"]);
    let mut admin = s.client();
    let all: Vec<String> = cmd("CONFIG").arg("GET").arg("*").query(&mut admin).unwrap();
    assert!(!all.iter().any(|w| w == "busy-poll-us"));
    let v: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("busy-poll-us")
        .query(&mut admin)
        .unwrap();
    assert_eq!(v, ["busy-poll-us", "0"]);
    for us in ["0", "1000000", "30"] {
        let _: () = cmd("CONFIG")
            .arg("SET")
            .arg("busy-poll-us")
            .arg(us)
            .query(&mut admin)
            .unwrap();
        each_client_reads_its_writes(&s, 8, 200, "bp");
    }
    let e: redis::RedisResult<()> = cmd("CONFIG")
        .arg("SET")
        .arg("busy-poll-us")
        .arg("-1")
        .query(&mut admin);
    assert!(e.is_err());
}

/// `idle-nap-us` (Lodestone's knob: a busy worker naps on a timer before it
/// waits for events) and `idle-nap-cycle-pct` (how far that nap may grow
/// with the connections' cycle) are hidden, 10 and 25 by default, settable
/// from 0 to 1000 and 0 to 100; with each off, at its default and at its
/// longest, enough busy clients to make the worker nap all get their own
/// replies, and a lone client too.
#[test]
fn idle_nap_keeps_replies_per_client() {
    let s = Server::start(&["--io-threads", "1"]);
    let mut admin = s.client();
    let all: Vec<String> = cmd("CONFIG").arg("GET").arg("*").query(&mut admin).unwrap();
    let knobs = [
        ("idle-nap-us", "10", ["0", "1000", "10"], ["-1", "1001"]),
        (
            "idle-nap-cycle-pct",
            "25",
            ["0", "100", "25"],
            ["-1", "101"],
        ),
    ];
    for (name, default, values, bad) in knobs {
        assert!(!all.iter().any(|w| w == name));
        let get = |c: &mut redis::Connection| -> Vec<String> {
            cmd("CONFIG").arg("GET").arg(name).query(c).unwrap()
        };
        assert_eq!(get(&mut admin), [name, default]);
        for v in values {
            let _: () = cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(v)
                .query(&mut admin)
                .unwrap();
            assert_eq!(get(&mut admin), [name, v]);
            // More busy connections than the worker's threshold for napping.
            each_client_reads_its_writes(&s, 24, 150, "nap");
            for i in 0..50 {
                let _: () = admin.set("nap:lone", i).unwrap();
                assert_eq!(admin.get::<_, i64>("nap:lone").unwrap(), i);
            }
        }
        for b in bad {
            let e: redis::RedisResult<()> =
                cmd("CONFIG").arg("SET").arg(name).arg(b).query(&mut admin);
            assert!(e.is_err());
        }
    }
}

/// The kernel's view of the server's end of one connection: the `tr` (timer
/// kind: 2 = keepalive) and `tm->when` (clock ticks) fields of /proc/net/tcp.
fn server_socket_timer(server_port: u16, client_port: u16) -> Option<(u32, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if port_of(f[1])? != server_port || port_of(f[2])? != client_port {
            return None;
        }
        let (tr, when) = f[5].split_once(':')?;
        Some((tr.parse().ok()?, u64::from_str_radix(when, 16).ok()?))
    })
}

#[test]
fn tcp_keepalive_is_set_on_accepted_sockets() {
    // tcp-keepalive 60: the server's socket carries a keepalive timer due in
    // about 60 s; with 0 it carries none.
    for (secs, want_timer) in [("60", true), ("0", false)] {
        let s = Server::start(&["--tcp-keepalive", secs]);
        let mut raw = s.raw();
        raw.roundtrip(b"PING\r\n", b"+PONG\r\n");
        let client_port = raw.s.local_addr().unwrap().port();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let (tr, when) = loop {
            let t = server_socket_timer(s.port, client_port).expect("socket in /proc/net/tcp");
            // Wait out a retransmit timer still pending from the reply.
            if t.0 != 1 || std::time::Instant::now() > deadline {
                break t;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if want_timer {
            assert_eq!(tr, 2, "keepalive timer with tcp-keepalive {secs}");
            // USER_HZ is 100: 60 s idle is 6000 ticks.
            assert!((5000..=6000).contains(&when), "timer due in {when} ticks");
        } else {
            assert_eq!(tr, 0, "no timer with tcp-keepalive 0");
        }
    }
}

/// CLIENT PAUSE WRITE as Redis's unit/pause checks it: held writes (and an
/// EXEC whose queue writes) count as blocked clients and run on UNPAUSE,
/// reads and arity errors answer at once, and a key whose TTL passes
/// during the pause reads as missing but is expired only afterwards.
#[test]
fn client_pause_write_holds_writes_and_expiry() {
    use common::{info_i64, q, qerr, req, wait_blocked};
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "foo", "bar"]);
    let _: () = q(&mut c, &["SET", "short", "v", "PX", "50"]);
    let mut tx = s.raw();
    tx.roundtrip(&req(&[b"MULTI"]), b"+OK\r\n");
    tx.roundtrip(&req(&[b"SET", b"x", b"1"]), b"+QUEUED\r\n");

    let _: () = q(&mut c, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    let mut w = s.raw();
    w.send(&req(&[b"SET", b"foo", b"baz"]));
    wait_blocked(&mut c, 1);
    tx.send(&req(&[b"EXEC"]));
    wait_blocked(&mut c, 2);
    let list: String = q(&mut c, &["CLIENT", "LIST"]);
    let flagged = list
        .lines()
        .filter(|l| {
            l.split(' ')
                .any(|f| f.starts_with("flags=") && f.contains('b'))
        })
        .count();
    assert_eq!(flagged, 2, "{list}");

    // Reads go on; an arity error is not held.
    let v: String = q(&mut c, &["GET", "foo"]);
    assert_eq!(v, "bar");
    assert_eq!(
        qerr(&mut c, &["SET", "foo"]),
        "ERR wrong number of arguments for 'set' command"
    );
    // The TTL passes: the key reads as gone but nothing is expired yet.
    std::thread::sleep(Duration::from_millis(120));
    let gone: Option<String> = q(&mut c, &["GET", "short"]);
    assert_eq!(gone, None);
    assert_eq!(info_i64(&mut c, "stats", "expired_keys"), 0);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 2);

    let _: () = q(&mut c, &["CLIENT", "UNPAUSE"]);
    assert_eq!(w.read_exact_n(5), b"+OK\r\n");
    assert_eq!(tx.read_exact_n(9), b"*1\r\n+OK\r\n");
    wait_blocked(&mut c, 0);
    let v: String = q(&mut c, &["GET", "foo"]);
    assert_eq!(v, "baz");
    let gone: Option<String> = q(&mut c, &["GET", "short"]);
    assert_eq!(gone, None);
    assert_eq!(info_i64(&mut c, "stats", "expired_keys"), 1);
}

/// A client that sends a command and hangs up at once: the data and the
/// FIN often arrive as one edge-triggered event, and the short read that
/// drains the data must not hide the EOF (the connection would stay open
/// forever, a blocked one counted in blocked_clients).
#[test]
fn clients_that_send_and_hang_up_are_closed() {
    use common::{info_i64, wait_for};
    use std::io::Write as _;
    let s = Server::start(&[]);
    let mut c = s.client();
    for i in 0..100 {
        let mut t = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let cmd = if i % 2 == 0 {
            "SET k v\r\n".to_string()
        } else {
            format!("BLPOP nothing{i} 0\r\n")
        };
        t.write_all(cmd.as_bytes()).unwrap();
        drop(t);
    }
    wait_for("the hung-up clients to be closed", || {
        info_i64(&mut c, "clients", "connected_clients") == 1
    });
    assert_eq!(info_i64(&mut c, "clients", "blocked_clients"), 0);
}
