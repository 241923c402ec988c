//! COMMAND GETKEYSANDFLAGS / COMMAND INFO key specs compared with a real
//! redis-server, and CONFIG SET port / bind rebinding the listener.

mod common;
use common::*;

/// Commands whose keys come out with different flags per key, or through
/// keyword / keynum searches.
const GETKEYS_CASES: &[&[&str]] = &[
    &["set", "k1", "v1"],
    &["set", "k1", "v1", "get"],
    &["set", "k1", "v1", "nx", "get"],
    &["mset", "k1", "v1", "k2", "v2"],
    &["lmove", "k1", "k2", "left", "right"],
    &["rpoplpush", "a", "b"],
    &["sort", "k1", "store", "k2"],
    &["sort", "k1", "by", "w_*", "get", "o_*"],
    &["sort_ro", "k1"],
    &["del", "a", "b"],
    &["unlink", "a"],
    &["getdel", "a"],
    &["get", "a"],
    &["mget", "a", "b", "c"],
    &["rename", "a", "b"],
    &["copy", "a", "b"],
    &["smove", "a", "b", "m"],
    &["sinterstore", "d", "a", "b"],
    &["zunionstore", "d", "2", "a", "b", "weights", "1", "2"],
    &["zinter", "2", "a", "b"],
    &["zrangestore", "d", "s", "0", "-1"],
    &["bitop", "and", "d", "a", "b"],
    &["bitfield", "k", "get", "u8", "0"],
    &["bitfield", "k", "incrby", "u8", "0", "1"],
    &["bitfield_ro", "k", "get", "u8", "0"],
    &["eval", "return 1", "2", "a", "b", "x"],
    &["fcall", "f", "1", "a"],
    &["lmpop", "2", "a", "b", "left"],
    &["blmpop", "0", "2", "a", "b", "left"],
    &["zmpop", "1", "a", "min"],
    &["xread", "count", "2", "streams", "s1", "s2", "0", "0"],
    &["xreadgroup", "group", "g", "c", "streams", "s1", "0"],
    &["georadius", "g", "0", "0", "1", "km", "store", "d"],
    &[
        "geosearchstore",
        "d",
        "s",
        "frommember",
        "m",
        "byradius",
        "1",
        "km",
    ],
    &["pfmerge", "d", "a", "b"],
    &["append", "k", "v"],
    &["hset", "h", "f", "v"],
    &["lpush", "l", "v"],
    &["incr", "n"],
    &["expire", "k", "10"],
    &["persist", "k"],
    &["object", "encoding", "k"],
    &["memory", "usage", "k"],
    &["touch", "a", "b"],
    &["watch", "a"],
    &["xgroup", "create", "s", "g", "$"],
];

fn getkeysandflags(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd("COMMAND");
    cmd.arg("GETKEYSANDFLAGS");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query::<redis::Value>(c)
        .unwrap_or_else(|e| redis::Value::SimpleString(format!("error: {e}")))
}

#[test]
fn getkeysandflags_matches_redis() {
    let Some(real) = RealRedis::start(&[]) else {
        return;
    };
    let ours = Server::start(&["--save", ""]);
    let (mut a, mut b) = (ours.client(), real.client());
    for case in GETKEYS_CASES {
        assert_eq!(
            getkeysandflags(&mut a, case),
            getkeysandflags(&mut b, case),
            "COMMAND GETKEYSANDFLAGS {case:?}"
        );
    }
}

#[test]
fn getkeysandflags_flags_per_key() {
    let s = Server::start(&["--save", ""]);
    let mut c = s.client();
    let v: Vec<(String, Vec<String>)> = redis::cmd("COMMAND")
        .arg(&["GETKEYSANDFLAGS", "LMOVE", "k1", "k2", "left", "right"])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v,
        vec![
            (
                "k1".into(),
                vec!["RW".into(), "access".into(), "delete".into()]
            ),
            ("k2".into(), vec!["RW".into(), "insert".into()]),
        ]
    );
    let v: Vec<(String, Vec<String>)> = redis::cmd("COMMAND")
        .arg(&["GETKEYSANDFLAGS", "set", "k1", "v1"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![("k1".into(), vec!["OW".into(), "update".into()])]);
}

#[test]
fn command_info_key_specs_match_redis() {
    let Some(real) = RealRedis::start(&[]) else {
        return;
    };
    let ours = Server::start(&["--save", ""]);
    let (mut a, mut b) = (ours.client(), real.client());
    for name in [
        "get",
        "set",
        "lmove",
        "sort",
        "zunionstore",
        "xread",
        "eval",
        "georadius",
        "bitop",
        "object|encoding",
        "xreadgroup",
        "blmpop",
    ] {
        let q = |c: &mut redis::Connection| -> redis::Value {
            let v: Vec<Vec<redis::Value>> = redis::cmd("COMMAND")
                .arg("INFO")
                .arg(name)
                .query(c)
                .unwrap();
            // Field 9 is the key specs.
            v[0][8].clone()
        };
        assert_eq!(q(&mut a), q(&mut b), "COMMAND INFO {name} key specs");
    }
}

fn ping_port(port: u16) -> bool {
    let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
        return false;
    };
    match c.get_connection_with_timeout(std::time::Duration::from_secs(2)) {
        Ok(mut c) => redis::cmd("PING").query::<String>(&mut c).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn config_set_port_moves_the_listener() {
    let s = Server::start(&["--save", ""]);
    let mut c = s.client();
    let new_port = free_port();
    let _: () = q(&mut c, &["CONFIG", "SET", "port", &new_port.to_string()]);
    // The connection that asked stays up; new ones go to the new port.
    let got: Vec<String> = q(&mut c, &["CONFIG", "GET", "port"]);
    assert_eq!(got[1], new_port.to_string());
    assert!(ping_port(new_port));
    assert!(!ping_port(s.port), "the old port still accepts");
    let info: String = q(&mut c, &["INFO", "server"]);
    assert!(info.contains(&format!("tcp_port:{new_port}\r")));
    // And back: the old port was released.
    let _: () = q(&mut c, &["CONFIG", "SET", "port", &s.port.to_string()]);
    assert!(ping_port(s.port));
}

#[test]
fn config_set_port_in_use_fails_and_rolls_back() {
    let s = Server::start(&["--save", ""]);
    let mut c = s.client();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let before: Vec<String> = q(&mut c, &["CONFIG", "GET", "maxmemory"]);
    let e = qerr(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "port",
            &taken_port.to_string(),
        ],
    );
    assert!(
        e.starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
        ),
        "{e}"
    );
    let after: Vec<String> = q(&mut c, &["CONFIG", "GET", "maxmemory"]);
    assert_eq!(before, after);
    let port: Vec<String> = q(&mut c, &["CONFIG", "GET", "port"]);
    assert_eq!(port[1], s.port.to_string());
    assert!(ping_port(s.port));
    let e = qerr(&mut c, &["CONFIG", "SET", "bind", "192.0.2.1"]);
    assert_eq!(
        e,
        "ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."
    );
    assert!(ping_port(s.port));
    // A bind that works moves the listener too.
    let _: () = q(&mut c, &["CONFIG", "SET", "bind", "127.0.0.1 -::1"]);
    assert!(ping_port(s.port));
}
