//! Client-side caching over TCP (CLIENT TRACKING): RESP3 invalidation
//! pushes, RESP2 redirection through `__redis__:invalidate`, BCAST
//! prefixes, NOLOOP, OPTIN/OPTOUT, flushes, expiry, the table limit and a
//! broken redirect, with clients spread over two worker threads.

mod common;

use common::{q, qerr, req, Raw, Server};
use std::time::Duration;

/// Switches a raw connection to RESP3 and discards HELLO's reply.
fn resp3(s: &Server) -> Raw {
    let mut c = s.raw();
    c.send(b"HELLO 3\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let _ = c.s.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = c.read_to_close();
    let _ = c.s.set_read_timeout(Some(Duration::from_secs(5)));
    c
}

/// Sends a command and expects exactly these bytes back.
fn rt(c: &mut Raw, args: &[&str], expect: &str) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.roundtrip(&req(&a), expect.as_bytes());
}

/// Expects these bytes next on the connection (an unsolicited message).
fn expect(c: &mut Raw, want: &str) {
    let got = c.read_exact_n(want.len());
    assert_eq!(String::from_utf8_lossy(&got), want);
}

/// A RESP3 invalidation push for these keys.
fn push(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s += &format!("${}\r\n{}\r\n", k.len(), k);
    }
    s
}

/// A RESP2 message on `__redis__:invalidate` carrying these keys.
fn message(keys: &[&str]) -> String {
    let mut s = format!(
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*{}\r\n",
        keys.len()
    );
    for k in keys {
        s += &format!("${}\r\n{}\r\n", k.len(), k);
    }
    s
}

/// A RESP2 connection subscribed to the invalidation channel; its id.
fn redirect_target(s: &Server) -> (Raw, i64) {
    let mut c = s.raw();
    c.send(b"CLIENT ID\r\n");
    let line = String::from_utf8(c.read_exact_n(3)).unwrap();
    let mut rest = line.clone();
    while !rest.ends_with("\r\n") {
        rest += &String::from_utf8(c.read_exact_n(1)).unwrap();
    }
    let id: i64 = rest[1..rest.len() - 2].parse().unwrap();
    rt(
        &mut c,
        &["SUBSCRIBE", "__redis__:invalidate"],
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
    );
    (c, id)
}

