//! Latency instruments: Redis's latency monitor (LATENCY LATEST/HISTORY/
//! GRAPH/DOCTOR/RESET), the per-command latency histograms of LATENCY
//! HISTOGRAM and INFO latencystats, and our own stall histograms.
//!
//! Monitored events (`latency-monitor-threshold` ms, 0 = off) keep Redis's
//! 160-sample series per event, one sample per second (the worst). The
//! same timing calls also feed the stall histograms, which count every
//! occurrence in log2 µs buckets (wall clock, and the thread's CPU time
//! while `DEBUG STALLS CPU 1` is on), so sub-millisecond stalls of the
//! event loop, the cron or table growth can be told from scheduling noise.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Samples kept per event (Redis's LATENCY_TS_LEN).
pub const TS_LEN: usize = 160;

/// Events timed by the server: Redis's names for the ones Redis has, our
/// own for internal steps (`worker-pass`, `cron`, `table-growth` ...).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ev {
    Command,
    FastCommand,
    ExpireCycle,
    ExpireDel,
    EvictionCycle,
    EvictionDel,
    AofWrite,
    AofFsyncAlways,
    /// One pass of a worker's event loop (everything between two polls).
    WorkerPass,
    /// A worker's timer work (expiry, eviction, stats, persistence).
    Cron,
    /// Starting a shard table's migration (allocating the larger half).
    TableGrowth,
    /// Purging jemalloc's dirty pages (RSS guard, MEMORY PURGE).
    MemoryPurge,
    /// One request of a connection's input, dispatch to reply (timed only
    /// while DEBUG STALLS CPU is on; work = table migration steps taken).
    Request,
}

const EVENTS: usize = 13;

impl Ev {
    pub const ALL: [Ev; EVENTS] = [
        Ev::Command,
        Ev::FastCommand,
        Ev::ExpireCycle,
        Ev::ExpireDel,
        Ev::EvictionCycle,
        Ev::EvictionDel,
        Ev::AofWrite,
        Ev::AofFsyncAlways,
        Ev::WorkerPass,
        Ev::Cron,
        Ev::TableGrowth,
        Ev::MemoryPurge,
        Ev::Request,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Ev::Command => "command",
            Ev::FastCommand => "fast-command",
            Ev::ExpireCycle => "expire-cycle",
            Ev::ExpireDel => "expire-del",
            Ev::EvictionCycle => "eviction-cycle",
            Ev::EvictionDel => "eviction-del",
            Ev::AofWrite => "aof-write",
            Ev::AofFsyncAlways => "aof-fsync-always",
            Ev::WorkerPass => "worker-pass",
            Ev::Cron => "cron",
            Ev::TableGrowth => "table-growth",
            Ev::MemoryPurge => "memory-purge",
            Ev::Request => "request",
        }
    }
}

/// `latency-monitor-threshold` in ms (0 = monitor off), set by
/// `Server::apply_config`.
static THRESHOLD_MS: AtomicU64 = AtomicU64::new(0);
/// `latency-tracking`: whether commands feed their histograms.
pub static TRACKING: AtomicBool = AtomicBool::new(true);

/// Stores the configuration this module reads on hot paths.
pub fn configure(threshold_ms: i64, tracking: bool) {
    THRESHOLD_MS.store(threshold_ms.max(0) as u64, Relaxed);
    TRACKING.store(tracking, Relaxed);
}

pub fn threshold_ms() -> u64 {
    THRESHOLD_MS.load(Relaxed)
}

// ---------------------------------------------------------------- monitor

/// One event's samples: a ring of (unix seconds, ms), as Redis's
/// latencyTimeSeries.
struct Series {
    name: String,
    idx: usize,
    max: u64,
    samples: [(u64, u64); TS_LEN],
}

static MONITOR: Mutex<Vec<Series>> = Mutex::new(Vec::new());

fn unix_now() -> u64 {
    super::now_ms() / 1000
}

