//! Client-side caching (Redis's `tracking.c`): CLIENT TRACKING, CACHING,
//! GETREDIR and TRACKINGINFO, the table of keys clients may have cached,
//! and the invalidation messages sent when those keys change.
//!
//! One server-wide [`Tracking`] registry holds, behind one mutex, the
//! tracked keys (key -> client ids, shared by all databases as in Redis),
//! the BCAST prefixes (prefix -> clients, plus the keys changed since the
//! last broadcast) and every tracking client's routing (worker, flags,
//! redirect). Read-only commands register their keys for the calling
//! client; a write (the dispatcher's `after_write`, the same place WATCH
//! touches happen), an expiry, a flush or the `tracking-table-max-keys`
//! limit drops keys from the table and sends invalidations. Messages for
//! other clients travel through the worker mailboxes
//! ([`WorkerMsg::Track`]); the worker encodes them in the receiver's
//! protocol (RESP3 push, or a `__redis__:invalidate` Pub/Sub message for a
//! RESP2 redirect target). Invalidations for the client whose command
//! caused them wait in [`Pending`] and are written after its reply (after
//! EXEC's whole reply inside a transaction), as Redis does. When no client
//! tracks anything, writers pay one relaxed atomic load.

use super::{err, Ctx, Handler, Registry};
use crate::server::client::ClientHandle;
use crate::server::{Server, WorkerMsg};
use parking_lot::Mutex;
use resp::{Proto, Reply};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Tracking is on.
pub const ON: u8 = 1;
/// Broadcast mode: every key under the client's prefixes.
pub const BCAST: u8 = 1 << 1;
/// Only keys read right after CLIENT CACHING YES are tracked.
pub const OPTIN: u8 = 1 << 2;
/// Keys read right after CLIENT CACHING NO are not tracked.
pub const OPTOUT: u8 = 1 << 3;
/// No invalidations for keys the client changed itself.
pub const NOLOOP: u8 = 1 << 4;
/// CLIENT CACHING was given for the next command (or transaction).
pub const CACHING: u8 = 1 << 5;
/// The redirect target disappeared (set by whichever thread noticed).
pub const BROKEN: u8 = 1 << 6;

/// The channel RESP2 redirect targets receive invalidations on.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

pub fn register(r: &mut Registry) {
    r.handlers.extend_from_slice(&[
        ("client|tracking", client_tracking as Handler),
        ("client|caching", client_caching),
        ("client|getredir", client_getredir),
        ("client|trackinginfo", client_trackinginfo),
    ]);
}

/// What an invalidation message says.
#[derive(Debug)]
pub enum Invalidation {
    /// These keys may have changed.
    Keys(Vec<Vec<u8>>),
    /// Every key may have changed (FLUSHDB/FLUSHALL): a null.
    All,
    /// The client's redirect target (this id) no longer exists.
    RedirBroken(u64),
}

impl Invalidation {
    /// About how many bytes the message takes once encoded (for
    /// `memory::TRACKING_IN_TRANSIT`).
    pub fn wire_len(&self) -> u64 {
        match self {
            Invalidation::Keys(keys) => 40 + keys.iter().map(|k| k.len() as u64 + 16).sum::<u64>(),
            Invalidation::All | Invalidation::RedirBroken(_) => 64,
        }
    }

    /// Encodes the message for its receiver: a RESP3 push, a Pub/Sub
    /// message on [`CHANNEL`] for a subscribed RESP2 redirect target, or
    /// nothing (RESP2 has no way to tell the client itself).
    pub fn encode(&self, out: &mut Vec<u8>, proto: Proto, subscribed: bool, redirected: bool) {
        let mut r = Reply::new(out, proto);
        if let Invalidation::RedirBroken(id) = self {
            if proto == Proto::Resp3 {
                r.push(2);
                r.bulk(b"tracking-redir-broken");
                r.int(*id as i64);
            }
            return;
        }
        if proto == Proto::Resp3 {
            r.push(2);
            r.bulk(b"invalidate");
        } else if redirected && subscribed {
            r.array(3);
            r.bulk(b"message");
            r.bulk(CHANNEL);
        } else {
            return;
        }
        match self {
            Invalidation::Keys(keys) => {
                r.array(keys.len());
                for k in keys {
                    r.bulk(k);
                }
            }
            _ => r.null(),
        }
    }
}

