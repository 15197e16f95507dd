//! Sequential detection and read-ahead sizing for one open file handle.
//!
//! A reader that keeps reading where it stopped (within [`TOLERANCE`], since the kernel
//! reorders and splits requests) is streaming. Its read-ahead is half of what it has
//! read in a row, at least one window and at most `max_ahead` (64 MiB by default,
//! less when the cache is small), and the windows in `[end, end + ahead)` are fetched
//! in the background, several ranged GETs at once. Growing with the bytes read rather
//! than the number of reads keeps the waste at half of what was used: `ffprobe`
//! reads the first few MB of a file and stops, and must not cause tens of MB to move.
//! Once a stream has read [`BULK`] in a row it is a copy, not a probe, and the
//! read-ahead becomes twice what was read, so that a `cp` reaches full depth within
//! its first few MiB instead of fetching them one window at a time (a 256 MiB `cp`
//! went from 0.78–0.81× to 1.04–1.29× of the guide's pipe; `ffprobe` and
//! `ffmpeg -ss` never read that far in a row). The first read that lands elsewhere is a seek: the read-ahead
//! drops to nothing, so a player that jumps fetches only the window it needs, and a
//! stream that resumes from there grows again. This is the shape of mountpoint-s3's
//! prefetcher, at window granularity.
//!
//! Pure logic: it decides what to prefetch; [`super::ObjectReader::prefetch`]
//! does it. Memory stays bounded because prefetched windows live in the shared LRU and
//! the number of windows being prefetched at once is capped globally.

/// A read this close to where the last one ended still counts as sequential.
pub const TOLERANCE: u64 = 2 << 20;

/// A stream that has read this much in a row reads ahead twice as far as it has read,
/// not half.
pub const BULK: u64 = 4 << 20;

/// Read-ahead state of one open handle.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    window: u64,
    max_ahead: u64,
    /// Where the last read ended, if there was one.
    last_end: Option<u64>,
    /// Bytes read in a row by this stream.
    streak: u64,
    /// Bytes to keep fetched ahead of the reader.
    ahead: u64,
}

impl Prefetcher {
    pub fn new(window: u64, max_ahead: u64) -> Self {
        Self {
            window,
            max_ahead: max_ahead.max(window),
            last_end: None,
            streak: 0,
            ahead: 0,
        }
    }

    /// Records a read of `[offset, offset + size)` and returns the plaintext range to
    /// have fetched ahead of it, if any.
    pub fn on_read(&mut self, offset: u64, size: u64) -> Option<(u64, u64)> {
        let end = offset + size;
        let sequential = match self.last_end {
            // The first read of a file at its start is the start of a stream.
            None => offset == 0,
            Some(last) => offset + TOLERANCE >= last && offset <= last + TOLERANCE,
        };
        if sequential {
            self.streak += size;
            let ahead = if self.streak >= BULK {
                self.streak.saturating_mul(2)
            } else {
                self.streak / 2
            };
            self.ahead = ahead.clamp(self.window, self.max_ahead);
        } else {
            self.streak = 0;
            self.ahead = 0;
        }
        self.last_end = Some(end);
        (self.ahead > 0).then_some((end, end + self.ahead))
    }

    pub fn ahead(&self) -> u64 {
        self.ahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 1 << 20;

    #[test]
    fn sequential_reads_grow_the_read_ahead_with_what_was_read_up_to_the_cap() {
        let mut p = Prefetcher::new(W, 16 * W);
        let mut off = 0;
        let mut aheads = Vec::new();
        for _ in 0..8 {
            let r = p.on_read(off, 2 * W).unwrap();
            assert_eq!(r, (off + 2 * W, off + 2 * W + p.ahead()));
            aheads.push(p.ahead() / W);
            off += 2 * W;
        }
        // Half of what was read (at least a window) up to BULK, then twice, up to the cap.
        assert_eq!(aheads, vec![1, 8, 12, 16, 16, 16, 16, 16]);
    }

    #[test]
    fn a_short_sequential_read_wastes_at_most_half_or_a_window() {
        // ffprobe-like: 3.5 MB from the start in 128 KiB reads, then stop.
        let mut p = Prefetcher::new(W, 64 * W);
        let mut furthest = 0;
        let mut off = 0;
        while off < 3_500_000 {
            if let Some((_, end)) = p.on_read(off, 128 << 10) {
                furthest = furthest.max(end);
            }
            off += 128 << 10;
        }
        assert!(
            furthest - off <= (off / 2).max(W),
            "prefetched {} past {off}",
            furthest - off
        );
    }

    #[test]
    fn a_long_sequential_read_wastes_at_most_twice_what_it_read() {
        for stop in [BULK, 5_000_000, 20_000_000, 200_000_000] {
            let mut p = Prefetcher::new(W, 64 * W);
            let mut furthest = 0;
            let mut off = 0;
            while off < stop {
                if let Some((_, end)) = p.on_read(off, 128 << 10) {
                    furthest = furthest.max(end);
                }
                off += 128 << 10;
            }
            let waste = furthest - off;
            assert!(waste <= 2 * off, "prefetched {waste} past {off}");
            assert!(
                waste <= 64 * W,
                "prefetched {waste} past {off}: over the cap"
            );
        }
    }

    #[test]
    fn a_far_seek_drops_the_stream_and_a_near_one_keeps_it() {
        let mut p = Prefetcher::new(W, 64 * W);
        p.on_read(0, W);
        p.on_read(W, 2 * W);
        assert_eq!(p.ahead(), 3 * W / 2);
        // The kernel may skip a little or go back a little: still the stream.
        assert!(p.on_read(4 * W + 4096, W).is_some());
        assert!(p.on_read(5 * W, W).is_some());
        // A jump to the middle: no read-ahead, only the window needed.
        assert_eq!(p.on_read(500 * W, 4096), None);
        assert_eq!(p.ahead(), 0);
        // Reading on from there starts a new stream.
        assert_eq!(
            p.on_read(500 * W + 4096, 4096),
            Some((500 * W + 8192, 501 * W + 8192))
        );
    }

    #[test]
    fn random_reads_never_prefetch() {
        let mut p = Prefetcher::new(W, 64 * W);
        let mut x = 12345u64;
        p.on_read(7 * W, 10);
        for _ in 0..100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let off = (x >> 20) % (10_000 * W);
            if let Some(r) = p.on_read(off, 4096) {
                // Only when this random offset happened to land next to the last one.
                assert!(r.1 - r.0 <= 2 * W);
            }
        }
    }

    #[test]
    fn first_read_elsewhere_than_the_start_is_not_a_stream() {
        let mut p = Prefetcher::new(W, 64 * W);
        assert_eq!(p.on_read(100 * W, 4096), None);
        assert_eq!(p.on_read(0, 4096), None); // a far seek back
    }
}
