//! Pub/Sub over TCP: delivery across worker threads, patterns, shard
//! channels, RESP2 subscribed-mode rules, RESP3 pushes and slow
//! subscribers hitting the output buffer limit.

mod common;

use common::Server;
use redis::cmd;
use std::time::Duration;

#[test]
fn publish_reaches_channel_and_pattern_subscribers() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut sub = s.raw();
    sub.roundtrip(
        b"SUBSCRIBE news\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    sub.roundtrip(
        b"PSUBSCRIBE n*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n",
    );
    let mut c = s.client();
    let n: i64 = cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let expect = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
    assert_eq!(
        String::from_utf8_lossy(&sub.read_exact_n(expect.len())),
        String::from_utf8_lossy(expect)
    );
    // Only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT, RESET in RESP2.
    sub.roundtrip(
        b"GET x\r\n",
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    sub.roundtrip(b"PING\r\n", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    let numsub: Vec<redis::Value> = cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .arg("none")
        .query(&mut c)
        .unwrap();
    assert_eq!(numsub.len(), 4);
    assert_eq!(cmd("PUBSUB").arg("NUMPAT").query::<i64>(&mut c).unwrap(), 1);
    sub.roundtrip(
        b"UNSUBSCRIBE\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    sub.roundtrip(
        b"PUNSUBSCRIBE\r\n",
        b"*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n",
    );
    sub.roundtrip(b"GET x\r\n", b"$-1\r\n");
    assert_eq!(
        cmd("PUBLISH")
            .arg("news")
            .arg("x")
            .query::<i64>(&mut c)
            .unwrap(),
        0
    );
}

#[test]
fn resp3_pushes_and_shard_channels() {
    let s = Server::start(&[]);
    let mut sub = s.raw();
    sub.send(b"HELLO 3\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let _ = sub.s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = sub.read_to_close();
    let _ = sub.s.set_read_timeout(Some(Duration::from_secs(5)));
    sub.roundtrip(
        b"SSUBSCRIBE orders\r\n",
        b">3\r\n$10\r\nssubscribe\r\n$6\r\norders\r\n:1\r\n",
    );
    // RESP3 clients may run any command while subscribed.
    sub.roundtrip(b"GET x\r\n", b"_\r\n");
    let mut c = s.client();
    assert_eq!(
        cmd("SPUBLISH")
            .arg("orders")
            .arg("o1")
            .query::<i64>(&mut c)
            .unwrap(),
        1
    );
    let expect = b">3\r\n$8\r\nsmessage\r\n$6\r\norders\r\n$2\r\no1\r\n";
    assert_eq!(sub.read_exact_n(expect.len()), expect);
}

#[test]
fn message_order_is_preserved_per_publisher() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut sub = s.raw();
    sub.roundtrip(
        b"SUBSCRIBE seq\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nseq\r\n:1\r\n",
    );
    let mut c = s.client();
    let mut expect = Vec::new();
    for i in 0..500 {
        let p = i.to_string();
        let _: i64 = cmd("PUBLISH").arg("seq").arg(&p).query(&mut c).unwrap();
        expect.extend_from_slice(
            format!(
                "*3\r\n$7\r\nmessage\r\n$3\r\nseq\r\n${}\r\n{}\r\n",
                p.len(),
                p
            )
            .as_bytes(),
        );
    }
    assert!(sub.read_exact_n(expect.len()) == expect);
}

#[test]
fn slow_subscriber_is_disconnected_at_the_hard_limit() {
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 256kb 128kb 60"]);
    let sub = s.raw();
    sub.s.set_nonblocking(false).unwrap();
    let mut sub = sub;
    sub.roundtrip(
        b"SUBSCRIBE flood\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
    );
    // Never read again: the server must drop the subscriber, not grow forever.
    let mut c = s.client();
    let payload = "x".repeat(64 * 1024);
    // Messages for a subscriber on another worker reach its output buffer
    // through that worker's mailbox, so on a loaded machine the limit can
    // trip a little after the publisher sent them: keep publishing (slowly
    // after the first 400) for up to 20 seconds.
    let mut dropped = false;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for i in 0.. {
        let n: i64 = cmd("PUBLISH")
            .arg("flood")
            .arg(&payload)
            .query(&mut c)
            .unwrap();
        if n == 0 {
            dropped = true;
            break;
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        if i >= 400 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    assert!(dropped, "the slow subscriber was never disconnected");
    let info: String = cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(
        info.contains("client_output_buffer_limit_disconnections:1"),
        "{info}"
    );
}

#[test]
fn keyspace_notifications_for_writes_and_expiry() {
    let s = Server::start(&["--notify-keyspace-events", "KEA", "--hz", "100"]);
    let mut c = s.client();
    let flags: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query(&mut c)
        .unwrap();
    assert_eq!(flags[1], "AKE");
    let mut sub = s.raw();
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    let _: () = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("PX")
        .arg(30)
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("INCRBY").arg("n").arg(2).query(&mut c).unwrap();
    let _: i64 = cmd("DEL").arg("n").query(&mut c).unwrap();
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut buf = String::new();
    while events.len() < 5 && std::time::Instant::now() < deadline {
        let mut b = [0u8; 1024];
        use std::io::Read;
        let n = sub.s.read(&mut b).unwrap_or(0);
        buf.push_str(&String::from_utf8_lossy(&b[..n]));
        events = buf
            .match_indices("__keyevent@0__:")
            .map(|(i, _)| buf[i + 15..].split('\r').next().unwrap().to_string())
            .filter(|e| e != "*")
            .collect();
    }
    assert_eq!(
        events,
        vec!["set", "expire", "incrby", "del", "expired"],
        "{buf}"
    );
    let e = cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEQ")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("Invalid event class character"));
}

#[test]
fn keyspace_notifications_for_collections() {
    let s = Server::start(&["--notify-keyspace-events", "KEA"]);
    let mut c = s.client();
    let mut sub = s.raw();
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    let _: i64 = cmd("LPUSH").arg("l").arg("a").query(&mut c).unwrap();
    let _: Option<String> = cmd("RPOP").arg("l").query(&mut c).unwrap();
    let _: i64 = cmd("SADD").arg("s").arg("x").query(&mut c).unwrap();
    let _: i64 = cmd("SADD").arg("s").arg("x").query(&mut c).unwrap(); // no change: no event
    let _: i64 = cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .query(&mut c)
        .unwrap();
    let _: f64 = cmd("ZINCRBY")
        .arg("z")
        .arg(1)
        .arg("m")
        .query(&mut c)
        .unwrap();
    let mut buf = String::new();
    let want = ["lpush", "rpop", "del", "sadd", "hset", "zincr"];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut events: Vec<String> = Vec::new();
    while events.len() < want.len() && std::time::Instant::now() < deadline {
        let mut b = [0u8; 1024];
        use std::io::Read;
        let n = sub.s.read(&mut b).unwrap_or(0);
        buf.push_str(&String::from_utf8_lossy(&b[..n]));
        events = buf
            .match_indices("__keyevent@0__:")
            .map(|(i, _)| buf[i + 15..].split('\r').next().unwrap().to_string())
            .filter(|e| e != "*")
            .collect();
    }
    assert_eq!(events, want, "{buf}");
}

#[test]
fn new_key_events_and_store_commands_raise_redis_event_names() {
    let s = Server::start(&["--notify-keyspace-events", "EAn", "--io-threads", "2"]);
    let mut c = s.client();
    let mut sub = s.raw();
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    let run = |c: &mut redis::Connection, args: &[&str]| {
        let mut k = cmd(args[0]);
        for a in &args[1..] {
            k.arg(*a);
        }
        k.query::<redis::Value>(c).unwrap();
    };
    run(&mut c, &["SET", "foo", "bar"]); // new, set
    run(&mut c, &["SET", "foo", "baz"]); // set only: foo exists
    run(&mut c, &["SADD", "s1", "a", "b"]); // new, sadd
    run(&mut c, &["SINTERSTORE", "dst", "s1", "none"]); // nothing to store or delete
    run(&mut c, &["SADD", "dst", "x"]); // new, sadd
    run(&mut c, &["SINTERSTORE", "dst", "s1", "none"]); // del only
    run(&mut c, &["SADD", "s2", "a"]); // new, sadd
    run(&mut c, &["SMOVE", "s1", "s2", "a"]); // srem only: s2 had a
    run(&mut c, &["ZADD", "z", "1", "m"]); // new, zadd
    run(&mut c, &["ZRANGESTORE", "zd", "z", "5", "9"]); // nothing
    let want = [
        "new", "set", "set", "new", "sadd", "new", "sadd", "del", "new", "sadd", "srem", "new",
        "zadd",
    ];
    let mut buf = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut events: Vec<String> = Vec::new();
    while events.len() < want.len() && std::time::Instant::now() < deadline {
        let mut b = [0u8; 1024];
        use std::io::Read;
        let n = sub.s.read(&mut b).unwrap_or(0);
        buf.push_str(&String::from_utf8_lossy(&b[..n]));
        events = buf
            .match_indices("__keyevent@0__:")
            .map(|(i, _)| buf[i + 15..].split('\r').next().unwrap().to_string())
            .filter(|e| e != "*")
            .collect();
    }
    // Nothing more arrives after the last expected event.
    run(&mut c, &["SET", "end", "1"]);
    let mut b = [0u8; 4096];
    use std::io::Read;
    let _ = sub.s.set_read_timeout(Some(Duration::from_millis(300)));
    while let Ok(n) = sub.s.read(&mut b) {
        if n == 0 {
            break;
        }
        buf.push_str(&String::from_utf8_lossy(&b[..n]));
    }
    let all: Vec<String> = buf
        .match_indices("__keyevent@0__:")
        .map(|(i, _)| buf[i + 15..].split('\r').next().unwrap().to_string())
        .filter(|e| e != "*")
        .collect();
    let mut full: Vec<&str> = want.to_vec();
    full.extend(["new", "set"]);
    assert_eq!(all, full, "{buf}");
}
