//! Pub/Sub (Redis's `pubsub.c`): SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE, their
//! UNSUBSCRIBE forms, PUBLISH/SPUBLISH and PUBSUB introspection.
//!
//! Subscriptions live in one server-wide [`Registry`] (channel -> clients,
//! patterns, shard channels). PUBLISH looks up the receivers, then sends
//! one message per receiving worker through its mailbox; that worker
//! encodes the message in each client's protocol (RESP2 array or RESP3
//! push) and writes it. Messages from one publisher arrive in order
//! because each worker's mailbox is FIFO.

use super::{err, Ctx, Handler, Registry as CmdRegistry};
use crate::server::{Server, WorkerMsg};
use parking_lot::RwLock;
use resp::Reply;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const TABLE: &str = "\
subscribe|pubsub|-2|2.0.0|pubsub,noscript,loading,stale,sentinel|-|-|Listens for messages published to channels.
unsubscribe|pubsub|-1|2.0.0|pubsub,noscript,loading,stale,sentinel|-|-|Stops listening to messages posted to channels.
psubscribe|pubsub|-2|2.0.0|pubsub,noscript,loading,stale,sentinel|-|-|Listens for messages published to channels that match one or more patterns.
punsubscribe|pubsub|-1|2.0.0|pubsub,noscript,loading,stale,sentinel|-|-|Stops listening to messages published to channels that match one or more patterns.
ssubscribe|pubsub|-2|7.0.0|pubsub,noscript,loading,stale|-|1,-1,1|Listens for messages published to shard channels.
sunsubscribe|pubsub|-1|7.0.0|pubsub,noscript,loading,stale|-|1,-1,1|Stops listening to messages posted to shard channels.
publish|pubsub|3|2.0.0|pubsub,loading,stale,fast,may_replicate,sentinel|-|-|Posts a message to a channel.
spublish|pubsub|3|7.0.0|pubsub,loading,stale,fast,may_replicate|-|1,1,1|Post a message to a shard channel
pubsub|pubsub|-2|2.8.0|-|-|-|A container for Pub/Sub commands.
pubsub|channels|pubsub|-2|2.8.0|pubsub,loading,stale|-|-|Returns the active channels.
pubsub|help|pubsub|2|6.2.0|loading,stale|-|-|Returns helpful text about the different subcommands.
pubsub|numpat|pubsub|2|2.8.0|pubsub,loading,stale|-|-|Returns a count of unique pattern subscriptions.
pubsub|numsub|pubsub|-2|2.8.0|pubsub,loading,stale|-|-|Returns a count of subscribers to channels.
pubsub|shardchannels|pubsub|-2|7.0.0|pubsub,loading,stale|-|-|Returns the active shard channels.
pubsub|shardnumsub|pubsub|-2|7.0.0|pubsub,loading,stale|-|-|Returns the count of subscribers of shard channels.
";

pub fn register(r: &mut CmdRegistry) {
    r.tables.push(TABLE);
    r.handlers.extend_from_slice(&[
        ("subscribe", subscribe as Handler),
        ("unsubscribe", unsubscribe),
        ("psubscribe", psubscribe),
        ("punsubscribe", punsubscribe),
        ("ssubscribe", ssubscribe),
        ("sunsubscribe", sunsubscribe),
        ("publish", publish),
        ("spublish", spublish),
        ("pubsub|channels", pubsub_channels),
        ("pubsub|shardchannels", pubsub_shardchannels),
        ("pubsub|numsub", pubsub_numsub),
        ("pubsub|shardnumsub", pubsub_shardnumsub),
        ("pubsub|numpat", pubsub_numpat),
        ("pubsub|help", pubsub_help),
    ]);
    // SSUBSCRIBE/SUNSUBSCRIBE name channels, not keys: nothing to lock.
    r.locksets.extend_from_slice(&[
        ("ssubscribe", no_locks as super::LockFn),
        ("sunsubscribe", no_locks),
        ("spublish", no_locks),
    ]);
}

fn no_locks(_: &[&[u8]], _: usize, _: &Server) -> super::LockSet {
    super::LockSet::Shards(Default::default())
}

/// The three kinds of subscription.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn sub_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    fn unsub_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

/// A message on its way to subscribers.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    /// The matching pattern, for pattern subscribers.
    pub pattern: Option<Vec<u8>>,
    pub channel: Vec<u8>,
    pub payload: Vec<u8>,
}

impl Message {
    /// Encodes the message for one client (RESP2 array or RESP3 push).
    pub fn encode(&self, out: &mut Vec<u8>, proto: resp::Proto) {
        let mut r = Reply::new(out, proto);
        match (&self.pattern, self.kind) {
            (Some(p), _) => {
                r.push(4);
                r.bulk(b"pmessage");
                r.bulk(p);
            }
            (None, Kind::Shard) => {
                r.push(3);
                r.bulk(b"smessage");
            }
            (None, _) => {
                r.push(3);
                r.bulk(b"message");
            }
        }
        r.bulk(&self.channel);
        r.bulk(&self.payload);
    }
}

