//! When to try a failed request again, and how long to wait first.
//!
//! This module owns the retry *schedule* only: full-jitter exponential backoff
//! (`delay = random(0, min(max_delay, base_delay · 2^(n−1)))`, the scheme AWS recommends
//! because it spreads a burst of failing clients out instead of having them retry in
//! lock-step), a cap on attempts, and a total time budget: the last delay is cut to end
//! with the budget, so that retrying stops only once it is spent. A server's
//! `Retry-After` wins over the computed delay when it asks for longer, as long as it
//! fits the budget.
//!
//! It must not do I/O or decide *what* is retryable: the Twilio client and the object
//! client classify their own failures and ask [`Backoff::next_delay`] whether, and after
//! how long, to try again. The computation itself ([`Backoff::next_delay_at`]) takes the
//! elapsed time and the random draw as arguments so that it is tested without clocks.

use std::time::{Duration, Instant};

/// How persistent to be with a failing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 means never retry).
    pub max_attempts: u32,
    /// The cap of the first delay; each later cap doubles.
    pub base_delay: Duration,
    /// The largest cap any one delay gets (before `Retry-After`).
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub total_budget: Duration,
}

impl Default for RetryPolicy {
    /// Time decides: retries go on for up to 30 s (a storage or API blip of a few
    /// seconds must not fail a read), with delays capped at 5 s. The attempt cap only
    /// guards against a tight loop; full jitter alone would let 6 attempts run out in
    /// about 1.5 s.
    fn default() -> Self {
        Self {
            max_attempts: 100,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            total_budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The cap of the delay after failed attempt number `attempt` (1-based):
    /// `min(max_delay, total_budget / 4, base_delay · 2^(attempt−1))`. A quarter of
    /// the budget at most, so that a short budget still makes a few attempts after the
    /// delays have grown: a storage back after 2 s of a 6 s budget is tried again soon,
    /// not 5 s later.
    pub fn cap(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        let max = self.max_delay.min(self.total_budget / 4);
        self.base_delay
            .checked_mul(1u32 << shift)
            .unwrap_or(max)
            .min(max)
    }
}

/// The retry state of one logical request (which may span several HTTP requests).
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    failures: u32,
    started: Instant,
}

impl Backoff {
    /// Starts the clock: call it just before the first attempt.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            failures: 0,
            started: Instant::now(),
        }
    }

    /// How many attempts have failed so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Time since the first attempt.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records one failed attempt and says how long to wait before the next, or `None`
    /// when the attempts or the time budget are used up. `retry_after` is the server's
    /// `Retry-After`, when it sent one.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let jitter: f64 = rand::random();
        self.next_delay_at(self.started.elapsed(), retry_after, jitter)
    }

    /// [`Self::next_delay`] with the clock and the random draw (in `[0, 1)`) given.
    pub fn next_delay_at(
        &mut self,
        elapsed: Duration,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<Duration> {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        let remaining = self.policy.total_budget.saturating_sub(elapsed);
        if remaining.is_zero() {
            return None;
        }
        let cap = self.policy.cap(self.failures);
        let delay = cap.mul_f64(jitter.clamp(0.0, 1.0));
        match retry_after {
            // The server asked for a wait that does not fit: give up rather than
            // come back earlier than asked.
            Some(asked) if asked > delay && asked > remaining => None,
            Some(asked) if asked > delay => Some(asked),
            // A computed delay is shortened to end with the budget: the last attempt
            // comes at its very end, so a failure is reported only once it is spent.
            _ => Some(delay.min(remaining)),
        }
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is not used by
/// Twilio or S3 and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn caps_double_up_to_the_maximum() {
        let p = RetryPolicy::default();
        assert_eq!(p.cap(1), 100 * MS);
        assert_eq!(p.cap(2), 200 * MS);
        assert_eq!(p.cap(3), 400 * MS);
        assert_eq!(p.cap(6), 3200 * MS);
        assert_eq!(p.cap(7), 5000 * MS);
        assert_eq!(p.cap(1000), 5000 * MS);
        let short = RetryPolicy {
            total_budget: Duration::from_secs(6),
            ..p
        };
        assert_eq!(short.cap(5), 1500 * MS);
        assert_eq!(short.cap(1), 100 * MS);
    }

    #[test]
    fn full_jitter_stays_under_the_cap() {
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(
            b.next_delay_at(Duration::ZERO, None, 0.0),
            Some(Duration::ZERO)
        );
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 0.5), Some(100 * MS));
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 1.0), Some(400 * MS));
        for _ in 0..50 {
            let mut b = Backoff::new(RetryPolicy::default());
            let d = b.next_delay(None).unwrap();
            assert!(d <= 100 * MS);
        }
    }

    #[test]
    fn stops_after_max_attempts() {
        let mut b = Backoff::new(RetryPolicy::default());
        let delays: Vec<_> = (0..110)
            .map(|_| b.next_delay_at(Duration::ZERO, None, 0.0))
            .collect();
        // 100 attempts = 99 retries.
        assert_eq!(delays.iter().filter(|d| d.is_some()).count(), 99);
        assert!(delays[99..].iter().all(Option::is_none));
        let mut b = Backoff::new(RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        });
        assert!(b.next_delay_at(Duration::ZERO, None, 0.0).is_some());
        assert!(b.next_delay_at(Duration::ZERO, None, 0.0).is_some());
        assert_eq!(b.next_delay_at(Duration::ZERO, None, 0.0), None);
        assert_eq!(Backoff::new(RetryPolicy::none()).next_delay(None), None);
    }

    #[test]
    fn retry_after_wins_when_longer_and_within_budget() {
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::ZERO, Some(Duration::from_secs(2)), 0.5);
        assert_eq!(got, Some(Duration::from_secs(2)));
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::ZERO, Some(Duration::ZERO), 1.0);
        assert_eq!(got, Some(100 * MS));
        // Beyond the budget: give up rather than sleep past it.
        let mut b = Backoff::new(RetryPolicy::default());
        let got = b.next_delay_at(Duration::from_secs(29), Some(Duration::from_secs(2)), 0.0);
        assert_eq!(got, None);
    }

    #[test]
    fn budget_exhausted() {
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(b.next_delay_at(Duration::from_secs(31), None, 0.0), None);
        assert_eq!(b.failures(), 1);
        let mut b = Backoff::new(RetryPolicy::default());
        assert_eq!(b.next_delay_at(Duration::from_secs(30), None, 0.0), None);
    }

    /// The last retry waits only until the budget ends: no failure is reported while
    /// some of the budget is left.
    #[test]
    fn the_last_delay_ends_with_the_budget() {
        let mut b = Backoff::new(RetryPolicy::default());
        for _ in 0..6 {
            b.next_delay_at(Duration::ZERO, None, 1.0);
        }
        // The cap is now 5 s, but only 0.3 s of the budget is left.
        let got = b.next_delay_at(Duration::from_millis(29_700), None, 1.0);
        assert_eq!(got, Some(300 * MS));
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
