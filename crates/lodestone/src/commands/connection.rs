//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO and CLIENT.

use super::{err, Ctx, Handler, Registry};
use crate::server::client::ReplyMode;
use crate::server::WorkerMsg;
use resp::Proto;
use std::sync::atomic::Ordering;
use strutil::parse_i64;

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("ping", ping as Handler),
        ("echo", echo),
        ("quit", quit),
        ("reset", reset),
        ("auth", auth),
        ("hello", hello),
        ("client|id", client_id),
        ("client|setname", client_setname),
        ("client|getname", client_getname),
        ("client|list", client_list),
        ("client|info", client_info),
        ("client|kill", client_kill),
        ("client|setinfo", client_setinfo),
        ("client|reply", client_reply),
        ("client|pause", client_pause),
        ("client|unpause", client_unpause),
        ("client|no-evict", client_no_evict),
        ("client|no-touch", client_no_touch),
        ("client|unblock", client_unblock),
        ("client|help", client_help),
    ]);
}

fn ping(ctx: &mut Ctx, argv: &[&[u8]]) {
    if ctx.client.proto == resp::Proto::Resp2 && ctx.client.subs.is_subscribed() && argv.len() <= 2
    {
        // Subscribed RESP2 clients get PING as a message-shaped array.
        let mut r = ctx.r();
        r.array(2);
        r.bulk(b"pong");
        r.bulk(argv.get(1).copied().unwrap_or(b""));
        return;
    }
    match argv.len() {
        1 => ctx.r().simple("PONG"),
        2 => ctx.r().bulk(argv[1]),
        _ => ctx.error("ERR wrong number of arguments for 'ping' command"),
    }
}

fn echo(ctx: &mut Ctx, argv: &[&[u8]]) {
    ctx.r().bulk(argv[1]);
}

fn quit(ctx: &mut Ctx, _argv: &[&[u8]]) {
    ctx.ok();
    ctx.client.close_after_reply = true;
}

