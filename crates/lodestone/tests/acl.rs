//! ACL over TCP: user rules and their descriptions, AUTH/HELLO/RESET,
//! enforcement of commands, keys and channels (also in MULTI/EXEC and
//! scripts), the ACL log, connections closed when users go, the ACL file
//! and `user` lines in the config.

mod common;

use common::{q, qerr, Server, TempDir};
use redis::Value;
use std::time::{Duration, Instant};

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// A RESP2 map reply (flat key/value array) as pairs.
fn field(v: &Value, name: &str) -> Value {
    let Value::Array(items) = v else {
        panic!("not an array: {v:?}")
    };
    for kv in items.chunks(2) {
        if text(&kv[0]) == name {
            return kv[1].clone();
        }
    }
    panic!("no field {name} in {v:?}")
}

fn list_line(c: &mut redis::Connection, user: &str) -> String {
    let lines: Vec<String> = q(c, &["ACL", "LIST"]);
    lines
        .into_iter()
        .find(|l| l.starts_with(&format!("user {user} ")))
        .unwrap_or_else(|| panic!("no user {user}"))
}

#[test]
fn rules_are_described_like_redis() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["ACL", "WHOAMI"]), "default");
    assert_eq!(
        list_line(&mut c, "default"),
        "user default on nopass sanitize-payload ~* &* +@all"
    );
    let _: () = q(&mut c, &["ACL", "SETUSER", "newuser"]);
    assert_eq!(
        list_line(&mut c, "newuser"),
        "user newuser off sanitize-payload resetchannels -@all"
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ACL", "USERS"]),
        vec!["default", "newuser"]
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["+@all", "-@hash", "-@slow", "+hget"],
            "+@all -@hash -@slow +hget",
        ),
        (&["-@hash"], "+@all -@slow +hget -@hash"),
        (&["+@hash"], "+@all -@slow +hget +@hash"),
        (&["-@all"], "-@all"),
        (&["-@all", "+HGET", "+hget"], "-@all +hget"),
        (
            &[
                "-@all",
                "+client|list",
                "+config|get",
                "+config",
                "+acl|list",
                "-acl",
            ],
            "-@all +client|list +config -acl",
        ),
        (
            &["-@all", "+select|0", "+debug|segfault", "+debug"],
            "-@all +select|0 +debug",
        ),
    ];
    for (rules, want) in cases {
        let mut args = vec!["ACL", "SETUSER", "adv"];
        args.extend_from_slice(rules);
        let _: () = q(&mut c, &args);
        let u: Value = q(&mut c, &["ACL", "GETUSER", "adv"]);
        assert_eq!(text(&field(&u, "commands")), *want, "after {rules:?}");
    }
    let _: () = q(
        &mut c,
        &[
            "ACL",
            "SETUSER",
            "k",
            "on",
            "nopass",
            "~a*",
            "%R~r*",
            "%W~w*",
            "resetchannels",
            "&ch",
            "(+get ~x)",
        ],
    );
    assert_eq!(
        list_line(&mut c, "k"),
        "user k on nopass sanitize-payload ~a* %R~r* %W~w* resetchannels &ch -@all (~x resetchannels -@all +get)"
    );
    let u: Value = q(&mut c, &["ACL", "GETUSER", "k"]);
    assert_eq!(text(&field(&u, "keys")), "~a* %R~r* %W~w*");
    assert_eq!(text(&field(&u, "channels")), "&ch");
    let Value::Array(sels) = field(&u, "selectors") else {
        panic!()
    };
    assert_eq!(text(&field(&sels[0], "commands")), "-@all +get");
    // Errors name the rule; nothing is applied.
    let e = qerr(&mut c, &["ACL", "SETUSER", "k", "+get", "+nosuch"]);
    assert_eq!(
        e,
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    assert!(qerr(&mut c, &["ACL", "SETUSER", "k", "+config|get|x"])
        .contains("Allowing first-arg of a subcommand is not supported"));
    assert!(qerr(&mut c, &["ACL", "SETUSER", "k", "#abc"]).contains("exactly 64 characters"));
    assert!(qerr(&mut c, &["ACL", "SETUSER", "k", "(+get", "~x"]).contains("Unmatched parenthesis"));
    assert!(qerr(&mut c, &["ACL", "SETUSER", "a a"]).contains("Usernames can't contain spaces"));
    assert_eq!(
        qerr(&mut c, &["ACL", "DELUSER", "default"]),
        "ERR The 'default' user cannot be removed"
    );
    // Rules (passwords) never reach the slow log.
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let _: () = q(&mut c, &["ACL", "SETUSER", "k", ">secret"]);
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "slowlog-log-slower-than", "10000"],
    );
    let log: Value = q(&mut c, &["SLOWLOG", "GET", "2"]);
    let shown = format!("{log:?}");
    assert!(
        shown.contains("redacted") && !shown.contains("secret"),
        "{shown}"
    );
    assert_eq!(
        q::<i64>(&mut c, &["ACL", "DELUSER", "k", "adv", "nobody"]),
        2
    );
    assert_eq!(q::<Value>(&mut c, &["ACL", "GETUSER", "k"]), Value::Nil);
    // CAT, GENPASS.
    let cats: Vec<String> = q(&mut c, &["ACL", "CAT"]);
    assert_eq!(cats.len(), 21);
    let tx: Vec<String> = q(&mut c, &["ACL", "CAT", "transaction"]);
    assert!(tx.contains(&"multi".to_string()) && !tx.contains(&"get".to_string()));
    let sc: Vec<String> = q(&mut c, &["ACL", "CAT", "scripting"]);
    assert!(sc.contains(&"function|list".to_string()));
    assert_eq!(
        qerr(&mut c, &["ACL", "CAT", "nope"]),
        "ERR Unknown category 'nope'"
    );
    assert_eq!(q::<String>(&mut c, &["ACL", "GENPASS"]).len(), 64);
    assert_eq!(q::<String>(&mut c, &["ACL", "GENPASS", "5"]).len(), 2);
    assert!(qerr(&mut c, &["ACL", "GENPASS", "5000"]).contains("must be the number of bits"));
}

