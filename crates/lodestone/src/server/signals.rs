//! SIGTERM and SIGINT: Redis's graceful shutdown. The handler only records
//! the signal (nothing else is async-signal-safe); worker 0's timer notices
//! it and runs [`shutdown_on_signal`], which saves as `shutdown-on-sigterm`
//! / `shutdown-on-sigint` say (by default: when save points exist), syncs
//! the AOF and exits. A second SIGINT exits at once, as in Redis.

use super::Server;
use std::sync::atomic::{AtomicI32, Ordering};

/// The last shutdown signal received and not yet handled (0 = none).
static PENDING: AtomicI32 = AtomicI32::new(0);
/// Set once a signal asked for shutdown (a second SIGINT then exits).
static ASKED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    if ASKED.swap(1, Ordering::SeqCst) == 1 && sig == libc::SIGINT {
        const MSG: &[u8] = b"You insist... exiting now.\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe.
        unsafe {
            libc::write(2, MSG.as_ptr().cast(), MSG.len());
            libc::_exit(1);
        }
    }
    PENDING.store(sig, Ordering::SeqCst);
}

/// Installs the SIGTERM/SIGINT handlers (once, at startup).
pub fn install() {
    // SAFETY: the handler only touches atomics (and write/_exit), which is
    // allowed in a signal handler; the sigaction struct is fully set up.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut act.sa_mask);
        act.sa_flags = 0;
        libc::sigaction(libc::SIGTERM, &act, std::ptr::null_mut());
        libc::sigaction(libc::SIGINT, &act, std::ptr::null_mut());
    }
}

/// The signal waiting to be handled, if any (taking it).
pub fn take_pending() -> Option<i32> {
    match PENDING.swap(0, Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Handles a shutdown signal the way Redis's serverCron does: returns true
/// when the process must now exit (the caller flushes clients and exits),
/// false when saving failed and the server keeps running.
pub fn shutdown_on_signal(srv: &Server, sig: i32) -> bool {
    let (name, param) = if sig == libc::SIGINT {
        ("SIGINT", "shutdown-on-sigint")
    } else {
        ("SIGTERM", "shutdown-on-sigterm")
    };
    let log = crate::persist::log;
    if srv.persist.startup_loading.load(Ordering::SeqCst) {
        // Redis: a signal during loading exits without saving a partial set.
        log("Received shutdown signal during loading, scheduling shutdown.");
        return true;
    }
    log(&format!("Received {name} scheduling shutdown..."));
    let how = srv.config.get_str(param).to_ascii_lowercase();
    let words: Vec<&str> = how.split_whitespace().collect();
    let (nosave, save, force) = (
        words.contains(&"nosave"),
        words.contains(&"save"),
        words.contains(&"force"),
    );
    log("User requested shutdown...");
    if srv.aof.on.load(Ordering::SeqCst) {
        log("Calling fsync() on the AOF file.");
        srv.aof.write_pending(srv);
        srv.aof.fsync_now(srv);
    }
    if save || (!nosave && !crate::persist::save_points(srv).is_empty()) {
        log("Saving the final RDB snapshot before exiting.");
        if crate::persist::save(srv, None, srv.arc()).is_err() && !force {
            log("Error trying to save the DB, can't exit.");
            log(&format!(
                "{name} received but errors trying to shut down the server, check the logs for more information"
            ));
            ASKED.store(0, Ordering::SeqCst);
            return false;
        }
    }
    true
}