fn reset(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::pubsub::unsubscribe_all(ctx.srv, ctx.client);
    super::tracking::disable(ctx.srv, ctx.client);
    let c = &mut *ctx.client;
    c.multi = None;
    c.multi_error = false;
    c.watched.clear();
    c.handle.multi.store(-1, Ordering::Relaxed);
    c.set_db(0);
    c.proto = Proto::Resp2;
    c.handle.resp.store(2, Ordering::Relaxed);
    c.reply_mode = ReplyMode::On;
    c.handle.name.lock().clear();
    c.handle.no_evict.store(false, Ordering::Relaxed);
    c.handle.no_touch.store(false, Ordering::Relaxed);
    crate::acl::set_default_auth(ctx.srv, ctx.client);
    ctx.r().simple("RESET");
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len() > 3 {
        return ctx.error(err::SYNTAX);
    }
    let (user, pass) = if argv.len() == 3 {
        (argv[1], argv[2])
    } else {
        if ctx.srv.acl.default_user().perms().flags & crate::acl::NOPASS != 0 {
            return ctx.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        (&b"default"[..], argv[1])
    };
    if crate::acl::authenticate(ctx, argv[0], user, pass) {
        ctx.ok();
    } else {
        ctx.error(WRONGPASS);
    }
}

fn hello(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut proto = ctx.client.proto;
    let mut i = 1;
    if argv.len() >= 2 {
        match parse_i64(argv[1]) {
            Some(2) => proto = Proto::Resp2,
            Some(3) => proto = Proto::Resp3,
            Some(_) => return ctx.error("NOPROTO unsupported protocol version"),
            None => return ctx.error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut setname: Option<&[u8]> = None;
    let mut creds: Option<(&[u8], &[u8])> = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if argv[i].eq_ignore_ascii_case(b"auth") && more >= 2 {
            creds = Some((argv[i + 1], argv[i + 2]));
            i += 3;
        } else if argv[i].eq_ignore_ascii_case(b"setname") && more >= 1 {
            if !valid_name(argv[i + 1]) {
                return ctx.error(BAD_NAME);
            }
            setname = Some(argv[i + 1]);
            i += 2;
        } else {
            return ctx.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                super::sanitize_for_error(argv[i], 128)
            ));
        }
    }
    // The last AUTH wins, and a failed one applies nothing (Redis 7.2).
    if let Some((user, pass)) = creds {
        if !crate::acl::authenticate(ctx, argv[0], user, pass) {
            return ctx.error(WRONGPASS);
        }
    }
    if !ctx.client.authenticated && !ctx.srv.acl.default_open() {
        return ctx.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(name) = setname {
        if !valid_name(name) {
            return ctx.error(BAD_NAME);
        }
        *ctx.client.handle.name.lock() = String::from_utf8_lossy(name).into_owned();
    }
    ctx.client.proto = proto;
    ctx.client
        .handle
        .resp
        .store(if proto == Proto::Resp3 { 3 } else { 2 }, Ordering::Relaxed);
    let id = ctx.client.id();
    let mut r = ctx.r();
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(crate::REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(if proto == Proto::Resp3 { 3 } else { 2 });
    r.bulk(b"id");
    r.int(id as i64);
    r.bulk(b"mode");
    r.bulk(b"standalone");
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

/// Names and library info may only use printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn client_id(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let id = ctx.client.id();
    ctx.r().int(id as i64);
}

fn client_setname(ctx: &mut Ctx, argv: &[&[u8]]) {
    if !valid_name(argv[2]) {
        return ctx.error(BAD_NAME);
    }
    *ctx.client.handle.name.lock() = String::from_utf8_lossy(argv[2]).into_owned();
    ctx.ok();
}

fn client_getname(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let name = ctx.client.handle.name.lock().clone();
    if name.is_empty() {
        ctx.r().null()
    } else {
        ctx.r().bulk(name.as_bytes())
    }
}

fn client_list(ctx: &mut Ctx, argv: &[&[u8]]) {
    let now = ctx.now_ms;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"type") && i + 1 < argv.len() {
            let t = argv[i + 1].to_ascii_lowercase();
            match t.as_slice() {
                b"normal" => {}
                b"master" | b"replica" | b"slave" | b"pubsub" => ids = Some(Vec::new()),
                _ => {
                    return ctx.error(&format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(argv[i + 1])
                    ))
                }
            }
            i += 2;
        } else if argv[i].eq_ignore_ascii_case(b"id") && i + 1 < argv.len() {
            let mut v = Vec::new();
            for a in &argv[i + 1..] {
                match parse_i64(a) {
                    Some(n) if n > 0 => v.push(n as u64),
                    _ => return ctx.error("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
            i = argv.len();
        } else {
            return ctx.error(err::SYNTAX);
        }
    }
    let mut text = String::new();
    for (id, h) in ctx.srv.clients.lock().iter() {
        if ids.as_ref().is_some_and(|v| !v.contains(id)) {
            continue;
        }
        // Killed by another thread, closing (Redis frees it at once).
        if h.killed.load(Ordering::Relaxed) && *id != ctx.client.id() {
            continue;
        }
        text.push_str(&h.info_line(now, &ctx.srv.commands));
        text.push('\n');
    }
    ctx.r().verbatim(text.as_bytes(), "txt");
}

fn client_info(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let mut text = ctx.client.handle.info_line(ctx.now_ms, &ctx.srv.commands);
    text.push('\n');
    ctx.r().verbatim(text.as_bytes(), "txt");
}

fn client_kill(ctx: &mut Ctx, argv: &[&[u8]]) {
    let me = ctx.client.id();
    // Old form: CLIENT KILL addr:port.
    if argv.len() == 3 {
        let addr = String::from_utf8_lossy(argv[2]).into_owned();
        let target = ctx
            .srv
            .clients
            .lock()
            .values()
            .find(|h| h.addr == addr)
            .cloned();
        return match target {
            Some(h) => {
                kill(ctx, &h, me);
                ctx.ok()
            }
            None => ctx.error("ERR No such client"),
        };
    }
    let mut id: Option<u64> = None;
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut skipme = true;
    let mut maxage: Option<u64> = None;
    let mut type_filter: Option<String> = None;
    let mut user: Option<String> = None;
    let mut i = 2;
    while i < argv.len() {
        if i + 1 >= argv.len() {
            return ctx.error(err::SYNTAX);
        }
        let v = argv[i + 1];
        match argv[i].to_ascii_lowercase().as_slice() {
            b"id" => match parse_i64(v) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return ctx.error("ERR client-id should be greater than 0"),
            },
            b"addr" => addr = Some(String::from_utf8_lossy(v).into_owned()),
            b"laddr" => laddr = Some(String::from_utf8_lossy(v).into_owned()),
            b"skipme" => {
                if v.eq_ignore_ascii_case(b"yes") {
                    skipme = true
                } else if v.eq_ignore_ascii_case(b"no") {
                    skipme = false
                } else {
                    return ctx.error(err::SYNTAX);
                }
            }
            b"maxage" => match parse_i64(v) {
                Some(n) if n >= 0 => maxage = Some(n as u64),
                _ => return ctx.error(err::SYNTAX),
            },
            b"type" => {
                let t = String::from_utf8_lossy(v).to_ascii_lowercase();
                if !matches!(
                    t.as_str(),
                    "normal" | "master" | "replica" | "slave" | "pubsub"
                ) {
                    return ctx.error(&format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(v)
                    ));
                }
                type_filter = Some(t);
            }
            b"user" => user = Some(String::from_utf8_lossy(v).into_owned()),
            _ => return ctx.error(err::SYNTAX),
        }
        i += 2;
    }
    if let Some(u) = user.as_ref() {
        if ctx.srv.acl.user(u.as_bytes()).is_none() {
            return ctx.error(&format!("ERR No such user '{u}'"));
        }
    }
    let now = ctx.now_ms;
    let replicas = ctx.srv.repl.replica_ids();
    let of_type = |h: &crate::server::client::ClientHandle, t: &str| match t {
        "normal" => !replicas.contains(&h.id),
        "replica" | "slave" => replicas.contains(&h.id),
        _ => false,
    };
    let targets: Vec<_> = ctx
        .srv
        .clients
        .lock()
        .values()
        .filter(|h| id.is_none_or(|x| h.id == x))
        .filter(|h| addr.as_ref().is_none_or(|a| &h.addr == a))
        .filter(|h| laddr.as_ref().is_none_or(|a| &h.laddr == a))
        .filter(|h| type_filter.as_ref().is_none_or(|t| of_type(h, t)))
        .filter(|h| user.as_ref().is_none_or(|u| **h.user.lock() == **u))
        .filter(|h| maxage.is_none_or(|m| now.saturating_sub(h.created_ms) / 1000 >= m))
        .filter(|h| !(skipme && h.id == me))
        .cloned()
        .collect();
    for h in &targets {
        kill(ctx, h, me);
    }
    ctx.r().int(targets.len() as i64);
}

