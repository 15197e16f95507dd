//! Sequential detection and read-ahead sizing for one open file handle.
//!
//! A reader that keeps reading where it stopped (within [`TOLERANCE`], since the kernel
//! reorders and splits requests) is streaming, and the windows in `[end, end + ahead)`
//! are fetched in the background, several ranged GETs at once. How far ahead depends on
//! what the stream has shown, because every byte fetched and not read is paid for
//! (storage bills and meters by the byte) and a seek makes the read-ahead useless:
//!
//! - A stream from the start of the file reads ahead half of what it has read in a row
//!   (at least one window): `ffprobe` reads the first few MB and stops, and must not
//!   cause tens of MB to move. Once it has read [`BULK`] in a row it is a copy, not a
//!   probe, and the read-ahead becomes twice what was read, so that a `cp` reaches full
//!   depth within its first few MiB.
//! - A stream that began after a seek is a player or a cut (`ffmpeg -ss 60 -t 5`), which
//!   stops or jumps again at any time: it reads ahead a quarter of what it has read
//!   ([`AFTER_SEEK_SHARE`]), so that where it stops at most a quarter more was fetched.
//! - Once a stream has gone on for [`PACE_AFTER`], its pace is known: a player that
//!   reads 2 MB/s needs [`HORIZON`] of media ahead (a second: many times a slow first
//!   byte), not 32 MiB. A copy's pace is the link's, so this never limits it.
//!
//! Each bounded by `max_ahead` (32 MiB by default, less when the cache is small). The
//! first read that lands elsewhere is a seek: the read-ahead drops to nothing, so a
//! player that jumps fetches only the window it needs (and the handle cancels the
//! fetches that the seek made useless), and a stream that resumes from there grows
//! again. This is the shape of mountpoint-s3's prefetcher, at window granularity.
//!
//! Pure logic (the caller passes the time): it decides what to prefetch;
//! [`super::ObjectReader::prefetch`] does it. Memory stays bounded because prefetched
//! windows live in the shared LRU and the windows being prefetched at once are capped
//! globally.

use std::time::{Duration, Instant};

/// A read this close to where the last one ended still counts as sequential.
pub const TOLERANCE: u64 = 2 << 20;

/// A stream from the file's start that has read this much in a row reads ahead twice
/// as far as it has read, not half.
pub const BULK: u64 = 4 << 20;

/// A stream that began after a seek reads ahead this fraction (1/N) of what it has read.
pub const AFTER_SEEK_SHARE: u64 = 4;

/// How long a stream must have gone on before its pace bounds its read-ahead.
pub const PACE_AFTER: Duration = Duration::from_millis(500);

/// Media kept fetched ahead of a stream whose pace is known, in seconds of its pace.
pub const HORIZON: Duration = Duration::from_secs(1);

