//! Replica side: the link to our master (REPLICAOF host port).
//!
//! One thread per link generation: connect, handshake (PING, AUTH with
//! `masterauth`, REPLCONF listening-port and capa, PSYNC with our replid
//! and offset), then either load the RDB the master sends (FULLRESYNC) or
//! keep our data (CONTINUE), and apply the stream through
//! `commands::dispatch` as the master client. Our offset counts every
//! byte of the stream applied; REPLCONF ACK goes back every second and
//! on REPLCONF GETACK. A dropped link is retried after a second, with
//! PSYNC, so a short outage costs only the missing bytes.

use crate::commands::propagate::encode_argv;
use crate::server::client::{Client, ClientHandle};
use crate::server::{now_ms, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Client id of the master client (not listed among connections).
const MASTER_CLIENT_ID: u64 = u64::MAX - 2;

/// REPLICAOF host port: starts (or restarts) the link; the old
/// generation's thread sees the new generation and exits.
pub fn replicate_from(srv: &Arc<Server>, host: &str, port: u16) {
    let r = &srv.repl;
    let gen = r.generation.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut l = r.link.lock();
        l.host = host.to_string();
        l.port = port;
        l.state = "connect";
        l.last_io_ms = 0;
        l.sync_in_progress = false;
        l.down_since_ms = now_ms();
    }
    r.is_replica.store(true, Ordering::SeqCst);
    crate::keyspace::shard::REPLICA_NO_EXPIRE.store(true, Ordering::SeqCst);
    let srv = srv.clone();
    let _ = std::thread::Builder::new()
        .name("repl-link".into())
        .spawn(move || {
            crate::server::memory::register_thread();
            run(srv, gen)
        });
}

/// REPLICAOF NO ONE (and PSYNC FAILOVER): we become a master; the data
/// stays, the history continues under a new replid (the master's kept as
/// replid2, up to our offset). Our replicas are disconnected to learn the
/// new id; they resync partially, as in Redis.
pub fn stop(srv: &Server) {
    let r = &srv.repl;
    r.generation.fetch_add(1, Ordering::SeqCst);
    if !r.is_replica() {
        return;
    }
    // The stream's sink first: no write accepted as a master escapes it.
    r.ensure_backlog(srv);
    if r.is_replica.swap(false, Ordering::SeqCst) {
        crate::keyspace::shard::REPLICA_NO_EXPIRE.store(false, Ordering::SeqCst);
        r.master.lock().shift_replid();
        let mut l = r.link.lock();
        l.state = "connect";
        l.host.clear();
        drop(l);
        disconnect_replicas(srv);
    }
}

/// A replica keeps a backlog of its master's stream, as Redis does, so
/// that once promoted (REPLICAOF NO ONE, FAILOVER) the old master and
/// the other replicas can continue partially.
/// Call with the master lock held; the caller then calls
/// `Repl::ensure_backlog` once the lock is dropped, which installs the
/// stream's sink if needed.
fn keep_backlog(srv: &Server, m: &mut super::Master) {
    if m.backlog.is_none() {
        m.backlog = Some(Default::default());
        m.backlog_size = srv.config.get_num("repl-backlog-size").max(16 * 1024) as usize;
        m.cur_db = None;
    }
    srv.repl.mark_backlog();
}

fn disconnect_replicas(srv: &Server) {
    let ids: Vec<(u64, usize)> = srv
        .repl
        .master
        .lock()
        .replicas
        .iter()
        .map(|r| (r.client, r.worker))
        .collect();
    for (id, w) in ids {
        srv.send_to_worker(w, crate::server::WorkerMsg::Kill(id));
    }
}

fn current(srv: &Server, gen: u64) -> bool {
    srv.repl.generation.load(Ordering::SeqCst) == gen
}

fn set_state(srv: &Server, state: &'static str) {
    let mut l = srv.repl.link.lock();
    if l.state == "connected" && state != "connected" {
        l.down_since_ms = now_ms();
    }
    l.state = state;
    l.sync_in_progress = state == "sync";
}