/// Adds a sample when the monitor is on and `ms` reaches the threshold
/// (Redis's latencyAddSampleIfNeeded).
pub fn add_sample_if_needed(event: &str, ms: u64) {
    let t = THRESHOLD_MS.load(Relaxed);
    if t != 0 && ms >= t {
        add_sample(event, ms, unix_now());
    }
}

/// Records `ms` for `event` at `now` (seconds): a second sample within
/// the same second only raises that second's value.
pub fn add_sample(event: &str, ms: u64, now: u64) {
    let mut m = MONITOR.lock();
    let i = match m.iter().position(|s| s.name == event) {
        Some(i) => i,
        None => {
            m.push(Series {
                name: event.to_string(),
                idx: 0,
                max: 0,
                samples: [(0, 0); TS_LEN],
            });
            m.len() - 1
        }
    };
    let s = &mut m[i];
    s.max = s.max.max(ms);
    let prev = (s.idx + TS_LEN - 1) % TS_LEN;
    if s.samples[prev].0 == now {
        s.samples[prev].1 = s.samples[prev].1.max(ms);
        return;
    }
    s.samples[s.idx] = (now, ms);
    s.idx = (s.idx + 1) % TS_LEN;
}

/// Forgets the named events (case-insensitively), or all of them.
/// Returns how many were reset.
pub fn reset(events: &[&[u8]]) -> usize {
    let mut m = MONITOR.lock();
    if events.is_empty() {
        let n = m.len();
        m.clear();
        return n;
    }
    let mut n = 0;
    for e in events {
        let before = m.len();
        m.retain(|s| !s.name.as_bytes().eq_ignore_ascii_case(e));
        n += before - m.len();
    }
    n
}

/// Per event: (name, time of the last sample, its latency, all-time max).
pub fn latest() -> Vec<(String, u64, u64, u64)> {
    MONITOR
        .lock()
        .iter()
        .map(|s| {
            let last = s.samples[(s.idx + TS_LEN - 1) % TS_LEN];
            (s.name.clone(), last.0, last.1, s.max)
        })
        .collect()
}

/// The event's samples, oldest first, or None if it has none.
pub fn history(event: &[u8]) -> Option<Vec<(u64, u64)>> {
    let m = MONITOR.lock();
    let s = m.iter().find(|s| s.name.as_bytes() == event)?;
    Some(ordered(s))
}

fn ordered(s: &Series) -> Vec<(u64, u64)> {
    (0..TS_LEN)
        .map(|j| s.samples[(s.idx + j) % TS_LEN])
        .filter(|x| x.0 != 0)
        .collect()
}

/// LATENCY GRAPH's text: a header and an 80-column sparkline of the
/// samples, labelled with how long ago each happened. None if the event
/// has no samples.
pub fn graph(event: &[u8]) -> Option<String> {
    let (name, samples, all_max) = {
        let m = MONITOR.lock();
        let s = m.iter().find(|s| s.name.as_bytes() == event)?;
        (s.name.clone(), ordered(s), s.max)
    };
    let now = unix_now() as i64;
    let mut seq = Sparkline::default();
    let (mut lo, mut hi) = (0, 0);
    for (i, &(t, v)) in samples.iter().enumerate() {
        if i == 0 {
            (lo, hi) = (v, v);
        } else {
            hi = hi.max(v);
            lo = lo.min(v);
        }
        let ago = now - t as i64;
        let label = if ago < 60 {
            format!("{ago}s")
        } else if ago < 3600 {
            format!("{}m", ago / 60)
        } else if ago < 86400 {
            format!("{}h", ago / 3600)
        } else {
            format!("{}d", ago / 86400)
        };
        seq.add(v as f64, label);
    }
    let mut g = format!("{name} - high {hi} ms, low {lo} ms (all time high {all_max} ms)\n");
    g.push_str(&"-".repeat(80));
    g.push('\n');
    seq.render(&mut g, 80, 4);
    Some(g)
}

