//! Master side of a sync: PSYNC's partial resynchronization from the
//! backlog, and the full sync (an RDB taken at the point where the
//! replica joins the stream).

use super::{Hello, Master, Replica, ReplicaState};
use crate::server::{now_ms, Server, WorkerMsg};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The client asking for a sync.
pub struct Peer<'a> {
    pub client: u64,
    pub worker: usize,
    /// Its connection's address (ip:port).
    pub addr: &'a str,
    pub hello: &'a Hello,
}

/// Tries PSYNC's partial resynchronization: when `replid` is our history
/// and `from` (the next byte the replica wants) is still in the backlog,
/// writes `+CONTINUE` and the missing bytes to `out` and registers the
/// replica online. Returns false when a full sync is needed.
pub fn try_partial(
    srv: &Server,
    m: &mut Master,
    p: &Peer,
    replid: &[u8],
    from: i64,
    out: &mut Vec<u8>,
) -> bool {
    let (client, worker, hello, addr) = (p.client, p.worker, p.hello, p.addr);
    if m.backlog.is_none() || from < 0 {
        return false;
    }
    let from = from as u64;
    let ours = replid == m.replid.as_bytes();
    let old = replid == m.replid2.as_bytes() && from as i64 <= m.second_offset;
    if !(ours || old) || from < m.first_offset() || from > m.offset + 1 {
        return false;
    }
    if hello.capa_psync2 {
        out.extend_from_slice(format!("+CONTINUE {}\r\n", m.replid).as_bytes());
    } else {
        out.extend_from_slice(b"+CONTINUE\r\n");
    }
    out.extend_from_slice(&m.backlog_from(from));
    m.replicas.push(Replica {
        client,
        worker,
        ip: peer_ip(addr, hello),
        port: hello.port,
        state: ReplicaState::Online,
        ack_offset: from.saturating_sub(1),
        ack_ms: now_ms(),
    });
    srv.repl
        .replica_count
        .store(m.replicas.len(), Ordering::Relaxed);
    true
}

/// The replica's address as INFO shows it.
pub fn peer_ip(addr: &str, hello: &Hello) -> String {
    if let Some(ip) = &hello.ip {
        return ip.clone();
    }
    addr.rsplit_once(':')
        .map(|(ip, _)| ip.trim_matches(['[', ']']).to_string())
        .unwrap_or_default()
}

/// How the RDB travels: `$<len>` (buffered) or the EOF-marker form.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Len,
    Eof,
}

/// The writer behind the sync's `RdbSink`: sends the payload to the
/// replica's worker. In the EOF form bytes go out in chunks once the
/// snapshot point is reached (`live`); the `$<len>` form needs the whole
/// payload first. `flush` (called once, by `RdbSink::finish`) sends the rest.
struct ToReplica {
    srv: Arc<Server>,
    client: u64,
    worker: usize,
    form: Form,
    mark: [u8; 40],
    live: Arc<AtomicBool>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ToReplica {
    fn send(&self, b: Vec<u8>) {
        if !b.is_empty() {
            self.srv
                .send_to_worker(self.worker, WorkerMsg::Monitor(self.client, Arc::from(b)));
        }
    }
}

impl Write for ToReplica {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.form == Form::Eof && self.buf.len() >= CHUNK && self.live.load(Ordering::SeqCst) {
            let chunk = std::mem::take(&mut self.buf);
            self.send(chunk);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let body = std::mem::take(&mut self.buf);
        match self.form {
            Form::Len => {
                let mut v = format!("${}\r\n", body.len()).into_bytes();
                v.extend_from_slice(&body);
                self.send(v);
            }
            Form::Eof => {
                let mut v = body;
                v.extend_from_slice(&self.mark);
                self.send(v);
            }
        }
        Ok(())
    }
}

/// Starts a full sync for a client on its own thread. `psync` says
/// whether to answer `+FULLRESYNC` first (SYNC gets the payload alone).
pub fn start_full(srv: &Server, client: u64, worker: usize, addr: &str, hello: Hello, psync: bool) {
    let Some(arc) = srv.arc() else {
        return;
    };
    srv.repl.ensure_backlog(srv);
    srv.repl.sync_full.fetch_add(1, Ordering::Relaxed);
    let ip = peer_ip(addr, &hello);
    let form = if hello.capa_eof && srv.config.get_bool("repl-diskless-sync") {
        Form::Eof
    } else {
        Form::Len
    };
    let _ = std::thread::Builder::new()
        .name("repl-sync".into())
        .spawn(move || {
            crate::server::memory::register_thread();
            full_sync(arc, client, worker, ip, hello.port, form, psync)
        });
}

fn full_sync(
    srv: Arc<Server>,
    client: u64,
    worker: usize,
    ip: String,
    port: u16,
    form: Form,
    psync: bool,
) {
    let mut mark = [0u8; 40];
    mark.copy_from_slice(super::random_id().as_bytes());
    let live = Arc::new(AtomicBool::new(false));
    let writer = ToReplica {
        srv: srv.clone(),
        client,
        worker,
        form,
        mark,
        live: live.clone(),
        buf: Vec::new(),
    };
    let sink = Arc::new(crate::persist::RdbSink::new(&srv, Box::new(writer)));
    let delay = srv.config.get_num("rdb-key-save-delay");
    let s = &*srv;
    crate::persist::snapshot::run_at(
        &s.keyspace,
        sink.clone(),
        delay,
        || {},
        || {
            // Every shard is held: no unit can reach the stream now, so
            // the replica's first stream byte is the first unit after the
            // snapshot point, and FULLRESYNC's offset is exactly there.
            let mut m = s.repl.master.lock();
            m.cur_db = None;
            let mut head = Vec::new();
            if psync {
                head.extend_from_slice(
                    format!("+FULLRESYNC {} {}\r\n", m.replid, m.offset).as_bytes(),
                );
            }
            if form == Form::Eof {
                head.extend_from_slice(b"$EOF:");
                head.extend_from_slice(&mark);
                head.extend_from_slice(b"\r\n");
            }
            if !head.is_empty() {
                s.send_to_worker(worker, WorkerMsg::Monitor(client, Arc::from(head)));
            }
            live.store(true, Ordering::SeqCst);
            let offset = m.offset;
            m.replicas.retain(|r| r.client != client);
            m.replicas.push(Replica {
                client,
                worker,
                ip,
                port,
                state: ReplicaState::WaitRdb(Vec::new()),
                ack_offset: offset,
                ack_ms: now_ms(),
            });
            s.repl
                .replica_count
                .store(m.replicas.len(), Ordering::Relaxed);
        },
    );
    if let Err(e) = sink.finish(srv.config.get_bool("rdbchecksum")) {
        crate::persist::log(&format!("Replica sync failed: {e}"));
    }
    // A replica that went away meanwhile (before it was registered, so
    // `client_closed` did not see it) is dropped here.
    if !srv.clients.lock().contains_key(&client) {
        srv.repl.client_closed(client);
        return;
    }
    // The payload is queued on the worker: the stream follows it.
    let mut m = srv.repl.master.lock();
    m.last_ping_ms = now_ms();
    if let Some(r) = m.replicas.iter_mut().find(|r| r.client == client) {
        if let ReplicaState::WaitRdb(buf) = std::mem::replace(&mut r.state, ReplicaState::Online) {
            if !buf.is_empty() {
                srv.send_to_worker(worker, WorkerMsg::Monitor(client, Arc::from(buf)));
            }
        }
    }
    crate::persist::log(&format!("Synchronization with replica {client} succeeded"));
}
