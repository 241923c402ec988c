//! The per-key access metadata Redis keeps in each object's 24-bit `lru`
//! field, and the active maxmemory policy that decides its meaning.
//!
//! Under LRU (and every non-LFU policy) the field is the LRU clock: Unix
//! seconds modulo 2^24, set on every access. Under an LFU policy it is
//! 16 bits of "minutes" (last decrement time) and an 8-bit logarithmic
//! counter (Redis's `LFULogIncr`/`LFUDecrAndReturn`): the counter starts
//! at 5, grows with probability 1 / ((counter - 5) * lfu-log-factor + 1)
//! per access, and loses one per `lfu-decay-time` minutes of idleness.
//! Under S3-FIFO the entry also carries a 2-bit frequency in its tag byte
//! (see `Entry::s3_freq`); the LRU clock keeps working for OBJECT IDLETIME.

use super::entry::Entry;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Redis's maxmemory policies, plus S3-FIFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Policy {
    NoEviction = 0,
    AllkeysLru,
    VolatileLru,
    AllkeysLfu,
    VolatileLfu,
    AllkeysRandom,
    VolatileRandom,
    VolatileTtl,
    AllkeysS3Fifo,
    VolatileS3Fifo,
}

impl Policy {
    /// Parses a `maxmemory-policy` value (already lower-cased by CONFIG).
    pub fn from_name(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllkeysLru,
            "volatile-lru" => Policy::VolatileLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "volatile-lfu" => Policy::VolatileLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-s3fifo" => Policy::AllkeysS3Fifo,
            "volatile-s3fifo" => Policy::VolatileS3Fifo,
            _ => Policy::NoEviction,
        }
    }

    fn from_u8(v: u8) -> Policy {
        match v {
            1 => Policy::AllkeysLru,
            2 => Policy::VolatileLru,
            3 => Policy::AllkeysLfu,
            4 => Policy::VolatileLfu,
            5 => Policy::AllkeysRandom,
            6 => Policy::VolatileRandom,
            7 => Policy::VolatileTtl,
            8 => Policy::AllkeysS3Fifo,
            9 => Policy::VolatileS3Fifo,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    /// volatile-* policies only ever evict keys with a TTL.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
                | Policy::VolatileS3Fifo
        )
    }

    /// The S3-FIFO engine's policies (queues in the shards).
    pub fn is_s3(self) -> bool {
        matches!(self, Policy::AllkeysS3Fifo | Policy::VolatileS3Fifo)
    }
}

static POLICY: AtomicU8 = AtomicU8::new(0);
static LFU_LOG_FACTOR: AtomicU32 = AtomicU32::new(10);
static LFU_DECAY_TIME: AtomicU32 = AtomicU32::new(1);

/// Installs the policy and LFU parameters (from `Server::apply_config`).
pub fn configure(p: Policy, log_factor: u32, decay_time: u32) {
    POLICY.store(p as u8, Ordering::Relaxed);
    LFU_LOG_FACTOR.store(log_factor, Ordering::Relaxed);
    LFU_DECAY_TIME.store(decay_time, Ordering::Relaxed);
}

/// The active maxmemory policy.
#[inline]
pub fn policy() -> Policy {
    Policy::from_u8(POLICY.load(Ordering::Relaxed))
}

/// Largest LRU clock value (24 bits).
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Counter of a new key under LFU (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u32 = 5;

/// The 24-bit LRU clock in seconds, as Redis keeps in each object.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_CLOCK_MAX
}

/// Milliseconds since the key was last touched, from its LRU field
/// (Redis's `estimateObjectIdleTime`, clock wrap-around included).
pub fn idle_ms(lru: u32, now_ms: u64) -> u64 {
    let clock = lru_clock(now_ms);
    let secs = if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    };
    secs as u64 * 1000
}

/// Minutes modulo 2^16, the LFU decrement clock.
#[inline]
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 1000 / 60) & 0xffff) as u32
}

/// Minutes since `ldt`, wrapping like Redis's `LFUTimeElapsed`.
fn lfu_elapsed(ldt: u32, now_ms: u64) -> u32 {
    let now = lfu_minutes(now_ms);
    if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    }
}

/// The counter after decay (`LFUDecrAndReturn`): what OBJECT FREQ shows.
pub fn lfu_decr(field: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = field >> 8;
    let counter = field & 255;
    let periods = lfu_elapsed(ldt, now_ms)
        .checked_div(decay_time)
        .unwrap_or(0);
    counter.saturating_sub(periods)
}