#[test]
fn auth_hello_and_reset() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["ACL", "SETUSER", "u", ">p1", ">p2"]);
    // New users are off.
    let wrong = "WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(qerr(&mut c, &["AUTH", "u", "p1"]), wrong);
    let _: () = q(&mut c, &["ACL", "SETUSER", "u", "on", "+acl", "<p1"]);
    assert_eq!(qerr(&mut c, &["AUTH", "u", "p1"]), wrong);
    assert_eq!(q::<String>(&mut c, &["AUTH", "u", "p2"]), "OK");
    assert_eq!(q::<String>(&mut c, &["ACL", "WHOAMI"]), "u");
    // The hash of a password works as the password.
    let mut d = s.client();
    let _: () = q(
        &mut d,
        &[
            "ACL",
            "SETUSER",
            "h",
            "on",
            "+@all",
            "#34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6",
        ],
    );
    assert_eq!(q::<String>(&mut d, &["AUTH", "h", "passwd4"]), "OK");
    // HELLO: the last AUTH wins; a failed one changes nothing.
    let _: () = q(&mut d, &["AUTH", "default", "x"]);
    let _: () = q(&mut d, &["CLIENT", "SETNAME", "before"]);
    assert_eq!(
        qerr(
            &mut d,
            &["HELLO", "2", "AUTH", "h", "passwd4", "AUTH", "h", "bad", "SETNAME", "after"]
        ),
        wrong
    );
    assert_eq!(q::<String>(&mut d, &["CLIENT", "GETNAME"]), "before");
    let _: Value = q(
        &mut d,
        &["HELLO", "2", "AUTH", "h", "bad", "AUTH", "h", "passwd4"],
    );
    assert_eq!(q::<String>(&mut d, &["ACL", "WHOAMI"]), "h");
    let list: String = q(&mut d, &["CLIENT", "INFO"]);
    assert!(list.contains(" user=h "), "{list}");
    // RESET goes back to the default user.
    let _: Value = q(&mut d, &["RESET"]);
    assert_eq!(q::<String>(&mut d, &["ACL", "WHOAMI"]), "default");
    // AUTH <password> without a default password.
    assert!(qerr(&mut d, &["AUTH", "x"]).contains("without any password configured"));
    // The default user switched off: new connections must AUTH.
    let _: () = q(&mut d, &["ACL", "SETUSER", "default", "off"]);
    let mut raw = s.raw();
    raw.roundtrip(b"PING\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.roundtrip(b"AUTH h passwd4\r\n", b"+OK\r\n");
    raw.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let _: () = q(&mut d, &["ACL", "SETUSER", "default", "on"]);
}