/// Redis's sparkline (sparkline.c) in its filled form: `rows` text rows of
/// `_o#|` per column, then the labels written vertically.
#[derive(Default)]
struct Sparkline {
    samples: Vec<(f64, String)>,
    labels: usize,
    min: f64,
    max: f64,
}

impl Sparkline {
    fn add(&mut self, v: f64, label: String) {
        if self.samples.is_empty() {
            (self.min, self.max) = (v, v);
        } else if v < self.min {
            self.min = v;
        } else if v > self.max {
            // (sparkline.c's `else if`: a sample below min never raises max)
            self.max = v;
        }
        if !label.is_empty() {
            self.labels += 1;
        }
        self.samples.push((v, label));
    }

    fn render(&self, out: &mut String, columns: usize, rows: usize) {
        let mut j = 0;
        while j < self.samples.len() {
            let len = (self.samples.len() - j).min(columns);
            if j != 0 {
                out.push('\n');
            }
            self.render_range(out, rows, j, len);
            j += columns;
        }
    }

    fn render_range(&self, out: &mut String, rows: usize, offset: usize, len: usize) {
        const FILL: &[u8] = b"_o#";
        let mut relmax = self.max - self.min;
        if relmax == 0.0 {
            relmax = 1.0;
        }
        let steps = (FILL.len() * rows) as i64;
        let mut row = 0usize;
        loop {
            let mut more = false;
            let mut chars = vec![b' '; len];
            for (j, c) in chars.iter_mut().enumerate() {
                let (v, label) = &self.samples[j + offset];
                let relval = v - self.min;
                let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    more = true;
                    let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                    if idx >= 0 && (idx as usize) < FILL.len() {
                        *c = FILL[idx as usize];
                    } else if idx >= FILL.len() as i64 {
                        *c = b'|';
                    }
                } else {
                    // One blank row between the graph and the labels.
                    if self.labels > 0 && row - rows < 1 {
                        more = true;
                        break;
                    }
                    let k = row - rows - 1;
                    if let Some(&b) = label.as_bytes().get(k) {
                        more = true;
                        *c = b;
                    }
                }
            }
            if !more {
                break;
            }
            row += 1;
            out.push_str(&String::from_utf8_lossy(&chars));
            out.push('\n');
        }
    }
}

/// What LATENCY DOCTOR needs from the server besides the samples.
pub struct DoctorEnv {
    pub slowlog_slower_than: i64,
    pub hz: i64,
    pub fsync_always: bool,
}