/// One logarithmic increment (`LFULogIncr`); `r` is uniform in [0, 1).
pub fn lfu_log_incr(counter: u32, log_factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// The LFU field after an access (`updateLFU`).
pub fn lfu_touch(field: u32, now_ms: u64, log_factor: u32, decay_time: u32, r: f64) -> u32 {
    let c = lfu_decr(field, now_ms, decay_time);
    let c = lfu_log_incr(c, log_factor, r);
    (lfu_minutes(now_ms) << 8) | c
}

/// The LFU counter OBJECT FREQ reports for a field, with the live decay time.
pub fn lfu_freq(field: u32, now_ms: u64) -> u32 {
    lfu_decr(field, now_ms, LFU_DECAY_TIME.load(Ordering::Relaxed))
}

/// Wall-clock milliseconds, for paths that create keys without a
/// command's timestamp at hand (a vDSO call, no syscall).
pub fn coarse_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The field a new key starts with (Redis's `createObject`).
#[inline]
pub fn new_lru(now_ms: u64) -> u32 {
    if policy().is_lfu() {
        (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
    } else {
        lru_clock(now_ms)
    }
}

/// Records an access to `e` (the lookupKey path): LRU clock or LFU
/// counter, plus the S3-FIFO frequency bit when that engine is active.
#[inline]
pub fn touch(e: &mut Entry, now_ms: u64) {
    match policy() {
        p if p.is_lfu() => {
            let r = fast_random();
            e.set_lru(lfu_touch(
                e.lru(),
                now_ms,
                LFU_LOG_FACTOR.load(Ordering::Relaxed),
                LFU_DECAY_TIME.load(Ordering::Relaxed),
                r,
            ))
        }
        Policy::AllkeysS3Fifo | Policy::VolatileS3Fifo => {
            e.set_lru(lru_clock(now_ms));
            e.bump_s3_freq();
        }
        _ => e.set_lru(lru_clock(now_ms)),
    }
}

/// A cheap thread-local uniform [0, 1) for the LFU coin flip.
fn fast_random() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(0x9e37_79b9_7f4a_7c15 ^ (std::process::id() as u64) << 17);
    }
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_wraps_like_redis() {
        let now = 1_000_000_000u64 * 1000; // any instant
        let clock = lru_clock(now);
        assert_eq!(idle_ms(clock, now), 0);
        assert_eq!(idle_ms(clock - 10, now), 10_000);
        // A field "from the future" means the clock wrapped.
        let wrapped = idle_ms(clock + 5, now);
        assert_eq!(
            wrapped,
            (clock + (LRU_CLOCK_MAX - (clock + 5))) as u64 * 1000
        );
    }

    #[test]
    fn lfu_log_increment_matches_formula() {
        // Below the initial value every hit counts.
        assert_eq!(lfu_log_incr(0, 10, 0.999), 1);
        assert_eq!(lfu_log_incr(5, 10, 0.999), 6);
        // At counter 6 with factor 10: p = 1/11.
        assert_eq!(lfu_log_incr(6, 10, 1.0 / 11.0 - 1e-9), 7);
        assert_eq!(lfu_log_incr(6, 10, 1.0 / 11.0 + 1e-9), 6);
        // At counter 105, factor 10: p = 1/1001.
        assert_eq!(lfu_log_incr(105, 10, 0.0009), 106);
        assert_eq!(lfu_log_incr(105, 10, 0.0011), 105);
        assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
        // Factor 0: always increments.
        assert_eq!(lfu_log_incr(200, 0, 0.99), 201);
        // Expected growth: with factor 10, about 1M hits reach ~255 (Redis's
        // table in redis.conf: factor 10, 1M hits -> 255; 100 hits -> 10).
        let mut c = LFU_INIT_VAL;
        let mut x = 12345u64;
        for _ in 0..100 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            c = lfu_log_incr(c, 10, (x >> 11) as f64 / (1u64 << 53) as f64);
        }
        assert!((8..=12).contains(&c), "{c}");
    }

    #[test]
    fn lfu_decay_one_per_period() {
        let t0 = 600_000_000u64 * 1000;
        let field = (lfu_minutes(t0) << 8) | 20;
        assert_eq!(lfu_decr(field, t0, 1), 20);
        assert_eq!(lfu_decr(field, t0 + 3 * 60_000, 1), 17);
        assert_eq!(lfu_decr(field, t0 + 3 * 60_000, 2), 19);
        assert_eq!(lfu_decr(field, t0 + 100 * 60_000, 1), 0);
        assert_eq!(lfu_decr(field, t0 + 100 * 60_000, 0), 20);
        // A touch after decay stores the new time and the decayed counter
        // (plus maybe one).
        let f2 = lfu_touch(field, t0 + 3 * 60_000, 10, 1, 0.99);
        assert_eq!(f2 & 255, 17);
        assert_eq!(f2 >> 8, lfu_minutes(t0 + 3 * 60_000));
    }

    #[test]
    fn policy_names() {
        for n in [
            "noeviction",
            "allkeys-lru",
            "volatile-lru",
            "allkeys-lfu",
            "volatile-lfu",
            "allkeys-random",
            "volatile-random",
            "volatile-ttl",
            "allkeys-s3fifo",
            "volatile-s3fifo",
        ] {
            let p = Policy::from_name(n);
            assert_eq!(Policy::from_u8(p as u8), p);
            assert_eq!(n == "noeviction", p == Policy::NoEviction);
        }
        assert!(Policy::VolatileTtl.is_volatile() && !Policy::AllkeysLfu.is_volatile());
    }
}
