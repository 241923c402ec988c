//! The propagation feed: the effects of write commands, in order, for the
//! AOF (and later replication).
//!
//! Effects are logged, not commands. After a command that changed
//! something (the thread's dirty counter moved) its argv is recorded in the
//! context's pending unit, verbatim unless the handler rewrote it through
//! [`Ctx::propagate_as`] (relative TTLs become absolute, INCRBYFLOAT a SET,
//! SPOP an SREM, ...). Keys deleted by lazy expiry are emitted as DELs
//! (each on its own) before the effect of the command that found them. The unit is handed to
//! the feed's sinks by whoever releases the shard locks ([`Ctx::release_locks`]),
//! while the locks are still held: two writes to the same key therefore
//! reach every sink in the order they were applied, whatever thread ran
//! them. A unit of more than one effect (EXEC, scripts) is wrapped in
//! MULTI/EXEC by [`encode_unit`]; SELECT is emitted when the db changes.
//! When nobody consumes the feed the cost is one relaxed atomic load per
//! command.

use super::{Command, Ctx};
use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One command's arguments, owned.
pub type Argv = Vec<Vec<u8>>;

/// One effect: a command to replay in a database.
#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    pub db: usize,
    pub argv: Argv,
}

/// Consumer classes an effect goes to (Redis's PROPAGATE_AOF /
/// PROPAGATE_REPL; a script chooses with redis.set_repl).
pub const TO_AOF: u8 = 1;
pub const TO_REPLICA: u8 = 2;
pub const TO_ALL: u8 = TO_AOF | TO_REPLICA;

/// A consumer of the feed (the AOF; later the replication backlog).
pub trait Sink: Send + Sync {
    /// Receives one execution unit's effects in order. Called while the
    /// writer still holds the shard locks of the keys it changed, so it
    /// must not take shard locks itself.
    fn append(&self, unit: &[Effect]);

    /// Which effects this sink wants: `TO_AOF` for the AOF, `TO_REPLICA`
    /// (the default) for replication consumers. Effects a script sent
    /// elsewhere with redis.set_repl are filtered out before `append`.
    fn target(&self) -> u8 {
        TO_REPLICA
    }
}

/// The feed: the set of sinks and the flag writers check.
#[derive(Default)]
pub struct Feed {
    active: AtomicBool,
    sinks: RwLock<Vec<(&'static str, Arc<dyn Sink>)>>,
}

impl Feed {
    /// Whether anybody consumes effects (one relaxed load: the hot path).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Adds (or replaces) the sink registered under `name`. AOF sinks come
    /// first: a unit is in the AOF's buffer before the replication sink
    /// counts it in the stream offset, so an offset read under the AOF's
    /// lock never covers a unit the AOF has not got (WAITAOF's local ack).
    pub fn subscribe(&self, name: &'static str, sink: Arc<dyn Sink>) {
        let mut s = self.sinks.write();
        s.retain(|(n, _)| *n != name);
        s.push((name, sink));
        s.sort_by_key(|(_, x)| x.target());
        self.active.store(true, Ordering::SeqCst);
        crate::keyspace::shard::LOG_EXPIRED.store(true, Ordering::SeqCst);
    }

    /// Removes the sink registered under `name`.
    pub fn unsubscribe(&self, name: &str) {
        let mut s = self.sinks.write();
        s.retain(|(n, _)| *n != name);
        self.active.store(!s.is_empty(), Ordering::SeqCst);
    }

    /// Hands one unit to every sink.
    pub fn emit(&self, unit: &[Effect]) {
        if unit.is_empty() {
            return;
        }
        for (_, s) in self.sinks.read().iter() {
            s.append(unit);
        }
    }

