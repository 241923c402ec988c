//! Replication commands: SYNC, PSYNC, REPLCONF (master side), REPLICAOF /
//! SLAVEOF (replica side), ROLE, WAIT, WAITAOF and FAILOVER. The machinery
//! lives in [`crate::repl`].

use super::{blocking, err, Ctx, Registry};
use crate::repl::{self, ReplicaState};
use std::sync::atomic::Ordering;

/// Metadata rows (same columns as `table::TABLE`).
pub const TABLE: &str = "\
sync|server|1|1.0.0|no_async_loading,admin,no_multi,noscript|-|-|An internal command used in replication.
psync|server|-3|2.8.0|no_async_loading,admin,no_multi,noscript|-|-|An internal command used in replication.
replconf|server|-1|3.0.0|admin,noscript,loading,stale,allow_busy|-|-|An internal command for configuring the replication stream.
replicaof|server|3|5.0.0|no_async_loading,admin,noscript,stale|-|-|Configures a server as replica of another, or promotes it to a master.
slaveof|server|3|1.0.0|no_async_loading,admin,noscript,stale|-|-|Sets a Redis server as a replica of another, or promotes it to being a master.
role|server|1|2.8.12|noscript,loading,stale,fast,sentinel|admin,dangerous|-|Returns the replication role.
wait|generic|3|3.0.0|-|connection|-|Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.
waitaof|generic|4|7.2.0|noscript|connection|-|Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.
failover|server|-1|6.2.0|admin,noscript,stale|-|-|Starts a coordinated failover from a server to one of its replicas.
";

/// Registers the family's rows and handlers.
pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.push(("sync", sync));
    r.handlers.push(("psync", sync));
    r.handlers.push(("replconf", replconf));
    r.handlers.push(("replicaof", replicaof));
    r.handlers.push(("slaveof", replicaof));
    r.handlers.push(("role", role));
    r.handlers.push(("wait", wait));
    r.handlers.push(("waitaof", waitaof));
    r.handlers.push(("failover", failover));
}

