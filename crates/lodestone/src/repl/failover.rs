//! FAILOVER: a master hands its role to one of its replicas (Redis 6.2's
//! coordinated failover).
//!
//! The master pauses writes and waits (`WAITING_FOR_SYNC`) until the
//! chosen replica, or any replica when none was named, has acknowledged
//! the whole stream. It then becomes a replica of it (`IN_PROGRESS`): its
//! link sends `PSYNC <replid> <offset> FAILOVER`, which makes the target
//! promote itself and continue our history, so we resync partially. The
//! pause ends when the target answers; a refusal, a timeout without FORCE
//! or FAILOVER ABORT undo everything.

use crate::persist::log;
use crate::server::{now_ms, Server};
use std::sync::atomic::Ordering;

/// No failover (INFO's `master_failover_state`).
pub const NONE: u8 = 0;
/// Writes paused, waiting for a replica to catch up.
pub const WAITING_FOR_SYNC: u8 = 1;
/// We are the target's replica and our PSYNC FAILOVER is under way.
pub const IN_PROGRESS: u8 = 2;

/// What FAILOVER asked for (Redis's failover_* server fields).
#[derive(Default)]
pub struct Failover {
    /// The target (host, port): named by TO, or the first replica found
    /// caught up.
    pub target: Option<(String, u16)>,
    /// When TIMEOUT runs out (ms, 0 = never).
    pub end_ms: u64,
    pub force: bool,
}

/// INFO's word for the state.
pub fn state_name(srv: &Server) -> &'static str {
    match srv.repl.failover_state.load(Ordering::SeqCst) {
        WAITING_FOR_SYNC => "waiting-for-sync",
        IN_PROGRESS => "failover-in-progress",
        _ => "no-failover",
    }
}

/// Whether a failover is under way (REPLICAOF and SYNC refuse then).
pub fn active(srv: &Server) -> bool {
    srv.repl.failover_state.load(Ordering::SeqCst) != NONE
}

/// Whether our link must ask its master to take over (PSYNC ... FAILOVER).
pub fn in_progress(srv: &Server) -> bool {
    srv.repl.failover_state.load(Ordering::SeqCst) == IN_PROGRESS
}

/// Forgets the failover and lifts its pause (Redis's clearFailoverState).
fn clear(srv: &Server, f: &mut Failover) {
    *f = Failover::default();
    srv.repl.failover_state.store(NONE, Ordering::SeqCst);
    srv.set_failover_pause(false);
}

/// Gives up (Redis's abortFailover): logs why, and when we had already
/// become the target's replica, becomes a master again.
pub fn abort(srv: &Server, why: &str) {
    let mut f = srv.repl.failover.lock();
    let state = srv.repl.failover_state.load(Ordering::SeqCst);
    if state == NONE {
        return;
    }
    match &f.target {
        Some((h, p)) => log(&format!("FAILOVER to {h}:{p} aborted: {why}")),
        None => log(&format!("FAILOVER to any replica aborted: {why}")),
    }
    if state == IN_PROGRESS {
        super::link::stop(srv);
    }
    clear(srv, &mut f);
}

/// The target answered our PSYNC FAILOVER: `accepted` (CONTINUE or
/// FULLRESYNC) ends the failover, anything else aborts it.
pub fn psync_answered(srv: &Server, accepted: bool) {
    if !in_progress(srv) {
        return;
    }
    if accepted {
        clear(srv, &mut srv.repl.failover.lock());
    } else {
        abort(srv, "Failover target rejected psync request");
    }
}

/// How FAILOVER was asked (parsed arguments).
pub struct Request {
    /// TO host port (the port as given: Redis takes any integer).
    pub target: Option<(String, i64)>,
    pub timeout_ms: u64,
    pub force: bool,
}

