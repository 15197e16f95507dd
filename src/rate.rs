//! The minimum rate: what counts as progress for a download that is retried, and when a
//! body is too slow to wait for.
//!
//! A download that breaks off resumes where it stopped, and an attempt that made
//! progress starts the retry budget again (see [`crate::retry`]): the budget bounds
//! time *without progress*, not the length of a slow download. Counting any byte as
//! progress let a storage that sends one byte a second keep a read, a read-ahead or a
//! `get` alive forever. So progress means a rate: [`MinRate`], by default
//! [`DEFAULT_MIN_RATE`] (32 KiB/s) measured over [`RATE_WINDOW`] (5 s), well under what
//! any storage that works sends (S3 gives tens of MiB/s per connection) and well over
//! what a dribbling one does.
//!
//! The rule has two uses:
//! - [`MinRate::is_progress`]: an attempt made progress when it moved the download
//!   forward at the rate, over at least one window (a short attempt that brought a few
//!   bytes and broke off is not progress, however quickly it did).
//! - [`RateMeter`]: a body being received is checked at the end of each window; one
//!   that brought less than the rate in a window is cut ([`TooSlow`]), and the attempt
//!   counts as failed. The window starts when the answer's headers arrive: how long
//!   the storage takes to answer is bounded by the request timeout, not by this rule.
//!
//! A rate of 0 turns the rule off: any byte is progress and no body is cut.
//!
//! Pure: the clock is an argument ([`Instant`]s are given, never read), no I/O.

use std::fmt;
use std::time::{Duration, Instant};

/// The default minimum rate, in bytes per second.
pub const DEFAULT_MIN_RATE: u64 = 32 << 10;

/// The default time over which the rate is measured: long enough that a pause of a
/// second or two (a congested link, a garbage-collecting server) is not a failure.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The least rate at which a download counts as moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second; 0: any byte is progress, and no body is cut.
    pub bytes_per_sec: u64,
    /// The rate is averaged over this long.
    pub window: Duration,
}

impl Default for MinRate {
    /// [`DEFAULT_MIN_RATE`] over [`RATE_WINDOW`].
    fn default() -> Self {
        Self {
            bytes_per_sec: DEFAULT_MIN_RATE,
            window: RATE_WINDOW,
        }
    }
}

impl MinRate {
    /// No minimum: any byte is progress.
    pub fn off() -> Self {
        Self {
            bytes_per_sec: 0,
            ..Self::default()
        }
    }

    /// The bytes this rate asks for in `d` (rounded up).
    pub fn bytes_in(&self, d: Duration) -> u64 {
        let bytes = (self.bytes_per_sec as u128)
            .saturating_mul(d.as_nanos())
            .div_ceil(1_000_000_000);
        bytes.min(u64::MAX as u128) as u64
    }

    /// How long `bytes` may take at this rate (`Duration::MAX` for no rate).
    pub fn time_for(&self, bytes: u64) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::MAX;
        }
        let nanos = bytes as u128 * 1_000_000_000 / self.bytes_per_sec as u128;
        Duration::from_nanos(nanos.min(u64::MAX as u128) as u64)
    }

    /// Whether an attempt that moved a download forward by `bytes` in `elapsed` made
    /// progress: some bytes, and at least the rate's worth of [`Self::window`] or of
    /// `elapsed`, whichever is longer.
    pub fn is_progress(&self, bytes: u64, elapsed: Duration) -> bool {
        bytes > 0 && bytes >= self.bytes_in(elapsed.max(self.window))
    }
}

impl fmt::Display for MinRate {
    /// `32 KiB/s`, `1 MiB/s`, `100 B/s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.bytes_per_sec;
        match n {
            _ if n != 0 && n.is_multiple_of(1 << 20) => write!(f, "{} MiB/s", n >> 20),
            _ if n != 0 && n.is_multiple_of(1 << 10) => write!(f, "{} KiB/s", n >> 10),
            _ => write!(f, "{n} B/s"),
        }
    }
}

/// A body that brought less than the minimum rate in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow {
    pub rate: MinRate,
    /// What arrived in the window.
    pub bytes: u64,
    /// How long the window lasted (the window, or longer if checked late).
    pub over: Duration,
}

impl fmt::Display for TooSlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "slower than the minimum rate of {} ({} bytes in {:.1} s)",
            self.rate,
            self.bytes,
            self.over.as_secs_f64()
        )
    }
}

/// Watches one body against a [`MinRate`], window after window.
#[derive(Debug, Clone)]
pub struct RateMeter {
    rate: MinRate,
    window_start: Instant,
    window_bytes: u64,
}

impl RateMeter {
    /// A body whose headers arrived at `now`.
    pub fn new(rate: MinRate, now: Instant) -> Self {
        Self {
            rate,
            window_start: now,
            window_bytes: 0,
        }
    }