/// A subscriber: client id and the worker that owns it.
type Sub = (u64, usize);

/// Every subscription on the server.
#[derive(Default)]
pub struct Registry {
    channels: RwLock<HashMap<Vec<u8>, Vec<Sub>>>,
    shard_channels: RwLock<HashMap<Vec<u8>, Vec<Sub>>>,
    patterns: RwLock<HashMap<Vec<u8>, Vec<Sub>>>,
}

impl Registry {
    fn map(&self, kind: Kind) -> &RwLock<HashMap<Vec<u8>, Vec<Sub>>> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard_channels,
        }
    }

    fn add(&self, kind: Kind, name: &[u8], sub: Sub) {
        self.map(kind)
            .write()
            .entry(name.to_vec())
            .or_default()
            .push(sub);
    }

    fn remove(&self, kind: Kind, name: &[u8], client: u64) {
        let mut m = self.map(kind).write();
        if let Some(v) = m.get_mut(name) {
            v.retain(|s| s.0 != client);
            if v.is_empty() {
                m.remove(name);
            }
        }
    }

    /// The subscriptions of the given clients: (client, kind, name). Used
    /// by the ACL to close subscribers that lost a channel.
    pub fn subscriptions_of(&self, ids: &[u64]) -> Vec<(u64, Kind, Vec<u8>)> {
        let mut out = Vec::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, subs) in self.map(kind).read().iter() {
                for s in subs.iter().filter(|s| ids.contains(&s.0)) {
                    out.push((s.0, kind, name.clone()));
                }
            }
        }
        out
    }

    pub fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }

    pub fn channel_count(&self) -> usize {
        self.channels.read().len()
    }

    pub fn shard_channel_count(&self) -> usize {
        self.shard_channels.read().len()
    }

    /// Delivers a message; returns how many subscriptions received it.
    pub fn publish(&self, srv: &Server, kind: Kind, channel: &[u8], payload: &[u8]) -> usize {
        let mut per_worker: HashMap<usize, Vec<(u64, Arc<Message>)>> = HashMap::new();
        let mut n = 0;
        let plain = Arc::new(Message {
            kind,
            pattern: None,
            channel: channel.to_vec(),
            payload: payload.to_vec(),
        });
        let map = if kind == Kind::Shard {
            &self.shard_channels
        } else {
            &self.channels
        };
        if let Some(subs) = map.read().get(channel) {
            for &(client, worker) in subs {
                per_worker
                    .entry(worker)
                    .or_default()
                    .push((client, plain.clone()));
                n += 1;
            }
        }
        if kind == Kind::Channel {
            for (pattern, subs) in self.patterns.read().iter() {
                if strutil::glob_match(pattern, channel, false) {
                    let m = Arc::new(Message {
                        kind,
                        pattern: Some(pattern.clone()),
                        channel: channel.to_vec(),
                        payload: payload.to_vec(),
                    });
                    for &(client, worker) in subs {
                        per_worker
                            .entry(worker)
                            .or_default()
                            .push((client, m.clone()));
                        n += 1;
                    }
                }
            }
        }
        for (worker, msgs) in per_worker {
            srv.send_to_worker(worker, WorkerMsg::Deliver(msgs));
        }
        n
    }

    /// Channels (or shard channels) matching an optional pattern.
    fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        self.map(kind)
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| strutil::glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.map(kind).read().get(name).map_or(0, |v| v.len())
    }
}

/// A client's own subscriptions.
#[derive(Default, Debug)]
pub struct ClientSubs {
    pub channels: Vec<Vec<u8>>,
    pub patterns: Vec<Vec<u8>>,
    pub shard: Vec<Vec<u8>>,
}

impl ClientSubs {
    fn list(&mut self, kind: Kind) -> &mut Vec<Vec<u8>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    /// The count Redis reports after (un)subscribing: channels + patterns,
    /// or shard channels for the shard kind.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }

    pub fn is_subscribed(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }
}

fn publish_counts(ctx: &Ctx) {
    let s = &ctx.client.subs;
    let h = &ctx.client.handle;
    h.sub.store(s.channels.len(), Ordering::Relaxed);
    h.psub.store(s.patterns.len(), Ordering::Relaxed);
    h.ssub.store(s.shard.len(), Ordering::Relaxed);
}

fn subscribe_generic(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) {
    let sub = (ctx.client.id(), ctx.client.handle.worker);
    for name in &argv[1..] {
        if !ctx.client.subs.list(kind).iter().any(|c| c == name) {
            ctx.client.subs.list(kind).push(name.to_vec());
            ctx.srv.pubsub.add(kind, name, sub);
        }
        let count = ctx.client.subs.count(kind);
        let mut r = ctx.r();
        r.push(3);
        r.bulk(kind.sub_word());
        r.bulk(name);
        r.int(count as i64);
    }
    publish_counts(ctx);
}