/// A client's own tracking settings (owned by its worker).
#[derive(Default, Debug)]
pub struct ClientTracking {
    /// [`ON`], [`BCAST`], [`OPTIN`], [`OPTOUT`], [`NOLOOP`], [`CACHING`].
    pub flags: u8,
    /// Client id invalidations go to (0: the client itself).
    pub redirect: u64,
    /// BCAST prefixes, sorted.
    pub prefixes: Vec<Vec<u8>>,
}

/// Invalidations for the client whose command caused them, written after
/// the command's reply: a key, or None for "everything" (a flush).
#[derive(Default, Debug)]
pub struct Pending {
    pub keys: Vec<Option<Vec<u8>>>,
}

/// Routing of one tracking client, as other threads need it.
struct Target {
    handle: Arc<ClientHandle>,
    flags: u8,
    redirect: u64,
}

/// One BCAST prefix: its clients and the keys changed under it since the
/// last broadcast, each with the client that changed it last (0: none).
#[derive(Default)]
struct Prefix {
    keys: BTreeMap<Vec<u8>, u64>,
    clients: Vec<u64>,
}

#[derive(Default)]
struct State {
    /// Tracked key -> ids of clients that may cache it.
    keys: HashMap<Vec<u8>, Vec<u64>>,
    /// Sum of the id lists' lengths (tracking_total_items).
    items: u64,
    prefixes: BTreeMap<Vec<u8>, Prefix>,
    clients: HashMap<u64, Target>,
    /// Some prefix has keys waiting to be broadcast.
    bcast_pending: bool,
    /// Consecutive limit runs that could not get under the limit.
    limit_runs: u32,
}

/// The client the current command runs for, when an invalidation for it
/// may be written straight into its reply buffer.
pub struct Current<'a> {
    pub id: u64,
    pub proto: Proto,
    pub subscribed: bool,
    pub out: &'a mut Vec<u8>,
}

type Outbox = Vec<(usize, WorkerMsg)>;

/// The server-wide tracking registry.
#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on (INFO `tracking_clients`); zero lets
    /// writers skip everything else.
    pub clients: AtomicUsize,
    /// Tracked keys (kept equal to the table's size under the lock), so
    /// the limit check before each command needs no lock.
    key_count: AtomicUsize,
    /// Some BCAST prefix has keys to broadcast.
    bcast_pending: AtomicBool,
    state: Mutex<State>,
}

impl Tracking {
    /// Whether any client tracks anything: one relaxed load.
    #[inline]
    pub fn active(&self) -> bool {
        self.clients.load(Ordering::Relaxed) > 0
    }

    /// (tracking_total_keys, tracking_total_items, tracking_total_prefixes).
    pub fn totals(&self) -> (usize, u64, usize) {
        let st = self.state.lock();
        (st.keys.len(), st.items, st.prefixes.len())
    }

