//! MIGRATE and RESTORE-ASKING (the key-moving part of Redis's `cluster.c`).
//!
//! MIGRATE serializes keys as DUMP does, sends them to another server as
//! RESTORE commands over a plain blocking TCP connection, and deletes them
//! here once the target acknowledged each one. As in Redis the transfer is
//! synchronous: the command holds its keys' shard locks and its worker
//! thread until the target answers or the timeout passes, which keeps the
//! move atomic for everyone else. Connections are cached per `host:port`
//! for ten seconds (`migrate_cached_sockets` in INFO stats).

use super::strings::lookup;
use super::{err, notify, Ctx, Handler, Registry};
use crate::persist::{self, rdb};
use crate::server::lazyfree::{self, Reason};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use strutil::parse_i64;

/// Metadata rows for this family, in [`super::table::TABLE`]'s format.
pub const TABLE: &str = "\
migrate|generic|-6|2.6.0|write|keyspace,dangerous|3,3,1|Atomically transfers a key from one Redis instance to another.
restore-asking|server|-4|3.0.0|write,denyoom,asking|keyspace,dangerous|1,1,1|An internal command for migrating keys in a cluster.
";

pub fn register(r: &mut Registry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("migrate", migrate as Handler),
        ("restore-asking", super::persistence::restore),
    ]);
    r.keys.push(("migrate", migrate_keys));
}

/// How many target connections are kept, and for how long unused.
const CACHE_ITEMS: usize = 64;
const CACHE_TTL: Duration = Duration::from_secs(10);

/// One cached connection to a MIGRATE target.
struct Cached {
    conn: BufReader<TcpStream>,
    /// The database last SELECTed there (None: unknown, send SELECT).
    db: Option<i64>,
    last_use: Instant,
}

/// Connections to MIGRATE targets by `host:port`. A connection is taken
/// out while a MIGRATE uses it, so two workers never share one.
#[derive(Default)]
pub struct SocketCache {
    map: Mutex<HashMap<String, Cached>>,
}

impl SocketCache {
    /// Number of cached connections (INFO's `migrate_cached_sockets`).
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes connections unused for [`CACHE_TTL`] (from the cron).
    pub fn close_idle(&self) {
        self.map
            .lock()
            .retain(|_, c| c.last_use.elapsed() <= CACHE_TTL);
    }

    fn take(&self, name: &str) -> Option<Cached> {
        self.map.lock().remove(name)
    }

    fn put(&self, name: String, c: Cached) {
        let mut m = self.map.lock();
        if m.len() >= CACHE_ITEMS && !m.contains_key(&name) {
            // Full: drop any one, as Redis drops a random entry.
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        m.insert(name, c);
    }
}

/// Key positions: argv[3], or everything after KEYS (when argv[3] is "").
fn migrate_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    if argv.len() < 6 {
        return None;
    }
    if argv[3].is_empty() {
        // Skip AUTH/AUTH2 arguments: a password may read "keys".
        let mut j = 6;
        while j < argv.len() {
            let a = argv[j];
            if a.eq_ignore_ascii_case(b"keys") {
                return Some((j + 1..argv.len()).collect());
            }
            j += if a.eq_ignore_ascii_case(b"auth") {
                2
            } else if a.eq_ignore_ascii_case(b"auth2") {
                3
            } else {
                1
            };
        }
        return Some(vec![]);
    }
    Some(vec![3])
}

/// MIGRATE's parsed options.
struct Options<'a> {
    copy: bool,
    replace: bool,
    auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    keys: &'a [&'a [u8]],
}

fn parse<'a>(argv: &'a [&'a [u8]]) -> Result<Options<'a>, &'static str> {
    let mut o = Options {
        copy: false,
        replace: false,
        auth: None,
        keys: &argv[3..4],
    };
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"copy") {
            o.copy = true;
        } else if a.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if a.eq_ignore_ascii_case(b"auth") {
            if more < 1 {
                return Err(err::SYNTAX);
            }
            o.auth = Some((None, argv[j + 1]));
            j += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(err::SYNTAX);
            }
            o.auth = Some((Some(argv[j + 1]), argv[j + 2]));
            j += 2;
        } else if a.eq_ignore_ascii_case(b"keys") {
            if !argv[3].is_empty() {
                return Err("ERR When using MIGRATE KEYS option, the key argument must be set to the empty string");
            }
            o.keys = &argv[j + 1..];
            break;
        } else {
            return Err(err::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// Appends one RESP command to `out`.
fn push_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// How a transfer failed on the socket.
struct IoFail {
    writing: bool,
    timed_out: bool,
}

impl IoFail {
    fn new(writing: bool, e: Option<std::io::Error>) -> IoFail {
        let timed_out = e.is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )
        });
        IoFail { writing, timed_out }
    }
}

fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Option<BufReader<TcpStream>> {
    let host = std::str::from_utf8(host).ok()?;
    let port: u16 = std::str::from_utf8(port).ok()?.parse().ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let s = TcpStream::connect_timeout(&addr, timeout).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    Some(BufReader::new(s))
}

/// Reads one reply line (at most 1 KB, like Redis's buffers).
fn read_line(conn: &mut BufReader<TcpStream>) -> Result<Vec<u8>, IoFail> {
    let mut line = Vec::new();
    match conn.by_ref().take(1024).read_until(b'\n', &mut line) {
        Ok(n) if n > 0 && line.ends_with(b"\n") => {
            while matches!(line.last(), Some(b'\r' | b'\n')) {
                line.pop();
            }
            Ok(line)
        }
        Ok(_) => Err(IoFail::new(false, None)),
        Err(e) => Err(IoFail::new(false, Some(e))),
    }
}

fn migrate(ctx: &mut Ctx, argv: &[&[u8]]) {
    let o = match parse(argv) {
        Ok(o) => o,
        Err(e) => return ctx.error(e),
    };
    let (Some(timeout), Some(target_db)) = (parse_i64(argv[5]), parse_i64(argv[4])) else {
        return ctx.error(err::NOT_INT);
    };
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
    let (db, now) = (ctx.client.db, ctx.now_ms);
    let touch = ctx.touch_ok();
    let opts = persist::save_opts(ctx.srv);
    // Serialize what is here now; the shard locks are held until the end.
    let mut moving: Vec<(&[u8], i64, Vec<u8>)> = Vec::new();
    for &key in o.keys {
        let sh = ctx.locks.shard(db, key);
        let found = lookup(sh, key, now, touch).map(|e| {
            let ttl = e.expire_at().map_or(0, |t| (t as i64 - now as i64).max(1));
            (ttl, rdb::dump_payload(&e.value(), &opts))
        });
        ctx.srv.stats.hit(found.is_some());
        if let Some((ttl, payload)) = found {
            moving.push((key, ttl, payload));
        }
    }
    if moving.is_empty() {
        return ctx.r().simple("NOKEY");
    }
    let name = format!(
        "{}:{}",
        String::from_utf8_lossy(argv[1]),
        String::from_utf8_lossy(argv[2])
    );
    // A cached connection may have been closed by the target: one retry on
    // a fresh connection, unless the failure was a timeout or the target
    // may already have applied something.
    let mut may_retry = true;
    loop {
        let cached = match ctx.srv.migrate_sockets.take(&name) {
            Some(c) => c,
            None => match connect(argv[1], argv[2], timeout) {
                Some(conn) => Cached {
                    conn,
                    db: None,
                    last_use: Instant::now(),
                },
                None => return ctx.error("IOERR error or timeout connecting to the client"),
            },
        };
        match transfer(ctx, cached, &name, &o, target_db, &moving) {
            Ok(()) => return,
            Err((fail, acked)) if may_retry && !acked && !fail.timed_out => may_retry = false,
            Err((fail, _)) => {
                let what = if fail.writing { "writing" } else { "reading" };
                return ctx.error(&format!("IOERR error or timeout {what} to target instance"));
            }
        }
    }
}

