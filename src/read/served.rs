//! Which windows one open handle has been served in full.
//!
//! Files are opened with `keep_cache`: every byte the mount hands to the kernel stays in
//! the kernel's page cache, which serves re-reads without asking us. Once a handle has
//! been served every byte of a window, the mount's own copy of that window is therefore
//! redundant, and keeping it costs twice: the memory itself, and fresh pages (one page
//! fault each) for every window after it, since the freed memory could have been
//! reused. A `cp` of a 1 GiB file would otherwise leave the cache full of windows that
//! nobody will ask for. [`Served`] tells the filesystem which windows it may drop.
//!
//! Pure logic, no I/O. It counts bytes, not ranges: a range served twice (the kernel
//! dropped its pages and asked again) counts twice, so a window may be judged complete
//! early. That costs one more fetch if the rest of it is then read, never wrong bytes.

use std::collections::VecDeque;

/// How many windows a handle may be partway through at once before the oldest is
/// forgotten (and then never dropped early; the LRU evicts it in its time).
const MAX_PARTIAL: usize = 16;

/// What one open handle has been served, per window.
#[derive(Debug, Clone)]
pub struct Served {
    window: u64,
    /// Windows served in part: (index, bytes served), oldest first.
    partial: VecDeque<(u64, u64)>,
}

impl Served {
    pub fn new(window: u64) -> Self {
        assert!(window > 0, "window size must be positive");
        Self {
            window,
            partial: VecDeque::new(),
        }
    }

    /// Records that `[offset, offset + size)` of a file of `len` plaintext bytes was
    /// served, and returns the windows that this completed, in order.
    pub fn record(&mut self, offset: u64, size: u64, len: u64) -> Vec<u64> {
        let end = offset.saturating_add(size).min(len);
        let mut done = Vec::new();
        if offset >= end {
            return done;
        }
        for index in offset / self.window..=(end - 1) / self.window {
            let start = index * self.window;
            let stop = (start + self.window).min(len);
            let got = end.min(stop) - offset.max(start);
            let pos = self.partial.iter().position(|&(i, _)| i == index);
            let total = got + pos.map_or(0, |p| self.partial[p].1);
            if total >= stop - start {
                if let Some(p) = pos {
                    self.partial.remove(p);
                }
                done.push(index);
            } else if let Some(p) = pos {
                self.partial[p].1 = total;
            } else {
                if self.partial.len() == MAX_PARTIAL {
                    self.partial.pop_front();
                }
                self.partial.push_back((index, total));
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: u64 = 1 << 20;

    #[test]
    fn sequential_reads_complete_each_window_at_its_last_byte() {
        let mut s = Served::new(W);
        let len = 3 * W + 100;
        let mut done = Vec::new();
        let mut off = 0;
        while off < len {
            let got = s.record(off, 128 << 10, len);
            if off + (128 << 10) < W {
                assert!(got.is_empty(), "window done too early at {off}");
            }
            done.extend(got);
            off += 128 << 10;
        }
        assert_eq!(done, vec![0, 1, 2, 3]);
    }

    #[test]
    fn one_read_across_windows_completes_only_those_it_covers() {
        let mut s = Served::new(W);
        // From the middle of window 0 to the middle of window 3.
        assert_eq!(s.record(W / 2, 3 * W, 10 * W), vec![1, 2]);
        // The rest of window 0 and of window 3.
        assert_eq!(s.record(0, W / 2, 10 * W), vec![0]);
        assert_eq!(s.record(3 * W + W / 2, W / 2, 10 * W), vec![3]);
    }

    #[test]
    fn reordered_requests_complete_the_window_when_the_last_part_arrives() {
        let mut s = Served::new(W);
        let q = W / 4;
        assert!(s.record(q, q, 4 * W).is_empty());
        assert!(s.record(3 * q, q, 4 * W).is_empty());
        assert!(s.record(0, q, 4 * W).is_empty());
        assert_eq!(s.record(2 * q, q, 4 * W), vec![0]);
    }

    #[test]
    fn random_small_reads_complete_nothing() {
        let mut s = Served::new(W);
        let mut x = 99u64;
        for _ in 0..1000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let off = (x >> 16) % (1000 * W);
            assert!(s.record(off, 4096, 1000 * W).is_empty());
        }
        assert!(s.partial.len() <= MAX_PARTIAL);
    }

    #[test]
    fn the_short_last_window_completes_at_the_end_of_the_file() {
        let mut s = Served::new(W);
        assert!(s.record(2 * W, 5, 2 * W + 10).is_empty());
        // Reads past the end count only up to it.
        assert_eq!(s.record(W, 2 * W, 2 * W + 10), vec![1, 2]);
        assert!(s.record(5 * W, 10, 2 * W + 10).is_empty());
        assert!(s.record(0, 0, 2 * W).is_empty());
    }

    proptest! {
        /// Whatever order a file is read in, with reads that cover every byte exactly
        /// once, every window is reported complete exactly once, and only after its
        /// last byte was served.
        #[test]
        fn covering_reads_complete_every_window_once(
            len in 1u64..(8 * 4096),
            cuts in proptest::collection::vec(1u64..(8 * 4096), 0..20),
            window in prop_oneof![Just(16u64), Just(4096), Just(1000)],
            seed in any::<u64>(),
        ) {
            let mut points: Vec<u64> = cuts.into_iter().filter(|&c| c < len).collect();
            points.push(0);
            points.push(len);
            points.sort();
            points.dedup();
            let mut reads: Vec<(u64, u64)> =
                points.windows(2).map(|p| (p[0], p[1] - p[0])).collect();
            // Shuffle deterministically.
            let mut x = seed | 1;
            for i in (1..reads.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                reads.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut s = Served::new(window);
            let mut served = vec![false; len as usize];
            let mut done = Vec::new();
            for (off, size) in reads {
                for b in off..off + size {
                    served[b as usize] = true;
                }
                for w in s.record(off, size, len) {
                    let stop = ((w + 1) * window).min(len);
                    prop_assert!((w * window..stop).all(|b| served[b as usize]),
                        "window {} reported before all its bytes were served", w);
                    done.push(w);
                }
            }
            done.sort();
            let windows = len.div_ceil(window);
            // Windows partway when more than MAX_PARTIAL were open may be forgotten.
            prop_assert!(done.windows(2).all(|p| p[0] < p[1]), "a window completed twice");
            if windows as usize <= MAX_PARTIAL {
                prop_assert_eq!(done, (0..windows).collect::<Vec<_>>());
            }
        }
    }
}