/// Read-ahead state of one open handle.
#[derive(Debug, Clone)]
pub struct Prefetcher {
    window: u64,
    max_ahead: u64,
    /// Where the last read ended, if there was one.
    last_end: Option<u64>,
    /// Bytes read in a row by this stream.
    streak: u64,
    /// Whether this stream began at the start of the file.
    from_start: bool,
    /// When this stream's first read came.
    began: Option<Instant>,
    /// Whether the last read was a seek (it ended a stream).
    seeked: bool,
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
            from_start: true,
            began: None,
            seeked: false,
            ahead: 0,
        }
    }

    /// Records a read of `[offset, offset + size)` made at `now` and returns the
    /// plaintext range to have fetched ahead of it, if any.
    pub fn on_read(&mut self, offset: u64, size: u64, now: Instant) -> Option<(u64, u64)> {
        let end = offset + size;
        let sequential = match self.last_end {
            // The first read of a file at its start is the start of a stream.
            None => offset == 0,
            Some(last) => offset + TOLERANCE >= last && offset <= last + TOLERANCE,
        };
        self.seeked = self.last_end.is_some() && !sequential;
        if sequential {
            let began = *self.began.get_or_insert(now);
            self.streak += size;
            let mut ahead = if !self.from_start {
                self.streak / AFTER_SEEK_SHARE
            } else if self.streak >= BULK {
                self.streak.saturating_mul(2)
            } else {
                self.streak / 2
            };
            let lasted = now.saturating_duration_since(began);
            if lasted >= PACE_AFTER {
                let pace = self.streak as f64 / lasted.as_secs_f64();
                ahead = ahead.min((pace * HORIZON.as_secs_f64()) as u64);
            }
            self.ahead = ahead.clamp(self.window, self.max_ahead);
        } else {
            // Not a stream (yet): the next read that follows this one starts one.
            self.streak = 0;
            self.from_start = offset == 0;
            self.began = None;
            self.ahead = 0;
        }
        self.last_end = Some(end);
        (self.ahead > 0).then_some((end, end + self.ahead))
    }

    pub fn ahead(&self) -> u64 {
        self.ahead
    }

    /// Whether the last read was a seek: what was being fetched ahead is of no use now.
    pub fn seeked(&self) -> bool {
        self.seeked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u64 = 1 << 20;

    fn secs(t: Instant, s: f64) -> Instant {
        t + Duration::from_secs_f64(s)
    }

    #[test]
    fn sequential_reads_grow_the_read_ahead_with_what_was_read_up_to_the_cap() {
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 16 * W);
        let mut off = 0;
        let mut aheads = Vec::new();
        for _ in 0..8 {
            let r = p.on_read(off, 2 * W, t).unwrap();
            assert_eq!(r, (off + 2 * W, off + 2 * W + p.ahead()));
            aheads.push(p.ahead() / W);
            off += 2 * W;
        }
        // Half of what was read (at least a window) up to BULK, then twice, up to the cap.
        assert_eq!(aheads, vec![1, 8, 12, 16, 16, 16, 16, 16]);
    }

    #[test]
    fn a_short_sequential_read_wastes_at_most_half_or_a_window() {
        let t = Instant::now();
        // ffprobe-like: 3.5 MB from the start in 128 KiB reads, then stop.
        let mut p = Prefetcher::new(W, 64 * W);
        let mut furthest = 0;
        let mut off = 0;
        while off < 3_500_000 {
            if let Some((_, end)) = p.on_read(off, 128 << 10, t) {
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
        let t = Instant::now();
        for stop in [BULK, 5_000_000, 20_000_000, 200_000_000] {
            let mut p = Prefetcher::new(W, 64 * W);
            let mut furthest = 0;
            let mut off = 0;
            while off < stop {
                if let Some((_, end)) = p.on_read(off, 128 << 10, t) {
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
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 64 * W);
        p.on_read(0, W, t);
        p.on_read(W, 2 * W, t);
        assert_eq!(p.ahead(), 3 * W / 2);
        // The kernel may skip a little or go back a little: still the stream.
        assert!(p.on_read(4 * W + 4096, W, t).is_some());
        assert!(p.on_read(5 * W, W, t).is_some());
        // A jump to the middle: no read-ahead, only the window needed.
        assert_eq!(p.on_read(500 * W, 4096, t), None);
        assert_eq!(p.ahead(), 0);
        // Reading on from there starts a new stream.
        assert_eq!(
            p.on_read(500 * W + 4096, 4096, t),
            Some((500 * W + 8192, 501 * W + 8192))
        );
    }

    #[test]
    fn random_reads_never_prefetch() {
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 64 * W);
        let mut x = 12345u64;
        p.on_read(7 * W, 10, t);
        for _ in 0..100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            let off = (x >> 20) % (10_000 * W);
            if let Some(r) = p.on_read(off, 4096, t) {
                // Only when this random offset happened to land next to the last one.
                assert!(r.1 - r.0 <= 2 * W);
            }
        }
    }

    #[test]
    fn first_read_elsewhere_than_the_start_is_not_a_stream() {
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 64 * W);
        assert_eq!(p.on_read(100 * W, 4096, t), None);
        assert_eq!(p.on_read(0, 4096, t), None); // a far seek back
    }

    #[test]
    fn a_stream_after_a_seek_reads_ahead_a_quarter_of_what_it_read() {
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 32 * W);
        p.on_read(0, 4096, t);
        assert!(!p.seeked());
        assert_eq!(p.on_read(600 * W, 128 << 10, t), None);
        assert!(p.seeked());
        let mut off = 600 * W + (128 << 10);
        while off < 640 * W {
            p.on_read(off, 128 << 10, t);
            assert!(!p.seeked());
            off += 128 << 10;
        }
        // 40 MiB read since the seek (the seek's own read does not count): a quarter of it
        // ahead, where a copy from the start has the cap.
        assert_eq!(p.ahead(), (40 * W - (128 << 10)) / 4);
        let mut q = Prefetcher::new(W, 32 * W);
        let mut off = 0;
        while off < 40 * W {
            q.on_read(off, 128 << 10, t);
            off += 128 << 10;
        }
        assert_eq!(q.ahead(), 32 * W);
    }

    #[test]
    fn a_paced_stream_reads_ahead_its_pace_times_the_horizon() {
        // 2 MB/s in 256 KiB reads, from the start: after PACE_AFTER, HORIZON of it.
        let t = Instant::now();
        let mut p = Prefetcher::new(W, 32 * W);
        let rate = 2_000_000.0;
        let mut off = 0u64;
        for _ in 0..80 {
            p.on_read(off, 256 << 10, secs(t, off as f64 / rate));
            off += 256 << 10;
        }
        let pace_ahead = (rate * HORIZON.as_secs_f64()) as u64;
        assert!(
            p.ahead().abs_diff(pace_ahead) <= pace_ahead / 10,
            "{} ahead, not about {pace_ahead}",
            p.ahead()
        );
        // A copy's pace is far above what the cap allows: the cap it is.
        let mut q = Prefetcher::new(W, 32 * W);
        let mut off = 0u64;
        for _ in 0..800 {
            q.on_read(off, 256 << 10, secs(t, off as f64 / 500e6));
            off += 256 << 10;
        }
        assert_eq!(q.ahead(), 32 * W);
    }
}