/// Sends AUTH, SELECT and the RESTOREs on `c`, reads the replies, deletes
/// the acknowledged keys (unless COPY) and replies to the client. On a
/// socket failure the connection is dropped and the failure returned with
/// whether the target may have applied something; the caller replies.
fn transfer(
    ctx: &mut Ctx,
    mut c: Cached,
    name: &str,
    o: &Options,
    target_db: i64,
    moving: &[(&[u8], i64, Vec<u8>)],
) -> Result<(), (IoFail, bool)> {
    let mut out = Vec::new();
    if let Some((user, pass)) = o.auth {
        match user {
            Some(u) => push_command(&mut out, &[b"AUTH", u, pass]),
            None => push_command(&mut out, &[b"AUTH", pass]),
        }
    }
    let select = c.db != Some(target_db);
    if select {
        push_command(&mut out, &[b"SELECT", target_db.to_string().as_bytes()]);
    }
    for (key, ttl, payload) in moving {
        let ttl = ttl.to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), payload];
        if o.replace {
            args.push(b"REPLACE");
        }
        push_command(&mut out, &args);
    }
    if let Err(e) = c.conn.get_mut().write_all(&out) {
        return Err((IoFail::new(true, Some(e)), false));
    }
    // An AUTH or SELECT error fails every key; a RESTORE error only its own.
    let mut setup_error: Option<Vec<u8>> = None;
    for wanted in [o.auth.is_some(), select] {
        if wanted {
            let line = read_line(&mut c.conn).map_err(|f| (f, false))?;
            if line.first() == Some(&b'-') && setup_error.is_none() {
                setup_error = Some(line);
            }
        }
    }
    let (db, mut deleted) = (ctx.client.db, Vec::new());
    let (mut first_error, mut failure) = (setup_error.clone(), None);
    for (i, (key, _, _)) in moving.iter().enumerate() {
        let line = match read_line(&mut c.conn) {
            Ok(l) => l,
            Err(f) => {
                failure = Some((f, i > 0));
                break;
            }
        };
        if line.first() == Some(&b'-') {
            first_error.get_or_insert(line);
        } else if setup_error.is_none() && !o.copy {
            let sh = ctx.locks.shard(db, key);
            lazyfree::drop_opt(sh.remove(key), Reason::UserDel);
            ctx.notify(notify::GENERIC, "del", key);
            deleted.push(*key);
        }
    }
    if !deleted.is_empty() {
        // Replicas and the AOF see the move as a DEL of what left.
        ctx.srv.add_dirty(deleted.len() as u64);
        let mut del: Vec<&[u8]> = vec![b"DEL"];
        del.extend_from_slice(&deleted);
        ctx.propagate_as(&del);
    }
    if let Some(e) = first_error {
        // The target's state is unknown: SELECT again next time.
        if failure.is_none() {
            c.db = None;
            c.last_use = Instant::now();
            ctx.srv.migrate_sockets.put(name.to_string(), c);
        }
        ctx.error(&format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&e[1..])
        ));
        return Ok(());
    }
    if let Some(f) = failure {
        // The connection is dropped (not put back).
        return Err(f);
    }
    c.db = Some(target_db);
    c.last_use = Instant::now();
    ctx.srv.migrate_sockets.put(name.to_string(), c);
    ctx.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<&[u8]> {
        s.split(' ')
            .map(|w| if w == "''" { &b""[..] } else { w.as_bytes() })
            .collect()
    }

    #[test]
    fn key_positions_follow_the_keys_option() {
        assert_eq!(migrate_keys(&args("MIGRATE h 1 k 0 10")), Some(vec![3]));
        assert_eq!(
            migrate_keys(&args("MIGRATE h 1 '' 0 10 COPY KEYS a b")),
            Some(vec![8, 9])
        );
        // A password that reads "keys" is not the option.
        assert_eq!(
            migrate_keys(&args("MIGRATE h 1 '' 0 10 AUTH keys KEYS a")),
            Some(vec![9])
        );
        assert_eq!(
            migrate_keys(&args("MIGRATE h 1 '' 0 10 AUTH2 u keys KEYS a")),
            Some(vec![10])
        );
    }

    #[test]
    fn options_are_parsed_as_redis_does() {
        let a = args("MIGRATE h 1 '' 0 10 REPLACE AUTH2 u p KEYS a b");
        let o = parse(&a).ok().unwrap();
        assert!(o.replace && !o.copy);
        assert_eq!(o.auth, Some((Some(&b"u"[..]), &b"p"[..])));
        assert_eq!(o.keys.len(), 2);
        assert_eq!(
            parse(&args("MIGRATE h 1 k 0 10 AUTH")).err(),
            Some(err::SYNTAX)
        );
        assert_eq!(
            parse(&args("MIGRATE h 1 k 0 10 NOPE")).err(),
            Some(err::SYNTAX)
        );
        assert!(parse(&args("MIGRATE h 1 k 0 10 KEYS a"))
            .err()
            .unwrap()
            .contains("empty string"));
    }
}