/// SYNC and PSYNC replid offset: a partial resync from the backlog when
/// possible, else a full sync (RDB, then the stream).
fn sync(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    if ctx.client.handle.is_master.load(Ordering::Relaxed)
        || ctx.client.handle.is_replica.load(Ordering::Relaxed)
    {
        return;
    }
    // PSYNC replid offset FAILOVER: our master hands its role to us.
    if argv.len() > 3
        && argv[0].eq_ignore_ascii_case(b"psync")
        && argv[3].eq_ignore_ascii_case(b"failover")
    {
        let from = format!("id={} addr={}", ctx.client.id(), ctx.client.handle.addr);
        if let Err(e) = repl::failover::take_over(srv, argv[1], &from) {
            return ctx.error(e);
        }
    }
    // No replica syncs with a master that is handing its role over.
    if repl::failover::active(srv) {
        return ctx.error("NOMASTERLINK Can't SYNC while failing over");
    }
    if srv.repl.is_replica() && srv.repl.link.lock().state != "connected" {
        ctx.error("NOMASTERLINK Can't SYNC while not connected with my master");
        return;
    }
    // From here on the connection is a replica (Redis's CLIENT_SLAVE).
    ctx.client.handle.is_replica.store(true, Ordering::Relaxed);
    let id = ctx.client.id();
    let worker = ctx.client.handle.worker;
    let addr = ctx.client.handle.addr.clone();
    let hello = srv.repl.hellos.lock().remove(&id).unwrap_or_default();
    let psync = argv[0].eq_ignore_ascii_case(b"psync");
    if psync {
        let from = strutil::parse_i64(argv[2]).unwrap_or(-1);
        let mut m = srv.repl.master.lock();
        let peer = repl::sync::Peer {
            client: id,
            worker,
            addr: &addr,
            hello: &hello,
        };
        if repl::sync::try_partial(srv, &mut m, &peer, argv[1], from, ctx.out) {
            srv.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if argv[1] != b"?" {
            srv.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
        }
    }
    repl::sync::start_full(srv, id, worker, &addr, hello, psync);
}

/// REPLCONF option value ...: what a replica tells its master.
fn replconf(ctx: &mut Ctx, argv: &[&[u8]]) {
    if argv.len().is_multiple_of(2) {
        ctx.error(err::SYNTAX);
        return;
    }
    let srv = ctx.srv;
    let id = ctx.client.id();
    let mut hello = srv.repl.hellos.lock().get(&id).cloned().unwrap_or_default();
    for (i, pair) in argv[1..].chunks(2).enumerate() {
        let (opt, val) = (pair[0].to_ascii_lowercase(), pair[1]);
        match opt.as_slice() {
            b"listening-port" => match strutil::parse_i64(val) {
                Some(p) if (0..=65535).contains(&p) => hello.port = p as u16,
                _ => return ctx.error(err::NOT_INT),
            },
            b"ip-address" => hello.ip = Some(String::from_utf8_lossy(val).into_owned()),
            b"capa" => {
                if val.eq_ignore_ascii_case(b"eof") {
                    hello.capa_eof = true;
                } else if val.eq_ignore_ascii_case(b"psync2") {
                    hello.capa_psync2 = true;
                }
            }
            b"ack" => {
                // REPLCONF ACK <offset> [FACK <aofoffset>] (Redis 7.2: the
                // offset its AOF has fsynced). No reply: the replica does
                // not read one.
                let Some(off) = strutil::parse_i64(val) else {
                    return;
                };
                let mut fack = None;
                if let [f, v, ..] = &argv[2 * i + 3..] {
                    if f.eq_ignore_ascii_case(b"fack") {
                        let Some(v) = strutil::parse_i64(v) else {
                            return;
                        };
                        fack = Some(v.max(0) as u64);
                    }
                }
                srv.repl.ack(srv, id, off.max(0) as u64, fack);
                return;
            }
            b"getack" => return, // only a master sends it, to us as replica
            b"rdb-only" | b"rdb-filter-only" => {}
            _ => {
                let msg = format!(
                    "ERR Unrecognized REPLCONF option: {}",
                    String::from_utf8_lossy(pair[0])
                );
                return ctx.error(&msg);
            }
        }
    }
    srv.repl.hellos.lock().insert(id, hello);
    ctx.ok();
}

/// REPLICAOF host port | NO ONE (SLAVEOF is the old name).
fn replicaof(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    if repl::failover::active(srv) {
        return ctx.error("ERR REPLICAOF not allowed while failing over.");
    }
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        if srv.repl.is_replica() {
            repl::link::stop(srv);
            crate::persist::log("MASTER MODE enabled (user request)");
        }
        return ctx.ok();
    }
    let port = match strutil::parse_i64(argv[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return ctx.error(err::NOT_INT),
    };
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    if srv.repl.is_replica() {
        let l = srv.repl.link.lock();
        if l.host.eq_ignore_ascii_case(&host) && l.port == port {
            drop(l);
            return ctx.r().simple("OK Already connected to specified master");
        }
    }
    let Some(arc) = srv.arc() else {
        return ctx.error("ERR the server is not running");
    };
    // Clients waiting for our replicas' acknowledgements never get them
    // now (Redis's disconnectAllBlockedClients).
    srv.repl.drop_waiters(srv);
    blocking::force_unblock_all(srv);
    repl::link::replicate_from(&arc, &host, port);
    crate::persist::log(&format!(
        "REPLICAOF {host}:{port} enabled (user request from '{}')",
        ctx.client.handle.addr
    ));
    ctx.ok();
}

/// ROLE: master with its replicas, or replica with its link state.
fn role(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let srv = ctx.srv;
    let mut r = ctx.r();
    if srv.repl.is_replica() {
        let l = srv.repl.link.lock();
        let off = srv.repl.master.lock().offset;
        r.array(5);
        r.bulk(b"slave");
        r.bulk(l.host.as_bytes());
        r.int(l.port as i64);
        r.bulk(l.state.as_bytes());
        r.int(off as i64);
        return;
    }
    let m = srv.repl.master.lock();
    r.array(3);
    r.bulk(b"master");
    r.int(m.offset.max(srv.repl.offset()) as i64);
    let online: Vec<_> = m
        .replicas
        .iter()
        .filter(|x| matches!(x.state, ReplicaState::Online))
        .collect();
    r.array(online.len());
    for x in online {
        r.array(3);
        r.bulk(x.ip.as_bytes());
        r.bulk(x.port.to_string().as_bytes());
        r.bulk(x.ack_offset.to_string().as_bytes());
    }
}

/// WAIT numreplicas timeout: blocks until that many replicas acknowledged
/// this client's last write, or the timeout (ms, 0 = forever) passes.
fn wait(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    if srv.repl.is_replica() {
        return ctx.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(want) = strutil::parse_i64(argv[1]) else {
        return ctx.error(err::NOT_INT);
    };
    let timeout = match blocking::parse_timeout_ms(argv[2]) {
        Ok(t) => t,
        Err(e) => return ctx.error(e),
    };
    let want = repl::WaitFor {
        target: ctx.client.handle.woff.load(Ordering::Relaxed),
        replicas: want.max(0) as usize,
        local: None,
    };
    wait_for(ctx, argv, want, timeout);
}

/// WAITAOF numlocal numreplicas timeout: blocks until this client's last
/// write is fsynced to the local AOF (numlocal 1) and to the AOF of
/// numreplicas replicas, or the timeout passes; replies [local, replicas].
fn waitaof(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    let local = match strutil::parse_i64(argv[1]) {
        None => return ctx.error(err::NOT_INT),
        Some(n @ 0..=1) => n == 1,
        Some(_) => return ctx.error("ERR value is out of range, value must between 0 and 1"),
    };
    let replicas = match strutil::parse_i64(argv[2]) {
        None => return ctx.error(err::NOT_INT),
        Some(n) if n >= 0 => n as usize,
        Some(_) => return ctx.error("ERR value is out of range, must be positive"),
    };
    let timeout = match blocking::parse_timeout_ms(argv[3]) {
        Ok(t) => t,
        Err(e) => return ctx.error(e),
    };
    if srv.repl.is_replica() {
        return ctx.error("ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.");
    }
    if local && !srv.config.get_bool("appendonly") {
        return ctx.error(repl::WAITAOF_NO_AOF);
    }
    let want = repl::WaitFor {
        target: ctx.client.handle.woff.load(Ordering::Relaxed),
        replicas,
        local: Some(local),
    };
    wait_for(ctx, argv, want, timeout);
}

/// The one blocking path of WAIT and WAITAOF: the answer now, or the
/// client parked (no keys) until an ACK, an fsync or the timeout.
fn wait_for(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    want: repl::WaitFor,
    timeout: Option<std::time::Duration>,
) {
    let srv = ctx.srv;
    let handle = ctx.client.handle.clone();
    let may_block = blocking::can_block(ctx);
    let reply = srv.repl.wait(srv, &handle, want, may_block, || {
        blocking::block(ctx, argv, &[], timeout, blocking::TimeoutReply::Wait)
    });
    match reply {
        None => {}
        Some(repl::WaitReply::Replicas(n)) => ctx.r().int(n as i64),
        Some(repl::WaitReply::Aof(l, n)) => {
            let mut r = ctx.r();
            r.array(2);
            r.int(l as i64);
            r.int(n as i64);
        }
        Some(repl::WaitReply::NoAof) => ctx.error(repl::WAITAOF_NO_AOF),
    }
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: hands the
/// master role to a replica once it has caught up (see
/// [`repl::failover`]); ABORT alone cancels one under way.
fn failover(ctx: &mut Ctx, argv: &[&[u8]]) {
    let srv = ctx.srv;
    if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"abort") {
        if !repl::failover::active(srv) {
            return ctx.error("ERR No failover in progress.");
        }
        repl::failover::abort(srv, "Failover manually aborted");
        return ctx.ok();
    }
    let mut req = repl::failover::Request {
        target: None,
        timeout_ms: 0,
        force: false,
    };
    let mut j = 1;
    while j < argv.len() {
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < argv.len() && req.timeout_ms == 0 {
            let Some(t) = strutil::parse_i64(argv[j + 1]) else {
                return ctx.error(err::NOT_INT);
            };
            if t <= 0 {
                return ctx.error("ERR FAILOVER timeout must be greater than 0");
            }
            req.timeout_ms = t as u64;
            j += 2;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < argv.len() && req.target.is_none() {
            let Some(port) = strutil::parse_i64(argv[j + 2]) else {
                return ctx.error(err::NOT_INT);
            };
            let host = String::from_utf8_lossy(argv[j + 1]).into_owned();
            req.target = Some((host, port));
            j += 3;
        } else if a.eq_ignore_ascii_case(b"force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return ctx.error(err::SYNTAX);
        }
    }
    match repl::failover::start(srv, req) {
        Ok(()) => {
            ctx.ok();
            // A replica may have acknowledged everything already.
            repl::failover::update(srv);
        }
        Err(e) => ctx.error(e),
    }
}

/// Builds a [`Hello`] (tests).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replconf_collects_the_handshake() {
        let cfg = crate::config::Config::new();
        let srv = crate::server::Server::new(cfg, String::new(), None);
        crate::aof::load::with_loading_ctx(&srv, |ctx| {
            let mut run = |words: &[&str]| {
                let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
                ctx.out.clear();
                super::super::dispatch(ctx, &argv);
                String::from_utf8_lossy(ctx.out).into_owned()
            };
            assert_eq!(run(&["REPLCONF", "listening-port", "7001"]), "+OK\r\n");
            assert_eq!(
                run(&["REPLCONF", "capa", "eof", "capa", "psync2"]),
                "+OK\r\n"
            );
            assert_eq!(run(&["REPLCONF", "capa"]), format!("-{}\r\n", err::SYNTAX));
            assert!(run(&["REPLCONF", "nope", "x"])
                .starts_with("-ERR Unrecognized REPLCONF option: nope"));
            assert_eq!(run(&["REPLCONF", "ACK", "10"]), "");
            assert_eq!(run(&["REPLCONF", "ACK", "10", "FACK", "7"]), "");
            assert_eq!(run(&["REPLCONF", "ACK", "10", "FACK", "x"]), "");
            assert_eq!(run(&["WAIT", "0", "0"]), ":0\r\n");
            assert_eq!(run(&["WAITAOF", "0", "0", "0"]), "*2\r\n:0\r\n:0\r\n");
            assert!(run(&["WAITAOF", "1", "0", "0"]).contains("appendonly is disabled"));
            assert_eq!(run(&["ROLE"]), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
        });
        let h: crate::repl::Hello = srv.repl.hellos.lock().values().next().cloned().unwrap();
        assert_eq!(h.port, 7001);
        assert!(h.capa_eof && h.capa_psync2);
    }
}
