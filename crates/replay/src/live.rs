//! Live mode: replay a workload against a Redis-protocol server as a
//! cache-aside client (GET; on a miss, SET with the key's value size),
//! pipelined over one connection, with a small RESP2 client of its own.
//!
//! Per-key order: requests are cut into batches of at most `pipeline` with no
//! key twice in a batch; the SETs for a batch's misses are written ahead of
//! the next batch's GETs on the same connection, so a key's SET always
//! reaches the server before any later GET of it.

use crate::workload::{Generator, Request};
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+...`
    Simple(String),
    /// `-...`
    Error(String),
    /// `:n`
    Int(i64),
    /// `$...` (None for the null bulk)
    Bulk(Option<Vec<u8>>),
    /// `*...` (None for the null array)
    Array(Option<Vec<Reply>>),
}

/// A blocking RESP2 connection with an output buffer for pipelining.
pub struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    out: Vec<u8>,
    line: Vec<u8>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Conn {
    /// Connects to `addr` (host:port) with TCP_NODELAY.
    pub fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            writer: stream.try_clone()?,
            reader: BufReader::with_capacity(1 << 16, stream),
            out: Vec::new(),
            line: Vec::new(),
        })
    }

    /// Queues one command (a multibulk request) without sending it.
    pub fn queue(&mut self, args: &[&[u8]]) {
        self.out.push(b'*');
        self.out
            .extend_from_slice(args.len().to_string().as_bytes());
        self.out.extend_from_slice(b"\r\n");
        for a in args {
            self.out.push(b'$');
            self.out.extend_from_slice(a.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        self.reader.read_until(b'\n', &mut self.line)?;
        if !self.line.ends_with(b"\r\n") {
            return Err(bad("connection closed or reply line not terminated"));
        }
        self.line.truncate(self.line.len() - 2);
        Ok(())
    }

    fn line_int(&self) -> io::Result<i64> {
        std::str::from_utf8(&self.line[1..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad length in reply"))
    }

    /// Reads one full reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_line()?;
        let text = || String::from_utf8_lossy(&self.line[1..]).into_owned();
        match self.line.first() {
            Some(b'+') => Ok(Reply::Simple(text())),
            Some(b'-') => Ok(Reply::Error(text())),
            Some(b':') => Ok(Reply::Int(self.line_int()?)),
            Some(b'$') => {
                let n = self.line_int()?;
                if n < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0; n as usize + 2];
                self.reader.read_exact(&mut buf)?;
                buf.truncate(n as usize);
                Ok(Reply::Bulk(Some(buf)))
            }
            Some(b'*') => {
                let n = self.line_int()?;
                if n < 0 {
                    return Ok(Reply::Array(None));
                }
                let items = (0..n)
                    .map(|_| self.read_reply())
                    .collect::<io::Result<Vec<_>>>()?;
                Ok(Reply::Array(Some(items)))
            }
            _ => Err(bad(format!(
                "unexpected reply line {:?}",
                String::from_utf8_lossy(&self.line)
            ))),
        }
    }

    /// Reads a GET reply without keeping the value: Some(length) on a hit,
    /// None for nil; an error reply becomes an `Err`.
    fn read_get(&mut self) -> io::Result<Option<usize>> {
        self.read_line()?;
        match self.line.first() {
            Some(b'$') => {
                let n = self.line_int()?;
                if n < 0 {
                    return Ok(None);
                }
                let mut left = n as usize + 2;
                while left > 0 {
                    let buf = self.reader.fill_buf()?;
                    if buf.is_empty() {
                        return Err(bad("connection closed inside a value"));
                    }
                    let k = buf.len().min(left);
                    self.reader.consume(k);
                    left -= k;
                }
                Ok(Some(n as usize))
            }
            Some(b'-') => Err(bad(String::from_utf8_lossy(&self.line[1..]).into_owned())),
            _ => Err(bad(format!(
                "unexpected GET reply {:?}",
                String::from_utf8_lossy(&self.line)
            ))),
        }
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.queue(args);
        self.flush()?;
        self.read_reply()
    }

    /// INFO SECTION as text.
    pub fn info(&mut self, section: &str) -> io::Result<String> {
        match self.call(&[b"INFO", section.as_bytes()])? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => Err(bad(format!("INFO {section} replied {other:?}"))),
        }
    }
}

/// The integer value of `field:` in INFO text.
pub fn info_field(info: &str, field: &str) -> Option<u64> {
    info.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .parse()
            .ok()
    })
}

/// A process's VmHWM (peak resident set) in bytes, from /proc.
pub fn proc_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Settings of a live run.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// host:port of the server.
    pub addr: String,
    /// Requests in flight per batch.
    pub pipeline: usize,
    /// Requests replayed before counting starts.
    pub warmup: u64,
    /// Server process id, for VmHWM; otherwise peak RSS is sampled through INFO.
    pub pid: Option<u32>,
    /// How often INFO memory is sampled.
    pub rss_every: Duration,
    /// FLUSHALL before starting.
    pub flush: bool,
}

/// Totals of a live run.
#[derive(Clone, Debug, Default)]
pub struct LiveResult {
    /// Requests sent in all (warm-up included).
    pub sent: u64,
    /// Requests counted (after warm-up).
    pub requests: u64,
    /// Counted GETs that returned a value.
    pub hits: u64,
    /// Value bytes requested (counted requests).
    pub bytes: u64,
    /// Value bytes of the counted hits.
    pub hit_bytes: u64,
    /// Hits whose value length differed from the size the key should have.
    pub size_mismatches: u64,
    /// SETs refused by the server (e.g. OOM under noeviction).
    pub set_errors: u64,
    /// First SET error text seen.
    pub set_error_text: Option<String>,
    /// evicted_keys delta over the run.
    pub evictions: u64,
    /// DBSIZE at the end.
    pub keys_end: u64,
    /// used_memory at the end.
    pub used_memory_end: u64,
    /// Highest used_memory sampled.
    pub used_memory_peak: u64,
    /// Peak RSS: VmHWM with a pid, else the highest used_memory_rss sampled.
    pub peak_rss: u64,
    /// "vmhwm" or "info".
    pub rss_source: &'static str,
    /// Wall time of the replay.
    pub elapsed: Duration,
}

impl LiveResult {
    /// GET throughput over the whole replay (requests per second).
    pub fn throughput(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn sample_memory(conn: &mut Conn, res: &mut LiveResult) -> io::Result<()> {
    let info = conn.info("memory")?;
    res.peak_rss = res
        .peak_rss
        .max(info_field(&info, "used_memory_rss").unwrap_or(0));
    res.used_memory_peak = res
        .used_memory_peak
        .max(info_field(&info, "used_memory").unwrap_or(0));
    res.used_memory_end = info_field(&info, "used_memory").unwrap_or(0);
    Ok(())
}

/// Replays `gen` against the server at `opts.addr`.
pub fn run_live(opts: &LiveOptions, gen: &mut Generator) -> io::Result<LiveResult> {
    let mut conn = Conn::connect(&opts.addr)?;
    if opts.flush {
        conn.call(&[b"FLUSHALL"])?;
    }
    let evicted_before = info_field(&conn.info("stats")?, "evicted_keys").unwrap_or(0);
    let mut res = LiveResult {
        rss_source: if opts.pid.is_some() { "vmhwm" } else { "info" },
        ..Default::default()
    };
    sample_memory(&mut conn, &mut res)?;
    let pipeline = opts.pipeline.max(1);
    let mut batch: Vec<Request> = Vec::with_capacity(pipeline);
    let mut misses: Vec<Request> = Vec::with_capacity(pipeline);
    let mut in_batch: HashSet<u64> = HashSet::with_capacity(pipeline * 2);
    let mut pending: Option<Request> = None;
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::new();
    let start = Instant::now();
    let mut last_sample = start;
    loop {
        batch.clear();
        in_batch.clear();
        while batch.len() < pipeline {
            let Some(r) = pending.take().or_else(|| gen.next()) else {
                break;
            };
            if !in_batch.insert(r.id) {
                pending = Some(r); // a repeat starts the next batch, after this one's SET
                break;
            }
            batch.push(r);
        }
        if batch.is_empty() && misses.is_empty() {
            break;
        }
        for m in &misses {
            key.clear();
            gen.key_name(m.id, &mut key);
            if value.len() < m.size as usize {
                value.resize(m.size as usize, b'v');
            }
            conn.queue(&[b"SET", &key, &value[..m.size as usize]]);
        }
        for r in &batch {
            key.clear();
            gen.key_name(r.id, &mut key);
            conn.queue(&[b"GET", &key]);
        }
        conn.flush()?;
        for _ in 0..misses.len() {
            if let Reply::Error(e) = conn.read_reply()? {
                res.set_errors += 1;
                res.set_error_text.get_or_insert(e);
            }
        }
        misses.clear();
        for r in &batch {
            let counted = res.sent >= opts.warmup;
            res.sent += 1;
            let got = conn.read_get()?;
            if counted {
                res.requests += 1;
                res.bytes += r.size as u64;
            }
            match got {
                Some(len) => {
                    if counted {
                        res.hits += 1;
                        res.hit_bytes += r.size as u64;
                    }
                    if len != r.size as usize {
                        res.size_mismatches += 1;
                    }
                }
                None => misses.push(*r),
            }
        }
        if last_sample.elapsed() >= opts.rss_every {
            sample_memory(&mut conn, &mut res)?;
            last_sample = Instant::now();
        }
    }
    res.elapsed = start.elapsed();
    if let Some(e) = gen.error.take() {
        return Err(bad(e));
    }
    sample_memory(&mut conn, &mut res)?;
    res.evictions = info_field(&conn.info("stats")?, "evicted_keys")
        .unwrap_or(0)
        .saturating_sub(evicted_before);
    res.keys_end = match conn.call(&[b"DBSIZE"])? {
        Reply::Int(n) => n.max(0) as u64,
        other => return Err(bad(format!("DBSIZE replied {other:?}"))),
    };
    if let Some(pid) = opts.pid {
        res.peak_rss = proc_hwm(pid).unwrap_or(res.peak_rss);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_parse() {
        let info = "# Stats\r\nevicted_keys:12\r\nevicted_clients:0\r\nused_memory:99\r\n";
        assert_eq!(info_field(info, "evicted_keys"), Some(12));
        assert_eq!(info_field(info, "used_memory"), Some(99));
        assert_eq!(info_field(info, "evicted"), None);
        assert!(proc_hwm(std::process::id()).unwrap() > 0);
    }
}