fn run(srv: Arc<Server>, gen: u64) {
    while current(&srv, gen) {
        let (host, port) = {
            let l = srv.repl.link.lock();
            (l.host.clone(), l.port)
        };
        set_state(&srv, "connecting");
        match session(&srv, gen, &host, port) {
            Ok(()) => {}
            Err(e) => {
                if current(&srv, gen) {
                    crate::persist::log(&format!("MASTER <-> REPLICA sync: {e}"));
                }
            }
        }
        if !current(&srv, gen) {
            return;
        }
        set_state(&srv, "connect");
        std::thread::sleep(Duration::from_millis(500));
    }
}

type Res<T> = Result<T, String>;

/// Sends one command and reads its one-line reply.
fn command(rd: &mut BufReader<TcpStream>, argv: &[&[u8]]) -> Res<String> {
    let mut b = Vec::new();
    encode_argv(&mut b, argv);
    rd.get_mut().write_all(&b).map_err(|e| e.to_string())?;
    read_line(rd)
}

/// Reads one line, skipping the empty keepalive newlines a master sends
/// while it prepares the payload.
fn read_line(rd: &mut BufReader<TcpStream>) -> Res<String> {
    loop {
        let mut line = Vec::new();
        let n = rd.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed by master".into());
        }
        let s = String::from_utf8_lossy(&line).trim_end().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
}