#[test]
fn requirepass_is_the_default_users_password() {
    let s = Server::start(&["--requirepass", "secret"]);
    let mut raw = s.raw();
    raw.roundtrip(b"GET x\r\n", b"-NOAUTH Authentication required.\r\n");
    raw.roundtrip(
        b"AUTH wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    raw.roundtrip(b"AUTH default secret\r\n", b"+OK\r\n");
    let mut c = redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", s.port))
        .unwrap()
        .get_connection()
        .unwrap();
    assert!(list_line(&mut c, "default").starts_with("user default on sanitize-payload #"));
    let _: () = q(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    // With requirepass cleared, new connections need no AUTH.
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    assert_eq!(
        list_line(&mut c, "default"),
        "user default on nopass sanitize-payload ~* &* +@all"
    );
}

#[test]
fn commands_keys_and_channels_are_enforced() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let _: () = q(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">pw",
            "+@all",
            "-flushall",
            "-client|kill",
            "~obj:*",
            "%R~ro:*",
            "%W~wo:*",
            "resetchannels",
            "&news.*",
        ],
    );
    let mut c = s.client();
    let _: () = q(&mut c, &["AUTH", "bob", "pw"]);
    assert_eq!(
        qerr(&mut c, &["FLUSHALL"]),
        "NOPERM User bob has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        qerr(&mut c, &["CLIENT", "KILL", "ID", "999"]),
        "NOPERM User bob has no permissions to run the 'client|kill' command"
    );
    let _: i64 = q(&mut c, &["CLIENT", "ID"]);
    let _: () = q(&mut c, &["SET", "obj:1", "v"]);
    assert_eq!(
        qerr(&mut c, &["SET", "zap", "v"]),
        "NOPERM No permissions to access a key"
    );
    // %R~ reads only, %W~ writes only; SET ... GET needs both.
    let _: () = q(&mut admin, &["SET", "ro:1", "v"]);
    assert_eq!(q::<String>(&mut c, &["GET", "ro:1"]), "v");
    assert!(qerr(&mut c, &["SET", "ro:1", "v"]).starts_with("NOPERM"));
    let _: () = q(&mut c, &["SET", "wo:1", "v"]);
    assert!(qerr(&mut c, &["SET", "wo:1", "v", "GET"]).starts_with("NOPERM"));
    assert!(qerr(&mut c, &["GET", "wo:1"]).starts_with("NOPERM"));
    let _: () = q(&mut c, &["COPY", "ro:1", "wo:2"]);
    assert!(qerr(&mut c, &["COPY", "wo:2", "ro:2"]).starts_with("NOPERM"));
    let _: i64 = q(&mut c, &["LPUSH", "wo:list", "x"]);
    // Channels.
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "news.1", "m"]), 0);
    assert_eq!(
        qerr(&mut c, &["PUBLISH", "sport", "m"]),
        "NOPERM No permissions to access a channel"
    );
    let mut raw = s.raw();
    raw.roundtrip(b"AUTH bob pw\r\n", b"+OK\r\n");
    raw.roundtrip(
        b"SUBSCRIBE sport\r\n",
        b"-NOPERM No permissions to access a channel\r\n",
    );
    // PSUBSCRIBE patterns match ACL patterns literally.
    raw.roundtrip(
        b"PSUBSCRIBE news.1*\r\n",
        b"-NOPERM No permissions to access a channel\r\n",
    );
    raw.roundtrip(
        b"PSUBSCRIBE news.*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n",
    );
    // DRYRUN explains without running.
    assert_eq!(
        q::<String>(&mut admin, &["ACL", "DRYRUN", "bob", "GET", "zap"]),
        "User bob has no permissions to access the 'zap' key"
    );
    assert_eq!(
        q::<String>(&mut admin, &["ACL", "DRYRUN", "bob", "GET", "obj:1"]),
        "OK"
    );
    assert_eq!(
        qerr(&mut admin, &["ACL", "DRYRUN", "nobody", "GET", "x"]),
        "ERR User 'nobody' not found"
    );
    // Selectors: each is checked on its own.
    let _: () = q(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "sel",
            "on",
            "nopass",
            "-@all",
            "resetkeys",
            "(+@write ~w::*)",
            "(+@read ~r::*)",
        ],
    );
    let mut d = s.client();
    let _: () = q(&mut d, &["AUTH", "sel", "x"]);
    let _: () = q(&mut d, &["SET", "w::a", "1"]);
    assert_eq!(q::<Value>(&mut d, &["GET", "r::a"]), Value::Nil);
    assert!(qerr(&mut d, &["GET", "w::a"]).contains("key"));
    assert!(qerr(&mut d, &["PING"]).contains("'ping' command"));
}

