//! Memory accounting: `used_memory` without a costly query per command.
//!
//! jemalloc keeps, for every thread, two monotonic counters: bytes ever
//! allocated and bytes ever freed by that thread (`thread.allocatedp` and
//! `thread.deallocatedp`, updated on its fast path anyway). Each long-lived
//! thread registers pointers to its own pair with [`register_thread`]; the
//! bytes in use are then the sum over threads of allocated - freed (memory
//! freed by another thread than the one that allocated it cancels out in
//! the sum). Reading it is a handful of loads, so the maxmemory check before
//! every command costs nothing measurable, and it counts everything the
//! process allocates: keys, values, tables, client query and reply buffers.
//! A thread that exits folds its final balance into `RETIRED`.

use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU64, Ordering};

/// Most threads that can register; later ones are counted through
/// jemalloc's global figure on the timer instead (see [`used`]).
const MAX_THREADS: usize = 64;

/// Registered threads' counter pairs: (bytes ever allocated, ever freed).
/// Readers never lock: the check before every command is a few loads.
static SLOTS: [(AtomicPtr<u64>, AtomicPtr<u64>); MAX_THREADS] = [const {
    (
        AtomicPtr::new(std::ptr::null_mut()),
        AtomicPtr::new(std::ptr::null_mut()),
    )
}; MAX_THREADS];
/// Slots in use are below this index.
static HIGH: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static REGISTER: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
/// Net bytes of threads that registered and have since exited.
static RETIRED: AtomicI64 = AtomicI64::new(0);
/// Bytes in use by buffers Redis leaves out of the eviction target
/// (replica output buffers and AOF buffers). Replication and AOF add and
/// subtract here; nothing else does.
pub static NOT_COUNTED: AtomicU64 = AtomicU64::new(0);
/// Client-side caching invalidations queued for clients of other workers
/// and not yet written to their sockets (estimated bytes). Not counted for
/// eviction: Redis writes them out before it reads the next command, but
/// here the next command on the evicting worker can check memory while the
/// receiving worker still holds them, and evict again for them.
pub static TRACKING_IN_TRANSIT: AtomicU64 = AtomicU64::new(0);
/// used_memory when the server finished starting (INFO used_memory_startup).
pub static STARTUP: AtomicU64 = AtomicU64::new(0);
/// Highest used_memory seen (INFO used_memory_peak), sampled on the timer
/// and whenever INFO or an eviction reads the figure.
pub static PEAK: AtomicU64 = AtomicU64::new(0);

/// Unregisters the thread when its thread-locals are destroyed (before
/// jemalloc's own per-thread cleanup, which runs from a pthread key).
struct Guard(usize);

impl Drop for Guard {
    fn drop(&mut self) {
        let _g = REGISTER.lock();
        let b = slot_balance(self.0);
        SLOTS[self.0]
            .0
            .store(std::ptr::null_mut(), Ordering::SeqCst);
        SLOTS[self.0]
            .1
            .store(std::ptr::null_mut(), Ordering::SeqCst);
        RETIRED.fetch_add(b, Ordering::SeqCst);
    }
}

thread_local! {
    static REGISTERED: std::cell::RefCell<Option<Guard>> = const { std::cell::RefCell::new(None) };
}

/// allocated - freed of one slot (0 if empty).
#[inline]
fn slot_balance(i: usize) -> i64 {
    let (a, d) = (
        SLOTS[i].0.load(Ordering::Acquire),
        SLOTS[i].1.load(Ordering::Acquire),
    );
    if a.is_null() || d.is_null() {
        return 0;
    }
    // SAFETY: the pointers target the owning thread's jemalloc counters,
    // live while the slot is set (a thread clears its slot before it
    // exits; only test threads ever exit). The owner writes them with
    // plain stores; an aligned 8-byte relaxed load sees a whole value.
    let (a, d) = unsafe {
        (
            AtomicU64::from_ptr(a).load(Ordering::Relaxed),
            AtomicU64::from_ptr(d).load(Ordering::Relaxed),
        )
    };
    a as i64 - d as i64
}