/// Starts a failover after the checks of Redis's failoverCommand, in its
/// order; Err is the error reply.
pub fn start(srv: &Server, req: Request) -> Result<(), &'static str> {
    let mut f = srv.repl.failover.lock();
    if srv.repl.failover_state.load(Ordering::SeqCst) != NONE {
        return Err("ERR FAILOVER already in progress.");
    }
    if srv.repl.is_replica() {
        return Err("ERR FAILOVER is not valid when server is a replica.");
    }
    {
        let m = srv.repl.master.lock();
        if m.replicas.is_empty() {
            return Err("ERR FAILOVER requires connected replicas.");
        }
        if req.force && (req.timeout_ms == 0 || req.target.is_none()) {
            return Err(
                "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
            );
        }
        if let Some((h, p)) = &req.target {
            let found = u16::try_from(*p)
                .ok()
                .and_then(|p| m.replicas.iter().find(|r| is_at(r, h, p)));
            let Some(r) = found else {
                return Err("ERR FAILOVER target HOST and PORT is not a replica.");
            };
            if !matches!(r.state, super::ReplicaState::Online) {
                return Err("ERR FAILOVER target replica is not online.");
            }
        }
    }
    match &req.target {
        Some((h, p)) => log(&format!("FAILOVER requested to {h}:{p}.")),
        None => log("FAILOVER requested to any replica."),
    }
    *f = Failover {
        // The port matched a replica's, so it fits.
        target: req.target.map(|(h, p)| (h, p as u16)),
        end_ms: if req.timeout_ms > 0 {
            now_ms().saturating_add(req.timeout_ms)
        } else {
            0
        },
        force: req.force,
    };
    srv.repl
        .failover_state
        .store(WAITING_FOR_SYNC, Ordering::SeqCst);
    // Writes, expiry and eviction wait: the offset stays still.
    srv.set_failover_pause(true);
    Ok(())
}

/// Whether replica `r` is the one at host:port (its announced or peer
/// address and its listening port; Redis's findReplica).
fn is_at(r: &super::Replica, host: &str, port: u16) -> bool {
    r.ip.eq_ignore_ascii_case(host) && r.port == port
}

/// Redis's updateFailoverStatus, from the replication cron and after
/// FAILOVER: times out (or forces), or fails over to a replica whose
/// acknowledged offset is ours.
pub fn update(srv: &Server) {
    if srv.repl.failover_state.load(Ordering::Relaxed) != WAITING_FOR_SYNC {
        return;
    }
    let mut f = srv.repl.failover.lock();
    if srv.repl.failover_state.load(Ordering::SeqCst) != WAITING_FOR_SYNC {
        return;
    }
    if f.end_ms != 0 && f.end_ms <= now_ms() {
        if f.force {
            if let Some((h, p)) = f.target.clone() {
                log(&format!(
                    "FAILOVER to {h}:{p} time out exceeded, failing over."
                ));
                become_replica_of(srv, &h, p);
            }
        } else {
            drop(f);
            abort(srv, "Replica never caught up before timeout");
        }
        return;
    }
    let synced = {
        let m = srv.repl.master.lock();
        let caught_up = |r: &&super::Replica| {
            matches!(r.state, super::ReplicaState::Online) && r.ack_offset == m.offset
        };
        match &f.target {
            Some((h, p)) => m
                .replicas
                .iter()
                .filter(|r| is_at(r, h, *p))
                .any(|r| caught_up(&r)),
            None => match m.replicas.iter().find(caught_up) {
                Some(r) => {
                    f.target = Some((r.ip.clone(), r.port));
                    true
                }
                None => false,
            },
        }
    };
    if synced {
        let (h, p) = f.target.clone().unwrap_or_default();
        log(&format!("Failover target {h}:{p} is synced, failing over."));
        become_replica_of(srv, &h, p);
    }
}

/// IN_PROGRESS: we replicate from the target; the link sends PSYNC
/// FAILOVER and reports the answer through [`psync_answered`].
fn become_replica_of(srv: &Server, host: &str, port: u16) {
    srv.repl.failover_state.store(IN_PROGRESS, Ordering::SeqCst);
    if let Some(arc) = srv.arc() {
        super::link::replicate_from(&arc, host, port);
    }
}

/// The replica side of PSYNC FAILOVER (in Redis's syncCommand): our
/// master asks us to take over its history. Err is the error reply.
pub fn take_over(srv: &Server, replid: &[u8], from: &str) -> Result<(), &'static str> {
    log(&format!(
        "Failover request received for replid {}.",
        String::from_utf8_lossy(replid)
    ));
    if !srv.repl.is_replica() {
        return Err("ERR PSYNC FAILOVER can't be sent to a master.");
    }
    if replid != srv.repl.master.lock().replid.as_bytes() {
        return Err("ERR PSYNC FAILOVER replid must match my replid.");
    }
    super::link::stop(srv);
    log(&format!(
        "MASTER MODE enabled (failover request from '{from}')"
    ));
    Ok(())
}
