//! What a lookup of a SID that is not listed may cost.
//!
//! A name in `recordings/` or `compositions/` that the listing does not have is fetched
//! as one resource ([`crate::twilio::Api::resource`]), so that a SID outside `--since`
//! or `--room` opens by name. Left alone, that is one authenticated request per
//! made-up name: 200 `stat`s made 200 requests, and with `--allow-other` any local user
//! could push the account into Twilio's rate limits. Two bounds stop it:
//!
//! - **Misses are remembered** for the refresh interval: a SID whose resource answered
//!   "not there" (404, 410, or not completed yet) answers ENOENT with no request until
//!   the listings are refreshed too, when a new recording would show anyway. At most
//!   [`MAX_MISSES`] are kept, the oldest dropped first.
//! - **Fetches are rationed**: a token bucket of [`BURST`] fetches, refilled at
//!   [`PER_SECOND`]. Beyond it a lookup answers ENOENT at once, without a request, and
//!   the first time a WARN says so. It does not wait for a token: a waiting lookup
//!   holds a FUSE request and its caller, and a flood of them would pile up behind each
//!   other, while the names of a flood are made up and ENOENT is their answer anyway.
//!   The refusal is not remembered (nor cached by the kernel), so a real SID looked up
//!   during a flood is found when tried again a moment later. Listed files never come
//!   here: `ls`, `cp -r` and lookups of listed names are not rationed.
//!
//! Pure bookkeeping over a clock passed in, so the unit tests need no waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Resource fetches a burst of lookups of unlisted SIDs may make at once.
pub const BURST: u32 = 20;
/// Fetches per second once the burst is spent: far below Twilio's API limits, far above
/// what a person or a script opening SIDs by name one after another needs.
pub const PER_SECOND: u32 = 10;
/// Misses remembered: a few hundred KiB at most.
pub const MAX_MISSES: usize = 4096;

/// What a lookup of an unlisted SID may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fetch the resource.
    Fetch,
    /// It answered "not there" less than the refresh interval ago.
    KnownMissing,
    /// Over the rate: answer ENOENT without a request. `first` for the first time.
    Rationed { first: bool },
}

/// Remembered misses and the token bucket.
#[derive(Debug)]
pub struct Unlisted {
    ttl: Duration,
    misses: HashMap<String, Instant>,
    tokens: f64,
    filled: Instant,
    warned: bool,
}

impl Unlisted {
    /// Misses remembered for `ttl` (the refresh interval); the bucket starts full.
    pub fn new(ttl: Duration, now: Instant) -> Self {
        Self {
            ttl,
            misses: HashMap::new(),
            tokens: f64::from(BURST),
            filled: now,
            warned: false,
        }
    }

    /// Whether `sid` may be fetched now; a [`Verdict::Fetch`] spends a token.
    pub fn check(&mut self, sid: &str, now: Instant) -> Verdict {
        if let Some(&at) = self.misses.get(sid) {
            if now.saturating_duration_since(at) < self.ttl {
                return Verdict::KnownMissing;
            }
            self.misses.remove(sid);
        }
        let refill = now.saturating_duration_since(self.filled).as_secs_f64();
        self.tokens = (self.tokens + refill * f64::from(PER_SECOND)).min(f64::from(BURST));
        self.filled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Verdict::Fetch
        } else {
            let first = !self.warned;
            self.warned = true;
            Verdict::Rationed { first }
        }
    }

    /// `sid`'s resource answered "not there" at `now`.
    pub fn missed(&mut self, sid: &str, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        if self.misses.len() >= MAX_MISSES && !self.misses.contains_key(sid) {
            let ttl = self.ttl;
            self.misses
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if self.misses.len() >= MAX_MISSES {
                let oldest = self.misses.iter().min_by_key(|(_, at)| **at);
                if let Some(oldest) = oldest.map(|(sid, _)| sid.clone()) {
                    self.misses.remove(&oldest);
                }
            }
        }
        self.misses.insert(sid.to_owned(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_the_rate() {
        let t0 = Instant::now();
        let mut u = Unlisted::new(Duration::from_secs(60), t0);
        let fetched = (0..200)
            .filter(|i| u.check(&format!("RT{i}"), t0) == Verdict::Fetch)
            .count();
        assert_eq!(fetched, BURST as usize);
        assert_eq!(u.check("x", t0), Verdict::Rationed { first: false });
        // One second later, PER_SECOND more.
        let t1 = t0 + Duration::from_secs(1);
        let fetched = (0..200)
            .filter(|i| u.check(&format!("RT{i}"), t1) == Verdict::Fetch)
            .count();
        assert_eq!(fetched, PER_SECOND as usize);
        // Never more than the burst, however long idle.
        let later = t1 + Duration::from_secs(3600);
        let fetched = (0..200)
            .filter(|i| u.check(&format!("RT{i}"), later) == Verdict::Fetch)
            .count();
        assert_eq!(fetched, BURST as usize);
    }

    #[test]
    fn the_first_refusal_says_so() {
        let t0 = Instant::now();
        let mut u = Unlisted::new(Duration::from_secs(60), t0);
        for _ in 0..BURST {
            assert_eq!(u.check("a", t0), Verdict::Fetch);
        }
        assert_eq!(u.check("a", t0), Verdict::Rationed { first: true });
        assert_eq!(u.check("a", t0), Verdict::Rationed { first: false });
    }

    #[test]
    fn misses_last_the_refresh_interval() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut u = Unlisted::new(ttl, t0);
        assert_eq!(u.check("RT1", t0), Verdict::Fetch);
        u.missed("RT1", t0);
        assert_eq!(u.check("RT1", t0 + ttl / 2), Verdict::KnownMissing);
        assert_eq!(u.check("RT1", t0 + ttl), Verdict::Fetch);
        // With no refresh interval, nothing is remembered.
        let mut none = Unlisted::new(Duration::ZERO, t0);
        none.missed("RT1", t0);
        assert_eq!(none.check("RT1", t0), Verdict::Fetch);
    }

    #[test]
    fn at_most_max_misses_the_oldest_dropped() {
        let t0 = Instant::now();
        let mut u = Unlisted::new(Duration::from_secs(3600), t0);
        for i in 0..MAX_MISSES + 10 {
            u.missed(&format!("RT{i}"), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(u.misses.len(), MAX_MISSES);
        assert!(!u.misses.contains_key("RT0"), "the oldest went first");
        let last = format!("RT{}", MAX_MISSES + 9);
        let now = t0 + Duration::from_secs(1);
        assert_eq!(u.check(&last, now), Verdict::KnownMissing);
    }
}