    /// Remembers that `client` may now cache `keys`.
    pub fn remember<'k>(&self, client: u64, keys: impl Iterator<Item = &'k [u8]>) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for k in keys {
            let ids = match st.keys.get_mut(k) {
                Some(v) => v,
                None => st.keys.entry(k.to_vec()).or_default(),
            };
            if !ids.contains(&client) {
                ids.push(client);
                st.items += 1;
            }
        }
        self.key_count.store(st.keys.len(), Ordering::Relaxed);
    }

    /// A key changed (Redis's `trackingInvalidateKey` with broadcasting):
    /// schedules it for BCAST clients whose prefix matches and invalidates
    /// it for every client that may cache it. `current` is the client whose
    /// command runs (NOLOOP skips it; its own message waits in `pending`),
    /// `writer` the client that changed the key (None for expiry).
    pub fn modified(
        &self,
        srv: &Server,
        key: &[u8],
        current: Option<u64>,
        writer: Option<u64>,
        pending: Option<&mut Pending>,
    ) {
        self.modified_with(srv, key, current, writer, pending, None);
    }

    /// [`Tracking::modified`] that writes the message for `cur` (the
    /// client about to run a command) straight into its buffer, ahead of
    /// its reply: keys evicted before a command are invalidated first.
    pub fn modified_with(
        &self,
        srv: &Server,
        key: &[u8],
        current: Option<u64>,
        writer: Option<u64>,
        pending: Option<&mut Pending>,
        mut cur: Option<Current>,
    ) {
        let mut out = Outbox::new();
        {
            let mut st = self.state.lock();
            let st = &mut *st;
            for (p, pf) in st.prefixes.iter_mut() {
                if key.starts_with(p) {
                    pf.keys.insert(key.to_vec(), writer.unwrap_or(0));
                    st.bcast_pending = true;
                    self.bcast_pending.store(true, Ordering::Relaxed);
                }
            }
            drop_key(srv, st, key, current, pending, &mut cur, &mut out);
            self.key_count.store(st.keys.len(), Ordering::Relaxed);
        }
        send(srv, out);
    }

    /// FLUSHDB/FLUSHALL: every tracking client is told that everything
    /// changed (a null), and the table is emptied.
    pub fn flushed(&self, srv: &Server, current: Option<u64>, pending: &mut Pending) {
        let mut out = Outbox::new();
        {
            let mut st = self.state.lock();
            let st = &mut *st;
            let ids: Vec<u64> = st.clients.keys().copied().collect();
            let all = Arc::new(Invalidation::All);
            for id in ids {
                if Some(id) == current {
                    pending.keys.push(None);
                } else {
                    route(srv, &mut st.clients, id, &all, &mut None, &mut out);
                }
            }
            st.keys = HashMap::new();
            st.items = 0;
            self.key_count.store(0, Ordering::Relaxed);
        }
        send(srv, out);
    }

    /// After a top-level command: writes the current client's own
    /// invalidations after its reply and broadcasts BCAST keys.
    pub fn after_command(&self, srv: &Server, pending: &mut Pending, mut cur: Option<Current>) {
        if pending.keys.is_empty() && !self.bcast_pending.load(Ordering::Relaxed) {
            return;
        }
        let mut out = Outbox::new();
        {
            let mut st = self.state.lock();
            let st = &mut *st;
            if let Some(c) = cur.as_ref().map(|c| c.id) {
                for k in std::mem::take(&mut pending.keys) {
                    let msg = Arc::new(match k {
                        Some(k) => Invalidation::Keys(vec![k]),
                        None => Invalidation::All,
                    });
                    route(srv, &mut st.clients, c, &msg, &mut cur, &mut out);
                }
            }
            broadcast(srv, st, &mut cur, &mut out);
        }
        send(srv, out);
    }

    /// Broadcasts keys changed outside any command (active expiry).
    pub fn broadcast_pending(&self, srv: &Server) {
        if !self.bcast_pending.load(Ordering::Relaxed) {
            return;
        }
        let mut out = Outbox::new();
        broadcast(srv, &mut self.state.lock(), &mut None, &mut out);
        send(srv, out);
    }

    /// Keeps the table within `tracking-table-max-keys`: drops keys (and
    /// tells their clients, as if the keys had changed) until it fits,
    /// with more effort each consecutive run that could not get there.
    pub fn enforce_limit(&self, srv: &Server, mut cur: Option<Current>) {
        let max = srv
            .config
            .num(crate::config::HOT.tracking_table_max_keys)
            .max(0) as usize;
        if max == 0 || self.key_count.load(Ordering::Relaxed) <= max {
            return;
        }
        let mut out = Outbox::new();
        {
            let mut st = self.state.lock();
            let st = &mut *st;
            if st.keys.len() <= max {
                st.limit_runs = 0;
                return;
            }
            let mut effort = 100 * (st.limit_runs as usize + 1);
            let current = cur.as_ref().map(|c| c.id);
            while st.keys.len() > max && effort > 0 {
                effort -= 1;
                let Some(k) = st.keys.keys().next().cloned() else {
                    break;
                };
                drop_key(srv, st, &k, current, None, &mut cur, &mut out);
            }
            if st.keys.len() > max {
                st.limit_runs += 1;
            } else {
                st.limit_runs = 0;
            }
            self.key_count.store(st.keys.len(), Ordering::Relaxed);
        }
        send(srv, out);
    }

    /// Turns tracking on (or changes its options) for a client.
    fn enable(&self, srv: &Server, handle: &Arc<ClientHandle>, t: &ClientTracking) {
        let mut st = self.state.lock();
        let st = &mut *st;
        let was = st
            .clients
            .insert(
                handle.id,
                Target {
                    handle: handle.clone(),
                    flags: t.flags,
                    redirect: t.redirect,
                },
            )
            .is_some();
        for p in &t.prefixes {
            let pf = st.prefixes.entry(p.clone()).or_default();
            if !pf.clients.contains(&handle.id) {
                pf.clients.push(handle.id);
            }
        }
        if !was {
            self.clients.fetch_add(1, Ordering::SeqCst);
            srv.update_expired_log();
        }
    }

    /// Turns tracking off for a client (CLIENT TRACKING OFF, RESET, close).
    /// Its ids stay in the key table and are skipped later, as in Redis.
    pub fn disable(&self, srv: &Server, id: u64, prefixes: &[Vec<u8>]) {
        let mut st = self.state.lock();
        let st = &mut *st;
        for p in prefixes {
            if let Some(pf) = st.prefixes.get_mut(p) {
                pf.clients.retain(|c| *c != id);
                if pf.clients.is_empty() {
                    st.prefixes.remove(p);
                }
            }
        }
        if st.clients.remove(&id).is_some() {
            self.clients.fetch_sub(1, Ordering::SeqCst);
            srv.update_expired_log();
        }
    }
}