fn info_field(c: &mut redis::Connection, name: &str) -> i64 {
    let info: String = q(c, &["INFO"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn resp3_clients_get_invalidations_from_other_threads_and_their_own_writes() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut a = resp3(&s);
    let mut b = resp3(&s);
    let mut w = s.client();
    rt(&mut a, &["CLIENT", "TRACKING", "on"], "+OK\r\n");
    rt(&mut b, &["CLIENT", "TRACKING", "on"], "+OK\r\n");
    let _: () = q(&mut w, &["SET", "k", "1"]);
    rt(&mut a, &["GET", "k"], "$1\r\n1\r\n");
    rt(&mut b, &["GET", "k"], "$1\r\n1\r\n");
    rt(&mut a, &["GET", "other"], "_\r\n");
    let _: () = q(&mut w, &["SET", "k", "2"]);
    expect(&mut a, &push(&["k"]));
    expect(&mut b, &push(&["k"]));
    // The key left the table: a second write sends nothing more.
    let _: () = q(&mut w, &["SET", "k", "3"]);
    rt(&mut a, &["PING"], "+PONG\r\n");
    // A client's own write: the invalidation follows the reply.
    rt(&mut a, &["HSET", "h", "f", "1"], ":1\r\n");
    rt(&mut a, &["HGET", "h", "f"], "$1\r\n1\r\n");
    rt(
        &mut a,
        &["HDEL", "h", "f"],
        &(":1\r\n".to_string() + &push(&["h"])),
    );
    // A write that changes nothing invalidates nothing.
    rt(&mut a, &["HGET", "h", "f"], "_\r\n");
    let _: i64 = q(&mut w, &["HDEL", "h", "f"]);
    rt(&mut a, &["PING"], "+PONG\r\n");
    // Inside MULTI the message comes after EXEC's whole reply.
    rt(&mut a, &["SET", "x", "1"], "+OK\r\n");
    rt(&mut a, &["GET", "x"], "$1\r\n1\r\n");
    rt(&mut a, &["MULTI"], "+OK\r\n");
    rt(&mut a, &["INCR", "x"], "+QUEUED\r\n");
    rt(&mut a, &["GET", "x"], "+QUEUED\r\n");
    rt(
        &mut a,
        &["EXEC"],
        &("*2\r\n:2\r\n$1\r\n2\r\n".to_string() + &push(&["x"])),
    );
    // FLUSHALL: a null for every tracking client.
    let _: () = q(&mut w, &["FLUSHALL"]);
    expect(&mut a, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    expect(&mut b, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(info_field(&mut w, "tracking_clients"), 2);
    assert_eq!(info_field(&mut w, "tracking_total_keys"), 0);
}

#[test]
fn resp2_clients_redirect_to_a_subscribed_connection() {
    let s = Server::start(&["--io-threads", "2"]);
    let (mut red, id) = redirect_target(&s);
    let mut t = s.client();
    let mut w = s.client();
    let id_s = id.to_string();
    let _: () = q(&mut t, &["CLIENT", "TRACKING", "on", "REDIRECT", &id_s]);
    assert_eq!(q::<i64>(&mut t, &["CLIENT", "GETREDIR"]), id);
    let _: () = q(&mut w, &["MSET", "a", "1", "b", "1"]);
    let _: Vec<String> = q(&mut t, &["MGET", "a", "b"]);
    assert_eq!(info_field(&mut w, "tracking_total_keys"), 2);
    assert_eq!(info_field(&mut w, "tracking_total_items"), 2);
    let _: i64 = q(&mut w, &["INCR", "a"]);
    expect(&mut red, &message(&["a"]));
    // Expiry invalidates too (lazily here: the GET finds it expired).
    let _: () = q(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: bool = q(&mut w, &["PEXPIRE", "b", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    let _: Option<String> = q(&mut w, &["GET", "b"]);
    expect(&mut red, &message(&["b"]));
    let _: () = q(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    // FLUSHDB: a null payload.
    let _: Option<String> = q(&mut t, &["GET", "c"]);
    let _: () = q(&mut w, &["FLUSHDB"]);
    expect(
        &mut red,
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n",
    );
    // Redirecting to a missing client is refused.
    assert_eq!(
        qerr(&mut t, &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"]),
        "ERR The client ID you want redirect to does not exist"
    );
}

#[test]
fn bcast_prefixes_noloop_and_expiry() {
    let s = Server::start(&["--io-threads", "2"]);
    let (mut red, id) = redirect_target(&s);
    let id_s = id.to_string();
    let mut t = s.client();
    let mut w = s.client();
    let _: () = q(
        &mut t,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", &id_s, "PREFIX", "a:", "PREFIX", "b:",
        ],
    );
    // One message per prefix for a whole transaction; other keys ignored.
    let _: () = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("a:1")
        .ignore()
        .cmd("INCR")
        .arg("a:2")
        .ignore()
        .cmd("INCR")
        .arg("b:1")
        .ignore()
        .cmd("INCR")
        .arg("c:1")
        .ignore()
        .query(&mut t)
        .unwrap();
    expect(&mut red, &message(&["a:1", "a:2"]));
    expect(&mut red, &message(&["b:1"]));
    assert_eq!(info_field(&mut w, "tracking_total_prefixes"), 2);
    assert_eq!(
        qerr(&mut t, &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:x"]),
        "ERR Prefix 'a:x' overlaps with an existing prefix 'a:'. Prefixes for a single client must not overlap."
    );
    let mut fresh = s.client();
    assert_eq!(
        qerr(
            &mut fresh,
            &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOOBAR", "PREFIX", "FOO"]
        ),
        "ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'. Prefixes for a single client must not overlap."
    );
    assert_eq!(
        qerr(&mut t, &["CLIENT", "TRACKING", "on"]),
        "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
    );
    // NOLOOP with the empty prefix: other clients' writes and expiry only.
    let _: () = q(&mut t, &["CLIENT", "TRACKING", "off"]);
    assert_eq!(info_field(&mut w, "tracking_total_prefixes"), 0);
    let _: () = q(
        &mut t,
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "REDIRECT", &id_s, "NOLOOP",
        ],
    );
    let _: () = q(&mut t, &["SET", "mine", "1"]);
    let _: () = q(&mut w, &["SET", "theirs", "1"]);
    expect(&mut red, &message(&["theirs"]));
    let _: () = q(&mut t, &["SET", "soon", "1", "PX", "1"]);
    expect(&mut red, &message(&["soon"]));
}

#[test]
fn optin_optout_and_trackinginfo() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut a = resp3(&s);
    let mut w = s.client();
    rt(
        &mut a,
        &["CLIENT", "CACHING", "yes"],
        "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n",
    );
    rt(&mut a, &["CLIENT", "TRACKING", "on", "OPTIN"], "+OK\r\n");
    rt(
        &mut a,
        &["CLIENT", "CACHING", "no"],
        "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n",
    );
    rt(&mut a, &["GET", "k1"], "_\r\n");
    rt(&mut a, &["CLIENT", "CACHING", "yes"], "+OK\r\n");
    rt(
        &mut a,
        &["CLIENT", "TRACKINGINFO"],
        "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n",
    );
    rt(&mut a, &["GET", "k2"], "_\r\n");
    // k1 was read without CACHING yes: only k2 is tracked.
    let _: () = q(&mut w, &["MSET", "k1", "1", "k2", "1"]);
    expect(&mut a, &push(&["k2"]));
    rt(
        &mut a,
        &["CLIENT", "TRACKING", "on", "OPTOUT"],
        "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n",
    );
    rt(&mut a, &["CLIENT", "TRACKING", "off"], "+OK\r\n");
    rt(&mut a, &["CLIENT", "GETREDIR"], ":-1\r\n");
    rt(&mut a, &["CLIENT", "TRACKING", "on", "OPTOUT"], "+OK\r\n");
    rt(&mut a, &["CLIENT", "CACHING", "no"], "+OK\r\n");
    rt(&mut a, &["GET", "k1"], "$1\r\n1\r\n");
    rt(&mut a, &["GET", "k2"], "$1\r\n1\r\n");
    let _: () = q(&mut w, &["MSET", "k1", "2", "k2", "2"]);
    expect(&mut a, &push(&["k2"]));
    rt(&mut a, &["CLIENT", "TRACKING", "off"], "+OK\r\n");
    rt(
        &mut a,
        &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
        "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n",
    );
    rt(
        &mut a,
        &["CLIENT", "TRACKING", "on", "PREFIX", "x"],
        "-ERR PREFIX option requires BCAST mode to be enabled\r\n",
    );
    rt(
        &mut a,
        &["CLIENT", "TRACKING", "maybe"],
        "-ERR syntax error\r\n",
    );
}

#[test]
fn broken_redirect_is_reported_to_resp3_clients() {
    let s = Server::start(&["--io-threads", "2"]);
    let (mut red, id) = redirect_target(&s);
    let id_s = id.to_string();
    let mut a = resp3(&s);
    let mut w = s.client();
    rt(
        &mut a,
        &["CLIENT", "TRACKING", "on", "REDIRECT", &id_s],
        "+OK\r\n",
    );
    rt(&mut a, &["GET", "k"], "_\r\n");
    rt(&mut red, &["QUIT"], "+OK\r\n");
    // Wait until the server has closed the target.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = q(&mut w, &["CLIENT", "LIST"]);
        if !list.contains(&format!("id={id} ")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let _: () = q(&mut w, &["SET", "k", "1"]);
    expect(
        &mut a,
        &format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n"),
    );
    let info = format!(
        "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n:{id}\r\n$8\r\nprefixes\r\n*0\r\n"
    );
    rt(&mut a, &["CLIENT", "TRACKINGINFO"], &info);
}

#[test]
fn table_limit_evicts_keys_with_invalidations() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut a = resp3(&s);
    let mut w = s.client();
    rt(&mut a, &["CLIENT", "TRACKING", "on"], "+OK\r\n");
    rt(&mut a, &["MGET", "k1", "k2", "k3"], "*3\r\n_\r\n_\r\n_\r\n");
    assert_eq!(info_field(&mut w, "tracking_total_keys"), 3);
    let _: () = q(&mut w, &["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    // The next command (or the timer) trims the table to one key; the
    // two evicted keys are announced as invalidations.
    let mut got = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while info_field(&mut w, "tracking_total_keys") != 1 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..2 {
        got += &String::from_utf8_lossy(&a.read_exact_n(push(&["k1"]).len()));
    }
    assert_eq!(got.matches("invalidate").count(), 2, "{got}");
}