/// LATENCY DOCTOR's report (Redis's createLatencyReport).
pub fn doctor(env: &DoctorEnv) -> String {
    let m = MONITOR.lock();
    let thr = THRESHOLD_MS.load(Relaxed);
    if m.is_empty() && thr == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let now = unix_now();
    let mut r = String::new();
    #[derive(Default)]
    struct Adv {
        slowlog_enabled: bool,
        slowlog_tuning: bool,
        slowlog_inspect: bool,
        scheduler: bool,
        data_writeback: bool,
        local_disk: bool,
        ssd: bool,
        disk_contention: bool,
        relax_fsync: bool,
        hz: bool,
        large_objects: bool,
        mass_eviction: bool,
    }
    let mut a = Adv::default();
    let mut advices = 0;
    for (n, s) in m.iter().enumerate() {
        if n == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let v = ordered(s);
        let count = v.len() as u64;
        let (mut avg, mut mad, mut period) = (0u64, 0u64, 0u64);
        if let Some(a) = v.iter().map(|x| x.1).sum::<u64>().checked_div(count) {
            avg = a;
            let oldest = v.iter().map(|x| x.0).min().unwrap_or(now);
            period = now.saturating_sub(oldest).max(1);
            mad = v
                .iter()
                .map(|x| (avg as i64 - x.1 as i64).unsigned_abs())
                .sum::<u64>()
                / count;
        }
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            s.name,
            count,
            avg,
            mad,
            period as f64 / count as f64,
            s.max
        ));
        match s.name.as_str() {
            "command" => {
                if env.slowlog_slower_than < 0 {
                    a.slowlog_enabled = true;
                    advices += 1;
                } else if (env.slowlog_slower_than / 1000) as u64 > thr {
                    a.slowlog_tuning = true;
                    advices += 1;
                }
                a.slowlog_inspect = true;
                a.large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                a.scheduler = true;
                advices += 1;
            }
            "aof-write" | "aof-write-alone" => {
                a.local_disk = true;
                a.data_writeback = true;
                a.ssd = true;
                advices += 3;
            }
            "aof-fsync-always" => {
                a.relax_fsync = true;
                advices += 1;
            }
            "expire-cycle" => {
                a.hz = true;
                a.large_objects = true;
                advices += 2;
            }
            "eviction-del" => {
                a.large_objects = true;
                advices += 1;
            }
            "eviction-cycle" => {
                a.mass_eviction = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    let events = m.len();
    drop(m);
    if events == 0 && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return r;
    }
    if advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return r;
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if a.slowlog_enabled {
        r.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", thr * 1000));
    }
    if a.slowlog_tuning {
        r.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", thr * 1000));
    }
    if a.slowlog_inspect {
        r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if a.scheduler {
        r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if a.local_disk {
        r.push_str("- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote disks provided by platform-as-a-service providers are known to be slow.\n");
    }
    if a.ssd {
        r.push_str("- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log rewriting (resulting in smaller memory usage). With extremely high write load SSD disks can be a good option. However Redis should perform reasonably with high load using normal disks. Use this advice as a last resort.\n");
    }
    if a.data_writeback {
        r.push_str("- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to data=ordered, however this mode of operation provides less guarantees, and sometimes it can happen that after a hard crash the AOF file will have a half-written command at the end and will require to be repaired before Redis restarts.\n");
    }
    if a.disk_contention {
        r.push_str("- Try to lower the disk contention. This is often caused by other disk intensive processes running in the same computer (including other Redis instances).\n");
    }
    if a.relax_fsync && env.fsync_always {
        r.push_str("- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n");
    }
    if a.hz && env.hz < 100 {
        r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if a.large_objects {
        r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if a.mass_eviction {
        r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
    }
    r
}

// ------------------------------------------------------- stall histograms

/// Log2 µs buckets: bucket b counts durations below 2^b µs (b = 0: under
/// 1 µs); the last one holds everything longer.
const STALL_BUCKETS: usize = 24;

struct StallHist {
    wall: [AtomicU64; STALL_BUCKETS],
    cpu: [AtomicU64; STALL_BUCKETS],
    wall_max: AtomicU64,
    cpu_max: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: StallHist = StallHist {
    wall: [ZERO; STALL_BUCKETS],
    cpu: [ZERO; STALL_BUCKETS],
    wall_max: ZERO,
    cpu_max: ZERO,
};
static STALLS: [StallHist; EVENTS] = [EMPTY; EVENTS];
/// Whether timings also read the thread's CPU clock (a system call).
static CPU_CLOCK: AtomicBool = AtomicBool::new(false);

fn bucket(us: u64) -> usize {
    ((64 - us.leading_zeros()) as usize).min(STALL_BUCKETS - 1)
}

/// This thread's CPU time in µs.
pub fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec pointer for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// This thread's (minor page faults, involuntary context switches).
fn thread_faults_switches() -> (u64, u64) {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_minflt as u64, ru.ru_nivcsw as u64)
}

/// The worst occurrences of one event by CPU time, with what explains
/// them: page faults taken, and involuntary context switches (a step that
/// was preempted: its wall time is the scheduler's, not ours).
#[derive(Clone, Copy, Default)]
struct Worst {
    cpu: u64,
    wall: u64,
    faults: u64,
    preempted: u64,
    /// What the step did (for a worker pass: commands run, bytes read).
    work: (u64, u64),
}

const WORST: usize = 5;
static WORSTS: Mutex<[[Worst; WORST]; EVENTS]> = Mutex::new(
    [[Worst {
        cpu: 0,
        wall: 0,
        faults: 0,
        preempted: 0,
        work: (0, 0),
    }; WORST]; EVENTS],
);

/// The start of a timed step: wall clock, and CPU clock, page faults and
/// context switches when enabled.
#[derive(Clone, Copy)]
pub struct Timer {
    wall: Instant,
    cpu: u64,
    faults: u64,
    preempted: u64,
}

impl Timer {
    #[inline]
    pub fn start() -> Timer {
        Timer::start_at(Instant::now())
    }

    /// [`Timer::start`] with a clock reading the caller just took.
    #[inline]
    pub fn start_at(wall: Instant) -> Timer {
        let mut t = Timer {
            wall,
            cpu: 0,
            faults: 0,
            preempted: 0,
        };
        if CPU_CLOCK.load(Relaxed) {
            (t.faults, t.preempted) = thread_faults_switches();
            t.cpu = thread_cpu_us();
        }
        t
    }

    /// Ends the step: counts it in `ev`'s stall histogram and offers it to
    /// the latency monitor. Returns the wall time in µs.
    #[inline]
    pub fn end(self, ev: Ev) -> u64 {
        self.end_work(ev, (0, 0))
    }

    /// [`Timer::end`], with what the step did for DEBUG STALLS's list of
    /// the worst occurrences.
    #[inline]
    pub fn end_work(self, ev: Ev, work: (u64, u64)) -> u64 {
        self.end_work_at(Instant::now(), ev, work)
    }

    /// [`Timer::end_work`] with a clock reading the caller just took.
    #[inline]
    pub fn end_work_at(self, now: Instant, ev: Ev, work: (u64, u64)) -> u64 {
        let us = now.saturating_duration_since(self.wall).as_micros() as u64;
        let h = &STALLS[ev as usize];
        h.wall[bucket(us)].fetch_add(1, Relaxed);
        // A load first: the locked update only when the maximum moves.
        if us > h.wall_max.load(Relaxed) {
            h.wall_max.fetch_max(us, Relaxed);
        }
        if self.cpu != 0 {
            let cpu = thread_cpu_us().saturating_sub(self.cpu);
            h.cpu[bucket(cpu)].fetch_add(1, Relaxed);
            h.cpu_max.fetch_max(cpu, Relaxed);
            let mut w = WORSTS.lock();
            let list = &mut w[ev as usize];
            if cpu > list[WORST - 1].cpu {
                let (f, p) = thread_faults_switches();
                list[WORST - 1] = Worst {
                    cpu,
                    wall: us,
                    faults: f - self.faults,
                    preempted: p - self.preempted,
                    work,
                };
                list.sort_by_key(|w| std::cmp::Reverse(w.cpu));
            }
        }
        add_sample_if_needed(ev.name(), us / 1000);
        us
    }
}

/// DEBUG STALLS CPU 0|1.
pub fn set_cpu_clock(on: bool) {
    CPU_CLOCK.store(on, Relaxed);
}

/// Whether DEBUG STALLS CPU is on (steps timed only for diagnosis check).
#[inline]
pub fn cpu_clock_on() -> bool {
    CPU_CLOCK.load(Relaxed)
}

/// DEBUG STALLS RESET.
pub fn reset_stalls() {
    for h in &STALLS {
        for b in h.wall.iter().chain(h.cpu.iter()) {
            b.store(0, Relaxed);
        }
        h.wall_max.store(0, Relaxed);
        h.cpu_max.store(0, Relaxed);
    }
    *WORSTS.lock() = Default::default();
}

/// DEBUG STALLS: one line per timed event that occurred, with its count,
/// maximum and `<=N:count` buckets (µs; wall, then CPU when measured).
pub fn stalls_report() -> String {
    let mut out = String::new();
    for ev in Ev::ALL {
        let h = &STALLS[ev as usize];
        let line = |b: &[AtomicU64; STALL_BUCKETS]| {
            let mut s = String::new();
            for (i, c) in b.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    if i == STALL_BUCKETS - 1 {
                        s.push_str(&format!(" >{}:{n}", 1u64 << (i - 1)));
                    } else {
                        s.push_str(&format!(" <{}:{n}", 1u64 << i));
                    }
                }
            }
            s
        };
        let count: u64 = h.wall.iter().map(|c| c.load(Relaxed)).sum();
        if count == 0 {
            continue;
        }
        out.push_str(&format!(
            "{} count={} wall_max_us={} wall_us:{}\n",
            ev.name(),
            count,
            h.wall_max.load(Relaxed),
            line(&h.wall)
        ));
        let cpu: u64 = h.cpu.iter().map(|c| c.load(Relaxed)).sum();
        if cpu > 0 {
            out.push_str(&format!(
                "{} cpu_count={} cpu_max_us={} cpu_us:{}\n",
                ev.name(),
                cpu,
                h.cpu_max.load(Relaxed),
                line(&h.cpu)
            ));
            let w = WORSTS.lock()[ev as usize];
            let list: Vec<String> = w
                .iter()
                .filter(|x| x.cpu > 0)
                .map(|x| {
                    format!(
                        "cpu={}/wall={}/faults={}/preempted={}/work={},{}",
                        x.cpu, x.wall, x.faults, x.preempted, x.work.0, x.work.1
                    )
                })
                .collect();
            out.push_str(&format!("{} worst: {}\n", ev.name(), list.join(" ")));
        }
    }
    out
}

// ------------------------------------------------- command histograms

/// An HdrHistogram of command durations in ns (1 ns .. 1 s, 2 significant
/// digits), laid out as Redis's hdr_histogram so that LATENCY HISTOGRAM's
/// buckets and INFO's percentiles come out as Redis's.
pub struct Histogram {
    counts: Box<[AtomicU64]>,
}

const HALF_MAG: u32 = 7; // sub-bucket half count 128 (2 digits)
const HALF: i64 = 1 << HALF_MAG;
const SUB_MASK: i64 = 255;
const BUCKETS: usize = 23; // 256 << 22 > 1e9
const COUNTS_LEN: usize = (BUCKETS + 1) * HALF as usize;
pub const MIN_NS: i64 = 1;
pub const MAX_NS: i64 = 1_000_000_000;

fn bucket_index(v: i64) -> i64 {
    let pow2ceiling = 64 - (v | SUB_MASK).leading_zeros() as i64;
    pow2ceiling - (HALF_MAG as i64 + 1)
}

fn counts_index(v: i64) -> usize {
    let b = bucket_index(v);
    let sub = v >> b;
    (((b + 1) << HALF_MAG) + (sub - HALF)) as usize
}

fn value_at_index(i: usize) -> i64 {
    let mut b = (i as i64 >> HALF_MAG) - 1;
    let mut sub = (i as i64 & (HALF - 1)) + HALF;
    if b < 0 {
        sub -= HALF;
        b = 0;
    }
    sub << b
}

fn range_size(v: i64) -> i64 {
    let b = bucket_index(v);
    let sub = v >> b;
    let adjusted = if sub >= 2 * HALF { b + 1 } else { b };
    1 << adjusted
}

fn lowest_equivalent(v: i64) -> i64 {
    let b = bucket_index(v);
    (v >> b) << b
}

fn highest_equivalent(v: i64) -> i64 {
    lowest_equivalent(v) + range_size(v) - 1
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    #[inline]
    pub fn record(&self, ns: i64) {
        let v = ns.clamp(MIN_NS, MAX_NS);
        self.counts[counts_index(v)].fetch_add(1, Relaxed);
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
    }

    /// Adds this histogram's counts into `into` (a merged snapshot).
    pub fn add_to(&self, into: &mut Vec<u64>) {
        into.resize(COUNTS_LEN, 0);
        for (a, c) in into.iter_mut().zip(self.counts.iter()) {
            *a += c.load(Relaxed);
        }
    }
}

/// LATENCY HISTOGRAM's buckets of merged counts: (µs, cumulative count)
/// at 1024 ns, doubling, as hdr_iter_log_init(.., 1024, 2) reports them
/// (buckets that add nothing are left out, as Redis's fillCommandCDF does).
pub fn log_buckets(counts: &[u64]) -> Vec<(i64, u64)> {
    let total: u64 = counts.iter().sum();
    let len = counts.len() as i64;
    let mut out = Vec::new();
    let mut level: i64 = 1024;
    let mut level_low = lowest_equivalent(level);
    let (mut idx, mut cum, mut value, mut high) = (-1i64, 0u64, 0i64, 0i64);
    let mut prev = 0u64;
    // Each turn is one hdr log_iter_next step.
    loop {
        let peek_above = idx < len && value_at_index((idx + 1) as usize) > level_low;
        if cum >= total && !peek_above {
            break;
        }
        loop {
            if value >= level_low {
                level *= 2;
                level_low = lowest_equivalent(level);
                break;
            }
            idx += 1;
            if idx >= len {
                break;
            }
            cum += counts[idx as usize];
            value = value_at_index(idx as usize);
            high = highest_equivalent(value);
        }
        if cum > prev {
            out.push((high / 1000, cum));
        }
        prev = cum;
    }
    out
}

/// The value at a percentile (hdr_value_at_percentile), in ns.
pub fn value_at_percentile(counts: &[u64], pct: f64) -> i64 {
    let total: u64 = counts.iter().sum();
    let p = pct.min(100.0);
    let want = (((p / 100.0) * total as f64) + 0.5) as u64;
    let want = want.max(1);
    let mut acc = 0;
    let mut v = 0;
    for (i, c) in counts.iter().enumerate() {
        acc += c;
        if acc >= want {
            v = value_at_index(i);
            break;
        }
    }
    if pct == 0.0 {
        lowest_equivalent(v)
    } else {
        highest_equivalent(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[i64]) -> Vec<u64> {
        let h = Histogram::default();
        for &v in values {
            h.record(v);
        }
        let mut c = Vec::new();
        h.add_to(&mut c);
        c
    }

    #[test]
    fn hdr_layout() {
        assert_eq!(counts_index(1), 1);
        assert_eq!(value_at_index(counts_index(1000)), 1000);
        assert_eq!(highest_equivalent(1024), 1031);
        assert_eq!(highest_equivalent(32768), 33023);
        assert!(counts_index(MAX_NS) < COUNTS_LEN);
    }

    #[test]
    fn log_buckets_like_redis() {
        // 1 µs, 2 µs, 3 µs and 1 ms, recorded in ns as Redis does.
        let c = hist(&[1000, 2000, 3000, 1_000_000]);
        assert_eq!(log_buckets(&c), vec![(1, 1), (2, 2), (4, 3), (1056, 4)]);
        let c = hist(&[MAX_NS]);
        assert_eq!(log_buckets(&c).last().unwrap().1, 1);
    }

    #[test]
    fn percentiles() {
        let c = hist(&[1000, 2000, 3000, 4000]);
        assert_eq!(value_at_percentile(&c, 50.0), 2007);
        assert_eq!(value_at_percentile(&c, 100.0), 4015);
    }

    #[test]
    fn samples_per_second_keep_the_worst() {
        add_sample("t-ev", 5, 100);
        add_sample("t-ev", 9, 100);
        add_sample("t-ev", 3, 101);
        assert_eq!(history(b"t-ev").unwrap(), vec![(100, 9), (101, 3)]);
        assert_eq!(reset(&[b"T-EV"]), 1);
        assert!(history(b"t-ev").is_none());
    }
}
