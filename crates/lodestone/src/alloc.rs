//! The global allocator: jemalloc built with Redis's settings.
//!
//! `.cargo/config.toml` builds jemalloc with `--with-lg-quantum=3` (size
//! classes every 8 bytes up to 64: 24, 40, 56 exist) and the crate feature
//! `disable_cache_oblivious` (no extra page per large allocation), as Redis's
//! `deps/Makefile` does. A 54-byte entry then takes 56 bytes instead of 64,
//! and a shard table of 20 KB touches 20 KB of pages instead of 24.
//!
//! With an 8-byte quantum, `malloc` only guarantees 8-byte alignment, while
//! `tikv_jemallocator::Jemalloc` assumes 16. Small size classes are
//! naturally aligned (jemalloc's own `sz_sa2u` relies on it), so a layout
//! aligned to 16 (hashbrown's tables, Lua's allocations) keeps `malloc`'s
//! fast path with its size rounded up to a multiple of 16; larger
//! alignments go through `mallocx`.

use std::alloc::{GlobalAlloc, Layout};
use std::os::raw::{c_int, c_void};
use tikv_jemalloc_sys as ffi;

/// Alignment every size class has with `--with-lg-quantum=3`.
const QUANTUM: usize = 8;

/// jemalloc's global allocator for Lodestone (see the module documentation).
#[derive(Clone, Copy, Default, Debug)]
pub struct Jemalloc;

/// The size to ask for and the flags to pass: sizes aligned to 16 are
/// rounded up to a multiple of 16 (a class of such a size is 16-aligned),
/// larger alignments need `MALLOCX_ALIGN`.
#[inline]
fn request(align: usize, size: usize) -> (usize, c_int) {
    if align <= QUANTUM {
        (size, 0)
    } else if align == 2 * QUANTUM {
        ((size + 15) & !15, 0)
    } else {
        (size, ffi::MALLOCX_ALIGN(align))
    }
}

// SAFETY: every call forwards to jemalloc with a size (and flag) that
// gives the layout's alignment (see `request`); deallocation passes the
// same size and flag, as sdallocx requires.
unsafe impl GlobalAlloc for Jemalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (size, f) = request(layout.align(), layout.size());
        if f == 0 {
            ffi::malloc(size) as *mut u8
        } else {
            ffi::mallocx(size, f) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let (size, f) = request(layout.align(), layout.size());
        if f == 0 {
            ffi::calloc(1, size) as *mut u8
        } else {
            ffi::mallocx(size, f | ffi::MALLOCX_ZERO) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let (size, f) = request(layout.align(), layout.size());
        ffi::sdallocx(ptr as *mut c_void, size, f)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (size, f) = request(layout.align(), new_size);
        if f == 0 {
            ffi::realloc(ptr as *mut c_void, size) as *mut u8
        } else {
            ffi::rallocx(ptr as *mut c_void, size, f) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    /// Allocations that need 16-byte alignment get it although 24, 40 and
    /// 56 are size classes, reallocations keep it, and entries use those
    /// classes.
    #[test]
    fn alignment_and_small_classes() {
        use std::alloc::{alloc, dealloc, Layout};
        for size in [1usize, 8, 20, 24, 40, 52, 56, 100, 4000, 20_000] {
            for align in [1usize, 8, 16, 32, 64] {
                let l = Layout::from_size_align(size, align).unwrap();
                let mut ptrs = Vec::new();
                for i in 0..50 {
                    // SAFETY: size > 0; freed below with the same layout.
                    let mut p = unsafe { alloc(l) };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    let mut cur = l;
                    if i % 2 == 1 {
                        let n = size * 3 / 2 + 8;
                        // SAFETY: p was allocated with `l`; n > 0.
                        p = unsafe { std::alloc::realloc(p, l, n) };
                        assert_eq!(p as usize % align, 0, "realloc {size}->{n} align {align}");
                        cur = Layout::from_size_align(n, align).unwrap();
                    }
                    ptrs.push((p, cur));
                }
                for (p, l) in ptrs {
                    // SAFETY: allocated above with `l`.
                    unsafe { dealloc(p, l) };
                }
            }
        }
        // SAFETY: nallocx only computes a size class.
        assert_eq!(unsafe { tikv_jemalloc_sys::nallocx(54, 0) }, 56);
    }
}