    /// Hands one unit to every sink, each effect only to the sinks its
    /// `targets` entry names (missing entries: every sink). An empty
    /// `targets` is [`Feed::emit`].
    pub fn emit_targeted(&self, unit: &[Effect], targets: &[u8]) {
        if targets.is_empty() {
            return self.emit(unit);
        }
        for (_, s) in self.sinks.read().iter() {
            let t = s.target();
            let part: Vec<Effect> = unit
                .iter()
                .enumerate()
                .filter(|(i, _)| targets.get(*i).copied().unwrap_or(TO_ALL) & t != 0)
                .map(|(_, e)| e.clone())
                .collect();
            if !part.is_empty() {
                s.append(&part);
            }
        }
    }
}

/// What one execution context has collected for the feed.
#[derive(Default)]
pub struct Pending {
    /// Effects of the running unit (a command, or EXEC's / a script's
    /// inner commands), emitted when its locks are released.
    pub unit: Vec<Effect>,
    /// The handler's replacement for the running command's own effect
    /// (None: the argv verbatim).
    pub rewrite: Option<Vec<Argv>>,
    /// Set while replaying an AOF: nothing is propagated.
    pub loading: bool,
    /// Consumer classes of `unit`'s effects, by index (`TO_*`); empty or
    /// shorter than `unit` means every sink (redis.set_repl fills it).
    pub targets: Vec<u8>,
}

impl Pending {
    /// Sends the effects from index `from` on only to `targets` consumers.
    pub fn restrict_from(&mut self, from: usize, targets: u8) {
        if targets == TO_ALL || self.unit.len() <= from {
            return;
        }
        self.targets.resize(from.max(self.targets.len()), TO_ALL);
        self.targets.resize(self.unit.len(), targets);
    }
}

impl<'a> Ctx<'a> {
    /// Whether effects are being collected (handlers skip building
    /// rewrites otherwise).
    #[inline]
    pub fn propagating(&self) -> bool {
        !self.prop.loading && self.srv.feed.active()
    }

    /// Replaces the running command's effect with `argv` (call again to
    /// add more effects; the first call drops the verbatim form).
    pub fn propagate_as(&mut self, argv: &[&[u8]]) {
        if !self.propagating() {
            return;
        }
        self.prop
            .rewrite
            .get_or_insert_with(Vec::new)
            .push(argv.iter().map(|a| a.to_vec()).collect());
    }

    /// Records that the running command has no effect to propagate even
    /// if it counted as a change.
    pub fn propagate_nothing(&mut self) {
        if self.propagating() {
            self.prop.rewrite.get_or_insert_with(Vec::new);
        }
    }

    /// Adds an effect in `db` to the pending unit directly (expiry DELs,
    /// effects that do not belong to one command).
    pub fn also_propagate(&mut self, db: usize, argv: Argv) {
        if self.propagating() {
            self.prop.unit.push(Effect { db, argv });
        }
    }

    /// Emits the pending unit to the feed. Call while still holding the
    /// locks of the keys the unit changed.
    #[inline]
    pub fn flush_feed(&mut self) {
        if !self.prop.unit.is_empty() {
            self.emit_unit();
        }
    }

    #[cold]
    fn emit_unit(&mut self) {
        let unit = std::mem::take(&mut self.prop.unit);
        let targets = std::mem::take(&mut self.prop.targets);
        self.srv.feed.emit_targeted(&unit, &targets);
        self.note_write_offset();
    }

    /// Remembers the stream offset after this client's propagated write
    /// (Redis's `c->woff`), the point WAIT and WAITAOF wait for.
    #[inline]
    pub fn note_write_offset(&mut self) {
        let off = self.srv.repl.offset();
        self.client.handle.woff.fetch_max(off, Ordering::Relaxed);
    }