/// Removes `key` from the table and invalidates it for its clients.
fn drop_key(
    srv: &Server,
    st: &mut State,
    key: &[u8],
    current: Option<u64>,
    mut pending: Option<&mut Pending>,
    cur: &mut Option<Current>,
    out: &mut Outbox,
) {
    let Some(ids) = st.keys.remove(key) else {
        return;
    };
    st.items -= ids.len() as u64;
    let mut msg: Option<Arc<Invalidation>> = None;
    for id in ids {
        let Some(t) = st.clients.get(&id) else {
            continue;
        };
        // A client that switched to BCAST no longer gets per-key messages.
        if t.flags & BCAST != 0 || (t.flags & NOLOOP != 0 && Some(id) == current) {
            continue;
        }
        if Some(id) == current {
            if let Some(p) = pending.as_deref_mut() {
                p.keys.push(Some(key.to_vec()));
                continue;
            }
        }
        let m = msg.get_or_insert_with(|| Arc::new(Invalidation::Keys(vec![key.to_vec()])));
        route(srv, &mut st.clients, id, m, cur, out);
    }
}

/// Sends (Redis's `sendTrackingMessage`) a message meant for tracking
/// client `id` to where it belongs: the client itself or its redirect
/// target. A vanished redirect target marks the client broken and tells it
/// so. A message for `cur` is written straight into its buffer.
fn route(
    srv: &Server,
    clients: &mut HashMap<u64, Target>,
    id: u64,
    msg: &Arc<Invalidation>,
    cur: &mut Option<Current>,
    out: &mut Outbox,
) {
    let Some(t) = clients.get_mut(&id) else {
        return;
    };
    let (to, redirected, msg) = if t.redirect != 0 {
        let worker = srv.clients.lock().get(&t.redirect).map(|h| h.worker);
        match worker {
            Some(w) => ((t.redirect, w), true, msg.clone()),
            None => {
                t.flags |= BROKEN;
                t.handle
                    .track_flags
                    .fetch_or(BROKEN, std::sync::atomic::Ordering::Relaxed);
                (
                    (id, t.handle.worker),
                    false,
                    Arc::new(Invalidation::RedirBroken(t.redirect)),
                )
            }
        }
    } else {
        ((id, t.handle.worker), false, msg.clone())
    };
    match cur {
        Some(c) if c.id == to.0 => msg.encode(c.out, c.proto, c.subscribed, redirected),
        _ => {
            let bytes = msg.wire_len();
            crate::server::memory::TRACKING_IN_TRANSIT.fetch_add(bytes, Ordering::Relaxed);
            out.push((
                to.1,
                WorkerMsg::Track {
                    client: to.0,
                    redirected,
                    msg,
                    bytes,
                },
            ))
        }
    }
}

