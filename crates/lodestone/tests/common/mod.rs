//! Test harness: starts the real `lodestone` binary on a free port and
//! hands out clients. The server is killed when the guard drops.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
    /// The server's working directory (`--dir`), where dump.rdb goes.
    pub dir: PathBuf,
    /// Whether the directory is ours to remove when the server drops.
    own_dir: bool,
}

/// A fresh empty directory for one server's files.
pub fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "lodestone-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server with extra `--name value` arguments, in its own
    /// temporary directory (removed when the server drops), so that the
    /// default `save` points never write into the source tree.
    pub fn start(args: &[&str]) -> Server {
        let mut s = Self::start_in(temp_dir(), args);
        s.own_dir = true;
        s
    }

    /// Starts a server whose `--dir` is `dir` (kept after the server
    /// stops: restart tests start another server in it), and waits until
    /// it has loaded its dataset (until then commands get `-LOADING`).
    pub fn start_in(dir: PathBuf, args: &[&str]) -> Server {
        let mut s = Self::start_in_loading(dir, args);
        // With requirepass, ask as the default user (a slow start under
        // load otherwise lets a test's first command meet -LOADING).
        let pass = args
            .windows(2)
            .find(|w| w[0] == "--requirepass")
            .map(|w| w[1]);
        s.wait_loaded_as(pass);
        s
    }

    /// Waits until INFO says `loading:0`.
    pub fn wait_loaded(&mut self) {
        self.wait_loaded_as(None)
    }

    /// [`Server::wait_loaded`], authenticating with `pass` first if given.
    fn wait_loaded_as(&mut self, pass: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let loading = redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| {
                    if let Some(p) = pass {
                        redis::cmd("AUTH").arg(p).query::<()>(&mut c)?;
                    }
                    redis::cmd("INFO")
                        .arg("persistence")
                        .query::<String>(&mut c)
                });
            match loading {
                Ok(info) if info.contains("loading:1") => {}
                // Loaded, or we cannot ask (requirepass): go on.
                _ => return,
            }
            assert!(
                Instant::now() < deadline,
                "lodestone never finished loading"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like [`Server::start_in`], but returns as soon as the server
    /// answers, possibly while it still loads its dataset.
    pub fn start_in_loading(dir: PathBuf, args: &[&str]) -> Server {
        // A `--port` among the arguments (a restart on the same port) wins.
        let fixed = args
            .windows(2)
            .find(|w| w[0] == "--port")
            .and_then(|w| w[1].parse::<u16>().ok());
        for _ in 0..5 {
            let port = fixed.unwrap_or_else(free_port);
            let child = Command::new(env!("CARGO_BIN_EXE_lodestone"))
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--enable-debug-command",
                    "yes",
                    "--dir",
                    dir.to_str().unwrap(),
                ])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start lodestone");
            let mut s = Server {
                port,
                child,
                dir: dir.clone(),
                own_dir: false,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    // Make sure it is our process that answers: another
                    // test's server may have taken the port first.
                    if s.answers_as_self() {
                        return s;
                    }
                    break;
                }
                if let Ok(Some(_)) = s.child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = s.child.kill();
        }
        panic!("lodestone did not start");
    }

    fn answers_as_self(&mut self) -> bool {
        let Ok(mut c) = redis::Client::open(self.url()).and_then(|c| c.get_connection()) else {
            return false;
        };
        match redis::cmd("INFO").arg("server").query::<String>(&mut c) {
            Ok(info) => info.contains(&format!("process_id:{}\r", self.child.id())),
            // With requirepass we cannot ask; our process being alive will do.
            Err(e) if e.code() == Some("NOAUTH") => {
                std::thread::sleep(Duration::from_millis(50));
                self.alive()
            }
            Err(_) => false,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw TCP connection for protocol-level tests.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw { s }
    }

    /// The server's process id (to stop and continue it, as the Redis
    /// suite's pause_process does).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.own_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until `n` bytes arrived or the peer closed.
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match self.s.read(&mut buf[got..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => got += k,
            }
        }
        buf.truncate(got);
        buf
    }

    /// Sends a request and reads a reply of the expected length.
    pub fn roundtrip(&mut self, req: &[u8], expect: &[u8]) {
        self.send(req);
        let got = self.read_exact_n(expect.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expect),
            "request {:?}",
            String::from_utf8_lossy(req)
        );
    }

    /// Reads until the connection closes (or the timeout passes).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => out.extend_from_slice(&buf[..k]),
            }
        }
        out
    }
}