    /// When the current window ends: the body is to be checked then, even if nothing
    /// arrives. `None` when the rate is off.
    pub fn deadline(&self) -> Option<Instant> {
        (self.rate.bytes_per_sec > 0).then(|| self.window_start + self.rate.window)
    }

    /// Counts `n` bytes that arrived.
    pub fn add(&mut self, n: u64) {
        self.window_bytes = self.window_bytes.saturating_add(n);
    }

    /// At `now`: once the window has ended, whether it brought the rate's worth (a new
    /// window then starts at `now`), or [`TooSlow`].
    pub fn check(&mut self, now: Instant) -> Result<(), TooSlow> {
        let over = now.saturating_duration_since(self.window_start);
        if self.rate.bytes_per_sec == 0 || over < self.rate.window {
            return Ok(());
        }
        if self.window_bytes < self.rate.bytes_in(over) {
            return Err(TooSlow {
                rate: self.rate,
                bytes: self.window_bytes,
                over,
            });
        }
        self.window_start = now;
        self.window_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// Issue 16, item 3: a body at 1 B/s kept a prefetch alive for ever, every byte
    /// starting the retry budget again. It is not progress; a fast one is.
    #[test]
    fn a_dribble_is_not_progress_and_a_fast_body_is() {
        let r = MinRate::default();
        // 1 B/s for a whole request timeout (30 s): 30 bytes.
        assert!(!r.is_progress(30, 30 * S));
        // 1 byte, however quick: less than a window's worth.
        assert!(!r.is_progress(1, Duration::from_millis(1)));
        assert!(!r.is_progress(0, 30 * S));
        // 1 MiB in 50 ms, then cut: progress.
        assert!(r.is_progress(1 << 20, Duration::from_millis(50)));
        // Exactly the rate over the window, and over a longer attempt.
        assert!(r.is_progress(5 * (32 << 10), 5 * S));
        assert!(!r.is_progress(5 * (32 << 10) - 1, 5 * S));
        assert!(r.is_progress(20 * (32 << 10), 20 * S));
        assert!(!r.is_progress(20 * (32 << 10) - 1, 20 * S));
        // Off: any byte.
        assert!(MinRate::off().is_progress(1, 3600 * S));
        assert!(!MinRate::off().is_progress(0, S));
    }

    #[test]
    fn a_meter_cuts_a_window_below_the_rate_and_not_before_it_ends() {
        let t0 = Instant::now();
        let rate = MinRate {
            bytes_per_sec: 1000,
            window: 2 * S,
        };
        let mut m = RateMeter::new(rate, t0);
        assert_eq!(m.deadline(), Some(t0 + 2 * S));
        // 1 byte every 100 ms: 20 bytes in the first window.
        for i in 1..=19 {
            m.add(1);
            assert_eq!(m.check(t0 + Duration::from_millis(100 * i)), Ok(()));
        }
        m.add(1);
        let cut = m.check(t0 + 2 * S).unwrap_err();
        assert_eq!((cut.bytes, cut.over), (20, 2 * S));
        assert_eq!(
            cut.to_string(),
            "slower than the minimum rate of 1000 B/s (20 bytes in 2.0 s)"
        );
        // Nothing at all: cut at the first check after the window.
        let mut m = RateMeter::new(rate, t0);
        assert!(m.check(t0 + 3 * S).is_err());
    }

    #[test]
    fn a_fast_body_starts_a_new_window_each_time() {
        let t0 = Instant::now();
        let rate = MinRate {
            bytes_per_sec: 1000,
            window: S,
        };
        let mut m = RateMeter::new(rate, t0);
        m.add(5000);
        assert_eq!(m.check(t0 + S), Ok(()));
        assert_eq!(m.deadline(), Some(t0 + 2 * S));
        // The next window must bring its own bytes: the first one's do not carry over.
        assert!(m.check(t0 + 2 * S).is_err());
        // Off: never cut, no deadline.
        let mut m = RateMeter::new(MinRate::off(), t0);
        assert_eq!(m.deadline(), None);
        assert_eq!(m.check(t0 + 3600 * S), Ok(()));
    }

    #[test]
    fn times_and_names() {
        let r = MinRate::default();
        assert_eq!(r.time_for(8 << 20), 256 * S);
        assert_eq!(r.bytes_in(5 * S), 160 << 10);
        assert_eq!(MinRate::off().time_for(1), Duration::MAX);
        assert_eq!(r.to_string(), "32 KiB/s");
        let mib = MinRate {
            bytes_per_sec: 2 << 20,
            ..r
        };
        assert_eq!(mib.to_string(), "2 MiB/s");
        assert_eq!(MinRate::off().to_string(), "0 B/s");
        assert_eq!(
            MinRate {
                bytes_per_sec: u64::MAX,
                ..r
            }
            .bytes_in(Duration::MAX),
            u64::MAX
        );
    }
}