/// Sends each prefix's changed keys to its clients (NOLOOP clients do not
/// get the keys they changed themselves).
fn broadcast(srv: &Server, st: &mut State, cur: &mut Option<Current>, out: &mut Outbox) {
    if !st.bcast_pending {
        return;
    }
    st.bcast_pending = false;
    srv.tracking.bcast_pending.store(false, Ordering::Relaxed);
    let batches: Vec<(BTreeMap<Vec<u8>, u64>, Vec<u64>)> = st
        .prefixes
        .values_mut()
        .filter(|p| !p.keys.is_empty())
        .map(|p| (std::mem::take(&mut p.keys), p.clients.clone()))
        .collect();
    for (keys, ids) in batches {
        let all = Arc::new(Invalidation::Keys(keys.keys().cloned().collect()));
        for id in ids {
            let noloop = st.clients.get(&id).is_some_and(|t| t.flags & NOLOOP != 0);
            if noloop {
                let mine: Vec<Vec<u8>> = keys
                    .iter()
                    .filter(|(_, w)| **w != id)
                    .map(|(k, _)| k.clone())
                    .collect();
                if !mine.is_empty() {
                    let m = Arc::new(Invalidation::Keys(mine));
                    route(srv, &mut st.clients, id, &m, cur, out);
                }
            } else {
                route(srv, &mut st.clients, id, &all, cur, out);
            }
        }
    }
}

fn send(srv: &Server, out: Outbox) {
    for (w, m) in out {
        srv.send_to_worker(w, m);
    }
}

/// After a read-only command: remembers its keys for the calling client
/// (unless it is in BCAST mode, or OPTIN/OPTOUT with CLIENT CACHING say
/// not to). Pub/Sub commands' "keys" are shard channels, never tracked.
pub fn remember_keys(ctx: &mut Ctx, cmd: &super::Command, argv: &[&[u8]]) {
    let f = ctx.client.tracking.flags;
    let caching = f & CACHING != 0;
    if f & BCAST != 0
        || (f & OPTIN != 0 && !caching)
        || (f & OPTOUT != 0 && caching)
        || cmd.has(super::flags::PUBSUB)
    {
        return;
    }
    let pos = cmd.key_positions_of(argv);
    if pos.is_empty() {
        return;
    }
    ctx.srv
        .tracking
        .remember(ctx.client.id(), pos.iter().map(|&p| argv[p]));
}

/// The end of a top-level command while some client tracks: the current
/// client's own invalidations follow its reply; then BCAST keys go out.
pub fn after_command(ctx: &mut Ctx) {
    let srv = ctx.srv;
    let mut pending = std::mem::take(&mut ctx.track);
    let cur = Current {
        id: ctx.client.id(),
        proto: ctx.client.proto,
        subscribed: ctx.client.subs.is_subscribed(),
        out: ctx.out,
    };
    srv.tracking.after_command(srv, &mut pending, Some(cur));
}

/// Before a command runs (Redis's `processCommand`): keeps the table
/// within its limit; messages for the calling client precede its reply.
pub fn before_command(ctx: &mut Ctx) {
    let cur = Current {
        id: ctx.client.id(),
        proto: ctx.client.proto,
        subscribed: ctx.client.subs.is_subscribed(),
        out: ctx.out,
    };
    ctx.srv.tracking.enforce_limit(ctx.srv, Some(cur));
}

/// Keys evicted to make room for the command about to run: their
/// invalidations reach the calling client before its reply, as in Redis.
pub fn evicted_before_reply(ctx: &mut Ctx, keys: &[Vec<u8>]) {
    for key in keys {
        let cur = Current {
            id: ctx.client.id(),
            proto: ctx.client.proto,
            subscribed: ctx.client.subs.is_subscribed(),
            out: ctx.out,
        };
        let id = cur.id;
        ctx.srv
            .tracking
            .modified_with(ctx.srv, key, Some(id), None, None, Some(cur));
    }
}