/// Runs a command given as words and unwraps its reply.
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query(c)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Encodes a request as a RESP multibulk.
pub fn req(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One `field:value` line of INFO `section`: the value, or "" when the
/// field is absent (some fields appear only in some states).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// An integer field of INFO `section`; panics when it is absent.
pub fn info_i64(c: &mut redis::Connection, section: &str, field: &str) -> i64 {
    let v = info_field(c, section, field);
    v.parse()
        .unwrap_or_else(|_| panic!("INFO {section} {field}: {v:?} is not an integer"))
}

/// INFO's blocked_clients.
pub fn blocked_clients(c: &mut redis::Connection) -> i64 {
    info_i64(c, "clients", "blocked_clients")
}

/// Waits (up to 5 s) until exactly `n` clients are blocked.
pub fn wait_blocked(c: &mut redis::Connection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blocked_clients(c) != n {
        assert!(
            Instant::now() < deadline,
            "blocked_clients never reached {n}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs a command that must fail; returns "CODE detail" of the error.
pub fn qerr(c: &mut redis::Connection, args: &[&str]) -> String {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    match k.query::<redis::Value>(c) {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or("")),
    }
}

/// A fresh directory under the system temp dir, removed on drop: give
/// each server that writes files its own (`--dir`).
pub struct TempDir {
    pub path: std::path::PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "lodestone-{tag}-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ (free_port() as u128)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A real redis-server (Debian's, installed by scripts/test) on a free
/// port, for comparisons and interop; stopped on drop. `start` returns
/// None when it is not installed, so such tests skip.
pub struct RealRedis {
    child: Child,
    pub port: u16,
}

impl RealRedis {
    /// Starts redis-server with `--save ''` and the given extra arguments.
    pub fn start(args: &[&str]) -> Option<RealRedis> {
        let bin = "/usr/bin/redis-server";
        if !std::path::Path::new(bin).exists() {
            eprintln!("note: {bin} not installed; skipping the comparison with Redis");
            return None;
        }
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut r = RealRedis { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                // Our own child must be the one listening: another test's
                // server may have taken the port between free_port() and bind.
                if let Ok(Some(_)) = r.child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let info: String = redis::cmd("INFO")
                        .arg("server")
                        .query(&mut r.client())
                        .unwrap_or_default();
                    if info.contains("lodestone_version") {
                        break;
                    }
                    return Some(r);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("redis-server did not start");
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 20 ms until it holds; panics after 30 s naming `what`.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// Waits until the replica's link is up and it has applied everything
/// the master has streamed (equal `master_repl_offset`).
pub fn wait_synced(master: &mut redis::Connection, replica: &mut redis::Connection) {
    wait_for("link up", || {
        info_field(replica, "replication", "master_link_status") == "up"
    });
    wait_for("offsets to match", || {
        let m = info_field(master, "replication", "master_repl_offset");
        let r = info_field(replica, "replication", "master_repl_offset");
        !m.is_empty() && m == r
    });
}

/// REPLICAOF 127.0.0.1 `port`.
pub fn attach(replica: &mut redis::Connection, port: u16) {
    let r: String = q(replica, &["REPLICAOF", "127.0.0.1", &port.to_string()]);
    assert_eq!(r, "OK");
}
