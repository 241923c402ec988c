//! The queues of the S3-FIFO eviction engine, one set per shard.
//!
//! S3-FIFO (Yang et al., SOSP '23) keeps a small FIFO (~10% of the
//! entries) where new keys land, a main FIFO run as a CLOCK, and a ghost
//! FIFO of recently evicted keys. A key evicted from the small queue moves
//! to main if it was accessed while there, else it leaves (and its hash
//! goes to the ghost queue); a key inserted while its hash is in the ghost
//! queue goes straight to main. Main re-queues a key with a nonzero
//! frequency (decrementing it) and evicts one with zero. Scans and one-hit
//! keys thus pass through the small queue without disturbing main.
//!
//! The queues hold 64-bit key hashes (the table's own hash), the ghost
//! queue 32-bit fingerprints; the per-key frequency (2 bits) and queue bit
//! live in the entry's tag byte. A hash whose key was deleted or already
//! moved stays in its queue until popped, and is skipped then; [`Shard`]
//! compacts the queues when such stale hashes pile up.
//!
//! [`Shard`]: super::Shard

use std::collections::VecDeque;

/// Per-shard S3-FIFO state. Created when the policy is switched on.
#[derive(Default)]
pub struct S3Fifo {
    pub small: VecDeque<u64>,
    pub main: VecDeque<u64>,
    ghost: VecDeque<u32>,
    /// Fingerprint -> copies in `ghost`.
    ghost_set: hashbrown::HashMap<u32, u16>,
}

/// The ghost queue's fingerprint of a key hash.
#[inline]
pub fn fingerprint(h: u64) -> u32 {
    (h >> 32) as u32 ^ h as u32
}

impl S3Fifo {
    /// Whether a key with this hash was evicted recently; forgets it.
    pub fn take_ghost(&mut self, h: u64) -> bool {
        let f = fingerprint(h);
        match self.ghost_set.get_mut(&f) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.ghost_set.remove(&f);
                }
                true
            }
            None => false,
        }
    }

    /// Remembers an evicted key, keeping at most `cap` ghosts.
    pub fn push_ghost(&mut self, h: u64, cap: usize) {
        let f = fingerprint(h);
        self.ghost.push_back(f);
        *self.ghost_set.entry(f).or_insert(0) += 1;
        while self.ghost.len() > cap.max(1) {
            if let Some(old) = self.ghost.pop_front() {
                // A fingerprint may already have been taken by an insert.
                if let Some(n) = self.ghost_set.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.ghost_set.remove(&old);
                    }
                }
            }
        }
    }

    pub fn ghost_len(&self) -> usize {
        self.ghost.len()
    }

    /// Heap bytes held by the queues (for the per-key overhead figure).
    pub fn heap_bytes(&self) -> usize {
        (self.small.capacity() + self.main.capacity()) * 8
            + self.ghost.capacity() * 4
            + self.ghost_set.capacity() * 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghost_is_a_bounded_fifo_with_membership() {
        let mut q = S3Fifo::default();
        for h in 1..=5u64 {
            q.push_ghost(h << 40 | h, 3);
        }
        assert_eq!(q.ghost_len(), 3);
        assert!(!q.take_ghost(1 << 40 | 1));
        assert!(!q.take_ghost(2 << 40 | 2));
        assert!(q.take_ghost(3 << 40 | 3));
        assert!(!q.take_ghost(3 << 40 | 3), "taking forgets");
        assert!(q.take_ghost(5 << 40 | 5));
        q.push_ghost(9, 3);
        q.push_ghost(10, 3);
        assert!(q.take_ghost(9) && q.take_ghost(10));
    }
}