/// One connection to the master, from handshake to the link's end.
fn session(srv: &Arc<Server>, gen: u64, host: &str, port: u16) -> Res<()> {
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("resolving {host}: {e}"))?
        .next()
        .ok_or("no address")?;
    let timeout = Duration::from_secs(srv.config.get_num("repl-timeout").max(1) as u64);
    let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut rd = BufReader::with_capacity(64 * 1024, stream);
    let pong = command(&mut rd, &[b"PING"])?;
    if pong.starts_with('-') && !pong.contains("NOAUTH") && !pong.contains("NOPERM") {
        return Err(format!("error reply to PING from master: {pong}"));
    }
    let pass = srv.config.get_str("masterauth");
    if !pass.is_empty() {
        let user = srv.config.get_str("masteruser");
        let r = if user.is_empty() {
            command(&mut rd, &[b"AUTH", pass.as_bytes()])?
        } else {
            command(&mut rd, &[b"AUTH", user.as_bytes(), pass.as_bytes()])?
        };
        if r.starts_with('-') {
            return Err(format!("unable to AUTH to MASTER: {r}"));
        }
    }
    let myport = srv.config.get_num("replica-announce-port");
    let myport = if myport > 0 {
        myport
    } else {
        srv.tcp_port.load(Ordering::Relaxed) as i64
    };
    command(
        &mut rd,
        &[
            b"REPLCONF",
            b"listening-port",
            myport.to_string().as_bytes(),
        ],
    )?;
    command(&mut rd, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"])?;
    let (replid, offset) = {
        let m = srv.repl.master.lock();
        (m.replid.clone(), m.offset.max(srv.repl.offset()))
    };
    let next = (offset + 1).to_string();
    let mut psync: Vec<&[u8]> = vec![b"PSYNC", replid.as_bytes(), next.as_bytes()];
    // A master failing over asks its target to take over (FAILOVER).
    let failover = super::failover::in_progress(srv);
    if failover {
        psync.push(b"FAILOVER");
    }
    let mut b = Vec::new();
    encode_argv(&mut b, &psync);
    if let Err(e) = rd.get_mut().write_all(&b) {
        if failover && current(srv, gen) {
            super::failover::abort(srv, "Write error to failover target");
        }
        return Err(e.to_string());
    }
    let reply = read_line(&mut rd);
    if !current(srv, gen) {
        return Ok(());
    }
    if failover {
        let ok =
            matches!(&reply, Ok(r) if r.starts_with("+FULLRESYNC") || r.starts_with("+CONTINUE"));
        super::failover::psync_answered(srv, ok);
        if !ok {
            return Err(format!(
                "failover target rejected PSYNC: {}",
                reply.unwrap_or_else(|e| e)
            ));
        }
    }
    let reply = reply?;
    if let Some(rest) = reply.strip_prefix("+FULLRESYNC ") {
        let mut w = rest.split_whitespace();
        let id = w.next().unwrap_or_default().to_string();
        let off: u64 = w.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        set_state(srv, "sync");
        let payload = receive_payload(srv, &mut rd)?;
        if !current(srv, gen) {
            payload.discard();
            return Ok(());
        }
        let start = Instant::now();
        // Our replicas' history ends here: they resync through us.
        disconnect_replicas(srv);
        let st = match payload {
            Payload::File(tmp) => {
                // As Redis: the payload becomes our dbfilename, then loads.
                let path = srv.config.get_str("dbfilename");
                if let Err(e) = std::fs::rename(&tmp, &path) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(format!(
                        "Failed trying to rename the temp DB into {path} in MASTER <-> REPLICA synchronization: {e}"
                    ));
                }
                crate::persist::replace_dataset_from_file(srv, &path)?
            }
            Payload::Memory(data) => crate::persist::replace_dataset(srv, &data)?,
        };
        crate::persist::log(&format!(
            "MASTER <-> REPLICA sync: loaded {} keys in {:.3} s",
            st.keys,
            start.elapsed().as_secs_f64()
        ));
        let mut m = srv.repl.master.lock();
        m.replid = id;
        m.replid2 = "0".repeat(40);
        m.second_offset = -1;
        m.set_offset(srv, off);
        // Our own backlog restarts at the master's offset.
        m.backlog = None;
        keep_backlog(srv, &mut m);
        drop(m);
        srv.repl.ensure_backlog(srv);
        // The master SELECTs before its first command after the point.
        srv.repl.link.lock().stream_db = 0;
        // Our AOF must hold the new dataset: a new base (Redis's
        // restartAOFAfterSYNC), until which FACK reports 0.
        crate::aof::restart_after_sync(srv);
    } else if let Some(rest) = reply.strip_prefix("+CONTINUE") {
        let id = rest.trim();
        let mut m = srv.repl.master.lock();
        keep_backlog(srv, &mut m);
        if !id.is_empty() && id != m.replid {
            m.replid2 = std::mem::replace(&mut m.replid, id.to_string());
            m.second_offset = m.offset as i64 + 1;
            drop(m);
            // Our replicas must learn the new id (they continue through
            // replid2), as Redis does after a failover.
            disconnect_replicas(srv);
        } else {
            drop(m);
        }
        srv.repl.ensure_backlog(srv);
        crate::persist::log(
            "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.",
        );
    } else {
        return Err(format!("unexpected reply to PSYNC: {reply}"));
    }
    set_state(srv, "connected");
    srv.repl.link.lock().last_io_ms = now_ms();
    stream_loop(srv, gen, rd)
}

/// A full sync's RDB payload once received.
enum Payload {
    /// `repl-diskless-load disabled` (the default): a temp file in `dir`,
    /// written as it arrives and fsynced, so the replica never holds the
    /// payload and its dataset in memory at once.
    File(String),
    /// The diskless-load modes: the payload in memory.
    Memory(Vec<u8>),
}