fn kill(ctx: &mut Ctx, h: &crate::server::client::ClientHandle, me: u64) {
    if h.id == me {
        ctx.client.close_after_reply = true;
        return;
    }
    h.killed.store(true, Ordering::Relaxed);
    ctx.srv.send_to_worker(h.worker, WorkerMsg::Kill(h.id));
}

fn client_setinfo(ctx: &mut Ctx, argv: &[&[u8]]) {
    let which = argv[2].to_ascii_lowercase();
    let v = argv[3];
    if !valid_name(v) && !v.is_empty() {
        return ctx.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(argv[2])
        ));
    }
    let s = String::from_utf8_lossy(v).into_owned();
    match which.as_slice() {
        b"lib-name" => *ctx.client.handle.lib_name.lock() = s,
        b"lib-ver" => *ctx.client.handle.lib_ver.lock() = s,
        _ => {
            return ctx.error(&format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(argv[2])
            ));
        }
    }
    ctx.ok();
}

fn client_reply(ctx: &mut Ctx, argv: &[&[u8]]) {
    match argv[2].to_ascii_lowercase().as_slice() {
        b"on" => {
            ctx.client.reply_mode = ReplyMode::On;
            ctx.ok();
        }
        // The dispatcher drops this command's own reply when the mode is not On.
        b"off" => ctx.client.reply_mode = ReplyMode::Off,
        b"skip" => {
            if ctx.client.reply_mode == ReplyMode::On {
                ctx.client.reply_mode = ReplyMode::SkipNext;
            }
        }
        _ => ctx.error(err::SYNTAX),
    }
}