/// Adds the calling thread to the accounting (idempotent). Every thread
/// that lives long and allocates must call it: the workers do at start,
/// and so must future background threads (persistence, replication).
pub fn register_thread() {
    REGISTERED.with(|r| {
        if r.borrow().is_some() {
            return;
        }
        // SAFETY: these mallctls return pointers to the calling thread's
        // counters; reading them with the documented type is sound.
        let ptrs = unsafe {
            (
                tikv_jemalloc_ctl::raw::read::<*mut u64>(b"thread.allocatedp\0"),
                tikv_jemalloc_ctl::raw::read::<*mut u64>(b"thread.deallocatedp\0"),
            )
        };
        let (Ok(a), Ok(d)) = ptrs else { return };
        let _g = REGISTER.lock();
        let Some(i) = (0..MAX_THREADS).find(|&i| SLOTS[i].0.load(Ordering::SeqCst).is_null())
        else {
            return;
        };
        SLOTS[i].1.store(d, Ordering::SeqCst);
        SLOTS[i].0.store(a, Ordering::SeqCst);
        HIGH.fetch_max(i + 1, Ordering::SeqCst);
        *r.borrow_mut() = Some(Guard(i));
    });
}

/// Bytes allocated by the process right now (INFO used_memory). Falls back
/// to jemalloc's global figure if no thread registered (unit tests).
#[inline]
pub fn used() -> u64 {
    let n = HIGH.load(Ordering::Acquire);
    if n == 0 {
        return allocator_allocated();
    }
    let sum: i64 = (0..n).map(slot_balance).sum::<i64>() + RETIRED.load(Ordering::Relaxed);
    sum.max(0) as u64
}

/// Bytes the calling thread has freed so far (jemalloc's
/// `thread.deallocated`); the difference of two readings is what the code
/// in between freed, whatever other threads did meanwhile.
pub fn thread_freed() -> u64 {
    thread_local! {
        static PTR: Option<tikv_jemalloc_ctl::thread::ThreadLocal<u64>> =
            tikv_jemalloc_ctl::thread::deallocatedp::read().ok();
    }
    PTR.with(|p| p.map_or(0, |p| p.get()))
}

/// used_memory minus what Redis does not count for eviction.
pub fn used_for_eviction() -> u64 {
    used().saturating_sub(
        NOT_COUNTED.load(Ordering::Relaxed) + TRACKING_IN_TRANSIT.load(Ordering::Relaxed),
    )
}

/// Records a new peak if `used` is one; returns the peak.
pub fn note_peak(used: u64) -> u64 {
    PEAK.fetch_max(used, Ordering::Relaxed).max(used)
}

/// jemalloc's own allocated/active/resident/retained figures, refreshed
/// (epoch advance: takes arena locks, so for INFO and MEMORY only).
pub fn allocator_stats() -> (u64, u64, u64, u64) {
    use tikv_jemalloc_ctl::{epoch, stats};
    let _ = epoch::advance();
    (
        stats::allocated::read().unwrap_or(0) as u64,
        stats::active::read().unwrap_or(0) as u64,
        stats::resident::read().unwrap_or(0) as u64,
        stats::retained::read().unwrap_or(0) as u64,
    )
}

fn allocator_allocated() -> u64 {
    allocator_stats().0
}

/// The process's resident set size from /proc (INFO used_memory_rss).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * page_size())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// Physical memory of the machine (INFO total_system_memory).
pub fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    if pages > 0 {
        pages as u64 * page_size()
    } else {
        0
    }
}

/// `jemalloc-bg-thread`: whether jemalloc's background threads return
/// dirty pages to the system. Without them the purging (madvise of freed
/// extents, on jemalloc's decay schedule) runs inside whichever thread
/// happens to allocate or free, i.e. in the middle of a command.
pub fn set_background_thread(on: bool) {
    let mut v = on;
    // SAFETY: "background_thread" takes a bool.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"background_thread".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut v as *mut bool as *mut std::ffi::c_void,
            std::mem::size_of::<bool>(),
        );
    }
}

/// Returns dirty pages to the system (MEMORY PURGE).
pub fn purge() {
    let t = super::latency::Timer::start();
    // SAFETY: "arena.<MALLCTL_ARENAS_ALL>.purge" takes and returns nothing.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    t.end(super::latency::Ev::MemoryPurge);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counters_follow_allocations() {
        register_thread();
        let before = used();
        let v: Vec<u8> = Vec::with_capacity(8 << 20);
        let during = used();
        assert!(during >= before + (8 << 20) - 4096, "{before} {during}");
        // A buffer freed by another thread still balances out.
        let h = std::thread::spawn(move || {
            register_thread();
            drop(v);
        });
        h.join().unwrap();
        let after = used();
        assert!(after + (7 << 20) < during, "{during} {after}");
    }
}