#[test]
fn multi_exec_and_scripts_are_checked() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let _: () = q(
        &mut admin,
        &[
            "ACL", "SETUSER", "t", "on", ">pw", "+multi", "+exec", "+incr", "+eval", "+get", "~k*",
            "&*",
        ],
    );
    let mut c = s.client();
    let _: () = q(&mut c, &["AUTH", "t", "pw"]);
    // Queued-time check: the transaction is aborted.
    let _: () = q(&mut c, &["MULTI"]);
    assert!(qerr(&mut c, &["SET", "k", "1"]).starts_with("NOPERM"));
    let e = qerr(&mut c, &["EXEC"]);
    assert!(e.starts_with("EXECABORT"), "{e}");
    // A rule changed between queueing and EXEC.
    let mut raw = s.raw();
    raw.roundtrip(b"AUTH t pw\r\n", b"+OK\r\n");
    raw.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    raw.roundtrip(b"INCR k1\r\n", b"+QUEUED\r\n");
    let _: () = q(&mut admin, &["ACL", "SETUSER", "t", "-incr"]);
    raw.roundtrip(
        b"EXEC\r\n",
        b"*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer executable: no permission to execute the command or subcommand\r\n",
    );
    let log: Value = q(&mut admin, &["ACL", "LOG", "1"]);
    let Value::Array(entries) = log else { panic!() };
    assert_eq!(text(&field(&entries[0], "context")), "multi");
    assert!(text(&field(&entries[0], "client-info")).contains("cmd=exec"));
    // Scripts: redis.call is checked against the caller's user.
    let e = qerr(&mut c, &["EVAL", "return redis.call('set','k2','v')", "0"]);
    assert!(e.contains("ACL failure in script"), "{e}");
    assert!(e.contains("'set' command"), "{e}");
    let log: Value = q(&mut admin, &["ACL", "LOG", "1"]);
    let Value::Array(entries) = log else { panic!() };
    assert_eq!(text(&field(&entries[0], "context")), "lua");
    assert_eq!(text(&field(&entries[0], "object")), "set");
    let ok: Value = q(
        &mut c,
        &["EVAL", "return redis.acl_check_cmd('get','k1')", "0"],
    );
    assert_eq!(ok, Value::Int(1));
    let no: Value = q(
        &mut c,
        &["EVAL", "return redis.acl_check_cmd('get','zz')", "0"],
    );
    assert_eq!(no, Value::Nil);
    let no: Value = q(
        &mut c,
        &["EVAL", "return redis.acl_check_cmd('set','k1','v')", "0"],
    );
    assert_eq!(no, Value::Nil);
    assert!(qerr(
        &mut c,
        &["EVAL", "return redis.acl_check_cmd('nosuch')", "0"]
    )
    .contains("Invalid command passed to redis.acl_check_cmd()"));
}

#[test]
fn acl_log_records_denials() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let _: () = q(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "ant",
            "on",
            ">foo",
            "+set",
            "~obj:*",
            "resetchannels",
            "+publish",
        ],
    );
    let mut c = s.client();
    let _: () = q(&mut c, &["AUTH", "ant", "foo"]);
    for _ in 0..3 {
        let _ = qerr(&mut c, &["GET", "x"]);
    }
    let _ = qerr(&mut c, &["SET", "secret", "1"]);
    let _ = qerr(&mut c, &["PUBLISH", "chan", "m"]);
    let _ = qerr(&mut admin, &["AUTH", "ant", "wrong"]);
    let log: Value = q(&mut admin, &["ACL", "LOG"]);
    let Value::Array(entries) = log else { panic!() };
    assert_eq!(entries.len(), 4);
    let want = [
        ("auth", "AUTH", "ant", 1),
        ("channel", "chan", "ant", 1),
        ("key", "secret", "ant", 1),
        ("command", "get", "ant", 3),
    ];
    for (e, (reason, object, user, count)) in entries.iter().zip(want) {
        assert_eq!(text(&field(e, "reason")), reason);
        assert_eq!(text(&field(e, "object")), object);
        assert_eq!(text(&field(e, "username")), user);
        assert_eq!(text(&field(e, "count")), count.to_string());
        assert_eq!(text(&field(e, "context")), "toplevel");
        for f in [
            "age-seconds",
            "client-info",
            "entry-id",
            "timestamp-created",
            "timestamp-last-updated",
        ] {
            let _ = field(e, f);
        }
    }
    assert!(text(&field(&entries[3], "client-info")).contains("cmd=get"));
    assert_eq!(text(&field(&entries[3], "entry-id")), "0");
    assert_eq!(text(&field(&entries[0], "entry-id")), "3");
    let info: String = q(&mut admin, &["INFO", "stats"]);
    for l in [
        "acl_access_denied_auth:1",
        "acl_access_denied_cmd:3",
        "acl_access_denied_key:1",
        "acl_access_denied_channel:1",
    ] {
        assert!(info.contains(l), "{l} in {info}");
    }
    assert_eq!(q::<Vec<Value>>(&mut admin, &["ACL", "LOG", "2"]).len(), 2);
    let _: () = q(&mut admin, &["CONFIG", "SET", "acllog-max-len", "2"]);
    let _ = qerr(&mut c, &["SET", "other", "1"]);
    assert_eq!(q::<Vec<Value>>(&mut admin, &["ACL", "LOG"]).len(), 2);
    let _: () = q(&mut admin, &["ACL", "LOG", "RESET"]);
    assert!(q::<Vec<Value>>(&mut admin, &["ACL", "LOG"]).is_empty());
}