fn client_pause(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(ms) = parse_i64(argv[2]).filter(|n| *n >= 0) else {
        return ctx.error("ERR timeout is not an integer or out of range");
    };
    let write_only = match argv.get(3).map(|a| a.to_ascii_lowercase()) {
        None => false,
        Some(a) if a == b"write" => true,
        Some(a) if a == b"all" => false,
        Some(_) => return ctx.error(err::SYNTAX),
    };
    let until = ctx.now_ms.saturating_add(ms as u64);
    let mut p = ctx.srv.pause.lock();
    // A new pause can extend but not shorten, and ALL wins over WRITE.
    if p.until_ms <= ctx.now_ms {
        p.until_ms = until;
        p.write_only = write_only;
    } else {
        p.until_ms = p.until_ms.max(until);
        p.write_only = p.write_only && write_only;
    }
    ctx.srv.store_pause(&p);
    drop(p);
    ctx.ok();
}

fn client_unpause(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let mut p = ctx.srv.pause.lock();
    // FAILOVER's pause is not the client's to lift.
    *p = crate::server::Pause {
        failover: p.failover,
        ..Default::default()
    };
    ctx.srv.store_pause(&p);
    drop(p);
    ctx.srv.broadcast(|| WorkerMsg::Unpause);
    ctx.ok();
}

fn on_off(ctx: &mut Ctx, arg: &[u8], flag: &std::sync::atomic::AtomicBool) {
    if arg.eq_ignore_ascii_case(b"on") {
        flag.store(true, Ordering::Relaxed);
        ctx.ok()
    } else if arg.eq_ignore_ascii_case(b"off") {
        flag.store(false, Ordering::Relaxed);
        ctx.ok()
    } else {
        ctx.error(err::SYNTAX)
    }
}

fn client_no_evict(ctx: &mut Ctx, argv: &[&[u8]]) {
    let h = ctx.client.handle.clone();
    on_off(ctx, argv[2], &h.no_evict)
}

fn client_no_touch(ctx: &mut Ctx, argv: &[&[u8]]) {
    let h = ctx.client.handle.clone();
    on_off(ctx, argv[2], &h.no_touch)
}

fn client_unblock(ctx: &mut Ctx, argv: &[&[u8]]) {
    let Some(id) = parse_i64(argv[2]) else {
        return ctx.error(err::NOT_INT);
    };
    let error = match argv.get(3) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"timeout") => false,
        Some(a) if a.eq_ignore_ascii_case(b"error") => true,
        Some(_) => return ctx.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    let target = ctx.srv.clients.lock().get(&(id as u64)).cloned();
    match target {
        Some(h) if super::blocking::unblock_from(ctx.srv, &h, error) => {
            ctx.srv.send_to_worker(
                h.worker,
                WorkerMsg::Unblock {
                    client: h.id,
                    error,
                },
            );
            ctx.r().int(1)
        }
        _ => ctx.r().int(0),
    }
}

fn client_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
            "LIST [options ...]",
            "    Return information about client connections. Options: TYPE, ID.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
}