impl Payload {
    fn discard(self) {
        if let Payload::File(tmp) = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Receives the payload where `repl-diskless-load` says (see [`Payload`]).
fn receive_payload(srv: &Server, rd: &mut BufReader<TcpStream>) -> Res<Payload> {
    if srv.config.get_str("repl-diskless-load") != "disabled" {
        let mut data = Vec::new();
        read_payload(rd, &mut data)?;
        return Ok(Payload::Memory(data));
    }
    // Redis's name for it: temp-<unix time>.<pid>.rdb.
    let tmp = format!("temp-{}.{}.rdb", now_ms() / 1000, std::process::id());
    let file = std::fs::File::create(&tmp).map_err(|e| {
        format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}")
    })?;
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    let written = read_payload(rd, &mut out).and_then(|_| {
        let file = out.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())
    });
    match written {
        Ok(()) => Ok(Payload::File(tmp)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Copies the RDB payload to `out`: the `$<len>` or the `$EOF:<mark>`
/// form, in 64 KB reads (the last 40 bytes of the EOF form are held back
/// until it is clear they are not the mark).
fn read_payload(rd: &mut BufReader<TcpStream>, out: &mut dyn Write) -> Res<()> {
    let head = read_line(rd)?;
    if head.starts_with('-') {
        return Err(format!("master aborted the sync: {head}"));
    }
    let Some(spec) = head.strip_prefix('$') else {
        return Err(format!("bad payload header from master: {head}"));
    };
    let io = |e: std::io::Error| e.to_string();
    let mut buf = vec![0u8; 64 * 1024];
    if let Some(mark) = spec.strip_prefix("EOF:") {
        let mark = mark.as_bytes();
        if mark.len() != 40 {
            return Err("bad EOF mark from master".into());
        }
        let mut tail: Vec<u8> = Vec::with_capacity(buf.len() + 40);
        loop {
            let n = rd.read(&mut buf).map_err(io)?;
            if n == 0 {
                return Err("connection lost during the sync".into());
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.ends_with(mark) {
                return out.write_all(&tail[..tail.len() - 40]).map_err(io);
            }
            if tail.len() > 40 {
                let keep = tail.len() - 40;
                out.write_all(&tail[..keep]).map_err(io)?;
                tail.drain(..keep);
            }
        }
    }
    let len: u64 = spec
        .parse()
        .map_err(|_| format!("bad payload length from master: {head}"))?;
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = rd.read(&mut buf[..want]).map_err(io)?;
        if n == 0 {
            return Err("connection lost during the sync".into());
        }
        out.write_all(&buf[..n]).map_err(io)?;
        left -= n as u64;
    }
    Ok(())
}

/// REPLCONF ACK <offset>, with FACK <aofoffset> (the offset our AOF has
/// fsynced, Redis 7.2's form) when the AOF is on. Returns the FACK sent.
fn send_ack(srv: &Server, stream: &mut TcpStream) -> Res<i64> {
    let offset = srv.repl.master.lock().offset.to_string();
    let fack = srv.aof.fsynced_reploff();
    let f = fack.to_string();
    let mut argv: Vec<&[u8]> = vec![b"REPLCONF", b"ACK", offset.as_bytes()];
    if fack != -1 {
        argv.extend([&b"FACK"[..], f.as_bytes()]);
    }
    let mut b = Vec::new();
    encode_argv(&mut b, &argv);
    stream.write_all(&b).map_err(|e| e.to_string())?;
    Ok(fack)
}

/// Applies the master's stream until the link drops or REPLICAOF changes.
fn stream_loop(srv: &Arc<Server>, gen: u64, rd: BufReader<TcpStream>) -> Res<()> {
    let pending = rd.buffer().to_vec();
    let mut stream = rd.into_inner();
    let timeout = srv.config.get_num("repl-timeout").max(1) as u64 * 1000;
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let handle = Arc::new(ClientHandle::new(
        MASTER_CLIENT_ID,
        String::new(),
        String::new(),
        -1,
        0,
        now_ms(),
    ));
    handle.is_master.store(true, Ordering::SeqCst);
    let mut client = Client::new(handle, true);
    client.db = srv.repl.link.lock().stream_db;
    let mut out = Vec::new();
    let mut inbuf = pending;
    let mut parser = resp::Parser::new();
    let mut last_ack = Instant::now() - Duration::from_secs(2);
    let mut last_fack = -1;
    let mut chunk = vec![0u8; 64 * 1024];
    set_apply(true);
    let res = loop {
        if !current(srv, gen) {
            break Ok(());
        }
        // Apply every complete command.
        let mut pos = 0;
        let limits = resp::Limits {
            max_bulk_len: i64::MAX,
            authenticated: true,
        };
        let mut err = None;
        while pos < inbuf.len() {
            match parser.parse(&inbuf[pos..], &limits) {
                Ok(None) => break,
                Ok(Some(req)) => {
                    let base: &[u8] = match req.source {
                        resp::ArgSource::Input => &inbuf[pos..],
                        resp::ArgSource::Scratch => &parser.scratch,
                    };
                    let argv: Vec<&[u8]> = parser.args.iter().map(|r| &base[r.clone()]).collect();
                    let raw = &inbuf[pos..pos + req.consumed];
                    let db_before = client.db;
                    let getack = argv.len() >= 2
                        && argv[0].eq_ignore_ascii_case(b"replconf")
                        && argv[1].eq_ignore_ascii_case(b"getack");
                    // Offset and effects move together for a snapshot.
                    let applying = srv.repl.apply.lock();
                    {
                        // Promoted meanwhile (checked under the lock that
                        // `stop` shifts the history under): what we have
                        // not counted is not ours to apply.
                        let _m = srv.repl.master.lock();
                        if !current(srv, gen) {
                            break;
                        }
                    }
                    if !getack && !argv.is_empty() {
                        let mut ctx = crate::commands::Ctx::new(srv, &mut client, &mut out);
                        ctx.no_monitor = false;
                        crate::commands::dispatch(&mut ctx, &argv);
                        drop(ctx);
                        out.clear();
                        if client.db != db_before {
                            srv.repl.link.lock().stream_db = client.db;
                        }
                    }
                    {
                        // Our offset moves with every byte, after the
                        // command's effects reached our AOF's buffer (so
                        // an fsynced offset never covers what is not in
                        // it); sub-replicas get the same bytes (same
                        // offsets as the master).
                        let mut m = srv.repl.master.lock();
                        if m.backlog.is_some() {
                            m.feed(srv, raw);
                        } else {
                            let off = m.offset + raw.len() as u64;
                            m.set_offset(srv, off);
                        }
                    }
                    drop(applying);
                    if getack {
                        // Our AOF first, so the FACK is as fresh as can be.
                        srv.aof.before_reply(srv);
                        match send_ack(srv, &mut stream) {
                            Ok(f) => last_fack = f,
                            Err(e) => {
                                err = Some(e);
                                pos += req.consumed;
                                break;
                            }
                        }
                    }
                    pos += req.consumed;
                }
                Err(e) => {
                    err = Some(format!("protocol error from master: {}", e.message()));
                    break;
                }
            }
        }
        inbuf.drain(..pos);
        if let Some(e) = err {
            break Err(e);
        }
        // What we applied reaches our AOF now (and the disk with
        // appendfsync always), as a worker does before its replies; an
        // fsync that moved our FACK is acknowledged at once (WAITAOF on
        // the master waits for it), else once a second.
        srv.aof.before_reply(srv);
        let fack = srv.aof.fsynced_reploff();
        if last_ack.elapsed() >= Duration::from_secs(1) || fack != last_fack {
            last_ack = Instant::now();
            match send_ack(srv, &mut stream) {
                Ok(f) => last_fack = f,
                Err(e) => break Err(e),
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break Err("connection closed by master".into()),
            Ok(n) => {
                inbuf.extend_from_slice(&chunk[..n]);
                srv.repl.link.lock().last_io_ms = now_ms();
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                let last = srv.repl.link.lock().last_io_ms;
                if now_ms().saturating_sub(last) > timeout {
                    break Err("MASTER timeout: no data nor PING received".into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e.to_string()),
        }
    };
    set_apply(false);
    res
}

/// Marks this thread as the master link's: its effects are not
/// re-encoded into our backlog (the raw stream is proxied), and expired
/// keys stay visible to the master's commands (the master decides when
/// they go).
fn set_apply(on: bool) {
    super::APPLYING_MASTER.with(|a| a.set(on));
    crate::keyspace::shard::OBEY_MASTER.with(|a| a.set(on));
}