/// Unsubscribes from the named channels, or from all when none are named.
pub fn unsubscribe_generic(ctx: &mut Ctx, names: &[&[u8]], kind: Kind, reply: bool) {
    let id = ctx.client.id();
    let targets: Vec<Vec<u8>> = if names.is_empty() {
        ctx.client.subs.list(kind).clone()
    } else {
        names.iter().map(|n| n.to_vec()).collect()
    };
    if targets.is_empty() && reply {
        let count = ctx.client.subs.count(kind);
        let mut r = ctx.r();
        r.push(3);
        r.bulk(kind.unsub_word());
        r.null();
        r.int(count as i64);
    }
    for name in targets {
        let list = ctx.client.subs.list(kind);
        if let Some(p) = list.iter().position(|c| *c == name) {
            list.remove(p);
            ctx.srv.pubsub.remove(kind, &name, id);
        }
        if reply {
            let count = ctx.client.subs.count(kind);
            let mut r = ctx.r();
            r.push(3);
            r.bulk(kind.unsub_word());
            r.bulk(&name);
            r.int(count as i64);
        }
    }
    publish_counts(ctx);
}

/// Drops every subscription of a client (RESET, disconnect).
pub fn unsubscribe_all(srv: &Server, client: &mut crate::server::client::Client) {
    let id = client.id();
    for (kind, list) in [
        (Kind::Channel, std::mem::take(&mut client.subs.channels)),
        (Kind::Pattern, std::mem::take(&mut client.subs.patterns)),
        (Kind::Shard, std::mem::take(&mut client.subs.shard)),
    ] {
        for name in list {
            srv.pubsub.remove(kind, &name, id);
        }
    }
    client.handle.sub.store(0, Ordering::Relaxed);
    client.handle.psub.store(0, Ordering::Relaxed);
    client.handle.ssub.store(0, Ordering::Relaxed);
}

fn subscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    subscribe_generic(ctx, argv, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    subscribe_generic(ctx, argv, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    subscribe_generic(ctx, argv, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    unsubscribe_generic(ctx, &argv[1..], Kind::Channel, true)
}

fn punsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    unsubscribe_generic(ctx, &argv[1..], Kind::Pattern, true)
}

fn sunsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) {
    unsubscribe_generic(ctx, &argv[1..], Kind::Shard, true)
}

fn publish(ctx: &mut Ctx, argv: &[&[u8]]) {
    let n = ctx
        .srv
        .pubsub
        .publish(ctx.srv, Kind::Channel, argv[1], argv[2]);
    if ctx.srv.repl.propagate_only(ctx.srv, ctx.client.db, argv) {
        ctx.note_write_offset();
    }
    ctx.r().int(n as i64);
}

fn spublish(ctx: &mut Ctx, argv: &[&[u8]]) {
    let n = ctx
        .srv
        .pubsub
        .publish(ctx.srv, Kind::Shard, argv[1], argv[2]);
    if ctx.srv.repl.propagate_only(ctx.srv, ctx.client.db, argv) {
        ctx.note_write_offset();
    }
    ctx.r().int(n as i64);
}

fn names_reply(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) {
    if argv.len() > 3 {
        return ctx.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            String::from_utf8_lossy(&argv[..2].join(&b'|')).to_ascii_lowercase()
        ));
    }
    let names = ctx.srv.pubsub.names(kind, argv.get(2).copied());
    let mut r = ctx.r();
    r.array(names.len());
    for n in names {
        r.bulk(&n);
    }
}

fn pubsub_channels(ctx: &mut Ctx, argv: &[&[u8]]) {
    names_reply(ctx, argv, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx, argv: &[&[u8]]) {
    names_reply(ctx, argv, Kind::Shard)
}

fn numsub_reply(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) {
    let counts: Vec<usize> = argv[2..]
        .iter()
        .map(|c| ctx.srv.pubsub.count(kind, c))
        .collect();
    let mut r = ctx.r();
    r.map(counts.len());
    for (c, n) in argv[2..].iter().zip(counts) {
        r.bulk(c);
        r.int(n as i64);
    }
}

fn pubsub_numsub(ctx: &mut Ctx, argv: &[&[u8]]) {
    numsub_reply(ctx, argv, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx, argv: &[&[u8]]) {
    numsub_reply(ctx, argv, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let n = ctx.srv.pubsub.pattern_count();
    ctx.r().int(n as i64);
}

fn pubsub_help(ctx: &mut Ctx, _argv: &[&[u8]]) {
    super::introspect::help_reply(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
}

/// In RESP2, a subscribed client may only run these commands.
pub fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The error for other commands in RESP2 subscribed mode.
pub fn subscribed_error(name: &str) -> String {
    let _ = err::SYNTAX;
    format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    )
}