fn wait_gone(admin: &mut redis::Connection, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = q(admin, &["CLIENT", "LIST"]);
        if !list.contains(&format!("name={name} ")) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} still connected: {list}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn removed_users_and_revoked_channels_close_connections() {
    let s = Server::start(&["--io-threads", "2"]);
    let mut admin = s.client();
    let _: () = q(
        &mut admin,
        &["ACL", "SETUSER", "gone", "on", ">pw", "+@all", "~*", "&*"],
    );
    let mut victim = s.raw();
    victim.roundtrip(b"AUTH gone pw\r\n", b"+OK\r\n");
    victim.roundtrip(b"CLIENT SETNAME victim\r\n", b"+OK\r\n");
    let list: String = q(&mut admin, &["CLIENT", "LIST"]);
    assert!(
        list.contains("name=victim ") && list.contains(" user=gone "),
        "{list}"
    );
    assert_eq!(q::<i64>(&mut admin, &["ACL", "DELUSER", "gone"]), 1);
    wait_gone(&mut admin, "victim");
    assert!(victim.read_to_close().is_empty());
    // Deleting one's own user: the reply arrives, then the connection closes.
    let _: () = q(&mut admin, &["ACL", "SETUSER", "self", "on", ">pw", "+acl"]);
    let mut me = s.raw();
    me.roundtrip(b"AUTH self pw\r\n", b"+OK\r\n");
    me.roundtrip(b"ACL DELUSER self\r\n", b":1\r\n");
    assert!(me.read_to_close().is_empty());
    // Subscribers losing their channel are closed; others are kept.
    let _: () = q(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "ps",
            "on",
            ">pw",
            "+@all",
            "resetchannels",
            "&foo",
            "&bar:*",
        ],
    );
    let mut sub = s.raw();
    sub.roundtrip(b"AUTH ps pw\r\n", b"+OK\r\n");
    sub.roundtrip(b"CLIENT SETNAME sub\r\n", b"+OK\r\n");
    sub.roundtrip(
        b"SUBSCRIBE foo\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nfoo\r\n:1\r\n",
    );
    let _: () = q(&mut admin, &["ACL", "SETUSER", "ps", "&more"]);
    let list: String = q(&mut admin, &["CLIENT", "LIST"]);
    assert!(list.contains("name=sub "), "pardoned: {list}");
    let _: () = q(
        &mut admin,
        &["ACL", "SETUSER", "ps", "resetchannels", "&bar:*"],
    );
    wait_gone(&mut admin, "sub");
    // CLIENT KILL USER knows the users.
    assert_eq!(
        qerr(&mut admin, &["CLIENT", "KILL", "USER", "nobody"]),
        "ERR No such user 'nobody'"
    );
    let mut other = s.raw();
    other.roundtrip(b"AUTH ps pw\r\n", b"+OK\r\n");
    // (the subscriber closed above may still be on its way out)
    assert!(q::<i64>(&mut admin, &["CLIENT", "KILL", "USER", "ps"]) >= 1);
    assert!(other.read_to_close().is_empty());
}