/// A key the current command changed (or found expired, `by_client`
/// false): invalidates it for the clients that may cache it.
pub fn key_modified(ctx: &mut Ctx, key: &[u8], by_client: bool) {
    let id = ctx.client.id();
    ctx.srv.tracking.modified(
        ctx.srv,
        key,
        Some(id),
        by_client.then_some(id),
        Some(&mut ctx.track),
    );
}

/// FLUSHDB/FLUSHALL: the null invalidation to every tracking client, and
/// an empty table (keys remembered for clients that turned tracking off
/// since go too, as in Redis).
pub fn flushed(ctx: &mut Ctx) {
    let t = &ctx.srv.tracking;
    if t.active() || t.key_count.load(Ordering::Relaxed) > 0 {
        let id = ctx.client.id();
        ctx.srv.tracking.flushed(ctx.srv, Some(id), &mut ctx.track);
    }
}

/// Turns the client's tracking off (CLIENT TRACKING OFF, RESET, close).
pub fn disable(srv: &Server, client: &mut crate::server::client::Client) {
    if client.tracking.flags & ON == 0 {
        return;
    }
    let t = std::mem::take(&mut client.tracking);
    srv.tracking.disable(srv, client.id(), &t.prefixes);
    client.handle.track_flags.store(0, Ordering::Relaxed);
}

/// Whether two prefixes would both match some key (one starts the other).
fn overlap(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP], with Redis's checks in Redis's order.
fn client_tracking(ctx: &mut Ctx, argv: &[&[u8]]) {
    let mut redirect: i64 = 0;
    let mut opts = 0u8;
    let mut prefixes: Vec<&[u8]> = Vec::new();
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = argv[j];
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if redirect != 0 {
                return ctx.error("ERR A client can only redirect to a single other client");
            }
            let Some(id) = strutil::parse_i64(argv[j]) else {
                return ctx.error(err::NOT_INT);
            };
            if id <= 0 || !ctx.srv.clients.lock().contains_key(&(id as u64)) {
                return ctx.error("ERR The client ID you want redirect to does not exist");
            }
            redirect = id;
        } else if a.eq_ignore_ascii_case(b"bcast") {
            opts |= BCAST;
        } else if a.eq_ignore_ascii_case(b"optin") {
            opts |= OPTIN;
        } else if a.eq_ignore_ascii_case(b"optout") {
            opts |= OPTOUT;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            opts |= NOLOOP;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(argv[j]);
        } else {
            return ctx.error(err::SYNTAX);
        }
        j += 1;
    }
    if argv[2].eq_ignore_ascii_case(b"off") {
        disable(ctx.srv, ctx.client);
        return ctx.ok();
    }
    if !argv[2].eq_ignore_ascii_case(b"on") {
        return ctx.error(err::SYNTAX);
    }
    let cur = ctx.client.tracking.flags;
    if opts & BCAST == 0 && !prefixes.is_empty() {
        return ctx.error("ERR PREFIX option requires BCAST mode to be enabled");
    }
    if cur & ON != 0 && (cur & BCAST) != (opts & BCAST) {
        return ctx.error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if opts & BCAST != 0 && opts & (OPTIN | OPTOUT) != 0 {
        return ctx.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
    }
    if opts & OPTIN != 0 && opts & OPTOUT != 0 {
        return ctx.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
    }
    if (opts & OPTIN != 0 && cur & OPTOUT != 0) || (opts & OPTOUT != 0 && cur & OPTIN != 0) {
        return ctx.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if opts & BCAST != 0 {
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(old) = ctx.client.tracking.prefixes.iter().find(|o| overlap(o, p)) {
                let e = format!("ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.", lossy(p), lossy(old));
                return ctx.error(&e);
            }
            if let Some(other) = prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
                let e = format!("ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.", lossy(p), lossy(other));
                return ctx.error(&e);
            }
        }
    }
    // Re-enabling keeps CACHING and adds prefixes; the other options are
    // replaced (Redis's enableTracking).
    let t = &mut ctx.client.tracking;
    t.flags = ON | opts | (t.flags & CACHING);
    t.redirect = redirect as u64;
    if opts & BCAST != 0 {
        let new: Vec<&[u8]> = if prefixes.is_empty() {
            vec![b""]
        } else {
            prefixes
        };
        for p in new {
            if !t.prefixes.iter().any(|o| o == p) {
                t.prefixes.push(p.to_vec());
            }
        }
        t.prefixes.sort();
    }
    let handle = ctx.client.handle.clone();
    handle
        .track_flags
        .store(ON | (opts & BCAST), Ordering::Relaxed);
    handle.track_redir.store(redirect, Ordering::Relaxed);
    ctx.srv
        .tracking
        .enable(ctx.srv, &handle, &ctx.client.tracking);
    ctx.ok();
}