    /// Emits the pending unit, then releases every shard lock: the one
    /// way an outermost executor (a command, EXEC, a script) lets go of
    /// its locks.
    #[inline]
    pub fn release_locks(&mut self) {
        self.flush_feed();
        self.locks.release();
    }
}

/// Called by `run_command` right after a handler, with the dirty counter
/// read before it: records expiry DELs and the command's own effect.
pub fn after_command(
    ctx: &mut Ctx,
    cmd: &Command,
    argv: &[&[u8]],
    dirty_before: u64,
    rewrite: Option<Vec<Argv>>,
    expired: &[(usize, Vec<u8>)],
) {
    // Keys the command found expired are DELs of their own, emitted at
    // once (the shard locks are held): as in Redis 7.2 they precede the
    // command and are never wrapped into its MULTI/EXEC.
    for (db, key) in expired {
        ctx.srv.feed.emit(&[Effect {
            db: *db,
            argv: vec![b"DEL".to_vec(), key.clone()],
        }]);
    }
    if !expired.is_empty() {
        ctx.note_write_offset();
    }
    let db = ctx.client.db;
    match rewrite {
        Some(v) => ctx
            .prop
            .unit
            .extend(v.into_iter().map(|argv| Effect { db, argv })),
        None => {
            let changed = crate::server::LOCAL_DIRTY.with(|d| d.get()) != dirty_before;
            // A blocking command that parked may still have changed
            // something (XREADGROUP creates its consumer); replayed, it
            // cannot block and does the same.
            if changed && cmd.has(super::flags::WRITE) {
                ctx.prop.unit.push(Effect {
                    db,
                    argv: argv.iter().map(|a| a.to_vec()).collect(),
                });
            }
        }
    }
}

/// Appends one command in RESP (an array of bulk strings).
pub fn encode_argv<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.push(b'*');
    out.extend_from_slice(argv.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Encodes a unit for a consumer whose stream is in database `cur_db`
/// (None: unknown): SELECT when the db changes, MULTI/EXEC around units
/// of more than one effect.
pub fn encode_unit(unit: &[Effect], cur_db: &mut Option<usize>, out: &mut Vec<u8>) {
    let wrap = unit.len() > 1;
    // MULTI comes first, then the SELECT its first command needs (the
    // order Redis 7 writes: the transaction is opened lazily at the
    // first effect, before the db switch).
    if wrap {
        encode_argv(out, &[b"MULTI"]);
    }
    for e in unit {
        if *cur_db != Some(e.db) {
            encode_argv(out, &[b"SELECT".to_vec(), e.db.to_string().into_bytes()]);
            *cur_db = Some(e.db);
        }
        encode_argv(out, &e.argv);
    }
    if wrap {
        encode_argv(out, &[b"EXEC"]);
    }
}

/// `ms` as decimal bytes (for PXAT / PEXPIREAT arguments).
pub fn num(ms: impl ToString) -> Vec<u8> {
    ms.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(db: usize, a: &[&str]) -> Effect {
        Effect {
            db,
            argv: a.iter().map(|x| x.as_bytes().to_vec()).collect(),
        }
    }

    /// The words of encoded RESP commands, without the length headers.
    fn words(out: Vec<u8>) -> Vec<String> {
        String::from_utf8(out)
            .unwrap()
            .split("\r\n")
            .filter(|w| !w.is_empty() && !w.starts_with(['*', '$']))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn units_get_select_and_multi() {
        let mut out = Vec::new();
        let mut db = None;
        encode_unit(&[e(0, &["SET", "a", "1"])], &mut db, &mut out);
        assert_eq!(
            out,
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
        );
        out.clear();
        encode_unit(&[e(0, &["DEL", "a"])], &mut db, &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nDEL\r\n$1\r\na\r\n");
        out.clear();
        encode_unit(
            &[e(0, &["INCR", "x"]), e(2, &["INCR", "y"])],
            &mut db,
            &mut out,
        );
        let words = words(out);
        assert_eq!(
            words,
            ["MULTI", "INCR", "x", "SELECT", "2", "INCR", "y", "EXEC"]
        );
        assert_eq!(db, Some(2));
    }

    /// Collects the units the feed emits.
    struct Capture(parking_lot::Mutex<Vec<Vec<Effect>>>);

    impl Sink for Capture {
        fn append(&self, unit: &[Effect]) {
            self.0.lock().push(unit.to_vec());
        }
    }

    /// Runs commands as one client and returns the emitted units, each
    /// as its commands joined by spaces (" | " between commands).
    fn effects_of(cmds: &[&str]) -> Vec<String> {
        let cfg = crate::config::Config::new();
        crate::config::load_text(&cfg, "databases 4\n").unwrap();
        let srv = crate::server::Server::new(cfg, String::new(), None);
        let cap = Arc::new(Capture(Default::default()));
        srv.feed.subscribe("test", cap.clone());
        crate::aof::load::with_loading_ctx(&srv, |ctx| {
            ctx.prop.loading = false;
            for c in cmds {
                if *c == "sleep" {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                ctx.now_ms = crate::server::now_ms();
                let words: Vec<&[u8]> = c.split(' ').map(|w| w.as_bytes()).collect();
                super::super::dispatch(ctx, &words);
                ctx.out.clear();
            }
        });
        let units = cap.0.lock().clone();
        units
            .iter()
            .map(|u| {
                u.iter()
                    .map(|e| {
                        let a: Vec<String> = e
                            .argv
                            .iter()
                            .map(|x| String::from_utf8_lossy(x).into_owned())
                            .collect();
                        format!("{}:{}", e.db, a.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect()
    }

    fn pxat_near(s: &str, prefix: &str, offset_ms: u64) {
        let t: u64 = s
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{s:?} does not start with {prefix:?}"))
            .parse()
            .unwrap();
        let want = crate::server::now_ms() + offset_ms;
        assert!(t <= want && t + 5000 > want, "{s}");
    }

    #[test]
    fn commands_propagate_as_their_effects() {
        let e = effects_of(&[
            "SET a 1 EX 100",
            "SETEX b 100 v",
            "GET a",
            "SET a 2 NX",
            "SET c 1",
            "EXPIRE c 200",
            "GETEX c PERSIST",
            "EXPIRE c -1",
            "INCRBYFLOAT f 0.5",
            "HINCRBYFLOAT h x 1.25",
            "SADD s m",
            "SPOP s",
            "SADD s p q",
            "SPOP s 5",
            "SET g 1",
            "GETDEL g",
            "XADD x 5-* k v",
            "XADD x MAXLEN 1 6-1 k v",
            "XADD x 7-1 k v",
            "XTRIM x MINID 7",
            "RPUSH l a",
            "BLPOP l 0",
            "ZADD z 1 a 2 b",
            "BZPOPMAX z 0",
            "MULTI",
            "INCR t",
            "SELECT 2",
            "INCR t",
            "EXEC",
        ]);
        pxat_near(&e[0], "0:SET a 1 PXAT ", 100_000);
        pxat_near(&e[1], "0:SET b v PXAT ", 100_000);
        let rest: Vec<&str> = e[2..].iter().map(|s| s.as_str()).collect();
        assert_eq!(rest[0], "0:SET c 1");
        pxat_near(rest[1], "0:PEXPIREAT c ", 200_000);
        assert_eq!(
            &rest[2..],
            [
                "0:PERSIST c",
                "0:DEL c",
                "0:SET f 0.5 KEEPTTL",
                "0:HSET h x 1.25",
                "0:SADD s m",
                "0:SREM s m",
                "0:SADD s p q",
                "0:DEL s",
                "0:SET g 1",
                "0:DEL g",
                "0:XADD x 5-0 k v",
                "0:XADD x MAXLEN = 1 6-1 k v",
                "0:XADD x 7-1 k v",
                "0:XTRIM x MAXLEN = 1",
                "0:RPUSH l a",
                "0:LPOP l",
                "0:ZADD z 1 a 2 b",
                "0:ZPOPMAX z 1",
                "0:INCR t | 2:INCR t",
            ]
        );
    }

    #[test]
    fn pops_restores_and_absolute_times_propagate_like_redis() {
        let e = effects_of(&[
            "SET p 1 pxat 99999999999999",
            "LPUSH m a b c",
            "LMPOP 2 none m RIGHT COUNT 2",
            "SET d 1 PX 1",
            "sleep",
            "SCAN 0",
            "RANDOMKEY",
        ]);
        assert_eq!(
            e,
            [
                "0:SET p 1 pxat 99999999999999",
                "0:LPUSH m a b c",
                "0:RPOP m 2",
                &("0:SET d 1 PXAT ".to_string() + &e[3][15..]),
                "0:DEL d",
            ]
        );
    }

    #[test]
    fn xreadgroup_propagates_as_xclaim() {
        let e = effects_of(&[
            "XADD s 1-1 f v",
            "XGROUP CREATE s g 0",
            "XREADGROUP GROUP g c STREAMS s >",
            "XADD s 2-1 f v",
            "XREADGROUP GROUP g d NOACK STREAMS s >",
            "XREADGROUP GROUP g c STREAMS s 0",
        ]);
        assert_eq!(e.len(), 5, "{e:?}");
        let claim: Vec<&str> = e[2].split(' ').collect();
        assert_eq!(claim[..6], ["0:XCLAIM", "s", "g", "c", "0", "1-1"]);
        assert_eq!(
            claim[8..],
            ["RETRYCOUNT", "1", "FORCE", "JUSTID", "LASTID", "1-1"]
        );
        assert_eq!(
            e[4],
            "0:XGROUP CREATECONSUMER s g d | 0:XGROUP SETID s g 2-1 ENTRIESREAD 2"
        );
    }

    #[test]
    fn multi_comes_before_select() {
        let mut out = Vec::new();
        let mut db = Some(0);
        encode_unit(
            &[e(1, &["INCR", "x"]), e(1, &["INCR", "y"])],
            &mut db,
            &mut out,
        );
        let words = words(out);
        assert_eq!(
            words,
            ["MULTI", "SELECT", "1", "INCR", "x", "INCR", "y", "EXEC"]
        );
    }

    #[test]
    fn lazily_expired_keys_become_dels_before_the_command() {
        let e = effects_of(&["SET k v PX 1", "sleep", "SET k w NX"]);
        assert_eq!(e[1..], ["0:DEL k", "0:SET k w NX"]);
    }
}