#[test]
fn aclfile_load_and_save() {
    let dir = TempDir::new("acl");
    let file = dir.path.join("users.acl");
    std::fs::write(
        &file,
        "user alice on allcommands allkeys &* >alice\nuser bob on -@all +@set +acl ~set* &* >bob\n",
    )
    .unwrap();
    let s = Server::start(&["--aclfile", file.to_str().unwrap()]);
    let mut c = s.client();
    // No default in the file: the default user keeps every right.
    assert_eq!(
        list_line(&mut c, "default"),
        "user default on nopass sanitize-payload ~* &* +@all"
    );
    let _: () = q(&mut c, &["AUTH", "bob", "bob"]);
    assert_eq!(q::<i64>(&mut c, &["SADD", "set1", "a"]), 1);
    assert!(qerr(&mut c, &["SET", "set2", "v"]).starts_with("NOPERM"));
    let _: () = q(&mut c, &["AUTH", "alice", "alice"]);
    let _: () = q(
        &mut c,
        &["ACL", "SETUSER", "eve", "+get", "allkeys", ">eve", "on"],
    );
    let _: () = q(&mut c, &["ACL", "SAVE"]);
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user eve on sanitize-payload #"), "{saved}");
    assert!(saved.lines().count() == 4, "{saved}");
    // LOAD replaces the users and closes their connections (this one too,
    // after the reply).
    let mut raw = s.raw();
    raw.roundtrip(b"AUTH alice alice\r\n", b"+OK\r\n");
    raw.roundtrip(b"ACL LOAD\r\n", b"+OK\r\n");
    assert!(raw.read_to_close().is_empty());
    let mut c = s.client();
    let _: () = q(&mut c, &["AUTH", "eve", "eve"]);
    assert!(qerr(&mut c, &["SET", "k", "v"]).contains("'set' command"));
    // A broken file changes nothing.
    std::fs::write(&file, "user alice on\nuser alice off\nnot a user line\n").unwrap();
    let mut d = s.client();
    let e = qerr(&mut d, &["ACL", "LOAD"]);
    assert!(e.contains("Duplicate user 'alice' found"), "{e}");
    assert!(e.contains("should start with user keyword"), "{e}");
    assert!(q::<Vec<String>>(&mut d, &["ACL", "USERS"]).contains(&"eve".to_string()));
    // Without an aclfile LOAD/SAVE refuse.
    let plain = Server::start(&[]);
    let mut p = plain.client();
    assert!(qerr(&mut p, &["ACL", "LOAD"]).contains("not configured to use an ACL file"));
}

#[test]
fn user_lines_in_the_config() {
    let s = Server::start(&[
        "--user", "default", "on", "nopass", "~*", "+@all", "-flushdb", "--user", "worker", "on",
        ">pw", "~jobs:*", "+@list", "(+get", "~cfg:*)",
    ]);
    let mut c = s.client();
    assert!(qerr(&mut c, &["FLUSHDB"]).contains("'flushdb' command"));
    // `user default` without &* has no channels (acl-pubsub-default).
    assert!(qerr(&mut c, &["PUBLISH", "x", "y"]).contains("channel"));
    let _: () = q(&mut c, &["AUTH", "worker", "pw"]);
    let _: i64 = q(&mut c, &["LPUSH", "jobs:1", "a"]);
    assert_eq!(q::<Value>(&mut c, &["GET", "cfg:x"]), Value::Nil);
    assert!(qerr(&mut c, &["GET", "jobs:1"]).starts_with("NOPERM"));
    // Duplicate users refuse to start (before listening).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lodestone"))
        .args([
            "--port",
            &common::free_port().to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args(["--user", "foo", "--user", "foo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| !s.success()),
        "a duplicate user must stop startup"
    );
    let out = child.wait_with_output().unwrap();
    let msg =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains("Duplicate user"), "{msg}");
}

#[test]
fn config_rewrite_keeps_users() {
    let dir = TempDir::new("aclrewrite");
    let conf = dir.path.join("lodestone.conf");
    let port = common::free_port();
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\ndir {}\nuser default on nopass ~* +@all -flushdb\n",
            dir.str()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lodestone"))
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut c = loop {
        if let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .and_then(|c| c.get_connection())
        {
            break c;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(qerr(&mut c, &["FLUSHDB"]).contains("'flushdb' command"));
    let _: () = q(
        &mut c,
        &["ACL", "SETUSER", "extra", "on", ">pw", "+get", "~k"],
    );
    let _: () = q(&mut c, &["CONFIG", "REWRITE"]);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(
        text.contains("user default on nopass sanitize-payload ~* resetchannels +@all -flushdb"),
        "{text}"
    );
    assert!(text.contains("user extra on sanitize-payload #"), "{text}");
    assert_eq!(text.matches("user default").count(), 1, "{text}");
}