fn client_caching(ctx: &mut Ctx, argv: &[&[u8]]) {
    let f = ctx.client.tracking.flags;
    if f & ON == 0 {
        return ctx.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    if argv[2].eq_ignore_ascii_case(b"yes") {
        if f & OPTIN == 0 {
            return ctx.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if argv[2].eq_ignore_ascii_case(b"no") {
        if f & OPTOUT == 0 {
            return ctx.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return ctx.error(err::SYNTAX);
    }
    ctx.client.tracking.flags |= CACHING;
    ctx.ok();
}

fn client_getredir(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let t = &ctx.client.tracking;
    let v = if t.flags & ON != 0 {
        t.redirect as i64
    } else {
        -1
    };
    ctx.r().int(v);
}

fn client_trackinginfo(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let t = &ctx.client.tracking;
    let broken = ctx.client.handle.track_flags.load(Ordering::Relaxed) & BROKEN != 0;
    let mut flags: Vec<&str> = vec![if t.flags & ON != 0 { "on" } else { "off" }];
    for (bit, name) in [(BCAST, "bcast"), (OPTIN, "optin")] {
        if t.flags & bit != 0 {
            flags.push(name);
        }
    }
    if t.flags & OPTIN != 0 && t.flags & CACHING != 0 {
        flags.push("caching-yes");
    }
    if t.flags & OPTOUT != 0 {
        flags.push("optout");
        if t.flags & CACHING != 0 {
            flags.push("caching-no");
        }
    }
    if t.flags & NOLOOP != 0 {
        flags.push("noloop");
    }
    if t.flags & ON != 0 && broken {
        flags.push("broken_redirect");
    }
    let redirect = if t.flags & ON != 0 {
        t.redirect as i64
    } else {
        -1
    };
    let prefixes = t.prefixes.clone();
    let mut r = ctx.r();
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(redirect);
    r.bulk(b"prefixes");
    r.array(prefixes.len());
    for p in &prefixes {
        r.bulk(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(m: &Invalidation, proto: Proto, sub: bool, redir: bool) -> String {
        let mut v = Vec::new();
        m.encode(&mut v, proto, sub, redir);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn invalidations_encode_per_protocol() {
        let k = Invalidation::Keys(vec![b"a".to_vec()]);
        assert_eq!(
            enc(&k, Proto::Resp3, false, false),
            ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n"
        );
        assert_eq!(enc(&k, Proto::Resp2, false, false), "");
        assert_eq!(enc(&k, Proto::Resp2, false, true), "");
        assert_eq!(
            enc(&Invalidation::All, Proto::Resp2, true, true),
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n"
        );
        assert_eq!(
            enc(&Invalidation::All, Proto::Resp3, true, true),
            ">2\r\n$10\r\ninvalidate\r\n_\r\n"
        );
        assert_eq!(
            enc(&Invalidation::RedirBroken(7), Proto::Resp3, false, false),
            ">2\r\n$21\r\ntracking-redir-broken\r\n:7\r\n"
        );
        assert_eq!(
            enc(&Invalidation::RedirBroken(7), Proto::Resp2, false, false),
            ""
        );
    }

    #[test]
    fn prefixes_overlap_when_one_starts_the_other() {
        assert!(overlap(b"FOO", b"FOOBAR"));
        assert!(overlap(b"FOOBAR", b"FOO"));
        assert!(overlap(b"", b"x"));
        assert!(!overlap(b"FOO", b"BAR"));
    }
}
