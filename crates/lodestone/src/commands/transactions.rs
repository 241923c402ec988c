//! MULTI/EXEC/DISCARD/WATCH/UNWATCH (Redis's `multi.c`).
//!
//! While queueing, commands are only checked (existence, arity). EXEC
//! computes the union of the shards every queued command needs (from the
//! same lock sets the dispatcher uses), plus the shards of watched keys,
//! locks them in ascending order, checks WATCH, and runs the queue with
//! the locks held, so the transaction is atomic and isolated across
//! threads. A write command marks watchers of its keys dirty while it
//! still holds its shard locks, which is what makes the WATCH check exact.

use super::{lockset_for, run_command, Ctx, Handler, LockSet, Registry};
use crate::keyspace::{shard_of, ShardId};
use crate::server::client::Queued;
use std::sync::atomic::Ordering;

pub fn register(r: &mut Registry) {
    let v = &mut r.handlers;
    v.extend_from_slice(&[
        ("multi", multi as Handler),
        ("exec", exec),
        ("discard", discard),
        ("watch", watch),
        ("unwatch", unwatch),
    ]);
}

fn multi(ctx: &mut Ctx, _argv: &[&[u8]]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.client.handle.multi.store(0, Ordering::Relaxed);
    ctx.ok();
}

/// Leaves MULTI state and forgets watched keys.
pub(crate) fn end_transaction(ctx: &mut Ctx) {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    ctx.client.handle.multi.store(-1, Ordering::Relaxed);
    unwatch_all(ctx);
}

fn discard(ctx: &mut Ctx, _argv: &[&[u8]]) {
    if ctx.client.multi.is_none() {
        return ctx.error("ERR DISCARD without MULTI");
    }
    end_transaction(ctx);
    ctx.ok();
}

fn exec(ctx: &mut Ctx, _argv: &[&[u8]]) {
    let Some(queue) = ctx.client.multi.take() else {
        return ctx.error("ERR EXEC without MULTI");
    };
    if ctx.client.multi_error {
        end_transaction(ctx);
        return ctx.error("EXECABORT Transaction discarded because of previous errors.");
    }
    let srv = ctx.srv;
    // The shards the whole transaction needs.
    let mut ids: Vec<ShardId> = Vec::new();
    let mut all = false;
    let mut db = ctx.client.db;
    for q in &queue {
        let argv: Vec<&[u8]> = q.argv.iter().map(|a| a.as_slice()).collect();
        let Ok(cmd) = srv.commands.resolve(&argv) else {
            continue;
        };
        match lockset_for(srv, cmd, &argv, db) {
            LockSet::Shards(v) => ids.extend(v),
            LockSet::All => all = true,
        }
        if cmd.name == "select" {
            if let Some(n) = strutil::parse_i64(argv[1])
                .filter(|n| *n >= 0 && (*n as usize) < srv.keyspace.db_count())
            {
                db = n as usize;
            }
        }
    }
    for (wdb, key, _) in &ctx.client.watched {
        ids.push((*wdb as u32, shard_of(key) as u32));
    }
    // A called handler must not release the transaction's locks.
    let outer = ctx.locks.holds_any();
    if !outer {
        if all {
            let dbs: Vec<usize> = (0..srv.keyspace.db_count()).collect();
            ctx.locks.acquire_all(&dbs);
        } else {
            ctx.locks.acquire(&mut ids);
        }
    }
    let dirty = ctx.client.handle.watch_dirty.load(Ordering::SeqCst) || expired_watched_key(ctx);
    if dirty {
        if !outer {
            ctx.release_locks();
        }
        end_transaction(ctx);
        return ctx.r().null_array();
    }
    ctx.client.handle.multi.store(-1, Ordering::Relaxed);
    ctx.in_exec = true;
    ctx.r().array(queue.len());
    for Queued { argv } in &queue {
        let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
        let start = ctx.out.len();
        match srv.commands.resolve(&argv) {
            // ACL rules may have changed since the command was queued.
            Ok(cmd) => match crate::commands::acl::exec_recheck(ctx, cmd, &argv) {
                Ok(()) => run_command(ctx, cmd, &argv, start),
                Err(e) => ctx.error(&e),
            },
            Err(e) => ctx.error(&e),
        }
    }
    ctx.in_exec = false;
    if !outer {
        ctx.release_locks();
        if !ctx.ready.is_empty() {
            super::blocking::signal_ready(ctx);
        }
    }
    end_transaction(ctx);
}

/// A watched key that existed when watched and has since expired counts
/// as modified (Redis 7 behaviour).
fn expired_watched_key(ctx: &mut Ctx) -> bool {
    let now = ctx.now_ms;
    let watched = ctx.client.watched.clone();
    watched.iter().any(|(db, key, existed)| {
        *existed == 1 && {
            let sh = ctx.locks.shard(*db, key);
            sh.peek(key).is_none_or(|e| e.is_expired(now))
        }
    })
}

fn watch(ctx: &mut Ctx, argv: &[&[u8]]) {
    if ctx.client.multi.is_some() {
        return ctx.error("ERR WATCH inside MULTI is not allowed");
    }
    let (db, now) = (ctx.client.db, ctx.now_ms);
    for key in &argv[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k, _)| *d == db && k.as_slice() == *key)
        {
            continue;
        }
        let exists = ctx
            .locks
            .shard(db, key)
            .peek(key)
            .is_some_and(|e| !e.is_expired(now));
        ctx.client.watched.push((db, key.to_vec(), exists as u64));
        ctx.srv.watch_add(db, key, &ctx.client.handle);
    }
    ctx.ok();
}

fn unwatch_all(ctx: &mut Ctx) {
    let watched = std::mem::take(&mut ctx.client.watched);
    for (db, key, _) in watched {
        ctx.srv.watch_remove(db, &key, ctx.client.handle.id);
    }
    ctx.client.handle.watch_dirty.store(false, Ordering::SeqCst);
}

fn unwatch(ctx: &mut Ctx, _argv: &[&[u8]]) {
    unwatch_all(ctx);
    ctx.ok();
}
