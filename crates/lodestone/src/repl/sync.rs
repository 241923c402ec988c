//! Master side of a sync: PSYNC's partial resynchronization from the
//! backlog, and the full sync (an RDB taken at the point where the
//! replica joins the stream).

use super::{Hello, Master, Replica, ReplicaState};
use crate::server::{now_ms, Server, WorkerMsg};
use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
        soft_since_ms: None,
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
/// payload first, so it goes to a temp file in `dir` (Redis sends its RDB
/// file from disk in that form). `flush` (called once, by
/// `RdbSink::finish`) sends the rest, or the file, paced.
struct ToReplica {
    srv: Arc<Server>,
    client: u64,
    worker: usize,
    form: Form,
    mark: [u8; 40],
    live: Arc<AtomicBool>,
    buf: Vec<u8>,
    /// The `$<len>` form's payload on disk: (path, file).
    spool: Option<(String, std::io::BufWriter<std::fs::File>)>,
    /// Bytes sent to the worker and not yet in the client's output buffer.
    pending: Arc<AtomicUsize>,
}

const CHUNK: usize = 64 * 1024;

/// How far the snapshot may run ahead of the replica's socket: bytes in
/// flight to its worker plus its output buffer. The walker waits between
/// shards above this, so a full sync holds a few MB, not the dataset.
const PACE_BYTES: usize = 4 << 20;

impl ToReplica {
    fn send(&self, b: Vec<u8>) {
        if !b.is_empty() {
            self.pending.fetch_add(b.len(), Ordering::SeqCst);
            self.srv.send_to_worker(
                self.worker,
                WorkerMsg::SyncBytes(self.client, Arc::from(b), self.pending.clone()),
            );
        }
    }
}

/// Blocks the snapshot walker while more than [`PACE_BYTES`] wait for the
/// replica's socket; returns at once when the replica is gone.
fn pace(srv: &Server, client: u64, pending: &AtomicUsize) {
    let Some(h) = srv.clients.lock().get(&client).cloned() else {
        return;
    };
    // Half the replica output limits when they are lower: the payload
    // passes through the output buffer, which must stay under them.
    let most = srv
        .repl
        .replica_limits()
        .iter()
        .take(2)
        .filter(|&&l| l > 0)
        .fold(PACE_BYTES, |m, &l| m.min(l as usize / 2))
        .max(CHUNK);
    while pending.load(Ordering::SeqCst) + h.omem.load(Ordering::Relaxed) > most {
        if h.killed.load(Ordering::Relaxed)
            || srv.shutdown.load(Ordering::Relaxed)
            || !srv.clients.lock().contains_key(&client)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

impl ToReplica {
    /// Sends the spooled `$<len>` payload: the length, then the file in
    /// chunks, waiting for the replica's socket like the EOF form does.
    fn send_spool(&mut self) -> std::io::Result<()> {
        let Some((path, w)) = self.spool.take() else {
            return Ok(());
        };
        let sent = (|| {
            let mut f = w.into_inner().map_err(|e| e.into_error())?;
            let len = f.stream_position()?;
            f.seek(std::io::SeekFrom::Start(0))?;
            self.send(format!("${len}\r\n").into_bytes());
            loop {
                let mut chunk = vec![0u8; CHUNK];
                let n = f.read(&mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                chunk.truncate(n);
                self.send(chunk);
                pace(&self.srv, self.client, &self.pending);
            }
        })();
        let _ = std::fs::remove_file(&path);
        sent
    }
}

impl Drop for ToReplica {
    fn drop(&mut self) {
        if let Some((path, _)) = self.spool.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Write for ToReplica {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some((_, w)) = self.spool.as_mut() {
            return w.write_all(b).map(|_| b.len());
        }
        self.buf.extend_from_slice(b);
        if self.form == Form::Eof && self.buf.len() >= CHUNK && self.live.load(Ordering::SeqCst) {
            let chunk = std::mem::take(&mut self.buf);
            self.send(chunk);
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.spool.is_some() {
            return self.send_spool();
        }
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
    let pending = Arc::new(AtomicUsize::new(0));
    // The `$<len>` form spools to disk when it can (else to memory).
    let spool = (form == Form::Len)
        .then(|| {
            let path = format!("temp-sync-{}-{client}.rdb", std::process::id());
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .ok()?;
            Some((path, std::io::BufWriter::with_capacity(256 * 1024, f)))
        })
        .flatten();
    let writer = ToReplica {
        srv: srv.clone(),
        client,
        worker,
        form,
        mark,
        live: live.clone(),
        buf: Vec::new(),
        spool,
        pending: pending.clone(),
    };
    let mut sink = crate::persist::RdbSink::new(&srv, Box::new(writer));
    if form == Form::Eof {
        // The `$<len>` form needs the whole payload before its first byte.
        let srv2 = srv.clone();
        sink.pace = Some(Box::new(move || pace(&srv2, client, &pending)));
    }
    let sink = Arc::new(sink);
    let s = &*srv;
    let delay = || s.config.get_num("rdb-key-save-delay");
    // A replica serving its own replica: its stream pauses at the point.
    let apply = std::cell::RefCell::new(None);
    crate::persist::snapshot::run_at(
        &s.keyspace,
        sink.clone(),
        &delay,
        || *apply.borrow_mut() = Some(super::hold_apply(s)),
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
            // The replica's first unit after the point selects its db.
            sink.set_repl_info(Some(super::SaveInfo {
                stream_db: 0,
                replid: m.replid.clone(),
                offset,
            }));
            m.replicas.retain(|r| r.client != client);
            m.replicas.push(Replica {
                client,
                worker,
                ip,
                port,
                state: ReplicaState::WaitRdb(Vec::new()),
                ack_offset: offset,
                ack_ms: now_ms(),
                soft_since_ms: None,
            });
            s.repl
                .replica_count
                .store(m.replicas.len(), Ordering::Relaxed);
            drop(m);
            apply.borrow_mut().take();
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
